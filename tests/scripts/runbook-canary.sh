#!/bin/bash
# runbooks/canary.yaml in the sandbox, with stand-ins for quant_pipeline's
# Python and ./bin/canary.sh (tests/sandbox/extra/canary): the happy path
# (limits written, every pre-live item run, test alert confirmed, go-live
# approved, the loop running), a failure after going live
# (metrics stop answering: rollback plan - loop paused, cancel_all, previous
# champion restored, alert), and failures before going live (missing data,
# the kill-switch does not pause, the test alert not confirmed).
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
EXTRA="$RBK_ROOT/tests/sandbox/extra/canary"
LOOPS=()
stop_loops() { # the trading loops the stand-in started, by their pids
	for p in "${LOOPS[@]}"; do kill "$p" 2>/dev/null; done
}
trap 'stop_loops; sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"

setup() {
	sandbox_start "$TMP/$1"
	export RBK_HOME="$TMP/$1/home" RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	QP="$SANDBOX/qp" && mkdir -p "$QP"
	sandbox_state 's["exchange"] = {"open_orders": 3, "positions": []}'
}
params() {
	echo -p prev_model_id=7 -p project_dir="$QP" -p canary_env="$QP/canary.env" -p canary_cmd="$EXTRA/canary.sh" \
		-p loop_pidfile="$QP/run/qp.pid" -p python="$EXTRA/python" -p metrics_url="$SANDBOX_URL/health/metrics" \
		-p exchange_url="$SANDBOX_URL/exchange"
}
alerts() { python3 -c 'import json,sys; print("\n".join(a["text"] for a in json.load(open(sys.argv[1])).get("alerts", [])))' "$SANDBOX/state.json"; }
loop_pid() { cat "$QP/run/qp.pid" 2>/dev/null; }
alive() { # a process that runs (a zombie has exited)
	local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1); [ -n "$st" ] && [ "$st" != Z ]
}
remember_loop() { [ -n "$(loop_pid)" ] && LOOPS+=("$(loop_pid)"); }
waiting_at() { "$RBK" show "$1" | grep -q "$2"; }

# --- Happy path. ----------------------------------------------------------------------------------
setup happy
out=$("$RBK" run canary $(params) 2>&1); rc=$?
[ $rc = 4 ] && waiting_at 1 confirm_alert && ok "happy: waits for the test alert's confirmation (exit 4)" || fail "happy: confirm wait" "rc=$rc $out"
[ "$(cat "$QP/canary.env")" = "$(printf 'MAX_NOTIONAL_PER_ORDER=50\nMAX_TOTAL_NOTIONAL=200\nMAX_DD_DAILY=0.03\nLATENCY_THRESHOLD_MS=500')" ] \
	&& ok "happy: the canary limits are written with the seed's values" || fail "happy: canary env" "$(cat "$QP/canary.env")"
grep -q "python -m quant_pipeline ingest-ohlcv --exchange binance --symbols BTC/USDT (cwd=$QP " "$SANDBOX/calls.log" \
	&& grep -q '"/health/metrics"' "$SANDBOX/requests.jsonl" && ok "happy: OHLCV and metrics checked" || fail "happy: data/metrics" "$(cat "$SANDBOX/calls.log")"
alerts | grep -q "quant_pipeline test alert" && ok "happy: the test alert arrived" || fail "happy: test alert" "$(alerts)"
out=$("$RBK" approve 1 --comment "alert received" 2>&1); rc=$?
[ $rc = 4 ] && waiting_at 1 approve_live && ok "happy: confirmed; the checklist passed, waits for the go-live approval" || fail "happy: go-live wait" "rc=$rc $out"
grep -q "python -m tests.test_oms (cwd=$QP PYTHONPATH=src)" "$SANDBOX/calls.log" && grep -q "python kill-switch MAX_DD_DAILY=0.03 LATENCY_THRESHOLD_MS=500" "$SANDBOX/calls.log" \
	&& ok "happy: OMS dry-run and kill-switch simulation ran" || fail "happy: oms/kill-switch" "$(cat "$SANDBOX/calls.log")"
! grep -q canary.sh "$SANDBOX/calls.log" && ok "happy: not live before the approval" || fail "happy: early go-live" ""
out=$("$RBK" approve 1 --comment "go" 2>&1); rc=$?; remember_loop
[ $rc = 0 ] && "$RBK" show 1 | grep -q succeeded && ok "happy: approved, live, exit 0" || fail "happy: live" "rc=$rc $out"
grep -q "canary.sh MAX_NOTIONAL_PER_ORDER=50 MAX_TOTAL_NOTIONAL=200 MAX_DD_DAILY=0.03 LATENCY_THRESHOLD_MS=500 CANARY_ENV=$QP/canary.env" "$SANDBOX/calls.log" \
	&& ok "happy: canary.sh started with the limits" || fail "happy: canary.sh" "$(cat "$SANDBOX/calls.log")"
