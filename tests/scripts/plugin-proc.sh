#!/bin/bash
# The proc plugin against real processes: pid files of live, dead, zombie and
# garbage pids, heartbeat files by mtime and by content, and signals to
# processes that exit on TERM, ignore it, or are not there; outputs read back
# from `rbk log RUN --json`.
. "$(dirname "$0")/lib.bash"
export RBK_HOME="$TMP/home" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
unset RBK_PATH
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$TMP"' EXIT

# --- helpers: one-step runbooks, their outputs --------------------------------------------------
cat >"$TMP/q.py" <<'PY'
import json, sys
state, expr = sys.argv[1], sys.argv[2]
o, e, st = {}, None, None
for line in sys.stdin:
    ev = json.loads(line)
    if ev["kind"] == "step_finished" and ev["data"]["state"] == state:
        r = ev["data"]["result"]
        o, e, st = r.get("out") or {}, r.get("error"), r.get("status")
v = eval(expr)
print(v if isinstance(v, str) else json.dumps(v))
PY
N=0
step() { # step ACTION WITH [EXTRA-STATE-YAML]: a one-step runbook; sets RC and RUN
	N=$((N + 1))
	cat >"$TMP/rb$N.yaml" <<Y
rbk: 1
name: t$N
start: s
states:
  s:
    do: $1
    with: $2
    next: done
$3
  done: {end: success}
Y
	local o
	o=$("$RBK" run "$TMP/rb$N.yaml" --json 2>"$TMP/stderr")
	RC=$?
	RUN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["run"])' "$o" 2>/dev/null)
	grep -q 'Sanitizer\|runtime error:' "$TMP/stderr" && cat "$TMP/stderr" >&2
}
q() { "$RBK" log "$RUN" --json | python3 "$TMP/q.py" s "$1" 2>&1; }
t() { # t NAME STATUS [why]
	if [[ $2 == 0 ]]; then ok "$1"; else fail "$1" "${3:-rc=$RC out=$(q o) error=$(q e) stderr=$(tail -3 "$TMP/stderr")}"; fi
}
waitfile() { for _ in $(seq 200); do [[ -s $1 ]] && return 0; sleep 0.02; done; return 1; }
alive() { kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }
dead_pid() { sleep 0 & local p=$!; wait $p; echo $p; }

# --- proc.pidfile ----------------------------------------------------------------------------------
sleep 300 &
SP=$!
PIDS+=("$SP")
echo "$SP" >"$TMP/live.pid"
step proc.pidfile "{path: \"$TMP/live.pid\"}"
[[ $RC == 0 && $(q 'o["pid"]') == "$SP" && $(q 'o["alive"]') == true && $(q 'o["stale"]') == false &&
	$(q 'o["exists"]') == true && $(q 'o["note"]') == null ]]
t "pidfile of a running process: alive, not stale" $?

step proc.pidfile "{path: \"$TMP/live.pid\"}"
[[ $RC == 0 && $(q 'o["alive"]') == true ]]
t "pidfile read again: the same (idempotent)" $?

DP=$(dead_pid)
printf '%s\n' "$DP" >"$TMP/dead.pid"
step proc.pidfile "{path: \"$TMP/dead.pid\"}"
[[ $RC == 0 && $(q 'o["pid"]') == "$DP" && $(q 'o["alive"]') == false && $(q 'o["stale"]') == true &&
	$(q 'o["note"]') == "no process $DP is running" ]]
t "pidfile of a dead pid: stale" $?

# A zombie that is not our child: its parent never reaps it.
python3 -c '
import os, sys, time
pid = os.fork()
if pid == 0:
    os._exit(0)
open(sys.argv[1], "w").write(str(pid))
time.sleep(300)' "$TMP/zombie.pid" &
PIDS+=("$!")
waitfile "$TMP/zombie.pid"
ZP=$(cat "$TMP/zombie.pid")
for _ in $(seq 100); do [[ $(awk '{print $3}' "/proc/$ZP/stat" 2>/dev/null) == Z ]] && break; sleep 0.02; done
step proc.pidfile "{path: \"$TMP/zombie.pid\"}"
[[ $RC == 0 && $(q 'o["alive"]') == false && $(q 'o["stale"]') == true ]]
t "pidfile of a zombie: gone, so stale" $?

