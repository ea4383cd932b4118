#!/bin/bash
# runbooks/qt-backup.yaml in the sandbox, with stand-ins for clickhouse-backup
# and the aws CLI (tests/sandbox/extra/qt-backup): the schedule (18:15 BRT on
# trading days, Sundays for OHLCV); the ClickHouse nightly backup made and
# found, failing, or not listed afterwards; the OHLCV sync copying every
# Parquet file, with no file to sync, failing, or leaving a file behind.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
EXTRA="$RBK_ROOT/tests/sandbox/extra/qt-backup"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
mkdir -p "$TMP/bin" && ln -s "$PY" "$TMP/bin/python3" && export PATH="$TMP/bin:$PATH" # also for the sandbox's server

setup() { # setup CASE: a work dir with three Parquet files
	sandbox_start "$TMP/$1"
	export RBK_HOME="$TMP/$1/home" RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	W="$SANDBOX/work"; mkdir -p "$W/data/ohlcv/BTCUSDT" "$W/data/ohlcv/ETHUSDT"
	echo a >"$W/data/ohlcv/BTCUSDT/2026-11.parquet"; echo b >"$W/data/ohlcv/BTCUSDT/2026-12.parquet"; echo c >"$W/data/ohlcv/ETHUSDT/2026-12.parquet"
}
run() { "$RBK" run qt-backup -p clickhouse_backup="$EXTRA/clickhouse-backup" -p aws="$EXTRA/aws" -p work_dir="$W" "$@"; }
alerts() { "$PY" -c 'import json,sys; print("\n".join(a["text"] for a in json.load(open(sys.argv[1])).get("alerts", [])))' "$SANDBOX/state.json"; }
has_alert() { grep -q "$@" <<<"$(alerts)"; } # (not through a pipe: grep -q would close it early)

# --- The schedule. --------------------------------------------------------------------------------
next=$("$RBK" schedule next "$RBK_ROOT/runbooks/qt-backup.yaml" --from 2026-12-04T12:00:00Z --count 2 2>&1)
[ "$(echo "$next" | awk '{print $5, $NF}' | tr '\n' ';')" = "2026-12-06T12:00:00Z 0);2026-12-13T12:00:00Z 0);" ] \
	&& ok "schedule: the OHLCV sync on Sundays 09:00 BRT; the nightly ClickHouse backup is daily-routine's 18:15 entry" || fail "schedule" "$next"

