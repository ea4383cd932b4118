#!/bin/bash
# runbooks/api-down.yaml in the sandbox, with a docker stand-in
# (tests/sandbox/extra/api-down/docker) whose API comes back only after one
# given mitigation: each level is tried in order and the run stops at the
# first that works (restart; rebuild; roll-back to the previous tag; the
# full restore after an approval); then the last hour of logs is written to
# the incident log and its ERROR/CRITICAL/Exception lines shown. Also: a
# failing build goes on to the roll-back, a missing previous image to the
# restore level; every level fails with no restore configured, or the restore
# is rejected: critical alert, the run fails; a healthy API: nothing is done.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
X="$RBK_ROOT/tests/sandbox/extra/api-down"
sandbox_start "$TMP/sbx"
export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
mkdir -p "$SANDBOX/docker" "$SANDBOX/api-down"
cat >"$SANDBOX/docker/mt5_api.log" <<'L'
2026-12-04 09:00:01 INFO uvicorn running on 0.0.0.0:8000
2026-12-04 09:10:02 ERROR sqlalchemy.exc.OperationalError: connection to server at "pgbouncer" failed
2026-12-04 09:10:03 CRITICAL worker exited: Traceback follows
2026-12-04 09:10:03 ValueError Exception in ASGI application
2026-12-04 09:12:00 INFO shutting down
L

