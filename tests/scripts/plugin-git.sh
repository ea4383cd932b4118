#!/bin/bash
# The git plugin against real repositories made with the git CLI in $TMP: a
# bare "remote" reached by file:// URL (and over HTTP with basic auth on
# 127.0.0.1, served by git http-backend), clones, fetches, checkouts, tags,
# reverts, rev and log; outputs read back from `rbk log RUN --json`.
. "$(dirname "$0")/lib.bash"
export RBK_HOME="$TMP/home" RBK_PLUGIN_PATH="$RBK_ROOT/build/plugins"
unset RBK_PATH
export HOME="$TMP/userhome" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$TMP/userhome/.gitconfig"
mkdir -p "$HOME"
git config --global init.defaultBranch main
git config --global advice.detachedHead false
export GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=tester@example.com
export GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=tester@example.com
D=0
commit() { # commit REPO FILE CONTENT SUBJECT: one commit, a minute after the last
	D=$((D + 60))
	printf '%s\n' "$3" >"$1/$2"
	git -C "$1" add "$2"
	GIT_AUTHOR_DATE="@$((1700000000 + D)) +0000" GIT_COMMITTER_DATE="@$((1700000000 + D)) +0000" \
		git -C "$1" commit -q -m "$4"
}
sha() { git -C "$1" rev-parse "$2"; }

# --- helpers: one-step runbooks, their outputs --------------------------------------------------
cat >"$TMP/q.py" <<'PY'
import json, sys
state, expr = sys.argv[1], sys.argv[2]
o, e, st = {}, None, None
for line in sys.stdin:
    ev = json.loads(line)
    if ev["kind"] == "step_finished" and ev["data"]["state"] == state:
        r = ev["data"]["result"]
        o, e, st = r.get("out") or {}, r.get("error"), r.get("status")
v = eval(expr)
print(v if isinstance(v, str) else json.dumps(v))
PY
N=0
step() { # step ACTION WITH [rbk run args...]: a one-step runbook; sets RC and RUN
	local action=$1 with=$2
	shift 2
	N=$((N + 1))
	cat >"$TMP/rb$N.yaml" <<Y
rbk: 1
name: t$N
params:
  secret: {type: string, secret: true, default: ""}
start: s
states:
  s:
    do: $action
    with: $with
    next: done
${EXTRA:-}
  done: {end: success}
Y
	local o
	o=$("$RBK" run "$TMP/rb$N.yaml" --json "$@" 2>"$TMP/stderr")
	RC=$?
	RUN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["run"])' "$o" 2>/dev/null)
	grep -q 'Sanitizer\|runtime error:' "$TMP/stderr" && cat "$TMP/stderr" >&2
}
q() { "$RBK" log "$RUN" --json | python3 "$TMP/q.py" s "$1" 2>&1; }
t() { # t NAME CONDITION-STATUS [why]
	if [[ $2 == 0 ]]; then ok "$1"; else fail "$1" "${3:-rc=$RC out=$(q o) error=$(q e) stderr=$(tail -3 "$TMP/stderr")}"; fi
}

# --- fixtures --------------------------------------------------------------------------------------
SRC="$TMP/src"
git init -q "$SRC"
commit "$SRC" a.txt one "first: a is one"
C1=$(sha "$SRC" HEAD)
git -C "$SRC" tag -a v1 -m "version one"
commit "$SRC" a.txt two "second: a is two"
C2=$(sha "$SRC" HEAD)
git -C "$SRC" checkout -q -b feature
commit "$SRC" b.txt bee "feature: add b"
CF=$(sha "$SRC" HEAD)
git -C "$SRC" checkout -q main
git clone -q --bare "$SRC" "$TMP/remote.git"
git -C "$SRC" remote add origin "$TMP/remote.git"
URL="file://$TMP/remote.git"

# --- git.clone -------------------------------------------------------------------------------------
W="$TMP/work"
step git.clone "{url: \"$URL\", path: \"$W\"}"
[[ $RC == 0 && $(q 'o["commit"]') == "$C2" && $(q 'o["branch"]') == main && $(q 'o["cloned"]') == true &&
	$(cat "$W/a.txt") == two && $(sha "$W" HEAD) == "$C2" && $(git -C "$W" remote get-url origin) == "$URL" ]]
