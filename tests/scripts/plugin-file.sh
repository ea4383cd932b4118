#!/bin/bash
# The file plugin, black box: runbooks run through rbk against real files in
# $TMP. Each action's effect is checked on disk (content, mode, inode, no
# temp files left) and its outputs through `rbk log RUN --json`
# (step_finished data.result.out) and through guards.
. "$(dirname "$0")/lib.bash"
export RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
export RBK_HOME="$TMP/home"
unset RBK_PATH
# The sanitizer runtime of this toolchain (GCC 12, glibc 2.36) misreads the
# dynamic TLS of libraries that real plugins load (libgit2, libcurl, OpenSSL)
# and, depending on the memory layout, its leak check crashes at exit
# ("Tracer caught signal 11"): google/sanitizers#1322. Leak checking stays
# on; only the interception of __tls_get_addr is off.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}intercept_tls_get_addr=0"
W=$TMP/w
mkdir -p "$W"

# --- helpers ---------------------------------------------------------------
# rb NAME [ARGS...]: write $TMP/NAME.yaml from stdin and run it; RC, RUN, ERR
rb() {
	local name=$1
	shift
	cat >"$TMP/$name.yaml"
	"$RBK" run "$TMP/$name.yaml" --json "$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	RUN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"])' "$TMP/out" 2>/dev/null)
	ERR=$(<"$TMP/err")
	grep -q 'Sanitizer\|runtime error:' "$TMP/err" && cat "$TMP/err" >&2
	return 0
}
# res STATE EXPR: a python expression over the step's result r and outputs o
res() {
	"$RBK" log "$RUN" --json 2>/dev/null | python3 -c '
import json, sys
state, expr = sys.argv[1], sys.argv[2]
r = {}
for line in sys.stdin:
    e = json.loads(line)
    if e["kind"] == "step_finished" and e["data"]["state"] == state:
        r = e["data"]["result"]
o = r.get("out") or {}
v = eval(expr)
print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2"
}
why() { printf 'exit %s; %s' "$RC" "$(tail -3 "$TMP/err" | tr '\n' ' ')"; }
t() { # t NAME CONDITION...: ok when the [[ ]] condition (strings, joined) holds
	local name=$1
	shift
	if eval "[[ $* ]]"; then ok "$name"; else fail "$name" "$(why)"; fi
}
# one ACTION WITH [STEP-KEYS]: run a runbook of the one step s; RC, RUN, E (its error)
one() {
	rb one <<Y
rbk: 1
name: one
start: s
states:
  s:
    do: file.$1
    with: $2
    ${3:-}
    next: done
  done: {end: success}
Y
	E=$(res s 'r["error"]')
}
temps() { find "$1" -name '*rbk-tmp*' | head -3; } # temp files left behind

# --- the plugin is loaded, with the right idempotency ----------------------
out=$("$RBK" plugins 2>/dev/null)
flags=""
for a in exists age size sha256 copy move write append remove free_space find; do
	line=$(grep "^  file\.$a:" <<<"$out")
	[[ $line == *"[idempotent]" ]] && flags+="$a=1 " || flags+="$a=0 "
done
[[ $flags == "exists=1 age=1 size=1 sha256=1 copy=0 move=1 write=1 append=0 remove=1 free_space=1 find=1 " ]] &&
	ok "rbk plugins lists the eleven file actions; copy and append are not idempotent" || fail "plugins" "$flags"

# --- exists ----------------------------------------------------------------
echo hello >"$W/f.txt"
ln -s "$W/nowhere" "$W/dangling"
rb exists <<Y
rbk: 1
name: exists
start: f
states:
  f:
    do: file.exists
    with: {path: "$W/f.txt"}
    next: d
  d:
    do: file.exists
    with: {path: "$W"}
    next: n
  n:
    do: file.exists
    with: {path: "$W/missing"}
    next: o
  o:
    do: file.exists
    with: {path: /dev/null}
    next: l
  l:
    do: file.exists
    with: {path: "$W/dangling"}
    next:
      - if: steps.f.out.exists && steps.f.out.type == 'file' && steps.d.out.type == 'dir' && !steps.n.out.exists && steps.n.out.type == 'none'
        to: done
  done: {end: success}
