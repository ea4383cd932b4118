/* check: semantic checks over a built model. */
#include "runbook/check.h"
#include "base/dur.h"
#include "sched/cron.h"
#include "runbook/load.h"
#include "base/mem.h"
#include "lang/regex.h"
#include "sched/tz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
	const rbk_runbook *rb;
	const rbk_check_opts *opts;
	rbk_diag *d;
	int errors;
	bool notify; /* checking a notify: entry: run has its notice fields too */
} checker;

static void error_at(checker *c, rbk_pos p, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void error_at(checker *c, rbk_pos p, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	rbk_diag_error(c->d, c->rb->doc->file, p.line, p.col, "%s", msg);
	c->errors++;
}

static bool is_var(const rbk_runbook *rb, const char *name)
{
	for (size_t i = 0; i < rb->nvars; i++)
		if (!strcmp(rb->vars[i].name, name))
			return true;
	for (size_t i = 0; i < rb->nstates; i++)
		for (size_t j = 0; j < rb->states[i].nset; j++)
			if (!strcmp(rb->states[i].set[j].name, name))
				return true;
	return false;
}

static const char *const RUN_FIELDS[] = {"id", "name", "actor", "dry_run", NULL};
/* What a notification knows of the run besides (exec/notify.c). */
static const char *const NOTICE_FIELDS[] = {"status", "reason", "state", "prompt", "approvers", "command", "key", NULL};
static const char *const STEP_FIELDS[] = {"status", "exit_code", "stdout", "stderr", "out",
					  "attempts", "error", "duration_ms", "cut", NULL};

static bool listed(const char *w, const char *const *l)
{
	for (; *l; l++)
		if (!strcmp(w, *l))
			return true;
	return false;
}

typedef struct {
	checker *c;
	const rbk_node *node; /* scalar holding the expression */
	int base;             /* offset of the expression inside node->text */
} name_walk;

static char *dotted(const rbk_expr *e)
{
	rbk_buf b = {0};
	for (size_t i = 0; i < e->nsegs; i++) {
		if (i)
			rbk_buf_putc(&b, '.');
		rbk_buf_puts(&b, e->segs[i]);
	}
	return rbk_buf_take(&b);
}

/* Why the name e cannot exist in this runbook, or NULL when it can. */
static const char *bad_name(checker *c, const rbk_expr *e, char *why, size_t whylen)
{
	const rbk_runbook *rb = c->rb;
	const char *root = e->segs[0];
	if (c->notify && !strcmp(root, "run") && e->nsegs == 2 &&
	    (listed(e->segs[1], NOTICE_FIELDS) || listed(e->segs[1], RUN_FIELDS)))
		return NULL;
	if (c->notify && !strcmp(root, "run"))
		return "in a notification, run has id, name, actor, dry_run, status, reason, state, prompt, approvers, "
		       "command and key";
	if (!rb->nstates && strcmp(root, "run") != 0)
		return "a shared notification knows the run only: run.id, run.name, run.status, run.reason, ...";
	if (!strcmp(root, "params")) {
		if (e->nsegs != 2) /* params are scalars: nothing inside */
			return "a param is named params.NAME";
		if (!rbk_model_param(rb, e->segs[1])) {
			snprintf(why, whylen, "no param '%s' is declared", e->segs[1]);
			return why;
		}
		return NULL;
	}
	if (!strcmp(root, "vars")) {
		if (e->nsegs < 2)
			return "a variable is named vars.NAME";
		if (!is_var(rb, e->segs[1])) {
			snprintf(why, whylen, "no variable '%s' is declared in 'vars' or assigned by 'set'",
				 e->segs[1]);
			return why;
		}
		return NULL;
	}
	if (!strcmp(root, "run")) {
		if (e->nsegs != 2 || !listed(e->segs[1], RUN_FIELDS))
			return "run has id, name, actor and dry_run";
		return NULL;
	}
	if (!strcmp(root, "steps")) {
		if (e->nsegs < 3)
			return "a step result is named steps.STATE.FIELD";
		int si = rbk_model_state(rb, e->segs[1]);
		if (si < 0) {
			snprintf(why, whylen, "no state '%s'", e->segs[1]);
			return why;
		}
		if (!listed(e->segs[2], STEP_FIELDS))
			return "a step has status, exit_code, stdout, stderr, out.NAME, attempts, error, duration_ms and cut";
		if (!strcmp(e->segs[2], "out")) {
			if (e->nsegs < 4)
				return "an output is named steps.STATE.out.NAME";
			const rbk_state *st = &rb->states[si];
			const rbk_check_actions *a = c->opts ? c->opts->actions : NULL;
			if (a && a->has_output && st->kind == RBK_S_ACTION && st->act.action &&
			    a->has_action(a->ctx, st->act.action) &&
			    !a->has_output(a->ctx, st->act.action, e->segs[3])) {
				snprintf(why, whylen, "action %s has no output '%s'", st->act.action, e->segs[3]);
				return why;
			}
			return NULL;
		}
		if (e->nsegs != 3)
			return "a step result is named steps.STATE.FIELD";
		return NULL;
	}
	return "names start with params, vars, run or steps";
}

static void check_name(const rbk_expr *e, void *ctx)
{
	name_walk *w = ctx;
	if (e->kind != RBK_E_NAME)
		return;
	char why[256];
	const char *bad = bad_name(w->c, e, why, sizeof why);
	if (!bad)
		return;
	char *name = dotted(e);
	error_at(w->c, rbk_model_place(w->node, w->base + e->pos), "unknown name '%s': %s", name, bad);
	rbk_free(name);
}

static void check_mexpr(checker *c, const rbk_mexpr *m)
{
	if (!m->expr)
		return;
	name_walk w = {c, m->node, m->off};
	rbk_expr_walk(m->expr, check_name, &w);
}

/* Names in every template under n. */
static void check_tmpl_names(checker *c, const rbk_node *n)
{
	if (n->t != RBK_N_STR) {
		for (size_t i = 0; i < n->count; i++)
			check_tmpl_names(c, n->vals[i]);
		return;
	}
	if (!rbk_tmpl_has_expr(n->text))
		return;
	rbk_tmpl *t = NULL;
	if (rbk_tmpl_parse(&t, n->text, NULL) < 0)
		return; /* syntax already reported by the model */
	for (size_t i = 0; i < rbk_tmpl_count(t); i++) {
		int pos = 0;
		const rbk_expr *e = rbk_tmpl_expr(t, i, &pos);
		name_walk w = {c, n, pos};
		/* Names inside a template carry offsets relative to the expression. */
		rbk_expr_walk(e, check_name, &w);
	}
	rbk_tmpl_free(t);
}

static void check_script(checker *c, const rbk_node *with)
{
	const rbk_node *s = rbk_node_get(with, "script");
	if (!s || s->t != RBK_N_STR || !rbk_tmpl_has_expr(s->text))
		return;
	int off = (int)(strstr(s->text, "{{") - s->text);
	error_at(c, rbk_model_place(s, off),
		 "template inside 'script': a shell would parse the value; pass it through 'env:' "
		 "(\"$NAME\" in the script) or use 'argv:'");
}

static void check_call_spec(checker *c, const rbk_call_spec *cs)
{
	if (!cs->with)
		return;
	check_tmpl_names(c, cs->with);
	check_script(c, cs->with);
}

static void check_action(checker *c, const rbk_call_spec *cs)
{
	const rbk_check_actions *a = c->opts ? c->opts->actions : NULL;
	if (!a || !cs->action)
		return;
	if (!a->has_action(a->ctx, cs->action)) {
		char plugin[128];
		snprintf(plugin, sizeof plugin, "%.*s", (int)strcspn(cs->action, "."), cs->action);
		bool loaded = !a->has_plugin || a->has_plugin(a->ctx, plugin);
		const char *hint = a->suggest ? a->suggest(a->ctx, loaded ? cs->action : plugin, !loaded) : NULL;
		if (loaded)
			error_at(c, cs->pos, "unknown action '%s'%s%s%s (see 'rbk plugins')", cs->action,
				 hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
		else if (hint && !strcmp(hint, plugin)) /* its file is there, but did not give it */
			error_at(c, cs->pos, "no plugin '%s' is loaded: its file was refused (see above) or names another plugin",
				 plugin);
		else if (hint)
			error_at(c, cs->pos, "no plugin '%s' is loaded (did you mean '%s'?)", plugin, hint);
		return;
	}
	int before = (int)c->d->n;
	a->check_params(a->ctx, cs->action, cs->with, c->rb->doc->file, &cs->pos, c->d);
	c->errors += (int)c->d->n - before;
}

/* Returns 1 when to names no state (and reports it). */
static int check_target(checker *c, const char *to, rbk_pos pos, bool allow_special)
{
	if (!to)
		return 0;
	if (allow_special && (!strcmp(to, "rollback") || !strcmp(to, "fail")))
		return 0;
	if (rbk_model_state(c->rb, to) >= 0)
		return 0;
	error_at(c, pos, "no state named '%s'%s", to,
			 allow_special ? " (on_failure takes a state, 'rollback' or 'fail')" : "");
	return 1;
}

static const char *failure_edge(const rbk_runbook *rb, const rbk_state *st)
{
	return st->on_failure ? st->on_failure : rb->on_failure;
}

/* Mark every state reachable from i through next and failure edges. */
static void reach(const rbk_runbook *rb, int i, unsigned char *seen)
{
	if (i < 0 || seen[i])
		return;
	seen[i] = 1;
	const rbk_state *st = &rb->states[i];
	for (size_t j = 0; j < st->nnext; j++)
		if (st->next[j].to)
			reach(rb, rbk_model_state(rb, st->next[j].to), seen);
	if (st->kind != RBK_S_END)
		reach(rb, rbk_model_state(rb, failure_edge(rb, st)), seen);
}

/* States that can reach an end state through next edges: a fixpoint, so
 * cycles are handled without recursion depth issues. */
static void ends_reachable(const rbk_runbook *rb, unsigned char *ok)
{
	for (size_t i = 0; i < rb->nstates; i++)
		ok[i] = rb->states[i].kind == RBK_S_END;
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t i = 0; i < rb->nstates; i++) {
			if (ok[i])
				continue;
			const rbk_state *st = &rb->states[i];
			for (size_t j = 0; j < st->nnext && !ok[i]; j++) {
				int t = st->next[j].to ? rbk_model_state(rb, st->next[j].to) : -1;
				if (t >= 0 && ok[t])
					ok[i] = changed = true;
			}
		}
	}
}

