/* model: document tree -> runbook model, reporting every structural error. */
#include "runbook/model.h"

#include "base/dur.h"
#include "base/mem.h"
#include "runbook/suggest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>

typedef struct {
	const rbk_doc *doc;
	rbk_diag *d;
	int errors;
	const rbk_runbook *rb; /* its params, built before its states */
} builder;

static void error_at(builder *b, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void error_at(builder *b, int line, int col, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	rbk_diag_error(b->d, b->doc->file, line, col, "%s", msg);
	b->errors++;
}

#define ERR(b, n, ...) error_at((b), (n)->line, (n)->col, __VA_ARGS__)

static rbk_pos pos_of(const rbk_node *n) { return (rbk_pos){n->line, n->col}; }

int64_t rbk_model_dur(const rbk_runbook *rb, int64_t v, const rbk_val *params)
{
	if (v >= -1)
		return v;
	size_t i = (size_t)(-2 - v);
	const rbk_val *p = i < rb->nparams && params && params->t == RBK_V_MAP
				   ? rbk_val_map_get(params, rb->params[i].name)
				   : NULL;
	return p && p->t == RBK_V_INT && p->u.i >= 0 ? p->u.i : 0;
}

bool rbk_model_param_is_duration(const void *rb, const char *name)
{
	const rbk_param *p = rbk_model_param(rb, name);
	return p && p->type == RBK_P_DURATION;
}

static const char *closest(const char *word, const char *const *allowed)
{
	size_t n = 0;
	while (allowed[n])
		n++;
	return rbk_suggest(word, allowed, n);
}

static bool in_list(const char *word, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (!strcmp(word, list[i]))
			return true;
	return false;
}

/* Report every key of map that allowed does not list. what: "in state 'x'". */
static void check_keys(builder *b, const rbk_node *map, const char *const *allowed, const char *what)
{
	for (size_t i = 0; i < map->count; i++) {
		const rbk_node *k = map->keys[i];
		if (in_list(k->text, allowed))
			continue;
		const char *hint = closest(k->text, allowed);
		if (hint)
			ERR(b, k, "unknown key '%s' %s (did you mean '%s'?)", k->text, what, hint);
		else
			ERR(b, k, "unknown key '%s' %s", k->text, what);
	}
}

static bool is_map(builder *b, const rbk_node *n, const char *what)
{
	if (n->t == RBK_N_MAP)
		return true;
	ERR(b, n, "%s must be a map, not %s", what, rbk_node_type_name(n));
	return false;
}

static char *want_str(builder *b, const rbk_node *n, const char *what)
{
	if (n->t == RBK_N_STR)
		return rbk_xstrdup(n->text);
	ERR(b, n, "%s must be a string, not %s", what, rbk_node_type_name(n));
	return NULL;
}

static bool want_bool(builder *b, const rbk_node *n, const char *what)
{
	if (n->t == RBK_N_BOOL)
		return n->b;
	ERR(b, n, "%s must be true or false, not %s", what, rbk_node_type_name(n));
	return false;
}

static const char *const ptype_names[] = {"string", "int", "number", "bool", "duration", "enum", NULL};

/* "{{ params.X }}" (spaces allowed inside the braces): X's index among
 * rb's params, else -1. */
static long param_ref(const rbk_runbook *rb, const char *s, const char **name, size_t *len)
{
	size_t n = strlen(s);
	if (n < 4 || strncmp(s, "{{", 2) != 0 || strcmp(s + n - 2, "}}") != 0)
		return -2;
	const char *a = s + 2, *z = s + n - 2;
	while (a < z && *a == ' ')
		a++;
	while (z > a && z[-1] == ' ')
		z--;
	if ((size_t)(z - a) <= 7 || strncmp(a, "params.", 7) != 0)
		return -2;
	a += 7;
	for (const char *c = a; c < z; c++)
		if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_'))
			return -2; /* not a param's name: an expression, which a duration cannot be */
	*name = a;
	*len = (size_t)(z - a);
	for (size_t i = 0; rb && i < rb->nparams; i++)
		if (strlen(rb->params[i].name) == *len && !strncmp(rb->params[i].name, a, *len))
			return (long)i;
	return -1;
}

static int64_t want_duration(builder *b, const rbk_node *n, const char *what)
{
	int64_t ms = n->t == RBK_N_STR ? rbk_dur_parse(n->text) : -1;
	if (ms >= 0)
		return ms;
	const char *name = NULL;
	size_t len = 0;
	long i = n->t == RBK_N_STR ? param_ref(b->rb, n->text, &name, &len) : -2;
	if (i >= 0) {
		const rbk_param *p = &b->rb->params[i];
		if (p->type != RBK_P_DURATION)
			ERR(b, n, "%s: param '%s' has type %s; a duration comes from a param of type duration", what, p->name,
			    ptype_names[p->type]);
		else if (!p->required && !p->def)
			ERR(b, n, "%s: param '%s' may be absent: give it a default or required: true", what, p->name);
		else
			return RBK_DUR_PARAM(i);
		return 0;
	}
	if (i == -1) {
		ERR(b, n, "%s: no param '%.*s' is declared", what, (int)len, name);
		return 0;
	}
	if (n->t == RBK_N_STR || n->t == RBK_N_INT)
		ERR(b, n, "%s: bad duration '%s' (write a whole number and a unit: 500ms, 30s, 5m, 2h, 1d, or a sum such as 1h30m)",
		    what, n->text);
	else
		ERR(b, n, "%s must be a duration such as 30s, not %s", what, rbk_node_type_name(n));
	return 0;
}

/* Where a param cannot be given: retry delays (rbk replay recomputes them
 * from the definition alone) and a schedule's catch_up (before any run). */
static int64_t want_literal_duration(builder *b, const rbk_node *n, const char *what)
{
	const char *name;
	size_t len;
	if (n->t == RBK_N_STR && param_ref(b->rb, n->text, &name, &len) != -2) {
		ERR(b, n, "%s: a literal duration is needed here (500ms, 30s, 5m, 2h, 1d), not a param", what);
		return 0;
	}
	return want_duration(b, n, what);
}

static bool name_ok(const char *s, const char *first, const char *rest)
{
	if (!*s || !strchr(first, *s))
		return false;
	for (s++; *s; s++)
		if (!strchr(rest, *s))
			return false;
	return true;
}

#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define DIGIT "0123456789"

static bool runbook_name_ok(const char *s) { return name_ok(s, LOWER DIGIT, LOWER DIGIT "-"); }
static bool state_name_ok(const char *s) { return name_ok(s, LOWER DIGIT "_", LOWER DIGIT "_"); }
static bool var_name_ok(const char *s) { return name_ok(s, LOWER "_", LOWER DIGIT "_"); }
static bool action_name_ok(const char *s)
{
	const char *dot = strchr(s, '.');
	if (!dot || strchr(dot + 1, '.'))
		return false;
	char head[128];
	size_t n = (size_t)(dot - s);
	if (n >= sizeof head)
		return false;
	memcpy(head, s, n);
	head[n] = '\0';
	return name_ok(head, LOWER, LOWER DIGIT "_") && name_ok(dot + 1, LOWER, LOWER DIGIT "_");
}

/* Line and column of byte off inside scalar n (best effort for block and
 * multi-line scalars: YAML folding can move characters). */
static rbk_pos place_in(const rbk_node *n, int off)
{
	rbk_pos p = {n->line, n->col + (n->style == RBK_STYLE_QUOTED ? 1 : 0)};
	if (off < 0)
		return (rbk_pos){n->line, n->col};
	const char *s = n->text;
	int line_start = 0, lines = 0;
	for (int i = 0; i < off && s[i]; i++)
		if (s[i] == '\n') {
			lines++;
			line_start = i + 1;
		}
	if (n->style == RBK_STYLE_BLOCK)
		return (rbk_pos){n->line + 1 + lines, n->indent + off - line_start + 1};
	if (lines)
		return (rbk_pos){n->line + lines, off - line_start + 1};
	p.col += off;
	return p;
}

rbk_pos rbk_model_place(const rbk_node *n, int off) { return place_in(n, off); }

/* Parse the expression in scalar n (an optional single {{ }} around it is
 * accepted, so `until: "{{ x }}"` means `until: x`). */
static void parse_mexpr(builder *b, const rbk_node *n, rbk_mexpr *out, const char *what)
{
	memset(out, 0, sizeof *out);
	if (n->t != RBK_N_STR) {
		ERR(b, n, "%s must be an expression (a string), not %s", what, rbk_node_type_name(n));
		return;
	}
	const char *s = n->text;
	size_t len = n->len, skip = 0;
	const char *open = strstr(s, "{{");
	if (open) {
		size_t lead = strspn(s, " \t");
		const char *close = strstr(open + 2, "}}");
		if (open == s + lead && close && close[2 + strspn(close + 2, " \t\n")] == '\0') {
			skip = (size_t)(open + 2 - s);
			len = (size_t)(close - open - 2);
		}
	}
	rbk_err e = {0};
	out->pos = place_in(n, (int)skip);
	out->node = n;
	out->off = (int)skip;
	if (rbk_parse(&out->expr, s + skip, len, &e) < 0) {
		rbk_pos p = place_in(n, (int)skip + (e.pos < 0 ? 0 : e.pos));
		error_at(b, p.line, p.col, "%s: %s", what, e.msg);
		out->expr = NULL;
		return;
	}
	out->src = rbk_xstrndup(s + skip, len);
}

/* Check the template syntax of every string under n (with:, lock, prompt). */
static void check_templates(builder *b, const rbk_node *n, const char *what)
{
	if (n->t == RBK_N_STR) {
		if (!rbk_tmpl_has_expr(n->text) && !strstr(n->text, "}}"))
			return;
		rbk_tmpl *t = NULL;
		rbk_err e = {0};
		if (rbk_tmpl_parse(&t, n->text, &e) < 0) {
			rbk_pos p = place_in(n, e.pos);
			error_at(b, p.line, p.col, "%s: %s", what, e.msg);
			return;
		}
		rbk_tmpl_free(t);
		return;
	}
	for (size_t i = 0; i < n->count; i++)
		check_templates(b, n->vals[i], what);
}

static void build_call_spec(builder *b, const rbk_node *map, rbk_call_spec *cs, const char *key, bool is_action,
			    const char *state)
{
	const rbk_node *v = rbk_node_get(map, key);
	char what[160];
	snprintf(what, sizeof what, "'%s' in state '%s'", key, state);
	if (v) {
		cs->action = want_str(b, v, what);
		cs->pos = pos_of(v);
		if (cs->action && is_action && !action_name_ok(cs->action))
			ERR(b, v, "%s: '%s' is not an action name (plugin.action, lower case)", what, cs->action);
		if (cs->action && !is_action && !runbook_name_ok(cs->action))
			ERR(b, v, "%s: '%s' is not a runbook name ([a-z0-9][a-z0-9-]*)", what, cs->action);
	}
	const rbk_node *with = rbk_node_get(map, "with");
	if (with) {
		snprintf(what, sizeof what, "'with' in state '%s'", state);
		if (with->t == RBK_N_NULL)
			return;
		if (is_map(b, with, what)) {
			cs->with = with;
			check_templates(b, with, what);
		}
	}
}

static void build_edges(builder *b, rbk_state *st, const rbk_node *n)
{
	st->next_pos = pos_of(n);
	if (n->t == RBK_N_STR) {
		st->next = rbk_xcalloc(1, sizeof *st->next);
		st->nnext = 1;
		st->next[0].to = rbk_xstrdup(n->text);
		st->next[0].to_pos = pos_of(n);
		return;
	}
	if (n->t != RBK_N_SEQ || n->count == 0) {
		ERR(b, n, "'next' in state '%s' must be a state name or a list of {if, to}, not %s", st->name,
		    n->t == RBK_N_SEQ ? "an empty list" : rbk_node_type_name(n));
		return;
	}
	st->next_is_list = true;
	st->next = rbk_xcalloc(n->count, sizeof *st->next);
	st->nnext = n->count;
	static const char *const keys[] = {"if", "to", NULL};
	char what[160];
	snprintf(what, sizeof what, "in a branch of state '%s'", st->name);
	for (size_t i = 0; i < n->count; i++) {
		const rbk_node *br = n->vals[i];
		if (!is_map(b, br, "a branch of 'next'"))
			continue;
		check_keys(b, br, keys, what);
		const rbk_node *to = rbk_node_get(br, "to"), *iff = rbk_node_get(br, "if");
		if (!to)
			ERR(b, br, "a branch of state '%s' has no 'to'", st->name);
		else if ((st->next[i].to = want_str(b, to, "'to'")))
			st->next[i].to_pos = pos_of(to);
		if (iff)
			parse_mexpr(b, iff, &st->next[i].guard, "guard");
		else if (i + 1 < n->count)
			ERR(b, br, "only the last branch of 'next' may omit 'if' (state '%s')", st->name);
	}
}

static void build_set(builder *b, rbk_state *st, const rbk_node *n)
{
	if (!is_map(b, n, "'set'"))
		return;
	st->set = rbk_xcalloc(n->count ? n->count : 1, sizeof *st->set);
	for (size_t i = 0; i < n->count; i++) {
		rbk_assign *a = &st->set[st->nset++];
		a->name = rbk_xstrdup(n->keys[i]->text);
		if (!var_name_ok(a->name))
			ERR(b, n->keys[i], "bad variable name '%s' (use [a-z_][a-z0-9_]*)", a->name);
		const rbk_node *v = n->vals[i], *sv = v->t == RBK_N_MAP && v->count == 2 ? rbk_node_get(v, "secret") : NULL;
		const rbk_node *vv = sv ? rbk_node_get(v, "value") : NULL;
		if (vv) { /* {value: EXPR, secret: true}: a secret variable */
			a->secret = want_bool(b, sv, "'secret'");
			v = vv;
		}
		if (v->t == RBK_N_STR)
			parse_mexpr(b, v, &a->value, "set");
		else
			a->lit = v;
	}
}

static const char *const KIND_KEYS[] = {"do", "approval", "wait", "call", "end", NULL};

static const char *const *allowed_keys(rbk_skind k)
{
	static const char *const action[] = {"do", "with", "undo", "retry", "timeout", "poll", "idempotent",
					     "dry_run", "next", "on_failure", "set", "description", NULL};
	static const char *const decision[] = {"next", "on_failure", "set", "description", NULL};
	static const char *const approval[] = {"approval", "timeout", "next", "on_failure", "set",
					       "description", NULL};
	static const char *const wait[] = {"wait", "next", "on_failure", "set", "description", NULL};
	static const char *const call[] = {"call", "with", "undo", "retry", "timeout", "idempotent", "dry_run",
					   "next", "on_failure", "set", "description", NULL};
	static const char *const end[] = {"end", "description", NULL};
	switch (k) {
	case RBK_S_ACTION: return action;
	case RBK_S_DECISION: return decision;
	case RBK_S_APPROVAL: return approval;
	case RBK_S_WAIT: return wait;
	case RBK_S_CALL: return call;
	case RBK_S_END: return end;
	}
	return end;
}

const char *rbk_model_kind_name(rbk_skind k)
{
	static const char *const names[] = {"action", "decision", "approval", "wait", "call", "end"};
	return names[k];
}

static const char *const ALL_STATE_KEYS[] = {"do", "with", "undo", "retry", "timeout", "poll", "idempotent",
					     "dry_run", "next", "on_failure", "set", "description", "approval",
					     "wait", "call", "end", NULL};

static void build_kind_keys(builder *b, rbk_state *st, const rbk_node *n)
{
	const char *const *allowed = allowed_keys(st->kind);
	for (size_t i = 0; i < n->count; i++) {
		const rbk_node *k = n->keys[i];
		if (in_list(k->text, allowed))
			continue;
		if (in_list(k->text, ALL_STATE_KEYS)) {
			if (!in_list(k->text, KIND_KEYS))
				ERR(b, k, "key '%s' does not apply to %s %s state ('%s')", k->text,
				    st->kind == RBK_S_ACTION || st->kind == RBK_S_APPROVAL || st->kind == RBK_S_END
					    ? "an"
					    : "a",
				    rbk_model_kind_name(st->kind), st->name);
			continue; /* a second kind key is reported once, by build_state */
		}
		const char *hint = closest(k->text, ALL_STATE_KEYS);
		if (hint)
			ERR(b, k, "unknown key '%s' in state '%s' (did you mean '%s'?)", k->text, st->name, hint);
		else
			ERR(b, k, "unknown key '%s' in state '%s'", k->text, st->name);
	}
}

static void build_retry(builder *b, rbk_state *st, const rbk_node *n)
{
	static const char *const keys[] = {"attempts", "delay", "backoff", "max_delay", NULL};
	if (!is_map(b, n, "'retry'"))
		return;
	check_keys(b, n, keys, "in 'retry'");
	const rbk_node *v;
	if (!(v = rbk_node_get(n, "attempts")))
		ERR(b, n, "'retry' in state '%s' needs 'attempts'", st->name);
	else if (v->t != RBK_N_INT || v->i < 1 || v->i > 1000)
		ERR(b, v, "'attempts' must be an integer from 1 to 1000, not %s",
		    v->t == RBK_N_INT ? v->text : rbk_node_type_name(v));
	else
		st->retry.attempts = (int)v->i;
	if ((v = rbk_node_get(n, "delay")))
		st->retry.delay_ms = want_literal_duration(b, v, "'delay'");
	if ((v = rbk_node_get(n, "max_delay")))
		st->retry.max_delay_ms = want_literal_duration(b, v, "'max_delay'");
	if ((v = rbk_node_get(n, "backoff"))) {
		double f = v->t == RBK_N_INT ? (double)v->i : v->t == RBK_N_NUM ? v->n : 0;
		if (f < 1 || f > 100)
			ERR(b, v, "'backoff' must be a number from 1 to 100, not %s",
			    v->text ? v->text : rbk_node_type_name(v));
		else
			st->retry.backoff = f;
	}
}

static void build_poll(builder *b, rbk_state *st, const rbk_node *n)
{
	static const char *const keys[] = {"until", "every", "for", NULL};
	if (!is_map(b, n, "'poll'"))
		return;
	check_keys(b, n, keys, "in 'poll'");
	st->has_poll = true;
	const rbk_node *v;
	if ((v = rbk_node_get(n, "until")))
		parse_mexpr(b, v, &st->poll.until, "'until'");
	else
		ERR(b, n, "'poll' in state '%s' needs 'until'", st->name);
	if ((v = rbk_node_get(n, "every")))
		st->poll.every_ms = want_duration(b, v, "'every'");
	else
		ERR(b, n, "'poll' in state '%s' needs 'every'", st->name);
	if ((v = rbk_node_get(n, "for")))
		st->poll.for_ms = want_duration(b, v, "'for'");
	else
		ERR(b, n, "'poll' in state '%s' needs 'for'", st->name);
}

static void build_approval(builder *b, rbk_state *st, const rbk_node *n)
{
	static const char *const keys[] = {"prompt", "approvers", "distinct", "timeout", NULL};
	if (n->t == RBK_N_NULL)
		return;
	if (!is_map(b, n, "'approval'"))
		return;
	check_keys(b, n, keys, "in 'approval'");
	const rbk_node *v;
	if ((v = rbk_node_get(n, "prompt"))) {
		st->approval.prompt = want_str(b, v, "'prompt'");
		check_templates(b, v, "'prompt'");
	}
	if ((v = rbk_node_get(n, "distinct")))
		st->approval.distinct = want_bool(b, v, "'distinct'");
	if ((v = rbk_node_get(n, "timeout")))
		st->approval.timeout_ms = want_duration(b, v, "'timeout'");
	if ((v = rbk_node_get(n, "approvers"))) {
		if (v->t != RBK_N_SEQ) {
			ERR(b, v, "'approvers' must be a list of names, not %s", rbk_node_type_name(v));
			return;
		}
		st->approval.approvers = rbk_xcalloc(v->count ? v->count : 1, sizeof(char *));
		for (size_t i = 0; i < v->count; i++) {
			char *s = want_str(b, v->vals[i], "an approver");
			if (s)
				st->approval.approvers[st->approval.napprovers++] = s;
		}
	}
}

static void build_state(builder *b, rbk_state *st, const rbk_node *key, const rbk_node *n)
{
	st->name = rbk_xstrdup(key->text);
	st->pos = pos_of(key);
	st->idempotent = -1;
	st->timeout_ms = -1;
	st->approval.timeout_ms = -1;
	st->retry.attempts = 1;
	st->retry.backoff = 1;
	st->retry.max_delay_ms = -1;
	if (!state_name_ok(st->name))
		ERR(b, key, "bad state name '%s' (use [a-z0-9_]+)", st->name);
	else if (!strcmp(st->name, "fail") || !strcmp(st->name, "rollback"))
		ERR(b, key, "state name '%s' is reserved: on_failure uses it as a keyword", st->name);
	char what[160];
	snprintf(what, sizeof what, "state '%s'", st->name);
	if (!is_map(b, n, what))
		return;

	/* The kind is given by which kind key is present, in file order. */
	static const rbk_skind kind_of[] = {RBK_S_ACTION, RBK_S_APPROVAL, RBK_S_WAIT, RBK_S_CALL, RBK_S_END};
	const char *first = NULL, *second = NULL;
	st->kind = RBK_S_DECISION;
	for (size_t i = 0; i < n->count; i++) {
		const char *k = n->keys[i]->text;
		for (size_t j = 0; KIND_KEYS[j]; j++) {
			if (strcmp(k, KIND_KEYS[j]) != 0)
				continue;
			if (!first) {
				first = k;
				st->kind = kind_of[j];
			} else if (!second)
				second = k;
		}
	}
	if (second)
		ERR(b, n, "state '%s' is both '%s' and '%s': a state is exactly one kind", st->name, first, second);
	build_kind_keys(b, st, n);

	const rbk_node *v;
	if ((v = rbk_node_get(n, "description")))
		st->description = want_str(b, v, "'description'");
	switch (st->kind) {
	case RBK_S_ACTION: build_call_spec(b, n, &st->act, "do", true, st->name); break;
	case RBK_S_CALL: build_call_spec(b, n, &st->act, "call", false, st->name); break;
	case RBK_S_APPROVAL: build_approval(b, st, rbk_node_get(n, "approval")); break;
	case RBK_S_WAIT: st->wait_ms = want_duration(b, rbk_node_get(n, "wait"), "'wait'"); break;
	case RBK_S_END:
		v = rbk_node_get(n, "end");
		if (v->t == RBK_N_STR && (!strcmp(v->text, "success") || !strcmp(v->text, "failure")))
			st->end_success = !strcmp(v->text, "success");
		else
			ERR(b, v, "'end' must be success or failure, not '%s'", v->text ? v->text : rbk_node_type_name(v));
		break;
	case RBK_S_DECISION: break;
	}
	if ((v = rbk_node_get(n, "next")))
		build_edges(b, st, v);
	else if (st->kind != RBK_S_END)
		ERR(b, key, "state '%s' has no 'next' (only an end state may stop)", st->name);
	if (st->kind == RBK_S_DECISION && v && !st->next_is_list && v->t == RBK_N_STR)
		ERR(b, v, "decision state '%s' needs a list of {if, to} branches in 'next'", st->name);
	if ((v = rbk_node_get(n, "on_failure")) && in_list("on_failure", allowed_keys(st->kind))) {
		st->on_failure = want_str(b, v, "'on_failure'");
		st->on_failure_pos = pos_of(v);
	}
	if ((v = rbk_node_get(n, "undo")) && in_list("undo", allowed_keys(st->kind))) {
		static const char *const keys[] = {"do", "with", NULL};
		if (is_map(b, v, "'undo'")) {
			check_keys(b, v, keys, "in 'undo'");
			st->has_undo = true;
			if (!rbk_node_get(v, "do"))
				ERR(b, v, "'undo' in state '%s' needs 'do'", st->name);
			build_call_spec(b, v, &st->undo, "do", true, st->name);
		}
	}
#define KIND_HAS(k) in_list(k, allowed_keys(st->kind))
	if ((v = rbk_node_get(n, "retry")) && KIND_HAS("retry"))
		build_retry(b, st, v);
	if ((v = rbk_node_get(n, "timeout")) && KIND_HAS("timeout"))
		st->timeout_ms = want_duration(b, v, "'timeout'");
	if (st->kind == RBK_S_APPROVAL && st->approval.timeout_ms == -1)
		st->approval.timeout_ms = st->timeout_ms;
	if ((v = rbk_node_get(n, "poll")) && KIND_HAS("poll"))
		build_poll(b, st, v);
	if ((v = rbk_node_get(n, "idempotent")) && KIND_HAS("idempotent"))
		st->idempotent = want_bool(b, v, "'idempotent'");
	if ((v = rbk_node_get(n, "set")) && KIND_HAS("set"))
		build_set(b, st, v);
	if ((v = rbk_node_get(n, "dry_run")) && KIND_HAS("dry_run") && is_map(b, v, "'dry_run'"))
		st->dry_run = v;
#undef KIND_HAS
}

static rbk_ptype param_type(builder *b, const rbk_node *v, bool *ok)
{
	const char *const *names = ptype_names;
	*ok = false;
	if (v->t == RBK_N_STR)
		for (int i = 0; names[i]; i++)
			if (!strcmp(v->text, names[i])) {
				*ok = true;
				return (rbk_ptype)i;
			}
	ERR(b, v, "bad param type '%s' (string, int, number, bool, duration or enum)",
	    v->text ? v->text : rbk_node_type_name(v));
	return RBK_P_STRING;
}

static bool default_fits(const rbk_param *p, const rbk_node *d)
{
	switch (p->type) {
	case RBK_P_STRING: return d->t == RBK_N_STR;
	case RBK_P_INT: return d->t == RBK_N_INT;
	case RBK_P_NUMBER: return d->t == RBK_N_INT || d->t == RBK_N_NUM;
	case RBK_P_BOOL: return d->t == RBK_N_BOOL;
	case RBK_P_DURATION: return d->t == RBK_N_STR && rbk_dur_parse(d->text) >= 0;
	case RBK_P_ENUM:
		if (d->t != RBK_N_STR)
			return false;
		for (size_t i = 0; i < p->nvalues; i++)
			if (!strcmp(p->values[i], d->text))
				return true;
		return p->nvalues == 0; /* no values: already reported */
	}
	return false;
}

static const char *ptype_name(rbk_ptype t)
{
	static const char *const names[] = {"string", "int", "number", "bool", "duration", "enum"};
	return names[t];
}

static void build_param(builder *b, rbk_param *p, const rbk_node *key, const rbk_node *n)
{
	static const char *const keys[] = {"type", "default", "required", "description", "min", "max",
					   "pattern", "secret", "env", "values", NULL};
	p->name = rbk_xstrdup(key->text);
	p->pos = pos_of(key);
	if (!var_name_ok(p->name))
		ERR(b, key, "bad param name '%s' (use [a-z_][a-z0-9_]*)", p->name);
	char what[160];
	snprintf(what, sizeof what, "param '%s'", p->name);
	if (!is_map(b, n, what))
		return;
	snprintf(what, sizeof what, "in param '%s'", p->name);
	check_keys(b, n, keys, what);
	const rbk_node *v;
	bool typed = false;
	if ((v = rbk_node_get(n, "type")))
		p->type = param_type(b, v, &typed);
	else
		ERR(b, key, "param '%s' has no 'type'", p->name);
	if ((v = rbk_node_get(n, "values"))) {
		if (p->type != RBK_P_ENUM || !typed)
			ERR(b, v, "'values' applies to enum params only (param '%s')", p->name);
		else if (v->t != RBK_N_SEQ || v->count == 0)
			ERR(b, v, "'values' must be a non-empty list of strings");
		else {
			p->values = rbk_xcalloc(v->count, sizeof(char *));
			for (size_t i = 0; i < v->count; i++) {
				char *s = want_str(b, v->vals[i], "an enum value");
				if (s)
					p->values[p->nvalues++] = s;
			}
		}
	} else if (typed && p->type == RBK_P_ENUM)
		ERR(b, key, "enum param '%s' needs 'values'", p->name);
	if ((v = rbk_node_get(n, "description")))
		p->description = want_str(b, v, "'description'");
	if ((v = rbk_node_get(n, "secret")))
		p->secret = want_bool(b, v, "'secret'");
	if ((v = rbk_node_get(n, "env"))) {
		p->env = want_str(b, v, "'env'");
		if (p->env && !name_ok(p->env, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_",
				       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789"))
			ERR(b, v, "bad environment variable name '%s'", p->env);
	}
	if ((v = rbk_node_get(n, "pattern"))) {
		p->pattern = want_str(b, v, "'pattern'");
		p->pattern_pos = pos_of(v);
		if (typed && p->type != RBK_P_STRING)
			ERR(b, v, "'pattern' applies to string params only (param '%s')", p->name);
	}
	const char *mm[] = {"min", "max"};
	for (int i = 0; i < 2; i++) {
		if (!(v = rbk_node_get(n, mm[i])))
			continue;
		if (typed && p->type != RBK_P_INT && p->type != RBK_P_NUMBER)
			ERR(b, v, "'%s' applies to int and number params only (param '%s')", mm[i], p->name);
		else if (v->t != RBK_N_INT && v->t != RBK_N_NUM)
			ERR(b, v, "'%s' must be a number, not %s", mm[i], rbk_node_type_name(v));
		else {
			double x = v->t == RBK_N_INT ? (double)v->i : v->n;
			if (i == 0) {
				p->has_min = true;
				p->min = x;
			} else {
				p->has_max = true;
				p->max = x;
			}
		}
	}
	if (p->has_min && p->has_max && p->min > p->max)
		ERR(b, key, "param '%s': min is greater than max", p->name);
	bool has_required = false;
	if ((v = rbk_node_get(n, "required"))) {
		p->required = want_bool(b, v, "'required'");
		has_required = true;
	}
	if ((v = rbk_node_get(n, "default")) && v->t != RBK_N_NULL) {
		p->def = v;
		if (typed && !default_fits(p, v))
			ERR(b, v, "default of param '%s' is not a valid %s%s", p->name, ptype_name(p->type),
			    p->type == RBK_P_ENUM ? " (not one of its values)" : "");
	}
	if (!has_required)
		p->required = p->def == NULL && p->env == NULL;
}

static void build_params(builder *b, rbk_runbook *rb, const rbk_node *n)
{
	if (!is_map(b, n, "'params'"))
		return;
	rb->params = rbk_xcalloc(n->count ? n->count : 1, sizeof *rb->params);
	for (size_t i = 0; i < n->count; i++)
		build_param(b, &rb->params[rb->nparams++], n->keys[i], n->vals[i]);
}

static void build_vars(builder *b, rbk_runbook *rb, const rbk_node *n)
{
	if (!is_map(b, n, "'vars'"))
		return;
	rb->vars = rbk_xcalloc(n->count ? n->count : 1, sizeof *rb->vars);
	for (size_t i = 0; i < n->count; i++) {
		rbk_assign *a = &rb->vars[rb->nvars++];
		a->name = rbk_xstrdup(n->keys[i]->text);
		a->lit = n->vals[i];
		if (!var_name_ok(a->name))
			ERR(b, n->keys[i], "bad variable name '%s' (use [a-z_][a-z0-9_]*)", a->name);
		check_templates(b, n->vals[i], "'vars'");
	}
}

/* A queue names hosts or pools (host:vps1, trading): a word safe in
 * messages, logs and unit names. */
bool rbk_model_queue_name_ok(const char *q)
{
	size_t n = strlen(q);
	if (n == 0 || n > 100)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)q[i]) && !strchr("._:-", q[i]))
			return false;
	return true;
}
#define queue_name_ok rbk_model_queue_name_ok

