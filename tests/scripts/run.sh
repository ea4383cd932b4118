#!/bin/bash
# The run commands, black box: rbk run / resume / approve / reject / abort
# against the runbooks in tests/fixtures/run, with a fresh RBK_HOME per test.
# Side effects are observed through the testkit ledger (one line per action
# execution: "IDEMPOTENCY_KEY LABEL"), exit codes, output, and the events in
# the store (read with tests/lib/storedb.py: $RBK_HOME/rbk.db, or the
# PostgreSQL store of RBK_STORE, a fresh schema per test).
. "$(dirname "$0")/lib.bash"
FX="$RBK_ROOT/tests/fixtures/run"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins"
unset RBK_CRASH_POINT RBK_TEST_TOKEN RBK_TEST_REGION RBK_PATH

# --- helpers ---------------------------------------------------------------
cat >"$TMP/db.py" <<'PY'
import json, os, sys, storedb
db = storedb.connect(timeout=5, missing_ok=True)
def one(sql, *a):
    r = db.execute(sql, a).fetchone() if db else None
    return r[0] if r else None
def rows(sql, *a): return [list(r) for r in db.execute(sql, a)] if db else []
def nruns(): return one("select count(*) from runs") or 0
def status(run=1): return one("select status from runs where id=?", run)
def ev(kind, run=None):
    return [d for (_, _, _, k, d) in storedb.timeline(db, run) if k == kind] if db else []
def fin(run=1):
    e = ev("run_finished", run)
    return e[-1] if e else {}
def step(state, run=1):
    for e in reversed(ev("step_finished", run)):
        if e["state"] == state: return e["result"]
    return {}
def kinds(run=1): return [k for (_, _, _, k, _) in storedb.timeline(db, run)] if db else []
def at(kind, state=None, run=1):
    """When the run's events of kind (of state) were recorded, in seconds."""
    from datetime import datetime, timezone
    return [datetime.strptime(a, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
            for (_, _, a, k, d) in (storedb.timeline(db, run) if db else []) if k == kind and (state is None or d.get("state") == state)]
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))
PY
py() { python3 "$TMP/db.py" "$1" 2>&1; }
# waitfor EXPR SECONDS: poll until the python expression is true
waitfor() {
	local i n=$(($2 * 20))
	for ((i = 0; i < n; i++)); do
		[[ $(py "$1") == true ]] && return 0
		sleep 0.05
	done
	return 1
}
new() { # a fresh home (and store) and ledger
	H=$(mktemp -d "$TMP/h.XXXXXX")
	export RBK_HOME=$H
	fresh_store
	L=$H/ledger
}
san() { grep -q 'Sanitizer\|runtime error:' "$1" 2>/dev/null && cat "$1" >&2; return 0; }
r() { # r ARGS...: run rbk, RC OUT ERR
	{ "$RBK" "$@" >"$H/out" 2>"$H/err"; } 2>/dev/null # no "Killed" notice for crash points
	RC=$?
	OUT=$(<"$H/out")
	ERR=$(<"$H/err")
	san "$H/err"
}
bg() { # bg NAME ARGS...: start rbk in the background; pid in BG, output in $H/NAME.out/err
	local n=$1
	shift
	"$RBK" "$@" >"$H/$n.out" 2>"$H/$n.err" &
	BG=$!
}
bgwait() { # bgwait PID NAME: its exit code in BRC
	{ wait "$1"; } 2>/dev/null
	BRC=$?
	san "$H/$2.err"
}
why() { printf 'exit %s; out: %s; err: %s' "$RC" "$(tail -3 "$H/out" 2>/dev/null)" "$(tail -3 "$H/err" 2>/dev/null)" | tr '\n' ' '; }
ledger() { cat "$L" 2>/dev/null | tr '\n' ';'; }
labels() { cut -d' ' -f2- "$L" 2>/dev/null | tr '\n' ';'; }
now() { date +%s%3N; }
t() { # t STATUS NAME WHY: STATUS is the exit status of the test just made ($? first, before any $(...))
	if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi
}

# --- state kinds: action, decision with guards and else, wait, end ----------
new
s=$(now)
r run "$FX/kinds.yaml" -p ledger="$L"
el=$(($(now) - s))
[[ $RC == 0 && $(labels) == "first;a;" && $(py 'status()') == succeeded ]]
t $? "action, decision (first guard) and end success: exit 0, succeeded" "$(why) ledger $(ledger)"
[[ $el -ge 300 && $(py 'len(ev("wait_started"))') == 1 ]]
t $? "a wait state waits its duration (300ms) and records wait_started" "elapsed ${el}ms; $(py 'kinds()')"

