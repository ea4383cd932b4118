#!/bin/bash
# Bounds: what keeps a runaway runbook or a chatty action from filling the
# disk or the memory (docs/format.md "max_transitions", docs/plugins.md
# "Output cap", docs/operations.md "Runaway runs and large outputs").
#   - a run has a budget of transitions (max_transitions, default 10000):
#     a cycle that never ends fails with a clear reason when it is spent,
#     and the budget is counted from the record, so a resume goes on
#     spending it;
#   - a cycle of pure states is committed as it goes, and a stop request
#     (SIGTERM) between pure states is honoured at once: interrupted, and
#     resumable;
#   - step outputs are capped by the host, for every plugin: a shell step
#     printing 200 MB, a sqlite.query of a 30 MB value, a plugin handing
#     over long strings; what is cut is marked as cut.
# Everything runs through the CLI, against real processes and files; the
# store is read with tests/lib/storedb.py, its size measured with store_kb
# (SQLite: rbk.db; PostgreSQL: the schema's tables, indexes and TOAST).
. "$(dirname "$0")/lib.bash"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins"
unset RBK_CRASH_POINT RBK_PATH RBK_HOME RBK_MAX_OUTPUT

new() {
	H=$(mktemp -d "$TMP/h.XXXXXX")
	export RBK_HOME=$H
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
}
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }
ms() { echo $(($(date +%s%N) / 1000000)); }
# q RUN EXPR: a Python expression over the run's record: st (status),
# why (reason), n (transition events), ev (list of (kind, data)), res(S)
# (the last result of step S).
q() {
	python3 - "$1" "$2" <<'PY'
import json, storedb, sys
db = storedb.connect(timeout=10)
run = int(sys.argv[1])
ev = [(k, d) for (_, _, _, k, d) in storedb.timeline(db, run)]
n = sum(1 for k, _ in ev if k == "transition")
fin = [d for k, d in ev if k in ("run_status", "run_finished")]
st = fin[-1]["status"] if fin else None
why = fin[-1].get("reason") if fin else None
def res(s):
    r = [d["result"] for k, d in ev if k == "step_finished" and d["state"] == s]
    return r[-1] if r else None
print(eval(sys.argv[2]))
PY
}

# --- the transition budget -----------------------------------------------------------------------
cat >"$TMP/spin.yaml" <<'YAML'
rbk: 1
name: spin
start: check
states:
  check:
    next:
      - if: 1 == 2
        to: done
      - to: again
  again:
    next:
      - to: check
  done: {end: success}
YAML
new
"$RBK" run "$TMP/spin.yaml" >"$H/out" 2>"$H/err"
rc=$?
WHY=$(q 1 why)
[[ $rc == 1 && $(q 1 st) == failed && $(q 1 n) == 10000 &&
	$WHY == "transition budget of 10000 spent (max_transitions); last state check, next again" ]]
t $? "a cycle of decisions that never ends fails when its default budget of 10000 transitions is spent" \
	"exit $rc; $(q 1 st) after $(q 1 n) transitions: $WHY; $(tail -2 "$H/err")"
grep -q "run 1 failed: transition budget of 10000 spent" "$H/out"
t $? "the terminal says why the run failed" "$(tail -2 "$H/out")"
"$RBK" show 1 | grep -q "status *failed — transition budget of 10000 spent (max_transitions)"
t $? "rbk show gives the reason" "$("$RBK" show 1 2>&1 | head -4)"
OUT=$("$RBK" replay 1 2>&1)
rc=$?
[[ $rc == 0 && $OUT == *", 0 divergences"* ]]
t $? "rbk replay finds no divergence in a run ended by its budget" "exit $rc: $OUT"
du_kb=$(store_kb "$H")
[[ $du_kb -lt 20000 ]]
t $? "the store of the runaway run stays small" "$du_kb kB"
echo "# spent budget of 10000 transitions: store ${du_kb} kB"

# The boundary: a run whose path takes exactly max_transitions ends as its
# definition says; one transition fewer fails before the last one.
for n in 2 1; do
	cat >"$TMP/two.yaml" <<YAML
rbk: 1
name: two
max_transitions: $n
start: a
states:
  a:
    next:
      - to: b
  b:
    next:
      - to: done
  done: {end: success}
YAML
	new
	"$RBK" run "$TMP/two.yaml" >/dev/null 2>&1
	RC[$n]=$?
	ST[$n]=$(q 1 st)
	WHY2[$n]=$(q 1 why)
done
[[ ${RC[2]} == 0 && ${ST[2]} == succeeded && ${RC[1]} == 1 && ${ST[1]} == failed &&
	${WHY2[1]} == "transition budget of 1 spent (max_transitions); last state b, next done" ]]
t $? "max_transitions: 2 lets a run of 2 transitions end; max_transitions: 1 stops it before the second" \
	"2: exit ${RC[2]} ${ST[2]}; 1: exit ${RC[1]} ${ST[1]} ${WHY2[1]}"

