#!/bin/bash
# runbooks/daily-routine.yaml in the sandbox. Part 1: each task (a row of "Rotina Diária")
# run by hand, its happy path and its failure path (ping above 30 ms, feed latency above
# 50 ms, DD below -1.5 % "observar", the clock sync, Prefect, the backup,
# the power-off). Part 2: the routine fired by the scheduler at its São Paulo times
# (`rbk scheduler --once --now`), a Saturday that fires nothing, and catch_up after the
# scheduler was down. The schedule's exact times are tests/cases/schedule-daily-routine.case.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
EXTRA="$RBK_ROOT/tests/sandbox/extra/daily-routine"
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins" RBK_VPS_HOST=10.0.0.7
# The defaults `sudo ntpdate ...`, `sudo poweroff`, ping, prefect, docker find stand-ins.
export PATH="$EXTRA/bin:$RBK_ROOT/tests/sandbox/bin:$PATH"
# ./scripts/health-check.sh and `bash backup_clickhouse.sh` are relative to the run's directory.
cd "$EXTRA/work" || exit 1

n=0
case_() { # case_ NAME: a fresh home and sandbox in which everything is healthy
	sandbox_stop
	n=$((n + 1))
	export RBK_HOME="$TMP/home$n"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	sandbox_state 's["kv"] = {"metrics": {"feed_latency_ms": 12.5, "daily_drawdown_pct": -0.4, "requests_total": 1234, "error_rate": 0.01}}'
	mkdir -p "$SANDBOX/docker" "$SANDBOX/prefect" "$SANDBOX/models"
	# `docker compose logs --since 24h`: the stand-in reads docker/<last argument>.log.
	echo "2026-11-23 07:59:00 api INFO started" >"$SANDBOX/docker/24h.log"
	touch "$SANDBOX/models/rf_m1.pkl"
}
run() { # run TASK [ARGS...]: RC, OUT; the params point the runbook at the sandbox
	local t=$1; shift
	local p=(-p ping_cmd="$SANDBOX_BIN/ping" -p prefect="$SANDBOX_BIN/prefect"
		-p clock_sync_cmd="$SANDBOX_BIN/ntpdate pool.ntp.org"
		-p feed_url="$SANDBOX_URL/kv/metrics" -p dd_url="$SANDBOX_URL/kv/metrics")
	OUT=$("$RBK" run daily-routine -p task="$t" "${p[@]}" "$@" 2>&1); RC=$?
}
alerts() { python3 -c 'import json,sys; [print(a["text"].replace("\n", " | ")) for a in json.load(open(sys.argv[1])).get("alerts", [])]' "$SANDBOX/state.json"; }
nalerts() { alerts | wc -l; }
state() { "$RBK" show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
expect() { # expect NAME RC STATE: the run's exit code and end state
	local s; s=$(state 1)
	[[ $RC == "$2" && $s == "$3" ]] && ok "$1" || fail "$1" "rc=$RC state=$s; $(printf '%s' "$OUT" | tail -3 | tr '\n' ' ')"
}
called() { grep -qF -- "$1" "$SANDBOX/calls.log" 2>/dev/null; }

# ---- 07:45 ping ------------------------------------------------------------------------
case_ ping-ok
run ping
expect "ping: 12.3 ms < 30 ms, the VPS is up (exit 0)" 0 vps_up
called "ping -c 3 10.0.0.7" && [ "$(nalerts)" = 0 ] && ok "ping: pinged RBK_VPS_HOST, no alert" || fail "ping call" "$(cat "$SANDBOX/calls.log")"

case_ ping-slow
echo 45.2 >"$SANDBOX/ping_ms"
run ping
expect "ping: 45.2 ms >= 30 ms fails the run (exit 1)" 1 failed
alerts | grep -q "VPS 10.0.0.7 ping 45.2 ms (limite 30 ms)" && ok "ping: the slow VPS is alerted" || fail "ping alert" "$(alerts)"
"$RBK" log 1 --json | grep -q "$SANDBOX_URL/alert" && fail "the webhook (a secret) is not recorded" "found in the log" || ok "the webhook (a secret) is not recorded"
run ping -p max_ping_ms=50
[ $RC = 0 ] && ok "ping: the threshold is a param (max_ping_ms=50 accepts 45.2 ms)" || fail "ping threshold param" "rc=$RC"

case_ ping-down
run ping -p ping_cmd=false
expect "ping: no answer fails the run (exit 1)" 1 failed
alerts | grep -q "ping sem resposta" && ok "ping: the unreachable VPS is alerted" || fail "ping unreachable alert" "$(alerts)"

# ---- 08:00 clock sync (the MT5 Checklist Matinal is runbook-morning-checklist.sh's) ------
case_ clock-ok
run clock_sync
expect "clock sync: ntpdate ran (exit 0)" 0 clock_ok
called "ntpdate pool.ntp.org" && [ "$(nalerts)" = 0 ] && ok "clock sync: ntpdate pool.ntp.org, no alert" || fail "clock calls" "$(cat "$SANDBOX/calls.log"; alerts)"

case_ clock-bad
run clock_sync -p clock_sync_cmd="echo 'no server suitable for synchronization found' >&2; exit 1"
expect "clock sync: a failed sync fails the run (exit 1)" 1 failed
alerts | grep -q "daily-routine 08:00: relógio NÃO sincronizado (run 1): exited with code 1: no server suitable for synchronization found" \
	&& [ "$(nalerts)" = 1 ] && ok "clock sync: the failure and its reason are alerted once" || fail "clock alert" "$(alerts)"

# ---- 08:55 start ------------------------------------------------------------------------
case_ start-ok
run start
expect "start: prefect deployment run start_robot (exit 0)" 0 started
called "prefect deployment run start_robot" && [ "$(nalerts)" = 0 ] && ok "start: Prefect was asked once, no alert" || fail "start call" "$(cat "$SANDBOX/calls.log")"

case_ start-fail
touch "$SANDBOX/prefect/start_robot.fail"
run start
expect "start: a failed Prefect run fails the run (exit 1)" 1 failed
[ "$(grep -c "start_robot" "$SANDBOX/calls.log")" = 1 ] && ok "start: not retried (a second flow run could start a second robot)" || fail "start retried" "$(cat "$SANDBOX/calls.log")"
alerts | grep -q "start_robot FALHOU .*robô NÃO iniciou" && ok "start: the failure is alerted" || fail "start alert" "$(alerts)"

# ---- 09:00 feed check -------------------------------------------------------------------
case_ feed-ok
run feed_check
expect "feed: 12.5 ms < 50 ms, the feed is live (exit 0)" 0 feed_live
[ "$(nalerts)" = 0 ] && grep -q '"/kv/metrics"' "$SANDBOX/requests.jsonl" && ok "feed: the metrics were read, no alert" || fail "feed ok" "$(alerts)"

case_ feed-slow
sandbox_state 's["kv"]["metrics"]["feed_latency_ms"] = 80.4'
run feed_check
expect "feed: 80.4 ms >= 50 ms fails the run (exit 1)" 1 failed
alerts | grep -q "feed inativo: feed_latency_ms = 80.4 ms (limite 50 ms)" && ok "feed: the slow feed is alerted" || fail "feed alert" "$(alerts)"

case_ feed-prometheus # the production format: Prometheus text, with a label and decoys
mkdir -p "$TMP/static"
printf '# HELP feed_latency_ms Feed latency\n# TYPE feed_latency_ms gauge\nmax_feed_latency_ms 99\nfeed_latency_ms{source="mt5"} 61.5\n' >"$TMP/static/metrics"
python3 "$EXTRA/static.py" "$TMP/static" & STATIC_PID=$!
for _ in $(seq 100); do [ -e "$TMP/static/port" ] && break; sleep 0.05; done
run feed_check -p feed_url="http://127.0.0.1:$(cat "$TMP/static/port")/metrics"
kill "$STATIC_PID"; wait "$STATIC_PID" 2>/dev/null
expect "feed: read from Prometheus text (61.5 ms with a label) fails the run" 1 failed
alerts | grep -q "feed_latency_ms = 61.5 ms" && ok "feed: the labelled metric is read, not max_feed_latency_ms" || fail "feed prometheus" "$(alerts)"

case_ feed-absent
sandbox_state 's["kv"]["metrics"] = {"other_feed_latency_ms": 3}'
run feed_check
expect "feed: no latency metric fails the run (exit 1)" 1 failed
alerts | grep -q "feed inativo: feed_latency_ms = ilegível" && ok "feed: a missing metric is alerted (other_feed_latency_ms is not it)" || fail "feed absent alert" "$(alerts)"

# ---- 12:30 drawdown ---------------------------------------------------------------------
case_ dd-ok
run drawdown
expect "drawdown: -0.4 % (exit 0)" 0 dd_ok
[ "$(alerts)" = "daily-routine 12:30: snapshot DD parcial -0.4 %" ] && ok "drawdown: the snapshot went to the webhook, nothing else" || fail "dd snapshot" "$(alerts)"

case_ dd-observe
sandbox_state 's["kv"]["metrics"]["daily_drawdown_pct"] = -2.1'
run drawdown
expect "drawdown: -2.1 % < -1.5 % ends in observing (exit 0)" 0 observing
[ "$(nalerts)" = 2 ] && alerts | tail -1 | grep -q "DD -2.1 % < -1.5 %: observar" && ok "drawdown: snapshot, then the \"observar\" alert" || fail "dd observe alert" "$(alerts)"

# ---- 18:10 stop -------------------------------------------------------------------------
case_ stop-ok
run stop
expect "stop: prefect deployment run stop_robot (exit 0)" 0 stopped
called "prefect deployment run stop_robot" && ok "stop: Prefect was asked" || fail "stop call" "$(cat "$SANDBOX/calls.log")"

case_ stop-fail
touch "$SANDBOX/prefect/stop_robot.fail"
run stop
expect "stop: a failing stop fails the run (exit 1)" 1 failed
[ "$(grep -c "stop_robot" "$SANDBOX/calls.log")" = 3 ] && ok "stop: tried 3 times" || fail "stop attempts" "$(cat "$SANDBOX/calls.log")"
alerts | grep -q "stop_robot FALHOU .*parar manualmente" && ok "stop: the failure is alerted" || fail "stop alert" "$(alerts)"

# ---- 18:15 backup -----------------------------------------------------------------------
case_ backup-ok
run backup
expect "backup: bash backup_clickhouse.sh (exit 0)" 0 backed_up
grep -q "cwd=$EXTRA/work" "$SANDBOX/backups.log" 2>/dev/null && ok "backup: the script ran in the run's directory" || fail "backup effect" "$(cat "$SANDBOX/backups.log" 2>&1)"

case_ backup-fail
touch "$SANDBOX/backup.fail"
run backup
expect "backup: a failing backup fails the run (exit 1)" 1 failed
alerts | grep -q "backup ClickHouse delta FALHOU" && [ ! -e "$SANDBOX/backups.log" ] && ok "backup: the failure is alerted" || fail "backup alert" "$(alerts)"

# ---- 18:30 power-off --------------------------------------------------------------------
case_ poweroff-default
run poweroff
expect "poweroff: by default (not in phases 0-6) the VPS stays on (exit 0)" 0 stays_on
! called poweroff && [ "$(nalerts)" = 0 ] && ok "poweroff: nothing was called" || fail "poweroff default" "$(cat "$SANDBOX/calls.log")"

case_ poweroff-on
run poweroff -p poweroff=true
expect "poweroff: poweroff=true powers off (exit 0)" 0 powered_off
called "sudo poweroff" && [ -e "$SANDBOX/powered_off" ] && alerts | grep -q "desligando a VPS 10.0.0.7" \
	&& ok "poweroff: announced, then sudo poweroff" || fail "poweroff effect" "$(cat "$SANDBOX/calls.log"; alerts)"

case_ poweroff-fail
touch "$SANDBOX/poweroff.fail"
run poweroff -p poweroff=true
expect "poweroff: a failing power-off fails the run (exit 1)" 1 failed
alerts | tail -1 | grep -q "poweroff FALHOU" && ok "poweroff: the failure is alerted" || fail "poweroff alert" "$(alerts)"

# ---- the scheduler ----------------------------------------------------------------------
# A path holding only this runbook (others' schedules must not fire here), fresh homes, the
# production defaults (stand-ins found on PATH). America/Sao_Paulo is UTC-3 all year.
sched() { # sched NAME: a fresh home and sandbox for the scheduler
	case_ "$1"
	export RBK_PATH="$TMP/path-$1"
	mkdir -p "$RBK_PATH"
	cp "$RBK_ROOT/runbooks/daily-routine.yaml" "$RBK_PATH/"
	# the defaults' URLs (localhost:3000, :8001) are not the sandbox: those reads fail and alert.
}
nruns() { "$RBK" history --json --limit 1000 2>&1 | python3 -c 'import json,sys; t = sys.stdin.read(); print(len(json.loads(t)["runs"]) if t.startswith("{") else t.strip()[:200])'; }
runinfo() { # runinfo N: task actor nominal
	"$RBK" show "$1" --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
s = (r.get("provenance") or {}).get("schedule") or {}
print(r["params"]["task"], r["actor"], s.get("nominal", "?"))'
}
# tick TIME [ARGS...]: the scheduler at TIME. On PostgreSQL (a shared store)
# a fire creates its run queued for an agent (docs/scale-out.md): an agent
# executes them, as the scheduler itself does on SQLite.
tick() {
	SOUT=$("$RBK" scheduler --once --now "$@" 2>&1)
	SRC=$?
	on_pg && "$RBK" agent --once --concurrency 1000 >>"$TMP/agent.out" 2>&1
	return 0
}

sched monday
runs=0
for row in "2026-11-23T10:45:00Z ping 07:45" "2026-11-23T11:00:00Z clock_sync 08:00" "2026-11-23T11:55:00Z start 08:55" \
	"2026-11-23T12:00:00Z feed_check 09:00" "2026-11-23T15:30:00Z drawdown 12:30" "2026-11-23T21:10:00Z stop 18:10" \
	"2026-11-23T21:15:00Z backup 18:15" "2026-11-23T21:30:00Z poweroff 18:30"; do
	set -- $row
	tick "$1" --ticks 1 # the row's minute and the next one
	now=$(nruns)
	info=$(runinfo "$now" 2>&1)
	if [[ $SRC == 0 && $now == $((runs + 1)) && $info == "$2 $(principal) "* ]]; then # the scheduler's user
		ok "scheduler at $1 ($3 BRT) and a minute later: exactly one run, task=$2"
	else
		fail "scheduler at $1 ($3 BRT)" "exit $SRC, runs $runs -> $now, last: $info; $(printf '%s' "$SOUT" | tail -2 | tr '\n' ' ')"
	fi
	runs=$now
done
"$RBK" show 1 --json | grep -q '"2026-11-23T10:45:00' && ok "scheduler: the run records its nominal time" || fail "nominal time" "$("$RBK" show 1)"
called "ping -c 3 10.0.0.7" && called "sudo ntpdate pool.ntp.org" && called "prefect deployment run start_robot" \
	&& called "prefect deployment run stop_robot" && called "backup_clickhouse.sh" && ! called poweroff \
	&& ok "scheduler: the fired runs called their tools (and the default poweroff=false kept the VPS on)" \
	|| fail "scheduled effects" "$(cat "$SANDBOX/calls.log")"
[ "$(state 8)" = stays_on ] && ok "scheduler: the 18:30 run stayed on" || fail "18:30 state" "$(state 8)"

sched saturday
tick 2026-11-28T10:00:00Z --ticks 720 # 07:00 to 19:00 BRT, minute by minute
[[ $SRC == 0 && $(nruns) == 0 ]] && ok "scheduler: a Saturday (07:00-19:00 BRT) fires nothing" || fail "saturday" "exit $SRC, runs $(nruns)"

# catch_up: the scheduler was down from 07:40 to 09:05 BRT, then from 18:00 to 18:40.
sched catch-up
M="$TMP/metrics.prom"
tick 2026-11-23T10:40:00Z
tick 2026-11-23T12:05:00Z --metrics "$M"
tasks() { for i in $(seq 1 "$(nruns)"); do runinfo "$i" | cut -d' ' -f1; done | sort | tr '\n' ' '; } # (one tick starts its runs at once: any order)
got=$(tasks)
[ "$got" = "feed_check start " ] && ok "catch_up: back at 09:05, start (15m) and feed_check (15m) still run" || fail "morning catch-up" "runs: $got; $SOUT"
grep -q 'rbk_schedule_misses_total{runbook="daily-routine",entry="0"} 1' "$M" && grep -q 'rbk_schedule_misses_total{runbook="daily-routine",entry="1"} 1' "$M" \
	&& ok "catch_up: the 07:45 ping and the 08:00 clock sync (65 min late > 50m) are missed" || fail "morning misses" "$(grep misses "$M")"
tick 2026-11-23T21:00:00Z
tick 2026-11-23T21:40:00Z --metrics "$M"
got=$(tasks)
[ "$got" = "backup feed_check start " ] && ok "catch_up: back at 18:40, only the backup (2h) runs (the 12:30 snapshot, 5 h late, is missed)" || fail "evening catch-up" "runs: $got"
grep -q 'rbk_schedule_misses_total{runbook="daily-routine",entry="5"} 1' "$M" && grep -q 'rbk_schedule_misses_total{runbook="daily-routine",entry="7"} 1' "$M" \
	&& ok "catch_up: the stop (30 min late > 15m) and the power-off (never late) are missed" || fail "evening misses" "$(grep misses "$M")"
