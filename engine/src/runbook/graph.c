/* graph: emit DOT or Mermaid for a model. */
#include "runbook/graph.h"
#include "base/dur.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Failure edges are drawn where the author wrote one: on the state, or as
 * the runbook's default. The implicit default (fail) would only add noise. */
static const char *drawn_failure(const rbk_runbook *rb, const rbk_state *st)
{
	if (st->kind == RBK_S_END)
		return NULL;
	if (st->on_failure)
		return st->on_failure;
	if (rbk_node_get(rb->doc->root, "on_failure"))
		return rb->on_failure;
	return NULL;
}

static bool uses_target(const rbk_runbook *rb, const char *what)
{
	for (size_t i = 0; i < rb->nstates; i++) {
		const char *f = drawn_failure(rb, &rb->states[i]);
		if (f && !strcmp(f, what))
			return true;
	}
	return false;
}

static void dot_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		if (*s == '\n') {
			fputs("\\n", out);
			continue;
		}
		fputc(*s, out);
	}
	fputc('"', out);
}

static char *state_detail(const rbk_runbook *rb, const rbk_state *st)
{
	switch (st->kind) {
	case RBK_S_ACTION: return rbk_xasprintf("%s\n%s", st->name, st->act.action ? st->act.action : "");
	case RBK_S_CALL: return rbk_xasprintf("%s\ncall %s", st->name, st->act.action ? st->act.action : "");
	case RBK_S_WAIT: {
		char d[32];
		if (st->wait_ms < -1) /* a param's: RBK_DUR_PARAM */
			return rbk_xasprintf("%s\nwait params.%s", st->name, rb->params[-2 - st->wait_ms].name);
		rbk_dur_text(st->wait_ms, d, sizeof d);
		return rbk_xasprintf("%s\nwait %s", st->name, d);
	}
	case RBK_S_APPROVAL: return rbk_xasprintf("%s\napproval", st->name);
	case RBK_S_END: return rbk_xasprintf("%s\n%s", st->name, st->end_success ? "success" : "failure");
	case RBK_S_DECISION: break;
	}
	return rbk_xstrdup(st->name);
}

static void write_dot(const rbk_runbook *rb, FILE *out)
{
	fputs("digraph ", out);
	dot_str(out, rb->name ? rb->name : "runbook");
	fputs(" {\n  rankdir=TB;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
	      "  edge [fontname=\"Helvetica\", fontsize=10];\n"
	      "  \"__start\" [shape=circle, style=filled, fillcolor=black, label=\"\", width=0.25];\n",
	      out);
	for (size_t i = 0; i < rb->nstates; i++) {
		const rbk_state *st = &rb->states[i];
		char *label = state_detail(rb, st);
		fputs("  ", out);
		dot_str(out, st->name);
		fputs(" [label=", out);
		dot_str(out, label);
		rbk_free(label);
		switch (st->kind) {
		case RBK_S_DECISION: fputs(", shape=diamond, style=\"\"", out); break;
		case RBK_S_APPROVAL: fputs(", shape=hexagon, style=\"\"", out); break;
		case RBK_S_WAIT: fputs(", shape=ellipse, style=\"\"", out); break;
		case RBK_S_CALL: fputs(", shape=component, style=\"\"", out); break;
		case RBK_S_END:
			fputs(st->end_success ? ", shape=doublecircle, style=filled, fillcolor=\"#c8e6c9\""
					      : ", shape=doublecircle, style=filled, fillcolor=\"#ffcdd2\"",
			      out);
			break;
		case RBK_S_ACTION: break;
		}
		fputs("];\n", out);
	}
	if (uses_target(rb, "rollback"))
		fputs("  \"__rollback\" [label=\"rollback\\n(undo completed steps)\", shape=octagon, "
		      "style=filled, fillcolor=\"#ffe0b2\"];\n",
		      out);
	if (uses_target(rb, "fail"))
		fputs("  \"__fail\" [label=\"fail\", shape=octagon, style=filled, fillcolor=\"#ffcdd2\"];\n", out);
	if (rb->start) {
		fputs("  \"__start\" -> ", out);
		dot_str(out, rb->start);
		fputs(";\n", out);
	}
	for (size_t i = 0; i < rb->nstates; i++) {
		const rbk_state *st = &rb->states[i];
		for (size_t j = 0; j < st->nnext; j++) {
			const rbk_edge *e = &st->next[j];
			fputs("  ", out);
			dot_str(out, st->name);
			fputs(" -> ", out);
			dot_str(out, e->to ? e->to : "?");
			if (e->guard.src) {
				fputs(" [label=", out);
				dot_str(out, e->guard.src);
				fputs("]", out);
			} else if (st->next_is_list && st->nnext > 1) {
				fputs(" [label=\"else\"]", out);
			}
			fputs(";\n", out);
		}
		const char *f = drawn_failure(rb, st);
		if (f) {
			fputs("  ", out);
			dot_str(out, st->name);
			fputs(" -> ", out);
			dot_str(out, !strcmp(f, "rollback") ? "__rollback" : !strcmp(f, "fail") ? "__fail" : f);
			fputs(" [style=dashed, color=red, fontcolor=red, label=\"on failure\"];\n", out);
		}
	}
	fputs("}\n", out);
}