t "clone by file:// URL: the remote's HEAD is checked out; outputs commit and branch" $?

step git.clone "{url: \"$URL\", path: \"$W\"}"
[[ $RC == 0 && $(q 'o["cloned"]') == false && $(q 'o["commit"]') == "$C2" ]]
t "clone again into its own clone: nothing to do (idempotent), cloned false" $?

step git.clone "{url: \"$URL\", path: \"$W\", branch: feature}"
[[ $RC == 1 && $(q e) == *"already holds a clone of it on branch main, not on branch 'feature'"* ]]
t "clone again asking for another branch: refused" $?

mkdir -p "$TMP/full" && echo x >"$TMP/full/junk"
step git.clone "{url: \"$URL\", path: \"$TMP/full\"}"
[[ $RC == 1 && $(q e) == "cannot clone $URL: destination $TMP/full exists and is not an empty directory" &&
	$(ls "$TMP/full") == junk ]]
t "clone into a non-empty directory: refused, the directory untouched" $?

mkdir -p "$TMP/empty"
step git.clone "{url: \"$TMP/remote.git\", path: \"$TMP/empty\", branch: feature}"
[[ $RC == 0 && $(q 'o["branch"]') == feature && $(q 'o["commit"]') == "$CF" && -f "$TMP/empty/b.txt" ]]
t "clone a local path into an empty directory, branch feature" $?

step git.clone "{url: \"$URL\", path: \"$TMP/nob\", branch: nope}"
[[ $RC == 1 && $(q e) == "cannot clone $URL: it has no branch 'nope'" && ! -e "$TMP/nob/.git" ]]
t "clone of a missing branch: a clear error" $?

step git.clone "{url: \"file://$TMP/missing.git\", path: \"$TMP/c2\"}"
[[ $RC == 1 && $(q e) == "cannot clone file://$TMP/missing.git: "* ]]
t "clone of a missing repository: fails naming the URL" $?

step git.clone "{url: \"$URL\", path: \"$TMP/c3\", password: a, token: b}"
[[ $RC == 1 && $(q e) == "git.clone takes either 'password' or 'token', not both" ]]
t "clone with both password and token: refused" $?

echo file >"$TMP/afile"
step git.clone "{url: \"$URL\", path: \"$TMP/afile\"}"
[[ $RC == 1 && $(q e) == *"destination $TMP/afile exists and is not an empty directory" ]]
t "clone onto a file: refused" $?

# --- git.fetch -------------------------------------------------------------------------------------
commit "$SRC" c.txt sea "third: add c"
C3=$(sha "$SRC" HEAD)
git -C "$SRC" push -q origin main
step git.fetch "{path: \"$W\"}"
[[ $RC == 0 && $(q 'o["updated"]') == 1 && $(q 'o["remote"]') == origin && $(sha "$W" origin/main) == "$C3" &&
	$(sha "$W" HEAD) == "$C2" ]]
t "fetch after a new remote commit: origin/main moves, one ref updated, HEAD stays" $?

step git.fetch "{path: \"$W\", remote: origin}"
[[ $RC == 0 && $(q 'o["updated"]') == 0 ]]
t "fetch again: nothing updated (idempotent)" $?

step git.fetch "{path: \"$W\", remote: upstream}"
[[ $RC == 1 && $(q e) == "repository $W has no remote 'upstream'"* ]]
t "fetch from an unknown remote: a clear error" $?

step git.fetch "{path: \"$TMP/empty-dir-not-repo\"}"
[[ $RC == 1 && $(q e) == "cannot open git repository $TMP/empty-dir-not-repo: "* ]]
t "fetch in a path that is no repository: a clear error" $?

git -C "$W" remote add broken "file://$TMP/gone.git"
step git.fetch "{path: \"$W\", remote: broken}"
[[ $RC == 1 && $(q e) == "cannot fetch 'broken' into $W from file://$TMP/gone.git: "* ]]
t "fetch from a remote that is gone: fails naming it" $?

# --- git.checkout ----------------------------------------------------------------------------------
step git.checkout "{path: \"$W\", ref: v1}"
[[ $RC == 0 && $(q 'o["commit"]') == "$C1" && $(q 'o["previous_commit"]') == "$C2" && $(q 'o["ref"]') == refs/tags/v1 &&
	$(q 'o["detached"]') == true && $(cat "$W/a.txt") == one && $(sha "$W" HEAD) == "$C1" ]] &&
	! git -C "$W" symbolic-ref -q HEAD >/dev/null
