#!/bin/bash
# runbooks/dr-restore.yaml (and its child db-restore.yaml) in the sandbox, on
# real SQLite files made by python3 and the sandbox exchange:
#  - happy path: the state DB and its newest backup damaged; the older
#    backup restored, the damaged file kept aside; reconciliation with the
#    exchange (an orphan recovered as RECOVERED_ORPHAN, a phantom removed
#    with a CRITICAL alert, a divergent quantity taken from the exchange, a
#    zero position ignored); paper trading verified; the recovery point and
#    time reported; go-live approved by someone other than the launcher
#    (another OS user, rbk-bob);
#  - live trading unhealthy after the switch: rolled back to paper (exit 3);
#  - go-live rejected: stays in paper (exit 1);
#  - unhealthy during the paper verification: alert, no approval (exit 1);
#  - no sound backup: CRITICAL alert, the bot stays stopped (exit 1).
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
FIX="$RBK_ROOT/tests/sandbox/extra/db-restore/sqlitefix.py"
# Going live is decided by someone other than the launcher: rbk run as
# another OS user (root only: tests/scripts/lib.bash), on the case's files,
# theirs too.
people rbk-bob && chmod 755 "$TMP" && reachable rbk-bob
bob() { # bob CASE ARGS...: rbk as rbk-bob
	# shared as a team shares a home (docs/security.md): by group, never by all
	chgrp -R rbk-team "$TMP/$1" && chmod -R g+rwX,o-w "$TMP/$1"
	shift
	as_user rbk-bob "$RBK" "$@"
}

setup() { # setup CASE: the bot's state (3 positions), backups 12 and 2 minutes old
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1/sb"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	D="$TMP/$1/data" B="$TMP/$1/backups" R="$TMP/$1/reports" M="$TMP/$1/mode.env"
	mkdir -p "$D" "$SANDBOX/systemd"
	echo active >"$SANDBOX/systemd/trading-bot.service.state"
	python3 "$FIX" positions "$D/portfolio.db" BTCUSDT:0.5:60000 ETHUSDT:2:3000 SOLUSDT:10:150
	older=$(python3 "$FIX" backup "$D/portfolio.db" "$B" 0.2)
	newer=$(python3 "$FIX" backup "$D/portfolio.db" "$B" 0.0333)
	python3 "$FIX" corrupt "$newer"
	python3 "$FIX" corrupt "$D/portfolio.db"
	damaged_sum=$(sha256sum <"$D/portfolio.db")
	sandbox_state 's["exchange"] = {"positions": [
		{"symbol": "BTCUSDT", "qty": 0.5, "entry_price": 60000},
		{"symbol": "ETHUSDT", "qty": "1.5"},
		{"symbol": "XRPUSDT", "qty": 100, "entry_price": 0.5},
		{"symbol": "ADAUSDT", "qty": 0}]}'
}
run_it() { # run_it VERIFY_FOR: the incident detected 10 minutes ago
	incident=$(($(date +%s) - 600))
	"$RBK" run dr-restore -p db="$D/portfolio.db" -p backups_dir="$B" -p report_dir="$R" \
		-p systemctl="$SANDBOX_BIN/systemctl" -p mode_file="$M" -p exchange_url="$SANDBOX_URL/exchange" \
		-p health_url="$SANDBOX_URL/health/trading-bot" -p verify_for="$1" -p incident_start=$incident -p live_retries=0 2>&1
}
alerts() { python3 -c 'import json,sys; [print(a.get("severity","-"), a.get("text","")) for a in json.load(open(sys.argv[1])).get("alerts",[])]' "$SANDBOX/state.json"; }
positions() { python3 "$FIX" query "$D/portfolio.db" "select symbol, qty, entry_price, reason_code from positions order by symbol" | tr -d ' \n'; }
report() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$R/dr-restore-1.json" "$1" 2>&1; }
status() { "$RBK" show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }

# 1. Happy path, up to the approval.
setup happy
out=$(run_it 1s); rc=$?
[ $rc = 4 ] && ok "restored, reconciled and verified in paper: waits for the go-live approval (exit 4)" || fail "happy exit" "rc=$rc $out"
aside=$(ls "$D" | grep '^portfolio.db.damaged.' | head -1)
[ -n "$aside" ] && [ "$(sha256sum <"$D/$aside")" = "$damaged_sum" ] && [ "$(python3 "$FIX" check "$D/$aside")" != ok ] \
	&& ok "the damaged state DB is kept aside ($aside)" || fail "moved aside" "$(ls "$D")"
[ "$(python3 "$FIX" check "$D/portfolio.db")" = ok ] && [ -e "$older" ] && [ -e "$newer" ] \
	&& ok "the restored state DB is sound; the backups stay" || fail "restored" "$(ls "$D" "$B")"
