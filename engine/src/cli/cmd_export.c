/* rbk export RUN [-o FILE]: a run as a self-contained bundle (bundle.h).
 * rbk report RUN --html [-o FILE]: a run as one HTML page, for people. */
#include "audit/bundle.h"
#include "cli/cli.h"
#include "base/exitcode.h"
#include "runbook/graph.h"
#include "lang/json.h"
#include "runbook/load.h"
#include "base/mem.h"
#include "runbook/model.h"
#include "audit/runview.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static long long parse(const rbk_cmd *cmd, int argc, char **argv, const char **out, const char **home, bool *html, int *rc)
{
	static const struct option opts[] = {{"output", required_argument, 0, 'o'}, {"home", required_argument, 0, 'H'}, {"store", required_argument, 0, RBK_OPT_STORE},
					     {"html", no_argument, 0, 't'}, {0, 0, 0, 0}};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:", opts, NULL)) != -1) {
		if (c == 'o')
			*out = optarg;
		else if (c == 'H')
			*home = optarg;
		else if (c == RBK_OPT_STORE)
			rbk_cli_set_store(optarg);
		else if (c == 't' && html)
			*html = true;
		else {
			*rc = rbk_cli_option_error(cmd, c, argv[optind - 1]);
			return 0;
		}
	}
	return rbk_cli_run_number(cmd, argc, argv, optind, rc);
}

static int export_run(int argc, char **argv)
{
	const char *out_path = NULL, *home_opt = NULL;
	int rc = RBK_EXIT_OK;
	long long id = parse(&rbk_cmd_export, argc, argv, &out_path, &home_opt, NULL, &rc);
	if (!id)
		return rc;
	rbk_store *s;
	char *home;
	if (rbk_cli_open_store(home_opt, &s, &home) < 0) {
		rbk_free(home);
		return RBK_EXIT_FAILED;
	}
	FILE *out = out_path ? fopen(out_path, "w") : stdout;
	rbk_err e = {0};
	char *seal_dir = NULL;
	rbk_store_meta_get(s, "seal.git_dir", &seal_dir, &e);
	if (!out) {
		fprintf(stderr, "rbk: error: cannot write %s\n", out_path);
		rc = RBK_EXIT_FAILED;
	} else if (rbk_bundle_export(s, id, seal_dir, out, &e) < 0) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		rc = e.code == RBK_ERR_NONAME ? RBK_EXIT_BADINPUT : RBK_EXIT_FAILED;
	}
	if (out && out != stdout && fclose(out) != 0) {
		fprintf(stderr, "rbk: error: cannot write %s\n", out_path);
		rc = RBK_EXIT_FAILED;
	}
	rbk_free(seal_dir);
	rbk_store_close(s);
	rbk_free(home);
	return rc;
}

/* ---- the HTML report ---- */

