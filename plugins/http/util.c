/* util: buffer, JSON writer, expected statuses, masking, base64. */
#include "util.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffer ---- */

static int hb_grow(hbuf *b, size_t need)
{
	if (b->oom)
		return -1;
	if (b->len + need + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + need + 1) {
		if (cap > ((size_t)-1) / 2) {
			b->oom = 1;
			return -1;
		}
		cap *= 2;
	}
	char *s = realloc(b->s, cap);
	if (!s) {
		b->oom = 1;
		return -1;
	}
	b->s = s;
	b->cap = cap;
	return 0;
}

void hb_add(hbuf *b, const char *s, size_t n)
{
	if (hb_grow(b, n) < 0)
		return;
	if (n)
		memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void hb_puts(hbuf *b, const char *s) { hb_add(b, s, strlen(s)); }

void hb_printf(hbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || hb_grow(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void hb_free(hbuf *b)
{
	free(b->s);
	memset(b, 0, sizeof *b);
}

const char *hb_str(const hbuf *b) { return b->s ? b->s : ""; }

/* ---- JSON ---- */

static void json_string(hbuf *b, const char *s, size_t n)
{
	hb_add(b, "\"", 1);
	size_t run = 0; /* bytes copied as they are, flushed before an escape */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[8];
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		default:
			if (c < 0x20) {
				snprintf(u, sizeof u, "\\u%04x", c);
				esc = u;
			}
		}
		if (!esc)
			continue;
		hb_add(b, s + run, i - run);
		hb_puts(b, esc);
		run = i + 1;
	}
	hb_add(b, s + run, n - run);
	hb_add(b, "\"", 1);
}

static int json_value(hbuf *b, const rbk_value *v, int depth, char *err, size_t errsize)
{
	if (depth > 64) {
		snprintf(err, errsize, "nested more than 64 levels deep");
		return -1;
	}
	switch (v->type) {
	case RBK_TYPE_STRING: json_string(b, v->as.str.ptr ? v->as.str.ptr : "", v->as.str.ptr ? v->as.str.len : 0); return 0;
	case RBK_TYPE_INT:
	case RBK_TYPE_DURATION: hb_printf(b, "%lld", (long long)v->as.i); return 0;
	case RBK_TYPE_NUMBER:
		if (!isfinite(v->as.num)) {
			snprintf(err, errsize, "a number that is not finite has no JSON form");
			return -1;
		}
		hb_printf(b, "%.17g", v->as.num);
		return 0;
	case RBK_TYPE_BOOL: hb_puts(b, v->as.boolean ? "true" : "false"); return 0;
	case RBK_TYPE_LIST:
		hb_add(b, "[", 1);
		for (size_t i = 0; i < v->as.list.count; i++) {
			if (i)
				hb_add(b, ",", 1);
			if (json_value(b, &v->as.list.items[i], depth + 1, err, errsize) < 0)
				return -1;
		}
		hb_add(b, "]", 1);
		return 0;
	case RBK_TYPE_MAP:
		hb_add(b, "{", 1);
		for (size_t i = 0; i < v->as.map.count; i++) {
			if (i)
				hb_add(b, ",", 1);
			json_string(b, v->as.map.keys[i], strlen(v->as.map.keys[i]));
			hb_add(b, ":", 1);
			if (json_value(b, &v->as.map.values[i], depth + 1, err, errsize) < 0)
				return -1;
		}
		hb_add(b, "}", 1);
		return 0;
	case RBK_TYPE_ANY:
	case RBK_TYPE_NULL: break;
	}
	hb_puts(b, "null");
	return 0;
}

int hjson_write(hbuf *b, const rbk_value *v, char *err, size_t errsize)
{
	return json_value(b, v, 0, err, errsize);
}

const char *scalar_text(const rbk_value *v, char *buf, size_t size)
{
	switch (v->type) {
	case RBK_TYPE_STRING: return v->as.str.ptr ? v->as.str.ptr : "";
	case RBK_TYPE_INT:
	case RBK_TYPE_DURATION: snprintf(buf, size, "%lld", (long long)v->as.i); return buf;
	case RBK_TYPE_NUMBER: snprintf(buf, size, "%.15g", v->as.num); return buf;
	case RBK_TYPE_BOOL: return v->as.boolean ? "true" : "false";
	default: return NULL;
	}
}

/* ---- expected statuses ---- */

static int add_range(status_set *s, long lo, long hi, const char *what, char *err, size_t errsize)
{
	if (lo < 100 || hi > 599 || lo > hi) {
		snprintf(err, errsize, "expect_status: '%s' is not a status or range from 100 to 599", what);
		return -1;
	}
	if (s->n >= sizeof s->r / sizeof *s->r) {
		snprintf(err, errsize, "expect_status: more than %zu statuses or ranges", sizeof s->r / sizeof *s->r);
		return -1;
	}
	s->r[s->n].lo = (int)lo;
	s->r[s->n].hi = (int)hi;
	s->n++;
	return 0;
}

/* "200-299, 304": comma-separated statuses and ranges. */
static int parse_text(const char *t, status_set *s, char *err, size_t errsize)
{
	const char *p = t;
	for (;;) {
		while (*p == ' ')
			p++;
		const char *item = p;
		char *end;
		if (!isdigit((unsigned char)*p))
			goto bad;
		long lo = strtol(p, &end, 10), hi = lo;
		p = end;
		while (*p == ' ')
			p++;
		if (*p == '-') {
			p++;
			while (*p == ' ')
				p++;
			if (!isdigit((unsigned char)*p))
				goto bad;
			hi = strtol(p, &end, 10);
			p = end;
			while (*p == ' ')
				p++;
		}
		if (*p && *p != ',')
			goto bad;
		char what[64];
		snprintf(what, sizeof what, "%.*s", (int)(p - item), item);
		if (add_range(s, lo, hi, what, err, errsize) < 0)
			return -1;
		if (!*p)
			return 0;
		p++;
	}
bad:
	snprintf(err, errsize, "expect_status: cannot read '%.60s' (write 200-299, or a list such as [200, 204])", t);
	return -1;
}

static int parse_item(const rbk_value *v, status_set *s, char *err, size_t errsize)
{
	if (v->type == RBK_TYPE_INT) {
		char what[32];
		snprintf(what, sizeof what, "%lld", (long long)v->as.i);
		long code = v->as.i < 0 || v->as.i > 100000 ? -1 : (long)v->as.i;
		return add_range(s, code, code, what, err, errsize);
	}
	if (v->type == RBK_TYPE_STRING)
		return parse_text(v->as.str.ptr, s, err, errsize);
	snprintf(err, errsize, "expect_status must be an int, a string such as \"200-299\" or a list of them");
	return -1;
}

int status_parse(const rbk_value *v, status_set *out, char *err, size_t errsize)
{
	memset(out, 0, sizeof *out);
	if (!v || v->type == RBK_TYPE_NULL) {
		out->r[0].lo = 200;
		out->r[0].hi = 299;
		out->n = 1;
		return 0;
	}
	if (v->type != RBK_TYPE_LIST)
		return parse_item(v, out, err, errsize);
	if (v->as.list.count == 0) {
		snprintf(err, errsize, "expect_status: the list is empty");
		return -1;
	}
	for (size_t i = 0; i < v->as.list.count; i++)
		if (parse_item(&v->as.list.items[i], out, err, errsize) < 0)
			return -1;
	return 0;
}

int status_match(const status_set *s, long code)
{
	for (size_t i = 0; i < s->n; i++)
		if (code >= s->r[i].lo && code <= s->r[i].hi)
			return 1;
	return 0;
}

void status_text(const status_set *s, hbuf *b)
{
	for (size_t i = 0; i < s->n; i++) {
		if (i)
			hb_puts(b, ", ");
		if (s->r[i].lo == s->r[i].hi)
			hb_printf(b, "%d", s->r[i].lo);
		else
			hb_printf(b, "%d-%d", s->r[i].lo, s->r[i].hi);
	}
}

/* ---- masking ---- */

void secrets_add(secrets *m, const char *s)
{
	if (!s || !*s || m->n >= sizeof m->s / sizeof *m->s)
		return;
	/* Longest first, so that a secret containing another is masked whole. */
	size_t i = m->n++;
	while (i > 0 && strlen(m->s[i - 1]) < strlen(s)) {
		m->s[i] = m->s[i - 1];
		i--;
	}
	m->s[i] = s;
}

char *mask_apply(const secrets *m, const char *text, size_t len, size_t *outlen)
{
	hbuf b = {0};
	hb_add(&b, "", 0);
	size_t run = 0;
	for (size_t i = 0; i < len;) {
		size_t hit = 0;
		for (size_t k = 0; k < m->n && !hit; k++) {
			size_t sl = strlen(m->s[k]);
			if (sl <= len - i && !memcmp(text + i, m->s[k], sl))
				hit = sl;
		}
		if (!hit) {
			i++;
			continue;
		}
		hb_add(&b, text + run, i - run);
		hb_add(&b, "***", 3);
		i += hit;
		run = i;
	}
	hb_add(&b, text + run, len - run);
	if (b.oom) {
		hb_free(&b);
		return NULL;
	}
	if (outlen)
		*outlen = b.len;
	return b.s;
}

/* ---- base64 ---- */

char *base64(const char *s, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
	if (!out)
		return NULL;
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	for (; i + 2 < n; i += 3) {
		unsigned v = (unsigned)u[i] << 16 | (unsigned)u[i + 1] << 8 | u[i + 2];
		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = tab[v >> 6 & 63];
		*o++ = tab[v & 63];
	}
	if (i < n) {
		unsigned v = (unsigned)u[i] << 16 | (i + 1 < n ? (unsigned)u[i + 1] << 8 : 0);
		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}
