#!/bin/bash
# runbooks/disk-full.yaml on real files: above the threshold it removes the
# old logs and backups (keeping the new), prunes docker and compresses
# (stand-ins), and succeeds when the use is back under the target; when it
# is not, a person is told (the notify stand-in) and the run fails; below
# the threshold nothing is touched.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
sandbox_start "$TMP/sbx"
D="$TMP/disk"
mkdir -p "$D/logs" "$D/backups"
touch -d '40 days ago' "$D/logs/old.log"; touch "$D/logs/today.log" "$D/logs/keep.txt"
touch -d '40 days ago' "$D/logs/old.txt"
touch -d '10 days ago' "$D/backups/old.tar"; touch "$D/backups/today.tar"
cat >"$TMP/notify" <<'S'
#!/bin/sh
echo "notify $*" >>"$SANDBOX/calls.log"
S
chmod +x "$TMP/notify"
common=(-p path="$D" -p logs_dir="$D/logs" -p backups_dir="$D/backups" -p docker="$SANDBOX_BIN/docker"
	-p compress_cmd="$SANDBOX_BIN/docker exec mt5_db psql -c 'CALL run_job(1)'" -p notify="$TMP/notify")

export RBK_HOME="$TMP/h1"
out=$("$RBK" run disk-full "${common[@]}" -p threshold=0 -p target=100 2>&1); rc=$?
[ $rc = 0 ] && ok "above the threshold, cleaned under the target: succeeded" || fail "clean-up run" "rc=$rc $out"
[ ! -e "$D/logs/old.log" ] && [ -e "$D/logs/today.log" ] && ok "logs older than 30 days removed, today's kept" || fail "logs" "$(ls "$D/logs")"
[ -e "$D/logs/old.txt" ] && [ -e "$D/logs/keep.txt" ] && ok "only *.log files are removed from the logs" || fail "log pattern" "$(ls "$D/logs")"
[ ! -e "$D/backups/old.tar" ] && [ -e "$D/backups/today.tar" ] && ok "backups older than 7 days removed, today's kept" || fail "backups" "$(ls "$D/backups")"
grep -q "docker system prune -af" "$SANDBOX/calls.log" && grep -q "docker exec mt5_db psql -c CALL run_job(1)" "$SANDBOX/calls.log" \
	&& ok "docker pruned and the compression job run" || fail "prune/compress" "$(cat "$SANDBOX/calls.log")"
used=$("$RBK" log 1 --json | python3 -c 'import json,sys
for l in sys.stdin:
    e=json.loads(l)
    if e["kind"]=="vars_set" and "used" in e["data"]["vars"]: print(e["data"]["vars"]["used"])')
real=$(df --output=pcent "$D" | tail -1 | tr -dc 0-9)
[ -n "$used" ] && [ $((used - real)) -le 1 ] && [ $((real - used)) -le 1 ] && ok "the measured use ($used%) is df's" || fail "measure" "$used vs $real"

export RBK_HOME="$TMP/h2"
fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
touch -d '40 days ago' "$D/logs/old.log"
out=$("$RBK" run disk-full "${common[@]}" -p threshold=0 -p target=0 2>&1); rc=$?
[ $rc = 1 ] && grep -q "notify -t rbk disk-full: $D still above 0% after clean-up (run 1)" "$SANDBOX/calls.log" \
	&& ok "still above the target after clean-up: a person is told, the run fails" || fail "escalation" "rc=$rc $(tail -3 "$SANDBOX/calls.log")"

export RBK_HOME="$TMP/h3"
fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
: >"$SANDBOX/calls.log"
touch -d '40 days ago' "$D/logs/old2.log"
out=$("$RBK" run disk-full "${common[@]}" -p threshold=100 2>&1); rc=$?
[ $rc = 0 ] && [ -e "$D/logs/old2.log" ] && [ ! -s "$SANDBOX/calls.log" ] && ok "below the threshold: healthy, nothing touched" || fail "healthy" "rc=$rc $out"
