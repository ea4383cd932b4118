#!/bin/bash
# The sqlite plugin, black box: runbooks run through rbk against real SQLite
# files made with python3's sqlite3 module, some deliberately corrupted.
# Effects are checked on disk (bytes, names, rows) and outputs through
# `rbk log RUN --json` (step_finished data.result.out) and through guards.
. "$(dirname "$0")/lib.bash"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
export RBK_HOME="$TMP/home"
unset RBK_PATH
# The sanitizer runtime of this toolchain (GCC 12, glibc 2.36) misreads the
# dynamic TLS of libraries that real plugins load (libgit2, libcurl, OpenSSL)
# and, depending on the memory layout, its leak check crashes at exit
# ("Tracer caught signal 11"): google/sanitizers#1322. Leak checking stays
# on; only the interception of __tls_get_addr is off.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}intercept_tls_get_addr=0"
D=$TMP/data
B=$TMP/backups
mkdir -p "$D" "$B"

# --- helpers ---------------------------------------------------------------
# rb NAME [ARGS...]: write $TMP/NAME.yaml from stdin and run it; RC, RUN, ERR
rb() {
	local name=$1
	shift
	cat >"$TMP/$name.yaml"
	"$RBK" run "$TMP/$name.yaml" --json "$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	RUN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"])' "$TMP/out" 2>/dev/null)
	ERR=$(<"$TMP/err")
	grep -q 'Sanitizer\|runtime error:' "$TMP/err" && cat "$TMP/err" >&2
	return 0
}
# res STATE EXPR: a python expression over the step's result r and outputs o
res() {
	"$RBK" log "$RUN" --json 2>/dev/null | python3 -c '
import json, sys
state, expr = sys.argv[1], sys.argv[2]
r = {}
for line in sys.stdin:
    e = json.loads(line)
    if e["kind"] == "step_finished" and e["data"]["state"] == state:
        r = e["data"]["result"]
o = r.get("out") or {}
v = eval(expr)
print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2"
}
why() { printf 'exit %s; %s' "$RC" "$(tail -3 "$TMP/err" | tr '\n' ' ')"; }
# t NAME CONDITION...: ok when the [[ ]] condition (a string) holds
t() {
	local name=$1
	shift
	if eval "[[ $* ]]"; then ok "$name"; else fail "$name" "$(why)"; fi
}
pyq() { python3 - "$@"; } # run python code from stdin with args

# mkdb FILE MARKER: a real database with a table of 300 rows, an index and
# a marker row telling which version it is.
mkdb() {
	pyq "$1" "$2" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("create table items(id integer primary key, name text, price real, note text, raw blob)")
db.executemany("insert into items(name, price, note, raw) values (?, ?, ?, ?)",
               [("item%d" % i, i * 1.25, "x" * 200, bytes([i % 256, 1])) for i in range(300)])
db.execute("create index items_name on items(name)")
db.execute("create table meta(k text primary key, v text)")
db.execute("insert into meta values ('version', ?)", (sys.argv[2],))
db.commit()
db.close()
PY
}
# corrupt FILE: overwrite bytes in the middle of the file (pages 2 and 3)
corrupt() {
	pyq "$1" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    page = int.from_bytes(open(sys.argv[1], "rb").read(18)[16:18], "big")
    f.seek(page + 8)
    f.write(b"\xa5" * (2 * page - 16))
PY
}
pycheck() { # pycheck FILE: python's own integrity_check of FILE
	python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("pragma integrity_check").fetchone()[0])' "$1" 2>&1
}
version_of() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select v from meta").fetchone()[0])' "$1" 2>&1; }
leftovers() { find "$1" -name '*tmp*' -o -name '*-journal' -o -name '*-wal' | head -3; }

mkdb "$D/app.db" v1

# --- the plugin is loaded, with the right idempotency ----------------------
out=$("$RBK" plugins 2>/dev/null)
[[ $out == *"sqlite.integrity_check: "*"[idempotent]"* && $out == *"sqlite.backup: "*"[idempotent]"* &&
	$out == *"sqlite.restore: "*"[idempotent]"* && $out == *"sqlite.query: "*"[idempotent]"* &&
	$(grep '^  sqlite.exec:' <<<"$out") != *idempotent* ]] &&
	ok "rbk plugins lists the five actions; all but exec are idempotent" || fail "plugins" "$out"

