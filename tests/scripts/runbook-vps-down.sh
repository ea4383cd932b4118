#!/bin/bash
# runbooks/vps-down.yaml in the sandbox, with stand-ins for the provider's
# snapshot CLI and restore.sh (tests/sandbox/extra/vps-down): the happy path
# (newest snapshot chosen, restored after the provider approval, ClickHouse
# restored, feed validated, Prefect resumed) and every failure branch: the
# approval rejected, no snapshot / the provider CLI failing, the snapshot
# restore failing or printing another id, restore.sh failing, the feed not
# back in time (too short, or stale), Prefect failing.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
EXTRA="$RBK_ROOT/tests/sandbox/extra/vps-down"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
mkdir -p "$TMP/bin" && ln -s "$PY" "$TMP/bin/python3" && export PATH="$TMP/bin:$PATH" # also for the sandbox's server

setup() { # setup CASE: the VPS has three snapshots, the feed is frozen until ClickHouse is restored
	sandbox_start "$TMP/$1"
	export RBK_HOME="$TMP/$1/home" RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	mkdir -p "$SANDBOX/vps" "$SANDBOX/clickhouse" "$SANDBOX/redis" "$SANDBOX/ch"
	printf '%s\n' "snap-0102 2026-12-02T03:00:00Z" "snap-0104 2026-12-04T03:00:00Z" "snap-0103 2026-12-03T03:00:00Z" >"$SANDBOX/vps/snapshots"
	echo 40 >"$SANDBOX/redis/ticks.len"
	echo $(( ($(date +%s) - 3600) * 1000 )) >"$SANDBOX/redis/ticks.last"
	touch "$SANDBOX/clickhouse/feed_after_restore"
}
run() { # run: start the runbook with the sandbox's commands
	"$RBK" run vps-down -p vps_host=127.0.0.1 -p snapshot_list_cmd="$EXTRA/vps-snapshot list" -p snapshot_restore_cmd="$EXTRA/vps-snapshot restore" \
		-p ping_cmd="${PING:-$SANDBOX_BIN/ping}" -p restore_cmd="$EXTRA/restore.sh" -p restore_cwd="$SANDBOX/ch" \
		-p redis_cli="$SANDBOX_BIN/redis-cli" -p prefect="$SANDBOX_BIN/prefect" -p feed_timeout=1s -p feed_every=200ms "$@"
}
alerts() { "$PY" -c 'import json,sys; print("\n".join(a["text"] for a in json.load(open(sys.argv[1])).get("alerts", [])))' "$SANDBOX/state.json"; }
has_alert() { grep -q "$@" <<<"$(alerts)"; } # (not through a pipe: grep -q would close it early)
calls() { grep -v -e '^ping' -e '^redis-cli' "$SANDBOX/calls.log" | sed "s|$SANDBOX|SBX|g" | tr '\n' ';'; }
status() { "$RBK" show "$1" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }

# --- Happy path. ----------------------------------------------------------------------------------
setup happy
out=$(run 2>&1); rc=$?
[ $rc = 4 ] && "$RBK" show 1 | grep -q contact_provider && ok "happy: waits for the provider contact approval (exit 4)" || fail "happy: approval wait" "rc=$rc $out"
"$RBK" log 1 | grep approval_requested | grep -q "restoring the newest snapshot snap-0104 (2026-12-04T03:00:00Z)" && ok "happy: the approval names the newest snapshot" || fail "happy: prompt" "$("$RBK" log 1)"
[ ! -e "$SANDBOX/vps/restored" ] && [ ! -e "$SANDBOX/clickhouse/restored" ] && ok "happy: nothing restored before the approval" || fail "happy: early restore" "$(calls)"
out=$("$RBK" approve 1 --comment "provider ticket 123" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status 1)" = succeeded ] && ok "happy: approved, recovered, exit 0" || fail "happy: exit" "rc=$rc $out"
[ "$(cat "$SANDBOX/vps/restored")" = snap-0104 ] && ok "happy: the newest snapshot (snap-0104) was restored" || fail "happy: snapshot" "$(cat "$SANDBOX/vps/restored")"
[ "$(calls)" = "vps-snapshot list;vps-snapshot restore snap-0104;restore.sh  (cwd=SBX/ch);prefect deployment run start_robot;" ] \
	&& ok "happy: list, restore snapshot, restore.sh, then prefect start_robot, in that order" || fail "happy: calls" "$(calls)"
[ -e "$SANDBOX/clickhouse/restored" ] && grep -q "^ping -c 1 -W 2 127.0.0.1" "$SANDBOX/calls.log" && grep -q "^redis-cli --raw XLEN ticks" "$SANDBOX/calls.log" \
	&& ok "happy: the VPS answered ping, ClickHouse restored, the stream's length read" || fail "happy: effects" "$(cat "$SANDBOX/calls.log")"
has_alert "RECOVERED (run 1): snapshot snap-0104 (2026-12-04T03:00:00Z) restored, ClickHouse restored, feed len=150" \
	&& [ "$(alerts | wc -l)" = 2 ] && ok "happy: the channel was told (down, then recovered)" || fail "happy: alerts" "$(alerts)"
"$RBK" log 1 --json | grep -q "$SANDBOX_URL" && fail "happy: the webhook (a secret) is not recorded" "found in the log" || ok "happy: the webhook (a secret) is not recorded"
sandbox_stop

