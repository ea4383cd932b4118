/* Unit tests for check (semantic checks of a model, with a fake action
 * catalogue and a temporary runbook search path) and graph (DOT and
 * Mermaid output). */
#include "runbook/check.h"
#include "runbook/graph.h"
#include "runbook/load.h"
#include "runbook/model.h"
#include "t.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---- */

typedef struct {
	rbk_diag d;
	rbk_doc *doc;
	rbk_runbook *rb;
	int n; /* rbk_check's result; -1 when the model did not build */
} cx;

static cx C(const char *src, const rbk_check_opts *opts)
{
	cx c = {0};
	if (rbk_load_bytes(&c.doc, "c.yaml", src, strlen(src), &c.d) < 0 ||
	    rbk_model_build(&c.rb, c.doc, &c.d) < 0) {
		printf("# the model did not build:\n");
		for (size_t i = 0; i < c.d.n; i++)
			printf("#   %d:%d: %s\n", c.d.items[i].line, c.d.items[i].col, c.d.items[i].msg);
		c.n = -1;
		return c;
	}
	c.n = rbk_check(c.rb, opts, &c.d);
	if (c.n != (int)c.d.n)
		printf("# rbk_check returned %d with %zu diagnostics\n", c.n, c.d.n);
	return c;
}

static void X(cx *c)
{
	rbk_model_free(c->rb);
	rbk_doc_free(c->doc);
	rbk_diag_free(&c->d);
}

static void dump(const cx *c)
{
	for (size_t i = 0; i < c->d.n; i++)
		printf("#   %d:%d: %s\n", c->d.items[i].line, c->d.items[i].col, c->d.items[i].msg);
}

static int has(const cx *c, int line, int col, const char *sub)
{
	for (size_t i = 0; i < c->d.n; i++)
		if (c->d.items[i].line == line && c->d.items[i].col == col && strstr(c->d.items[i].msg, sub))
			return 1;
	printf("# wanted %d:%d: ...%s... among %zu:\n", line, col, sub, c->d.n);
	dump(c);
	return 0;
}

static int only(const cx *c, int line, int col, const char *sub)
{
	if (c->n != 1 || c->d.n != 1) {
		printf("# wanted one error (%d:%d %s), got %d:\n", line, col, sub, c->n);
		dump(c);
		return 0;
	}
	return has(c, line, col, sub);
}

static int clean(const cx *c)
{
	if (c->n == 0 && c->d.n == 0)
		return 1;
	printf("# wanted no errors, got %d:\n", c->n);
	dump(c);
	return 0;
}

static int any_msg(const cx *c, const char *sub)
{
	for (size_t i = 0; i < c->d.n; i++)
		if (strstr(c->d.items[i].msg, sub))
			return 1;
	return 0;
}

/* A runbook with params p (string), n (int) and a var v; state 'a' (line
 * 10) has body (first body line is line 11, keys at column 5) and goes on to the
 * end state 'done'. */
static char srcbuf[8192];
#define HEAD9                                                                                                  \
	"rbk: 1\nname: t\nparams:\n  p: {type: string, default: x}\n  n: {type: int, default: 1}\nvars:\n  v: 1\n" \
	"start: a\nstates:\n"
static cx ST(const char *body, const rbk_check_opts *o)
{
	snprintf(srcbuf, sizeof srcbuf, HEAD9 "  a:\n%s  done: {end: success}\n", body);
	return C(srcbuf, o);
}

/* A guard in state 'a' (a decision): "      - if: GUARD" is line 12, and the
 * guard's first character is at column 13. */
static cx G(const char *guard, const rbk_check_opts *o)
{
	char body[1024];
	snprintf(body, sizeof body, "    next:\n      - if: %s\n        to: done\n      - to: done\n", guard);
	return ST(body, o);
}

/* ---- fake action catalogue ---- */

typedef struct {
	int has_calls, check_calls, output_calls;
	const rbk_node *with[8];
	char action[8][32];
	char file[8][64];
	rbk_pos where[8];
} fake;

static int f_has_action(void *ctx, const char *action)
{
	fake *f = ctx;
	f->has_calls++;
	return !strcmp(action, "shell.exec") || !strcmp(action, "http.get");
}

static void f_check_params(void *ctx, const char *action, const rbk_node *with, const char *file,
			   const rbk_pos *where, rbk_diag *d)
{
	fake *f = ctx;
	int i = f->check_calls++;
	if (i < 8) {
		f->with[i] = with;
		snprintf(f->action[i], sizeof f->action[i], "%s", action);
		snprintf(f->file[i], sizeof f->file[i], "%s", file);
		f->where[i] = *where;
	}
	/* the fake's param table: http.get needs url; nothing takes "bogus" */
	const rbk_node *b = rbk_node_get(with, "bogus");
	if (b)
		rbk_diag_error(d, file, b->line, b->col, "%s has no param 'bogus'", action);
	if (!strcmp(action, "http.get") && !rbk_node_get(with, "url"))
		rbk_diag_error(d, file, where->line, where->col, "http.get needs 'url'");
}

static int f_has_output(void *ctx, const char *action, const char *name)
{
	fake *f = ctx;
	f->output_calls++;
	if (!strcmp(action, "http.get"))
		return !strcmp(name, "status") || !strcmp(name, "body");
	return 1; /* shell.exec declares no outputs */
}

static int f_has_plugin(void *ctx, const char *plugin)
{
	(void)ctx;
	return !strcmp(plugin, "shell") || !strcmp(plugin, "http");
}

static const char *f_suggest(void *ctx, const char *word, int plugin_names)
{
	(void)ctx;
	if (plugin_names)
		return !strcmp(word, "shel") ? "shell" : NULL;
	return !strcmp(word, "shell.exce") ? "shell.exec" : NULL;
}

static fake FK;
/* Without has_plugin and suggest: every plugin counts as loaded. */
static const rbk_check_actions CAT = {
	.ctx = &FK, .has_action = f_has_action, .check_params = f_check_params, .has_output = f_has_output};