static void check_graph(checker *c)
{
	const rbk_runbook *rb = c->rb;
	int dangling = check_target(c, rb->start, rb->start_pos, false) +
		       check_target(c, rb->on_failure, rb->on_failure_pos, true);
	for (size_t i = 0; i < rb->nstates; i++) {
		const rbk_state *st = &rb->states[i];
		for (size_t j = 0; j < st->nnext; j++)
			dangling += check_target(c, st->next[j].to, st->next[j].to_pos, false);
		dangling += check_target(c, st->on_failure, st->on_failure_pos, true);
	}
	/* With a dangling edge, reachability errors would only echo it. */
	if (!rb->nstates || dangling)
		return;
	unsigned char *seen = rbk_xcalloc(rb->nstates, 1), *ok = rbk_xcalloc(rb->nstates, 1);
	reach(rb, rb->start ? rbk_model_state(rb, rb->start) : -1, seen);
	ends_reachable(rb, ok);
	bool has_end = false;
	for (size_t i = 0; i < rb->nstates; i++)
		has_end |= rb->states[i].kind == RBK_S_END;
	if (!has_end)
		error_at(c, rb->states[0].pos, "the runbook has no end state (add one with 'end: success')");
	for (size_t i = 0; i < rb->nstates; i++) {
		const rbk_state *st = &rb->states[i];
		/* A state that fails into itself runs again on every failure, each
		 * time with its retries, until max_transitions: days of a webhook
		 * that is down. Usually the runbook's on_failure on its own alert. */
		const char *fe = failure_edge(rb, st);
		if (st->kind != RBK_S_END && st->kind != RBK_S_WAIT && fe && !strcmp(fe, st->name))
			error_at(c, st->on_failure ? st->on_failure_pos : st->pos,
				 "state '%s' fails into itself%s: give it an on_failure that leads elsewhere (an end state)",
				 st->name, st->on_failure ? "" : " (the runbook's on_failure)");
		if (rb->start && rbk_model_state(rb, rb->start) >= 0 && !seen[i])
			error_at(c, st->pos, "state '%s' is unreachable from the start state '%s'", st->name,
				 rb->start);
		else if (has_end && !ok[i])
			error_at(c, st->pos, "state '%s' has no path to an end state through 'next'", st->name);
	}
	rbk_free(seen);
	rbk_free(ok);
}

