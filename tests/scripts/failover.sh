#!/bin/bash
# Failover under fire (tests/scale/failover.py): three agents on one
# PostgreSQL store are SIGKILLed and SIGSTOPped at random while they execute
# 50 runs; no run is lost, no non-idempotent step runs twice, a run in
# needs_attention is justified, the chain verifies, no process is left. The
# takeover times and the store's stalls are printed (# lines). Seeded:
# FAILOVER_SEED=N repeats a schedule (not its timing). Needs RBK_TEST_PG
# (tests/pg/cluster.sh); without it, it fails.
. "$(dirname "$0")/lib.bash"
python3 "$RBK_ROOT/tests/scale/failover.py" --rbk "$RBK" --root "$RBK_ROOT"
