#!/bin/bash
# runbooks/rate-limit.yaml against the sandbox exchange (rate_limit) and flag
# store, a real requests log and a real INI configuration file:
#  - within limits: nothing done;
#  - 429s that persist after `settle` (a writer keeps logging them): the
#    breaker set and read back, a critical alert naming the top requester
#    (the market maker); the approval proposes quote_refresh_interval 2 -> 4;
#    approved: written into the file (only that line of that section) and
#    read back; the usage back down: breaker cleared;
#  - 429s that stop (backoff working): a warning, no breaker; the top
#    requester is a rebalancing strategy: rebalance_frequency 12 -> 6
#    proposed, rejected: the file unchanged byte for byte;
#  - persistent 429s, usage still high after recovery_for: the breaker stays,
#    critical alert, exit 1;
#  - the top requester has no such parameter: a warning, nothing written.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
mkdir -p "$TMP/bin" && ln -s "$PY" "$TMP/bin/python3" && export PATH="$TMP/bin:$PATH" # for the sandbox too
WRITER=
trap '[ -n "$WRITER" ] && kill $WRITER 2>/dev/null; sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
X="$RBK_ROOT/tests/sandbox/extra/rate-limit"

setup() { # setup CASE TOP: a requests log where TOP sent the most requests (8 of them 429), usage 1150/1200
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	mkdir -p "$SANDBOX/logs" "$SANDBOX/config"
	cp "$X/strategies.ini" "$SANDBOX/config/strategies.ini"
	LOG="$SANDBOX/logs/requests.log"
	for i in $(seq 20); do
		s=200; [ $i -le 8 ] && s=429
		echo "2026-12-04T22:00:$((10 + i))Z component=$2 method=POST path=/api/v3/order status=$s"
		[ $i -le 10 ] && echo "2026-12-04T22:00:$((10 + i))Z component=other_$2 method=GET path=/api/v3/klines status=200"
	done >"$LOG"
	sandbox_state 's["exchange"] = {"rate_used": 1150, "rate_limit": 1200}'
	ARGS=(-p exchange_url="$SANDBOX_URL/exchange" -p flags_url="$SANDBOX_URL/kv" -p exchange_name=binance -p requests_log="$LOG"
		-p config_file="$SANDBOX/config/strategies.ini" -p settle=500ms -p probe_every=100ms -p recovery_for=500ms)
}
writer() { # keep logging 429s, as a component hammering the exchange does
	( while :; do echo "2026-12-04T22:01:00Z component=$1 method=POST path=/api/v3/order status=429" >>"$LOG"; sleep 0.1; done ) &
	WRITER=$!
}
stop_writer() { kill $WRITER 2>/dev/null; wait $WRITER 2>/dev/null; WRITER=; }
st() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
status() { "$RBK" show "$1" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }
breaker() { st 's.get("kv", {}).get("infra_breaker_binance", {}).get("on")'; }
ini() { diff <(cat "$X/strategies.ini") "$SANDBOX/config/strategies.ini" | grep '^[<>]' | tr '\n' '|'; }

