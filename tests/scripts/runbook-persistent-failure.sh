#!/bin/bash
# runbooks/persistent-failure.yaml with real processes, a SQLite crash
# table, daily database backups and a git repository whose commits are 5 d,
# 3 d, 1 d and 1 h old: the happy path (3 crashes: both processes stopped,
# the database of 2 days ago put back, the code of 48 h ago (the 3-day-old
# commit) checked out, validated, main alone restarted, logger and on-call
# alert), below the threshold, an explicit ref, and the failure paths: no
# 2-day backup, local changes, a checkout conflict (rolled back: database
# restored, undo alert) and a failed validation (not resumed).
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for f in "$TMP"/*/run/main.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	sandbox_stop; rm -rf "$TMP"
}
trap cleanup EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
export GIT_AUTHOR_NAME=ops GIT_AUTHOR_EMAIL=ops@example.com GIT_COMMITTER_NAME=ops GIT_COMMITTER_EMAIL=ops@example.com

marker() { "$PY" -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select v from marker").fetchone()[0])' "$1" 2>&1; }
mkdb() { "$PY" -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute("create table marker(v)"); d.execute("insert into marker values (?)", (sys.argv[2],)); d.commit()' "$1" "$2"; }
commit() { # commit AGE_SECONDS MESSAGE: a commit authored and committed AGE_SECONDS ago
	local d="@$(( $(date +%s) - $1 )) +0000"
	git -C "$SANDBOX/repo" add -A && GIT_AUTHOR_DATE="$d" GIT_COMMITTER_DATE="$d" git -C "$SANDBOX/repo" commit -qm "$2"
	git -C "$SANDBOX/repo" rev-parse HEAD
}
setup() { # setup CASE [RECENT_CRASHES]
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	mkdir -p "$SANDBOX/run" "$SANDBOX/db" "$SANDBOX/backups" "$SANDBOX/repo"
	local now=$(date +%s)
	"$PY" -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute("create table crashes(ts integer, reason text)"); n=int(sys.argv[3]); now=int(sys.argv[2])
for i, age in enumerate([3600, 5*3600, 20*3600][:n] + [30*3600, 50*3600]): d.execute("insert into crashes values (?, ?)", (now - age, "crash %d" % i))
d.commit()' "$SANDBOX/db/health.db" "$now" "${2:-3}"
	sleep 300 & MAIN_PID=$!; PIDS+=($MAIN_PID); echo $MAIN_PID >"$SANDBOX/run/main.pid"
	sleep 300 & DAEMON_PID=$!; PIDS+=($DAEMON_PID); echo $DAEMON_PID >"$SANDBOX/run/backtest.pid"
	mkdb "$SANDBOX/db/crypto_agent.db" current
	mkdb "$SANDBOX/backups/db_backup_$(date -d "@$(( now - 172800 ))" +%Y%m%d).db" two-days-ago
	mkdb "$SANDBOX/backups/db_backup_$(date -d "@$(( now - 86400 ))" +%Y%m%d).db" yesterday
	git init -q -b main "$SANDBOX/repo"
	echo v1 >"$SANDBOX/repo/app.py"; C1=$(commit $((5 * 86400)) "v1")
	echo v2 >"$SANDBOX/repo/app.py"; echo old >"$SANDBOX/repo/legacy.py"; C2=$(commit $((3 * 86400)) "v2")
	echo v3 >"$SANDBOX/repo/app.py"; rm "$SANDBOX/repo/legacy.py"; C3=$(commit 86400 "v3: drop legacy")
	echo v4 >"$SANDBOX/repo/app.py"; C4=$(commit 3600 "v4")
	ARGS=(-p crash_db="$SANDBOX/db/health.db" -p main_pidfile="$SANDBOX/run/main.pid" -p daemon_pidfile="$SANDBOX/run/backtest.pid"
		-p grace=2s -p db="$SANDBOX/db/crypto_agent.db" -p backup_dir="$SANDBOX/backups" -p repo="$SANDBOX/repo" -p workdir="$SANDBOX"
		-p validate_cmd="echo 'staleness ok: H4 < 24h, H1 < 6h, coverage 60/60'"
		-p start_main_cmd="sh -c 'echo \$\$ > run/main.pid; exec sleep 300' > main.out 2>&1 &"
		-p notify="$RBK_ROOT/tests/sandbox/extra/persistent-failure/logger" -p confirm_checks=5)
}
st() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
head_is() { [ "$(git -C "$SANDBOX/repo" rev-parse HEAD)" = "$1" ]; }
stopped() { wait "$1"; [ $? = 143 ]; } # killed by SIGTERM (reaped here)

# Happy path.
setup happy
out=$("$RBK" run persistent-failure "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *done" && ok "3 crashes in 24 h: rolled back and resumed, exit 0" || fail "happy exit" "rc=$rc $out"
stopped $MAIN_PID && stopped $DAEMON_PID && ok "main and the backtest daemon were stopped with SIGTERM" || fail "stopped" ""
[ "$(marker "$SANDBOX/db/crypto_agent.db")" = two-days-ago ] && [ "$(marker "$SANDBOX/db/crypto_agent.db.before-rollback-1")" = current ] \
	&& ok "the database is the backup of 2 days ago; the current one is kept beside it" || fail "db rollback" "$(marker "$SANDBOX/db/crypto_agent.db")"
head_is "$C2" && [ "$(cat "$SANDBOX/repo/app.py")" = v2 ] && ok "the code is the commit of 48 h ago (the 3-day-old one)" || fail "code rollback" "$(git -C "$SANDBOX/repo" log --oneline -1)"
new=$(cat "$SANDBOX/run/main.pid" 2>/dev/null)
[ -n "$new" ] && [ "$new" != "$MAIN_PID" ] && kill -0 "$new" 2>/dev/null && ok "main (live trading) runs again, pid $new" || fail "main resumed" "pid=$new"
! kill -0 "$(cat "$SANDBOX/run/backtest.pid")" 2>/dev/null && ok "the backtest daemon stays paused" || fail "daemon paused" ""
grep -qx "logger -t rbk ROLLBACK COMPLETE: Live trading resumed, backtest PAUSED for investigation" "$SANDBOX/calls.log" 2>/dev/null \
	&& ok "logger: ROLLBACK COMPLETE" || fail "logger" "$(cat "$SANDBOX/calls.log" 2>&1)"
[ "$(st '"LAST RESORT" in s["alerts"][0]["text"] and s["alerts"][-1]["text"].startswith("🚨 BACKTEST ROLLBACK: Persistent issues detected, rolled back 48h. Investigate /tmp/backtest.log and pstack*.txt")')" = True ] \
	&& ok "the on-call got the announcement and the seed's rollback message" || fail "alerts" "$(st 's.get("alerts")')"
kill "$new" 2>/dev/null
sandbox_stop

# Below the threshold: nothing is touched.
setup below 2
out=$("$RBK" run persistent-failure "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *below_threshold" && kill -0 $MAIN_PID && kill -0 $DAEMON_PID && head_is "$C4" \
	&& [ "$(marker "$SANDBOX/db/crypto_agent.db")" = current ] && ok "2 crashes in 24 h: nothing touched, exit 0" || fail "below" "rc=$rc $out"
sandbox_stop

# An explicit ref.
setup ref
out=$("$RBK" run persistent-failure "${ARGS[@]}" -p ref="$C1" 2>&1); rc=$?
[ $rc = 0 ] && head_is "$C1" && ok "ref given: the code goes back to it" || fail "ref" "rc=$rc $out"
kill "$(cat "$SANDBOX/run/main.pid")" 2>/dev/null
sandbox_stop

# No backup of 2 days ago: escalation, everything stopped, nothing rolled back.
setup nobackup
rm "$SANDBOX"/backups/db_backup_$(date -d "@$(( $(date +%s) - 172800 ))" +%Y%m%d).db
out=$("$RBK" run persistent-failure "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && stopped $MAIN_PID && stopped $DAEMON_PID && ok "no 2-day backup: exit 1, both processes stopped" || fail "nobackup exit" "rc=$rc $out"
[ "$(marker "$SANDBOX/db/crypto_agent.db")" = current ] && head_is "$C4" && [ ! -e "$SANDBOX/run/main.pid" ] || [ "$(cat "$SANDBOX/run/main.pid")" = $MAIN_PID ] \
	&& ok "database and code untouched, main not restarted" || fail "nobackup state" ""
[ "$(st '"no 2-day backup found" in s["alerts"][-1]["text"]')" = True ] && ok "the on-call is told no 2-day backup was found" || fail "nobackup alert" "$(st 's.get("alerts")')"
sandbox_stop

# Local changes in the work tree: never discarded.
setup dirty
echo hotfix >>"$SANDBOX/repo/app.py"
out=$("$RBK" run persistent-failure "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && grep -q hotfix "$SANDBOX/repo/app.py" && [ "$(marker "$SANDBOX/db/crypto_agent.db")" = current ] \
	&& [ "$(st '"uncommitted changes" in s["alerts"][-1]["text"]')" = True ] && ok "local changes: nothing rolled back, escalated, exit 1" || fail "dirty" "rc=$rc $out"
sandbox_stop

# The checkout fails after the database was replaced (an untracked legacy.py is in the way): rollback.
setup conflict
echo "untracked local file" >"$SANDBOX/repo/legacy.py"
out=$("$RBK" run persistent-failure "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 3 ] && "$RBK" show 1 | grep -q "status *rolled_back" && ok "checkout conflict: the run rolls back (exit 3)" || fail "conflict exit" "rc=$rc $out"
[ "$(marker "$SANDBOX/db/crypto_agent.db")" = current ] && ok "the undo put the current database back" || fail "db undone" "$(marker "$SANDBOX/db/crypto_agent.db")"
head_is "$C4" && [ "$(git -C "$SANDBOX/repo" symbolic-ref --short HEAD)" = main ] && [ "$(cat "$SANDBOX/repo/legacy.py")" = "untracked local file" ] \
	&& ok "the code and the untracked file are as they were" || fail "code after conflict" ""
[ "$(st '"FAILED and was UNDONE" in s["alerts"][-1]["text"]')" = True ] && ok "the undo of the announcement tells the on-call" || fail "undo alert" "$(st 's.get("alerts")')"
"$RBK" log 1 | grep -q "restore_db" && "$RBK" log 1 | grep -qi "undo" && ok "the log shows the undos" || fail "undo log" "$("$RBK" log 1 | tail -8)"
stopped $MAIN_PID && [ "$(cat "$SANDBOX/run/main.pid")" = $MAIN_PID ] && ok "main was not restarted" || fail "main after rollback" ""
sandbox_stop

# The validation fails: live trading is not resumed.
setup invalid
out=$("$RBK" run persistent-failure "${ARGS[@]}" -p validate_cmd="echo 'H4 data 30 h old' >&2; exit 1" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(cat "$SANDBOX/run/main.pid")" = $MAIN_PID ] && stopped $MAIN_PID && [ "$(st '"validation FAILED" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "validation failed: not resumed, escalated, exit 1" || fail "invalid" "rc=$rc $out"
