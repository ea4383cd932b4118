/* json: JSON text <-> values, through jansson (parsing) and by hand
 * (encoding, so key order and number format are ours). */
#include "lang/json.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang/regex.h"

/* ---- parsing ---- */

static rbk_val from_jansson(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		rbk_val m = rbk_val_map();
		const char *k;
		json_t *v;
		/* jansson iterates objects in document order. */
		json_object_foreach((json_t *)j, k, v)
			rbk_val_map_set(&m, k, from_jansson(v));
		return m;
	}
	case JSON_ARRAY: {
		rbk_val l = rbk_val_list();
		for (size_t i = 0; i < json_array_size(j); i++)
			rbk_val_list_push(&l, from_jansson(json_array_get(j, i)));
		return l;
	}
	case JSON_STRING:
		return rbk_val_strn(json_string_value(j), json_string_length(j));
	case JSON_INTEGER:
		return rbk_val_int((int64_t)json_integer_value(j));
	case JSON_REAL:
		return rbk_val_num(json_real_value(j));
	case JSON_TRUE:
		return rbk_val_bool(true);
	case JSON_FALSE:
		return rbk_val_bool(false);
	default:
		return rbk_val_null();
	}
}

/* Load text with jansson. An integer beyond int64 makes jansson fail; the
 * document is then read again with every number as a double (all its
 * integers become numbers, which still compare equal to ints). */
static json_t *load(const char *text, size_t len, const char *prefix, rbk_err *err)
{
	json_error_t je;
	size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
	json_t *j = json_loadb(text, len, flags, &je);
	if (!j && strstr(je.text, "too big"))
		j = json_loadb(text, len, flags | JSON_DECODE_INT_AS_REAL, &je);
	if (!j)
		rbk_err_set(err, (int)je.position, "%sinvalid JSON at line %d column %d: %s", prefix,
			    je.line, je.column, je.text);
	return j;
}

int rbk_json_parse(rbk_val *out, const char *text, size_t len, rbk_err *err)
{
	*out = rbk_val_null();
	json_t *j = load(text, len, "", err);
	if (!j)
		return -1;
	*out = from_jansson(j);
	json_decref(j);
	return 0;
}

/* ---- paths ---- */

static int bad_path(rbk_err *err, const char *path, size_t at, const char *what)
{
	rbk_err_set(err, -1, "json(): malformed path '%s' at offset %zu: %s", rbk_err_quote(path).s, at, what);
	return -1;
}

static bool name_char(char c)
{
	return c && !strchr(".[]'\" \t\r\n", c);
}

/* One step of the path at path[*at]; cur becomes the member or element, or
 * NULL when it is absent (the rest of the path is still checked). */
static int path_step(const char *path, size_t *at, json_t **cur, rbk_err *err)
{
	size_t i = *at;
	if (path[i] == '.') {
		size_t s = ++i;
		while (name_char(path[i]))
			i++;
		if (i == s)
			return bad_path(err, path, s, "expected a name after '.'");
		char *name = rbk_xstrndup(path + s, i - s);
		*cur = json_is_object(*cur) ? json_object_get(*cur, name) : NULL;
		rbk_free(name);
	} else if (path[i] == '[' && (path[i + 1] == '\'' || path[i + 1] == '"')) {
		char q = path[i + 1];
		rbk_buf b = {0};
		for (i += 2; path[i] && path[i] != q; i++) {
			if (path[i] == '\\' && (path[i + 1] == q || path[i + 1] == '\\'))
				i++;
			rbk_buf_putc(&b, path[i]);
		}
		if (path[i] != q || path[i + 1] != ']') {
			rbk_buf_free(&b);
			return bad_path(err, path, i, "unclosed quoted name");
		}
		i += 2;
		char *name = rbk_buf_take(&b);
		*cur = json_is_object(*cur) ? json_object_get(*cur, name) : NULL;
		rbk_free(name);
	} else if (path[i] == '[') {
		size_t s = ++i, idx = 0;
		bool big = false;
		while (path[i] >= '0' && path[i] <= '9') {
			if (idx > 100000000)
				big = true;
			else
				idx = idx * 10 + (size_t)(path[i] - '0');
			i++;
		}
		if (i == s || path[i] != ']')
			return bad_path(err, path, i, "expected an index like [0] or a name like ['k']");
		i++;
		*cur = !big && json_is_array(*cur) ? json_array_get(*cur, idx) : NULL;
	} else {
		return bad_path(err, path, i, "expected '.' or '['");
	}
	*at = i;
	return 0;
}

