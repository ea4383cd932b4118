#!/bin/bash
# Stand-in for ./bin/canary.sh in the sandbox: records the limits it was
# given, starts a "trading loop" (loop.py in its own session, its output in
# $SANDBOX/loop.log) and writes its pid to $QP_PIDFILE.
# shell.exec SIGKILLs whatever is left in the program's process group when
# the program exits, so this waits until the loop has left the group
# (setsid done) before exiting.
: "${SANDBOX:?SANDBOX is not set}"
echo "canary.sh MAX_NOTIONAL_PER_ORDER=$MAX_NOTIONAL_PER_ORDER MAX_TOTAL_NOTIONAL=$MAX_TOTAL_NOTIONAL MAX_DD_DAILY=$MAX_DD_DAILY LATENCY_THRESHOLD_MS=$LATENCY_THRESHOLD_MS CANARY_ENV=$CANARY_ENV" >>"$SANDBOX/calls.log"
mkdir -p "$(dirname "$QP_PIDFILE")"
setsid python3 "$(dirname "$0")/loop.py" </dev/null >>"$SANDBOX/loop.log" 2>&1 &
pid=$!
for _ in $(seq 250); do # the session id is field 6 of /proc/PID/stat
	[ "$(cut -d' ' -f6 "/proc/$pid/stat" 2>/dev/null)" = "$pid" ] && break
	sleep 0.02
done
echo $pid >"$QP_PIDFILE"
echo "canary started, pid $pid"
