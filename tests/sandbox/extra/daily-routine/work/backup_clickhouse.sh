# Stand-in for backup_clickhouse.sh (run as `bash backup_clickhouse.sh`): logs the call;
# $SANDBOX/backup.fail makes it fail; a success appends a line to $SANDBOX/backups.log.
: "${SANDBOX:?SANDBOX is not set}"
echo "backup_clickhouse.sh $*" >>"$SANDBOX/calls.log"
[ -e "$SANDBOX/backup.fail" ] && { echo "clickhouse-backup: code: 210, Connection refused" >&2; exit 1; }
echo "delta backup $(date -u +%FT%TZ) cwd=$PWD" >>"$SANDBOX/backups.log"
echo "backup created"
