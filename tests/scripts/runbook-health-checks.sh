#!/bin/bash
# runbooks/health-checks.yaml, round after round (as the scheduler fires it
# every minute) against the sandbox exchange and flag store, real SQLite
# files, a meminfo file and the real disk:
#  - all green: nothing said, the counts file all 0;
#  - the exchange down: a warning naming it at rounds 1 and 2, safe mode
#    entered automatically at round 3 (safe-mode called: flag on, orders
#    cancelled) with a critical alert naming the check; round 4 does not
#    enter again;
#  - a pass in between resets the count (2 failures, a pass, 1 failure: warning);
#  - a WebSocket disconnected while REST answers fails the exchange check;
#  - stale data, a position drift, disk and memory: each named; only the
#    checks listed in `critical` trip;
#  - a counts file older than max_gap is no history;
#  - the schedule: every minute (rbk validate, the scheduler's table).
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
mkdir -p "$TMP/bin" && ln -s "$PY" "$TMP/bin/python3" && export PATH="$TMP/bin:$PATH" # for the sandbox too
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
X="$RBK_ROOT/tests/sandbox/extra/process-restart"

setup() { # setup CASE: all green: fresh candles, positions equal, memory 50 % free, WebSocket connected
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	mkdir -p "$SANDBOX/data" "$SANDBOX/run"
	"$PY" "$X/fixture.py" state "$SANDBOX/data/portfolio.db" BTCUSDT:0.5:60000 ETHUSDT:2:3000
	"$PY" "$X/fixture.py" market "$SANDBOX/data/market.db" 30
	printf 'MemTotal: 8000000 kB\nMemAvailable: 4000000 kB\n' >"$SANDBOX/meminfo"
	sandbox_state 's["exchange"] = {"open_orders": 3, "positions": [{"symbol": "BTCUSDT", "qty": 0.5}, {"symbol": "ETHUSDT", "qty": "2"}]}
s["kv"] = {"ws_status": {"connected": True}}'
	ARGS=(-p exchange_url="$SANDBOX_URL/exchange" -p ws_status_url="$SANDBOX_URL/kv/ws_status" -p flags_url="$SANDBOX_URL/kv"
		-p market_db="$SANDBOX/data/market.db" -p db="$SANDBOX/data/portfolio.db" -p meminfo_file="$SANDBOX/meminfo"
		-p disk_path="$SANDBOX" -p max_disk_pct=100 -p state_file="$SANDBOX/run/health.state")
	N=0
}
round() { N=$((N + 1)); out=$("$RBK" run health-checks "${ARGS[@]}" "$@" 2>&1); rc=$?; }
st() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
endstate() { "$RBK" show "$1" --json | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print(r["status"], r["state"])'; }
counts() { grep -v '^run=' "$SANDBOX/run/health.state" | tr '\n' ' '; }
nalerts() { st 'len(s.get("alerts", []))'; }

# 0. The schedule: every minute, UTC.
"$RBK" validate "$RBK_ROOT/runbooks/health-checks.yaml" >/dev/null && grep -q '^  - cron: "\* \* \* \* \*"' "$RBK_ROOT/runbooks/health-checks.yaml" \
	&& ok "valid, scheduled every minute" || fail "schedule" ""

# 1. All green.
setup green
round
[ $rc = 0 ] && [ "$(endstate 1)" = "succeeded healthy" ] && [ "$(nalerts)" = 0 ] \
	&& [ "$(counts)" = "exchange=0 data=0 reconciliation=0 resources=0 " ] && ok "all green: healthy, no alert, counts 0, exit 0" || fail "green" "rc=$rc $out $(counts)"

# 2. The exchange goes down: warnings at rounds 2 and 3, safe mode at round 4 (its 3rd failure), not again at round 5.
sandbox_state 's["exchange"]["down"] = True'
round
[ $rc = 0 ] && [ "$(endstate $N)" = "succeeded degraded" ] && [ "$(counts)" = "exchange=1 data=0 reconciliation=1 resources=0 " ] \
	&& [ "$(st 's["alerts"][-1]["severity"] == "warning" and "exchange (1 consecutive: REST ping 503" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "1st failure: a warning names the exchange (REST 503; the reconciliation cannot run either), exit 0" || fail "1st" "rc=$rc $(counts) $(st 's.get("alerts")')"
[ "$(st 's["kv"].get("safe_mode")')" = None ] && ok "no safe mode after one failure" || fail "no safe mode" "$(st 's["kv"]')"
round
[ $rc = 0 ] && [ "$(counts)" = "exchange=2 data=0 reconciliation=2 resources=0 " ] && [ "$(st 's["kv"].get("safe_mode")')" = None ] \
	&& ok "2nd failure: still a warning, count 2" || fail "2nd" "rc=$rc $(counts)"
sandbox_state 's["exchange"]["down"] = False'   # safe-mode must be able to cancel the orders
sandbox_state 's["kv"]["ws_status"] = {"connected": False}'
round
[ $rc = 1 ] && [ "$(endstate $N)" = "failed tripped" ] && [ "$(counts)" = "exchange=3 data=0 reconciliation=0 resources=0 " ] \
	&& ok "3rd consecutive failure (WebSocket down, REST back): tripped, exit 1" || fail "3rd" "rc=$rc $out $(counts)"
child=$((N + 1))
"$RBK" show $child --json | grep -q '"runbook": *"safe-mode"' && [ "$(st 's["kv"]["safe_mode"]["on"]')" = True ] && [ "$(st 's["exchange"]["open_orders"]')" = 0 ] \
	&& ok "safe mode entered automatically (safe-mode run $child: flag on, orders cancelled)" || fail "safe mode" "$(st 's')"
[ "$(st 's["alerts"][-1]["severity"] == "critical" and s["alerts"][-1]["failing"].startswith("exchange (3 consecutive: REST ping 200, WebSocket connected: false)")')" = True ] \
	&& [ "$(st '"health check failed 3x in a row: exchange" in s["kv"]["safe_mode"]["reason"]')" = True ] \
	&& ok "the critical alert and the safe-mode reason name the exchange check" || fail "trip alert" "$(st 's["alerts"][-1]')"
before=$(nalerts); N=$child
round
[ $rc = 1 ] && [ "$(endstate $N)" = "failed still_tripped" ] && [ "$(nalerts)" = "$before" ] && ! "$RBK" show $((N + 1)) >/dev/null 2>&1 \
	&& [ "$(counts)" = "exchange=4 data=0 reconciliation=0 resources=0 " ] \
	&& ok "4th failure with safe mode already on: not entered again, no new alert" || fail "4th" "rc=$rc $out"
sandbox_stop

# 3. A pass resets the count; a counts file older than max_gap is no history.
setup reset
sandbox_state 's["kv"]["ws_status"] = {"connected": False}'
round; round
sandbox_state 's["kv"]["ws_status"] = {"connected": True}'
round
[ $rc = 0 ] && [ "$(counts)" = "exchange=0 data=0 reconciliation=0 resources=0 " ] && ok "2 failures then a pass: count back to 0" || fail "reset" "$(counts)"
sandbox_state 's["kv"]["ws_status"] = {"connected": False}'
round
[ $rc = 0 ] && [ "$(counts)" = "exchange=1 data=0 reconciliation=0 resources=0 " ] && [ "$(st 's["kv"].get("safe_mode")')" = None ] \
	&& ok "then one failure: count 1, a warning, no safe mode (3 failures, not consecutive)" || fail "reset 1" "$(counts)"
printf 'exchange=2\ndata=0\nreconciliation=0\nresources=0\n' >"$SANDBOX/run/health.state"
touch -d '10 min ago' "$SANDBOX/run/health.state"
round
[ $rc = 0 ] && [ "$(counts)" = "exchange=1 data=0 reconciliation=0 resources=0 " ] && ok "a counts file 10 min old (max_gap 3m) is no history: count 1, not 3" || fail "stale state" "$(counts)"
sandbox_stop

# 4. Data, reconciliation and resources, each named; only the critical ones trip.
setup others
"$PY" "$X/fixture.py" market "$SANDBOX/data/stale.db" 3600
sandbox_state 's["exchange"]["positions"] = [{"symbol": "BTCUSDT", "qty": 0.6}, {"symbol": "ETHUSDT", "qty": 2}]'
printf 'MemTotal: 8000000 kB\nMemAvailable: 400000 kB\n' >"$SANDBOX/meminfo"
round -p market_db="$SANDBOX/data/stale.db" -p max_disk_pct=0
[ $rc = 0 ] && [ "$(counts)" = "exchange=0 data=1 reconciliation=1 resources=1 " ] && ok "stale data, drift and resources fail together: counts 1, exit 0" || fail "others" "rc=$rc $out $(counts)"
w=$(st 's["alerts"][-1]["failing"]')
[[ $w == *"data (1 consecutive: newest candle 3"*" s old (max 5m))"* ]] && [[ $w == *"reconciliation (1 consecutive: BTCUSDT drift 16.67% (local 0.5, exchange 0.6; max 1%))"* ]] \
	&& [[ $w == *"resources (1 consecutive: disk "*"% used (max 0%), memory 5% available (min 10%))"* ]] \
	&& ok "the warning names each check with its figures (candle age, BTCUSDT drift 16.67 %, disk, memory 5 %)" || fail "names" "$w"
round -p market_db="$SANDBOX/data/stale.db" -p max_disk_pct=0 -p consecutive=2 -p critical=reconciliation
[ $rc = 1 ] && [ "$(endstate $N)" = "failed tripped" ] && [ "$(st 's["alerts"][-1]["failing"]')" = "reconciliation (2 consecutive: BTCUSDT drift 16.67% (local 0.5, exchange 0.6; max 1%))" ] \
	&& [[ "$(st 's["alerts"][-1]["warnings"]')" == "data (2 consecutive"*"resources (2 consecutive"* ]] && [ "$(st 's["kv"]["safe_mode"]["on"]')" = True ] \
	&& ok "critical=reconciliation, consecutive=2: only the drift trips safe mode; data and resources stay warnings" || fail "critical list" "rc=$rc $(st 's["alerts"][-1]')"