[ -n "$(loop_pid)" ] && alive "$(loop_pid)" && ok "happy: the trading loop runs" || fail "happy: loop" "$(loop_pid)"
alerts | grep -q "canary LIVE" && ! grep -q cancel_all "$SANDBOX/requests.jsonl" && ok "happy: announced live, nothing cancelled" || fail "happy: announce" "$(alerts)"
stop_loops; sandbox_stop

# --- Failure after going live: the metrics endpoint stops answering -> rollback plan. -------------
setup after
"$RBK" run canary $(params) -p prev_model_id=42 >/dev/null 2>&1
"$RBK" approve 1 >/dev/null 2>&1
sandbox_state 's["health"] = {"metrics": "unhealthy"}'
out=$("$RBK" approve 1 2>&1); rc=$?; remember_loop
[ $rc = 1 ] && "$RBK" show 1 | grep -q failed && ok "after live: metrics fail, the run fails after the rollback plan (exit 1)" || fail "after live: exit" "rc=$rc $out"
pid=$(loop_pid)
[ -n "$pid" ] && ! alive "$pid" && grep -q "paused (SIGINT)" "$SANDBOX/loop.log" && ok "after live: the trading loop was paused (SIGINT)" || fail "after live: loop" "pid=$pid"
"$RBK" log 1 --json | grep '"state":"pause_loop"' | grep -q '"killed":false' && ok "after live: SIGINT was enough (no SIGKILL)" || fail "after live: SIGINT" "$("$RBK" log 1 | grep -A3 pause_loop)"
grep -q '"/exchange/orders/cancel_all"' "$SANDBOX/requests.jsonl" && python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["exchange"]["open_orders"])' "$SANDBOX/state.json" \
	&& ok "after live: everything cancelled on the exchange" || fail "after live: cancel_all" "$(cat "$SANDBOX/state.json")"
[ "$(cat "$SANDBOX/canary/champion" 2>/dev/null)" = "42 runs/models.db runs/models" ] && ok "after live: the previous champion (42) was restored" || fail "after live: champion" "$(cat "$SANDBOX/canary/champion" 2>&1)"
[ "$(grep -n . "$SANDBOX/requests.jsonl" | grep -o '"path": "/exchange/[a-z_/]*"' | tr '\n' ,)" = '"path": "/exchange/orders/cancel_all","path": "/exchange/positions",' ] \
	&& ok "after live: cancel, then positions read" || fail "after live: order" "$(grep exchange "$SANDBOX/requests.jsonl")"
alerts | grep -q "canary ROLLED BACK (run 1): trading loop paused ok, cancel_all ok, positions left \[\], champion 42 restored ok" \
	&& ok "after live: the rollback was reported" || fail "after live: alert" "$(alerts)"
stop_loops; sandbox_stop

# --- Failures before going live: nothing started, an alert. ---------------------------------------
setup data
mkdir -p "$SANDBOX/canary" && touch "$SANDBOX/canary/data.fail"
out=$("$RBK" run canary $(params) 2>&1); rc=$?
[ $rc = 1 ] && ! grep -q -e test_oms -e canary.sh "$SANDBOX/calls.log" && [ ! -e "$QP/run/qp.pid" ] \
	&& alerts | grep -q "canary NOT live (run 1): pre-live checklist failed - data failed, metrics not run" \
	&& ok "missing bars: not live, exit 1, alert names the item" || fail "missing bars" "rc=$rc $out $(alerts)"
! grep -q -e cancel_all "$SANDBOX/requests.jsonl" && [ ! -e "$SANDBOX/canary/champion" ] && ok "missing bars: no rollback plan (nothing was live)" || fail "missing bars: rollback" ""
sandbox_stop

setup killswitch
mkdir -p "$SANDBOX/canary" && touch "$SANDBOX/canary/killswitch.fail"
"$RBK" run canary $(params) >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 1 ] && ! grep -q canary.sh "$SANDBOX/calls.log" && alerts | grep -q "OMS ok, kill-switch paused False, go-live approval not run" \
	&& ok "kill-switch does not pause: not live, exit 1" || fail "kill-switch" "rc=$rc $out $(alerts)"
sandbox_stop

setup noalert
"$RBK" run canary $(params) >/dev/null 2>&1
out=$("$RBK" reject 1 --comment "no alert arrived" 2>&1); rc=$?
[ $rc = 1 ] && ! grep -q -e test_oms -e canary.sh "$SANDBOX/calls.log" && alerts | grep -q "confirmed failed" \
	&& ok "test alert not received: not live, exit 1" || fail "no alert" "rc=$rc $out $(alerts)"
sandbox_stop

# A bad limit is refused before anything runs.
out=$("$RBK" run canary -p prev_model_id=1 -p max_dd_daily=3 2>&1); rc=$?
[ $rc = 2 ] && ok "MAX_DD_DAILY above 1: bad param (exit 2)" || fail "bad limit" "rc=$rc $out"
