#!/bin/bash
# Who acted is proven, not declared (docs/security.md): the actor rbk records
# is the operating-system user running it, never a name given on the command
# line or in the environment. Several people are played for real: rbk runs
# as the users rbk-alice, rbk-bob and rbk-carol (created when absent, in the
# group rbk-team), on a store home the team shares (setgid, 2770), as a team
# would set one up. Needs root (to create and become the users).
#  - the recorded actor is user@host of the process, whatever USER, LOGNAME
#    or RBK_ACTOR say; --actor is refused (exit 2) on every command;
#  - approvers: a listed user may answer, another may not, even naming the
#    listed one; "user@host" matches that user only on that host;
#  - distinct: the launcher may not answer, whatever name it gives; someone
#    else may, and the run goes on as them (their process, their files);
#  - one rule for names: approvers, distinct and rbk history --actor;
#  - a shared home: the store's files and lock files follow the home's
#    permissions (group-writable in a 2770 home, private in a 0700 one);
#    the store's file (rbk.db) is SQLite's own: on PostgreSQL the lock
#    files alone are checked;
#  - rbk audit seal signs its commit with the principal.
. "$(dirname "$0")/lib.bash"
FX="$RBK_ROOT/tests/fixtures/run"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins"
unset RBK_CRASH_POINT RBK_PATH RBK_ACTOR

if ! people rbk-alice rbk-bob rbk-carol; then
	ok "actor: skipped (needs root, to run rbk as several users)"
	exit 0
fi
chmod 755 "$TMP" # the users reach the shared directories below
reachable rbk-alice || fail "the users can run rbk" "$RBK"
cp -r "$FX" "$TMP/fx" && chmod -R a+rX "$TMP/fx" && FX=$TMP/fx # wherever the tree is
HOST=$(hostname)
A=rbk-alice@$HOST B=rbk-bob@$HOST C=rbk-carol@$HOST

t() { # t STATUS NAME WHY
	if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi
}
new() { # a fresh shared home and ledger
	H=$(mktemp -d "$TMP/team.XXXXXX")
	shared "$H"
	export RBK_HOME=$H/home
	fresh_store # on PostgreSQL: a new empty store, as the new home is on SQLite
	shared "$RBK_HOME"
	L=$H/ledger
}
r() { # r USER ARGS...: rbk as USER (root: as root); RC OUT ERR
	local u=$1
	shift
	if [[ $u == root ]]; then
		"$RBK" "$@" >"$H/out" 2>"$H/err"
	else
		as_user "$u" "$RBK" "$@" >"$H/out" 2>"$H/err"
	fi
	RC=$?
	OUT=$(<"$H/out")
	ERR=$(<"$H/err")
	grep -q 'Sanitizer\|runtime error:' "$H/err" && cat "$H/err" >&2
	return 0
}
why() { printf 'exit %s; out: %s; err: %s' "$RC" "$(tail -3 <<<"$OUT")" "$(tail -3 <<<"$ERR")" | tr '\n' ' '; }
q() { # q SQL: one value from the store
	python3 -c 'import storedb,sys; r=storedb.connect().execute(sys.argv[1]).fetchone(); print(r[0] if r else "")' "$1" 2>&1
}
decided() { q "select json_extract(data, '\$.decision') || ' by ' || json_extract(data, '\$.by') from events where kind='approval_decided' order by seq desc limit 1"; }
status() { q "select status from runs where id=${1:-1}"; }

# --- the recorded actor is the process's user ----------------------------------------------
new
as_user rbk-alice env USER=mallory LOGNAME=mallory RBK_ACTOR=mallory@ops "$RBK" run "$FX/approval.yaml" \
	-p ledger="$L" >"$H/out" 2>"$H/err"
RC=$?
[[ $RC == 4 && $(q "select actor from runs where id=1") == "$A" &&
	$(q "select count(*) from events where actor != '$A'") == 0 ]]
t $? "the run and its events record the OS user ($A), not USER, LOGNAME or RBK_ACTOR (mallory)" \
	"exit $RC; runs.actor=$(q "select actor from runs") $(cat "$H/err")"
bad=""
for cmd in "run $FX/approval.yaml -p ledger=$L" "approve 1" "reject 1" "resume 1" "abort 1" "audit seal --git $H/git"; do
	# shellcheck disable=SC2086
	r rbk-alice $cmd --actor "$A"
	[[ $RC == 2 && $ERR == *"--actor was removed"*"operating-system user"* ]] || bad+="[$cmd: $(why)] "
done
[[ -z $bad && $(status) == waiting ]]
t $? "--actor is refused by every command that used to take it (exit 2), saying why; the run still waits" "$bad"

