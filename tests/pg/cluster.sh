#!/bin/sh
# A throwaway PostgreSQL cluster for the tests: no network, one Unix socket
# in a fresh temporary directory, removed again by `stop`.
#
#   eval "$(tests/pg/cluster.sh)"          start; sets RBK_TEST_PG and RBK_TEST_PG_DIR
#   tests/pg/cluster.sh stop "$RBK_TEST_PG_DIR"
#
# Needs PostgreSQL's server binaries (Debian: apt-get install postgresql).
# PostgreSQL refuses to run as root, so as root the cluster belongs to the
# user rbk-test (created if missing; nobody if it cannot be).
set -eu

die() { echo "cluster.sh: $*" >&2; exit 1; }

# The newest installed server, else initdb on PATH.
find_bin() {
	if [ -n "${RBK_PG_BIN:-}" ]; then echo "$RBK_PG_BIN"; return; fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
	done
	d=$(command -v initdb 2>/dev/null || true)
	[ -n "$d" ] && { dirname "$d"; return; }
	die "no PostgreSQL server found (apt-get install postgresql, or set RBK_PG_BIN)"
}

# Run "$@" as user $1 (as ourselves when that is who we are).
as_user() {
	u=$1; shift
	if [ "$(id -un)" = "$u" ]; then "$@"
	elif command -v runuser >/dev/null 2>&1; then runuser -u "$u" -- "$@"
	else setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"
	fi
}

test_user() {
	if [ "$(id -u)" != 0 ]; then id -un; return; fi
	if ! id rbk-test >/dev/null 2>&1; then
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin rbk-test \
			>/dev/null 2>&1 || true
	fi
	if id rbk-test >/dev/null 2>&1; then echo rbk-test; else echo nobody; fi
}

start() {
	bin=$(find_bin)
	user=$(test_user)
	dir=$(mktemp -d "${TMPDIR:-/tmp}/rbk-pg.XXXXXX")
	# The socket's path must fit in sun_path (107 bytes).
	[ ${#dir} -le 80 ] || { rmdir "$dir"; die "temporary directory path too long for a socket: $dir"; }
	trap 'fail_start' EXIT
	touch "$dir/.rbk-test-cluster"
	[ "$(id -u)" = 0 ] && chown -R "$user" "$dir"
	# 711: the tests run rbk as several users (tests/scripts/actor.sh), who
	# must reach the socket; they cannot list the directory, and the data
	# directory initdb makes stays 700. No TCP port is opened
	# (listen_addresses below): the socket is the only way in.
	chmod 711 "$dir"
	cd "$dir"
	# trust: any local user may connect, as any role: a throwaway cluster
	# for the tests, on no network, never one for data that matters.
	as_user "$user" "$bin/initdb" -D "$dir/data" -U "$user" --auth=trust --encoding=UTF8 --locale=C \
		--no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
	# Durability is not what these tests measure: fsync off for speed.
	cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
EOF
	as_user "$user" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
		|| { cat "$dir/server.log" >&2; exit 1; }
	as_user "$user" "$bin/createdb" -h "$dir" -U "$user" rbk || exit 1
	trap - EXIT
	echo "export RBK_TEST_PG='postgresql:///rbk?host=$dir&user=$user'"
	echo "export RBK_TEST_PG_DIR='$dir'"
}

fail_start() {
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_user "$user" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
}

stop() {
	dir=${1:-}
	[ -n "$dir" ] || die "usage: cluster.sh stop DIR"
	# Only ever remove a directory this script made.
	[ -f "$dir/.rbk-test-cluster" ] || die "$dir: not a test cluster made by cluster.sh"
	if [ -f "$dir/data/postmaster.pid" ]; then
		bin=$(find_bin)
		owner=$(stat -c %U "$dir/data")
		as_user "$owner" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null \
			|| die "could not stop the cluster in $dir (see $dir/server.log)"
	fi
	rm -rf "$dir"
}

case "${1:-start}" in
start) start ;;
stop) stop "${2:-}" ;;
*) die "usage: cluster.sh [start] | cluster.sh stop DIR" ;;
esac
