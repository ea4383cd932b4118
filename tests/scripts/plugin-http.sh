#!/bin/bash
# The http plugin (http.request), black box: small runbooks run by rbk against
# a real HTTP server on 127.0.0.1 (tests/scripts/http_server.py, a free port),
# which logs every request it receives. Assertions are on what the server saw,
# on the step's outputs and error in `rbk log --json`, and on rbk's output.
. "$(dirname "$0")/lib.bash"
export RBK_HOME="$TMP/home" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
unset RBK_PATH http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy
export HTTP_USER=ops HTTP_PASS='pa55-Wörd:x' HTTP_TOKEN='tok-7f3a9c1e55'
BASIC64=$(printf '%s' "$HTTP_USER:$HTTP_PASS" | base64)
SERVER="$RBK_ROOT/tests/scripts/http_server.py"
REQS="$TMP/requests.jsonl"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$TMP"' EXIT

serve() { # serve PORTFILE [--tls CERT KEY]: start a server; its port in PORT
	python3 "$SERVER" "$REQS" "$@" 2>>"$TMP/server.err" &
	PIDS+=($!)
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s $1 ]] && break
		sleep 0.05
	done
	PORT=$(<"$1")
}
serve "$TMP/port"
B="http://127.0.0.1:$PORT"
[[ -n $PORT ]] || { fail "the test server starts" "$(cat "$TMP/server.err")"; exit 1; }

# one NAME WITH [STATE_KEYS]: a runbook whose state 'req' runs http.request
# with WITH (a YAML flow map) and then ends in success; a failure fails the run.
one() {
	cat >"$TMP/$1.yaml" <<Y
rbk: 1
name: $1
params:
  pass:  {type: string, secret: true, env: HTTP_PASS}
  token: {type: string, secret: true, env: HTTP_TOKEN}
start: req
states:
  req:
    do: http.request
    with: $2
${3:+    $3
}    next: done
  done: {end: success}
Y
}
now() { date +%s%3N; }
# go NAME [ARGS]: run it; RC, OUT (stdout and stderr), RUN, EL (ms), LOG (JSON lines)
go() {
	local s
	s=$(now)
	OUT=$("$RBK" run "$TMP/$1.yaml" "${@:2}" 2>&1)
	RC=$?
	EL=$(($(now) - s))
	RUN=$(sed -n 's/.* run \([0-9]*\) started.*/\1/p' <<<"$OUT" | head -1)
	LOG=$("$RBK" log "$RUN" --json 2>&1)
	printf '%s\n' "$LOG" >"$TMP/log.jsonl"
	if grep -q 'Sanitizer\|runtime error:' <<<"$OUT"; then printf '%s\n' "$OUT" >&2; fi
}
cat >"$TMP/q.py" <<'PY'
import json, sys
kind, expr = sys.argv[1], sys.argv[2]
if kind == "step":   # r: the result of the last step_finished of state 'req'
    r = {}
    for line in open(sys.argv[3]):
        e = json.loads(line)
        if e["kind"] == "step_finished" and e["data"]["state"] == "req":
            r = e["data"]["result"]
    out = r.get("out", {})
    v = eval(expr)
else:                # reqs: the requests the server saw whose path contains sys.argv[3]
    reqs = [json.loads(l) for l in open(sys.argv[4])] if len(sys.argv) > 4 else []
    reqs = [q for q in reqs if sys.argv[3] in q["path"]]
    v = eval(expr)
print(v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), ensure_ascii=False))
PY
q() { python3 "$TMP/q.py" step "$1" "$TMP/log.jsonl" 2>&1; }    # q EXPR over r (result) and out
seen() { python3 "$TMP/q.py" reqs "$2" "$1" "$REQS" 2>&1; }       # seen TAG EXPR over reqs
why() { printf 'exit %s; %s; out=%s; error=%s' "$RC" "$(tail -3 <<<"$OUT" | tr '\n' ' ')" "$(q out)" "$(q 'r.get("error")')"; }
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }

# --- GET, outputs, json() in a guard -----------------------------------------
cat >"$TMP/get.yaml" <<Y
rbk: 1
name: get
start: req
states:
  req:
    do: http.request
    with: {url: "$B/ok?t=get"}
    next:
      - if: steps.req.out.status == 200 && json(steps.req.out.body, '\$.status') == 'ok' && json(steps.req.out.body, '\$.count') == 3
        to: done
      - to: wrong
  done: {end: success}
  wrong: {end: failure}