# --- ClickHouse, happy path. ----------------------------------------------------------------------
setup ch
out=$(run -p what=clickhouse 2>&1); rc=$?
name=$(ls "$SANDBOX/clickhouse-backup" 2>/dev/null)
[ $rc = 0 ] && [[ $name = qt-delta-[0-9]* ]] && ok "clickhouse: backup $name made, exit 0" || fail "clickhouse: exit" "rc=$rc $out"
[ "$(cat "$SANDBOX/clickhouse-backup/$name/tables" 2>/dev/null)" = "trades,ticks,metrics" ] && ok "clickhouse: --tables trades,ticks,metrics" || fail "clickhouse: tables" "$(cat "$SANDBOX/calls.log")"
[ "$(sed "s| (cwd=.*||" "$SANDBOX/calls.log" | tr '\n' ';')" = "clickhouse-backup create --tables trades,ticks,metrics $name;clickhouse-backup list local;" ] \
	&& ok "clickhouse: created, then checked with list local" || fail "clickhouse: calls" "$(cat "$SANDBOX/calls.log")"
[ -z "$(alerts)" ] && ! grep -q "aws" "$SANDBOX/calls.log" && ok "clickhouse: no alert, no S3 sync" || fail "clickhouse: alerts" "$(alerts)"
sandbox_stop

# --- ClickHouse: create fails; create says done but the backup is not listed. ----------------------
setup chfail
mkdir -p "$SANDBOX/clickhouse-backup.d"; touch "$SANDBOX/clickhouse-backup.d/create.fail"
out=$(run -p what=clickhouse 2>&1); rc=$?
[ $rc = 1 ] && [ "$(grep -c "create" "$SANDBOX/calls.log")" = 1 ] && has_alert "ClickHouse backup qt-delta-[0-9]* (trades,ticks,metrics) FAILED (run 1): create failed error: can't connect to clickhouse" \
	&& ok "clickhouse create fails: not retried, alert with the error, exit 1" || fail "clickhouse create fails" "rc=$rc $out $(alerts)"
sandbox_stop
setup chlost
mkdir -p "$SANDBOX/clickhouse-backup.d"; touch "$SANDBOX/clickhouse-backup.d/lost"
out=$(run -p what=clickhouse 2>&1); rc=$?
[ $rc = 1 ] && grep -q "list local" "$SANDBOX/calls.log" && has_alert "create ok .*in clickhouse-backup list local: false" \
	&& ok "clickhouse backup not listed after create: alert, exit 1" || fail "clickhouse lost" "rc=$rc $out $(alerts)"
sandbox_stop

# --- OHLCV, happy path. ---------------------------------------------------------------------------
setup ohlcv
out=$(run -p what=ohlcv 2>&1); rc=$?
[ $rc = 0 ] && diff -r "$W/data/ohlcv" "$SANDBOX/s3/qt-backup/ohlcv" >/dev/null && ok "ohlcv: every Parquet file is in s3://qt-backup/ohlcv, exit 0" || fail "ohlcv" "rc=$rc $out $(ls -R "$SANDBOX/s3" 2>&1)"
[ "$(sed "s|$W|W|g" "$SANDBOX/calls.log" | tr '\n' ';')" = "aws s3 sync data/ohlcv s3://qt-backup/ohlcv (cwd=W);aws s3 sync data/ohlcv s3://qt-backup/ohlcv --dryrun (cwd=W);" ] \
	&& ok "ohlcv: aws s3 sync data/ohlcv s3://qt-backup/ohlcv, then checked with --dryrun" || fail "ohlcv: calls" "$(cat "$SANDBOX/calls.log")"
[ -z "$(alerts)" ] && ! grep -q clickhouse "$SANDBOX/calls.log" && ok "ohlcv: no alert, no ClickHouse backup" || fail "ohlcv: alerts" "$(alerts)"
sandbox_stop

# --- OHLCV: nothing to sync; the sync fails; a file left behind. -----------------------------------
setup empty
rm -rf "$W/data/ohlcv"/*/*.parquet
out=$(run -p what=ohlcv 2>&1); rc=$?
[ $rc = 1 ] && [ ! -e "$SANDBOX/calls.log" ] && has_alert "OHLCV S3 sync data/ohlcv -> s3://qt-backup/ohlcv FAILED (run 1): parquet files 0, sync not run" \
	&& ok "ohlcv: no Parquet file: nothing synced, alert, exit 1" || fail "ohlcv empty" "rc=$rc $out $(alerts)"
sandbox_stop
setup syncfail
mkdir -p "$SANDBOX/aws.d"; touch "$SANDBOX/aws.d/sync.fail"
out=$(run -p what=ohlcv 2>&1); rc=$?
[ $rc = 1 ] && [ "$(grep -c "s3 sync" "$SANDBOX/calls.log")" = 2 ] && has_alert "parquet files 3, sync failed fatal error: Unable to locate credentials" \
	&& ok "ohlcv: the sync fails: tried twice, alert, exit 1" || fail "ohlcv sync fails" "rc=$rc $out $(alerts)"
sandbox_stop
setup partial
mkdir -p "$SANDBOX/aws.d"; touch "$SANDBOX/aws.d/partial"
out=$(run -p what=ohlcv 2>&1); rc=$?
[ $rc = 1 ] && has_alert "sync ok , still to upload after the sync: (dryrun) upload: data/ohlcv/BTCUSDT/2026-11.parquet" \
	&& ok "ohlcv: a file left behind by the sync: the check finds it, alert, exit 1" || fail "ohlcv partial" "rc=$rc $out $(alerts)"
sandbox_stop

# --- which backup is required. ---------------------------------------------------------------------
out=$("$RBK" run qt-backup 2>&1); rc=$?
[ $rc = 2 ] && ok "no what: bad input (exit 2)" || fail "no what" "rc=$rc $out"
