#!/bin/bash
# Durations from params (docs/format.md, "Durations"): wait, timeout,
# poll.every, poll.for and approval.timeout may be "{{ params.X }}", X a
# duration param; the run's value is used, and what cannot be is refused
# by rbk validate with its place.
. "$(dirname "$0")/lib.bash"
export RBK_HOME=$TMP/home
export RBK_PLUGIN_PATH=$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins
fresh_store
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }
now() { date +%s%3N; }
ev() { "$RBK" log "$1" --json 2>/dev/null | python3 -c 'import json,sys
E = [json.loads(l) for l in sys.stdin]
print(eval(sys.argv[1]))' "$2" 2>&1; }

cat >"$TMP/d.yaml" <<'Y'
rbk: 1
name: durations
params:
  settle: {type: duration, default: 200ms}
  limit: {type: duration, default: 600ms}
  slow: {type: duration, default: 5s}
start: pause
states:
  pause:
    wait: "{{ params.settle }}"
    next: [{to: probe}]
  probe:
    do: shell.exec
    with: {argv: [/bin/true]}
    poll: {until: "false", every: "{{ params.settle }}", for: "{{params.limit}}"}
    on_failure: sleepy
    next: [{to: done}]
  sleepy:
    do: shell.exec
    with: {argv: [/bin/sleep, "10"]}
    timeout: "{{ params.slow }}"
    on_failure: failed
    next: [{to: done}]
  done: {end: success}
  failed: {end: failure}
Y
"$RBK" validate "$TMP/d.yaml" >"$TMP/v.out" 2>&1
t $? "a runbook with durations from params validates" "$(cat "$TMP/v.out")"

s=$(now)
"$RBK" run "$TMP/d.yaml" -p settle=100ms -p limit=1s -p slow=300ms >"$TMP/r1.out" 2>&1
rc=$? el=$(($(now) - s))
wait_ms=$(ev 1 '[e["data"]["until_ms"] - e["data"].get("at_ms", 0) for e in E if e["kind"] == "wait_started"]')
polls=$(ev 1 'len([e for e in E if e["kind"] == "step_poll"])')
delays=$(ev 1 'sorted(set(e["data"]["delay_ms"] for e in E if e["kind"] == "step_poll"))')
why=$(ev 1 '[e["data"]["result"]["error"] for e in E if e["kind"] == "step_finished" and e["data"]["state"] == "sleepy"]')
[[ $rc == 1 && $delays == "[100]" && $polls -ge 5 && $polls -le 11 && $why == *"timed out"* && $el -lt 5000 ]]
t $? "the run's params give poll.every (100ms), poll.for (1s) and timeout (300ms)" \
	"exit $rc in ${el}ms; polls $polls with delays $delays; sleepy: $why; $(tail -3 "$TMP/r1.out")"
grep -q "probe failed: poll: 'false' still false after 1s; on to sleepy" "$TMP/r1.out" &&
	"$RBK" log 1 | grep -q "probe -> sleepy (failure): poll: 'false' still false after 1s"
t $? "the poll gives up after the param's 1s, and says so on the terminal and in the log" "$(tail -5 "$TMP/r1.out"; "$RBK" log 1 | grep failure)"
s=$(now)
"$RBK" run "$TMP/d.yaml" -p settle=1500ms -p limit=1ms -p slow=100ms >"$TMP/r2.out" 2>&1
rc=$? el=$(($(now) - s))
[[ $rc == 1 && $el -ge 1500 ]]
t $? "wait takes the param's duration (1500ms)" "exit $rc in ${el}ms"
OUT=$("$RBK" replay 1 2>&1)
[[ $? == 0 && $OUT == *", 0 divergences"* ]]
t $? "a run with durations from params replays with no divergence" "$OUT"
"$RBK" run "$TMP/d.yaml" -p settle=soon >"$TMP/r3.out" 2>&1
rc=$?
[[ $rc == 2 && $(cat "$TMP/r3.out") == *"settle"*"soon"* ]]
t $? "a duration param that is not a duration is refused before the run: exit 2" "exit $rc: $(cat "$TMP/r3.out")"

# Approval timeout from a param: the approval times out after it.
cat >"$TMP/a.yaml" <<'Y'
rbk: 1
name: ask
params:
  answer_within: {type: duration, required: true}
start: ask
states:
  ask:
    approval: {prompt: go?, timeout: "{{ params.answer_within }}"}
    on_failure: late
    next: [{to: done}]
  late: {end: failure}
  done: {end: success}
Y
"$RBK" run "$TMP/a.yaml" -p answer_within=300ms >"$TMP/a.out" 2>&1
rc=$?
id=$("$RBK" history --limit 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])')
sleep 0.5
"$RBK" approve "$id" >"$TMP/ap.out" 2>&1
arc=$?
dl=$(ev "$id" '[e["data"].get("deadline_ms", 0) - 0 for e in E if e["kind"] == "approval_requested"]')
st=$("$RBK" show "$id" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
[[ $rc == 4 && $st == failed && $(cat "$TMP/ap.out") == *"timed out"* ]]
t $? "approval.timeout from a param: an answer after it comes too late, the run fails" \
	"run exit $rc, approve exit $arc: $(cat "$TMP/ap.out"); status $st"

# What validate refuses, with the place.
bad() { # bad NAME SED-EXPR WANT
	sed "$2" "$TMP/d.yaml" >"$TMP/bad.yaml"
	OUT=$("$RBK" validate "$TMP/bad.yaml" 2>&1)
	[[ $? == 2 && $OUT == *"$3"* ]]
	t $? "validate refuses $1" "$OUT"
}
bad "a duration from a param of another type" 's/settle: {type: duration, default: 200ms}/settle: {type: int, default: 2}/' \
	"bad.yaml:10:11: error: 'wait': param 'settle' has type int; a duration comes from a param of type duration"
bad "a duration from an undeclared param" 's/for: "{{params.limit}}"/for: "{{ params.nope }}"/' \
	"error: 'for': no param 'nope' is declared"
bad "a duration from a param that may be absent" 's/slow: {type: duration, default: 5s}/slow: {type: duration, required: false}/' \
	"error: 'timeout': param 'slow' may be absent: give it a default or required: true"
bad "a retry delay from a param (replay recomputes it from the definition)" \
	's/    timeout: "{{ params.slow }}"/    timeout: "{{ params.slow }}"\n    retry: {attempts: 2, delay: "{{ params.settle }}"}/' \
	"error: 'delay': a literal duration is needed here"
bad "a computed duration" 's/wait: "{{ params.settle }}"/wait: "{{ params.settle * 2 }}"/' "error: 'wait': bad duration"

# Durations in expressions (docs/format.md, "Durations in expressions"):
# literals, duration params and steps.S.duration_ms compare as durations,
# a computed number meets one as seconds, and a duration kept in vars reads
# the same after a resume in another process.
cat >"$TMP/x.yaml" <<'Y'
rbk: 1
name: clock
params:
  fresh: {type: duration, default: 1s}
  budget: {type: duration, default: 1h30m}
start: mark
states:
  mark:
    set: {t: now(), grace: 2s}
    next: [{to: work}]
  work:
    do: shell.exec
    with: {argv: [/bin/sleep, "0.3"]}
    set:
      quick: steps.work.duration_ms < 2s
      long_enough: steps.work.duration_ms >= 250ms
      young: now() - vars.t < 5m
      left: params.budget - 30m
      half: params.fresh / 2
      back: now() - 90s
    next:
      - if: vars.quick && vars.long_enough && vars.young && vars.left == 1h && vars.grace < params.fresh * 3 && vars.half == 500ms
        to: hold
      - to: failed
  hold:
    approval: {prompt: "left {{ vars.left }}, half {{ vars.half }}, {{ seconds(params.budget) }} s in all"}
    next: [{to: check}]
  check:
    next:
      - if: vars.grace == 2s && vars.left > 59m && vars.left + 1m == 61m && vars.back <= now() - 90s
        to: done
      - to: failed
  done: {end: success}
  failed: {end: failure}
Y
"$RBK" validate "$TMP/x.yaml" >"$TMP/xv.out" 2>&1
t $? "a runbook with duration literals in expressions validates" "$(cat "$TMP/xv.out")"
"$RBK" run "$TMP/x.yaml" >"$TMP/x1.out" 2>&1
rc=$?
xid=$("$RBK" history --limit 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])')
prompt=$(ev "$xid" '[e["data"]["prompt"] for e in E if e["kind"] == "approval_requested"]')
[[ $rc == 4 && $prompt == "['left 1h, half 500ms, 5400 s in all']" ]]
t $? "durations compare and compute as durations: the run reaches the approval, its prompt shows them as written" \
	"exit $rc; prompt $prompt; $(tail -5 "$TMP/x1.out")"