# --- approvers -------------------------------------------------------------------------------
new
r rbk-carol run "$FX/approval.yaml" -p ledger="$L" -p who=alice
r rbk-bob approve 1 --actor rbk-alice
[[ $RC == 2 && $(status) == waiting && ! -e $L ]]
t $? "approvers: [rbk-alice]: bob naming alice (--actor rbk-alice) may not answer; the run keeps waiting" "$(why)"
r rbk-bob approve 1
[[ $RC == 2 && $ERR == *"$B may not answer"* && $(status) == waiting && ! -e $L ]]
t $? "approvers: [rbk-alice]: bob may not answer (exit 2, named as $B)" "$(why)"
r root approve 1
[[ $RC == 2 && $(status) == waiting ]]
t $? "approvers: [rbk-alice]: root, not listed, may not answer either" "$(why)"
r rbk-alice approve 1 --comment "checked"
[[ $RC == 0 && $(status) == succeeded && $(decided) == "approved by $A" ]]
t $? "approvers: [rbk-alice]: alice may (her name in the record: $A)" "$(why) $(decided)"
[[ $(stat -c %U "$L" 2>/dev/null) == rbk-alice && $(cut -d' ' -f2 "$L") == approved ]]
t $? "after her approval the run goes on as alice: the next action ran in her process (the ledger is hers)" \
	"$(ls -l "$L" 2>&1)"

new
sed "s/approvers: \[rbk-alice\]/approvers: [rbk-alice@$HOST]/" "$FX/approval.yaml" >"$H/here.yaml"
sed "s/approvers: \[rbk-alice\]/approvers: [rbk-alice@elsewhere.example]/" "$FX/approval.yaml" >"$H/there.yaml"
r rbk-carol run "$H/there.yaml" -p ledger="$L" -p who=alice
r rbk-alice approve 1
[[ $RC == 2 && $(status) == waiting ]]
t $? "approvers: [rbk-alice@elsewhere.example]: alice on this host may not answer" "$(why)"
r rbk-carol run "$H/here.yaml" -p ledger="$L" -p who=alice
r rbk-alice approve 2
[[ $RC == 0 && $(status 2) == succeeded ]]
t $? "approvers: [rbk-alice@$HOST]: alice on $HOST may" "$(why)"

# --- distinct --------------------------------------------------------------------------------
new
r rbk-alice run "$FX/approval.yaml" -p ledger="$L" -p who=distinct
r rbk-alice approve 1 --actor "rbk-bob@otherhost"
[[ $RC == 2 && $(status) == waiting ]]
t $? "distinct: the launcher naming someone else (--actor rbk-bob@otherhost) may not answer" "$(why)"
r rbk-alice approve 1
[[ $RC == 2 && $ERR == *"$A launched run 1; this approval needs someone else"* && $(status) == waiting ]]
t $? "distinct: the launcher (alice) may not answer (exit 2)" "$(why)"
r rbk-alice reject 1
[[ $RC == 2 && $(status) == waiting ]]
t $? "distinct: nor reject" "$(why)"
r rbk-bob approve 1
[[ $RC == 0 && $(status) == succeeded && $(decided) == "approved by $B" &&
	$(stat -c %U "$L" 2>/dev/null) == rbk-bob ]]
t $? "distinct: bob may; the run goes on as bob" "$(why) $(decided)"

# The same user on another host is the same person; a name with another
# host matches only there (hostnames played in a UTS namespace).
if unshare --uts true 2>/dev/null; then
	other() { # other HOST USER ARGS...: rbk as USER on a host named HOST
		local h=$1 u=$2
		shift 2
		unshare --uts sh -c 'hostname "$0" && exec "$@"' "$h" setpriv --reuid="$u" --regid=rbk-team \
			--init-groups -- env HOME=/nonexistent "$RBK" "$@" >"$H/out" 2>"$H/err"
		RC=$?
		OUT=$(<"$H/out")
		ERR=$(<"$H/err")
	}
	new
	r rbk-alice run "$FX/approval.yaml" -p ledger="$L" -p who=distinct
	other db1 rbk-alice approve 1
	[[ $RC == 2 && $ERR == *"rbk-alice@db1 "*"launched run 1"* && $(status) == waiting ]]
	t $? "distinct: the launcher's user on another host (rbk-alice@db1) is still the launcher" "$(why)"
	other db1 rbk-bob approve 1
	[[ $RC == 0 && $(decided) == "approved by rbk-bob@db1" ]]
	t $? "distinct: another user on another host may (recorded as rbk-bob@db1)" "$(why) $(decided)"
	new
	sed "s/approvers: \[rbk-alice\]/approvers: [rbk-alice@db1]/" "$FX/approval.yaml" >"$H/db1.yaml"
	r rbk-carol run "$H/db1.yaml" -p ledger="$L" -p who=alice
	other db2 rbk-alice approve 1
	[[ $RC == 2 && $(status) == waiting ]]
	t $? "approvers: [rbk-alice@db1]: alice on db2 may not answer" "$(why)"
	other db1 rbk-alice approve 1
	[[ $RC == 0 && $(decided) == "approved by rbk-alice@db1" ]]
	t $? "approvers: [rbk-alice@db1]: alice on db1 may" "$(why) $(decided)"
