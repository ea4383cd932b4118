/* params: bind and check a run's params. */
#include "runbook/params.h"
#include "base/dur.h"
#include "base/mem.h"
#include "lang/regex.h"
#include "runbook/suggest.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const TYPE_NAMES[] = {"a string", "an int", "a number", "a bool", "a duration such as 30s", "an enum"};

int rbk_params_parse_arg(const char *text, rbk_param_arg *out, char *namebuf, size_t namelen, rbk_err *err)
{
	const char *eq = strchr(text, '=');
	if (!eq || eq == text) {
		rbk_err_set(err, -1, "-p '%s': write name=value", rbk_err_quote(text).s);
		return -1;
	}
	size_t n = (size_t)(eq - text);
	if (n >= namelen) {
		rbk_err_set(err, -1, "-p '%s': name too long", rbk_err_quote(text).s);
		return -1;
	}
	memcpy(namebuf, text, n);
	namebuf[n] = '\0';
	out->name = namebuf;
	out->value = eq + 1;
	return 0;
}

/* Text (command line, environment) -> a typed value for p. */
static int from_text(const rbk_param *p, const char *text, const char *source, rbk_val *out, rbk_err *err)
{
	char *end;
	switch (p->type) {
	case RBK_P_STRING:
	case RBK_P_ENUM: *out = rbk_val_str(text); return 0;
	case RBK_P_INT: {
		errno = 0;
		long long v = strtoll(text, &end, 10);
		if (*text && !*end && !errno) {
			*out = rbk_val_int(v);
			return 0;
		}
		break;
	}
	case RBK_P_NUMBER: {
		double v = strtod(text, &end);
		if (*text && !*end && isfinite(v)) {
			*out = rbk_val_num(v);
			return 0;
		}
		break;
	}
	case RBK_P_BOOL:
		if (!strcmp(text, "true") || !strcmp(text, "false")) {
			*out = rbk_val_bool(text[0] == 't');
			return 0;
		}
		break;
	case RBK_P_DURATION: {
		int64_t ms = rbk_dur_parse(text);
		if (ms >= 0) {
			*out = rbk_val_int(ms);
			return 0;
		}
		break;
	}
	}
	rbk_err_set(err, -1, "param '%s' (%s): '%s' is not %s", p->name, source,
		    p->secret ? "***" : rbk_err_quote(text).s, TYPE_NAMES[p->type]);
	return -1;
}

/* A typed value (preset, default) -> the param's representation. */
static int from_value(const rbk_param *p, const rbk_val *v, const char *source, rbk_val *out, rbk_err *err)
{
	bool ok = false;
	switch (p->type) {
	case RBK_P_STRING:
	case RBK_P_ENUM: ok = v->t == RBK_V_STR; break;
	case RBK_P_INT: ok = v->t == RBK_V_INT; break;
	case RBK_P_NUMBER: ok = v->t == RBK_V_INT || v->t == RBK_V_NUM; break;
	case RBK_P_BOOL: ok = v->t == RBK_V_BOOL; break;
	case RBK_P_DURATION:
		if (v->t == RBK_V_STR)
			return from_text(p, v->u.s.s, source, out, err);
		if (v->t == RBK_V_DUR && v->u.i >= 0) { /* a caller's duration: kept as milliseconds */
			*out = rbk_val_int(v->u.i);
			return 0;
		}
		ok = v->t == RBK_V_INT && v->u.i >= 0; /* already milliseconds */
		break;
	}
	if (!ok) {
		char *txt = rbk_val_to_text(v);
		rbk_err_set(err, -1, "param '%s' (%s): %s '%s' is not %s", p->name, source, rbk_val_type_name(v->t),
			    p->secret ? "***" : rbk_err_quote(txt).s, TYPE_NAMES[p->type]);
		rbk_free(txt);
		return -1;
	}
	*out = p->type == RBK_P_NUMBER && v->t == RBK_V_INT ? rbk_val_num((double)v->u.i) : rbk_val_copy(v);
	return 0;
}

static rbk_val node_value(const rbk_node *n)
{
	switch (n->t) {
	case RBK_N_BOOL: return rbk_val_bool(n->b);
	case RBK_N_INT: return rbk_val_int(n->i);
	case RBK_N_NUM: return rbk_val_num(n->n);
	case RBK_N_STR: return rbk_val_strn(n->text, n->len);
	default: return rbk_val_null();
	}
}

/* Enum values, min, max and pattern. */
static int constrain(const rbk_param *p, const rbk_val *v, const char *source, rbk_err *err)
{
	const char *shown = p->secret ? "***" : v->t == RBK_V_STR ? v->u.s.s : NULL;
	if (p->type == RBK_P_ENUM) {
		for (size_t i = 0; i < p->nvalues; i++)
			if (!strcmp(p->values[i], v->u.s.s))
				return 0;
		rbk_buf b = {0};
		for (size_t i = 0; i < p->nvalues; i++)
			rbk_buf_printf(&b, "%s%s", i ? ", " : "", p->values[i]);
		rbk_err_set(err, -1, "param '%s' (%s): '%s' is not one of %s", p->name, source, rbk_err_quote(shown).s,
			    b.s);
		rbk_buf_free(&b);
		return -1;
	}
	if (v->t == RBK_V_INT || v->t == RBK_V_NUM) {
		double x = v->t == RBK_V_INT ? (double)v->u.i : v->u.n;
		if (p->has_min && x < p->min) {
			rbk_err_set(err, -1, "param '%s' (%s): %g is below the minimum %g", p->name, source, x, p->min);
			return -1;
		}
		if (p->has_max && x > p->max) {
			rbk_err_set(err, -1, "param '%s' (%s): %g is above the maximum %g", p->name, source, x, p->max);
			return -1;
		}
	}
	if (p->pattern && v->t == RBK_V_STR) {
		rbk_re *re = NULL;
		rbk_err e = {0};
		int rc = rbk_re_compile(&re, p->pattern, strlen(p->pattern), "", 1, &e);
		if (rc == 0)
			rc = rbk_re_match(re, v->u.s.s, v->u.s.len, -1, NULL, NULL, &e);
		rbk_re_free(re);
		if (rc != 1) {
			rbk_err_set(err, -1, "param '%s' (%s): '%s' does not match the pattern %s", p->name, source,
				    rbk_err_quote(shown).s, rbk_err_quote(p->pattern).s);
			return -1;
		}
	}
	return 0;
}