static void build_schedules(builder *b, rbk_runbook *rb, const rbk_node *n)
{
	static const char *const keys[] = {"cron", "timezone", "params", "catch_up", "overlap", "queue", NULL};
	if (n->t != RBK_N_SEQ) {
		ERR(b, n, "'schedule' must be a list, not %s", rbk_node_type_name(n));
		return;
	}
	rb->schedules = rbk_xcalloc(n->count ? n->count : 1, sizeof *rb->schedules);
	for (size_t i = 0; i < n->count; i++) {
		const rbk_node *e = n->vals[i];
		if (!is_map(b, e, "a schedule entry"))
			continue;
		rbk_schedule *s = &rb->schedules[rb->nschedules++];
		check_keys(b, e, keys, "in a schedule entry");
		const rbk_node *v;
		s->pos = pos_of(e);
		if ((v = rbk_node_get(e, "cron"))) {
			s->cron = want_str(b, v, "'cron'");
			s->pos = pos_of(v);
			s->cron_node = v;
		} else
			ERR(b, e, "a schedule entry needs 'cron'");
		s->tz_pos = s->pos;
		if ((v = rbk_node_get(e, "timezone"))) {
			s->timezone = want_str(b, v, "'timezone'");
			s->tz_pos = pos_of(v);
		}
		if (!s->timezone)
			s->timezone = rbk_xstrdup("UTC");
		if ((v = rbk_node_get(e, "params")) && is_map(b, v, "'params' of a schedule"))
			s->params = v;
		if ((v = rbk_node_get(e, "catch_up")))
			s->catch_up_ms = want_literal_duration(b, v, "'catch_up'");
		if ((v = rbk_node_get(e, "queue")) && (s->queue = want_str(b, v, "'queue'")) && !queue_name_ok(s->queue))
			ERR(b, v, "bad queue name '%s' (letters, digits and . _ : - only, at most 100)", s->queue);
		if ((v = rbk_node_get(e, "overlap"))) {
			if (v->t == RBK_N_STR && !strcmp(v->text, "skip"))
				s->overlap = RBK_OVERLAP_SKIP;
			else if (v->t == RBK_N_STR && !strcmp(v->text, "queue"))
				s->overlap = RBK_OVERLAP_QUEUE;
			else if (v->t == RBK_N_STR && !strcmp(v->text, "allow"))
				s->overlap = RBK_OVERLAP_ALLOW;
			else
				ERR(b, v, "'overlap' must be skip, queue or allow, not '%s'",
				    v->text ? v->text : rbk_node_type_name(v));
		}
	}
}