# 1. Within limits: 100/1200 used, 8 429s below max_429 9: nothing done.
setup calm mm_btcusdt
sandbox_state 's["exchange"]["rate_used"] = 100'
out=$("$RBK" run rate-limit "${ARGS[@]}" -p max_429=9 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *within_limits" && [ "$(st 'len(s.get("alerts", []))')" = 0 ] && [ -z "$(ini)" ] && [ "$(breaker)" = None ] \
	&& ok "usage 8 %, 8 429s below max_429 9: within limits, nothing done, exit 0" || fail "calm" "rc=$rc $out"
sandbox_stop

# 2. Persistent 429s from the market maker: breaker, approval, config adjusted, breaker cleared.
setup persist mm_btcusdt
writer mm_btcusdt
out=$("$RBK" run rate-limit "${ARGS[@]}" 2>&1); rc=$?
stop_writer
[ $rc = 4 ] && [ "$(status 1)" = waiting ] && ok "429s persist after settle: the run waits for the adjustment's approval (exit 4)" || fail "persist wait" "rc=$rc $out"
[ "$(breaker)" = True ] && grep -q '"method": "GET", "path": "/kv/infra_breaker_binance"' "$SANDBOX/requests.jsonl" \
	&& ok "infra_breaker_binance set and read back" || fail "breaker" "$(st 's.get("kv")')"
[ "$(st 's["alerts"][0]["severity"] == "critical" and "BREAKER ON" in s["alerts"][0]["text"] and "Top requester: mm_btcusdt (" in s["alerts"][0]["text"] and " more after 500ms of backoff" in s["alerts"][0]["text"]')" = True ] \
	&& ok "a critical alert names the top requester mm_btcusdt with its requests and 429s" || fail "alert" "$(st 's["alerts"]')"
"$RBK" log 1 | grep "approval_requested" | grep -q "Set \[mm_btcusdt\] quote_refresh_interval from 2 to 4 in" && ok "the approval proposes [mm_btcusdt] quote_refresh_interval 2 -> 4" || fail "prompt" "$("$RBK" log 1 | grep approval)"
[ -z "$(ini)" ] && ok "nothing written before the approval" || fail "early write" "$(ini)"
sandbox_state 's["exchange"]["rate_used"] = 300'
out=$("$RBK" approve 1 --comment "slow the quotes" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status 1)" = succeeded ] && ok "approved: exit 0" || fail "approve" "rc=$rc $out"
[ "$(ini)" = "< quote_refresh_interval = 2|> quote_refresh_interval = 4|" ] && ok "config: only [mm_btcusdt] quote_refresh_interval changed, 2 -> 4" || fail "config" "$(ini)"
[ "$(breaker)" = False ] && [ "$(st '"breaker OFF" in s["alerts"][-1]["text"] and "changed from 2 to 4" in s["alerts"][-2]["text"]')" = True ] \
	&& ok "usage back to 25 %: breaker cleared; the change and the clearing announced" || fail "cleared" "$(st 's')"
sandbox_stop

# 3. 429s that stop during settle: warning, no breaker; rebalance_frequency 12 -> 6 rejected: unchanged.
setup transient trend_eth
out=$("$RBK" run rate-limit "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 4 ] && [ "$(breaker)" = None ] && [ "$(st 's["alerts"][0]["severity"] == "warning" and "none more after 500ms" in s["alerts"][0]["text"]')" = True ] \
	&& ok "no new 429 after settle: a warning, no breaker" || fail "transient" "rc=$rc $out $(st 's')"
"$RBK" log 1 | grep "approval_requested" | grep -q "Set \[trend_eth\] rebalance_frequency from 12 to 6 in" && ok "the approval proposes [trend_eth] rebalance_frequency 12 -> 6" || fail "prompt 2" "$("$RBK" log 1 | grep approval)"
sum=$(sha256sum <"$SANDBOX/config/strategies.ini")
out=$("$RBK" reject 1 --comment "not now" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *done" && [ "$(sha256sum <"$SANDBOX/config/strategies.ini")" = "$sum" ] \
	&& [ "$(st '"NOT approved" in s["alerts"][-1]["text"]')" = True ] && ok "rejected: the file unchanged byte for byte, said so, exit 0" || fail "reject" "rc=$rc $out"
sandbox_stop

# 4. Persistent 429s and the usage stays high: the breaker stays on.
setup high mm_btcusdt
writer mm_btcusdt
"$RBK" run rate-limit "${ARGS[@]}" >/dev/null 2>&1
stop_writer
out=$("$RBK" reject 1 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = failed ] && [ "$(breaker)" = True ] && "$RBK" log 1 | grep -q "watch -> still_limited (failure)" \
	&& [ "$(st 's["alerts"][-1]["severity"] == "critical" and "breaker stays ON" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "usage still 96 % after recovery_for: breaker stays on, critical alert, exit 1" || fail "high" "rc=$rc $out"
sandbox_stop

# 5. The top requester has no tunable parameter.
setup noparam datafeed
out=$("$RBK" run rate-limit "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && [ -z "$(ini)" ] && [ "$(st '"top requester datafeed has no numeric" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "top requester without quote_refresh_interval / rebalance_frequency: a warning, nothing written" || fail "noparam" "rc=$rc $out"