else
	ok "actor: hosts: skipped (no UTS namespace to play another host in)"
fi

# --- history --actor: the same rule ---------------------------------------------------------
new
r rbk-alice run "$FX/approval.yaml" -p ledger="$L"
r rbk-bob run "$FX/approval.yaml" -p ledger="$L"
r rbk-alice run "$FX/approval.yaml" -p ledger="$L"
ids() { # the runs history --actor NAME lists
	r root history --actor "$1" --json
	python3 -c 'import json,sys; print(" ".join(str(r["run"]) for r in json.load(sys.stdin)["runs"]))' <<<"$OUT" 2>&1
}
[[ $(ids rbk-alice) == "3 1" && $(ids "$A") == "3 1" && $(ids rbk-bob) == 2 && -z $(ids rbk-alice@elsewhere.example) &&
	-z $(ids rbk) ]]
t $? "history --actor: 'rbk-alice' is alice on any host, '$A' only here, 'rbk' nobody" \
	"alice: $(ids rbk-alice); $A: $(ids "$A"); bob: $(ids rbk-bob); elsewhere: $(ids rbk-alice@elsewhere.example); rbk: $(ids rbk)"

# --- a shared home, a personal one ----------------------------------------------------------
mode() { stat -c %a "$1" 2>/dev/null; }
lock=$(ls "$RBK_HOME/owners/" | head -1)
if on_sqlite; then
	[[ $(mode "$RBK_HOME/rbk.db") == 660 && $(mode "$RBK_HOME/owners") == 2770 && $(mode "$RBK_HOME/owners/$lock") == 660 &&
		$(stat -c %G "$RBK_HOME/rbk.db") == rbk-team ]]
	t $? "in a home shared by a group (2770), the store, owners/ and its locks are the group's (660, 2770, 660)" \
		"$(ls -la "$RBK_HOME" "$RBK_HOME/owners" | tr '\n' ' ')"
else
	[[ $(mode "$RBK_HOME/owners") == 2770 && $(mode "$RBK_HOME/owners/$lock") == 660 && $(stat -c %G "$RBK_HOME/owners/$lock") == rbk-team ]]
	t $? "in a home shared by a group (2770), owners/ and its locks are the group's (2770, 660)" \
		"$(ls -la "$RBK_HOME" "$RBK_HOME/owners" | tr '\n' ' ')"
fi
# A lock file left 0600 (its creator was killed between creating it and
# setting its mode): the next command of its owner mends it, and another
# member of the group can answer the run.
new
r root run "$FX/approval.yaml" -p ledger="$L"
id=$(ls "$RBK_HOME/owners/" | sed -n 's/^\([0-9]*\)\.lock$/\1/p' | head -1)
chmod 600 "$RBK_HOME/owners/$id.lock"
r root resume "$id"
m=$(mode "$RBK_HOME/owners/$id.lock")
r rbk-bob approve "$id"
[[ $m == 660 && $RC == 0 ]]
t $? "a lock file left 0600 by a killed process is mended (660) by its owner's next command; then another member answers" \
	"mode after the resume: $m; bob: $(why)"
P=$TMP/personal
fresh_store
mkdir -m 700 "$P"
chown rbk-carol "$P"
as_user rbk-carol "$RBK" run "$FX/approval.yaml" -p ledger="$P/ledger" --home "$P" >/dev/null 2>&1
lock=$(ls "$P/owners/" | head -1)
if on_sqlite; then
	[[ $(mode "$P/rbk.db") == 600 && $(mode "$P/owners") == 700 && $(mode "$P/owners/$lock") == 600 ]]
	t $? "in a personal home (0700), they are private (600, 700, 600), whatever the umask" \
		"$(ls -la "$P" "$P/owners" | tr '\n' ' ')"
else
	[[ $(mode "$P/owners") == 700 && $(mode "$P/owners/$lock") == 600 ]]
	t $? "in a personal home (0700), owners/ and its locks are private (700, 600), whatever the umask" \
		"$(ls -la "$P" "$P/owners" | tr '\n' ' ')"
fi
r rbk-bob approve 1 --home "$P"
[[ $RC != 0 && $ERR == *"$P"* && $ERR == *"Permission denied"* && $(as_user rbk-carol "$RBK" show 1 --home "$P" --json) == *'"status":"waiting"'* ]]
t $? "another user cannot answer in someone's personal home: told which file and why" "$(why)"

# --- the seal is signed by the principal -----------------------------------------------------
new
r rbk-carol run "$FX/approval.yaml" -p ledger="$L"
r rbk-carol audit seal --git "$H/git"
[[ $RC == 0 && $(git -c safe.directory="*" -C "$H/git" log -1 --format=%an 2>&1) == "$C" ]]
t $? "rbk audit seal commits as the principal ($C)" "$(why) $(git -c safe.directory="*" -C "$H/git" log -1 --format=%an 2>&1)"
