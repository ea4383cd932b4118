#!/bin/bash
# Stand-in for `docker compose exec ml python ml/worker/train.py` (model-deploy,
# model-performance tests): writes a new candidate model and its metrics file.
#   train.sh MODELS_DIR
# Environment: TRAIN_TAG (the candidate's content: "model <tag>"; a tag with
# "degrades" makes the sandbox API unhealthy once it loads it, see
# api_on_restart.sh), TRAIN_ACCURACY, TRAIN_PRECISION (metrics file),
# TRAIN_FAIL (non-empty: the training crashes). Each call is logged in
# $SANDBOX/calls.log.
: "${SANDBOX:?}"
echo "train $*" >>"$SANDBOX/calls.log"
dir=${1:?models dir}
echo "epoch 1/1 ... fitting RandomForestClassifier(n_estimators=200)"
if [ -n "${TRAIN_FAIL:-}" ]; then
	echo "Traceback (most recent call last): ValueError: not enough samples" >&2
	exit 1
fi
printf 'model %s\n' "${TRAIN_TAG:-candidate}" >"$dir/rf_m1_new.pkl"
printf '{"accuracy": %s, "precision": %s, "recall": 0.51, "n_samples": 4200}\n' \
	"${TRAIN_ACCURACY:-0.61}" "${TRAIN_PRECISION:-0.66}" >"$dir/rf_m1_metrics.json"
echo "saved $dir/rf_m1_new.pkl"
