#!/bin/bash
# runbooks/db-slow.yaml against the real PostgreSQL of the test suite
# (RBK_TEST_PG), in a database of its own:
#  - a real blocker (BEGIN; LOCK TABLE market_data IN ACCESS EXCLUSIVE MODE;
#    pg_sleep) and a query waiting on it: the run asks for the approval with
#    the pid and the query; approved, the blocker is terminated, the waiter
#    completes, VACUUM ANALYZE runs, the run succeeds;
#  - the same, rejected: the backend stays alive, alert, the run fails;
#  - no blocker: nothing terminated, no approval, VACUUM ANALYZE only;
#  - pg_stat_statements: absent (recorded), readable (a view with its columns:
#    the slow list), installed but not loaded (recorded as unreadable): the
#    run goes on each time; the cache hit ratio without any block read (no
#    division by zero) and with some;
#  - a problem that persists (a session busy too long): restart approval;
#    rejected -> escalation; approved, a restart that does not help ->
#    escalation; approved, a restart (a stand-in that drops the sessions) ->
#    resolved.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
# psql itself rather than Debian's Perl wrapper /usr/bin/psql (0.15 s a call), when it is there
PSQL=$(ls -d /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n 1)
PSQL=${PSQL:-psql}
: "${RBK_TEST_PG:?RBK_TEST_PG is not set (the test cluster)}"
DB=d_db_slow_$$
DSN=${RBK_TEST_PG/\/rbk\?/\/$DB?}
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	"$PSQL" "$RBK_TEST_PG" -Xqc "drop database if exists $DB with (force)" >/dev/null 2>&1
	sandbox_stop; rm -rf "$TMP"
}
trap cleanup EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
RESTART="$RBK_ROOT/tests/sandbox/extra/db-slow/fake-restart"
ARGS=(-p dsn="$DSN" -p psql="$PSQL" -p settle=200ms -p terminate_wait=5s -p restart_wait=10s)
sandbox_start "$TMP/sbx"
export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
"$PSQL" "$RBK_TEST_PG" -Xqc "create database $DB" >/dev/null
"$PSQL" "$DSN" -Xq -v ON_ERROR_STOP=1 -c "create table market_data(id serial primary key, symbol text, ts timestamptz default now(), price numeric)" \
	-c "insert into market_data(symbol, price) select 'EURUSD', g from generate_series(1, 1000) g" >/dev/null

