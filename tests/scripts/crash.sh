#!/bin/bash
# Crash tests, quick mode: rbk (the ASan build) killed at every crash point
# and at random instants, each run resumed to its end and checked against
# the durability invariants (tests/crash/crash.py; `make crashtest` runs the
# long mode). A failing case's home stays in /tmp/rbk-crash-* for inspection.
. "$(dirname "$0")/lib.bash"
python3 "$RBK_ROOT/tests/crash/crash.py" --quick --rbk "$RBK" --root "$RBK_ROOT"