Y
t "exists: a file, a directory and a missing path (guard on the outputs)" '$RC == 0'
t "exists: a device is 'other'; a dangling link does not exist" \
	'$(res o "[o[\"exists\"], o[\"type\"]]") == "[true, \"other\"]" && $(res l "[o[\"exists\"], o[\"type\"]]") == "[false, \"none\"]"'
one exists "{path: \"$W/f.txt/below\"}"
t "exists: a path below a file does not exist (not an error)" '$RC == 0 && $(res s "o[\"type\"]") == none'

# --- age, size, sha256 -----------------------------------------------------
printf 'some content\n' >"$W/old.txt"
touch -d '2 hours ago' "$W/old.txt"
one age "{path: \"$W/old.txt\"}"
secs=$(res s 'o["seconds"]')
t "age: seconds since mtime, and mtime in Unix seconds" '$RC == 0 && $secs -ge 7200 && $secs -lt 7260' \
	'&& $(res s "o[\"mtime\"]") == $(stat -c %Y "$W/old.txt")'
touch -d 'tomorrow' "$W/future.txt"
one age "{path: \"$W/future.txt\"}"
t "age: a file from the future has a negative age" '$RC == 0 && $(res s "o[\"seconds\"]") -lt -80000'
one age "{path: \"$W/missing\"}"
t "age: a missing file fails, naming it" '$RC == 1 && $E == "cannot stat $W/missing: No such file or directory"'

head -c 123457 /dev/urandom >"$W/blob"
one size "{path: \"$W/blob\"}"
t "size: bytes of the file" '$RC == 0 && $(res s "o[\"bytes\"]") == 123457'
one size "{path: \"$W\"}"
t "size: a directory is refused" '$RC == 1 && $E == "$W is a directory; file.size measures files"'
one size "{path: \"$W/missing\"}"
t "size: a missing file fails" '$RC == 1 && $E == "cannot stat $W/missing: No such file or directory"'

one sha256 "{path: \"$W/blob\"}"
t "sha256: the digest sha256sum gives, and the bytes read" '$RC == 0' \
	'&& $(res s "o[\"sha256\"]") == $(sha256sum "$W/blob" | cut -d" " -f1) && $(res s "o[\"bytes\"]") == 123457'
: >"$W/empty"
one sha256 "{path: \"$W/empty\"}"
t "sha256: of an empty file" '$(res s "o[\"sha256\"]") == e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
one sha256 "{path: \"$W/missing\"}"
t "sha256: a missing file fails" '$RC == 1 && $E == "cannot read $W/missing: No such file or directory"'
one sha256 "{path: \"$W\"}"
t "sha256: a directory is refused" '$RC == 1 && $E == "cannot hash $W: it is a directory"'

# --- copy ------------------------------------------------------------------
C=$W/copy
mkdir -p "$C"
head -c 300000 /dev/urandom >"$C/src"
chmod 0751 "$C/src"
one copy "{src: \"$C/src\", dst: \"$C/dst\"}"
t "copy: same bytes, mode kept, no temp file left" '$RC == 0 && -z $(cmp "$C/src" "$C/dst" 2>&1)' \
	'&& $(stat -c %a "$C/dst") == 751 && $(res s "o[\"bytes\"]") == 300000 && -z $(temps "$C")'
echo "keep me" >"$C/taken"
one copy "{src: \"$C/src\", dst: \"$C/taken\"}"
t "copy: an existing dst is refused without overwrite, and left as it was" '$RC == 1' \
	'&& $E == "$C/taken already exists (overwrite: true replaces it)" && $(cat "$C/taken") == "keep me" && -z $(temps "$C")'
ln "$C/taken" "$C/taken.link"
one copy "{src: \"$C/src\", dst: \"$C/taken\", overwrite: true}"
t "copy: overwrite replaces dst by a rename (a hard link to the old file keeps the old bytes)" '$RC == 0' \
	'&& -z $(cmp "$C/src" "$C/taken" 2>&1) && $(cat "$C/taken.link") == "keep me" && -z $(temps "$C")'
