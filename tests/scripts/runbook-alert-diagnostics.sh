#!/bin/bash
# runbooks/alert-diagnostics.yaml in the sandbox, with a stand-in Prometheus
# endpoint (tests/sandbox/extra/alert-diagnostics/metrics_server.py), the
# sandbox's docker and health checks, quant_pipeline's Python stand-in
# (tests/sandbox/extra/alert-rollback) and a real trading loop (a sleep whose
# pid is in the pid file). For each kind, the resolved path and every path
# to the rollback (alert-rollback as a child run: loop paused by SIGINT,
# positions closed, champion restored), plus the cases that go to a person.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
EXTRA="$RBK_ROOT/tests/sandbox/extra/alert-diagnostics"
RB="$RBK_ROOT/tests/sandbox/extra/alert-rollback"
LOOP= MPID=
stop_all() { [ -n "$LOOP" ] && kill -9 "$LOOP" 2>/dev/null; [ -n "$MPID" ] && kill "$MPID" 2>/dev/null; sandbox_stop; }
trap 'stop_all; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
mkdir -p "$TMP/bin" && ln -s "$PY" "$TMP/bin/python3" && export PATH="$TMP/bin:$PATH" # also for the sandbox's server

setup() { # setup CASE: sandbox, metrics endpoint, a trading loop, one open position
	sandbox_start "$TMP/$1"
	export RBK_HOME="$TMP/$1/home" RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	QP="$SANDBOX/qp"; mkdir -p "$QP/run" "$SANDBOX/docker"
	sandbox_state 's["exchange"] = {"positions": [{"symbol": "BTC/USDT", "qty": 0.01}]}'
	printf '# HELP data_missing_bars_ratio share of missing bars\ndata_missing_bars_ratio 0\nrisk_fetch_failures_total 3\noperation_latency_ms{operation="fetch_ohlcv"} 850\noperation_latency_ms{operation="place_order"} 40\n' >"$SANDBOX/metrics.prom"
	"$PY" "$EXTRA/metrics_server.py" "$SANDBOX" & MPID=$!
	for _ in $(seq 100); do [ -e "$SANDBOX/metrics.port" ] && break; sleep 0.05; done
	METRICS="http://127.0.0.1:$(cat "$SANDBOX/metrics.port")/metrics"
	start_loop
}
teardown() { reap; kill "$MPID" 2>/dev/null; wait "$MPID" 2>/dev/null; MPID=; sandbox_stop; }
start_loop() { # the trading loop: a sleep whose pid is in the pid file; its exit status goes to run/loop.status
	local h=DFL; [ "${1:-}" = ignore_int ] && h=IGN # bash's background jobs ignore SIGINT unless it is reset
	rm -f "$QP/run/qp.pid" "$QP/run/loop.status"
	( "$PY" -c "import os,signal; signal.signal(signal.SIGINT, signal.SIG_$h); os.execvp('sleep', ['sleep', '60'])" &
	  echo $! >"$QP/run/qp.pid"; wait $!; echo $? >"$QP/run/loop.status" ) 2>/dev/null &
	LOOPSH=$!
	for _ in $(seq 250); do [ -s "$QP/run/qp.pid" ] && break; sleep 0.02; done
	LOOP=$(cat "$QP/run/qp.pid")
}
loop_alive() { # the loop runs (a zombie has exited)
	local st; [ -n "$LOOP" ] || return 1
	st=$(sed 's/.*) //' "/proc/$LOOP/stat" 2>/dev/null | cut -d' ' -f1); [ -n "$st" ] && [ "$st" != Z ]
}
reap() { # LOOP_RC: the loop's exit status (130: SIGINT, 137: SIGKILL); a loop still running is killed first
	[ -n "$LOOP" ] || return 0
	loop_alive && kill -9 "$LOOP" 2>/dev/null
	wait "$LOOPSH" 2>/dev/null; LOOP_RC=$(cat "$QP/run/loop.status" 2>/dev/null); LOOP=
}
hook() { printf '#!/bin/sh\n%s\n' "$2" >"$QP/on_$1"; chmod +x "$QP/on_$1"; } # what the Python stand-in does for `-m quant_pipeline $1`
run() {
	"$RBK" run alert-diagnostics -p prev_model_id=7 -p metrics_url="$METRICS" -p docker="$SANDBOX_BIN/docker" -p component=qp \
		-p reconnect_within=1s -p reconnect_every=200ms -p settle=200ms -p retry_timeout=2s \
		-p retry_cmd="$RB/python -m quant_pipeline \"\$OPERATION\"" -p diagnostics_cmd="$RB/python -m quant_pipeline ingest-ohlcv --exchange binance --symbols BTC/USDT" \
		-p project_dir="$QP" -p loop_pidfile="$QP/run/qp.pid" -p pause_grace=2s -p python="$RB/python" -p exchange_url="$SANDBOX_URL/exchange" \
		-p require_approval=false "$@"
}
alerts() { "$PY" -c 'import json,sys; print("\n".join(a["text"] for a in json.load(open(sys.argv[1])).get("alerts", [])))' "$SANDBOX/state.json"; }
has_alert() { grep -q "$@" <<<"$(alerts)"; } # (not through a pipe: grep -q would close it early)
positions() { "$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["exchange"]["positions"]))' "$SANDBOX/state.json"; }
rolled_back() { # the parent failed after its child alert-rollback succeeded, with every effect
	loop_alive && return 1
	reap
	[ "$LOOP_RC" = 130 ] && [ "$(positions)" = 0 ] && [ "$(cat "$QP/champion" 2>/dev/null)" = "7 runs/models.db runs/models" ] \
		&& "$RBK" show 1 | grep -q "^status *failed" && "$RBK" show 2 | grep -q "^status *succeeded" && "$RBK" show 2 --json | grep -q '"parent_run":1' \
		&& has_alert "ROLLED BACK ($1 alert not resolved (alert-diagnostics run 1), run 2)"
}
not_rolled_back() { loop_alive && [ "$(positions)" = 1 ] && [ ! -e "$QP/champion" ]; }

# --- Connection failure. --------------------------------------------------------------------------
setup cf_up
out=$(run -p kind=connection_failure -p service_url="$SANDBOX_URL/health/qp" 2>&1); rc=$?
[ $rc = 0 ] && ! grep -q "docker" "$SANDBOX/calls.log" 2>/dev/null && not_rolled_back && has_alert "connection_failure RESOLVED: service $SANDBOX_URL/health/qp http=200" \
	&& ok "connection: the service answers: resolved, nothing restarted, exit 0" || fail "cf up" "rc=$rc $out $(alerts)"
teardown

setup cf_restart
sandbox_state 's["health"] = {"qp": "unhealthy"}'
echo "2026-12-04 22:00:01 ERROR exchange websocket: connection refused" >"$SANDBOX/docker/qp.log"
printf '#!/bin/sh\npython3 -c "import json,sys; p=sys.argv[1]; s=json.load(open(p)); s[\\"health\\"]={}; json.dump(s, open(p, \\"w\\"))" "%s"\n' "$SANDBOX/state.json" >"$SANDBOX/docker/qp.on_restart"
chmod +x "$SANDBOX/docker/qp.on_restart"
out=$(run -p kind=connection_failure -p service_url="$SANDBOX_URL/health/qp" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(grep -c . "$SANDBOX/calls.log")" = 2 ] && grep -q "docker logs --tail 200 qp" "$SANDBOX/calls.log" && [ "$(cat "$SANDBOX/docker/qp.restarts")" = 1 ] \
	&& ok "connection: unreachable (503): logs read, component restarted once" || fail "cf restart" "rc=$rc $out $(cat "$SANDBOX/calls.log")"
not_rolled_back && has_alert "RESOLVED: service .* http=503; last log error: 2026-12-04 22:00:01 ERROR exchange websocket: connection refused" \
	&& ok "connection: back after the restart: resolved, no rollback, exit 0" || fail "cf restart resolved" "$(alerts)"
teardown

setup cf_down
echo "2026-12-04 22:00:01 ERROR exchange websocket: timeout" >"$SANDBOX/docker/qp.log"
out=$(run -p kind=connection_failure -p service_url="http://127.0.0.1:1/health" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(cat "$SANDBOX/docker/qp.restarts")" = 1 ] && rolled_back connection_failure \
	&& ok "connection: not restored within reconnect_within: rolled back (SIGINT, positions closed, champion 7), exit 1" || fail "cf down" "rc=$rc $out $(alerts)"
has_alert "connection_failure NOT resolved: service http://127.0.0.1:1/health http=000; last log error: 2026-12-04 22:00:01 ERROR exchange websocket: timeout; restart ok; after 1s http=000; rolling back" \
	&& ok "connection: the alert says why before rolling back" || fail "cf down alert" "$(alerts)"
teardown

setup cf_restartfail
touch "$SANDBOX/docker/qp.fail"
out=$(run -p kind=connection_failure -p service_url="http://127.0.0.1:1/health" 2>&1); rc=$?
[ $rc = 1 ] && rolled_back connection_failure && has_alert "NOT resolved: .*; restart failed; rolling back" \
	&& ok "connection: the restart fails: rolled back, exit 1" || fail "cf restart fails" "rc=$rc $out $(alerts)"
teardown

# --- Timeout. -------------------------------------------------------------------------------------
setup to_ok
out=$(run -p kind=timeout -p alert_message="[quant_pipeline] timeout: operation=fetch_ohlcv exceeded 30s" 2>&1); rc=$?
[ $rc = 0 ] && grep -q "^python -m quant_pipeline fetch_ohlcv (cwd=$QP)" "$SANDBOX/calls.log" && not_rolled_back && grep -q "^/metrics" "$SANDBOX/metrics.log" \
	&& has_alert "timeout RESOLVED: operation fetch_ohlcv, operation_latency_ms 850 ms (threshold 500 ms, anomalous: true); retry succeeded" \
	&& ok "timeout: operation read from the message, latency 850 ms found anomalous, retried once: resolved, exit 0" || fail "timeout ok" "rc=$rc $out $(alerts)"
teardown

setup to_persist
hook place_order "sleep 10"
out=$(run -p kind=timeout -p alert_message="place_order timed out after 5000 ms" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(grep -c "quant_pipeline place_order" "$SANDBOX/calls.log")" = 1 ] && rolled_back timeout \
	&& has_alert "NOT resolved: operation place_order, operation_latency_ms 40 ms (threshold 500 ms, anomalous: false); retry failed: .*; rolling back" \
	&& ok "timeout: the retry times out again (once): rolled back, exit 1" || fail "timeout persists" "rc=$rc $out $(alerts)"
teardown

setup to_unknown
out=$(run -p kind=timeout -p alert_message="something is slow" 2>&1); rc=$?
[ $rc = 1 ] && not_rolled_back && ! grep -q "python" "$SANDBOX/calls.log" 2>/dev/null && has_alert "timeout could not be diagnosed: operation ''" \
	&& ok "timeout: no operation in the message: a person is told, no rollback, exit 1" || fail "timeout unknown" "rc=$rc $out $(alerts)"
teardown

# --- Anomalous ratios. ----------------------------------------------------------------------------
setup ar_no
out=$(run -p kind=anomalous_ratio 2>&1); rc=$?
[ $rc = 0 ] && [ ! -e "$SANDBOX/calls.log" ] && not_rolled_back && has_alert "anomalous_ratio NOT confirmed: data_missing_bars_ratio 0 (threshold 0); nothing done" \
	&& ok "ratio: data_missing_bars_ratio 0: not confirmed, no diagnostics, exit 0" || fail "ratio not confirmed" "rc=$rc $out $(alerts)"
teardown

setup ar_fixed
sed -i 's/^data_missing_bars_ratio 0$/data_missing_bars_ratio 0.05/' "$SANDBOX/metrics.prom"
hook ingest-ohlcv "echo 'BTC/USDT: 72 missing bars backfilled'; sed -i 's/^data_missing_bars_ratio .*/data_missing_bars_ratio 0/' '$SANDBOX/metrics.prom'"
out=$(run -p kind=anomalous_ratio 2>&1); rc=$?
[ $rc = 0 ] && grep -q "^python -m quant_pipeline ingest-ohlcv --exchange binance --symbols BTC/USDT (cwd=$QP)" "$SANDBOX/calls.log" && not_rolled_back \
	&& has_alert "RESOLVED: data_missing_bars_ratio 0.05 -> 0 (threshold 0); diagnostics ok: BTC/USDT: 72 missing bars backfilled" \
	&& ok "ratio: 0.05 confirmed, diagnostics run, back to 0: resolved, exit 0" || fail "ratio fixed" "rc=$rc $out $(alerts)"
teardown

setup ar_stays
sed -i 's/^data_missing_bars_ratio 0$/data_missing_bars_ratio 0.05/' "$SANDBOX/metrics.prom"
out=$(run -p kind=anomalous_ratio 2>&1); rc=$?
[ $rc = 1 ] && rolled_back anomalous_ratio && has_alert "NOT resolved: data_missing_bars_ratio 0.05 -> 0.05 (threshold 0); diagnostics ok: ok; rolling back" \
	&& ok "ratio: still 0.05 after the diagnostics: rolled back, exit 1" || fail "ratio stays" "rc=$rc $out $(alerts)"
teardown

setup ar_counter
sed -i 's/^risk_fetch_failures_total 3$/risk_fetch_failures_total 12/' "$SANDBOX/metrics.prom"
out=$(run -p kind=anomalous_ratio -p metric=risk_fetch_failures_total -p threshold=5 -p diagnostics_cmd="$RB/python -m quant_pipeline.risk --diagnose" 2>&1); rc=$?
[ $rc = 0 ] && grep -q "python -m quant_pipeline.risk --diagnose" "$SANDBOX/calls.log" && not_rolled_back && has_alert "RESOLVED: risk_fetch_failures_total 12 -> 12 (threshold 5)" \
	&& ok "counter: risk_fetch_failures_total 12 > 5 but no longer growing: resolved, exit 0" || fail "counter stopped" "rc=$rc $out $(alerts)"
teardown
setup ar_growing
sed -i 's/^risk_fetch_failures_total 3$/risk_fetch_failures_total 12/' "$SANDBOX/metrics.prom"
hook quant_pipeline.risk "sed -i 's/^risk_fetch_failures_total .*/risk_fetch_failures_total 19/' '$SANDBOX/metrics.prom'"
out=$(run -p kind=anomalous_ratio -p metric=risk_fetch_failures_total -p threshold=5 -p diagnostics_cmd="$RB/python -m quant_pipeline.risk --diagnose" 2>&1); rc=$?
[ $rc = 1 ] && rolled_back anomalous_ratio && has_alert "risk_fetch_failures_total 12 -> 19 (threshold 5)" \
	&& ok "counter: still growing (12 -> 19): rolled back, exit 1" || fail "counter growing" "rc=$rc $out $(alerts)"
teardown

setup ar_nometrics
rm "$SANDBOX/metrics.prom"
out=$(run -p kind=anomalous_ratio 2>&1); rc=$?
[ $rc = 1 ] && not_rolled_back && has_alert "anomalous_ratio could not be diagnosed: operation '', metrics failed" \
	&& ok "ratio: /metrics unavailable: a person is told, no rollback, exit 1" || fail "no metrics" "rc=$rc $out $(alerts)"
teardown
