#!/bin/bash
# runbooks/model-performance.yaml (with its children model-rollback and
# model-deploy) in the sandbox, on real model files, the sandbox API (its
# /health/api reflects the model each restart loads), stand-ins for the
# drift check, the training and the backtest, and a REAL PostgreSQL
# database of the suite's cluster holding trainset_m1 (rows inside and
# outside the 60-day window):
#  - the metrics file says accuracy 0.62: the alert is not confirmed,
#    nothing changes;
#  - accuracy 0.51 and 1500 recent rows (3000 older ones not counted):
#    rolled back to the newest backup, retrained, deployed, reported;
#  - 600 recent rows (3600 in all): rolled back, NOT retrained, escalated;
#  - the retrained model fails its thresholds: the operator is told to tune
#    the hyper-parameters and the run waits; approved after the "tuning",
#    it retrains and deploys.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
EXTRA="$RBK_ROOT/tests/sandbox/extra/model-deploy"
PX="$RBK_ROOT/tests/sandbox/extra/model-performance"
PY=$(command -v /usr/bin/python3 || command -v python3)
# python3 for the sandbox's server and hooks too, without a version manager's shim (slow to start)
mkdir -p "$TMP/bin" && ln -s "$PY" "$TMP/bin/python3" && export PATH="$TMP/bin:$PATH"
if [ -z "${RBK_TEST_PG:-}" ]; then fail "RBK_TEST_PG is set (the test needs the suite's PostgreSQL)" "unset"; exit 0; fi
DB=d_model_performance_$$
DSN=${RBK_TEST_PG/\/rbk\?/\/$DB?}
trap 'sandbox_stop; psql "$RBK_TEST_PG" -Xqc "drop database if exists $DB" >/dev/null 2>&1; rm -rf "$TMP"' EXIT
psql "$RBK_TEST_PG" -Xqc "create database $DB" >/dev/null
psql "$DSN" -Xq -v ON_ERROR_STOP=1 -c "create table trainset_m1 (ts timestamptz not null, symbol text not null, label int not null)" >/dev/null
export DATABASE_URL=$DSN # the runbook's dsn param (a secret) reads it

trainset() { # trainset RECENT OLD: RECENT rows within the last 60 days, OLD rows older than 61 days
	psql "$DSN" -Xq -v ON_ERROR_STOP=1 >/dev/null <<-SQL
	truncate trainset_m1;
	insert into trainset_m1 select now() - interval '1 hour' - (g % 58) * interval '1 day', 'EURUSD', g % 2 from generate_series(1, $1) g;
	insert into trainset_m1 select now() - interval '61 days' - (g % 300) * interval '1 day', 'EURUSD', g % 2 from generate_series(1, $2) g;
	SQL
}
setup() { # setup CASE ACCURACY: a new store, a clean sandbox, production "model bad" with that accuracy, one backup
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	if [ -z "${SANDBOX_PID:-}" ]; then # one HTTP peer for every case; its files are reset
		sandbox_start "$TMP/sb"
		export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	fi
	rm -rf "$SANDBOX/models" "$SANDBOX/docker" "$SANDBOX/calls.log" "$SANDBOX/requests.jsonl" "$SANDBOX/api_loaded.log"
	echo '{}' >"$SANDBOX/state.json"
	M="$SANDBOX/models" B="$SANDBOX/models/backups"
	mkdir -p "$B" "$SANDBOX/docker"
	cp "$EXTRA/api_on_restart.sh" "$SANDBOX/docker/api.on_restart"
	echo "model bad" >"$M/rf_m1.pkl"
	printf '{"accuracy": %s, "precision": 0.57}\n' "$2" >"$M/rf_m1_metrics.json"
	echo "model v1.1.0" >"$B/rf_m1_v1.1.0.pkl"; touch -d '2 days ago' "$B/rf_m1_v1.1.0.pkl"
	unset TRAIN_TAG TRAIN_ACCURACY TRAIN_PRECISION TRAIN_FAIL BT_SHARPE BT_ACCURACY BT_PRECISION BT_FAIL DRIFT_FAIL
	export TRAIN_TAG=retrained
}
run_it() {
	"$RBK" run model-performance -p workdir="$SANDBOX" -p metrics="$M/rf_m1_metrics.json" \
		-p drift_cmd="'$PX/drift.sh' '$M/rf_m1.pkl'" -p train_cmd="'$EXTRA/train.sh' '$M'" -p backtest_cmd="'$EXTRA/backtest.sh'" \
		-p model="$M/rf_m1.pkl" -p new_model="$M/rf_m1_new.pkl" -p backups_dir="$B" -p docker="$SANDBOX_BIN/docker" \
		-p validate_url="$SANDBOX_URL/health/api" -p monitor_url="$SANDBOX_URL/health/api" \
		-p monitor_for=300ms -p monitor_every=100ms "$@" 2>&1
}
alerts() { "$PY" -c 'import json,sys; [print(a.get("severity",""), a.get("text","")) for a in json.load(open(sys.argv[1])).get("alerts",[])]' "$SANDBOX/state.json"; }
calls() { cat "$SANDBOX/calls.log" 2>/dev/null | grep -c "$1"; }
runs() { # runs RUNBOOK: the statuses of its runs, oldest first
	"$RBK" history --runbook "$1" --json | "$PY" -c 'import json,sys; print(" ".join(r["status"] for r in sorted(json.load(sys.stdin)["runs"], key=lambda r: r["run"])))'
}