/* Mermaid flowchart labels: quoted, with quotes as #quot; and no newlines. */
static void mm_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		switch (*s) {
		case '"': fputs("#quot;", out); break;
		case '\n': fputs("<br/>", out); break;
		case '<': fputs("#lt;", out); break;
		case '>': fputs("#gt;", out); break;
		case '#': fputs("#35;", out); break;
		default: fputc(*s, out);
		}
	}
	fputc('"', out);
}

static void write_mermaid(const rbk_runbook *rb, FILE *out)
{
	/* Ids are prefixed: a state called "end" would otherwise close a block. */
	fputs("flowchart TD\n  start_((\" \"))\n", out);
	for (size_t i = 0; i < rb->nstates; i++) {
		const rbk_state *st = &rb->states[i];
		char *label = state_detail(rb, st);
		fprintf(out, "  s_%s", st->name);
		static const char *const open[] = {"(", "{", "{{", "([", "[[", "((("};
		static const char *const close[] = {")", "}", "}}", "])", "]]", ")))"};
		fputs(open[st->kind], out);
		mm_str(out, label);
		fputs(close[st->kind], out);
		fputc('\n', out);
		rbk_free(label);
	}
	if (uses_target(rb, "rollback"))
		fputs("  x_rollback{{\"rollback<br/>(undo completed steps)\"}}\n", out);
	if (uses_target(rb, "fail"))
		fputs("  x_fail[/\"fail\"/]\n", out);
	if (rb->start)
		fprintf(out, "  start_ --> s_%s\n", rb->start);
	for (size_t i = 0; i < rb->nstates; i++) {
		const rbk_state *st = &rb->states[i];
		for (size_t j = 0; j < st->nnext; j++) {
			const rbk_edge *e = &st->next[j];
			fprintf(out, "  s_%s -->", st->name);
			if (e->guard.src) {
				fputc('|', out);
				mm_str(out, e->guard.src);
				fputc('|', out);
			} else if (st->next_is_list && st->nnext > 1)
				fputs("|else|", out);
			fprintf(out, " s_%s\n", e->to ? e->to : "missing");
		}
		const char *f = drawn_failure(rb, st);
		if (f) {
			if (!strcmp(f, "rollback") || !strcmp(f, "fail"))
				fprintf(out, "  s_%s -.->|on failure| x_%s\n", st->name, f);
			else
				fprintf(out, "  s_%s -.->|on failure| s_%s\n", st->name, f);
		}
	}
	fputs("  classDef ok fill:#c8e6c9,stroke:#2e7d32\n  classDef bad fill:#ffcdd2,stroke:#c62828\n", out);
	for (size_t i = 0; i < rb->nstates; i++)
		if (rb->states[i].kind == RBK_S_END)
			fprintf(out, "  class s_%s %s\n", rb->states[i].name, rb->states[i].end_success ? "ok" : "bad");
}

void rbk_graph_write(const rbk_runbook *rb, rbk_graph_format fmt, FILE *out)
{
	if (fmt == RBK_GRAPH_DOT)
		write_dot(rb, out);
	else
		write_mermaid(rb, out);
}

char *rbk_graph_svg(const char *dot, size_t len)
{
	char in_path[] = "/tmp/rbk-graph-XXXXXX";
	int fd = mkstemp(in_path);
	if (fd < 0)
		return NULL;
	ssize_t w = write(fd, dot, len);
	close(fd);
	char *cmd = rbk_xasprintf("dot -Tsvg '%s' 2>/dev/null", in_path);
	FILE *pipe = w > 0 ? popen(cmd, "r") : NULL;
	rbk_free(cmd);
	rbk_buf svg = {0};
	char chunk[8192];
	size_t n;
	while (pipe && (n = fread(chunk, 1, sizeof chunk, pipe)) > 0)
		rbk_buf_add(&svg, chunk, n);
	int status = pipe ? pclose(pipe) : -1;
	unlink(in_path);
	char *start = status == 0 && svg.s ? strstr(svg.s, "<svg") : NULL;
	char *out = start ? rbk_xstrdup(start) : NULL; /* without the XML prolog: inline SVG */
	rbk_buf_free(&svg);
	return out;
}