Y
go get
[[ $RC == 0 && $(seen t=get 'len(reqs)') == 1 && $(seen t=get 'reqs[0]["method"]') == GET ]]
t $? "GET 200: json() on steps.S.out.body in a guard picks the success branch" "$(why)"
[[ $(q 'out["headers"]["content-type"]') == application/json && $(q 'out["headers"]["x-multi"]') == "a, b" &&
	$(q 'out["body_truncated"]') == false && $(q 'out["url"]') == "$B/ok?t=get" &&
	$(q 'type(out["duration_ms"]).__name__') == int && $(q 'sorted(out)') == '["body","body_truncated","duration_ms","headers","status","url"]' ]]
t $? "outputs: status, headers (lower-case, repeats joined), body, body_truncated, url, duration_ms" "$(q out)"

# --- methods and bodies ---------------------------------------------------------
one post "{method: POST, url: \"$B/echo?t=post\", json: {name: rbk, n: 3, ratio: 0.5, ok: true, none: null, list: [1, \"two\"], nested: {k: \"é\\\"\\n\"}}}"
go post
[[ $RC == 0 && $(seen t=post 'reqs[0]["body"]') == '{"name":"rbk","n":3,"ratio":0.5,"ok":true,"none":null,"list":[1,"two"],"nested":{"k":"é\"\n"}}' &&
	$(seen t=post 'reqs[0]["headers"]["content-type"]') == application/json && $(seen t=post 'reqs[0]["method"]') == POST ]]
t $? "POST json: the server receives the exact JSON with Content-Type application/json" "$(why) $(seen t=post reqs)"
[[ $(q 'json.loads(out["body"])["body"]') == "$(seen t=post 'reqs[0]["body"]')" ]]
t $? "POST json: the echoed body comes back in out.body" "$(q out)"

one json-str "{method: PUT, url: \"$B/echo?t=jsonstr\", json: \"just text\"}"
go json-str
[[ $RC == 0 && $(seen t=jsonstr 'reqs[0]["body"]') == '"just text"' && $(seen t=jsonstr 'reqs[0]["method"]') == PUT ]]
t $? "json may be any value: a string is sent as a JSON string (PUT)" "$(why) $(seen t=jsonstr reqs)"

one body "{method: patch, url: \"$B/echo?t=body\", body: \"a=1&b=2\"}"
go body
[[ $RC == 0 && $(seen t=body 'reqs[0]["body"]') == "a=1&b=2" && $(seen t=body 'reqs[0]["method"]') == PATCH &&
	$(seen t=body '"content-type" in reqs[0]["headers"]') == false ]]
t $? "body is sent as is (PATCH, method case-insensitive), with no Content-Type unless given" "$(why) $(seen t=body reqs)"

one body-ct "{method: POST, url: \"$B/echo?t=bodyct\", body: \"<x/>\", headers: {Content-Type: application/xml}}"
go body-ct
[[ $RC == 0 && $(seen t=bodyct 'reqs[0]["headers"]["content-type"]') == application/xml ]]
t $? "a Content-Type header given by the runbook is used" "$(why) $(seen t=bodyct reqs)"

one put-empty "{method: PUT, url: \"$B/echo?t=putempty\"}"
go put-empty
[[ $RC == 0 && $(seen t=putempty 'reqs[0]["headers"].get("content-length")') == 0 && $(seen t=putempty 'reqs[0]["method"]') == PUT ]]
t $? "PUT without a body sends Content-Length: 0" "$(why) $(seen t=putempty reqs)"

one delete "{method: DELETE, url: \"$B/echo?t=delete\"}"
go delete
[[ $RC == 0 && $(seen t=delete 'reqs[0]["method"]') == DELETE && $(q 'json.loads(out["body"])["method"]') == DELETE ]]
t $? "DELETE reaches the server as DELETE" "$(why) $(seen t=delete reqs)"

one head "{method: HEAD, url: \"$B/ok?t=head\"}"
go head
[[ $RC == 0 && $(seen t=head 'reqs[0]["method"]') == HEAD && $(q 'out["status"]') == 200 && $(q 'out["body"]') == "" &&
	$(q 'out["headers"]["content-length"]') == 28 ]]