# 1. The metrics file does not confirm the alert.
setup notconfirmed 0.62
trainset 1500 0
out=$(run_it); rc=$?
[ $rc = 0 ] && [ "$(cat "$M/rf_m1.pkl")" = "model bad" ] && [ "$(calls .)" = 0 ] && [ -z "$(runs model-rollback)" ] \
	&& ok "accuracy 0.62 >= 0.55: not confirmed, nothing run or changed, exit 0" || fail "not confirmed" "rc=$rc $out"
alerts | grep -q "^info ML model P2 not confirmed (run 1): .* gives accuracy 0.62 (>= 0.55)" \
	&& ok "the channel is told the alert is not confirmed" || fail "not confirmed alert" "$(alerts)"

# 2. Confirmed, 1500 recent rows (and 3000 older ones): roll back, retrain, deploy.
setup retrain 0.51
trainset 1500 3000
out=$(run_it); rc=$?
[ $rc = 0 ] && ok "accuracy 0.51 with 1500 recent rows: mitigated, exit 0" || fail "retrain exit" "rc=$rc $out"
[ "$(calls "^drift $M/rf_m1.pkl$")" = 1 ] && "$RBK" log 1 --json | grep -q "psi.: 0.31" \
	&& ok "the data drift check ran on the production model; its finding is recorded" || fail "drift" "$(cat "$SANDBOX/calls.log")"
"$RBK" log 1 --json | grep -q '"train_rows":1500' && ok "PostgreSQL counted 1500 rows in the last 60 days (not the 3000 older ones)" \
	|| fail "row count" "$("$RBK" log 1 | grep -i trainset)"
[ "$(runs model-rollback)" = succeeded ] && [ "$(runs model-deploy)" = succeeded ] \
	&& ok "model-rollback, then model-deploy ran as child runs and succeeded" || fail "children" "$(runs model-rollback) / $(runs model-deploy)"
[ "$(printf '%s|' $(tr ' ' _ <"$SANDBOX/api_loaded.log"))" = "model_v1.1.0|model_retrained|" ] && [ "$(cat "$M/rf_m1.pkl")" = "model retrained" ] \
	&& ok "the API ran the previous model (v1.1.0), then the retrained one, now in production" || fail "models loaded" "$(cat "$SANDBOX/api_loaded.log")"
[ "$(cat "$M/rf_m1.pkl.before-rollback")" = "model bad" ] && [ "$(cat "$B"/rf_m1_2*.pkl)" = "model v1.1.0" ] \
	&& ok "the bad model kept aside; the deploy backed up v1.1.0 before replacing it" || fail "backups" "$(ls "$M" "$B")"
alerts | grep -q "^info ML model P2 mitigated by run 1: metrics accuracy was 0.51 (< 0.55); rolled back first: true; retrained on 1500 rows of the last 60 days" \
	&& ok "the report gives the accuracy, the rollback, the rows and the drift" || fail "report" "$(alerts)"
"$RBK" log 1 --json | grep -qF "$DB" && fail "the database URL (a secret) is not recorded" "found in the log" || ok "the database URL (a secret) is not recorded"

# 3. 600 recent rows (3600 in all): rolled back, but not retrained.
setup fewrows 0.51
trainset 600 3000
out=$(run_it); rc=$?
[ $rc = 1 ] && [ "$(runs model-rollback)" = succeeded ] && [ -z "$(runs model-deploy)" ] && [ "$(calls '^train')" = 0 ] \
	&& [ "$(cat "$M/rf_m1.pkl")" = "model v1.1.0" ] \
	&& ok "600 recent rows < 1000: rolled back to v1.1.0, no training, exit 1" || fail "few rows" "rc=$rc $(runs model-deploy) $out"
alerts | grep -q "^critical ML model P2 (run 1): only 600 rows in trainset_m1 for the last 60 days (need 1000): NOT retrained; rolled back first: true" \
	&& ok "a critical alert escalates the small training set" || fail "few rows alert" "$(alerts)"

# 4. The retrained model fails (accuracy 0.52): the operator is asked to tune; approved, it retrains.
setup tune 0.51
trainset 1500 0
export TRAIN_ACCURACY=0.52
out=$(run_it); rc=$?
[ $rc = 4 ] && [ "$(runs model-deploy)" = failed ] && [ "$(cat "$M/rf_m1.pkl")" = "model v1.1.0" ] \
	&& ok "retrained model below the thresholds: not deployed, the run waits for the tuning (exit 4)" || fail "tune wait" "rc=$rc $out"
alerts | grep -q "^warning ML model P2 (run 1): the model retrained on 1500 rows did not pass .*Ajustar hiperparâmetros: edit ml/worker/train.py (n_estimators, max_depth, ...), then rbk approve 1" \
	&& ok "the operator is told to tune the hyper-parameters and how to go on" || fail "tune notice" "$(alerts)"
export TRAIN_ACCURACY=0.63 # the "tuning"
out=$("$RBK" approve 1 --comment "max_depth 12 -> 8" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(runs model-deploy)" = "failed succeeded" ] && [ "$(calls '^train')" = 2 ] && [ "$(cat "$M/rf_m1.pkl")" = "model retrained" ] \
	&& ok "approved after tuning: retrained, validated and deployed, exit 0" || fail "tune approve" "rc=$rc $(runs model-deploy) $out"
alerts | grep -q "^info ML model P2 mitigated by run 1: .*training 2)" && ok "the report counts two trainings" || fail "tune report" "$(alerts)"