/* Constrain a freshly parsed value; on failure it is released. */
static int settle(const rbk_param *p, int parsed, rbk_val *out, const char *source, rbk_err *err)
{
	if (parsed < 0)
		return -1;
	if (constrain(p, out, source, err) < 0) {
		rbk_val_free(out);
		return -1;
	}
	return 0;
}

static int bind_one(const rbk_param *p, const rbk_param_arg *args, size_t nargs, const rbk_val *preset,
		    rbk_val *out, rbk_err *err)
{
	const char *text = NULL;
	for (size_t i = 0; i < nargs; i++)
		if (!strcmp(args[i].name, p->name))
			text = args[i].value; /* the last -p wins, as with most tools */
	if (text)
		return settle(p, from_text(p, text, "-p", out, err), out, "-p", err);
	const rbk_val *pv = preset ? rbk_val_map_get(preset, p->name) : NULL;
	if (pv)
		return settle(p, from_value(p, pv, "given", out, err), out, "given", err);
	const char *env = p->env ? getenv(p->env) : NULL;
	if (env) {
		char src[160];
		snprintf(src, sizeof src, "$%s", p->env);
		return settle(p, from_text(p, env, src, out, err), out, src, err);
	}
	if (p->def) {
		rbk_val d = node_value(p->def);
		int rc = settle(p, from_value(p, &d, "default", out, err), out, "default", err);
		rbk_val_free(&d);
		return rc;
	}
	if (p->required) {
		if (p->env)
			rbk_err_set(err, -1, "param '%s' is required: give -p %s=VALUE or set $%s", p->name, p->name, p->env);
		else
			rbk_err_set(err, -1, "param '%s' is required: give -p %s=VALUE", p->name, p->name);
		return -1;
	}
	*out = rbk_val_null();
	return 0;
}

int rbk_params_bind(const rbk_runbook *rb, const rbk_param_arg *args, size_t nargs, const rbk_val *preset,
		    rbk_val *out, rbk_mask *mask, rbk_err *err)
{
	/* Unknown names first: a typo must not silently fall back to a default. */
	const char **names = rbk_xcalloc(rb->nparams + 1, sizeof *names);
	for (size_t i = 0; i < rb->nparams; i++)
		names[i] = rb->params[i].name;
	if (preset && preset->t != RBK_V_MAP)
		preset = NULL;
	for (size_t i = 0; i < nargs + (preset ? preset->u.map.n : 0); i++) {
		const char *n = i < nargs ? args[i].name : preset->u.map.keys[i - nargs];
		if (rbk_model_param(rb, n))
			continue;
		const char *hint = rbk_suggest(n, names, rb->nparams);
		rbk_err_set(err, -1, "runbook '%s' has no param '%s'%s%s%s", rb->name, n, hint ? " (did you mean '" : "",
			    hint ? hint : "", hint ? "'?)" : "");
		rbk_free(names);
		return -1;
	}
	rbk_free(names);
	rbk_val m = rbk_val_map();
	for (size_t i = 0; i < rb->nparams; i++) {
		rbk_val v;
		if (bind_one(&rb->params[i], args, nargs, preset, &v, err) < 0) {
			rbk_val_free(&m);
			return -1;
		}
		/* Declared secret, or given a value computed from a secret (a
		 * call's with:): secret either way. */
		const rbk_val *given = preset ? rbk_val_map_get(preset, rb->params[i].name) : NULL;
		if (rb->params[i].secret || (given && rbk_val_has_secret(given)))
			rbk_val_mark_secret(&v);
		if (mask && rb->params[i].secret && v.t != RBK_V_NULL && v.t != RBK_V_BOOL) {
			char *t = rbk_val_to_text(&v);
			rbk_mask_add(mask, t);
			rbk_free(t);
		}
		if (mask)
			rbk_mask_add_val(mask, &v);
		rbk_val_map_set(&m, rb->params[i].name, v);
	}
	*out = m;
	return 0;
}

rbk_val rbk_params_public(const rbk_runbook *rb, const rbk_val *bound)
{
	rbk_val m = rbk_val_map();
	for (size_t i = 0; i < bound->u.map.n; i++) {
		const rbk_param *p = rbk_model_param(rb, bound->u.map.keys[i]);
		const rbk_val *v = &bound->u.map.vals[i];
		rbk_val_map_set(&m, bound->u.map.keys[i],
				(p && p->secret) || rbk_val_has_secret(v) ? rbk_val_str("***") : rbk_val_copy(v));
	}
	return m;
}
