#!/bin/bash
# runbooks/alert-rollback.yaml with a real trading loop (a sleep whose pid is
# in the pid file) and a stand-in for quant_pipeline's Python
# (tests/sandbox/extra/alert-rollback): the loop gets SIGINT (or SIGKILL when
# it ignores it), the approval gates closing the positions and restoring the
# champion; rejected: positions and model kept; close_all or promote failing:
# the other steps still run, the rollback is reported incomplete.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
EXTRA="$RBK_ROOT/tests/sandbox/extra/alert-rollback"
LOOP=
trap '[ -n "$LOOP" ] && kill -9 "$LOOP" 2>/dev/null; sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
mkdir -p "$TMP/bin" && ln -s "$PY" "$TMP/bin/python3" && export PATH="$TMP/bin:$PATH" # also for the sandbox's server

setup() { # setup CASE: two open positions, a trading loop running
	sandbox_start "$TMP/$1"
	export RBK_HOME="$TMP/$1/home" RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	QP="$SANDBOX/qp"; mkdir -p "$QP/run"
	sandbox_state 's["exchange"] = {"positions": [{"symbol": "BTC/USDT", "qty": 0.01}, {"symbol": "ETH/USDT", "qty": -0.2}]}'
}
start_loop() { # the trading loop: a sleep whose pid is in the pid file; its exit status goes to run/loop.status
	local h=DFL; [ "${1:-}" = ignore_int ] && h=IGN # bash's background jobs ignore SIGINT unless it is reset
	rm -f "$QP/run/qp.pid" "$QP/run/loop.status"
	( "$PY" -c "import os,signal; signal.signal(signal.SIGINT, signal.SIG_$h); os.execvp('sleep', ['sleep', '60'])" &
	  echo $! >"$QP/run/qp.pid"; wait $!; echo $? >"$QP/run/loop.status" ) 2>/dev/null &
	LOOPSH=$!
	for _ in $(seq 250); do [ -s "$QP/run/qp.pid" ] && break; sleep 0.02; done
	LOOP=$(cat "$QP/run/qp.pid")
}
loop_alive() { # the loop runs (a zombie has exited)
	local st; [ -n "$LOOP" ] || return 1
	st=$(sed 's/.*) //' "/proc/$LOOP/stat" 2>/dev/null | cut -d' ' -f1); [ -n "$st" ] && [ "$st" != Z ]
}
reap() { # LOOP_RC: the loop's exit status (130: SIGINT, 137: SIGKILL); a loop still running is killed first
	[ -n "$LOOP" ] || return 0
	loop_alive && kill -9 "$LOOP" 2>/dev/null
	wait "$LOOPSH" 2>/dev/null; LOOP_RC=$(cat "$QP/run/loop.status" 2>/dev/null); LOOP=
}
run() { "$RBK" run alert-rollback -p prev_model_id=7 -p loop_pidfile="$QP/run/qp.pid" -p pause_grace=1s -p python="$EXTRA/python" \
	-p project_dir="$QP" -p exchange_url="$SANDBOX_URL/exchange" -p reason="test alert" "$@"; }
alerts() { "$PY" -c 'import json,sys; print("\n".join(a["text"] for a in json.load(open(sys.argv[1])).get("alerts", [])))' "$SANDBOX/state.json"; }
has_alert() { grep -q "$@" <<<"$(alerts)"; } # (not through a pipe: grep -q would close it early)
positions() { "$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["exchange"]["positions"]))' "$SANDBOX/state.json"; }

# --- Happy path, with the approval. ----------------------------------------------------------------
setup happy; start_loop
out=$(run 2>&1); rc=$?
[ $rc = 4 ] && "$RBK" show 1 | grep -q "state *approve" && ok "happy: the loop is paused first, then the run waits for the approval (exit 4)" || fail "happy: wait" "rc=$rc $out"
reap; [ "$LOOP_RC" = 130 ] && ok "happy: the trading loop died of SIGINT" || fail "happy: SIGINT" "exit status $LOOP_RC"
[ "$(positions)" = 2 ] && [ ! -e "$QP/champion" ] && ok "happy: nothing closed or restored before the approval" || fail "happy: early close" "$(positions)"
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 0 ] && [ "$(positions)" = 0 ] && ok "happy: approved, every position closed (OMS close_all), exit 0" || fail "happy: close" "rc=$rc $out $(positions)"
[ "$(cat "$QP/champion" 2>/dev/null)" = "7 runs/models.db runs/models" ] && grep -q "^python - (cwd=$QP)" "$SANDBOX/calls.log" \
	&& ok "happy: champion model 7 restored (promote_model)" || fail "happy: champion" "$(cat "$QP/champion" 2>&1)"
has_alert "ROLLED BACK (test alert, run 1): trading loop paused (pid [0-9]*, SIGKILL needed false), all positions closed, champion model 7 restored" \
	&& ok "happy: the rollback was reported" || fail "happy: alert" "$(alerts)"
sandbox_stop

# --- No approval asked; a loop that ignores SIGINT is killed after pause_grace. --------------------
setup noapproval; start_loop ignore_int
out=$(run -p require_approval=false 2>&1); rc=$?
reap; [ $rc = 0 ] && [ "$LOOP_RC" = 137 ] && [ "$(positions)" = 0 ] && [ -e "$QP/champion" ] && has_alert "SIGKILL needed true" \
	&& ok "no approval: loop ignoring SIGINT killed after the grace, closed, restored, exit 0" || fail "no approval" "rc=$rc $out $(alerts)"
sandbox_stop

# --- The close and restore are rejected: the loop stays paused, positions and model kept. ----------
setup reject; start_loop
run >/dev/null 2>&1
out=$("$RBK" reject 1 --comment "keep the hedge" 2>&1); rc=$?
reap; [ $rc = 1 ] && [ "$LOOP_RC" = 130 ] && [ "$(positions)" = 2 ] && [ ! -e "$QP/champion" ] && has_alert "rollback STOPPED after the pause (test alert, run 1): close/restore not approved; trading loop paused (ok), positions still open" \
	&& ok "rejected: loop paused, positions and model kept, alert, exit 1" || fail "rejected" "rc=$rc $out $(alerts)"
sandbox_stop

# --- close_all fails: the champion is still restored, the rollback is incomplete. -------------------
setup closefail; start_loop; touch "$QP/close.fail"
out=$(run -p require_approval=false 2>&1); rc=$?
[ $rc = 1 ] && [ "$(positions)" = 2 ] && [ -e "$QP/champion" ] && has_alert 'rollback INCOMPLETE (test alert, run 1): pause ok, close_all failed, positions left \[{"symbol": "BTC/USDT"' \
	&& ok "close_all fails: model still restored, positions reported, exit 1" || fail "close fails" "rc=$rc $out $(alerts)"
reap; sandbox_stop

# --- promote_model fails; no loop running (no pid file): the rest still runs. ----------------------
setup promotefail; touch "$QP/promote.fail"
out=$(run -p require_approval=false 2>&1); rc=$?
[ $rc = 1 ] && [ "$(positions)" = 0 ] && has_alert "pause ok, close_all ok, positions left \[\], champion 7 restore failed" \
	&& ok "promote fails (no loop running): positions closed, incomplete, exit 1" || fail "promote fails" "rc=$rc $out $(alerts)"
sandbox_stop
