# Shared by the test scripts: ok/FAIL lines counted by tests/run.
# $RBK is the binary under test (set by tests/run), $RBK_ROOT the source tree.
: "${RBK:?run through tests/run}"
: "${RBK_ROOT:?run through tests/run}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1${2:+: $2}"; }
check() { # check NAME COMMAND...: ok when the command succeeds
	name=$1; shift
	if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$(printf '%s' "$out" | tail -5)"; fi
}
