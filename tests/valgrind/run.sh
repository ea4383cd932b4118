#!/bin/bash
# make valgrind: the unit tests and the command-line flows under valgrind
# memcheck (no sanitizers), then one line: N passed, N failed. Forked action
# children run plugin code (some exit on purpose without cleaning up) and
# are not judged: the engine's memory is, in the parent.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
passed=0 failed=0
for t in build/vg/tests/test_*; do
	# Leaks are judged from the report (the parent's: children are silent),
	# not through the exit code, which a forked child's exit would carry.
	out=$(RBK_ROOT="$ROOT" valgrind -q --leak-check=full --errors-for-leak-kinds=none --error-exitcode=99 --child-silent-after-fork=yes "$t" 2>&1)
	rc=$?
	grep -q "definitely lost" <<<"$out" && rc=98
	if [ $rc = 0 ]; then passed=$((passed + 1)); echo "ok valgrind $(basename "$t")"
	else failed=$((failed + 1)); echo "FAIL valgrind $(basename "$t") (exit $rc): $(printf '%s' "$out" | grep -m5 -A5 '==[0-9]*==')"; fi
done
export VG_LOGS=$(mktemp -d)
# The flows of leaks.sh and the black-box cases, every rbk process under
# memcheck (suites with timing checks are left out: valgrind is slow).
python3 tests/run --rbk tests/valgrind/rbk --units build/vg/none cases fixtures leaks.sh >/dev/null
bad=$(grep -l "ERROR SUMMARY: [1-9]\|definitely lost: [1-9]\|Invalid \(read\|write\)" "$VG_LOGS"/*.log 2>/dev/null)
n=$(ls "$VG_LOGS" | wc -l)
if [ -z "$bad" ]; then passed=$((passed + 1)); echo "ok valgrind: $n rbk processes, no error, no definite leak"
else failed=$((failed + 1)); echo "FAIL valgrind: $(echo "$bad" | wc -l) of $n rbk processes reported:"; head -40 $(echo "$bad" | head -3); fi
rm -rf "$VG_LOGS"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