t $? "HEAD: status and headers, an empty body" "$(why)"

# --- query and headers ----------------------------------------------------------------
one query "{url: \"$B/echo?t=query\", query: {q: \"a b&c=d/é+\", n: 5, flag: true, empty: \"\", bare: null}}"
go query
[[ $RC == 0 && $(seen t=query 'reqs[0]["path"]') == "/echo?t=query&q=a%20b%26c%3Dd%2F%C3%A9%2B&n=5&flag=true&empty=&bare" &&
	$(q 'out["url"]') == "$B/echo?t=query&q=a%20b%26c%3Dd%2F%C3%A9%2B&n=5&flag=true&empty=&bare" ]]
t $? "query params are URL-encoded and appended after the url's own query" "$(why) $(seen t=query 'reqs[0]["path"]')"

one headers "{url: \"$B/echo?t=headers\", headers: {X-Trace: abc-123, X-Num: 42, X-Flag: false, Accept: text/plain}}"
go headers
[[ $RC == 0 && $(seen t=headers 'reqs[0]["headers"]["x-trace"]') == abc-123 && $(seen t=headers 'reqs[0]["headers"]["x-num"]') == 42 &&
	$(seen t=headers 'reqs[0]["headers"]["x-flag"]') == false && $(seen t=headers 'reqs[0]["headers"]["accept"]') == text/plain ]]
t $? "custom headers reach the server (numbers and bools as text; Accept replaced)" "$(why) $(seen t=headers reqs)"

one badheader "{url: \"$B/echo?t=badheader\", headers: {X-Evil: \"a\\r\\nX-Injected: 1\"}}"
go badheader
[[ $RC == 1 && $(q 'r["error"]') == "http.request: header 'X-Evil' contains a line break" && $(seen t=badheader 'len(reqs)') == 0 ]]
t $? "a header value with a line break is refused before any request" "$(why)"

# --- auth and secrets -------------------------------------------------------------------
one basic "{url: \"$B/basic?t=basic\", auth: basic, username: ops, password: \"{{ params.pass }}\"}"
go basic
[[ $RC == 0 && $(seen t=basic 'reqs[0]["headers"]["authorization"]') == "Basic $BASIC64" ]]
t $? "basic auth: the server checks the credentials (password from a secret env param)" "$(why) $(seen t=basic reqs)"
[[ $(q 'out["body"]') == "you sent: Basic ***" ]]
t $? "basic auth: the credentials echoed in the body are masked in out.body" "$(q out)"
[[ $LOG != *"$HTTP_PASS"* && $LOG != *"$BASIC64"* && $OUT != *"$HTTP_PASS"* && $LOG == *'"password":"***"'* ]]
t $? "basic auth: the password is in neither rbk log --json nor rbk's output" "$(grep -o '.\{40\}pa55.\{20\}' <<<"$LOG$OUT" | head -2)"

one bearer "{url: \"$B/bearer?t=bearer\", auth: bearer, token: \"{{ params.token }}\"}"
go bearer
[[ $RC == 0 && $(seen t=bearer 'reqs[0]["headers"]["authorization"]') == "Bearer $HTTP_TOKEN" && $(q 'out["body"]') == "you sent: Bearer ***" ]]
t $? "bearer auth: the server checks the token; echoed, it is masked" "$(why) $(seen t=bearer reqs)"
[[ $LOG != *"$HTTP_TOKEN"* && $OUT != *"$HTTP_TOKEN"* ]]
t $? "bearer auth: the token is in neither rbk log --json nor rbk's output" "$(grep -o '.\{40\}tok-7f.\{20\}' <<<"$LOG$OUT" | head -2)"

one badpass "{url: \"$B/basic?t=badpass\", username: ops, password: \"{{ params.pass }}\"}"
HTTP_PASS=wrong-pass-123 go badpass
[[ $RC == 1 && $(q 'r["error"]') == "http GET $B/basic?t=badpass: status 401, expected 200-299; body: you sent: Basic ***" &&
	$(seen t=badpass 'reqs[0]["headers"]["authorization"]') == "Basic $(printf 'ops:wrong-pass-123' | base64)" &&
	$LOG != *wrong-pass-123* && $OUT != *wrong-pass-123* && $OUT == *"status 401"* ]]