# --- integrity_check -------------------------------------------------------
rb chk_good -p db="$D/app.db" <<'Y'
rbk: 1
name: chk-good
params: {db: {type: string}}
start: chk
states:
  chk:
    do: sqlite.integrity_check
    with: {db: "{{ params.db }}"}
    next:
      - if: steps.chk.out.ok && steps.chk.out.count == 0 && len(steps.chk.out.problems) == 0
        to: good
      - to: bad
  good: {end: success}
  bad: {end: failure}
Y
t "integrity_check: a sound database is ok, 0 problems (guard on the outputs)" '$RC == 0'

cp "$D/app.db" "$D/broken.db"
corrupt "$D/broken.db"
cp "$D/broken.db" "$D/broken.orig"
[[ $(pycheck "$D/broken.db") != ok ]] && ok "the corrupted copy is damaged for python's sqlite3 too" ||
	fail "corrupt" "python still says ok"
rb chk_bad -p db="$D/broken.db" <<'Y'
rbk: 1
name: chk-bad
params: {db: {type: string}}
start: chk
states:
  chk:
    do: sqlite.integrity_check
    with: {db: "{{ params.db }}"}
    next:
      - if: "!steps.chk.out.ok && steps.chk.out.count > 0"
        to: damaged
      - to: wrong
  damaged: {end: success}
  wrong: {end: failure}
Y
t "integrity_check: a corrupted database is reported not ok, and the step succeeds" '$RC == 0'
t "integrity_check: problems are strings, count matches, and the file is untouched" \
	'$(res chk "all(isinstance(p, str) and p for p in o[\"problems\"]) and len(o[\"problems\"]) == o[\"count\"]") == true' \
	'&& $(res chk "r[\"status\"]") == ok' '&& -z $(cmp "$D/broken.db" "$D/broken.orig" 2>&1)'

rb chk_missing -p db="$D/nope.db" <<'Y'
rbk: 1
name: chk-missing
params: {db: {type: string}}
start: chk
states:
  chk:
    do: sqlite.integrity_check
    with: {db: "{{ params.db }}"}
    next: done
  done: {end: success}
Y
t "integrity_check: a missing file fails the step, naming it, and is not created" '$RC == 1' \
	'&& $(res chk "r[\"error\"]") == "integrity check failed: cannot open database $D/nope.db: No such file or directory"' \
	'&& ! -e "$D/nope.db"'

printf 'just some text, not a database at all; long enough to have a header...........................................\n' >"$D/text.db"
rb chk_text -p db="$D/text.db" <"$TMP/chk_missing.yaml"
t "integrity_check: a file that is not a database fails the step" '$RC == 1' \
	'&& $(res chk "r[\"error\"]") == "integrity check failed: $D/text.db is not a database"'

# --- backup ----------------------------------------------------------------
cat >"$TMP/backup.yaml" <<'Y'
rbk: 1
name: backup
params:
  db: {type: string}
  dir: {type: string}
  keep: {type: int, default: 7}
start: bk
states:
  bk:
    do: sqlite.backup
    with: {db: "{{ params.db }}", dir: "{{ params.dir }}", keep: "{{ params.keep }}"}
    next: done
  done: {end: success}
Y
rb backup1 -p db="$D/app.db" -p dir="$B/new/sub" <"$TMP/backup.yaml"
P=$(res bk 'o["path"]')
t "backup: creates DIR (missing parents too) and DIR/<name>.<UTC stamp>.bak" '$RC == 0' \
	'&& $P =~ ^$B/new/sub/app\.db\.[0-9]{8}T[0-9]{6}Z\.bak$ && -f $P'
t "backup: the stamp is the current UTC time" \
	'$(( $(date -u +%s) - $(date -u -d "$(sed -E "s/.*\.([0-9]{8})T([0-9]{2})([0-9]{2})([0-9]{2})Z\.bak/\1 \2:\3:\4 UTC/" <<<"$P")" +%s) )) -lt 10'
