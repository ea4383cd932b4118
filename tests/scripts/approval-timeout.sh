#!/bin/bash
# An approval answered after its timeout is recorded as timed out (with who
# answered) and takes the failure edge; answered in time, it is approved;
# the replay of both matches.
. "$(dirname "$0")/lib.bash"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
cat >"$TMP/apt.yaml" <<'Y'
rbk: 1
name: approval-timeout
start: ask
states:
  ask:
    approval: {prompt: go?, timeout: 1s}
    on_failure: late
    next: done
  done: {end: success}
  late: {end: failure}
Y
export RBK_HOME="$TMP/late"
fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
"$RBK" run "$TMP/apt.yaml" >/dev/null 2>&1
sleep 1.3
out=$("$RBK" approve 1 2>&1); rc=$?
log=$("$RBK" log 1)
[[ $rc == 1 && $out == *"the approval had timed out"* && $log == *"approval_decided   ask timed_out by $(principal)"* && $log == *"ask -> late (failure)"* ]] \
	&& ok "an answer after the timeout: timed out, the failure edge" || fail "late answer" "rc=$rc $out $log"
"$RBK" replay 1 >/dev/null && ok "its replay matches" || fail "replay late" "$("$RBK" replay 1)"
export RBK_HOME="$TMP/intime"
fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
"$RBK" run "$TMP/apt.yaml" >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[[ $rc == 0 ]] && "$RBK" log 1 | grep -q "ask approved by $(principal)" && ok "answered in time: approved, the run succeeds" || fail "in time" "rc=$rc $out"

# Nobody answers: the scheduler resumes the run once its approval has timed
# out, and the failure edge follows without anyone coming back.
export RBK_HOME="$TMP/swept" RBK_PATH="$TMP/none"
fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
# A deadline of 4s: far enough for a scheduler to start and look (on a
# loaded host, and on PostgreSQL, that can take a second or more).
mkdir -p "$RBK_PATH"
sed 's/timeout: 1s/timeout: 4s/' "$TMP/apt.yaml" >"$TMP/apt4.yaml"
t0=$(date +%s%N)
"$RBK" run "$TMP/apt4.yaml" >/dev/null 2>&1
out=$("$RBK" scheduler --once 2>&1)
[[ $out != *"approval timed out"* ]] && "$RBK" status | grep -q waiting && ok "before its deadline, the scheduler leaves a waiting approval alone" || fail "early sweep" "$out"
sleep "$(awk -v e=$((($(date +%s%N) - t0) / 1000000)) 'BEGIN { d = (4300 - e) / 1000; print (d > 0 ? d : 0) }')"
out=$("$RBK" scheduler --once 2>&1)
log=$("$RBK" log 1)
[[ $out == *"run 1 (approval-timeout): its approval timed out"* && $log == *"ask timed_out by $(principal)"* && $log == *"ask -> late (failure)"* ]] \
	&& ok "after its deadline, the scheduler resumes it: timed out, the failure edge" || fail "sweep" "$out $log"
