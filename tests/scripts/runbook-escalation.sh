#!/bin/bash
# runbooks/escalation.yaml on real files, with a stand-in for the rolling
# Sharpe report (tests/sandbox/extra/escalation): the limits file in the
# format canary.yaml writes is escalated (per-order cap doubled, total
# scaled, other lines kept, old -> new recorded); a second run in the same
# week holds; the cap stops at the target; holds (at target, Sharpe <= 0, a
# recent kill-switch event) keep the file and succeed; errors (no target, no
# limits file, no Sharpe, no kill-switch log) alert and fail.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
EXTRA="$RBK_ROOT/tests/sandbox/extra/escalation"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
mkdir -p "$TMP/bin" && ln -s "$PY" "$TMP/bin/python3" && export PATH="$TMP/bin:$PATH" # also for the sandbox's server
unset QP_TARGET_NOTIONAL_PER_ORDER

limits() { printf 'MAX_NOTIONAL_PER_ORDER=%s\nMAX_TOTAL_NOTIONAL=%s\nMAX_DD_DAILY=0.03\nLATENCY_THRESHOLD_MS=500\n' "$1" "$2"; }
setup() { # setup CASE PER_ORDER TOTAL: the limits file as canary.yaml writes it, Sharpe 0.8, a kill-switch 10 days ago
	sandbox_start "$TMP/$1"
	export RBK_HOME="$TMP/$1/home" RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert" QP_TARGET_NOTIONAL_PER_ORDER=400
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	QP="$SANDBOX/qp"; mkdir -p "$QP/logs"
	limits "$2" "$3" >"$QP/canary.env"; cp "$QP/canary.env" "$SANDBOX/before"
	echo 0.8 >"$SANDBOX/sharpe"
	echo "$(( $(date +%s) - 10 * 86400 )) kill-switch: daily drawdown 3.1% >= 3%" >"$QP/logs/kill_switch.log"
}
run() {
	"$RBK" run escalation -p limits_file="$QP/canary.env" -p escalation_log="$QP/escalation.log" -p sharpe_cmd="$EXTRA/sharpe" \
		-p project_dir="$QP" -p kill_switch_log="$QP/logs/kill_switch.log" "$@"
}
alerts() { "$PY" -c 'import json,sys; print("\n".join(a["text"] for a in json.load(open(sys.argv[1])).get("alerts", [])))' "$SANDBOX/state.json"; }
has_alert() { grep -q "$@" <<<"$(alerts)"; } # (not through a pipe: grep -q would close it early)
unchanged() { cmp -s "$SANDBOX/before" "$QP/canary.env"; }

