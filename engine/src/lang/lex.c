/* lex: the tokens of the guard and template language.
 *
 * The lexer never reads at or past len: sources are slices of larger texts
 * (a template) and need not be NUL-terminated. */
#include "lang/lex.h"

#include "base/dur.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_word(int c) { return is_alpha(c) || is_digit(c); }
static int is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Byte at i, or NUL past the end, so look-ahead never overruns the slice. */
static int peek(const rbk_lexer *lx, size_t i) { return i < lx->len ? (unsigned char)lx->src[i] : 0; }

void rbk_lex_init(rbk_lexer *lx, const char *src, size_t len)
{
	lx->src = src;
	lx->len = len;
	lx->at = 0;
	lx->prev = RBK_T_EOF;
}

void rbk_tok_free(rbk_tok *t)
{
	if (!t)
		return;
	rbk_free(t->text);
	t->text = NULL;
}

const char *rbk_tok_name(rbk_tok_kind k)
{
	static const char *const names[] = {
	    [RBK_T_EOF] = "end of expression", [RBK_T_INT] = "integer",
	    [RBK_T_NUM] = "number",            [RBK_T_STR] = "string",
	    [RBK_T_DUR] = "duration",
	    [RBK_T_REGEX] = "regex",           [RBK_T_IDENT] = "name",
	    [RBK_T_TRUE] = "'true'",           [RBK_T_FALSE] = "'false'",
	    [RBK_T_NULL] = "'null'",           [RBK_T_DOT] = "'.'",
	    [RBK_T_COMMA] = "','",             [RBK_T_LPAREN] = "'('",
	    [RBK_T_LBRACKET] = "'['",          [RBK_T_RBRACKET] = "']'",
	    [RBK_T_RPAREN] = "')'",            [RBK_T_OR] = "'||'",
	    [RBK_T_AND] = "'&&'",              [RBK_T_EQ] = "'=='",
	    [RBK_T_NE] = "'!='",               [RBK_T_LT] = "'<'",
	    [RBK_T_LE] = "'<='",               [RBK_T_GT] = "'>'",
	    [RBK_T_GE] = "'>='",               [RBK_T_MATCH] = "'=~'",
	    [RBK_T_NMATCH] = "'!~'",           [RBK_T_PLUS] = "'+'",
	    [RBK_T_MINUS] = "'-'",             [RBK_T_STAR] = "'*'",
	    [RBK_T_SLASH] = "'/'",             [RBK_T_PERCENT] = "'%'",
	    [RBK_T_NOT] = "'!'",
	};
	if ((unsigned)k < sizeof names / sizeof names[0] && names[k])
		return names[k];
	return "token";
}

/* After these tokens an operand is complete, so '/' means division. */
static int ends_operand(rbk_tok_kind k)
{
	switch (k) {
	case RBK_T_INT:
	case RBK_T_NUM:
	case RBK_T_DUR:
	case RBK_T_STR:
	case RBK_T_REGEX:
	case RBK_T_IDENT:
	case RBK_T_TRUE:
	case RBK_T_FALSE:
	case RBK_T_NULL:
	case RBK_T_RPAREN:
		return 1;
	default:
		return 0;
	}
}

static int lex_number(rbk_lexer *lx, rbk_tok *t, rbk_err *err)
{
	size_t start = lx->at, i = lx->at;
	int is_num = 0;
	while (is_digit(peek(lx, i)))
		i++;
	if (peek(lx, i) == '.' && is_digit(peek(lx, i + 1))) {
		is_num = 1;
		i++;
		while (is_digit(peek(lx, i)))
			i++;
	}
	if (peek(lx, i) == 'e' || peek(lx, i) == 'E') {
		size_t j = i + 1;
		if (peek(lx, j) == '+' || peek(lx, j) == '-')
			j++;
		if (is_digit(peek(lx, j))) {
			is_num = 1;
			i = j;
			while (is_digit(peek(lx, i)))
				i++;
		}
	}
	int64_t ms;
	size_t dn = is_num ? 0 : rbk_dur_span(lx->src + start, lx->len - start, &ms);
	if (dn > i - start && !is_word(peek(lx, start + dn))) { /* 5m, 1h30m: a duration */
		t->kind = RBK_T_DUR;
		t->ival = ms;
		lx->at = start + dn;
		return 0;
	}
	if (is_word(peek(lx, i))) {
		size_t j = i;
		while (is_word(peek(lx, j)))
			j++;
		rbk_err_set(err, (int)start, "invalid number '%.*s'", (int)(j - start),
			    lx->src + start);
		return -1;
	}
	char *text = rbk_xstrndup(lx->src + start, i - start);
	char *end;
	errno = 0;
	if (is_num) {
		t->kind = RBK_T_NUM;
		t->nval = strtod(text, &end);
	} else {
		t->kind = RBK_T_INT;
		long long v = strtoll(text, &end, 10);
		t->ival = v;
	}
	int range = errno == ERANGE;
	rbk_free(text);
	if (range) {
		rbk_err_set(err, (int)start, "number '%.*s' is out of range", (int)(i - start),
			    lx->src + start);
		return -1;
	}
	lx->at = i;
	return 0;
}

