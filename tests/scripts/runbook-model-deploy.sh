#!/bin/bash
# runbooks/model-deploy.yaml in the sandbox, on real model files (small files
# whose content tells which model is in place), with stand-ins for the
# training and the backtest (tests/sandbox/extra/model-deploy/) and the
# sandbox API, whose /health/api reflects the model each restart loads:
#  - every threshold passes: backup made, candidate in production, API
#    restarted once, watched, info alert; a second deploy names its backup
#    by the UTC time;
#  - accuracy (exactly 0.55), precision or Sharpe fails, or the backtest's
#    accuracy is below the bound while the training's is above: not deployed, model unchanged,
#    no backup, no restart, alert with the figures;
#  - the new model degrades during the monitoring: rolled back to the
#    backup, API restarted on the old model, critical alert;
#  - the training crashes, or writes no new candidate: not deployed.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
EXTRA="$RBK_ROOT/tests/sandbox/extra/model-deploy"
PY=$(command -v /usr/bin/python3 || command -v python3)
# python3 for the sandbox's server and hooks too, without a version manager's shim (slow to start)
mkdir -p "$TMP/bin" && ln -s "$PY" "$TMP/bin/python3" && export PATH="$TMP/bin:$PATH"

setup() { # setup CASE: a new store, a clean sandbox, the production model "model v1", the API on it
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	if [ -z "${SANDBOX_PID:-}" ]; then # one HTTP peer for every case (it starts slowly); its files are reset
		sandbox_start "$TMP/sb"
		export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	fi
	rm -rf "$SANDBOX/models" "$SANDBOX/docker" "$SANDBOX/calls.log" "$SANDBOX/requests.jsonl" "$SANDBOX/api_loaded.log"
	echo '{}' >"$SANDBOX/state.json"
	M="$SANDBOX/models" B="$SANDBOX/models/backups"
	mkdir -p "$M" "$SANDBOX/docker"
	echo "model v1" >"$M/rf_m1.pkl"
	cp "$EXTRA/api_on_restart.sh" "$SANDBOX/docker/api.on_restart"
	unset TRAIN_TAG TRAIN_ACCURACY TRAIN_PRECISION TRAIN_FAIL BT_SHARPE BT_ACCURACY BT_PRECISION BT_FAIL
}
run_it() { # run_it [-p ...]: the runbook on the sandbox's files
	"$RBK" run model-deploy -p workdir="$SANDBOX" -p model="$M/rf_m1.pkl" -p new_model="$M/rf_m1_new.pkl" \
		-p metrics="$M/rf_m1_metrics.json" -p backups_dir="$B" \
		-p train_cmd="'$EXTRA/train.sh' '$M'" -p backtest_cmd="'$EXTRA/backtest.sh'" \
		-p docker="$SANDBOX_BIN/docker" -p monitor_url="$SANDBOX_URL/health/api" \
		-p monitor_for=300ms -p monitor_every=100ms -p degraded_after=2 "$@" 2>&1
}
alerts() { "$PY" -c 'import json,sys; [print(a.get("severity",""), a.get("text","")) for a in json.load(open(sys.argv[1])).get("alerts",[])]' "$SANDBOX/state.json"; }
restarts() { cat "$SANDBOX/calls.log" 2>/dev/null | grep -c "^docker compose restart api$"; }
status() { "$RBK" show "$1" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }

# 1. Every threshold passes (accuracy 0.61, precision 0.66, Sharpe 1.4).
setup happy
out=$(run_it -p current_version=v1.1.0); rc=$?
[ $rc = 0 ] && [ "$(status 1)" = succeeded ] && ok "thresholds pass: deployed, exit 0" || fail "happy exit" "rc=$rc $out"
grep -q "^train $M$" "$SANDBOX/calls.log" && grep -q "^backtest model=$M/rf_m1_new.pkl days=30 content=model candidate$" "$SANDBOX/calls.log" \
	&& ok "trained, then the candidate (not production) was backtested over 30 days" || fail "train/backtest calls" "$(cat "$SANDBOX/calls.log")"
[ "$(cat "$B/rf_m1_v1.1.0.pkl" 2>&1)" = "model v1" ] && [ "$(ls "$B")" = rf_m1_v1.1.0.pkl ] \
	&& ok "the old model was backed up as backups/rf_m1_v1.1.0.pkl" || fail "backup" "$(ls -la "$B" 2>&1)"
[ "$(cat "$M/rf_m1.pkl")" = "model candidate" ] && ok "the candidate is the production model" || fail "replaced" "$(cat "$M/rf_m1.pkl")"
[ "$(restarts)" = 1 ] && [ "$(cat "$SANDBOX/api_loaded.log")" = "model candidate" ] \
	&& ok "the API was restarted once and loaded the new model" || fail "restart" "$(cat "$SANDBOX/calls.log")"
"$RBK" log 1 | grep -q "monitor -> monitor_pause" && [ "$(grep -c '"path": "/health/api"' "$SANDBOX/requests.jsonl")" -ge 2 ] \
	&& ok "the API was watched with several health checks" || fail "monitoring" "$("$RBK" log 1)"
alerts | grep -q "^info new ML model deployed by run 1: .*accuracy 0.61, precision 0.66, Sharpe 1.4.*kept as $B/rf_m1_v1.1.0.pkl" \
	&& ok "the channel is told the model was deployed, with its figures" || fail "deployed alert" "$(alerts)"
