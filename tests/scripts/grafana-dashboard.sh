#!/bin/bash
# docs/grafana/rbk-dashboard.json (docs/console.md, "Metrics"): a dashboard
# Grafana's "Import dashboard" takes (its Prometheus data source an input,
# DS_PROMETHEUS), whose panels are laid out without overlaps and query only
# metrics the real rbk prints: the names are taken from `rbk metrics` on a
# store with a run in it, not from a list kept here. Each expression is
# parsed by promtool (as a recording rule: promtool check rules), and
# `rbk metrics` passes promtool check metrics. The checker is shown to
# refuse a dashboard with an unknown metric, overlapping panels, a repeated
# panel id and an expression that does not parse.
. "$(dirname "$0")/lib.bash"
export RBK_HOME=$TMP/home
export RBK_PLUGIN_PATH=$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins
fresh_store
DASH=$RBK_ROOT/docs/grafana/rbk-dashboard.json
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }
# refused NAME OUTPUT-MUST-CONTAIN COMMAND...: the command fails, saying so
refused() {
	local name=$1 want=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	[[ $rc != 0 && $out == *"$want"* ]]
	t $? "$name" "exit $rc, expected a failure naming '$want': $(printf '%s' "$out" | tail -5)"
}

# --- the checker: python3 check.py WHAT DASHBOARD [METRICS] ------------------
# Prints one line per problem and exits 1 when there is any.
cat >"$TMP/check.py" <<'PY'
import json, re, sys

what, path = sys.argv[1], sys.argv[2]
problems = []
def bad(msg): problems.append(msg)

def finish():
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)

try:
    with open(path) as f:
        d = json.load(f)
except (OSError, ValueError) as e:
    print(f"{path}: not valid JSON: {e}")
    sys.exit(1)
if what == "json":
    if not isinstance(d, dict):
        bad(f"the top level is a {type(d).__name__}, not an object")
    finish()

DS = "${DS_PROMETHEUS}"

def all_panels(ps):
    """The panels, those of collapsed rows included."""
    for p in ps or []:
        yield p
        yield from all_panels(p.get("panels"))

panels = list(all_panels(d.get("panels")))
def label(p):
    return f"panel {p.get('id')!r} ({p.get('title')!r})"
def is_row(p): return p.get("type") == "row"

def exprs():
    """(where, expr) of every PromQL expression: targets and query variables."""
    for p in panels:
        for t in p.get("targets") or []:
            if isinstance(t, dict) and isinstance(t.get("expr"), str):
                yield f"{label(p)} target {t.get('refId')!r}", t["expr"]
    for v in (d.get("templating") or {}).get("list") or []:
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and isinstance(q, str):
            yield f"variable {v.get('name')!r}", q

def ds_ok(ds):
    return isinstance(ds, dict) and ds.get("uid") == DS and ds.get("type") == "prometheus"

if what == "import":
    ins = d.get("__inputs")
    if not isinstance(ins, list) or not any(
            isinstance(i, dict) and i.get("name") == "DS_PROMETHEUS" and i.get("type") == "datasource"
            and i.get("pluginId") == "prometheus" for i in ins):
        bad(f"__inputs has no datasource input DS_PROMETHEUS of pluginId prometheus: {ins!r}")
    declared = {i.get("name") for i in ins or [] if isinstance(i, dict)}
    used = set(re.findall(r"\$\{(DS_[A-Za-z0-9_]+)\}", json.dumps(d)))
    for u in sorted(used - declared):
        bad(f"${{{u}}} is used but not declared in __inputs")
    req = d.get("__requires")
    if not isinstance(req, list) or not any(r.get("type") == "datasource" and r.get("id") == "prometheus" for r in req) \
            or not any(r.get("type") == "grafana" for r in req):
        bad(f"__requires lacks grafana or the prometheus datasource: {req!r}")
    for k, want in (("uid", "rbk-overview"), ("title", "rbk"), ("schemaVersion", 39)):
        if d.get(k) != want:
            bad(f"{k} is {d.get(k)!r}, not {want!r}")
    if d.get("id") is not None:
        bad(f"id is {d.get('id')!r}: a dashboard to import has id null")
    vs = {v.get("name"): v for v in (d.get("templating") or {}).get("list") or []}
    v = vs.get("runbook")
    if not v:
        bad(f"no templating variable runbook (variables: {sorted(vs)})")
    else:
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") != "query" or re.sub(r"\s", "", q or "") != "label_values(rbk_runs,runbook)":
            bad(f"variable runbook: type {v.get('type')!r}, query {q!r}; want a query label_values(rbk_runs, runbook)")
        if v.get("multi") is not True or v.get("includeAll") is not True:
            bad(f"variable runbook: multi {v.get('multi')!r}, includeAll {v.get('includeAll')!r}; want both true")
        if not ds_ok(v.get("datasource")):
            bad(f"variable runbook: datasource {v.get('datasource')!r}, not the {DS} input")
    for where, e in exprs():
        for var in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", e):
            if var not in vs and not var.startswith("__"):
                bad(f"{where}: uses ${var}, which is no templating variable")
    finish()

