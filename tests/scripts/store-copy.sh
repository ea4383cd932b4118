#!/bin/bash
# rbk store copy: an SQLite store copied into an empty PostgreSQL store.
#  - every row is kept as it was: runs (ids, times, owner pids, queues),
#    events (seq, times, hashes verbatim), steps, fires, sources (bytes),
#    meta (the seal's repository, the scheduler's last tick);
#  - the copy verifies with the same chain head, and a seal made before the
#    copy still matches it;
#  - history, log, show and replay say the same on the copy as on the
#    source, and the copy goes on: a new run continues the chain at
#    head + 1, a run waiting for approval can be approved;
#  - refused: a target that is not empty (exit 2, nothing changed), a
#    source that is not SQLite or a target that is not PostgreSQL (exit 2),
#    a target that cannot be reached (exit 6, no password printed); a copy
#    that fails half way leaves the target empty.
# Needs a PostgreSQL server: RBK_TEST_PG (make test starts one with
# tests/pg/cluster.sh). Without it this script fails: it never skips.
. "$(dirname "$0")/lib.bash"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins" NO_COLOR=1
unset RBK_CRASH_POINT RBK_PATH RBK_FAULT_IO RBK_FAULT_ALLOC RBK_STORE
if [[ -z ${RBK_TEST_PG:-} ]]; then
	fail "store copy needs a PostgreSQL server" "RBK_TEST_PG is not set (eval \"\$(tests/pg/cluster.sh)\")"
	exit 1
fi
export RBK_HOME=$TMP/home
FX=$RBK_ROOT/tests/fixtures/run
# The copy itself under LeakSanitizer: one process, no plugins loaded.
LEAKS=detect_leaks=1:intercept_tls_get_addr=0

t() { # t STATUS NAME WHY
	if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi
}
r() { # r ARGS...: rbk; RC OUT ERR
	"$RBK" "$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	OUT=$(<"$TMP/out")
	ERR=$(<"$TMP/err")
}
why() { printf 'exit %s; out: %s; err: %s' "$RC" "$(tail -3 <<<"$OUT")" "$(tail -3 <<<"$ERR")" | tr '\n' ' '; }
clean() { [[ $ERR != *Sanitizer* && $ERR != *"runtime error"* ]]; }
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$RBK_TEST_PG" -c "$1" 2>&1; }

