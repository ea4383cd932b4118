#!/bin/bash
# runbooks/circuit-breaker.yaml in the sandbox, against a SQLite metrics
# database: level 1 tripped by the day's drawdown and by a losing streak,
# level 1 within its limits, level 2 tripped by correlation (high-priority
# alert), level 3 (calls safe-mode, exit approved), and the escalations:
# positions still open, no metrics for the target.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"

setup() { # setup CASE [POSITIONS]: metrics of instances a (6.2 % today), b (calm), c (5 losses),
	# family trend (correlation 0.95), calm family carry, and a portfolio losing 3.5 % intraday
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1"
	sandbox_state "s['exchange'] = {'open_orders': 4, 'positions': ${2:-[]}}"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	"$PY" - "$SANDBOX/metrics.db" <<-'EOF'
	import sqlite3, sys
	db = sqlite3.connect(sys.argv[1])
	db.executescript("""
	create table strategy_risk(ts integer, instance text, dd_day real, dd_month real, consecutive_losses integer);
	insert into strategy_risk values (1, 'a', 1.0, 2.0, 0), (2, 'a', 6.2, 7.0, 2),
	    (1, 'b', 9.0, 12.0, 6), (2, 'b', 1.5, 4.0, 1), (2, 'c', 0.5, 3.0, 5);
	create table family_risk(ts integer, family text, dd_month real, correlation real);
	insert into family_risk values (2, 'trend', 8.0, 0.95), (2, 'carry', 3.0, 0.4);
	create table portfolio_risk(ts integer, dd_from_hwm real, intraday_loss real, api_errors_per_min real);
	insert into portfolio_risk values (1, 2.0, 0.5, 0), (2, 12.0, 3.5, 2);
	create table metrics(ts integer, last_pnl real);
	insert into metrics values (1, 100.0), (2, -1234.5);
	""")
	db.commit()
	EOF
}
params() {
	echo -p metrics_db="$SANDBOX/metrics.db" -p redis_cli="$SANDBOX_BIN/redis-cli" -p exchange_url="$SANDBOX_URL/exchange" \
		-p flags_url="$SANDBOX_URL/kv"
}
st() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
flag() { cat "$SANDBOX/redis/kv/$1" 2>/dev/null; }

