#!/bin/bash
# The scheduler, black box: `rbk scheduler --once --now T` decides what a
# daemon tick at T would (fire, miss, skip, queue) and waits for the runs it
# starts; the daemon itself is checked for its store lock, SIGHUP and SIGTERM.
# Each test has a fresh RBK_HOME and its own RBK_PATH directory holding copies
# of the runbooks in tests/fixtures/sched. Decisions are read from the store
# (table fires, table meta, runs) with tests/lib/storedb.py (SQLite in the
# home, or PostgreSQL: a fresh schema per test). On PostgreSQL, a shared
# store, what docs/scale-out.md ("Schedules") says differs is checked as it
# says: fires create queued runs (an agent executes them here), and a new
# leader fires the claims its predecessor left, where SQLite's scheduler
# records stale claims as failed.
. "$(dirname "$0")/lib.bash"
FX="$RBK_ROOT/tests/fixtures/sched"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins"
unset RBK_CRASH_POINT RBK_PATH

# --- helpers ---------------------------------------------------------------
cat >"$TMP/db.py" <<'PY'
import json, os, sys, storedb
db = storedb.connect(timeout=5, missing_ok=True)
def one(sql, *a):
    r = db.execute(sql, a).fetchone() if db else None
    return r[0] if r else None
def rows(sql, *a): return [list(r) for r in db.execute(sql, a)] if db else []
def fires(rb=None):
    """[nominal, outcome, note] of the fires of runbook rb (all when None), oldest first"""
    q = "select runbook, nominal, outcome, note from fires" + (" where runbook=?" if rb else "") + " order by nominal, id"
    return [r[1:] if rb else r for r in rows(q, *((rb,) if rb else ()))]
def outcomes(rb): return [r[1] for r in fires(rb)]
def fire(rb, nominal):
    r = rows("select id, outcome, run_id, note from fires where runbook=? and nominal=?", rb, nominal)
    return dict(zip(["id", "outcome", "run", "note"], r[0])) if r else {}
