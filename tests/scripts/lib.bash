# Shared by the test scripts: ok/FAIL lines counted by tests/run.
# $RBK is the binary under test (set by tests/run), $RBK_ROOT the source tree.
: "${RBK:?run through tests/run}"
: "${RBK_ROOT:?run through tests/run}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
ok() { echo "ok $1"; }
# The store: SQLite in $RBK_HOME by default; tests/run runs every script a
# second time on PostgreSQL, with RBK_STORE set to a schema of its own
# (RBK_TEST_SCHEMA) of the test cluster (RBK_TEST_PG). tests/lib/storedb.py
# reads either (python3: import storedb).
export PYTHONPATH="$RBK_ROOT/tests/lib${PYTHONPATH:+:$PYTHONPATH}"
# on_sqlite: the store is SQLite (RBK_STORE unset); checks about SQLite itself
# (its files, their modes and bytes, its faults) are made only then.
on_sqlite() { [ -z "${RBK_STORE:-}" ]; }
on_pg() { case ${RBK_STORE:-} in postgres:* | postgresql:*) return 0 ;; esac; return 1; }
# fresh_store: on PostgreSQL, point RBK_STORE at a new empty schema, as a
# fresh RBK_HOME is a new empty store on SQLite (tests/run drops the schemas
# RBK_TEST_SCHEMA_* after the script). Does nothing on SQLite.
RBK_NSTORES=0
fresh_store() {
	on_pg || return 0
	: "${RBK_TEST_PG:?RBK_STORE is PostgreSQL but RBK_TEST_PG is unset}"
	: "${RBK_TEST_SCHEMA:?RBK_STORE is PostgreSQL but RBK_TEST_SCHEMA is unset}"
	RBK_NSTORES=$((RBK_NSTORES + 1))
	local s=${RBK_TEST_SCHEMA}_${BASHPID}_$RBK_NSTORES
	psql -X -q -v ON_ERROR_STOP=1 -d "$RBK_TEST_PG" -c "create schema \"$s\"" >/dev/null || return 1
	export RBK_STORE="$RBK_TEST_PG&options=-csearch_path%3D$s"
}
# store_schema: the PostgreSQL schema RBK_STORE keeps the store in.
store_schema() { sed -n 's/.*search_path%3D\([A-Za-z0-9_]*\).*/\1/p' <<<"${RBK_STORE:-}"; }
# store_files [HOME]: the files that hold the store's bytes, for a test that
# greps what must never be there: on SQLite HOME/rbk.db and its WAL; on
# PostgreSQL a dump of the store's schema (pg_dump; sources' bytes decoded).
store_files() {
	if on_pg; then
		local f
		f=$(mktemp "$TMP/store-dump.XXXXXX")
		pg_dump -d "$RBK_TEST_PG" -n "$(store_schema)" --no-owner >"$f" 2>&1
		psql -X -At -d "$RBK_STORE" -c "select encode(bytes, 'escape') from sources" >>"$f" 2>&1
		echo "$f"
	else
		ls -d "${1:-$RBK_HOME}"/rbk.db* 2>/dev/null
	fi
}
# store_kb [HOME]: the store's size in kB: on SQLite HOME/rbk.db's; on
# PostgreSQL its tables' (with their indexes and TOAST).
store_kb() {
	if on_pg; then
		psql -X -At -d "$RBK_STORE" -c "select coalesce(sum(pg_total_relation_size(oid)), 0)::bigint / 1024 from pg_class
			where relnamespace = current_schema()::regnamespace and relkind = 'r'" 2>&1
	else
		du -k "${1:-$RBK_HOME}/rbk.db" | cut -f1
	fi
}
fail() { echo "FAIL $1${2:+: $2}"; }
check() { # check NAME COMMAND...: ok when the command succeeds
	name=$1; shift
	if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$(printf '%s' "$out" | tail -5)"; fi
}

# Several people, for real: rbk records the operating-system user running it
# (docs/security.md), so a test that needs alice and bob runs rbk as two
# users. people USER...: the users exist (created when absent, in the group
# rbk-team they share); needs root, returns 1 without it.
people() {
	[ "$(id -u)" = 0 ] || return 1
	local u i
	for i in 1 2 3 4 5; do # useradd fails while another holds /etc/passwd's lock
		getent group rbk-team >/dev/null || groupadd -f rbk-team 2>/dev/null
		for u in "$@"; do
			id -u "$u" >/dev/null 2>&1 || useradd -M -N -g rbk-team -s /usr/sbin/nologin "$u" 2>/dev/null
		done
		for u in "$@"; do id -u "$u" >/dev/null 2>&1 || { sleep 1; continue 2; }; done
		return 0
	done
	return 1
}
# as_user USER COMMAND...: run COMMAND as USER (its groups and its HOME),
# the rest of the environment kept.
as_user() {
	local u=$1
	shift
	HOME=$(getent passwd "$u" | cut -d: -f6) setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"
}
# shared DIR...: directories the people of rbk-team share (setgid, 2770), as
# a store home shared by a team is set up (docs/security.md).
shared() {
	mkdir -p "$@" && chgrp rbk-team "$@" && chmod 2770 "$@"
}
# principal [USER]: what rbk records for USER (default: the current user).
principal() { echo "$(id -un "${1:-$(id -un)}")@$(hostname)"; }
# reachable USER: USER can run $RBK and its plugins; when the tree is
# private (a checkout in a home directory), RBK and RBK_PLUGIN_PATH point
# at copies in $TMP instead. Returns 1 when neither works.
reachable() {
	as_user "$1" test -x "$RBK" && return 0
	local d=$TMP/tree p i=0 path=
	mkdir -p "$d" && chmod 755 "$TMP" "$d" && cp "$RBK" "$d/rbk" || return 1
	[ -d "$(dirname "$RBK")/modules" ] && cp -r "$(dirname "$RBK")/modules" "$d/modules"
	IFS=: read -ra dirs <<<"${RBK_PLUGIN_PATH:-$RBK_ROOT/build/plugins}"
	for p in "${dirs[@]}"; do
		[ -d "$p" ] && cp -r "$p" "$d/plugins$i" && path+="${path:+:}$d/plugins$i"
		i=$((i + 1))
	done
	chmod -R a+rX "$d"
	export RBK=$d/rbk RBK_PLUGIN_PATH=$path
	as_user "$1" test -x "$RBK"
}