# Level 1 tripped by the day's drawdown (6.2 % > 5 %).
setup l1
out=$("$RBK" run circuit-breaker $(params) -p level=strategy -p target=a 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *halted" && ok "level 1, day drawdown 6.2 %: tripped, halted, exit 0" || fail "l1 exit" "rc=$rc $out"
[ "$(flag risk:halt:a)" = pause-new-entries ] && ok "risk:halt:a = pause-new-entries in Redis" || fail "l1 flag" "$(ls "$SANDBOX/redis/kv")"
grep -q "redis-cli --raw GET risk:halt:a" "$SANDBOX/calls.log" && ok "the flag was read back" || fail "l1 read back" "$(cat "$SANDBOX/calls.log")"
[ "$(st '"day drawdown 6.2%" in s["alerts"][0]["text"] and "PnL -1234.5" in s["alerts"][0]["text"] and "until the next session" in s["alerts"][0]["text"]')" = True ] \
	&& ok "the report gives the trigger, the PnL and 'paused until the next session'" || fail "l1 report" "$(st 's.get("alerts")')"
[ "$(st 's["exchange"]["open_orders"]')" = 4 ] && [ ! -e "$SANDBOX/redis/kv/risk:halt" ] \
	&& ok "level 1 touches neither the orders nor the global flag" || fail "l1 scope" "$(st 's')"
sandbox_stop

# Level 1 within its limits: the latest row of b is calm (an older one was not).
setup calm
out=$("$RBK" run circuit-breaker $(params) -p level=strategy -p target=b 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *within_limits" && ! grep -q SET "$SANDBOX/calls.log" 2>/dev/null \
	&& [ "$(st 'len(s.get("alerts", []))')" = 0 ] && ok "level 1 within limits: nothing set, no alert, exit 0" || fail "calm" "rc=$rc $out"
# Level 1 tripped by 5 consecutive losses (with custom thresholds otherwise out of reach).
out=$("$RBK" run circuit-breaker $(params) -p level=strategy -p target=c -p daily_dd=50 -p monthly_dd=50 2>&1); rc=$?
[ $rc = 0 ] && [ "$(flag risk:halt:c)" = pause-new-entries ] && ok "level 1, 5 consecutive losses: tripped" || fail "losses" "rc=$rc $out"
sandbox_stop

# Level 2 tripped by correlation 0.95 > 0.9: pause the family, high-priority alert.
setup l2
out=$("$RBK" run circuit-breaker $(params) -p level=family -p target=trend 2>&1); rc=$?
[ $rc = 0 ] && [ "$(flag risk:halt:family:trend)" = pause-new-entries ] && ok "level 2, correlation 0.95: family paused, exit 0" || fail "l2" "rc=$rc $out"
[ "$(st 's["alerts"][0]["severity"] == "high" and "family trend paused" in s["alerts"][0]["text"] and "correlation 0.95" in s["alerts"][0]["text"]')" = True ] \
	&& ok "a high-priority alert names the family and the correlation" || fail "l2 alert" "$(st 's.get("alerts")')"
out=$("$RBK" run circuit-breaker $(params) -p level=family -p target=carry 2>&1); rc=$?
[ $rc = 0 ] && [ -z "$(flag risk:halt:family:carry)" ] && ok "level 2, calm family: nothing done" || fail "l2 calm" "rc=$rc $out"
sandbox_stop

# Level 3 tripped by the intraday loss (3.5 % > 3 %): safe-mode is called and waits for the exit approval.
setup l3 "[{'symbol': 'ETHUSDT', 'qty': 2}]"
out=$("$RBK" run circuit-breaker $(params) -p level=global 2>&1); rc=$?
[ $rc = 4 ] && ok "level 3: the run waits in safe mode (exit 4)" || fail "l3 exit" "rc=$rc $out"
[ "$(flag risk:halt)" = safe-mode ] && [ "$(st 's["kv"]["safe_mode"]["on"]')" = True ] && [ "$(st 's["exchange"]["open_orders"]')" = 0 ] \
	&& [ "$(st 'len(s["exchange"]["positions"])')" = 1 ] && ok "risk:halt set, safe_mode on, orders cancelled, positions kept" || fail "l3 effects" "$(st 's')"
"$RBK" show 1 | grep -q "called *run 2" && "$RBK" show 2 | grep -q "runbook *safe-mode" && ok "safe-mode runs as the called run 2" || fail "l3 call" "$("$RBK" show 1)"
[ "$(st '"circuit breaker level 3: portfolio drawdown 12% since the HWM, intraday loss 3.5%" in s["alerts"][0]["text"]')" = True ] \
	&& ok "the safe-mode alert carries the level-3 trigger" || fail "l3 alert" "$(st 's["alerts"]')"
out=$("$RBK" approve 2 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "status *succeeded" && [ "$(st 's["kv"]["safe_mode"]["on"]')" = False ] && [ "$(flag risk:halt)" = safe-mode ] \
	&& ok "exit approved: safe mode left, the breaker run succeeds, risk:halt stays until the next session" || fail "l3 approve" "rc=$rc $out"
sandbox_stop

# Escalation: positions are still open after the checks.
setup open "[{'symbol': 'BTCUSDT', 'qty': 0.1}]"
out=$("$RBK" run circuit-breaker $(params) -p level=strategy -p target=a -p confirm_checks=1 2>&1); rc=$?
[ $rc = 1 ] && [ "$(flag risk:halt:a)" = pause-new-entries ] && ok "positions still open: exit 1, the pause stays" || fail "open exit" "rc=$rc $out"
[ "$(st 's["alerts"][-1]["severity"] == "critical" and "1 positions are still open" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "a critical alert asks a person to close them" || fail "open alert" "$(st 's.get("alerts")')"
sandbox_stop

# Escalation: no metrics for the target.
setup nodata
out=$("$RBK" run circuit-breaker $(params) -p level=strategy -p target=zz 2>&1); rc=$?
[ $rc = 1 ] && "$RBK" log 1 | grep -q "measure_strategy -> escalate" && [ "$(st '"could not measure or halt" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "no metrics for the instance: escalated, exit 1" || fail "nodata" "rc=$rc $out"
