#!/bin/bash
# rbk serve's HTTP API (docs/console.md), against a real server on
# 127.0.0.1: roles, sessions, CSRF, rate limit, public reads, the event
# stream, /metrics through promtool, TLS (tests/console/api.py).
. "$(dirname "$0")/lib.bash"
export RBK_HOME=$TMP/home
export RBK_PATH=$RBK_ROOT/tests/fixtures/run
export RBK_PLUGIN_PATH=$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins
export TMP
fresh_store
for tool in promtool openssl; do
	command -v $tool >/dev/null || fail "$tool is installed (make deps)" "not found"
done
python3 "$RBK_ROOT/tests/console/api.py" "$RBK" 2>&1
