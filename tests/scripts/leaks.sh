#!/bin/bash
# LeakSanitizer on the main command-line flows, one process at a time:
# validate, graph, run (success, failure, rollback, retry, poll, dry run,
# approval, call), resume after a kill, approve, status, show, history, log,
# plugins, scheduler --once, schedule next.
. "$(dirname "$0")/lib.bash"
export ASAN_OPTIONS=detect_leaks=1:intercept_tls_get_addr=0 RBK_HOME="$TMP/home" RBK_PATH="$RBK_ROOT/tests/fixtures/run"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins"
leakfree() { # leakfree NAME CMD...: the command's exit code is not judged, only leaks
	name=$1; shift
	"$@" >"$TMP/out" 2>"$TMP/err"
	if grep -q "LeakSanitizer\|AddressSanitizer\|runtime error" "$TMP/err"; then
		fail "no leak: $name" "$(grep -m3 -A3 "Sanitizer\|runtime error" "$TMP/err")"
	else
		ok "no leak: $name"
	fi
}
cd "$RBK_ROOT"
leakfree "validate (valid and invalid)" "$RBK" validate tests/fixtures/valid/feed-freeze.yaml tests/fixtures/invalid/bad-duration.yaml
leakfree "graph dot and mermaid" "$RBK" graph runbooks/feed-freeze.yaml --format mermaid
leakfree "plugins" "$RBK" plugins
leakfree "run: success" "$RBK" run tests/fixtures/valid/hello.yaml -p who=ops
leakfree "run: bad param" "$RBK" run tests/fixtures/valid/hello.yaml -p who=OPS
leakfree "run: dry run" "$RBK" run tests/fixtures/valid/hello.yaml --dry-run
for f in tests/fixtures/run/*.yaml; do
	grep -q "required: true" "$f" && continue # those need params: covered by run.sh
	leakfree "run $(basename "$f")" timeout 20 "$RBK" run "$f"
done
cat >"$TMP/k.yaml" <<Y
rbk: 1
name: killed
start: a
states:
  a:
    do: testkit.ledger
    with: {file: "$TMP/ledger", label: a}
    next: b
  b: {approval: {prompt: go?}, next: done}
  done: {end: success}
Y
RBK_CRASH_POINT=step.after_start:1 "$RBK" run "$TMP/k.yaml" >/dev/null 2>&1
id=$("$RBK" history --limit 1 --json | sed -n 's/.*"run":\([0-9]*\).*/\1/p')
leakfree "resume: needs attention" "$RBK" resume "$id"
leakfree "resume --mark-step success, to the approval" "$RBK" resume "$id" --mark-step success
leakfree "approve" "$RBK" approve "$id" --comment fine
leakfree "status" "$RBK" status
leakfree "show" "$RBK" show "$id"
leakfree "history --json" "$RBK" history --json
leakfree "log and log --json" "$RBK" log "$id" --json
leakfree "schedule next" "$RBK" schedule next "$RBK_ROOT/tests/fixtures/valid/schedule-lock.yaml" --from 2026-03-29T00:00:00Z --count 5
leakfree "scheduler --once" "$RBK" scheduler --once --now 2026-11-23T12:00:00Z --metrics "$TMP/m.prom"
