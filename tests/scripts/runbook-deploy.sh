#!/bin/bash
# runbooks/deploy.yaml in the sandbox, against a real git remote with tags
# v1.0.0 and v1.1.0 (v1.1.0 made after the deploy checkout was cloned, so the
# fetch must bring it): the happy path (approval answered,
# switch, old instance stopped, release log), a failure after the switch
# (the live health check fails: rolled back, exit 3, everything back at
# v1.0.0), a failure before the switch (the new instance is unhealthy: no
# switch, old instance untouched, alert, exit 1) and a rejected approval.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
export HOME="$TMP/userhome" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$TMP/userhome/.gitconfig"
mkdir -p "$HOME"
git config --global init.defaultBranch main
git config --global advice.detachedHead false
export GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=tester@example.com GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=tester@example.com

# setup NAME: a sandbox, a remote with v1.0.0 and v1.1.0, a deploy checkout at v1.0.0, v1.0.0 live.
setup() {
	sandbox_start "$TMP/$1"
	export RBK_HOME="$TMP/$1/home" RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	R="$SANDBOX/remote" W="$SANDBOX/work"
	git init -q "$R" && mkdir -p "$R/api"
	echo v1.0.0 >"$R/api/VERSION" && git -C "$R" add api && git -C "$R" commit -q -m "Release API v1.0.0" && git -C "$R" tag v1.0.0
	git clone -q "$R" "$W" && git -C "$W" checkout -q v1.0.0
	echo v1.1.0 >"$R/api/VERSION" && git -C "$R" commit -q -am "Release API v1.1.0" && git -C "$R" tag -a v1.1.0 -m "API Release v1.1.0"
	echo v1.0.0 >"$SANDBOX/ACTIVE_VERSION"
	mkdir -p "$SANDBOX/docker"
	echo "INFO uvicorn running on 0.0.0.0:8000" >"$SANDBOX/docker/mt5_api-v1.1.0.log"
}
params() {
	echo -p release=v1.1.0 -p repo="$W" -p docker="$SANDBOX_BIN/docker" \
		-p new_health_url="$SANDBOX_URL/health/api_new" -p new_smoke_url="$SANDBOX_URL/health/api_new_predict" \
		-p live_health_url="$SANDBOX_URL/health/api" -p live_smoke_url="$SANDBOX_URL/health/api_predict" \
		-p metrics_url="$SANDBOX_URL/health/api_metrics" -p health_checks=${HC:-1} -p health_retries=0 -p monitor_checks=1 \
		-p active_file="$SANDBOX/ACTIVE_VERSION" -p release_log="$SANDBOX/releases.log"
}
head_tag() { git -C "$W" describe --tags --exact-match HEAD 2>/dev/null; }
alerts() { python3 -c 'import json,sys; print("\n".join(a["text"] for a in json.load(open(sys.argv[1])).get("alerts", [])))' "$SANDBOX/state.json"; }
requests() { grep -c "\"path\": \"/health/$1\"" "$SANDBOX/requests.jsonl"; }

# --- Happy path: approval answered, switch, old stopped, release logged. ----------
setup happy
out=$(HC=3; "$RBK" run deploy $(params) 2>&1); rc=$?
[ $rc = 4 ] && "$RBK" show 1 | grep -q approve_live && ok "happy: the run waits for the approval before the switch (exit 4)" || fail "happy: waits for approval" "rc=$rc $out"
[ "$(cat "$SANDBOX/ACTIVE_VERSION")" = v1.0.0 ] && ok "happy: nothing switched before the approval" || fail "happy: no early switch" "$(cat "$SANDBOX/ACTIVE_VERSION")"
[ "$(head_tag)" = v1.1.0 ] && ok "happy: the fetched tag v1.1.0 is checked out" || fail "happy: checkout" "$(git -C "$W" log --oneline -1)"
grep -q "docker run -d --name mt5_api-v1.1.0 --network mt5_network -p 8002:8000 .* mt5_api:v1.1.0" "$SANDBOX/calls.log" \
	&& ok "happy: the new instance was started beside the old one on port 8002" || fail "happy: docker run" "$(cat "$SANDBOX/calls.log")"
