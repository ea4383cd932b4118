# Helpers of the PostgreSQL runbook tests (pg-backup, pg-restore,
# schema-rollback, db-maintenance): databases of their own in the test
# cluster ($RBK_TEST_PG), dropped at exit. Source after tests/scripts/lib.bash
# and tests/sandbox/lib.bash.
: "${RBK_TEST_PG:?the PostgreSQL test cluster (RBK_TEST_PG) is needed}"
PG_DBS=()
# dsn_of DB: RBK_TEST_PG with its database replaced by DB.
dsn_of() { sed -E "s#^(postgres(ql)?://[^/?]*/)[^?]*#\1$1#" <<<"$RBK_TEST_PG"; }
# pg_cleanup: drop the databases made by mkdb (called by the EXIT trap).
pg_cleanup() {
	local d
	for d in "${PG_DBS[@]}"; do
		psql -X -q -d "$RBK_TEST_PG" -c "drop database if exists \"$d\" with (force)" >/dev/null 2>&1
	done
}
# mkdb DB: a new database owned by the cluster user, with the seed's tables:
# market_data (100 rows, a serial id) and trainset_m1 (50 rows).
mkdb() {
	psql -X -q -v ON_ERROR_STOP=1 -d "$RBK_TEST_PG" -c "create database \"$1\"" >/dev/null || return 1
	PG_DBS+=("$1")
	psql -X -q -v ON_ERROR_STOP=1 -d "$(dsn_of "$1")" >/dev/null <<'SQL'
create table market_data (id serial primary key, symbol text not null, ts timestamptz not null, close numeric(12,5));
create index market_data_symbol_ts on market_data (symbol, ts);
insert into market_data (symbol, ts, close)
  select case when i % 2 = 0 then 'EURUSD' else 'GBPUSD' end, timestamptz '2025-10-18 00:00+00' + i * interval '1 minute', 1.1 + i / 1000.0
  from generate_series(1, 100) i;
create table trainset_m1 (ts timestamptz primary key, symbol text not null, label smallint);
insert into trainset_m1 select timestamptz '2025-10-18 00:00+00' + i * interval '1 minute', 'EURUSD', i % 3 from generate_series(1, 50) i;
SQL
}
# q DB SQL: one value from DB.
q() { psql -X -A -t -q -d "$(dsn_of "$1")" -c "$2" 2>&1; }
# alerts: the texts of the webhook's messages, one a line (state.json is
# written indented: one "text" key a line, only alerts have one).
alerts() { sed -n 's/^ *"text": "\(.*\)",\{0,1\}$/\1/p' "$SANDBOX/state.json"; }
# var RUN NAME: the last value the run set for variable NAME.
var() { "$RBK" log "$1" --json | python3 -c 'import json,sys
v=None
for l in sys.stdin:
    e=json.loads(l)
    if e["kind"]=="vars_set" and sys.argv[1] in e["data"]["vars"]: v=e["data"]["vars"][sys.argv[1]]
print("" if v is None else v)' "$2"; }
# status RUN: the run's status.
status() { "$RBK" show "$1" --json | grep -o '"status":"[a-z_]*"' | head -n 1 | cut -d'"' -f4; }
