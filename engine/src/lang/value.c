/* value: typed values of the guard and template language. */
#include "lang/value.h"

#include "base/dur.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lang/json.h"
#include "lang/regex.h"

rbk_val rbk_val_null(void)
{
	rbk_val v;
	memset(&v, 0, sizeof v);
	v.t = RBK_V_NULL;
	return v;
}

rbk_val rbk_val_bool(bool b)
{
	rbk_val v = rbk_val_null();
	v.t = RBK_V_BOOL;
	v.u.b = b;
	return v;
}

rbk_val rbk_val_int(int64_t i)
{
	rbk_val v = rbk_val_null();
	v.t = RBK_V_INT;
	v.u.i = i;
	return v;
}

rbk_val rbk_val_num(double n)
{
	rbk_val v = rbk_val_null();
	v.t = RBK_V_NUM;
	v.u.n = n;
	return v;
}

rbk_val rbk_val_dur(int64_t ms)
{
	rbk_val v = rbk_val_null();
	v.t = RBK_V_DUR;
	v.u.i = ms;
	return v;
}

rbk_val rbk_val_strn(const char *s, size_t n)
{
	rbk_val v = rbk_val_null();
	v.t = RBK_V_STR;
	v.u.s.s = rbk_xstrndup(s, n);
	v.u.s.len = n;
	return v;
}

rbk_val rbk_val_str(const char *s) { return rbk_val_strn(s, strlen(s)); }

rbk_val rbk_val_str_take(char *s)
{
	rbk_val v = rbk_val_null();
	v.t = RBK_V_STR;
	v.u.s.s = s;
	v.u.s.len = strlen(s);
	return v;
}

rbk_val rbk_val_list(void)
{
	rbk_val v = rbk_val_null();
	v.t = RBK_V_LIST;
	return v;
}

rbk_val rbk_val_map(void)
{
	rbk_val v = rbk_val_null();
	v.t = RBK_V_MAP;
	return v;
}

/* The value takes over the caller's reference (no rbk_re_ref here). */
rbk_val rbk_val_regex(rbk_re *re)
{
	rbk_val v = rbk_val_null();
	v.t = RBK_V_REGEX;
	v.u.re = re;
	return v;
}

/* The struct has no capacity field, so every push reallocates by one; the
 * allocator amortises this and the collections of guards are small. */
/* A list's array holds list_cap(n) items: it doubles as it fills, so a
 * long list (a batch of events) is not copied once per item. */
static size_t list_cap(size_t n)
{
	size_t c = 4;
	while (c < n)
		c *= 2;
	return c;
}

void rbk_val_list_push(rbk_val *list, rbk_val item)
{
	size_t n = list->u.list.n;
	if (n == 0 || n == list_cap(n))
		list->u.list.items = rbk_xrealloc(list->u.list.items, list_cap(n + 1) * sizeof(rbk_val));
	list->u.list.items[list->u.list.n++] = item;
}

void rbk_val_map_set(rbk_val *map, const char *key, rbk_val val)
{
	for (size_t i = 0; i < map->u.map.n; i++) {
		if (strcmp(map->u.map.keys[i], key) == 0) {
			rbk_val_free(&map->u.map.vals[i]);
			map->u.map.vals[i] = val;
			return;
		}
	}
	size_t n = map->u.map.n + 1;
	map->u.map.keys = rbk_xrealloc(map->u.map.keys, n * sizeof(char *));
	map->u.map.vals = rbk_xrealloc(map->u.map.vals, n * sizeof(rbk_val));
	map->u.map.keys[n - 1] = rbk_xstrdup(key);
	map->u.map.vals[n - 1] = val;
	map->u.map.n = n;
}

const rbk_val *rbk_val_map_get(const rbk_val *map, const char *key)
{
	if (!map || map->t != RBK_V_MAP)
		return NULL;
	for (size_t i = 0; i < map->u.map.n; i++)
		if (strcmp(map->u.map.keys[i], key) == 0)
			return &map->u.map.vals[i];
	return NULL;
}

void rbk_val_free(rbk_val *v)
{
	if (!v)
		return;
	switch (v->t) {
	case RBK_V_STR:
		rbk_free(v->u.s.s);
		break;
	case RBK_V_LIST:
		for (size_t i = 0; i < v->u.list.n; i++)
			rbk_val_free(&v->u.list.items[i]);
		rbk_free(v->u.list.items);
		break;
	case RBK_V_MAP:
		for (size_t i = 0; i < v->u.map.n; i++) {
			rbk_free(v->u.map.keys[i]);
			rbk_val_free(&v->u.map.vals[i]);
		}
		rbk_free(v->u.map.keys);
		rbk_free(v->u.map.vals);
		break;
	case RBK_V_REGEX:
		rbk_re_free(v->u.re);
		break;
	default:
		break;
	}
	*v = rbk_val_null();
}

static rbk_val copy_shape(const rbk_val *v);

rbk_val rbk_val_copy(const rbk_val *v)
{
	rbk_val c = copy_shape(v);
	c.secret = v->secret;
	return c;
}

bool rbk_val_has_secret(const rbk_val *v)
{
	if (v->secret)
		return true;
	if (v->t == RBK_V_LIST)
		for (size_t i = 0; i < v->u.list.n; i++)
			if (rbk_val_has_secret(&v->u.list.items[i]))
				return true;
	if (v->t == RBK_V_MAP)
		for (size_t i = 0; i < v->u.map.n; i++)
			if (rbk_val_has_secret(&v->u.map.vals[i]))
				return true;
	return false;
}

