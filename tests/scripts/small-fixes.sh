#!/bin/bash
# Errors that say what went wrong, and failures that stay contained:
#  - an error quoting a long value quotes at most 80 bytes of it (cut
#    between UTF-8 characters, then "...") and keeps its reason;
#  - an option given without its value says so, in every command;
#  - a store that cannot be written is refused up front (exit 6), naming
#    the file or directory and the system's reason;
#  - a store whose chain is broken takes no more events (exit 6): damage
#    among the newest events is found by run/approve themselves, older
#    damage once rbk verify has reported it;
#  - a step whose result could not be committed (disk full) is never shown
#    as ok;
# SQLite's own (made on the SQLite pass only): a home directory or rbk.db
# file without write permission, and the disk filling up under SQLite
# (RBK_FAULT_IO). On PostgreSQL a read-only session plays the store that
# cannot be written. Each test on a fresh home has a fresh store (on
# PostgreSQL a schema of its own: fresh_store).
#  - a plugin whose init crashes (or exits) is refused, named with its
#    signal; rbk plugins, validate and run go on.
. "$(dirname "$0")/lib.bash"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins" NO_COLOR=1
unset RBK_CRASH_POINT RBK_PATH RBK_FAULT_IO RBK_FAULT_ALLOC
chmod 755 "$TMP" # for the user that plays "not allowed to write" below

t() { # t STATUS NAME WHY
	if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi
}
r() { # r ARGS...: rbk; RC OUT ERR
	"$RBK" "$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	OUT=$(<"$TMP/out")
	ERR=$(<"$TMP/err")
}
why() { printf 'exit %s; out: %s; err: %s' "$RC" "$(tail -3 <<<"$OUT")" "$(tail -3 <<<"$ERR")" | tr '\n' ' '; }
clean() { [[ $ERR != *Sanitizer* && $ERR != *"runtime error"* ]]; }
events() { python3 -c 'import storedb,sys; print(storedb.connect(sys.argv[1]).execute("select count(*) from events").fetchone()[0])' "$1" 2>&1; }

cat >"$TMP/p.yaml" <<'EOF'
rbk: 1
name: p
params:
  n: {type: int, default: 1}
  color: {type: enum, values: [red, green], default: red}
  code: {type: string, pattern: "^[a-z]+$", default: abc}
start: done
states:
  done: {end: success}
EOF
cat >"$TMP/two.yaml" <<'EOF'
rbk: 1
name: two
params:
  ledger: {type: string}
start: a
states:
  a:
    do: testkit.ledger
    with: {file: "{{ params.ledger }}", label: a}
    next: b
  b:
    do: testkit.ledger_idem
    with: {file: "{{ params.ledger }}", label: b}
    next: done
  done: {end: success}
EOF
cat >"$TMP/ask.yaml" <<'EOF'
rbk: 1
name: ask
start: ask
states:
  ask:
    approval: {prompt: go?}
    next: done
  done: {end: success}
EOF

