#!/bin/bash
# rbk agent, deterministic checks (tests/scale/failover.py is the random one):
#  a. run --queue --detach prints an id, the run is queued, agent --once
#     executes it (PostgreSQL and SQLite);
#  b. run --queue without --detach follows the run to its end: exit 0, or 1;
#  c. kill -9 of an agent in an idempotent step: another agent takes the run
#     over after the lease and finishes it (PostgreSQL and SQLite);
#  d. kill -9 in a non-idempotent step: the takeover stops the run in
#     needs_attention, the step ran at most once;
#  e. SIGSTOP of an agent's process group past its lease: another agent takes
#     over; after SIGCONT the first one writes nothing more, its action dies;
#  f. an agent whose clock is an hour ahead (faketime) does not take a live
#     lease, and does after its holder died; nor does it find an approval
#     timed out early;
#  g. an approval answered by an operator on the queue's run: handed back to
#     the queue, an agent finishes the run, the approver is the OS user;
#  h. an approval's timeout is executed by an agent: its failure edge;
#  i. bad option values: exit 2 and a clear message;
#  j. the database goes away under a running agent and comes back: the agent
#     says so, lives on, and executes what is queued afterwards (last: it
#     stops the cluster);
#  k. three agents race for the same quick queued runs, no fault at all:
#     each run executed once;
#  l. runs waiting for an answer do not starve an agent of concurrency 1:
#     a run queued after them, and the newest of them once answered, are
#     executed (PostgreSQL and SQLite).
# Needs RBK_TEST_PG (tests/pg/cluster.sh); without it this script fails.
. "$(dirname "$0")/lib.bash"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins" NO_COLOR=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:intercept_tls_get_addr=0}
unset RBK_CRASH_POINT RBK_PATH RBK_FAULT_IO RBK_FAULT_ALLOC RBK_STORE RBK_HOME
if [[ -z ${RBK_TEST_PG:-} ]]; then
	fail "agents need a PostgreSQL server" "RBK_TEST_PG is not set (eval \"\$(tests/pg/cluster.sh)\")"
	exit 1
fi
FX=$RBK_ROOT/tests/fixtures
CHAIN=$FX/scale/ledger-chain.yaml
INT=$FX/run/interrupt.yaml
APPR=$FX/scale/approval.yaml