t "checkout of an annotated tag: its commit, HEAD detached" $?

step git.checkout "{path: \"$W\", ref: main}"
[[ $RC == 0 && $(q 'o["ref"]') == refs/heads/main && $(q 'o["commit"]') == "$C2" && $(q 'o["previous_commit"]') == "$C1" &&
	$(q 'o["detached"]') == false && $(git -C "$W" symbolic-ref HEAD) == refs/heads/main && $(cat "$W/a.txt") == two ]]
t "checkout of a branch: HEAD follows the branch" $?

step git.checkout "{path: \"$W\", ref: main}"
[[ $RC == 0 && $(q 'o["commit"]') == "$C2" && $(q 'o["previous_commit"]') == "$C2" ]]
t "checkout again: the same (idempotent)" $?

step git.checkout "{path: \"$W\", ref: \"$C1\"}"
[[ $RC == 0 && $(q 'o["ref"]') == "$C1" && $(q 'o["detached"]') == true && $(sha "$W" HEAD) == "$C1" ]] &&
	! git -C "$W" symbolic-ref -q HEAD >/dev/null
t "checkout of a commit id: HEAD detached there" $?

step git.checkout "{path: \"$W\", ref: \"${C2:0:8}\"}"
[[ $RC == 0 && $(q 'o["commit"]') == "$C2" ]]
t "checkout of an abbreviated commit id" $?

step git.checkout "{path: \"$W\", ref: feature}"
[[ $RC == 0 && $(q 'o["ref"]') == refs/heads/feature && $(q 'o["commit"]') == "$CF" &&
	$(git -C "$W" rev-parse --abbrev-ref 'feature@{upstream}') == origin/feature && -f "$W/b.txt" ]]
t "checkout of a branch only origin has: a local branch tracking it" $?

step git.checkout "{path: \"$W\", ref: nope}"
[[ $RC == 1 && $(q e) == "no branch, tag or commit 'nope' in $W" ]]
t "checkout of an unknown ref: a clear error" $?

git -C "$W" checkout -q main
echo edited >"$W/a.txt"
echo staged >"$W/c0.txt" && git -C "$W" add c0.txt
echo untracked >"$W/u.txt"
step git.checkout "{path: \"$W\", ref: v1}"
[[ $RC == 1 && $(q e) == "work tree of $W has uncommitted changes to 2 tracked files: "*"a.txt"*"; commit or stash them, or pass force: true to discard them" &&
	$(q e) == *c0.txt* && $(q e) != *u.txt* && $(cat "$W/a.txt") == edited && $(sha "$W" HEAD) == "$C2" ]]
t "checkout in a dirty tree: refused, listing the modified and staged paths (not untracked ones)" $?

step git.checkout "{path: \"$W\", ref: v1, force: true}"
[[ $RC == 0 && $(q 'o["commit"]') == "$C1" && $(cat "$W/a.txt") == one && -z $(git -C "$W" status --porcelain -uno) &&
	$(cat "$W/u.txt") == untracked ]]
t "checkout forced: the changes to tracked files are discarded, untracked files kept" $?

git -C "$W" checkout -q main
echo mine >"$W/b.txt"
step git.checkout "{path: \"$W\", ref: feature}"
[[ $RC == 1 && $(q e) == "cannot check out 'feature' in $W: 1 conflict prevents checkout" && $(cat "$W/b.txt") == mine &&
	$(git -C "$W" symbolic-ref HEAD) == refs/heads/main ]]
t "checkout onto an untracked file in the way: fails, the file kept" $?
rm -f "$W/b.txt"
git -C "$W" checkout -q main
rm -f "$W/u.txt" "$W/c0.txt"
for i in $(seq 1 12); do echo "x$i" >"$W/f$i.txt"; done
git -C "$W" add . && git -C "$W" commit -q -m "twelve files"
for i in $(seq 1 12); do echo "y$i" >"$W/f$i.txt"; done
step git.checkout "{path: \"$W\", ref: v1}"
[[ $RC == 1 && $(q e) == *"uncommitted changes to 12 tracked files: "*", ...; commit or stash"* &&
	$(q 'e.count(".txt")') == 10 ]]
