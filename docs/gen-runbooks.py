#!/usr/bin/env python3
"""Write docs/runbooks.md: one section per runbook in runbooks/ (*.yaml and
*.yml, sorted by file name) with its title and description, the seed
procedure it implements (its header comment), its params, its schedule
entries and its graph (`rbk graph FILE --format mermaid`).

    python3 docs/gen-runbooks.py [--rbk PATH] [--runbooks DIR] [--output FILE]

--rbk defaults to $RBK, else build/rbk; --output to docs/runbooks.md ("-" is
stdout); --seeds to docs/seed-map.tsv, the table of every section of the
seed procedures and the runbooks that implement it (or why none does): a
runbook it names that does not exist, a runbook it does not name, or a
section with neither runbook nor reason is an error (exit 1). Only the standard library is used: the YAML is read by the small
reader below, which knows the block and flow styles runbooks are written in.
A file it cannot read, or that `rbk graph` refuses, still gets a section that
says so, so one broken file never hides the others. The output depends only
on the files (no dates, no absolute paths), so tests/scripts/docs-runbooks.sh
can regenerate it and compare.
"""
import argparse, copy, glob, os, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- a small YAML reader --------------------------------------------------------------
class YamlError(Exception):
    pass


INT_RE = re.compile(r"[-+]?[0-9]+$")
FLOAT_RE = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f",
           "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85", "_": "\xa0"}


def plain_value(s):
    """Resolve a plain scalar (YAML 1.2 core schema)."""
    if s in ("", "~", "null", "Null", "NULL"):
        return None
    if s in ("true", "True", "TRUE"):
        return True
    if s in ("false", "False", "FALSE"):
        return False
    if INT_RE.match(s):
        return int(s)
    if FLOAT_RE.match(s) and any(c.isdigit() for c in s):
        return float(s)
    return s


def strip_comment(s):
    """s without a trailing ` # comment` (outside quotes)."""
    q = None
    for i, c in enumerate(s):
        if q:
            if c == q:
                if q == "'" and i + 1 < len(s) and s[i + 1] == "'":
                    continue
                q = None
            elif c == "\\" and q == '"':
                pass
        elif c in "'\"" and (i == 0 or s[i - 1] in " \t[{,:"):
            q = c
        elif c == "#" and (i == 0 or s[i - 1] in " \t"):
            return s[:i].rstrip()
    return s.rstrip()