# --- helpers -------------------------------------------------------------------
t() { # t STATUS NAME WHY
	if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi
}
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$RBK_TEST_PG" -c "$1" 2>&1; }
P=agents$$
SCHEMAS=() AGENTS=() PG_DOWN=
pgbin() {
	local d
	if [[ -n ${RBK_PG_BIN:-} ]]; then echo "$RBK_PG_BIN"; return; fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
		[[ -x $d/pg_ctl ]] && { echo "$d"; return; }
	done
	dirname "$(command -v pg_ctl)"
}
pgctl() { # pg_ctl on the test cluster, as the user that owns it
	local owner
	owner=$(stat -c %U "$RBK_TEST_PG_DIR/data")
	if [[ $owner == "$(id -un)" ]]; then
		(cd "$RBK_TEST_PG_DIR" && "$(pgbin)/pg_ctl" -D "$RBK_TEST_PG_DIR/data" "$@")
	else
		(cd "$RBK_TEST_PG_DIR" && runuser -u "$owner" -- "$(pgbin)/pg_ctl" -D "$RBK_TEST_PG_DIR/data" "$@")
	fi
}
cleanup() {
	local p s
	for p in "${AGENTS[@]}"; do kill -CONT -- "-$p" 2>/dev/null; kill -KILL -- "-$p" 2>/dev/null; done
	[[ -n $PG_DOWN ]] && pgctl -l "$RBK_TEST_PG_DIR/server.log" -w -t 60 start >/dev/null 2>&1
	for s in "${SCHEMAS[@]}"; do sql "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT

pg() { # pg NAME: a fresh schema for the store of test NAME; RBK_STORE points at it
	local schema=${P}_${1//-/_}
	SCHEMAS+=("$schema")
	sql "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null
	export RBK_STORE="$RBK_TEST_PG&options=-csearch_path%3D$schema"
	D=$TMP/$1
	mkdir -p "$D"
	export RBK_HOME=$D/operator # the operator's home (a host of its own)
	BACKEND=PostgreSQL
}
lite() { # lite NAME: an SQLite store in a fresh home, shared by every process (one host)
	unset RBK_STORE
	D=$TMP/$1
	mkdir -p "$D/home"
	export RBK_HOME=$D/home
	BACKEND=SQLite
}
# agent NAME [ARGS...]: start an agent in a process group of its own (setsid),
# home $D/NAME (on SQLite: $RBK_HOME, one host), output in $D/NAME.out; its
# pid (its process group) in $NAME.
agent() {
	local n=$1 home
	shift
	home=$D/$n
	[[ $BACKEND == SQLite ]] && home=$RBK_HOME
	mkdir -p "$home"
	setsid "$RBK" agent --queue pool --lease 2s --poll 200ms --home "$home" "$@" >"$D/$n.out" 2>&1 &
	AGENTS+=($!)
	printf -v "$n" %s $!
}
stop() { # stop PID: SIGTERM, then wait for it (SIGKILL after 20s)
	local i
	kill -CONT -- "-$1" 2>/dev/null
	kill -TERM "$1" 2>/dev/null
	for ((i = 0; i < 200; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -KILL -- "-$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
r() { # r ARGS...: rbk; RC OUT ERR
	"$RBK" "$@" >"$D/out" 2>"$D/err"
	RC=$?
	OUT=$(<"$D/out")
	ERR=$(<"$D/err")
}
why() { printf 'exit %s; out: %s; err: %s' "$RC" "$(tail -3 <<<"$OUT")" "$(tail -3 <<<"$ERR")" | tr '\n' ' '; }
st() { "$RBK" show "$1" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null; }
waitst() { # waitst RUN SECONDS STATUS...: until the run's status is one of them
	local run=$1 n=$(($2 * 10)) i s
	shift 2
	for ((i = 0; i < n; i++)); do
		s=$(st "$run")
		for want in "$@"; do [[ $s == "$want" ]] && return 0; done
		sleep 0.1
	done
	return 1
}
cat >"$TMP/ev.py" <<'PY'
import json, sys
from datetime import datetime, timezone
E = [json.loads(l) for l in sys.stdin if l.strip()]
def at(e): return datetime.strptime(e["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
kinds = [e["kind"] for e in E]
def of(kind, **kw): return [e for e in E if e["kind"] == kind and all(e["data"].get(k) == v for k, v in kw.items())]
resumed = [i for i, e in enumerate(E) if e["kind"] == "run_status" and e["data"].get("reason") == "resumed"]
def after(i): return [e["kind"] for e in E[i + 1:]]
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v))
PY
ev() { "$RBK" log "$1" --json 2>/dev/null | python3 "$TMP/ev.py" "$2" 2>&1; } # ev RUN EXPR
waitev() { # waitev RUN SECONDS EXPR: until EXPR over the run's events is true
	local i n=$(($2 * 10))
	for ((i = 0; i < n; i++)); do
		[[ $(ev "$1" "$3") == true ]] && return 0
		sleep 0.1
	done
	return 1
}
skewed() { # skewed NAME: an agent an hour ahead (faketime); $NAME is its pid (faketime's child)
	local n=$1 g i c=
	mkdir -p "$D/$n"
	ASAN_OPTIONS=$ASAN_OPTIONS:verify_asan_link_order=0 setsid faketime -f '+1h' \
		"$RBK" agent --queue pool --lease 2s --poll 200ms --home "$D/$n" >"$D/$n.out" 2>&1 &
	g=$!
	AGENTS+=($g)
	for ((i = 0; i < 50; i++)); do
		c=$(ps -o pid= --ppid "$g" | head -1 | tr -d ' ')
		[[ -n $c ]] && break
		sleep 0.1
	done
	printf -v "$n" %s "${c:-$g}"
}
ahead() { # ahead FILE: how far ahead (s) of ours the first time an agent printed is
	python3 -c 'import sys, time, calendar
l = open(sys.argv[1]).readline().split(" ")[0]
print(round(calendar.timegm(time.strptime(l, "%Y-%m-%dT%H:%M:%SZ")) - time.time()))' "$1" 2>/dev/null
}
kill9() { kill -9 "$1"; wait "$1" 2>/dev/null; } # no "Killed" notice
labels() { cut -d' ' -f2- "$1" 2>/dev/null | tr '\n' ';'; }
count() { grep -c " $2\$" "$1" 2>/dev/null; } # count LEDGER LABEL
now() { date +%s.%N; }
san() { # san FILE...: sanitizer reports, if any
	grep -l 'Sanitizer\|runtime error:' "$@" 2>/dev/null | while read -r f; do
		fail "no sanitizer report in $(basename "$f")" "$(grep -A8 'Sanitizer\|runtime error:' "$f" | head -12 | tr '\n' ' ')"
	done
}

# --- a. queued, then executed by agent --once --------------------------------
test_a() {
	for b in pg lite; do
		$b a-$b
		L=$D/ledger
		r run "$CHAIN" -p ledger="$L" -p s1=10 -p s2=10 -p s3=10 -p s4=10 -p s5=10 --queue pool --detach
		id=$OUT
		[[ $RC == 0 && $OUT =~ ^[0-9]+$ ]]
		t $? "a ($BACKEND): rbk run --queue pool --detach prints the run's id, exit 0" "$(why)"
		hs=$("$RBK" history --json 2>&1 | python3 -c 'import json,sys; print(" ".join("%s:%s" % (r["run"], r["status"]) for r in json.load(sys.stdin)["runs"]))' 2>&1)
		[[ $hs == "$id:queued" && ! -e $L ]]
		t $? "a ($BACKEND): the run is queued in rbk history, nothing executed" "history: $hs; ledger: $(labels "$L")"
		home=$D/agent
		[[ $BACKEND == SQLite ]] && home=$RBK_HOME # one host
		timeout 60 "$RBK" agent --queue pool --once --home "$home" >"$D/once.out" 2>&1
		rc=$?
		[[ $rc == 0 && $(st "$id") == succeeded && $(labels "$L") == "one;two;three;four;five;" &&
			$(<"$D/once.out") == *"run $id: queued; executing it"* ]]
		t $? "a ($BACKEND): rbk agent --queue pool --once executes it to succeeded" \
			"agent exit $rc, status $(st "$id"), ledger $(labels "$L"); agent: $(tail -4 "$D/once.out" | tr '\n' ' ')"
		san "$D"/*.out "$D/err"
	done
}

# --- b. run --queue without --detach follows the run --------------------------
test_b() {
	pg b
	agent A1
	r run "$CHAIN" -p ledger="$D/l1" -p s1=10 -p s2=10 -p s3=10 -p s4=10 -p s5=10 --queue pool
	[[ $RC == 0 && $OUT == *"queued on pool; following it"* && $OUT == *step_started*five* && $OUT == *"run_finished       succeeded"* ]]
	t $? "b: rbk run --queue pool follows the run an agent executes: its timeline, exit 0" "$(why)"
	r run "$CHAIN" -p ledger="$D/l2" -p s1=10 -p s2=10 -p s3=10 -p s4=10 -p s5=10 -p fail=true --queue pool
	[[ $RC == 1 && $OUT == *"run_finished       failed"* && $OUT == *"failed on purpose"* ]]
	t $? "b: a run that fails: rbk run --queue pool exits 1" "$(why)"
	stop "$A1"
	san "$D"/*.out "$D/err"
}

# --- c. kill -9 in an idempotent step: taken over after the lease ----------------
test_c() {
	for b in pg lite; do
		$b c-$b
		L=$D/ledger
		agent A1
		r run "$INT" -p ledger="$L" -p sleep=4000 -p idem=true --queue pool --detach
		id=$OUT
		if ! waitev "$id" 30 'len(of("step_started", state="work_idem")) == 1'; then
			fail "c ($BACKEND): the first agent starts the long step" "$(why); events $(ev "$id" kinds); agent: $(tail -3 "$D/A1.out" | tr '\n' ' ')"
		fi
		sleep 0.5
		kill9 "$A1"
		killed=$(now)
		agent A2
		waitst "$id" 40 succeeded failed needs_attention
		took=$(ev "$id" "round(at(E[resumed[1]]) - $killed, 2) if len(resumed) > 1 else 'none'")
		[[ $(st "$id") == succeeded && $(ev "$id" 'len(resumed)') == 2 && $(grep -c "executing it" "$D/A2.out") == 1 ]]
		t $? "c ($BACKEND): after kill -9 of its agent, another agent takes the run over and finishes it" \
			"status $(st "$id"); takeovers $(ev "$id" 'len(resumed) - 1'); second agent: $(grep 'run ' "$D/A2.out" | head -3 | tr '\n' ' ')"
		# SQLite is one host: the free owner lock proves the holder dead at once.
		if [[ $BACKEND == PostgreSQL ]]; then
			[[ $took != none && $(python3 -c "print($took >= 1.3)") == True ]]
			t $? "c ($BACKEND): not before the dead executor's lease ended (2s, renewed every 0.67s)" "taken over ${took}s after the kill"
		fi
		[[ $(labels "$L") == "before;work_idem;after;" ]]
		t $? "c ($BACKEND): the idempotent step ran again (its first attempt died with its agent): each line once" "ledger: $(labels "$L")"
		stop "$A2"
		san "$D"/*.out "$D/err"
	done
}

# --- d. kill -9 in a non-idempotent step: needs_attention ---------------------------
test_d() {
	pg d
	L=$D/ledger
	agent A1
	r run "$INT" -p ledger="$L" -p sleep=3000 --queue pool --detach
	id=$OUT
	waitev "$id" 30 'len(of("step_started", state="work")) == 1' ||
		fail "d: the first agent starts the long step" "events $(ev "$id" kinds)"
	sleep 0.5
	kill9 "$A1"
	killed=$(now)
	agent A2
	waitst "$id" 30 needs_attention succeeded failed
	sleep 3 # past the end of the killed attempt's sleep: its line would be there
	reason=$(ev "$id" 'of("run_status", status="needs_attention")[-1]["data"]["reason"] if of("run_status", status="needs_attention") else ""')
	[[ $(st "$id") == needs_attention && $reason == *"step work (attempt 1) was interrupted and is not idempotent"* &&
		$(ev "$id" 'len(of("step_started", state="work"))') == 1 && $(ev "$id" 'len(of("step_finished", state="work"))') == 0 ]]
	t $? "d: kill -9 in a non-idempotent step: the takeover stops the run in needs_attention, the step not started again" \
		"status $(st "$id"), reason '$reason', events $(ev "$id" kinds)"
	[[ $(count "$L" work) -le 1 && $(count "$L" after) == 0 ]]
	t $? "d: the non-idempotent step is in the ledger at most once, nothing after it" "ledger: $(labels "$L")"
	stop "$A2"
	san "$D"/*.out "$D/err"
}

# --- e. SIGSTOP past the lease: taken over; the paused executor is fenced ---------
test_e() {
	pg e
	L=$D/ledger
	agent A1
	r run "$INT" -p ledger="$L" -p sleep=10000 -p idem=true --queue pool --detach
	id=$OUT
	waitev "$id" 30 'len(of("step_started", state="work_idem")) == 1' ||
		fail "e: the first agent starts the long step" "events $(ev "$id" kinds)"
	agent A2
	sleep 1
	# The action (a process group of its own) is not paused: 10s, it outlives the
	# pause of 4.5s unless the executor kills it when it finds itself fenced.
	kill -STOP -- "-$A1"
	stopped=$(now)
	sleep 4.5
	cont=$(now)
	kill -CONT -- "-$A1"
	waitst "$id" 40 succeeded failed needs_attention
	sleep 1
	took=$(ev "$id" "round(at(E[resumed[1]]) - $stopped, 2) if len(resumed) > 1 else 'none'")
	during=$(ev "$id" "at(E[resumed[1]]) < $cont if len(resumed) > 1 else False")
	[[ $took != none && $(python3 -c "print($took >= 1.3)") == True && $during == true && $(st "$id") == succeeded ]]
	t $? "e: an agent paused (SIGSTOP) past its lease: another takes the run over after the lease, and finishes it" \
		"taken over ${took}s after the stop (during the 4.5s pause: $during); status $(st "$id"); events $(ev "$id" kinds)"
	post=$(ev "$id" 'after(resumed[1]) if len(resumed) > 1 else None')
	[[ $post == '["step_started", "step_finished", "transition", "step_started", "step_finished", "transition", "run_finished"]' &&
		$(ev "$id" 'len(of("step_finished", state="work_idem"))') == 1 && $(ev "$id" 'of("step_finished", state="work_idem")[0]["data"]["status"]') == ok ]]
	t $? "e: after SIGCONT the paused executor writes nothing more for the run (only the new executor's events follow the takeover)" \
		"events after the takeover: $post; step_finished work_idem: $(ev "$id" 'of("step_finished", state="work_idem")')"
	# Who wrote what: the resumed events name their executor (host/pid/start).
	p1=$(sed -n "s/.*run $id: .*executing it (pid \([0-9]*\)).*/\1/p" "$D/A1.out" | head -1)
	p2=$(sed -n "s/.*run $id: .*executing it (pid \([0-9]*\)).*/\1/p" "$D/A2.out" | head -1)
	# (HOST/PID/START, of the executor or of the agent that reserved the run for it)
	ex=$(ev "$id" '" ".join(E[i]["data"].get("executor", "?/?").split("/")[1] for i in resumed)')
	[[ -n $p1 && -n $p2 && ($ex == "$p1 $p2" || $ex == "$A1 $A2") ]]
	t $? "e: the resumed events name the executors: the first agent's, then the second's" \
		"pids in the executor names of the resumed events: '$ex'; first agent $A1 (its executor $p1), second $A2 ($p2)"
	grep -q "run $id was taken over" "$D/A1.out"
	t $? "e: the paused executor finds itself taken over (fenced) and says so" "first agent: $(tail -4 "$D/A1.out" | tr '\n' ' ')"
	[[ $(labels "$L") == "before;work_idem;after;" ]]
	t $? "e: the paused executor's action was killed: the idempotent step's line is there once (the new attempt's)" "ledger: $(labels "$L")"
	stop "$A1"
	stop "$A2"
	san "$D"/*.out "$D/err"
}

# --- f. clock skew: the store's clock decides ------------------------------------
test_f() {
	pg f
	L=$D/ledger
	agent A1
	r run "$INT" -p ledger="$L" -p sleep=8000 -p idem=true --queue pool --detach
	id=$OUT
	waitev "$id" 30 'len(of("step_started", state="work_idem")) == 1' ||
		fail "f: the first agent starts the long step" "events $(ev "$id" kinds)"
	skewed S
	sleep 3
	resumed=$(ev "$id" 'len(resumed)')
	kill9 "$A1"
	killed=$(now)
	skew=$(ahead "$D/S.out")
	[[ $skew -ge 3500 && $skew -le 3700 ]] || fail "f: the skewed agent's clock is an hour ahead" "ahead by '${skew}'s: $(head -2 "$D/S.out")"
	[[ $(grep -c "executing it" "$D/S.out") == 0 && $resumed == 1 && $(grep -c "serving" "$D/S.out") == 1 ]]
	t $? "f: an agent an hour ahead (faketime) leaves a live lease alone for 3s" \
		"skewed agent: $(tail -3 "$D/S.out" | tr '\n' ' '); takeovers in 3s: $((resumed - 1))"
	waitst "$id" 30 succeeded failed needs_attention
	took=$(ev "$id" "round(at(E[resumed[1]]) - $killed, 2) if len(resumed) > 1 else 'none'")
	[[ $(st "$id") == succeeded && $took != none && $(python3 -c "print($took >= 1.3)") == True &&
		$(grep -c "executing it" "$D/S.out") == 1 && $(labels "$L") == "before;work_idem;after;" ]]
	t $? "f: once the holder is dead, the skewed agent takes the run over after the lease and finishes it" \
		"status $(st "$id"), taken over ${took}s after the kill; ledger $(labels "$L"); skewed agent: $(grep "run " "$D/S.out" | head -3 | tr '\n' ' ')"
	stop "$S"
	# An approval's deadline is the store's business too: requested by an agent
	# on time, looked at by one an hour ahead.
	r run "$FX/scale/approval-skew.yaml" -p ledger="$D/l2" --queue pool --detach
	id=$OUT
	timeout 60 "$RBK" agent --queue pool --once --home "$D/A3" >"$D/A3.out" 2>&1
	ASAN_OPTIONS=$ASAN_OPTIONS:verify_asan_link_order=0 timeout 60 faketime -f '+1h' \
		"$RBK" agent --queue pool --once --home "$D/S2" >"$D/S2.out" 2>&1
	[[ $(st "$id") == waiting && $(ev "$id" 'len(of("approval_decided"))') == 0 && ! -e $D/l2 ]]
	t $? "f: an agent an hour ahead does not find a 30-minute approval timed out" \
		"status $(st "$id"); decided: $(ev "$id" 'of("approval_decided")'); ledger $(labels "$D/l2"); skewed agent: $(grep "run $id" "$D/S2.out" | head -3 | tr '\n' ' ')"
	san "$D"/*.out "$D/err"
}

# --- g. an approval answered by an operator, executed by an agent --------------------
test_g() {
	pg g
	L=$D/ledger
	agent A1
	r run "$APPR" -p ledger="$L" --queue pool --detach
	id=$OUT
	waitst "$id" 30 waiting
	[[ $(st "$id") == waiting && $(ev "$id" 'len(of("approval_requested"))') == 1 ]]
	t $? "g: an agent executes the run up to its approval: waiting" "status $(st "$id"); events $(ev "$id" kinds)"
	r approve "$id"
	[[ $RC == 0 && $OUT$ERR == *"queue pool"* ]]
	t $? "g: rbk approve on the operator's side records the decision and hands the run back to queue pool (exit 0)" "$(why)"
	waitst "$id" 30 succeeded failed
	by=$(ev "$id" 'of("approval_decided")[0]["data"]["by"] if of("approval_decided") else ""')
	[[ $(st "$id") == succeeded && $(labels "$L") == "approved;" && $(grep -c "run $id: its approval was answered" "$D/A1.out") == 1 ]]
	t $? "g: an agent then finishes the run" "status $(st "$id"), ledger $(labels "$L"); agent: $(grep "run $id" "$D/A1.out" | tr '\n' ' ')"
	[[ $by == "$(principal)" && $(ev "$id" 'of("approval_decided")[0]["data"]["decision"]') == approved ]]
	t $? "g: the approver recorded is the OS user ($(principal))" "recorded: '$by'"
	stop "$A1"
	san "$D"/*.out "$D/err"
}

# --- h. an approval's timeout, executed by an agent ----------------------------------
test_h() {
	pg h
	agent A1
	L=$D/ledger
	r run "$APPR" -p ledger="$L" -p soon=true --queue pool --detach
	id=$OUT
	waitst "$id" 30 failed succeeded
	[[ $(st "$id") == failed && $(ev "$id" 'of("approval_decided")[0]["data"]["decision"] if of("approval_decided") else ""') == timed_out &&
		$(ev "$id" '[e["data"]["to"] for e in of("transition", via="failure")]') == '["rejected"]' && $(labels "$L") == "rejected;" &&
		$(grep -c "run $id: its approval was answered or timed out" "$D/A1.out") == 1 ]]
	t $? "h: an approval timeout (1s) is executed by an agent: the run takes its failure edge, no rbk resume" \
		"status $(st "$id"); events $(ev "$id" kinds); ledger $(labels "$L"); agent: $(grep "run $id" "$D/A1.out" | tr '\n' ' ')"
	stop "$A1"
	san "$D"/*.out "$D/err"
}

# --- i. bad option values ---------------------------------------------------------------
test_i() {
	pg i
	bad() { # bad NAME EXPECTED ARGS...
		local name=$1 want=$2
		shift 2
		r agent --home "$D/agent" "$@"
		[[ $RC == 2 && $ERR == *"$want"* && $OUT != *serving* ]]
		t $? "i: rbk agent $name: exit 2, '$want'" "$(why)"
	}
	bad "--lease 0s" "--lease takes a duration of 1s or more, not '0s'" --lease 0s
	bad "--concurrency 0" "--concurrency takes a number from 1 to 1000, not '0'" --concurrency 0
	bad "--queue 'a b'" "bad queue name 'a b'" --queue 'a b'
	bad "--poll 0ms" "--poll takes a duration of 10ms or more" --poll 0ms
}

# --- j. the database goes away and comes back -------------------------------------------
test_j() {
	pg j
	agent A1
	sleep 1
	if pgctl -m immediate -w stop >"$D/pgctl" 2>&1; then
		PG_DOWN=1
		sleep 3
		kill -0 "$A1" 2>/dev/null && grep -q "lost the store\|cannot read the store" "$D/A1.out"
		t $? "j: the database stopped under a running agent: the agent lives on and says it lost the store" \
			"alive: $(kill -0 "$A1" 2>/dev/null && echo yes || echo no); agent: $(tail -3 "$D/A1.out" | tr '\n' ' ')"
		pgctl -l "$RBK_TEST_PG_DIR/server.log" -w -t 60 start >"$D/pgctl" 2>&1 && PG_DOWN=
		t $? "j: the database starts again" "$(cat "$D/pgctl")"
		for i in $(seq 50); do sql "select 1" >/dev/null && break; sleep 0.2; done
		r run "$CHAIN" -p ledger="$D/ledger" -p s1=10 -p s2=10 -p s3=10 -p s4=10 -p s5=10 --queue pool --detach
		id=$OUT
		waitst "$id" 30 succeeded failed
		[[ $RC == 0 && $(st "$id") == succeeded && $(grep -c "run $id: queued; executing it" "$D/A1.out") == 1 ]]
		t $? "j: back, the agent executes a run queued afterwards" \
			"$(why); status $(st "$id"); agent: $(tail -5 "$D/A1.out" | tr '\n' ' ')"
	else
		fail "j: stop the database (pg_ctl -m immediate stop)" "$(cat "$D/pgctl")"
	fi
	stop "$A1"
	san "$D"/*.out "$D/err"
}

# --- k. agents racing for the same queued runs: each run executed once ----------
test_k() {
	pg k
	local i n=30 dup=() na
	for ((i = 1; i <= n; i++)); do
		"$RBK" run "$FX/scale/one-step.yaml" -p ledger="$D/l$i" --queue pool --detach >/dev/null 2>"$D/err$i" &
		((i % 5)) || wait
	done
	wait
	for ((i = 1; i <= n; i++)); do [[ -s $D/err$i ]] && fail "k: enqueue run $i" "$(cat "$D/err$i")"; done
	agent A1 --concurrency 4
	agent A2 --concurrency 4
	agent A3 --concurrency 4
	for ((i = 0; i < 600; i++)); do
		[[ $("$RBK" history --json --limit 1000 2>/dev/null | python3 -c 'import json,sys
print(all(r["status"] in ("succeeded", "failed", "needs_attention") for r in json.load(sys.stdin)["runs"]))') == True ]] && break
		sleep 0.1
	done
	sleep 2 # what a late executor would still write
	for ((i = 1; i <= n; i++)); do
		[[ $(count "$D/l$i" one) == 1 ]] || dup+=("run $i: $(count "$D/l$i" one) times")
	done
	na=$("$RBK" history --json --limit 1000 | python3 -c 'import json,sys
print(" ".join("%s:%s" % (r["run"], r["status"]) for r in json.load(sys.stdin)["runs"] if r["status"] != "succeeded"))')
	twice=$(psql -X -At "$RBK_STORE" -c "select string_agg(distinct run_id::text, ' ') from (select run_id from events
		where kind in ('run_started', 'run_finished') group by run_id, kind having count(*) > 1) t" 2>&1)
	[[ ${#dup[@]} == 0 ]]
	t $? "k: three agents race for $n quick runs, no fault: each non-idempotent step executed once" "${dup[*]}"
	[[ -z $na && -z $twice ]]
	t $? "k: ... and each run started once, ended once, succeeded (none taken by a late executor)" \
		"not succeeded: '$na'; runs started or finished twice: '$twice'"
	stop "$A1"
	stop "$A2"
	stop "$A3"
	san "$D"/*.out "$D"/err*
}

# --- l. waiting runs do not starve an agent -----------------------------------
test_l() {
	local b i w=() id q
	for b in pg lite; do
		$b l-$b
		home=$D/agent
		[[ $BACKEND == SQLite ]] && home=$RBK_HOME
		w=()
		for i in 1 2 3; do
			r run "$APPR" -p ledger="$D/w$i" --queue pool --detach
			w+=("$OUT")
			timeout 60 "$RBK" agent --queue pool --once --concurrency 1 --home "$home" >>"$D/once.out" 2>&1
		done
		[[ $(st "${w[0]}") == waiting && $(st "${w[1]}") == waiting && $(st "${w[2]}") == waiting ]]
		t $? "l ($BACKEND): an agent of concurrency 1 brings three queued runs one by one to their approval" \
			"statuses $(st "${w[0]}") $(st "${w[1]}") $(st "${w[2]}"); agent: $(tail -3 "$D/once.out" | tr '\n' ' ')"
		r run "$CHAIN" -p ledger="$D/q" -p s1=10 -p s2=10 -p s3=10 -p s4=10 -p s5=10 --queue pool --detach
		q=$OUT
		timeout 60 "$RBK" agent --queue pool --once --concurrency 1 --home "$home" >>"$D/once.out" 2>&1
		[[ $(st "$q") == succeeded && $(labels "$D/q") == "one;two;three;four;five;" ]]
		t $? "l ($BACKEND): a run queued behind three waiting ones is executed" \
			"status $(st "$q"); ledger $(labels "$D/q"); agent: $(tail -3 "$D/once.out" | tr '\n' ' ')"
		r approve "${w[2]}"
		timeout 60 "$RBK" agent --queue pool --once --concurrency 1 --home "$home" >>"$D/once.out" 2>&1
		[[ $(st "${w[2]}") == succeeded && $(labels "$D/w3") == "approved;" && $(st "${w[0]}") == waiting ]]
		t $? "l ($BACKEND): the newest waiting run, once approved, is executed; the older ones still wait" \
			"statuses $(st "${w[0]}") $(st "${w[1]}") $(st "${w[2]}"); ledger $(labels "$D/w3"); agent: $(tail -3 "$D/once.out" | tr '\n' ' ')"
		san "$D"/*.out "$D/err"
	done
}

# AGENTS_ONLY="c e": only those (all by default); j stops the database, last.
for x in a b c d e f g h i k l j; do
	[[ -z ${AGENTS_ONLY:-} || " $AGENTS_ONLY " == *" $x "* ]] && "test_$x"
done