# --- a loop of pure states: its events recorded in batches, each one still read -----------------
new
cat >"$H/loop.yaml" <<'Y'
rbk: 1
name: loop
vars: {n: 0}
start: inc
states:
  inc:
    set: {n: vars.n + 1}
    next: [{to: check}]
  check:
    next:
      - {if: vars.n < 1500, to: inc}
      - to: done
  done: {end: success}
Y
r run "$H/loop.yaml"
rows=$(py 'one("select count(*) from events where run_id=1")')
"$RBK" log 1 --json >"$H/log.json" 2>&1
parts=$(python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
t = [e for e in ev if e["kind"] == "transition"]
# parts of one batch count 1, 2, ... in order, and share its seq
ok = all((a["seq"], a.get("part", 0) + 1) == (b["seq"], b.get("part")) or (b["seq"] > a["seq"] and b.get("part", 1) == 1)
         for a, b in zip(ev, ev[1:]))
print(len(t), sum(1 for e in ev if e["kind"] == "vars_set"), ok, t[-1]["data"]["to"])' "$H/log.json" 2>&1)
[[ $RC == 0 && $rows -lt 60 && $parts == "3000 1501 True done" && $(py 'len(ev("transition"))') == 3000 ]]
t $? "3,000 transitions of a loop of decisions are stored in $rows rows; rbk log --json shows each, in order, with its part" \
	"$(why) rows $rows; transitions, vars_set, parts in order, last: $parts"
OUT=$("$RBK" replay 1 2>&1)
[[ $? == 0 && $OUT == *", 0 divergences"* ]] && "$RBK" verify >/dev/null 2>&1
t $? "the batched run replays with no divergence and its chain verifies" "$OUT"
python3 - <<'PY'
import json, storedb
db = storedb.connect()
storedb.unprotect(db)
seq, data = db.execute("select seq, data from events where kind='batch' order by seq limit 1").fetchone()
d = json.loads(data)
d["events"][5]["data"]["to"] = "done"
db.execute("update events set data=? where seq=?", (json.dumps(d, separators=(",", ":")), seq))
db.commit()
PY
OUT=$("$RBK" verify 2>&1)
[[ $? == 1 && $OUT == *"modified"* ]]
t $? "a transition changed inside a batch breaks the chain: rbk verify exit 1" "$OUT"

new
r run "$FX/kinds.yaml" -p ledger="$L" -p mode=b
[[ $RC == 0 && $(labels) == "first;b;" &&
	$(py '[(e["branch"], e["guard"]) for e in ev("transition") if e["from"] == "route"]') == '[[1,"params.mode == '"'b'"'"]]' ]]
t $? "a decision takes the first true guard and records branch and guard" "$(why) $(py 'ev("transition")')"

new
r run "$FX/kinds.yaml" -p ledger="$L" -p mode=c
[[ $RC == 1 && $(labels) == "first;else;" && $(py 'status()') == failed &&
	$(py '[(e["branch"], e["guard"]) for e in ev("transition") if e["from"] == "route"]') == '[[2,null]]' ]]
t $? "no guard true: the else branch is taken; end failure -> exit 1, failed" "$(why) $(py 'ev("transition")')"

# --- next with no match ------------------------------------------------------
new
r run "$FX/nomatch.yaml" -p ledger="$L"
[[ $RC == 1 && $(py 'status()') == failed && $(py 'fin()["reason"]') == *"no transition matched"* && ! -e $L &&
	$OUT == *"no transition matched"* ]]
t $? "a decision with no match and no else fails: 'no transition matched', run failed" "$(why)"
new
r run "$FX/nomatch.yaml" -p ledger="$L" -p where=action
[[ $RC == 1 && $(py 'fin()["reason"]') == *"no transition matched"* && ! -e $L ]]
t $? "an action's guarded next with no match fails the step: 'no transition matched'" "$(why)"

# --- failure edges ---------------------------------------------------------
new
r run "$FX/edges.yaml" -p ledger="$L" -p which=state
[[ $RC == 0 && $(labels) == "own_handler own failure;" &&
	$(py '[e["to"] for e in ev("transition") if e["from"] == "own_edge" and e["via"] == "failure"]') == '["own_handler"]' ]]
t $? "on_failure: STATE follows the state's own failure edge (via failure)" "$(why) $(ledger)"
new
r run "$FX/edges.yaml" -p ledger="$L" -p which=default
[[ $RC == 0 && $(labels) == "handler default failure;" ]]
t $? "without its own on_failure a step follows the runbook default edge" "$(why) $(ledger)"
new
r run "$FX/edges.yaml" -p ledger="$L" -p which=fail
[[ $RC == 1 && $(py 'status()') == failed && ! -e $L && $(py 'fin()["reason"]') == *"explicit failure"* ]]
t $? "on_failure: fail overrides the runbook default and ends the run failed" "$(why) $(ledger)"

# --- rollback ----------------------------------------------------------------
new
r run "$FX/rollback.yaml" -p ledger="$L"
[[ $RC == 3 && $(py 'status()') == rolled_back ]]
t $? "on_failure: rollback ends the run rolled_back, exit 3" "$(why)"
[[ $(labels) == "do1;do2;do3;undo3;undo2;undo1;" ]]
t $? "rollback runs the undos newest first, once each" "$(ledger)"
[[ $(py '[e["state"] for e in ev("undo_started")]') == '["three","two","one"]' &&
	$(py '[e["status"] for e in ev("undo_finished")]') == '["ok","ok","ok"]' && $(py 'len(ev("rollback_started"))') == 1 ]]
t $? "each undo is checkpointed (undo_started/undo_finished); a step without undo is skipped" "$(py 'kinds()')"
[[ $(py '[e["key"] for e in ev("undo_started")]') == '["1:three:2","1:two:2","1:one:2"]' ]]
t $? "an undo runs under its own idempotency key (a new attempt)" "$(py 'ev("undo_started")')"

new
r run "$FX/rollback.yaml" -p ledger="$L" -p undo_fail=true
[[ $RC == 1 && $(py 'status()') == failed ]]
t $? "an undo that fails ends the run failed, exit 1" "$(why) $(py 'fin()')"
[[ $(labels) == "do1;do2;do3;undo3;undo2;" ]]
t $? "after a failed undo the older undos do not run" "$(ledger)"
[[ $(py 'fin().get("reason") or ""') == *"undos not run: one"* ]]
t $? "a failed undo's message lists the undos not run" "$(py 'fin()')"

# --- retry ---------------------------------------------------------------------
new
s=$(now)
r run "$FX/retry.yaml" -p ledger="$L" -p counter="$H/count"
el=$(($(now) - s))
[[ $RC == 1 && $(cat "$H/count") == 4 ]]
t $? "retry attempts: 4 tries the action exactly 4 times in all" "$(why) count $(cat "$H/count")"
[[ $(labels) == "failed after 4;" ]]
t $? "steps.S.attempts counts the tries (the failure edge sees 4)" "$(ledger)"
[[ $(py 'rows("select attempt, status from steps where state=? order by attempt", "flaky")') == '[[1,"failed"],[2,"failed"],[3,"failed"],[4,"failed"]]' ]]
t $? "every try is its own step row with its own attempt number" "$(py 'rows("select * from steps")')"
[[ $(py '[e["delay_ms"] for e in ev("step_retry")]') == "[100,200,250]" ]]
t $? "step_retry delays follow delay 100ms, backoff 2, capped by max_delay 250ms" "$(py 'ev("step_retry")')"
[[ $el -ge 550 ]]
t $? "the retry delays are really waited (>= 550ms in all)" "elapsed ${el}ms"
new
r run "$FX/retry.yaml" -p ledger="$L" -p counter="$H/count" -p succeed_on=2
[[ $RC == 0 && $(labels) == "ok after 2;" && $(py 'len(ev("step_retry"))') == 1 && $(py 'step("flaky")["attempts"]') == 2 ]]
t $? "a retry that succeeds continues on next; attempts is 2" "$(why) $(ledger)"

# --- timeout ---------------------------------------------------------------------
new
s=$(now)
r run "$FX/timeout.yaml" -p ledger="$L"
el=$(($(now) - s))
[[ $RC == 1 && $(labels) == *"timed out"* ]]
t $? "timeout: a shell.exec sleep past its per-attempt timeout fails with a timeout message" "$(why) $(ledger)"
[[ $el -lt 4000 && $(py 'rows("select attempt, status from steps where state=? order by attempt", "slow")') == '[[1,"failed"],[2,"failed"]]' ]]
t $? "each retry attempt gets its own timeout; the sleep is killed (well under 20s)" "elapsed ${el}ms $(py 'rows("select * from steps")')"
new
s=$(now)
r run "$FX/timeout.yaml" -p ledger="$L" -p hang=true
el=$(($(now) - s))
[[ $RC == 1 && $(labels) == *"timed out"* && $el -lt 9000 ]]
t $? "an action that ignores SIGTERM is killed at its timeout; the failure edge follows" "$(why) ${el}ms $(ledger)"

# --- poll ------------------------------------------------------------------------
new
echo waiting >"$H/flag"
(sleep 0.7 && echo ready >"$H/flag") &
s=$(now)
r run "$FX/poll.yaml" -p flag="$H/flag"
el=$(($(now) - s))
wait
[[ $RC == 0 && $(py 'status()') == succeeded && $el -ge 600 && $el -lt 5000 ]]
t $? "poll re-runs the action until the guard holds (file turns 'ready')" "$(why) ${el}ms"
# How many tries fit in the 0.7 s depends on how fast rbk started (a loaded
# machine), so at least one re-run: one step_poll, two attempts.
[[ $(py 'len(ev("step_poll"))') -ge 1 && $(py 'step("patient")["stdout"]') == ready && $(py 'step("patient")["attempts"]') -ge 2 &&
	$(py 'step("patient")["attempts"]') == $(( $(py 'len(ev("step_poll"))') + 1 )) ]]
t $? "poll records step_poll events and the last run's outputs" "$(py 'step("patient")')"
new
echo waiting >"$H/flag"
s=$(now)
r run "$FX/poll.yaml" -p flag="$H/flag" -p short=true
el=$(($(now) - s))
[[ $RC == 1 && $(py 'status()') == failed && $(py 'fin()["reason"]') == *"still false"* && $el -ge 500 && $el -lt 4000 ]]
t $? "poll gives up when 'for' runs out: the step fails, run failed" "$(why) ${el}ms $(py 'fin()')"
[[ $(py 'len(ev("step_poll"))') -ge 3 ]]
t $? "a poll that gives up has tried every 'every' (several step_poll events)" "$(py 'len(ev("step_poll"))')"

# --- set, vars, templates -----------------------------------------------------------
new
r run "$FX/set.yaml"
[[ $RC == 0 && $(py 'status()') == succeeded ]]
t $? "set: guards read the assigned variables (count, doubled, plus_one, seen, note)" "$(why)"
[[ $(py 'ev("vars_set")[0]["vars"]') == '{"count":7,"seen":true,"n":42,"note":"counted"}' ]]
t $? "vars_set records typed values (int from int(), bool, int arithmetic, string literal)" "$(py 'ev("vars_set")')"
[[ $(py 'step("show")["out"]["value"]') == 42 && $(py 'type(step("show")["out"]["value"]).__name__') == int ]]
t $? "an int stays an int through a lone \"{{ vars.n }}\"" "$(py 'step("show")')"
[[ $(py 'step("show")["out"]["message"]') == "n=42" && $(py 'ev("vars_set")[1]["vars"]') == '{"doubled":84,"plus_one":43}' ]]
t $? "text around {{ }} makes a string; a step's int output adds as an int" "$(py 'step("show")') $(py 'ev("vars_set")')"
[[ $(py 'step("again")["out"]["value"]') == '["ops",2,true]' &&
	$(py 'step("again")["out"]["message"]') == 't=["ops",2,true] f=true z= x12 r=0.75' ]]
t $? "templates joined as text: list as JSON, bool, null empty, {{1}}{{2}} -> 12" "$(py 'step("again")')"
new
r run "$FX/vars.yaml"
[[ $RC == 0 && $(py 'step("show").get("out", {}).get("value")') == 42 && $(py 'step("lists").get("out", {}).get("value")') == '["ops","nightly"]' ]]
t $? "top-level vars (a literal list and a typed template) are readable as vars.X" "$(why)"

# --- params ------------------------------------------------------------------------
new
RBK_TEST_REGION=eu r run "$FX/params.yaml" -p name=abc -p ratio=0.25 -p verbose=true -p port=443
[[ $RC == 0 && $(py 'step("show")["out"]["value"][:6]') == '["abc",443,0.25,true,"check","eu"]' ]]
t $? "params are typed (string, int, number, bool, enum default) and env: is read" "$(why) $(py 'step("show")')"
[[ $(py 'json.loads(one("select params_json from runs where id=1"))["port"]') == 443 && $(py 'len(step("show")["out"]["value"])') == 7 ]]
t $? "the run records its typed params" "$(py 'rows("select params_json from runs")')"
badparam() { # badparam NAME WANT ARGS...
	local name=$1 want=$2
	shift 2
	new
	r run "$FX/params.yaml" "$@"
	[[ $RC == 2 && $ERR == *"$want"* && $(py 'nruns()') == 0 ]]
	t $? "bad param ($name): exit 2, message, no run created" "$(why) runs $(py 'nruns()')"
}
badparam "int not a number" "param 'port' (-p): 'abc' is not an int" -p name=x -p port=abc
badparam "int below min" "0 is below the minimum 1" -p name=x -p port=0
badparam "int above max" "70000 is above the maximum 65535" -p name=x -p port=70000
badparam "number above max" "param 'ratio'" -p name=x -p ratio=1.5
badparam "pattern" "'ABC' does not match the pattern" -p name=ABC
badparam "pattern is whole-value" "'abc1' does not match the pattern" -p name=abc1
badparam "enum" "'other' is not one of check, repair" -p name=x -p mode=other
badparam "bool" "param 'verbose'" -p name=x -p verbose=maybe
badparam "duration" "param 'grace'" -p name=x -p grace=10seconds
badparam "required missing" "param 'name' is required"
badparam "unknown param" "has no param 'nope'" -p name=x -p nope=1
badparam "no '='" "name=value" -p name=x -p port
new
RBK_TEST_REGION=EU r run "$FX/params.yaml" -p name=abc
[[ $RC == 0 && $(py 'step("show")["out"]["value"][5]') == EU ]]
t $? "a value from env: is used when -p does not give it" "$(why)"

# --- secrets -------------------------------------------------------------------------
SECRET=s3cr3t-XyZ-4711
new
RBK_TEST_TOKEN=$SECRET r run "$FX/secret.yaml"
[[ $RC == 0 ]]
t $? "a run with a secret param from env succeeds" "$(why)"
! grep -rqaF "$SECRET" $(store_files "$H") "$H"/owners 2>/dev/null && [[ $(py 'one("select count(*) from events where data like ?", "%'"$SECRET"'%")') == 0 ]]
t $? "the secret appears nowhere in the store (db bytes, events)" "$(grep -rlaF "$SECRET" "$H")"
[[ $OUT$ERR != *"$SECRET"* && $OUT == *"denied for ***"* ]]
t $? "the secret is not in rbk's stdout/stderr (masked as ***)" "$(why)"
[[ $(py 'step("use")["stdout"]') == 'token is ***' && $(py 'step("use")["stderr"]') == 'err ***' ]]
t $? "recorded step output that echoed the secret shows ***" "$(py 'step("use")')"
[[ $(py 'step("deny")["error"]') == "denied for ***" && $(py 'ev("step_started")[1]["params"]["message"]') == "***" &&
	$(py 'json.loads(one("select params_json from runs"))["tok"]') == '***' ]]
t $? "rendered params, errors and the run's params mask the secret" "$(py 'ev("step_started")')"
new
r run "$FX/secret.yaml" -p tok=$SECRET
! grep -rqaF "$SECRET" "$H" $(on_pg && store_files) && [[ $RC == 0 ]]
t $? "a secret given with -p is masked everywhere too" "$(why) $(grep -rlaF "$SECRET" "$H")"

# --- lock ------------------------------------------------------------------------------
new
r run "$FX/lock.yaml" -p ledger="$L"
[[ $RC == 4 && $(py 'one("select lock_key from runs where id=1")') == deploy-prod ]]
t $? "a run holding lock deploy-{{ params.env_name }} waits for approval (exit 4)" "$(why)"
r run "$FX/lock.yaml" -p ledger="$L" -p ask=false
[[ $RC == 1 && $ERR == *"lock 'deploy-prod' is held by run 1"* && $(py 'nruns()') == 1 && ! -e $L ]]
t $? "a second run with the same lock key is refused (exit 1, names the holder), nothing runs" "$(why)"
r run "$FX/lock.yaml" -p ledger="$L" -p ask=false -p env_name=dev
[[ $RC == 0 && $(labels) == "work 2;" ]]
t $? "another lock key is not blocked" "$(why) $(ledger)"
bg wl run "$FX/lock.yaml" -p ledger="$L" -p ask=false --wait-lock
wlpid=$BG
for i in $(seq 100); do grep -q 'waiting for lock' "$H/wl.out" "$H/wl.err" 2>/dev/null && break; sleep 0.05; done
sleep 0.3
kill -0 $wlpid 2>/dev/null && [[ $(labels) == "work 2;" ]]
t $? "--wait-lock waits while the holder is waiting for approval" "$(cat "$H/wl.out" "$H/wl.err" | tr '\n' ' ')"
r approve 1
bgwait $wlpid wl
[[ $RC == 0 && $BRC == 0 && $(labels) == "work 2;work 1;work 3;" ]]
t $? "--wait-lock proceeds once the holder ends (approved from another process)" "approve $RC, waiter $BRC; $(ledger)"
r run "$FX/lock.yaml" -p ledger="$L" -p ask=false
[[ $RC == 0 ]]
t $? "the lock is free after its runs ended" "$(why)"

# --- dry run ---------------------------------------------------------------------------
new
r run "$FX/dryrun.yaml" -p ledger="$L" --dry-run
[[ $RC == 0 && ! -e $L && $(py 'one("select dry_run from runs where id=1")') == 1 && $(py 'status()') == succeeded ]]
t $? "--dry-run runs nothing (ledger untouched) and is recorded as a dry run" "$(why)"
[[ $OUT == *testkit.ledger*"$L"*"dry=true"* && $OUT == *shell.exec*'"exit 1"'* ]]
t $? "--dry-run prints each action with its rendered params" "$(why)"
[[ $OUT == *took-good-branch* && $OUT != *took-bad-branch* ]]
t $? "--dry-run uses the step's dry_run outputs for the guards" "$(why)"

# --- approval ----------------------------------------------------------------------------
new
r run "$FX/approval.yaml" -p ledger="$L"
[[ $RC == 4 && $(py 'status()') == waiting && $OUT == *"rbk approve 1"* && ! -e $L ]]
t $? "an approval waits: exit 4, status waiting, says how to approve" "$(why)"
[[ $(py 'ev("approval_requested")[0]["prompt"]') == "Proceed with run 1?" ]]
t $? "the approval prompt is rendered and recorded" "$(py 'ev("approval_requested")')"
r approve 1 --comment "looks fine"
[[ $RC == 0 && $(py 'status()') == succeeded && $(labels) == "approved;" ]]
t $? "approve continues the run to its end (exit 0)" "$(why) $(ledger)"
[[ $(py '[(e["decision"], e["by"], e["comment"]) for e in ev("approval_decided")]') == "[[\"approved\",\"$(principal)\",\"looks fine\"]]" ]]
t $? "the approval is recorded with who (the OS user, $(principal)) and the comment" "$(py 'ev("approval_decided")')"
r approve 1
[[ $RC != 0 && $ERR == *"has ended"* ]]
t $? "approving a run that has ended is refused" "$(why)"
new
r run "$FX/approval.yaml" -p ledger="$L"
r reject 1 --comment no
[[ $RC == 1 && $(labels) == "rejected;" && $(py 'status()') == failed &&
	$(py '[e["to"] for e in ev("transition") if e["via"] == "failure"]') == '["rejected"]' ]]
t $? "reject follows the failure edge" "$(why) $(ledger)"
new
r run "$FX/approval.yaml" -p ledger="$L" -p why=true
r reject 1
[[ $(labels) == "rejected;why: failed "* ]]
t $? "after a rejection steps.ask.status is 'failed' (with an error)" "$(why) $(ledger)"
# approvers: and distinct: need several people: tests/scripts/actor.sh runs
# rbk as several operating-system users.

# --- wait: durable across kill -9; resume of a live run refused ---------------------------
new
s=$(now)
bg w run "$FX/wait.yaml" -p ledger="$L"
wpid=$BG
waitfor 'len(ev("wait_started")) == 1' 5
sleep 0.3
r resume 1
[[ $RC != 0 && $ERR == *"live process"* ]]
t $? "resume of a run owned by a live process is refused" "$(why)"
sleep $(awk -v e=$(($(now) - s)) 'BEGIN { d = (1000 - e) / 1000; print (d > 0 ? d : 0) }')
kill -9 $wpid
bgwait $wpid w
[[ $BRC == 137 && $(py 'status()') != succeeded ]]
t $? "kill -9 during a wait leaves the run unfinished" "exit $BRC status $(py 'status()')"
sleep 1
r resume 1
[[ $RC == 0 && $(labels) == "before;after;" ]]
t $? "the wait resumes after kill -9 and the run finishes" "$(why) $(ledger)"
# On the record's clock: the next step starts 3s after the wait began, or
# at once when the resume itself came later (a slow machine), never 3s
# after the resume (a wait started over).
waited=$(py 'round((at("step_started", "after")[-1] - at("wait_started")[0]) * 1000)')
late=$(py 'round((at("step_started", "after")[-1] - at("run_status")[-1]) * 1000)')
[[ $waited -ge 2950 && ($waited -lt 3900 || $late -lt 900) ]]
t $? "a durable wait: 3s in all across the kill (not restarted)" "waited ${waited}ms, ${late}ms after the resume"

# --- SIGINT and SIGTERM during a wait ----------------------------------------------------
for sig in INT TERM; do
	new
	bg s run "$FX/wait-short.yaml" -p ledger="$L"
	spid=$BG
	waitfor 'len(ev("wait_started")) == 1' 5
	s=$(now)
	kill -$sig $spid
	bgwait $spid s
	el=$(($(now) - s))
	[[ $BRC == 5 && $(py 'status()') == interrupted && $el -lt 1500 && ! -e $L ]]
	t $? "SIG$sig during a wait: exit 5 promptly, status interrupted" "exit $BRC ${el}ms status $(py 'status()') $(tr '\n' ' ' <"$H/s.out")"
	r resume 1
	[[ $RC == 0 && $(labels) == "after;" && $(py 'status()') == succeeded ]]
	t $? "resume after SIG$sig finishes the run" "$(why)"
done

# --- call --------------------------------------------------------------------------------
new
r run "$FX/call-parent.yaml" -p ledger="$L"
[[ $RC == 0 && $(labels) == "parent-pre;child 2;parent-post;" ]]
t $? "call: the child runs, the parent continues on success" "$(why) $(ledger)"
[[ $(py 'rows("select id, runbook, status, parent_run, parent_state from runs order by id")') == '[[1,"call-parent","succeeded",null,null],[2,"call-child","succeeded",1,"sub"]]' &&
	$(py 'ev("call_started", 1)') == '[{"state":"sub","child":2}]' ]]
t $? "call: the child run records its parent and state; call_started names the child" "$(py 'rows("select id, runbook, status, parent_run, parent_state from runs")')"
new
r run "$FX/call-parent.yaml" -p ledger="$L" -p outcome=fail
[[ $RC == 1 && $(py 'status(2)') == failed && $(labels) == "parent-pre;parent-handle "*"run 2"*failed";" ]]
t $? "call: a failed child fails the step; the parent follows its failure edge" "$(why) $(ledger)"
new
r run "$FX/call-parent.yaml" -p ledger="$L" -p outcome=ask
[[ $RC == 4 && $(py 'status(1)') == waiting && $(py 'status(2)') == waiting && $(labels) == "parent-pre;" ]]
t $? "call: a child waiting for approval makes the parent wait (exit 4)" "$(why) $(py 'rows("select id,status from runs")')"
r approve 2
[[ $RC == 0 && $(py 'status(2)') == succeeded && $(py 'status(1)') == succeeded && $(labels) == "parent-pre;child 2;parent-post;" ]]
t $? "call: approving the child continues the parent to its end" "$(why) $(ledger)"

# --- kill -9 during a step ------------------------------------------------------------------
new
K9=$H
bg k run "$FX/interrupt.yaml" -p ledger="$L" -p sleep=2500
kpid=$BG
waitfor 'any(e["state"] == "work" for e in ev("step_started"))' 5
sleep 0.2
kill -9 $kpid
bgwait $kpid k
k9t=$(now)
r resume 1
[[ $RC == 4 && $(py 'status()') == needs_attention && $OUT$ERR == *"--retry-step"* ]]
t $? "kill -9 during a non-idempotent step: resume stops in needs_attention (exit 4)" "kill $BRC; $(why)"
r resume 1
[[ $RC == 4 && $(labels) == "before;" ]]
t $? "a plain resume does not run the interrupted step again" "$(why) $(ledger)"
r resume 1 --mark-step success
[[ $RC == 0 && $(labels) == "before;after;" && $(py 'status()') == succeeded ]]
t $? "--mark-step success continues on the success edge without running the step" "$(why) $(ledger)"
[[ $(py '[(e["decision"], e["state"]) for e in ev("operator_decided")]') == '[["success","work"]]' && $(py 'ev("operator_decided")[0]["by"]') != "" ]]
t $? "the operator's decision is recorded with who decided" "$(py 'ev("operator_decided")')"

new
RBK_CRASH_POINT=step.after_start:2 r run "$FX/interrupt.yaml" -p ledger="$L"
r resume 1
r resume 1 --mark-step failure
[[ $RC == 1 && $(labels) == "before;handle;" && $(py '[e["decision"] for e in ev("operator_decided")]') == '["failure"]' ]]
t $? "--mark-step failure follows the failure edge" "$(why) $(ledger)"
new
RBK_CRASH_POINT=step.after_start:2 r run "$FX/interrupt.yaml" -p ledger="$L"
[[ $RC == 137 && $(labels) == "before;" ]]
t $? "a crash right after step_started leaves the step in flight (not run)" "$(why) $(ledger)"
r resume 1
r resume 1 --retry-step
[[ $RC == 0 && $(ledger) == "1:before:1 before;1:work:2 work;1:after:1 after;" ]]
t $? "--retry-step runs the step again with a new attempt (new key)" "$(why) $(ledger)"
new
RBK_CRASH_POINT=action.returned:2 r run "$FX/interrupt.yaml" -p ledger="$L" -p idem=true
r resume 1
[[ $RC == 0 && $(ledger) == "1:before:1 before;1:work_idem:1 work_idem;1:work_idem:1 work_idem;1:after:1 after;" ]]
t $? "kill -9 in an idempotent step: resume re-runs it with the same key" "$(why) $(ledger)"
[[ $(py '[e["key"] for e in ev("step_started") if e["state"] == "work_idem"]') == '["1:work_idem:1","1:work_idem:1"]' && $(py 'len(ev("operator_decided"))') == 0 ]]
t $? "the idempotent re-run needs no operator and reuses the key in step_started" "$(py 'ev("step_started")')"

# --- abort -------------------------------------------------------------------------------
new
r run "$FX/abort.yaml" -p ledger="$L"
r abort 1
[[ $RC == 1 && $(py 'status()') == aborted && $(labels) == "do1;" && $(py 'ev("abort_requested")[0]["rollback"]') == false ]]
t $? "abort of a waiting run: aborted, nothing more runs, no undo" "$(why) $(ledger)"
r approve 1
[[ $RC != 0 && $(labels) == "do1;" ]]
t $? "an aborted run cannot be approved afterwards" "$(why)"
new
r run "$FX/abort.yaml" -p ledger="$L"
r abort 1 --rollback
[[ $RC == 3 && $(py 'status()') == rolled_back && $(labels) == "do1;undo1;" ]]
t $? "abort --rollback runs the undos and ends rolled_back (exit 3)" "$(why) $(ledger)"

# --- a crashing plugin action ----------------------------------------------------------------
new
r run "$FX/crash.yaml" -p ledger="$L"
[[ $RC == 1 && $(labels) == "after failed: "*"killed by signal 11"* ]]
t $? "a crashing action (SIGSEGV) fails its step with 'killed by signal 11'" "$(why) $(ledger)"
[[ $(py '[(e["from"], e["to"], e["via"]) for e in ev("transition")]') == '[["boom","after","failure"],["after","failed","next"]]' ]]
t $? "after the crash the engine continues on the failure edge" "$(py 'ev("transition")')"

# --- --json ----------------------------------------------------------------------------------
new
r run "$FX/kinds.yaml" -p ledger="$L" --json
[[ $RC == 0 && $(tail -1 "$H/out") == '{"run": 1, "status": "succeeded"}' ]]
t $? "run --json ends with {\"run\": N, \"status\": \"succeeded\"}" "$(why)"
r run "$FX/approval.yaml" -p ledger="$L" --json
j=$(tail -1 "$H/out")
[[ $RC == 4 && $(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["run"], d["status"])' "$j") == "2 waiting" ]]
t $? "run --json of a waiting run: valid JSON, status waiting" "$(why)"

# The engine killed mid-action above: its action (sleeping 2.5s) must have died
# with it, so no late ledger line ever appears.
L=$K9/ledger
left=$((k9t + 2900 - $(now)))
((left > 0)) && sleep "$(awk -v m=$left 'BEGIN { print m / 1000 }')"
[[ $(labels) == "before;after;" ]]
t $? "the action of an engine killed with -9 dies with it (no late side effect)" "$(ledger)"
