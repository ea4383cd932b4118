/* rbk runbooks [--json]: the runbooks on the search path, with their
 * params, as rbk run would find them by name (the first directory wins;
 * names starting with _ are never runbooks). What the console's runbook
 * page and its launch form are made from. */
#include "cli/cli.h"
#include "base/dirlist.h"
#include "base/exitcode.h"
#include "base/mem.h"
#include "lang/json.h"
#include "runbook/node.h"

#include <stdio.h>
#include <string.h>

static const char *const type_names[] = {"string", "int", "number", "bool", "duration", "enum"};

static bool runbook_file(const char *name)
{
	return name[0] != '_' && name[0] != '.' && rbk_check_runbook_file(name);
}

typedef struct {
	rbk_val list, seen;
	int bad;
} listing;

static rbk_val param_val(const rbk_param *p)
{
	rbk_val m = rbk_val_map();
	rbk_val_map_set(&m, "name", rbk_val_str(p->name));
	rbk_val_map_set(&m, "type", rbk_val_str(type_names[p->type]));
	rbk_val_map_set(&m, "required", rbk_val_bool(p->required));
	rbk_val_map_set(&m, "secret", rbk_val_bool(p->secret));
	/* A secret's default is not shown, as nowhere else. */
	rbk_val_map_set(&m, "default", p->def && p->def->text && !p->secret ? rbk_val_str(p->def->text) : rbk_val_null());
	rbk_val_map_set(&m, "description", p->description ? rbk_val_str(p->description) : rbk_val_null());
	if (p->env)
		rbk_val_map_set(&m, "env", rbk_val_str(p->env));
	if (p->has_min)
		rbk_val_map_set(&m, "min", rbk_val_num(p->min));
	if (p->has_max)
		rbk_val_map_set(&m, "max", rbk_val_num(p->max));
	if (p->pattern)
		rbk_val_map_set(&m, "pattern", rbk_val_str(p->pattern));
	if (p->nvalues) {
		rbk_val v = rbk_val_list();
		for (size_t i = 0; i < p->nvalues; i++)
			rbk_val_list_push(&v, rbk_val_str(p->values[i]));
		rbk_val_map_set(&m, "values", v);
	}
	return m;
}

static void add(void *ctx, const char *dir, const char *name)
{
	listing *l = ctx;
	char *path = rbk_xasprintf("%s/%s", dir, name);
	rbk_diag d = {0};
	rbk_cli_runbook r;
	rbk_val m = rbk_val_map();
	if (rbk_cli_load(&r, path, true, &d) < 0) {
		size_t n = strcspn(name, ".");
		char *nm = rbk_xasprintf("%.*s", (int)n, name);
		if (!rbk_val_map_get(&l->seen, nm)) {
			rbk_val_map_set(&m, "name", rbk_val_str(nm));
			rbk_val_map_set(&m, "path", rbk_val_str(path));
			rbk_val_map_set(&m, "valid", rbk_val_bool(false));
			rbk_val_map_set(&l->seen, nm, rbk_val_null());
			rbk_val_list_push(&l->list, m);
			l->bad++;
		} else
			rbk_val_free(&m);
		rbk_free(nm);
	} else {
		const rbk_runbook *rb = r.rb;
		if (!rbk_val_map_get(&l->seen, rb->name)) {
			rbk_val_map_set(&m, "name", rbk_val_str(rb->name));
			rbk_val_map_set(&m, "path", rbk_val_str(path));
			rbk_val_map_set(&m, "valid", rbk_val_bool(true));
			rbk_val_map_set(&m, "title", rb->title ? rbk_val_str(rb->title) : rbk_val_null());
			rbk_val_map_set(&m, "description", rb->description ? rbk_val_str(rb->description) : rbk_val_null());
			rbk_val_map_set(&m, "queue", rb->queue ? rbk_val_str(rb->queue) : rbk_val_null());
			rbk_val_map_set(&m, "states", rbk_val_int((int64_t)rb->nstates));
			rbk_val_map_set(&m, "schedules", rbk_val_int((int64_t)rb->nschedules));
			rbk_val ps = rbk_val_list();
			for (size_t i = 0; i < rb->nparams; i++)
				rbk_val_list_push(&ps, param_val(&rb->params[i]));
			rbk_val_map_set(&m, "params", ps);
			rbk_val_map_set(&l->seen, rb->name, rbk_val_null());
			rbk_val_list_push(&l->list, m);
		} else
			rbk_val_free(&m);
		rbk_cli_runbook_free(&r);
	}
	rbk_diag_free(&d);
	rbk_free(path);
}

static int runbooks(int argc, char **argv)
{
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else
			return rbk_cli_usage_error(&rbk_cmd_runbooks, "unexpected argument '%s'", argv[i]);
	}
	listing l = {rbk_val_list(), rbk_val_map(), 0};
	rbk_dir_each(rbk_cli_search_path(), runbook_file, add, &l);
	if (json) {
		rbk_val out = rbk_val_map();
		rbk_val_map_set(&out, "runbooks", l.list);
		char *t = rbk_json_encode(&out);
		puts(t);
		rbk_free(t);
		rbk_val_free(&out);
	} else {
		for (size_t i = 0; i < l.list.u.list.n; i++) {
			const rbk_val *m = &l.list.u.list.items[i], *t = rbk_val_map_get(m, "title");
			printf("%-24s %s\n", rbk_val_map_get(m, "name")->u.s.s,
			       !rbk_val_map_get(m, "valid")->u.b ? "(invalid: rbk validate tells why)"
			       : t && t->t == RBK_V_STR	    ? t->u.s.s
							    : "");
		}
		rbk_val_free(&l.list);
	}
	rbk_val_free(&l.seen);
	return RBK_EXIT_OK;
}

const rbk_cmd rbk_cmd_runbooks = {"runbooks", "[--json]",
				  "the runbooks on the search path, with their params (what rbk run NAME finds)", runbooks};
