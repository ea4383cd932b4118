#!/bin/bash
# rbk replay: the runs of the behaviour tests' runbooks re-derive without a
# divergence; a record whose decision was changed (a transition to another
# state, a retry delay) is caught, with its event.
. "$(dirname "$0")/lib.bash"
export RBK_HOME="$TMP/home" RBK_PATH="$RBK_ROOT/tests/fixtures/run"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins"
cd "$RBK_ROOT"
n=0
# Each behaviour runbook once, with a ledger when it takes one (runs that
# wait for an approval or need other params stay unfinished and are left out).
for f in tests/fixtures/run/*.yaml; do
	if grep -q "^  ledger:" "$f"; then
		timeout 30 "$RBK" run "$f" -p ledger="$TMP/ledger" >/dev/null 2>&1 </dev/null
	else
		timeout 30 "$RBK" run "$f" >/dev/null 2>&1 </dev/null
	fi
done
"$RBK" run tests/fixtures/run/rollback.yaml -p ledger="$TMP/ledger" -p undo_fail=true >/dev/null 2>&1
"$RBK" run runbooks/disk-full.yaml -p path="$TMP" -p threshold=0 -p target=100 -p logs_dir="$TMP" -p backups_dir="$TMP" \
	-p docker=true -p compress_cmd=true >/dev/null 2>&1
ids=$("$RBK" history --limit 1000 --json | python3 -c 'import json,sys; print(" ".join(str(r["run"]) for r in json.load(sys.stdin)["runs"] if r["parent_run"] is None and r["status"] not in ("running","waiting","interrupted","needs_attention")))')
bad=""
for id in $ids; do
	out=$("$RBK" replay "$id" 2>&1) || bad="$bad [run $id: $out]"
	n=$((n + 1))
done
[ -z "$bad" ] && [ $n -ge 15 ] && ok "replay matches on $n finished runs (retries, polls, rollbacks, calls)" || fail "replay of finished runs" "$n runs;$bad"

# Change a recorded decision: the first transition now claims another state.
id=$(echo $ids | awk '{print $NF}')
python3 - "$id" <<'PY'
import json, storedb, sys
db = storedb.connect()
storedb.unprotect(db)
# The first transition, an event of its own or one held in a batch event.
seq = [s for (s, _, _, k, _) in storedb.timeline(db, int(sys.argv[1])) if k == "transition"][0]
kind, data = db.execute("SELECT kind, data FROM events WHERE seq=?", (seq,)).fetchone()
whole = json.loads(data)
d = whole if kind == "transition" else [e["data"] for e in whole["events"] if e["kind"] == "transition"][0]
d["to"] = d["from"] if d["to"] != d["from"] else "elsewhere"
db.execute("UPDATE events SET data=? WHERE seq=?", (json.dumps(whole, separators=(",", ":")), seq))
db.commit()
print(seq)
PY
out=$("$RBK" replay "$id" 2>&1); rc=$?
[[ $rc == 1 && $out == *"divergence"* && $out == *"1 divergence"* ]] && ok "a changed transition is a divergence, exit 1" || fail "changed transition" "rc=$rc $out"

# A retry delay that does not follow the definition.
cat >"$TMP/retry.yaml" <<'Y'
rbk: 1
name: retry-replay
start: a
states:
  a:
    do: testkit.fail
    retry: {attempts: 3, delay: 10ms, backoff: 2}
    next: done
  done: {end: success}
Y
"$RBK" run "$TMP/retry.yaml" >/dev/null 2>&1
rid=$("$RBK" history --limit 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])')
out=$("$RBK" replay "$rid" 2>&1)
[[ $? == 0 && $out == *"0 divergences"* ]] && ok "a run of retries replays clean" || fail "retries replay" "$out"
python3 - "$rid" <<'PY'
import json, storedb, sys
db = storedb.connect()
storedb.unprotect(db)
seq, data = db.execute("SELECT seq, data FROM events WHERE run_id=? AND kind='step_retry' ORDER BY seq DESC LIMIT 1", (int(sys.argv[1]),)).fetchone()
d = json.loads(data); d["delay_ms"] = 5
db.execute("UPDATE events SET data=? WHERE seq=?", (json.dumps(d, separators=(",", ":")), seq)); db.commit()
PY
out=$("$RBK" replay "$rid" 2>&1)
[[ $? == 1 && $out == *"waited 5ms before its retry; the definition gives 20ms"* ]] && ok "a changed retry delay is a divergence" || fail "changed delay" "$out"
out=$("$RBK" replay 999999 2>&1)
[[ $? == 2 && $out == *"run 999999 does not exist"* ]] && ok "replay of an unknown run: exit 2" || fail "unknown run" "$out"
