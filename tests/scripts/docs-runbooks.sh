#!/bin/bash
# docs/runbooks.md is generated from runbooks/ by docs/gen-runbooks.py: regenerate it into a
# temporary file and compare, so a runbook changed without regenerating the page fails here.
# Also: the generator keeps going when a file is broken or new.
. "$(dirname "$0")/lib.bash"
GEN="$RBK_ROOT/docs/gen-runbooks.py"
PAGE="$RBK_ROOT/docs/runbooks.md"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"

if python3 "$GEN" --rbk "$RBK" --output "$TMP/runbooks.md" 2>"$TMP/err"; then
	ok "docs/gen-runbooks.py runs"
else
	fail "docs/gen-runbooks.py runs" "$(tail -3 "$TMP/err" | tr '\n' ' ')"
	exit 0
fi

if cmp -s "$TMP/runbooks.md" "$PAGE"; then
	ok "docs/runbooks.md is up to date"
else
	d=$(diff "$PAGE" "$TMP/runbooks.md" 2>&1)
	fail "docs/runbooks.md is out of date" "run python3 docs/gen-runbooks.py ($(printf '%s\n' "$d" | grep -c '^[<>]') lines differ; first: $(printf '%s\n' "$d" | grep -m 2 '^[<>]' | cut -c1-120 | tr '\n' ' '))"
fi

# Every runbook file has its section, its params table or "None.", and a graph.
missing=
for f in "$RBK_ROOT"/runbooks/*.yaml "$RBK_ROOT"/runbooks/*.yml; do
	[ -e "$f" ] || continue
	rel=${f#"$RBK_ROOT"/}
	awk -v rel="$rel" '
		index($0, "File: [`" rel "`]") { s = 1; next }
		s && /^## / { exit }
		s && /^```mermaid$/ { g = 1 }
		s && /^\| name \| type \| default \| description \| secret \|$|^None\.$/ { p = 1 }
		END { exit !(s && g && p) }' "$TMP/runbooks.md" || missing="$missing $rel"
done
[ -z "$missing" ] && ok "every runbook has its section, params and graph" || fail "sections" "incomplete:$missing"

# Robustness: a directory with a good runbook (feed-freeze), one rbk refuses and one the YAML reader cannot read.
mkdir -p "$TMP/rb"
cp "$RBK_ROOT/runbooks/feed-freeze.yaml" "$TMP/rb/a-good.yaml"
printf 'rbk: 1\nname: b-broken\nstart: nowhere\nstates:\n  x: {end: success}\n' >"$TMP/rb/b-broken.yaml"
printf '# yaml-language-server: $schema=x\n# Implements nothing.\nrbk: 1\nname: c-odd\nparams: {a: [unterminated\nstart: d\nstates:\n  d: {end: success}\n' >"$TMP/rb/c-odd.yml"
if python3 "$GEN" --rbk "$RBK" --runbooks "$TMP/rb" --seeds - --output "$TMP/odd.md" 2>"$TMP/err2"; then
	grep -q '^## feed-freeze$' "$TMP/odd.md" && grep -q '^## b-broken$' "$TMP/odd.md" && grep -q '^## c-odd$' "$TMP/odd.md" \
		&& grep -q "(\`rbk graph\` refused it, exit 2" "$TMP/odd.md" && grep -q "(could not read \`params\`" "$TMP/odd.md" \
		&& grep -q '^\*\*Seed procedure.\*\* Implements nothing.$' "$TMP/odd.md" \
		&& ok "a broken or unreadable file gets a section that says so" || fail "robustness" "$(grep -n '^## \|refused\|could not' "$TMP/odd.md" | head -5 | tr '\n' ' ')"
else
	fail "robustness: the generator survives broken files" "$(tail -3 "$TMP/err2" | tr '\n' ' ')"
fi

# The seed map: every seed section names its runbooks or why there is none,
# and every runbook implements some section.
grep -q '^## Seed procedures and their runbooks$' "$PAGE" && [ "$(grep -c '^### Seed ' "$PAGE")" = 5 ] \
	&& ok "docs/runbooks.md maps the sections of the 5 seeds to runbooks" || fail "seed map" "$(grep -n '^##' "$PAGE" | head -5 | tr '\n' ' ')"
printf '@001\tA seed\n001\tsome section\tnot-a-runbook feed-freeze\tx\n001\tanother\t-\t\n' >"$TMP/bad.tsv"
python3 "$GEN" --rbk "$RBK" --runbooks "$TMP/rb" --seeds "$TMP/bad.tsv" --output "$TMP/bad.md" 2>"$TMP/err3"
rc=$?
[ $rc = 1 ] && grep -q "bad.tsv:2: no runbook named 'not-a-runbook'" "$TMP/err3" && grep -q "bad.tsv:3: section 'another' has no runbook and no reason" "$TMP/err3" \
	&& grep -q "runbook 'b-broken' implements no section of the map" "$TMP/err3" \
	&& ok "a seed map naming an unknown runbook, a section without runbook or reason, or leaving a runbook out is refused" \
	|| fail "seed map errors" "exit $rc: $(cat "$TMP/err3")"