printf 'hello world\n' >"$TMP/garbage.pid"
step proc.pidfile "{path: \"$TMP/garbage.pid\"}"
[[ $RC == 0 && $(q 'o["exists"]') == true && $(q 'o["pid"]') == null && $(q 'o["stale"]') == true &&
	$(q 'o["alive"]') == false && $(q 'o["note"]') == "pid file $TMP/garbage.pid does not hold a pid (\"hello world\")" ]]
t "pidfile holding garbage: stale with a note, no crash" $?

for content in "" "0" "-5" "12abc" "99999999999" $'\x01\x02'; do
	printf '%s' "$content" >"$TMP/g.pid"
	step proc.pidfile "{path: \"$TMP/g.pid\"}"
	[[ $RC == 0 && $(q 'o["stale"]') == true && $(q 'o["pid"]') == null && $(q 'o["note"]') == "pid file $TMP/g.pid "* ]] || break
done
t "pidfile holding '', 0, -5, 12abc, a huge number or binary: stale, pid null" $? "content=$(printf %q "$content") rc=$RC out=$(q o)"

printf '  %s  \n# comment\n' "$SP" >"$TMP/spaced.pid"
step proc.pidfile "{path: \"$TMP/spaced.pid\"}"
[[ $RC == 0 && $(q 'o["pid"]') == "$SP" && $(q 'o["alive"]') == true ]]
t "pidfile: the first line counts, blanks around the pid are fine" $?

step proc.pidfile "{path: \"$TMP/nothere.pid\"}"
[[ $RC == 0 && $(q 'o["exists"]') == false && $(q 'o["pid"]') == null && $(q 'o["stale"]') == false &&
	$(q 'o["alive"]') == false ]]
t "pidfile missing: exists false, not stale" $?

step proc.pidfile "{path: \"$TMP\"}"
[[ $RC == 1 && $(q e) == "pid file $TMP is not a regular file" ]]
t "pidfile that is a directory: a clear error" $?

# --- proc.heartbeat --------------------------------------------------------------------------------
touch "$TMP/hb"
step proc.heartbeat "{path: \"$TMP/hb\", max_age: 1m}"
[[ $RC == 0 && $(q 'o["exists"]') == true && $(q 'o["fresh"]') == true && $(q 'o["age_ms"] < 10000') == true ]]
t "heartbeat touched now: fresh" $?

touch -d '5 minutes ago' "$TMP/hb"
step proc.heartbeat "{path: \"$TMP/hb\", max_age: 1m}"
[[ $RC == 0 && $(q 'o["fresh"]') == false && $(q '299000 <= o["age_ms"] < 310000') == true ]]
t "heartbeat touched 5 minutes ago: not fresh, age about 300000 ms" $?

step proc.heartbeat "{path: \"$TMP/hb\", max_age: 10m}"
[[ $RC == 0 && $(q 'o["fresh"]') == true ]]
t "the same heartbeat with max_age 10m: fresh" $?

date +%s >"$TMP/hbc"
touch -d '1 hour ago' "$TMP/hbc"
step proc.heartbeat "{path: \"$TMP/hbc\", max_age: 30s, content: true}"
[[ $RC == 0 && $(q 'o["fresh"]') == true && $(q 'o["age_ms"] < 10000') == true ]]
t "heartbeat by content: a timestamp of now is fresh (the old mtime does not count)" $?

echo "$(($(date +%s) - 600)).250" >"$TMP/hbc"
step proc.heartbeat "{path: \"$TMP/hbc\", max_age: 30s, content: true}"
[[ $RC == 0 && $(q 'o["fresh"]') == false && $(q '599000 <= o["age_ms"] < 610000') == true ]]
t "heartbeat by content: a timestamp 10 minutes old (with a fraction) is not fresh" $?

