#!/bin/bash
# Secrets follow the value: a random secret goes through every function,
# operator and path of the language (vars, set, templates, step params,
# lock, a call's with:, an approval prompt, guards, errors, dry run, resume
# of a called run and of its caller). The runs prove the real value was
# used (files the steps wrote, guards that compare), and the secret and
# everything computed from it appear in no byte of the store (SQLite: db,
# WAL; PostgreSQL: a dump of its schema), the terminal, log/show/history
# (--json), the bundle, the report or replay.
. "$(dirname "$0")/lib.bash"
export RBK_HOME="$TMP/home" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
mkdir -p "$TMP/rb" "$TMP/out" "$TMP/seen"
cd "$TMP"

# A fresh secret each run: letters of both cases and digits, so that upper()
# and lower() differ from it.
SEC_TOK="Zq$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')Kp"
SEC_PIN=$((700000 + RANDOM * 13))
export SEC_TOK SEC_PIN
UP=$(printf %s "$SEC_TOK" | tr a-z A-Z)
LO=$(printf %s "$SEC_TOK" | tr A-Z a-z)
: > "$TMP/out/f-$SEC_TOK"

cat > rb/secret-child.yaml <<'EOF'
rbk: 1
name: secret-child
params:
  t: {type: string}
  n: {type: int}
  out: {type: string}
start: ask
states:
  ask:
    approval: {prompt: "use {{ params.t }} and {{ params.n }}?"}
    next: write
  write:
    do: shell.exec
    with: {argv: [sh, -c, 'printf "%s %s" "$1" "$2" > "$0"', "{{ params.out }}/child.txt", "{{ params.t }}", "{{ params.n }}"]}
    set:
      back: "params.t + '!'"
    next:
      - if: vars.back == params.t + '!'
        to: done
      - to: failed
  done: {end: success}
  failed: {end: failure}
EOF

cat > rb/secret-paths.yaml <<'EOF'
rbk: 1
name: secret-paths
params:
  tok: {type: string, secret: true, env: SEC_TOK}
  pin: {type: int, secret: true, env: SEC_PIN}
  out: {type: string}
vars:
  pre: "pre-{{ params.tok }}"
  tripled: "{{ params.pin * 3 }}"
lock: "lk-{{ params.tok }}"
start: use
states:
  use:
    do: shell.exec
    with:
      argv: [sh, -c, 'printf "%s\n" "$@" > "$OUT/step.txt"; echo "said $1"; echo "err $2" >&2', x,
             "{{ vars.pre }}", "{{ upper(params.tok) }}", "{{ lower(params.tok) }}", "{{ params.pin + 1 }}",
             "{{ vars.tripled }}", "{{ str(params.pin) }}"]
      env: {OUT: "{{ params.out }}", TOKEN: "{{ params.tok }}"}
    set:
      up: upper(params.tok)
      lo: lower(params.tok)
      tr: trim('  ' + params.tok + ' ')
      cap: capture(params.tok, '^(Zq[0-9a-f]{6})', 1)
      j: json('{"k":"' + params.tok + '"}', '$.k')
      st: str(params.pin)
      i: int(str(params.pin)) - 1
      nm: num(params.pin) / 2
      neg: -params.pin
      mod: params.pin % 1000
      prod: params.pin * 2
      ln: len(params.tok)
      dflt: default(json('{}', '$.x'), params.tok)
      ct: contains(params.tok, 'Zq')
      sw: starts_with(params.tok, 'Zq') && ends_with(params.tok, 'Kp')
      m: params.tok =~ /^Zq[0-9a-f]+Kp$/
      cmpv: params.tok != 'x' || params.tok == 'y'
      lt: params.tok < 'zzz'
      notv: "!(params.tok == '')"
      ag: age(params.out + '/f-' + params.tok) >= 0
      said: steps.use.stdout
      shout: upper(trim(steps.use.stdout))
    next:
      - if: >-
          vars.pre == 'pre-' + params.tok && vars.up == upper(params.tok) && vars.j == params.tok &&
          vars.tr == params.tok && vars.dflt == params.tok && vars.i == params.pin - 1 &&
          vars.tripled == params.pin * 3 && vars.ct && vars.sw && vars.m && vars.cmpv && vars.notv && vars.ag
          && vars.ln == len(params.tok) && vars.shout == 'SAID PRE-' + upper(params.tok)
        to: write
      - to: failed
  write:
    do: file.write
    with:
      path: "{{ params.out }}/derived.txt"
      content: "{{ vars.pre }}|{{ vars.up }}|{{ vars.lo }}|{{ vars.cap }}|{{ vars.i }}|{{ vars.nm }}|{{ vars.neg }}|{{ vars.prod }}|{{ vars.shout }}"
    next: child
  child:
    call: secret-child
    with: {t: "{{ 'c-' + params.tok }}", n: "{{ params.pin }}", out: "{{ params.out }}"}
    next: after
  after:
    do: shell.exec
    with: {argv: [sh, -c, 'printf "%s" "$1" > "$0"', "{{ params.out }}/after.txt", "{{ vars.pre }}/{{ vars.up }}"]}
    next: done
  done: {end: success}
  failed: {end: failure}
