# Shared by the test scripts: ok/FAIL lines counted by tests/run.
# $RBK is the binary under test (set by tests/run), $RBK_ROOT the source tree.
: "${RBK:?run through tests/run}"
: "${RBK_ROOT:?run through tests/run}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
ok() { echo "ok $1"; }
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
	IFS=: read -ra dirs <<<"${RBK_PLUGIN_PATH:-$RBK_ROOT/build/plugins}"
	for p in "${dirs[@]}"; do
		[ -d "$p" ] && cp -r "$p" "$d/plugins$i" && path+="${path:+:}$d/plugins$i"
		i=$((i + 1))
	done
	chmod -R a+rX "$d"
	export RBK=$d/rbk RBK_PLUGIN_PATH=$path
	as_user "$1" test -x "$RBK"
}