one copy "{src: \"$C/nope\", dst: \"$C/x\"}"
t "copy: a missing source fails, naming it" '$RC == 1 && $E == "cannot copy $C/nope: No such file or directory" && ! -e $C/x'
one copy "{src: \"$C\", dst: \"$C/x\"}"
t "copy: a directory source is refused" '$RC == 1 && $E == "cannot copy $C: it is a directory (file.copy copies files)"'
mkdir -p "$C/adir"
one copy "{src: \"$C/src\", dst: \"$C/adir\", overwrite: true}"
t "copy: a directory as dst is refused" '$RC == 1 && $E == "cannot copy to $C/adir: it is a directory (name the file to create)"'
one copy "{src: \"$C/src\", dst: \"$C/no/such/dir/x\"}"
t "copy: a missing destination directory fails" '$RC == 1' \
	'&& $E == "cannot create a temp file beside $C/no/such/dir/x: No such file or directory"'

# --- move ------------------------------------------------------------------
M=$W/move
mkdir -p "$M"
echo payload >"$M/a"
ino=$(stat -c %i "$M/a")
cat >"$TMP/move.yaml" <<Y
rbk: 1
name: move
params: {overwrite: {type: bool, default: false}}
start: mv
states:
  mv:
    do: file.move
    with: {src: "$M/a", dst: "$M/b", overwrite: "{{ params.overwrite }}"}
    next: done
  done: {end: success}
Y
rb move1 <"$TMP/move.yaml"
t "move: renames (same inode), src gone" '$RC == 0 && ! -e $M/a && $(cat "$M/b") == payload && $(stat -c %i "$M/b") == $ino' \
	'&& $(res mv "[o[\"moved\"], o[\"path\"]]") == "[true, \"$M/b\"]"'
rb move2 <"$TMP/move.yaml"
t "move again: src gone and dst there is taken as done (moved: false), nothing changes" '$RC == 0' \
	'&& $(res mv "o[\"moved\"]") == false && $(cat "$M/b") == payload'
echo other >"$M/a"
rb move3 <"$TMP/move.yaml"
t "move: an existing dst is refused without overwrite; both are left alone" '$RC == 1' \
	'&& $(res mv "r[\"error\"]") == "$M/b already exists (overwrite: true replaces it)" && $(cat "$M/a") == other && $(cat "$M/b") == payload'
rb move4 -p overwrite=true <"$TMP/move.yaml"
t "move: overwrite replaces dst" '$RC == 0 && ! -e $M/a && $(cat "$M/b") == other'
rm -f "$M/b"
rb move5 <"$TMP/move.yaml"
t "move: src and dst both missing fails" '$RC == 1 && $(res mv "r[\"error\"]") == "cannot move $M/a: No such file or directory"'
echo same >"$M/c1"
echo same >"$M/c2"
one move "{src: \"$M/c1\", dst: \"$M/c2\"}"
t "move: dst already holding src's bytes (a copy across file systems cut short) completes the move" \
	'$RC == 0 && ! -e $M/c1 && $(cat "$M/c2") == same && $(res s "o[\"moved\"]") == true'
mkdir -p "$M/d1/inner" && echo x >"$M/d1/inner/f"
one move "{src: \"$M/d1\", dst: \"$M/d2\"}"
t "move: a directory is moved with its content" '$RC == 0 && ! -e $M/d1 && $(cat "$M/d2/inner/f") == x'
# Across file systems (/dev/shm is a tmpfs), when this host has one.
if [[ -d /dev/shm && -w /dev/shm && $(stat -c %d /dev/shm) != $(stat -c %d "$M") ]]; then
	X=$(mktemp -d /dev/shm/rbk-test.XXXXXX)
	head -c 70000 /dev/urandom >"$X/far"
	chmod 0640 "$X/far"
	cp "$X/far" "$TMP/far.orig"
	one move "{src: \"$X/far\", dst: \"$M/near\"}"
	t "move: across file systems, copied (mode kept) then removed" '$RC == 0 && ! -e $X/far' \
		'&& -z $(cmp "$M/near" "$TMP/far.orig" 2>&1) && $(stat -c %a "$M/near") == 640 && -z $(temps "$M")'
	mkdir -p "$X/dir"
	one move "{src: \"$X/dir\", dst: \"$M/dir\"}"
	t "move: a directory across file systems is refused" '$RC == 1 && -d $X/dir' \
		'&& $E == "cannot move $X/dir to $M/dir: another file system, and only files are copied across"'
	rm -rf "$X"
else
	ok "move: across file systems (skipped: /dev/shm is not another file system here)"
	ok "move: a directory across file systems is refused (skipped)"
fi

# --- write -----------------------------------------------------------------
F=$W/write
mkdir -p "$F"
cat >"$TMP/write.yaml" <<'Y'
rbk: 1
name: write
params:
  path: {type: string}
  content: {type: string}
  mode: {type: string, default: "0644"}