static const char *const notify_statuses[] = {"started", "waiting", "needs_attention", "succeeded", "failed",
					       "rolled_back", "aborted", NULL};

unsigned rbk_notify_bit(const char *status)
{
	for (int i = 0; notify_statuses[i]; i++)
		if (!strcmp(status, notify_statuses[i]))
			return 1u << i;
	return 0;
}

static void build_notify(builder *b, rbk_runbook *rb, const rbk_node *n)
{
	static const char *const keys[] = {"on", "do", "with", "attempts", NULL};
	if (n->t != RBK_N_SEQ) {
		ERR(b, n, "'notify' must be a list of {on, do, with}, not %s", rbk_node_type_name(n));
		return;
	}
	rb->notify = rbk_xcalloc(n->count ? n->count : 1, sizeof *rb->notify);
	for (size_t i = 0; i < n->count; i++) {
		const rbk_node *e = n->vals[i], *v;
		rbk_notify *nt = &rb->notify[rb->nnotify++];
		nt->attempts = 3;
		nt->doc = b->doc;
		if (!is_map(b, e, "a 'notify' entry"))
			continue;
		check_keys(b, e, keys, "in a 'notify' entry");
		if (!(v = rbk_node_get(e, "on")))
			ERR(b, e, "a 'notify' entry needs 'on': the statuses it is sent for");
		else if (v->t != RBK_N_SEQ || v->count == 0)
			ERR(b, v, "'on' must be a list of statuses (started, waiting, needs_attention, succeeded, failed, "
				  "rolled_back, aborted)");
		else
			for (size_t j = 0; j < v->count; j++) {
				const rbk_node *st = v->vals[j];
				unsigned bit = st->t == RBK_N_STR ? rbk_notify_bit(st->text) : 0;
				if (!bit)
					ERR(b, st, "'on': unknown status '%s' (started, waiting, needs_attention, succeeded, "
						   "failed, rolled_back, aborted)",
					    st->text ? st->text : rbk_node_type_name(st));
				nt->on |= bit;
			}
		if (!rbk_node_get(e, "do"))
			ERR(b, e, "a 'notify' entry needs 'do': the action that sends it");
		build_call_spec(b, e, &nt->act, "do", true, "notify");
		if ((v = rbk_node_get(e, "attempts"))) {
			if (v->t != RBK_N_INT || v->i < 1 || v->i > 10)
				ERR(b, v, "'attempts' must be an integer from 1 to 10, not %s",
				    v->t == RBK_N_INT ? v->text : rbk_node_type_name(v));
			else
				nt->attempts = (int)v->i;
		}
	}
}