static const rbk_check_opts WITH_CAT = {NULL, &CAT};
/* With them: only shell and http are loaded. */
static const rbk_check_actions CAT2 = {.ctx = &FK,
				       .has_action = f_has_action,
				       .check_params = f_check_params,
				       .has_output = f_has_output,
				       .has_plugin = f_has_plugin,
				       .suggest = f_suggest};
static const rbk_check_opts WITH_CAT2 = {NULL, &CAT2};

/* ---- graph: states, edges, reachability ---- */

static void test_valid_runbook_clean(void)
{
	cx c = C("rbk: 1\nname: t\nparams:\n  host: {type: string, default: db1}\nstart: a\nstates:\n"
		 "  a:\n    do: shell.exec\n    with: {argv: [ping, \"{{ params.host }}\"]}\n    next: b\n"
		 "    on_failure: rollback\n"
		 "  b:\n    next:\n      - if: steps.a.exit_code == 0\n        to: done\n      - to: failed\n"
		 "  done: {end: success}\n  failed: {end: failure}\n",
		 NULL);
	T_CHECK(clean(&c));
	X(&c);
}

static void test_undefined_start(void)
{
	cx c = C("rbk: 1\nname: t\nstart: nope\nstates:\n  a: {end: success}\n", NULL);
	T_CHECK(only(&c, 3, 8, "no state named 'nope'"));
	T_CHECK(!any_msg(&c, "on_failure takes")); /* start is not a failure target */
	X(&c);
}

static void test_undefined_next_targets(void)
{
	cx c = ST("    do: shell.exec\n    next: dne\n", NULL);
	T_CHECK(only(&c, 12, 11, "no state named 'dne'"));
	X(&c);
	c = ST("    next:\n      - if: \"true\"\n        to: done\n      - to: gone\n", NULL);
	T_CHECK(only(&c, 14, 13, "no state named 'gone'"));
	X(&c);
	/* rollback and fail are not states in 'next' */
	c = ST("    do: shell.exec\n    next: rollback\n", NULL);
	T_CHECK(only(&c, 12, 11, "no state named 'rollback'"));
	X(&c);
}

static void test_undefined_on_failure(void)
{
	cx c = ST("    do: shell.exec\n    next: done\n    on_failure: cleanup\n", NULL);
	T_CHECK(only(&c, 13, 17, "no state named 'cleanup' (on_failure takes a state, 'rollback' or 'fail')"));
	X(&c);
	c = C("rbk: 1\nname: t\non_failure: undo_all\nstart: a\nstates:\n  a: {end: success}\n", NULL);
	T_CHECK(only(&c, 3, 13, "no state named 'undo_all' (on_failure takes a state, 'rollback' or 'fail')"));
	X(&c);
	c = ST("    do: shell.exec\n    next: done\n    on_failure: rollback\n", NULL);
	T_CHECK(clean(&c));
	X(&c);
	c = ST("    do: shell.exec\n    next: done\n    on_failure: fail\n", NULL);
	T_CHECK(clean(&c));
	X(&c);
}

static void test_unreachable_state(void)
{
	cx c = C("rbk: 1\nname: t\nstart: a\nstates:\n  a: {wait: 1s, next: done}\n"
		 "  orphan: {wait: 1s, next: done}\n  done: {end: success}\n",
		 NULL);
	T_CHECK(only(&c, 6, 3, "state 'orphan' is unreachable from the start state 'a'"));
	X(&c);
	/* reached only through a failure edge: reachable */
	c = C("rbk: 1\nname: t\nstart: a\nstates:\n  a: {wait: 1s, next: done, on_failure: cleanup}\n"
	      "  cleanup: {wait: 1s, next: failed}\n  done: {end: success}\n  failed: {end: failure}\n",
	      NULL);
	T_CHECK(clean(&c));
	X(&c);
	/* through the runbook's default failure edge too */
	c = C("rbk: 1\nname: t\non_failure: cleanup\nstart: a\nstates:\n  a: {wait: 1s, next: done}\n"
	      "  cleanup: {wait: 1s, next: failed}\n  done: {end: success}\n  failed: {end: failure}\n",
	      NULL);
	T_CHECK(clean(&c));
	X(&c);
}

static void test_no_path_to_end_cycle(void)
{
	cx c = C("rbk: 1\nname: t\nstart: a\nstates:\n"
		 "  a: {wait: 1s, next: b, on_failure: done}\n"
		 "  b:\n    next:\n      - if: \"true\"\n        to: a\n      - to: b\n"
		 "  done: {end: success}\n",
		 NULL);
	T_CHECK(c.n == 2);
	T_CHECK(has(&c, 5, 3, "state 'a' has no path to an end state through 'next'"));
	T_CHECK(has(&c, 6, 3, "state 'b' has no path to an end state through 'next'"));
	X(&c);
	/* a loop with a way out is fine */
	c = C("rbk: 1\nname: t\nstart: a\nstates:\n  a: {wait: 1s, next: b}\n"
	      "  b:\n    next:\n      - if: \"true\"\n        to: a\n      - to: done\n  done: {end: success}\n",
	      NULL);
	T_CHECK(clean(&c));
	X(&c);
}

static void test_no_end_state(void)
{
	cx c = C("rbk: 1\nname: t\nstart: a\nstates:\n  a: {wait: 1s, next: b}\n  b: {wait: 1s, next: a}\n", NULL);
	T_CHECK(only(&c, 5, 3, "the runbook has no end state (add one with 'end: success')"));
	X(&c);
}

static void test_dangling_edge_suppresses_reachability(void)
{
	/* without the dangling edge, orphan would be unreachable and a would have
	 * no path to an end: only the dangling edge is reported */
	cx c = C("rbk: 1\nname: t\nstart: a\nstates:\n  a: {wait: 1s, next: nowhere}\n"
		 "  orphan: {wait: 1s, next: done}\n  done: {end: success}\n",
		 NULL);
	T_CHECK(only(&c, 5, 23, "no state named 'nowhere'"));
	X(&c);
	c = C("rbk: 1\nname: t\nstart: zz\nstates:\n  a: {wait: 1s, next: done}\n  done: {end: success}\n", NULL);
	T_CHECK(only(&c, 3, 8, "no state named 'zz'"));
	X(&c);
}