t $? "a wrong password: 401 fails the step (auth inferred from username); the secret stays masked" "$(why)"

# An optional token left empty: no Authorization header at all (not "Bearer ").
one notoken "{url: \"$B/echo?t=notoken\", token: \"{{ params.token }}\"}"
HTTP_TOKEN= go notoken
[[ $RC == 0 && $(seen t=notoken 'len([r for r in reqs if "authorization" in r["headers"]])') == 0 && $(seen t=notoken 'len(reqs)') == 1 ]]
t $? "an empty token counts as none: no Authorization header" "$(why) $(seen t=notoken reqs)"

# A literal token (not a runbook secret) is still masked by the plugin in its outputs and errors.
one literal "{url: \"$B/bearer?t=literal\", token: lit-tok-4242, expect_status: 200}"
go literal
[[ $RC == 1 && $(q 'r["error"]') == "http GET $B/bearer?t=literal: status 401, expected 200; body: you sent: Bearer ***" &&
	$(q 'json.dumps(r)') != *lit-tok-4242* ]]
t $? "a literal token echoed by the server is masked in the step's outputs and error" "$(why)"

one urlcreds "{url: \"http://ops:url-pw-99@127.0.0.1:$PORT/status/500?t=urlcreds\"}"
go urlcreds
[[ $RC == 1 && $(q 'r["error"]') == "http GET $B/status/500?t=urlcreds: status 500, expected 200-299; body: status 500: this body explains why" &&
	$(q 'out["url"]') == "$B/status/500?t=urlcreds" && $(seen t=urlcreds 'reqs[0]["headers"]["authorization"]') == "Basic $(printf 'ops:url-pw-99' | base64)" ]]
t $? "credentials in the url are used, and left out of the url in outputs and errors" "$(why)"

one noauth "{url: \"$B/bearer?t=noauth\", auth: bearer}"
go noauth
[[ $RC == 1 && $(q 'r["error"]') == "http.request: auth bearer needs 'token'" && $(seen t=noauth 'len(reqs)') == 0 ]]
t $? "auth bearer without a token is refused before any request" "$(why)"

# --- expected statuses --------------------------------------------------------------------
one exp-list "{url: \"$B/status/404?t=explist\", expect_status: [200, 404, 410]}"
go exp-list
[[ $RC == 0 && $(q 'out["status"]') == 404 && $(q 'out["body"]') == "status 404: this body explains why" ]]
t $? "expect_status as a list: 404 counts as success" "$(why)"
one exp-range "{url: \"$B/status/418?t=exprange\", expect_status: \"400-499\"}"
go exp-range
[[ $RC == 0 && $(q 'out["status"]') == 418 ]]
t $? "expect_status as a range \"400-499\": 418 counts as success" "$(why)"
one exp-mixed "{url: \"$B/status/204?t=expmixed\", expect_status: \"200, 300-399\"}"
go exp-mixed
[[ $RC == 1 && $(q 'r["error"]') == "http GET $B/status/204?t=expmixed: status 204, expected 200, 300-399; body: (empty)" ]]
t $? "a status outside \"200, 300-399\" fails, naming the expected set" "$(why)"
one exp-bad "{url: \"$B/ok?t=expbad\", expect_status: \"2xx\"}"
go exp-bad
[[ $RC == 1 && $(q 'r["error"]') == "http.request: expect_status: cannot read '2xx' (write 200-299, or a list such as [200, 204])" &&
	$(seen t=expbad 'len(reqs)') == 0 ]]
t $? "a bad expect_status is refused before any request" "$(why)"

one notfound "{url: \"$B/status/404?t=404\"}"
go notfound
[[ $RC == 1 && $(q 'r["error"]') == "http GET $B/status/404?t=404: status 404, expected 200-299; body: status 404: this body explains why" &&
	$(q 'out["status"]') == 404 && $OUT == *"status 404, expected 200-299"* ]]
t $? "404 fails the step with method, url, status and the body's start; outputs still set" "$(why)"

cat >"$TMP/onfail.yaml" <<Y
rbk: 1
name: onfail
start: req
states:
  req:
    do: http.request
    with: {url: "$B/status/503?t=onfail"}
    on_failure: judge
    next: done
  judge:
    next:
      - if: steps.req.status == 'failed' && steps.req.out.status == 503 && steps.req.error =~ /status 503/
        to: handled
  done: {end: success}
  handled: {end: success}