# The budget is counted from the record: a run that waits for an approval
# half way and is approved by another process goes on spending the same
# budget, and ends after exactly max_transitions in all.
cat >"$TMP/gated.yaml" <<'YAML'
rbk: 1
name: gated
max_transitions: 20
vars: {n: 0}
start: count
states:
  count:
    set: {n: vars.n + 1}
    next:
      - if: vars.n == 5
        to: gate
      - if: vars.n > 1000
        to: done
      - to: more
  more:
    next:
      - to: count
  gate:
    approval: {prompt: go on?}
    next: count
  done: {end: success}
YAML
new
"$RBK" run "$TMP/gated.yaml" >/dev/null 2>&1
rc1=$?
n1=$(q 1 n)
"$RBK" approve 1 >"$H/out" 2>&1
rc2=$?
WHY=$(q 1 why)
[[ $rc1 == 4 && $n1 == 9 && $rc2 == 1 && $(q 1 st) == failed && $(q 1 n) == 20 &&
	$WHY == "transition budget of 20 spent (max_transitions); last state count, next more" ]]
t $? "a resumed run goes on spending the budget it had: 9 transitions, an approval, 11 more" \
	"run exit $rc1 after $n1; approve exit $rc2; $(q 1 st) after $(q 1 n): $WHY; $(tail -2 "$H/out")"
OUT=$("$RBK" replay 1 2>&1)
[[ $? == 0 && $OUT == *", 0 divergences"* ]]
t $? "rbk replay of the resumed run: no divergence" "$OUT"

# --- stopping a cycle of pure states -------------------------------------------------------------
sed 's/^start: check/max_transitions: 1000000000\nstart: check/' "$TMP/spin.yaml" >"$TMP/forever.yaml"
new
"$RBK" run "$TMP/forever.yaml" >"$H/out" 2>"$H/err" &
pid=$!
sleep 1.5
n_live=$(q 1 n)
[[ $n_live -gt 0 ]]
t $? "a cycle of pure states is committed as it goes (another process reads its transitions)" "$n_live transitions seen"
t0=$(ms)
kill -TERM $pid
for ((i = 0; i < 1000; i++)); do
	grep -q interrupted "$H/out" && break
	sleep 0.01
done
t1=$(ms)
wait $pid
rc=$?
t2=$(ms)
echo "# SIGTERM in a cycle of decisions after $n_live transitions: recorded interrupted after $((t1 - t0)) ms, exited after $((t2 - t0)) ms"
[[ $rc == 5 && $(q 1 st) == interrupted && $((t2 - t0)) -lt 1000 ]]
t $? "SIGTERM stops a cycle of decisions: interrupted, exit 5, at once (well under 1 s)" \
	"exit $rc; $(q 1 st); $((t2 - t0)) ms; $(tail -2 "$H/err")"
grep -q "interrupted; continue with: rbk resume 1" "$H/out"
t $? "the terminal says how to continue" "$(tail -2 "$H/out")"
n_stop=$(q 1 n)
"$RBK" resume 1 >"$H/out2" 2>"$H/err2" &
pid=$!
for ((i = 0; i < 500; i++)); do
	[[ $(q 1 n) -gt $n_stop ]] && break
	sleep 0.05
done
kill -TERM $pid
wait $pid
rc=$?
[[ $rc == 5 && $(q 1 st) == interrupted && $(q 1 n) -gt $n_stop ]]
t $? "the interrupted run resumes, goes on cycling, and stops again on SIGTERM" \
	"exit $rc; $(q 1 st); $n_stop then $(q 1 n) transitions; $(tail -2 "$H/err2")"

# --- the output cap ------------------------------------------------------------------------------
# A shell step printing 200 MB, with max_output raised far above the host's
# cap: the step completes, memory and store stay small, the text is cut
# and says so.
cat >"$TMP/spew.yaml" <<'YAML'
rbk: 1
name: spew
start: spew
states:
  spew:
    do: shell.exec
    with:
      script: head -c 200000000 /dev/zero | tr '\0' x; echo finished >&2
      max_output: 300000000
    next: done
  done: {end: success}
YAML
new
if [[ -x /usr/bin/time ]]; then
	/usr/bin/time -f %M -o "$H/rss" "$RBK" run "$TMP/spew.yaml" >"$H/out" 2>"$H/err"
else
	"$RBK" run "$TMP/spew.yaml" >"$H/out" 2>"$H/err"
fi
rc=$?
db_kb=$(store_kb "$H")
rss=$(tail -1 "$H/rss" 2>/dev/null)
echo "# 200 MB of stdout: store ${db_kb} kB, peak RSS ${rss:-?} kB (rbk and its children)"
[[ $rc == 0 && $(q 1 st) == succeeded ]]
t $? "a step printing 200 MB completes" "exit $rc; $(q 1 st); $(tail -3 "$H/err")"
[[ $(q 1 'len(res("spew")["stdout"].encode())') -le 1048576 && $(q 1 'res("spew")["out"]["stdout_truncated"]') == True &&
	$(q 1 'res("spew")["stdout"].endswith("\n[rbk: %d more bytes not captured]\n" % (200000000 - res("spew")["stdout"].index("\n[rbk:")))') == True &&
	$(q 1 'res("spew")["stderr"]') == finished ]]