# A schema per target, dropped at the end however the script ends.
P=copy$$
SCHEMAS=()
schema() { # schema NAME: a fresh schema; URL: a store URI that keeps the store in it
	SCHEMAS+=("$P$1")
	sql "DROP SCHEMA IF EXISTS $P$1 CASCADE; CREATE SCHEMA $P$1" >/dev/null
	URL="$RBK_TEST_PG&options=-csearch_path%3D$P$1"
}
cleanup() {
	local s
	for s in "${SCHEMAS[@]}"; do sql "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT

# Every row of both stores, in one text format (COPY's): the SQLite store
# through python3's sqlite3, the PostgreSQL one through psql. Sources as hex.
TABLES=(
	"runs|id, runbook, status, actor, created_at, updated_at, parent_run, parent_state, dry_run, params_json, source_sha256, provenance_json, current_state, owner_pid, lock_key, queue, epoch|id"
	"events|seq, run_id, at, actor, kind, data, prev_hash, hash|seq"
	"steps|run_id, state, attempt, status, started_seq, ended_seq, idempotency_key|run_id, state, attempt"
	"fires|id, runbook, entry, nominal, decided_at, outcome, run_id, note|id"
	"sources|sha256, bytes|sha256"
	"meta|key, value|key"
)
# rbk verify notes when it last ran (meta verify.last, for rbk metrics): the
# dumps leave that fact out, so that a verify between two dumps changes nothing.
NOT_VERIFY="WHERE key <> 'verify.last'"
dump_sqlite() { # dump_sqlite DB
	local t
	for t in "${TABLES[@]}"; do printf '%s\n' "$t"; done | python3 -c '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
esc = {"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
def cell(v):
    if v is None: return "\\N"
    if isinstance(v, bytes): return v.hex()
    return "".join(esc.get(c, c) for c in str(v))
for line in sys.stdin:
    table, cols, order = line.rstrip("\n").split("|")
    print("--", table)
    where = sys.argv[2] if table == "meta" else ""
    for row in db.execute(f"SELECT {cols} FROM {table} {where} ORDER BY {order}"):
        print("\t".join(cell(c) for c in row))
' "$1" "$NOT_VERIFY" 2>&1
}
dump_pg() { # dump_pg SCHEMA
	local t table cols order
	for t in "${TABLES[@]}"; do
		IFS='|' read -r table cols order <<<"$t"
		echo "-- $table"
		[[ $table == sources ]] && cols="sha256, encode(bytes, 'hex')"
		local where=
		[[ $table == meta ]] && where=$NOT_VERIFY
		psql -X -q -v ON_ERROR_STOP=1 "$RBK_TEST_PG" -c "COPY (SELECT $cols FROM $1.$table $where ORDER BY $order) TO STDOUT" 2>&1
	done
}
rows() { sql "SELECT (SELECT count(*) FROM $1.runs) + (SELECT count(*) FROM $1.events) + (SELECT count(*) FROM $1.steps)
	+ (SELECT count(*) FROM $1.fires) + (SELECT count(*) FROM $1.sources)"; }

# --- the source: an SQLite store with every kind of run, fires and a seal ---------------------
L=$TMP/ledger
r run "$FX/kinds.yaml" -p ledger="$L"
k=$RC
r run "$FX/retry.yaml" -p ledger="$L" -p counter="$TMP/counter"
f=$RC
r run "$FX/approval.yaml" -p ledger="$L"
a=$RC
r run "$FX/call-parent.yaml" -p ledger="$L"
c=$RC
r run "$FX/dryrun.yaml" -p ledger="$L" --dry-run
d=$RC
RBK_TEST_TOKEN=tok-s3cr3t-9 r run "$FX/secret.yaml"
s=$RC
mkdir -p "$TMP/path" && cp "$RBK_ROOT/tests/fixtures/sched/daemon/hourly.yaml" "$TMP/path/"
RBK_PATH=$TMP/path r scheduler --once --now 2026-06-01T10:00:20Z
sc1=$RC
RBK_PATH=$TMP/path r scheduler --once --now 2026-06-01T12:30:00Z # 11:00 and 12:00 missed
sc2=$RC
r audit seal --git "$TMP/seal"
se=$RC
nruns=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from runs").fetchone()[0])' "$RBK_HOME/rbk.db" 2>&1)
[[ "$k $f $a $c $d $s $sc1 $sc2 $se" == "0 1 4 0 0 0 0 0 0" && $nruns == 8 ]]
t $? "the source: succeeded, failed, waiting, a call (parent and child), a dry run, a secret param, a fired run, a seal" \
	"exits $k $f $a $c $d $s $sc1 $sc2 $se; $nruns runs; $(why)"
r verify --json
src_head=$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["events"], d["head"], d["sealed_at"], d["intact"])' <<<"$OUT")
read -r HEAD_SEQ HEAD_HASH SEALED INTACT <<<"$src_head"
[[ $INTACT == True && $SEALED == "$HEAD_SEQ" && ${#HEAD_HASH} == 64 ]]
t $? "the source verifies intact, sealed at its head (event $HEAD_SEQ)" "$src_head $(why)"
dump_sqlite "$RBK_HOME/rbk.db" >"$TMP/src.dump"
[[ $(grep -c '^[0-9]' "$TMP/src.dump") -gt 100 && $(grep -cP '\tfired\t|\tmissed\t' "$TMP/src.dump") == 3 ]]
t $? "the source holds fires (1 fired, 2 missed) and the rows to compare" "$(grep -c . "$TMP/src.dump") lines"

# --- refusals that touch nothing ---------------------------------------------------------------
schema empty
EMPTY=$URL
r store copy --to "sqlite:$TMP/other.db"
[[ $RC == 2 && $ERR == *"store copy writes only into PostgreSQL"* && ! -e $TMP/other.db ]] && clean
t $? "a target that is not PostgreSQL (sqlite:PATH): exit 2, says so, creates nothing" "$(why)"
r store copy --to "mysql://u:pw@h/db"
[[ $RC == 2 && $ERR == *"store copy writes only into PostgreSQL"*"'mysql:...'"* && $ERR != *pw@* ]] && clean
t $? "an unknown kind of target: exit 2, only its scheme quoted" "$(why)"
r store copy --to "$EMPTY" --store "$EMPTY"
tables=$(sql "SELECT count(*) FROM information_schema.tables WHERE table_schema = '${SCHEMAS[0]}'")
[[ $RC == 2 && $ERR == *"store copy reads only from SQLite"* && $tables == 0 ]] && clean
t $? "a source that is not SQLite (--store postgresql://...): exit 2, says so, the target not even opened" "$(why) tables $tables"
RBK_STORE=$EMPTY r store copy --to "$EMPTY"
[[ $RC == 2 && $ERR == *"store copy reads only from SQLite"* ]] && clean
t $? "... nor one named by RBK_STORE" "$(why)"
r store copy --to "$EMPTY" --home "$TMP/no-such-home"
[[ $RC == 2 && $ERR == *"no SQLite store at $TMP/no-such-home/rbk.db"* && ! -e $TMP/no-such-home ]] && clean
t $? "a source that does not exist: exit 2, named, not created" "$(why)"
r store copy
[[ $RC == 2 && $ERR == *"--to URL is required"* && $ERR == *"usage: rbk store copy --to URL"* ]]
t $? "without --to: a usage error (exit 2)" "$(why)"
r store copy --to
[[ $RC == 2 && $ERR == "rbk: error: option --to needs a value"* ]]
t $? "--to without a value says so" "$(why)"
r store
[[ $RC == 2 && $ERR == *"use 'rbk store copy --to URL'"* ]]
t $? "rbk store without copy: a usage error" "$(why)"
r store copy --to "postgresql://rbk:secret123@127.0.0.1:1/nowhere?password=secret123&connect_timeout=5"
[[ $RC == 6 && $ERR == *"cannot connect"* && $ERR == *"postgresql://rbk@127.0.0.1:1/nowhere"* &&
	"$OUT$ERR" != *secret123* ]] && clean
t $? "a target that cannot be reached: exit 6, named without its password (in user:pw@ and ?password=)" "$(why)"
# A source whose chain is broken is not copied: the copy would carry the damage.
python3 - "$RBK_HOME/rbk.db" "$TMP/broken.db" <<'PY'
import sqlite3, sys
src, dst = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.execute("DROP TRIGGER IF EXISTS events_no_update")
dst.execute("UPDATE events SET data = replace(data, '\"', ' \"') WHERE seq = 5")
dst.commit()
PY
r store copy --to "$EMPTY" --store "sqlite:$TMP/broken.db"
tables=$(sql "SELECT count(*) FROM information_schema.tables WHERE table_schema = '${SCHEMAS[0]}'")
[[ $RC == 6 && $ERR == *"the chain of $TMP/broken.db is broken at event 5"*"nothing copied"* && $tables == 0 ]] && clean
t $? "a source (--store sqlite:PATH) whose chain is broken: exit 6, the event named, the target not opened" "$(why)"
dump_sqlite "$RBK_HOME/rbk.db" >"$TMP/src.after-refusals"
cmp -s "$TMP/src.dump" "$TMP/src.after-refusals"
t $? "the refusals left the source as it was" "$(diff "$TMP/src.dump" "$TMP/src.after-refusals" | head -5)"

# --- a copy that fails half way: all or nothing ------------------------------------------------
schema boom
BOOM=$URL
r verify --store "$BOOM" # creates the schema, so that a trigger can be put on it
sql "CREATE FUNCTION ${SCHEMAS[1]}.boom() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN RAISE EXCEPTION 'boom: no fires here'; END\$\$;
	CREATE TRIGGER boom BEFORE INSERT ON ${SCHEMAS[1]}.fires FOR EACH ROW EXECUTE FUNCTION ${SCHEMAS[1]}.boom()" >/dev/null
ASAN_OPTIONS=$LEAKS r store copy --to "$BOOM"
[[ $RC == 6 && $ERR == *"import fire: boom: no fires here"*"nothing was committed"* && $OUT == "" &&
	$(rows "${SCHEMAS[1]}") == 0 && $(sql "SELECT count(*) FROM ${SCHEMAS[1]}.meta $NOT_VERIFY") == 0 ]] && clean
t $? "an import that fails after the runs and events (a fire refused): exit 6, the target left empty" "$(why) rows $(rows "${SCHEMAS[1]}")"

# --- the copy -------------------------------------------------------------------------------------
schema main
# A password the test server does not ask for: it must not be printed.
COPY=$URL
COPYPW="$URL&password=secret123"
ASAN_OPTIONS=$LEAKS r store copy --to "$COPYPW"
want="copied 8 runs, $HEAD_SEQ events, 3 fires from $RBK_HOME/rbk.db to postgresql://"
[[ $RC == 0 && $OUT == "$want"*"; chain head $HEAD_SEQ $HEAD_HASH" && $(wc -l <<<"$OUT") == 1 &&
	"$OUT$ERR" != *secret123* && $ERR == "" ]]
t $? "copy: exit 0, one line: 8 runs, $HEAD_SEQ events, 3 fires, from the file to the URI (no password), the chain head" "$(why)"
dump_pg "${SCHEMAS[2]}" >"$TMP/copy.dump"
cmp -s "$TMP/src.dump" "$TMP/copy.dump"
t $? "every row of runs, events, steps, fires, sources and meta is the same in the copy, column by column" \
	"$(diff "$TMP/src.dump" "$TMP/copy.dump" | head -6)"
dump_sqlite "$RBK_HOME/rbk.db" >"$TMP/src.after-copy"
cmp -s "$TMP/src.dump" "$TMP/src.after-copy"
t $? "the source is left as it was" "$(diff "$TMP/src.dump" "$TMP/src.after-copy" | head -5)"
! grep -q tok-s3cr3t-9 "$TMP/copy.dump"
t $? "the secret param stays masked in the copy" ""

r verify --store "$COPY"
[[ $RC == 0 && $OUT == "$HEAD_SEQ events, chain intact; head $HEAD_HASH; sealed at event $HEAD_SEQ" ]] && clean
t $? "rbk verify on the copy: intact, the same head, and the seal made before the copy matches" "$(why)"

# --- the copy reads as the source does --------------------------------------------------------
same() { # same ARGS...: rbk ARGS on the source and on the copy print the same and exit the same
	local a b ra rb
	a=$("$RBK" "$@" 2>&1)
	ra=$?
	b=$("$RBK" "$@" --store "$COPY" 2>&1)
	rb=$?
	[[ $a == "$b" && $ra == "$rb" && -n $a ]] || { echo "rbk $*: exit $ra/$rb"; diff <(echo "$a") <(echo "$b") | head -4; }
}
bad=""
for args in "history" "history --json" "history --scheduled" "status"; do
	# shellcheck disable=SC2086
	bad+=$(same $args)
done
[[ -z $bad ]]
t $? "history, history --json, history --scheduled, status: identical on the copy" "$bad"
bad=""
for n in 1 2 3 4 5 6 7 8; do
	for args in "log $n" "log $n --json" "show $n" "show $n --json"; do
		# shellcheck disable=SC2086
		bad+=$(same $args)
	done
done
[[ -z $bad ]]
t $? "log N, log N --json, show N, show N --json: identical on the copy for all 8 runs" "$bad"
bad=""
for n in 1 2 3 4 5 6 7 8; do
	r replay "$n" --store "$COPY"
	[[ $RC == 0 && $OUT == *", 0 divergences"* ]] && clean || bad+="[replay $n: $(why)] "
done
[[ -z $bad ]]
t $? "rbk replay N on the copy: 0 divergences for all 8 runs" "$bad"

# --- a copy is not copied over ----------------------------------------------------------------
ASAN_OPTIONS=$LEAKS r store copy --to "$COPY"
[[ $RC == 2 && $ERR == *"the target postgresql://"*"is not empty (it holds 8 runs, $HEAD_SEQ events, 3 fires, 8 sources"* &&
	$ERR == *"nothing was changed"* && $OUT == "" ]] && clean
dump_pg "${SCHEMAS[2]}" >"$TMP/copy.again"
[[ $? == 0 ]] && cmp -s "$TMP/copy.dump" "$TMP/copy.again"
t $? "a second copy into the same store: exit 2, the target named with what it holds, nothing changed" "$(why)"
schema onerun
r run "$FX/kinds.yaml" -p ledger="$TMP/ledger2" --store "$URL"
r store copy --to "$URL"
[[ $RC == 2 && $ERR == *"is not empty (it holds 1 run, "* && $(sql "SELECT count(*) FROM ${SCHEMAS[3]}.runs") == 1 ]] && clean
t $? "a target holding one run of its own: refused (exit 2), left with its one run" "$(why)"

# --- the copy goes on ---------------------------------------------------------------------------
r run "$FX/kinds.yaml" -p ledger="$TMP/ledger3" --store "$COPY" --json
first=$(sql "SELECT seq || ' ' || prev_hash || ' ' || run_id FROM ${SCHEMAS[2]}.events WHERE run_id = 9 ORDER BY seq LIMIT 1")
[[ $RC == 0 && $OUT == *'"run": 9'* && $first == "$((HEAD_SEQ + 1)) $HEAD_HASH 9" ]] && clean
t $? "a new run on the copy is run 9; its first event is $((HEAD_SEQ + 1)), linked to the copied head" "$(why) first: $first"
r approve 3 --store "$COPY"
st=$(sql "SELECT status FROM ${SCHEMAS[2]}.runs WHERE id = 3")
[[ $RC == 0 && $st == succeeded && $(grep -c approved "$L") == 1 ]] && clean
t $? "the run that was waiting for approval is approved on the copy and succeeds" "$(why) status $st"
r show 3
[[ $OUT == *waiting* ]]
t $? "... while on the source it still waits" "$(why)"
r verify --store "$COPY"
n=$(sql "SELECT count(*) FROM ${SCHEMAS[2]}.events")
[[ $RC == 0 && $OUT == "$n events, chain intact; head "*"; sealed at event $HEAD_SEQ" && $n -gt $((HEAD_SEQ + 5)) ]] && clean
t $? "the copy still verifies intact after the new events, the old seal still matching" "$(why)"
