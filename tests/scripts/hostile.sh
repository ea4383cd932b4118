#!/bin/bash
# Hostile input: shell-injection payloads through every param and template
# never execute; a secret pushed into outputs, errors and logs (plain, JSON,
# multi-line) appears in none of the store, the terminal, the logs, the
# exports or the reports.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_HOME="$TMP/home" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins"
sandbox_start "$TMP/sbx"
PWN="$TMP/PWNED"
mkdir -p "$TMP/work"
cd "$TMP/work"

payloads=(
	"\$(touch $PWN)"
	"\`touch $PWN\`"
	"\${IFS}touch\${IFS}$PWN"
	"; touch $PWN"
	"&& touch $PWN"
	"| touch $PWN"
	$'\ntouch '"$PWN"
	"--upload-pack=touch $PWN"
	"-oProxyCommand=touch $PWN"
	"'; touch $PWN; '"
	"\"; touch $PWN; \""
	"\$'\\x0a'touch $PWN"
	"x\$(touch${IFS:- }$PWN)x"
	"../../../tmp/../$(basename "$PWN")"
)

cat >"$TMP/inject.yaml" <<Y
rbk: 1
name: inject
params:
  p: {type: string}
  url: {type: string}
start: argv
states:
  argv:
    do: shell.exec
    with: {argv: [printf, "%s", "{{ params.p }}"]}
    next: env
  env:
    do: shell.exec
    with:
      script: printf '%s' "\$P"
      env: {P: "{{ params.p }}"}
    next: http
  http:
    do: http.request
    with:
      method: POST
      url: "{{ params.url }}/alert"
      query: {q: "{{ params.p }}"}
      headers: {X-Payload: "{{ 'x' + params.p }}"}
      json: {text: "{{ params.p }}"}
    on_failure: file
    next: file
  file:
    do: file.write
    with: {path: "$TMP/work/out.txt", content: "{{ params.p }}"}
    next: sql
  sql:
    do: sqlite.exec
    with: {db: "$TMP/work/t.db", sql: "INSERT INTO t (v) VALUES (?1)", params: ["{{ params.p }}"]}
    on_failure: git
    next: git
  git:
    do: git.clone
    with: {url: "{{ params.p }}", path: "$TMP/work/clone"}
    on_failure: done
    next: done
  done: {end: success}
Y
python3 -c "import sqlite3; c=sqlite3.connect('t.db'); c.execute('CREATE TABLE t (v TEXT)'); c.commit()"
i=0
leaked=0
literal=0
for p in "${payloads[@]}"; do
	i=$((i + 1))
	rm -f "$PWN" out.txt
	"$RBK" run "$TMP/inject.yaml" -p "p=$p" -p url="$SANDBOX_URL" >"$TMP/out.$i" 2>&1
	[ -e "$PWN" ] && { leaked=$((leaked + 1)); echo "# payload $i executed: $p"; }
	# The value arrived as data, byte for byte.
	run=$("$RBK" history --limit 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])')
	got=$("$RBK" log "$run" --json | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if e["kind"] == "step_finished" and e["data"]["state"] == "argv":
        print(e["data"]["result"]["stdout"], end="")')
	[ "$got" == "$p" ] && [ "$(cat out.txt 2>/dev/null)" == "$p" ] && literal=$((literal + 1))
done
[ $leaked = 0 ] && ok "${#payloads[@]} shell-injection payloads through argv, env, http, file, sqlite and git params: none executed" \
	|| fail "injection" "$leaked payload(s) executed"
[ $literal = ${#payloads[@]} ] && ok "every payload arrived as data, byte for byte (argv output and file content)" \
	|| fail "payloads as data" "$literal of ${#payloads[@]}"
rows=$(python3 -c "import sqlite3; print(sqlite3.connect('t.db').execute('select count(*) from t').fetchone()[0])")
[ "$rows" = ${#payloads[@]} ] && ok "SQL params stay data: ${#payloads[@]} rows, table intact" || fail "sql rows" "$rows"
bad_tmpl=$(printf 'rbk: 1\nname: s\nparams:\n  p: {type: string}\nstart: a\nstates:\n  a:\n    do: shell.exec\n    with: {script: "echo {{ params.p }}"}\n    next: b\n  b: {end: success}\n' >"$TMP/s.yaml"; "$RBK" validate "$TMP/s.yaml" 2>&1)
[[ $? == 2 && $bad_tmpl == *"template inside 'script'"* ]] && ok "a template inside a script is refused before anything runs" || fail "script template" "$bad_tmpl"

# Secrets.
SECRET="s3cr3t-Z9q-$RANDOM$RANDOM"
export RBK_HOME="$TMP/home2" TOKEN="$SECRET"
fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
cat >"$TMP/secret.yaml" <<'Y'
rbk: 1
name: secret
params:
  token: {type: string, secret: true, env: TOKEN}
  url: {type: string}
start: plain
states:
  plain:
    do: shell.exec
    with:
      script: |
        printf 'stdout: %s\n' "$T"
        printf 'stderr: %s\n' "$T" >&2
        printf '{"token": "%s", "nested": {"t": "%s"}}\n' "$T" "$T"
        printf 'line1\n%s\nline3\n' "$T"
      env: {T: "{{ params.token }}"}
    set: {copy: steps.plain.stdout}
    next: echo
  echo:
    do: testkit.echo
    with: {value: "{{ params.token }}", message: "token={{ params.token }}"}
    next: http
  http:
    do: http.request
    with: {method: POST, url: "{{ params.url }}/alert", json: {text: "{{ params.token }}"}, token: "{{ params.token }}"}
    next: fails
  fails:
    do: shell.exec
    with:
      script: printf 'error with %s\n' "$T" >&2; exit 3
      env: {T: "{{ params.token }}"}
    on_failure: bad
    next: bad
  bad: {end: failure}
Y
"$RBK" run "$TMP/secret.yaml" -p url="$SANDBOX_URL" >"$TMP/run.out" 2>"$TMP/run.err"
"$RBK" log 1 >"$TMP/log.txt" 2>&1
"$RBK" log 1 --json >"$TMP/log.json" 2>&1
"$RBK" show 1 --json >"$TMP/show.json" 2>&1
"$RBK" export 1 -o "$TMP/bundle.json" 2>&1
"$RBK" report 1 --html -o "$TMP/report.html" 2>&1
"$RBK" run "$TMP/secret.yaml" -p url="$SANDBOX_URL" --dry-run >"$TMP/dry.out" 2>&1
found=""
for f in $(store_files) "$TMP"/run.out "$TMP"/run.err "$TMP"/log.txt "$TMP"/log.json "$TMP"/show.json "$TMP"/bundle.json "$TMP"/report.html "$TMP"/dry.out; do
	grep -q -a -F "$SECRET" "$f" && found="$found $(basename "$f")"
done
[ -z "$found" ] && ok "the secret is in none of: store (SQLite: db, wal; PostgreSQL: a dump of it), terminal output, log, log --json, show, export, report, dry run" \
	|| fail "secret leaked" "in:$found"
grep -q -F '***' "$TMP/log.json" && ok "where the secret was, the record says ***" || fail "masking visible" "$(head -c 300 "$TMP/log.json")"
python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["alerts"]; sys.exit(0 if any(sys.argv[2] in str(x) for x in a) else 1)' \
	"$SANDBOX/state.json" "$SECRET" && ok "yet the action received the real value (the webhook got it)" || fail "secret delivered" ""