t $? "its stdout is kept up to the host's 1 MiB, and ends with how much was not captured" \
	"$(q 1 'len(res("spew")["stdout"])') bytes, ends $(q 1 'repr(res("spew")["stdout"][-60:])')"
[[ $db_kb -lt 4096 ]]
t $? "the store stays small (under 4 MB)" "$db_kb kB"
if [[ -n $rss ]]; then
	[[ $rss -lt 250000 ]]
	t $? "peak memory stays bounded (under 250 MB, for 200 MB of output)" "$rss kB"
fi

# sqlite.query of one 30 MB value: stored cut, marked in the text and in
# the step's `cut` list.
python3 - "$TMP/big.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE t (id INTEGER, v TEXT)")
db.execute("INSERT INTO t VALUES (1, ?), (2, 'small')", ("y" * 30000000,))
db.commit()
PY
cat >"$TMP/query.yaml" <<'YAML'
rbk: 1
name: query
params:
  db: {type: string}
start: q
states:
  q:
    do: sqlite.query
    with: {db: "{{ params.db }}", sql: "SELECT id, v FROM t ORDER BY id"}
    next:
      - if: len(steps.q.cut) == 1 && steps.q.out.count == 2
        to: done
  done: {end: success}
YAML
new
"$RBK" run "$TMP/query.yaml" -p db="$TMP/big.db" >"$H/out" 2>"$H/err"
rc=$?
db_kb=$(store_kb "$H")
V='res("q")["out"]["rows"][0]["v"]'
[[ $rc == 0 && $(q 1 st) == succeeded && $db_kb -lt 4096 ]]
t $? "sqlite.query of a 30 MB value succeeds and stores little (under 4 MB)" "exit $rc; $(q 1 st); $db_kb kB; $(tail -3 "$H/err")"
[[ $(q 1 "len($V.encode()) <= 1048576 and set($V[:-60]) <= set('y\n[rbk: outputcaf0123456789]')") == True &&
	$(q 1 "$V.endswith(' of 30000000 bytes]') and '\n[rbk: output cut at ' in $V") == True &&
	$(q 1 'res("q")["cut"]') == "['rows.0.v']" && $(q 1 'res("q")["out"]["rows"][1]') == "{'id': 2, 'v': 'small'}" ]]
t $? "the value is cut to 1 MiB with its marker, the step's cut lists rows.0.v, the other row is whole" \
	"$(q 1 "len($V)") bytes, ends $(q 1 "repr($V[-60:])"); cut $(q 1 'res("q").get("cut")')"
OUT=$("$RBK" log 1 2>&1)
[[ $OUT == *"step_finished      q attempt 1 ok "*"s (output cut: rows.0.v)"* ]]
t $? "rbk log says which output was cut" "$(printf '%s' "$OUT" | grep step_finished)"

# Any plugin (here the test kit's echo): with RBK_MAX_OUTPUT=2048 a long
# string is cut to 2048 bytes, its marker included; the scalars set after
# it are kept; a valid UTF-8 text stays valid.
LONG=$(python3 -c 'print("é" * 3000)')
cat >"$TMP/echo.yaml" <<YAML
rbk: 1
name: echo
start: e
states:
  e:
    do: testkit.echo
    with: {value: {text: "$LONG", n: 7}}
    next: done
  done: {end: success}
YAML
new
RBK_MAX_OUTPUT=2048 "$RBK" run "$TMP/echo.yaml" >"$H/out" 2>"$H/err"
rc=$?
T='res("e")["out"]["value"]["text"]'
[[ $rc == 0 && $(q 1 "len($T.encode()) <= 2048 and $T.endswith(' of 6000 bytes]') and set($T.split('\n')[0]) == {'é'}") == True &&
	$(q 1 'res("e")["out"]["value"]["n"]') == 7 && $(q 1 'res("e")["cut"]') == "['value.text']" &&
	$(q 1 'res("e")["out"]["key"]') == 1:e:1 ]]
t $? "any plugin's long string is cut at RBK_MAX_OUTPUT (2048), marked, listed in cut; the rest is kept" \
	"exit $rc; $(q 1 "repr($T[-50:])"); $(q 1 'res("e").get("cut")'); $(tail -2 "$H/err")"
new
RBK_MAX_OUTPUT=lots "$RBK" run "$TMP/echo.yaml" >"$H/out" 2>"$H/err"
rc=$?
[[ $rc == 0 && $(grep -c "RBK_MAX_OUTPUT='lots' is not a number of bytes from 1024 to 1073741824; using 1048576" "$H/err") == 1 &&
	$(q 1 "'cut' in res('e')") == False ]]
t $? "a bad RBK_MAX_OUTPUT is reported once, and the default used" "exit $rc; $(cat "$H/err")"