# --- The provider contact is rejected: nothing restored. ------------------------------------------
setup reject
run >/dev/null 2>&1
out=$("$RBK" reject 1 --comment "provider says wait" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = failed ] && [ ! -e "$SANDBOX/vps/restored" ] && ! grep -q -e restore -e prefect "$SANDBOX/calls.log" \
	&& has_alert "recovery FAILED (run 1): snapshots ok (newest snap-0104), provider approval failed, snapshot restore not run" \
	&& ok "rejected: nothing restored, alert, exit 1" || fail "rejected" "rc=$rc $out $(alerts)"
sandbox_stop

# --- No snapshot at all; the provider CLI failing. -------------------------------------------------
setup nosnap
: >"$SANDBOX/vps/snapshots"
out=$(run 2>&1); rc=$?
[ $rc = 1 ] && ! grep -q "vps-snapshot restore" "$SANDBOX/calls.log" && has_alert "snapshots ok (newest ), provider approval not run" \
	&& ok "no snapshot: no approval asked, alert, exit 1" || fail "no snapshot" "rc=$rc $out $(alerts)"
sandbox_stop
setup listfail
touch "$SANDBOX/vps/list.fail"
out=$(run 2>&1); rc=$?
[ $rc = 1 ] && [ "$(grep -c "vps-snapshot list" "$SANDBOX/calls.log")" = 2 ] && has_alert "snapshots failed" \
	&& ok "provider CLI fails: tried twice, alert, exit 1" || fail "list fails" "rc=$rc $out $(alerts)"
sandbox_stop

# --- The snapshot restore fails, or restores another snapshot. -------------------------------------
setup snapfail
touch "$SANDBOX/vps/restore.fail"
run >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 1 ] && [ ! -e "$SANDBOX/clickhouse/restored" ] && has_alert "snapshot restore failed, boot ping exit not run, ClickHouse restore.sh not run" \
	&& ok "snapshot restore fails: ClickHouse untouched, alert, exit 1" || fail "snapshot restore fails" "rc=$rc $out $(alerts)"
sandbox_stop
setup wrongid
touch "$SANDBOX/vps/wrong_id"
run >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 1 ] && [ ! -e "$SANDBOX/clickhouse/restored" ] && has_alert "recovery FAILED" \
	&& ok "the restore prints another snapshot id: stops, alert, exit 1" || fail "wrong id" "rc=$rc $out $(alerts)"
sandbox_stop

# --- The restored VPS does not answer ping within boot_timeout. ------------------------------------
setup noboot
PING=false run -p boot_timeout=1s >/dev/null 2>&1
out=$(PING=false "$RBK" approve 1 2>&1); rc=$?
[ $rc = 1 ] && [ "$(cat "$SANDBOX/vps/restored")" = snap-0104 ] && [ ! -e "$SANDBOX/clickhouse/restored" ] && has_alert "snapshot restore ok, boot ping exit 1, ClickHouse restore.sh not run" \
	&& ok "the restored VPS does not answer ping: ClickHouse not touched, alert, exit 1" || fail "no boot" "rc=$rc $out $(alerts)"
sandbox_stop

# --- restore.sh fails: Prefect is not started. ------------------------------------------------------
setup chfail
touch "$SANDBOX/clickhouse/restore.fail"
run >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 1 ] && ! grep -q prefect "$SANDBOX/calls.log" && has_alert "snapshot restore ok, boot ping exit 0, ClickHouse restore.sh failed, prefect not run" \
	&& ok "restore.sh fails: trading not resumed, alert, exit 1" || fail "restore.sh fails" "rc=$rc $out $(alerts)"
sandbox_stop

# --- The feed does not come back within feed_timeout: too few ticks, or a stale newest tick. ------
setup nofeed
rm "$SANDBOX/clickhouse/feed_after_restore"
run >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 1 ] && ! grep -q prefect "$SANDBOX/calls.log" && grep -q "XLEN ticks" "$SANDBOX/calls.log" \
	&& has_alert "feed did NOT come back within 1s (len=40 last=" \
	&& ok "feed not back (40 ticks) within feed_timeout: not resumed, alert, exit 1" || fail "no feed" "rc=$rc $out $(alerts)"
sandbox_stop
setup stale
rm "$SANDBOX/clickhouse/feed_after_restore"; echo 500 >"$SANDBOX/redis/ticks.len"
run >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 1 ] && ! grep -q prefect "$SANDBOX/calls.log" && has_alert "feed did NOT come back.*len=500" \
	&& ok "long stream but newest tick an hour old: not resumed, alert, exit 1" || fail "stale feed" "rc=$rc $out $(alerts)"
sandbox_stop

# --- Prefect fails to start the robot. --------------------------------------------------------------
setup prefect
mkdir -p "$SANDBOX/prefect"; touch "$SANDBOX/prefect/start_robot.fail"
run >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 1 ] && [ "$(grep -c "prefect deployment run start_robot" "$SANDBOX/calls.log")" = 1 ] && has_alert "ClickHouse restore.sh ok, prefect failed" \
	&& ok "prefect fails: run once (not retried), alert, exit 1" || fail "prefect fails" "rc=$rc $out $(alerts)"
sandbox_stop
