#!/bin/bash
# rbk graph: Graphviz accepts the DOT of every valid fixture and shipped runbook.
. "$(dirname "$0")/lib.bash"
cd "$RBK_ROOT"
for f in tests/fixtures/valid/*.yaml runbooks/*.yaml; do
	[ -e "$f" ] || continue
	if ! command -v dot >/dev/null; then fail "graph $f" "graphviz (dot) is not installed"; continue; fi
	out=$("$RBK" graph "$f" --format dot 2>&1) || { fail "graph dot $f" "$out"; continue; }
	svg=$(printf '%s' "$out" | dot -Tsvg 2>&1) && [[ $svg == *"<svg"* ]] && ok "dot -Tsvg accepts the graph of $f" || fail "dot -Tsvg $f" "$svg"
	out=$("$RBK" graph "$f" --format mermaid 2>&1) && [[ $out == "flowchart TD"* ]] && ok "mermaid graph of $f" || fail "mermaid $f" "$out"
done
