#!/bin/bash
# runbooks/daemon-crash.yaml with real processes, pid files and heartbeats:
# the happy path (stale pid file, heartbeat 10 min old, an ERROR in the log,
# a sound DB: a real daemon is restarted and confirmed), a crash 2 s ago
# (waits out `settle` before restarting), a corrupted DB (not restarted,
# escalated), a healthy daemon (nothing done), a hang (alive, stale
# heartbeat: escalated, not killed) and a restart that does not come back.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for f in "$TMP"/*/run/backtest.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	sandbox_stop; rm -rf "$TMP"
}
trap cleanup EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
FAKE="$RBK_ROOT/tests/sandbox/extra/daemon-crash/fake-daemon"

setup() { # setup CASE: a crashed daemon: stale pid file, heartbeat 10 min old, ERROR in its log, a sound DB
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	mkdir -p "$SANDBOX/run" "$SANDBOX/logs" "$SANDBOX/db"
	sleep 0 & local dead=$!; wait $dead
	echo $dead >"$SANDBOX/run/backtest.pid"
	echo $(( $(date +%s) - 600 )) >"$SANDBOX/run/backtest.heartbeat"
	touch -d '10 min ago' "$SANDBOX/run/backtest.heartbeat" "$SANDBOX/run/backtest.pid"
	{ echo "2026-11-21 03:00:00 INFO backtest batch 41 done"
	  echo "2026-11-21 03:10:00 ERROR sqlite3.OperationalError: database is locked"
	  echo "2026-11-21 03:10:01 CRITICAL worker died: MemoryError in backtest/engine.py"
	  echo "2026-11-21 03:10:01 INFO shutting down"; } >"$SANDBOX/logs/backtest_24h7.log"
	"$PY" -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute("create table ohlcv_h4(symbol, ts, close)"); d.executemany("insert into ohlcv_h4 values (?,?,?)", [("BTCUSDT", i, 1.0*i) for i in range(500)]); d.commit()' "$SANDBOX/db/crypto_agent.db"
	ARGS=(-p pidfile="$SANDBOX/run/backtest.pid" -p heartbeat="$SANDBOX/run/backtest.heartbeat" -p log="$SANDBOX/logs/backtest_24h7.log"
		-p db="$SANDBOX/db/crypto_agent.db" -p restart_log="$SANDBOX/daemon.out" -p workdir="$SANDBOX"
		-p restart_cmd="'$FAKE' run/backtest.pid run/backtest.heartbeat > daemon.out 2>&1 &")
}
st() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Happy path.
setup happy
old=$(cat "$SANDBOX/run/backtest.pid")
out=$("$RBK" run daemon-crash "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *recovered" && ok "crash recovered: exit 0" || fail "happy exit" "rc=$rc $out"
new=$(cat "$SANDBOX/run/backtest.pid" 2>/dev/null)
[ -n "$new" ] && [ "$new" != "$old" ] && alive "$SANDBOX/run/backtest.pid" && ok "a new daemon runs (pid $new), outliving the run" || fail "daemon alive" "pid=$new"
sleep 1.2
[ $(( $(date +%s) - $(cat "$SANDBOX/run/backtest.heartbeat") )) -le 2 ] && ok "its heartbeat is fresh" || fail "heartbeat" "$(cat "$SANDBOX/run/backtest.heartbeat")"
[ "$(st '"CRITICAL worker died: MemoryError" in s["alerts"][0]["text"] and "pid '"$new"'" in s["alerts"][0]["text"]')" = True ] \
	&& ok "the alert gives the root cause from the log and the new pid" || fail "alert" "$(st 's.get("alerts")')"
"$RBK" log 1 | grep -q "integrity attempt 1 ok" && ok "the DB was checked before the restart" || fail "integrity in log" "$("$RBK" log 1)"
kill "$new"
sandbox_stop

# A crash 2 s ago: no restart before `settle` (4 s here) has passed since the last heartbeat.
setup settle
echo $(( $(date +%s) - 2 )) >"$SANDBOX/run/backtest.heartbeat"
t0=$(date +%s%N)
out=$("$RBK" run daemon-crash "${ARGS[@]}" -p settle=4s 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc = 0 ] && alive "$SANDBOX/run/backtest.pid" && ok "a recent crash is recovered too, exit 0" || fail "settle exit" "rc=$rc $out"
[ $ms -ge 4000 ] && [ "$("$RBK" log 1 | grep -c "step_started *settle")" -ge 2 ] \
	&& ok "the restart waited out the settle time (${ms} ms, settle polled again)" || fail "settle wait" "${ms}ms $("$RBK" log 1 | grep settle)"
kill "$(cat "$SANDBOX/run/backtest.pid")"
sandbox_stop

# The DB is corrupted: no restart, escalation to DB recovery.
setup corrupt
"$PY" -c '
import sys
f = open(sys.argv[1], "r+b"); f.seek(4096); f.write(b"\x0d" + b"\xff" * 4095); f.close()' "$SANDBOX/db/crypto_agent.db"
out=$("$RBK" run daemon-crash "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && ok "corrupted DB: exit 1" || fail "corrupt exit" "rc=$rc $out"
! alive "$SANDBOX/run/backtest.pid" && [ ! -e "$SANDBOX/daemon.out" ] && ok "the daemon was not restarted" || fail "no restart" ""
[ "$(st '"CORRUPTED" in s["alerts"][-1]["text"] and s["alerts"][-1]["severity"] == "critical"')" = True ] \
	&& ok "a critical alert sends it to DB recovery" || fail "corrupt alert" "$(st 's.get("alerts")')"
"$RBK" log 1 | grep -q "integrity -> db_corrupted" && ok "the log shows the DB check's edge" || fail "corrupt log" "$("$RBK" log 1)"
sandbox_stop

# A healthy daemon: nothing is done.
setup healthy
sleep 300 & PIDS+=($!)
echo $! >"$SANDBOX/run/backtest.pid"; date +%s >"$SANDBOX/run/backtest.heartbeat"
out=$("$RBK" run daemon-crash "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *healthy" && [ "$(st 'len(s.get("alerts", []))')" = 0 ] && [ ! -e "$SANDBOX/daemon.out" ] \
	&& ok "healthy daemon: nothing done, exit 0" || fail "healthy" "rc=$rc $out"

# A hang: alive with a stale heartbeat: escalated, not restarted, not killed.
echo $(( $(date +%s) - 600 )) >"$SANDBOX/run/backtest.heartbeat"
out=$("$RBK" run daemon-crash "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && alive "$SANDBOX/run/backtest.pid" && [ "$(st '"a hang (Scenario 4)" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "alive with a stale heartbeat: a hang, escalated, left running, exit 1" || fail "hung" "rc=$rc $out"
sandbox_stop

# The restart does not bring the daemon back: escalation.
setup noreturn
out=$("$RBK" run daemon-crash "${ARGS[@]}" -p restart_cmd="echo started > daemon.out" -p confirm_checks=1 2>&1); rc=$?
[ $rc = 1 ] && [ "$(st '"NOT recovered" in s["alerts"][-1]["text"]')" = True ] && "$RBK" log 1 | grep -q "confirm_beat -> escalate" \
	&& ok "no fresh heartbeat after the restart: escalated, exit 1" || fail "noreturn" "rc=$rc $out"
[ ! -e "$SANDBOX/run/backtest.pid" ] && ok "the stale pid file was cleared before the restart" || fail "pid file cleared" ""
