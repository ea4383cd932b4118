#!/bin/bash
# runbooks/pg-restore.yaml against the real PostgreSQL test cluster.
# mode=full: waits for an approval with nothing touched; approved, it stops
# the services, drops and recreates the database and restores the dump (the
# deleted rows come back), starts the services; rejected, nothing changes.
# A bad dump file or an unreachable server alert before anything is
# stopped; a dump that fails to restore after the DROP alerts with the file
# to restore by hand, services left stopped. mode=table: one table's rows
# from a data-only .sql or from a custom dump, other tables untouched; a
# load that fails is rolled back.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
. "$RBK_ROOT/tests/sandbox/extra/pg-backup/pgtest.bash"
trap 'sandbox_stop; pg_cleanup; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
sandbox_start "$TMP/sbx"
export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert" PGMAINT_URL="$RBK_TEST_PG"
DB=d_pgrestore_$$
mkdb "$DB" || { fail "test database" "cannot create $DB"; exit 0; }
export PGDATABASE_URL=$(dsn_of "$DB")
B="$TMP/backups"; mkdir -p "$B"
pg_dump -F c -f "$B/full.dump" -d "$PGDATABASE_URL" && pg_dump -t market_data --data-only -f "$B/market_data.sql" -d "$PGDATABASE_URL" \
	|| { fail "fixture dumps" ""; exit 0; }
P=(-p dbname="$DB" -p docker="$SANDBOX_BIN/docker")
scenario() { export RBK_HOME="$TMP/$1"; fresh_store; : >"$SANDBOX/calls.log"; }
oid() { psql -X -A -t -q -d "$RBK_TEST_PG" -c "select oid from pg_database where datname = '$DB'"; }

# Full restore, approved.
scenario full
q "$DB" "delete from market_data; delete from trainset_m1 where ts > '2025-10-18 00:20+00'" >/dev/null
oid0=$(oid)
out=$("$RBK" run pg-restore "${P[@]}" -p mode=full -p dump_file="$B/full.dump" 2>&1); rc=$?
[ $rc = 4 ] && [ "$(status 1)" = waiting ] && ok "full restore waits for an approval (exit 4)" || fail "full wait" "rc=$rc $out"
[ ! -s "$SANDBOX/calls.log" ] && [ "$(oid)" = "$oid0" ] && ok "before the approval: services not stopped, database not dropped" || fail "before approval" "$(cat "$SANDBOX/calls.log")"
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status 1)" = succeeded ] && ok "approved: the restore succeeds (exit 0)" || fail "full approve" "rc=$rc $out"
[ "$(q "$DB" 'select count(*) from market_data')" = 100 ] && [ "$(q "$DB" 'select count(*) from trainset_m1')" = 50 ] \
	&& ok "the deleted rows are back: market_data 100, trainset_m1 50" || fail "rows back" "$(q "$DB" 'select count(*) from market_data')"
[ "$(oid)" != "$oid0" ] && ok "the database was dropped and created again (new oid)" || fail "recreated" "$(oid) $oid0"
[ "$(q "$DB" "select count(*) from pg_indexes where indexname = 'market_data_symbol_ts'")" = 1 ] && ok "indexes restored too" || fail "index" ""
[ "$(sed -n 1p "$SANDBOX/calls.log")" = "docker compose stop api ml" ] && [ "$(sed -n 2p "$SANDBOX/calls.log")" = "docker compose start api ml" ] \
	&& ok "services api ml stopped before, started after" || fail "docker calls" "$(cat "$SANDBOX/calls.log")"
[ "$(var 1 rows)" = 100 ] && ok "validated: SELECT count(*) FROM market_data = 100" || fail "validate var" "$(var 1 rows)"
[ -z "$(alerts)" ] && ok "no alert on success" || fail "alert on success" "$(alerts)"

# Full restore, rejected: nothing changes.
scenario reject
q "$DB" "insert into market_data (symbol, ts, close) values ('MARKER', now(), 0)" >/dev/null
oid0=$(oid)
"$RBK" run pg-restore "${P[@]}" -p mode=full -p dump_file="$B/full.dump" >/dev/null 2>&1
out=$("$RBK" reject 1 --comment "not now" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = failed ] && ok "rejected: the run fails (exit 1)" || fail "reject" "rc=$rc $out"
[ "$(oid)" = "$oid0" ] && [ "$(q "$DB" "select count(*) from market_data")" = 101 ] && [ ! -s "$SANDBOX/calls.log" ] \
	&& ok "rejected: database not dropped, its rows (and the new one) there, services untouched" || fail "reject effects" "$(cat "$SANDBOX/calls.log")"
alerts | grep -q "not approved (run 1): nothing was changed" && ok "rejected: the channel is told nothing changed" || fail "reject alert" "$(alerts)"

