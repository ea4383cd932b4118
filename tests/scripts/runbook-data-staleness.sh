#!/bin/bash
# runbooks/data-staleness.yaml on a real SQLite candle database and the
# sandbox exchange: fresh data (nothing done), the happy path (API up, rate
# limit fine, the update job backfills exactly the stale symbols, the data
# validates), the API down (tried with backoff, alerted, no update), the
# rate limit exhausted, an update job that fails, an update that leaves the
# data stale (escalated after monitor_for), and data that becomes fresh
# while the run monitors it.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
COLL="$RBK_ROOT/tests/sandbox/extra/data-staleness/collector.py"

setup() { # setup CASE [STALE]: 60 symbols, the last STALE of them (default 10) with H4 30 h and H1 10 h old
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1"
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	DB="$SANDBOX/crypto_agent.db"
	"$PY" - "$DB" "${2:-10}" <<'PY'
import sqlite3, sys, time
db, stale = sqlite3.connect(sys.argv[1]), int(sys.argv[2])
now = int(time.time())
for table, fresh_age, stale_age in (("ohlcv_h4", 3600, 30 * 3600), ("ohlcv_h1", 600, 10 * 3600)):
    db.execute(f"create table {table} (symbol text not null, timestamp integer not null, open real, high real, low real, close real, volume real)")
    for i in range(60):
        age = stale_age if i >= 60 - stale else fresh_age
        # H4 in Unix milliseconds, H1 in seconds: both forms are read
        ts = [(now - age - k * 3600) * (1000 if table == "ohlcv_h4" else 1) for k in range(3)]
        db.executemany(f"insert into {table} values (?,?,1,1,1,1,1)", [(f"SYM{i:02d}USDT", t) for t in ts])
db.commit()
PY
	ARGS=(-p db="$DB" -p time_url="$SANDBOX_URL/exchange/ping" -p rate_limit_url="$SANDBOX_URL/exchange/rate_limit"
		-p collector_cmd="'$PY' '$COLL' --mode=update --symbols=\"\$SYMBOLS\"" -p workdir="$SANDBOX"
		-p monitor_every=200ms -p monitor_for=1s)
}
st() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }
nreq() { cat "$SANDBOX/requests.jsonl" 2>/dev/null | grep -c "\"path\": \"$1\""; }
fresh_count() { "$PY" -c 'import sqlite3,sys,time; d=sqlite3.connect(sys.argv[1]); t=int(time.time())
ts = "case when timestamp > 100000000000 then timestamp / 1000 else timestamp end"
print(d.execute(f"select count(*) from (select symbol from ohlcv_h4 group by symbol having max({ts}) >= ? intersect select symbol from ohlcv_h1 group by symbol having max({ts}) >= ?)", (t - 86400, t - 21600)).fetchone()[0])' "$DB"; }
STALE10="SYM50USDT,SYM51USDT,SYM52USDT,SYM53USDT,SYM54USDT,SYM55USDT,SYM56USDT,SYM57USDT,SYM58USDT,SYM59USDT"

# Fresh data (2 stale symbols: coverage 96.7% >= 95%): nothing done.
setup fresh 2
out=$("$RBK" run data-staleness "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *fresh" && ok "fresh data (coverage 58/60): nothing to do, exit 0" || fail "fresh" "rc=$rc $out"
[ ! -e "$SANDBOX/collector.log" ] && [ "$(nreq /exchange/ping)" = 0 ] && [ "$(st 'len(s.get("alerts", []))')" = 0 ] \
	&& ok "fresh: no API call, no update, no alert" || fail "fresh effects" ""
sandbox_stop

# Happy path: 10 stale symbols (coverage 83%): API up, update of those 10, fresh again.
setup happy
[ "$(fresh_count)" = 50 ] || fail "fixture" "$(fresh_count)"
out=$("$RBK" run data-staleness "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *done" && ok "stale data updated and validated, exit 0" || fail "happy exit" "rc=$rc $out"
[ "$(nreq /exchange/ping)" = 1 ] && [ "$(nreq /exchange/rate_limit)" = 1 ] && ok "the API time and the rate limit were checked first" || fail "api checks" "$(cat "$SANDBOX/requests.jsonl")"
[ "$(cat "$SANDBOX/collector.log")" = "--mode=update --symbols=$STALE10 DB=$DB" ] \
	&& ok "the update job ran once, for exactly the 10 stale symbols" || fail "collector args" "$(cat "$SANDBOX/collector.log")"
[ "$(fresh_count)" = 60 ] && ok "the database now has fresh H4 and H1 candles for all 60 symbols" || fail "db fresh" "$(fresh_count)"
[ "$(st '"resolved" in s["alerts"][-1]["text"] and "coverage 100" in s["alerts"][-1]["text"]')" = True ] && ok "the channel is told (coverage 100%)" || fail "happy alert" "$(st 's.get("alerts")')"
sandbox_stop

# The API is down: tried 3 times with backoff, alerted, no update.
setup down
sandbox_state 's["exchange"] = {"down": True}'
t0=$(date +%s%N)
out=$("$RBK" run data-staleness "${ARGS[@]}" 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc = 1 ] && [ ! -e "$SANDBOX/collector.log" ] && ok "API down: exit 1, the update job was not run" || fail "down" "rc=$rc $out"
[ "$(nreq /exchange/ping)" = 3 ] && [ $ms -ge 1500 ] && ok "the API was tried 3 times with backoff (0.5 s, then 1 s; ${ms} ms)" || fail "down retries" "$(nreq /exchange/ping) ${ms}ms"
[ "$(st '"is DOWN" in s["alerts"][-1]["text"] and s["alerts"][-1]["severity"] == "critical"')" = True ] && ok "a critical alert says the API is down" || fail "down alert" "$(st 's.get("alerts")')"
[ "$(fresh_count)" = 50 ] && ok "the database is untouched" || fail "down db" ""
sandbox_stop

# The rate limit is nearly exhausted (1150/1200 >= 90%): no update.
setup rate
sandbox_state 's["exchange"] = {"rate_used": 1150, "rate_limit": 1200}'
out=$("$RBK" run data-staleness "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && [ ! -e "$SANDBOX/collector.log" ] && [ "$(st '"1150/1200" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "rate limit at 1150/1200: alerted, no update, exit 1" || fail "rate" "rc=$rc $out $(st 's.get("alerts")')"
sandbox_stop

# The update job fails: escalated.
setup collfail
echo fail >"$SANDBOX/collector.mode"
out=$("$RBK" run data-staleness "${ARGS[@]}" 2>&1); rc=$?
[ $rc = 1 ] && [ -s "$SANDBOX/collector.log" ] && "$RBK" log 1 | grep -q "update -> update_failed" \
	&& [ "$(st '"data update FAILED (exit 1)" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "update job failed: escalated to data recovery, exit 1" || fail "collector fail" "rc=$rc $out $(st 's.get("alerts")')"
sandbox_stop

# The update "succeeds" but the data stays stale: monitored for monitor_for, then escalated.
setup noop
echo noop >"$SANDBOX/collector.mode"
out=$("$RBK" run data-staleness "${ARGS[@]}" 2>&1); rc=$?
n=$("$RBK" log 1 | grep -c "step_started *monitor ")
[ $rc = 1 ] && "$RBK" log 1 | grep -q "monitor -> still_stale" && [ "$n" -ge 3 ] \
	&& ok "still stale after the update: monitored ($n checks over 1 s), exit 1" || fail "noop" "rc=$rc n=$n $out"
[ "$(st '"STILL STALE" in s["alerts"][-1]["text"] and "coverage 83" in s["alerts"][-1]["text"] and "SYM59USDT" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "the escalation gives the coverage and the stale symbols" || fail "noop alert" "$(st 's.get("alerts")')"
sandbox_stop

# The data becomes fresh while the run monitors it (the backfill lands 0.5 s after the update job).
setup late
echo noop >"$SANDBOX/collector.mode"
( for _ in $(seq 300); do [ -s "$SANDBOX/collector.log" ] && break; sleep 0.1; done; sleep 0.5; "$PY" -c 'import sqlite3,sys,time; d=sqlite3.connect(sys.argv[1]); t=int(time.time())
for i in range(50, 60):
    d.execute("insert into ohlcv_h4 values (?,?,1,1,1,1,1)", ("SYM%02dUSDT" % i, t * 1000)); d.execute("insert into ohlcv_h1 values (?,?,1,1,1,1,1)", ("SYM%02dUSDT" % i, t))
d.commit()' "$DB" ) & late=$!
out=$("$RBK" run data-staleness "${ARGS[@]}" -p monitor_for=10s 2>&1); rc=$?
wait $late
n=$("$RBK" log 1 | grep -c "step_started *monitor ")
[ $rc = 0 ] && "$RBK" show 1 | grep -q "state *done" && [ "$n" -ge 2 ] && ok "late backfill: seen by the monitor after $n checks, exit 0" || fail "late" "rc=$rc n=$n $out"
