#!/bin/bash
# runbooks/feed-freeze.yaml in the sandbox: the happy path (a freeze, an MT5
# connection error in the collector's logs, both restarts, the stream grows
# again, the incident recorded) and the escalation path (no connection
# error: the alert says so and the run fails).
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_HOME="$TMP/home" RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"

freeze() { # a stream whose newest tick is 60 s old
	sandbox_start "$TMP/$1"
	mkdir -p "$SANDBOX/redis" "$SANDBOX/docker"
	echo $(( ($(date +%s) - 60) * 1000 )) >"$SANDBOX/redis/ticks.last"
	echo 40 >"$SANDBOX/redis/ticks.len"
	printf '#!/bin/sh\necho 150 > "%s/redis/ticks.len"\n' "$SANDBOX" >"$SANDBOX/docker/mt5_collector.on_restart"
	chmod +x "$SANDBOX/docker/mt5_collector.on_restart"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
}
params() {
	echo -p docker="$SANDBOX_BIN/docker" -p systemctl="$SANDBOX_BIN/systemctl" -p redis_cli="$SANDBOX_BIN/redis-cli" \
		-p incident_log="$SANDBOX/incident_log.md"
}

# Happy path.
freeze happy
echo "2026-11-21 09:01:02 ERROR MT5 terminal: connection lost (disconnect)" >"$SANDBOX/docker/mt5_collector.log"
out=$("$RBK" run feed-freeze $(params) 2>&1); rc=$?
[ $rc = 0 ] && ok "freeze with an MT5 connection error: recovered, exit 0" || fail "happy path exit" "rc=$rc $out"
grep -q "systemctl restart mt5-terminal.service" "$SANDBOX/calls.log" && ok "the MT5 terminal was restarted" || fail "terminal restart" "$(cat "$SANDBOX/calls.log")"
[ "$(cat "$SANDBOX/docker/mt5_collector.restarts" 2>/dev/null)" = 1 ] && ok "the collector was restarted once" || fail "collector restart" ""
grep -q "feed freeze on ticks: MT5 terminal and mt5_collector restarted by run 1" "$SANDBOX/incident_log.md" 2>/dev/null \
	&& grep -q "stream length 150" "$SANDBOX/incident_log.md" && ok "the incident is recorded in incident_log.md" || fail "incident log" "$(cat "$SANDBOX/incident_log.md" 2>&1)"
python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["alerts"]; sys.exit(0 if len(a)==1 and "feed-halt" in a[0]["text"] else 1)' "$SANDBOX/state.json" \
	&& ok "one feed-halt alert went to the webhook" || fail "alert" "$(cat "$SANDBOX/state.json")"
"$RBK" log 1 --json | grep -q "$SANDBOX_URL" && fail "the webhook (a secret) is not recorded" "found in the log" || ok "the webhook (a secret) is not recorded"
sandbox_stop

# Escalation: the logs show no connection error.
export RBK_HOME="$TMP/home2"
fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
freeze escalate
echo "2026-11-21 09:01:02 INFO all quiet" >"$SANDBOX/docker/mt5_collector.log"
out=$("$RBK" run feed-freeze $(params) 2>&1); rc=$?
[ $rc = 1 ] && ok "freeze without a connection error: escalated, exit 1" || fail "escalation exit" "rc=$rc $out"
! grep -q "restart" "$SANDBOX/calls.log" && ok "nothing was restarted" || fail "no restarts" "$(cat "$SANDBOX/calls.log")"
python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["alerts"]; sys.exit(0 if len(a)==2 and "NOT recovered" in a[1]["text"] else 1)' "$SANDBOX/state.json" \
	&& ok "the escalation alert went to the webhook" || fail "escalation alert" "$(cat "$SANDBOX/state.json")"
sandbox_stop

# A fresh stream: nothing to do.
export RBK_HOME="$TMP/home3"
fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
freeze fresh
date +%s%3N >"$SANDBOX/redis/ticks.last"
out=$("$RBK" run feed-freeze $(params) 2>&1); rc=$?
[ $rc = 0 ] && [[ $out == *"healthy"* || $("$RBK" show 1) == *"healthy"* ]] && ! grep -q "docker" "$SANDBOX/calls.log" \
	&& ok "a fresh stream: healthy, nothing touched" || fail "fresh stream" "rc=$rc $out"
