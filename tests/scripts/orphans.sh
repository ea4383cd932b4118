#!/bin/bash
# Nothing an action starts outlives its attempt (docs/cli.md, "Processes an
# action starts"). A shell.exec script leaves a background subshell writing
# to a file; rbk is then killed in the ways that happen: kill -9 of rbk
# alone, kill -9 of rbk and its action process together (as `killall -9 rbk`
# does, so that no handler can run), kill -9 of rbk while its action
# process is stopped, a second Ctrl-C. Each time the subshell must stop: at once when rbk dies, else
# before `rbk resume` re-runs or marks the step (or takes the run over). A
# program that calls setsid leaves rbk's reach, as documented.
. "$(dirname "$0")/lib.bash"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
unset RBK_CRASH_POINT RBK_PATH RBK_HOME
# Whatever a failing case leaves running is stopped when the script ends.
trap 'for p in $(cat "$TMP"/h.*/d/*.pid 2>/dev/null); do kill -9 "$p" "-$p" 2>/dev/null; done; rm -rf "$TMP"' EXIT

cat >"$TMP/orphan.yaml" <<'YAML'
rbk: 1
name: orphan
params:
  dir: {type: string}
start: work
states:
  work:
    do: shell.exec
    with:
      # The first attempt leaves a writer behind (and a daemon in a session
      # of its own); a later attempt ends at once.
      script: |
        echo "$RBK_IDEMPOTENCY_KEY" >> "$D/attempts"
        [ -e "$D/once" ] && exit 0
        touch "$D/once"
        setsid sleep 300 </dev/null >/dev/null 2>&1 &
        echo $! > "$D/daemon.pid"
        (while :; do echo x >> "$D/F"; sleep 0.05; done) &
        echo $! > "$D/writer.pid"
        sleep 30
      env: {D: "{{ params.dir }}"}
    next: done
    on_failure: gave_up
  done: {end: success}
  gave_up: {end: failure}
YAML
RB=$TMP/orphan.yaml

new() { # a fresh home and work directory
	H=$(mktemp -d "$TMP/h.XXXXXX")
	export RBK_HOME=$H
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	D=$H/d
	mkdir "$D"
}
san() { grep -q 'Sanitizer\|runtime error:' "$1" 2>/dev/null && cat "$1" >&2; return 0; }
r() { # r ARGS...: run rbk, RC OUT ERR
	"$RBK" "$@" >"$H/out" 2>"$H/err"
	RC=$?
	OUT=$(<"$H/out")
	ERR=$(<"$H/err")
	san "$H/err"
}
start() { # start the run in the background: E (rbk), R (its action process), W (the writer)
	RC= BRC=
	"$RBK" run "$RB" -p dir="$D" >"$H/run.out" 2>"$H/run.err" &
	E=$!
	local i
	for ((i = 0; i < 200; i++)); do
		[[ -s $D/writer.pid && -s $D/F ]] && break
		sleep 0.05
	done
	W=$(cat "$D/writer.pid" 2>/dev/null)
	R=$(ps -o pid= --ppid "$E" | tr -d ' ' | head -1)
}
finish() { # reap rbk
	{ wait "$E"; } 2>/dev/null
	BRC=$?
	san "$H/run.err"
}
killrbk() { # killrbk PID...: kill -9 (rbk among them) and reap rbk, without bash's "Killed" notice
	{
		kill -9 "$@"
		wait "$E"
	} 2>/dev/null
	BRC=$?
	san "$H/run.err"
}
alive() { # a live process (a zombie is not)
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[[ ${s%% *} != Z ]]
}
size() { stat -c %s "$D/F" 2>/dev/null || echo 0; }
grows() { # the writer's file grows within a second
	local a
	a=$(size)
	sleep 1
	[[ $(size) -gt $a ]]
}
status() { "$RBK" show 1 --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }
why() { printf 'exit %s; out: %s; err: %s; writer %s alive: %s' "${RC:-$BRC}" "$(tail -3 "$H/out" 2>/dev/null)" \
	"$(tail -3 "$H/err" 2>/dev/null)" "$W" "$(alive "$W" && echo yes || echo no)" | tr '\n' ' '; }
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }

# --- rbk killed with -9: its action's processes go with it ----------------------------------
new
start
[[ -n $W && -n $R ]] && alive "$W"
t $? "the step is running with a background writer" "writer '$W' runner '$R' $(cat "$H/run.err")"
killrbk "$E"
sleep 0.3
! grows && ! alive "$W" && ! alive "$R"
t $? "kill -9 of rbk: the step's background subshell stops within a second (no orphan)" "$(why) runner $R alive: $(alive "$R" && echo yes || echo no)"
alive "$(cat "$D/daemon.pid")"
t $? "a program that called setsid is out of rbk's reach (documented): it still runs" "daemon $(cat "$D/daemon.pid")"
kill -9 "$(cat "$D/daemon.pid")" 2>/dev/null

# --- rbk and its action process killed together: resume --retry-step stops the leftover -----
new
start
killrbk "$E" "$R"
sleep 0.3
alive "$W" && grows
t $? "killed together with its action process (killall -9), the subshell survives rbk" "$(why)"
r resume 1 --retry-step
el=$?
! alive "$W" && ! grows && [[ $RC == 0 && $(status) == succeeded && $(wc -l <"$D/attempts") == 2 ]] &&
	[[ $OUT == *"work (attempt 1): stopped "*" process"*" it left running"* ]]