static void check_params(checker *c)
{
	for (size_t i = 0; i < c->rb->nparams; i++) {
		const rbk_param *p = &c->rb->params[i];
		if (p->pattern) {
			rbk_re *re = NULL;
			rbk_err e = {0};
			if (rbk_re_compile(&re, p->pattern, strlen(p->pattern), "", 1, &e) < 0) {
				error_at(c, p->pattern_pos, "bad pattern of param '%s': %s", p->name, e.msg);
				continue;
			}
			if (p->def && p->def->t == RBK_N_STR &&
			    rbk_re_match(re, p->def->text, p->def->len, -1, NULL, NULL, &e) != 1)
				error_at(c, (rbk_pos){p->def->line, p->def->col},
					 "default of param '%s' does not match its pattern", p->name);
			rbk_re_free(re);
		}
		if (p->def && (p->def->t == RBK_N_INT || p->def->t == RBK_N_NUM)) {
			double v = p->def->t == RBK_N_INT ? (double)p->def->i : p->def->n;
			if ((p->has_min && v < p->min) || (p->has_max && v > p->max))
				error_at(c, (rbk_pos){p->def->line, p->def->col},
					 "default of param '%s' is outside its min/max", p->name);
		}
	}
}

/* A literal value given to param p (a schedule's params, a call's with):
 * its type, enum values, min and max, and pattern. Templates are checked
 * when they render. */
