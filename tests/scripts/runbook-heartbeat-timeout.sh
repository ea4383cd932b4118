#!/bin/bash
# runbooks/heartbeat-timeout.yaml with real pid files, processes and
# heartbeat files, and the sandbox (its child process-restart too):
#  - a heartbeat 6 s old with a 5 s cycle: fresh at factor 3 (nothing done),
#    a timeout at factor 1;
#  - the loop died (stale pid file): the log's CRITICAL/ERROR lines and the
#    CPU and memory bottlenecks are reported, process-restart runs as a child
#    and restarts the loop on a reconciled state;
#  - the loop died and process-restart fails (damaged state DB): escalated;
#  - the loop is alive but silent (a real sleep): hung, a person is alerted,
#    nothing restarted or killed.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
mkdir -p "$TMP/bin" && ln -s "$PY" "$TMP/bin/python3" && export PATH="$TMP/bin:$PATH" # for the sandbox and the stand-ins too
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
X="$RBK_ROOT/tests/sandbox/extra/process-restart"

setup() { # setup CASE: a dead loop (stale pid file), heartbeat 10 min old, errors in the log, a busy host
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	mkdir -p "$SANDBOX/systemd" "$SANDBOX/data" "$SANDBOX/run" "$SANDBOX/logs" "$SANDBOX/proc"
	echo failed >"$SANDBOX/systemd/trading-bot.service.state"
	sleep 0 & local dead=$!; wait $dead
	echo $dead >"$SANDBOX/run/trading-bot.pid"
	touch -d '10 min ago' "$SANDBOX/run/trading-bot.heartbeat"
	{ echo "2026-12-04 22:00:00 INFO cycle 1041 done"
	  echo "2026-12-04 22:00:59 ERROR websocket: connection reset by peer"
	  echo "2026-12-04 22:01:00 INFO ERRORS_SEEN counter=1"
	  echo "2026-12-04 22:01:02 CRITICAL core loop: MemoryError in signals/engine.py"; } >"$SANDBOX/logs/trading-bot.log"
	echo "$(( $(nproc) * 5 )).00 3.10 2.00 3/412 9999" >"$SANDBOX/proc/loadavg"
	printf 'MemTotal:       8000000 kB\nMemFree:         100000 kB\nMemAvailable:    400000 kB\n' >"$SANDBOX/proc/meminfo"
	"$PY" "$X/fixture.py" state "$SANDBOX/data/portfolio.db" BTCUSDT:0.5:60000
	"$PY" "$X/fixture.py" market "$SANDBOX/data/market.db" 600
	sandbox_state 's["exchange"] = {"positions": [{"symbol": "BTCUSDT", "qty": 0.5, "entry_price": 60000}]}'
	ARGS=(-p heartbeat="$SANDBOX/run/trading-bot.heartbeat" -p pidfile="$SANDBOX/run/trading-bot.pid" -p log="$SANDBOX/logs/trading-bot.log"
		-p loadavg_file="$SANDBOX/proc/loadavg" -p meminfo_file="$SANDBOX/proc/meminfo" -p cycle=1s
		-p db="$SANDBOX/data/portfolio.db" -p market_db="$SANDBOX/data/market.db" -p exchange_url="$SANDBOX_URL/exchange"
		-p systemctl="$SANDBOX_BIN/systemctl" -p health_url="$SANDBOX_URL/health/trading-bot" -p backfill_cmd="'$X/backfill'" -p health_for=1s)
}
st() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
status() { "$RBK" show "$1" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }

