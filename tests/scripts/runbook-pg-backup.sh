#!/bin/bash
# runbooks/pg-backup.yaml against the real PostgreSQL test cluster: a full
# backup (custom format) that pg_restore reads back into another database
# with its 100 rows, a schema-only dump (no rows), one table's data only;
# failures (a table that does not exist, the server unreachable) alert the
# webhook, fail the run and leave no file behind; the 04:00 schedule.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
. "$RBK_ROOT/tests/sandbox/extra/pg-backup/pgtest.bash"
trap 'sandbox_stop; pg_cleanup; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
sandbox_start "$TMP/sbx"
export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
DB=d_pgbackup_$$
mkdb "$DB" || { fail "test database" "cannot create $DB"; exit 0; }
export PGDATABASE_URL=$(dsn_of "$DB")
B="$TMP/backups"
day=$(date +%Y%m%d)

# Full backup: custom format, readable by pg_restore, all the rows in it.
export RBK_HOME="$TMP/h1"
fresh_store
out=$("$RBK" run pg-backup -p kind=full -p backups_dir="$B" 2>&1); rc=$?
f=$(ls "$B"/"${DB}"_*.dump 2>/dev/null)
[ $rc = 0 ] && [ "$(status 1)" = succeeded ] && ok "kind=full: the run succeeds" || fail "full run" "rc=$rc $out"
[[ $(basename "$f") =~ ^${DB}_${day}_[0-9]{6}\.dump$ ]] && ok "full backup named <db>_YYYYmmdd_HHMMSS.dump" || fail "full name" "$(ls "$B")"
[ "$(var 1 backup_file)" = "$f" ] && ok "the backup's path is the run's variable backup_file" || fail "backup_file var" "$(var 1 backup_file) vs $f"
pg_restore --list "$f" 2>&1 | grep -q "TABLE DATA public market_data" && pg_restore --list "$f" | grep -q "TABLE DATA public trainset_m1" \
	&& ok "pg_restore --list reads it: data of market_data and trainset_m1" || fail "pg_restore list" "$(pg_restore --list "$f" 2>&1 | tail -3)"
mkdb_empty() { psql -X -q -d "$RBK_TEST_PG" -c "create database \"$1\"" >/dev/null && PG_DBS+=("$1"); }
mkdb_empty "${DB}_copy"
pg_restore --exit-on-error -d "$(dsn_of "${DB}_copy")" "$f" >/dev/null 2>&1 \
	&& [ "$(q "${DB}_copy" 'select count(*) from market_data')" = 100 ] && [ "$(q "${DB}_copy" 'select count(*) from trainset_m1')" = 50 ] \
	&& ok "restored into another database: 100 market_data rows, 50 trainset_m1 rows" || fail "restore copy" "$(q "${DB}_copy" 'select count(*) from market_data')"
[ -z "$(ls "$B"/*.part 2>/dev/null)" ] && ok "no .part file left" || fail "part file" "$(ls "$B")"

# Schema only.
out=$("$RBK" run pg-backup -p kind=schema -p backups_dir="$B" 2>&1); rc=$?
s="$B/schema_$day.sql"
[ $rc = 0 ] && [ -s "$s" ] && ok "kind=schema: schema_YYYYmmdd.sql written" || fail "schema run" "rc=$rc $(ls "$B") $out"
grep -q "^CREATE TABLE public.market_data " "$s" && grep -q "^CREATE TABLE public.trainset_m1 " "$s" && ! grep -q "^COPY " "$s" \
	&& ok "the schema dump creates both tables and holds no rows" || fail "schema content" "$(grep -c . "$s")"

# One table's data only.
out=$("$RBK" run pg-backup -p kind=table -p table=market_data -p backups_dir="$B" 2>&1); rc=$?
t="$B/market_data_$day.sql"
rows=$(sed -n '/^COPY public.market_data /,/^\\\.$/p' "$t" | grep -vc -e '^COPY' -e '^\\\.$')
[ $rc = 0 ] && [ "$rows" = 100 ] && ! grep -q trainset_m1 "$t" && ! grep -q "^CREATE TABLE" "$t" \
	&& ok "kind=table: market_data_YYYYmmdd.sql holds its 100 rows only (no schema, no other table)" || fail "table dump" "rc=$rc rows=$rows $out"
[ "$(var 3 backup_file)" = "$t" ] && ok "kind=table reports its file" || fail "table var" "$(var 3 backup_file)"
[ -z "$(alerts)" ] && ok "no alert on success" || fail "alerts on success" "$(alerts)"

# pg_dump fails (no such table): alert, failed run, no file.
out=$("$RBK" run pg-backup -p kind=table -p table=no_such_table -p backups_dir="$B" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 4)" = failed ] && ok "pg_dump fails (no such table): the run fails (exit 1)" || fail "pg_dump failure" "rc=$rc $out"
alerts | grep -q "pg-backup FAILED (kind=table, db $DB, run 4)" && ok "the failure alerts the webhook" || fail "pg_dump alert" "$(alerts)"
[ -z "$(ls "$B"/no_such_table* 2>/dev/null)" ] && ok "no partial file is left behind" || fail "partial file" "$(ls "$B")"
"$RBK" log 4 | grep -q "dump -> alert (failure)" && ok "the log shows the failure edge from the dump" || fail "log edge" "$("$RBK" log 4 | tail -5)"

# The server is unreachable: alert, failed run, nothing written.
export RBK_HOME="$TMP/h2"
fresh_store
before=$(ls "$B" | wc -l)
out=$(PGDATABASE_URL="postgresql:///$DB?host=$TMP/no-such-socket-dir&user=nobody" "$RBK" run pg-backup -p kind=full -p backups_dir="$B" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = failed ] && ok "server unreachable: the run fails (exit 1)" || fail "unreachable" "rc=$rc $out"
alerts | grep -q "pg-backup FAILED (kind=full, db ?, run 1)" && ok "server unreachable: the webhook is alerted" || fail "unreachable alert" "$(alerts)"
[ "$(ls "$B" | wc -l)" = "$before" ] && ok "server unreachable: no file written" || fail "unreachable files" "$(ls "$B")"
"$RBK" show 1 --json | grep -q "$TMP/no-such-socket-dir" && fail "dsn secret" "the dsn shows in rbk show" || ok "the dsn (secret) is not shown by rbk show"

# The schedule: daily at 04:00 São Paulo, kind=full.
n=$("$RBK" schedule next pg-backup --count 1 --json 2>&1)
[[ $n == *'04:00:00 -03'* ]] && [[ $n == *America/Sao_Paulo* ]] && ok "scheduled daily at 04:00 America/Sao_Paulo" || fail "schedule" "$n"
grep -A3 'cron: "0 4 \* \* \*"' "$RBK_ROOT/runbooks/pg-backup.yaml" | grep -q "params: {kind: full}" && ok "the scheduled run is kind=full" || fail "schedule params" ""