static void html_text(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

typedef struct {
	rbk_val visited, taken; /* state names; "from>to" edges */
	FILE *timeline;
} path_ctx;

static int collect(void *ctx, const rbk_store_event *ev)
{
	path_ctx *p = ctx;
	rbk_val d = rbk_val_null();
	if (rbk_json_parse(&d, ev->data, strlen(ev->data), NULL) == 0 && d.t == RBK_V_MAP) {
		const rbk_val *st = rbk_val_map_get(&d, "state"), *from = rbk_val_map_get(&d, "from"),
			      *to = rbk_val_map_get(&d, "to"), *start = rbk_val_map_get(&d, "start");
		if (st && st->t == RBK_V_STR)
			rbk_val_map_set(&p->visited, st->u.s.s, rbk_val_bool(true));
		if (start && start->t == RBK_V_STR)
			rbk_val_map_set(&p->visited, start->u.s.s, rbk_val_bool(true));
		if (!strcmp(ev->kind, "transition") && from && to && from->t == RBK_V_STR && to->t == RBK_V_STR) {
			char *k = rbk_xasprintf("%s>%s", from->u.s.s, to->u.s.s);
			rbk_val_map_set(&p->taken, k, rbk_val_bool(true));
			rbk_val_map_set(&p->visited, to->u.s.s, rbk_val_bool(true));
			rbk_free(k);
		}
	}
	rbk_val_free(&d);
	rbk_runview_event_line(p->timeline, ev);
	return 0;
}

/* The graph as SVG through Graphviz (`dot`), with the path taken drawn
 * bold and the visited states filled. Without dot, NULL. */
static char *render_svg(const rbk_runbook *rb, path_ctx *p)
{
	char *dotsrc = NULL;
	size_t dlen = 0;
	FILE *m = open_memstream(&dotsrc, &dlen);
	rbk_graph_write(rb, RBK_GRAPH_DOT, m);
	fclose(m);
	/* Highlight by appending attribute statements before the final brace. */
	rbk_buf b = {0};
	char *brace = strrchr(dotsrc, '}');
	rbk_buf_add(&b, dotsrc, brace ? (size_t)(brace - dotsrc) : dlen);
	for (size_t i = 0; i < p->visited.u.map.n; i++)
		rbk_buf_printf(&b, "  \"%s\" [penwidth=3, color=\"#1565c0\"];\n", p->visited.u.map.keys[i]);
	for (size_t i = 0; i < p->taken.u.map.n; i++) {
		const char *k = p->taken.u.map.keys[i], *gt = strchr(k, '>');
		rbk_buf_printf(&b, "  \"%.*s\" -> \"%s\" [penwidth=3, color=\"#1565c0\"];\n", (int)(gt - k), k, gt + 1);
	}
	rbk_buf_puts(&b, "}\n");
	free(dotsrc);
	char *out = rbk_graph_svg(b.s, b.len);
	rbk_buf_free(&b);
	return out;
}

static int report(int argc, char **argv)
{
	const char *out_path = NULL, *home_opt = NULL;
	bool html = false;
	int rc = RBK_EXIT_OK;
	long long id = parse(&rbk_cmd_report, argc, argv, &out_path, &home_opt, &html, &rc);
	if (!id)
		return rc;
	(void)html; /* HTML is the one format: --html may be given or not */
	rbk_store *s;
	char *home;
	rbk_err e = {0};
	rbk_store_run r;
	if ((rc = rbk_cli_open_run(home_opt, id, &s, &home, &r)) != 0)
		return rc;
	char *bytes = NULL, *timeline = NULL;
	size_t len = 0, tlen = 0;
	rbk_doc *doc = NULL;
	rbk_runbook *rb = NULL;
	rbk_diag dg = {0};
	rbk_store_source(s, r.source_sha256, &bytes, &len, &e);
	if (bytes && rbk_load_bytes(&doc, r.runbook, bytes, len, &dg) == 0)
		rbk_model_build(&rb, doc, &dg);
	rbk_diag_free(&dg);
	path_ctx p = {rbk_val_map(), rbk_val_map(), open_memstream(&timeline, &tlen)};
	rbk_store_timeline(s, id, collect, &p, &e);
	fclose(p.timeline);
	char *svg = rb ? render_svg(rb, &p) : NULL;
	FILE *f = out_path ? fopen(out_path, "w") : stdout;
	if (!f) {
		fprintf(stderr, "rbk: error: cannot write %s\n", out_path);
		rc = RBK_EXIT_FAILED;
	} else {
		const char *status = rbk_runview_status(s, home, &r);
		fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>rbk run ", f);
		fprintf(f, "%lld", id);
		fputs("</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
		      "pre{background:#f5f5f5;padding:1em;overflow-x:auto;font-size:12px}"
		      "td{padding:2px 12px 2px 0;vertical-align:top}.ok{color:#2e7d32}.bad{color:#c62828}</style>"
		      "</head><body>\n",
		      f);
		fprintf(f, "<h1>Run %lld: ", id);
		html_text(f, r.runbook);
		fprintf(f, "</h1>\n<table><tr><td>status</td><td class=\"%s\">", !strcmp(status, "succeeded") ? "ok" : "bad");
		html_text(f, status);
		fputs("</td></tr><tr><td>actor</td><td>", f);
		html_text(f, r.actor);
		fputs("</td></tr><tr><td>started</td><td>", f);
		html_text(f, r.created_at);
		fputs("</td></tr><tr><td>updated</td><td>", f);
		html_text(f, r.updated_at);
		fputs("</td></tr><tr><td>definition</td><td>sha256:", f);
		html_text(f, r.source_sha256);
		fputs("</td></tr><tr><td>params</td><td>", f);
		html_text(f, r.params_json);
		fputs("</td></tr></table>\n<h2>The machine, and the path this run took</h2>\n", f);
		if (svg)
			fputs(svg, f);
		else
			fputs("<p>(Graphviz's <code>dot</code> is not installed: no picture.)</p>", f);
		fputs("\n<h2>Timeline</h2>\n<pre>", f);
		html_text(f, timeline);
		fputs("</pre>\n<h2>Definition</h2>\n<pre>", f);
		html_text(f, bytes ? bytes : "");
		fputs("</pre>\n</body></html>\n", f);
		if (f != stdout && fclose(f) != 0)
			rc = RBK_EXIT_FAILED;
	}
	rbk_free(svg);
	free(timeline);
	rbk_val_free(&p.visited);
	rbk_val_free(&p.taken);
	rbk_model_free(rb);
	rbk_doc_free(doc);
	rbk_free(bytes);
	rbk_store_run_free(&r);
	rbk_store_close(s);
	rbk_free(home);
	return rc;
}

const rbk_cmd rbk_cmd_export = {"export", "RUN [-o FILE]",
				"a run as a self-contained bundle (events, source, chain proof) for rbk verify --bundle", export_run};
const rbk_cmd rbk_cmd_report = {"report", "RUN [--html] [-o FILE]",
				"a run as one HTML page: its graph with the path taken, its timeline, its definition", report};
