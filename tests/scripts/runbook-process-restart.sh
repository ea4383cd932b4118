#!/bin/bash
# runbooks/process-restart.yaml in the sandbox, on real SQLite files and the
# sandbox exchange:
#  - happy path: the loop is stopped, the state reloaded and reconciled (an
#    orphan recovered as RECOVERED_ORPHAN, a phantom removed with a CRITICAL
#    alert, a divergent quantity taken from the exchange, a zero position
#    ignored), candles two hours old backfilled to fresh, the loop started,
#    active and healthy, the reconciliation reported;
#  - the exchange is down: no reconciliation, the loop is NOT started;
#  - the backfill fails (tried 3 times) or brings nothing (stale data): not started;
#  - the state DB is damaged: not started;
#  - started but unhealthy: a critical alert.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
mkdir -p "$TMP/bin" && ln -s "$PY" "$TMP/bin/python3" && export PATH="$TMP/bin:$PATH" # for the sandbox and the stand-ins too
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
X="$RBK_ROOT/tests/sandbox/extra/process-restart"

setup() { # setup CASE: 3 local positions, candles 2 h old, the bot's unit failed
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	mkdir -p "$SANDBOX/systemd" "$SANDBOX/data"
	echo failed >"$SANDBOX/systemd/trading-bot.service.state"
	"$PY" "$X/fixture.py" state "$SANDBOX/data/portfolio.db" BTCUSDT:0.5:60000 ETHUSDT:2:3000 SOLUSDT:10:150
	"$PY" "$X/fixture.py" market "$SANDBOX/data/market.db" 7200
	sandbox_state 's["exchange"] = {"positions": [
		{"symbol": "BTCUSDT", "qty": 0.5, "entry_price": 60000},
		{"symbol": "ETHUSDT", "qty": "1.5"},
		{"symbol": "XRPUSDT", "qty": 100, "entry_price": 0.5},
		{"symbol": "ADAUSDT", "qty": 0}]}'
	ARGS=(-p db="$SANDBOX/data/portfolio.db" -p market_db="$SANDBOX/data/market.db" -p exchange_url="$SANDBOX_URL/exchange"
		-p systemctl="$SANDBOX_BIN/systemctl" -p health_url="$SANDBOX_URL/health/trading-bot" -p backfill_cmd="'$X/backfill'"
		-p health_every=200ms -p health_for=1s -p http_retries=0)
}
st() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
positions() { "$PY" "$X/fixture.py" query "$SANDBOX/data/portfolio.db" "select symbol, qty, entry_price, reason_code from positions order by symbol" | tr -d ' \n'; }
newest_age() { echo $(( $(date +%s) - $("$PY" "$X/fixture.py" query "$SANDBOX/data/market.db" "select max(ts) from candles" | tr -dc 0-9) )); }
status() { "$RBK" show "$1" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }
unit() { cat "$SANDBOX/systemd/trading-bot.service.state"; }

# 1. Happy path.
setup happy
out=$("$RBK" run process-restart "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status 1)" = succeeded ] && ok "restarted after reconciliation and backfill: exit 0, succeeded" || fail "happy exit" "rc=$rc $out"
[ "$(positions)" = "('BTCUSDT',0.5,60000.0,'ENTRY_SIGNAL')('ETHUSDT',1.5,3000.0,'ENTRY_SIGNAL')('XRPUSDT',100.0,0.5,'RECOVERED_ORPHAN')" ] \
	&& ok "reconciled: orphan XRPUSDT recovered, phantom SOLUSDT removed, ETHUSDT qty from the exchange, zero ADAUSDT ignored" \
	|| fail "positions" "$(positions)"
[ "$(st '[a.get("severity") for a in s["alerts"]]')" = "[None, 'CRITICAL', 'info']" ] \
	&& [ "$(st '"XRPUSDT" in s["alerts"][0]["text"] and "RECOVERED_ORPHAN" in s["alerts"][0]["text"]')" = True ] \
	&& [ "$(st '"SOLUSDT" in s["alerts"][1]["text"] and "unrecorded loss" in s["alerts"][1]["text"]')" = True ] \
	&& ok "alerts: the orphan notified, the phantom CRITICAL" || fail "alerts" "$(st 's.get("alerts")')"
[ "$(st '"3 positions, 2 open orders" in s["alerts"][2]["text"] and "restarted and healthy" in s["alerts"][2]["text"]')" = True ] \
	&& ok "the report gives the reloaded state (3 positions, 2 open orders) and the health" || fail "report" "$(st 's["alerts"][-1]')"
