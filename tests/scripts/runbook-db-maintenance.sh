#!/bin/bash
# runbooks/db-maintenance.yaml against the real PostgreSQL test cluster:
# task=vacuum sets last_vacuum/last_analyze of every table; task=reindex
# rebuilds every index (new relfilenode); task=bloat reports the tables
# largest first; a REINDEX that cannot get its locks and an unreachable
# server alert the webhook and fail the run; the weekly and monthly
# schedules in São Paulo time.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
. "$RBK_ROOT/tests/sandbox/extra/pg-backup/pgtest.bash"
LOCKER=
trap '[ -n "$LOCKER" ] && kill "$LOCKER" 2>/dev/null; sandbox_stop; pg_cleanup; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
sandbox_start "$TMP/sbx"
export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
DB=d_dbmaint_$$
mkdb "$DB" || { fail "test database" "cannot create $DB"; exit 0; }
export PGDATABASE_URL=$(dsn_of "$DB")
export RBK_HOME="$TMP/h1"
fresh_store

# task=vacuum.
t0=$(q "$DB" "select now()")
[ "$(q "$DB" "select count(*) from pg_stat_user_tables where last_vacuum is not null")" = 0 ] || fail "fixture" "tables already vacuumed"
out=$("$RBK" run db-maintenance -p task=vacuum 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status 1)" = succeeded ] && ok "task=vacuum succeeds" || fail "vacuum run" "rc=$rc $out"
n=$(q "$DB" "select count(*) from pg_stat_user_tables where last_vacuum >= '$t0' and last_analyze >= '$t0' and relname in ('market_data', 'trainset_m1')")
[ "$n" = 2 ] && ok "VACUUM ANALYZE: last_vacuum and last_analyze of market_data and trainset_m1 updated" || fail "last_vacuum" "$n"
"$RBK" log 1 --json | grep -q 'stale=0 ' && ok "the runbook checked pg_stat_user_tables itself (no stale table)" || fail "vacuum check" ""

# task=reindex.
before=$(q "$DB" "select relfilenode from pg_class where relname = 'market_data_pkey'")
before2=$(q "$DB" "select relfilenode from pg_class where relname = 'market_data_symbol_ts'")
out=$("$RBK" run db-maintenance -p task=reindex 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status 2)" = succeeded ] && ok "task=reindex succeeds (the database's owner runs it)" || fail "reindex run" "rc=$rc $out"
[ "$(q "$DB" "select relfilenode from pg_class where relname = 'market_data_pkey'")" != "$before" ] \
	&& [ "$(q "$DB" "select relfilenode from pg_class where relname = 'market_data_symbol_ts'")" != "$before2" ] \
	&& ok "REINDEX DATABASE rebuilt the indexes (new relfilenodes)" || fail "reindexed" "$before"
"$RBK" log 2 --json | grep -q 'unchanged=0' && "$RBK" log 2 --json | grep -q 'invalid=0' && ok "the runbook checked: every index rebuilt, none invalid" || fail "reindex check" ""

# task=bloat.
out=$("$RBK" run db-maintenance -p task=bloat 2>&1); rc=$?
[ $rc = 0 ] && [[ $(var 3 largest) == "public.market_data |"* ]] && ok "task=bloat: sizes reported, largest first (market_data)" || fail "bloat" "rc=$rc $(var 3 largest)"
"$RBK" log 3 --json | grep -q 'public.trainset_m1 |' && ok "the report lists every table" || fail "bloat list" ""
[ -z "$(alerts)" ] && ok "no alert on success" || fail "alert on success" "$(alerts)"

# REINDEX cannot get its locks (a session holds market_data): alert, fail.
export RBK_HOME="$TMP/h2"
fresh_store
psql -X -q -d "$PGDATABASE_URL" -c "begin; lock table market_data in access exclusive mode; select pg_sleep(20)" >/dev/null 2>&1 &
LOCKER=$!
for _ in $(seq 50); do [ "$(q "$DB" "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'market_data' and l.mode = 'AccessExclusiveLock' and l.granted")" = 1 ] && break; sleep 0.1; done
out=$(PGDATABASE_URL="$PGDATABASE_URL&options=-c%20lock_timeout%3D300ms" "$RBK" run db-maintenance -p task=reindex 2>&1); rc=$?
kill "$LOCKER" 2>/dev/null; wait "$LOCKER" 2>/dev/null; LOCKER=
psql -X -q -d "$RBK_TEST_PG" -c "select pg_terminate_backend(pid) from pg_stat_activity where datname = '$DB' and query like '%pg_sleep(20)%'" >/dev/null
[ $rc = 1 ] && [ "$(status 1)" = failed ] && "$RBK" log 1 | grep -q "reindex -> alert (failure)" && ok "REINDEX fails (lock timeout): the run fails (exit 1)" || fail "reindex failure" "rc=$rc $out"
alerts | grep -q "db-maintenance task=reindex FAILED on $DB (run 1)" && ok "REINDEX failure: the webhook is alerted" || fail "reindex alert" "$(alerts)"

# Server unreachable.
export RBK_HOME="$TMP/h3"
fresh_store
out=$(PGDATABASE_URL="postgresql:///$DB?host=$TMP/no-such-socket-dir" "$RBK" run db-maintenance -p task=vacuum 2>&1); rc=$?
[ $rc = 1 ] && alerts | tail -1 | grep -q "task=vacuum FAILED on ? (run 1)" && ok "server unreachable: alert, fail (exit 1)" || fail "down" "rc=$rc $(alerts | tail -1)"

# Schedules: Sundays 03:00 (vacuum), the 1st at 03:30 (reindex), São Paulo.
n=$("$RBK" schedule next db-maintenance --from 2026-02-01T00:00:00Z --count 3 --json 2>&1)
grep -q '"entry": 0, "utc": "2026-02-01T06:00:00Z"' <<<"$n" && grep -q '"entry": 1, "utc": "2026-02-01T06:30:00Z"' <<<"$n" \
	&& grep -q '"entry": 0, "utc": "2026-02-08T06:00:00Z"' <<<"$n" \
	&& ok "schedules: Sunday 03:00 and the 1st 03:30, America/Sao_Paulo" || fail "schedule" "$n"
grep -q 'params: {task: vacuum}' "$RBK_ROOT/runbooks/db-maintenance.yaml" && grep -q 'params: {task: reindex}' "$RBK_ROOT/runbooks/db-maintenance.yaml" \
	&& ok "the weekly entry vacuums, the monthly one reindexes" || fail "schedule params" ""