echo "$(($(date +%s) + 3600))" >"$TMP/hbc"
step proc.heartbeat "{path: \"$TMP/hbc\", max_age: 30s, content: true}"
[[ $RC == 0 && $(q 'o["fresh"]') == true && $(q 'o["age_ms"]') == 0 && $(q 'o["note"]') == *"in the future"* ]]
t "heartbeat in the future: age 0, with a note" $?

echo "yesterday" >"$TMP/hbc"
step proc.heartbeat "{path: \"$TMP/hbc\", max_age: 30s, content: true}"
[[ $RC == 0 && $(q 'o["fresh"]') == false && $(q 'o["age_ms"]') == null &&
	$(q 'o["note"]') == "heartbeat file $TMP/hbc does not hold a Unix timestamp (\"yesterday?\")" ]]
t "heartbeat content that is no timestamp: not fresh, with a note" $?

step proc.heartbeat "{path: \"$TMP/nohb\", max_age: 30s}"
[[ $RC == 0 && $(q 'o["exists"]') == false && $(q 'o["fresh"]') == false && $(q 'o["age_ms"]') == null ]]
t "heartbeat file missing: exists false, fresh false, the step succeeds" $?

step proc.heartbeat "{path: \"$TMP/hb\", max_age: 30}"
[[ $RC == 2 ]]
t "heartbeat max_age without a unit: bad input (exit 2)" $? "rc=$RC $(cat "$TMP/stderr")"

# A guard reads the outputs.
touch "$TMP/hb"
cat >"$TMP/guard.yaml" <<Y
rbk: 1
name: guard
start: hb
states:
  hb:
    do: proc.heartbeat
    with: {path: "$TMP/hb", max_age: 1m}
    next: pf
  pf:
    do: proc.pidfile
    with: {path: "$TMP/live.pid"}
    next:
      - if: steps.hb.out.fresh && steps.pf.out.alive && steps.pf.out.pid == $SP
        to: good
      - to: bad
  good: {end: success}
  bad: {end: failure}
Y
"$RBK" run "$TMP/guard.yaml" >/dev/null 2>&1
t "guards on steps.hb.out.fresh and steps.pf.out.alive pick the right branch" $? "exit $?"

# --- proc.signal -----------------------------------------------------------------------------------
bash -c 'trap "exit 0" TERM; echo $$ >"$1"; while :; do sleep 0.05; done' _ "$TMP/polite.pid" &
PIDS+=("$!")
waitfile "$TMP/polite.pid"
PP=$(cat "$TMP/polite.pid")
step proc.signal "{pidfile: \"$TMP/polite.pid\", grace: 5s}"
[[ $RC == 0 && $(q 'o["pid"]') == "$PP" && $(q 'o["signalled"]') == true && $(q 'o["exited"]') == true &&
	$(q 'o["killed"]') == false && $(q 'o["waited_ms"] < 5000') == true ]] && ! alive "$PP"
t "signal TERM to a process that traps it and exits: exited, not killed" $?

step proc.signal "{pidfile: \"$TMP/polite.pid\"}"
[[ $RC == 0 && $(q 'o["signalled"]') == false && $(q 'o["exited"]') == false && $(q 'o["killed"]') == false ]]
t "signal again: the process is gone, nothing sent (idempotent)" $?

bash -c 'trap "" TERM; echo $$ >"$1"; while :; do sleep 0.05; done' _ "$TMP/stubborn.pid" &
PIDS+=("$!")
waitfile "$TMP/stubborn.pid"
XP=$(cat "$TMP/stubborn.pid")
step proc.signal "{pid: $XP, signal: TERM, grace: 1s}"
[[ $RC == 0 && $(q 'o["signalled"]') == true && $(q 'o["exited"]') == false && $(q 'o["killed"]') == true &&
	$(q '1000 <= o["waited_ms"] < 4000') == true ]] && ! alive "$XP"
t "signal to a process that ignores TERM: killed after the 1s grace" $?

