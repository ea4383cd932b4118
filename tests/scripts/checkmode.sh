#!/bin/bash
# rbk run --dry-run as a check mode (docs/cli.md): the actions that only
# read (a heartbeat, a pid file, a file's age, a query, an HTTP GET) do their
# read for real, so the guards after them follow what is, with no dry_run:
# results written; the actions that change things are only described; an
# explicit dry_run: result still wins.
. "$(dirname "$0")/lib.bash"
export RBK_HOME=$TMP/home
export RBK_PLUGIN_PATH=$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins
fresh_store
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }
path_of() { # the states a run went through
	"$RBK" log "$1" --json | python3 -c 'import json,sys; print(" ".join(json.loads(l)["data"]["to"] for l in sys.stdin if json.loads(l)["kind"] == "transition"))'
}
last() { "$RBK" history --limit 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])'; }
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("create table t(n)"); c.executemany("insert into t values(?)", [(1,),(2,),(3,)]); c.commit()' "$TMP/app.db"
cat >"$TMP/watch.yaml" <<Y
rbk: 1
name: watchdog
params:
  beat: {type: string}
  marker: {type: string}
start: beat
states:
  beat:
    do: proc.heartbeat
    with: {path: "{{ params.beat }}", max_age: 1m}
    next:
      - if: steps.beat.out.fresh
        to: rows
      - to: restart
  restart:
    do: shell.exec
    with: {argv: [/usr/bin/touch, "{{ params.marker }}"]}
    next: [{to: rows}]
  rows:
    do: sqlite.query
    with: {db: "$TMP/app.db", sql: "select count(*) as n from t"}
    next:
      - if: steps.rows.out.rows[0].n == 3
        to: age
      - to: failed
  age:
    do: file.age
    with: {path: "$TMP/app.db"}
    next:
      - if: steps.age.out.seconds < 3600
        to: done
      - to: failed
  done: {end: success}
  failed: {end: failure}
Y
touch "$TMP/beat"
"$RBK" run "$TMP/watch.yaml" --dry-run -p beat="$TMP/beat" -p marker="$TMP/marker" >"$TMP/d1.out" 2>&1
rc=$? id=$(last)
[[ $rc == 0 && $(path_of "$id") == "rows age done" && ! -e $TMP/marker ]]
t $? "a dry run reads a fresh heartbeat, a query's rows and a file's age for real, and follows them to the end" \
	"exit $rc; path $(path_of "$id"); $(tail -4 "$TMP/d1.out")"
touch -d '2 hours ago' "$TMP/beat"
"$RBK" run "$TMP/watch.yaml" --dry-run -p beat="$TMP/beat" -p marker="$TMP/marker" >"$TMP/d2.out" 2>&1
rc=$? id=$(last)
[[ $rc == 0 && $(path_of "$id") == "restart rows age done" && ! -e $TMP/marker && $(cat "$TMP/d2.out") == *"would run shell.exec"* ]]
t $? "a stale heartbeat takes the dry run to the restart, which is only described (nothing is touched)" \
	"exit $rc; path $(path_of "$id"); marker $(ls "$TMP/marker" 2>&1); $(grep -i would "$TMP/d2.out" | head -2)"
"$RBK" log "$id" --json | python3 -c 'import json,sys
r = {json.loads(l)["data"]["state"]: json.loads(l)["data"]["result"] for l in sys.stdin if json.loads(l)["kind"] == "step_finished"}
assert r["beat"]["out"]["fresh"] is False and r["beat"]["out"]["age_ms"] > 3600000, r["beat"]
assert r["rows"]["out"]["rows"] == [{"n": 3}], r["rows"]' 2>"$TMP/err"
t $? "the dry run's record holds what was read" "$(cat "$TMP/err")"

# An explicit dry_run: result still wins over the read.
sed 's/    with: {path: "{{ params.beat }}", max_age: 1m}/    with: {path: "{{ params.beat }}", max_age: 1m}\n    dry_run: {out: {fresh: true}}/' "$TMP/watch.yaml" >"$TMP/w2.yaml"
"$RBK" run "$TMP/w2.yaml" --dry-run -p beat="$TMP/beat" -p marker="$TMP/marker" >"$TMP/d3.out" 2>&1
rc=$? id=$(last)
[[ $rc == 0 && $(path_of "$id") == "rows age done" ]]
t $? "a state's dry_run: result wins over the real read" "exit $rc; path $(path_of "$id")"

# A read that fails fails the dry step: the run takes its failure edge.
"$RBK" run "$TMP/watch.yaml" --dry-run -p beat="$TMP/beat" -p marker="$TMP/marker" >/dev/null 2>&1
sed "s|sql: \"select count(\*) as n from t\"|sql: \"select count(*) as n from nope\"|" "$TMP/watch.yaml" >"$TMP/w3.yaml"
touch "$TMP/beat"
"$RBK" run "$TMP/w3.yaml" --dry-run -p beat="$TMP/beat" -p marker="$TMP/marker" >"$TMP/d4.out" 2>&1
rc=$?
[[ $rc == 1 && $(cat "$TMP/d4.out") == *"no such table: nope"* ]]
t $? "a read that fails in a dry run fails its step, with the reason" "exit $rc; $(tail -3 "$TMP/d4.out")"
