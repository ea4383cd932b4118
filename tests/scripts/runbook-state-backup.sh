#!/bin/bash
# runbooks/state-backup.yaml on real files: the state database is backed up,
# checked, copied to the secondary place and checked there, each place
# keeping the newest `keep`; a secondary place that cannot be written alerts
# a person and fails; old logs are compressed into the archive and removed,
# recent ones left alone.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
trap 'sandbox_stop; chmod -R u+w "$TMP" 2>/dev/null; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
sandbox_start "$TMP/sbx"
export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
D=$TMP/bot
mkdir -p "$D/data" "$D/logs"
python3 - "$D/data/portfolio.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("create table positions(symbol text primary key, qty real)")
c.executemany("insert into positions values(?, ?)", [("BTCUSDT", 0.5), ("ETHUSDT", 2.0)])
c.commit()
PY
common=(-p db="$D/data/portfolio.db" -p backups_dir="$D/backups" -p secondary_dir="$D/secondary" -p keep=2)
alerts() { grep -c '"/alert"' "$SANDBOX/requests.jsonl" 2>/dev/null || echo 0; }

export RBK_HOME=$TMP/h1
fresh_store
out=$("$RBK" run state-backup "${common[@]}" 2>&1); rc=$?
sec=$(ls "$D/secondary" 2>/dev/null)
[ $rc = 0 ] && [ "$(ls "$D/backups" | wc -l)" = 1 ] && [ "$(echo "$sec" | wc -l)" = 1 ] \
	&& ok "task state: one backup in backups_dir and its copy in secondary_dir" || fail "state backup" "rc=$rc $out; $(ls -R "$D")"
rows=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from positions").fetchone()[0])' "$D/secondary/$sec" 2>&1)
[ "$rows" = 2 ] && cmp -s "$D/backups/$sec" "$D/secondary/$sec" \
	&& ok "the secondary copy is the same file and a readable database (2 positions)" || fail "copy content" "$rows"
for i in 1 2 3; do sleep 1.1; "$RBK" run state-backup "${common[@]}" >/dev/null 2>&1 || fail "run $i" "exit $?"; done
[ "$(ls "$D/backups" | wc -l)" = 2 ] && [ "$(ls "$D/secondary" | wc -l)" = 2 ] \
	&& [ "$(ls "$D/backups" | sort | tail -1)" = "$(ls "$D/secondary" | sort | tail -1)" ] \
	&& ok "each place keeps the newest keep=2 backups, the same ones" || fail "pruning" "$(ls "$D/backups") | $(ls "$D/secondary")"
[ "$(alerts)" = 0 ] && ok "no alert while the backups succeed" || fail "alerts" "$(alerts)"

# The secondary place cannot be written: alerted, failed.
mkdir -p "$D/ro"; chmod 0555 "$D/ro"
if [ "$(id -u)" = 0 ]; then ro="$D/ro/file-not-dir"; : >"$ro"; else ro="$D/ro/sub"; fi
out=$("$RBK" run state-backup "${common[@]}" -p secondary_dir="$ro" 2>&1); rc=$?
n=$("$RBK" history --limit 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])')
[ $rc = 1 ] && [ "$(alerts)" = 1 ] && grep -q "state-backup (state) FAILED for $D/data/portfolio.db (run $n)" "$SANDBOX/requests.jsonl" \
	&& ok "a secondary place that cannot be written: a person is told, the run fails (exit 1)" || fail "secondary failure" "rc=$rc alerts=$(alerts) $out"

# A damaged database is never kept as a backup.
printf 'this is not a database' >"$D/data/broken.db"
before=$(ls "$D/secondary" | wc -l)
out=$("$RBK" run state-backup "${common[@]}" -p db="$D/data/broken.db" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(ls "$D/secondary" | wc -l)" = "$before" ] && [ "$(alerts)" = 2 ] \
	&& ok "a database that cannot be backed up: nothing copied, alerted, failed" || fail "broken db" "rc=$rc alerts=$(alerts) $out"

# task logs: old logs compressed into the archive, recent ones kept.
printf 'old line\n' >"$D/logs/bot.log"; touch -d '3 days ago' "$D/logs/bot.log"
printf 'older\n' >"$D/logs/risk.log"; touch -d '2 days ago' "$D/logs/risk.log"
printf 'today\n' >"$D/logs/today.log"; printf 'x\n' >"$D/logs/notes.txt"; touch -d '3 days ago' "$D/logs/notes.txt"
export RBK_HOME=$TMP/h2
fresh_store
out=$("$RBK" run state-backup -p task=logs -p logs_dir="$D/logs" -p archive_dir="$D/archive" 2>&1); rc=$?
stamp=$(date -u +%Y%m%d)
[ $rc = 0 ] && [ ! -e "$D/logs/bot.log" ] && [ ! -e "$D/logs/risk.log" ] && [ -e "$D/logs/today.log" ] && [ -e "$D/logs/notes.txt" ] \
	&& ok "task logs: logs older than a day leave logs_dir; today's log and other files stay" || fail "rotation" "rc=$rc $out; $(ls "$D/logs")"
[ "$(gzip -dc "$D/archive/bot.log.$stamp.gz")" = "old line" ] && [ "$(gzip -dc "$D/archive/risk.log.$stamp.gz")" = "older" ] \
	&& [ "$(ls "$D/archive" | wc -l)" = 2 ] && ok "each rotated log is in the archive, compressed, with its content" || fail "archive" "$(ls "$D/archive")"
out=$("$RBK" run state-backup -p task=logs -p logs_dir="$D/logs" -p archive_dir="$D/archive" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 2 --json | grep -q '"nothing_to_rotate"' \
	&& ok "nothing old enough: the run says so and changes nothing" || fail "nothing to rotate" "rc=$rc $("$RBK" show 2 2>&1 | tail -3)"
next=$("$RBK" schedule next state-backup --from 2026-12-04T23:58:00Z --count 4 2>&1)
[ "$(printf '%s\n' "$next" | awk '{print $5, $7, $8}' | tr '\n' ';')" = "2026-12-05T00:00:00Z 0 (*/5;2026-12-05T00:05:00Z 0 (*/5;2026-12-05T00:10:00Z 0 (*/5;2026-12-05T00:10:00Z 1 (10;" ] \
	&& ok "scheduled every 5 minutes (state) and daily at 00:10 UTC (logs)" || fail "schedule" "$next"
