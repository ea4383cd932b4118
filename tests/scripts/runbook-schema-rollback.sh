#!/bin/bash
# runbooks/schema-rollback.yaml against the real PostgreSQL test cluster: a
# schema dump is taken, then a "migration" adds a column and a table and
# more rows. The rollback waits for an approval (nothing changed before);
# approved, the column and the table are gone from public, every row is
# kept, the sequence goes on, the old schema is kept aside, the services
# restart. Rejected: nothing changes. A dump that fails to apply rolls the
# whole transaction back; an unreachable server, a bad file and a missing
# expected table alert the webhook and fail the run.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
. "$RBK_ROOT/tests/sandbox/extra/pg-backup/pgtest.bash"
trap 'sandbox_stop; pg_cleanup; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
sandbox_start "$TMP/sbx"
export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
DB=d_schemarb_$$
mkdb "$DB" || { fail "test database" "cannot create $DB"; exit 0; }
export PGDATABASE_URL=$(dsn_of "$DB")
S="$TMP/schema_20251018.sql"
pg_dump --schema-only -f "$S" -d "$PGDATABASE_URL" || { fail "schema dump" ""; exit 0; }
migrate() { # the change to roll back: a column, a table, new rows
	q "$DB" "alter table market_data add column spread numeric not null default 0.0002;
		create table signals (id serial primary key, symbol text, side text); insert into signals (symbol, side) values ('EURUSD', 'buy');
		insert into market_data (symbol, ts, close) select 'USDJPY', now(), 150 from generate_series(1, 5)" >/dev/null
}
has_col() { q "$DB" "select count(*) from information_schema.columns where table_schema = '${2:-public}' and table_name = 'market_data' and column_name = '$1'"; }
has_table() { q "$DB" "select count(*) from information_schema.tables where table_schema = '${2:-public}' and table_name = '$1'"; }
P=(-p schema_file="$S" -p docker="$SANDBOX_BIN/docker")
scenario() { export RBK_HOME="$TMP/$1"; fresh_store; : >"$SANDBOX/calls.log"; }
migrate

# Rejected: nothing changes.
scenario reject
out=$("$RBK" run schema-rollback "${P[@]}" 2>&1); rc=$?
[ $rc = 4 ] && [ "$(status 1)" = waiting ] && ok "the rollback waits for an approval (exit 4)" || fail "wait" "rc=$rc $out"
out=$("$RBK" reject 1 2>&1); rc=$?
[ $rc = 1 ] && [ "$(has_col spread)" = 1 ] && [ "$(has_table signals)" = 1 ] && [ ! -s "$SANDBOX/calls.log" ] \
	&& ok "rejected: exit 1, the column and table stay, services untouched" || fail "reject" "rc=$rc $out"
alerts | tail -1 | grep -q "not approved (run 1): nothing was changed" && ok "rejected: the channel is told" || fail "reject alert" "$(alerts)"

# A dump that fails half-way: the whole transaction is rolled back.
scenario broken
sed 's/^CREATE TABLE public.trainset_m1 (/CREATE TABLE public.trainset_m1 (nonsense,/' "$S" >"$TMP/broken.sql"
"$RBK" run schema-rollback "${P[@]}" -p schema_file="$TMP/broken.sql" >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = failed ] && ok "a dump that fails to apply: the run fails (exit 1)" || fail "broken" "rc=$rc $out"
[ "$(has_col spread)" = 1 ] && [ "$(has_table signals)" = 1 ] && [ "$(q "$DB" "select count(*) from pg_namespace where nspname like 'public_pre_rollback%'")" = 0 ] \
	&& [ "$(q "$DB" 'select count(*) from market_data')" = 105 ] && ok "ON_ERROR_STOP + one transaction: the schema is exactly as before" || fail "broken state" ""
alerts | tail -1 | grep -q "FAILED (run 1): nothing was changed" && ! grep -q restart "$SANDBOX/calls.log" \
	&& ok "the webhook is alerted, services not restarted" || fail "broken alert" "$(alerts | tail -1)"

# Approved: the schema goes back, the rows stay.
scenario apply
"$RBK" run schema-rollback "${P[@]}" >/dev/null 2>&1
[ "$(has_col spread)" = 1 ] && ok "before the approval the schema is untouched" || fail "before" ""
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status 1)" = succeeded ] && ok "approved: the rollback succeeds (exit 0)" || fail "apply" "rc=$rc $out"
[ "$(has_col spread)" = 0 ] && ok "the column added after the dump is gone" || fail "column" "$(has_col spread)"
[ "$(has_table signals)" = 0 ] && ok "the table added after the dump is gone from public" || fail "table" ""
[ "$(q "$DB" 'select count(*) from market_data')" = 105 ] && [ "$(q "$DB" 'select count(*) from trainset_m1')" = 50 ] \
	&& ok "every row kept: market_data 105 (incl. the new ones), trainset_m1 50" || fail "rows" "$(q "$DB" 'select count(*) from market_data')"
[ "$(q "$DB" "select nextval('market_data_id_seq')")" = 106 ] && ok "the sequence goes on from where it was (106)" || fail "sequence" ""
[ "$(q "$DB" "select count(*) from pg_indexes where schemaname = 'public' and indexname = 'market_data_symbol_ts'")" = 1 ] && ok "indexes rebuilt from the dump" || fail "index" ""
aside=$(var 1 aside)
[[ $aside =~ ^public_pre_rollback_[0-9]+$ ]] && [ "$(has_col spread "$aside")" = 1 ] && [ "$(has_table signals "$aside")" = 1 ] \
	&& ok "the previous schema is kept as public_pre_rollback_<time>, with the column and the table" || fail "aside" "$aside"
grep -qx "docker compose restart api ml" "$SANDBOX/calls.log" && ok "dependent services api ml restarted" || fail "restart" "$(cat "$SANDBOX/calls.log")"
"$RBK" log 1 --json | grep -q 'tables: market_data trainset_m1' && ok "verify lists the tables (\\dt)" || fail "verify list" ""

# Missing expected table, keep_aside=false: alert after the change.
scenario missing
migrate
"$RBK" run schema-rollback "${P[@]}" -p keep_aside=false -p expected_tables="market_data trainset_m1 signals" >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 1 ] && [ "$(has_col spread)" = 0 ] && [ "$(q "$DB" "select count(*) from pg_namespace where nspname like 'public_pre_rollback%'")" = 1 ] \
	&& ok "keep_aside=false: rolled back, the previous schema dropped (only the first one kept)" || fail "keep_aside" "rc=$rc"
alerts | tail -1 | grep -q "FAILED (run 1): schema public WAS rolled back" && "$RBK" log 1 | grep -q "verify -> alert (failure)" \
	&& ok "an expected table missing after the rollback: alert, fail" || fail "missing alert" "$(alerts | tail -1)"

# Bad file, unreachable server: alert before anything.
scenario bad
out=$("$RBK" run schema-rollback "${P[@]}" -p schema_file="$TMP/none.sql" 2>&1); rc=$?
[ $rc = 1 ] && alerts | tail -1 | grep -q "nothing was changed" && ok "missing schema file: alert, fail (exit 1)" || fail "bad file" "rc=$rc"
scenario down
out=$(PGDATABASE_URL="postgresql:///$DB?host=$TMP/no-such-socket-dir" "$RBK" run schema-rollback "${P[@]}" 2>&1); rc=$?
[ $rc = 1 ] && "$RBK" log 1 | grep -q "connect -> alert (failure)" && alerts | tail -1 | grep -q "FAILED (run 1)" \
	&& ok "server unreachable: alert, fail (exit 1)" || fail "down" "rc=$rc $out"
