#!/bin/bash
# runbooks/backtest-checklist.yaml in the sandbox, on real SQLite databases made by
# python3 (tests/sandbox/extra/backtest-checklist/fixture.py), real processes (sleep,
# a busy loop, a python holding memory) with their pid and heartbeat files, and the
# sandbox webhook. Each item of the checklist, its passing and its failing branches:
# data_update (completion line, late, job failed, no candle of today), data_validation
# (staleness, coverage, continuity), sentiment (sentimento_mercado, FRED macro table),
# health_probe (dead, stale heartbeat, CPU, memory, the 23:30-01:30 backtest window's
# limits), weekly_backup (backup, db_backup_YYYYMMDD.db, dry restore on staging, VACUUM,
# storage) and integrity_check; then the schedule's UTC times and a scheduler catch-up fire.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
FIX="$RBK_ROOT/tests/sandbox/extra/backtest-checklist/fixture.py"
SQLITEFIX="$RBK_ROOT/tests/sandbox/extra/db-restore/sqlitefix.py"
sandbox_start "$TMP/sandbox"
export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
TODAY=$(date -u +%Y-%m-%d)
# The databases, made once in one python3 process; each case copies the one it needs.
FX="$TMP/fixtures"
mkdir -p "$FX"
python3 "$FIX" batch <<EOF
candles $FX/fresh.db
side $FX/fresh.db sentiment=today macro=today
candles $FX/stale30.db h4=yesterday
candles $FX/dv_ok.db symbols=57 gap=SYM01USDT:h4:1 gap=SYM02USDT:h1:1
candles $FX/dv_stale.db h4=25 h1=7
candles $FX/dv_cov.db symbols=57 stale=SYM03USDT
candles $FX/dv_gap.db gap=SYM05USDT:h4:2 gap=SYM07USDT:h1:3
side $FX/se_bad.db sentiment=yesterday
side $FX/se_macro.db sentiment=today macro=yesterday
candles $FX/wb.db
side $FX/wb.db sentiment=today macro=today
pad $FX/wb.db 4
drop $FX/wb.db pad
EOF
YESTERDAY=$(date -u -d yesterday +%Y-%m-%d)