static void test_several_dangling_edges_all_reported(void)
{
	cx c = C("rbk: 1\nname: t\nstart: a\non_failure: x1\nstates:\n"
		 "  a:\n    next:\n      - {if: \"true\", to: x2}\n      - {to: x3}\n    on_failure: x4\n"
		 "  done: {end: success}\n",
		 NULL);
	T_CHECK(c.n == 4);
	T_CHECK(has(&c, 4, 13, "no state named 'x1'"));
	T_CHECK(has(&c, 8, 26, "no state named 'x2'"));
	T_CHECK(has(&c, 9, 14, "no state named 'x3'"));
	T_CHECK(has(&c, 10, 17, "no state named 'x4'"));
	X(&c);
}

/* ---- names in guards, until, set, templates ---- */

static void test_guard_names_params(void)
{
	cx c = G("params.p == 'x' && params.n > 0", NULL);
	T_CHECK(clean(&c));
	X(&c);
	c = G("params.p == 'x' && params.nope > 0", NULL);
	T_CHECK(only(&c, 12, 32, "unknown name 'params.nope': no param 'nope' is declared"));
	X(&c);
	c = G("\"params.zz == 1\"", NULL);
	T_CHECK(only(&c, 12, 14, "unknown name 'params.zz'"));
	X(&c);
	c = G("params.p.q == 1", NULL);
	T_CHECK(only(&c, 12, 13, "unknown name 'params.p.q': a param is named params.NAME"));
	X(&c);
}

static void test_guard_names_vars_and_set(void)
{
	cx c = G("vars.v == 1", NULL);
	T_CHECK(clean(&c));
	X(&c);
	c = G("vars.w == 1", NULL);
	T_CHECK(only(&c, 12, 13, "unknown name 'vars.w': no variable 'w' is declared in 'vars' or assigned by 'set'"));
	X(&c);
	/* a variable created by set in another state */
	snprintf(srcbuf, sizeof srcbuf,
		 HEAD9 "  a:\n    next:\n      - if: vars.made > 1\n        to: done\n      - to: b\n"
		       "  b: {wait: 1s, next: done, set: {made: \"2\"}}\n  done: {end: success}\n");
	c = C(srcbuf, NULL);
	T_CHECK(clean(&c));
	X(&c);
	c = G("len(vars) > 0", NULL);
	T_CHECK(only(&c, 12, 17, "unknown name 'vars': a variable is named vars.NAME"));
	X(&c);
}

static void test_guard_names_run_and_roots(void)
{
	cx c = G("run.id != '' && run.name != '' && run.actor != '' && run.dry_run", NULL);
	T_CHECK(clean(&c));
	X(&c);
	c = G("run.user == 'x'", NULL);
	T_CHECK(only(&c, 12, 13, "unknown name 'run.user': run has id, name, actor and dry_run"));
	X(&c);
	c = G("env.HOME == 'x'", NULL);
	T_CHECK(only(&c, 12, 13, "unknown name 'env.HOME': names start with params, vars, run or steps"));
	X(&c);
	c = G("1 + host > 2", NULL);
	T_CHECK(only(&c, 12, 17, "unknown name 'host': names start with params, vars, run or steps"));
	X(&c);
}

static void test_guard_names_steps(void)
{
	cx c = G("steps.a.status == 'ok' && steps.a.exit_code == 0 && steps.a.stdout != '' && "
		 "steps.a.attempts > 0 && steps.a.duration_ms > 0 && steps.a.error == '' && steps.a.stderr == ''",
		 NULL);
	T_CHECK(clean(&c));
	X(&c);
	c = G("steps.zz.status == 'ok'", NULL);
	T_CHECK(only(&c, 12, 13, "unknown name 'steps.zz.status': no state 'zz'"));
	X(&c);
	c = G("steps.a.colour == 'ok'", NULL);
	T_CHECK(only(&c, 12, 13, "unknown name 'steps.a.colour': a step has status, exit_code"));
	X(&c);
	c = G("steps.a == 'ok'", NULL);
	T_CHECK(only(&c, 12, 13, "a step result is named steps.STATE.FIELD"));
	X(&c);
	c = G("steps.a.status.x == 'ok'", NULL);
	T_CHECK(only(&c, 12, 13, "a step result is named steps.STATE.FIELD"));
	X(&c);
	c = G("steps.a.out == 1", NULL);
	T_CHECK(only(&c, 12, 13, "an output is named steps.STATE.out.NAME"));
	X(&c);
	c = G("steps.a.out.anything == 1", NULL); /* no catalogue: outputs unchecked */
	T_CHECK(clean(&c));
	X(&c);
}

static void test_guard_names_several_columns(void)
{
	cx c = G("params.x == 1 || (vars.y && steps.q.status == 'ok')", NULL);
	T_CHECK(c.n == 3);
	T_CHECK(has(&c, 12, 13, "'params.x'"));
	T_CHECK(has(&c, 12, 31, "'vars.y'"));
	T_CHECK(has(&c, 12, 41, "'steps.q.status'"));
	X(&c);
	/* inside {{ }} in a quoted scalar */
	c = G("\"{{ 1 == params.x }}\"", NULL);
	T_CHECK(only(&c, 12, 22, "unknown name 'params.x'"));
	X(&c);
}

static void test_until_and_set_names(void)
{
	cx c = ST("    do: shell.exec\n    poll: {until: \"steps.a.exit_code == params.q\", every: 1s, for: 1m}\n"
		  "    next: done\n",
		  NULL);
	T_CHECK(only(&c, 12, 41, "unknown name 'params.q'"));
	X(&c);
	c = ST("    do: shell.exec\n    next: done\n    set:\n      total: \"vars.v + params.n + vars.nope\"\n", NULL);
	T_CHECK(only(&c, 14, 35, "unknown name 'vars.nope'"));
	X(&c);
	/* set creates the variable it assigns: it can read itself */
	c = ST("    do: shell.exec\n    next: done\n    set: {count: \"vars.count + 1\"}\n", NULL);
	T_CHECK(clean(&c));
	X(&c);
}