t "backup: size is the file's size; the copy passes python's integrity check and holds the rows" \
	'$(res bk "o[\"size\"]") == $(stat -c %s "$P") && $(pycheck "$P") == ok' \
	'&& $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*), sum(price) from items\").fetchone())" "$P") == "(300, 56062.5)"' \
	'&& $(res bk "o[\"removed\"]") == "[]" && $(res bk "o[\"checked\"]") == true'
t "backup: no temp, journal or WAL file is left in DIR" '-z $(leftovers "$B/new")' '&& $(ls -A "$B/new/sub" | wc -l) == 1'

# Online: a live WAL database, rows only in the -wal, its writer still open.
python3 - "$D/live.db" "$TMP/live.ready" <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("pragma journal_mode=wal")
db.execute("pragma wal_autocheckpoint=0")
db.execute("create table t(x)")
db.executemany("insert into t values (?)", [(i,) for i in range(500)])
open(sys.argv[2], "w").close()
time.sleep(30)
PY
LIVE=$!
for _ in $(seq 100); do [[ -e $TMP/live.ready ]] && break; sleep 0.05; done
walsize=$(stat -c %s "$D/live.db-wal" 2>/dev/null)
rb backup_live -p db="$D/live.db" -p dir="$B/live" <"$TMP/backup.yaml"
P=$(res bk 'o["path"]')
t "backup: online, of a WAL database with a live writer: the copy has the rows still in the WAL" '$RC == 0' \
	'&& ${walsize:-0} -gt 0' \
	'&& $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from t\").fetchone()[0])" "$P") == 500' \
	'&& $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"pragma journal_mode\").fetchone()[0])" "$P") == delete' \
	'&& -z $(leftovers "$B/live")'
kill "$LIVE" 2>/dev/null
wait "$LIVE" 2>/dev/null

# Pruning: older backups of app.db (and of another db, and other files).
P1=$(ls "$B/new/sub"/*.bak)
mkdir -p "$B/p"
for s in 20200101T000000Z 20210101T000000Z 20220101T000000Z 20230101T000000Z; do cp "$P1" "$B/p/app.db.$s.bak"; done
cp "$P1" "$B/p/other.db.20200101T000000Z.bak"
echo notes >"$B/p/app.db.notes"
echo x >"$B/p/app.db.2020.bak"
rb backup_prune -p db="$D/app.db" -p dir="$B/p" -p keep=3 <"$TMP/backup.yaml"
P=$(res bk 'o["path"]')
t "backup: prunes to the newest 'keep' backups of that db, listing what it removed" '$RC == 0' \
	'&& $(res bk "sorted(o[\"removed\"])") == "[\"$B/p/app.db.20200101T000000Z.bak\", \"$B/p/app.db.20210101T000000Z.bak\"]"' \
	'&& $(cd "$B/p" && ls app.db.2*Z.bak | tr "\n" " ") == "app.db.20220101T000000Z.bak app.db.20230101T000000Z.bak ${P##*/} "'
t "backup: pruning leaves other databases' backups and other files alone" \
	'-f $B/p/other.db.20200101T000000Z.bak && -f $B/p/app.db.notes && -f $B/p/app.db.2020.bak'

mkdir -p "$B/d"
for y in 2010 2011 2012 2013 2014 2015 2016 2017; do cp "$P1" "$B/d/app.db.${y}0101T000000Z.bak"; done
rb backup_default -p db="$D/app.db" -p dir="$B/d" <<'Y'
rbk: 1
name: backup-default
params: {db: {type: string}, dir: {type: string}}
start: bk
states:
  bk:
    do: sqlite.backup
    with: {db: "{{ params.db }}", dir: "{{ params.dir }}"}
    next: done
  done: {end: success}
Y
t "backup: keep defaults to 7" '$RC == 0 && $(ls "$B/d" | wc -l) == 7' \
	'&& $(res bk "sorted(o[\"removed\"])") == "[\"$B/d/app.db.20100101T000000Z.bak\", \"$B/d/app.db.20110101T000000Z.bak\"]"'

