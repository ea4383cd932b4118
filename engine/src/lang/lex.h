/* lex: tokens of the guard and template language.
 *
 * A slash starts a regex literal where an operand is expected (at the start,
 * after an operator, '(' or ','), and is division after an operand. */
#ifndef RBK_LEX_H
#define RBK_LEX_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef enum {
	RBK_T_EOF,
	RBK_T_INT,   /* ival */
	RBK_T_NUM,   /* nval */
	RBK_T_DUR,   /* ival: milliseconds of 500ms, 30s, 1h30m ... */
	RBK_T_STR,   /* text: the unescaped string */
	RBK_T_REGEX, /* text: the pattern, flags: the letters after the closing slash */
	RBK_T_IDENT, /* text */
	RBK_T_TRUE,
	RBK_T_FALSE,
	RBK_T_NULL,
	RBK_T_DOT,
	RBK_T_COMMA,
	RBK_T_LPAREN,
	RBK_T_RPAREN,
	RBK_T_OR,     /* || */
	RBK_T_AND,    /* && */
	RBK_T_EQ,     /* == */
	RBK_T_NE,     /* != */
	RBK_T_LT,
	RBK_T_LE,
	RBK_T_GT,
	RBK_T_GE,
	RBK_T_MATCH,  /* =~ */
	RBK_T_NMATCH, /* !~ */
	RBK_T_PLUS,
	RBK_T_MINUS,
	RBK_T_STAR,
	RBK_T_SLASH,
	RBK_T_PERCENT,
	RBK_T_NOT, /* ! */
	RBK_T_LBRACKET,
	RBK_T_RBRACKET
} rbk_tok_kind;

typedef struct {
	rbk_tok_kind kind;
	int pos; /* byte offset of the token in the source */
	int64_t ival;
	double nval;
	char *text;  /* owned, for STR REGEX IDENT; else NULL */
	char flags[8];
} rbk_tok;

typedef struct {
	const char *src;
	size_t len;
	size_t at;
	rbk_tok_kind prev; /* decides regex versus division */
} rbk_lexer;

void rbk_lex_init(rbk_lexer *lx, const char *src, size_t len);
/* Next token into *out. Returns 0, or -1 with err (pos = offending column). */
int rbk_lex_next(rbk_lexer *lx, rbk_tok *out, rbk_err *err);
void rbk_tok_free(rbk_tok *t);
/* Human spelling of a token kind for messages: "'&&'", "end of expression". */
const char *rbk_tok_name(rbk_tok_kind k);

#endif