start: w
states:
  w:
    do: file.write
    with: {path: "{{ params.path }}", content: "{{ params.content }}", mode: "{{ params.mode }}"}
    next: done
  done: {end: success}
Y
text=$'line one\nlíne twö ✓\n\ttabbed "quoted" $dollar\n'
(umask 077 && rb write1 -p path="$F/conf" -p content="$text" <"$TMP/write.yaml")
RUN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"])' "$TMP/out")
t "write: exact content; mode 0644 by default, whatever the umask; no temp left" \
	'"$(cat "$F/conf"; echo .)" == "$text." && $(stat -c %a "$F/conf") == 644 && -z $(temps "$F")' \
	'&& $(res w "[o[\"bytes\"], o[\"changed\"]]") == "[$(printf %s "$text" | wc -c), true]"'
ln "$F/conf" "$F/conf.old"
rb write2 -p path="$F/conf" -p content="new" -p mode=0600 <"$TMP/write.yaml"
t "write: replaces by rename (the old inode keeps the old bytes), with the given mode" '$RC == 0' \
	'&& $(cat "$F/conf") == new && "$(cat "$F/conf.old"; echo .)" == "$text." && $(stat -c %a "$F/conf") == 600 && -z $(temps "$F")'
ino=$(stat -c %i "$F/conf")
rb write3 -p path="$F/conf" -p content="new" -p mode=0600 <"$TMP/write.yaml"
t "write again with the same content and mode: nothing written (changed: false)" '$RC == 0' \
	'&& $(res w "o[\"changed\"]") == false && $(stat -c %i "$F/conf") == $ino'
rb write4 -p path="$F/conf" -p content="new" -p mode=0640 <"$TMP/write.yaml"
t "write: the same content with another mode is written" '$RC == 0 && $(res w "o[\"changed\"]") == true && $(stat -c %a "$F/conf") == 640'
rb write5 -p path="$F/conf" -p content="x" -p mode=rw-r--r-- <"$TMP/write.yaml"
t "write: a mode that is not octal is refused; the file is untouched" '$RC == 1' \
	'&& $(res w "r[\"error\"]") == "mode must be octal digits such as \"0644\", not \"rw-r--r--\"" && $(cat "$F/conf") == new'
rb write6 -p path="$F/conf" -p content="x" -p mode=0999 <"$TMP/write.yaml"
t "write: mode 0999 is refused" '$RC == 1 && $(res w "r[\"error\"]") == "mode must be octal digits such as \"0644\", not \"0999\""'
rb write7 -p path="$F/none/conf" -p content="x" <"$TMP/write.yaml"
t "write: a missing directory fails, naming the path" '$RC == 1' \
	'&& $(res w "r[\"error\"]") == "cannot write $F/none/conf: cannot create a temp file beside it: No such file or directory"'
rb write8 -p path="$F" -p content="x" <"$TMP/write.yaml"
t "write: a directory is refused" '$RC == 1 && $(res w "r[\"error\"]") == "cannot write $F: it is a directory"'

# --- append ----------------------------------------------------------------
cat >"$TMP/append.yaml" <<Y
rbk: 1
name: append
start: a
states:
  a:
    do: file.append
    with: {path: "$F/log", content: "event\n", mode: "0600"}
    next: done
  done: {end: success}
Y
rb append1 <"$TMP/append.yaml"
t "append: creates a missing file with the mode" '$RC == 0 && $(cat "$F/log") == event && $(stat -c %a "$F/log") == 600' \
	'&& $(res a "[o[\"bytes\"], o[\"size\"], o[\"created\"]]") == "[6, 6, true]"'
rb append2 <"$TMP/append.yaml"
t "append: a second run appends again (not idempotent); size grows" '$RC == 0' \
	'&& "$(cat "$F/log")" == $'"'"'event\nevent'"'"' && $(res a "[o[\"size\"], o[\"created\"]]") == "[12, false]"'
one append "{path: \"$F/nodir/log\", content: x}"
t "append: a missing directory fails" '$RC == 1 && $E == "cannot append to $F/nodir/log: No such file or directory"'
one append "{path: \"$F\", content: x}"
t "append: a directory is refused" '$RC == 1 && $E == "cannot append to $F: Is a directory"'

