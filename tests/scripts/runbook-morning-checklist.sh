#!/bin/bash
# runbooks/morning-checklist.yaml in the sandbox: every check passing (no action,
# no alert); each action of "Ações se algum check falhar": a service down calls
# api-down (which restarts the API: a docker stand-in brings it back); a disk
# above disk_max calls disk-full (old logs removed; and its escalation when the
# clean-up is not enough); active Grafana alerts go to a person with their
# names; the other checks (error lines in the logs, the metrics, an old ML
# model) fail the run with a report. And the schedule: 08:00 São Paulo.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
X="$RBK_ROOT/tests/sandbox/extra"
sandbox_start "$TMP/sbx"
export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
mkdir -p "$SANDBOX/docker" "$SANDBOX/api-down"
cat >"$TMP/notify" <<'S'
#!/bin/sh
echo "notify $*" >>"$SANDBOX/calls.log"
S
chmod +x "$TMP/notify"

st() { # st PYTHON: edit the sandbox state (s) with a statement
	"$PY" - "$SANDBOX/state.json" "$1" <<-'PY'
	import json, sys
	s = json.load(open(sys.argv[1])); exec(sys.argv[2])
	json.dump(s, open(sys.argv[1], "w"), indent=1)
	PY
}
case_() { # case_ NAME: a new store; everything healthy
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	st 's["health"] = {"api": "healthy", "db": "healthy"}; s["alerts"] = []
s["grafana_alerts"] = [{"id": 8, "name": "API Down", "state": "ok"}]
s["kv"] = {"metrics": {"requests_total": 1234, "error_rate": 0.01}}'
	: >"$SANDBOX/calls.log"
	printf 'mt5_api\nmt5_db\nmt5_pgbouncer\n' >"$SANDBOX/api-down/running"
	echo restart >"$SANDBOX/api-down/fix_at"
	printf 'api-1  | 2026-12-04 07:00:00 INFO started\nml-1  | 2026-12-04 07:10:00 INFO trained\n' >"$SANDBOX/docker/compose.log"
	cp "$SANDBOX/docker/compose.log" "$SANDBOX/docker/mt5_api.log"
	D="$TMP/$1"
	mkdir -p "$D/models" "$D/logs" "$D/backups"
	touch -d '30 hours ago' "$D/models/rf_m1.pkl"; touch -d '3 days ago' "$D/models/rf_m1_old.pkl"
	touch -d '40 days ago' "$D/logs/old.log"; touch "$D/logs/today.log"
	ARGS=(-p workdir="$X/morning-checklist/work" -p grafana_alerts_url="$SANDBOX_URL/grafana/api/alerts" -p docker="$X/api-down/docker"
		-p disk_path="$D" -p metrics_url="$SANDBOX_URL/kv/metrics" -p models_dir="$D/models" -p compose_dir="$D"
		-p api_health_url="$SANDBOX_URL/health/api" -p api_health_retries=1 -p api_health_wait=100ms -p incident_log="$D/api_incident.log"
		-p cleanup_logs_dir="$D/logs" -p cleanup_backups_dir="$D/backups" -p compress_cmd="echo compress >>'$SANDBOX/calls.log'" -p notify="$TMP/notify")
}
alert() { "$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])).get("alerts", []); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
show() { "$RBK" show "$1" --json | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print(eval(sys.argv[1]))' "$2"; }
report() { "$RBK" log 1 --json | "$PY" -c 'import json,sys
for l in sys.stdin:
    e = json.loads(l)
    if e["kind"] == "step_finished" and e["data"]["state"] == "report": print(e["data"]["result"]["stdout"], end="")'; }
children() { # the runs the run called, as RUNBOOK:STATUS
	local c
	for c in $(show 1 '" ".join(map(str, r["children"]))'); do show "$c" 'r["runbook"] + ":" + r["status"]'; done | tr '\n' ' ' | sed 's/ $//'
}

# --- Every check passes. ----------------------------------------------------------------
case_ allok
out=$("$RBK" run morning-checklist "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(show 1 'r["state"]')" = passed ] && ok "all six checks pass: the run succeeds" || fail "all ok: run" "rc=$rc $out"
[ -z "$(children)" ] && [ "$(alert 'len(a)')" = 0 ] && ok "all ok: no runbook called, nobody alerted" || fail "all ok: quiet" "$(children) $(alert a)"
r=$(report)
grep -q "1 serviços: ok" <<<"$r" && grep -q "2 alertas Grafana: nenhum ativo" <<<"$r" && grep -q "3 logs (24h): 0 linha(s) de erro" <<<"$r" \
	&& grep -q "4 disco: [0-9]*% (limite 80%)" <<<"$r" && grep -q '5 métricas: .*"requests_total": 1234' <<<"$r" \
	&& grep -q "6 último modelo há 30 h: .* rf_m1.pkl" <<<"$r" \
	&& ok "the report gives each check (health, Grafana, logs, disk, metrics, newest model)" || fail "all ok: report" "$r"
grep -q "^docker compose logs --since 24h$" "$SANDBOX/calls.log" && grep -q '"/grafana/api/alerts"' "$SANDBOX/requests.jsonl" \
	&& ok "the logs of the last 24 h and Grafana's alerts were read" || fail "all ok: reads" "$(cat "$SANDBOX/calls.log")"

# --- A service down: api-down is called and brings the API back. --------------------------
case_ service
st 's["health"]["api"] = "down"'
out=$("$RBK" run morning-checklist "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(children)" = "api-down:succeeded" ] && grep -q "^docker compose restart api$" "$SANDBOX/calls.log" \
	&& [ "$(alert 'any("API Down (P0) mitigado" in x["text"] for x in a)')" = True ] \
	&& ok "service down: api-down called, restarted the API, which is back" || fail "service: api-down" "rc=$rc $(children) $(cat "$SANDBOX/calls.log")"
grep -q "FALHOU 1 serviços: api: DOWN .* -> api-down: ok" <<<"$(report)" && [ "$(alert '"api-down: ok" in a[-1]["text"]')" = True ] \
	&& ok "service down: the report (sent to a person) says so and what api-down did" || fail "service: report" "$(report)"
! grep -q "^docker system prune" "$SANDBOX/calls.log" && ok "service down: disk-full not called" || fail "service: no disk-full" ""

# --- Disk above disk_max: disk-full is called and cleans up. --------------------------------
case_ disk
out=$("$RBK" run morning-checklist "${ARGS[@]}" -p disk_max=0 -p disk_target=100 2>&1); rc=$?
[ $rc = 1 ] && [ "$(children)" = "disk-full:succeeded" ] && [ ! -e "$D/logs/old.log" ] && [ -e "$D/logs/today.log" ] \
	&& grep -q "^docker system prune -af$" "$SANDBOX/calls.log" && grep -q "^compress$" "$SANDBOX/calls.log" \
	&& ok "disk above disk_max: disk-full called, old logs removed, docker pruned, compression run" || fail "disk: disk-full" "rc=$rc $(children) $(ls "$D/logs")"
grep -q "FALHOU 4 disco [0-9]*% > 0% -> disk-full: ok" <<<"$(report)" && ok "disk: reported with disk-full's outcome" || fail "disk: report" "$(report)"
case_ diskfail
out=$("$RBK" run morning-checklist "${ARGS[@]}" -p disk_max=0 -p disk_target=0 2>&1); rc=$?
[ $rc = 1 ] && [ "$(children)" = "disk-full:failed" ] && grep -q "^notify -t rbk disk-full: $D still above 0% after clean-up" "$SANDBOX/calls.log" \
	&& grep -q "disk-full: FALHOU" <<<"$(report)" \
	&& ok "disk still full after the clean-up: disk-full escalates, the checklist reports it" || fail "disk fail" "rc=$rc $(children) $(report)"

# --- Active Grafana alerts: a person gets their names. ------------------------------------
case_ alerts
st 's["grafana_alerts"] = [{"id": 1, "name": "Slow Database Queries", "state": "alerting"}, {"id": 8, "name": "API Down", "state": "ok"}, {"id": 3, "name": "High Error Rate", "state": "alerting"}]'
out=$("$RBK" run morning-checklist "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(alert 'a[0]["alerts"] == ["Slow Database Queries", "High Error Rate"] and "2 alerta(s) Grafana ativo(s)" in a[0]["text"] and "Investigar logs e métricas" in a[0]["text"]')" = True ] \
	&& ok "alerts active: a person is alerted with their names (not the one in state ok)" || fail "alerts" "rc=$rc $(alert a)"
[ -z "$(children)" ] && grep -q 'FALHOU 2 alertas Grafana ativos: \["Slow Database Queries","High Error Rate"\]' <<<"$(report)" \
	&& ok "alerts active: in the report, no runbook called" || fail "alerts: report" "$(report)"

# --- The other checks: errors in the logs, no metrics, an old model. ------------------------
case_ others
printf 'api-1  | 2026-12-04 07:00:00 ERROR db timeout\nml-1  | Traceback: ValueError exception in train\n' >>"$SANDBOX/docker/compose.log"
st 's["kv"] = {"metrics": {"up": 1}}'
touch -d '9 days ago' "$D/models/rf_m1.pkl"; touch -d '10 days ago' "$D/models/rf_m1_old.pkl"
out=$("$RBK" run morning-checklist "${ARGS[@]}" 2>&1); rc=$?
r=$(report)
[ $rc = 1 ] && grep -q "FALHOU 3 2 linha(s) de erro nos logs (24h); últimas: .*ERROR db timeout" <<<"$r" \
	&& grep -q "FALHOU 5 métricas sem linhas requests_total|error_rate" <<<"$r" && grep -q "FALHOU 6 último modelo há 216 h (limite 168 h): .* rf_m1.pkl" <<<"$r" \
	&& grep -q "3 check(s) falharam" <<<"$r" && [ "$(alert '"3 check(s) falharam" in a[-1]["text"]')" = True ] \
	&& ok "errors in the logs, metrics without requests_total/error_rate, a model older than 7d: reported, the run fails" || fail "others" "rc=$rc $r"

# --- The schedule: 08:00 in São Paulo, every day. -----------------------------------------
s=$("$RBK" schedule list 2>&1 | grep morning-checklist)
grep -q "0 8 \* \* \*" <<<"$s" && grep -q "America/Sao_Paulo" <<<"$s" && ok "scheduled at 08:00 America/Sao_Paulo, daily" || fail "schedule" "$s"