# Two backups within one second: distinct names, in time order.
rb backup_a -p db="$D/app.db" -p dir="$B/twice" <"$TMP/backup.yaml"
PA=$(res bk 'o["path"]')
rb backup_b -p db="$D/app.db" -p dir="$B/twice" <"$TMP/backup.yaml"
PB=$(res bk 'o["path"]')
t "backup: a second backup in the same second gets the next second's name (harmless re-run)" \
	'$RC == 0 && -f $PA && -f $PB && $PA < $PB'

rb backup_broken -p db="$D/broken.db" -p dir="$B/p" -p keep=1 <"$TMP/backup.yaml"
t "backup: a damaged database is refused: no backup kept, nothing pruned, no temp left" '$RC == 1' \
	'&& $(res bk "r[\"error\"]") == "$D/broken.db is damaged ("*"); no backup kept and none pruned"' \
	'&& -z $(ls "$B/p" | grep broken) && $(ls "$B/p" | grep -c "^app.db.2.*Z.bak$") == 3 && -z $(ls -A "$B/p" | grep tmp)'

rb backup_keep0 -p db="$D/app.db" -p dir="$B/p" -p keep=0 <"$TMP/backup.yaml"
t "backup: keep below 1 is refused" '$RC == 1 && $(res bk "r[\"error\"]") == "keep must be at least 1, not 0"' \
	'&& $(ls "$B/p" | grep -c "^app.db.2.*Z.bak$") == 3'

rb backup_text -p db="$D/text.db" -p dir="$B/t" <"$TMP/backup.yaml"
t "backup: a file that is not a database fails; no backup kept" '$RC == 1' \
	'&& $(res bk "r[\"error\"]") == "$D/text.db is not a database" && -z $(ls -A "$B/t")'

rb backup_missing -p db="$D/gone.db" -p dir="$B/m" <"$TMP/backup.yaml"
t "backup: a missing database fails, naming it" '$RC == 1' \
	'&& $(res bk "r[\"error\"]") == "cannot back up $D/gone.db: No such file or directory" && ! -e $D/gone.db'

touch "$TMP/afile"
rb backup_baddir -p db="$D/app.db" -p dir="$TMP/afile/x" <"$TMP/backup.yaml"
t "backup: a backup directory that cannot be made fails, naming it" '$RC == 1' \
	'&& $(res bk "r[\"error\"]") == "cannot create backup directory $TMP/afile/x: Not a directory"'

# --- restore ---------------------------------------------------------------
# Backups v1 (oldest), v2, and a newest one that is corrupted.
R=$TMP/restore
mkdir -p "$R/bk"
mkdb "$R/v1.db" v1
mkdb "$R/v2.db" v2
cp "$R/v1.db" "$R/bk/shop.db.20240101T000000Z.bak"
cp "$R/v2.db" "$R/bk/shop.db.20240102T000000Z.bak"
cp "$R/v2.db" "$R/bk/shop.db.20240103T000000Z.bak"
corrupt "$R/bk/shop.db.20240103T000000Z.bak"
cp "$R/v2.db" "$R/shop.db"
corrupt "$R/shop.db"
cp "$R/shop.db" "$R/orig.copy"
echo "stale wal" >"$R/shop.db-wal"
echo "stale shm" >"$R/shop.db-shm"
cat >"$TMP/restore.yaml" <<'Y'
rbk: 1
name: restore
params:
  db: {type: string}
  dir: {type: string}
start: restore
states:
  restore:
    do: sqlite.restore
    with: {db: "{{ params.db }}", dir: "{{ params.dir }}"}
    next: ask
  ask:
    do: sqlite.query
    with: {db: "{{ params.db }}", sql: "select v from meta where k = ?", params: [version]}
    next:
      - if: steps.ask.out.count == 1
        to: done
  done: {end: success}
Y
rb restore1 -p db="$R/shop.db" -p dir="$R/bk" <"$TMP/restore.yaml"
A=$(res restore 'o["moved_aside"]')
t "restore: skips the newest backup (damaged) and restores the next one, which answers a query" '$RC == 0' \
	'&& $(res restore "o[\"restored_from\"]") == "$R/bk/shop.db.20240102T000000Z.bak"' \
	'&& $(res ask "o[\"rows\"]") == "[{\"v\": \"v2\"}]" && $(version_of "$R/shop.db") == v2'