if what == "panels":
    if not panels:
        bad("no panels")
    seen = {}
    for p in panels:
        if not isinstance(p.get("id"), int):
            bad(f"{label(p)}: id is not an integer")
        elif p["id"] in seen:
            bad(f"{label(p)}: id {p['id']} is also {label(seen[p['id']])}'s")
        else:
            seen[p["id"]] = p
        if not isinstance(p.get("title"), str) or not p["title"].strip():
            bad(f"{label(p)}: no title")
        if is_row(p):
            continue
        if not isinstance(p.get("description"), str) or not p["description"].strip():
            bad(f"{label(p)}: no description")
        if not ds_ok(p.get("datasource")):
            bad(f"{label(p)}: datasource {p.get('datasource')!r}, not {{type: prometheus, uid: {DS}}}")
        ts = p.get("targets")
        if not isinstance(ts, list) or not ts:
            bad(f"{label(p)}: no targets")
            continue
        refs = [t.get("refId") for t in ts if isinstance(t, dict)]
        if len(set(refs)) != len(ts):
            bad(f"{label(p)}: refIds not unique: {refs}")
        for t in ts:
            if not isinstance(t, dict) or not isinstance(t.get("expr"), str) or not t["expr"].strip():
                bad(f"{label(p)}: a target without an expr: {t!r}")
            elif "datasource" in t and not ds_ok(t["datasource"]):
                bad(f"{label(p)} target {t.get('refId')!r}: datasource {t['datasource']!r}, not {DS}")
    # the panels docs/console.md's operators rely on: title, types, metrics
    want = {
        "Approvals waiting": ({"stat"}, {"rbk_approvals_waiting"}),
        "Oldest wait": ({"stat"}, {"rbk_approval_oldest_wait_seconds"}),
        "Chain intact": ({"stat"}, {"rbk_verify_last_intact"}),
        "Since last verify": ({"stat"}, {"rbk_verify_last_timestamp_seconds"}),
        "Scheduler lag": ({"stat"}, {"rbk_scheduler_lag_seconds"}),
        "Runs finished per hour by status": ({"timeseries"}, {"rbk_runs"}),
        "Runs by runbook and status": ({"table", "bargauge"}, {"rbk_runs"}),
        "Step duration p50/p95 by runbook": ({"timeseries"}, {"rbk_step_duration_seconds_bucket"}),
        "Active runs": ({"timeseries"}, {"rbk_runs"}),
        "Audit chain events": ({"timeseries"}, {"rbk_chain_events"}),
    }
    by_title = {p.get("title"): p for p in panels}
    for title, (types, metrics) in want.items():
        p = by_title.get(title)
        if p is None:
            bad(f"no panel titled {title!r}")
            continue
        if p.get("type") not in types:
            bad(f"{label(p)}: type {p.get('type')!r}, not {' or '.join(sorted(types))}")
        used = {m for t in p.get("targets") or [] for m in re.findall(r"\brbk_[a-z_]+", t.get("expr") or "")}
        if not metrics <= used:
            bad(f"{label(p)}: does not query {sorted(metrics - used)}")
    finish()

