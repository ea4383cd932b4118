#!/bin/bash
# The conventions operators rely on: every command's --help agrees with its
# heading in docs/cli.md (and every command has one); rbk completion bash
# and zsh complete commands, options and runbook names; the man pages made
# from the docs render without a warning and are installed with the
# completions.
. "$(dirname "$0")/lib.bash"
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }

out=$(python3 - "$RBK" "$RBK_ROOT/docs/cli.md" <<'PY' 2>&1
import re, subprocess, sys
rbk, doc = sys.argv[1], sys.argv[2]
heads = [l[3:].strip() for l in open(doc) if l.startswith("## rbk ")]
forms = {f.strip() for h in heads for f in re.split(r"\s{3,}", h)}
top = subprocess.run([rbk, "--help"], capture_output=True, text=True).stdout
cmds = re.findall(r"^  (\S+)\s", top, re.M)
def alternatives(cmd, usage):
    """'list [--json] | next X' -> the forms it stands for (| outside brackets)."""
    parts, depth, cur = [], 0, ""
    for i, ch in enumerate(usage):
        depth += ch == "[" ; depth -= ch == "]"
        if depth == 0 and usage[i:i + 3] == " | ":
            parts.append(cur); cur = ""
            continue
        if depth == 0 and cur == "" and usage[i - 2:i + 1] == " | ":
            continue
        cur += ch
    parts.append(cur)
    return ["rbk %s %s" % (cmd, p.lstrip("| ").strip()) if p.strip() else "rbk " + cmd for p in parts]
bad = []
for c in cmds:
    first = subprocess.run([rbk, c, "--help"], capture_output=True, text=True).stdout.split("\n")[0]
    usage = re.sub(r" \[--home DIR\]| \[--store URL\]", "", first[len("usage: rbk %s" % c):].strip())
    for f in alternatives(c, usage):
        if f not in forms:
            bad.append("%s: --help says '%s', docs/cli.md has no such heading" % (c, f))
print(len(cmds), "commands;", "; ".join(bad) if bad else "all agree")
sys.exit(1 if bad or len(cmds) < 20 else 0)
PY
)
t $? "every command's --help agrees with its heading in docs/cli.md" "$out"

# bash: commands, options, runbook names (not the shared _notify.yaml).
mkdir -p "$TMP/rb" "$TMP/cwd"
touch "$TMP/rb/deploy.yaml" "$TMP/rb/daily-routine.yaml" "$TMP/rb/_notify.yaml"
"$RBK" completion bash >"$TMP/c.bash" 2>&1 && bash -n "$TMP/c.bash"
t $? "rbk completion bash prints a script bash accepts" "$(head -3 "$TMP/c.bash")"
got=$(cd "$TMP/cwd" && RBK_PATH=$TMP/rb bash -c '
source "$1"
c() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _rbk; echo "${COMPREPLY[*]}"; }
c rbk ap; c rbk run d; c rbk log --f; c rbk run --dr; c rbk schedule ""; c rbk completion ""' _ "$TMP/c.bash" 2>&1 | tr '\n' '/')
[[ $got == "approve/daily-routine deploy/--follow/--dry-run/daily-routine deploy list next/bash zsh/" ]]
t $? "bash completes commands, runbook names on \$RBK_PATH (not _notify.yaml), options and sub-commands" "$got"

"$RBK" completion zsh >"$TMP/_rbk" 2>&1 && zsh -n "$TMP/_rbk"
t $? "rbk completion zsh prints a script zsh accepts" "$(head -3 "$TMP/_rbk")"
got=$(cd "$TMP" && zsh -fc 'fpath=("$1" $fpath); autoload -Uz compinit && compinit -u -d "$2/zcd" && print -r -- $_comps[rbk]' _ "$TMP" "$TMP" 2>&1)
[[ $got == _rbk ]]
t $? "zsh finds it on \$fpath: compinit binds rbk to _rbk" "$got"
"$RBK" completion fish >"$TMP/fish.out" 2>&1
rc=$?
[[ $rc == 2 && $(cat "$TMP/fish.out") == *"bash or zsh"* ]]
t $? "an unknown shell is a usage error (exit 2)" "exit $rc: $(cat "$TMP/fish.out")"

# Man pages.
cd "$RBK_ROOT"
out=$(make -s man 2>&1) && [[ -s build/man/rbk.1 && -s build/man/rbk-runbook.5 ]]
t $? "make man builds rbk(1) and rbk-runbook(5) from the docs" "$out"
w=$(groff -man -Tutf8 -ww -z build/man/rbk.1 2>&1; groff -man -Tutf8 -ww -z build/man/rbk-runbook.5 2>&1)
r1=$(groff -man -Tutf8 build/man/rbk.1 2>/dev/null | col -b 2>/dev/null || groff -man -Tascii build/man/rbk.1)
r5=$(groff -man -Tutf8 build/man/rbk-runbook.5 2>/dev/null | col -b 2>/dev/null || groff -man -Tascii build/man/rbk-runbook.5)
[[ -z $w && $r1 == *"EXIT CODES"* && $r1 == *"rbk log RUN [--json] [--follow]"* && $r5 == *"Durations"* && $r5 == *"max_transitions"* ]]
t $? "they render without a warning, with the commands and the format's sections" "warnings: $w; $(echo "$r1" | head -5)"
out=$(make -s install PREFIX=/usr DESTDIR="$TMP/root" 2>&1)
P=$TMP/root/usr/share
[[ -s $P/man/man1/rbk.1 && -s $P/man/man5/rbk-runbook.5 && -s $P/bash-completion/completions/rbk && -s $P/zsh/site-functions/_rbk ]]
t $? "make install installs the man pages and both completions" "$out; $(find "$TMP/root" -path '*man*' -o -path '*completion*' | head)"