t "restore: 'tried' names the rejected backup and why" \
	'$(res restore "[t[\"path\"] for t in o[\"tried\"]]") == "[\"$R/bk/shop.db.20240103T000000Z.bak\"]"' \
	'&& $(res restore "o[\"tried\"][0][\"reason\"]") == "integrity check: "*'
t "restore: the restored file is the backup's bytes and passes python's integrity check" \
	'-z $(cmp "$R/shop.db" "$R/bk/shop.db.20240102T000000Z.bak" 2>&1) && $(pycheck "$R/shop.db") == ok'
t "restore: the damaged file is moved aside (not deleted), byte-identical" \
	'$A =~ ^$R/shop\.db\.damaged\.[0-9]{8}T[0-9]{6}Z$ && -z $(cmp "$A" "$R/orig.copy" 2>&1)'
t "restore: the stale WAL and SHM go aside with it, none is left beside the restored file" \
	'$(cat "$A-wal") == "stale wal" && $(cat "$A-shm") == "stale shm" && ! -e $R/shop.db-wal && ! -e $R/shop.db-shm' \
	'&& -z $(ls -A "$R" | grep tmp)'
t "restore: every backup is still there" '$(ls "$R/bk" | wc -l) == 3'

rb restore2 -p db="$R/shop.db" -p dir="$R/bk" <"$TMP/restore.yaml"
t "restore again: the same state, nothing moved (idempotent)" '$RC == 0' \
	'&& $(res restore "o[\"restored_from\"]") == "$R/bk/shop.db.20240102T000000Z.bak"' \
	'&& $(res restore "[o[\"changed\"], o[\"moved_aside\"]]") == "[false, \"\"]"' \
	'&& $(ls "$R" | grep -c damaged) == 3 && $(version_of "$R/shop.db") == v2'

# Both newer backups damaged: falls back to the oldest.
corrupt "$R/bk/shop.db.20240102T000000Z.bak"
corrupt "$R/shop.db"
rb restore3 -p db="$R/shop.db" -p dir="$R/bk" <"$TMP/restore.yaml"
t "restore: falls back to an older backup when the newer ones are damaged too" '$RC == 0' \
	'&& $(res restore "o[\"restored_from\"]") == "$R/bk/shop.db.20240101T000000Z.bak"' \
	'&& $(res restore "len(o[\"tried\"])") == 2 && $(version_of "$R/shop.db") == v1'

# Unusable files under backup names are rejected with their reason.
R2=$TMP/restore2
mkdir -p "$R2/bk"
cp "$R/v2.db" "$R2/bk/kv.db.20240101T000000Z.bak"
echo "not sqlite, long enough to have something where the header should be........................" >"$R2/bk/kv.db.20240102T000000Z.bak"
: >"$R2/bk/kv.db.20240103T000000Z.bak"
rb restore_reasons -p db="$R2/kv.db" -p dir="$R2/bk" <"$TMP/restore.yaml"
t "restore: an empty file and a non-database under backup names are rejected, with their reason" '$RC == 0' \
	'&& $(res restore "[t[\"reason\"] for t in o[\"tried\"]]") == "[\"empty file\", \"$R2/bk/kv.db.20240102T000000Z.bak is not a database\"]"' \
	'&& $(res restore "o[\"restored_from\"]") == "$R2/bk/kv.db.20240101T000000Z.bak"'

# No backup passes: fails, the database is left as it was.
corrupt "$R/bk/shop.db.20240101T000000Z.bak"
corrupt "$R/shop.db"
cp "$R/shop.db" "$R/before"
rb restore4 -p db="$R/shop.db" -p dir="$R/bk" <"$TMP/restore.yaml"
t "restore: fails when no backup passes; the database is left alone" '$RC == 1' \
	'&& $(res restore "r[\"error\"]") == "no backup of shop.db in $R/bk passes its integrity check (3 tried)"' \
	'&& $(res restore "len(o[\"tried\"])") == 3 && -z $(cmp "$R/shop.db" "$R/before" 2>&1)'