grep -qx "restored_from=$older" "$R/dr-restore-1.restore" && grep -q "^rejected=.*$newer" "$R/dr-restore-1.restore" \
	&& ok "the damaged newest backup was rejected, the older one restored" || fail "fallback" "$(cat "$R/dr-restore-1.restore" 2>&1)"
[ "$(positions)" = '["BTCUSDT",0.5,60000.0,"ENTRY_SIGNAL"]["ETHUSDT",1.5,3000.0,"ENTRY_SIGNAL"]["XRPUSDT",100.0,0.5,"RECOVERED_ORPHAN"]' ] \
	&& ok "reconciled: orphan XRPUSDT recovered as RECOVERED_ORPHAN, phantom SOLUSDT removed, ETHUSDT qty from the exchange, zero ADAUSDT ignored" \
	|| fail "positions" "$(positions)"
alerts | grep -q '^CRITICAL CRITICAL dr-restore: phantom positions .*"symbol":"SOLUSDT","qty":10' \
	&& ok "a CRITICAL alert names the phantom position" || fail "phantom alert" "$(alerts)"
alerts | grep -q 'orphan positions .*RECOVERED_ORPHAN: \[{"symbol":"XRPUSDT"' && ! alerts | grep -q ADAUSDT \
	&& ok "the operator is notified of the orphan position" || fail "orphan notice" "$(alerts)"
[ "$(cat "$M" 2>&1)" = TRADING_MODE=PAPER_TRADING ] && [ "$(cat "$SANDBOX/calls.log")" = "systemctl stop trading-bot.service
systemctl start trading-bot.service" ] && ok "the bot was stopped, then started in PAPER_TRADING" || fail "paper" "$(cat "$M" "$SANDBOX/calls.log" 2>&1)"
health=$(grep -c '"path": "/health/trading-bot"' "$SANDBOX/requests.jsonl")
[ "$health" -ge 1 ] && [ "$(report 'r["verified_for_s"] >= 1')" = True ] \
	&& ok "paper trading watched for the verification period ($health health checks)" || fail "verification" "$health $(report r)"
stamp=$(basename "$older" | sed -E 's/.*\.([0-9]{8})T([0-9]{2})([0-9]{2})([0-9]{2})Z\.bak/\1 \2:\3:\4/')
rp=$(date -u -d "$stamp" +%Y-%m-%dT%H:%M:%SZ)
[ "$(report 'r["recovery_point"]')" = "$rp" ] && [ "$(report 'r["restored_from"]')" = "$older" ] \
	&& [ "$(report 'r["recovery_point_unix"] == int(__import__("calendar").timegm(__import__("time").strptime(r["recovery_point"], "%Y-%m-%dT%H:%M:%SZ")))')" = True ] \
	&& ok "the report gives the recovery point: the restored backup's time ($rp)" || fail "recovery point" "$rp $(report r)"
[ "$(report '100 <= r["data_loss_s"] <= 140 and r["rpo_s"] == 300 and r["rpo_met"] is True')" = True ] \
	&& ok "data lost: the 2 minutes between the backup and the incident, within the 5-minute RPO" || fail "rpo" "$(report r)"
[ "$(report '600 <= r["recovery_time_s"] <= 660 and r["rto_s"] == 1800 and r["rto_met"] is True')" = True ] \
	&& ok "the recovery time reached (incident to paper trading, ~600 s) is reported, within the 30-minute RTO" || fail "rto" "$(report r)"
[ "$(report 'len(r["orphans_recovered"]) == 1 and len(r["phantoms_removed"]) == 1 and r["divergences_adjusted"][0]["symbol"] == "ETHUSDT"')" = True ] \
	&& ok "the report lists the reconciliation" || fail "report reconciliation" "$(report r)"
"$RBK" show 1 | grep -q "Switch to LIVE_TRADING" || "$RBK" log 1 | grep -q "Switch to LIVE_TRADING" \
	&& ok "the approval prompt asks to switch to LIVE_TRADING" || fail "prompt" "$("$RBK" show 1)"
out=$("$RBK" run db-corruption -p db="$D/portfolio.db" -p systemctl="$SANDBOX_BIN/systemctl" 2>&1); rc=$?
[ $rc = 1 ] && [[ $out == *"sqlite:$D/portfolio.db"* ]] && [ "$(cat "$SANDBOX/calls.log" | wc -l)" = 2 ] \
	&& ok "the DR run holds the lock sqlite:<db>: a db-corruption run on it is refused" || fail "lock" "rc=$rc $out"
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 2 ] && [ "$(status 1)" = waiting ] && [ "$(cat "$M")" = TRADING_MODE=PAPER_TRADING ] \
	&& ok "the launcher may not approve going live (exit 2)" || fail "distinct" "rc=$rc $out"
