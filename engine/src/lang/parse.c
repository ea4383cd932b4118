/* parse: expression text -> syntax tree.
 *
 * One function per precedence level would repeat itself eight times, so the
 * binary levels share parse_binary and a table of their operators. Two limits
 * keep hostile input from exhausting the stack: the parser's own recursion
 * (parentheses, unary operators, call arguments) and the height of the tree
 * (which the evaluator and rbk_expr_free recurse over; a long a+b+c+... chain
 * is built by a loop but is as deep as it is long). */
#include "lang/parse.h"

#include <string.h>

#include "base/mem.h"
#include "lang/regex.h"

enum { MAX_NEST = 100, MAX_HEIGHT = 1000 };

/* Functions of the language and their number of arguments. The evaluator
 * implements each of them (eval.c). */
static const struct {
	const char *name;
	size_t nargs;
} funcs[] = {
    {"int", 1},         {"num", 1},       {"str", 1},      {"len", 1},     {"lower", 1},
    {"upper", 1},       {"trim", 1},      {"contains", 2}, {"starts_with", 2},
    {"ends_with", 2},   {"json", 2},      {"capture", 3},  {"default", 2}, {"now", 0},
    {"age", 1},         {"seconds", 1},   {"duration", 1}, {"if", 3},
};

/* Binary operators by level, loosest first; RBK_T_EOF ends a row. */
static const rbk_tok_kind levels[][4] = {
    {RBK_T_OR, RBK_T_EOF},
    {RBK_T_AND, RBK_T_EOF},
    {RBK_T_EQ, RBK_T_NE, RBK_T_EOF},
    {RBK_T_LT, RBK_T_LE, RBK_T_GT, RBK_T_GE},
    {RBK_T_MATCH, RBK_T_NMATCH, RBK_T_EOF},
    {RBK_T_PLUS, RBK_T_MINUS, RBK_T_EOF},
    {RBK_T_STAR, RBK_T_SLASH, RBK_T_PERCENT, RBK_T_EOF},
};
enum { NLEVELS = sizeof levels / sizeof levels[0] };

typedef struct {
	rbk_lexer lx;
	rbk_tok tok; /* the look-ahead token */
	rbk_err *err;
	int nest;
} parser;

static rbk_expr *new_node(rbk_ekind kind, int pos)
{
	rbk_expr *e = rbk_xcalloc(1, sizeof *e);
	e->kind = kind;
	e->pos = pos;
	e->lit = rbk_val_null();
	return e;
}

void rbk_expr_free(rbk_expr *e)
{
	if (!e)
		return;
	rbk_val_free(&e->lit);
	for (size_t i = 0; i < e->nsegs; i++)
		rbk_free(e->segs[i]);
	rbk_free(e->segs);
	rbk_expr_free(e->a);
	rbk_expr_free(e->b);
	rbk_free(e->fn);
	for (size_t i = 0; i < e->nargs; i++)
		rbk_expr_free(e->args[i]);
	rbk_free(e->args);
	rbk_free(e);
}

void rbk_expr_walk(const rbk_expr *e, void (*fn)(const rbk_expr *node, void *ctx), void *ctx)
{
	if (!e)
		return;
	fn(e, ctx);
	rbk_expr_walk(e->a, fn, ctx);
	rbk_expr_walk(e->b, fn, ctx);
	for (size_t i = 0; i < e->nargs; i++)
		rbk_expr_walk(e->args[i], fn, ctx);
}

static int advance(parser *p)
{
	rbk_tok_free(&p->tok);
	return rbk_lex_next(&p->lx, &p->tok, p->err);
}

/* "unexpected X" (or what+X) naming the look-ahead token as it is written. */
static int unexpected(parser *p, const char *what)
{
	const rbk_tok *t = &p->tok;
	if (!what)
		what = "unexpected ";
	if (t->kind == RBK_T_EOF || t->kind == RBK_T_STR || t->kind == RBK_T_REGEX) {
		rbk_err_set(p->err, t->pos, "%s%s", what, rbk_tok_name(t->kind));
		return -1;
	}
	int n = (int)(p->lx.at - (size_t)t->pos);
	const char *dots = "";
	if (n > 32) {
		n = 32;
		dots = "...";
	}
	rbk_err_set(p->err, t->pos, "%s'%.*s%s'", what, n, p->lx.src + t->pos, dots);
	return -1;
}

static int parse_binary(parser *p, int level, rbk_expr **out, int *h);

static int parse_expr(parser *p, rbk_expr **out, int *h) { return parse_binary(p, 0, out, h); }

