#!/bin/bash
# runbooks/db-corruption.yaml (and its child db-restore.yaml) in the sandbox,
# on real SQLite files made by python3:
#  - index damage that REINDEX repairs: no restore, no resync, writers back;
#  - bytes overwritten in the middle of the file and in the newest backup:
#    REINDEX fails, the older backup is restored, the damaged file kept
#    aside, the stale data resynced, validated, writers back in order;
#  - every backup damaged: CRITICAL alert, writers stay stopped, LOCKED kept;
#  - a resync that leaves coverage below 95%: alert, writers stay stopped.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
FIX="$RBK_ROOT/tests/sandbox/extra/db-restore/sqlitefix.py"
COLLECTOR="$RBK_ROOT/tests/sandbox/extra/db-corruption/collector.py"

setup() { # setup CASE: a sandbox, a fresh database and the writers running
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1/sb"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	D="$TMP/$1/db" B="$TMP/$1/backups"
	mkdir -p "$D" "$B" "$SANDBOX/systemd"
	echo active >"$SANDBOX/systemd/crypto-agent-main.service.state"
	echo active >"$SANDBOX/systemd/backtest-daemon.service.state"
}
run_it() { # run_it [SYMBOLS]: the runbook, with the collector stand-in
	"$RBK" run db-corruption -p db="$D/crypto_agent.db" -p backups_dir="$B" -p lock_file="$D/LOCKED" \
		-p systemctl="$SANDBOX_BIN/systemctl" -p main_settle=0s \
		-p resync_cmd="python3 '$COLLECTOR' --symbols ${1:-60} --lookback-hours=\"\$LOOKBACK_HOURS\"" 2>&1
}
alerts() { python3 -c 'import json,sys; [print(a.get("text","")) for a in json.load(open(sys.argv[1])).get("alerts",[])]' "$SANDBOX/state.json"; }
unit() { cat "$SANDBOX/systemd/$1.state"; }
resumed_in_order() { # stop main, stop daemon, ..., start main, is-active main, start daemon
	[ "$(grep -c . "$SANDBOX/calls.log")" = 5 ] &&
		[ "$(sed -n 1p "$SANDBOX/calls.log")" = "systemctl stop crypto-agent-main.service" ] &&
		[ "$(sed -n 2p "$SANDBOX/calls.log")" = "systemctl stop backtest-daemon.service" ] &&
		[ "$(sed -n 3p "$SANDBOX/calls.log")" = "systemctl start crypto-agent-main.service" ] &&
		[ "$(sed -n 4p "$SANDBOX/calls.log")" = "systemctl is-active crypto-agent-main.service" ] &&
		[ "$(sed -n 5p "$SANDBOX/calls.log")" = "systemctl start backtest-daemon.service" ] &&
		[ "$(unit crypto-agent-main.service)" = active ] && [ "$(unit backtest-daemon.service)" = active ]
}

# 1. Index damage ("row N missing from index"): REINDEX repairs it.
setup reindex
python3 "$FIX" candles "$D/crypto_agent.db" --h4-age 1 --h1-age 0.5
python3 "$FIX" backup "$D/crypto_agent.db" "$B" 24 >/dev/null
python3 "$FIX" corrupt-index "$D/crypto_agent.db"
before=$(python3 "$FIX" check "$D/crypto_agent.db")
out=$(run_it); rc=$?
[ $rc = 0 ] && ok "index damage: repaired, exit 0" || fail "reindex exit" "rc=$rc $out"
[[ $before == *"missing from index"* ]] && [ "$(python3 "$FIX" check "$D/crypto_agent.db")" = ok ] \
	&& ok "REINDEX made the database pass integrity_check" || fail "reindex repair" "$before / $(python3 "$FIX" check "$D/crypto_agent.db")"
nruns() { "$RBK" history --runbook "$1" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["runs"]))'; }
! ls "$D" | grep -q damaged && [ "$(nruns db-restore)" = 0 ] && [ "$(nruns db-corruption)" = 1 ] \
	&& ok "no restore after a successful REINDEX" || fail "no restore" "$(ls "$D"; "$RBK" history)"
[ ! -e "$SANDBOX/collector.log" ] && ok "fresh data: the update job was not run" || fail "no resync" "$(cat "$SANDBOX/collector.log")"
resumed_in_order && ok "writers stopped, then the live system, its settle check and the daemon started" || fail "writers" "$(cat "$SANDBOX/calls.log")"
[ ! -e "$D/LOCKED" ] && ok "db/LOCKED removed on resume" || fail "LOCKED" "still there"
[ -z "$(alerts)" ] && ok "no alert on a repaired database" || fail "alerts" "$(alerts)"
"$RBK" log 1 --json | grep -q "$SANDBOX_URL" && fail "the webhook (a secret) is not recorded" "found in the log" || ok "the webhook (a secret) is not recorded"
sandbox_stop