mkdir -p "$R/empty"
rb restore5 -p db="$R/shop.db" -p dir="$R/empty" <"$TMP/restore.yaml"
t "restore: fails when there is no backup" '$RC == 1 && $(res restore "r[\"error\"]") == "no backups of shop.db in $R/empty"'
rb restore6 -p db="$R/shop.db" -p dir="$R/nodir" <"$TMP/restore.yaml"
t "restore: fails when the backup directory is missing" '$RC == 1' \
	'&& $(res restore "r[\"error\"]") == "cannot read backup directory $R/nodir: No such file or directory"'

# A database that is gone altogether is restored, nothing to move aside.
cp "$R/v2.db" "$R/bk/shop.db.20240104T000000Z.bak"
rm -f "$R/shop.db"
rb restore7 -p db="$R/shop.db" -p dir="$R/bk" <"$TMP/restore.yaml"
t "restore: a missing database is restored; nothing to move aside" '$RC == 0' \
	'&& $(res restore "o[\"moved_aside\"]") == "" && $(version_of "$R/shop.db") == v2'

# --- query -----------------------------------------------------------------
Q=$D/q.db
pyq "$Q" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("create table users(id integer primary key, name text, score real, born int, pic blob, gone int)")
db.executemany("insert into users(name, score, born, pic, gone) values (?, ?, ?, ?, ?)",
               [("alice", 9.5, 1990, b"\x00\xff", None), ("bob", 7.25, 1985, None, 1)])
db.commit()
PY
cp "$Q" "$D/q.orig"
rb query1 -p db="$Q" <<'Y'
rbk: 1
name: query
params: {db: {type: string}}
start: one
states:
  one:
    do: sqlite.query
    with:
      db: "{{ params.db }}"
      sql: "select id, name, score, born, pic, gone from users where name = ? and score > ? and born < ?"
      params: [alice, 1.5, 2000]
    next:
      - if: steps.one.out.count == 1 && !steps.one.out.truncated && json(str(steps.one.out.rows), '$[0].name') == 'alice' && json(str(steps.one.out.rows), '$[0].born') == 1990
        to: inject
  inject:
    do: sqlite.query
    with:
      db: "{{ params.db }}"
      sql: "select count(*) as n from users where name = ?"
      params: ["x' OR '1'='1"]
    next:
      - if: steps.inject.out.count == 1
        to: drop
  drop:
    do: sqlite.query
    with: {db: "{{ params.db }}", sql: "select name from users where name = ?", params: ["'; DROP TABLE users; --"]}
    next: all
  all:
    do: sqlite.query
    with: {db: "{{ params.db }}", sql: "select name from users order by id", max_rows: 1}
    next: done
  done: {end: success}
Y
t "query: a row as a map, types kept (int, number, string, hex blob, null)" '$RC == 0' \
	'&& $(res one "o[\"rows\"]") == "[{\"id\": 1, \"name\": \"alice\", \"score\": 9.5, \"born\": 1990, \"pic\": \"00ff\", \"gone\": null}]"' \
	'&& $(res one "[type(v).__name__ for v in o[\"rows\"][0].values()]") == "[\"int\", \"str\", \"float\", \"int\", \"str\", \"NoneType\"]"'
t "query: an SQL injection payload bound as a param stays data" \
	'$(res inject "o[\"rows\"]") == "[{\"n\": 0}]" && $(res drop "o[\"count\"]") == 0' \
	'&& $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from users\").fetchone()[0])" "$Q") == 2'
t "query: max_rows stops early and says so" '$(res all "[o[\"count\"], o[\"truncated\"], o[\"rows\"]]") == "[1, true, [{\"name\": \"alice\"}]]"'
t "query: opened read-only, the file is untouched" '-z $(cmp "$Q" "$D/q.orig" 2>&1) && -z $(ls -A "$D" | grep "^q.db-")'

