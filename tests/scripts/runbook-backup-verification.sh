#!/bin/bash
# runbooks/backup-verification.yaml on real SQLite backups made by python3:
#  - the newest backup is copied, checked and counted: pass, report line,
#    test copy removed;
#  - the newest backup damaged in the middle: alert, ERROR line, copy kept;
#  - too few ohlcv_h4 rows; a missing table; no backup recent enough; no
#    backup at all: alert, exit 1;
#  - the schedule fires on Sundays only, and first_sunday_only lets only the
#    first Sunday of the month test (checked against date(1) for today).
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
FIX="$RBK_ROOT/tests/sandbox/extra/db-restore/sqlitefix.py"

setup() { # setup CASE: a sandbox (the webhook) and a database with 60 x 20 H4 rows
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1/sb"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	D="$TMP/$1/db" B="$TMP/$1/backups" T="$TMP/$1/db_test.db" L="$TMP/$1/backup_test.log"
	mkdir -p "$D" "$B"
	python3 "$FIX" candles "$D/crypto_agent.db" --rows 20
}
run_it() {
	"$RBK" run backup-verification -p db="$D/crypto_agent.db" -p backups_dir="$B" -p test_db="$T" -p report="$L" "$@" 2>&1
}
alerts() { python3 -c 'import json,sys; [print(a.get("text","")) for a in json.load(open(sys.argv[1])).get("alerts",[])]' "$SANDBOX/state.json"; }

# 1. Happy path: two backups, the newest (with more rows) is tested.
setup happy
python3 "$FIX" backup "$D/crypto_agent.db" "$B" 30 >/dev/null
python3 "$FIX" candles "$D/crypto_agent.db" --rows 5
newest=$(python3 "$FIX" backup "$D/crypto_agent.db" "$B" 20)
echo "not a backup" >"$B/other.db.20990101T000000Z.bak"
out=$(run_it); rc=$?
[ $rc = 0 ] && ok "a sound, recent backup: test passed, exit 0" || fail "happy exit" "rc=$rc $out"
grep -q "backup test passed: $newest (ohlcv_h4=1500, ohlcv_h1=1500, sentimento_mercado=2)" "$L" 2>/dev/null \
	&& ok "the newest backup was tested and its rows counted per table" || fail "report" "$(cat "$L" 2>&1)"
[ ! -e "$T" ] && ok "the test copy was removed after the pass" || fail "cleanup" "$T is still there"
"$RBK" log 1 | grep -q "copy" && [ -z "$(alerts)" ] && ok "copied to the test database; no alert" || fail "no alert" "$(alerts)"
sandbox_stop

# 2. The newest backup damaged in the middle.
setup corrupted
python3 "$FIX" backup "$D/crypto_agent.db" "$B" 30 >/dev/null
newest=$(python3 "$FIX" backup "$D/crypto_agent.db" "$B" 20)
python3 "$FIX" corrupt "$newest"
out=$(run_it); rc=$?
[ $rc = 1 ] && ok "a damaged newest backup: failed, exit 1" || fail "corrupted exit" "rc=$rc $out"
alerts | grep -q "backup-verification FAILED (run 1): backup corrupted: $newest: [0-9]* problems, first: .*Test copy kept at $T" \
	&& ok "the alert names the backup and its first problem" || fail "corrupted alert" "$(alerts)"
grep -q "ERROR: backup corrupted: $newest" "$L" && cmp -s "$T" "$newest" \
	&& ok "the failure is recorded and the test copy kept" || fail "corrupted record" "$(cat "$L")"
sandbox_stop

# 3. Too few rows (500 < 1000 in ohlcv_h4).
setup small
rm "$D/crypto_agent.db"; python3 "$FIX" candles "$D/crypto_agent.db" --symbols 25 --rows 20
python3 "$FIX" backup "$D/crypto_agent.db" "$B" 1 >/dev/null
out=$(run_it); rc=$?
[ $rc = 1 ] && alerts | grep -q "test DB too small: .* has ohlcv_h4=500 (min 1000)" \
	&& ok "500 ohlcv_h4 rows: too small, alerted, exit 1" || fail "small" "rc=$rc $(alerts) $out"
out=$(run_it -p min_ohlcv_h4=500); rc=$?
[ $rc = 0 ] && ok "the minimum is a param (500 passes with min_ohlcv_h4=500)" || fail "min param" "rc=$rc $out"
sandbox_stop

# 4. A backup without the ohlcv_h1 table: the count fails.
setup notable
python3 - "$D/crypto_agent.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("drop table ohlcv_h1"); c.commit()
PY
python3 "$FIX" backup "$D/crypto_agent.db" "$B" 1 >/dev/null
out=$(run_it); rc=$?
[ $rc = 1 ] && alerts | grep -q "FAILED" && "$RBK" log 1 | grep -q "no such table: ohlcv_h1" \
	&& ok "a missing table fails the test, exit 1" || fail "no table" "rc=$rc $(alerts) $out"
sandbox_stop

# 5. Only a 3-day-old backup, then none at all.
setup stale
python3 "$FIX" backup "$D/crypto_agent.db" "$B" 72 >/dev/null
out=$(run_it); rc=$?
[ $rc = 1 ] && alerts | grep -q "is 72 h old (more than 48 h)" && [ ! -e "$T" ] \
	&& ok "a 72 h old newest backup: too old, exit 1, nothing copied" || fail "stale" "rc=$rc $(alerts) $out"
rm "$B"/*.bak
out=$(run_it); rc=$?
[ $rc = 1 ] && alerts | grep -q "no backup of $D/crypto_agent.db in $B" \
	&& ok "no backup at all: alerted, exit 1" || fail "none" "rc=$rc $(alerts) $out"
sandbox_stop

# 6. The first Sunday of the month.
sched=$("$RBK" schedule next backup-verification --from 2026-11-01T00:00:00Z --count 10 2>&1)
[ "$(grep -c 'T04:00:00Z' <<<"$sched")" = 10 ] && ! awk '{print $1}' <<<"$sched" | xargs -I{} date -u -d {} +%a | grep -vq Sun \
	&& ok "the schedule fires on Sundays only, at 04:00 UTC" || fail "schedule" "$sched"
setup calendar
python3 "$FIX" backup "$D/crypto_agent.db" "$B" 1 >/dev/null
out=$(run_it -p first_sunday_only=true); rc=$?
vars=$("$RBK" log 1 --json | grep '"state":"first_sunday"' | grep vars_set)
dom=$(date -u +%-d) dow=$(date -u +%w)
[[ $vars == *"\"day_of_month\":$dom,"* && $vars == *"\"weekday\":$dow"* ]] \
	&& ok "day of month and weekday computed from now() match date(1) ($dom, $dow)" || fail "calendar" "$vars vs $dom $dow"
if [ "$dow" = 0 ] && [ "$dom" -le 7 ]; then
	[ $rc = 0 ] && grep -q "backup test passed" "$L" && ok "first Sunday: the test runs" || fail "first Sunday" "rc=$rc $out"
else
	[ $rc = 0 ] && [ "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' < <("$RBK" show 1 --json))" = not_today ] \
		&& [ ! -e "$L" ] && [ ! -e "$T" ] && ok "not the first Sunday: nothing tested, exit 0" || fail "not today" "rc=$rc $out"
fi
out=$(run_it); rc=$?
[ $rc = 0 ] && grep -q "backup test passed" "$L" && ok "a run by hand tests at once" || fail "by hand" "rc=$rc $out"