out=$(bob happy approve 1 --comment "reconciliation checked" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status 1)" = succeeded ] && ok "approved by bob: the run succeeds" || fail "approve" "rc=$rc $out"
[ "$(cat "$M")" = TRADING_MODE=LIVE_TRADING ] && [ "$(tail -1 "$SANDBOX/calls.log")" = "systemctl restart trading-bot.service" ] \
	&& [ "$(cat "$SANDBOX/systemd/trading-bot.service.state")" = active ] \
	&& ok "the bot restarted in LIVE_TRADING" || fail "live" "$(cat "$M" "$SANDBOX/calls.log")"
alerts | grep -q "Sistema Restaurado e Operacional: .*recovery point $rp (1[0-4][0-9] s of data lost), recovery time 6[0-5][0-9] s" \
	&& ok "'Sistema Restaurado e Operacional' sent with the recovery point and time" || fail "restored notice" "$(alerts)"
"$RBK" log 1 | grep -q "approved by $(principal rbk-bob)" && ok "the approval is recorded with who gave it" || fail "approval log" ""
"$RBK" log 1 --json | grep -q "$SANDBOX_URL/alert" && fail "the webhook (a secret) is not recorded" "found in the log" || ok "the webhook (a secret) is not recorded"
sandbox_stop

# 2. Live trading is unhealthy after the switch: back to paper (rollback).
setup rollback
out=$(run_it 0s); rc=$?
[ $rc = 4 ] || fail "rollback case setup" "rc=$rc $out"
sandbox_state 's["health"] = {"trading-bot": "degraded"}'
out=$(bob rollback approve 1 2>&1); rc=$?
[ $rc = 3 ] && [ "$(status 1)" = rolled_back ] && ok "unhealthy in LIVE_TRADING: the switch was rolled back (exit 3, rolled_back)" || fail "rollback" "rc=$rc $(status 1) $out"
[ "$(cat "$M")" = TRADING_MODE=PAPER_TRADING ] && [ "$(grep -c "restart trading-bot.service" "$SANDBOX/calls.log")" = 2 ] \
	&& ok "the undo wrote PAPER_TRADING back and restarted the bot" || fail "undo" "$(cat "$M" "$SANDBOX/calls.log")"
! alerts | grep -q "Sistema Restaurado" && ok "no 'restored' notice after a rollback" || fail "no notice" "$(alerts)"
sandbox_stop

# 3. Going live is rejected: the bot stays in paper.
setup reject
out=$(run_it 0s); rc=$?
out=$(bob reject reject 1 --comment "positions need a closer look" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = failed ] && [ "$(cat "$M")" = TRADING_MODE=PAPER_TRADING ] && ! grep -q restart "$SANDBOX/calls.log" \
	&& ok "go-live rejected: stays in PAPER_TRADING, run failed (exit 1)" || fail "reject" "rc=$rc $(status 1) $out"
alerts | grep -q "going live was not approved; trading-bot.service stays in PAPER_TRADING" && [ -e "$R/dr-restore-1.json" ] \
	&& ok "the rejection is announced; the DR report was written" || fail "reject alert" "$(alerts)"
sandbox_stop

# 4. The bot is not healthy in paper: no go-live, a person is told.
setup unhealthy
sandbox_state 's["health"] = {"trading-bot": "starting"}'
out=$(run_it 0s); rc=$?
[ $rc = 1 ] && alerts | grep -q "failed its paper-trading verification (http GET .* status 503.*); it stays in PAPER_TRADING, not going live" \
	&& [ "$(cat "$M")" = TRADING_MODE=PAPER_TRADING ] && [ ! -e "$R/dr-restore-1.json" ] \
	&& ok "unhealthy during the paper verification: alerted, stays in paper, exit 1" || fail "unhealthy paper" "rc=$rc $(alerts) $out"
sandbox_stop

# 5. Every backup damaged: nothing restored, the bot stays stopped.
setup nobackup
python3 "$FIX" corrupt "$older"
out=$(run_it 0s); rc=$?
[ $rc = 1 ] && ok "no sound backup: escalated, exit 1" || fail "no backup exit" "rc=$rc $out"
alerts | grep -q "^CRITICAL CRITICAL dr-restore: cannot restore $D/portfolio.db: no backup of portfolio.db in $B passes its integrity check (2 tried)" \
	&& ok "a CRITICAL alert says why (no backup passes its integrity check)" || fail "no-backup alert" "$(alerts)"
[ "$(cat "$SANDBOX/systemd/trading-bot.service.state")" = inactive ] && ! grep -q start "$SANDBOX/calls.log" && [ ! -e "$M" ] \
	&& ok "the bot stays stopped, no mode set" || fail "stopped" "$(cat "$SANDBOX/calls.log")"
[ "$(sha256sum <"$D/portfolio.db")" = "$damaged_sum" ] && ! ls "$D" | grep -q damaged \
	&& ok "the state DB is left as it was" || fail "left as is" "$(ls "$D")"
! grep -q '"path": "/exchange/positions"' "$SANDBOX/requests.jsonl" && ok "no reconciliation without a state" || fail "no reconciliation" ""
