# The sandbox for runbook tests: `sandbox_start DIR` makes DIR a sandbox
# (stand-in tools on PATH-free absolute paths, state files, the HTTP peer on
# 127.0.0.1) and exports SANDBOX, SANDBOX_URL (http://127.0.0.1:PORT) and
# SANDBOX_BIN (the stand-ins); `sandbox_stop` stops the server. Source it
# after tests/scripts/lib.bash.
SANDBOX_BIN="$RBK_ROOT/tests/sandbox/bin"
sandbox_start() {
	export SANDBOX=$1 SANDBOX_BIN
	mkdir -p "$SANDBOX"
	[ -e "$SANDBOX/state.json" ] || echo '{}' >"$SANDBOX/state.json"
	rm -f "$SANDBOX/port"
	python3 "$RBK_ROOT/tests/sandbox/server.py" "$SANDBOX" &
	SANDBOX_PID=$!
	for _ in $(seq 100); do [ -e "$SANDBOX/port" ] && break; sleep 0.05; done
	export SANDBOX_URL="http://127.0.0.1:$(cat "$SANDBOX/port")"
}
sandbox_stop() {
	if [ -n "${SANDBOX_PID:-}" ]; then
		kill "$SANDBOX_PID" 2>/dev/null || true
		wait "$SANDBOX_PID" 2>/dev/null || true
	fi
	SANDBOX_PID=
}
# sandbox_state PYTHON: edit state.json with a Python statement on `s`.
sandbox_state() { python3 - "$SANDBOX/state.json" "$1" <<'PY'
import json, sys
p, code = sys.argv[1], sys.argv[2]
s = json.load(open(p))
exec(code)
json.dump(s, open(p, "w"), indent=1)
PY
}