static void test_template_names_in_with(void)
{
	cx c = ST("    do: shell.exec\n    with:\n      argv: [echo, \"{{ params.p }} and {{ params.q }}\"]\n"
		  "      env:\n        X: \"{{ steps.nope.stdout }}\"\n    next: done\n",
		  NULL);
	T_CHECK(c.n == 2);
	T_CHECK(has(&c, 13, 43, "unknown name 'params.q': no param 'q' is declared"));
	T_CHECK(has(&c, 15, 16, "unknown name 'steps.nope.stdout': no state 'nope'"));
	X(&c);
	c = ST("    do: shell.exec\n    with: {argv: [\"{{ run.id }}-{{ vars.v }}\"], nested: {deep: [[\"{{ x }}\"]]}}\n"
	       "    next: done\n",
	       NULL);
	T_CHECK(only(&c, 12, 70, "unknown name 'x'"));
	X(&c);
}

static void test_template_names_elsewhere(void)
{
	cx c = C("rbk: 1\nname: t\nvars:\n  greeting: \"hi {{ params.who }}\"\nlock: \"l-{{ vars.nope }}\"\n"
		 "start: a\nstates:\n  a:\n    approval: {prompt: \"ok {{ run.bogus }}?\"}\n    next: done\n"
		 "  done: {end: success}\n",
		 NULL);
	T_CHECK(c.n == 3);
	T_CHECK(has(&c, 4, 20, "unknown name 'params.who'"));
	T_CHECK(has(&c, 5, 13, "unknown name 'vars.nope'"));
	T_CHECK(has(&c, 9, 31, "unknown name 'run.bogus'"));
	X(&c);
	/* names in the undo call and in a call state's with */
	c = ST("    do: shell.exec\n    undo: {do: shell.exec, with: {argv: [\"{{ params.gone }}\"]}}\n"
	       "    next: done\n",
	       NULL);
	T_CHECK(only(&c, 12, 46, "unknown name 'params.gone'"));
	X(&c);
}

static void test_template_inside_script(void)
{
	cx c = ST("    do: shell.exec\n    with: {script: \"echo {{ params.p }}\"}\n    next: done\n", NULL);
	T_CHECK(only(&c, 12, 26, "template inside 'script': a shell would parse the value; pass it through 'env:'"));
	X(&c);
	/* in an undo too, and the name is still checked */
	c = ST("    do: shell.exec\n    undo: {do: shell.exec, with: {script: \"rm {{ params.zz }}\"}}\n    next: done\n",
	       NULL);
	T_CHECK(c.n == 2);
	T_CHECK(has(&c, 12, 47, "template inside 'script'"));
	T_CHECK(has(&c, 12, 50, "unknown name 'params.zz'"));
	X(&c);
	/* env is the way: no error */
	c = ST("    do: shell.exec\n    with: {script: \"echo \\\"$P\\\"\", env: {P: \"{{ params.p }}\"}}\n    next: done\n",
	       NULL);
	T_CHECK(clean(&c));
	X(&c);
}

/* ---- schedules and params ---- */

#define SHEAD "rbk: 1\nname: t\nparams:\n  env: {type: string, default: x}\nschedule:\n"
#define STAIL "start: a\nstates:\n  a: {end: success}\n"

static void test_cron_errors(void)
{
	cx c = C(SHEAD "  - cron: 0 25 * * *\n" STAIL, NULL);
	T_CHECK(only(&c, 6, 13, "bad cron expression '0 25 * * *': hour 25 out of range 0-23"));
	X(&c);
	/* quoted (a cron starting with '*' must be): the column skips the quote */
	c = C(SHEAD "  - cron: \"0 25 * * *\"\n" STAIL, NULL);
	T_CHECK(only(&c, 6, 14, "hour 25 out of range"));
	X(&c);
	c = C(SHEAD "  - cron: \"*/0 * * * *\"\n" STAIL, NULL);
	T_CHECK(only(&c, 6, 14, "step must be at least 1"));
	X(&c);
	c = C(SHEAD "  - cron: 61 * * * *\n" STAIL, NULL);
	T_CHECK(only(&c, 6, 11, "minute 61 out of range 0-59"));
	X(&c);
	c = C(SHEAD "  - cron: \"* * * *\"\n" STAIL, NULL);
	T_CHECK(c.n == 1 && any_msg(&c, "expected 5 fields, got 4"));
	T_CHECK(c.d.n && c.d.items[0].line == 6);
	X(&c);
	c = C(SHEAD "  - cron: \"*/15 9-17 * * 1-5\"\n    timezone: Europe/Lisbon\n" STAIL, NULL);
	T_CHECK(clean(&c));
	X(&c);
}

static void test_timezone_errors(void)
{
	cx c = C(SHEAD "  - cron: 0 3 * * *\n    timezone: Mars/Olympus\n" STAIL, NULL);
	T_CHECK(only(&c, 7, 15, "unknown time zone 'Mars/Olympus' (an IANA name such as Europe/Lisbon)"));
	X(&c);
	c = C(SHEAD "  - cron: 0 3 * * *\n    timezone: ../../etc/passwd\n" STAIL, NULL);
	T_CHECK(only(&c, 7, 15, "unknown time zone '../../etc/passwd'"));
	X(&c);
	c = C(SHEAD "  - cron: 0 3 * * *\n    timezone: America/New_York\n" STAIL, NULL);
	T_CHECK(clean(&c));
	X(&c);
}

static void test_schedule_params_undeclared(void)
{
	cx c = C(SHEAD "  - cron: 0 3 * * *\n    params: {env: prod, region: eu, zone: a}\n" STAIL, NULL);
	T_CHECK(c.n == 2);
	T_CHECK(has(&c, 7, 25, "schedule sets param 'region', which is not declared"));
	T_CHECK(has(&c, 7, 37, "schedule sets param 'zone', which is not declared"));
	X(&c);
}

