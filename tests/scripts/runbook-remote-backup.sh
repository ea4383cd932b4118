#!/bin/bash
# runbooks/remote-backup.yaml: task=backup runs the backup script and checks
# on the backup host (ssh, a stand-in running here) that its newest file is
# fresh; an old backup or a host that does not answer alerts and fails.
# task=restore downloads the newest .dump.gz (scp stand-in), decompresses it
# and calls pg-restore against the real PostgreSQL test cluster: once its
# approval is given, the deleted rows are back.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
. "$RBK_ROOT/tests/sandbox/extra/pg-backup/pgtest.bash"
trap 'sandbox_stop; pg_cleanup; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
sandbox_start "$TMP/sbx"
export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert" PGMAINT_URL="$RBK_TEST_PG"
X="$RBK_ROOT/tests/sandbox/extra/remote-backup"
R="$TMP/remote/backups/mt5-trading"; mkdir -p "$R" "$TMP/work"
# The backup script: what scripts/remote_backup.sh does, on this machine.
cat >"$TMP/remote_backup.sh" <<'S'
#!/bin/sh
echo "backup $(date -u +%Y%m%d)" | gzip >"$REMOTE/mt5_trading_$(date -u +%Y%m%d).dump.gz"
S
chmod +x "$TMP/remote_backup.sh"
common=(-p ssh="$X/ssh" -p scp="$X/scp" -p host=backup@127.0.0.1 -p remote_dir="$R")
export REMOTE="$R"

export RBK_HOME=$TMP/h1
fresh_store
out=$("$RBK" run remote-backup "${common[@]}" -p backup_cmd="$TMP/remote_backup.sh" 2>&1); rc=$?
[ $rc = 0 ] && [ -s "$R/mt5_trading_$(date -u +%Y%m%d).dump.gz" ] && [ "$(var 1 newest_file)" = "mt5_trading_$(date -u +%Y%m%d).dump.gz" ] \
	&& ok "task backup: the script ran and the backup host's newest file is today's" || fail "backup" "rc=$rc $out"
[ -z "$(alerts)" ] && ok "no alert for a fresh backup" || fail "alerts" "$(alerts)"

out=$("$RBK" run remote-backup "${common[@]}" -p backup_cmd=true 2>&1); rc=$?
[ $rc = 0 ] && ok "a second check the same day passes (the newest file is fresh)" || fail "again" "rc=$rc $out"
touch -d '3 days ago' "$R"/*.dump.gz
out=$("$RBK" run remote-backup "${common[@]}" -p backup_cmd=true 2>&1); rc=$?
[ $rc = 1 ] && alerts | grep -q "remote-backup (backup) FAILED (run 3): newest remote backup mt5_trading_" \
	&& ok "the script did not write a new backup (the newest is 3 days old): alerted, failed" || fail "stale" "rc=$rc $(alerts) $out"
touch "$SANDBOX/ssh.down"
out=$("$RBK" run remote-backup "${common[@]}" -p backup_cmd=true 2>&1); rc=$?
[ $rc = 1 ] && [ "$(alerts | grep -c 'remote-backup (backup) FAILED')" = 2 ] \
	&& ok "the backup host does not answer: alerted, failed" || fail "host down" "rc=$rc $(alerts)"
rm "$SANDBOX/ssh.down"
[ "$(grep -c "^ssh backup@127.0.0.1 cd $R && stat" "$SANDBOX/calls.log")" -ge 4 ] \
	&& ok "the check asks the backup host itself (ssh host 'cd DIR && stat ...')" || fail "ssh calls" "$(cat "$SANDBOX/calls.log")"

# task restore, against the real database.
DB=d_remotebackup_$$
mkdb "$DB" || { fail "test database" "cannot create $DB"; exit 0; }
export PGDATABASE_URL=$(dsn_of "$DB")
pg_dump -F c -d "$PGDATABASE_URL" | gzip >"$R/mt5_trading_20990101.dump.gz" || fail "fixture dump" ""
touch -d '1 hour ago' "$R/mt5_trading_20990101.dump.gz"; touch -d '1 day ago' "$R"/mt5_trading_2026*.dump.gz
q "$DB" "delete from market_data" >/dev/null
export RBK_HOME=$TMP/h2
fresh_store
out=$("$RBK" run remote-backup "${common[@]}" -p task=restore -p work_dir="$TMP/work" -p dbname="$DB" -p docker="$SANDBOX_BIN/docker" 2>&1); rc=$?
child=$("$RBK" history --json | python3 -c 'import json,sys; print([r["run"] for r in json.load(sys.stdin)["runs"] if r["runbook"] == "pg-restore"][0])')
[ $rc = 4 ] && [ -s "$TMP/work/mt5_trading_20990101.dump" ] && [ "$(q "$DB" "select count(*) from market_data")" = 0 ] \
	&& ok "task restore: the newest backup is downloaded and decompressed; pg-restore waits for its approval, nothing dropped yet" \
	|| fail "restore start" "rc=$rc $(ls "$TMP/work") $out"
out=$("$RBK" approve "$child" 2>&1); rc=$?
[ "$(q "$DB" "select count(*) from market_data")" = 100 ] \
	&& ok "approved: the database is restored from the remote backup (100 rows back)" || fail "restored rows" "rc=$rc $out"
[ "$(status 1)" = succeeded ] && [ "$(status "$child")" = succeeded ] \
	&& ok "the restore run and its pg-restore child both succeed" || fail "statuses" "$(status 1) $(status "$child") $("$RBK" log 1 | tail -3)"

export RBK_HOME=$TMP/h3
fresh_store
rm -f "$R"/*.dump.gz
out=$("$RBK" run remote-backup "${common[@]}" -p task=restore -p work_dir="$TMP/work" -p dbname="$DB" 2>&1); rc=$?
[ $rc = 1 ] && alerts | grep -q "remote-backup (restore) FAILED (run 1)" && [ "$(q "$DB" "select count(*) from market_data")" = 100 ] \
	&& ok "no backup on the host: alerted, failed, the database untouched" || fail "no backup" "rc=$rc $(alerts) $out"