n=0
case_() { # case_ NAME: a fresh home and store, no alert yet; D is the case's directory
	n=$((n + 1))
	export RBK_HOME="$TMP/home$n"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	D="$TMP/$1"
	mkdir -p "$D/db" "$D/run" "$D/logs"
	: >"$SANDBOX/requests.jsonl"
	CASE=$1
}
run() { # run TASK [ARGS...]: RC, OUT, ID (the run's id)
	local t=$1; shift
	OUT=$("$RBK" run backtest-checklist -p task="$t" -p db="$D/db/crypto_agent.db" -p log="$D/logs/backtest_24h7.log" \
		-p pidfile="$D/run/backtest.pid" -p heartbeat="$D/run/backtest.heartbeat" -p cpu_sample=300ms \
		-p backups_dir="$D/backups" -p dated_dir="$D" -p staging_db="$D/staging.db" -p storage_dir="$D/db" "$@" 2>&1)
	RC=$?
	ID=$(printf '%s\n' "$OUT" | sed -n 's/.* run \([0-9]*\) started .*/\1/p' | head -1)
}
# The webhook's requests (JSON lines; the alert's text JSON-encoded).
alerts() { grep -F '"path": "/alert"' "$SANDBOX/requests.jsonl" 2>/dev/null | sed 's/.*"text": "\(.*\)"}, "auth".*/\1/'; }
nalerts() { alerts | grep -c .; }
show() { # "STATUS STATE" of run ID
	local j; j=$("$RBK" show "${ID:-0}" --json 2>/dev/null)
	echo "$(sed -n 's/^{"run":[0-9]*,"runbook":"[^"]*","status":"\([^"]*\)".*/\1/p' <<<"$j") $(sed -n 's/.*,"state":"\([^"]*\)".*/\1/p' <<<"$j")"
}
expect() { # expect NAME RC "STATUS STATE"
	local s; s=$(show)
	[[ $RC == "$2" && $s == "$3" ]] && ok "$CASE: $1" || fail "$CASE: $1" "rc=$RC show='$s'; $(printf '%s' "$OUT" | tail -3 | tr '\n' ' ')"
}
alerted() { # alerted NAME REGEX...: exactly one alert, matching every REGEX
	local a r; a=$(alerts)
	[ "$(nalerts)" = 1 ] || { fail "$CASE: $1" "$(nalerts) alerts: $a"; return; }
	for r in "${@:2}"; do grep -qE -- "$r" <<<"$a" || { fail "$CASE: $1" "no /$r/ in: $a"; return; }; done
	ok "$CASE: $1"
}
no_alert() { [ "$(nalerts)" = 0 ] && ok "$CASE: no alert" || fail "$CASE: no alert" "$(alerts)"; }
daemon() { # daemon CMD...: start a process with its pid file and a fresh heartbeat (Unix time)
	"$@" &
	PIDS+=($!)
	echo $! >"$D/run/backtest.pid"
	date +%s >"$D/run/backtest.heartbeat"
}
use() { cp "$FX/$1.db" "$D/db/crypto_agent.db"; }
rows() { sqlite3 "$1" "select (select count(*) from ohlcv_h4) + (select count(*) from ohlcv_h1)"; }
check_db() { sqlite3 "$1" "pragma integrity_check" 2>&1 | head -1; }

# ---- 00:30 Data Update Job --------------------------------------------------------------
case_ du-ok
use fresh
echo "$TODAY 00:31:02,120 - collector - INFO - data update complete: 60 symbols" >"$D/logs/backtest_24h7.log"
run data_update -p late_after=2s -p poll_every=200ms
expect "today's completion line and today's H4 candle: succeeded" 0 "succeeded du_ok"
no_alert
"$RBK" log "$ID" --json | grep -q "$SANDBOX_URL" && fail "the webhook (a secret) is not recorded" "found in the log" || ok "the webhook (a secret) is not recorded"

case_ du-late
use fresh
echo "$YESTERDAY 00:31:02,120 - collector - INFO - data update complete: 60 symbols" >"$D/logs/backtest_24h7.log"
start=$(date +%s%N)
run data_update -p late_after=1s -p poll_every=200ms
el=$((($(date +%s%N) - start) / 1000000))
expect "only yesterday's completion line: failed after late_after" 1 "failed failed"
alerted "alert: not complete 1s after the start" "data update: NOT complete 1s after" "no completion line of today"
[ "$el" -ge 1000 ] && ok "$CASE: it polled until the deadline (${el} ms)" || fail "$CASE: deadline" "${el} ms"

case_ du-completes-late
use fresh
echo "$YESTERDAY 00:31:02,120 - collector - INFO - data update complete" >"$D/logs/backtest_24h7.log"
(sleep 0.8; echo "$TODAY 00:33:40,001 - collector - INFO - Data update completed: 60 symbols" >>"$D/logs/backtest_24h7.log") &
run data_update -p late_after=10s -p poll_every=200ms
expect "the completion line appears while polling: succeeded" 0 "succeeded du_ok"
no_alert

case_ du-job-failed
use fresh
echo "$TODAY 00:30:40,001 - collector - ERROR - data update failed: HTTP 429 from Binance" >"$D/logs/backtest_24h7.log"
run data_update -p late_after=10s -p poll_every=200ms
expect "the log says the job failed: failed at once" 1 "failed failed"
alerted "alert: the failure line" "data update FAILED: failed: .*HTTP 429"

case_ du-no-candles
use stale30
echo "$TODAY 00:31:02,120 - collector - INFO - data update complete" >"$D/logs/backtest_24h7.log"
run data_update -p late_after=2s -p poll_every=200ms
expect "completed but MAX(timestamp) of ohlcv_h4 is yesterday's: failed" 1 "failed failed"
alerted "alert: no candle of today, with the newest candle's time" "MAX\(timestamp\) FROM ohlcv_h4 is $YESTERDAY" "no candle of today"

# ---- 01:00 Data Validation Job ----------------------------------------------------------
case_ dv-ok
use dv_ok
run data_validation
expect "57 of 60 symbols fresh (95%), single missing candles: succeeded" 0 "succeeded dv_ok"
no_alert

case_ dv-stale
use dv_stale
run data_validation
expect "H4 25h and H1 7h old: failed" 1 "failed failed"
alerted "alert names both stalenesses and the coverage" "newest H4 candle 25.0h old \(limit 24.0h\)" "newest H1 candle 7.0h old \(limit 6.0h\)" "coverage: 0 of 60"

case_ dv-coverage
use dv_cov
run data_validation
expect "56 of 60 symbols fresh (one missing, one stale): failed" 1 "failed failed"
alerted "alert names the coverage only" "coverage: 56 of 60 symbols fresh = 93.3% \(need 95.0%\)"
alerts | grep -qE "staleness|continuity" && fail "$CASE: only coverage named" "$(alerts)" || ok "$CASE: only coverage is named"

case_ dv-gap
use dv_gap
run data_validation
expect "2 missing H4 candles and 3 missing H1 candles: failed" 1 "failed failed"
alerted "alert names each gap" "continuity: 2 symbol\(s\) with a gap > 2 candles \(H4 SYM05USDT 12h, H1 SYM07USDT 4h\)"
run data_validation -p max_gap_candles=4
[ "$RC" = 0 ] && ok "$CASE: max_gap_candles=4 accepts them" || fail "$CASE: max_gap_candles param" "rc=$RC"

# ---- 02:00 Sentiment/Macro Update -------------------------------------------------------
case_ se-ok
use fresh
run sentiment
expect "sentimento_mercado and macro_data updated today: succeeded" 0 "succeeded se_ok"
no_alert

case_ se-bad
use se_bad
run sentiment
expect "sentiment from yesterday and no macro table: failed" 1 "failed failed"
alerted "alert names both" "sentimento_mercado not updated today \(newest row $YESTERDAY" "macro_data \(FRED macro data\) unreadable: .*no such table: macro_data"

case_ se-macro
use se_macro
run sentiment
expect "macro data loaded yesterday: failed" 1 "failed failed"
alerted "alert names the macro data only" "FAILED: macro_data \(FRED macro data\) not loaded today \(newest row $YESTERDAY"
alerts | grep -q "sentimento_mercado" && fail "$CASE: sentiment not named" "$(alerts)" || ok "$CASE: sentimento_mercado is not named"

# ---- Every Hour: health probe -----------------------------------------------------------
NEVER=(-p backtest_from=0s -p backtest_until=0s) # outside the backtest window
ALWAYS=(-p backtest_from=0s -p backtest_until=24h) # inside it
recent_errors() { for i in $(seq "$1"); do echo "$(date -u '+%Y-%m-%d %H:%M:%S'),00$i - daemon - ERROR - backtest step $i failed"; done >"$D/logs/backtest_24h7.log"; }

case_ hp-ok
daemon sleep 60
recent_errors 7
run health_probe "${NEVER[@]}"
expect "alive, fresh heartbeat, idle, small: succeeded (7 errors ignored outside the window)" 0 "succeeded hp_ok"
no_alert
"$RBK" log "$ID" --json | grep -q "CPU 0" && ok "$CASE: the report shows the measured CPU and memory" || fail "$CASE: report" "$("$RBK" log "$ID" | tail -5)"

case_ hp-dead
daemon sleep 60
date -d '-10 min' +%s >"$D/run/backtest.heartbeat"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null
before=$(cat "$D/run/backtest.pid")
run health_probe "${NEVER[@]}"
expect "dead daemon and 10 min old heartbeat: failed" 1 "failed failed"
alerted "alert: DEAD and stale heartbeat, pointing to daemon-crash" "daemon DEAD: .*no process $before is running -> rbk run daemon-crash" "heartbeat stale: 6[0-9][0-9] s old \(limit 2m\)"
[ "$(cat "$D/run/backtest.pid")" = "$before" ] && [ -e "$D/run/backtest.heartbeat" ] && ! "$RBK" history --json | grep -q daemon-crash \
	&& ok "$CASE: read-only: pid and heartbeat files untouched, daemon-crash not run" || fail "$CASE: read-only" "$(ls "$D/run")"

case_ hp-nopid
run health_probe "${NEVER[@]}"
expect "no pid file, no heartbeat: failed" 1 "failed failed"
alerted "alert: DEAD and missing heartbeat" "daemon DEAD" "heartbeat missing"

case_ hp-hung
daemon sleep 60
date -d '-5 min' +%s >"$D/run/backtest.heartbeat"
run health_probe "${NEVER[@]}"
expect "alive, heartbeat 5 min old: failed" 1 "failed failed"
alerted "alert: stale heartbeat only" "heartbeat stale: 30[0-9] s old"
alerts | grep -q DEAD && fail "$CASE: not DEAD" "$(alerts)" || ok "$CASE: the live process is not called dead"

case_ hp-cpu
daemon sh -c 'while :; do :; done'
run health_probe "${NEVER[@]}" -p max_cpu=5 # a loaded test host may give the loop little
expect "a busy loop over max_cpu: failed" 1 "failed failed"
alerted "alert: CPU over its limit" "CPU [0-9.]+% \(limit 5%\)"

case_ hp-mem
daemon python3 -c 'import sys, time; b = b"x" * (40 << 20); open(sys.argv[1], "w").close(); time.sleep(60)' "$D/ready"
for _ in $(seq 100); do [ -e "$D/ready" ] && break; sleep 0.1; done
run health_probe "${NEVER[@]}" -p max_rss_mb=20
expect "40 MB held, limit 20 MB outside the backtest window: failed" 1 "failed failed"
alerted "alert: memory over 20 MB" "memory [0-9.]+ MB \(limit 20 MB\)"
recent_errors 3
: >"$SANDBOX/requests.jsonl"
run health_probe "${ALWAYS[@]}" -p max_rss_mb=20
expect "the same inside the backtest window (limit 1.5 GB, 3 errors/min): succeeded" 0 "succeeded hp_ok"
no_alert
recent_errors 7
run health_probe "${ALWAYS[@]}" -p max_rss_mb=20
expect "inside the window with 7 errors in the last minute: failed" 1 "failed failed"
alerted "alert: log errors over 5/minute" "log errors: 7 in the last minute \(limit 5/minute, backtest running\)"
alerts | grep -q "memory [0-9.]* MB (limit" && fail "$CASE: memory within 1.5 GB" "$(alerts)" || ok "$CASE: memory within the window's 1.5 GB limit is not named"
: >"$SANDBOX/requests.jsonl"
: >"$D/logs/backtest_24h7.log"
run health_probe "${ALWAYS[@]}" -p backtest_max_rss_mb=20
expect "inside the window, backtest_max_rss_mb=20: failed" 1 "failed failed"
alerted "alert: memory over the window's limit" "memory [0-9.]+ MB \(limit 20 MB, backtest running\)"

# ---- Sunday 03:00 Backup & Compact ------------------------------------------------------
wb_db() { use wb; } # with 4 MiB of free pages
case_ wb-ok
wb_db
size0=$(stat -c %s "$D/db/crypto_agent.db"); rows0=$(rows "$D/db/crypto_agent.db")
run weekly_backup
expect "backup, dated copy, dry restore, VACUUM, storage: succeeded" 0 "succeeded wb_ok"
no_alert
bak=$(ls "$D/backups"/crypto_agent.db.*.bak 2>/dev/null)
dated="$D/db_backup_$(date -u +%Y%m%d).db"
[ -n "$bak" ] && [ "$(check_db "$bak")" = ok ] && [ "$(rows "$bak")" = "$rows0" ] \
	&& ok "$CASE: the backup in backups_dir passes integrity_check with every row" || fail "$CASE: backup" "$(ls -l "$D/backups")"
[ -f "$dated" ] && cmp -s "$bak" "$dated" && ok "$CASE: db_backup_YYYYMMDD.db (today, UTC) is the same backup" || fail "$CASE: dated copy" "$(ls "$D")"
[ ! -e "$D/staging.db" ] && grep -q "ok wb_stage_check" <<<"$OUT" && ok "$CASE: the staging copy was checked, then removed" || fail "$CASE: staging" "$(ls "$D")"
"$RBK" show "$ID" --json | grep -q "\"lock\": *\"sqlite:$D/db/crypto_agent.db\"" && ok "$CASE: holds db-corruption's lock sqlite:<db>" || fail "$CASE: lock" "$("$RBK" show "$ID" --json | grep -o '"lock":"[^"]*"')"
size1=$(stat -c %s "$D/db/crypto_agent.db")
[ "$size1" -lt $((size0 - 3000000)) ] && [ "$(rows "$D/db/crypto_agent.db")" = "$rows0" ] && [ "$(check_db "$D/db/crypto_agent.db")" = ok ] \
	&& ok "$CASE: VACUUM compacted the live database ($size0 -> $size1 bytes), rows kept" || fail "$CASE: vacuum" "$size0 -> $size1"

case_ wb-storage
wb_db
run weekly_backup -p max_storage_gb=0.0001
expect "storage over max_storage_gb: failed" 1 "failed failed"
alerted "alert: storage over the limit, backup made" "storage .* uses [0-9]+ bytes, over 0.0001 GB \(backup .*crypto_agent.db.*.bak made and tested\)"

case_ wb-staging
wb_db
size0=$(stat -c %s "$D/db/crypto_agent.db")
run weekly_backup -p min_backup_rows=100000
expect "the staged backup has too few rows: failed" 1 "failed failed"
alerted "alert: dry restore failed, not compacted" "FAILED its dry restore on staging" "ohlcv_h4 rows=1200" "Not compacted"
[ -f "$D/staging.db" ] && [ "$(stat -c %s "$D/db/crypto_agent.db")" = "$size0" ] \
	&& ok "$CASE: the staging copy is kept for study and the live database not vacuumed" || fail "$CASE: kept" "$(ls -l "$D" "$D/db")"

case_ wb-nobackup
mkdir -p "$D/db/crypto_agent.db" # a directory: nothing to back up
run weekly_backup
expect "no database to back up: failed" 1 "failed failed"
alerted "alert: weekly backup failed" "weekly backup FAILED: .*directory" "not compacted"

case_ wb-space
wb_db
size0=$(stat -c %s "$D/db/crypto_agent.db")
run weekly_backup -p vacuum_space_factor=1000000000
expect "not enough free space for VACUUM: failed" 1 "failed failed"
alerted "alert: not compacted for lack of space" "NOT compacted: [0-9]+ bytes free < 1000000000 x $size0"
[ "$(stat -c %s "$D/db/crypto_agent.db")" = "$size0" ] && ls "$D/backups"/*.bak >/dev/null 2>&1 \
	&& ok "$CASE: backup made, live database untouched" || fail "$CASE: untouched" "$(ls -l "$D/db")"

case_ wb-busy
wb_db
size0=$(stat -c %s "$D/db/crypto_agent.db")
python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute("begin immediate"); c.execute("insert into sentimento_mercado values (1, 0.1)")
open(sys.argv[2], "w").close(); time.sleep(6); c.execute("rollback")' "$D/db/crypto_agent.db" "$D/locked" &
PIDS+=($!)
for _ in $(seq 50); do [ -e "$D/locked" ] && break; sleep 0.1; done
run weekly_backup -p vacuum_timeout=1s
expect "a writer holds the database past vacuum_timeout: failed" 1 "failed failed"
alerted "alert: backup made and tested, VACUUM failed" "made and tested, but VACUUM of .* FAILED"
[ "$(stat -c %s "$D/db/crypto_agent.db")" = "$size0" ] && ok "$CASE: the live database is unchanged" || fail "$CASE: unchanged" "$(stat -c %s "$D/db/crypto_agent.db") != $size0"
kill "${PIDS[-1]}" 2>/dev/null

# ---- Sunday 03:30 Integrity Check -------------------------------------------------------
case_ ic-ok
use fresh
run integrity_check
expect "PRAGMA integrity_check says ok: succeeded" 0 "succeeded ic_ok"
no_alert
"$RBK" show "$ID" --json | grep -q "\"lock\": *\"backtest-checklist-integrity_check:$D/db/crypto_agent.db\"" && ok "$CASE: a lock of its own (never refused while a backup holds the database's)" || fail "$CASE: lock" "$("$RBK" show "$ID" --json | grep -o '"lock":"[^"]*"')"

case_ ic-bad
use fresh
python3 "$SQLITEFIX" corrupt-index "$D/db/crypto_agent.db"
run integrity_check
expect "an index missing a row: failed" 1 "failed failed"
alerted "alert: the problem, pointing to db-corruption" "is NOT ok \([0-9]+ problem\(s\): .*missing from index" "rbk run db-corruption"

case_ ic-missing
run integrity_check
expect "no database file: failed" 1 "failed failed"
alerted "alert: the database cannot be checked" "is NOT ok \(\? problem\(s\): .*crypto_agent.db" "rbk run db-corruption"

# ---- the schedule (UTC) -----------------------------------------------------------------
"$RBK" validate "$RBK_ROOT/runbooks/backtest-checklist.yaml" >/dev/null 2>&1 && ok "rbk validate passes" || fail "validate" "$("$RBK" validate "$RBK_ROOT/runbooks/backtest-checklist.yaml" 2>&1)"
# entry -> task, in the order of the runbook's schedule:
fires() { # fires FROM COUNT: "UTC=task ..." of the next COUNT fires
	"$RBK" schedule next backtest-checklist --from "$1" --count "$2" --json 2>&1 | python3 -c '
import json, sys
tasks = ["data_update", "data_validation", "sentiment", "health_probe", "weekly_backup", "integrity_check"]
print(" ".join(f["utc"] + "=" + tasks[f["entry"]] for f in map(json.loads, sys.stdin) if f["timezone"] == "UTC"))'
}
# Saturday 2026-12-05 23:00 UTC: the night into Sunday.
got=$(fires 2026-12-05T23:00:00Z 10)
want="2026-12-06T00:00:00Z=health_probe 2026-12-06T00:30:00Z=data_update 2026-12-06T01:00:00Z=data_validation 2026-12-06T01:00:00Z=health_probe"
want+=" 2026-12-06T02:00:00Z=sentiment 2026-12-06T02:00:00Z=health_probe 2026-12-06T03:00:00Z=health_probe 2026-12-06T03:00:00Z=weekly_backup"
want+=" 2026-12-06T03:30:00Z=integrity_check 2026-12-06T04:00:00Z=health_probe"
[ "$got" = "$want" ] && ok "schedule next: Sunday 00:00-04:00 UTC: hourly probe, 00:30, 01:00, 02:00, backup 03:00, integrity 03:30" || fail "schedule next (Sunday)" "$got"
# Monday 2026-12-07 00:00 UTC: the daily items, no weekly one before next Sunday.
got=$(fires 2026-12-07T00:00:00Z 171) # Monday 00:00 to Sunday 03:30
grep -q "2026-12-07T00:30:00Z=data_update 2026-12-07T01:00:00Z=data_validation" <<<"$got" && grep -q "2026-12-07T02:00:00Z=sentiment" <<<"$got" \
	&& [ "$(grep -o "weekly_backup" <<<"$got" | wc -l)" = 1 ] && grep -q "2026-12-13T03:00:00Z=weekly_backup" <<<"$got" \
	&& grep -q "2026-12-13T03:30:00Z=integrity_check" <<<"$got" && [ "$(grep -o "=health_probe" <<<"$got" | wc -l)" = 148 ] \
	&& ok "schedule next: daily items every day, the backup and integrity check only on Sunday (2026-12-13)" || fail "schedule next (week)" "$got"

# The scheduler, down since before Sunday 03:00, is back at 03:30 UTC: catch_up (6h)
# fires the 03:00 backup with the 03:30 integrity check (the 03:00 probe, 30 min late,
# is past its 10m and missed), with the production defaults (db/crypto_agent.db,
# backups, db_backup_YYYYMMDD.db in "." - relative to where rbk runs), on a path
# holding only this runbook.
case_ scheduler
export RBK_PATH="$TMP/path"
mkdir -p "$RBK_PATH" && cp "$RBK_ROOT/runbooks/backtest-checklist.yaml" "$RBK_PATH/"
use wb
cd "$D" || exit 1
SOUT=$("$RBK" scheduler --once --now 2026-12-06T03:30:00Z 2>&1); SRC=$?
on_pg && "$RBK" agent --once --concurrency 10 >>"$TMP/agent.out" 2>&1
got=$(for id in 1 2 3; do "$RBK" show "$id" --json 2>/dev/null | sed -n 's/.*"status":"\([a-z_]*\)".*"task":"\([a-z_]*\)".*"schedule":{"fire":[0-9]*,"nominal":"\([^"]*\)".*/\2 \1 \3/p'; done | sort | tr '\n' ';')
[ "$SRC" = 0 ] && [ "$got" = "integrity_check succeeded 2026-12-06T03:30:00Z;weekly_backup succeeded 2026-12-06T03:00:00Z;" ] \
	&& ok "scheduler back at Sunday 03:30 UTC: the backup (03:00, caught up) and the integrity check, both succeeded" || fail "scheduler fire" "exit $SRC; runs: $got; $SOUT"
ls "$D"/backups/crypto_agent.db.*.bak >/dev/null 2>&1 && ls "$D"/db_backup_*.db >/dev/null 2>&1 && [ ! -e "$D/backups/staging_restore.db" ] \
	&& ok "scheduler: the default paths: backups/, db_backup_YYYYMMDD.db, the staging copy removed" || fail "scheduler paths" "$(ls -R "$D")"
no_alert
cd "$RBK_ROOT" || exit 1
