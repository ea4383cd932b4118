#!/bin/bash
# runbooks/key-compromise.yaml in the sandbox: the happy path (safe mode,
# every listed key revoked, a trade-only key created and installed in a 0600
# secret store without its secret entering the record, the access log
# scanned, the incident documented, the exit approved by someone other than
# the launcher - another OS user, rbk-bob - safe mode left), a revocation that fails (critical alert,
# still in safe mode, no new key), a new key that can withdraw (revoked at
# once, escalation), and a rejected exit.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
PY=$(command -v /usr/bin/python3 || command -v python3) # a pyenv shim costs 0.5 s a call
PROXY_PID=
trap '[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null; sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PATH="$RBK_ROOT/runbooks" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
# The exit is answered by someone other than the launcher: rbk run as another
# OS user (root only: tests/scripts/lib.bash), on the case's files, theirs too.
people rbk-bob && chmod 755 "$TMP" && reachable rbk-bob
bob() { # bob CASE ARGS...: rbk as rbk-bob
	# shared as a team shares a home (docs/security.md): by group, never by all
	chgrp -R rbk-team "$TMP/$1" && chmod -R g+rwX,o-w "$TMP/$1"
	shift
	as_user rbk-bob "$RBK" "$@"
}

setup() { # setup CASE: two live keys (one can withdraw), open orders, an access log, an old secret store
	export RBK_HOME="$TMP/$1/home"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	sandbox_start "$TMP/$1"
	sandbox_state 's["exchange"] = {"open_orders": 2, "positions": [], "keys": [{"id": "k1", "permissions": ["trade", "withdraw"]}, {"id": "k2", "permissions": ["trade"]}]}'
	export RBK_ALERT_WEBHOOK="$SANDBOX_URL/alert"
	mkdir -p "$SANDBOX/etc"
	printf 'EXCHANGE_API_KEY=k1\nEXCHANGE_API_SECRET=old-compromised-secret\n' >"$SANDBOX/etc/exchange.env"
	chmod 0644 "$SANDBOX/etc/exchange.env"
	cat >"$SANDBOX/access.log" <<-'EOF'
	127.0.0.1 - - [21/Nov/2026:09:00:01 +0000] "GET /api/v3/account HTTP/1.1" 200 512 "-" "bot" key=k2
	10.0.0.5 - - [21/Nov/2026:09:00:02 +0000] "GET /status HTTP/1.1" 200 12 "-" "probe"
	203.0.113.9 - - [21/Nov/2026:09:00:03 +0000] "POST /sapi/v1/capital/withdraw/apply HTTP/1.1" 200 80 "-" "curl" key=k1
	203.0.113.9 - - [21/Nov/2026:09:00:04 +0000] "GET /api/v3/account HTTP/1.1" 200 512 "-" "curl" key=k1
	127.0.0.1 - - [21/Nov/2026:09:00:05 +0000] "GET /api/v3/ticker HTTP/1.1" 200 99 "-" "bot" key=k10
	EOF
}
params() {
	echo -p flags_url="$SANDBOX_URL/kv" -p exchange_url="${EXCHANGE:-$SANDBOX_URL/exchange}" -p secrets_file="$SANDBOX/etc/exchange.env" \
		-p access_log="$SANDBOX/access.log" -p known_ips=127.0.0.1,10.0.0.5 -p python="$PY" -p incident_log="$SANDBOX/incident_log.md"
}
st() { "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SANDBOX/state.json" "$1"; }

# Happy path.
setup happy
out=$("$RBK" run key-compromise $(params) 2>&1); rc=$?
[ $rc = 4 ] && ok "the response runs up to the exit approval (exit 4)" || fail "happy exit" "rc=$rc $out"
[ "$(st 's["kv"]["safe_mode"]["on"]')" = True ] && [ "$(st 's["exchange"]["open_orders"]')" = 0 ] \
	&& ok "safe mode is on and the open orders are cancelled (safe-mode called)" || fail "safe mode" "$(st 's')"
[ "$(st 's["exchange"]["revoked"]')" = "['k1', 'k2']" ] && ok "both listed keys were revoked" || fail "revoked" "$(st 's["exchange"]')"
new=$(st '[k["id"] for k in s["exchange"]["keys"]]')
newid=$(st 's["exchange"]["keys"][0]["id"]')
[ "$(st 's["exchange"]["keys"]')" = "[{'id': '$newid', 'permissions': ['trade']}]" ] \
	&& ok "one new key, trading only (no withdrawal)" || fail "new key" "$new"