if what == "layout":
    rects = []
    for p in panels:
        g = p.get("gridPos")
        if not isinstance(g, dict) or not all(isinstance(g.get(k), int) for k in "xywh"):
            bad(f"{label(p)}: gridPos {g!r} lacks integer x, y, w, h")
            continue
        x, y, w, h = g["x"], g["y"], g["w"], g["h"]
        if w < 1 or h < 1 or x < 0 or y < 0 or x + w > 24:
            bad(f"{label(p)}: gridPos x={x} y={y} w={w} h={h} does not fit the 24 columns")
        for q, (x2, y2, w2, h2) in rects:
            if x < x2 + w2 and x2 < x + w and y < y2 + h2 and y2 < y + h:
                bad(f"{label(p)} (x={x} y={y} w={w} h={h}) overlaps {label(q)} (x={x2} y={y2} w={w2} h={h2})")
        rects.append((p, (x, y, w, h)))
    finish()

if what == "metrics":
    names = set()
    with open(sys.argv[3]) as f:
        for line in f:
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", line)
            if m and not line.startswith("#"):
                names.add(m.group(1))
    if not names:
        bad(f"{sys.argv[3]}: no samples")
    known = set(names)
    for n in names:  # a histogram by its base name, when all its series are there
        if n.endswith("_bucket"):
            base = n[:-len("_bucket")]
            if base + "_sum" in names and base + "_count" in names:
                known.add(base)
    n_used = 0
    for where, e in exprs():
        for m in re.findall(r"\brbk_[a-z_]+", e):
            n_used += 1
            if m not in known:
                bad(f"{where}: {m} is not a metric rbk prints (it prints: {', '.join(sorted(names))})")
    if not n_used:
        bad("no expression uses an rbk_ metric")
    finish()

if what == "rules":  # the expressions as recording rules, for promtool check rules
    rules = []
    for where, e in exprs():
        if e.lstrip().startswith("label_values("):
            continue  # Grafana's, not PromQL
        # Grafana's variables: a multi-value regex for $runbook; intervals
        e = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", e)
        e = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*(:[a-z]+)?\}?", ".*", e)
        rules.append({"record": f"rbk_dashboard:rule_{len(rules) + 1}", "expr": e})
        print(f"# rbk_dashboard:rule_{len(rules)}: {where}", file=sys.stderr)
    json.dump({"groups": [{"name": "rbk-dashboard", "rules": rules}]}, sys.stdout, indent=1)
    sys.exit(0 if rules else 1)

print(f"unknown check {what}")
sys.exit(2)
PY
chk() { python3 "$TMP/check.py" "$@"; }

# --- the metric names rbk prints: a fresh store with one run ------------------
"$RBK" run "$RBK_ROOT/tests/fixtures/run/kinds.yaml" -p ledger="$TMP/ledger" >"$TMP/run.out" 2>&1
rc=$?
"$RBK" metrics >"$TMP/metrics" 2>"$TMP/metrics.err"
mrc=$?
[[ $rc == 0 && $mrc == 0 ]] && grep -q '^rbk_step_duration_seconds_bucket{runbook="kinds",le="+Inf"} [1-9]' "$TMP/metrics" &&
	grep -q '^rbk_runs{runbook="kinds",status="succeeded"} 1$' "$TMP/metrics"
t $? "rbk metrics after a run prints its runs and the step histogram" \
	"run exit $rc, metrics exit $mrc: $(tail -3 "$TMP/run.out"; cat "$TMP/metrics.err"; grep -v '^#' "$TMP/metrics" | head -5)"

if command -v promtool >/dev/null; then
	check "promtool check metrics: rbk metrics output passes the Prometheus exposition-format linter" \
		promtool check metrics <"$TMP/metrics"
else
	fail "promtool check metrics" "promtool is not installed (make deps installs prometheus)"
fi

# --- the dashboard -------------------------------------------------------------
check "the dashboard is valid JSON" chk json "$DASH"
check "importable: __inputs DS_PROMETHEUS (prometheus), __requires, uid rbk-overview, title rbk, schemaVersion 39, the runbook variable" \
	chk import "$DASH"