static int lex_string(rbk_lexer *lx, rbk_tok *t, rbk_err *err)
{
	size_t start = lx->at, i = lx->at + 1;
	int q = peek(lx, start);
	rbk_buf b = {0};
	for (;;) {
		if (i >= lx->len) {
			rbk_buf_free(&b);
			rbk_err_set(err, (int)start, "unterminated string");
			return -1;
		}
		int c = peek(lx, i);
		if (c == q)
			break;
		if (c == '\\') {
			int e = peek(lx, i + 1);
			char r;
			switch (e) {
			case '\\': r = '\\'; break;
			case '\'': r = '\''; break;
			case '"': r = '"'; break;
			case '/': r = '/'; break;
			case 'n': r = '\n'; break;
			case 't': r = '\t'; break;
			case 'r': r = '\r'; break;
			default:
				rbk_buf_free(&b);
				if (i + 1 >= lx->len)
					rbk_err_set(err, (int)start, "unterminated string");
				else if (e >= 0x20 && e < 0x7f)
					rbk_err_set(err, (int)i, "unknown escape '\\%c' in string", e);
				else
					rbk_err_set(err, (int)i, "unknown escape in string");
				return -1;
			}
			rbk_buf_putc(&b, r);
			i += 2;
			continue;
		}
		if (c == 0) {
			rbk_buf_free(&b);
			rbk_err_set(err, (int)i, "NUL byte in string");
			return -1;
		}
		rbk_buf_putc(&b, (char)c);
		i++;
	}
	t->kind = RBK_T_STR;
	t->text = rbk_buf_take(&b);
	lx->at = i + 1;
	return 0;
}

/* /pattern/flags: "\/" stands for "/", other escapes go to PCRE2 as written. */
static int lex_regex(rbk_lexer *lx, rbk_tok *t, rbk_err *err)
{
	size_t start = lx->at, i = lx->at + 1;
	rbk_buf b = {0};
	for (;;) {
		if (i >= lx->len) {
			rbk_buf_free(&b);
			rbk_err_set(err, (int)start, "unterminated regex");
			return -1;
		}
		int c = peek(lx, i);
		if (c == '/')
			break;
		if (c == '\\' && i + 1 < lx->len) {
			if (peek(lx, i + 1) == '/') {
				rbk_buf_putc(&b, '/');
			} else {
				rbk_buf_putc(&b, '\\');
				rbk_buf_putc(&b, (char)peek(lx, i + 1));
			}
			i += 2;
			continue;
		}
		if (c == 0) {
			rbk_buf_free(&b);
			rbk_err_set(err, (int)i, "NUL byte in regex");
			return -1;
		}
		rbk_buf_putc(&b, (char)c);
		i++;
	}
	i++; /* closing slash */
	size_t nf = 0;
	while (is_alpha(peek(lx, i))) {
		int f = peek(lx, i);
		if (f != 'i' && f != 'm' && f != 's' && f != 'x') {
			rbk_buf_free(&b);
			rbk_err_set(err, (int)i, "unknown regex flag '%c' (flags are i m s x)", f);
			return -1;
		}
		if (memchr(t->flags, f, nf)) {
			rbk_buf_free(&b);
			rbk_err_set(err, (int)i, "duplicate regex flag '%c'", f);
			return -1;
		}
		t->flags[nf++] = (char)f;
		i++;
	}
	t->flags[nf] = '\0';
	t->kind = RBK_T_REGEX;
	t->text = rbk_buf_take(&b);
	lx->at = i;
	return 0;
}

/* A name segment: the first segment is an identifier; after a dot a segment
 * may start with a digit (steps.1st.status). No name of the format contains
 * '-', so params.count-1 is a subtraction. */