t "checkout in a very dirty tree: the error lists 10 of the paths" $?
git -C "$W" reset -q --hard main~1

# --- git.tag ---------------------------------------------------------------------------------------
step git.tag "{path: \"$W\", name: rel-1, message: release one}"
[[ $RC == 0 && $(q 'o["tag"]') == rel-1 && $(q 'o["commit"]') == "$C2" && $(q 'o["annotated"]') == true &&
	$(git -C "$W" cat-file -t rel-1) == tag && $(git -C "$W" tag -n rel-1) == "rel-1"*"release one" &&
	$(git -C "$W" rev-parse 'rel-1^{commit}') == "$C2" && $(git -C "$W" cat-file -p rel-1) == *"tagger rbk <rbk@localhost>"* ]]
t "annotated tag at HEAD: a tag object with the message, tagger rbk" $?

step git.tag "{path: \"$W\", name: rel-1, message: again}"
[[ $RC == 1 && $(q e) == "tag 'rel-1' already exists in $W (at $C2); pass force: true to move it" &&
	$(git -C "$W" tag -n rel-1) == *"release one" ]]
t "tag with an existing name: refused, the tag unchanged" $?

step git.tag "{path: \"$W\", name: rel-1, message: moved, ref: v1, force: true, tagger_name: Ops, tagger_email: ops@example.com}"
[[ $RC == 0 && $(git -C "$W" rev-parse 'rel-1^{commit}') == "$C1" && $(git -C "$W" tag -n rel-1) == *moved &&
	$(git -C "$W" cat-file -p rel-1) == *"tagger Ops <ops@example.com>"* ]]
t "tag forced onto another ref, with a given tagger: moved" $?

step git.tag "{path: \"$W\", name: light}"
[[ $RC == 0 && $(q 'o["annotated"]') == false && $(git -C "$W" cat-file -t light) == commit ]]
t "tag without a message: a lightweight tag" $?

step git.tag "{path: \"$W\", name: x, ref: nope}"
[[ $RC == 1 && $(q e) == "no commit 'nope' in $W to tag: "* ]]
t "tag of an unknown ref: a clear error" $?

step git.tag "{path: \"$W\", name: \"bad..name\", message: m}"
[[ $RC == 1 && $(q e) == "cannot create tag 'bad..name' in $W: "* ]]
t "tag with an invalid name: a clear error" $?

# --- git.revert ------------------------------------------------------------------------------------
R="$TMP/rev"
git init -q "$R"
commit "$R" a.txt "$(printf 'l1\nl2\nl3')" "base"
commit "$R" a.txt "$(printf 'l1\nCHANGED\nl3')" "change l2"
RX=$(sha "$R" HEAD)
commit "$R" b.txt other "unrelated"
RH=$(sha "$R" HEAD)
step git.revert "{path: \"$R\", commit: \"$RX\"}"
NEW=$(sha "$R" HEAD)
[[ $RC == 0 && $(q 'o["commit"]') == "$NEW" && $(q 'o["reverted"]') == "$RX" && $NEW != "$RH" &&
	$(sha "$R" HEAD~1) == "$RH" && $(cat "$R/a.txt") == "$(printf 'l1\nl2\nl3')" && $(cat "$R/b.txt") == other &&
	$(git -C "$R" log -1 --format=%s) == 'Revert "change l2"' && $(git -C "$R" log -1 --format=%b) == "This reverts commit $RX." &&
	-z $(git -C "$R" status --porcelain) && $(git -C "$R" symbolic-ref HEAD) == refs/heads/main ]]
t "revert: a new commit on the branch whose diff undoes the target" $?
[[ $(git -C "$R" diff HEAD~1 HEAD -- a.txt | grep '^[-+][^-+]' | tr '\n' ' ') == "-CHANGED +l2 " ]]
t "revert: the new commit's diff is the target's, inverted" $? "$(git -C "$R" diff HEAD~1 HEAD)"

step git.revert "{path: \"$R\", commit: HEAD~1, message: \"undo the unrelated file\", author_name: Ops, author_email: ops@example.com}"
[[ $RC == 0 && ! -e "$R/b.txt" && $(git -C "$R" log -1 --format='%s|%an <%ae>') == "undo the unrelated file|Ops <ops@example.com>" ]]
t "revert with a message and an author" $?