t $? "rbk resume --retry-step stops what the previous attempt left running before it runs the step again" "$(why) $(cat "$D/attempts" | tr '\n' ' ')"
[[ $(sed -n 1p "$D/attempts") == 1:work:1 && $(sed -n 2p "$D/attempts") == 1:work:2 ]]
t $? "the action's processes carry RBK_IDEMPOTENCY_KEY (RUN:STATE:ATTEMPT)" "$(cat "$D/attempts" | tr '\n' ' ')"
alive "$(cat "$D/daemon.pid")"
t $? "resume leaves a program that called setsid alone" "daemon $(cat "$D/daemon.pid")"
kill -9 "$(cat "$D/daemon.pid")" 2>/dev/null

# --- the action process stopped when rbk dies ---------------------------------------------------
# The kernel continues it (SIGHUP and SIGCONT to a stopped group that lost
# its parent): it stops the attempt's groups all the same.
new
start
kill -STOP "$R"
killrbk "$E"
sleep 0.5
! grows && ! alive "$W" && ! alive "$R"
t $? "kill -9 of rbk while its action process is stopped: the subshell stops all the same" "$(why)"
kill -9 "$(cat "$D/daemon.pid")" 2>/dev/null

# --- --mark-step, and a plain resume that stops in needs_attention ----------------------------
new
start
killrbk "$E" "$R"
sleep 0.3
r resume 1
rc1=$RC
! alive "$W" && ! grows && [[ $rc1 == 4 && $(status) == needs_attention && $(wc -l <"$D/attempts") == 1 ]]
t $? "a plain resume that takes the run over stops the leftover even when it stops in needs_attention" "$(why)"
kill -9 "$W" 2>/dev/null
r resume 1 --mark-step success
[[ $RC == 0 && $(status) == succeeded && $(wc -l <"$D/attempts") == 1 ]]
t $? "then --mark-step success continues without running the step" "$(why)"
kill -9 "$(cat "$D/daemon.pid")" 2>/dev/null

new
start
killrbk "$E" "$R"
sleep 0.3
r resume 1 --mark-step failure
! alive "$W" && ! grows && [[ $RC == 1 && $(status) == failed && $(wc -l <"$D/attempts") == 1 ]]
t $? "rbk resume --mark-step failure stops what the attempt left running before it records the decision" "$(why)"
kill -9 "$(cat "$D/daemon.pid")" 2>/dev/null

# --- what counts as the attempt's: the recorded leader, or the key ----------------------------
# Two groups of this shell's (no key in their environment) are written into
# the record of an interrupted run: one with its leader's start time, one
# with another (as if its number had been reused since).
new
start
killrbk "$E" "$R"
kill -9 "$W" 2>/dev/null
group() { # a process group of two sleeps: its pgid
	(
		set -m
		sh -c 'sleep 300 & exec sleep 300' </dev/null >/dev/null 2>&1 &
		echo $!
	)
}
started() { s=$(cat "/proc/$1/stat"); s=${s##*) }; echo "$s" | cut -d' ' -f20; }
members() { ps -eo pid=,pgid= | awk -v g="$1" '$2 == g {printf "%s ", $1}'; }
G1=$(group) G2=$(group)
echo "$G1 $G2" >"$D/groups.pid"
sleep 0.2
M1=$(members "$G1") M2=$(members "$G2")
boot=$(cat /proc/sys/kernel/random/boot_id)
printf '%s %s %s 1:work:1\n' "$boot" "$G1" "$(started "$G1")" "$boot" "$G2" "$(($(started "$G2") - 1))" >>"$H/owners/1.procs"
r resume 1 --mark-step success
gone=yes
for p in $M1; do alive "$p" && gone=no; done
kept=yes
for p in $M2; do alive "$p" || kept=no; done
[[ $RC == 0 && $gone == yes && $(echo $M1 | wc -w) == 2 ]]
t $? "a recorded group whose leader still runs is stopped whole, its members without the key too" "$(why) members $M1 gone $gone"
[[ $kept == yes && $(echo $M2 | wc -w) == 2 ]]
t $? "a recorded group whose leader has another start time (a reused number) is left alone" "members $M2 kept $kept"
kill -9 -- "-$G2" "-$G1" 2>/dev/null

# --- a second Ctrl-C interrupts the action: its subshell stops too ---------------------------
new
start
kill -INT "$E"
sleep 0.2
kill -INT "$E"
finish
sleep 0.3
! alive "$W" && ! grows && [[ $BRC == 5 ]]
t $? "a second SIGINT stops the running action with everything it started (exit 5)" "$(why)"
kill -9 "$(cat "$D/daemon.pid")" 2>/dev/null

# --- no record is left behind by a run that ended ---------------------------------------------
new
echo >"$D/once"
r run "$RB" -p dir="$D"
[[ $RC == 0 && -z $(ls "$H/owners" | grep -v '\.lock$') ]]
t $? "a finished step leaves no process record in the home" "$(why) $(ls "$H/owners")"
