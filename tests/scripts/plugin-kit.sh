#!/bin/bash
# The plugin kit: make install puts plugin.h and rbk-plugin.pc in place; the
# example of docs/plugins.md builds out of tree against the installed header
# alone, loads, and runs from a runbook.
. "$(dirname "$0")/lib.bash"
cd "$RBK_ROOT"
P="$TMP/prefix"
out=$(make -s install PREFIX="$P" 2>&1) || { fail "make install" "$out"; exit 0; }
[ -e "$P/lib/pkgconfig/rbk-plugin.pc" ] && ok "rbk-plugin.pc installed" || fail "rbk-plugin.pc installed" "missing"
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
cflags=$(pkg-config --cflags rbk-plugin 2>&1) && [ "$(echo $cflags)" = "-I$P/include" ] \
	&& ok "pkg-config --cflags rbk-plugin names the installed headers" || fail "pkg-config cflags" "$cflags"
plugindir=$(pkg-config --variable=plugindir rbk-plugin)
[ "$plugindir" = "$P/lib/rbk/plugins" ] && ok "pkg-config names the plugin directory" || fail "plugindir" "$plugindir"

# The doc shows the example's code exactly.
python3 - "$RBK_ROOT" <<'PY' && ok "docs/plugins.md shows greet.c exactly" || fail "docs/plugins.md shows greet.c exactly"
import sys, re
root = sys.argv[1]
doc = open(root + "/docs/plugins.md").read()
code = open(root + "/docs/examples/greet/greet.c").read()
sys.exit(0 if "```c\n" + code + "```" in doc else 1)
PY

# Out of tree: a copy of the example, the installed header, nothing else.
mkdir -p "$TMP/greet" && cp docs/examples/greet/greet.c docs/examples/greet/greet.yaml "$TMP/greet/"
out=$(cd "$TMP/greet" && cc -std=c11 -Wall -Wextra -Werror -pedantic -shared -fPIC $(pkg-config --cflags rbk-plugin) -o rbk-greet.so greet.c 2>&1) \
	&& ok "the example builds out of tree against the installed header" || fail "out-of-tree build" "$out"
install -m 644 "$TMP/greet/rbk-greet.so" "$plugindir/"
out=$(env -u RBK_PLUGIN_PATH "$P/bin/rbk" plugins 2>&1)
[[ $out == *"greet.hello: make a greeting [idempotent]"* ]] && ok "the installed rbk loads it from the plugin directory" || fail "loads" "$out"
export RBK_HOME="$TMP/home"
out=$(env -u RBK_PLUGIN_PATH "$P/bin/rbk" run "$TMP/greet/greet.yaml" -p who=ops --json 2>&1)
[[ $? == 0 && $out == *'"status": "succeeded"'* ]] && ok "a runbook runs greet.hello and its guard reads the output" || fail "run greet" "$out"
out=$(env -u RBK_PLUGIN_PATH "$P/bin/rbk" log 1 --json | grep step_finished)
[[ $out == *'"greeting":"HELLO, OPS"'* && $out == *'"length":10'* ]] && ok "outputs recorded: greeting and length" || fail "outputs" "$out"
cat >"$TMP/bad.yaml" <<'Y'
rbk: 1
name: bad
start: a
states:
  a: {do: greet.hello, with: {nam: x}, next: b}
  b: {end: success}
Y
out=$(env -u RBK_PLUGIN_PATH "$P/bin/rbk" validate "$TMP/bad.yaml" 2>&1)
[[ $out == *"bad.yaml:5:31: error: greet.hello has no param 'nam' (did you mean 'name'?)"* && $out == *"greet.hello needs param 'name' (string)"* ]] \
	&& ok "validate checks the example's param table" || fail "validate greet" "$out"
out=$(env -u RBK_PLUGIN_PATH "$P/bin/rbk" run "$TMP/greet/greet.yaml" -p who= 2>&1)
[[ $? == 1 && $out == *"name is empty"* ]] && ok "an action's error fails its step with its message" || fail "empty name" "$out"