void rbk_val_mark_secret(rbk_val *v) { v->secret = true; }

static rbk_val copy_shape(const rbk_val *v)
{
	rbk_val c;
	switch (v->t) {
	case RBK_V_STR:
		return rbk_val_strn(v->u.s.s, v->u.s.len);
	case RBK_V_LIST:
		c = rbk_val_list();
		if (v->u.list.n) {
			c.u.list.items = rbk_xmalloc(list_cap(v->u.list.n) * sizeof(rbk_val));
			for (size_t i = 0; i < v->u.list.n; i++)
				c.u.list.items[i] = rbk_val_copy(&v->u.list.items[i]);
			c.u.list.n = v->u.list.n;
		}
		return c;
	case RBK_V_MAP:
		c = rbk_val_map();
		if (v->u.map.n) {
			c.u.map.keys = rbk_xmalloc(v->u.map.n * sizeof(char *));
			c.u.map.vals = rbk_xmalloc(v->u.map.n * sizeof(rbk_val));
			for (size_t i = 0; i < v->u.map.n; i++) {
				c.u.map.keys[i] = rbk_xstrdup(v->u.map.keys[i]);
				c.u.map.vals[i] = rbk_val_copy(&v->u.map.vals[i]);
			}
			c.u.map.n = v->u.map.n;
		}
		return c;
	case RBK_V_REGEX:
		return rbk_val_regex(rbk_re_ref(v->u.re));
	default:
		return *v; /* scalars own nothing */
	}
}

static double as_double(const rbk_val *v) { return v->t == RBK_V_INT ? (double)v->u.i : v->u.n; }

bool rbk_val_equal(const rbk_val *a, const rbk_val *b)
{
	bool anum = a->t == RBK_V_INT || a->t == RBK_V_NUM;
	bool bnum = b->t == RBK_V_INT || b->t == RBK_V_NUM;
	if (anum && bnum) {
		if (a->t == RBK_V_INT && b->t == RBK_V_INT)
			return a->u.i == b->u.i;
		return as_double(a) == as_double(b);
	}
	if (a->t != b->t)
		return false;
	switch (a->t) {
	case RBK_V_NULL:
		return true;
	case RBK_V_BOOL:
		return a->u.b == b->u.b;
	case RBK_V_DUR:
		return a->u.i == b->u.i;
	case RBK_V_STR:
		return a->u.s.len == b->u.s.len && memcmp(a->u.s.s, b->u.s.s, a->u.s.len) == 0;
	case RBK_V_LIST:
		if (a->u.list.n != b->u.list.n)
			return false;
		for (size_t i = 0; i < a->u.list.n; i++)
			if (!rbk_val_equal(&a->u.list.items[i], &b->u.list.items[i]))
				return false;
		return true;
	case RBK_V_MAP:
		/* Key order does not matter for equality. */
		if (a->u.map.n != b->u.map.n)
			return false;
		for (size_t i = 0; i < a->u.map.n; i++) {
			const rbk_val *bv = rbk_val_map_get(b, a->u.map.keys[i]);
			if (!bv || !rbk_val_equal(&a->u.map.vals[i], bv))
				return false;
		}
		return true;
	case RBK_V_REGEX:
		return strcmp(rbk_re_source(a->u.re), rbk_re_source(b->u.re)) == 0 &&
		       strcmp(rbk_re_flags(a->u.re), rbk_re_flags(b->u.re)) == 0;
	default:
		return false;
	}
}

bool rbk_val_truthy(const rbk_val *v)
{
	switch (v->t) {
	case RBK_V_NULL:
		return false;
	case RBK_V_BOOL:
		return v->u.b;
	case RBK_V_INT:
	case RBK_V_DUR:
		return v->u.i != 0;
	case RBK_V_NUM:
		return v->u.n != 0.0;
	case RBK_V_STR:
		return v->u.s.len != 0;
	case RBK_V_LIST:
		return v->u.list.n != 0;
	case RBK_V_MAP:
		return v->u.map.n != 0;
	case RBK_V_REGEX:
		return true;
	}
	return false;
}

const char *rbk_val_type_name(rbk_vtype t)
{
	static const char *const names[] = {"null", "bool", "int", "number", "string",
					    "list", "map",  "regex", "duration"};
	if ((unsigned)t < sizeof names / sizeof names[0])
		return names[t];
	return "unknown";
}

char *rbk_val_to_text(const rbk_val *v)
{
	switch (v->t) {
	case RBK_V_NULL:
		return rbk_xstrdup("");
	case RBK_V_BOOL:
		return rbk_xstrdup(v->u.b ? "true" : "false");
	case RBK_V_INT:
		return rbk_xasprintf("%" PRId64, v->u.i);
	case RBK_V_NUM:
		return rbk_xasprintf("%.15g", v->u.n);
	case RBK_V_DUR: {
		char d[64];
		rbk_dur_text(v->u.i, d, sizeof d);
		return rbk_xstrdup(d);
	}
	case RBK_V_STR:
		return rbk_xstrndup(v->u.s.s, v->u.s.len);
	case RBK_V_REGEX:
		return rbk_xasprintf("/%s/%s", rbk_re_source(v->u.re), rbk_re_flags(v->u.re));
	case RBK_V_LIST:
	case RBK_V_MAP:
		return rbk_json_encode(v);
	}
	return rbk_xstrdup("");
}