mode=$(stat -c %a "$SANDBOX/etc/exchange.env")
secret=$(sed -n 's/^EXCHANGE_API_SECRET=//p' "$SANDBOX/etc/exchange.env")
[ "$mode" = 600 ] && grep -qx "EXCHANGE_API_KEY=$newid" "$SANDBOX/etc/exchange.env" && [ ${#secret} = 32 ] \
	&& [ ! -e "$SANDBOX/etc/exchange.env.new" ] && ok "the secret store holds the new key and its secret, mode 0600" \
	|| fail "secret store" "mode=$mode $(cat "$SANDBOX/etc/exchange.env")"
! grep -q old-compromised-secret "$SANDBOX/etc/exchange.env" && ok "the compromised secret is gone from the store" || fail "old secret" ""
if [ -n "$secret" ] && ! "$RBK" log 1 --json | grep -qF "$secret" && ! "$RBK" log 2 --json | grep -qF "$secret" \
	&& ! grep -qaF "$secret" $(store_files); then
	ok "the new secret is not in the run's record (log, store)"
else
	fail "the new secret is not in the run's record" "found"
fi
grep -q "access log $SANDBOX/access.log: 3 requests with a compromised key, 2 from unknown IPs (203.0.113.9)" "$SANDBOX/incident_log.md" 2>/dev/null \
	&& grep -q "revoked keys: k1 k2; new key $newid" "$SANDBOX/incident_log.md" \
	&& ok "the incident is documented with the access log findings" || fail "incident log" "$(cat "$SANDBOX/incident_log.md" 2>&1)"
out=$("$RBK" approve 1 2>&1); rc=$?
[ $rc = 2 ] && [[ $out == *"needs someone else"* ]] && ok "the launcher may not approve the exit (exit 2)" || fail "distinct" "rc=$rc $out"
out=$(bob happy approve 1 --comment "incident resolved" 2>&1); rc=$?
[ $rc = 0 ] && [ "$(st 's["kv"]["safe_mode"]["on"]')" = False ] && "$RBK" log 1 | grep -q "approved by $(principal rbk-bob)" \
	&& ok "approved by someone else (rbk-bob): safe mode left, exit 0" \
	|| fail "approve" "rc=$rc $out $(st 's["kv"]')"
[ "$(st '"safe mode OFF" in s["alerts"][-1]["text"]')" = True ] && ok "the channel is told operations resume" || fail "resume alert" "$(st 's["alerts"]')"
sandbox_stop

# A revocation fails (an unknown key): critical alert, still in safe mode, no new key.
setup revoke_fails
out=$("$RBK" run key-compromise $(params) -p compromised='["k1","k9"]' 2>&1); rc=$?
[ $rc = 1 ] && ok "a failed revocation fails the run (exit 1)" || fail "revoke fail exit" "rc=$rc $out"
[ "$(st 's["exchange"]["revoked"]')" = "['k1']" ] && [ "$(st '[k["id"] for k in s["exchange"]["keys"]]')" = "['k2']" ] \
	&& ok "k1 was revoked, no new key was created" || fail "keys after failure" "$(st 's["exchange"]')"
[ "$(st 's["kv"]["safe_mode"]["on"]')" = True ] && ok "the system stays in safe mode" || fail "still safe" "$(st 's["kv"]')"
[ "$(st '"REVOCATION FAILED for key k9" in s["alerts"][-1]["text"] and s["alerts"][-1]["severity"] == "critical"')" = True ] \
	&& ok "a critical alert names the key that could not be revoked" || fail "revoke alert" "$(st 's["alerts"]')"
grep -q old-compromised-secret "$SANDBOX/etc/exchange.env" && ok "the secret store is untouched" || fail "store untouched" ""
sandbox_stop

# The exchange gives the new key the withdrawal permission: it is revoked at once.
setup withdraw
"$PY" "$RBK_ROOT/tests/sandbox/extra/key-compromise/withdraw-proxy.py" "$SANDBOX_URL" "$SANDBOX/proxy.port" &
PROXY_PID=$!
for _ in $(seq 100); do [ -e "$SANDBOX/proxy.port" ] && break; sleep 0.05; done
EXCHANGE="http://127.0.0.1:$(cat "$SANDBOX/proxy.port")/exchange"
out=$("$RBK" run key-compromise $(params) 2>&1); rc=$?
EXCHANGE=
[ $rc = 1 ] && ok "a new key that can withdraw fails the run (exit 1)" || fail "withdraw exit" "rc=$rc $out"
[ "$(st 's["exchange"]["keys"]')" = "[]" ] && [ "$(st 'len(s["exchange"]["revoked"])')" = 3 ] \
	&& ok "the withdrawing key was revoked too (3 revocations, no key left)" || fail "bad key revoked" "$(st 's["exchange"]')"
[ ! -e "$SANDBOX/etc/exchange.env.new" ] && grep -q old-compromised-secret "$SANDBOX/etc/exchange.env" \
	&& ok "its secret was discarded, never installed" || fail "bad key discarded" "$(ls "$SANDBOX/etc")"
[ "$(st '"withdrawal, or no trading" in s["alerts"][-1]["text"] and s["kv"]["safe_mode"]["on"]')" = True ] \
	&& ok "a critical alert, still in safe mode" || fail "bad key alert" "$(st 's["alerts"]')"
kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; PROXY_PID=
sandbox_stop

# The exit is rejected.
setup reject
"$RBK" run key-compromise $(params) >/dev/null 2>&1
out=$(bob reject reject 1 --comment "unknown IP still under investigation" 2>&1); rc=$?
[ $rc = 1 ] && [ "$(st 's["kv"]["safe_mode"]["on"]')" = True ] && [ "$(st '"NOT authorised" in s["alerts"][-1]["text"]')" = True ] \
	&& ok "exit rejected: stays in safe mode, exit 1" || fail "reject" "rc=$rc $out"