#define PHEAD "rbk: 1\nname: t\nparams:\n"
static void test_param_pattern_checks(void)
{
	cx c = C(PHEAD "  x: {type: string, pattern: \"[a-\"}\n" STAIL, NULL);
	T_CHECK(only(&c, 4, 30, "bad pattern of param 'x': "));
	X(&c);
	c = C(PHEAD "  x: {type: string, pattern: \"[a-z]+\", default: abc1}\n" STAIL, NULL);
	T_CHECK(only(&c, 4, 49, "default of param 'x' does not match its pattern"));
	X(&c);
	/* the pattern must match the whole default */
	c = C(PHEAD "  x: {type: string, pattern: \"[a-z]+\", default: \"1abc\"}\n" STAIL, NULL);
	T_CHECK(only(&c, 4, 49, "does not match its pattern"));
	X(&c);
	c = C(PHEAD "  x: {type: string, pattern: \"[a-z]+|[0-9]+\", default: \"123\"}\n" STAIL, NULL);
	T_CHECK(clean(&c));
	X(&c);
}

static void test_param_default_min_max(void)
{
	cx c = C(PHEAD "  x: {type: int, min: 1, max: 10, default: 0}\n" STAIL, NULL);
	T_CHECK(only(&c, 4, 44, "default of param 'x' is outside its min/max"));
	X(&c);
	c = C(PHEAD "  x: {type: number, max: 1.5, default: 1.75}\n" STAIL, NULL);
	T_CHECK(only(&c, 4, 40, "default of param 'x' is outside its min/max"));
	X(&c);
	c = C(PHEAD "  x: {type: int, min: 1, max: 10, default: 10}\n  y: {type: number, min: -1, default: -1}\n" STAIL,
	      NULL);
	T_CHECK(clean(&c));
	X(&c);
}

/* ---- called runbooks ---- */

static char dir1[64], dir2[64];

