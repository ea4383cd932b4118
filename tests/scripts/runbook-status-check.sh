#!/bin/bash
# runbooks/status-check.yaml with real processes, pid files and heartbeats:
# the four outcomes of status_check.sh (DEAD: no pid file, DEAD: process not
# running, DEGRADED: heartbeat older than 120 s, HEALTHY), one line appended
# to the status log per check, and the failure notification to the webhook
# for DEAD and DEGRADED only.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; sandbox_stop; rm -rf "$TMP"; }
trap cleanup EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"

export RBK_HOME="$TMP/home"
fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
sandbox_start "$TMP/sb"
export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
mkdir -p "$SANDBOX/run"
PIDF="$SANDBOX/run/backtest.pid" BEAT="$SANDBOX/run/backtest.heartbeat" LOG="$SANDBOX/backtest_status.log"
ARGS=(-p pidfile="$PIDF" -p heartbeat="$BEAT" -p status_log="$LOG")
st() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
nalerts() { st 'len(s.get("alerts", []))'; }

"$RBK" validate "$RBK_ROOT/runbooks/status-check.yaml" >/dev/null 2>&1 \
	&& grep -q 'cron: "\*/5 \* \* \* \*"' "$RBK_ROOT/runbooks/status-check.yaml" && ok "valid, scheduled every 5 minutes (UTC)" || fail "validate" ""

# 1. DEAD: no pid file.
out=$("$RBK" run status-check "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && "$RBK" show 1 | grep -q "state *not_ok" && ok "no pid file: the run fails (exit 1)" || fail "no pidfile exit" "rc=$rc $out"
[ "$(wc -l <"$LOG")" = 1 ] && grep -Eq '^20[0-9-]+T[0-9:]+Z DEAD: No PID file$' "$LOG" && ok "status log: 'DEAD: No PID file'" || fail "log no pidfile" "$(cat "$LOG")"
[ "$(nalerts)" = 1 ] && [ "$(st '"DEAD: No PID file" in s["alerts"][0]["text"]')" = True ] && ok "the failure notification names DEAD" || fail "notify dead" "$(st 's.get("alerts")')"

# 2. DEAD: the pid file's process is not running.
sleep 0 & dead=$!; wait $dead
echo $dead >"$PIDF"; date +%s >"$BEAT"
out=$("$RBK" run status-check "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(wc -l <"$LOG")" = 2 ] && tail -1 "$LOG" | grep -q "DEAD: Process $dead not running$" \
	&& ok "dead process $dead: 'DEAD: Process N not running', exit 1" || fail "not running" "rc=$rc $(cat "$LOG") $out"
[ "$(nalerts)" = 2 ] && [ "$(st '"not running" in s["alerts"][1]["text"]')" = True ] && ok "notified again" || fail "notify 2" "$(st 's.get("alerts")')"

# 3. DEGRADED: the process runs, its heartbeat is 300 s old.
sleep 300 & PIDS+=($!); live=$!
echo $live >"$PIDF"; echo $(( $(date +%s) - 300 )) >"$BEAT"
out=$("$RBK" run status-check "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && tail -1 "$LOG" | grep -Eq "DEGRADED: Heartbeat stale 30[0-9]s$" && ok "stale heartbeat: 'DEGRADED: Heartbeat stale 300s', exit 1" || fail "degraded" "rc=$rc $(tail -1 "$LOG") $out"
[ "$(nalerts)" = 3 ] && [ "$(st '"DEGRADED" in s["alerts"][2]["text"]')" = True ] && ok "DEGRADED notified" || fail "notify degraded" "$(st 's.get("alerts")')"
kill -0 $live && ok "the degraded process is left running (a check only)" || fail "left running" ""

# 3b. A heartbeat 100 s old is within max_age 120 s; max_age=60s makes it DEGRADED.
echo $(( $(date +%s) - 100 )) >"$BEAT"
out=$("$RBK" run status-check "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && tail -1 "$LOG" | grep -q "HEALTHY: PID $live$" && ok "heartbeat 100 s old: HEALTHY under the 120 s threshold" || fail "100s" "rc=$rc $(tail -1 "$LOG")"
out=$("$RBK" run status-check "${ARGS[@]}" -p max_age=60s 2>&1); rc=$?
[ $rc = 1 ] && tail -1 "$LOG" | grep -q "DEGRADED" && ok "max_age is a param: 60 s makes it DEGRADED" || fail "max_age param" "rc=$rc $(tail -1 "$LOG")"
n=$(nalerts)

# 4. HEALTHY: running with a fresh heartbeat; no notification.
date +%s >"$BEAT"
out=$("$RBK" run status-check "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && tail -1 "$LOG" | grep -Eq "^20[0-9-]+T[0-9:]+Z HEALTHY: PID $live$" && ok "running, fresh heartbeat: 'HEALTHY: PID N', exit 0" || fail "healthy" "rc=$rc $(tail -1 "$LOG") $out"
[ "$(nalerts)" = "$n" ] && ok "HEALTHY sends no notification" || fail "healthy notify" "$(st 's.get("alerts")')"
"$RBK" show 6 --json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["status"]=="succeeded" else 1)' \
	&& ok "the run's status is succeeded" || fail "status json" "$("$RBK" show 6 --json)"

# A heartbeat file with no time in it is DEGRADED too; a missing heartbeat file is not checked (as the seed's script).
echo garbage >"$BEAT"
out=$("$RBK" run status-check "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && tail -1 "$LOG" | grep -q "DEGRADED: Heartbeat unreadable" && ok "unreadable heartbeat: DEGRADED" || fail "garbage beat" "rc=$rc $(tail -1 "$LOG")"
rm -f "$BEAT"
out=$("$RBK" run status-check "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && tail -1 "$LOG" | grep -q "HEALTHY" && ok "no heartbeat file: the seed checks only the process: HEALTHY" || fail "no beat" "rc=$rc $(tail -1 "$LOG")"
[ "$(wc -l <"$LOG")" = 8 ] && ok "one status line per check (8 checks, 8 lines)" || fail "lines" "$(cat "$LOG")"