def double_quoted(s, i):
    """Parse a double-quoted scalar starting at s[i] == '"'; return (value, end)."""
    out, i = [], i + 1
    while i < len(s):
        c = s[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            e = s[i + 1] if i + 1 < len(s) else ""
            if e in ESCAPES:
                out.append(ESCAPES[e])
                i += 2
            elif e in "xuU":
                n = {"x": 2, "u": 4, "U": 8}[e]
                out.append(chr(int(s[i + 2:i + 2 + n], 16)))
                i += 2 + n
            elif e == "\n":  # an escaped line break: joined without a space
                i += 2
                while i < len(s) and s[i] in " \t":
                    i += 1
            else:
                raise YamlError(f"bad escape \\{e}")
        elif c == "\n":  # a line break inside quotes folds to a space (or to \n for blank lines)
            j = i + 1
            while out and out[-1] in " \t":
                out.pop()
            blanks = 0
            while True:
                k = j
                while k < len(s) and s[k] in " \t":
                    k += 1
                if k < len(s) and s[k] == "\n":
                    blanks += 1
                    j = k + 1
                else:
                    j = k
                    break
            out.append("\n" * blanks if blanks else " ")
            i = j
        else:
            out.append(c)
            i += 1
    raise YamlError("unterminated double-quoted string")


def single_quoted(s, i):
    out, i = [], i + 1
    while i < len(s):
        c = s[i]
        if c == "'":
            if i + 1 < len(s) and s[i + 1] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        if c == "\n":
            while out and out[-1] in " \t":
                out.pop()
            j = i + 1
            while j < len(s) and s[j] in " \t":
                j += 1
            out.append(" ")
            i = j
            continue
        out.append(c)
        i += 1
    raise YamlError("unterminated single-quoted string")


def quoted(s, i):
    return double_quoted(s, i) if s[i] == '"' else single_quoted(s, i)


class Flow:
    """Flow collections: {a: 1, b: [x, "y"]}, possibly over several lines."""

    def __init__(self, text):
        self.s = text
        self.i = 0

    def ws(self):
        s = self.s
        while self.i < len(s):
            if s[self.i] in " \t\n\r":
                self.i += 1
            elif s[self.i] == "#" and (self.i == 0 or s[self.i - 1] in " \t\n"):
                while self.i < len(s) and s[self.i] != "\n":
                    self.i += 1
            else:
                break

    def value(self, in_key=False):
        self.ws()
        s = self.s
        if self.i >= len(s):
            raise YamlError("unexpected end of a flow collection")
        c = s[self.i]
        if c == "{":
            return self.mapping()
        if c == "[":
            return self.sequence()
        if c in "'\"":
            v, self.i = quoted(s, self.i)
            return v
        j = self.i
        while j < len(s):
            c = s[j]
            if c in ",]}" or (c == ":" and (j + 1 >= len(s) or s[j + 1] in " \t\n,]}")):
                break
            if c == "#" and s[j - 1] in " \t":
                break
            j += 1
        text = " ".join(s[self.i:j].split())
        self.i = j
        return text if in_key else plain_value(text)

    def mapping(self):
        self.i += 1
        out = {}
        while True:
            self.ws()
            if self.s[self.i] == "}":
                self.i += 1
                return out
            k = self.value(in_key=True)
            self.ws()
            v = None
            if self.s[self.i] == ":":
                self.i += 1
                self.ws()
                if self.s[self.i] not in ",}":
                    v = self.value()
            out[k] = v
            self.ws()
            if self.s[self.i] == ",":
                self.i += 1
            elif self.s[self.i] != "}":
                raise YamlError(f"expected , or }} in a flow mapping, got {self.s[self.i]!r}")

    def sequence(self):
        self.i += 1
        out = []
        while True:
            self.ws()
            if self.s[self.i] == "]":
                self.i += 1
                return out
            start = self.i
            v = self.value()
            self.ws()
            if self.s[self.i] == ":":  # [a: 1] is a one-entry map
                self.i += 1
                key = self.s[start:self.i - 1].strip()
                v = {key: self.value()}
                self.ws()
            out.append(v)
            if self.s[self.i] == ",":
                self.i += 1
            elif self.s[self.i] != "]":
                raise YamlError(f"expected , or ] in a flow sequence, got {self.s[self.i]!r}")


def flow_balanced(text):
    depth, q, i = 0, None, 0
    while i < len(text):
        c = text[i]
        if q:
            if c == "\\" and q == '"':
                i += 1
            elif c == q:
                q = None
        elif c in "'\"" and (i == 0 or text[i - 1] in " \t\n[{,:"):
            q = c
        elif c == "#" and (i == 0 or text[i - 1] in " \t"):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        i += 1
    return depth <= 0 and q is None


def key_split(text):
    """'key: rest' -> (key, rest); None when text is not a mapping entry."""
    if text[:1] in "'\"":
        try:
            k, j = quoted(text, 0)
        except YamlError:
            return None
        rest = text[j:].lstrip()
        if rest.startswith(":") and (len(rest) == 1 or rest[1] in " \t"):
            return k, rest[1:].strip()
        return None
    if text == "-" or text.startswith("- ") or text[:1] in "[{#|>!&*%@`":
        return None
    m = re.match(r"([^\s#][^#]*?)\s*:(\s|$)", text)
    if not m:
        return None
    return m.group(1), text[m.end():].strip()


class Block:
    def __init__(self, lines, anchors=None):
        self.anchors = {} if anchors is None else anchors
        self.lines = [l.rstrip("\r\n").replace("\t", "    ") if not l.strip() else l.rstrip("\r\n") for l in lines]
        self.i = 0

    @staticmethod
    def indent(l):
        return len(l) - len(l.lstrip(" "))

    def skip(self):
        while self.i < len(self.lines):
            t = self.lines[self.i].strip()
            if t and not t.startswith("#"):
                return True
            self.i += 1
        return False

    def node(self, min_indent):
        if not self.skip():
            return None
        l = self.lines[self.i]
        ind = self.indent(l)
        if ind < min_indent:
            return None
        t = l.strip()
        if t == "-" or t.startswith("- "):
            return self.seq(ind)
        if key_split(t):
            return self.map(ind)
        self.i += 1
        return self.inline(t, ind - 1, ind)

    def map(self, ind):
        out = {}
        while self.skip():
            l = self.lines[self.i]
            if self.indent(l) != ind:
                if self.indent(l) > ind:
                    raise YamlError(f"line {self.i + 1}: unexpected indentation")
                break
            kv = key_split(l.strip())
            if not kv:
                break
            k, rest = kv
            self.i += 1
            out[k] = self.value(rest, ind)
        return out

    def seq(self, ind):
        out = []
        while self.skip():
            l = self.lines[self.i]
            t = l.strip()
            if self.indent(l) != ind or not (t == "-" or t.startswith("- ")):
                break
            content = t[1:].lstrip()
            if not content or content.startswith("#"):
                self.i += 1
                out.append(self.node(ind + 1))
                continue
            col = ind + len(t) - len(content)
            if content.startswith("- ") or content == "-" or key_split(content):
                self.lines[self.i] = " " * col + content  # the item's content becomes its own block
                out.append(self.node(col))
            else:
                self.i += 1
                out.append(self.value(content, ind))
        return out

    def value(self, rest, ind):
        """The value after 'key:' (or '- ') on a line indented ind."""
        rest = rest.strip()
        if rest.startswith("#"):
            rest = ""
        m = re.match(r"&(\S+)\s*(.*)$", rest)
        if m:  # an anchor: remember the value for its aliases
            v = self.value(m.group(2), ind)
            self.anchors[m.group(1)] = v
            return v
        m = re.match(r"\*(\S+)\s*(#.*)?$", rest)
        if m:
            if m.group(1) not in self.anchors:
                raise YamlError(f"unknown alias *{m.group(1)}")
            return copy.deepcopy(self.anchors[m.group(1)])
        if not rest:
            if self.skip():
                l = self.lines[self.i]
                n = self.indent(l)
                if n > ind:
                    return self.node(ind + 1)
                if n == ind and (l.strip() == "-" or l.strip().startswith("- ")):
                    return self.seq(ind)
            return None
        if rest[0] in "|>":
            return self.block_scalar(rest, ind)
        return self.inline(rest, ind, None)

    def inline(self, text, ind, _first_col):
        """A flow collection, a quoted or a plain scalar, continued on lines indented more than ind."""
        if text[0] in "[{":
            while not flow_balanced(text) and self.i < len(self.lines):
                text += "\n" + self.lines[self.i]
                self.i += 1
            f = Flow(text)
            v = f.value()
            return v
        if text[0] in "'\"":
            while True:
                try:
                    v, _ = quoted(text, 0)
                    return v
                except YamlError:
                    if self.i >= len(self.lines):
                        raise
                    text += "\n" + self.lines[self.i]
                    self.i += 1
        parts = [strip_comment(text)]
        if " #" not in text:  # a plain scalar may continue on more indented lines
            while self.i < len(self.lines):
                l = self.lines[self.i]
                if not l.strip():
                    parts.append("")
                    self.i += 1
                    continue
                if self.indent(l) <= ind or l.strip().startswith("#") or key_split(l.strip()):
                    break
                parts.append(strip_comment(l.strip()))
                self.i += 1
            while parts and parts[-1] == "":
                parts.pop()
        s = ""
        for p in parts:
            s = s + ("\n" if p == "" else (" " if s and not s.endswith("\n") else "")) + p
        return plain_value(s)

    def block_scalar(self, header, ind):
        m = re.match(r"([|>])([-+]?)([1-9]?)([-+]?)\s*(#.*)?$", header)
        if not m:
            raise YamlError(f"bad block scalar header {header!r}")
        style, chomp = m.group(1), m.group(2) or m.group(4)
        body, content_ind = [], int(m.group(3)) + ind if m.group(3) else None
        while self.i < len(self.lines):
            l = self.lines[self.i]
            if l.strip():
                n = self.indent(l)
                if content_ind is None:
                    if n <= ind:
                        break
                    content_ind = n
                if n < content_ind:
                    break
                body.append(l[content_ind:])
            else:
                body.append("")
            self.i += 1
        trailing = 0
        while body and body[-1] == "":
            body.pop()
            trailing += 1
        if style == "|":
            text = "\n".join(body)
        else:
            text, prev_more = "", False
            for j, b in enumerate(body):
                more = b.startswith(" ")
                if j == 0:
                    text = b
                elif b == "":
                    text += "\n"
                elif more or prev_more or text.endswith("\n"):
                    text += ("" if text.endswith("\n") else "\n") + b
                else:
                    text += " " + b
                prev_more = more
        if not body:
            return "" if chomp != "+" else "\n" * trailing
        if chomp == "-":
            return text
        if chomp == "+":
            return text + "\n" + "\n" * trailing
        return text + "\n"


def top_level(text):
    """The document's top-level keys, each read on its own (so an unusual construct in one,
    say a state's script, cannot hide the others): {key: value or YamlError}."""
    lines = text.split("\n")
    starts = [i for i, l in enumerate(lines) if l and l[0] not in " \t#-" and key_split(l.strip()) and l.strip() != "---"]
    out, anchors = {}, {}
    for n, s in enumerate(starts):
        e = starts[n + 1] if n + 1 < len(starts) else len(lines)
        try:
            v = Block(lines[s:e], anchors).map(0)
            out.update(v)
        except (YamlError, IndexError, ValueError) as err:
            key = key_split(lines[s].strip())[0]
            why = "unexpected end of a flow collection or string" if isinstance(err, IndexError) else str(err)
            out[key] = YamlError(f"line {s + 1}: {why}")
    return out


# --- the page -----------------------------------------------------------------------------
def header_comment(text):
    """The leading comment lines, without the yaml-language-server one, as one paragraph."""
    out = []
    for l in text.split("\n"):
        if not l.startswith("#"):
            if l.strip():
                break
            continue
        c = l[1:].strip()
        if c.startswith("yaml-language-server:"):
            continue
        out.append(c)
    return " ".join(x for x in out if x)


def cell(v):
    s = "" if v is None else str(v)
    return " ".join(s.split()).replace("|", "\\|")


def code(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        s = "true" if v else "false"
    elif isinstance(v, (list, dict)):
        s = flow_text(v)
    else:
        s = str(v)
    s = " ".join(s.split()).replace("|", "\\|")
    if s == "":
        return '`""`'
    tick = "``" if "`" in s else "`"
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{tick}{pad}{s}{pad}{tick}"


def flow_text(v):
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {flow_text(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(flow_text(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, str) and (v == "" or re.search(r"[,:{}\[\]#'\"]|^\s|\s$", v)):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(v)


def anchor(name):
    return re.sub(r"[^a-z0-9 -]", "", name.lower()).replace(" ", "-")


def section(path, rbk, rel):
    text = open(path, encoding="utf-8", errors="replace").read()
    doc = top_level(text)
    base = os.path.basename(path)
    name = doc.get("name") if isinstance(doc.get("name"), str) else os.path.splitext(base)[0]
    title = doc.get("title") if isinstance(doc.get("title"), str) else ""
    out = [f"## {name}", ""]
    if title:
        out += [f"**{title.strip()}**", ""]
    out += [f"File: [`{rel}`](../{rel})", ""]
    seed = header_comment(text)
    out += ["**Seed procedure.** " + (seed if seed else "(no header comment names the seed procedure)"), ""]
    desc = doc.get("description")
    if isinstance(desc, str) and desc.strip():
        out += [desc.strip(), ""]

    params = doc.get("params")
    out += ["### Params", ""]
    if isinstance(params, YamlError):
        out += [f"(could not read `params`: {params})", ""]
    elif not params:
        out += ["None.", ""]
    elif not isinstance(params, dict):
        out += ["(`params` is not a mapping)", ""]
    else:
        out += ["| name | type | default | description | secret |", "|---|---|---|---|---|"]
        for pname, p in params.items():
            p = p if isinstance(p, dict) else {}
            ptype = str(p.get("type", ""))
            if ptype == "enum" and isinstance(p.get("values"), list):
                ptype = "enum: " + ", ".join(str(x) for x in p["values"])
            limits = []
            if "min" in p:
                limits.append(f"min {p['min']}")
            if "max" in p:
                limits.append(f"max {p['max']}")
            if limits:
                ptype += " (" + ", ".join(limits) + ")"
            dflt = []
            if p.get("env"):
                dflt.append(f"env `{p['env']}`")
            if p.get("default") is not None:
                dflt.append(code(p["default"]))
            required = p.get("required", p.get("default") is None and not p.get("env"))
            if not dflt:
                dflt.append("required" if required else "none")
            d = cell(p.get("description", ""))
            if p.get("pattern"):
                d = (d + "; " if d else "") + "pattern " + code(p["pattern"])
            secret = "yes" if p.get("secret") is True else ""
            out.append(f"| `{pname}` | {cell(ptype)} | {', else '.join(dflt)} | {d} | {secret} |")
        out.append("")

    sched = doc.get("schedule")
    out += ["### Schedule", ""]
    if isinstance(sched, YamlError):
        out += [f"(could not read `schedule`: {sched})", ""]
    elif not sched:
        out += ["Not scheduled (run by hand or called by another runbook).", ""]
    elif not isinstance(sched, list):
        out += ["(`schedule` is not a list)", ""]
    else:
        out += ["| entry | cron | timezone | params | catch_up | overlap |", "|---|---|---|---|---|---|"]
        for i, e in enumerate(sched):
            e = e if isinstance(e, dict) else {}
            prm = e.get("params")
            out.append(f"| {i} | {code(e.get('cron'))} | {cell(e.get('timezone', 'UTC'))} | {code(prm) if prm else ''} "
                       f"| {cell(e.get('catch_up', '0s'))} | {cell(e.get('overlap', 'skip'))} |")
        out.append("")

    out += ["### Graph", ""]
    p = subprocess.run([rbk, "graph", rel, "--format", "mermaid"], cwd=ROOT, capture_output=True, text=True)
    if p.returncode == 0 and p.stdout.strip():
        out += ["```mermaid", p.stdout.rstrip("\n"), "```", ""]
    else:
        err = " ".join((p.stderr or "").split())[:500]
        out += [f"(`rbk graph` refused it, exit {p.returncode}: {err.replace(ROOT + '/', '')})", ""]
    return name, title, out


def seed_table(path, names):
    """The "Seed procedures" part of the page from the seed map (see the
    module's docstring), and the problems found in it."""
    seeds, rows, problems, used = {}, [], [], set()
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split("\t")
        if f[0].startswith("@") and len(f) == 2:
            seeds[f[0][1:]] = f[1]
            continue
        if len(f) != 4:
            problems.append(f"{path}:{n}: want 4 tab-separated fields (seed, section, runbooks, note), got {len(f)}")
            continue
        seed, sect, rbs, note = f
        if seed not in seeds:
            problems.append(f"{path}:{n}: seed {seed!r} is not declared with a line @{seed}<TAB>title")
        rb = [] if rbs.strip() == "-" else rbs.split()
        for r in rb:
            if r not in names:
                problems.append(f"{path}:{n}: no runbook named {r!r}")
            used.add(r)
        if not rb and not note.strip():
            problems.append(f"{path}:{n}: section {sect!r} has no runbook and no reason")
        rows.append((seed, sect, rb, note))
    for r in sorted(set(names) - used):
        problems.append(f"{path}: runbook {r!r} implements no section of the map")
    out = ["## Seed procedures and their runbooks", "",
           "Every section of the operations documents rbk was created from, with the",
           "runbook that implements it, or why it is deliberately not a runbook.", ""]
    for seed, title in seeds.items():
        out += [f"### Seed {seed}: {title}", "", "| section | runbook | note |", "|---|---|---|"]
        for s_, sect, rb, note in rows:
            if s_ == seed:
                cell = ", ".join(f"[{r}](#{anchor(r)})" for r in rb) if rb else "not a runbook"
                out.append(f"| {sect} | {cell} | {note} |")
        out.append("")
    return out, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rbk", default=os.environ.get("RBK") or os.path.join(ROOT, "build", "rbk"))
    ap.add_argument("--runbooks", default=os.path.join(ROOT, "runbooks"))
    ap.add_argument("--output", default=os.path.join(ROOT, "docs", "runbooks.md"))
    ap.add_argument("--seeds", default=os.path.join(ROOT, "docs", "seed-map.tsv"))
    a = ap.parse_args()
    rbk = os.path.abspath(a.rbk)
    if not os.access(rbk, os.X_OK):
        sys.exit(f"gen-runbooks: no rbk at {rbk} (run make, or give --rbk)")
    files = sorted(f for f in glob.glob(os.path.join(a.runbooks, "*")) if f.endswith((".yaml", ".yml")) and os.path.isfile(f))
    sections, index, names = [], [], []
    for f in files:
        rel = os.path.relpath(os.path.abspath(f), ROOT)
        name, title, lines = section(f, rbk, rel)
        names.append(name)
        index.append(f"- [{name}](#{anchor(name)})" + (f": {title.strip()}" if title else ""))
        sections.append("\n".join(lines))
    head = [
        "# Runbooks",
        "",
        "<!-- Generated by docs/gen-runbooks.py from runbooks/; do not edit by hand:",
        "     run `python3 docs/gen-runbooks.py` after changing a runbook. -->",
        "",
        f"The {len(files)} runbook{'s' if len(files) != 1 else ''} in `runbooks/`, each with the seed procedure it",
        "implements (from its header comment), its params, its schedule entries and",
        "its state machine (`rbk graph FILE --format mermaid`). Run one with",
        "`rbk run NAME -p name=value`; see docs/format.md and docs/cli.md.",
        "",
    ] + index + [""]
    problems = []
    if a.seeds != "-":
        seed_part, problems = seed_table(a.seeds, names)
        head += seed_part
    text = "\n".join(head) + "\n" + "\n".join(sections).rstrip("\n") + "\n"
    if a.output == "-":
        sys.stdout.write(text)
    else:
        tmp = a.output + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, a.output)
    for p in problems:
        print("gen-runbooks: " + p.replace(ROOT + "/", ""), file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
