/* eval: evaluate a syntax tree to a typed value.
 *
 * Semantics (strict and typed; nothing is converted implicitly):
 * - && || ! need bool operands; && and || short-circuit, so the right side
 *   is not evaluated (and cannot fail) when the left decides.
 * - == != accept any types: int and number compare numerically, otherwise
 *   values of different types are unequal; lists and maps compare deeply
 *   (map key order does not matter), regexes by source and flags.
 * - < <= > >= need two numbers (int and number may mix) or two strings
 *   (byte order).
 * - =~ !~ need a string on the left and a regex or a string on the right; a
 *   string is compiled as a pattern without flags when evaluated.
 * - + adds numbers or concatenates two strings; - * need numbers; int op int
 *   stays int and overflow is an error; a number on either side gives a
 *   number. / always gives a number; division by zero is an error. % needs
 *   ints; modulo by zero is an error. Unary - needs a number.
 * - A guard's result must be a bool.
 * - Names resolve through env->lookup, else by walking env->root (maps);
 *   an absent name fails with RBK_ERR_NONAME at the name's column.
 * - Functions (arity is checked by the parser):
 *   int(x): int; a number is truncated toward zero; a string is trimmed and
 *     read as a decimal integer or decimal number (truncated); bool is 1/0;
 *     anything else (null included) is an error. num(x): the same, as a number.
 *   str(x): rbk_val_to_text. len(x): code points of a string (UTF-8), items
 *     of a list, entries of a map. lower/upper: ASCII case of a string.
 *     trim: strips ASCII whitespace at both ends.
 *   contains(a, b): substring (strings), an element equal to b (list), key b
 *     (map). starts_with(a, b), ends_with(a, b): strings.
 *   json(text, path): rbk_json_path. capture(text, re, n): group n of the
 *     first match, null when nothing matches or the group did not take part.
 *   default(x, y): y when x is null or x fails because a name does not exist
 *     (RBK_ERR_NONAME); any other error of x propagates.
 *   if(c, a, b): a when c is true, b when it is false (c must be a bool);
 *     only the branch taken is evaluated, like && and ||. A value chosen by
 *     a secret condition is secret.
 *   now(): Unix seconds. age(path): now() minus the file's mtime, in seconds.
 *   now() and age() read env->now when set, else the wall clock.
 *   seconds(d): a duration's seconds (an int when whole). duration(x): a
 *     string written as a duration, or a number of seconds, as a duration.
 * - Durations (5m, 1h30m, 250ms; duration params; steps.S.duration_ms):
 *   duration +- duration and duration * / number give a duration; duration /
 *   duration gives a number. A duration meets a plain number (in + - and the
 *   comparisons) only as seconds, the unit of now() and age(), so that
 *   `now() - vars.t > 5m` reads as it is written; a number written in the
 *   expression has no unit and is refused there (write 2s, not 2). + - of a
 *   duration and a number give seconds (now() - 5m is a Unix time). A string
 *   that is written as a duration (a duration kept in vars, read back from
 *   the record) meets a duration as one.
 * - Errors: lowercase, no trailing period; err->pos is the byte offset of the
 *   offending sub-expression (the operand of the wrong type, the name that
 *   does not exist, the argument a function rejects). */
#include "lang/eval.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/dur.h"
#include "lang/json.h"
#include "lang/regex.h"

static int eval(const rbk_expr *e, const rbk_eval_env *env, rbk_val *out, rbk_err *err);