vars=$(ev "$xid" '{k: v for e in E if e["kind"] == "vars_set" for k, v in e["data"]["vars"].items() if k in ("grace", "left", "half")}')
[[ $vars == "{'grace': '2s', 'left': '1h', 'half': '500ms'}" ]]
t $? "a duration set in a variable is recorded as its text" "$vars"
"$RBK" approve "$xid" >"$TMP/x2.out" 2>&1
rc=$?
st=$("$RBK" show "$xid" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
[[ $rc == 0 && $st == succeeded ]]
t $? "after the approval (another process, vars read back from the record) the durations still compare as durations" \
	"approve exit $rc, status $st: $(tail -5 "$TMP/x2.out")"
OUT=$("$RBK" replay "$xid" 2>&1)
[[ $? == 0 && $OUT == *", 0 divergences"* ]]
t $? "a run with durations in expressions replays with no divergence" "$OUT"

# A number written without a unit next to a duration is refused where it
# is evaluated, with its place, and the guard's state fails.
sed 's/steps.work.duration_ms < 2s/steps.work.duration_ms < 2000/' "$TMP/x.yaml" >"$TMP/xb.yaml"
"$RBK" run "$TMP/xb.yaml" >"$TMP/xb.out" 2>&1
rc=$?
grep -q "xb.yaml:15:39: '<': a number without a unit cannot meet a duration (write 2s, 500ms, 5m)" "$TMP/xb.out"
t $? "a bare number compared with a duration is an error that names its place (exit $rc)" "$(tail -5 "$TMP/xb.out")"
[[ $rc == 1 ]]
t $? "... and the run fails rather than guess a unit" "exit $rc"

# A duration param handed to a child run: "{{ params.X }}" in a call's with.
mkdir -p "$TMP/rb"
cat >"$TMP/rb/child.yaml" <<'Y'
rbk: 1
name: child
params:
  pause: {type: duration, required: true}
start: nap
states:
  nap:
    wait: "{{ params.pause }}"
    next: [{to: done}]
  done: {end: success}
Y
cat >"$TMP/rb/parent.yaml" <<'Y'
rbk: 1
name: parent
params:
  pause: {type: duration, default: 300ms}
start: go
states:
  go:
    call: child
    with: {pause: "{{ params.pause }}"}
    next: [{to: done}]
  done: {end: success}
Y
s=$(now)
RBK_PATH="$TMP/rb" "$RBK" run parent >"$TMP/call.out" 2>&1
rc=$? el=$(($(now) - s))
[[ $rc == 0 && $el -ge 300 ]]
t $? "a duration param passed to a child run's duration param through a call" "exit $rc in ${el}ms: $(tail -3 "$TMP/call.out")"