a=$(newest_age); [ "$a" -le 120 ] && ok "the backfill made the newest candle fresh (${a} s old)" || fail "backfill" "newest ${a} s"
calls=$(sed 's/since=[0-9]*/since=N/' "$SANDBOX/calls.log" | tr '\n' '|')
[ "$calls" = "systemctl stop trading-bot.service|backfill  since=N|systemctl start trading-bot.service|systemctl is-active trading-bot.service|" ] \
	&& [ "$(unit)" = active ] && ok "order: stop, backfill, start, is-active; the unit is active" || fail "calls" "$calls"
grep -q '"path": "/health/trading-bot"' "$SANDBOX/requests.jsonl" && ok "the health endpoint was checked" || fail "health" ""
sandbox_stop

# 2. The exchange is down: no reconciliation, the loop stays stopped.
setup down
sandbox_state 's["exchange"]["down"] = True'
out=$("$RBK" run process-restart "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = failed ] && "$RBK" log 1 | grep -q "fetch_positions -> escalate (failure)" \
	&& ok "exchange down: fails at the reconciliation, exit 1" || fail "down" "rc=$rc $out"
! grep -q "start trading-bot" "$SANDBOX/calls.log" && ! grep -q backfill "$SANDBOX/calls.log" && [ "$(unit)" = inactive ] \
	&& ok "the loop was NOT started on an unreconciled state" || fail "down no start" "$(cat "$SANDBOX/calls.log")"
[ "$(positions)" = "('BTCUSDT',0.5,60000.0,'ENTRY_SIGNAL')('ETHUSDT',2.0,3000.0,'ENTRY_SIGNAL')('SOLUSDT',10.0,150.0,'ENTRY_SIGNAL')" ] \
	&& [ "$(st 's["alerts"][-1]["severity"] == "critical" and "NOT completed" in s["alerts"][-1]["text"] and "reconciliation" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "the local state is untouched; a critical alert names the reconciliation" || fail "down alert" "$(positions) $(st 's.get("alerts")')"
sandbox_stop

# 3. The backfill fails every time: tried 3 times, not started.
setup nobackfill
out=$("$RBK" run process-restart "${ARGS[@]}" -p backfill_cmd="'$X/backfill' --fail" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(grep -c '^backfill --fail' "$SANDBOX/calls.log")" = 3 ] && ! grep -q "start trading-bot" "$SANDBOX/calls.log" \
	&& ok "backfill failing: tried 3 times (retry with backoff), loop not started, exit 1" || fail "backfill fail" "rc=$rc $(cat "$SANDBOX/calls.log")"
[ "$(st '"REST backfill failed" in s["alerts"][-1]["text"] and "503" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "the alert gives the backfill's error" || fail "backfill alert" "$(st 's["alerts"][-1]')"
sandbox_stop

# 4. The backfill brings nothing: the data is 2 h old, not started.
setup stale
out=$("$RBK" run process-restart "${ARGS[@]}" -p backfill_cmd="'$X/backfill' --none" 2>&1); rc=$?
[ $rc = 1 ] && ! grep -q "start trading-bot" "$SANDBOX/calls.log" && "$RBK" log 1 | grep -q "fresh -> escalate" \
	&& [ "$(st '"newest candle is 72" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "stale data after the backfill: not started, the alert gives the candle's age, exit 1" || fail "stale" "rc=$rc $(st 's.get("alerts")')"
sandbox_stop

# 5. The state DB is damaged: not started (DR applies).
setup corrupt
"$PY" -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(0); f.write(b"\0"*100); f.close()' "$SANDBOX/data/portfolio.db"
out=$("$RBK" run process-restart "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && ! grep -q "start trading-bot" "$SANDBOX/calls.log" && ! grep -q "/exchange/positions" "$SANDBOX/requests.jsonl" \
	&& [ "$(st 's["alerts"][-1]["severity"]')" = critical ] && ok "damaged state DB: no reconciliation, not started, critical alert, exit 1" \
	|| fail "corrupt" "rc=$rc $out $(st 's.get("alerts")')"
sandbox_stop

# 6. Started but not healthy.
setup unhealthy
sandbox_state 's["health"] = {"trading-bot": "degraded"}'
out=$("$RBK" run process-restart "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(unit)" = active ] && "$RBK" log 1 | grep -q "confirm_health -> unhealthy (failure)" \
	&& [ "$(st '"NOT healthy" in s["alerts"][-1]["text"] and s["alerts"][-1]["severity"] == "critical"')" = True ] \
	&& ok "started but unhealthy for health_for: critical alert, exit 1" || fail "unhealthy" "rc=$rc $out $(st 's.get("alerts")')"
[ "$(grep -c '"path": "/health/trading-bot"' "$SANDBOX/requests.jsonl")" -ge 3 ] && ok "the health check was polled" || fail "polled" ""
