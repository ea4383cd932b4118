#!/bin/bash
# make demo: a feed freeze, end to end, in a sandbox an operator can watch.
# The market-data stream has had no tick for a minute; the collector's logs
# show an MT5 disconnect. runbooks/feed-freeze.yaml alerts, reads the logs,
# restarts the terminal and the collector (stand-ins), confirms the stream
# grows again and records the incident. Everything stays in .state/demo.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RBK="$ROOT/build/rbk"
export RBK_ROOT="$ROOT"
. "$ROOT/tests/sandbox/lib.bash"
DEMO="$ROOT/.state/demo"
rm -rf "$DEMO"
sandbox_start "$DEMO/sandbox"
trap sandbox_stop EXIT
mkdir -p "$SANDBOX/redis" "$SANDBOX/docker"
echo $(( ($(date +%s) - 60) * 1000 )) >"$SANDBOX/redis/ticks.last"
echo 40 >"$SANDBOX/redis/ticks.len"
echo "$(date -u '+%F %T') ERROR MT5 terminal: connection lost (disconnect)" >"$SANDBOX/docker/mt5_collector.log"
printf '#!/bin/sh\necho 150 > "%s/redis/ticks.len"\n' "$SANDBOX" >"$SANDBOX/docker/mt5_collector.on_restart"
chmod +x "$SANDBOX/docker/mt5_collector.on_restart"
export RBK_HOME="$DEMO/home" RBK_PATH="$ROOT/runbooks" RBK_PLUGIN_PATH="$ROOT/build/plugins"
export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"

echo "== The stream 'ticks' has had no tick for 60 s; the collector logs an MT5 disconnect."
echo "== rbk run feed-freeze (docker, systemctl and redis-cli are sandbox stand-ins)"
echo
"$RBK" run feed-freeze -p docker="$SANDBOX_BIN/docker" -p systemctl="$SANDBOX_BIN/systemctl" \
	-p redis_cli="$SANDBOX_BIN/redis-cli" -p incident_log="$SANDBOX/incident_log.md" || true
echo
echo "== What the stand-ins were asked to do:"
sed 's/^/   /' "$SANDBOX/calls.log"
echo "== The alert the webhook received:"
python3 -c 'import json,sys; [print("  ", a["text"]) for a in json.load(open(sys.argv[1])).get("alerts", [])]' "$SANDBOX/state.json"
echo "== incident_log.md:"
sed 's/^/   /' "$SANDBOX/incident_log.md"
echo "== The run's record (rbk log 1), as an auditor reads it:"
"$RBK" log 1
echo
echo "Everything is in $DEMO: RBK_HOME=$DEMO/home $RBK show 1"
