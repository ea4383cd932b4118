#!/bin/bash
# Twenty `rbk run` processes at once on one store: none fails with "database
# is locked", run numbers are dense and unique, every run succeeds.
. "$(dirname "$0")/lib.bash"
export RBK_HOME="$TMP/home" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins"
cat >"$TMP/c.yaml" <<'Y'
rbk: 1
name: concurrent
params:
  n: {type: int}
start: a
states:
  a:
    do: shell.exec
    with: {argv: [echo, "{{ params.n }}"]}
    next: b
  b:
    next:
      - if: int(trim(steps.a.stdout)) == params.n
        to: done
      - to: bad
  done: {end: success}
  bad: {end: failure}
Y
"$RBK" run "$TMP/c.yaml" -p n=0 --json >/dev/null 2>&1 # creates the store first
pids=()
for i in $(seq 1 20); do
	"$RBK" run "$TMP/c.yaml" -p n=$i --json >"$TMP/out.$i" 2>"$TMP/err.$i" &
	pids+=($!)
done
fails=0
for i in "${!pids[@]}"; do wait "${pids[$i]}" || fails=$((fails + 1)); done
[ $fails = 0 ] && ok "20 concurrent runs all succeed" || fail "20 concurrent runs" "$fails failed: $(cat "$TMP"/err.* | head -5)"
grep -qi "locked" "$TMP"/err.* && fail "no 'database is locked'" "$(grep -hi locked "$TMP"/err.* | head -2)" || ok "no 'database is locked'"
ids=$(cat "$TMP"/out.* | sed -n 's/.*"run": \([0-9]*\).*/\1/p' | sort -n | tr '\n' ' ')
[ "$ids" = "$(seq 2 21 | tr '\n' ' ')" ] && ok "run numbers 2..21, unique and dense" || fail "run numbers" "$ids"
n=$("$RBK" history --status succeeded --limit 100 | grep -c concurrent)
[ "$n" = 21 ] && ok "history shows 21 succeeded runs" || fail "history count" "$n"