check "every panel: a unique id, a title, a description, datasource \${DS_PROMETHEUS}, targets with an expr; the ten panels are there" \
	chk panels "$DASH"
check "the panels' gridPos fit in 24 columns and do not overlap" chk layout "$DASH"
check "every rbk_ metric the dashboard queries is one rbk metrics prints" chk metrics "$DASH" "$TMP/metrics"
if command -v promtool >/dev/null; then
	chk rules "$DASH" >"$TMP/rules.json" 2>"$TMP/rules.err"
	n=$(grep -c '"record"' "$TMP/rules.json")
	[[ $n -ge 11 ]]
	t $? "each panel expression becomes a recording rule for promtool" "$n rules: $(cat "$TMP/rules.err")"
	check "promtool check rules: every panel expression parses as PromQL" promtool check rules "$TMP/rules.json"
else
	fail "promtool check rules" "promtool is not installed (make deps installs prometheus)"
fi

# --- the checker refuses what it should: modified copies -----------------------
# mutate OUT PYTHON: a copy of the dashboard, with PYTHON run on it as d
mutate() {
	python3 - "$DASH" "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = [p for p in d["panels"] if p.get("targets")]
exec(sys.argv[3])
json.dump(d, open(sys.argv[2], "w"))
PY
}
mutate "$TMP/nope.json" 'p[0]["targets"][0]["expr"] = "rbk_nope"'
refused "the checker refuses a dashboard querying rbk_nope, which rbk does not print" "rbk_nope is not a metric rbk prints" \
	chk metrics "$TMP/nope.json" "$TMP/metrics"
mutate "$TMP/nope2.json" 'p[-1]["targets"][0]["expr"] = "sum(rate(rbk_nope_total[5m])) + " + p[-1]["targets"][0]["expr"]'
refused "the checker refuses rbk_nope_total next to a real metric in the same expression" "rbk_nope_total is not a metric" \
	chk metrics "$TMP/nope2.json" "$TMP/metrics"
mutate "$TMP/overlap.json" 'p[1]["gridPos"] = dict(p[0]["gridPos"], x=p[0]["gridPos"]["x"] + 1)'
refused "the checker refuses overlapping panels" "overlaps" chk layout "$TMP/overlap.json"
mutate "$TMP/wide.json" 'p[-1]["gridPos"]["x"] = 20'
refused "the checker refuses a panel wider than the 24 columns" "does not fit the 24 columns" chk layout "$TMP/wide.json"
mutate "$TMP/dup.json" 'p[1]["id"] = p[0]["id"]'
refused "the checker refuses a repeated panel id" "is also" chk panels "$TMP/dup.json"
mutate "$TMP/ds.json" 'p[2]["datasource"] = {"type": "prometheus", "uid": "prod-prom"}'
refused "the checker refuses a panel whose datasource is not the DS_PROMETHEUS input" "not {type: prometheus" \
	chk panels "$TMP/ds.json"
mutate "$TMP/noexpr.json" 'p[3]["targets"][0]["expr"] = " "'
refused "the checker refuses a target with an empty expr" "without an expr" chk panels "$TMP/noexpr.json"
mutate "$TMP/noinput.json" 'd["__inputs"] = []'
refused "the checker refuses a dashboard without the DS_PROMETHEUS input" "DS_PROMETHEUS" chk import "$TMP/noinput.json"
printf '{"panels": [' >"$TMP/broken.json"
refused "the checker refuses a file that is not JSON" "not valid JSON" chk json "$TMP/broken.json"
if command -v promtool >/dev/null; then
	mutate "$TMP/unparsable.json" 'p[0]["targets"][0]["expr"] = "sum by (status (rbk_runs)"'
	chk rules "$TMP/unparsable.json" >"$TMP/unparsable.rules.json" 2>/dev/null
	refused "promtool check rules refuses an expression that does not parse" "could not parse expression" \
		promtool check rules "$TMP/unparsable.rules.json"
fi
true
