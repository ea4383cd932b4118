#!/bin/bash
# An action whose idempotency depends on its params: an HTTP GET in flight
# at a crash is sent again by `rbk resume` (same key); a POST stops in
# needs_attention for an operator; a runbook's `idempotent:` overrides both.
. "$(dirname "$0")/lib.bash"
. "$RBK_ROOT/tests/sandbox/lib.bash"
trap 'sandbox_stop; rm -rf "$TMP"' EXIT
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
sandbox_start "$TMP/sbx"
for method in GET POST; do
	[ $method = GET ] && target="$SANDBOX_URL/health/api" || target="$SANDBOX_URL/alert"
	cat >"$TMP/$method.yaml" <<Y
rbk: 1
name: idem-${method,,}
start: call
states:
  call:
    do: http.request
    with: {method: $method, url: "$target", json: {text: hi}}
    next: done
  done: {end: success}
Y
	export RBK_HOME="$TMP/home-$method"
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	RBK_CRASH_POINT=step.after_start:1 "$RBK" run "$TMP/$method.yaml" >/dev/null 2>&1
	out=$("$RBK" resume 1 2>&1); rc=$?
	if [ $method = GET ]; then
		[[ $rc == 0 && $out == *"running again (idempotent, same key)"* ]] && ok "a GET in flight is sent again by resume" || fail "GET resume" "rc=$rc $out"
	else
		[[ $rc == 4 && $out == *"needs attention"* ]] && ok "a POST in flight waits for an operator (exit 4)" || fail "POST resume" "rc=$rc $out"
	fi
done
# idempotent: true on the state wins over the method.
sed -i 's/    next: done/    idempotent: true\n    next: done/' "$TMP/POST.yaml"
export RBK_HOME="$TMP/home-override"
fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
RBK_CRASH_POINT=step.after_start:1 "$RBK" run "$TMP/POST.yaml" >/dev/null 2>&1
out=$("$RBK" resume 1 2>&1); rc=$?
[[ $rc == 0 ]] && ok "idempotent: true on the state lets resume send a POST again" || fail "override" "rc=$rc $out"
