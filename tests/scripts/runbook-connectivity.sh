#!/bin/bash
# runbooks/connectivity.yaml against the sandbox exchange and flag store:
#  - the API answers: nothing done (a breaker left on earlier is cleared);
#  - a temporary failure: the network checked, back within persist_for: no breaker;
#  - a persistent failure (first 4 tries with exponential backoff: 250 ms,
#    500 ms, 1 s apart), the full pause rejected: the breaker flag set and
#    read back, a critical alert, no safe mode; still down after
#    recovery_for: a critical alert, the breaker stays;
#  - a persistent failure, the full pause approved: safe-mode called (orders
#    cancelled), the API comes back: breaker cleared, safe mode left after a
#    second approval.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
mkdir -p "$TMP/bin" && ln -s "$PY" "$TMP/bin/python3" && export PATH="$TMP/bin:$PATH" # for the sandbox too
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"

setup() { # setup CASE: the exchange (2 open orders, a position), up
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	sandbox_state 's["exchange"] = {"open_orders": 2, "positions": [{"symbol": "BTCUSDT", "qty": 0.5}]}'
	ARGS=(-p exchange_url="$SANDBOX_URL/exchange" -p flags_url="$SANDBOX_URL/kv" -p ping="$SANDBOX_BIN/ping" -p exchange_name=binance
		-p probe_every=100ms -p persist_for=500ms -p recovery_for=500ms)
}
st() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
status() { "$RBK" show "$1" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }
breaker() { st 's.get("kv", {}).get("infra_breaker_binance", {}).get("on")'; }

# 1. Up: nothing to do; a breaker left on by an earlier run is cleared.
setup up
out=$("$RBK" run connectivity "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *healthy" && [ "$(st 'len(s.get("alerts", []))')" = 0 ] && [ "$(breaker)" = None ] \
	&& [ ! -e "$SANDBOX/calls.log" ] && ok "API up: healthy, no flag written, no alert, exit 0" || fail "up" "rc=$rc $out"
sandbox_state 's["kv"] = {"infra_breaker_binance": {"on": True, "reason": "earlier"}}'
out=$("$RBK" run connectivity "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(breaker)" = False ] && "$RBK" show 2 | grep -q "state *recovered" && [ "$(st '"breaker OFF" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "API up with a breaker left on: the breaker is cleared and announced" || fail "clear stale" "rc=$rc $out"
sandbox_stop

# 2. Temporary: down through the retries and the network check, back within persist_for (20 s).
setup transient
sandbox_state 's["exchange"]["down"] = True'
( for _ in $(seq 300); do grep -q ping "$SANDBOX/calls.log" 2>/dev/null && break; sleep 0.05; done
  sandbox_state 's["exchange"]["down"] = False' ) &
flipper=$!
out=$("$RBK" run connectivity "${ARGS[@]}" -p persist_for=20s 2>&1); rc=$?
wait $flipper
[ $rc = 0 ] && "$RBK" log 1 | grep -q "reprobe -> transient" && [ "$(breaker)" = None ] \
	&& [ "$(st 's["alerts"][0]["severity"] == "warning" and "temporary, no breaker" in s["alerts"][0]["text"]')" = True ] \
	&& ok "temporary failure: back within persist_for, no breaker, a warning, exit 0" || fail "transient" "rc=$rc $out $(st 's.get("alerts")')"
grep -q "ping -c 3 -W 2 api.binance.com" "$SANDBOX/calls.log" && ok "the node's network to the exchange host was checked" || fail "network" "$(cat "$SANDBOX/calls.log")"
sandbox_stop

# 3. Persistent, the full pause rejected: breaker only; still down at the end.
setup reject
sandbox_state 's["exchange"]["down"] = True'
out=$("$RBK" run connectivity "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 4 ] && [ "$(status 1)" = waiting ] && ok "persistent failure: the run asks whether to pause everything (exit 4)" || fail "reject wait" "rc=$rc $out"
[ "$(breaker)" = True ] && grep -q '"method": "GET", "path": "/kv/infra_breaker_binance"' "$SANDBOX/requests.jsonl" \
	&& ok "infra_breaker_binance set and read back" || fail "breaker set" "$(st 's.get("kv")')"
[ "$(st 's["alerts"][0]["severity"] == "critical" and "CIRCUIT BREAKER ON for exchange binance" in s["alerts"][0]["text"] and "64 bytes from api.binance.com" in s["alerts"][0]["text"]')" = True ] \
	&& ok "a critical alert: breaker on, the network check's result, how to answer" || fail "trip alert" "$(st 's.get("alerts")')"
gaps=$("$PY" - "$SANDBOX/requests.jsonl" <<-'EOF'
	import json, sys
	t = [r["at"] for r in map(json.loads, open(sys.argv[1])) if r["path"] == "/exchange/ping"][:4]
	print(" ".join("%.2f" % (b - a) for a, b in zip(t, t[1:])))
	EOF
)
read -r g1 g2 g3 <<<"$gaps"
"$PY" -c "import sys; g=[$g1,$g2,$g3]; sys.exit(not (0.2 <= g[0] < g[1] < g[2] and g[2] >= 0.9))" \
	&& [ "$("$RBK" log 1 | grep -c 'step_started *probe attempt')" = 4 ] \
	&& ok "first 4 tries with exponential backoff (gaps $gaps s)" || fail "backoff" "gaps $gaps"
out=$("$RBK" reject 1 --comment "breaker is enough" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = failed ] && "$RBK" log 1 | grep -q "watch_check -> still_down" \
	&& ok "pause rejected, still down after recovery_for: exit 1" || fail "reject" "rc=$rc $out"
[ "$(breaker)" = True ] && [ "$(st 's.get("kv", {}).get("safe_mode")')" = None ] && [ "$(st 's["exchange"]["open_orders"]')" = 2 ] \
	&& [ "$(st '"still down" in s["alerts"][-1]["text"] and "stays ON (safe mode entered by this run: false)" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "breaker stays on, no safe mode, orders untouched, critical alert" || fail "reject effects" "$(st 's')"
sandbox_stop

# 4. Persistent, the full pause approved; the API comes back; safe-mode exit approved.
setup approve
sandbox_state 's["exchange"]["down"] = True'
"$RBK" run connectivity "${ARGS[@]}" >/dev/null 2>&1
sandbox_state 's["exchange"]["down"] = False'
out=$("$RBK" approve 1 --comment "pause all" 2>&1); rc=$?
[ $rc = 4 ] && "$RBK" show 2 --json | grep -q '"runbook": *"safe-mode"' && [ "$(status 2)" = succeeded ] \
	&& ok "pause approved: safe-mode ran (run 2); the run waits for the safe-mode exit (exit 4)" || fail "approve" "rc=$rc $out"
[ "$(st 's["kv"]["safe_mode"]["on"]')" = True ] && [ "$(st 's["exchange"]["open_orders"]')" = 0 ] && [ "$(breaker)" = False ] \
	&& ok "safe mode on, open orders cancelled, the API back: breaker cleared" || fail "approve effects" "$(st 's')"
out=$("$RBK" approve 1 --comment "root cause: exchange outage over" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status 1)" = succeeded ] && [ "$(st 's["kv"]["safe_mode"]["on"]')" = False ] \
	&& [ "$(st '"safe mode OFF after the exchange binance outage" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "safe-mode exit approved: flag cleared, announced, exit 0" || fail "exit" "rc=$rc $out"
