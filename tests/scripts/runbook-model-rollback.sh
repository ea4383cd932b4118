#!/bin/bash
# runbooks/model-rollback.yaml in the sandbox, on real model files (small
# files whose content tells which model is in place) and the sandbox API,
# whose /health/api reflects the model each `docker compose restart api`
# loads (tests/sandbox/extra/model-deploy/api_on_restart.sh; the sandbox
# has no /predict route, so /health/api stands in for it):
#  - a named version is restored, the replaced model kept aside, the API
#    restarted and validated;
#  - no version: the newest backup by modification time (not by name);
#  - an unknown version, or no backup at all: alert, nothing changed;
#  - the restored model does not answer: critical alert.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
EXTRA="$RBK_ROOT/tests/sandbox/extra/model-deploy"
PY=$(command -v /usr/bin/python3 || command -v python3)
# python3 for the sandbox's server and hooks too, without a version manager's shim (slow to start)
mkdir -p "$TMP/bin" && ln -s "$PY" "$TMP/bin/python3" && export PATH="$TMP/bin:$PATH"

setup() { # setup CASE: a new store, a clean sandbox, production "model bad", three backups
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	if [ -z "${SANDBOX_PID:-}" ]; then # one HTTP peer for every case; its files are reset
		sandbox_start "$TMP/sb"
		export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	fi
	rm -rf "$SANDBOX/models" "$SANDBOX/docker" "$SANDBOX/calls.log" "$SANDBOX/requests.jsonl" "$SANDBOX/api_loaded.log"
	echo '{}' >"$SANDBOX/state.json"
	M="$SANDBOX/models" B="$SANDBOX/models/backups"
	mkdir -p "$B" "$SANDBOX/docker"
	cp "$EXTRA/api_on_restart.sh" "$SANDBOX/docker/api.on_restart"
	echo "model bad" >"$M/rf_m1.pkl"
	echo "model v1.0.0" >"$B/rf_m1_v1.0.0.pkl"; touch -d '3 days ago' "$B/rf_m1_v1.0.0.pkl"
	echo "model v1.1.0" >"$B/rf_m1_v1.1.0.pkl"; touch -d '2 days ago' "$B/rf_m1_v1.1.0.pkl"
	echo "model stamped" >"$B/rf_m1_20261201T000000Z.pkl"; touch -d '1 day ago' "$B/rf_m1_20261201T000000Z.pkl"
	echo "not a model" >"$B/notes.txt"
}
run_it() {
	"$RBK" run model-rollback -p model="$M/rf_m1.pkl" -p backups_dir="$B" -p docker="$SANDBOX_BIN/docker" \
		-p validate_url="$SANDBOX_URL/health/api" -p validate_retries=0 "$@" 2>&1
}
alerts() { "$PY" -c 'import json,sys; [print(a.get("severity",""), a.get("text","")) for a in json.load(open(sys.argv[1])).get("alerts",[])]' "$SANDBOX/state.json"; }
restarts() { cat "$SANDBOX/calls.log" 2>/dev/null | grep -c "^docker compose restart api$"; }

# 1. A named version.
setup named
out=$(run_it -p version=v1.0.0); rc=$?
[ $rc = 0 ] && ok "version v1.0.0: rolled back, exit 0" || fail "named exit" "rc=$rc $out"
[ "$(cat "$M/rf_m1.pkl")" = "model v1.0.0" ] && [ "$(cat "$M/rf_m1.pkl.before-rollback")" = "model bad" ] \
	&& [ "$(cat "$B/rf_m1_v1.0.0.pkl")" = "model v1.0.0" ] \
	&& ok "backups/rf_m1_v1.0.0.pkl is in production, the replaced model kept aside" || fail "named restore" "$(cat "$M/rf_m1.pkl")"
[ "$(restarts)" = 1 ] && [ "$(cat "$SANDBOX/api_loaded.log")" = "model v1.0.0" ] \
	&& ok "the API was restarted after the copy and loaded the restored model" || fail "restart" "$(cat "$SANDBOX/calls.log")"
