/* rbk plugins [FILE...]: list plugins, their actions, params and outputs. */
#include "cli/cli.h"
#include "base/exitcode.h"
#include "base/mem.h"
#include "exec/registry.h"

#include <stdio.h>
#include <string.h>

static void describe(const rbk_registry *r)
{
	const rbk_plugin *last = NULL;
	for (size_t i = 0; i < rbk_reg_count(r); i++) {
		const rbk_reg_action *a = rbk_reg_at(r, i);
		if (a->plugin != last) {
			printf("%s%s %s (%s)\n", last ? "\n" : "", a->plugin->name, a->plugin->version, a->file);
			last = a->plugin;
		}
		printf("  %s: %s%s\n", a->full_name, a->action->summary ? a->action->summary : "",
		       a->action->idempotent ? " [idempotent]" : "");
		for (const rbk_param_decl *p = a->action->params; p->name; p++) {
			printf("    %-16s %-8s %s%s", p->name, rbk_reg_type_name(p->type), p->required ? "required" : "optional",
			       p->description ? ": " : "");
			printf("%s", p->description ? p->description : "");
			if (p->default_text)
				printf(" (default %s)", p->default_text);
			putchar('\n');
		}
		if (a->action->outputs) {
			fputs("    outputs:", stdout);
			for (const rbk_output_decl *o = a->action->outputs; o->name; o++)
				printf(" %s (%s)%s", o->name, rbk_reg_type_name(o->type), o[1].name ? "," : "");
			putchar('\n');
		}
	}
}

static int run(int argc, char **argv)
{
	rbk_diag d = {0};
	int rc = RBK_EXIT_OK;
	if (argc > 1) {
		/* Explicit files: load just these (a plugin author's check). */
		rbk_registry *r = rbk_reg_new();
		for (int i = 1; i < argc; i++) {
			if (argv[i][0] == '-')
				return rbk_cli_usage_error(&rbk_cmd_plugins, "unknown option '%s'", argv[i]);
			if (rbk_reg_load_file(r, argv[i], &d) < 0)
				rc = RBK_EXIT_FAILED;
		}
		rbk_diag_print(&d, stderr);
		describe(r);
		rbk_reg_free(r);
	} else {
		rbk_registry *r = rbk_cli_registry();
		rbk_reg_load_all(r, &d);
		rbk_diag_print(&d, stderr);
		describe(r);
	}
	rbk_diag_free(&d);
	return rc;
}

const rbk_cmd rbk_cmd_plugins = {"plugins", "[PLUGIN.so...]", "list plugins, their actions, params and outputs", run};
