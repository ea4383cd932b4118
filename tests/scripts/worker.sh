#!/bin/bash
# rbk's action worker (engine/src/exec/runner.c):
#  - consecutive actions run in one worker process, not in the engine;
#  - an action's leftovers do not reach the next action: its variable, its
#    working directory; an ignored SIGTERM does not outlive it (the worker
#    still dies with rbk);
#  - an action that leaves a process behind (double-forked, never handed to
#    rbk): the process is killed when the step ends, and the next step gets
#    a new worker;
#  - a crashing action fails its step only; the next step gets a new worker;
#  - kill -9 of rbk between steps: no worker is left.
. "$(dirname "$0")/lib.bash"
export RBK_HOME=$TMP/home
export RBK_PLUGIN_PATH=$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins
fresh_store
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }
FX=$RBK_ROOT/tests/fixtures/run/worker.yaml
out() { # out RUN STATE KEY: an output of the step's last result
	"$RBK" log "$1" --json 2>/dev/null | python3 -c 'import json,sys
r = [json.loads(l)["data"] for l in sys.stdin if json.loads(l)["kind"] == "step_finished"]
r = [d for d in r if d["state"] == sys.argv[1]]
print(r[-1]["result"]["out"].get(sys.argv[2], "") if r else "none")' "$2" "$3"
}
alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null && [[ $(ps -o stat= -p "$1" | tr -d ' ') != Z* ]]; }

"$RBK" run "$FX" -p pidfile="$TMP/pid1" >"$TMP/out" 2>&1
rc=$?
p1=$(out 1 first pid) p2=$(out 1 second pid) p3=$(out 1 after pid)
[[ $rc == 0 && $p1 =~ ^[0-9]+$ && $p1 == "$p2" && $p1 == "$p3" && ! -e /proc/$p1 ]]
t $? "consecutive actions run in one worker process (pid $p1), gone after the run" "exit $rc, pids $p1 $p2 $p3; $(tail -3 "$TMP/out")"
[[ $(out 1 after env) == "" && $(out 1 after cwd) == "$(out 1 first cwd)" ]]
t $? "a variable and a working directory an action left do not reach the next action" \
	"env '$(out 1 after env)', cwd '$(out 1 after cwd)' (first: '$(out 1 first cwd)')"

"$RBK" run "$FX" -p pidfile="$TMP/pid2" -p spawn=true >"$TMP/out" 2>&1
rc=$?
orphan=$(cat "$TMP/pid2" 2>/dev/null)
[[ $rc == 0 && -n $orphan ]] && ! alive "$orphan"
t $? "a process an action left behind (double-forked, never handed over) is killed when its step ends" \
	"exit $rc, orphan '$orphan' $(alive "$orphan" && echo alive)"
[[ $(out 2 after pid) != "$(out 2 litter pid)" && $(out 2 after pid) =~ ^[0-9]+$ ]]
t $? "... and the next step gets a new worker" "litter $(out 2 litter pid), after $(out 2 after pid)"

"$RBK" run "$FX" -p pidfile="$TMP/pid3" -p crash=true >"$TMP/out" 2>&1
rc=$?
[[ $rc == 0 && $(out 3 last pid) =~ ^[0-9]+$ && $(out 3 last pid) != "$(out 3 after pid)" ]] &&
	grep -q "crashed: killed by signal 11" "$TMP/out"
t $? "a crashing action fails its step; the next step runs in a new worker" \
	"exit $rc, after $(out 3 after pid), last $(out 3 last pid); $(grep crash "$TMP/out" | head -2)"

# kill -9 of rbk while its worker idles (a durable wait between actions):
# the worker, whose SIGTERM the last action ignored, dies with rbk.
cat >"$TMP/idle.yaml" <<'EOF'
rbk: 1
name: idle
start: litter
states:
  litter:
    do: testkit.litter
    next: who
  who:
    do: testkit.whoami
    next: pause
  pause:
    wait: 30s
    next: done
  done: {end: success}
EOF
"$RBK" run "$TMP/idle.yaml" >"$TMP/idle.out" 2>&1 &
engine=$!
for ((i = 0; i < 100; i++)); do
	w=$(out 4 who pid)
	[[ $w =~ ^[0-9]+$ ]] && break
	sleep 0.1
done
sleep 0.3
kill -9 "$engine"
wait "$engine" 2>/dev/null
for ((i = 0; i < 50; i++)); do alive "$w" || break; sleep 0.1; done
[[ $w =~ ^[0-9]+$ ]] && ! alive "$w"
t $? "kill -9 of rbk between steps: its worker does not outlive it" "worker '$w' $(alive "$w" && echo alive)"
