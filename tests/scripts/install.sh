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
# ... and its modules: git provenance for a runbook in a work tree, the
# PostgreSQL store (its connection refused, not its module missing).
G=$TMP/repo
git init -q "$G" && cp tests/fixtures/valid/minimal.yaml "$G/" && git -C "$G" add minimal.yaml &&
	git -C "$G" -c user.name=t -c user.email=t@t commit -qm init
out=$(env -u RBK_PLUGIN_PATH -u RBK_MODULE_PATH RBK_HOME="$TMP/home" "$P/bin/rbk" run "$G/minimal.yaml" 2>&1 &&
	RBK_HOME="$TMP/home" "$P/bin/rbk" show 1 --json 2>&1)
[[ $out == *"\"commit\":\"$(git -C "$G" rev-parse HEAD)\""* ]] && ok "installed rbk records git provenance (module rbk-gitrepo.so)" ||
	fail "installed gitrepo module" "$out"
out=$(env -u RBK_MODULE_PATH RBK_HOME="$TMP/home" "$P/bin/rbk" history --store "postgresql:///none?host=$TMP/nosocket" 2>&1)
[[ $out == *"cannot connect"* && $out != *module* ]] && ok "installed rbk loads its PostgreSQL store module" ||
	fail "installed store-pg module" "$out"
# ... and the console's module (libmicrohttpd): it listens, then stops on SIGTERM.
env -u RBK_MODULE_PATH RBK_HOME="$TMP/home" "$P/bin/rbk" serve --listen 127.0.0.1:0 --no-agent >"$TMP/serve.out" 2>&1 &
spid=$!
for _ in $(seq 100); do grep -q listening "$TMP/serve.out" && break; sleep 0.05; done
kill -TERM $spid 2>/dev/null
wait $spid
src=$?
grep -q "listening on http://127.0.0.1:" "$TMP/serve.out" && [[ $src == 0 ]] && ok "installed rbk serve loads its module, listens and stops on SIGTERM" ||
	fail "installed serve module" "exit $src: $(cat "$TMP/serve.out")"