static int find_func(const char *name)
{
	for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++)
		if (strcmp(funcs[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* name(args): the look-ahead is '('; e already holds the name. */
static int parse_call(parser *p, rbk_expr *e, int *h)
{
	int f = find_func(e->fn);
	if (f < 0) {
		rbk_err_set(p->err, e->pos, "unknown function '%s'", e->fn);
		return -1;
	}
	if (advance(p) < 0)
		return -1;
	*h = 1;
	if (p->tok.kind != RBK_T_RPAREN) {
		for (;;) {
			rbk_expr *arg = NULL;
			int ah = 0;
			if (parse_expr(p, &arg, &ah) < 0) {
				rbk_expr_free(arg);
				return -1;
			}
			e->args = rbk_xrealloc(e->args, (e->nargs + 1) * sizeof *e->args);
			e->args[e->nargs++] = arg;
			if (ah + 1 > *h)
				*h = ah + 1;
			if (p->tok.kind == RBK_T_COMMA) {
				if (advance(p) < 0)
					return -1;
				continue;
			}
			if (p->tok.kind != RBK_T_RPAREN)
				return unexpected(p, "missing ')' to close the call, found ");
			break;
		}
	}
	size_t want = funcs[f].nargs;
	if (e->nargs != want) {
		if (want == 0)
			rbk_err_set(p->err, e->pos, "%s() takes no arguments, got %zu", e->fn,
				    e->nargs);
		else
			rbk_err_set(p->err, e->pos, "%s() takes %zu argument%s, got %zu", e->fn,
				    want, want == 1 ? "" : "s", e->nargs);
		return -1;
	}
	return advance(p);
}

/* A dotted name or a call; the look-ahead is the first identifier. Dots must
 * touch the segments around them: "a. b" is an error, not a name. */
/* At a '.': step past it to the name that must follow it, unspaced. */
static int after_dot(parser *p)
{
	int dot = p->tok.pos;
	if (advance(p) < 0)
		return -1;
	if (p->tok.kind != RBK_T_IDENT || p->tok.pos != dot + 1) {
		rbk_err_set(p->err, dot, "expected a name right after '.'");
		return -1;
	}
	return 0;
}

static int parse_name(parser *p, rbk_expr **out, int *h)
{
	rbk_expr *e = new_node(RBK_E_NAME, p->tok.pos);
	*out = e;
	*h = 1;
	char *first = p->tok.text;
	p->tok.text = NULL;
	size_t end = p->lx.at;
	if (advance(p) < 0) {
		rbk_free(first);
		return -1;
	}
	if (p->tok.kind == RBK_T_LPAREN) {
		e->kind = RBK_E_CALL;
		e->fn = first;
		return parse_call(p, e, h);
	}
	e->segs = rbk_xmalloc(sizeof *e->segs);
	e->segs[e->nsegs++] = first;
	while (p->tok.kind == RBK_T_DOT) {
		if ((size_t)p->tok.pos != end) {
			rbk_err_set(p->err, p->tok.pos, "unexpected space before '.' in a name");
			return -1;
		}
		if (after_dot(p) < 0)
			return -1;
		e->segs = rbk_xrealloc(e->segs, (e->nsegs + 1) * sizeof *e->segs);
		e->segs[e->nsegs++] = p->tok.text;
		p->tok.text = NULL;
		end = p->lx.at;
		if (advance(p) < 0)
			return -1;
	}
	return 0;
}

static int parse_regex(parser *p, rbk_expr **out)
{
	rbk_re *re;
	rbk_err rerr;
	const char *pat = p->tok.text;
	if (rbk_re_compile(&re, pat, strlen(pat), p->tok.flags, 0, &rerr) < 0) {
		/* Point into the pattern (approximate when it contains "\/"). */
		int pos = p->tok.pos + 1 + (rerr.pos > 0 ? rerr.pos : 0);
		if (pos >= (int)p->lx.at)
			pos = p->tok.pos;
		rbk_err_set(p->err, pos, "%s", rerr.msg);
		return -1;
	}
	*out = new_node(RBK_E_LIT, p->tok.pos);
	(*out)->lit = rbk_val_regex(re);
	return advance(p);
}

/* After a name, a call or parentheses: [expr] picks an item or member,
 * and .name a member (json(x, '$').rows[0].age); after a plain name only
 * once a [ ] is there, since the name's own dots are its segments. */
static int parse_postfix(parser *p, rbk_expr **out, int *h)
{
	bool indexed = (*out)->kind != RBK_E_NAME;
	for (;;) {
		if (p->tok.kind == RBK_T_LBRACKET) {
			rbk_expr *e = new_node(RBK_E_INDEX, p->tok.pos);
			e->a = *out;
			*out = e;
			int hb = 1;
			if (advance(p) < 0 || parse_expr(p, &e->b, &hb) < 0)
				return -1;
			if (p->tok.kind != RBK_T_RBRACKET)
				return unexpected(p, "missing ']', found ");
			if (hb + 1 > *h)
				*h = hb + 1;
			indexed = true;
			if (advance(p) < 0)
				return -1;
		} else if (indexed && p->tok.kind == RBK_T_DOT) {
			int dot = p->tok.pos;
			if (after_dot(p) < 0)
				return -1;
			rbk_expr *e = new_node(RBK_E_INDEX, dot);
			e->op = RBK_T_DOT; /* written .name, not ['name'] */
			e->a = *out;
			e->b = new_node(RBK_E_LIT, p->tok.pos);
			e->b->lit = rbk_val_str(p->tok.text);
			*out = e;
			if (advance(p) < 0)
				return -1;
		} else {
			return 0;
		}
	}
}

static int parse_primary(parser *p, rbk_expr **out, int *h)
{
	rbk_tok *t = &p->tok;
	*h = 1;
	switch (t->kind) {
	case RBK_T_INT:
	case RBK_T_NUM:
	case RBK_T_DUR:
	case RBK_T_STR:
	case RBK_T_TRUE:
	case RBK_T_FALSE:
	case RBK_T_NULL: {
		rbk_expr *e = new_node(RBK_E_LIT, t->pos);
		if (t->kind == RBK_T_INT)
			e->lit = rbk_val_int(t->ival);
		else if (t->kind == RBK_T_NUM)
			e->lit = rbk_val_num(t->nval);
		else if (t->kind == RBK_T_DUR)
			e->lit = rbk_val_dur(t->ival);
		else if (t->kind == RBK_T_STR)
			e->lit = rbk_val_str(t->text);
		else if (t->kind != RBK_T_NULL)
			e->lit = rbk_val_bool(t->kind == RBK_T_TRUE);
		*out = e;
		return advance(p);
	}
	case RBK_T_REGEX:
		return parse_regex(p, out);
	case RBK_T_IDENT:
		return parse_name(p, out, h) < 0 ? -1 : parse_postfix(p, out, h);
	case RBK_T_LPAREN:
		if (advance(p) < 0 || parse_expr(p, out, h) < 0)
			return -1;
		if (p->tok.kind != RBK_T_RPAREN)
			return unexpected(p, "missing ')', found ");
		return advance(p) < 0 ? -1 : parse_postfix(p, out, h);
	default:
		return unexpected(p, NULL);
	}
}

static int parse_unary(parser *p, rbk_expr **out, int *h)
{
	*h = 1;
	if (++p->nest > MAX_NEST) {
		rbk_err_set(p->err, p->tok.pos, "expression nested too deeply");
		return -1;
	}
	int rc;
	if (p->tok.kind == RBK_T_NOT || p->tok.kind == RBK_T_MINUS) {
		rbk_expr *e = new_node(RBK_E_UNARY, p->tok.pos);
		e->op = p->tok.kind;
		*out = e;
		rc = advance(p);
		if (rc == 0)
			rc = parse_unary(p, &e->a, h);
		++*h;
	} else {
		rc = parse_primary(p, out, h);
	}
	p->nest--;
	return rc;
}

static int is_level_op(int level, rbk_tok_kind k)
{
	for (size_t i = 0; i < 4 && levels[level][i] != RBK_T_EOF; i++)
		if (levels[level][i] == k)
			return 1;
	return 0;
}

/* Left-associative binary operators of one level and everything tighter.
 * On failure *out may hold a partial tree, which the caller frees. */
static int parse_binary(parser *p, int level, rbk_expr **out, int *h)
{
	if (level == NLEVELS)
		return parse_unary(p, out, h);
	*out = NULL;
	if (parse_binary(p, level + 1, out, h) < 0)
		return -1;
	while (is_level_op(level, p->tok.kind)) {
		rbk_expr *e = new_node(RBK_E_BINARY, (*out)->pos);
		e->op = p->tok.kind;
		e->a = *out;
		*out = e;
		int bh = 0;
		if (advance(p) < 0 || parse_binary(p, level + 1, &e->b, &bh) < 0)
			return -1;
		*h = (*h > bh ? *h : bh) + 1;
		if (*h > MAX_HEIGHT) {
			rbk_err_set(p->err, e->b->pos, "expression nested too deeply");
			return -1;
		}
	}
	return 0;
}

int rbk_parse(rbk_expr **out, const char *src, size_t len, rbk_err *err)
{
	parser p;
	memset(&p, 0, sizeof p);
	p.err = err;
	*out = NULL;
	rbk_lex_init(&p.lx, src, len);
	rbk_expr *e = NULL;
	int h = 0;
	if (advance(&p) < 0)
		return -1;
	if (p.tok.kind == RBK_T_EOF) {
		rbk_err_set(err, p.tok.pos, "empty expression");
		return -1;
	}
	if (parse_expr(&p, &e, &h) < 0 || (p.tok.kind != RBK_T_EOF && unexpected(&p, NULL) < 0)) {
		rbk_tok_free(&p.tok);
		rbk_expr_free(e);
		return -1;
	}
	rbk_tok_free(&p.tok);
	*out = e;
	return 0;
}
