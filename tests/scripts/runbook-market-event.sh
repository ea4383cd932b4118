#!/bin/bash
# runbooks/market-event.yaml in the sandbox, one case per row of the table
# and its failure branches: delisting (hard block + market exit order with
# EXIT_FORCED_DELISTING; no position; an order that does not fill), trading
# halt (hard block, position kept, CRITICAL alert, waits for the exchange,
# unblock only after approval; rejected; never resumes), API downtime
# (probed with backoff, reduce-only, waits for the API, approved
# reconciliation against the bot's SQLite positions, reduce-only cleared;
# differences and a rejection keep it; an API that answers), flash crash
# (drop over the window trips the symbol breaker for the period, stop-losses
# and positions untouched, reauthorised only on approval; rejected; a small
# drop does nothing).
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
EXIT="$RBK_ROOT/tests/sandbox/extra/market-event/force-exit"

setup() { # setup CASE: a sandbox with a long BTCUSDT and a long ETHUSDT position
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1"
	sandbox_state 's["exchange"] = {"positions": [{"symbol": "ETHUSDT", "qty": 2}, {"symbol": "BTCUSDT", "qty": "0.5"}], "open_orders": 4}'
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	ARGS=(-p flags_url="$SANDBOX_URL/kv" -p exchange_url="$SANDBOX_URL/exchange" -p poll_every=200ms -p wait_for=10s)
}
st() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
flag() { st 's.get("kv", {}).get("'"$1"'", {}).get("on")'; }
positions_untouched() { [ "$(st '[(p["symbol"], p["qty"]) for p in s["exchange"]["positions"]]')" = "[('ETHUSDT', 2), ('BTCUSDT', '0.5')]" ] && [ "$(st 's["exchange"]["open_orders"]')" = 4 ]; }
# when FLAG PYTHON: once the run has set the flag FLAG, edit the sandbox's state (the exchange comes back)
when() { ( for _ in $(seq 300); do [ "$(flag "$1")" = True ] && break; sleep 0.1; done; sleep 0.5; sandbox_state "$2" ) & LATER=$!; }

