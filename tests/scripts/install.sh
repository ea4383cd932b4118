#!/bin/bash
# make install PREFIX DESTDIR puts the binary, plugins, header and docs in place.
. "$(dirname "$0")/lib.bash"
cd "$RBK_ROOT"
out=$(make -s install PREFIX=/opt/rbk DESTDIR="$TMP/root" 2>&1) || { fail "make install" "$out"; exit 0; }
P="$TMP/root/opt/rbk"
for f in bin/rbk lib/rbk/plugins/rbk-shell.so include/rbk/plugin.h share/doc/rbk/README.md share/doc/rbk/format.md share/rbk/schemas/runbook.schema.json; do
	[ -e "$P/$f" ] && ok "installed $f" || fail "installed $f" "missing"
done
# The installed binary finds its plugins relative to itself.
out=$(env -u RBK_PLUGIN_PATH "$P/bin/rbk" plugins 2>&1)
[[ $out == *"shell.exec"* && $out == *"$P/bin/../lib/rbk/plugins/rbk-shell.so"* ]] && ok "installed rbk loads the installed plugins" || fail "installed plugins" "$out"