int rbk_model_build_notify(rbk_runbook **out, const rbk_doc *doc, rbk_diag *d)
{
	static const char *const keys[] = {"notify", NULL};
	builder bb = {doc, d, 0, NULL}, *b = &bb;
	rbk_runbook *rb = rbk_xcalloc(1, sizeof *rb);
	rb->doc = doc;
	rb->name = rbk_xstrdup("_notify");
	bb.rb = rb;
	*out = NULL;
	const rbk_node *root = doc->root, *v;
	if (root->t != RBK_N_MAP)
		ERR(b, root, "a shared notify file is a map with the key notify, not %s", rbk_node_type_name(root));
	else {
		check_keys(b, root, keys, "in a shared notify file");
		if ((v = rbk_node_get(root, "notify")))
			build_notify(b, rb, v);
		else
			error_at(b, 1, 1, "missing 'notify'");
	}
	if (b->errors) {
		rbk_model_free(rb);
		return -1;
	}
	*out = rb;
	return 0;
}

int rbk_model_build(rbk_runbook **out, const rbk_doc *doc, rbk_diag *d)
{
	static const char *const keys[] = {"rbk",	  "name",	     "title", "description", "params",
					   "vars",	  "lock",	     "queue", "schedule",    "on_failure",
					   "max_transitions", "start", "states",  "notify",	     NULL};
	builder bb = {doc, d, 0, NULL}, *b = &bb;
	rbk_runbook *rb = rbk_xcalloc(1, sizeof *rb);
	bb.rb = rb;
	rb->doc = doc;
	*out = NULL;
	const rbk_node *root = doc->root, *v;
	if (root->t != RBK_N_MAP) {
		ERR(b, root, "a runbook is a map with keys rbk, name, start and states, not %s",
		    rbk_node_type_name(root));
		rbk_model_free(rb);
		return -1;
	}
	check_keys(b, root, keys, "at the top level");
	if (!(v = rbk_node_get(root, "rbk")))
		error_at(b, 1, 1, "missing 'rbk: 1' (the format version)");
	else if (v->t != RBK_N_INT)
		ERR(b, v, "'rbk' must be the integer 1 (the format version), not %s", rbk_node_type_name(v));
	else if (v->i != 1)
		ERR(b, v, "unsupported format version %s (this rbk reads 'rbk: 1')", v->text);
	if (!(v = rbk_node_get(root, "name")))
		error_at(b, 1, 1, "missing 'name'");
	else if ((rb->name = want_str(b, v, "'name'")) && !runbook_name_ok(rb->name))
		ERR(b, v, "bad runbook name '%s' (use [a-z0-9][a-z0-9-]*)", rb->name);
	if ((v = rbk_node_get(root, "title")))
		rb->title = want_str(b, v, "'title'");
	if ((v = rbk_node_get(root, "description")))
		rb->description = want_str(b, v, "'description'");
	if ((v = rbk_node_get(root, "params")))
		build_params(b, rb, v);
	if ((v = rbk_node_get(root, "vars")))
		build_vars(b, rb, v);
	if ((v = rbk_node_get(root, "lock"))) {
		rb->lock = want_str(b, v, "'lock'");
		rb->lock_pos = pos_of(v);
		check_templates(b, v, "'lock'");
	}
	if ((v = rbk_node_get(root, "queue")) && (rb->queue = want_str(b, v, "'queue'")) && !queue_name_ok(rb->queue))
		ERR(b, v, "bad queue name '%s' (letters, digits and . _ : - only, at most 100)", rb->queue);
	if ((v = rbk_node_get(root, "schedule")))
		build_schedules(b, rb, v);
	if ((v = rbk_node_get(root, "notify")))
		build_notify(b, rb, v);
	if ((v = rbk_node_get(root, "on_failure"))) {
		rb->on_failure = want_str(b, v, "'on_failure'");
		rb->on_failure_pos = pos_of(v);
	}
	if (!rb->on_failure)
		rb->on_failure = rbk_xstrdup("fail");
	rb->max_transitions = RBK_MAX_TRANSITIONS;
	if ((v = rbk_node_get(root, "max_transitions"))) {
		if (v->t != RBK_N_INT || v->i < 1 || v->i > RBK_MAX_TRANSITIONS_LIMIT)
			ERR(b, v, "'max_transitions' must be an integer from 1 to %d, not %s", RBK_MAX_TRANSITIONS_LIMIT,
			    v->t == RBK_N_INT ? v->text : rbk_node_type_name(v));
		else
			rb->max_transitions = v->i;
	}
	if (!(v = rbk_node_get(root, "start")))
		error_at(b, 1, 1, "missing 'start' (the first state)");
	else if ((rb->start = want_str(b, v, "'start'")))
		rb->start_pos = pos_of(v);
	if (!(v = rbk_node_get(root, "states")))
		error_at(b, 1, 1, "missing 'states'");
	else if (is_map(b, v, "'states'")) {
		if (v->count == 0)
			ERR(b, v, "'states' is empty");
		rb->states = rbk_xcalloc(v->count ? v->count : 1, sizeof *rb->states);
		for (size_t i = 0; i < v->count; i++)
			build_state(b, &rb->states[rb->nstates++], v->keys[i], v->vals[i]);
	}
	if (b->errors) {
		rbk_model_free(rb);
		return -1;
	}
	*out = rb;
	return 0;
}