[ "$(requests api_new)" = 3 ] && [ "$(requests api_new_predict)" = 1 ] && ok "happy: 3 health checks and a smoke test of the new instance" \
	|| fail "happy: health checks" "$(requests api_new) $(requests api_new_predict)"
out=$("$RBK" approve 1 --comment "go" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q succeeded && ok "happy: approved, the run succeeds" || fail "happy: approve" "rc=$rc $out"
[ "$(cat "$SANDBOX/ACTIVE_VERSION")" = v1.1.0 ] && ok "happy: the active version is v1.1.0 (switched)" || fail "happy: switch" "$(cat "$SANDBOX/ACTIVE_VERSION")"
[ "$(cat "$SANDBOX/docker/mt5_api-v1.0.0.status" 2>/dev/null)" = stop ] && ! grep -q "docker stop mt5_api-v1.1.0" "$SANDBOX/calls.log" \
	&& ok "happy: the old instance was stopped, the new one kept" || fail "happy: stop old" "$(cat "$SANDBOX/calls.log")"
grep -Eq "^[0-9]+ deploy v1.0.0 -> v1.1.0 run=1 actor=" "$SANDBOX/releases.log" 2>/dev/null && ok "happy: the release log has v1.0.0 -> v1.1.0" \
	|| fail "happy: release log" "$(cat "$SANDBOX/releases.log" 2>&1)"
a=$(alerts)
[[ $a == *"v1.1.0 started"* && $a == *"v1.1.0 done"* && $a != *FAILED* && $a != *"ROLLED BACK"* ]] && ok "happy: start and done announced, no alarm" || fail "happy: alerts" "$a"
"$RBK" log 1 | grep -q "approved by $(principal)" && ok "happy: the approver (the OS user) is in the run's log" || fail "happy: approver logged" ""
"$RBK" log 1 --json | grep -q "$SANDBOX_URL/alert" && fail "happy: the webhook (a secret) is not recorded" "found in the log" || ok "happy: the webhook (a secret) is not recorded"
sandbox_stop

# --- Failure after the switch: the live health check fails -> rollback, exit 3. -------------------
setup after
sandbox_state 's["health"] = {"api": "unhealthy"}'
out=$("$RBK" run deploy $(params) -p approve_before_live=false 2>&1); rc=$?
[ $rc = 3 ] && "$RBK" show 1 | grep -q rolled_back && ok "after switch: live health fails, the run rolls back (exit 3)" || fail "after switch: exit" "rc=$rc $out"
grep -q "approve_live" <("$RBK" log 1) && fail "after switch: approve_before_live=false asks nobody" "approval in log" || ok "after switch: approve_before_live=false asks nobody"
[ "$(cat "$SANDBOX/ACTIVE_VERSION")" = v1.0.0 ] && ok "after switch: the active version is back at v1.0.0" || fail "after switch: active version" "$(cat "$SANDBOX/ACTIVE_VERSION")"
[ "$(head_tag)" = v1.0.0 ] && ok "after switch: the checkout is back at v1.0.0" || fail "after switch: checkout" "$(git -C "$W" log --oneline -1)"
grep -q "docker stop mt5_api-v1.0.0" "$SANDBOX/calls.log" && [ "$(cat "$SANDBOX/docker/mt5_api-v1.0.0.status")" = start ] \
	&& ok "after switch: the old instance was stopped, then started again" || fail "after switch: old instance" "$(cat "$SANDBOX/calls.log")"
[ "$(cat "$SANDBOX/docker/mt5_api-v1.1.0.status" 2>/dev/null)" = stop ] && ok "after switch: the new instance was stopped" || fail "after switch: new stopped" "$(cat "$SANDBOX/calls.log")"
[ "$(grep -n . "$SANDBOX/calls.log" | grep -E 'start mt5_api-v1.0.0|stop mt5_api-v1.1.0' | cut -d: -f2- | tr '\n' ,)" = "docker start mt5_api-v1.0.0,docker stop mt5_api-v1.1.0," ] \
	&& ok "after switch: undos newest first (old started before the new one stops)" || fail "after switch: undo order" "$(cat "$SANDBOX/calls.log")"
! grep -q v1.1.0 "$SANDBOX/releases.log" 2>/dev/null && ok "after switch: no release recorded" || fail "after switch: release log" "$(cat "$SANDBOX/releases.log")"
alerts | grep -q "ROLLED BACK to v1.0.0" && ok "after switch: the rollback was announced" || fail "after switch: alert" "$(alerts)"
sandbox_stop

# --- Failure after the switch: an exception in the new instance's logs -> rollback. ---------------
setup logs
echo "ERROR Exception in ASGI application" >>"$SANDBOX/docker/mt5_api-v1.1.0.log"
out=$("$RBK" run deploy $(params) -p approve_before_live=false 2>&1); rc=$?
[ $rc = 3 ] && [ "$(cat "$SANDBOX/ACTIVE_VERSION")" = v1.0.0 ] && [ "$(head_tag)" = v1.0.0 ] \
	&& ok "after switch: an exception in the logs rolls back to v1.0.0 (exit 3)" || fail "after switch: logs" "rc=$rc $out"
sandbox_stop

# --- Failure before the switch: the new instance is unhealthy -> no switch, alert, exit 1. --------
setup before
sandbox_state 's["health"] = {"api_new": "unhealthy"}'
out=$("$RBK" run deploy $(params) 2>&1); rc=$?
[ $rc = 1 ] && "$RBK" show 1 | grep -q failed && ok "before switch: unhealthy new instance, the run fails (exit 1)" || fail "before switch: exit" "rc=$rc $out"
[ "$(requests api_new)" = 1 ] && ok "before switch: it stopped at the first failed health check" || fail "before switch: checks" "$(requests api_new)"
[ "$(cat "$SANDBOX/ACTIVE_VERSION")" = v1.0.0 ] && ok "before switch: no switch" || fail "before switch: active version" "$(cat "$SANDBOX/ACTIVE_VERSION")"
! grep -q "mt5_api-v1.0.0" "$SANDBOX/calls.log" && ok "before switch: the old instance was not touched" || fail "before switch: old touched" "$(cat "$SANDBOX/calls.log")"
[ "$(cat "$SANDBOX/docker/mt5_api-v1.1.0.status" 2>/dev/null)" = stop ] && ok "before switch: the new instance was stopped" || fail "before switch: new stopped" "$(cat "$SANDBOX/calls.log")"
[ "$(head_tag)" = v1.0.0 ] && ok "before switch: the checkout is back at v1.0.0" || fail "before switch: checkout" "$(git -C "$W" log --oneline -1)"
alerts | grep -q "FAILED before the switch.*v1.0.0 still live" && ok "before switch: an alert was sent" || fail "before switch: alert" "$(alerts)"
[ ! -e "$SANDBOX/releases.log" ] && ok "before switch: no release recorded" || fail "before switch: release log" "$(cat "$SANDBOX/releases.log")"
sandbox_stop

# --- The approval is rejected: same as a failure before the switch. -------------------------------
setup reject
"$RBK" run deploy $(params) >/dev/null 2>&1
out=$("$RBK" reject 1 --comment "not today" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(cat "$SANDBOX/ACTIVE_VERSION")" = v1.0.0 ] && [ "$(head_tag)" = v1.0.0 ] && ! grep -q "mt5_api-v1.0.0" "$SANDBOX/calls.log" \
	&& ok "rejected: no switch, checkout restored, run failed" || fail "rejected" "rc=$rc $out $(cat "$SANDBOX/calls.log")"
sandbox_stop

# --- The release already live: nothing to do. -----------------------------------------------------
setup same
echo v1.1.0 >"$SANDBOX/ACTIVE_VERSION"
out=$("$RBK" run deploy $(params) 2>&1); rc=$?
[ $rc = 0 ] && [ ! -e "$SANDBOX/calls.log" ] && ok "already live: success, nothing touched" || fail "already live" "rc=$rc $out"
