#!/bin/bash
# runbooks/rollback.yaml in the sandbox, against a real git repository with
# tags v1.0.0 and v1.1.0, v1.1.0 live (as deploy.yaml leaves it): back to the
# previous release read from the release log (Método 1), to a named release
# whose health check then fails (escalation), the refusals (no previous
# release, the live release, an unknown tag), Método 2 (git revert) and a
# failing Grafana annotation.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
export HOME="$TMP/userhome" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$TMP/userhome/.gitconfig"
mkdir -p "$HOME"
git config --global init.defaultBranch main
git config --global advice.detachedHead false
export GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=tester@example.com GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=tester@example.com
export RBK_GRAFANA_TOKEN=grafana-tok-123

# setup NAME: a sandbox; a checkout at v1.1.0 (tags v1.0.0, v1.1.0); v1.1.0 live; a release log.
setup() {
	sandbox_start "$TMP/$1"
	export RBK_HOME="$TMP/$1/home" RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	W="$SANDBOX/work"
	git init -q "$W" && mkdir -p "$W/api"
	echo v1.0.0 >"$W/api/VERSION" && git -C "$W" add api && git -C "$W" commit -q -m "Release API v1.0.0" && git -C "$W" tag v1.0.0
	echo v1.1.0 >"$W/api/VERSION" && git -C "$W" commit -q -am "Release API v1.1.0" && git -C "$W" tag -a v1.1.0 -m "API Release v1.1.0"
	git -C "$W" checkout -q v1.1.0
	echo v1.1.0 >"$SANDBOX/ACTIVE_VERSION"
	printf '%s\n' "1700000000 deploy v0.9.0 -> v1.0.0 run=1 actor=ops@host" "1700000100 deploy v1.0.0 -> v1.1.0 run=2 actor=ops@host" >"$SANDBOX/releases.log"
}
params() {
	echo -p repo="$W" -p docker="$SANDBOX_BIN/docker" -p health_url="$SANDBOX_URL/health/api" -p smoke_url="$SANDBOX_URL/health/api_predict" \
		-p health_retries=0 -p active_file="$SANDBOX/ACTIVE_VERSION" -p release_log="$SANDBOX/releases.log" \
		-p grafana_url="$SANDBOX_URL/kv/grafana_annotation"
}
head_tag() { git -C "$W" describe --tags --exact-match HEAD 2>/dev/null; }
alerts() { python3 -c 'import json,sys; print("\n".join(a["text"] for a in json.load(open(sys.argv[1])).get("alerts", [])))' "$SANDBOX/state.json"; }
annotation() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("kv", {}).get("grafana_annotation", {}).get("text", ""))' "$SANDBOX/state.json"; }

# --- Método 1, to the previous release (the newest deploy line of the release log). ---------------
setup previous
out=$("$RBK" run rollback $(params) 2>&1); rc=$?
[ $rc = 0 ] && ok "previous: rolled back, exit 0" || fail "previous: exit" "rc=$rc $out"
[ "$(cat "$SANDBOX/ACTIVE_VERSION")" = v1.0.0 ] && ok "previous: the active version is v1.0.0 (from the release log)" || fail "previous: active version" "$(cat "$SANDBOX/ACTIVE_VERSION")"
[ "$(head_tag)" = v1.0.0 ] && ok "previous: the checkout is at v1.0.0" || fail "previous: checkout" "$(git -C "$W" log --oneline -1)"
grep -q "docker pull mt5_api:v1.0.0" "$SANDBOX/calls.log" && grep -q "docker tag mt5_api:v1.0.0 mt5_api:latest" "$SANDBOX/calls.log" \
	&& ok "previous: the v1.0.0 image was pulled and tagged latest" || fail "previous: image" "$(cat "$SANDBOX/calls.log")"
[ "$(cat "$SANDBOX/docker/mt5_api-v1.0.0.status")" = start ] && [ "$(cat "$SANDBOX/docker/mt5_api-v1.1.0.status")" = stop ] \
	&& ok "previous: v1.0.0's container started, v1.1.0's stopped" || fail "previous: containers" "$(cat "$SANDBOX/calls.log")"
tail -n 1 "$SANDBOX/releases.log" | grep -Eq "^[0-9]+ rollback v1.1.0 -> v1.0.0 run=1 actor=" && ok "previous: the release log has v1.1.0 -> v1.0.0" \
	|| fail "previous: release log" "$(cat "$SANDBOX/releases.log")"
[[ $(annotation) == "VERSION v1.0.0 (mt5_api rolled back from v1.1.0, rbk run 1)" ]] && ok "previous: Grafana annotated with VERSION v1.0.0" || fail "previous: annotation" "$(annotation)"
grep '"/kv/grafana_annotation"' "$SANDBOX/requests.jsonl" | grep -q '"auth": "Bearer grafana-tok-123"' && ok "previous: the annotation carries the Grafana token" \
	|| fail "previous: grafana token" "$(grep grafana "$SANDBOX/requests.jsonl")"
"$RBK" log 1 --json | grep -q "grafana-tok-123" && fail "previous: the Grafana token is not recorded" "found in the log" || ok "previous: the Grafana token is not recorded"
grep -q '"/health/api"' "$SANDBOX/requests.jsonl" && grep -q '"/health/api_predict"' "$SANDBOX/requests.jsonl" && [ -z "$(alerts)" ] \
	&& ok "previous: health and smoke test checked, no alert" || fail "previous: checks" "$(alerts)"
