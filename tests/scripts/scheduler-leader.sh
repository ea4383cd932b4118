#!/bin/bash
# One scheduler leads a shared (PostgreSQL) store; the others wait and take
# over when it dies. Over a simulated day (--now, a minute per tick) with
# the leader killed again and again (SIGKILL, at random, mid-fire too),
# every due time is fired exactly once and each fire has exactly one run.
. "$(dirname "$0")/lib.bash"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins" NO_COLOR=1
unset RBK_CRASH_POINT RBK_FAULT_IO RBK_FAULT_ALLOC RBK_HOME
if [[ -z ${RBK_TEST_PG:-} ]]; then
	fail "scheduler leader election" "RBK_TEST_PG not set: no PostgreSQL server (tests/pg/cluster.sh starts one)"
	exit 0
fi
schema=sl_$$_$RANDOM
psql "$RBK_TEST_PG" -qc "create schema $schema" >/dev/null || { fail "scheduler leader election" "cannot create a schema"; exit 0; }
trap 'psql "$RBK_TEST_PG" -qc "drop schema $schema cascade" >/dev/null 2>&1; rm -rf "$TMP"' EXIT
export RBK_STORE="$RBK_TEST_PG&options=-csearch_path%3D$schema"
q() { psql "$RBK_STORE" -Atc "$1" 2>&1; }

mkdir -p "$TMP/rb"
cat >"$TMP/rb/tick.yaml" <<'EOF2'
rbk: 1
name: tick
queue: pool
schedule:
  - cron: "*/5 * * * *"
start: done
states:
  done: {end: success}
EOF2
export RBK_PATH="$TMP/rb"
DAY=2026-12-05T00:00:00Z
start_one() { # a scheduler over the whole day, in a process group of its own
	setsid "$RBK" scheduler --once --now "$DAY" --ticks 1440 --home "$TMP/h$1" >"$TMP/s$1.log" 2>&1 &
	echo $!
}
# Two schedulers at once: one leads, one waits.
a=$(start_one 0)
b=$(start_one 1)
sleep 1
leaders=$(grep -l "leading the schedules" "$TMP"/s0.log "$TMP"/s1.log 2>/dev/null | wc -l)
waiting=$(grep -l "another scheduler leads" "$TMP"/s0.log "$TMP"/s1.log 2>/dev/null | wc -l)
[[ $leaders == 1 && $waiting == 1 ]] && ok "two schedulers on one store: one leads, the other waits to take over" ||
	fail "two schedulers on one store: one leads, the other waits to take over" "leading: $leaders, waiting: $waiting"

# Kill whichever leads, at random moments, and start another each time.
RANDOM=$((${SEED:-$$} % 32768))
echo "# seed $RANDOM"
pids=("$a" "$b")
n=2 kills=0
for round in 1 2 3 4 5 6; do
	sleep "0.$((RANDOM % 6 + 2))"
	for i in "${!pids[@]}"; do
		p=${pids[$i]}
		if kill -0 "$p" 2>/dev/null && grep -q "leading the schedules" "$TMP/s$i.log"; then
			kill -9 "$p" 2>/dev/null && kills=$((kills + 1))
			break
		fi
	done
	pids[$n]=$(start_one $n)
	n=$((n + 1))
done
echo "# $kills leader(s) killed"
# The last ones finish the day.
deadline=$((SECONDS + 240))
while ((SECONDS < deadline)); do
	alive=0
	for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
	((alive == 0)) && break
	sleep 0.5
done
for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
wait 2>/dev/null
((kills >= 2)) && ok "leaders killed during the day: $kills" || fail "leaders killed during the day" "only $kills"
day=$(q "select count(*) from fires where nominal >= '$DAY'")
distinct=$(q "select count(distinct nominal) from fires where nominal >= '$DAY'")
fired=$(q "select count(*) from fires where nominal >= '$DAY' and outcome = 'fired' and run_id is not null")
runs=$(q "select count(*) from runs r join fires f on f.run_id = r.id where f.nominal >= '$DAY'")
allruns=$(q "select count(*) from runs")
other=$(q "select count(*) from fires where nominal < '$DAY' and outcome = 'fired'")
[[ $day == 288 && $distinct == 288 && $fired == 288 ]] && ok "each of the day's 288 due times was fired exactly once" ||
	fail "each of the day's 288 due times was fired exactly once" "fires $day, distinct $distinct, fired with a run $fired; $(q "select outcome, count(*) from fires group by 1" | tr '\n' ' ')"
[[ $runs == 288 && $allruns == $((288 + other)) ]] && ok "each fire has one run, and no run was made twice" ||
	fail "each fire has one run, and no run was made twice" "runs of the day's fires $runs, runs in all $allruns, fires before the day $other"
queued=$(q "select count(*) from runs where status = 'queued' and queue = 'pool'")
[[ $queued == "$allruns" ]] && ok "the fired runs are queued on the runbook's queue for agents" ||
	fail "the fired runs are queued on the runbook's queue for agents" "queued on pool: $queued of $allruns"
out=$("$RBK" verify 2>&1)
[[ $? == 0 && $out == *"chain intact"* ]] && ok "the audit chain is intact after the failovers" || fail "the audit chain is intact after the failovers" "$out"