# query_err NAME SQL PARAMS: run one query step expected to fail; its error in E
query_err() {
	rb "$1" -p db="$2" -p sql="$3" <<Y
rbk: 1
name: qerr
params: {db: {type: string}, sql: {type: string}}
start: q
states:
  q:
    do: sqlite.query
    with: {db: "{{ params.db }}", sql: "{{ params.sql }}", params: $4}
    next: done
  done: {end: success}
Y
	E=$(res q 'r["error"]')
}
query_err qw "$Q" "delete from users" "[]"
t "query: a statement that writes is refused, nothing changes" '$RC == 1' \
	'&& $E == "sqlite.query only reads; use sqlite.exec to change $Q" && -z $(cmp "$Q" "$D/q.orig" 2>&1)'
query_err qmulti "$Q" "select 1; delete from users" "[]"
t "query: more than one statement is refused" '$RC == 1' \
	'&& $E == "the sql must be one statement; run several steps for several statements" && -z $(cmp "$Q" "$D/q.orig" 2>&1)'
query_err qcount "$Q" "select * from users where id = ? and name = ?" "[1]"
t "query: a params count that does not match the sql is refused" '$RC == 1 && $E == "the sql has 2 parameters but params gives 1"'
query_err qtype "$Q" "select ?" "[[1, 2]]"
t "query: a list as a param is refused" '$RC == 1 && $E == "params[0] must be a string, a number, a bool or null"'
query_err qsyntax "$Q" "select nope from users" "[]"
t "query: an SQL error names the database" '$RC == 1 && $E == "$Q: no such column: nope"'
query_err qmissing "$D/absent.db" "select 1" "[]"
t "query: a missing database fails and is not created" '$RC == 1' \
	'&& $E == "cannot open database $D/absent.db: No such file or directory" && ! -e $D/absent.db'
query_err qbroken "$D/broken.db" "select sum(length(note)) from items" "[]"
t "query: reading a damaged table fails with SQLite's message" '$RC == 1 && $E == "$D/broken.db: database disk image is malformed"'

# --- exec ------------------------------------------------------------------
rb exec1 -p db="$Q" <<'Y'
rbk: 1
name: exec
params: {db: {type: string}}
start: add
states:
  add:
    do: sqlite.exec
    with:
      db: "{{ params.db }}"
      sql: "insert into users(name, score, born) values (?, ?, ?), (?, ?, ?), (?, ?, ?)"
      params: ["carol", 1.5, 2001, "'); DROP TABLE users; --", 2, 2002, "dave", null, true]
    next:
      - if: steps.add.out.changes == 3 && steps.add.out.last_insert_rowid == 5
        to: bump
  bump:
    do: sqlite.exec
    with: {db: "{{ params.db }}", sql: "update users set score = score + ? where born > ?", params: [10, 1988]}
    next:
      - if: steps.bump.out.changes == 3
        to: done
  done: {end: success}
Y
t "exec: inserted and updated rows are counted (guards on changes)" '$RC == 0' \
	'&& $(res bump "o[\"changes\"]") == 3'
t "exec: params are bound as data: the payload is stored verbatim, the table survives" \
	'$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select name, score, born from users where id = 4\").fetchone())" "$Q") == "(\"'"'"'); DROP TABLE users; --\", 12.0, 2002)"'
t "exec: null and bool params bind as NULL and 1" \
	'$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select score, born from users where name = ?\", (\"dave\",)).fetchone())" "$Q") == "(None, 1)"'

cat >"$TMP/exec.yaml" <<'Y'
rbk: 1
name: exec-one
params: {db: {type: string}, sql: {type: string}}
start: x
states:
  x:
    do: sqlite.exec
    with: {db: "{{ params.db }}", sql: "{{ params.sql }}"}
    timeout: 1s
    next: done
  done: {end: success}
Y
rb exec_err -p db="$Q" -p sql="insert into nowhere values (1)" <"$TMP/exec.yaml"
t "exec: an SQL error fails the step, naming the database" '$RC == 1 && $(res x "r[\"error\"]") == "$Q: no such table: nowhere"'
rb exec_missing -p db="$D/absent.db" -p sql="create table t(x)" <"$TMP/exec.yaml"
t "exec: a missing database is not created" '$RC == 1 && ! -e $D/absent.db' \
	'&& $(res x "r[\"error\"]") == "cannot open database $D/absent.db: No such file or directory"'