# --- The schedule: Mondays 09:00 UTC. ---------------------------------------------------------------
next=$("$RBK" schedule next "$RBK_ROOT/runbooks/escalation.yaml" --from 2026-12-04T12:00:00Z --count 2 --json 2>&1)
[ "$(echo "$next" | grep -o '"utc": "[^"]*"' | tr '\n' ' ')" = '"utc": "2026-12-07T09:00:00Z" "utc": "2026-12-14T09:00:00Z" ' ] \
	&& ok "schedule: Mondays 09:00 UTC" || fail "schedule" "$next"

# --- Happy path: the canary limits doubled; then the same week: held. --------------------------------
setup happy 50 200
out=$(run 2>&1); rc=$?
[ $rc = 0 ] && [ "$(cat "$QP/canary.env")" = "$(limits 100 400)" ] \
	&& ok "escalated: MAX_NOTIONAL_PER_ORDER 50 -> 100, MAX_TOTAL_NOTIONAL 200 -> 400, other lines kept, exit 0" || fail "escalate" "rc=$rc $out $(cat "$QP/canary.env")"
grep -q "^[0-9]* run=1 MAX_NOTIONAL_PER_ORDER 50 -> 100 MAX_TOTAL_NOTIONAL 200 -> 400 sharpe_30d=0.8 kill_switch_events=0$" "$QP/escalation.log" \
	&& ok "escalated: old -> new recorded in the escalation log" || fail "escalation log" "$(cat "$QP/escalation.log" 2>&1)"
grep -q "sharpe  (cwd=$QP SHARPE_DAYS=30)" "$SANDBOX/calls.log" && has_alert "MAX_NOTIONAL_PER_ORDER 50 -> 100 (target 400), MAX_TOTAL_NOTIONAL 200 -> 400; rolling 30 d Sharpe 0.8" \
	&& ok "escalated: 30-day Sharpe read, the channel told" || fail "escalate alert" "$(alerts) $(cat "$SANDBOX/calls.log")"
cp "$QP/canary.env" "$SANDBOX/before"
out=$(run 2>&1); rc=$?
[ $rc = 0 ] && unchanged && [ "$(wc -l <"$QP/escalation.log")" = 1 ] && "$RBK" show 2 | grep -q "state *held" \
	&& has_alert "escalation held (run 2): the limits were changed 0 h ago, less than 6d; limits unchanged (MAX_NOTIONAL_PER_ORDER 100" \
	&& ok "the same week again: held (limits kept), alert, exit 0" || fail "too soon" "rc=$rc $out $(alerts)"
touch -d '8 days ago' "$QP/escalation.log"
out=$(run 2>&1); rc=$?
[ $rc = 0 ] && [ "$(cat "$QP/canary.env")" = "$(limits 200 800)" ] && ok "a week later: 100 -> 200, 400 -> 800" || fail "next week" "rc=$rc $(cat "$QP/canary.env")"
touch -d '8 days ago' "$QP/escalation.log"
out=$(run 2>&1); rc=$?
[ $rc = 0 ] && [ "$(cat "$QP/canary.env")" = "$(limits 400 1600)" ] && ok "then 200 -> 400 (the target), 800 -> 1600" || fail "to target" "rc=$rc $(cat "$QP/canary.env")"
touch -d '8 days ago' "$QP/escalation.log"; cp "$QP/canary.env" "$SANDBOX/before"
out=$(run 2>&1); rc=$?
[ $rc = 0 ] && unchanged && has_alert "held (run 5): MAX_NOTIONAL_PER_ORDER 400 is at the target 400" \
	&& ok "at the target: held, never above it, exit 0" || fail "at target" "rc=$rc $out $(alerts)"
sandbox_stop

# --- The doubling is capped at the target; the total follows the same factor. ------------------------
setup cap 300 900
out=$(run 2>&1); rc=$?
[ $rc = 0 ] && [ "$(cat "$QP/canary.env")" = "$(limits 400 1200)" ] && ok "300 -> 400 (capped at the target, not 600), total 900 -> 1200" || fail "cap" "rc=$rc $out $(cat "$QP/canary.env")"
sandbox_stop
setup cents 60 250
out=$(run -p target_notional_per_order=100 2>&1); rc=$?
[ $rc = 0 ] && [ "$(cat "$QP/canary.env")" = "$(limits 100 416.66)" ] && ok "a total that is not whole: 250 -> 416.66 (cents, rounded down)" || fail "cents" "rc=$rc $out $(cat "$QP/canary.env")"
sandbox_stop

# --- Conditions that do not hold: limits unchanged, success, alert with the reason. --------------------
setup sharpe 50 200
echo -0.35 >"$SANDBOX/sharpe"
out=$(run 2>&1); rc=$?
[ $rc = 0 ] && unchanged && [ ! -e "$QP/escalation.log" ] && has_alert "held (run 1): rolling 30 d Sharpe is -0.35 (not > 0); limits unchanged" \
	&& ok "Sharpe -0.35: held, limits unchanged, alert, exit 0" || fail "sharpe" "rc=$rc $out $(alerts)"
sandbox_stop
setup killswitch 50 200
echo "$(( $(date +%s) - 2 * 86400 )) kill-switch: latency 812 ms > 500 ms" >>"$QP/logs/kill_switch.log"
out=$(run 2>&1); rc=$?
[ $rc = 0 ] && unchanged && [ ! -e "$QP/escalation.log" ] && has_alert "held (run 1): 1 kill-switch event(s) in the last 7d ([0-9]* kill-switch: latency 812 ms" \
	&& ok "a kill-switch 2 days ago: held, limits unchanged, alert, exit 0" || fail "kill-switch" "rc=$rc $out $(alerts)"
sandbox_stop

# --- Errors: alert and fail, the file untouched. -----------------------------------------------------
setup notarget 50 200
unset QP_TARGET_NOTIONAL_PER_ORDER
out=$(run 2>&1); rc=$?
[ $rc = 1 ] && unchanged && has_alert "FAILED (run 1), limits not escalated: target not set (QP_TARGET_NOTIONAL_PER_ORDER)" \
	&& ok "no target: alert, exit 1" || fail "no target" "rc=$rc $out $(alerts)"
sandbox_stop
setup nofile 50 200
rm "$QP/canary.env"
out=$(run 2>&1); rc=$?
[ $rc = 1 ] && [ ! -e "$QP/canary.env" ] && has_alert "limits file $QP/canary.env failed (MAX_NOTIONAL_PER_ORDER ?" \
	&& ok "no limits file: alert, exit 1" || fail "no file" "rc=$rc $out $(alerts)"
sandbox_stop
setup nosharpe 50 200
rm "$SANDBOX/sharpe"
out=$(run 2>&1); rc=$?
[ $rc = 1 ] && unchanged && has_alert "Sharpe not computed no PnL history for the last 30 days" \
	&& ok "Sharpe cannot be computed: alert, exit 1" || fail "no sharpe" "rc=$rc $out $(alerts)"
sandbox_stop
setup nolog 50 200
rm "$QP/logs/kill_switch.log"
out=$(run 2>&1); rc=$?
[ $rc = 1 ] && unchanged && has_alert "kill-switch log failed no kill-switch log" \
	&& ok "no kill-switch log: alert, exit 1" || fail "no kill-switch log" "rc=$rc $out $(alerts)"
sandbox_stop
