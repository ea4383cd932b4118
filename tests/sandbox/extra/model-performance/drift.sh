#!/bin/bash
# Stand-in for the seed's `check_data_drift('/models/rf_m1.pkl')` (model-performance
# tests): logs the call in $SANDBOX/calls.log and prints what the check found.
# Environment: DRIFT_FAIL (non-empty: the check crashes).
: "${SANDBOX:?}"
echo "drift $*" >>"$SANDBOX/calls.log"
[ -n "${DRIFT_FAIL:-}" ] && { echo "drift check crashed" >&2; exit 1; }
echo "loading reference window..."
echo "{'drift': True, 'psi': 0.31, 'features': ['spread', 'atr_14']}"
