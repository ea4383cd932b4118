#!/bin/bash
# Notifications (docs/operations.md, "Getting told"): a runbook's notify:
# and the shared _notify.yaml on the path send, through a real plugin
# action (http.request to a webhook server on 127.0.0.1), one message per
# status change with the run in its context (status, reason, prompt, the
# command that answers); each is recorded as a notified event; a webhook
# that fails is tried again with backoff and never changes the run's
# outcome; secrets stay masked; dry runs tell no one; validate refuses what
# cannot work.
. "$(dirname "$0")/lib.bash"
export RBK_HOME=$TMP/home
export RBK_PLUGIN_PATH=$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins
fresh_store
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }
SERVER="$RBK_ROOT/tests/scripts/http_server.py"
REQS="$TMP/requests.jsonl"
SRV=
trap '[[ -n $SRV ]] && kill $SRV 2>/dev/null; rm -rf "$TMP"' EXIT
python3 "$SERVER" "$REQS" "$TMP/port" 2>>"$TMP/server.err" &
SRV=$!
for ((i = 0; i < 100; i++)); do [[ -s $TMP/port ]] && break; sleep 0.05; done
B="http://127.0.0.1:$(<"$TMP/port")"
reqs() { # reqs PATH-PREFIX EXPR: EXPR over the JSON bodies of the requests to paths starting with it
	python3 -c 'import json,sys
R = [json.loads(l) for l in open(sys.argv[1])] if __import__("os").path.exists(sys.argv[1]) else []
B = [json.loads(r["body"]) if r["body"] else None for r in R if r["path"].startswith(sys.argv[2])]
print(eval(sys.argv[3]))' "$REQS" "$1" "$2" 2>&1
}
told() { "$RBK" log "$1" --json 2>/dev/null | python3 -c 'import json,sys
print([(e["data"]["status"], e["data"]["entry"], e["data"]["ok"], e["data"]["attempts"]) for e in map(json.loads, sys.stdin) if e["kind"] == "notified"])'; }

mkdir -p "$TMP/rb"
export RBK_PATH=$TMP/rb
cat >"$TMP/rb/guarded.yaml" <<Y
rbk: 1
name: guarded
params:
  fail: {type: bool, default: false}
  token: {type: string, secret: true, env: HOOK_TOKEN}
notify:
  - on: [started, waiting, succeeded, failed]
    do: http.request
    with:
      method: POST
      url: "$B/echo?to=slack"
      token: "{{ params.token }}"
      json:
        text: "run {{ run.id }} ({{ run.name }}) {{ run.status }}: {{ default(run.reason, '') }} {{ run.command }}"
        prompt: "{{ default(run.prompt, '') }}"
        key: "{{ run.key }}"
        secret_seen: "{{ params.token }}"
start: ask
states:
  ask:
    approval: {prompt: "Deploy run {{ run.id }}?", approvers: [root, alice]}
    next: [{to: work}]
  work:
    do: shell.exec
    with: {argv: [/bin/sh, -c, "exit {{ '1' if params.fail else '0' }}"]}
    next: [{to: done}]
  done: {end: success}
Y
sed -i "s/exit {{ '1' if params.fail else '0' }}/test {{ params.fail }} = false/" "$TMP/rb/guarded.yaml"
export HOOK_TOKEN=hunter2-hook-token
"$RBK" validate guarded >"$TMP/v.out" 2>&1
t $? "a runbook with notify: validates" "$(cat "$TMP/v.out")"

"$RBK" run guarded >"$TMP/r1.out" 2>&1
rc=$?
[[ $rc == 4 && $(reqs /echo?to=slack 'len(B)') == 2 &&
	$(reqs /echo?to=slack 'B[0]["text"]') == "run 1 (guarded) started:  rbk log 1" &&
	$(reqs /echo?to=slack 'B[1]["text"]') == "run 1 (guarded) waiting: approval rbk approve 1" &&
	$(reqs /echo?to=slack 'B[1]["prompt"]') == "Deploy run 1?" ]]
t $? "started and waiting are each sent once, the waiting one with the prompt and the command that answers" \
	"exit $rc; $(reqs /echo?to=slack B)"
"$RBK" approve 1 >"$TMP/a1.out" 2>&1
rc=$?
[[ $rc == 0 && $(reqs /echo?to=slack 'len(B)') == 3 && $(reqs /echo?to=slack 'B[2]["text"]') == "run 1 (guarded) succeeded:  rbk log 1" &&
	$(told 1) == "[('started', 'runbook#0', True, 1), ('waiting', 'runbook#0', True, 1), ('succeeded', 'runbook#0', True, 1)]" ]]
t $? "the outcome is sent once more after the approval, and each is recorded as a notified event" \
	"exit $rc; $(reqs /echo?to=slack 'B[2:]'); told $(told 1)"
[[ $(reqs /echo?to=slack 'len(set(b["key"] for b in B))') == 3 && $(reqs /echo?to=slack 'B[1]["key"]') == 1:notify:*:runbook#0 ]]
t $? "each notification has its own idempotency key (RUN:notify:SEQ:ENTRY)" "$(reqs /echo?to=slack '[b["key"] for b in B]')"
python3 -c 'import json,sys
R = [json.loads(l) for l in open(sys.argv[1])]
assert all(r["headers"].get("authorization") == "Bearer hunter2-hook-token" for r in R), "token not sent"' "$REQS" &&
	! "$RBK" log 1 --json | grep -q hunter2 && ! grep -q hunter2 "$TMP/r1.out" "$TMP/a1.out" &&
	[[ $(reqs /echo?to=slack 'B[0]["secret_seen"]') == "hunter2-hook-token" ]]
t $? "a secret param reaches the webhook (its token) and appears nowhere in the record or output" \
	"$("$RBK" log 1 --json | grep -o 'hunter2[^"]*' | head -2)"

# A failing webhook: tried again with backoff, recorded as failed, the run's
# outcome unchanged; the shared file adds its entries to every runbook's.
cat >"$TMP/rb/_notify.yaml" <<Y
notify:
  - on: [failed, succeeded]
    do: http.request
    attempts: 2
    with:
      method: POST
      url: "$B/status/500"
      json: {text: "{{ run.name }} {{ run.status }}"}
  - on: [failed]
    do: http.request
    with:
      method: POST
      url: "$B/echo?to=telegram"
      json: {chat_id: -100123, text: "run {{ run.id }} {{ run.status }}: {{ run.reason }}"}
Y
"$RBK" validate guarded >/dev/null 2>&1 || fail "validate with a shared file" "$("$RBK" validate guarded 2>&1)"
rm -f "$REQS"
s=$(date +%s%3N)
"$RBK" run guarded -p fail=true >"$TMP/r2.out" 2>&1
"$RBK" approve 2 >"$TMP/a2.out" 2>&1
rc=$? el=$(($(date +%s%3N) - s))
tries=$(python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["path"] == "/status/500"))' "$REQS")
[[ $rc == 1 && $tries == 2 && $el -ge 1000 && $(reqs /echo?to=telegram 'len(B)') == 1 &&
	$(reqs /echo?to=telegram 'B[0]["text"]') == "run 2 failed: exited with code 1" &&
	$(told 2) == *"('failed', 'shared#0', False, 2), ('failed', 'shared#1', True, 1)]" &&
	$(cat "$TMP/a2.out") == *"notification shared#0 (http.request, failed) failed after 2 tries"* ]]
t $? "a failing webhook is tried again after a delay, recorded as failed, and the run still ends failed (exit 1)" \
	"exit $rc in ${el}ms; $tries tries; telegram $(reqs /echo?to=telegram B); told $(told 2); $(tail -3 "$TMP/a2.out")"
"$RBK" show 2 --json | grep -q '"status": *"failed"'
t $? "the run's status stays failed" "$("$RBK" show 2 2>&1 | head -3)"
OUT=$("$RBK" replay 2 2>&1)
[[ $? == 0 && $OUT == *", 0 divergences"* ]] && "$RBK" verify >/dev/null 2>&1
t $? "a run with notifications replays with no divergence and its chain verifies" "$OUT"

# Dry runs tell no one.
rm -f "$REQS"
"$RBK" run guarded --dry-run >"$TMP/r3.out" 2>&1
[[ ! -s $REQS ]]
t $? "a dry run sends no notification" "$(cat "$REQS" 2>/dev/null | head -2)"

# Sent once even across a crash: an executor killed after recording a status
# change but before telling of it; the resume tells, once.
rm -f "$REQS" "$TMP/rb/_notify.yaml"
cat >"$TMP/rb/slow.yaml" <<Y
rbk: 1
name: slow
notify:
  - on: [needs_attention, succeeded]
    do: http.request
    with: {method: POST, url: "$B/echo?to=slow", json: {text: "{{ run.status }} {{ run.command }}"}}
start: work
states:
  work:
    do: shell.exec
    with: {argv: [/bin/sleep, "30"]}
    idempotent: false
    next: [{to: done}]
  done: {end: success}
Y
"$RBK" run slow >"$TMP/r4.out" 2>&1 &
pid=$!
for ((i = 0; i < 100; i++)); do "$RBK" log 4 --json 2>/dev/null | grep -q step_started && break; sleep 0.05; done
kill -9 $pid
wait $pid 2>/dev/null
"$RBK" resume 4 >"$TMP/res4.out" 2>&1
rc=$?
[[ $rc == 4 && $(reqs /echo?to=slow 'len(B)') == 1 && $(reqs /echo?to=slow 'B[0]["text"]') == "needs_attention rbk resume 4" ]]
t $? "needs_attention is sent with the command that answers it" "exit $rc; $(reqs /echo?to=slow B); $(tail -2 "$TMP/res4.out")"
"$RBK" resume 4 --mark-step success >"$TMP/res5.out" 2>&1
rc=$?
[[ $rc == 0 && $(reqs /echo?to=slow 'len(B)') == 2 && $(reqs /echo?to=slow 'B[1]["text"]') == "succeeded rbk log 4" ]]
t $? "then succeeded, once" "exit $rc; $(reqs /echo?to=slow B); $(tail -2 "$TMP/res5.out")"

# Killed after the status change was committed, before it was told: the
# resume tells it, once, and then the outcome.
cat >"$TMP/rb/crashy.yaml" <<Y
rbk: 1
name: crashy
notify:
  - on: [started, succeeded]
    do: http.request
    with: {method: POST, url: "$B/echo?to=crashy", json: {text: "{{ run.status }}"}}
start: pause
states:
  pause: {wait: 10ms, next: [{to: done}]}
  done: {end: success}
Y
{ RBK_CRASH_POINT=notify.before_send:1 "$RBK" run crashy >"$TMP/c.out" 2>&1; } 2>/dev/null
rc=$?
id=$("$RBK" history --limit 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])')
before=$(reqs /echo?to=crashy 'len(B)')
"$RBK" resume "$id" >"$TMP/c2.out" 2>&1
rc2=$?
[[ $rc == 137 && $before == 0 && $rc2 == 0 && $(reqs /echo?to=crashy '[b["text"] for b in B]') == "['started', 'succeeded']" &&
	$(told "$id") == "[('started', 'runbook#0', True, 1), ('succeeded', 'runbook#0', True, 1)]" ]]