commit "$R" a.txt "$(printf 'l1\nAGAIN\nl3')" "change l2 again"
RC1=$(sha "$R" HEAD)
step git.revert "{path: \"$R\", commit: \"$RX\"}"
[[ $RC == 1 && $(q e) == "reverting $RX in $R conflicts in 1 file: a.txt; nothing was changed" && $(sha "$R" HEAD) == "$RC1" &&
	-z $(git -C "$R" status --porcelain --untracked-files=all) && ! -e "$R/.git/REVERT_HEAD" && ! -e "$R/.git/MERGE_MSG" &&
	$(cat "$R/a.txt") == "$(printf 'l1\nAGAIN\nl3')" ]]
t "revert that conflicts: fails naming the file, the tree left clean at the previous HEAD" $?

echo dirty >>"$R/a.txt"
step git.revert "{path: \"$R\", commit: \"$RC1\"}"
[[ $RC == 1 && $(q e) == "work tree of $R has uncommitted changes to 1 tracked file: a.txt; commit or stash them before reverting" &&
	$(sha "$R" HEAD) == "$RC1" && $(tail -1 "$R/a.txt") == dirty ]]
t "revert in a dirty tree: refused, the changes kept" $?
git -C "$R" checkout -q -- a.txt

step git.revert "{path: \"$R\", commit: nope}"
[[ $RC == 1 && $(q e) == "no commit 'nope' in $R to revert" ]]
t "revert of an unknown commit: a clear error" $?

git -C "$R" checkout -q -b side "$RC1~1" && commit "$R" s.txt s "side" && git -C "$R" checkout -q main
git -C "$R" merge -q --no-edit side
step git.revert "{path: \"$R\", commit: HEAD}"
[[ $RC == 1 && $(q e) == "cannot revert $(sha "$R" HEAD) in $R: it is a merge commit (not supported)" ]]
t "revert of a merge commit: refused" $?

# --- git.rev ---------------------------------------------------------------------------------------
git -C "$W" checkout -q main
git -C "$W" tag -f -q light
step git.rev "{path: \"$W\"}"
[[ $RC == 0 && $(q 'o["commit"]') == "$C2" && $(q 'o["short"]') == "${C2:0:7}" && $(q 'o["branch"]') == main &&
	$(q 'o["dirty"]') == false && $(q 'o["tag"]') == light ]]
t "rev: commit, short, branch, clean, the tag at HEAD" $?

git -C "$W" tag -a -m "annotated wins" zz-ann
step git.rev "{path: \"$W\"}"
[[ $RC == 0 && $(q 'o["tag"]') == zz-ann ]]
t "rev: an annotated tag is preferred over a lightweight one" $?

echo edited >>"$W/a.txt"
step git.rev "{path: \"$W\"}"
[[ $RC == 0 && $(q 'o["dirty"]') == true ]]
t "rev: dirty after editing a tracked file" $?
git -C "$W" checkout -q -- a.txt
echo new >"$W/untracked.txt"
step git.rev "{path: \"$W\"}"
[[ $RC == 0 && $(q 'o["dirty"]') == false ]]
t "rev: an untracked file is not dirt" $?

git -C "$W" checkout -q "$CF"
step git.rev "{path: \"$W\"}"
[[ $RC == 0 && $(q 'o["branch"]') == null && $(q 'o["tag"]') == null && $(q 'o["commit"]') == "$CF" ]]
t "rev: detached HEAD without a tag: branch and tag are null" $?
git -C "$W" checkout -q main

git init -q "$TMP/fresh"
step git.rev "{path: \"$TMP/fresh\"}"
[[ $RC == 0 && $(q 'o["commit"]') == null && $(q 'o["branch"]') == main && $(q 'o["dirty"]') == false ]]
t "rev: a repository without commits: commit null, its branch" $?

step git.rev "{path: \"$TMP\"}"
[[ $RC == 1 && $(q e) == "cannot open git repository $TMP: "* ]]
t "rev of a directory that is not a repository (no search upwards): a clear error" $?

# A guard reads the outputs.
cat >"$TMP/guard.yaml" <<Y
rbk: 1
name: guard
start: r
states:
  r:
    do: git.rev
    with: {path: "$W"}
    next:
      - if: steps.r.out.branch == 'main' && !steps.r.out.dirty && steps.r.out.commit == '$C2'
        to: good
      - to: bad
  good: {end: success}
  bad: {end: failure}