# A lock held by another process: the wait is bounded by the step's timeout.
python3 - "$Q" "$TMP/lock.ready" <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("begin exclusive")
open(sys.argv[2], "w").close()
time.sleep(20)
PY
LOCK=$!
for _ in $(seq 100); do [[ -e $TMP/lock.ready ]] && break; sleep 0.05; done
start=$(date +%s%3N)
rb exec_locked -p db="$Q" -p sql="delete from users" <"$TMP/exec.yaml"
took=$(($(date +%s%3N) - start))
t "exec: a locked database times out with the step (timeout: 1s), not after the engine's kill" '$RC == 1' \
	'&& $(res x "r[\"error\"]") == "$Q: timed out (database is locked)" && $took -lt 3500'
cat >"$TMP/locked.yaml" <<'Y'
rbk: 1
name: locked
params: {db: {type: string}, dir: {type: string}}
start: chk
states:
  chk:
    do: sqlite.integrity_check
    with: {db: "{{ params.db }}"}
    timeout: 1s
    on_failure: bk
    next: bk
  bk:
    do: sqlite.backup
    with: {db: "{{ params.db }}", dir: "{{ params.dir }}"}
    timeout: 1s
    next: done
  done: {end: success}
Y
start2=$(date +%s%3N)
rb locked2 -p db="$Q" -p dir="$B/locked" <"$TMP/locked.yaml"
took2=$(($(date +%s%3N) - start2))
kill "$LOCK" 2>/dev/null
wait "$LOCK" 2>/dev/null
t "integrity_check and backup of a locked database time out with their steps (timeout: 1s)" '$RC == 1 && $took2 -lt 6000' \
	'&& $(res chk "r[\"error\"]") == "integrity check failed: $Q: timed out (database is locked)"' \
	'&& $(res bk "r[\"error\"]") == "backup of $Q timed out: the database stayed locked" && -z $(ls -A "$B/locked")'
t "exec: the timed-out delete changed nothing" \
	'$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from users\").fetchone()[0])" "$Q") == 5'
# --- bad input and dry runs ------------------------------------------------
rb badparam <<Y
rbk: 1
name: badparam
start: q
states:
  q:
    do: sqlite.query
    with: {db: "$Q", sql: "select 1", parms: [1]}
    next: done
  done: {end: success}
Y
t "an unknown param is bad input (exit 2), naming it" '$RC == 2 && $ERR == *"sqlite.query has no param '"'parms'"' (did you mean '"'params'"'?)"*'

cp "$Q" "$D/q.before"
# dry NAME ARGS...: rbk run --dry-run of $TMP/NAME.yaml; RC, its terminal output in OUT
dry() {
	local name=$1
	shift
	OUT=$("$RBK" run "$TMP/$name.yaml" --dry-run "$@" 2>&1)
	RC=$?
}
dry exec -p db="$Q" -p sql="delete from users where id = 1"
t "dry run: exec says what it would run, and changes nothing" '$RC == 0 && -z $(cmp "$Q" "$D/q.before" 2>&1)' \
	'&& $OUT == *"info: would execute on $Q: delete from users where id = 1 [0 bound params]"*'
dry backup -p db="$Q" -p dir="$TMP/drybk" -p keep=2
t "dry run: backup says where it would write and what it keeps, and creates nothing" '$RC == 0 && ! -e $TMP/drybk' \
	'&& $OUT == *"info: would back up $Q to $TMP/drybk/q.db.<UTC time>.bak (checked) and keep the newest 2"*'
sed '/^    next: ask/,$d' "$TMP/restore.yaml" >"$TMP/restore_only.yaml"
printf '    next: done\n  done: {end: success}\n' >>"$TMP/restore_only.yaml"
dry restore_only -p db="$Q" -p dir="$B/p"
t "dry run: restore says what it would do, and moves nothing" '$RC == 0 && -z $(cmp "$Q" "$D/q.before" 2>&1)' \
	'&& $OUT == *"info: would restore $Q from the newest backup in $B/p that passes its integrity check, moving $Q aside to $Q.damaged.<UTC time>"*' \
	'&& -z $(ls "$D" | grep damaged)'