# --- long values keep the reason -------------------------------------------------------------
long=$(printf '9%.0s' {1..600})x
r run "$TMP/p.yaml" -p n="$long" --home "$TMP/h0"
q=$(sed -n "s/.*(-p): '\([^']*\)'.*/\1/p" <<<"$ERR")
[[ $RC == 2 && $ERR == *"' is not an int"* && ${#q} == 83 && $q == 9999*"..." ]]
t $? "a 601-byte value that is not an int: 80 bytes of it quoted, then '...', and the reason kept" "$(why)"
r run "$TMP/p.yaml" -p color="$(printf 'blue%.0s' {1..200})" --home "$TMP/h0"
[[ $RC == 2 && $ERR == *"...' is not one of red, green"* ]]
t $? "a long enum value: the reason and the allowed values kept" "$(why)"
r run "$TMP/p.yaml" -p code="$(printf 'é%.0s' {1..300})" --home "$TMP/h0"
q=$(sed -n "s/.*(-p): '\([^']*\)'.*/\1/p" <<<"$ERR")
[[ $RC == 2 && $ERR == *"does not match the pattern ^[a-z]+\$"* && $q == éé*"..." ]] && iconv -f UTF-8 -t UTF-8 <<<"$q" >/dev/null 2>&1
t $? "a long UTF-8 value is cut between characters (valid UTF-8), the pattern kept" "$(why)"
r run "$TMP/p.yaml" -p "$(printf 'x%.0s' {1..700})" --home "$TMP/h0"
[[ $RC == 2 && $ERR == *"...': write name=value"* ]]
t $? "-p without '=': the reason kept after a long argument" "$(why)"

# --- an option without its value ------------------------------------------------------------
bad=""
while read -r cmd; do
	# shellcheck disable=SC2086
	r $cmd --home
	[[ $RC == 2 && $ERR == "rbk: error: option --home needs a value"* ]] && clean || bad+="[rbk $cmd --home: $(why)] "
done <<EOF
run $TMP/p.yaml
resume 1
approve 1
reject 1
abort 1
status
history
show 1
log 1
verify
export 1
report 1
replay 1
scheduler --once
schedule list
audit seal --git $TMP/g
EOF
[[ -z $bad ]]
t $? "--home without a value: 'option --home needs a value' (exit 2) in every command that takes it" "$bad"
r run "$TMP/p.yaml" -p
[[ $RC == 2 && $ERR == "rbk: error: option -p needs a value"* ]]
t $? "-p without a value says so" "$(why)"
r history --limit
[[ $RC == 2 && $ERR == "rbk: error: option --limit needs a value"* ]]
t $? "history --limit without a value says so" "$(why)"
r run "$TMP/p.yaml" --no-such-option
[[ $RC == 2 && $ERR == "rbk: error: unknown option '--no-such-option'"* ]]
t $? "an unknown option is still called unknown" "$(why)"

# --- a store that cannot be written ---------------------------------------------------------
# Root may write anywhere: the refusals are played by the user nobody.
if [ "$(id -u)" = 0 ]; then
	user() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- env HOME=/nonexistent "$@"; }
else
	user() { "$@"; }
fi
ru() { # ru ARGS...: rbk as that user
	user "$RBK" "$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	OUT=$(<"$TMP/out")
	ERR=$(<"$TMP/err")
}
if on_sqlite; then
	RO=$TMP/ro
	mkdir -m 555 "$RO"
	ru run "$TMP/two.yaml" -p ledger="$TMP/ro-ledger" --home "$RO"
	[[ $RC == 6 && $ERR == *"store $RO/rbk.db"*"cannot write: $RO: Permission denied"* && $ERR != *"No such file"* &&
		! -e $TMP/ro-ledger ]]
	t $? "a home that cannot be written: exit 6, the directory and 'Permission denied' named, nothing run" "$(why)"
	RO2=$TMP/ro2
	mkdir -m 700 "$RO2" # the user's own home (one anyone can write is refused: private.sh)
	[ "$(id -u)" = 0 ] && chown nobody:nogroup "$RO2"
	ru run "$TMP/ask.yaml" --home "$RO2"
	chmod 444 "$RO2/rbk.db"
	n=$(events "$RO2")
	ru approve 1 --home "$RO2"
	[[ $RC == 6 && $ERR == *"cannot write: $RO2/rbk.db: Permission denied"* && $(events "$RO2") == "$n" ]]
	t $? "a store file that cannot be written: approve refused (exit 6), the file and the reason named" "$(why)"
	ru run "$TMP/two.yaml" -p ledger="$TMP/ro-ledger" --home "$RO2"
	[[ $RC == 6 && ! -e $TMP/ro-ledger && $(events "$RO2") == "$n" ]]
	t $? "... and run refused before any step ran" "$(why)"
	ru history --home "$RO2"
	[[ $RC == 0 && $OUT == *ask* ]]
	t $? "a read-only store can still be read (history)" "$(why)"
else
	fresh_store
	RO2=$TMP/ro2
	r run "$TMP/ask.yaml" --home "$RO2"
	n=$(events "$RO2")
	RW=$RBK_STORE
	export RBK_STORE="$RW%20-cdefault_transaction_read_only%3Don"
	r approve 1 --home "$RO2"
	[[ $RC == 6 && $ERR == *"cannot write: the database is read-only (default_transaction_read_only is on)"* && $(events "$RO2") == "$n" ]]
	t $? "a store that cannot be written (a read-only session): approve refused (exit 6), the reason named" "$(why)"
	r run "$TMP/two.yaml" -p ledger="$TMP/ro-ledger" --home "$RO2"
	[[ $RC == 6 && ! -e $TMP/ro-ledger && $(events "$RO2") == "$n" ]]
	t $? "... and run refused before any step ran" "$(why)"
	r history --home "$RO2"
	[[ $RC == 0 && $OUT == *ask* ]]
	t $? "a read-only store can still be read (history)" "$(why)"
	export RBK_STORE=$RW
fi

# --- a store whose chain is broken ----------------------------------------------------------
tamper() { # tamper HOME SEQ: change event SEQ's data, as someone with the file could
	python3 - "$1" "$2" <<'PY'
import storedb, sys
db = storedb.connect(sys.argv[1])
storedb.unprotect(db)
db.execute("UPDATE events SET data = replace(data, '\"', ' \"') WHERE seq = ?", (int(sys.argv[2]),))
db.commit()
PY
}
C=$TMP/corrupt
fresh_store
r run "$TMP/ask.yaml" --home "$C"
for i in 1 2 3; do r run "$TMP/two.yaml" -p ledger="$TMP/c-ledger" --home "$C"; done
head=$(events "$C")
tamper "$C" $((head - 2))
rm -f "$TMP/c-ledger"
r run "$TMP/two.yaml" -p ledger="$TMP/c-ledger" --home "$C"
[[ $RC == 6 && $ERR == *"chain is broken at event $((head - 2))"*"rbk verify"* && ! -e $TMP/c-ledger && $(events "$C") == "$head" ]]
t $? "a recent event modified: rbk run refuses the store (exit 6), names the event, points to rbk verify, runs nothing" "$(why)"
r approve 1 --home "$C"
[[ $RC == 6 && $(events "$C") == "$head" ]]
t $? "... approve too" "$(why)"
r show 1 --home "$C"
[[ $RC == 0 ]]
r export 1 -o "$TMP/evidence.json" --home "$C"
[[ $RC == 0 && -s $TMP/evidence.json ]]
t $? "... while it can still be read and exported as evidence" "$(why)"

C2=$TMP/corrupt-old
fresh_store
r run "$TMP/ask.yaml" --home "$C2"
for i in $(seq 1 12); do r run "$TMP/two.yaml" -p ledger="$TMP/c2-ledger" --home "$C2"; done
head=$(events "$C2")
tamper "$C2" 3
r verify --home "$C2"
[[ $RC == 1 && $OUT == *"chain broken at event 3"* ]]
t $? "an old event modified ($head events): rbk verify reports it (exit 1)" "$(why)"
rm -f "$TMP/c2-ledger"
head=$(events "$C2")
r run "$TMP/two.yaml" -p ledger="$TMP/c2-ledger" --home "$C2"
[[ $RC == 6 && $ERR == *"rbk verify found its chain broken (event 3 was modified"* && ! -e $TMP/c2-ledger &&
	$(events "$C2") == "$head" ]]
t $? "... and from then on rbk run refuses the store (exit 6), saying what verify found" "$(why)"
r resume 1 --home "$C2"
[[ $RC == 6 && $(events "$C2") == "$head" ]]
t $? "... resume too" "$(why)"

# --- a result that could not be committed is not shown as ok --------------------------------
# The disk fills up at the Nth write of the store (RBK_FAULT_IO=N:full, see
# engine/src/store/fault.c): for every N, each step shown "ok" must have its
# result in the store.
if on_sqlite; then
	lies="" bitten=0 shown=0
	for n in $(seq 1 3 90); do
		h=$TMP/full-$n
		"$RBK" status --home "$h" >/dev/null 2>&1 # the store exists: the fault hits the run
		RBK_FAULT_IO=$n:full "$RBK" run "$TMP/two.yaml" -p ledger="$h/ledger" --home "$h" >"$h.out" 2>"$h.err"
		rc=$?
		[[ $rc != 0 ]] && bitten=$((bitten + 1))
		grep -q 'Sanitizer\|runtime error' "$h.err" && lies+="[N=$n: $(tail -3 "$h.err")] "
		for s in $(sed -n 's/.* run 1 ok \([a-z]*\) .*/\1/p' "$h.out"); do
			shown=$((shown + 1))
			got=$(python3 -c 'import storedb,sys,json; db=storedb.connect(sys.argv[1]); print(sum(1 for (d,) in db.execute("select data from events where kind='"'step_finished'"'") if json.loads(d)["state"] == sys.argv[2] and json.loads(d)["status"] == "ok"))' "$h" "$s" 2>&1)
			[[ $got == 1 ]] || lies+="[N=$n (exit $rc): shown ok $s, not in the store] "
		done
		if [[ $rc != 0 ]] && grep -q "could not be recorded" "$h.out" && ! grep -q "rbk: error: .*disk full" "$h.err"; then
			lies+="[N=$n: shown as not recorded without the error] "
		fi
		rm -rf "$h" "$h.out" "$h.err"
	done
	[[ -z $lies && $bitten -ge 10 && $shown -ge 10 ]]
	t $? "disk full at any write: a step is shown ok only once its result is in the store ($bitten runs hit, $shown ok lines checked)" "$lies"
fi

# --- a plugin whose init crashes ------------------------------------------------------------
P=$TMP/plugins
mkdir -p "$P"
cc -std=c11 -Wall -Wextra -Werror -I"$RBK_ROOT/engine/include" -fPIC -shared -o "$P/rbk-crashinit.so" \
	"$RBK_ROOT/tests/fixtures/plugins/crashinit.c" 2>"$TMP/cc.err" || fail "crashinit plugin build" "$(cat "$TMP/cc.err")"
cat >"$TMP/uses.yaml" <<'EOF'
rbk: 1
name: uses
start: a
states:
  a:
    do: crashinit.nothing
    next: done
  done: {end: success}
EOF
export RBK_PLUGIN_PATH="$P:$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins"
refused="$P/rbk-crashinit.so: error: plugin refused: rbk_plugin_init crashed (in a trial process): killed by signal 11 (SIGSEGV"
r plugins
[[ $RC == 0 && $ERR == *"$refused"* && $OUT == *shell.exec* && $OUT == *testkit.ledger* && $OUT != *crashinit* ]] && clean
t $? "rbk plugins: the plugin whose init crashes is refused, its file and signal named; the others are listed" "$(why)"
r plugins "$P/rbk-crashinit.so"
[[ $RC == 1 && $ERR == *"$refused"* ]] && clean
t $? "rbk plugins FILE: that plugin refused (exit 1), rbk alive" "$(why)"
fresh_store
r run "$TMP/two.yaml" -p ledger="$TMP/p-ledger" --home "$TMP/hp"
[[ $RC == 0 && $(cut -d' ' -f2 "$TMP/p-ledger" | tr '\n' ' ') == "a b " ]] && clean
t $? "rbk run of a runbook that does not use it: runs to its end" "$(why)"
n=$(events "$TMP/hp")
r run "$TMP/uses.yaml" --home "$TMP/hp"
[[ $RC == 2 && $ERR == *"$refused"* && $ERR == *"no plugin 'crashinit' is loaded: its file was refused"* && $(events "$TMP/hp") == "$n" ]] && clean
t $? "rbk run of a runbook that uses it: exit 2 (its action unknown), the crash named, no run made, rbk alive" "$(why)"
RBK_CRASHINIT=exit r plugins "$P/rbk-crashinit.so"
[[ $RC == 1 && $ERR == *"rbk_plugin_init ended the process (in a trial process): exit status 7"* ]] && clean
t $? "a plugin whose init exits the process: refused (exit status 7 named), rbk alive" "$(why)"
RBK_CRASHINIT=no r run "$TMP/uses.yaml" --home "$TMP/hp"
[[ $RC == 0 ]] && clean
t $? "the same plugin with an init that returns: loaded, its action runs" "$(why)"

# --- a step marked failed with no failure edge ends the run; nothing resumes it
cat >"$TMP/noedge.yaml" <<'EOF2'
rbk: 1
name: noedge
params:
  ledger: {type: string}
start: work
states:
  work:
    do: testkit.ledger
    with: {file: "{{ params.ledger }}", label: work}
    next: after
  after:
    do: testkit.ledger
    with: {file: "{{ params.ledger }}", label: after}
    next: done
  done: {end: success}
EOF2
fresh_store
RBK_CRASH_POINT=step.after_start:1 r run "$TMP/noedge.yaml" -p ledger="$TMP/ne-ledger" --home "$TMP/hn"
r resume 1 --home "$TMP/hn"
resumed() { python3 -c 'import storedb,sys; print(storedb.connect(sys.argv[1]).execute("select count(*) from events where kind=? and data like ?", ("run_status", "%resumed%")).fetchone()[0])' "$TMP/hn" 2>&1; }
before=$(resumed)
r resume 1 --mark-step failure --home "$TMP/hn"
st=$(python3 -c 'import storedb,sys; print(storedb.connect(sys.argv[1]).execute("select status from runs where id=1").fetchone()[0])' "$TMP/hn")
after=$(resumed)
[[ $RC == 1 && $st == failed && $after == "$before" && ! -s "$TMP/ne-ledger" ]] && clean
t $? "--mark-step failure without a failure edge: the run ends failed (exit 1), no 'resumed' recorded, nothing runs after" "$(why); status $st; resumed $before then $after"
r resume 1 --home "$TMP/hn"
[[ $RC == 2 && $ERR == *"has ended (failed)"* ]]
t $? "resuming it again: refused, the run has ended" "$(why)"
