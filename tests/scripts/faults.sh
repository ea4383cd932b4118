#!/bin/bash
# Fault injection (tests/faults/faults.py): I/O errors, disk full, power
# loss and allocation failures over real runs.
. "$(dirname "$0")/lib.bash"
python3 "$RBK_ROOT/tests/faults/faults.py" --quick