# ---- Delisting: hard block, market exit of the open position, final.
setup delist
out=$("$RBK" run market-event "${ARGS[@]}" -p event=delisting -p symbol=BTCUSDT -p fill_wait=100ms \
	-p exit_cmd="'$EXIT' --symbol \"\$SYMBOL\" --side \"\$SIDE\" --qty \"\$QTY\" --type MARKET --reason \"\$REASON\"" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *delisting_done" && ok "delisting: final, no approval asked, exit 0" || fail "delist exit" "rc=$rc $out"
[ "$(flag block:BTCUSDT)" = True ] && [ "$(st 's["kv"]["block:BTCUSDT"]["kind"]')" = hard ] && ok "delisting: hard block on BTCUSDT" || fail "delist block" "$(st 's.get("kv")')"
[ "$(cat "$SANDBOX/orders.jsonl" 2>/dev/null)" = '{"symbol": "BTCUSDT", "side": "SELL", "qty": "0.5", "type": "MARKET", "reason": "EXIT_FORCED_DELISTING"}' ] \
	&& ok "delisting: one market SELL 0.5 BTCUSDT exit order, ReasonCode EXIT_FORCED_DELISTING" || fail "delist order" "$(cat "$SANDBOX/orders.jsonl" 2>&1)"
[ "$(st '[(p["symbol"], p["qty"]) for p in s["exchange"]["positions"]]')" = "[('ETHUSDT', 2), ('BTCUSDT', 0)]" ] && [ "$(flag block:ETHUSDT)" = None ] \
	&& ok "delisting: the BTCUSDT position is closed (confirmed), ETHUSDT untouched" || fail "delist positions" "$(st 's["exchange"]')"
[ "$(st '"DELISTING BTCUSDT" in s["alerts"][-1]["text"] and "closed by a market SELL order" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "delisting: the channel is told" || fail "delist alert" "$(st 's.get("alerts")')"
sandbox_stop

# Delisting without an open position: blocked, no order. Then an order that does not fill: escalated.
setup delist2
sandbox_state 's["exchange"]["positions"][1]["qty"] = 0'
out=$("$RBK" run market-event "${ARGS[@]}" -p event=delisting -p symbol=BTCUSDT -p exit_cmd="'$EXIT' --symbol \"\$SYMBOL\"" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(flag block:BTCUSDT)" = True ] && [ ! -e "$SANDBOX/orders.jsonl" ] && [ "$(st '"no open position" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "delisting, no position: blocked, no exit order, exit 0" || fail "delist nopos" "rc=$rc $out"
sandbox_state 's["exchange"]["positions"][0]["qty"] = -3'
echo nofill >"$SANDBOX/exit.mode"
out=$("$RBK" run market-event "${ARGS[@]}" -p event=delisting -p symbol=ETHUSDT -p fill_wait=100ms \
	-p exit_cmd="'$EXIT' --symbol \"\$SYMBOL\" --side \"\$SIDE\" --qty \"\$QTY\" --type MARKET --reason \"\$REASON\"" 2>&1); rc=$?
[ $rc = 1 ] && "$RBK" log 2 | grep -q "scan -> exit_not_filled" && grep -q '"symbol": "ETHUSDT", "side": "BUY", "qty": "3"' "$SANDBOX/orders.jsonl" \
	&& [ "$(st '"STILL OPEN" in s["alerts"][-1]["text"]')" = True ] && ok "short position not closed by the exit order (BUY 3): critical alert, exit 1" || fail "nofill" "rc=$rc $out $(cat "$SANDBOX/orders.jsonl")"
sandbox_stop

# ---- Trading halt: hard block, position kept, CRITICAL alert, wait for the exchange, unblock on approval.
setup halt
sandbox_state 's["health"] = {"BTCUSDT": "halted"}'
HALT=(-p event=trading_halt -p symbol=BTCUSDT -p status_url="$SANDBOX_URL/health/BTCUSDT" -p resume_regex='"status": "healthy"')
when block:BTCUSDT 's["health"]["BTCUSDT"] = "healthy"'
out=$("$RBK" run market-event "${ARGS[@]}" "${HALT[@]}" 2>&1); rc=$?
wait $LATER
[ $rc = 4 ] && "$RBK" show 1 | grep -q "state *approve_unblock" && ok "halt: waited for the exchange to resume, then asks to lift the block (exit 4)" || fail "halt exit" "rc=$rc $out"
n=$(grep -c '"path": "/health/BTCUSDT?symbol=BTCUSDT"' "$SANDBOX/requests.jsonl")
[ "$n" -ge 3 ] && ok "halt: the symbol's status was polled ($n times) until it traded again" || fail "halt polled" "n=$n"
[ "$(flag block:BTCUSDT)" = True ] && positions_untouched && [ ! -e "$SANDBOX/orders.jsonl" ] && ok "halt: hard block set, the position NOT closed, no order" || fail "halt effects" "$(st 's')"
[ "$(st 's["alerts"][0]["severity"] == "critical" and "TRADING HALT" in s["alerts"][0]["text"] and "NOT closed" in s["alerts"][0]["text"]')" = True ] \
	&& ok "halt: a CRITICAL alert" || fail "halt alert" "$(st 's.get("alerts")')"
out=$("$RBK" approve 1 --comment "exchange resumed" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(flag block:BTCUSDT)" = False ] && positions_untouched && ok "halt: block lifted only after the approval, exit 0" || fail "halt approve" "rc=$rc $out"
# Rejected: the block stays.
out=$("$RBK" run market-event "${ARGS[@]}" "${HALT[@]}" 2>&1); rc=$?
out=$("$RBK" reject 2 --comment "not yet" 2>&1); rc2=$?
[ $rc = 4 ] && [ $rc2 = 1 ] && [ "$(flag block:BTCUSDT)" = True ] && [ "$(st '"hard block KEPT" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "halt: unblock rejected: block kept, exit 1" || fail "halt reject" "rc=$rc rc2=$rc2 $out"
# Never resumes within wait_for: alerted, block stays.
sandbox_state 's["health"]["BTCUSDT"] = "halted"'
out=$("$RBK" run market-event "${ARGS[@]}" "${HALT[@]}" -p wait_for=1s 2>&1); rc=$?
[ $rc = 1 ] && "$RBK" log 3 | grep -q "wait_resume -> still_halted" && [ "$(flag block:BTCUSDT)" = True ] && [ "$(st '"still HALTED" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "halt: no resumption within wait_for: alert, block stays, exit 1" || fail "halt timeout" "rc=$rc $out"
sandbox_stop

# ---- API downtime: probed with backoff, reduce-only, wait for the API, approved reconciliation, cleared.
setup api
DB="$SANDBOX/portfolio.db"
"$PY" -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute("create table positions (symbol text primary key, qty real, entry_price real)")
d.executemany("insert into positions values (?,?,?)", [("BTCUSDT", 0.5, 60000), ("ETHUSDT", 2, 3000)]); d.commit()' "$DB"
sandbox_state 's["exchange"]["down"] = True'
when reduce_only 's["exchange"]["down"] = False'
t0=$(date +%s%N)
out=$("$RBK" run market-event "${ARGS[@]}" -p event=api_downtime -p api_retries=0 -p db="$DB" 2>&1); rc=$?
wait $LATER
[ $rc = 4 ] && "$RBK" show 1 | grep -q "state *approve_reconcile" && ok "API down: reduce-only, then waits for an approval to reconcile once the API is back (exit 4)" || fail "api exit" "rc=$rc $out"
"$PY" - "$SANDBOX/requests.jsonl" <<'PY' && ok "API down: 3 probes with backoff before reduce-only was set" || fail "api probes" "$(cat "$SANDBOX/requests.jsonl")"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
i = next(k for k, x in enumerate(r) if x["path"] == "/kv/reduce_only")
pings = [x["at"] for x in r[:i] if x["path"] == "/exchange/ping"]
sys.exit(0 if len(pings) == 3 and pings[2] - pings[1] > pings[1] - pings[0] >= 0.45 else 1)
PY
[ "$(flag reduce_only)" = True ] && positions_untouched && [ "$(st '"REDUCE-ONLY on" in s["alerts"][0]["text"] and s["alerts"][0]["severity"] == "critical"')" = True ] \
	&& ok "API down: reduce_only flag set, positions kept, critical alert" || fail "api flag" "$(st 's')"
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 0 ] && [ "$(flag reduce_only)" = False ] && "$RBK" log 1 | grep -q "diff -> clear_reduce_only" \
	&& ok "API back, reconciliation approved: positions agree, reduce-only cleared, exit 0" || fail "api approve" "rc=$rc $out"
# Differences: shown, reduce-only kept until approved; here rejected.
"$PY" -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute("update positions set qty = 1 where symbol = ?", ("ETHUSDT",)); d.execute("insert into positions values (?,?,?)", ("SOLUSDT", 10, 150)); d.commit()' "$DB"
out=$("$RBK" run market-event "${ARGS[@]}" -p event=api_downtime -p api_retries=0 -p db="$DB" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 2 | grep -q "state *api_ok" && [ "$(flag reduce_only)" = False ] && ok "API answering: no downtime, nothing done, exit 0" || fail "api ok" "rc=$rc $out"
sandbox_state 's["exchange"]["down"] = True'
when reduce_only 's["exchange"]["down"] = False'
out=$("$RBK" run market-event "${ARGS[@]}" -p event=api_downtime -p api_retries=0 -p db="$DB" 2>&1); rc=$?
wait $LATER
out=$("$RBK" approve 3 2>&1); rc2=$?
[ $rc = 4 ] && [ $rc2 = 4 ] && "$RBK" show 3 | grep -q "state *approve_clear" && [ "$(flag reduce_only)" = True ] \
	&& [ "$(st '"ETHUSDT bot=1.0 exchange=2.0; SOLUSDT bot=10.0 exchange=0" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "reconciliation finds ETHUSDT 1 vs 2 and SOLUSDT only in the bot: reported, reduce-only kept, asks again" || fail "api diff" "rc=$rc rc2=$rc2 $out $(st 's.get("alerts")[-1]')"
out=$("$RBK" reject 3 2>&1); rc=$?
[ $rc = 1 ] && [ "$(flag reduce_only)" = True ] && [ "$(st '"reduce-only KEPT" in s["alerts"][-1]["text"]')" = True ] && ok "clearing rejected: reduce-only kept, exit 1" || fail "api reject" "rc=$rc $out"
sandbox_stop

# ---- Flash crash: 100 -> 84 in the window (16%): breaker for the period, stop-losses untouched, reauthorised on approval.
setup crash
printf '100\n99.5\n97\n90\n84\n' >"$SANDBOX/prices.txt"
CRASH=(-p event=flash_crash -p symbol=BTCUSDT -p period=1s -p price_cmd="cat '$SANDBOX/prices.txt'")
t0=$(date +%s%N)
out=$("$RBK" run market-event "${ARGS[@]}" "${CRASH[@]}" 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc = 4 ] && "$RBK" show 1 | grep -q "state *approve_reauth" && [ $ms -ge 1000 ] && ok "flash crash: breaker held for the period (${ms} ms), then asks to reauthorise (exit 4)" || fail "crash exit" "rc=$rc ${ms}ms $out"
[ "$(flag breaker:BTCUSDT)" = True ] && [ "$(st 's["kv"]["breaker:BTCUSDT"]["drop_pct"]')" = 16 ] && ok "flash crash: breaker:BTCUSDT set (drop 16%)" || fail "crash flag" "$(st 's.get("kv")')"
positions_untouched && [ ! -e "$SANDBOX/orders.jsonl" ] && ! grep -q cancel_all "$SANDBOX/requests.jsonl" && [ "$(flag block:BTCUSDT)" = None ] \
	&& ok "flash crash: stop-losses, orders and positions untouched, no hard block" || fail "crash untouched" "$(st 's')"
[ "$(st '"FLASH CRASH on BTCUSDT" in s["alerts"][0]["text"] and "high=100 last=84" in s["alerts"][0]["text"]')" = True ] && ok "flash crash: critical alert with the high and the last price" || fail "crash alert" "$(st 's.get("alerts")')"
out=$("$RBK" approve 1 --comment "market reviewed" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(flag breaker:BTCUSDT)" = False ] && ok "flash crash: reauthorised manually after approval, exit 0" || fail "crash approve" "rc=$rc $out"
out=$("$RBK" run market-event "${ARGS[@]}" "${CRASH[@]}" -p period=100ms 2>&1); rc=$?
out=$("$RBK" reject 2 2>&1); rc2=$?
[ $rc = 4 ] && [ $rc2 = 1 ] && [ "$(flag breaker:BTCUSDT)" = True ] && [ "$(st '"circuit breaker KEPT" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "flash crash: reauthorisation rejected: breaker kept, exit 1" || fail "crash reject" "rc=$rc rc2=$rc2 $out"
printf '100\n95\n91\n' >"$SANDBOX/prices.txt"
sandbox_state 's["kv"] = {}'
out=$("$RBK" run market-event "${ARGS[@]}" "${CRASH[@]}" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 3 | grep -q "state *no_crash" && [ "$(flag breaker:BTCUSDT)" = None ] && ok "a 9% drop is below 15%: nothing done, exit 0" || fail "no crash" "rc=$rc $out"
out=$("$RBK" run market-event "${ARGS[@]}" -p event=flash_crash 2>&1); rc=$?
[ $rc = 1 ] && "$RBK" show 4 | grep -q "state *no_symbol" && ok "an event on a symbol without a symbol: refused, exit 1" || fail "no symbol" "rc=$rc $out"
