#!/bin/bash
# rbk log RUN --follow (docs/cli.md): the timeline printed as it grows, for a
# run another process executes, ending with the run's exit code; a run that
# waits for a person is followed through its answer. rbk report without
# --html (HTML is its one format).
. "$(dirname "$0")/lib.bash"
export RBK_HOME=$TMP/home
export RBK_PLUGIN_PATH=$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins
fresh_store
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }
FX=$RBK_ROOT/tests/fixtures/run
kinds() { python3 -c 'import json,sys; print(" ".join(json.loads(l)["kind"] for l in open(sys.argv[1]) if l.strip()))' "$1" 2>&1; }

# 1. A run executed by another process (a wait of 3 s): the follower sees the
#    events that come after it started, and ends with the run's exit code.
"$RBK" run "$FX/wait.yaml" -p ledger="$TMP/l1" >"$TMP/run1.out" 2>&1 &
runner=$!
for _ in $(seq 100); do "$RBK" log 1 --json 2>/dev/null | grep -q wait_started && break; sleep 0.05; done
"$RBK" log 1 --follow --json >"$TMP/f1.json" 2>"$TMP/f1.err"
frc=$?
wait $runner
rrc=$?
"$RBK" log 1 --json >"$TMP/all1.json" 2>&1
[[ $frc == 0 && $rrc == 0 && $(kinds "$TMP/f1.json") == "$(kinds "$TMP/all1.json")" &&
	$(kinds "$TMP/f1.json") == *"wait_started transition step_started step_finished transition run_finished" ]]
t $? "log --follow --json prints a run another process executes as it grows, then exits 0 with it" \
	"follow exit $frc, run exit $rrc; followed: $(kinds "$TMP/f1.json"); all: $(kinds "$TMP/all1.json"); $(cat "$TMP/f1.err")"

# 2. Waiting for an approval is not the end: the follower says so once, keeps
#    following, and ends when the run ends after the answer.
"$RBK" run "$FX/approval.yaml" -p ledger="$TMP/l2" >/dev/null 2>&1
wrc=$?
"$RBK" log 2 --follow >"$TMP/f2.out" 2>"$TMP/f2.err" &
follower=$!
for _ in $(seq 100); do grep -q "waits for an answer" "$TMP/f2.err" 2>/dev/null && break; sleep 0.05; done
alive_while_waiting=0
kill -0 $follower 2>/dev/null && alive_while_waiting=1
"$RBK" approve 2 --comment "go" >"$TMP/a2.out" 2>&1
arc=$?
for _ in $(seq 100); do kill -0 $follower 2>/dev/null || break; sleep 0.05; done
kill $follower 2>/dev/null
wait $follower
frc=$?
[[ $wrc == 4 && $arc == 0 && $alive_while_waiting == 1 && $frc == 0 &&
	$(grep -c "waits for an answer" "$TMP/f2.err") == 1 && $(grep -c "rbk approve" "$TMP/f2.err") == 1 &&
	$(grep -c "approval_decided" "$TMP/f2.out") == 1 && $(tail -1 "$TMP/f2.out") == *"run_finished"*"succeeded"* ]]
t $? "log --follow of a waiting run says once that it waits (with the command), follows it through the approval, exits 0" \
	"run exit $wrc, approve exit $arc, follower alive while waiting $alive_while_waiting, follower exit $frc; err: $(cat "$TMP/f2.err"); out: $(tail -3 "$TMP/f2.out")"

# 3. A failed run: the follower's exit code is the run's.
"$RBK" run "$FX/approval.yaml" -p ledger="$TMP/l3" >/dev/null 2>&1
"$RBK" log 3 --follow >"$TMP/f3.out" 2>"$TMP/f3.err" &
follower=$!
for _ in $(seq 100); do grep -q "waits" "$TMP/f3.err" 2>/dev/null && break; sleep 0.05; done
"$RBK" reject 3 --comment "no" >/dev/null 2>&1
for _ in $(seq 100); do kill -0 $follower 2>/dev/null || break; sleep 0.05; done
kill $follower 2>/dev/null
wait $follower
frc=$?
[[ $frc == 1 && $(tail -1 "$TMP/f3.out") == *"run_finished"*"failed"* ]]
t $? "log --follow of a run that ends failed exits 1" "follower exit $frc; $(tail -2 "$TMP/f3.out"; cat "$TMP/f3.err")"

# 4. A finished run: --follow prints it whole and exits at once with its code.
"$RBK" log 1 --follow >"$TMP/f4.out" 2>&1
frc=$?
"$RBK" log 1 >"$TMP/l4.out" 2>&1
cmp -s "$TMP/f4.out" "$TMP/l4.out"
t $? "log --follow of a finished run prints the same timeline as log and exits with its code" "exit $frc"
"$RBK" log 99 --follow >"$TMP/f5.out" 2>&1
frc=$?
[[ $frc == 2 && $(cat "$TMP/f5.out") == *"run 99"* ]]
t $? "log --follow of an unknown run: exit 2, naming it" "exit $frc: $(cat "$TMP/f5.out")"

# 5. rbk report writes its HTML page with or without --html.
"$RBK" report 1 -o "$TMP/r.html" >"$TMP/r.out" 2>&1
rc=$?
"$RBK" report 1 --html >"$TMP/r2.html" 2>&1
rc2=$?
[[ $rc == 0 && $rc2 == 0 && $(head -c 15 "$TMP/r.html") == "<!DOCTYPE html>" && $(head -c 15 "$TMP/r2.html") == "<!DOCTYPE html>" ]]
t $? "rbk report RUN -o FILE writes the HTML page without --html" "exit $rc/$rc2: $(cat "$TMP/r.out")"