Y
go onfail
[[ $RC == 0 && $LOG == *'"to":"handled"'* ]]
t $? "a failure edge can read steps.S.out.status and steps.S.error" "$(why)"

# --- retries ------------------------------------------------------------------------------
one r429 "{url: \"$B/flaky429/a?t=r429\", retries: 2}"
go r429
[[ $RC == 0 && $(q 'out["status"]') == 200 && $(q 'out["body"]') == "fine now" && $(seen t=r429 'len(reqs)') == 2 &&
	$EL -ge 1000 && $EL -lt 5000 ]]
t $? "429 with Retry-After: 1, retries 2: success on the 2nd request after ~1s" "$(why) ${EL}ms, $(seen t=r429 'len(reqs)') requests"
[[ $LOG == *"status 429 after "*"retry 1 of 2 in 1000ms (Retry-After)"* ]]
t $? "the retry and its wait are logged" "$(q 'r')"

one r429none "{url: \"$B/flaky429/b?t=r429none\"}"
go r429none
[[ $RC == 1 && $(seen t=r429none 'len(reqs)') == 1 && $(q 'r["error"]') == *"status 429, expected 200-299; body: slow down" ]]
t $? "without retries a 429 fails at once" "$(why)"

one rdate "{url: \"$B/flakydate/a?t=rdate\", retries: 1}"
go rdate
[[ $RC == 0 && $(seen t=rdate 'len(reqs)') == 2 && $EL -ge 900 && $EL -lt 5000 ]]
t $? "503 with Retry-After as an HTTP date is honoured (waits about the time asked)" "$(why) ${EL}ms"

one rcap "{url: \"$B/flakydate/b?t=rcap\", retries: 1, max_retry_wait: 200ms}"
go rcap
[[ $RC == 0 && $(seen t=rcap 'len(reqs)') == 2 && $EL -lt 1700 && $LOG == *"in 200ms (Retry-After)"* ]]
t $? "max_retry_wait caps the wait Retry-After asks for" "$(why) ${EL}ms"

one busy "{url: \"$B/busy?t=busy\", retries: 2}"
go busy
[[ $RC == 1 && $(seen t=busy 'len(reqs)') == 3 &&
	$(q 'r["error"]') == "http GET $B/busy?t=busy: status 503, expected 200-299 (after 3 attempts); body: busy, try later" ]]
t $? "503 on every attempt: retries exhausted, the step fails after 3 requests" "$(why)"

one busyok "{url: \"$B/busy?t=busyok\", retries: 2, expect_status: [200, 503]}"
go busyok
[[ $RC == 0 && $(seen t=busyok 'len(reqs)') == 1 ]]
t $? "an expected 503 is not retried" "$(why)"

one busytime "{url: \"$B/flaky429/c?t=busytime\", retries: 3}" "timeout: 800ms"
go busytime
[[ $RC == 1 && $(seen t=busytime 'len(reqs)') == 1 && $(q 'r["error"]') == *"status 429, expected 200-299; body: slow down" &&
	$LOG == *"no retry: waiting 1000ms would pass the step's timeout"* ]]
t $? "a Retry-After wait longer than the step's time left is not waited" "$(why) ${EL}ms"

# --- timeouts and connection errors ------------------------------------------------------
one slow "{url: \"$B/slow?t=slow\", timeout: 500ms}"
go slow
[[ $RC == 1 && $EL -lt 2500 && $(q 'r["error"]') == "http GET $B/slow?t=slow: timed out after 500ms: "* ]]
t $? "timeout: a server that sleeps 3s fails the step after 500ms" "$(why) ${EL}ms"

one slowstep "{url: \"$B/slow?t=slowstep\"}" "timeout: 700ms"
go slowstep
[[ $RC == 1 && $EL -lt 2500 && $(q 'r["error"]') == "http GET $B/slow?t=slowstep: timed out after "*"ms (the step's timeout): "* ]]
t $? "the step's timeout caps the request (time_left_ms), with a clean message" "$(why) ${EL}ms"

