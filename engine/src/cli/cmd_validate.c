/* rbk validate FILE...: load and check each file; report every error. */
#include "cli/cli.h"
#include "base/exitcode.h"
#include "base/mem.h"

#include <stdio.h>
#include <string.h>

static int run(int argc, char **argv)
{
	int quiet = 0, first = 1;
	for (; first < argc && argv[first][0] == '-'; first++) {
		if (!strcmp(argv[first], "-q") || !strcmp(argv[first], "--quiet"))
			quiet = 1;
		else if (!strcmp(argv[first], "--")) {
			first++;
			break;
		} else
			return rbk_cli_usage_error(&rbk_cmd_validate, "unknown option '%s'", argv[first]);
	}
	if (first >= argc)
		return rbk_cli_usage_error(&rbk_cmd_validate, "no file given");
	int bad = 0;
	/* Names must be unique across the files validated together. */
	char **names = rbk_xcalloc((size_t)argc, sizeof *names), **paths = rbk_xcalloc((size_t)argc, sizeof *paths);
	size_t nnames = 0;
	for (int i = first; i < argc; i++) {
		rbk_diag d = {0};
		rbk_cli_runbook r;
		if (rbk_cli_load(&r, argv[i], true, &d) == 0) {
			for (size_t j = 0; j < nnames; j++)
				if (!strcmp(names[j], r.rb->name)) {
					const rbk_node *n = rbk_node_get(r.doc->root, "name");
					rbk_diag_error(&d, r.path, n->line, n->col,
						       "runbook name '%s' is already used by %s", r.rb->name, paths[j]);
				}
			names[nnames] = rbk_xstrdup(r.rb->name);
			paths[nnames++] = rbk_xstrdup(r.path);
		}
		if (d.n) {
			bad++;
			rbk_diag_print(&d, stderr);
		} else if (!quiet) {
			printf("%s: ok (%zu state%s)\n", r.path, r.rb->nstates, r.rb->nstates == 1 ? "" : "s");
		}
		rbk_cli_runbook_free(&r); /* zeroed by a failed load: freeing is a no-op */
		rbk_diag_free(&d);
	}
	for (size_t j = 0; j < nnames; j++) {
		rbk_free(names[j]);
		rbk_free(paths[j]);
	}
	rbk_free(names);
	rbk_free(paths);
	/* The shared notifications every run on the path sends through. */
	rbk_cli_notify_shared();
	if (rbk_cli_notify_broken())
		bad++;
	return bad ? RBK_EXIT_BADINPUT : RBK_EXIT_OK;
}

const rbk_cmd rbk_cmd_validate = {"validate", "[-q] FILE...", "check runbooks against the format; report every error", run};
