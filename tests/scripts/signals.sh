#!/bin/bash
# Signals an operator's terminal sends (docs/cli.md, "Signals"): a closed
# output (`rbk run X | head -1`) never kills a step, and a closed terminal
# (SIGHUP) lets the run carry on to its end, its output dropped; the run's
# record is in the store. The runbook's first step is not idempotent and
# lasts a couple of seconds, so that a kill would leave it in flight.
. "$(dirname "$0")/lib.bash"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
unset RBK_CRASH_POINT RBK_PATH RBK_HOME

cat >"$TMP/slow.yaml" <<'YAML'
rbk: 1
name: slow
params:
  dir: {type: string}
start: work
states:
  work:
    do: shell.exec
    with:
      script: 'echo >> "$D/began"; sleep 2; echo >> "$D/finished"'
      env: {D: "{{ params.dir }}"}
    next: after
  after:
    do: shell.exec
    with: {script: 'echo >> "$D/after"', env: {D: "{{ params.dir }}"}}
    next: done
  done: {end: success}
YAML
RB=$TMP/slow.yaml

new() {
	H=$(mktemp -d "$TMP/h.XXXXXX")
	export RBK_HOME=$H
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	D=$H/d
	mkdir "$D"
}
san() { grep -q 'Sanitizer\|runtime error:' "$1" 2>/dev/null && cat "$1" >&2; return 0; }
status() { "$RBK" show 1 --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null; }
hist() { "$RBK" history 2>&1 | sed -n 2p | awk '{print $3}'; }
lines() { [[ -e $1 ]] && wc -l <"$1" || echo 0; }
ran_once() { # each step ran exactly once, to its end
	[[ $(lines "$D/began") == 1 && $(lines "$D/finished") == 1 && $(lines "$D/after") == 1 ]]
}
why() { printf 'exit %s; status %s; began %s finished %s after %s; err: %s' "$1" "$(status)" "$(lines "$D/began")" \
	"$(lines "$D/finished")" "$(lines "$D/after")" "$(tail -3 "$H/err" 2>/dev/null)" | tr '\n' ' '; }
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }
waitfor() { # waitfor FILE: until it exists (10s at most)
	local i
	for ((i = 0; i < 200; i++)); do
		[[ -e $1 ]] && return 0
		sleep 0.05
	done
	return 1
}

# --- the output closed mid-step (a pipe into head) --------------------------------------------
new
"$RBK" run "$RB" -p dir="$D" 2>"$H/err" | head -1 >"$H/head"
rc=${PIPESTATUS[0]}
san "$H/err"
[[ $rc == 0 && $(status) == succeeded && $(hist) == succeeded ]] && ran_once
t $? "rbk run X | head -1: the closed pipe kills nothing; the run ends succeeded (exit 0)" "$(why "$rc")"
[[ $(<"$H/head") == *"started slow"* && ! -s $H/err ]]
t $? "the reader got the first line; no error is printed for the lost output" "head: $(<"$H/head"); err: $(<"$H/err")"

new
"$RBK" run "$RB" -p dir="$D" 2>"$H/err" | head -2 >"$H/head"
rc=${PIPESTATUS[0]}
san "$H/err"
[[ $rc == 0 && $(status) == succeeded && $(tail -1 "$H/head") == *"start work"* ]] && ran_once
t $? "a reader that leaves once the step has started (head -2): the step and the run end succeeded" "$(why "$rc")"

new
"$RBK" run "$RB" -p dir="$D" --json 2>"$H/err" | true
rc=${PIPESTATUS[0]}
san "$H/err"
[[ $rc == 0 && $(status) == succeeded ]] && ran_once
t $? "rbk run --json into a reader that is already gone: the run ends succeeded" "$(why "$rc")"

# --- SIGHUP mid-step: the step and the run go on to their end ------------------------------------
new
"$RBK" run "$RB" -p dir="$D" >"$H/out" 2>"$H/err" &
E=$!
waitfor "$D/began"
kill -HUP "$E"
{ wait "$E"; } 2>/dev/null
rc=$?
san "$H/err"
[[ $rc == 0 && $(status) == succeeded ]] && ran_once
t $? "SIGHUP mid-step: the step finishes and the run carries on to succeeded (exit 0)" "$(why "$rc")"

# --- a terminal that closes mid-step: SIGHUP, then EIO on every write ----------------------------
new
cat >"$TMP/hangup.py" <<'PY'
import os, pty, sys, time
rbk, rb, d = sys.argv[1:4]
pid, fd = pty.fork()
if pid == 0:
    os.execv(rbk, [rbk, "run", rb, "-p", "dir=" + d])
# Read what rbk prints on its terminal until the step has begun, then
# close the terminal (the pty's master: a hangup).
deadline = time.time() + 10
while time.time() < deadline and not os.path.exists(os.path.join(d, "began")):
    try:
        os.read(fd, 4096)
    except OSError:
        break
os.close(fd)
for _ in range(400):
    p, st = os.waitpid(pid, os.WNOHANG)
    if p:
        print(os.waitstatus_to_exitcode(st))
        sys.exit(0)
    time.sleep(0.05)
os.kill(pid, 9)
print("hung")
PY
rc=$(python3 "$TMP/hangup.py" "$RBK" "$RB" "$D" 2>"$H/err")
[[ $rc == 0 && $(status) == succeeded ]] && ran_once
t $? "a closed terminal (hangup of its pty) mid-step: the run ends succeeded, its output dropped" "$(why "$rc")"

# --- what rbk ignores, the programs of its steps do not -------------------------------------------
new
cat >"$TMP/dispositions.yaml" <<'YAML'
rbk: 1
name: dispositions
start: pipe
states:
  pipe:
    do: shell.exec
    # yes ends by SIGPIPE, quietly; ignoring it, it would complain on stderr
    with: {script: 'yes | head -1 >/dev/null; echo done'}
    next:
      - if: trim(steps.pipe.stdout) == 'done' && steps.pipe.stderr == ''
        to: hup
      - to: bad
  hup:
    do: shell.exec
    with: {script: 'sh -c ''kill -HUP $$; echo survived''; echo "inner $?"'}
    next:
      - if: trim(steps.hup.stdout) == 'inner 129'
        to: done
      - to: bad
  done: {end: success}
  bad: {end: failure}
YAML
"$RBK" run "$TMP/dispositions.yaml" >"$H/out" 2>"$H/err"
rc=$?
san "$H/err"
[[ $rc == 0 ]]
t $? "a step's programs get the default SIGPIPE and SIGHUP, which rbk ignores" "exit $rc; $("$RBK" log 1 2>&1 | tail -4 | tr '\n' ' ')"

# --- the scheduler keeps SIGHUP for itself: a reload ----------------------------------------------
new
mkdir "$H/books"
"$RBK" scheduler --home "$H" >"$H/sched.out" 2>"$H/err" &
S=$!
for ((i = 0; i < 100; i++)); do grep -q "schedule entr" "$H/sched.out" && break; sleep 0.05; done
kill -HUP "$S"
for ((i = 0; i < 100; i++)); do grep -q "reloaded" "$H/sched.out" && break; sleep 0.05; done
kill -TERM "$S"
{ wait "$S"; } 2>/dev/null
rc=$?
san "$H/err"
[[ $rc == 0 ]] && grep -q "reloaded" "$H/sched.out"
t $? "rbk scheduler still reloads on SIGHUP" "exit $rc; $(tail -3 "$H/sched.out" | tr '\n' ' ')"