bash -c 'trap "" TERM; echo $$ >"$1"; while :; do sleep 0.05; done' _ "$TMP/stubborn2.pid" &
PIDS+=("$!")
waitfile "$TMP/stubborn2.pid"
XP=$(cat "$TMP/stubborn2.pid")
step proc.signal "{pid: $XP, grace: 500ms, kill: false}"
[[ $RC == 0 && $(q 'o["signalled"]') == true && $(q 'o["exited"]') == false && $(q 'o["killed"]') == false ]] && alive "$XP"
t "signal with kill false: the process survives, the step still succeeds" $?

step proc.signal "{pid: $XP, grace: 30s}" "    timeout: 2s"
[[ $RC == 0 && $(q 'o["killed"]') == true && $(q 'o["waited_ms"] < 2000') == true ]] && ! alive "$XP"
t "signal: the grace is cut to fit the step's timeout, so the SIGKILL still happens" $?

bash -c 'trap "echo hup >>\"$2\"" HUP; echo $$ >"$1"; while :; do sleep 0.05; done' _ "$TMP/hup.pid" "$TMP/hup.log" &
HP=$!
PIDS+=("$HP")
waitfile "$TMP/hup.pid"
step proc.signal "{pidfile: \"$TMP/hup.pid\", signal: hup, grace: 0s, kill: false}"
waitfile "$TMP/hup.log"
[[ $RC == 0 && $(q 'o["signalled"]') == true && $(q 'o["exited"]') == false && $(cat "$TMP/hup.log") == hup ]] && alive "$HP"
t "signal HUP (lower case) with no grace: delivered, the process keeps running" $?

step proc.signal "{pid: $HP, signal: SIGUSR1, grace: 2s}"
[[ $RC == 0 && $(q 'o["exited"]') == true && $(q 'o["killed"]') == false ]] && ! alive "$HP"
t "signal SIGUSR1 by name: its default action ends the process" $?

sleep 300 &
NP=$!
PIDS+=("$NP")
step proc.signal "{pid: $NP, signal: 9, grace: 2s}"
[[ $RC == 0 && $(q 'o["exited"]') == true ]] && ! alive "$NP"
t "signal by number (9)" $?

sleep 300 &
NP=$!
PIDS+=("$NP")
step proc.signal "{pid: $NP, signal: \"15\", grace: 2s}"
[[ $RC == 0 && $(q 'o["exited"]') == true ]] && ! alive "$NP"
t "signal by number written as a string (\"15\")" $?

step proc.signal "{pid: $ZP}"
[[ $RC == 0 && $(q 'o["signalled"]') == false ]]
t "signal to a zombie: already gone, nothing sent" $?

DP=$(dead_pid)
step proc.signal "{pid: $DP}"
[[ $RC == 0 && $(q 'o["signalled"]') == false && $(q 'o["pid"]') == "$DP" && $(q 'o["waited_ms"]') == 0 ]]
t "signal to a missing pid: success, signalled false" $?

step proc.signal "{pid: $DP, must_exist: true}"
[[ $RC == 1 && $(q e) == "no process $DP is running" ]]
t "signal to a missing pid with must_exist: fails" $?

step proc.signal "{pidfile: \"$TMP/nothere.pid\"}"
[[ $RC == 0 && $(q 'o["signalled"]') == false && $(q 'o["pid"]') == null ]]
t "signal by a missing pid file: success, signalled false" $?

step proc.signal "{pidfile: \"$TMP/nothere.pid\", must_exist: true}"
[[ $RC == 1 && $(q e) == "pid file $TMP/nothere.pid does not exist" ]]
t "signal by a missing pid file with must_exist: fails" $?

step proc.signal "{pidfile: \"$TMP/garbage.pid\"}"
[[ $RC == 1 && $(q e) == "pid file $TMP/garbage.pid does not hold a pid (\"hello world\")" ]]
t "signal by a garbage pid file: fails clearly, nothing signalled" $?