# A second rollback without a target: the newest deploy line names the live release -> refused.
out=$("$RBK" run rollback $(params) 2>&1); rc=$?
[ $rc = 1 ] && [ "$(cat "$SANDBOX/ACTIVE_VERSION")" = v1.0.0 ] && [ "$(wc -l <"$SANDBOX/releases.log")" = 3 ] && alerts | grep -q "refused (run 2): v1.0.0 is already the live release" \
	&& ok "previous again: v1.0.0 is already live, refused with an alert (exit 1)" || fail "previous again" "rc=$rc $out"
sandbox_stop

# --- Named release, unhealthy after the rollback: escalation. -------------------------------------
setup unhealthy
rm "$SANDBOX/releases.log"
sandbox_state 's["health"] = {"api": "unhealthy"}'
out=$("$RBK" run rollback $(params) -p to=v1.0.0 2>&1); rc=$?
[ $rc = 1 ] && "$RBK" show 1 | grep -q failed && ok "unhealthy: the run fails (exit 1)" || fail "unhealthy: exit" "rc=$rc $out"
alerts | grep -q "rollback of mt5_api from v1.1.0 to v1.0.0 FAILED (run 1): live release now v1.0.0.*escalate" && ok "unhealthy: escalated to a person" || fail "unhealthy: alert" "$(alerts)"
[ "$(cat "$SANDBOX/ACTIVE_VERSION")" = v1.0.0 ] && grep -q "rollback v1.1.0 -> v1.0.0" "$SANDBOX/releases.log" \
	&& ok "unhealthy: the version change is recorded as it happened" || fail "unhealthy: record" "$(cat "$SANDBOX/releases.log" 2>&1)"
"$RBK" log 1 | grep -q "smoke" && fail "unhealthy: no smoke test after a failed health check" "smoke ran" || ok "unhealthy: no smoke test after a failed health check"
sandbox_stop

# --- Refusals: nothing is touched. ----------------------------------------------------------------
setup refuse
: >"$SANDBOX/releases.log"
out=$("$RBK" run rollback $(params) 2>&1); rc=$?
[ $rc = 1 ] && [ ! -e "$SANDBOX/calls.log" ] && [ "$(head_tag)" = v1.1.0 ] && [ "$(cat "$SANDBOX/ACTIVE_VERSION")" = v1.1.0 ] && alerts | grep -q "refused (run 1): no deploy recorded" \
	&& ok "no deploy in the release log: refused, nothing touched" || fail "no previous" "rc=$rc $out $(alerts)"
out=$("$RBK" run rollback $(params) -p to=v1.1.0 2>&1); rc=$?
[ $rc = 1 ] && [ ! -e "$SANDBOX/calls.log" ] && [ "$(cat "$SANDBOX/ACTIVE_VERSION")" = v1.1.0 ] && alerts | grep -q "refused (run 2): v1.1.0 is already" && ok "the live release as target: refused" || fail "same target" "rc=$rc $out"
out=$("$RBK" run rollback $(params) -p to=v9.9.9 2>&1); rc=$?
[ $rc = 1 ] && [ ! -e "$SANDBOX/calls.log" ] && [ "$(cat "$SANDBOX/ACTIVE_VERSION")" = v1.1.0 ] && "$RBK" log 3 | grep -q "v9.9.9" \
	&& ok "an unknown release: refused, nothing touched" || fail "unknown target" "rc=$rc $out"
out=$("$RBK" run rollback $(params) -p to=latest 2>&1); rc=$?
[ $rc = 2 ] && ok "a target that is not a version: bad param (exit 2)" || fail "bad target" "rc=$rc $out"
sandbox_stop

# --- Método 2: git revert HEAD, build, up. --------------------------------------------------------
setup revert
out=$("$RBK" run rollback $(params) -p method=git_revert 2>&1); rc=$?
[ $rc = 0 ] && ok "git_revert: exit 0" || fail "git_revert: exit" "rc=$rc $out"
[ "$(cat "$W/api/VERSION")" = v1.0.0 ] && [ "$(git -C "$W" rev-parse HEAD~1)" = "$(git -C "$W" rev-parse v1.1.0^{commit})" ] \
	&& git -C "$W" log -1 --format=%s | grep -q "Revert the API to before v1.1.0" && ok "git_revert: a revert commit on top of v1.1.0" || fail "git_revert: commit" "$(git -C "$W" log --oneline -3)"
grep -q "docker compose build api" "$SANDBOX/calls.log" && grep -q "docker compose up -d api" "$SANDBOX/calls.log" && ok "git_revert: rebuilt and restarted" || fail "git_revert: docker" "$(cat "$SANDBOX/calls.log")"
short=$(git -C "$W" rev-parse --short=7 HEAD)
tail -n 1 "$SANDBOX/releases.log" | grep -q "rollback v1.1.0 -> v1.1.0+revert-$short" && [[ $(annotation) == "VERSION v1.1.0+revert-$short"* ]] \
	&& ok "git_revert: recorded and annotated" || fail "git_revert: record" "$(tail -n 1 "$SANDBOX/releases.log") $(annotation)"
sandbox_stop

# --- Grafana refuses the annotation: a person is told, the rollback still succeeds. ----------------
setup grafana
out=$("$RBK" run rollback $(params) -p grafana_url="$SANDBOX_URL/grafana/api/annotations" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(cat "$SANDBOX/ACTIVE_VERSION")" = v1.0.0 ] && alerts | grep -q "Grafana annotation failed" \
	&& ok "annotation refused: told, the rollback succeeds" || fail "annotation refused" "rc=$rc $out $(alerts)"