Y
"$RBK" run "$TMP/guard.yaml" >/dev/null 2>&1
t "a guard on steps.r.out.branch, dirty and commit picks the right branch" $? "exit $?"

# --- git.log ---------------------------------------------------------------------------------------
step git.log "{path: \"$SRC\", count: 2}"
[[ $RC == 0 && $(q 'o["count"]') == 2 && $(q 'len(o["commits"])') == 2 && $(q 'o["commits"][0]["commit"]') == "$C3" &&
	$(q 'o["commits"][1]["commit"]') == "$C2" && $(q 'o["commits"][0]["subject"]') == "third: add c" &&
	$(q 'o["commits"][0]["author"]') == "Tester <tester@example.com>" &&
	$(q 'o["commits"][0]["date"]') == "$(date -u -d "@$(git -C "$SRC" log -1 --format=%at)" +%Y-%m-%dT%H:%M:%SZ)" ]]
t "log count 2: the newest two, newest first, with author, ISO-8601 UTC date, subject" $?

step git.log "{path: \"$SRC\"}"
[[ $RC == 0 && $(q 'o["count"]') == 3 && $(q '[c["subject"] for c in o["commits"]]') == '["third: add c", "second: a is two", "first: a is one"]' ]]
t "log default count: all three commits, in order" $?

step git.log "{path: \"$SRC\", ref: feature, count: 1}"
[[ $RC == 0 && $(q 'o["commits"][0]["commit"]') == "$CF" ]]
t "log from another ref" $?

step git.log "{path: \"$SRC\", count: 0}"
[[ $RC == 1 && $(q e) == "count must be between 1 and 10000, not 0" ]]
t "log count 0: refused" $?

step git.log "{path: \"$TMP/fresh\"}"
[[ $RC == 0 && $(q 'o["commits"]') == "[]" ]]
t "log of a repository without commits: an empty list" $?

step git.log "{path: \"$SRC\", count: \"2\"}"
[[ $RC == 2 ]]
t "log count given as a string: bad input (exit 2)" $?

# --- over HTTP with basic auth (git http-backend on 127.0.0.1) -----------------------------------
cat >"$TMP/gitd.py" <<'PY'
import base64, http.server, os, subprocess, sys
root, user, pw, portfile = sys.argv[1:5]
want = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def any(self):
        if self.headers.get("Authorization", "") != want:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1", PATH_INFO=path,
                   QUERY_STRING=query, REQUEST_METHOD=self.command, REMOTE_USER=user,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(len(body)))
        p = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        sep = b"\r\n\r\n" if b"\r\n\r\n" in p.stdout else b"\n\n"
        head, _, rest = p.stdout.partition(sep)
        status, headers = 200, []
        for line in head.decode().splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)
    do_GET = do_POST = any
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(portfile + ".tmp", portfile)
s.serve_forever()
PY
python3 "$TMP/gitd.py" "$TMP" alice 's3cr3t-pw' "$TMP/port" &
GITD=$!
trap 'kill $GITD 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do [[ -s $TMP/port ]] && break; sleep 0.05; done
HURL="http://127.0.0.1:$(cat "$TMP/port")/remote.git"

step git.clone "{url: \"$HURL\", path: \"$TMP/h0\"}"
[[ $RC == 1 && $(q e) == "cannot clone $HURL: the remote asks for credentials; give 'username' and 'password' or 'token'"* ]]
t "clone over HTTP without credentials: fails, saying credentials are needed" $?

step git.clone "{url: \"$HURL\", path: \"$TMP/h1\", username: alice, password: \"{{ params.secret }}\"}" -p secret=wrong-pw
[[ $RC == 1 && $(q e) == "cannot clone $HURL: authentication failed for user 'alice'" && ! -e "$TMP/h1/.git" ]]
t "clone over HTTP with a wrong password: authentication failed" $?

step git.clone "{url: \"$HURL\", path: \"$TMP/h2\", username: alice, password: \"{{ params.secret }}\"}" -p secret=s3cr3t-pw
[[ $RC == 0 && $(q 'o["commit"]') == "$C3" && $(cat "$TMP/h2/c.txt") == sea ]]
t "clone over HTTP with username and password (a secret param)" $?
! { "$RBK" log "$RUN" --json; "$RBK" show "$RUN"; cat "$TMP/stderr"; } 2>&1 | grep -q 's3cr3t-pw'
t "the password is in no log, event or output" $?