case_() { # case_ NAME FIX_AT [HEALTH]: a new store; the API HEALTH (default down) until mitigation FIX_AT;
	# mt5_db up, mt5_pgbouncer down
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	echo "$2" >"$SANDBOX/api-down/fix_at"
	printf 'mt5_api\nmt5_db\n' >"$SANDBOX/api-down/running"
	echo "mt5_api:v1.1.0" >"$SANDBOX/api-down/images"
	rm -f "$SANDBOX/api-down/build.fail" "$SANDBOX/api-down/last"
	: >"$SANDBOX/calls.log"
	"$PY" - "$SANDBOX/state.json" "${3:-down}" <<-'PY'
	import json, sys
	s = json.load(open(sys.argv[1])); s["health"] = {"api": sys.argv[2]}; s["alerts"] = []
	json.dump(s, open(sys.argv[1], "w"), indent=1)
	PY
	LOG="$TMP/$1/api_incident.log"
	ARGS=(-p docker="$X/docker" -p compose_dir="$TMP" -p health_url="$SANDBOX_URL/health/api" -p health_retries=1 -p health_wait=100ms
		-p incident_log="$LOG")
}
# mitigations: the mitigation commands, in the order they were called
mitigations() { grep -E "^docker (compose (restart|build|up)|tag)|^restore-backup" "$SANDBOX/calls.log" | tr '\n' ';'; }
alert() { "$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])).get("alerts", []); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
status() { "$RBK" show "$1" --json | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print(r["status"], r["state"])'; }
R="docker compose restart api;"
B="docker compose build api;docker compose up -d api;"
T="docker tag mt5_api:v1.1.0 mt5_api:latest;docker compose up -d api;"

# --- Tentativa 1 works: restart only. ---------------------------------------------------
case_ restart restart
out=$("$RBK" run api-down "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status 1)" = "succeeded recovered" ] && ok "restart brings the API back: the run succeeds" || fail "restart: run" "rc=$rc $out"
[ "$(mitigations)" = "$R" ] && ok "restart: only the restart was tried" || fail "restart: order" "$(mitigations)"
grep -q "^docker ps$" "$SANDBOX/calls.log" && grep -q "^docker logs mt5_api --tail 100$" "$SANDBOX/calls.log" && grep -q "^docker stats mt5_api --no-stream$" "$SANDBOX/calls.log" \
	&& ok "investigation: docker ps, logs --tail 100, stats --no-stream" || fail "investigation" "$(cat "$SANDBOX/calls.log")"
[ "$(alert '"rodando: true" in a[0]["text"] and "dependências rodando: [0123456789ab   mt5_db:latest" in a[0]["text"] and "mt5_pgbouncer" not in a[0]["text"] and a[0]["severity"] == "critical"')" = True ] \
	&& ok "the P0 alert gives the container and its dependencies (mt5_db up, mt5_pgbouncer not)" || fail "down alert" "$(alert a)"
grep -q '^docker logs mt5_api --since 1 hour ago$' "$SANDBOX/calls.log" && cmp -s "$LOG" "$SANDBOX/docker/mt5_api.log" \
	&& ok "resolution: docker logs --since \"1 hour ago\" written to the incident log" || fail "incident log" "$(ls -l "$LOG")"
grep_out=$("$RBK" log 1 --json | "$PY" -c 'import json,sys
for l in sys.stdin:
    e = json.loads(l)
    if e["kind"] == "step_finished" and e["data"]["state"] == "grep_errors": print(e["data"]["result"]["stdout"], end="")')
[ "$grep_out" = "$(grep -E 'ERROR|CRITICAL|Exception' "$SANDBOX/docker/mt5_api.log")" ] && [ "$(wc -l <<<"$grep_out")" = 3 ] \
	&& ok "resolution: the 3 ERROR/CRITICAL/Exception lines are in the run's output" || fail "grep" "$grep_out"
[ "$(alert 'a[-1]["severity"] == "info" and "restart (tentativa 1)" in a[-1]["text"] and "Exception in ASGI application" in a[-1]["text"]')" = True ] \
	&& ok "the channel is told which mitigation worked, with the last error line" || fail "resolved alert" "$(alert 'a[-1]')"

# --- Tentativa 2 works: restart, then rebuild. --------------------------------------------
case_ rebuild rebuild
out=$("$RBK" run api-down "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(mitigations)" = "$R$B" ] && [ "$(alert '"rebuild (tentativa 2)" in a[-1]["text"]')" = True ] \
	&& ok "rebuild: restart, then build + up -d, and no roll-back" || fail "rebuild" "rc=$rc $(mitigations)"

# --- Tentativa 3 works: restart, rebuild, then the roll-back to the previous tag. ----------
case_ rollback rollback
out=$("$RBK" run api-down "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(mitigations)" = "$R$B$T" ] && [ "$(alert '"rollback para v1.1.0 (tentativa 3)" in a[-1]["text"]')" = True ] \
	&& ok "rollback: restart, rebuild, then docker tag mt5_api:v1.1.0 mt5_api:latest + up -d" || fail "rollback" "rc=$rc $(mitigations)"

# --- A failing build goes on to the roll-back (without up -d after the failed build). -----
case_ buildfail rollback
touch "$SANDBOX/api-down/build.fail"
out=$("$RBK" run api-down "${ARGS[@]}" -p previous_tag=v1.1.0 2>&1); rc=$?
[ $rc = 0 ] && [ "$(mitigations)" = "${R}docker compose build api;$T" ] \
	&& ok "a failed build skips its up -d and goes on to the roll-back" || fail "build fails" "rc=$rc $(mitigations)"

# --- Tentativa 4 works: the restore, after an approval. ----------------------------------
case_ restore restore
out=$("$RBK" run api-down "${ARGS[@]}" -p restore_cmd="'$X/restore-backup' mt5_trading_latest.dump" 2>&1); rc=$?
[ $rc = 4 ] && [ "$(status 1)" = "waiting m4_approve" ] && [ "$(mitigations)" = "$R$B$T" ] \
	&& ok "restore: after three failed levels the run waits for the restore approval (exit 4)" || fail "restore: waits" "rc=$rc $(mitigations)"
[ "$(alert '"aguarda aprovação: rbk approve 1" in a[-1]["text"]')" = True ] && "$RBK" log 1 | grep -q "Run the full restore from backup now" \
	&& ok "restore: the approval is announced and asked" || fail "restore: asked" "$(alert 'a[-1]')"
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 0 ] && [ "$(mitigations)" = "$R$B${T}restore-backup mt5_trading_latest.dump;" ] && [ "$(status 1)" = "succeeded recovered" ] \
	&& [ "$(alert '"restore de backup (tentativa 4)" in a[-1]["text"]')" = True ] && [ -s "$LOG" ] \
	&& ok "restore approved: restored, the API is back, logs captured" || fail "restore: approved" "rc=$rc $out"

# --- The restore rejected: escalation. ---------------------------------------------------
case_ reject never
"$RBK" run api-down "${ARGS[@]}" -p restore_cmd="'$X/restore-backup' mt5_trading_latest.dump" >/dev/null 2>&1
out=$("$RBK" reject 1 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = "failed failed" ] && ! grep -q restore-backup "$SANDBOX/calls.log" \
	&& [ "$(alert 'a[-1]["severity"] == "critical" and "ESCALADO" in a[-1]["text"] and "restore recusado" in a[-1]["text"]')" = True ] \
	&& ok "restore rejected: not restored, critical escalation, the run fails" || fail "restore rejected" "rc=$rc $(alert 'a[-1]')"

# --- Everything fails, no restore configured: escalation. ---------------------------------
case_ allfail never
out=$("$RBK" run api-down "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = "failed failed" ] && [ "$(mitigations)" = "$R$B$T" ] \
	&& ok "all levels fail: each tried once, in order, then the run fails" || fail "all fail" "rc=$rc $(mitigations)"
[ "$(alert 'a[-1]["severity"] == "critical" and "ESCALADO" in a[-1]["text"] and "sem restore configurado" in a[-1]["text"]')" = True ] && [ ! -e "$LOG" ] \
	&& ok "all fail: critical escalation (no restore configured), no incident log" || fail "all fail: alert" "$(alert 'a[-1]')"
case_ notag never
: >"$SANDBOX/api-down/images" # no mt5_api:v1.1.0 to roll back to
out=$("$RBK" run api-down "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(mitigations)" = "$R${B}docker tag mt5_api:v1.1.0 mt5_api:latest;" ] && [ "$(alert '"ESCALADO" in a[-1]["text"]')" = True ] \
	&& ok "no previous image: the failed tag skips its up -d, then escalation" || fail "no tag" "rc=$rc $(mitigations)"

# --- The API answers: nothing done. ------------------------------------------------------
case_ healthy never healthy
out=$("$RBK" run api-down "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status 1)" = "succeeded healthy" ] && [ -z "$(mitigations)" ] && [ "$(alert 'len(a)')" = 0 ] \
	&& ok "a healthy API: no mitigation, no alert" || fail "healthy" "rc=$rc $(mitigations)"
