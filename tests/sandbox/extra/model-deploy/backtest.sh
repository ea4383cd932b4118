#!/bin/bash
# Stand-in for the seed's `run_backtest(model_path=..., days=30)` (model-deploy
# tests): prints a log line, then the results as one JSON line.
#   backtest.sh        (MODEL_PATH and BACKTEST_DAYS from the runbook)
# Environment: BT_SHARPE (default 1.4); BT_ACCURACY / BT_PRECISION, when set,
# are reported too (they then override the training's metrics file);
# BT_FAIL (non-empty: the backtest crashes). Each call is logged in
# $SANDBOX/calls.log with the model's content.
: "${SANDBOX:?}"
echo "backtest model=$MODEL_PATH days=$BACKTEST_DAYS content=$(cat "$MODEL_PATH" 2>/dev/null)" >>"$SANDBOX/calls.log"
[ -n "${BT_FAIL:-}" ] && { echo "backtest crashed" >&2; exit 1; }
echo "backtesting $MODEL_PATH over $BACKTEST_DAYS days"
extra=
[ -n "${BT_ACCURACY:-}" ] && extra+=", \"accuracy\": $BT_ACCURACY"
[ -n "${BT_PRECISION:-}" ] && extra+=", \"precision\": $BT_PRECISION"
printf '{"days": %s, "trades": 187, "sharpe": %s%s}\n' "$BACKTEST_DAYS" "${BT_SHARPE:-1.4}" "$extra"