grep '"path": "/health/api"' "$SANDBOX/requests.jsonl" | grep -q '"method": "GET"' && "$RBK" log 1 | grep -q "validate -> restored" \
	&& ok "validated with a request to the API" || fail "validate" "$("$RBK" log 1)"
alerts | grep -q "^info ML model rolled back by run 1: $M/rf_m1.pkl restored from $B/rf_m1_v1.0.0.pkl" \
	&& ok "the channel is told which backup was restored" || fail "info alert" "$(alerts)"
"$RBK" log 1 --json | grep -q "$SANDBOX_URL/alert" && fail "the webhook (a secret) is not recorded" "found in the log" || ok "the webhook (a secret) is not recorded"

# 2. No version: the newest backup by modification time (by name, v1.1.0 would sort last).
setup newest
out=$(run_it); rc=$?
[ $rc = 0 ] && [ "$(cat "$M/rf_m1.pkl")" = "model stamped" ] && [ "$(restarts)" = 1 ] \
	&& ok "no version: the newest backup (rf_m1_20261201T000000Z.pkl, by mtime) restored" || fail "newest" "rc=$rc $(cat "$M/rf_m1.pkl") $out"

# 3. An unknown version: refused, nothing changed.
setup unknown
out=$(run_it -p version=v9.9.9); rc=$?
[ $rc = 1 ] && [ "$(cat "$M/rf_m1.pkl")" = "model bad" ] && [ "$(restarts)" = 0 ] && [ ! -e "$M/rf_m1.pkl.before-rollback" ] \
	&& ok "unknown version v9.9.9: refused, model and API untouched, exit 1" || fail "unknown version" "rc=$rc $out"
alerts | grep -q "^warning ML model rollback refused (run 1): no backup $B/rf_m1_v9.9.9.pkl; backups: \[.*rf_m1_v1.1.0.pkl" \
	&& ok "the alert names the missing backup and lists the others" || fail "unknown alert" "$(alerts)"
out=$(run_it -p version='../../etc/passwd'); rc=$?
[ $rc = 2 ] && ok "a version that is not a plain name is refused before the run (exit 2)" || fail "version pattern" "rc=$rc $out"

# 4. No backup at all (the directory is empty, then missing).
setup nobackup
rm -f "$B"/*
out=$(run_it); rc=$?
[ $rc = 1 ] && [ "$(cat "$M/rf_m1.pkl")" = "model bad" ] && [ "$(restarts)" = 0 ] \
	&& alerts | grep -q "^critical ML model rollback impossible (run 1): no backup rf_m1_\*.pkl in $B" \
	&& ok "empty backups directory: critical alert, nothing changed, exit 1" || fail "no backup" "rc=$rc $(alerts) $out"
rmdir "$B"
out=$(run_it); rc=$?
[ $rc = 1 ] && [ "$(cat "$M/rf_m1.pkl")" = "model bad" ] && [ "$(alerts | grep -c 'rollback impossible')" = 2 ] \
	&& ok "missing backups directory: the same alert, exit 1" || fail "no backup dir" "rc=$rc $(alerts) $out"

# 5. The restored model does not answer (the API is unhealthy on it).
setup unhealthy
echo "model v1.1.0 degrades" >"$B/rf_m1_v1.1.0.pkl"
out=$(run_it -p version=v1.1.0); rc=$?
[ $rc = 1 ] && [ "$(cat "$M/rf_m1.pkl")" = "model v1.1.0 degrades" ] && [ "$(restarts)" = 1 ] \
	&& alerts | grep -q "^critical ML model rolled back to $B/rf_m1_v1.1.0.pkl by run 1 but .* does not answer" \
	&& ok "validation fails after the restore: critical alert, exit 1" || fail "validation failure" "rc=$rc $(alerts) $out"