# 1. Fresh heartbeat: 6 s old, cycle 5 s x factor 3 = 15 s: nothing done; with factor 1 (5 s) it is a timeout.
setup fresh
sleep 300 & PIDS+=($!); echo $! >"$SANDBOX/run/trading-bot.pid"
touch -d '6 sec ago' "$SANDBOX/run/trading-bot.heartbeat"
out=$("$RBK" run heartbeat-timeout "${ARGS[@]}" -p cycle=5s 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *healthy" && [ "$(st 'len(s.get("alerts", []))')" = 0 ] && [ ! -e "$SANDBOX/calls.log" ] \
	&& ok "heartbeat 6 s old within 3 x 5 s: healthy, no alert, nothing run, exit 0" || fail "fresh" "rc=$rc $out"
out=$("$RBK" run heartbeat-timeout "${ARGS[@]}" -p cycle=5s -p factor=1 2>&1); rc=$?
[ $rc = 1 ] && "$RBK" log 2 | grep -q "check_beat -> scan_logs" && ok "the same heartbeat with factor 1 (limit 5 s) is a timeout" || fail "factor" "rc=$rc $out"
kill "${PIDS[0]}"
sandbox_stop

# 2. The loop died: findings reported, process-restart restarts it.
setup dead
out=$("$RBK" run heartbeat-timeout "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status 1)" = succeeded ] && "$RBK" show 1 | grep -q "state *recovered" \
	&& ok "dead loop recovered: exit 0, state recovered" || fail "dead exit" "rc=$rc $out"
"$RBK" show 2 --json | grep -q '"runbook": *"process-restart"' && [ "$(status 2)" = succeeded ] \
	&& ok "process-restart ran as the called run 2 and succeeded" || fail "child" "$("$RBK" show 2 2>&1)"
a0='s["alerts"][0]'
[ "$(st "$a0[\"severity\"] == \"warning\" and \"DOWN\" in $a0[\"text\"] and \"CRITICAL core loop: MemoryError\" in $a0[\"text\"]")" = True ] \
	&& [ "$(st "\"websocket: connection reset\" in $a0[\"errors\"] and \"ERRORS_SEEN\" not in $a0[\"errors\"]")" = True ] \
	&& ok "the alert gives the last CRITICAL line; the ERROR/CRITICAL lines (not ERRORS_SEEN) are attached" || fail "log scan" "$(st "$a0")"
[ "$(st "\"bottleneck: CPU (load\" in $a0[\"text\"] and \"memory (5.0% available)\" in $a0[\"text\"]")" = True ] \
	&& ok "CPU load and memory (5 % available) are named as bottlenecks" || fail "resources" "$(st "$a0[\"text\"]")"
grep -q "systemctl start trading-bot.service" "$SANDBOX/calls.log" && [ "$(cat "$SANDBOX/systemd/trading-bot.service.state")" = active ] \
	&& [ "$(st '"restarted and healthy" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "the loop was restarted by process-restart and reported healthy" || fail "restart" "$(cat "$SANDBOX/calls.log")"
sandbox_stop

# 3. The loop died and process-restart fails (the state DB is damaged): escalated.
setup restartfail
"$PY" -c 'import sys; f=open(sys.argv[1],"r+b"); f.write(b"\0"*100); f.close()' "$SANDBOX/data/portfolio.db"
out=$("$RBK" run heartbeat-timeout "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = failed ] && [ "$(status 2)" = failed ] && "$RBK" log 1 | grep -q "restart -> restart_failed (failure)" \
	&& ok "process-restart failed: the run fails (exit 1) through restart_failed" || fail "restartfail" "rc=$rc $out"
! grep -q "systemctl start" "$SANDBOX/calls.log" && [ "$(st '"process-restart FAILED (run 2)" in s["alerts"][-1]["text"] and s["alerts"][-1]["severity"] == "critical"')" = True ] \
	&& ok "not started; a critical alert names the failed child run" || fail "restartfail alert" "$(st 's.get("alerts")')"
sandbox_stop

# 4. Alive but silent: hung; alerted, not restarted, not killed.
setup hung
sleep 300 & PIDS+=($!); hung=$!; echo $hung >"$SANDBOX/run/trading-bot.pid"
echo "0.10 0.10 0.10 1/100 1" >"$SANDBOX/proc/loadavg"
printf 'MemTotal: 8000000 kB\nMemAvailable: 6000000 kB\n' >"$SANDBOX/proc/meminfo"
out=$("$RBK" run heartbeat-timeout "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && "$RBK" log 1 | grep -q "check_pid -> hung" && kill -0 $hung 2>/dev/null && [ ! -e "$SANDBOX/calls.log" ] \
	&& ok "alive with a stale heartbeat: hung, left running, nothing restarted, exit 1" || fail "hung" "rc=$rc $out"
[ "$(st 's["alerts"][-1]["severity"] == "critical" and "pid '$hung' is ALIVE" in s["alerts"][-1]["text"] and "bottleneck: none" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "a critical alert asks a person to act (pid, no resource bottleneck)" || fail "hung alert" "$(st 's.get("alerts")')"