def nruns(): return one("select count(*) from runs") or 0
def status(run): return one("select status from runs where id=?", run)
def meta(k): return one("select value from meta where key=?", k)
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))
PY
py() { python3 "$TMP/db.py" "$1" 2>&1; }
new() { # new RUNBOOK-FILE...: a fresh home and a path directory with these runbooks
	H=$(mktemp -d "$TMP/h.XXXXXX")
	export RBK_HOME=$H/home RBK_PATH=$H/path
	mkdir -p "$RBK_PATH"
	fresh_store
	local f
	for f in "$@"; do cp "$FX/$f" "$RBK_PATH/"; done
}
san() { grep -q 'Sanitizer\|runtime error:' "$1" 2>/dev/null && cat "$1" >&2; return 0; }
r() { # r ARGS...: run rbk, RC OUT ERR
	{ "$RBK" "$@" >"$H/out" 2>"$H/err"; } 2>/dev/null
	RC=$?
	OUT=$(<"$H/out")
	ERR=$(<"$H/err")
	san "$H/err"
}
# once ISO [ARGS...]: a tick at ISO. On PostgreSQL (a shared store) a fire
# creates its run queued for an agent (docs/scale-out.md, "Schedules"), so
# an agent executes what the tick queued, as the scheduler itself does on
# SQLite: the runs are then where they are on SQLite.
once() {
	r scheduler --once --now "$@"
	on_pg && agent_once
	return 0
}
# (--concurrency: every queued run at once; with the default 4, four runs
# waiting for an approval hide the queued ones from the agent.)
agent_once() { "$RBK" agent --once --concurrency 1000 >>"$H/agent.out" 2>>"$H/agent.err"; san "$H/agent.err"; }
why() { printf 'exit %s; out: %s; err: %s' "$RC" "$(tail -4 "$H/out" 2>/dev/null)" "$(tail -3 "$H/err" 2>/dev/null)" | tr '\n' ' '; }
t() { # t STATUS NAME WHY: STATUS is $? of the test just made
	if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi
}
# waitline FILE REGEX SECONDS: poll until a line of FILE matches
waitline() {
	local i n=$(($3 * 20))
	for ((i = 0; i < n; i++)); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
# waitexit PID SECONDS: poll until the process is gone (it is our child: reaped by bgwait)
waitexit() {
	local i n=$(($2 * 20))
	for ((i = 0; i < n; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}
bgwait() { # bgwait PID NAME: its exit code in BRC
	{ wait "$1"; } 2>/dev/null
	BRC=$?
	san "$H/$2.err"
}

# --- 2. decisions of one tick ------------------------------------------------
# An entry due now fires once, as the user running the scheduler, with the
# entry's params.
new daemon/hourly.yaml
once 2026-06-01T10:00:20Z
[[ $RC == 0 && $(py 'fires("hourly")') == '[["2026-06-01T10:00:00Z","fired",null]]' && $(py 'nruns()') == 1 ]]
t $? "an entry due now (20 s late, catch_up 0) fires once: one fire 'fired', one run" "$(why) $(py 'fires()')"
run=$(py 'fire("hourly", "2026-06-01T10:00:00Z")["run"]')
r show "$run" --json
[[ $(printf '%s' "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["actor"], d["status"], json.dumps(d["params"], sort_keys=True), d["provenance"]["schedule"]["nominal"])') == "$(principal)"' succeeded {"mode": "b", "n": 3} 2026-06-01T10:00:00Z' ]]
t $? "the fired run has the scheduler's user as actor, the entry's params {mode: b, n: 3} (typed) and its nominal time" "$(why)"
[[ $(py 'meta("scheduler.last_tick")') == 2026-06-01T10:00:20Z ]]
t $? "a tick records meta scheduler.last_tick = its time" "$(py 'rows("select * from meta")')"
once 2026-06-01T10:00:50Z
[[ $RC == 0 && $(py 'nruns()') == 1 && $(py 'len(fires())') == 1 && $OUT != *fired* ]]
t $? "a second --once in the same minute fires nothing more (a restart never fires twice)" "$(why) $(py 'fires()')"

# Downtime without catch_up: the times missed are recorded, none fires.
once 2026-06-01T13:30:00Z
[[ $RC == 0 && $(py 'nruns()') == 1 &&
	$(py 'fires("hourly")[1:]') == '[["2026-06-01T11:00:00Z","missed","9000s late, catch_up allows 0s"],["2026-06-01T12:00:00Z","missed","5400s late, catch_up allows 0s"],["2026-06-01T13:00:00Z","missed","1800s late, catch_up allows 0s"]]' &&
	$OUT == *"3 missed, 0 skipped, 0 queued"* ]]
t $? "3.5 h down, catch_up 0: 11:00, 12:00, 13:00 recorded missed with how late, nothing fires" "$(why) $(py 'fires()')"

r schedule list --json
[[ $(printf '%s' "$OUT" | python3 -c 'import json,sys; e=json.load(sys.stdin)["entries"][0]; print(e["runbook"], e["last_nominal"], e["last_outcome"], e["last_run"])') == "hourly 2026-06-01T13:00:00Z missed None" ]]
t $? "schedule list --json shows the entry's newest fire (13:00, missed, no run)" "$(why)"

# A time late by catch_up + 60 s still fires; one second more is missed.
new daemon/hourly.yaml daemon/catchup.yaml
once 2026-06-01T09:00:00Z
once 2026-06-01T10:01:00Z
[[ $(py 'outcomes("hourly")') == '["fired","fired"]' ]]
t $? "catch_up 0: a nominal time exactly 60 s late fires (the tick's slack)" "$(why) $(py 'fires()')"
once 2026-06-01T10:16:00Z
[[ $(py 'outcomes("catchup")') == '["fired","fired"]' ]]
t $? "catch_up 15m: a nominal time exactly 15m + 60 s late fires" "$(why) $(py 'fires()')"
once 2026-06-01T11:01:01Z
[[ $(py 'fire("hourly", "2026-06-01T11:00:00Z")') == '{"id":'*',"outcome":"missed","run":null,"note":"61s late, catch_up allows 0s"}' ]]
t $? "catch_up 0: 61 s late is missed" "$(why) $(py 'fires()')"
once 2026-06-01T12:16:01Z
[[ $(py 'fire("catchup", "2026-06-01T12:00:00Z")') == '{"id":'*',"outcome":"missed","run":null,"note":"961s late, catch_up allows 900s"}' ]]
t $? "catch_up 15m: 961 s late (15m + 61 s) is missed, the note says so" "$(why) $(py 'fires("catchup")')"

# Downtime within catch_up fires the missed time, once.
new daemon/catchup.yaml
once 2026-06-01T09:00:00Z
once 2026-06-01T12:10:00Z
[[ $RC == 0 && $(py 'outcomes("catchup")') == '["fired","missed","missed","fired"]' && $(py 'nruns()') == 2 &&
	$(py 'fire("catchup", "2026-06-01T12:00:00Z")["outcome"]') == fired ]]
t $? "down 09:00-12:10, catch_up 15m: 10:00, 11:00 missed; 12:00 (10 min late) fires" "$(why) $(py 'fires()')"
once 2026-06-01T12:14:00Z
[[ $RC == 0 && $(py 'nruns()') == 2 && $(py 'len(fires())') == 4 ]]
t $? "the caught-up time fires once: a later tick within catch_up fires it no more" "$(why) $(py 'fires()')"

# Two missed times within catch_up in one tick: only the newest fires (one
# run after downtime, not one per missed time); the older is skipped as
# superseded by it, and the note says so.
new daemon/catchup-long.yaml
once 2026-06-01T09:00:00Z
ran=$(py 'nruns()')
once 2026-06-01T11:30:00Z
r11=$(py 'fire("catchup-long", "2026-06-01T11:00:00Z")["run"]')
[[ $(py 'fire("catchup-long", "2026-06-01T11:00:00Z")["outcome"]') == fired && $(py 'nruns()') == $((ran + 1)) &&
	$(py 'fire("catchup-long", "2026-06-01T10:00:00Z")') == '{"id":'*',"outcome":"skipped","run":null,"note":"superseded by the fire at 2026-06-01T11:00:00Z"}' ]]
t $? "catch_up 3h, down 09:00-11:30: 11:00 fires (run $r11); 10:00 is skipped, superseded by it" "$(py 'fires("catchup-long")[-2:]')"

# A fresh store's first tick fires only what catch_up still allows (no backlog).
new daemon/catchup.yaml
once 2026-06-01T12:10:00Z
[[ $RC == 0 && $(py 'fires()') == '[["catchup","2026-06-01T12:00:00Z","fired",null]]' ]]
t $? "first tick on a fresh store: the 12:00 fire 10 min ago is caught up, nothing older is recorded" "$(why) $(py 'fires()')"

# An entry never fired, added to a store whose scheduler last ticked hours ago.
new daemon/hourly.yaml
once 2026-06-01T09:00:00Z
cp "$FX/daemon/half-past.yaml" "$RBK_PATH/"
once 2026-06-01T12:30:30Z
[[ $RC == 0 && $(py 'outcomes("half-past")') == '["missed","missed","missed","fired"]' &&
	$(py '[r[0] for r in fires("half-past")]') == '["2026-06-01T09:30:00Z","2026-06-01T10:30:00Z","2026-06-01T11:30:00Z","2026-06-01T12:30:00Z"]' ]]
t $? "an entry new to a store last ticked at 09:00: 09:30-11:30 missed since that tick, 12:30 fires" "$(why) $(py 'fires("half-past")')"

# DST in the tick itself (Europe/Berlin, 02:30 daily).
new next/berlin.yaml
once 2026-03-29T01:00:30Z
[[ $RC == 0 && $(py 'fires("berlin")') == '[["2026-03-29T01:00:00Z","fired",null]]' ]]
t $? "spring forward: the 02:30 that does not exist fires at 03:00 CEST (01:00Z)" "$(why) $(py 'fires()')"
new next/berlin.yaml
once 2026-10-25T00:30:10Z
once 2026-10-25T01:30:10Z
[[ $RC == 0 && $(py 'fires("berlin")') == '[["2026-10-25T00:30:00Z","fired",null]]' && $(py 'nruns()') == 1 ]]
t $? "fall back: 02:30 fires at its first occurrence (00:30Z), not again an hour later" "$(why) $(py 'fires()[:5]')"

# Usage.
r scheduler --now 2026-06-01T10:00:00Z
[[ $RC == 2 && $ERR == *"--now takes an ISO-8601 time and goes with --once"* ]]
t $? "--now without --once is bad input (exit 2)" "$(why)"
r scheduler --once --now soon
[[ $RC == 2 && $ERR == *"--now takes an ISO-8601 time"* ]]
t $? "--once --now with a malformed time is bad input (exit 2)" "$(why)"

# --- 3. overlap ----------------------------------------------------------------
new overlap/overlap-skip.yaml overlap/overlap-queue.yaml overlap/overlap-allow.yaml
once 2026-06-01T10:00:00Z
[[ $RC == 0 && $(py 'sorted(r[2] for r in fires())') == '["fired","fired","fired"]' &&
	$(py '[status(r) for (r,) in rows("select run_id from fires order by id")]') == '["waiting","waiting","waiting"]' ]]
t $? "10:00: each overlap entry fires; its run waits for an approval nobody gives" "$(why) $(py 'fires()')"
skip1=$(py 'fire("overlap-skip", "2026-06-01T10:00:00Z")["run"]')
queue1=$(py 'fire("overlap-queue", "2026-06-01T10:00:00Z")["run"]')
once 2026-06-01T10:05:00Z
[[ $RC == 0 && $(py 'fire("overlap-skip", "2026-06-01T10:05:00Z")') == '{"id":'*',"outcome":"skipped","run":null,"note":"run '"$skip1"' of this entry was still active"}' ]]
t $? "overlap skip: 10:05 with the 10:00 run still active is skipped, the note names the run" "$(why) $(py 'fires("overlap-skip")')"
[[ $(py 'fire("overlap-queue", "2026-06-01T10:05:00Z")') == '{"id":'*',"outcome":"queued","run":null,"note":"waits for run '"$queue1"' of this entry to end"}' ]]
t $? "overlap queue: 10:05 is queued behind the active run" "$(py 'fires("overlap-queue")')"
a2=$(py 'fire("overlap-allow", "2026-06-01T10:05:00Z")')
[[ $a2 == *'"outcome":"fired"'* && $(py "status($(py 'fire("overlap-allow", "2026-06-01T10:00:00Z")["run"]'))") == waiting &&
	$(py "status(fire('overlap-allow', '2026-06-01T10:05:00Z')['run'])") == waiting ]]
t $? "overlap allow: 10:05 fires while the 10:00 run is still active (two active runs)" "$a2 $(py 'fires("overlap-allow")')"
once 2026-06-01T10:10:00Z
[[ $(py 'fire("overlap-queue", "2026-06-01T10:10:00Z")') == *'"outcome":"skipped"'*'"note":"a fire of this entry is already queued"}' &&
	$(py 'fire("overlap-queue", "2026-06-01T10:05:00Z")["outcome"]') == queued ]]
t $? "overlap queue: one fire waits at most; 10:10 is skipped while 10:05 is queued" "$(py 'fires("overlap-queue")')"
r approve "$queue1"
[[ $RC == 0 && $(py "status($queue1)") == succeeded ]]
t $? "rbk approve ends the first overlap-queue run" "$(why)"
nq=$(py 'nruns()')
once 2026-06-01T10:11:00Z
q5=$(py 'fire("overlap-queue", "2026-06-01T10:05:00Z")')
[[ $RC == 0 && $q5 == *'"outcome":"fired"'* && $(py 'nruns()') == $((nq + 1)) &&
	$(py "status(fire('overlap-queue', '2026-06-01T10:05:00Z')['run'])") == waiting &&
	$(py 'fire("overlap-skip", "2026-06-01T10:10:00Z")["outcome"]') == skipped ]]
t $? "overlap queue: once the run has ended, the next tick fires the queued 10:05" "$(why) $q5; runs $(py 'rows("select id, status from runs")'), $nq before"
once 2026-06-01T10:12:00Z
[[ $RC == 0 && $(py 'nruns()') == $((nq + 1)) ]]
t $? "a queued fire fires once" "$(why) $(py 'fires("overlap-queue")')"

# --- 6. restart during a fire --------------------------------------------------
new daemon/minutely.yaml
r scheduler --once # creates the store (fires and runs now, for real time)
on_pg && agent_once
read -r stale_id young_id stale_nominal < <(python3 - <<'PY'
import os, storedb, time
db = storedb.connect()
iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
now = time.time()
m = int(now // 60 * 60)
ins = ("insert into fires (id, runbook, entry, nominal, decided_at, outcome)"
       " values ((select coalesce(max(id), 0) + 1 from fires), 'minutely', 0, ?, ?, 'firing') returning id")
a = db.execute(ins, (iso(m - 3600), iso(now - 120))).fetchone()[0]
b = db.execute(ins, (iso(m - 7200), iso(now - 5))).fetchone()[0]
db.commit()
print(a, b, iso(m - 3600))
PY
)
r scheduler --once
if on_sqlite; then
	[[ $RC == 0 && $OUT == *"1 fire(s) claimed by a scheduler that stopped before starting them are recorded as failed"* ]]
	t $? "start-up reports a fire claimed two minutes ago whose run never started" "$(why)"
	[[ $(py "rows('select outcome, run_id, note from fires where id=?', $stale_id)") == '[["failed",null,"the scheduler stopped before its run started"]]' ]]
	t $? "that fire is recorded failed with the note 'the scheduler stopped before its run started'" "$(py 'rows("select * from fires")')"
	[[ $(py "rows('select count(*), max(run_id) from fires where nominal=?', '$stale_nominal')") == '[[1,null]]' && $OUT != *"$stale_nominal"* ]]
	t $? "the stale fire is not fired again (no run for its nominal time)" "$(why)"
	[[ $(py "one('select outcome from fires where id=?', $young_id)") == firing ]]
	t $? "a fire claimed 5 s ago (its scheduler may still start it) is left as firing" "$(py 'rows("select * from fires")')"
else
	# A shared store has one leader at a time (docs/scale-out.md,
	# "Schedules"): the claims a leader finds were left by its predecessor,
	# who is gone; it fires them, each once.
	[[ $RC == 0 && $OUT == *"2 fire(s) claimed by a former leader that stopped before creating their runs: fired now"* ]]
	t $? "start-up of a new leader fires the two claims its predecessor left without a run" "$(why)"
	[[ $(py "[(r[0], r[1] is not None) for r in rows('select outcome, run_id from fires where id in (?, ?) order by id', $stale_id, $young_id)]") == '[["fired",true],["fired",true]]' ]]
	t $? "those fires are recorded fired, each with its run" "$(py 'rows("select * from fires")')"
	[[ $(py "rows('select count(*), count(distinct run_id) from fires where nominal=?', '$stale_nominal')") == '[[1,1]]' ]]
	t $? "a claimed nominal time is fired once (one fire, one run)" "$(py 'rows("select * from fires")')"
fi

# --- 7. interrupted scheduled runs are reported, not resumed ---------------------
new daemon/crashy.yaml
RBK_CRASH_POINT=step.after_start:1 once 2026-06-01T10:00:00Z
crash_rc=$RC
crun=$(py 'fire("crashy", "2026-06-01T10:00:00Z")["run"]')
[[ -n $crun && $crun != None && $(py "status($crun)") != succeeded ]]
t $? "a scheduled run killed at a crash point (inherited RBK_CRASH_POINT) is left unfinished" "$(why) run $crun $(py 'rows("select id, status from runs")')"
[[ $(py 'fire("crashy", "2026-06-01T10:00:00Z")') == '{"id":1,"outcome":"fired","run":'"$crun"',"note":null}' && $crash_rc == 0 ]]
t $? "a fire whose run started and then died stays 'fired' with its run (not 'could not be started')" "scheduler exit $crash_rc; fire $(py 'fire("crashy", "2026-06-01T10:00:00Z")')"
once 2026-06-01T10:01:00Z
[[ $OUT == *"run $crun (crashy) is interrupted"*"rbk resume $crun"* ]]
t $? "the next scheduler start reports 'run N (crashy) is interrupted ... rbk resume N'" "$(why)"
sleep 0.2
[[ $(py "status($crun)") != succeeded && $(py 'nruns()') == 1 ]]
t $? "the interrupted run is not resumed by the scheduler" "$(py 'rows("select id, status from runs")')"

# --- 9. a fire whose run is refused --------------------------------------------
new daemon/refused.yaml
r validate "$RBK_PATH/refused.yaml"
[[ $RC == 0 ]]
t $? "fixture: a required param left out by the schedule entry passes validate" "$(why)"
once 2026-06-01T10:00:00Z
[[ $RC != 0 && $(py 'fires("refused")') == '[["2026-06-01T10:00:00Z","failed","rbk run refused the runbook or its params (exit 2)"]]' &&
	$(py 'nruns()') == 0 ]]
t $? "a fire whose run is refused (missing required param) is recorded failed with a note; --once exits non-zero" "$(why) $(py 'fires()')"
once 2026-06-01T10:00:30Z
[[ $(py 'len(fires())') == 1 && $(py 'nruns()') == 0 ]]
t $? "the refused fire is not tried again" "$(why) $(py 'fires()')"

# --- 8. metrics ------------------------------------------------------------------
new daemon/hourly.yaml daemon/failing.yaml overlap/overlap-skip.yaml
M=$H/metrics/rbk.prom
mkdir -p "$H/metrics"
once 2026-06-01T10:00:00Z --metrics "$M"
once 2026-06-01T10:05:00Z --metrics "$M"
once 2026-06-01T11:00:00Z --metrics "$M"
once 2026-06-01T13:10:00Z --metrics "$M"
# On PostgreSQL the runs of the 13:10 tick ended after it (in the agent): the
# next tick's metrics count their outcomes.
on_pg && once 2026-06-01T13:10:30Z --metrics "$M"
[[ -f $M && $(ls "$H/metrics") == rbk.prom ]]
t $? "the metrics file is written by rename: no temporary file is left" "$(ls -a "$H/metrics")"
cat >"$TMP/prom.py" <<'PY'
import os, re, storedb, sys, calendar, time
text = open(sys.argv[1]).read()
db = storedb.connect()
errs = []
names = {"rbk_schedule_fires_total": "counter", "rbk_schedule_misses_total": "counter",
         "rbk_schedule_skips_total": "counter", "rbk_schedule_failures_total": "counter",
         "rbk_schedule_last_success_timestamp_seconds": "gauge"}
got = {}
for line in text.splitlines():
    m = re.fullmatch(r'# (HELP|TYPE) (\S+) (.+)', line)
    if m:
        got.setdefault(m[2], {})[m[1]] = m[3]
        continue
    m = re.fullmatch(r'([a-z_]+)\{runbook="([^"]*)",entry="(\d+)"\} (\d+)', line)
    if not m:
        errs.append(f"not Prometheus text: {line!r}")
        continue
    got.setdefault(m[1], {}).setdefault("v", {})[(m[2], int(m[3]))] = int(m[4])
if not text.endswith("\n"):
    errs.append("no final newline")
for n, ty in names.items():
    if got.get(n, {}).get("TYPE") != ty: errs.append(f"{n}: TYPE {got.get(n, {}).get('TYPE')}, want {ty}")
    if not got.get(n, {}).get("HELP"): errs.append(f"{n}: no HELP")
def count(rb, where):
    return db.execute(f"select count(*) from fires f left join runs r on r.id = f.run_id where f.runbook=? and f.entry=0 and ({where})", (rb,)).fetchone()[0]
for rb in sys.argv[2:]:
    want = {
        "rbk_schedule_fires_total": count(rb, "f.outcome = 'fired'"),
        "rbk_schedule_misses_total": count(rb, "f.outcome = 'missed'"),
        "rbk_schedule_skips_total": count(rb, "f.outcome = 'skipped'"),
        "rbk_schedule_failures_total": count(rb, "f.outcome = 'failed' or (f.outcome = 'fired' and r.status in ('failed', 'rolled_back', 'aborted'))"),
    }
    last = db.execute("select max(f.nominal) from fires f join runs r on r.id = f.run_id where f.runbook=? and f.outcome='fired' and r.status='succeeded'", (rb,)).fetchone()[0]
    want["rbk_schedule_last_success_timestamp_seconds"] = calendar.timegm(time.strptime(last, "%Y-%m-%dT%H:%M:%SZ")) if last else 0
    for n, v in want.items():
        g = got.get(n, {}).get("v", {}).get((rb, 0))
        if g != v: errs.append(f"{n}{{{rb}}} = {g}, the fires table says {v}")
print("; ".join(errs) if errs else "ok")
PY
res=$(python3 "$TMP/prom.py" "$M" hourly failing overlap-skip 2>&1)
[[ $res == ok ]]
t $? "metrics: HELP/TYPE lines, fires/misses/skips/failures per runbook and entry match the fires table, last_success = newest succeeded nominal" "$res"
grep -q '^rbk_schedule_last_success_timestamp_seconds{runbook="hourly",entry="0"} 1780311600$' "$M" &&
	grep -q '^rbk_schedule_fires_total{runbook="hourly",entry="0"} 2$' "$M" &&
	grep -q '^rbk_schedule_misses_total{runbook="hourly",entry="0"} 2$' "$M" &&
	grep -q '^rbk_schedule_fires_total{runbook="failing",entry="0"} 4$' "$M" &&
	grep -q '^rbk_schedule_failures_total{runbook="failing",entry="0"} 4$' "$M" &&
	grep -q '^rbk_schedule_last_success_timestamp_seconds{runbook="failing",entry="0"} 0$' "$M" &&
	grep -q '^rbk_schedule_skips_total{runbook="overlap-skip",entry="0"} 3$' "$M"
t $? "metrics values: hourly 2 fires, 2 misses, last success 11:00 (1780311600); failing 4 fires, 4 failures, no success; overlap-skip 3 skips" "$(grep -v '^#' "$M" | tr '\n' ' ')"

# --- 4. two schedulers on one store; 5. SIGHUP reload and SIGTERM stop ----------------
new daemon/yearly.yaml
"$RBK" scheduler >"$H/d.out" 2>"$H/d.err" &
D=$!
waitline "$H/d.out" "1 schedule entry on" 10
t $? "the daemon starts and reports '1 schedule entry on PATH'" "$(cat "$H/d.out" "$H/d.err")"
r scheduler --once
[[ $RC == 1 && $ERR == *"another scheduler (pid $D) works on the store"* && $(py 'nruns()') == 0 ]]
t $? "a second scheduler on the store exits 1: 'another scheduler (pid N) works on the store'" "$(why) daemon pid $D"
r scheduler --once --now 2026-06-01T10:00:00Z
[[ $RC == 1 && $ERR == *"another scheduler (pid $D)"* ]]
t $? "--once --now is refused the same way while the daemon runs" "$(why)"
cp "$FX/daemon/two-entries.yaml" "$RBK_PATH/"
kill -HUP "$D"
waitline "$H/d.out" "reloaded: 3 schedule entries" 5
t $? "SIGHUP reloads the path: 'reloaded: 3 schedule entries' after a runbook file is added" "$(cat "$H/d.out" "$H/d.err")"
kill -0 "$D" 2>/dev/null
t $? "the daemon keeps running after SIGHUP" "$(cat "$H/d.out")"
kill -TERM "$D"
waitexit "$D" 5
bgwait "$D" d
[[ $BRC == 0 ]] && grep -q "stopping (SIGTERM)" "$H/d.out"
t $? "SIGTERM stops the daemon at a safe point: exit 0, 'stopping (SIGTERM)'" "exit $BRC $(tail -3 "$H/d.out")"
r scheduler --once
[[ $RC == 0 && $OUT == *"3 schedule entries on"* ]]
t $? "after the daemon stopped, a new scheduler takes the store" "$(why)"