step git.clone "{url: \"$HURL\", path: \"$TMP/h3\", username: alice, token: \"{{ params.secret }}\"}" -p secret=s3cr3t-pw
[[ $RC == 0 && -f "$TMP/h3/a.txt" ]]
t "clone over HTTP with a token" $?

commit "$SRC" d.txt dee "fourth: add d"
git -C "$SRC" push -q origin main
step git.fetch "{path: \"$TMP/h2\", username: alice, password: \"{{ params.secret }}\"}" -p secret=s3cr3t-pw
[[ $RC == 0 && $(q 'o["updated"]') == 1 && $(sha "$TMP/h2" origin/main) == "$(sha "$SRC" HEAD)" ]]
t "fetch over HTTP with credentials" $?

step git.fetch "{path: \"$TMP/h2\", username: alice, password: \"{{ params.secret }}\"}" -p secret=nope
[[ $RC == 1 && $(q e) == "cannot fetch 'origin' into $TMP/h2 from $HURL: authentication failed for user 'alice'" ]]
t "fetch over HTTP with a wrong password: authentication failed" $?

HURLU="http://alice@127.0.0.1:$(cat "$TMP/port")/remote.git"
step git.clone "{url: \"$HURLU\", path: \"$TMP/h5\", password: \"{{ params.secret }}\"}" -p secret=s3cr3t-pw
[[ $RC == 0 && -f "$TMP/h5/a.txt" ]]
t "clone over HTTP: the user written in the URL is used with the password" $?
step git.clone "{url: \"$HURLU\", path: \"$TMP/h6\", password: \"{{ params.secret }}\"}" -p secret=bad
[[ $RC == 1 && $(q e) == "cannot clone $HURLU: authentication failed for user 'alice'" ]]
t "clone over HTTP with the user in the URL and a wrong password: names that user" $?

# A server that accepts and never answers: the step's timeout ends the clone.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(5)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
conns = []
while True:
    c, _ = s.accept(); conns.append(c)' "$TMP/hangport" &
HANG=$!
trap 'kill $GITD $HANG 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do [[ -s $TMP/hangport ]] && break; sleep 0.05; done
start=$(date +%s)
EXTRA="    timeout: 1s" step git.clone "{url: \"http://127.0.0.1:$(cat "$TMP/hangport")/x.git\", path: \"$TMP/hang\"}"
[[ $RC == 1 && $(q e) == *"timed out after 1000ms"* && $(($(date +%s) - start)) -lt 20 ]]
t "clone from a server that never answers: the step times out" $?

HURLP="http://alice:s3cr3t-pw@127.0.0.1:$(cat "$TMP/port")/nothere.git"
step git.clone "{url: \"$HURLP\", path: \"$TMP/h4\"}"
[[ $RC == 1 && $(q e) == "cannot clone http://alice:***@127.0.0.1:"*"/nothere.git: "* && $(q e) != *s3cr3t* ]]
t "a password written in the URL is shown as *** in errors" $?

# --- dry run ---------------------------------------------------------------------------------------
step git.clone "{url: \"$HURL\", path: \"$TMP/dry\", username: alice, password: \"{{ params.secret }}\"}" -p secret=s3cr3t-pw --dry-run
[[ $RC == 0 && ! -e "$TMP/dry" ]] && ! { "$RBK" log "$RUN" --json; cat "$TMP/stderr"; } 2>&1 | grep -q s3cr3t-pw
t "dry run: nothing is cloned, the password is not shown" $?

# --- the plugin's declarations ---------------------------------------------------------------------
out=$("$RBK" plugins "$RBK_ROOT/build/plugins/rbk-git.so" 2>&1)
idem=$(grep -o '^  git\.[a-z]*:.*' <<<"$out" | sed 's/^  \(git\.[a-z]*\):.*\[idempotent\]$/\1 yes/; s/^  \(git\.[a-z]*\):.*/\1 no/' | tr '\n' ' ')
[[ $idem == "git.clone yes git.fetch yes git.checkout yes git.tag no git.revert no git.rev yes git.log yes " ]]
t "rbk plugins lists the git actions with their idempotency" $? "$idem"