static void check_param_value(checker *c, const rbk_param *p, const rbk_node *v)
{
	static const char *const tn[] = {"a string", "an int", "a number", "a bool", "a duration such as 30s",
					 "one of its values"};
	if (v->t == RBK_N_STR && rbk_tmpl_has_expr(v->text))
		return;
	bool ok;
	switch (p->type) {
	case RBK_P_STRING: ok = v->t == RBK_N_STR; break;
	case RBK_P_INT: ok = v->t == RBK_N_INT; break;
	case RBK_P_NUMBER: ok = v->t == RBK_N_INT || v->t == RBK_N_NUM; break;
	case RBK_P_BOOL: ok = v->t == RBK_N_BOOL; break;
	case RBK_P_DURATION: ok = v->t == RBK_N_STR && rbk_dur_parse(v->text) >= 0; break;
	case RBK_P_ENUM:
		ok = false;
		for (size_t i = 0; v->t == RBK_N_STR && i < p->nvalues; i++)
			ok |= !strcmp(p->values[i], v->text);
		break;
	default: ok = true;
	}
	rbk_pos at = {v->line, v->col};
	if (!ok) {
		if (v->t == RBK_N_STR)
			error_at(c, at, "param '%s' must be %s, not '%s'", p->name, tn[p->type], v->text);
		else
			error_at(c, at, "param '%s' must be %s, not %s", p->name, tn[p->type], rbk_node_type_name(v));
		return;
	}
	double x = v->t == RBK_N_INT ? (double)v->i : v->t == RBK_N_NUM ? v->n : 0;
	if ((v->t == RBK_N_INT || v->t == RBK_N_NUM) && p->has_min && x < p->min)
		error_at(c, at, "param '%s' must be at least %g, not %s", p->name, p->min, v->text);
	if ((v->t == RBK_N_INT || v->t == RBK_N_NUM) && p->has_max && x > p->max)
		error_at(c, at, "param '%s' must be at most %g, not %s", p->name, p->max, v->text);
	if (p->pattern && v->t == RBK_N_STR) {
		rbk_re *re = NULL;
		rbk_err e = {0};
		if (rbk_re_compile(&re, p->pattern, strlen(p->pattern), "", 1, &e) == 0 &&
		    rbk_re_match(re, v->text, v->len, -1, NULL, NULL, &e) != 1)
			error_at(c, at, "param '%s' does not match its pattern %s", p->name, p->pattern);
		rbk_re_free(re);
	}
}

static void check_schedules(checker *c)
{
	for (size_t i = 0; i < c->rb->nschedules; i++) {
		const rbk_schedule *s = &c->rb->schedules[i];
		rbk_cron cr;
		rbk_err e = {0};
		if (s->cron && rbk_cron_parse(&cr, s->cron, &e) < 0)
			error_at(c, rbk_model_place(s->cron_node, e.pos > 0 ? e.pos : 0), "bad cron expression '%s': %s",
				 s->cron, e.msg);
		if (s->timezone && !rbk_tz_valid(s->timezone))
			error_at(c, s->tz_pos, "unknown time zone '%s' (an IANA name such as Europe/Lisbon)",
				 s->timezone);
		if (s->params) {
			for (size_t j = 0; j < s->params->count; j++) {
				const rbk_node *k = s->params->keys[j];
				const rbk_param *p = rbk_model_param(c->rb, k->text);
				if (!p)
					error_at(c, (rbk_pos){k->line, k->col},
						 "schedule sets param '%s', which is not declared", k->text);
				else
					check_param_value(c, p, s->params->vals[j]);
			}
		}
	}
}