EOF

cat > rb/secret-error.yaml <<'EOF'
rbk: 1
name: secret-error
params:
  tok: {type: string, secret: true, env: SEC_TOK}
start: bad
states:
  bad:
    set:
      n: int(upper(params.tok))
    next:
      - if: "true"
        to: done
  done: {end: success}
EOF

log_all() { # every command's output is kept for the scan
	local name=$1; shift
	"$@" > "$TMP/seen/$name.out" 2> "$TMP/seen/$name.err"
	echo $?
}

rc=$(log_all validate "$RBK" validate rb/secret-paths.yaml rb/secret-child.yaml rb/secret-error.yaml)
[ "$rc" = 0 ] && ok "secrets: the runbooks validate" || fail "secrets: validate" "$(cat seen/validate.*)"

rc=$(log_all dry "$RBK" run rb/secret-paths.yaml -p out="$TMP/out" --dry-run)
# Dry, the step writes nothing, so the guard over its output takes the failure branch.
[ "$rc" = 1 ] && grep -q 'would run shell.exec {"argv":\["sh","-c",.*"x","\*\*\*"' seen/dry.out \
	&& ok "secrets: the dry run shows *** for each secret param" || fail "secrets: dry run" "exit $rc: $(cat seen/dry.*)"

rc=$(log_all run "$RBK" run rb/secret-paths.yaml -p out="$TMP/out")
[ "$rc" = 4 ] && ok "secrets: the run waits on the child's approval" || fail "secrets: run waits" "exit $rc: $(tail -n 5 seen/run.*)"
run_of() { "$RBK" history --json | python3 -c 'import json,sys
for r in json.load(sys.stdin)["runs"]:
    if r["runbook"]==sys.argv[1] and not r["dry_run"]: print(r["run"]); break' "$1"; }
parent=$(run_of secret-paths)
child=$(run_of secret-child)

want_step=$(printf '%s\n' "pre-$SEC_TOK" "$UP" "$LO" "$((SEC_PIN + 1))" "$((SEC_PIN * 3))" "$SEC_PIN")
[ "$(cat out/step.txt)" = "$want_step" ] && ok "secrets: the step got the real derived values" \
	|| fail "secrets: step params" "$(cat out/step.txt)"
want_derived="pre-$SEC_TOK|$UP|$LO|${SEC_TOK:0:8}|$((SEC_PIN - 1))|$(python3 -c "print(repr($SEC_PIN/2) if $SEC_PIN % 2 else $SEC_PIN//2)")|-$SEC_PIN|$((SEC_PIN * 2))|SAID PRE-$UP"
[ "$(cat out/derived.txt)" = "$want_derived" ] && ok "secrets: a file written from secret vars holds the real values" \
	|| fail "secrets: derived file" "got $(cat out/derived.txt) want $want_derived"

# The approval: the child resumes with its params computed again from its
# caller's with: (they were recorded as ***), then the caller goes on with
# its secret vars computed again.
rc=$(log_all approve "$RBK" approve "$child" --comment "fine")
[ "$rc" = 0 ] && ok "secrets: approved, child and caller finish" || fail "secrets: approve" "exit $rc: $(tail -n 5 seen/approve.*)"
[ "$(cat out/child.txt 2>/dev/null)" = "c-$SEC_TOK $SEC_PIN" ] && ok "secrets: the resumed child used the real value" \
	|| fail "secrets: child value" "$(cat out/child.txt 2>/dev/null)"
[ "$(cat out/after.txt 2>/dev/null)" = "pre-$SEC_TOK/$UP" ] && ok "secrets: the resumed caller used its vars' real values" \
	|| fail "secrets: caller after resume" "$(cat out/after.txt 2>/dev/null)"
lk=$("$RBK" history --json | python3 -c 'import json,sys
print([r["lock"] for r in json.load(sys.stdin)["runs"] if r["runbook"]=="secret-paths" and not r["dry_run"]][0])')
want_lk="***sha256:$(printf %s "lk-$SEC_TOK" | sha256sum | cut -c1-16)"
[ "$lk" = "$want_lk" ] && ok "secrets: a lock name computed from a secret is stored as its digest" \
	|| fail "secrets: lock" "got $lk want $want_lk"
st=$("$RBK" show "$parent" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
[ "$st" = succeeded ] && ok "secrets: the caller succeeded" || fail "secrets: caller status" "$st"

rc=$(log_all err "$RBK" run rb/secret-error.yaml)
[ "$rc" = 1 ] && grep -q "int(): a secret value is not a number" seen/err.out && ok "secrets: an error on a secret says why without it" \
	|| fail "secrets: error" "exit $rc: $(cat seen/err.err)"

# Everything an operator or auditor can read.
for c in "history" "history --json" "status" "log $parent" "log $parent --json" "log $child --json" \
	"show $parent" "show $parent --json" "show $child --json" "replay $parent" "replay $child" "verify"; do
	log_all "cmd-${c// /_}" $RBK $c >/dev/null
done
"$RBK" export "$parent" -o "$TMP/seen/bundle.json" >/dev/null 2>&1 || "$RBK" export "$parent" > "$TMP/seen/bundle.json" 2>/dev/null
"$RBK" report "$parent" --html -o "$TMP/seen/report.html" >/dev/null 2>&1 || "$RBK" report "$parent" --html > "$TMP/seen/report.html" 2>/dev/null
grep -q "replay of run $parent: 2 runs, .* read a secret (not re-derived), 0 divergences" "seen/cmd-replay_$parent.out" \
	&& ok "secrets: replay counts the decisions on secrets apart, no divergence" || fail "secrets: replay" "$(cat seen/cmd-replay_$parent.*)"
[ -s seen/bundle.json ] && [ -s seen/report.html ] && ok "secrets: bundle and report written" || fail "secrets: bundle/report" "missing"
grep -q '\*\*\*' seen/cmd-log_${parent}_--json.out && ok "secrets: the log shows *** where the values were" \
	|| fail "secrets: log masks" "$(head -c 400 seen/cmd-log_${parent}_--json.out)"

# The scan: the secret and every form of it the runs computed.
forms=("$SEC_TOK" "$UP" "$LO" "${SEC_TOK:2:16}" "$SEC_PIN" "$((SEC_PIN + 1))" "$((SEC_PIN - 1))" "$((SEC_PIN * 2))"
	"$((SEC_PIN * 3))")
leaks=""
for f in "$RBK_HOME"/* "$RBK_HOME"/*/* seen/* $(on_pg && store_files); do
	[ -f "$f" ] || continue
	for w in "${forms[@]}"; do
		grep -aqF -- "$w" "$f" && leaks+=" $f:$w"
	done
done
[ -z "$leaks" ] && ok "secrets: no byte of store, WAL, output, bundle or report holds the secret or its forms" \
	|| fail "secrets: leaked" "$leaks"
[ -n "$KEEP" ] && rm -rf /tmp/seen-keep && cp -r seen /tmp/seen-keep
if on_pg; then
	ok "secrets: the PostgreSQL store was scanned (a dump of its schema)"
else
	ls "$RBK_HOME"/rbk.db-wal >/dev/null 2>&1 && ok "secrets: the WAL was scanned too" || ok "secrets: the WAL was checkpointed (db scanned)"
fi
