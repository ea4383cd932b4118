#!/bin/bash
# Secrets made while a run goes (docs/format.md, "Secrets follow the value";
# docs/plugins.md, mark_secret): a credential an action marks secret, and a
# variable set with secret: true, are masked wherever rbk records or shows
# them (events, output, the step's own outputs and log, the store's files,
# later steps' params), while later steps still get the real value; what
# resume cannot recover is said.
. "$(dirname "$0")/lib.bash"
export RBK_HOME=$TMP/home
export RBK_PLUGIN_PATH=$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins
fresh_store
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }
store_has() { # store_has TEXT: the store's files or rows contain it
	if [[ -n ${RBK_STORE:-} ]]; then
		[[ $(python3 -c 'import storedb,sys; db=storedb.connect(); print(db.execute("select count(*) from events where data like ?", ("%" + sys.argv[1] + "%",)).fetchone()[0])' "$1") != 0 ]]
	else
		grep -rqaF "$1" "$RBK_HOME"
	fi
}
cat >"$TMP/s.yaml" <<'Y'
rbk: 1
name: session
params:
  ledger: {type: string}
start: login
states:
  login:
    do: testkit.token
    set:
      auth: {value: "'Bearer ' + steps.login.out.token", secret: true}
      plain: "'not secret'"
    next: [{to: use}]
  use:
    do: testkit.ledger
    with: {file: "{{ params.ledger }}", label: "{{ vars.auth }}"}
    next: [{to: show}]
  show:
    do: shell.exec
    with: {argv: [/bin/echo, "auth is {{ vars.auth }}; {{ steps.login.out.message }}"]}
    next: [{to: done}]
  done: {end: success}
Y
"$RBK" validate "$TMP/s.yaml" >"$TMP/v.out" 2>&1
t $? "a runbook with a secret set variable validates" "$(cat "$TMP/v.out")"
"$RBK" run "$TMP/s.yaml" -p ledger="$TMP/ledger" >"$TMP/r.out" 2>&1
rc=$?
tok=$(grep -o 'tok-[0-9a-f]*' "$TMP/ledger" | head -1)
"$RBK" log 1 >"$TMP/log.txt" 2>&1
"$RBK" log 1 --json >"$TMP/log.json" 2>&1
"$RBK" show 1 --json >"$TMP/show.json" 2>&1
"$RBK" report 1 -o "$TMP/report.html" >/dev/null 2>&1
[[ $rc == 0 && $tok == tok-* && $(cat "$TMP/ledger") == *"Bearer $tok"* ]]
t $? "a later step gets the real values (the secret variable in its params)" "exit $rc; ledger: $(cat "$TMP/ledger"); $(tail -3 "$TMP/r.out")"
! grep -qF "$tok" "$TMP/r.out" "$TMP/log.txt" "$TMP/log.json" "$TMP/show.json" "$TMP/report.html" && ! store_has "$tok"
t $? "the token marked secret by the action appears nowhere: output, log, JSON log, show, report, store" \
	"$(grep -lF "$tok" "$TMP"/*.out "$TMP"/log.* "$TMP/show.json" "$TMP/report.html" 2>/dev/null)"
python3 - "$TMP/log.json" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
fin = {e["data"]["state"]: e["data"]["result"] for e in ev if e["kind"] == "step_finished"}
vs = {}
for e in ev:
    if e["kind"] == "vars_set":
        vs.update(e["data"]["vars"]); sec = e["data"].get("secret", [])
        if "auth" in e["data"]["vars"]: secret_names = sec
assert fin["login"]["out"]["token"] == "***", fin["login"]
assert fin["login"]["out"]["message"] == "session *** opened", fin["login"]
assert vs["auth"] == "***" and vs["plain"] == "not secret", vs
assert "auth" in secret_names and "plain" not in secret_names, secret_names
# the variable's text is masked whole or around the token: nothing of it shows
assert fin["show"]["stdout"] in ("auth is ***; session *** opened\n", "auth is Bearer ***; session *** opened\n"), fin["show"]
started = [e["data"]["params"] for e in ev if e["kind"] == "step_started" and e["data"]["state"] == "use"][0]
assert started["label"] == "***", started
PY
t $? "recorded: the output as ***, text around it masked, the variable as *** (listed under secret), the params that used it as ***" \
	"$(grep -E 'step_finished|vars_set' "$TMP/log.txt" | head -4)"