# --- remove ----------------------------------------------------------------
X=$W/rm
mkdir -p "$X/tree/a/b" "$TMP/outside"
echo 1 >"$X/file"
echo 2 >"$X/tree/a/b/deep"
echo 3 >"$X/tree/top"
echo precious >"$TMP/outside/keep"
ln -s "$TMP/outside" "$X/tree/a/link-out"
ln -s "$TMP/outside" "$X/dirlink"
one remove "{path: \"$X/file\"}"
t "remove: a file is removed" '$RC == 0 && ! -e $X/file && $(res s "[o[\"removed\"], o[\"count\"]]") == "[true, 1]"'
one remove "{path: \"$X/file\"}"
t "remove: a missing path is success with removed: false" '$RC == 0 && $(res s "[o[\"removed\"], o[\"count\"]]") == "[false, 0]"'
one remove "{path: \"$X/tree\"}"
t "remove: a directory without recursive is refused and kept" '$RC == 1 && -f $X/tree/top' \
	'&& $E == "$X/tree is a directory (recursive: true removes it and everything in it)"'
one remove "{path: \"$X/dirlink\"}"
t "remove: a link to a directory removes the link, not the target" '$RC == 0 && ! -L $X/dirlink && -f $TMP/outside/keep'
one remove "{path: \"$X/tree\", recursive: true}"
t "remove: recursive removes the tree, never following a link out of it" '$RC == 0 && ! -e $X/tree' \
	'&& $(cat "$TMP/outside/keep") == precious && $(res s "o[\"count\"]") == 6'
one remove "{path: /, recursive: true}"
t "remove: / is refused" '$RC == 1 && $E == "refusing to remove / recursively"'

# --- free_space ------------------------------------------------------------
one free_space "{path: \"$W\"}"
read -r size avail pcent < <(df -B1 --output=size,avail,pcent "$W" | tail -1 | tr -d %)
t "free_space: bytes_total and bytes_free agree with df" '$RC == 0 && $(res s "o[\"bytes_total\"]") == $size' \
	'&& $(res s "abs(o[\"bytes_free\"] - $avail) <= max(1 << 24, $avail // 100)") == true'
t "free_space: percent_used rounds up to df's Use%; percent_free is the rest" \
	'$(res s "abs(-(-o[\"percent_used\"] // 1) - $pcent) <= 1") == true' \
	'&& $(res s "abs(o[\"percent_used\"] + o[\"percent_free\"] - 100) < 1e-9 and 0 <= o[\"percent_used\"] <= 100") == true'
rb freeguard <<Y
rbk: 1
name: free-guard
start: s
states:
  s:
    do: file.free_space
    with: {path: "$W"}
    next:
      - if: steps.s.out.percent_free > 0 && steps.s.out.bytes_free < steps.s.out.bytes_total && steps.s.out.bytes_used > 0
        to: done
  done: {end: success}
Y
t "free_space: guards can compare the numbers" '$RC == 0'
one free_space "{path: \"$W/missing/x\"}"
t "free_space: a missing path fails" '$RC == 1 && $E == "cannot measure the file system of $W/missing/x: No such file or directory"'

# --- find ------------------------------------------------------------------
L=$W/logs
mkdir -p "$L/sub/deeper" "$TMP/elsewhere"
for f in "$L/old.log" "$L/sub/old2.log" "$L/sub/deeper/old3.log" "$L/sub/notes.txt" "$TMP/elsewhere/trap.log"; do echo x >"$f"; done
echo x >"$L/new.log"
echo x >"$L/.hidden.log"
touch -d '40 days ago' "$L/old.log" "$L/sub/old2.log" "$L/sub/deeper/old3.log" "$L/sub/notes.txt" "$L/.hidden.log" "$TMP/elsewhere/trap.log"
touch -d '10 days ago' "$L/sub/deeper"
ln -s "$TMP/elsewhere" "$L/jump"
ln -s "$TMP/elsewhere/trap.log" "$L/link.log"
rb find1 <<Y
rbk: 1
name: find
start: old
states:
  old:
    do: file.find
    with: {dir: "$L", name: "*.log", older_than: 30d}
    next:
      - if: steps.old.out.count == 4 && !steps.old.out.truncated
        to: all
  all:
    do: file.find
    with: {dir: "$L/", name: "*.log"}
    next: dirs
  dirs:
    do: file.find
    with: {dir: "$L", type: dir, older_than: 7d}
    next: any
  any:
    do: file.find
    with: {dir: "$L", type: any, name: "*.log"}
    next: few
  few:
    do: file.find
    with: {dir: "$L", max: 2}
    next: done
  done: {end: success}