int rbk_json_path(rbk_val *out, const char *text, size_t len, const char *path, rbk_err *err)
{
	*out = rbk_val_null();
	if (path[0] != '$')
		return bad_path(err, path, 0, "a path starts with '$'");
	json_t *root = load(text, len, "json(): ", err);
	if (!root)
		return -1;
	json_t *cur = root;
	size_t at = 1;
	while (path[at]) {
		if (path_step(path, &at, &cur, err) < 0) {
			json_decref(root);
			return -1;
		}
	}
	if (cur)
		*out = from_jansson(cur);
	json_decref(root);
	return 0;
}

/* ---- encoding ---- */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0)
		len = 2, cp = s[0] & 0x1F;
	else if ((s[0] & 0xF0) == 0xE0)
		len = 3, cp = s[0] & 0x0F;
	else if ((s[0] & 0xF8) == 0xF0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	/* Reject overlong forms, surrogates and values past U+10FFFF. */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return 0;
	return len;
}

/* A JSON string: UTF-8 kept as it is, invalid bytes become U+FFFD. */
static void enc_str(rbk_buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	rbk_buf_putc(b, '"');
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		const char *esc = NULL;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		default: break;
		}
		if (esc) {
			rbk_buf_puts(b, esc);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			rbk_buf_printf(b, "\\u%04x", c);
			i++;
		} else {
			size_t k = utf8_seq(u + i, n - i);
			if (k == 0) {
				rbk_buf_puts(b, "\\ufffd");
				i++;
			} else {
				rbk_buf_add(b, s + i, k);
				i += k;
			}
		}
	}
	rbk_buf_putc(b, '"');
}

/* The shortest of %.15g %.16g %.17g that reads back as the same double. */
static void enc_num(rbk_buf *b, double d)
{
	if (!isfinite(d)) {
		rbk_buf_puts(b, "null");
		return;
	}
	char tmp[40];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	rbk_buf_puts(b, tmp);
}

static void enc(rbk_buf *b, const rbk_val *v)
{
	switch (v->t) {
	case RBK_V_NULL:
		rbk_buf_puts(b, "null");
		break;
	case RBK_V_BOOL:
		rbk_buf_puts(b, v->u.b ? "true" : "false");
		break;
	case RBK_V_INT:
		rbk_buf_printf(b, "%" PRId64, v->u.i);
		break;
	case RBK_V_NUM:
		enc_num(b, v->u.n);
		break;
	case RBK_V_STR:
		enc_str(b, v->u.s.s, v->u.s.len);
		break;
	case RBK_V_LIST:
		rbk_buf_putc(b, '[');
		for (size_t i = 0; i < v->u.list.n; i++) {
			if (i)
				rbk_buf_putc(b, ',');
			enc(b, &v->u.list.items[i]);
		}
		rbk_buf_putc(b, ']');
		break;
	case RBK_V_MAP:
		rbk_buf_putc(b, '{');
		for (size_t i = 0; i < v->u.map.n; i++) {
			if (i)
				rbk_buf_putc(b, ',');
			enc_str(b, v->u.map.keys[i], strlen(v->u.map.keys[i]));
			rbk_buf_putc(b, ':');
			enc(b, &v->u.map.vals[i]);
		}
		rbk_buf_putc(b, '}');
		break;
	case RBK_V_DUR: /* as written: "5m", which reads back as one where a duration is expected */
	case RBK_V_REGEX: {
		char *s = rbk_val_to_text(v);
		enc_str(b, s, strlen(s));
		rbk_free(s);
		break;
	}
	}
}

void rbk_json_encode_to(rbk_buf *b, const rbk_val *v)
{
	enc(b, v);
}

char *rbk_json_encode(const rbk_val *v)
{
	rbk_buf b = {0};
	enc(&b, v);
	return rbk_buf_take(&b);
}