CLOSED=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
one refused "{url: \"http://127.0.0.1:$CLOSED/x\"}"
go refused
[[ $RC == 1 && $(q 'r["error"]') == "http GET http://127.0.0.1:$CLOSED/x: cannot connect: "*"127.0.0.1"*"$CLOSED"* && $(q 'out["url"]') == "http://127.0.0.1:$CLOSED/x" ]]
t $? "connection refused on a closed port: curl's message" "$(why)"

one refused2 "{url: \"http://127.0.0.1:$CLOSED/x\", retries: 1, max_retry_wait: 300ms}"
go refused2
[[ $RC == 1 && $EL -ge 300 && $(q 'r["error"]') == "http GET http://127.0.0.1:$CLOSED/x: cannot connect (after 2 attempts): "* ]]
t $? "a refused connection is retried (the request was never sent)" "$(why) ${EL}ms"

# A listener whose backlog is full: the SYN is dropped, the connection never completes.
python3 - "$TMP/fullport" <<'PY' &
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
cs = []
for i in range(3):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(s.getsockname())
    except BlockingIOError: pass
    cs.append(c)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
PY
PIDS+=($!)
for ((i = 0; i < 100; i++)); do [[ -s $TMP/fullport ]] && break; sleep 0.05; done
FULL=$(<"$TMP/fullport")
one conntime "{url: \"http://127.0.0.1:$FULL/x\", connect_timeout: 300ms, timeout: 5s}"
go conntime
[[ $RC == 1 && $EL -lt 2500 && $(q 'r["error"]') == "http GET http://127.0.0.1:$FULL/x: timed out connecting after 300ms: "* ]]
t $? "connect_timeout: a connection that never completes fails after 300ms" "$(why) ${EL}ms"

one badurl "{url: \"ftp://ops:ftp-pw-1@127.0.0.1/x\"}"
go badurl
[[ $RC == 1 && $(q 'r["error"]') == "http.request: url 'ftp://ops:***@127.0.0.1/x' is not http:// or https://" ]]
t $? "a url that is not http(s) is refused, its password masked" "$(why)"
one badurl2 "{url: \"not a url\"}"
go badurl2
[[ $RC == 1 && $(q 'r["error"]') == "http.request: bad url 'not a url' (write http://host/path or https://host/path)" ]]
t $? "a malformed url is refused" "$(why)"

# --- redirects ------------------------------------------------------------------------------
one redir-no "{url: \"$B/redirect?t=redirno\"}"
go redir-no
[[ $RC == 1 && $(q 'out["status"]') == 302 && $(seen /ok?t=redirno 'len(reqs)') == 0 && $(q 'r["error"]') == *"status 302, expected 200-299; body: moved" ]]
t $? "redirects are not followed by default: 302 fails the default expect_status" "$(why)"
one redir-302 "{url: \"$B/redirect?t=redir302\", expect_status: [302]}"
go redir-302
[[ $RC == 0 && $(q 'out["headers"]["location"]') == "/ok?t=redir302" && $(q 'out["url"]') == "$B/redirect?t=redir302" ]]
t $? "a 302 can be expected; out.headers.location is readable" "$(why)"
one redir-yes "{url: \"$B/redirect?t=rediryes\", follow_redirects: true}"
go redir-yes
[[ $RC == 0 && $(q 'out["status"]') == 200 && $(q 'out["url"]') == "$B/ok?t=rediryes" && $(seen /ok?t=rediryes 'len(reqs)') == 1 &&
	$(q 'out["headers"]["content-type"]') == application/json ]]
t $? "follow_redirects: true follows to /ok; url is the effective URL, headers the last response's" "$(why)"
one redir-max "{url: \"$B/redirect?t=redirmax\", follow_redirects: true, max_redirects: 0}"
go redir-max
[[ $RC == 1 && $(q 'r["error"]') == "http GET $B/redirect?t=redirmax: request failed: "*"edirect"* ]]
t $? "max_redirects: 0 stops at the first redirect" "$(why)"

# --- max_body --------------------------------------------------------------------------------
one big "{url: \"$B/big?t=big\", max_body: 100}"
go big
[[ $RC == 0 && $(q 'len(out["body"])') == 100 && $(q 'out["body_truncated"]') == true && $LOG == *"100 bytes (truncated)"* ]]
t $? "max_body: a 5000-byte body is cut to 100 bytes and marked truncated" "$(why)"
one bigall "{url: \"$B/big?t=bigall\"}"
go bigall
[[ $RC == 0 && $(q 'len(out["body"])') == 5000 && $(q 'out["body_truncated"]') == false ]]
t $? "under the default max_body the whole body is kept" "$(why)"