# A bad dump file: alert before anything is stopped or dropped.
scenario badfile
echo "not a dump" >"$B/bad.dump"
out=$("$RBK" run pg-restore "${P[@]}" -p mode=full -p dump_file="$B/bad.dump" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(oid)" = "$oid0" ] && [ ! -s "$SANDBOX/calls.log" ] && ok "bad dump file: fails at once (exit 1), nothing stopped or dropped" || fail "bad file" "rc=$rc $out"
alerts | tail -1 | grep -q "FAILED (run 1): nothing was changed" && ok "bad dump file: the webhook is alerted" || fail "bad file alert" "$(alerts | tail -1)"

# The server is unreachable: alert, nothing stopped.
scenario down
out=$(PGDATABASE_URL="postgresql:///$DB?host=$TMP/no-such-socket-dir" "$RBK" run pg-restore "${P[@]}" -p mode=full -p dump_file="$B/full.dump" 2>&1); rc=$?
[ $rc = 1 ] && [ ! -s "$SANDBOX/calls.log" ] && alerts | tail -1 | grep -q "FAILED (run 1): nothing was changed" \
	&& ok "server unreachable: alert, fail (exit 1), services untouched" || fail "down" "rc=$rc $(alerts | tail -1)"
"$RBK" log 1 | grep -q "check_target -> alert (failure)" && ok "server unreachable: failure edge from check_target" || fail "down edge" "$("$RBK" log 1 | tail -4)"

# The restore fails after the DROP (a truncated dump whose table of
# contents still reads): alert naming the file, services stay stopped.
scenario broken
head -c "$(($(stat -c %s "$B/full.dump") - 300))" "$B/full.dump" >"$B/truncated.dump"
"$RBK" run pg-restore "${P[@]}" -p mode=full -p dump_file="$B/truncated.dump" >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = failed ] && ok "restore fails after the drop: the run fails (exit 1)" || fail "broken" "rc=$rc $out"
alerts | tail -1 | grep -q "DATABASE $DB WAS DROPPED.*restore it by hand from $B/truncated.dump" \
	&& ok "the alert says the database was dropped and names the dump to restore by hand" || fail "broken alert" "$(alerts | tail -1)"
grep -q "stop api ml" "$SANDBOX/calls.log" && ! grep -q "start api ml" "$SANDBOX/calls.log" && ok "services stay stopped" || fail "broken services" "$(cat "$SANDBOX/calls.log")"
[ "$(q "$DB" "select count(*) from pg_tables where schemaname = 'public'")" = 0 ] && ok "pg_restore ran in one transaction: nothing half restored" || fail "half" ""
# Put it back for the partial restores.
pg_restore --exit-on-error -d "$PGDATABASE_URL" "$B/full.dump" >/dev/null 2>&1

# Partial restore from a data-only .sql: market_data only.
scenario table
q "$DB" "delete from market_data where id > 70; delete from trainset_m1" >/dev/null
out=$("$RBK" run pg-restore "${P[@]}" -p mode=table -p table=market_data -p dump_file="$B/market_data.sql" 2>&1); rc=$?
[ $rc = 4 ] && [ "$(q "$DB" 'select count(*) from market_data')" = 70 ] && ok "table restore waits for an approval, table untouched" || fail "table wait" "rc=$rc $out"
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 0 ] && [ "$(q "$DB" 'select count(*) from market_data')" = 100 ] && [ "$(q "$DB" 'select count(distinct id) from market_data')" = 100 ] \
	&& ok "psql < market_data.sql: market_data has its 100 rows again (no duplicates)" || fail "table restore" "rc=$rc $out"
[ "$(q "$DB" 'select count(*) from trainset_m1')" = 0 ] && [ ! -s "$SANDBOX/calls.log" ] && ok "only that table: trainset_m1 untouched, services untouched" || fail "other table" ""

# Partial restore from the custom dump (pg_restore -t).
scenario table_dump
q "$DB" "delete from market_data where id <= 10" >/dev/null
"$RBK" run pg-restore "${P[@]}" -p mode=table -p table=market_data -p dump_file="$B/full.dump" >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 0 ] && [ "$(q "$DB" 'select count(*) from market_data')" = 100 ] && [ "$(q "$DB" 'select count(*) from trainset_m1')" = 0 ] \
	&& ok "pg_restore -t market_data from the full dump: 100 rows, trainset_m1 untouched" || fail "table from dump" "rc=$rc $out"

# A load that fails is rolled back: the table keeps its rows.
scenario table_bad
q "$DB" "delete from market_data where id > 80" >/dev/null
sed 's/^\(5\t.*\)$/\1\textra/' "$B/market_data.sql" >"$B/market_data_bad.sql"
"$RBK" run pg-restore "${P[@]}" -p mode=table -p table=market_data -p dump_file="$B/market_data_bad.sql" >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 1 ] && [ "$(q "$DB" 'select count(*) from market_data')" = 80 ] && ok "a load that fails: exit 1, the TRUNCATE rolled back (80 rows kept)" || fail "table bad" "rc=$rc $(q "$DB" 'select count(*) from market_data')"
alerts | tail -1 | grep -q "rolled back: public.market_data keeps its old rows" && ok "the alert says the table kept its rows" || fail "table bad alert" "$(alerts | tail -1)"