/* A call's with against the child runbook's params. */
static void check_call_params(checker *c, const rbk_state *st, const char *file)
{
	rbk_diag quiet = {0};
	rbk_doc *doc = NULL;
	rbk_runbook *child = NULL;
	if (rbk_load_file(&doc, file, &quiet) < 0 || rbk_model_build(&child, doc, &quiet) < 0) {
		error_at(c, st->act.pos, "call: runbook '%s' (%s) is not valid; run 'rbk validate %s'", st->act.action,
			 file, file);
	} else {
		const rbk_node *with = st->act.with;
		for (size_t i = 0; with && i < with->count; i++) {
			const rbk_node *k = with->keys[i];
			const rbk_param *p = rbk_model_param(child, k->text);
			if (!p)
				error_at(c, (rbk_pos){k->line, k->col}, "call: runbook '%s' has no param '%s'",
					 st->act.action, k->text);
			else
				check_param_value(c, p, with->vals[i]);
		}
		for (size_t i = 0; i < child->nparams; i++) {
			const rbk_param *p = &child->params[i];
			if (p->required && !p->def && !p->env && !rbk_node_get(with, p->name))
				error_at(c, st->act.pos, "call: runbook '%s' needs param '%s'", st->act.action, p->name);
		}
	}
	rbk_model_free(child);
	rbk_doc_free(doc);
	rbk_diag_free(&quiet);
}

bool rbk_check_runbook_file(const char *name)
{
	size_t l = strlen(name);
	return (l > 5 && !strcmp(name + l - 5, ".yaml")) || (l > 4 && !strcmp(name + l - 4, ".yml"));
}

char *rbk_check_find_runbook(const char *search_path, const char *name)
{
	if (!search_path)
		return NULL;
	const char *p = search_path;
	while (*p) {
		size_t n = strcspn(p, ":");
		static const char *const exts[] = {".yaml", ".yml"};
		for (int i = 0; i < 2; i++) {
			char *f = rbk_xasprintf("%.*s/%s%s", (int)n, n ? p : ".", name, exts[i]);
			if (access(f, R_OK) == 0)
				return f;
			rbk_free(f);
		}
		p += n;
		if (*p == ':')
			p++;
	}
	return NULL;
}

static void check_state(checker *c, const rbk_state *st)
{
	for (size_t j = 0; j < st->nnext; j++)
		check_mexpr(c, &st->next[j].guard);
	if (st->has_poll)
		check_mexpr(c, &st->poll.until);
	for (size_t j = 0; j < st->nset; j++)
		check_mexpr(c, &st->set[j].value);
	if (st->kind == RBK_S_ACTION) {
		check_call_spec(c, &st->act);
		check_action(c, &st->act);
	}
	if (st->has_undo) {
		check_call_spec(c, &st->undo);
		check_action(c, &st->undo);
	}
	if (st->kind == RBK_S_CALL && st->act.action) {
		check_call_spec(c, &st->act);
		const char *sp = c->opts ? c->opts->search_path : NULL;
		char *f = rbk_check_find_runbook(sp, st->act.action);
		if (!f)
			error_at(c, st->act.pos, "call: no runbook named '%s' on the path (%s)", st->act.action,
				 sp ? sp : "no search path");
		else if (!strcmp(st->act.action, c->rb->name ? c->rb->name : ""))
			error_at(c, st->act.pos, "call: runbook '%s' calls itself", st->act.action);
		else
			check_call_params(c, st, f);
		rbk_free(f);
	}
}

static void check_notify(checker *c)
{
	for (size_t i = 0; i < c->rb->nnotify; i++) {
		const rbk_notify *n = &c->rb->notify[i];
		check_action(c, &n->act);
		c->notify = true;
		check_call_spec(c, &n->act);
		c->notify = false;
	}
}

int rbk_check_notify(const rbk_runbook *shared, const rbk_check_opts *opts, rbk_diag *d)
{
	checker c = {shared, opts, d, 0, false};
	check_notify(&c);
	return c.errors;
}

int rbk_check(const rbk_runbook *rb, const rbk_check_opts *opts, rbk_diag *d)
{
	checker c = {rb, opts, d, 0, false};
	check_notify(&c);
	check_graph(&c);
	check_params(&c);
	check_schedules(&c);
	for (size_t i = 0; i < rb->nvars; i++)
		check_tmpl_names(&c, rb->vars[i].lit);
	const rbk_node *lock = rbk_node_get(rb->doc->root, "lock");
	if (lock)
		check_tmpl_names(&c, lock);
	const rbk_node *states = rbk_node_get(rb->doc->root, "states");
	for (size_t i = 0; i < rb->nstates; i++) {
		check_state(&c, &rb->states[i]);
		const rbk_node *sn = states ? states->vals[i] : NULL;
		const rbk_node *ap = sn ? rbk_node_get(sn, "approval") : NULL;
		if (ap && ap->t == RBK_N_MAP && rbk_node_get(ap, "prompt"))
			check_tmpl_names(&c, rbk_node_get(ap, "prompt"));
	}
	return c.errors;
}
