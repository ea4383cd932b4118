#!/usr/bin/env python3
"""Markdown (the subset docs/ uses) -> a man page in roff, for make man.

    md2man.py SRC.md NAME SECTION "TITLE" > NAME.SECTION

Headings become sections, paragraphs .PP, code blocks .nf/.fi, lists .IP,
tables one .TP per row; `code` and **strong** are bold, links keep their
text. Standard library only.
"""
import re
import sys


def esc(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    # groff reads ASCII: any other character as its Unicode escape
    return "".join(c if ord(c) < 128 else "\\[u%04X]" % ord(c) for c in s)


def inline(s):
    s = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", s)  # links: their text
    out, parts = "", re.split(r"(`[^`]*`|\*\*[^*]+\*\*)", s)
    for p in parts:
        if p.startswith("`") and p.endswith("`") and len(p) >= 2:
            out += "\\fB" + esc(p[1:-1]) + "\\fR"
        elif p.startswith("**") and p.endswith("**"):
            out += "\\fB" + esc(p[2:-2]) + "\\fR"
        else:
            out += esc(p)
    return out


def line(s):
    """A text line that roff will not take for a request."""
    return "\\&" + s if s.startswith((".", "'")) else s


def main():
    src, name, section, title = sys.argv[1:5]
    lines = open(src, encoding="utf-8").read().split("\n")
    out = [f'.TH {name.upper()} {section} "" "rbk" "{title}"', ".SH NAME", f"{esc(name)} \\- {esc(title)}"]
    i, para = 0, []

    def flush():
        if para:
            out.append(".PP")
            out.append(line(inline(" ".join(para))))
            para.clear()

    while i < len(lines):
        l = lines[i]
        if l.startswith("```"):
            flush()
            out += [".PP", ".RS 4", ".nf"]
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                out.append(line(esc(lines[i])))
                i += 1
            out += [".fi", ".RE"]
        elif re.match(r"^#{1,2} ", l):
            flush()
            text = l.lstrip("#").strip()
            if l.startswith("# "):
                out.append(".SH DESCRIPTION")
                out.append(".PP")
                out.append(line(inline(text)))
            else:
                out.append(".SH " + inline(text.upper() if len(text) < 30 else text))
        elif l.startswith("### ") or l.startswith("#### "):
            flush()
            out.append(".SS " + inline(l.lstrip("#").strip()))
        elif l.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-+:?", c) for c in cells if c):
                    rows.append(cells)
                i += 1
            i -= 1
            for cells in rows[1:] if len(rows) > 1 else rows:
                out.append(".TP")
                out.append(line(inline(cells[0])))
                out.append(line(" \\(em ".join(inline(c) for c in cells[1:] if c)))
        elif re.match(r"^\s*[-*] ", l) or re.match(r"^\s*\d+\. ", l):
            flush()
            item = [re.sub(r"^\s*([-*]|\d+\.) ", "", l)]
            while i + 1 < len(lines) and lines[i + 1].startswith("  ") and lines[i + 1].strip():
                i += 1
                item.append(lines[i].strip())
            out.append(".IP \\(bu 2")
            out.append(line(inline(" ".join(item))))
        elif not l.strip():
            flush()
        else:
            para.append(l.strip())
        i += 1
    flush()
    out.append(".SH SEE ALSO")
    out.append("rbk(1), rbk\\-runbook(5); the full documentation installed with rbk, in share/doc/rbk")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
