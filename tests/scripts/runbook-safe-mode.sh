#!/bin/bash
# runbooks/safe-mode.yaml in the sandbox: the happy path (flag set, orders
# cancelled, positions kept, exit approved by someone, flag cleared), a
# rejected exit (stays in safe mode), hold: false (ends in safe mode), and
# the escalation path (the exchange is down: critical alert, flag kept).
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"

setup() { # setup CASE: a sandbox with 3 open orders and one open position
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1"
	sandbox_state 's["exchange"] = {"open_orders": 3, "positions": [{"symbol": "BTCUSDT", "qty": 0.5}], "keys": []}'
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
}
params() { echo -p flags_url="$SANDBOX_URL/kv" -p exchange_url="$SANDBOX_URL/exchange" -p reason=test; }
st() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }

# Happy path: enter, wait for the approval, leave.
setup happy
out=$("$RBK" run safe-mode $(params) 2>&1); rc=$?
[ $rc = 4 ] && ok "safe mode entered, the run waits for the exit approval (exit 4)" || fail "enter exit" "rc=$rc $out"
[ "$(st 's["kv"]["safe_mode"]["on"]')" = True ] && ok "the safe_mode flag is set" || fail "flag set" "$(cat "$SANDBOX/state.json")"
[ "$(st 's["exchange"]["open_orders"]')" = 0 ] && grep -q '"path": "/exchange/orders/cancel_all"' "$SANDBOX/requests.jsonl" \
	&& ok "open orders were cancelled" || fail "cancel_all" "$(cat "$SANDBOX/requests.jsonl")"
[ "$(st 's["exchange"]["positions"][0]["qty"]')" = 0.5 ] && ok "positions are kept open" || fail "positions kept" ""
[ "$(st 'len([a for a in s["alerts"] if a["severity"] == "critical"])')" = 2 ] \
	&& [ "$(st '"3 open orders cancelled, 1 positions kept open" in s["alerts"][1]["text"]')" = True ] \
	&& ok "critical alerts: safe mode on, then the report (3 orders cancelled, 1 position kept)" || fail "alerts" "$(st 's["alerts"]')"
out=$("$RBK" approve 1 --comment "root cause fixed" 2>&1); rc=$?
[ $rc = 0 ] && ok "the exit approved by someone: the run succeeds" || fail "approve exit" "rc=$rc $out"
[ "$(st 's["kv"]["safe_mode"]["on"]')" = False ] && ok "the safe_mode flag is cleared after the approval" || fail "flag cleared" "$(st 's["kv"]')"
[ "$(st '"safe mode OFF" in s["alerts"][-1]["text"]')" = True ] && ok "the channel is told safe mode is off" || fail "off alert" "$(st 's["alerts"]')"
"$RBK" log 1 | grep -q "approval_decided.*approved by $(principal)" && ok "the log records who approved (the OS user)" || fail "log approver" "$("$RBK" log 1)"
sandbox_stop

# The exit is rejected: the system stays in safe mode.
setup reject
"$RBK" run safe-mode $(params) >/dev/null 2>&1
out=$("$RBK" reject 1 --comment "not yet" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(st 's["kv"]["safe_mode"]["on"]')" = True ] && [ "$(st '"stays ON" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "exit rejected: stays in safe mode, alert, exit 1" || fail "reject" "rc=$rc $out $(st 's')"
sandbox_stop

# hold: false: the run ends in safe mode (the caller owns the exit).
setup nohold
out=$("$RBK" run safe-mode $(params) -p hold=false 2>&1); rc=$?
[ $rc = 0 ] && [ "$(st 's["kv"]["safe_mode"]["on"]')" = True ] && "$RBK" show 1 | grep -q "state *holding" \
	&& ok "hold=false: ends in safe mode (holding), exit 0" || fail "hold=false" "rc=$rc $out"
sandbox_stop

# Escalation: the exchange is down, the orders cannot be cancelled.
setup down
sandbox_state 's["exchange"]["down"] = True'
out=$("$RBK" run safe-mode $(params) 2>&1); rc=$?
[ $rc = 1 ] && ok "exchange down: the run fails (exit 1)" || fail "down exit" "rc=$rc $out"
[ "$(st 's["kv"]["safe_mode"]["on"]')" = True ] && ok "the flag stays set" || fail "flag kept" "$(st 's')"
[ "$(st '"procedure FAILED" in s["alerts"][-1]["text"] and s["alerts"][-1]["severity"] == "critical"')" = True ] \
	&& ok "a critical escalation alert went out" || fail "escalation alert" "$(st 's["alerts"]')"
"$RBK" log 1 | grep -q "cancel_orders -> escalate (failure)" && ok "the log shows the failure edge from cancel_orders" || fail "log edge" "$("$RBK" log 1)"
