#!/bin/bash
# Private by default (docs/security.md): the store's home is created 0700
# and its files 0600 whatever the umask; a store or a plugin that others
# can write is refused, named, with the fix, and nothing is recorded.
. "$(dirname "$0")/lib.bash"
export RBK_PLUGIN_PATH=$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }
mode() { stat -c %a "$1" 2>/dev/null; }
cat >"$TMP/one.yaml" <<'Y'
rbk: 1
name: one
start: a
states:
  a: {do: shell.exec, with: {argv: [/bin/true]}, next: [{to: done}]}
  done: {end: success}
Y

# A PostgreSQL store's access is the server's: the home checks are SQLite's.
if [[ -z ${RBK_STORE:-} ]]; then
	H=$TMP/fresh/state/rbk
	(umask 000 && RBK_HOME=$H "$RBK" run "$TMP/one.yaml" >"$TMP/o1" 2>&1)
	rc=$?
	[[ $rc == 0 && $(mode "$H") == 700 && $(mode "$H/rbk.db") == 600 && $(mode "$H/rbk.db-wal") == 600 ]]
	t $? "under umask 000 a new home is 0700 and the store's files 0600" \
		"exit $rc; home $(mode "$H"), rbk.db $(mode "$H/rbk.db"), wal $(mode "$H/rbk.db-wal"); $(cat "$TMP/o1")"

	chmod 0777 "$H"
	before=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from events").fetchone()[0])' "$H/rbk.db")
	RBK_HOME=$H "$RBK" run "$TMP/one.yaml" >"$TMP/o2" 2>&1
	rc=$?
	after=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from events").fetchone()[0])' "$H/rbk.db")
	[[ $rc == 6 && $(cat "$TMP/o2") == *"$H can be written by anyone (mode 0777)"*"chmod o-w $H"* && $before == "$after" ]]
	t $? "a store home that others can write is refused with its mode and the fix (exit 6), nothing recorded" \
		"exit $rc; events $before -> $after; $(cat "$TMP/o2")"
	chmod 0700 "$H"
	chmod 0606 "$H/rbk.db"
	RBK_HOME=$H "$RBK" history >"$TMP/o3" 2>&1
	rc=$?
	[[ $rc == 1 && $(cat "$TMP/o3") == *"$H/rbk.db can be written by anyone (mode 0606)"* ]]
	t $? "a store file that others can write is refused too, even to read it (exit 1)" "exit $rc; $(cat "$TMP/o3")"
	chmod 0600 "$H/rbk.db"
	RBK_HOME=$H "$RBK" history >"$TMP/o4" 2>&1
	t $? "once mended, the store opens again" "$(cat "$TMP/o4")"
fi

# A plugin directory, or a plugin file, that others can write.
export RBK_HOME=$TMP/home
fresh_store
mkdir -p "$TMP/open"
cp "$RBK_ROOT/build/plugins/rbk-shell.so" "$TMP/open/"
chmod 0777 "$TMP/open"
RBK_PLUGIN_PATH=$TMP/open "$RBK" run "$TMP/one.yaml" >"$TMP/p1" 2>&1
rc=$?
[[ $rc != 0 && $(cat "$TMP/p1") == *"plugin refused: $TMP/open can be written by anyone (mode 0777): chmod o-w $TMP/open"* ]]
t $? "a plugin in a directory others can write is refused, named, with the fix" "exit $rc; $(cat "$TMP/p1")"
chmod 0755 "$TMP/open"
chmod 0666 "$TMP/open/rbk-shell.so"
RBK_PLUGIN_PATH=$TMP/open "$RBK" run "$TMP/one.yaml" >"$TMP/p2" 2>&1
rc=$?
[[ $rc != 0 && $(cat "$TMP/p2") == *"$TMP/open/rbk-shell.so can be written by anyone (mode 0666)"* ]]
t $? "a plugin file others can write is refused" "exit $rc; $(cat "$TMP/p2")"
chmod 0644 "$TMP/open/rbk-shell.so"
RBK_PLUGIN_PATH=$TMP/open "$RBK" run "$TMP/one.yaml" >"$TMP/p3" 2>&1
t $? "mended, the plugin loads and the run succeeds" "$(cat "$TMP/p3")"