"$RBK" log 1 --json | grep -q "$SANDBOX_URL/alert" && fail "the webhook (a secret) is not recorded" "found in the log" || ok "the webhook (a secret) is not recorded"
# 1b. A second deploy, no version label: the backup is named by the UTC time.
export TRAIN_TAG=candidate2
out=$(run_it); rc=$?
stamped=$(ls "$B" | grep -E '^rf_m1_[0-9]{8}T[0-9]{6}Z\.pkl$')
[ $rc = 0 ] && [ -n "$stamped" ] && [ "$(cat "$B/$stamped")" = "model candidate" ] && [ "$(cat "$M/rf_m1.pkl")" = "model candidate2" ] \
	&& [ "$(cat "$B/rf_m1_v1.1.0.pkl")" = "model v1" ] \
	&& ok "second deploy: backup named by the UTC time ($stamped), the first backup kept" || fail "stamped backup" "rc=$rc $(ls "$B") $out"

# 2. Each failing threshold keeps the old model.
rejected() { # rejected CASE WHAT FIGURE: the run failed, nothing changed, the alert names FIGURE
	local rc=$1 what=$2 figure=$3
	[ "$rc" = 1 ] && [ "$(status 1)" = failed ] && [ "$(cat "$M/rf_m1.pkl")" = "model v1" ] && [ ! -e "$B" ] \
		&& [ "$(restarts)" = 0 ] && [ ! -e "$SANDBOX/api_loaded.log" ] \
		&& ok "$what: not deployed (model v1 kept, no backup, no restart), exit 1" \
		|| fail "$what kept the old model" "rc=$rc $(cat "$M/rf_m1.pkl") $(ls "$B" 2>&1) $(cat "$SANDBOX/calls.log")"
	alerts | grep -q "^warning new ML model NOT deployed (run 1): .*$figure.*production model $M/rf_m1.pkl unchanged" \
		&& ok "$what: the alert gives the figure ($figure)" || fail "$what alert" "$(alerts)"
}
setup precision
export TRAIN_PRECISION=0.58
out=$(run_it); rejected $? "precision 0.58" "precision 0.58 (need > 0.6)"
setup sharpe
export BT_SHARPE=0.9
out=$(run_it); rejected $? "Sharpe 0.9" "Sharpe 0.9 (need > 1)"
setup accuracy
export TRAIN_ACCURACY=0.55
out=$(run_it); rejected $? "accuracy 0.55 (not > 0.55: the bound is strict)" "accuracy 0.55 (need > 0.55)"
setup backtest_accuracy
export BT_ACCURACY=0.52
out=$(run_it); rejected $? "backtest accuracy 0.52 (training said 0.61)" "accuracy 0.52 (need > 0.55)"

# 3. The new model degrades the API during the monitoring: rolled back.
setup degrade
export TRAIN_TAG="candidate degrades"
out=$(run_it -p current_version=v1.1.0); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = failed ] && ok "degraded during the monitoring: the run fails (exit 1)" || fail "degrade exit" "rc=$rc $out"
[ "$(cat "$M/rf_m1.pkl")" = "model v1" ] && [ "$(cat "$B/rf_m1_v1.1.0.pkl")" = "model v1" ] && [ "$(cat "$M/rf_m1_new.pkl")" = "model candidate degrades" ] \
	&& ok "the old model is back in production (the candidate kept aside)" || fail "rolled back" "$(cat "$M/rf_m1.pkl")"
[ "$(restarts)" = 2 ] && [ "$(printf '%s|' $(tr ' ' _ <"$SANDBOX/api_loaded.log"))" = "model_candidate_degrades|model_v1|" ] \
	&& ok "the API was restarted on the new model, then again on the old one" || fail "restarts" "$(cat "$SANDBOX/api_loaded.log")"
"$RBK" log 1 | grep -q "monitor -> restore_model" && [ "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["health"]["api"])' "$SANDBOX/state.json")" = healthy ] \
	&& ok "the rollback edge was taken from the monitoring; the API is healthy again" || fail "rollback edge" "$("$RBK" log 1)"
alerts | grep -q "^critical new ML model ROLLED BACK by run 1: 2 failed checks .*restored from $B/rf_m1_v1.1.0.pkl" \
	&& ok "a critical alert says the model was rolled back" || fail "rollback alert" "$(alerts)"

# 4. The training crashes: nothing deployed, escalated.
setup trainfail
export TRAIN_FAIL=1
out=$(run_it); rc=$?
[ $rc = 1 ] && [ "$(cat "$M/rf_m1.pkl")" = "model v1" ] && [ "$(restarts)" = 0 ] && ! grep -q "^backtest" "$SANDBOX/calls.log" \
	&& alerts | grep -q "NOT deployed (run 1): a step failed before the rollout" \
	&& ok "training crashed: no backtest, no rollout, alert, exit 1" || fail "train failure" "rc=$rc $(alerts) $out"

# 5. The training writes nothing: yesterday's candidate is not deployed.
setup stale
echo "model old candidate" >"$M/rf_m1_new.pkl"; touch -d '1 day ago' "$M/rf_m1_new.pkl"
out=$(run_it -p train_cmd=true); rc=$?
[ $rc = 1 ] && [ "$(cat "$M/rf_m1.pkl")" = "model v1" ] && [ "$(restarts)" = 0 ] \
	&& alerts | grep -q "the training did not write a new $M/rf_m1_new.pkl" \
	&& ok "no new candidate written: the old file is not deployed, alert, exit 1" || fail "stale candidate" "rc=$rc $(alerts) $out"