static int lex_word(rbk_lexer *lx, rbk_tok *t, int after_dot)
{
	size_t start = lx->at, i = lx->at;
	while (is_word(peek(lx, i)))
		i++;
	size_t n = i - start;
	t->kind = RBK_T_IDENT;
	if (!after_dot) {
		if (n == 4 && memcmp(lx->src + start, "true", 4) == 0)
			t->kind = RBK_T_TRUE;
		else if (n == 5 && memcmp(lx->src + start, "false", 5) == 0)
			t->kind = RBK_T_FALSE;
		else if (n == 4 && memcmp(lx->src + start, "null", 4) == 0)
			t->kind = RBK_T_NULL;
	}
	if (t->kind == RBK_T_IDENT)
		t->text = rbk_xstrndup(lx->src + start, n);
	lx->at = i;
	return 0;
}

/* One- and two-character operators. Returns 0, or -1 when c starts none. */
static int lex_op(rbk_lexer *lx, rbk_tok *t, rbk_err *err)
{
	int c = peek(lx, lx->at), d = peek(lx, lx->at + 1);
	size_t w = 1;
	switch (c) {
	case '(': t->kind = RBK_T_LPAREN; break;
	case ')': t->kind = RBK_T_RPAREN; break;
	case ',': t->kind = RBK_T_COMMA; break;
	case '[': t->kind = RBK_T_LBRACKET; break;
	case ']': t->kind = RBK_T_RBRACKET; break;
	case '.': t->kind = RBK_T_DOT; break;
	case '+': t->kind = RBK_T_PLUS; break;
	case '-': t->kind = RBK_T_MINUS; break;
	case '*': t->kind = RBK_T_STAR; break;
	case '/': t->kind = RBK_T_SLASH; break;
	case '%': t->kind = RBK_T_PERCENT; break;
	case '<':
		t->kind = d == '=' ? RBK_T_LE : RBK_T_LT;
		w = d == '=' ? 2 : 1;
		break;
	case '>':
		t->kind = d == '=' ? RBK_T_GE : RBK_T_GT;
		w = d == '=' ? 2 : 1;
		break;
	case '!':
		if (d == '=' || d == '~') {
			t->kind = d == '=' ? RBK_T_NE : RBK_T_NMATCH;
			w = 2;
		} else {
			t->kind = RBK_T_NOT;
		}
		break;
	case '=':
		if (d == '=' || d == '~') {
			t->kind = d == '=' ? RBK_T_EQ : RBK_T_MATCH;
			w = 2;
			break;
		}
		rbk_err_set(err, t->pos, "unexpected character '=' (did you mean '=='?)");
		return -1;
	case '&':
	case '|':
		if (d == c) {
			t->kind = c == '&' ? RBK_T_AND : RBK_T_OR;
			w = 2;
			break;
		}
		rbk_err_set(err, t->pos, "unexpected character '%c' (did you mean '%c%c'?)", c, c,
			    c);
		return -1;
	default:
		if (c >= 0x21 && c < 0x7f)
			rbk_err_set(err, t->pos, "unexpected character '%c'", c);
		else
			rbk_err_set(err, t->pos, "unexpected byte 0x%02x", (unsigned)c);
		return -1;
	}
	lx->at += w;
	return 0;
}

int rbk_lex_next(rbk_lexer *lx, rbk_tok *out, rbk_err *err)
{
	memset(out, 0, sizeof *out);
	while (lx->at < lx->len && is_space(peek(lx, lx->at)))
		lx->at++;
	out->pos = (int)lx->at;
	if (lx->at >= lx->len) {
		out->kind = RBK_T_EOF;
		lx->prev = RBK_T_EOF;
		return 0;
	}
	int c = peek(lx, lx->at), rc;
	if (lx->prev == RBK_T_DOT && is_word(c))
		rc = lex_word(lx, out, 1);
	else if (is_digit(c))
		rc = lex_number(lx, out, err);
	else if (is_alpha(c))
		rc = lex_word(lx, out, 0);
	else if (c == '\'' || c == '"')
		rc = lex_string(lx, out, err);
	else if (c == '/' && !ends_operand(lx->prev))
		rc = lex_regex(lx, out, err);
	else
		rc = lex_op(lx, out, err);
	if (rc < 0) {
		rbk_tok_free(out);
		return -1;
	}
	lx->prev = out->kind;
	return 0;
}