Y
t "find: name and older_than (touch -d), recursively, dot files too; never a link out of dir" '$RC == 0' \
	'&& $(res old "o[\"paths\"]") == "[\"$L/.hidden.log\", \"$L/old.log\", \"$L/sub/deeper/old3.log\", \"$L/sub/old2.log\"]"'
t "find: without older_than, any age; a trailing slash on dir does not double" \
	'$(res all "o[\"paths\"]") == "[\"$L/.hidden.log\", \"$L/new.log\", \"$L/old.log\", \"$L/sub/deeper/old3.log\", \"$L/sub/old2.log\"]"'
t "find: type dir (a link to a directory is not one)" '$(res dirs "o[\"paths\"]") == "[\"$L/sub/deeper\"]"'
t "find: type any includes links themselves, unfollowed" \
	'$(res any "o[\"paths\"]") == "[\"$L/.hidden.log\", \"$L/link.log\", \"$L/new.log\", \"$L/old.log\", \"$L/sub/deeper/old3.log\", \"$L/sub/old2.log\"]"'
t "find: max stops the list and says so" \
	'$(res few "[o[\"paths\"], o[\"count\"], o[\"truncated\"]]") == "[[\"$L/.hidden.log\", \"$L/new.log\"], 2, true]"'
t "find: nothing outside dir was touched or listed" '-f $TMP/elsewhere/trap.log && $(res any "any(\"elsewhere\" in p for p in o[\"paths\"])") == false'
one find "{dir: \"$L\", type: link}"
t "find: a bad type is refused" '$RC == 1 && $E == "type must be file, dir or any, not \"link\""'
one find "{dir: \"$L\", max: 0}"
t "find: max below 1 is refused" '$RC == 1 && $E == "max must be at least 1, not 0"'
one find "{dir: \"$W/nodir\"}"
t "find: a missing dir fails, naming it" '$RC == 1 && $E == "cannot search $W/nodir: No such file or directory"'
one find "{dir: \"$L/new.log\"}"
t "find: a file as dir fails" '$RC == 1 && $E == "cannot search $L/new.log: not a directory"'
one find "{dir: \"$L\", older_than: 30}"
t "find: older_than must be a duration (bad input, exit 2)" '$RC == 2 && $ERR == *"older_than"*"duration"*'

# --- bad input and dry runs ------------------------------------------------
one write "{path: \"$F/x\", content: 5}"
t "a mistyped param is bad input (exit 2), naming it" '$RC == 2 && $ERR == *"param '"'content'"' of file.write must be a string"*'
one remove "{path: \"$F/x\", recursiv: true}"
t "an unknown param is bad input (exit 2), with a suggestion" '$RC == 2 && $ERR == *"file.remove has no param '"'recursiv'"' (did you mean '"'recursive'"'?)"*'
OUT=$("$RBK" run "$TMP/write.yaml" --dry-run -p path="$F/dry" -p content=hello -p mode=0600 2>&1)
RC=$?
t "dry run: write says what it would write, and creates nothing" '$RC == 0 && ! -e $F/dry && -z $(temps "$F")' \
	'&& $OUT == *"info: would write 5 bytes to $F/dry (mode 0600), replacing it atomically"*'
echo keep >"$F/drykeep"
cat >"$TMP/dryrm.yaml" <<Y
rbk: 1
name: dry-rm
start: rm
states:
  rm:
    do: file.remove
    with: {path: "$F/drykeep", recursive: true}
    next: mv
  mv:
    do: file.move
    with: {src: "$F/drykeep", dst: "$F/drymoved"}
    next: done
  done: {end: success}
Y
OUT=$("$RBK" run "$TMP/dryrm.yaml" --dry-run 2>&1)
RC=$?
t "dry run: remove and move say what they would do, and touch nothing" '$RC == 0 && $(cat "$F/drykeep") == keep && ! -e $F/drymoved' \
	'&& $OUT == *"info: would remove $F/drykeep and everything in it"*' \
	'&& $OUT == *"info: would move $F/drykeep to $F/drymoved (refused if it exists)"*'
