#!/bin/bash
# runbooks/cpu-hang.yaml with real processes: a hang seen by its stale
# heartbeat that exits on SIGTERM; one that ignores SIGTERM (trap '' TERM)
# and is SIGKILLed; a CPU spike (a busy loop) seen from /proc/PID/stat; a
# healthy daemon (nothing done); a daemon that is not running (a crash, not
# a hang); a restart that does not come back (escalated).
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done # the daemons; their watchers then exit
	for f in "$TMP"/*/run/backtest.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	sandbox_stop; rm -rf "$TMP"
}
trap cleanup EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
FAKE="$RBK_ROOT/tests/sandbox/extra/cpu-hang/fake-daemon"

setup() { # setup CASE: a sandbox with run/ and the runbook's params
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	mkdir -p "$SANDBOX/run"
	PIDF="$SANDBOX/run/backtest.pid" BEAT="$SANDBOX/run/backtest.heartbeat"
	ARGS=(-p pidfile="$PIDF" -p heartbeat="$BEAT" -p debug_prefix="$SANDBOX/pstack_" -p workdir="$SANDBOX"
		-p settle=200ms -p grace=2s -p cpu_sample=300ms -p cpu_for=1s
		-p restart_cmd="'$FAKE' run/backtest.pid run/backtest.heartbeat > daemon.out 2>&1 &")
}
daemon() { # daemon CMD...: start CMD as the daemon (pid in PIDF); a watcher writes its exit status to $SANDBOX/exit.status
	rm -f "$SANDBOX/exit.status" "$PIDF"
	sh -c '"$@" & echo $! >"$0"; wait $!; echo $? >"$0.status"' "$SANDBOX/exit" "$@" 2>/dev/null &
	for _ in $(seq 100); do [ -s "$SANDBOX/exit" ] && break; sleep 0.02; done
	HUNG=$(cat "$SANDBOX/exit"); PIDS+=($HUNG); echo $HUNG >"$PIDF"
}
hung() { daemon "$@"; echo $(( $(date +%s) - 600 )) >"$BEAT"; } # hung CMD...: a daemon with a heartbeat 10 min old
st() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
status_of() { # the daemon's exit status (143: TERM, 137: KILL)
	for _ in $(seq 100); do [ -s "$SANDBOX/exit.status" ] && break; sleep 0.02; done
	cat "$SANDBOX/exit.status" 2>/dev/null
}

# A hang (stale heartbeat) that exits on SIGTERM.
setup term
hung sleep 300
out=$("$RBK" run cpu-hang "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *recovered" && ok "stale heartbeat: hang recovered, exit 0" || fail "term exit" "rc=$rc $out"
[ "$(status_of $HUNG)" = 143 ] && ok "the hung process ended on SIGTERM" || fail "term status" ""
"$RBK" log 1 | grep -q "graceful_kill -> clean_pid" && ! "$RBK" log 1 | grep -q "step_started *force_kill" \
	&& ok "no SIGKILL was needed" || fail "no force kill" "$("$RBK" log 1)"
dbg=$(ls "$SANDBOX"/pstack_*.txt 2>/dev/null | head -1)
[ -n "$dbg" ] && grep -q "^## /proc/$HUNG/status" "$dbg" && grep -Pq "^Pid:\t$HUNG$" "$dbg" && grep -q "^## /proc/$HUNG/wchan" "$dbg" && grep -q "^## debug_cmd" "$dbg" \
	&& ok "debug info captured before the kill (/proc status, wchan, debug_cmd) in $(basename "$dbg")" || fail "debug file" "$(cat "$dbg" 2>&1 | head)"
new=$(cat "$PIDF" 2>/dev/null)
[ -n "$new" ] && [ "$new" != "$HUNG" ] && alive "$PIDF" && [ $(( $(date +%s) - $(cat "$BEAT") )) -le 3 ] \
	&& ok "the daemon was restarted (pid $new, fresh heartbeat), outliving the run" || fail "restarted" "pid=$new"
[ "$(st '"exited after SIGTERM" in s["alerts"][0]["text"] and "heartbeat stale" in s["alerts"][0]["text"] and "'"$dbg"'" in s["alerts"][0]["text"]')" = True ] \
	&& ok "the alert names the symptom, the debug file and the graceful exit" || fail "alert" "$(st 's.get("alerts")')"
kill "$new"
sandbox_stop

# A hang that ignores SIGTERM: SIGKILL after the grace period.
setup kill
hung bash -c "trap '' TERM; while :; do sleep 0.2; done"
t0=$(date +%s%N)
out=$("$RBK" run cpu-hang "${ARGS[@]}" 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *recovered" && ok "TERM ignored: recovered, exit 0" || fail "kill exit" "rc=$rc $out"
[ "$(status_of $HUNG)" = 137 ] && ok "the process that ignored SIGTERM was SIGKILLed" || fail "kill status" ""
"$RBK" log 1 | grep -q "graceful_kill -> force_kill" && [ $ms -ge 2000 ] && ok "SIGKILL only after the grace (2 s) had passed (${ms} ms)" || fail "force kill edge" "${ms}ms $("$RBK" log 1)"
alive "$PIDF" && [ "$(cat "$PIDF")" != "$HUNG" ] && ok "restarted after the force kill" || fail "restart after kill" ""
[ "$(st '"SIGKILLed" in s["alerts"][0]["text"]')" = True ] && ok "the alert says it was SIGKILLed" || fail "kill alert" "$(st 's.get("alerts")')"
kill "$(cat "$PIDF")"
sandbox_stop

# A CPU spike: a busy loop with a fresh heartbeat, above the threshold for cpu_for (10% here:
# the loop gets well below 100% of a CPU on a loaded test host; an idle process measures 0%).
setup cpu
daemon sh -c 'while :; do :; done'; BUSY=$HUNG
date +%s >"$BEAT"
out=$("$RBK" run cpu-hang "${ARGS[@]}" -p cpu_threshold=10 -p cpu_for=3s 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status_of $BUSY)" = 143 ] && ok "CPU spike: the busy process was stopped (SIGTERM), exit 0" || fail "cpu" "rc=$rc $out"
n=$("$RBK" log 1 | grep -c "step_started *measure_cpu")
[ "$n" -ge 3 ] && "$RBK" log 1 | grep -q "cpu_spike" && ok "CPU measured $n times over cpu_for before acting" || fail "cpu measured" "$("$RBK" log 1)"
[ "$(st '"% for " in s["alerts"][0]["text"] and "CPU " in s["alerts"][0]["text"]')" = True ] && ok "the alert gives the CPU share and how long" || fail "cpu alert" "$(st 's.get("alerts")')"
alive "$PIDF" && ok "restarted after the CPU spike" || fail "cpu restart" ""
kill "$(cat "$PIDF")"
sandbox_stop

# Healthy: idle process, fresh heartbeat: nothing done.
setup healthy
daemon sleep 300; IDLE=$HUNG
date +%s >"$BEAT"
out=$("$RBK" run cpu-hang "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *healthy" && kill -0 $IDLE && [ "$(cat "$PIDF")" = $IDLE ] \
	&& ok "healthy: left running, exit 0" || fail "healthy" "rc=$rc $out"
! ls "$SANDBOX"/pstack_*.txt >/dev/null 2>&1 && [ ! -e "$SANDBOX/daemon.out" ] && [ "$(st 'len(s.get("alerts", []))')" = 0 ] \
	&& ok "healthy: no debug capture, no restart, no alert" || fail "healthy effects" ""

# Not running: a crash (daemon-crash's job), nothing done here.
sleep 0 & dead=$!; wait $dead
echo $dead >"$PIDF"
out=$("$RBK" run cpu-hang "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && "$RBK" show 2 | grep -q "state *not_running" && [ ! -e "$SANDBOX/daemon.out" ] && [ "$(cat "$PIDF")" = $dead ] \
	&& ok "not running: not a hang, nothing done, exit 1" || fail "not running" "rc=$rc $out"
sandbox_stop

# The restart does not come back: escalated.
setup noreturn
hung sleep 300
out=$("$RBK" run cpu-hang "${ARGS[@]}" -p restart_cmd="echo started > daemon.out" -p confirm_checks=1 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status_of $HUNG)" = 143 ] && "$RBK" log 1 | grep -q "confirm_beat -> escalate" \
	&& [ "$(st '"NOT recovered" in s["alerts"][-1]["text"] and s["alerts"][-1]["severity"] == "critical"')" = True ] \
	&& ok "no heartbeat after the restart: critical escalation, exit 1" || fail "noreturn" "rc=$rc $out $(st 's.get("alerts")')"
[ ! -e "$PIDF" ] && [ -e "$SANDBOX/daemon.out" ] && ok "the pid and heartbeat files were cleaned before the restart" || fail "cleaned" ""
