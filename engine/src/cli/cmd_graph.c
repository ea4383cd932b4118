/* rbk graph FILE [--format dot|mermaid]: draw the machine. */
#include "cli/cli.h"
#include "base/exitcode.h"
#include "runbook/graph.h"

#include <stdio.h>
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
				return rbk_cli_usage_error(&rbk_cmd_graph, "--format needs dot or mermaid");
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
		else if (val)
			return rbk_cli_usage_error(&rbk_cmd_graph, "unknown format '%s' (dot or mermaid)", val);
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
	rbk_graph_write(r.rb, fmt, stdout);
	rbk_cli_runbook_free(&r);
	rbk_diag_free(&d);
	return RBK_EXIT_OK;
}

const rbk_cmd rbk_cmd_graph = {"graph", "NAME|FILE [--format dot|mermaid]", "draw the state machine (Graphviz DOT or Mermaid)", run};
