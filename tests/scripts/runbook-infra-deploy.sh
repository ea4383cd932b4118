#!/bin/bash
# runbooks/infra-deploy.yaml with a docker compose stand-in that reads the real
# compose file (tests/sandbox/extra/infra-deploy/docker): an edited file is
# validated, previewed (--dry-run) in the approval, applied after it and
# verified (every service running/healthy), then kept as last applied; an
# invalid file fails before anything is touched; a rejected approval applies
# nothing; services that do not come up roll back to the last applied file
# (exit 3); a failing up -d escalates. Grafana: restarted, provisioning found
# in its logs, UI answering; a provisioning error escalates.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
DOCKER="$RBK_ROOT/tests/sandbox/extra/infra-deploy/docker"
sandbox_start "$TMP/sbx"
export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
P="$TMP/project"
mkdir -p "$P" "$SANDBOX/docker"

compose() { # compose API_IMAGE: write docker-compose.yml with that API image
	cat >"$P/docker-compose.yml" <<-Y
	services:
	  db:
	    image: timescale/timescaledb:2.14.2-pg16
	    healthcheck: {test: [CMD, pg_isready, -U, trader]}
	  api:
	    image: $1
	    depends_on: [db]
	  grafana:
	    image: grafana/grafana:10.4.0
	Y
}
case_() { # case_ NAME: a new store
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	: >"$SANDBOX/calls.log"
}
ARGS=(-p docker="$DOCKER" -p compose_dir="$P" -p verify_every=100ms -p verify_for=1s)
alert() { "$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])).get("alerts", []); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
applied() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/compose/applied.json" "$1"; }
status() { "$RBK" show "$1" --json | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print(r["status"], r["state"])'; }
ups() { grep -c "^docker compose -f .* up -d$" "$SANDBOX/calls.log"; }

# --- A first deploy, approved: applied, verified, kept as last applied. -------------------
case_ first
compose mt5_api:v1.1.0
out=$("$RBK" run infra-deploy "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 4 ] && [ "$(status 1)" = "waiting approve" ] && ok "valid file: validated, previewed, waits for the approval (exit 4)" || fail "first: waits" "rc=$rc $out"
grep -q "^docker compose -f docker-compose.yml config --quiet$" "$SANDBOX/calls.log" && grep -q "^docker compose -f docker-compose.yml up -d --dry-run$" "$SANDBOX/calls.log" \
	&& [ "$(ups)" = 0 ] && [ ! -e "$SANDBOX/compose/applied.json" ] && ok "nothing applied before the approval" || fail "first: early apply" "$(cat "$SANDBOX/calls.log")"
"$RBK" log 1 | grep -q "Preview (--dry-run):" && "$RBK" log 1 --json | grep -q 'Container mt5-api-1  Create' \
	&& ok "the approval shows the preview" || fail "first: prompt" "$("$RBK" log 1 | grep approval)"
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status 1)" = "succeeded applied" ] && [ "$(ups)" = 1 ] \
	&& [ "$(applied 's["api"]["config"]["image"] + " " + s["api"]["state"] + " " + s["db"]["health"]')" = "mt5_api:v1.1.0 running healthy" ] \
	&& ok "approved: docker compose up -d applied the file, every service running/healthy" || fail "first: apply" "rc=$rc $out"
cmp -s "$P/docker-compose.yml" "$P/docker-compose.yml.last-applied" && ok "the applied file is kept as the last applied" || fail "first: last applied" "$(ls "$P")"
"$RBK" log 1 --json | grep -q '"stdout":"ok db running/healthy\\nok api running\\nok grafana running\\n"' \
	&& ok "docker compose ps: each service's status was checked" || fail "first: verify output" "$("$RBK" log 1 --json | grep '"state":"verify"' | tail -1)"

# --- An invalid file: fails before touching anything. --------------------------------------
case_ invalid
cp "$P/docker-compose.yml" "$TMP/good.yml"
printf 'services:\n  api:\n    ports: ["8001:8000"]\n' >"$P/docker-compose.yml"
before=$(cat "$SANDBOX/compose/applied.json")
out=$("$RBK" run infra-deploy "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = "failed not_applied" ] && [ "$(grep -c . "$SANDBOX/calls.log")" = 1 ] && [ "$(cat "$SANDBOX/compose/applied.json")" = "$before" ] \
	&& ok "invalid file: the run fails after docker compose config alone; nothing previewed or applied" || fail "invalid" "rc=$rc $(cat "$SANDBOX/calls.log")"
[ "$(alert '"inválido, nada aplicado" in a[-1]["text"] and "neither an image nor a build" in a[-1]["text"]')" = True ] \
	&& ok "invalid file: a person is told why" || fail "invalid: alert" "$(alert 'a[-1]')"
printf 'services: [oops\n' >"$P/docker-compose.yml"
out=$("$RBK" run infra-deploy "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 2)" = "failed not_applied" ] && ! grep -q -- "--dry-run\|up -d$" "$SANDBOX/calls.log" \
	&& ok "a YAML syntax error: same, nothing touched" || fail "invalid yaml" "rc=$rc $out"

# --- The approval rejected: nothing applied. -------------------------------------------------
case_ reject
compose mt5_api:v1.2.0
"$RBK" run infra-deploy "${ARGS[@]}" >/dev/null 2>&1
"$RBK" log 1 --json | grep -q 'Container mt5-api-1  Recreate' && "$RBK" log 1 --json | grep -q 'Container mt5-db-1  Running' && ok "the preview shows the API recreated, the others unchanged" || fail "reject: preview" ""
out=$("$RBK" reject 1 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = "failed not_applied" ] && [ "$(ups)" = 0 ] && [ "$(applied 's["api"]["config"]["image"]')" = mt5_api:v1.1.0 ] \
	&& ok "rejected: nothing applied (the API still runs v1.1.0)" || fail "reject" "rc=$rc $out"

# --- The services do not come up: rollback to the last applied file. ----------------------
case_ rollback
compose mt5_api:v1.3.0-broken
"$RBK" run infra-deploy "${ARGS[@]}" >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 3 ] && [ "$(status 1 | cut -d' ' -f1)" = rolled_back ] && ok "the API keeps restarting: rolled back (exit 3)" || fail "rollback: run" "rc=$rc $out"
grep -q "^docker compose -f docker-compose.yml.last-applied up -d$" "$SANDBOX/calls.log" \
	&& [ "$(applied 's["api"]["config"]["image"] + " " + s["api"]["state"]')" = "mt5_api:v1.1.0 running" ] \
	&& ok "rollback: the last applied file is applied again, the API runs v1.1.0" || fail "rollback: reapply" "$(cat "$SANDBOX/calls.log")"
[ "$(alert 'a[-1]["severity"] == "critical" and "NOT_OK api restarting" in a[-1]["text"] and "Rollback: reaplicando" in a[-1]["text"]')" = True ] \
	&& grep -q "mt5_api:v1.1.0" "$P/docker-compose.yml.last-applied" \
	&& ok "rollback: announced with the failing service; the last applied file is unchanged" || fail "rollback: alert" "$(alert 'a[-1]')"

# --- docker compose up -d fails: escalation. ---------------------------------------------
case_ upfail
compose mt5_api:fail-up
"$RBK" run infra-deploy "${ARGS[@]}" >/dev/null 2>&1
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 1)" = "failed failed" ] && [ "$(alert '"up -d de docker-compose.yml FALHOU" in a[-1]["text"] and "pull access denied" in a[-1]["text"]')" = True ] \
	&& ok "up -d fails: a person is told (with how to go back), the run fails" || fail "up fails" "rc=$rc $(alert 'a[-1]')"

# --- Grafana: restart, provisioning in the logs, UI answering. -----------------------------
case_ grafana
cat >"$SANDBOX/docker/grafana.log" <<'L'
logger=settings t=2026-12-04T08:00:00Z level=info msg="Starting Grafana" version=10.4.0
logger=provisioning.alerting t=2026-12-04T08:00:01Z level=info msg="starting to provision alerting"
logger=provisioning.alerting t=2026-12-04T08:00:01Z level=info msg="finished to provision alerting"
L
GARGS=(-p target=grafana -p docker="$DOCKER" -p compose_dir="$P" -p grafana_health_url="$SANDBOX_URL/health/grafana" -p grafana_wait=5s)
out=$("$RBK" run infra-deploy "${GARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(status 1)" = "succeeded grafana_done" ] && grep -q "^docker compose restart grafana$" "$SANDBOX/calls.log" && [ "$(cat "$SANDBOX/docker/grafana.restarts")" = 1 ] \
	&& grep -q '"/health/grafana"' "$SANDBOX/requests.jsonl" && "$RBK" log 1 --json | grep -q "finished to provision alerting" \
	&& ok "grafana: restarted, the UI answers, the provisioning lines are in the run's output" || fail "grafana" "rc=$rc $out"
echo 'logger=provisioning.alerting t=2026-12-04T08:00:02Z level=error msg="failed to provision alerting" error="invalid rule"' >>"$SANDBOX/docker/grafana.log"
out=$("$RBK" run infra-deploy "${GARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(status 2)" = "failed failed" ] && [ "$(alert 'a[-1]["severity"] == "critical" and "infra-deploy (grafana) FALHOU" in a[-1]["text"]')" = True ] \
	&& ok "grafana: a provisioning error escalates" || fail "grafana error" "rc=$rc $out"