static void put(const char *dir, const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static const char CHILD[] = "rbk: 1\nname: child\nparams:\n  p: {type: string}\n"
			    "  count: {type: int, default: 1, min: 1, max: 5}\n"
			    "  mode: {type: enum, values: [fast, slow], default: fast}\n"
			    "start: a\nstates:\n  a: {end: success}\n";
static const char PLAIN[] = "rbk: 1\nname: other\nstart: a\nstates:\n  a: {end: success}\n";

static void test_find_runbook(void)
{
	char path[200];
	snprintf(path, sizeof path, "%s:%s", dir1, dir2);
	char *f = rbk_check_find_runbook(path, "child");
	char want[256];
	snprintf(want, sizeof want, "%s/child.yaml", dir1);
	T_STREQ(f, want);
	free(f);
	f = rbk_check_find_runbook(path, "other");
	snprintf(want, sizeof want, "%s/other.yml", dir2);
	T_STREQ(f, want);
	free(f);
	T_CHECK(rbk_check_find_runbook(path, "absent") == NULL);
	T_CHECK(rbk_check_find_runbook(NULL, "child") == NULL);
	T_CHECK(rbk_check_find_runbook("", "child") == NULL);
	/* the first directory on the path wins */
	snprintf(path, sizeof path, "%s:%s", dir2, dir1);
	f = rbk_check_find_runbook(path, "child");
	snprintf(want, sizeof want, "%s/child.yaml", dir2);
	T_STREQ(f, want);
	free(f);
}

static void test_call_not_on_path(void)
{
	cx c = ST("    call: child\n    next: done\n", NULL);
	T_CHECK(only(&c, 11, 11, "call: no runbook named 'child' on the path (no search path)"));
	X(&c);
	char path[200];
	snprintf(path, sizeof path, "%s:%s", dir1, dir2);
	rbk_check_opts o = {path, NULL};
	c = ST("    call: missing-one\n    next: done\n", &o);
	char want[300];
	snprintf(want, sizeof want, "call: no runbook named 'missing-one' on the path (%s)", path);
	T_CHECK(only(&c, 11, 11, want));
	X(&c);
}

static void test_call_found_on_path(void)
{
	char path[200];
	snprintf(path, sizeof path, "%s:%s", dir1, dir2);
	rbk_check_opts o = {path, NULL};
	cx c = ST("    call: child\n    with: {p: \"{{ params.p }}\", count: 5, mode: slow}\n    next: done\n", &o);
	T_CHECK(clean(&c));
	X(&c);
	c = ST("    call: other\n    next: done\n", &o); /* other.yml in the second directory */
	T_CHECK(clean(&c));
	X(&c);
	/* names in a call's with are checked */
	c = ST("    call: child\n    with: {p: \"{{ params.none }}\"}\n    next: done\n", &o);
	T_CHECK(only(&c, 12, 19, "unknown name 'params.none'"));
	X(&c);
	/* a runbook calling itself */
	c = ST("    call: t\n    next: done\n", &o);
	T_CHECK(only(&c, 11, 11, "call: runbook 't' calls itself"));
	X(&c);
}

/* ---- the action catalogue ---- */

static void test_call_params_against_child(void)
{
	char path[200];
	snprintf(path, sizeof path, "%s:%s", dir1, dir2);
	rbk_check_opts o = {path, NULL};
	cx c = ST("    call: child\n    next: done\n", &o);
	T_CHECK(only(&c, 11, 11, "call: runbook 'child' needs param 'p'"));
	X(&c);
	c = ST("    call: child\n    with: {p: x, colour: red}\n    next: done\n", &o);
	T_CHECK(only(&c, 12, 18, "call: runbook 'child' has no param 'colour'"));
	X(&c);
	c = ST("    call: child\n    with: {p: x, count: 9}\n    next: done\n", &o);
	T_CHECK(only(&c, 12, 25, "param 'count' must be at most 5, not 9"));
	X(&c);
	c = ST("    call: child\n    with: {p: x, count: many}\n    next: done\n", &o);
	T_CHECK(only(&c, 12, 25, "param 'count' must be an int, not 'many'"));
	X(&c);
	c = ST("    call: child\n    with: {p: 3, mode: medium}\n    next: done\n", &o);
	T_CHECK(c.n == 2);
	T_CHECK(has(&c, 12, 15, "param 'p' must be a string, not an integer"));
	T_CHECK(has(&c, 12, 24, "param 'mode' must be one of its values, not 'medium'"));
	X(&c);
	c = ST("    call: broken\n    next: done\n", &o);
	T_CHECK(only(&c, 11, 11, "call: runbook 'broken' ("));
	T_CHECK(any_msg(&c, "is not valid; run 'rbk validate"));
	X(&c);
}

static void test_schedule_param_values(void)
{
	cx c = C(SHEAD "  - cron: 0 3 * * *\n    params: {env: 5}\n" STAIL, NULL);
	T_CHECK(only(&c, 7, 19, "param 'env' must be a string, not an integer"));
	X(&c);
	c = C(SHEAD "  - cron: 0 3 * * *\n    params: {env: \"{{ run.id }}\"}\n" STAIL, NULL);
	T_CHECK(clean(&c)); /* templates are checked when they render */
	X(&c);
}

static void test_actions_unchecked_without_catalogue(void)
{
	cx c = ST("    do: nope.nothing\n    with: {bogus: 1}\n    next: done\n", NULL);
	T_CHECK(clean(&c));
	X(&c);
}

static void test_unknown_action(void)
{
	memset(&FK, 0, sizeof FK);
	cx c = ST("    do: nope.nothing\n    with: {bogus: 1}\n    next: done\n", &WITH_CAT);
	T_CHECK(only(&c, 11, 9, "unknown action 'nope.nothing'"));
	T_CHECK(any_msg(&c, "(see 'rbk plugins')") && !any_msg(&c, "did you mean"));
	T_CHECK(FK.check_calls == 0); /* params of an unknown action are not checked */
	X(&c);
	memset(&FK, 0, sizeof FK);
	c = ST("    do: shell.exec\n    undo: {do: nope.undo}\n    next: done\n", &WITH_CAT);
	T_CHECK(only(&c, 12, 16, "unknown action 'nope.undo'"));
	X(&c);
}

static void test_plugins_and_suggestions(void)
{
	/* an unknown action of a loaded plugin, with a suggestion */
	memset(&FK, 0, sizeof FK);
	cx c = ST("    do: shell.exce\n    next: done\n", &WITH_CAT2);
	T_CHECK(only(&c, 11, 9, "unknown action 'shell.exce' (did you mean 'shell.exec'?) (see 'rbk plugins')"));
	X(&c);
	/* without one */
	c = ST("    do: http.post\n    next: done\n", &WITH_CAT2);
	T_CHECK(only(&c, 11, 9, "unknown action 'http.post' (see 'rbk plugins')"));
	X(&c);
	/* a typo of a loaded plugin's name */
	c = ST("    do: shel.exec\n    next: done\n", &WITH_CAT2);
	T_CHECK(only(&c, 11, 9, "no plugin 'shel' is loaded (did you mean 'shell'?)"));
	X(&c);
	/* a plugin that is not loaded: its actions are not checked */
	c = ST("    do: kube.apply\n    with: {bogus: 1}\n    next: done\n", &WITH_CAT2);
	T_CHECK(clean(&c));
	X(&c);
}

static void test_check_params_gets_with(void)
{
	memset(&FK, 0, sizeof FK);
	cx c = ST("    do: shell.exec\n    with: {argv: [ls]}\n    undo: {do: http.get, with: {url: x}}\n    next: done\n",
		  &WITH_CAT);
	T_CHECK(clean(&c));
	T_CHECK(FK.check_calls == 2);
	if (c.rb && FK.check_calls == 2) {
		const rbk_state *a = &c.rb->states[0];
		T_CHECK(FK.with[0] == a->act.with && FK.with[0] != NULL);
		T_STREQ(FK.action[0], "shell.exec");
		T_STREQ(FK.file[0], "c.yaml");
		T_CHECK(FK.where[0].line == 11 && FK.where[0].col == 9);
		T_CHECK(FK.with[1] == a->undo.with && FK.with[1] != NULL);
		T_STREQ(FK.action[1], "http.get");
		T_CHECK(FK.where[1].line == 13 && FK.where[1].col == 16);
	}
	X(&c);
	/* no with: the callback still runs, with NULL */
	memset(&FK, 0, sizeof FK);
	c = ST("    do: shell.exec\n    next: done\n", &WITH_CAT);
	T_CHECK(clean(&c) && FK.check_calls == 1 && FK.with[0] == NULL);
	X(&c);
}

static void test_check_params_errors_counted(void)
{
	memset(&FK, 0, sizeof FK);
	cx c = ST("    do: http.get\n    with: {bogus: 1}\n    next: done\n", &WITH_CAT);
	T_CHECK(c.n == 2);
	T_CHECK(has(&c, 12, 19, "http.get has no param 'bogus'"));
	T_CHECK(has(&c, 11, 9, "http.get needs 'url'"));
	X(&c);
}

static void test_has_output(void)
{
	memset(&FK, 0, sizeof FK);
	snprintf(srcbuf, sizeof srcbuf,
		 HEAD9 "  a:\n    do: http.get\n    with: {url: x}\n    next:\n"
		       "      - if: steps.a.out.status == 200 && steps.a.out.nope == 1\n        to: done\n"
		       "      - to: b\n"
		       "  b:\n    do: shell.exec\n    with: {argv: [\"{{ steps.a.out.body }}{{ steps.a.out.head }}\"]}\n"
		       "    next: done\n"
		       "  done: {end: success}\n");
	cx c = C(srcbuf, &WITH_CAT);
	T_CHECK(c.n == 2);
	T_CHECK(has(&c, 14, 42, "unknown name 'steps.a.out.nope': action http.get has no output 'nope'"));
	T_CHECK(has(&c, 19, 45, "unknown name 'steps.a.out.head': action http.get has no output 'head'"));
	T_CHECK(FK.output_calls >= 4);
	X(&c);
	/* an action that declares no outputs accepts any */
	memset(&FK, 0, sizeof FK);
	cx d = G("steps.a.out.whatever == 1", &WITH_CAT);
	T_CHECK(clean(&d)); /* 'a' is a decision here: no action, no output check */
	X(&d);
}

/* ---- graph: DOT ---- */

static const char *GRAPH_SRC = "rbk: 1\nname: deploy\nstart: build\nstates:\n"
			       "  build:\n    do: shell.exec\n    next: check\n    on_failure: rollback\n"
			       "  check:\n    next:\n      - if: steps.build.stdout == \"ok\"\n        to: hold\n"
			       "      - to: failed\n"
			       "  hold: {wait: 90s, next: ask}\n"
			       "  ask: {approval: {prompt: go?}, next: sub, on_failure: failed}\n"
			       "  sub: {call: child, next: end}\n"
			       "  end: {end: success}\n"
			       "  failed: {end: failure}\n";

static char *render(const char *src, rbk_graph_format fmt)
{
	rbk_diag d = {0};
	rbk_doc *doc = NULL;
	rbk_runbook *rb = NULL;
	char *out = NULL;
	size_t len = 0;
	if (rbk_load_bytes(&doc, "g.yaml", src, strlen(src), &d) == 0 && rbk_model_build(&rb, doc, &d) == 0) {
		FILE *f = open_memstream(&out, &len);
		rbk_graph_write(rb, fmt, f);
		fclose(f);
	} else
		printf("# graph source did not build (%zu errors)\n", d.n);
	rbk_model_free(rb);
	rbk_doc_free(doc);
	rbk_diag_free(&d);
	return out;
}

#define T_HAS(hay, needle)                                                                              \
	do {                                                                                            \
		const char *t_h_ = (hay);                                                               \
		if ((!t_h_ || !strstr(t_h_, (needle))) && !t_failed_checks++)                           \
			printf("FAIL %s: %s:%d: output lacks \"%s\"\n", t_current, __FILE__, __LINE__, \
			       (needle));                                                               \
	} while (0)

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; p && (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_dot_structure(void)
{
	char *g = render(GRAPH_SRC, RBK_GRAPH_DOT);
	T_CHECK(g && !strncmp(g, "digraph \"deploy\" {\n", 19));
	T_HAS(g, "\"__start\" [shape=circle");
	T_HAS(g, "\"__start\" -> \"build\";\n");
	T_HAS(g, "\"build\" [label=\"build\\nshell.exec\"];");
	T_HAS(g, "\"check\" [label=\"check\", shape=diamond");
	T_HAS(g, "\"hold\" [label=\"hold\\nwait 90s\", shape=ellipse");
	T_HAS(g, "\"ask\" [label=\"ask\\napproval\", shape=hexagon");
	T_HAS(g, "\"sub\" [label=\"sub\\ncall child\", shape=component");
	T_HAS(g, "\"end\" [label=\"end\\nsuccess\", shape=doublecircle, style=filled, fillcolor=\"#c8e6c9\"]");
	T_HAS(g, "\"failed\" [label=\"failed\\nfailure\", shape=doublecircle, style=filled, fillcolor=\"#ffcdd2\"]");
	T_CHECK(g && g[strlen(g) - 2] == '}' && g[strlen(g) - 1] == '\n');
	free(g);
}

static void test_dot_edges(void)
{
	char *g = render(GRAPH_SRC, RBK_GRAPH_DOT);
	T_HAS(g, "\"build\" -> \"check\";\n"); /* plain edge: no attributes */
	/* guarded edge labelled with its guard, quotes escaped */
	T_HAS(g, "\"check\" -> \"hold\" [label=\"steps.build.stdout == \\\"ok\\\"\"];\n");
	T_HAS(g, "\"check\" -> \"failed\" [label=\"else\"];\n");
	/* failure edges dashed and red */
	T_HAS(g, "\"build\" -> \"__rollback\" [style=dashed, color=red, fontcolor=red, label=\"on failure\"];");
	T_HAS(g, "\"ask\" -> \"failed\" [style=dashed, color=red");
	T_CHECK(count(g, "style=dashed") == 2); /* the implicit default is not drawn */
	T_HAS(g, "\"__rollback\" [label=\"rollback\\n(undo completed steps)\", shape=octagon");
	T_CHECK(g && !strstr(g, "\"__fail\""));
	free(g);
}

static void test_dot_rollback_only_when_used(void)
{
	char *g = render("rbk: 1\nname: t\nstart: a\nstates:\n  a: {wait: 1s, next: b}\n  b: {end: success}\n",
			 RBK_GRAPH_DOT);
	T_CHECK(g && !strstr(g, "__rollback") && !strstr(g, "__fail") && !strstr(g, "dashed"));
	T_CHECK(g && !strstr(g, "label=\"else\""));
	free(g);
	/* the runbook default, when written, is drawn from every non-end state */
	g = render("rbk: 1\nname: t\non_failure: fail\nstart: a\nstates:\n  a: {wait: 1s, next: b}\n"
		   "  b: {wait: 1s, next: c}\n  c: {end: success}\n",
		   RBK_GRAPH_DOT);
	T_HAS(g, "\"__fail\" [label=\"fail\", shape=octagon");
	T_HAS(g, "\"a\" -> \"__fail\" [style=dashed");
	T_HAS(g, "\"b\" -> \"__fail\" [style=dashed");
	T_CHECK(count(g, "-> \"__fail\"") == 2);
	T_CHECK(g && !strstr(g, "__rollback"));
	free(g);
}

static void test_dot_accepted_by_graphviz(void)
{
	if (access("/usr/bin/dot", X_OK) != 0) {
		printf("# /usr/bin/dot missing: skipped\n");
		return;
	}
	char *g = render(GRAPH_SRC, RBK_GRAPH_DOT);
	char path[128];
	snprintf(path, sizeof path, "%s/g.dot", dir1);
	FILE *f = fopen(path, "w");
	T_CHECK(f && g);
	if (!f || !g) {
		free(g);
		if (f)
			fclose(f);
		return;
	}
	fputs(g, f);
	fclose(f);
	free(g);
	char cmd[512];
	snprintf(cmd, sizeof cmd, "/usr/bin/dot -Tsvg '%s' -o '%s/g.svg' 2>'%s/g.err'", path, dir1, dir1);
	int rc = system(cmd);
	T_CHECK(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
	char svg[128], err[128];
	snprintf(svg, sizeof svg, "%s/g.svg", dir1);
	snprintf(err, sizeof err, "%s/g.err", dir1);
	struct stat st;
	T_CHECK(stat(svg, &st) == 0 && st.st_size > 100);
	T_CHECK(stat(err, &st) == 0 && st.st_size == 0); /* no warnings either */
	unlink(svg);
	unlink(err);
	unlink(path);
}

/* ---- graph: Mermaid ---- */

static void test_mermaid(void)
{
	char *g = render(GRAPH_SRC, RBK_GRAPH_MERMAID);
	T_CHECK(g && !strncmp(g, "flowchart TD\n", 13));
	T_HAS(g, "  start_ --> s_build\n");
	T_HAS(g, "  s_build(\"build<br/>shell.exec\")\n");
	T_HAS(g, "  s_check{\"check\"}\n");
	T_HAS(g, "  s_end(((\"end<br/>success\")))\n"); /* a state called end: prefixed */
	T_HAS(g, "  s_check -->|\"steps.build.stdout == #quot;ok#quot;\"| s_hold\n");
	T_HAS(g, "  s_check -->|else| s_failed\n");
	T_HAS(g, "  s_build -.->|on failure| x_rollback\n");
	T_HAS(g, "  s_ask -.->|on failure| s_failed\n");
	T_HAS(g, "  x_rollback{{");
	T_HAS(g, "  class s_end ok\n");
	T_HAS(g, "  class s_failed bad\n");
	/* no unprefixed ids and no raw double quotes inside labels */
	T_CHECK(g && !strstr(g, "\n  end") && !strstr(g, "--> end"));
	T_CHECK(g && !strstr(g, "\\\""));
	free(g);
}

static void test_mermaid_escapes(void)
{
	char *g = render("rbk: 1\nname: t\nstart: a\nstates:\n  a:\n    next:\n"
			 "      - if: \"params.x =~ /<b>#1/ && params.y == \\\"q\\\"\"\n        to: b\n"
			 "      - to: b\n  b: {end: success}\nparams:\n  x: {type: string}\n  y: {type: string}\n",
			 RBK_GRAPH_MERMAID);
	T_HAS(g, "|\"params.x =~ /#lt;b#gt;#35;1/ && params.y == #quot;q#quot;\"|");
	free(g);
}

/* Regression tests of fixed bugs. */
/* A literal block script: the place ignores the block's indentation
 * (11:6 instead of 11:14 for the '{{', 11:9 instead of 11:17 for the name). */
static void test_block_script_places(void)
{
	cx c = ST("    do: shell.exec\n    with:\n      script: |\n        echo {{ params.zz }}\n    next: done\n", NULL);
	T_CHECK(has(&c, 14, 14, "template inside 'script'"));
	T_CHECK(has(&c, 14, 17, "unknown name 'params.zz'"));
	X(&c);
}

int main(void)
{
	snprintf(dir1, sizeof dir1, "/tmp/rbk-test-check-XXXXXX");
	snprintf(dir2, sizeof dir2, "/tmp/rbk-test-check-XXXXXX");
	if (!mkdtemp(dir1) || !mkdtemp(dir2)) {
		perror("mkdtemp");
		return 1;
	}
	put(dir1, "child.yaml", CHILD);
	put(dir2, "child.yaml", PLAIN);
	put(dir2, "other.yml", PLAIN);
	put(dir1, "t.yaml", PLAIN);
	put(dir2, "broken.yaml", "rbk: 1\nname: broken\n");

	T_RUN(test_valid_runbook_clean);
	T_RUN(test_undefined_start);
	T_RUN(test_undefined_next_targets);
	T_RUN(test_undefined_on_failure);
	T_RUN(test_unreachable_state);
	T_RUN(test_no_path_to_end_cycle);
	T_RUN(test_no_end_state);
	T_RUN(test_dangling_edge_suppresses_reachability);
	T_RUN(test_several_dangling_edges_all_reported);
	T_RUN(test_guard_names_params);
	T_RUN(test_guard_names_vars_and_set);
	T_RUN(test_guard_names_run_and_roots);
	T_RUN(test_guard_names_steps);
	T_RUN(test_guard_names_several_columns);
	T_RUN(test_until_and_set_names);
	T_RUN(test_template_names_in_with);
	T_RUN(test_template_names_elsewhere);
	T_RUN(test_template_inside_script);
	T_RUN(test_cron_errors);
	T_RUN(test_timezone_errors);
	T_RUN(test_schedule_params_undeclared);
	T_RUN(test_param_pattern_checks);
	T_RUN(test_param_default_min_max);
	T_RUN(test_find_runbook);
	T_RUN(test_call_not_on_path);
	T_RUN(test_call_found_on_path);
	T_RUN(test_call_params_against_child);
	T_RUN(test_schedule_param_values);
	T_RUN(test_actions_unchecked_without_catalogue);
	T_RUN(test_plugins_and_suggestions);
	T_RUN(test_unknown_action);
	T_RUN(test_check_params_gets_with);
	T_RUN(test_check_params_errors_counted);
	T_RUN(test_has_output);
	T_RUN(test_dot_structure);
	T_RUN(test_dot_edges);
	T_RUN(test_dot_rollback_only_when_used);
	T_RUN(test_dot_accepted_by_graphviz);
	T_RUN(test_mermaid);
	T_RUN(test_mermaid_escapes);
	T_RUN(test_block_script_places);

	const char *files[][2] = {{dir1, "child.yaml"}, {dir2, "child.yaml"}, {dir2, "other.yml"}, {dir1, "t.yaml"},
				  {dir2, "broken.yaml"}};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		char p[256];
		snprintf(p, sizeof p, "%s/%s", files[i][0], files[i][1]);
		unlink(p);
	}
	rmdir(dir1);
	rmdir(dir2);
	return T_DONE();
}