sql() { "$PSQL" "$DSN" -XAtqc "$1"; }
case_() { # case_ NAME: a new store; the database's other sessions ended, its statistics reset
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	"$PSQL" "$DSN" -XAtq -c "select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = current_database() and pid != pg_backend_pid()" \
		-c "select pg_stat_reset()" >/dev/null
}
blocker() { # a real blocking transaction in the background; BLOCKER_PID: its backend
	printf 'BEGIN;\nLOCK TABLE market_data IN ACCESS EXCLUSIVE MODE;\nselect pg_sleep(60);\n' | "$PSQL" "$DSN" -X >"$TMP/blocker.out" 2>&1 &
	BPSQL=$!; PIDS+=("$BPSQL")
	for _ in $(seq 100); do
		BLOCKER_PID=$(sql "select l.pid from pg_locks l join pg_stat_activity a using (pid) where a.datname = current_database()
			and a.query = 'select pg_sleep(60);' and l.mode = 'AccessExclusiveLock' and l.granted and l.relation = 'market_data'::regclass")
		[ -n "$BLOCKER_PID" ] && break
		sleep 0.05
	done
}
waiter() { # a query waiting for the blocker's lock, in the background
	"$PSQL" "$DSN" -XAtc "select count(*) from market_data" >"$TMP/waiter.out" 2>&1 &
	WPSQL=$!; PIDS+=("$WPSQL")
	for _ in $(seq 100); do
		[ "$(sql "select count(*) from pg_locks l join pg_stat_activity a using (pid) where not l.granted and a.datname = current_database()")" -ge 1 ] && break
		sleep 0.05
	done
}
alive() { [ "$(sql "select count(*) from pg_stat_activity where pid = $1")" = 1 ]; }
vacuumed() { [ "$(sql "select last_vacuum is not null and last_analyze is not null from pg_stat_user_tables where relname = 'market_data'")" = t ]; }
alert() { "$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])).get("alerts", []); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
nalerts() { alert 'len(a)'; }
# snap RUN: take the run's record (rbk show --json, rbk log --json) for q.
snap() { "$RBK" show "$1" --json >"$TMP/show.$1"; "$RBK" log "$1" --json >"$TMP/log.$1"; }
# q RUN EXPR: EXPR in Python over the record snap took: r (rbk show --json), ev (its events),
# v (the last value of each variable), out[STATE] (a state's last stdout), started (states
# started, in order), prompt (the approval prompts), c (the cache step's JSON)
q() {
	"$PY" - "$TMP/show.$1" "$TMP/log.$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ev = [json.loads(l) for l in open(sys.argv[2])]
v, out, started = {}, {}, []
for e in ev:
    d = e["data"]
    if e["kind"] == "vars_set": v.update(d["vars"])
    if e["kind"] == "step_finished": out[d["state"]] = d["result"].get("stdout") or ""
    if e["kind"] == "step_started": started.append(d["state"])
prompt = [e["data"]["prompt"] for e in ev if e["kind"] == "approval_requested"]
c = json.loads(out["cache"]) if out.get("cache") else {}
print(eval(sys.argv[3]))
PY
}

# --- 1. A blocker; its termination approved. ---------------------------------------------
case_ approve
blocker; waiter
out=$("$RBK" run db-slow "${ARGS[@]}" 2>&1); rc=$?
snap 1
[ $rc = 4 ] && [ "$(q 1 'r["status"] == "waiting" and r["state"] == "approve_terminate"')" = True ] \
	&& ok "blocker found: the run waits for the termination approval (exit 4)" || fail "approve: waits" "rc=$rc $out"
[ "$(q 1 '"pg_terminate_backend('"$BLOCKER_PID"')" in prompt[-1] and prompt[-1].endswith("Its query: select pg_sleep(60);")')" = True ] \
	&& ok "the prompt names the blocking pid ($BLOCKER_PID) and its query" || fail "prompt" "$(q 1 prompt)"
alive "$BLOCKER_PID" && ok "nothing terminated before the approval" || fail "early termination" ""
[ "$(alert '"pid '"$BLOCKER_PID"'" in a[-1]["text"] and "rbk approve 1" in a[-1]["text"]')" = True ] \
	&& ok "a person is alerted with the pid and the command to approve" || fail "blocker alert" "$(alert a)"
report=$(q 1 'out["report"]')
grep -q "backend bloqueante: pid $BLOCKER_PID, bloqueia 1" <<<"$report" && grep -q "locks não concedidos: 1" <<<"$report" \
	&& grep -q "pid $BLOCKER_PID .*select pg_sleep(60);" <<<"$report" \
	&& ok "the investigation reports the active sessions, the waiting lock and its blocker" || fail "report" "$report"
grep -q "pg_stat_statements: not installed" <<<"$report" && grep -q "cache hit ratio: sem leituras" <<<"$report" \
	&& ok "no pg_stat_statements: recorded, the investigation went on; no block read yet: no ratio (no division by zero)" || fail "pgss missing" "$report"
out=$("$RBK" approve 1 --comment "kill it" 2>&1); rc=$?
snap 1
[ $rc = 0 ] && [ "$(q 1 'r["status"]')" = succeeded ] && ok "approved: the run succeeds" || fail "approve: run" "rc=$rc $out"
! alive "$BLOCKER_PID" && ok "the blocking backend is gone from pg_stat_activity" || fail "blocker gone" "$(sql 'select pid, state, query from pg_stat_activity')"
for _ in $(seq 50); do kill -0 "$WPSQL" 2>/dev/null || break; sleep 0.1; done
wait "$WPSQL"; wrc=$?
[ $wrc = 0 ] && [ "$(cat "$TMP/waiter.out")" = 1000 ] && ok "the waiting query completed (count 1000)" || fail "waiter" "rc=$wrc $(cat "$TMP/waiter.out")"
wait "$BPSQL" 2>/dev/null
grep -q "terminating connection due to administrator command" "$TMP/blocker.out" && ok "the blocker's session was ended by pg_terminate_backend" || fail "blocker session" "$(cat "$TMP/blocker.out")"
vacuumed && ok "VACUUM ANALYZE market_data ran" || fail "vacuum" "$(sql "select * from pg_stat_user_tables where relname = 'market_data'")"
[ "$(q 1 'started.count("terminate") == 1 and v["terminations"] == 1 and "restart" not in started')" = True ] \
	&& ok "exactly one backend terminated, no restart" || fail "terminations" "$(q 1 started)"

# --- 2. A blocker; its termination rejected. ---------------------------------------------
case_ reject
blocker; waiter
"$RBK" run db-slow "${ARGS[@]}" >/dev/null 2>&1
out=$("$RBK" reject 1 --comment "that is the nightly load" 2>&1); rc=$?
snap 1
[ $rc = 1 ] && [ "$(q 1 'r["status"]')" = failed ] && ok "rejected: the run fails (exit 1)" || fail "reject: run" "rc=$rc $out"
alive "$BLOCKER_PID" && kill -0 "$BPSQL" 2>/dev/null && ok "rejected: the blocking backend is still alive" || fail "reject: blocker alive" ""
[ "$(alert 'a[-1]["severity"] == "critical" and "NÃO resolveu" in a[-1]["text"] and "bloqueante: '"$BLOCKER_PID"'" in a[-1]["text"]')" = True ] \
	&& ok "rejected: a critical escalation alert names the blocker" || fail "reject: alert" "$(alert a)"
[ "$(q 1 '"terminate" not in started and "vacuum" not in started')" = True ] && ! vacuumed \
	&& ok "rejected: nothing terminated, no VACUUM" || fail "reject: untouched" "$(q 1 started)"
kill "$BPSQL" "$WPSQL" 2>/dev/null

# --- 3. No blocker; pg_stat_statements readable (a view with its columns). ---------------
case_ noblock
sql "create view pg_stat_statements as select * from (values ('select * from market_data where symbol = \$1', 42::bigint, 250.5::float8, 900.25::float8), ('select 1', 1000::bigint, 0.01::float8, 0.2::float8)) v(query, calls, mean_exec_time, max_exec_time)"
sql "select count(*) from market_data" >/dev/null # some blocks hit: a ratio to compute
n=$(nalerts)
out=$("$RBK" run db-slow "${ARGS[@]}" 2>&1); rc=$?
snap 1
[ $rc = 0 ] && [ "$(q 1 'r["status"]')" = succeeded ] && ok "no blocker: the run succeeds" || fail "noblock: run" "rc=$rc $out"
[ "$(q 1 '"approve_terminate" not in started and "terminate" not in started and prompt == []')" = True ] && [ "$(nalerts)" = "$n" ] \
	&& ok "no blocker: no approval, nothing terminated, nobody alerted" || fail "noblock: terminate" "$(q 1 started)"
vacuumed && ok "no blocker: VACUUM ANALYZE ran" || fail "noblock: vacuum" ""
[ "$(q 1 'v["pgss"] == "read" and v["slow_count"] == 1 and v["slowest_ms"] == 250.5 and "250.50 ms (max 900.25 ms, 42 calls): select * from market_data" in out["report"]')" = True ] \
	&& ok "pg_stat_statements read: slowest first, 1 statement above 100 ms" || fail "pgss read" "$(q 1 'out["report"]')"
grep -q "nenhum backend bloqueante" <<<"$(q 1 'out["report"]')" && ok "no blocker: reported as such" || fail "noblock: report" ""
c=$(q 1 'out["cache"]')
[ "$(q 1 'v["cache_ratio"] == round(c["hit"] / (c["hit"] + c["read"]), 4) and c["hit"] > 0 and ("cache hit ratio: %s" % v["cache_ratio"]) in out["report"]')" = True ] \
	&& ok "cache hit ratio computed from pg_statio_user_tables (hit / (hit + read)) and reported" || fail "cache ratio" "$c"

# --- 4. The problem persists: a session busy for too long; pg_stat_statements installed
# (CREATE EXTENSION) but not loaded (shared_preload_libraries). -----------------------------
case_ persist
sql "drop view pg_stat_statements; create extension pg_stat_statements" >/dev/null
printf 'BEGIN;\nselect pg_sleep(60);\n' | "$PSQL" "$DSN" -X >/dev/null 2>&1 &
PIDS+=($!)
sleep 1.1
busy_pid=$(sql "select pid from pg_stat_activity where datname = current_database() and query = 'select pg_sleep(60);'")
ARGS+=(-p max_busy=1s)
out=$("$RBK" run db-slow "${ARGS[@]}" -p restart_cmd="'$RESTART' '$DSN'" 2>&1); rc=$?
snap 1
[ $rc = 4 ] && [ "$(q 1 'r["state"] == "approve_restart" and "terminate" not in started and "vacuum" in started')" = True ] \
	&& ok "persists after VACUUM (a busy session, no blocker): waits for the restart approval" || fail "persist: waits" "rc=$rc $out"
[ "$(q 1 'v["pgss"].startswith("unreadable: ") and "shared_preload_libraries" in v["pgss"]')" = True ] \
	&& ok "pg_stat_statements not loaded: recorded as unreadable, the investigation went on" || fail "pgss unreadable" "$(q 1 'v["pgss"]')"
[ "$(q 1 '"Restart PostgreSQL now" in prompt[-1] and "'"$busy_pid"'" in prompt[-1]')" = True ] && [ "$(alert '"Aprovar o restart" in a[-1]["text"]')" = True ] \
	&& ok "persist: the restart is announced and asked, naming the busy session" || fail "persist: prompt" "$(q 1 prompt)"
out=$("$RBK" reject 1 2>&1); rc=$?
snap 1
[ $rc = 1 ] && ! grep -q restart-db "$SANDBOX/calls.log" 2>/dev/null && alive "$busy_pid" && [ "$(alert 'a[-1]["severity"]')" = critical ] \
	&& ok "restart rejected: not restarted, escalated, the run fails" || fail "persist: reject" "rc=$rc $out"
"$RBK" run db-slow "${ARGS[@]}" -p restart_cmd="echo restart-db noop >>'$SANDBOX/calls.log'" >/dev/null 2>&1
out=$("$RBK" approve 2 2>&1); rc=$?
snap 2
[ $rc = 1 ] && grep -q "restart-db noop" "$SANDBOX/calls.log" && [ "$(q 2 '"recheck_restarted" in started')" = True ] && [ "$(alert 'a[-1]["severity"]')" = critical ] \
	&& ok "restart approved but the problem outlives it: escalated, the run fails" || fail "persist: useless restart" "rc=$rc $out"
"$RBK" run db-slow "${ARGS[@]}" -p restart_cmd="'$RESTART' '$DSN'" >/dev/null 2>&1
out=$("$RBK" approve 3 2>&1); rc=$?
snap 3
[ $rc = 0 ] && grep -q "restart-db $DSN" "$SANDBOX/calls.log" && ! alive "$busy_pid" && [ "$(q 3 'r["status"]')" = succeeded ] \
	&& ok "restart approved: PostgreSQL restarted (stand-in), accepts connections, resolved" || fail "persist: restart" "rc=$rc $out"