# Resume: the secret variable cannot be computed again from the record (the
# token was never stored): it holds *** and rbk says so.
cat >"$TMP/w.yaml" <<'Y'
rbk: 1
name: session-wait
start: login
states:
  login:
    do: testkit.token
    set:
      auth: {value: "'Bearer ' + steps.login.out.token", secret: true}
    next: [{to: ask}]
  ask:
    approval: {prompt: go on?}
    next: [{to: show}]
  show:
    do: shell.exec
    with: {argv: [/bin/echo, "auth is {{ vars.auth }}"]}
    next: [{to: done}]
  done: {end: success}
Y
"$RBK" run "$TMP/w.yaml" >"$TMP/w1.out" 2>&1
id=$("$RBK" history --limit 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])')
"$RBK" approve "$id" >"$TMP/w2.out" 2>&1
rc=$?
out=$("$RBK" log "$id" --json | python3 -c 'import json,sys; print([json.loads(l)["data"]["result"]["stdout"] for l in sys.stdin if json.loads(l)["kind"] == "step_finished" and json.loads(l)["data"]["state"] == "show"][0])')
[[ $rc == 0 && $out == *"***"* && $out != *tok-* && $(cat "$TMP/w2.out") == *"vars.auth was computed from a secret and cannot be computed again on resume"* ]]
t $? "after a resume in another process the secret variable holds ***, and rbk says why" "exit $rc; show: $out; $(cat "$TMP/w2.out")"

# A secret body from http.request (secret_body: true), against a loopback server.
SERVER="$RBK_ROOT/tests/scripts/http_server.py"
python3 "$SERVER" "$TMP/reqs.jsonl" "$TMP/port" 2>>"$TMP/server.err" &
SRV=$!
trap 'kill $SRV 2>/dev/null; rm -rf "$TMP"' EXIT
for ((i = 0; i < 100; i++)); do [[ -s $TMP/port ]] && break; sleep 0.05; done
cat >"$TMP/h.yaml" <<Y
rbk: 1
name: login-http
params:
  ledger: {type: string}
start: login
states:
  login:
    do: http.request
    with: {url: "http://127.0.0.1:$(<"$TMP/port")/ok", secret_body: true}
    set:
      count: json(steps.login.out.body, '\$.count')
    next: [{to: use}]
  use:
    do: testkit.ledger
    with: {file: "{{ params.ledger }}", label: "count {{ vars.count }}"}
    next: [{to: done}]
  done: {end: success}
Y
"$RBK" run "$TMP/h.yaml" -p ledger="$TMP/hledger" >"$TMP/h.out" 2>&1
rc=$?
id=$("$RBK" history --limit 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])')
"$RBK" log "$id" --json >"$TMP/h.json" 2>&1
[[ $rc == 0 && $(cat "$TMP/hledger") == *"count 3"* ]] && ! grep -q '"status": *"ok", *"count"' "$TMP/h.json" &&
	python3 -c 'import json,sys
ev = [json.loads(l) for l in open(sys.argv[1])]
out = [e["data"]["result"]["out"] for e in ev if e["kind"] == "step_finished" and e["data"]["state"] == "login"][0]
vs = [e["data"]["vars"] for e in ev if e["kind"] == "vars_set" and e["data"]["state"] == "login"][0]
lab = [e["data"]["params"]["label"] for e in ev if e["kind"] == "step_started" and e["data"]["state"] == "use"][0]
assert out["body"] == "***" and vs["count"] == "***" and lab == "***", (out, vs, lab)' "$TMP/h.json"
t $? "http.request secret_body: the response body, and what is computed from it, are masked; the next step gets the value" \
	"exit $rc; ledger $(cat "$TMP/hledger" 2>/dev/null); $(grep -o '"body":"[^"]*"' "$TMP/h.json" | head -2)"
