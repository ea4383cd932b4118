#!/bin/bash
# runbooks/files-backup.yaml on real files: the models' tarball holds every
# model and the mirror follows the source (a deleted model leaves it); the
# configuration tarball holds each path; a missing configuration path or an
# unreadable models directory alerts a person and fails without a tarball.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
sandbox_start "$TMP/sbx"
export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
P=$TMP/mt5
mkdir -p "$P/ml/models" "$P/grafana/provisioning/alerting" "$P/prometheus" "$P/systemd"
echo m1 >"$P/ml/models/rf_m1.pkl"; echo metrics >"$P/ml/models/rf_m1_metrics.json"; echo old >"$P/ml/models/rf_m1_old.pkl"
echo "services: {}" >"$P/docker-compose.yml"; echo "groups: []" >"$P/grafana/provisioning/alerting/a.yaml"
echo "scrape_configs: []" >"$P/prometheus/prometheus.yml"; echo "[Unit]" >"$P/systemd/mt5-update.service"
common=(-p root="$P" -p rsync="$RBK_ROOT/tests/sandbox/extra/files-backup/rsync")
alerts() { grep -c '"/alert"' "$SANDBOX/requests.jsonl" 2>/dev/null || echo 0; }
day=$(date -u +%Y%m%d)

export RBK_HOME=$TMP/h1
fresh_store
out=$("$RBK" run files-backup "${common[@]}" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(tar -tzf "$P/backups/models_$day.tar.gz" | grep -v '/$' | sort | tr '\n' ' ')" = "ml/models/rf_m1.pkl ml/models/rf_m1_metrics.json ml/models/rf_m1_old.pkl " ] \
	&& ok "models: backups/models_$day.tar.gz holds the 3 model files" || fail "models tarball" "rc=$rc $out"
[ "$(cat "$P/backups/models_mirror/rf_m1.pkl")" = m1 ] && [ "$(ls "$P/backups/models_mirror" | wc -l)" = 3 ] \
	&& ok "models: the mirror has the 3 files" || fail "mirror" "$(ls "$P/backups/models_mirror")"
grep -q "rsync -av --delete ml/models/ backups/models_mirror/" "$SANDBOX/calls.log" \
	&& ok "the mirror is the seed's rsync -av --delete ml/models/ backups/models_mirror/" || fail "rsync call" "$(cat "$SANDBOX/calls.log")"
rm "$P/ml/models/rf_m1_old.pkl"; echo m2 >"$P/ml/models/rf_m2.pkl"
out=$("$RBK" run files-backup "${common[@]}" 2>&1); rc=$?
[ $rc = 0 ] && [ ! -e "$P/backups/models_mirror/rf_m1_old.pkl" ] && [ "$(cat "$P/backups/models_mirror/rf_m2.pkl")" = m2 ] \
	&& ok "models again: the mirror gains the new model and loses the deleted one" || fail "incremental" "rc=$rc $(ls "$P/backups/models_mirror")"

out=$("$RBK" run files-backup "${common[@]}" -p what=configs 2>&1); rc=$?
list=$(tar -tzf "$P/backups/configs_$day.tar.gz" 2>&1 | sort | tr '\n' ' ')
[ $rc = 0 ] && [[ $list == *"docker-compose.yml"* && $list == *"grafana/provisioning/alerting/a.yaml"* && $list == *"prometheus/prometheus.yml"* && $list == *"systemd/mt5-update.service"* ]] \
	&& ok "configs: backups/configs_$day.tar.gz holds compose, Grafana provisioning, Prometheus and systemd" || fail "configs" "rc=$rc $list $out"
[ "$(alerts)" = 0 ] && ok "no alert while the backups succeed" || fail "alerts" "$(alerts)"

rm "$P/backups/configs_$day.tar.gz"
out=$("$RBK" run files-backup "${common[@]}" -p what=configs -p configs="docker-compose.yml nginx/nginx.conf" 2>&1); rc=$?
[ $rc = 1 ] && [ ! -e "$P/backups/configs_$day.tar.gz" ] && [ "$(alerts)" = 1 ] && grep -q "files-backup (configs) FAILED" "$SANDBOX/requests.jsonl" \
	&& [[ $out == *"missing: nginx/nginx.conf"* ]] \
	&& ok "a configuration path that does not exist: no tarball, the missing path said, alerted, failed" || fail "missing config" "rc=$rc alerts=$(alerts) $out"
rm -rf "$P/backups"
out=$("$RBK" run files-backup "${common[@]}" -p models_dir=ml/nothing 2>&1); rc=$?
[ $rc = 1 ] && [ ! -e "$P/backups/models_$day.tar.gz" ] && [ "$(alerts)" = 2 ] \
	&& ok "no models directory: no tarball kept, alerted, failed" || fail "no models" "rc=$rc alerts=$(alerts) $(ls -R "$P/backups" 2>&1) $out"
