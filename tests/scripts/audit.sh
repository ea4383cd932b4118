#!/bin/bash
# The audit trail (architecture.md "Audit"), black box: stores built by real
# runs (failed, retried, rolled back, aborted, approved, calling child runs,
# killed and resumed) are tampered with, each attack on a fresh copy of
# rbk.db, in every way (a byte of each field at the start, middle and end,
# deletion, insertion, swaps, truncation, re-hashing one event or the whole
# tail, 200+ random single-byte changes): `rbk verify` must name the first
# affected event, seals (`rbk audit seal --git`) must catch truncation and
# tail rewrites, and clean stores must verify. Also: replay of every
# finished run, export + verify --bundle on "another machine", report
# --html, history filters, log --json. The work is in tests/audit/audit.py.
# The runs of several people are runs by several OS users (root only).
. "$(dirname "$0")/lib.bash"
cd "$RBK_ROOT"
if people rbk-alice rbk-bob rbk-carol && as_user rbk-alice test -x "$RBK" -a -r "$RBK_ROOT/tests/fixtures/run/approval.yaml"; then
	chmod 755 "$TMP"
	export RBK_TEST_PEOPLE=1
fi
python3 "$RBK_ROOT/tests/audit/audit.py" "$TMP"
