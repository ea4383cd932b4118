/* rbk graph FILE [--format dot|mermaid|svg]: draw the machine. */
#include "cli/cli.h"
#include "base/exitcode.h"
#include "base/mem.h"
#include "runbook/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int run(int argc, char **argv)
{
	const char *file = NULL;
	rbk_graph_format fmt = RBK_GRAPH_DOT;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		if (!strcmp(a, "--format")) {
			if (++i >= argc)
				return rbk_cli_usage_error(&rbk_cmd_graph, "--format needs dot, mermaid or svg");
			val = argv[i];
		} else if (!strncmp(a, "--format=", 9))
			val = a + 9;
		else if (a[0] == '-')
			return rbk_cli_usage_error(&rbk_cmd_graph, "unknown option '%s'", a);
		else if (file)
			return rbk_cli_usage_error(&rbk_cmd_graph, "one runbook at a time");
		else
			file = a;
		if (val && !strcmp(val, "dot"))
			fmt = RBK_GRAPH_DOT;
		else if (val && !strcmp(val, "mermaid"))
			fmt = RBK_GRAPH_MERMAID;
		else if (val && !strcmp(val, "svg"))
			fmt = RBK_GRAPH_SVG;
		else if (val)
			return rbk_cli_usage_error(&rbk_cmd_graph, "unknown format '%s' (dot, mermaid or svg)", val);
	}
	if (!file)
		return rbk_cli_usage_error(&rbk_cmd_graph, "no runbook given");
	rbk_diag d = {0};
	rbk_cli_runbook r;
	if (rbk_cli_load(&r, file, true, &d) < 0) {
		rbk_diag_print(&d, stderr);
		rbk_diag_free(&d);
		return RBK_EXIT_BADINPUT;
	}
	int rc = RBK_EXIT_OK;
	if (fmt == RBK_GRAPH_SVG) {
		/* Graphviz draws it: the console shows this picture. */
		char *dot = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&dot, &len);
		rbk_graph_write(r.rb, RBK_GRAPH_DOT, m);
		fclose(m);
		char *svg = rbk_graph_svg(dot, len);
		free(dot);
		if (svg)
			fputs(svg, stdout);
		else {
			fprintf(stderr, "rbk: error: Graphviz's dot is not installed or failed: no SVG\n");
			rc = RBK_EXIT_FAILED;
		}
		rbk_free(svg);
	} else {
		rbk_graph_write(r.rb, fmt, stdout);
	}
	rbk_cli_runbook_free(&r);
	rbk_diag_free(&d);
	return rc;
}

const rbk_cmd rbk_cmd_graph = {"graph", "NAME|FILE [--format dot|mermaid|svg]", "draw the state machine (Graphviz DOT, Mermaid, or SVG through dot)", run};