static void free_mexpr(rbk_mexpr *m)
{
	rbk_free(m->src);
	rbk_expr_free(m->expr);
}

void rbk_model_free(rbk_runbook *rb)
{
	if (!rb)
		return;
	for (size_t i = 0; i < rb->nparams; i++) {
		rbk_param *p = &rb->params[i];
		rbk_free(p->name);
		rbk_free(p->description);
		rbk_free(p->pattern);
		rbk_free(p->env);
		for (size_t j = 0; j < p->nvalues; j++)
			rbk_free(p->values[j]);
		rbk_free(p->values);
	}
	rbk_free(rb->params);
	for (size_t i = 0; i < rb->nnotify; i++)
		rbk_free(rb->notify[i].act.action);
	rbk_free(rb->notify);
	for (size_t i = 0; i < rb->nvars; i++)
		rbk_free(rb->vars[i].name);
	rbk_free(rb->vars);
	for (size_t i = 0; i < rb->nschedules; i++) {
		rbk_free(rb->schedules[i].cron);
		rbk_free(rb->schedules[i].timezone);
		rbk_free(rb->schedules[i].queue);
	}
	rbk_free(rb->schedules);
	for (size_t i = 0; i < rb->nstates; i++) {
		rbk_state *s = &rb->states[i];
		rbk_free(s->name);
		rbk_free(s->description);
		rbk_free(s->act.action);
		rbk_free(s->undo.action);
		rbk_free(s->approval.prompt);
		for (size_t j = 0; j < s->approval.napprovers; j++)
			rbk_free(s->approval.approvers[j]);
		rbk_free(s->approval.approvers);
		for (size_t j = 0; j < s->nnext; j++) {
			free_mexpr(&s->next[j].guard);
			rbk_free(s->next[j].to);
		}
		rbk_free(s->next);
		rbk_free(s->on_failure);
		free_mexpr(&s->poll.until);
		for (size_t j = 0; j < s->nset; j++) {
			rbk_free(s->set[j].name);
			free_mexpr(&s->set[j].value);
		}
		rbk_free(s->set);
	}
	rbk_free(rb->states);
	rbk_free(rb->name);
	rbk_free(rb->title);
	rbk_free(rb->description);
	rbk_free(rb->lock);
	rbk_free(rb->queue);
	rbk_free(rb->on_failure);
	rbk_free(rb->start);
	rbk_free(rb);
}

int rbk_model_state(const rbk_runbook *rb, const char *name)
{
	for (size_t i = 0; i < rb->nstates; i++)
		if (!strcmp(rb->states[i].name, name))
			return (int)i;
	return -1;
}

const rbk_param *rbk_model_param(const rbk_runbook *rb, const char *name)
{
	for (size_t i = 0; i < rb->nparams; i++)
		if (!strcmp(rb->params[i].name, name))
			return &rb->params[i];
	return NULL;
}