# --- dry run ---------------------------------------------------------------------------------
one dry "{method: POST, url: \"$B/echo?t=dry\", token: \"{{ params.token }}\", headers: {Authorization: \"Bearer {{ params.token }}\"}, json: {a: 1}}" "dry_run: {out: {status: 200}}"
go dry --dry-run
[[ $RC == 0 && $(seen t=dry 'len(reqs)') == 0 && $OUT == *"would run http.request"*"$B/echo?t=dry"* && $OUT == *'"token":"***"'* &&
	$OUT == *'"Authorization":"***"'* && $OUT != *"$HTTP_TOKEN"* && $LOG != *"$HTTP_TOKEN"* ]]
t $? "--dry-run sends nothing (the server saw no request) and masks the token in the printed plan" "$(why) $(seen t=dry reqs)"

# --- params checked by rbk against the plugin's table ------------------------------------------
one typo "{url: \"$B/ok\", retries: two, timeout: 5}"
OUT=$("$RBK" validate "$TMP/typo.yaml" 2>&1)
RC=$?
[[ $RC == 2 && $OUT == *"param 'retries' of http.request must be an int, not a string"* &&
	$OUT == *"param 'timeout' of http.request must be a duration such as 30s, not an integer"* ]]
t $? "rbk validate checks params against http.request's table" "$OUT"
one both "{url: \"$B/echo?t=both\", body: x, json: {a: 1}}"
go both
[[ $RC == 1 && $(q 'r["error"]') == "http.request: give 'body' or 'json', not both" && $(seen t=both 'len(reqs)') == 0 ]]
t $? "body and json together are refused" "$(why)"
one badmethod "{method: TRACE, url: \"$B/echo?t=badmethod\"}"
go badmethod
[[ $RC == 1 && $(q 'r["error"]') == "http.request: method 'TRACE' is not one of GET, HEAD, POST, PUT, PATCH, DELETE" ]]
t $? "an unknown method is refused" "$(why)"

# --- TLS ---------------------------------------------------------------------------------------
if openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.log" 2>&1; then
	serve "$TMP/tlsport" --tls "$TMP/cert.pem" "$TMP/key.pem"
	S="https://127.0.0.1:$PORT"
	one tls-bad "{url: \"$S/ok?t=tlsbad\"}"
	go tls-bad
	[[ $RC == 1 && $(q 'r["error"]') == "http GET $S/ok?t=tlsbad: tls error: "*"certificate"* && $(seen t=tlsbad 'len(reqs)') == 0 ]]
	t $? "https with a self-signed certificate fails verification by default" "$(why)"
	one tls-ca "{url: \"$S/ok?t=tlsca\", ca_file: \"$TMP/cert.pem\"}"
	go tls-ca
	[[ $RC == 0 && $(q 'out["status"]') == 200 && $(seen t=tlsca 'len(reqs)') == 1 ]]
	t $? "ca_file trusts the server's certificate" "$(why)"
	one tls-off "{url: \"$S/ok?t=tlsoff\", verify_tls: false}"
	go tls-off
	[[ $RC == 0 && $(q 'out["status"]') == 200 ]]
	t $? "verify_tls: false accepts any certificate" "$(why)"
	one tls-noca "{url: \"$S/ok?t=tlsnoca\", ca_file: \"$TMP/nope.pem\"}"
	go tls-noca
	[[ $RC == 1 && $(q 'r["error"]') == "http GET $S/ok?t=tlsnoca: tls error: "* ]]
	t $? "a ca_file that does not exist fails with a tls error" "$(why)"
else
	fail "openssl makes a test certificate" "$(cat "$TMP/openssl.log")"
fi