t $? "killed between recording a status change and telling it: the resume tells it, once, then the outcome" \
	"run exit $rc ($before sent), resume exit $rc2; $(reqs /echo?to=crashy B); told $(told "$id"); $(tail -2 "$TMP/c2.out")"

# What validate refuses.
bad() { # bad NAME TEXT WANT
	printf '%s\n' "rbk: 1" "name: bad" "start: done" "states:" "  done: {end: success}" "$2" >"$TMP/bad.yaml"
	OUT=$("$RBK" validate "$TMP/bad.yaml" 2>&1)
	[[ $? == 2 && $OUT == *"$3"* ]]
	t $? "validate refuses $1" "$OUT"
}
bad "an unknown status" $'notify:\n  - {on: [broken], do: http.request, with: {url: "http://127.0.0.1/"}}' "'on': unknown status 'broken'"
bad "an unknown action" $'notify:\n  - {on: [failed], do: http.requets, with: {url: "http://127.0.0.1/"}}' "unknown action 'http.requets'"
bad "a name a notification cannot know" $'notify:\n  - {on: [failed], do: http.request, with: {url: "http://127.0.0.1/{{ run.nope }}"}}' \
	"unknown name 'run.nope': in a notification, run has"
bad "an entry without on" $'notify:\n  - {do: http.request, with: {url: "http://127.0.0.1/"}}' "a 'notify' entry needs 'on'"
printf 'notify:\n  - {on: [failed], do: http.request, with: {url: "http://127.0.0.1/{{ params.x }}"}}\n' >"$TMP/rb/_notify.yaml"
OUT=$("$RBK" run slow 2>&1 </dev/null & sleep 1; kill %1 2>/dev/null)
[[ $OUT == *"_notify.yaml:2:"*"params.x"*"shared notifications of"*"are off"* ]]
t $? "a broken shared file is named with its place and switched off with a warning, not fatal" "$OUT"
OUT=$("$RBK" validate slow 2>&1)
[[ $? == 2 && $OUT == *"_notify.yaml:2:"*"params.x"* ]]
t $? "rbk validate of any runbook on the path refuses a broken shared file: exit 2" "$OUT"
