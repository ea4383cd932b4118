#!/bin/bash
# Stand-in for restore.sh (restore the ClickHouse backup) in the sandbox
# (runbooks/vps-down.yaml): logs the call and its cwd to $SANDBOX/calls.log;
# $SANDBOX/clickhouse/restore.fail makes it fail; a success writes
# $SANDBOX/clickhouse/restored and, when $SANDBOX/clickhouse/feed_after_restore
# exists, brings the feed back (ticks stream: 150 entries, newest now).
: "${SANDBOX:?SANDBOX is not set}"
echo "restore.sh $* (cwd=$PWD)" >>"$SANDBOX/calls.log"
mkdir -p "$SANDBOX/clickhouse" "$SANDBOX/redis"
[ -e "$SANDBOX/clickhouse/restore.fail" ] && { echo "clickhouse-backup: restore failed: code: 210, Connection refused" >&2; exit 1; }
echo "restored $(date -u +%FT%TZ)" >"$SANDBOX/clickhouse/restored"
if [ -e "$SANDBOX/clickhouse/feed_after_restore" ]; then
	echo 150 >"$SANDBOX/redis/ticks.len"
	echo $(( $(date +%s) * 1000 )) >"$SANDBOX/redis/ticks.last"
fi
echo "ClickHouse restore done: trades, ticks, metrics"