# --- the plan function, called directly -------------------------------------------------------
# rbk --dry-run does not call an action's plan function (it prints the
# rendered params itself), so the plan is checked through a small host.
cat >"$TMP/plan.c" <<'C'
#include <rbk/plugin.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
static void out(rbk_call *c, const char *n, const rbk_value *v) { (void)c; (void)n; (void)v; }
static void outs(rbk_call *c, const char *n, const char *v, size_t l) { (void)c; (void)n; (void)v; (void)l; }
static void outi(rbk_call *c, const char *n, int64_t v) { (void)c; (void)n; (void)v; }
static void outb(rbk_call *c, const char *n, int v) { (void)c; (void)n; (void)v; }
static void err(rbk_call *c, const char *f, ...) { va_list a; va_start(a, f); (void)c; printf("error: "); vprintf(f, a); printf("\n"); va_end(a); }
static void lg(rbk_call *c, int l, const char *f, ...) { va_list a; va_start(a, f); (void)c; printf("%d: ", l); vprintf(f, a); printf("\n"); va_end(a); }
static const rbk_value *arg(const rbk_value *a, const char *n) {
	for (size_t i = 0; i < a->as.map.count; i++) if (!strcmp(a->as.map.keys[i], n)) return &a->as.map.values[i];
	return NULL;
}
static const char *key(rbk_call *c) { (void)c; return "1:s:1"; }
static int64_t left(rbk_call *c) { (void)c; return -1; }
static int dry(rbk_call *c) { (void)c; return 1; }
#define S(x) {RBK_TYPE_STRING, {.str = {x, sizeof x - 1}}}
int main(int argc, char **argv) {
	(void)argc;
	/* Designated: functions added to the table later stay NULL (this host lacks them). */
	rbk_host h = {.abi_major = RBK_PLUGIN_ABI_MAJOR, .abi_minor = RBK_PLUGIN_ABI_MINOR, .struct_size = sizeof h,
		      .set_output = out, .set_output_string = outs, .set_output_int = outi, .set_output_bool = outb,
		      .set_error = err, .log = lg, .arg = arg, .idempotency_key = key, .time_left_ms = left, .dry_run = dry};
	void *so = dlopen(argv[1], RTLD_NOW);
	int (*init)(const rbk_host *, const rbk_plugin **) = so ? (int (*)(const rbk_host *, const rbk_plugin **))dlsym(so, "rbk_plugin_init") : NULL;
	const rbk_plugin *p;
	if (!init || init(&h, &p)) return 2;
	const char *hk[] = {"Authorization", "X-Trace"};
	rbk_value hv[] = {S("Bearer plan-tok-1"), S("t-1")};
	const char *qk[] = {"q"};
	rbk_value qv[] = {S("a b")};
	const char *jk[] = {"k"};
	rbk_value jv[] = {S("v")};
	const char *keys[] = {"method", "url", "token", "headers", "query", "json"};
	rbk_value vals[] = {S("post"), S("http://ops:url-pw-2@127.0.0.1:1/x"), S("plan-tok-1"),
		{RBK_TYPE_MAP, {.map = {hk, hv, 2}}}, {RBK_TYPE_MAP, {.map = {qk, qv, 1}}}, {RBK_TYPE_MAP, {.map = {jk, jv, 1}}}};
	rbk_value args = {RBK_TYPE_MAP, {.map = {keys, vals, 6}}};
	int rc = p->actions[0].plan(NULL, &args);
	const char *bk[] = {"url", "body", "json"};
	rbk_value bv[] = {S("http://127.0.0.1:1/x"), S("b"), S("j")};
	rbk_value bad = {RBK_TYPE_MAP, {.map = {bk, bv, 3}}};
	int rc2 = p->actions[0].plan(NULL, &bad);
	printf("rc %d %d\n", rc, rc2);
	dlclose(so);
	return 0;
}
C
if cc -std=c11 -Wall -Wextra -Werror -I"$RBK_ROOT/engine/include" -o "$TMP/plan" "$TMP/plan.c" -ldl 2>"$TMP/plan.err"; then
	OUT=$("$TMP/plan" "$RBK_ROOT/build/plugins/rbk-http.so" 2>&1)
	want="1: would send POST http://127.0.0.1:1/x?q=a%20b
1:   header Authorization: ***
1:   header X-Trace: t-1
1:   header Authorization: Bearer ***
1:   json body of 9 bytes
error: http.request: give 'body' or 'json', not both
rc 0 1"
	[[ $OUT == "$want" ]]
	t $? "plan: method, url (no credentials) and headers, Authorization and the token masked; bad params refused" "$OUT"
else
	fail "the plan host compiles" "$(cat "$TMP/plan.err")"
fi