# 2. Bytes overwritten in the middle of the database and of its newest backup.
setup restore
python3 "$FIX" candles "$D/crypto_agent.db" --h4-age 30 --h1-age 30
older=$(python3 "$FIX" backup "$D/crypto_agent.db" "$B" 48)
newer=$(python3 "$FIX" backup "$D/crypto_agent.db" "$B" 24)
python3 "$FIX" corrupt "$newer"
python3 "$FIX" corrupt "$D/crypto_agent.db"
damaged_sum=$(sha256sum <"$D/crypto_agent.db")
out=$(run_it); rc=$?
[ $rc = 0 ] && ok "damaged file and newest backup: restored, exit 0" || fail "restore exit" "rc=$rc $out"
"$RBK" log 1 | grep -q "reindex.*malformed" && ok "REINDEX was tried first and failed" || fail "reindex tried" "$("$RBK" log 1)"
aside=$(ls "$D" | grep '^crypto_agent.db.damaged.' | head -1)
[ -n "$aside" ] && [ "$(sha256sum <"$D/$aside")" = "$damaged_sum" ] \
	&& ok "the damaged file is kept aside ($aside)" || fail "moved aside" "$(ls "$D")"
[ "$(python3 "$FIX" check "$D/crypto_agent.db")" = ok ] && [ -e "$older" ] && [ -e "$newer" ] \
	&& ok "the restored database is sound; the backups stay" || fail "restored" "$(python3 "$FIX" check "$D/crypto_agent.db"; ls "$B")"
child=$("$RBK" history --runbook db-restore --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"]; print(r[0]["run"] if r else "")' 2>/dev/null)
clog=$("$RBK" log "$child" --json 2>&1)
grep -q "\"restored_from\":\"$older\"" <<<"$clog" && grep -q "\"path\":\"$newer\",\"reason\":\"integrity check: " <<<"$clog" \
	&& ok "the newest backup was rejected, the older one restored (run $child)" || fail "fallback" "child=$child $clog"
grep -q "^--symbols 60 --lookback-hours=72 DB=$D/crypto_agent.db LOOKBACK_HOURS=72$" "$SANDBOX/collector.log" 2>/dev/null \
	&& ok "stale data after the restore: the update job ran with a 72 h lookback" || fail "resync" "$(cat "$SANDBOX/collector.log" 2>&1)"
fresh=$(python3 "$FIX" query "$D/crypto_agent.db" "select count(distinct symbol) from ohlcv_h1 where timestamp > (strftime('%s','now') - 3600) * 1000")
[ "$fresh" = "[60]" ] && ok "the resynced candles are in the restored database" || fail "fresh rows" "$fresh"
resumed_in_order && ok "writers resumed in order after the restore" || fail "writers after restore" "$(cat "$SANDBOX/calls.log")"
[ ! -e "$D/LOCKED" ] && ok "db/LOCKED removed after the restore" || fail "LOCKED after restore" "still there"
sandbox_stop

# 3. Every backup damaged: escalate, leave everything stopped and locked.
setup nobackup
python3 "$FIX" candles "$D/crypto_agent.db" --h4-age 30 --h1-age 30
for h in 48 24; do python3 "$FIX" corrupt "$(python3 "$FIX" backup "$D/crypto_agent.db" "$B" $h)"; done
python3 "$FIX" corrupt "$D/crypto_agent.db"
damaged_sum=$(sha256sum <"$D/crypto_agent.db")
out=$(run_it); rc=$?
[ $rc = 1 ] && ok "no sound backup: escalated, exit 1" || fail "no backup exit" "rc=$rc $out"
alerts | grep -q "^CRITICAL db-corruption: .*no backup in $B passes its integrity check" \
	&& ok "a CRITICAL alert says no backup is valid" || fail "no-backup alert" "$(alerts)"
[ "$(unit crypto-agent-main.service)" = inactive ] && [ "$(unit backtest-daemon.service)" = inactive ] && ! grep -q start "$SANDBOX/calls.log" \
	&& ok "the writers stay stopped" || fail "writers stopped" "$(cat "$SANDBOX/calls.log")"
[ -e "$D/LOCKED" ] && [ "$(sha256sum <"$D/crypto_agent.db")" = "$damaged_sum" ] && ! ls "$D" | grep -q damaged \
	&& ok "db/LOCKED kept and the database left as it was" || fail "left as is" "$(ls "$D")"
[ ! -e "$SANDBOX/collector.log" ] && ok "no resync without a database" || fail "no resync on failure" ""
sandbox_stop

# 4. The resync brings 50 of 60 symbols (83% < 95%): validation fails.
setup coverage
python3 "$FIX" candles "$D/crypto_agent.db" --h4-age 30 --h1-age 30
python3 "$FIX" backup "$D/crypto_agent.db" "$B" 24 >/dev/null
python3 "$FIX" corrupt "$D/crypto_agent.db"
out=$(run_it 50); rc=$?
[ $rc = 1 ] && ok "coverage below 95% after the resync: escalated, exit 1" || fail "coverage exit" "rc=$rc $out"
alerts | grep -q "does not validate after the resync: .*coverage 83.3[0-9]*% of 60 symbols (need 95%)" \
	&& ok "the alert gives the coverage reached" || fail "coverage alert" "$(alerts)"
[ "$(python3 "$FIX" check "$D/crypto_agent.db")" = ok ] && [ -e "$D/LOCKED" ] && ! grep -q start "$SANDBOX/calls.log" \
	&& ok "restored but not resumed: writers stopped, LOCKED kept" || fail "not resumed" "$(cat "$SANDBOX/calls.log")"
