/* tmpl: templates, literal text with {{ expr }} parts. */
#include "lang/tmpl.h"

#include <string.h>

#include "base/mem.h"

typedef struct {
	char *text; /* literal part, or NULL for an expression */
	size_t len;
	rbk_expr *e; /* expression part */
	int pos;     /* offset of the expression's first byte in the template */
} tmpl_part;

struct rbk_tmpl {
	tmpl_part *parts;
	size_t n;
	size_t nexpr;
	bool typed; /* exactly one {{ expr }} and no text around it */
};

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static tmpl_part *add_part(rbk_tmpl *t)
{
	t->parts = rbk_xrealloc(t->parts, (t->n + 1) * sizeof *t->parts);
	tmpl_part *p = &t->parts[t->n++];
	memset(p, 0, sizeof *p);
	return p;
}

static void add_literal(rbk_tmpl *t, const char *s, size_t n)
{
	if (n == 0)
		return;
	tmpl_part *p = add_part(t);
	p->text = rbk_xstrndup(s, n);
	p->len = n;
}

void rbk_tmpl_free(rbk_tmpl *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		rbk_free(t->parts[i].text);
		rbk_expr_free(t->parts[i].e);
	}
	rbk_free(t->parts);
	rbk_free(t);
}

/* Parse the expression between open ("{{") and close ("}}"). Its positions
 * are relative to its first non-space byte, which we record as the part's
 * pos so errors can be moved back into template coordinates. */
static int parse_part(rbk_tmpl *t, const char *text, size_t open, size_t close, rbk_err *err)
{
	size_t start = open + 2, end = close;
	while (start < end && is_space(text[start]))
		start++;
	while (end > start && is_space(text[end - 1]))
		end--;
	if (start == end) {
		rbk_err_set(err, (int)open, "empty expression in '{{ }}'");
		return -1;
	}
	rbk_expr *e;
	if (rbk_parse(&e, text + start, end - start, err) < 0) {
		if (err)
			err->pos = err->pos < 0 ? (int)start : err->pos + (int)start;
		return -1;
	}
	tmpl_part *p = add_part(t);
	p->e = e;
	p->pos = (int)start;
	t->nexpr++;
	return 0;
}

int rbk_tmpl_parse(rbk_tmpl **out, const char *text, rbk_err *err)
{
	rbk_tmpl *t = rbk_xcalloc(1, sizeof *t);
	size_t len = strlen(text), at = 0;
	*out = NULL;
	for (;;) {
		const char *o = strstr(text + at, "{{");
		if (!o)
			break;
		size_t open = (size_t)(o - text);
		const char *c = strstr(o + 2, "}}");
		if (!c) {
			rbk_err_set(err, (int)open, "unclosed '{{' (no matching '}}')");
			rbk_tmpl_free(t);
			return -1;
		}
		size_t close = (size_t)(c - text);
		add_literal(t, text + at, open - at);
		if (parse_part(t, text, open, close, err) < 0) {
			rbk_tmpl_free(t);
			return -1;
		}
		at = close + 2;
		if (t->n == 1 && open == 0 && at == len)
			t->typed = true;
	}
	add_literal(t, text + at, len - at);
	*out = t;
	return 0;
}

/* Any "{{" counts, so an unclosed one reaches rbk_tmpl_parse and is
 * reported there instead of passing silently as literal text. */
bool rbk_tmpl_has_expr(const char *text) { return text && strstr(text, "{{") != NULL; }

size_t rbk_tmpl_count(const rbk_tmpl *t) { return t->nexpr; }

const rbk_expr *rbk_tmpl_expr(const rbk_tmpl *t, size_t i, int *pos)
{
	for (size_t k = 0; k < t->n; k++) {
		if (!t->parts[k].e)
			continue;
		if (i-- == 0) {
			if (pos)
				*pos = t->parts[k].pos;
			return t->parts[k].e;
		}
	}
	return NULL;
}

/* Evaluate one part, moving an error position into template coordinates. */
static int eval_part(const tmpl_part *p, const rbk_eval_env *env, rbk_val *out, rbk_err *err)
{
	if (rbk_eval(p->e, env, out, err) < 0) {
		if (err)
			err->pos = err->pos < 0 ? p->pos : err->pos + p->pos;
		return -1;
	}
	return 0;
}

int rbk_tmpl_render(const rbk_tmpl *t, const rbk_eval_env *env, rbk_val *out, rbk_err *err)
{
	*out = rbk_val_null();
	if (t->typed)
		return eval_part(&t->parts[0], env, out, err);
	rbk_buf b = {0};
	rbk_buf_add(&b, "", 0);
	bool secret = false; /* text joined from a secret is a secret */
	for (size_t i = 0; i < t->n; i++) {
		const tmpl_part *p = &t->parts[i];
		if (p->text) {
			rbk_buf_add(&b, p->text, p->len);
			continue;
		}
		rbk_val v;
		if (eval_part(p, env, &v, err) < 0) {
			rbk_buf_free(&b);
			return -1;
		}
		secret |= rbk_val_has_secret(&v);
		if (v.t == RBK_V_STR) {
			rbk_buf_add(&b, v.u.s.s, v.u.s.len);
		} else {
			char *s = rbk_val_to_text(&v);
			rbk_buf_puts(&b, s);
			rbk_free(s);
		}
		rbk_val_free(&v);
	}
	size_t n = b.len;
	*out = rbk_val_str_take(rbk_buf_take(&b));
	out->u.s.len = n;
	out->secret = secret;
	return 0;
}