/* Set err (never NULL inside this file) and return -1. */
__attribute__((format(printf, 3, 4))) static int fail(rbk_err *err, int pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err->pos = pos;
	err->code = RBK_ERR_GENERIC;
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *tname(const rbk_val *v) { return rbk_val_type_name(v->t); }
static bool is_num(const rbk_val *v) { return v->t == RBK_V_INT || v->t == RBK_V_NUM; }
static double dbl(const rbk_val *v) { return v->t == RBK_V_INT ? (double)v->u.i : v->u.n; }

/* A number written in the expression (2000, -5): it says no unit. */
static bool is_number_literal(const rbk_expr *e)
{
	if (e->kind == RBK_E_UNARY && e->op == RBK_T_MINUS)
		e = e->a;
	return e->kind == RBK_E_LIT && (e->lit.t == RBK_V_INT || e->lit.t == RBK_V_NUM);
}

/* One side of an operator that meets a duration, in milliseconds: a
 * duration as it is, a computed number as seconds, a string written as a
 * duration. 1 when it converts, 0 when the type cannot meet a duration
 * (the caller's message applies), -1 with err for a number literal. */
static int dur_side(const rbk_expr *side, const rbk_val *v, const char *op, double *ms, rbk_err *err)
{
	if (v->t == RBK_V_DUR) {
		*ms = (double)v->u.i;
		return 1;
	}
	if (is_num(v)) {
		if (is_number_literal(side))
			return fail(err, side->pos, "%s: a number without a unit cannot meet a duration (write 2s, 500ms, 5m)",
				    op);
		*ms = dbl(v) * 1000.0;
		return 1;
	}
	int64_t d;
	if (v->t == RBK_V_STR && (d = rbk_dur_parse(v->u.s.s)) >= 0) {
		*ms = (double)d;
		return 1;
	}
	return 0;
}

/* Both sides of e in milliseconds (dur_side on each). -1 with err; 0 when
 * a side's type cannot meet a duration, *bad its position; 1 when both do. */
static int dur_sides(const rbk_expr *e, const rbk_val *a, const rbk_val *b, double *x, double *y, int *bad,
		     rbk_err *err)
{
	const char *op = rbk_tok_name(e->op);
	int ra = dur_side(e->a, a, op, x, err);
	int rb = ra < 0 ? -1 : dur_side(e->b, b, op, y, err);
	if (ra < 0 || rb < 0)
		return -1;
	*bad = !ra ? e->a->pos : e->b->pos;
	return ra && rb;
}

/* Seconds as an int when whole, else a number. */
static rbk_val seconds_val(double s)
{
	if (s == trunc(s) && s >= -9.2e18 && s <= 9.2e18)
		return rbk_val_int((int64_t)s);
	return rbk_val_num(s);
}

/* Milliseconds as a duration; fails (at pos) when out of range. */
static int dur_val(double ms, int pos, rbk_val *out, rbk_err *err)
{
	ms = round(ms);
	if (!(ms >= -9.2e18 && ms <= 9.2e18))
		return fail(err, pos, "duration out of range");
	*out = rbk_val_dur((int64_t)ms);
	return 0;
}

/* ---- names ---- */

static char *join_name(const char *const *segs, size_t n)
{
	rbk_buf b = {0};
	for (size_t i = 0; i < n; i++) {
		if (i)
			rbk_buf_putc(&b, '.');
		rbk_buf_puts(&b, segs[i]);
	}
	return rbk_buf_take(&b);
}

static int no_name(rbk_err *err, const char *const *segs, size_t n)
{
	if (!err)
		return -1;
	char *name = join_name(segs, n);
	rbk_err_set(err, -1, "unknown name '%s'", name);
	err->code = RBK_ERR_NONAME;
	rbk_free(name);
	return -1;
}

int rbk_eval_lookup_root(const rbk_val *root, const char *const *segs, size_t n, rbk_val *out,
			 rbk_err *err)
{
	const rbk_val *cur = root;
	*out = rbk_val_null();
	if (n == 0)
		return no_name(err, segs, n);
	bool secret = false; /* a value inside a secret is a secret */
	for (size_t i = 0; i < n; i++) {
		if (!cur || cur->t != RBK_V_MAP)
			return no_name(err, segs, n);
		secret |= cur->secret;
		cur = rbk_val_map_get(cur, segs[i]);
	}
	if (!cur)
		return no_name(err, segs, n);
	*out = rbk_val_copy(cur);
	out->secret |= secret;
	return 0;
}

static int eval_name(const rbk_expr *e, const rbk_eval_env *env, rbk_val *out, rbk_err *err)
{
	const char *const *segs = (const char *const *)e->segs;
	int rc;
	*out = rbk_val_null();
	if (env && env->lookup) {
		/* A default message in case the callback fails without one. */
		char *name = join_name(segs, e->nsegs);
		fail(err, e->pos, "cannot resolve name '%s'", name);
		rbk_free(name);
		rc = env->lookup(env->ctx, segs, e->nsegs, out, err);
	} else {
		rc = rbk_eval_lookup_root(env ? env->root : NULL, segs, e->nsegs, out, err);
	}
	if (rc < 0) {
		rbk_val_free(out);
		err->pos = e->pos;
		return -1;
	}
	return 0;
}

/* How e is written, for messages: steps.q.out.rows[0].age. */
static void path_text(rbk_buf *b, const rbk_expr *e)
{
	if (e->kind == RBK_E_NAME) {
		for (size_t i = 0; i < e->nsegs; i++)
			rbk_buf_printf(b, "%s%s", i ? "." : "", e->segs[i]);
	} else if (e->kind == RBK_E_INDEX) {
		path_text(b, e->a);
		if (e->op == RBK_T_DOT)
			rbk_buf_printf(b, ".%s", e->b->lit.u.s.s); /* written .key */
		else if (e->b->kind == RBK_E_LIT && e->b->lit.t == RBK_V_INT)
			rbk_buf_printf(b, "[%lld]", (long long)e->b->lit.u.i);
		else if (e->b->kind == RBK_E_LIT && e->b->lit.t == RBK_V_STR)
			rbk_buf_printf(b, "['%s']", e->b->lit.u.s.s);
		else
			rbk_buf_puts(b, "[...]");
	} else if (e->kind == RBK_E_CALL) {
		rbk_buf_printf(b, "%s(...)", e->fn);
	} else {
		rbk_buf_puts(b, "(...)");
	}
}

/* An absent member or item: RBK_ERR_NONAME, which default() catches. */
__attribute__((format(printf, 3, 4))) static int absent(rbk_err *err, const rbk_expr *e, const char *fmt, ...)
{
	if (!err)
		return -1;
	char why[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	rbk_buf b = {0};
	path_text(&b, e);
	rbk_err_set(err, e->pos, "no value at '%s': %s", b.s ? b.s : "", why);
	err->code = RBK_ERR_NONAME;
	rbk_buf_free(&b);
	return -1;
}

static int eval_index(const rbk_expr *e, const rbk_eval_env *env, rbk_val *out, rbk_err *err)
{
	rbk_val base = rbk_val_null(), key = rbk_val_null();
	*out = rbk_val_null();
	if (eval(e->a, env, &base, err) < 0)
		return -1;
	if (eval(e->b, env, &key, err) < 0) {
		rbk_val_free(&base);
		return -1;
	}
	int rc = 0;
	const rbk_val *got = NULL;
	rbk_buf bp = {0};
	path_text(&bp, e->a);
	if (base.t == RBK_V_LIST && key.t == RBK_V_INT) {
		if (key.u.i < 0 || (uint64_t)key.u.i >= base.u.list.n)
			rc = absent(err, e, "index %lld is out of range ('%s' has %zu item%s)", (long long)key.u.i,
				    bp.s ? bp.s : "", base.u.list.n, base.u.list.n == 1 ? "" : "s");
		else
			got = &base.u.list.items[key.u.i];
	} else if (base.t == RBK_V_MAP && key.t == RBK_V_STR) {
		if (!(got = rbk_val_map_get(&base, key.u.s.s)))
			rc = absent(err, e, "'%s' has no key '%s'", bp.s ? bp.s : "", key.u.s.s);
	} else if (base.t == RBK_V_LIST || base.t == RBK_V_MAP) {
		rc = fail(err, e->b->pos, "'%s' is a %s: its %s are picked by %s, not by a %s", bp.s ? bp.s : "",
			  rbk_val_type_name(base.t), base.t == RBK_V_LIST ? "items" : "members",
			  base.t == RBK_V_LIST ? "an int" : "a string", rbk_val_type_name(key.t));
	} else {
		rc = fail(err, e->pos, "'%s' is a %s, not a list or a map", bp.s ? bp.s : "", rbk_val_type_name(base.t));
	}
	if (got) {
		*out = rbk_val_copy(got);
		out->secret |= base.secret; /* a value inside a secret is a secret */
	}
	rbk_buf_free(&bp);
	rbk_val_free(&base);
	rbk_val_free(&key);
	return rc;
}

/* ---- operators ---- */

static int eval_logic(const rbk_expr *e, const rbk_eval_env *env, rbk_val *out, rbk_err *err)
{
	const char *op = rbk_tok_name(e->op);
	rbk_val v;
	if (eval(e->a, env, &v, err) < 0)
		return -1;
	if (v.t != RBK_V_BOOL) {
		fail(err, e->a->pos, "%s needs bool operands, got %s", op, tname(&v));
		rbk_val_free(&v);
		return -1;
	}
	if (v.u.b == (e->op == RBK_T_OR)) { /* decided: true || _, false && _ */
		*out = v;
		return 0;
	}
	bool secret = v.secret; /* the outcome depends on both sides */
	if (eval(e->b, env, &v, err) < 0)
		return -1;
	v.secret |= secret;
	if (v.t != RBK_V_BOOL) {
		fail(err, e->b->pos, "%s needs bool operands, got %s", op, tname(&v));
		rbk_val_free(&v);
		return -1;
	}
	*out = v;
	return 0;
}

static int compare(const rbk_expr *e, const rbk_val *a, const rbk_val *b, rbk_val *out,
		   rbk_err *err)
{
	int c;
	if (a->t == RBK_V_DUR || b->t == RBK_V_DUR) {
		double x, y;
		int bad, r = dur_sides(e, a, b, &x, &y, &bad, err);
		if (r < 0)
			return -1;
		if (!r)
			return fail(err, bad, "%s cannot compare %s and %s",
				    rbk_tok_name(e->op), tname(a), tname(b));
		c = (x > y) - (x < y);
	} else if (is_num(a) && is_num(b)) {
		if (a->t == RBK_V_INT && b->t == RBK_V_INT) {
			c = (a->u.i > b->u.i) - (a->u.i < b->u.i);
		} else {
			double x = dbl(a), y = dbl(b);
			if (isnan(x) || isnan(y)) {
				*out = rbk_val_bool(false); /* NaN is unordered */
				return 0;
			}
			c = (x > y) - (x < y);
		}
	} else if (a->t == RBK_V_STR && b->t == RBK_V_STR) {
		size_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
		c = memcmp(a->u.s.s, b->u.s.s, n);
		if (c == 0)
			c = (a->u.s.len > b->u.s.len) - (a->u.s.len < b->u.s.len);
	} else {
		bool a_ok = is_num(a) || a->t == RBK_V_STR;
		return fail(err, a_ok ? e->b->pos : e->a->pos,
			    "%s needs two numbers, two durations or two strings, got %s and %s",
			    rbk_tok_name(e->op), tname(a), tname(b));
	}
	bool r = false;
	switch (e->op) {
	case RBK_T_LT: r = c < 0; break;
	case RBK_T_LE: r = c <= 0; break;
	case RBK_T_GT: r = c > 0; break;
	case RBK_T_GE: r = c >= 0; break;
	default: break;
	}
	*out = rbk_val_bool(r);
	return 0;
}

/* The regex of the right side of =~ or of capture(): a regex value is used
 * as it is, a string is compiled without flags. *owned receives what to free. */
static int as_regex(const rbk_val *v, int pos, const char *what, const rbk_re **re, rbk_re **owned,
		    rbk_err *err)
{
	*owned = NULL;
	if (v->t == RBK_V_REGEX) {
		*re = v->u.re;
		return 0;
	}
	if (v->t != RBK_V_STR)
		return fail(err, pos, "%s needs a regex or a string, got %s", what, tname(v));
	if (rbk_re_compile(owned, v->u.s.s, v->u.s.len, "", 0, err) < 0) {
		err->pos = pos;
		return -1;
	}
	*re = *owned;
	return 0;
}

static int match(const rbk_expr *e, const rbk_val *a, const rbk_val *b, rbk_val *out,
		 rbk_err *err)
{
	const char *op = rbk_tok_name(e->op);
	if (a->t != RBK_V_STR)
		return fail(err, e->a->pos, "%s needs a string on the left, got %s", op, tname(a));
	const rbk_re *re;
	rbk_re *owned;
	if (as_regex(b, e->b->pos, op, &re, &owned, err) < 0)
		return -1;
	int m = rbk_re_match(re, a->u.s.s, a->u.s.len, -1, NULL, NULL, err);
	rbk_re_free(owned);
	if (m < 0) {
		err->pos = e->b->pos;
		return -1;
	}
	*out = rbk_val_bool((m == 1) == (e->op == RBK_T_MATCH));
	return 0;
}

/* + - * / where a duration takes part (see the header). */
static int dur_arith(const rbk_expr *e, const rbk_val *a, const rbk_val *b, rbk_val *out, rbk_err *err)
{
	const char *op = rbk_tok_name(e->op);
	if (e->op == RBK_T_STAR || e->op == RBK_T_SLASH) {
		bool both = a->t == RBK_V_DUR && b->t == RBK_V_DUR;
		if (e->op == RBK_T_SLASH && both) { /* how many times one fits the other */
			if (b->u.i == 0)
				return fail(err, e->b->pos, "division by zero");
			*out = rbk_val_num((double)a->u.i / (double)b->u.i);
			return 0;
		}
		const rbk_val *d = a->t == RBK_V_DUR ? a : b, *n = a->t == RBK_V_DUR ? b : a;
		if (both || !is_num(n) || (e->op == RBK_T_SLASH && b->t == RBK_V_DUR))
			return fail(err, n == a ? e->a->pos : e->b->pos, "%s cannot take %s and %s%s", op, tname(a),
				    tname(b), e->op == RBK_T_STAR ? " (a duration is scaled by a number)" : "");
		if (e->op == RBK_T_SLASH && dbl(n) == 0.0)
			return fail(err, e->b->pos, "division by zero");
		return dur_val(e->op == RBK_T_STAR ? (double)d->u.i * dbl(n) : (double)d->u.i / dbl(n), e->pos, out, err);
	}
	double x, y;
	int bad, both = dur_sides(e, a, b, &x, &y, &bad, err);
	if (both < 0)
		return -1;
	if (!both)
		return fail(err, bad, "%s cannot take %s and %s", op, tname(a), tname(b));
	double r = e->op == RBK_T_PLUS ? x + y : x - y;
	if (is_num(a) || is_num(b)) { /* a time or a count of seconds stays in seconds */
		*out = seconds_val(r / 1000.0);
		return 0;
	}
	return dur_val(r, e->pos, out, err);
}

static int arith(const rbk_expr *e, const rbk_val *a, const rbk_val *b, rbk_val *out,
		 rbk_err *err)
{
	const char *op = rbk_tok_name(e->op);
	if (e->op == RBK_T_PLUS && a->t == RBK_V_STR && b->t == RBK_V_STR) {
		char *s = rbk_xmalloc(a->u.s.len + b->u.s.len + 1);
		memcpy(s, a->u.s.s, a->u.s.len);
		memcpy(s + a->u.s.len, b->u.s.s, b->u.s.len);
		s[a->u.s.len + b->u.s.len] = '\0';
		*out = rbk_val_str_take(s);
		out->u.s.len = a->u.s.len + b->u.s.len;
		return 0;
	}
	if ((a->t == RBK_V_DUR || b->t == RBK_V_DUR) && e->op != RBK_T_PERCENT)
		return dur_arith(e, a, b, out, err);
	if (e->op == RBK_T_PERCENT) {
		if (a->t != RBK_V_INT || b->t != RBK_V_INT)
			return fail(err, a->t != RBK_V_INT ? e->a->pos : e->b->pos,
				    "'%%' needs ints, got %s", tname(a->t != RBK_V_INT ? a : b));
		if (b->u.i == 0)
			return fail(err, e->b->pos, "modulo by zero");
		*out = rbk_val_int(b->u.i == -1 ? 0 : a->u.i % b->u.i);
		return 0;
	}
	if (!is_num(a) || !is_num(b)) {
		const rbk_val *bad = !is_num(a) ? a : b;
		int pos = !is_num(a) ? e->a->pos : e->b->pos;
		if (e->op == RBK_T_PLUS) {
			if (a->t == RBK_V_STR && b->t != RBK_V_STR)
				pos = e->b->pos;
			return fail(err, pos, "'+' needs two numbers or two strings, got %s and %s",
				    tname(a), tname(b));
		}
		return fail(err, pos, "%s needs numbers, got %s", op, tname(bad));
	}
	if (e->op == RBK_T_SLASH) {
		if (dbl(b) == 0.0)
			return fail(err, e->b->pos, "division by zero");
		*out = rbk_val_num(dbl(a) / dbl(b));
		return 0;
	}
	if (a->t == RBK_V_INT && b->t == RBK_V_INT) {
		int64_t r;
		bool ovf = e->op == RBK_T_PLUS    ? __builtin_add_overflow(a->u.i, b->u.i, &r)
			   : e->op == RBK_T_MINUS ? __builtin_sub_overflow(a->u.i, b->u.i, &r)
						  : __builtin_mul_overflow(a->u.i, b->u.i, &r);
		if (ovf)
			return fail(err, e->pos, "integer overflow in %s", op);
		*out = rbk_val_int(r);
		return 0;
	}
	double x = dbl(a), y = dbl(b);
	*out = rbk_val_num(e->op == RBK_T_PLUS ? x + y : e->op == RBK_T_MINUS ? x - y : x * y);
	return 0;
}

static int eval_binary(const rbk_expr *e, const rbk_eval_env *env, rbk_val *out, rbk_err *err)
{
	if (e->op == RBK_T_AND || e->op == RBK_T_OR)
		return eval_logic(e, env, out, err);
	rbk_val a, b;
	if (eval(e->a, env, &a, err) < 0)
		return -1;
	if (eval(e->b, env, &b, err) < 0) {
		rbk_val_free(&a);
		return -1;
	}
	int rc = 0;
	switch (e->op) {
	case RBK_T_EQ:
	case RBK_T_NE:
		if ((a.t == RBK_V_DUR) != (b.t == RBK_V_DUR)) { /* 5m == 300: seconds, as in < > */
			double x, y;
			int bad, both = dur_sides(e, &a, &b, &x, &y, &bad, err);
			if (both < 0) {
				rc = -1;
				break;
			}
			*out = rbk_val_bool((both && x == y) == (e->op == RBK_T_EQ));
			break;
		}
		*out = rbk_val_bool(rbk_val_equal(&a, &b) == (e->op == RBK_T_EQ));
		break;
	case RBK_T_LT:
	case RBK_T_LE:
	case RBK_T_GT:
	case RBK_T_GE:
		rc = compare(e, &a, &b, out, err);
		break;
	case RBK_T_MATCH:
	case RBK_T_NMATCH:
		rc = match(e, &a, &b, out, err);
		break;
	default:
		rc = arith(e, &a, &b, out, err);
		break;
	}
	if (rc == 0)
		out->secret |= a.secret || b.secret;
	rbk_val_free(&a);
	rbk_val_free(&b);
	return rc;
}

static int eval_unary(const rbk_expr *e, const rbk_eval_env *env, rbk_val *out, rbk_err *err)
{
	rbk_val v;
	if (eval(e->a, env, &v, err) < 0)
		return -1;
	if (e->op == RBK_T_NOT) {
		if (v.t != RBK_V_BOOL) {
			fail(err, e->a->pos, "'!' needs a bool operand, got %s", tname(&v));
			rbk_val_free(&v);
			return -1;
		}
		*out = rbk_val_bool(!v.u.b);
		out->secret = v.secret;
		return 0;
	}
	if (v.t == RBK_V_INT || v.t == RBK_V_DUR) {
		if (v.u.i == INT64_MIN)
			return fail(err, e->pos, "integer overflow in '-'");
		*out = v.t == RBK_V_DUR ? rbk_val_dur(-v.u.i) : rbk_val_int(-v.u.i);
		out->secret = v.secret;
		return 0;
	}
	if (v.t == RBK_V_NUM) {
		*out = rbk_val_num(-v.u.n);
		out->secret = v.secret;
		return 0;
	}
	fail(err, e->a->pos, "'-' needs a number, got %s", tname(&v));
	rbk_val_free(&v);
	return -1;
}

/* ---- functions ---- */

typedef struct {
	const rbk_expr *call;
	const rbk_eval_env *env;
	rbk_val *argv;
} fn_ctx;

static int arg_pos(const fn_ctx *c, size_t i) { return c->call->args[i]->pos; }

static int need_str(const fn_ctx *c, size_t i, rbk_err *err)
{
	if (c->argv[i].t == RBK_V_STR)
		return 0;
	return fail(err, arg_pos(c, i), "%s(): needs a string, got %s", c->call->fn,
		    tname(&c->argv[i]));
}

static bool is_ascii_space(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* [+-]digits[.digits][e[+-]digits], with at least one digit before or after
 * the point; *is_int when there is neither point nor exponent. Stricter than
 * strtod, which would also take "inf", "nan" and hex. */
static bool decimal_syntax(const char *s, size_t n, bool *is_int)
{
	size_t i = 0, digits = 0;
	*is_int = true;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++, digits++;
	if (i < n && s[i] == '.') {
		*is_int = false;
		i++;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++, digits++;
	}
	if (digits == 0)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		*is_int = false;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t ed = 0;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++, ed++;
		if (ed == 0)
			return false;
	}
	return i == n;
}

/* Shared by int() and num(): the argument as an int (*is_int) or a double. */
static int to_number(const fn_ctx *c, bool *is_int, int64_t *iv, double *dv, rbk_err *err)
{
	const rbk_val *v = &c->argv[0];
	switch (v->t) {
	case RBK_V_INT:
		*is_int = true;
		*iv = v->u.i;
		return 0;
	case RBK_V_NUM:
		*is_int = false;
		*dv = v->u.n;
		return 0;
	case RBK_V_BOOL:
		*is_int = true;
		*iv = v->u.b ? 1 : 0;
		return 0;
	case RBK_V_STR: {
		const char *s = v->u.s.s;
		size_t n = v->u.s.len;
		while (n && is_ascii_space((unsigned char)s[0]))
			s++, n--;
		while (n && is_ascii_space((unsigned char)s[n - 1]))
			n--;
		if (!decimal_syntax(s, n, is_int)) {
			if (v->secret)
				return fail(err, arg_pos(c, 0), "%s(): a secret value is not a number", c->call->fn);
			int shown = v->u.s.len > 40 ? 40 : (int)v->u.s.len;
			return fail(err, arg_pos(c, 0), "%s(): '%.*s%s' is not a number",
				    c->call->fn, shown, v->u.s.s, v->u.s.len > 40 ? "..." : "");
		}
		char *t = rbk_xstrndup(s, n);
		errno = 0;
		if (*is_int) {
			*iv = strtoll(t, NULL, 10);
			if (errno == ERANGE) { /* too big for an int: keep it as a number */
				*is_int = false;
				errno = 0;
			}
		}
		if (!*is_int)
			*dv = strtod(t, NULL);
		rbk_free(t);
		return 0;
	}
	case RBK_V_DUR: /* which unit would it be? */
		return fail(err, arg_pos(c, 0), "%s(): a duration has no plain number: write seconds(d)", c->call->fn);
	default:
		return fail(err, arg_pos(c, 0), "%s(): cannot convert %s to a number", c->call->fn,
			    tname(v));
	}
}

static int fn_int(fn_ctx *c, rbk_val *out, rbk_err *err)
{
	bool is_int;
	int64_t i = 0;
	double d = 0;
	if (to_number(c, &is_int, &i, &d, err) < 0)
		return -1;
	if (!is_int) {
		d = trunc(d);
		if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
			return fail(err, arg_pos(c, 0), "int(): %g is out of range for an int", d);
		i = (int64_t)d;
	}
	*out = rbk_val_int(i);
	return 0;
}

static int fn_num(fn_ctx *c, rbk_val *out, rbk_err *err)
{
	bool is_int;
	int64_t i = 0;
	double d = 0;
	if (to_number(c, &is_int, &i, &d, err) < 0)
		return -1;
	*out = rbk_val_num(is_int ? (double)i : d);
	return 0;
}

static int fn_str(fn_ctx *c, rbk_val *out, rbk_err *err)
{
	(void)err;
	if (c->argv[0].t == RBK_V_STR) /* keep embedded NULs */
		*out = rbk_val_copy(&c->argv[0]);
	else
		*out = rbk_val_str_take(rbk_val_to_text(&c->argv[0]));
	return 0;
}

static int fn_len(fn_ctx *c, rbk_val *out, rbk_err *err)
{
	const rbk_val *v = &c->argv[0];
	int64_t n = 0;
	if (v->t == RBK_V_STR) {
		for (size_t i = 0; i < v->u.s.len; i++) /* count UTF-8 lead bytes */
			n += ((unsigned char)v->u.s.s[i] & 0xC0) != 0x80;
	} else if (v->t == RBK_V_LIST) {
		n = (int64_t)v->u.list.n;
	} else if (v->t == RBK_V_MAP) {
		n = (int64_t)v->u.map.n;
	} else {
		return fail(err, arg_pos(c, 0), "len(): needs a string, list or map, got %s",
			    tname(v));
	}
	*out = rbk_val_int(n);
	return 0;
}

static int map_case(fn_ctx *c, rbk_val *out, rbk_err *err, bool upper)
{
	if (need_str(c, 0, err) < 0)
		return -1;
	*out = rbk_val_copy(&c->argv[0]);
	for (size_t i = 0; i < out->u.s.len; i++) {
		char ch = out->u.s.s[i];
		if (upper && ch >= 'a' && ch <= 'z')
			out->u.s.s[i] = (char)(ch - 'a' + 'A');
		else if (!upper && ch >= 'A' && ch <= 'Z')
			out->u.s.s[i] = (char)(ch - 'A' + 'a');
	}
	return 0;
}

static int fn_lower(fn_ctx *c, rbk_val *out, rbk_err *err) { return map_case(c, out, err, false); }
static int fn_upper(fn_ctx *c, rbk_val *out, rbk_err *err) { return map_case(c, out, err, true); }

static int fn_trim(fn_ctx *c, rbk_val *out, rbk_err *err)
{
	if (need_str(c, 0, err) < 0)
		return -1;
	const char *s = c->argv[0].u.s.s;
	size_t n = c->argv[0].u.s.len;
	while (n && is_ascii_space((unsigned char)s[0]))
		s++, n--;
	while (n && is_ascii_space((unsigned char)s[n - 1]))
		n--;
	*out = rbk_val_strn(s, n);
	return 0;
}

static int fn_contains(fn_ctx *c, rbk_val *out, rbk_err *err)
{
	const rbk_val *a = &c->argv[0], *b = &c->argv[1];
	bool r = false;
	if (a->t == RBK_V_LIST) {
		for (size_t i = 0; i < a->u.list.n && !r; i++)
			r = rbk_val_equal(&a->u.list.items[i], b);
	} else if (a->t == RBK_V_STR || a->t == RBK_V_MAP) {
		if (b->t != RBK_V_STR)
			return fail(err, arg_pos(c, 1), "contains(): needs a string to look for in a %s, got %s",
				    tname(a), tname(b));
		if (a->t == RBK_V_STR)
			r = b->u.s.len == 0 || memmem(a->u.s.s, a->u.s.len, b->u.s.s, b->u.s.len);
		else
			r = rbk_val_map_get(a, b->u.s.s) != NULL;
	} else {
		return fail(err, arg_pos(c, 0), "contains(): needs a string, list or map, got %s",
			    tname(a));
	}
	*out = rbk_val_bool(r);
	return 0;
}

static int affix(fn_ctx *c, rbk_val *out, rbk_err *err, bool at_end)
{
	if (need_str(c, 0, err) < 0 || need_str(c, 1, err) < 0)
		return -1;
	const rbk_val *a = &c->argv[0], *b = &c->argv[1];
	bool r = b->u.s.len <= a->u.s.len &&
		 memcmp(a->u.s.s + (at_end ? a->u.s.len - b->u.s.len : 0), b->u.s.s, b->u.s.len) ==
		     0;
	*out = rbk_val_bool(r);
	return 0;
}

static int fn_starts_with(fn_ctx *c, rbk_val *out, rbk_err *err) { return affix(c, out, err, false); }
static int fn_ends_with(fn_ctx *c, rbk_val *out, rbk_err *err) { return affix(c, out, err, true); }

static int fn_json(fn_ctx *c, rbk_val *out, rbk_err *err)
{
	if (need_str(c, 0, err) < 0 || need_str(c, 1, err) < 0)
		return -1;
	if (rbk_json_path(out, c->argv[0].u.s.s, c->argv[0].u.s.len, c->argv[1].u.s.s, err) < 0) {
		/* Blame the text for bad JSON, the path otherwise. */
		bool bad_text = strncmp(err->msg, "json(): invalid JSON", 20) == 0;
		err->pos = arg_pos(c, bad_text ? 0 : 1);
		return -1;
	}
	return 0;
}

static int fn_capture(fn_ctx *c, rbk_val *out, rbk_err *err)
{
	if (need_str(c, 0, err) < 0)
		return -1;
	const rbk_val *n = &c->argv[2];
	if (n->t != RBK_V_INT || n->u.i < 0 || n->u.i > 65535)
		return fail(err, arg_pos(c, 2), "capture(): group must be an int from 0, got %s",
			    n->t == RBK_V_INT ? "a negative or huge int" : tname(n));
	const rbk_re *re;
	rbk_re *owned;
	if (as_regex(&c->argv[1], arg_pos(c, 1), "capture()", &re, &owned, err) < 0)
		return -1;
	char *s = NULL;
	size_t len = 0;
	int m = rbk_re_match(re, c->argv[0].u.s.s, c->argv[0].u.s.len, (int)n->u.i, &s, &len, err);
	rbk_re_free(owned);
	if (m < 0) {
		char why[sizeof err->msg];
		memcpy(why, err->msg, sizeof why);
		return fail(err, arg_pos(c, 1), "capture(): %.400s", why);
	}
	if (m == 0 || !s) {
		*out = rbk_val_null();
		return 0;
	}
	*out = rbk_val_str_take(s);
	out->u.s.len = len;
	return 0;
}

static int64_t now_seconds(const rbk_eval_env *env)
{
	if (env && env->now)
		return env->now(env->ctx);
	return (int64_t)time(NULL);
}

static int fn_now(fn_ctx *c, rbk_val *out, rbk_err *err)
{
	(void)err;
	*out = rbk_val_int(now_seconds(c->env));
	return 0;
}

static int fn_age(fn_ctx *c, rbk_val *out, rbk_err *err)
{
	if (need_str(c, 0, err) < 0)
		return -1;
	struct stat st;
	if (stat(c->argv[0].u.s.s, &st) != 0) {
		char why[128];
		snprintf(why, sizeof why, "%s", strerror(errno));
		if (why[0] >= 'A' && why[0] <= 'Z') /* our messages are lowercase */
			why[0] = (char)(why[0] - 'A' + 'a');
		return fail(err, arg_pos(c, 0), "age(): cannot stat '%s': %s",
			    c->argv[0].secret ? "***" : rbk_err_quote(c->argv[0].u.s.s).s,
			    why);
	}
	*out = rbk_val_int(now_seconds(c->env) - (int64_t)st.st_mtime);
	return 0;
}

static int fn_seconds(fn_ctx *c, rbk_val *out, rbk_err *err)
{
	const rbk_val *v = &c->argv[0];
	int64_t ms = v->t == RBK_V_DUR ? v->u.i : v->t == RBK_V_STR ? rbk_dur_parse(v->u.s.s) : -1;
	if (v->t != RBK_V_DUR && ms < 0)
		return fail(err, arg_pos(c, 0), "seconds(): needs a duration, got %s", tname(v));
	*out = ms % 1000 ? rbk_val_num((double)ms / 1000.0) : rbk_val_int(ms / 1000);
	return 0;
}

static int fn_duration(fn_ctx *c, rbk_val *out, rbk_err *err)
{
	const rbk_val *v = &c->argv[0];
	if (v->t == RBK_V_DUR) {
		*out = rbk_val_copy(v);
		return 0;
	}
	if (is_num(v))
		return dur_val(dbl(v) * 1000.0, arg_pos(c, 0), out, err);
	int64_t ms = v->t == RBK_V_STR ? rbk_dur_parse(v->u.s.s) : -1;
	if (ms < 0) {
		if (v->t != RBK_V_STR || v->secret)
			return fail(err, arg_pos(c, 0), "duration(): needs a string such as '5m' or a number of seconds, got %s",
				    tname(v));
		return fail(err, arg_pos(c, 0), "duration(): '%s' is not a duration (500ms, 30s, 5m, 2h, 1d, 1h30m)",
			    rbk_err_quote(v->u.s.s).s);
	}
	*out = rbk_val_dur(ms);
	return 0;
}

/* default(x, y): the one function that sees its argument's failure. */
static int eval_default(const rbk_expr *e, const rbk_eval_env *env, rbk_val *out, rbk_err *err)
{
	rbk_err sub;
	memset(&sub, 0, sizeof sub);
	if (eval(e->args[0], env, out, &sub) == 0) {
		if (out->t != RBK_V_NULL)
			return 0;
	} else if (sub.code != RBK_ERR_NONAME) {
		*err = sub;
		return -1;
	}
	return eval(e->args[1], env, out, err);
}

static int eval_if(const rbk_expr *e, const rbk_eval_env *env, rbk_val *out, rbk_err *err)
{
	rbk_val c;
	if (eval(e->args[0], env, &c, err) < 0)
		return -1;
	if (c.t != RBK_V_BOOL) {
		int rc = fail(err, e->args[0]->pos, "if(): the condition must be a bool, got %s", tname(&c));
		rbk_val_free(&c);
		return rc;
	}
	bool secret = rbk_val_has_secret(&c);
	int rc = eval(e->args[c.u.b ? 1 : 2], env, out, err);
	rbk_val_free(&c);
	if (rc == 0 && secret)
		rbk_val_mark_secret(out);
	return rc;
}

static const struct {
	const char *name;
	int (*fn)(fn_ctx *c, rbk_val *out, rbk_err *err);
} builtins[] = {
    {"int", fn_int},
    {"num", fn_num},
    {"str", fn_str},
    {"len", fn_len},
    {"lower", fn_lower},
    {"upper", fn_upper},
    {"trim", fn_trim},
    {"contains", fn_contains},
    {"starts_with", fn_starts_with},
    {"ends_with", fn_ends_with},
    {"json", fn_json},
    {"capture", fn_capture},
    {"now", fn_now},
    {"age", fn_age},
    {"seconds", fn_seconds},
    {"duration", fn_duration},
};

static int eval_call(const rbk_expr *e, const rbk_eval_env *env, rbk_val *out, rbk_err *err)
{
	if (strcmp(e->fn, "default") == 0 && e->nargs == 2)
		return eval_default(e, env, out, err);
	if (strcmp(e->fn, "if") == 0 && e->nargs == 3)
		return eval_if(e, env, out, err);
	size_t f = 0, nb = sizeof builtins / sizeof builtins[0];
	while (f < nb && strcmp(builtins[f].name, e->fn) != 0)
		f++;
	if (f == nb)
		return fail(err, e->pos, "unknown function '%s'", e->fn);
	rbk_val argv[3];
	if (e->nargs > sizeof argv / sizeof argv[0])
		return fail(err, e->pos, "%s(): too many arguments", e->fn);
	size_t n = 0;
	int rc = 0;
	for (; n < e->nargs; n++) {
		if (eval(e->args[n], env, &argv[n], err) < 0) {
			rc = -1;
			break;
		}
	}
	if (rc == 0) {
		fn_ctx c = {e, env, argv};
		rc = builtins[f].fn(&c, out, err);
		for (size_t i = 0; rc == 0 && i < n; i++)
			out->secret |= rbk_val_has_secret(&argv[i]);
	}
	while (n > 0)
		rbk_val_free(&argv[--n]);
	return rc;
}

/* ---- entry points ---- */

/* On failure *out is null and owns nothing. */
static int eval(const rbk_expr *e, const rbk_eval_env *env, rbk_val *out, rbk_err *err)
{
	int rc;
	*out = rbk_val_null();
	switch (e->kind) {
	case RBK_E_LIT:
		*out = rbk_val_copy(&e->lit);
		return 0;
	case RBK_E_NAME:
		return eval_name(e, env, out, err);
	case RBK_E_UNARY:
		rc = eval_unary(e, env, out, err);
		break;
	case RBK_E_BINARY:
		rc = eval_binary(e, env, out, err);
		break;
	case RBK_E_CALL:
		rc = eval_call(e, env, out, err);
		break;
	case RBK_E_INDEX:
		rc = eval_index(e, env, out, err);
		break;
	default:
		return fail(err, e->pos, "bad expression node");
	}
	if (rc == 0 && out->secret && env && env->secret)
		env->secret(env->ctx, out);
	return rc;
}

int rbk_eval(const rbk_expr *e, const rbk_eval_env *env, rbk_val *out, rbk_err *err)
{
	rbk_err local;
	memset(&local, 0, sizeof local);
	if (eval(e, env, out, &local) < 0) {
		if (err)
			*err = local;
		*out = rbk_val_null();
		return -1;
	}
	return 0;
}

int rbk_eval_guard(const rbk_expr *e, const rbk_eval_env *env, bool *out, rbk_err *err)
{
	rbk_val v;
	*out = false;
	if (rbk_eval(e, env, &v, err) < 0)
		return -1;
	if (v.t != RBK_V_BOOL) {
		rbk_err_set(err, e->pos, "guard must be a bool, got %s", tname(&v));
		rbk_val_free(&v);
		return -1;
	}
	*out = v.u.b;
	return 0;
}
