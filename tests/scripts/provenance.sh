#!/bin/bash
# Git provenance of a run's runbook, and its cache (audit/provenance.c):
#  - outside a work tree: no "git" facts;
#  - in one: commit, branch, path, tracked, dirty, as git itself says;
#  - a second run finds the facts in HOME/cache without libgit2 (its module
#    is made unloadable: the facts are still there, not "unavailable");
#  - each thing the facts depend on changes them at once, cache or not: an
#    edit of the file (even of the same size, its time set back), a new
#    commit, another branch checked out, a file not yet tracked;
#  - a damaged cache file is not believed;
#  - a file changed in the last 2 s is not cached (git's racily clean).
. "$(dirname "$0")/lib.bash"
export RBK_HOME=$TMP/home
fresh_store
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }
G=$TMP/repo
git init -q -b main "$G"
gitc() { git -C "$G" -c user.name=t -c user.email=t@t "$@"; }
cp "$RBK_ROOT/tests/fixtures/valid/minimal.yaml" "$G/rb.yaml"
gitc add rb.yaml
gitc commit -qm one
settle() { sleep 2.1; } # past the racy window of what was just written
warm() { settle; facts >/dev/null; settle; facts >/dev/null; } # cached, whatever libgit2 refreshed
last() { "$RBK" history --json --limit 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])'; }
facts() { # facts [RBK ENV...]: run rb.yaml, print its git facts as JSON (or "none")
	env "$@" "$RBK" run "$G/rb.yaml" >/dev/null 2>"$TMP/err" || { echo "run failed: $(cat "$TMP/err")"; return; }
	"$RBK" show "$(last)" --json | python3 -c 'import json,sys
p = json.load(sys.stdin)["provenance"]
print(json.dumps(p.get("git", "none"), sort_keys=True))'
}
want() { # want COMMIT BRANCH TRACKED DIRTY
	python3 -c 'import json,sys
c, b, tr, d = sys.argv[1:]
print(json.dumps({"commit": c, "branch": b, "path": "rb.yaml", "tracked": tr == "true", "dirty": d == "true"}, sort_keys=True))' "$@"
}
# Modules without rbk-gitrepo.so (the store's own module stays).
mkdir -p "$TMP/no-git"
for m in "$(dirname "$RBK")"/modules/rbk-*.so; do
	[[ $m == */rbk-gitrepo.so ]] || ln -s "$m" "$TMP/no-git/"
done
nolib=(RBK_MODULE_PATH=$TMP/no-git)

cp "$RBK_ROOT/tests/fixtures/valid/minimal.yaml" "$TMP/outside.yaml"
"$RBK" run "$TMP/outside.yaml" >/dev/null 2>&1
got=$("$RBK" show "$(last)" --json | python3 -c 'import json,sys; print("git" in json.load(sys.stdin)["provenance"])')
[[ $got == False ]]
t $? "a runbook outside a work tree has no git facts" "$got"

settle
c1=$(git -C "$G" rev-parse HEAD)
w=$(want "$c1" main true false)
got=$(facts)
[[ $got == "$w" ]]
t $? "in a work tree: commit, branch, path, tracked, not dirty" "got $got want $w"
# libgit2 may refresh the index as it reads it: the facts are kept only
# once a run saw nothing change under it.
settle
facts >/dev/null
ls "$RBK_HOME"/cache/git-* >/dev/null 2>&1
t $? "the facts are cached in HOME/cache" "$(ls -la "$RBK_HOME" 2>&1)"
got=$(facts "${nolib[@]}")
[[ $got == "$w" ]]
t $? "a second run reads them from the cache, without libgit2's module" "got $got"

# The same size, the time set back: the change time still tells.
sed -i 's/minimal/minimbl/' "$G/rb.yaml"
touch -d '1 hour ago' "$G/rb.yaml"
got=$(facts)
[[ $got == "$(want "$c1" main true true)" ]]
t $? "an edit of the same size, its mtime set back: dirty at once" "got $got"
warm
got=$(facts "${nolib[@]}")
[[ $got == "$(want "$c1" main true true)" ]]
t $? "... and from the cache once settled" "got $got"

gitc commit -qam two
c2=$(git -C "$G" rev-parse HEAD)
settle
got=$(facts)
[[ $got == "$(want "$c2" main true false)" ]]
t $? "a new commit: the new commit, clean" "got $got"

gitc checkout -q -b other
settle
got=$(facts)
[[ $got == "$(want "$c2" other true false)" ]]
t $? "another branch checked out: its name" "got $got"

git -C "$G" rm -q --cached rb.yaml
settle
got=$(facts)
[[ $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["tracked"])' "$got" 2>&1) == False ]]
t $? "a file no longer in the index: not tracked" "got $got"
gitc add rb.yaml
settle
facts >/dev/null

for f in "$RBK_HOME"/cache/git-*; do printf 'rbk provenance cache 1\ngarbage' >"$f"; done
got=$(facts)
[[ $got == "$(want "$c2" other true false)" ]]
t $? "a damaged cache file is not believed" "got $got"

echo "# racy" >>"$G/rb.yaml"
got=$(facts)
got2=$(facts "${nolib[@]}")
[[ $got == "$(want "$c2" other true true)" && $got2 == *unavailable* ]]
t $? "a file changed in the last 2 s is not cached (the next run asks libgit2 again)" "got $got, then $got2"