step proc.signal "{pid: $SP, signal: BOGUS}"
[[ $RC == 1 && $(q e) == "unknown signal 'BOGUS' (use a name such as TERM, HUP, USR1 or a number)" ]] && alive "$SP"
t "unknown signal name: refused" $?

step proc.signal "{pid: $SP, signal: 0}"
[[ $RC == 1 && $(q e) == "signal must be a name such as TERM or a number from 1 to "* ]] && alive "$SP"
t "signal 0: refused" $?

step proc.signal "{pid: $SP, pidfile: \"$TMP/live.pid\"}"
[[ $RC == 1 && $(q e) == "proc.signal needs exactly one of 'pid' and 'pidfile'" ]] && alive "$SP"
t "signal with both pid and pidfile: refused" $?

step proc.signal "{grace: 1s}"
[[ $RC == 1 && $(q e) == "proc.signal needs exactly one of 'pid' and 'pidfile'" ]]
t "signal with neither pid nor pidfile: refused" $?

step proc.signal "{pid: 1}"
[[ $RC == 1 && $(q e) == "refusing to signal process 1: it is init" ]]
t "signal to pid 1: refused" $?

step proc.signal "{pid: -3}"
[[ $RC == 1 && $(q e) == "pid must be a positive number, not -3" ]]
t "signal to a negative pid (a process group): refused" $?

# Not ours to signal: rbk running as nobody, the process as root.
if [[ $EUID == 0 ]] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
	chmod 755 "$TMP"
	mkdir -m 777 "$TMP/nobody"
	cp "$TMP/rb1.yaml" "$TMP/nobody/pf.yaml" && chmod 644 "$TMP/nobody/pf.yaml" "$TMP/live.pid"
	fresh_store # a new home: run 1 (on PostgreSQL a new schema)
	out=$(cd "$TMP/nobody" && RBK_HOME="$TMP/nobody/home" setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$RBK" run pf.yaml --json 2>&1)
	RUN=1
	o=$(RBK_HOME="$TMP/nobody/home" "$RBK" log 1 --json | python3 "$TMP/q.py" s 'o')
	[[ $o == *'"alive": false'* && $o == *'"stale": true'* && $o == *"\"note\": \"process $SP exists but is not ours to signal\""* ]]
	t "pidfile of another user's process: not alive, stale, with a note" $? "$out $o"
	sed "s|do: proc.pidfile|do: proc.signal|; s|{path: |{pidfile: |" "$TMP/nobody/pf.yaml" >"$TMP/nobody/sig.yaml"
	out=$(cd "$TMP/nobody" && RBK_HOME="$TMP/nobody/home2" setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$RBK" run sig.yaml 2>&1)
	[[ $? == 1 && $out == *"cannot send SIGTERM to process $SP (from $TMP/live.pid): Operation not permitted"* ]] && alive "$SP"
	t "signal to another user's process: fails, naming it" $? "$out"
fi

# --- dry run and declarations ----------------------------------------------------------------------
sleep 300 &
NP=$!
PIDS+=("$NP")
N=$((N + 1))
cat >"$TMP/dry.yaml" <<Y
rbk: 1
name: dry
start: s
states:
  s:
    do: proc.signal
    with: {pid: $NP, signal: KILL}
    next: done
  done: {end: success}
Y
"$RBK" run "$TMP/dry.yaml" --dry-run >/dev/null 2>&1
rc=$?
sleep 0.2
[[ $rc == 0 ]] && alive "$NP"
t "dry run: nothing is signalled" $? "rc=$rc"

out=$("$RBK" plugins "$RBK_ROOT/build/plugins/rbk-proc.so" 2>&1)
idem=$(grep -o '^  proc\.[a-z]*:.*' <<<"$out" | sed 's/^  \(proc\.[a-z]*\):.*\[idempotent\]$/\1 yes/; s/^  \(proc\.[a-z]*\):.*/\1 no/' | tr '\n' ' ')
[[ $idem == "proc.pidfile yes proc.heartbeat yes proc.signal yes " ]]
t "rbk plugins lists the proc actions, all idempotent" $? "$idem"
