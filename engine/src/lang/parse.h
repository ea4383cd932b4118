/* parse: expression text -> syntax tree (precedence climbing).
 *
 * Precedence, loosest first: || ; && ; == != ; < <= > >= ; =~ !~ ; + - ;
 * * / % ; unary ! - ; primary (literal, name, call, parentheses).
 * Regex literals are compiled here, once. */
#ifndef RBK_PARSE_H
#define RBK_PARSE_H

#include <stddef.h>

#include "base/err.h"
#include "lang/lex.h"
#include "lang/value.h"

typedef enum {
	RBK_E_LIT,    /* lit (regex literals are RBK_V_REGEX values) */
	RBK_E_NAME,   /* segs: "steps" "x" "stdout" */
	RBK_E_UNARY,  /* op (RBK_T_NOT or RBK_T_MINUS), a */
	RBK_E_BINARY, /* op, a, b */
	RBK_E_CALL,   /* fn, args */
	RBK_E_INDEX   /* a[b]: a list's item (b an int) or a map's member (b a string); a.key after ']' too */
} rbk_ekind;

typedef struct rbk_expr rbk_expr;
struct rbk_expr {
	rbk_ekind kind;
	int pos; /* byte offset in the source where this node starts */
	rbk_val lit;
	char **segs;
	size_t nsegs;
	rbk_tok_kind op;
	rbk_expr *a, *b;
	char *fn;
	rbk_expr **args;
	size_t nargs;
};

/* Parse the whole of src (len bytes). Unknown function names and wrong
 * argument counts are parse errors. Returns 0, or -1 with err. */
int rbk_parse(rbk_expr **out, const char *src, size_t len, rbk_err *err);
void rbk_expr_free(rbk_expr *e);

/* Call fn(node, ctx) for every node, parents before children. */
void rbk_expr_walk(const rbk_expr *e, void (*fn)(const rbk_expr *node, void *ctx), void *ctx);

#endif
