/* mask: replace secret values by "***". */
#include "lang/mask.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

static int longer_first(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
	return la < lb ? 1 : la > lb ? -1 : 0;
}

void rbk_mask_add(rbk_mask *m, const char *secret)
{
	if (!secret || !*secret)
		return;
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->secrets[i], secret))
			return;
	m->secrets = rbk_xrealloc(m->secrets, (m->n + 1) * sizeof *m->secrets);
	m->secrets[m->n++] = rbk_xstrdup(secret);
	qsort(m->secrets, m->n, sizeof *m->secrets, longer_first);
}

static bool contains_secret(const rbk_mask *m, const char *text, size_t len)
{
	for (size_t k = 0; k < m->n; k++)
		if (memmem(text, len, m->secrets[k], strlen(m->secrets[k])))
			return true;
	return false;
}

static void add_scalars(rbk_mask *m, const rbk_val *v, bool inside)
{
	bool secret = inside || v->secret;
	if (v->t == RBK_V_LIST)
		for (size_t i = 0; i < v->u.list.n; i++)
			add_scalars(m, &v->u.list.items[i], secret);
	else if (v->t == RBK_V_MAP)
		for (size_t i = 0; i < v->u.map.n; i++)
			add_scalars(m, &v->u.map.vals[i], secret);
	else if (secret && (v->t == RBK_V_STR || v->t == RBK_V_INT || v->t == RBK_V_NUM || v->t == RBK_V_DUR)) {
		char *t = rbk_val_to_text(v);
		size_t n = strlen(t);
		if (n >= RBK_MASK_MIN_DERIVED && !contains_secret(m, t, n))
			rbk_mask_add(m, t);
		rbk_free(t);
	}
}

void rbk_mask_add_val(rbk_mask *m, const rbk_val *v) { add_scalars(m, v, false); }

rbk_val rbk_mask_val(const rbk_mask *m, const rbk_val *v)
{
	if (v->secret)
		return rbk_val_str("***");
	rbk_val c;
	switch (v->t) {
	case RBK_V_STR: {
		size_t len = 0;
		char *s = m && m->n ? rbk_mask_apply(m, v->u.s.s, v->u.s.len, &len) : NULL;
		if (!s)
			return rbk_val_copy(v);
		c = rbk_val_str_take(s);
		c.u.s.len = len;
		return c;
	}
	case RBK_V_LIST:
		c = rbk_val_list();
		for (size_t i = 0; i < v->u.list.n; i++)
			rbk_val_list_push(&c, rbk_mask_val(m, &v->u.list.items[i]));
		return c;
	case RBK_V_MAP:
		c = rbk_val_map();
		for (size_t i = 0; i < v->u.map.n; i++)
			rbk_val_map_set(&c, v->u.map.keys[i], rbk_mask_val(m, &v->u.map.vals[i]));
		return c;
	default:
		return rbk_val_copy(v);
	}
}

void rbk_mask_taint(const rbk_mask *m, rbk_val *v)
{
	if (!m || !m->n)
		return;
	if (v->t == RBK_V_STR && contains_secret(m, v->u.s.s, v->u.s.len))
		v->secret = true;
	else if (v->t == RBK_V_LIST)
		for (size_t i = 0; i < v->u.list.n; i++)
			rbk_mask_taint(m, &v->u.list.items[i]);
	else if (v->t == RBK_V_MAP)
		for (size_t i = 0; i < v->u.map.n; i++)
			rbk_mask_taint(m, &v->u.map.vals[i]);
}

char *rbk_mask_apply(const rbk_mask *m, const char *text, size_t len, size_t *outlen)
{
	rbk_buf b = {0};
	size_t i = 0, run = 0; /* text[run..i) is clean and not yet copied */
	while (i < len) {
		size_t hit = 0;
		for (size_t k = 0; m && k < m->n && !hit; k++) {
			size_t sl = strlen(m->secrets[k]);
			if (sl <= len - i && text[i] == m->secrets[k][0] && !memcmp(text + i, m->secrets[k], sl))
				hit = sl;
		}
		if (!hit) {
			i++;
			continue;
		}
		rbk_buf_add(&b, text + run, i - run);
		rbk_buf_add(&b, "***", 3);
		i += hit;
		run = i;
	}
	rbk_buf_add(&b, text + run, len - run);
	if (outlen)
		*outlen = b.len;
	return rbk_buf_take(&b);
}

void rbk_mask_free(rbk_mask *m)
{
	for (size_t i = 0; i < m->n; i++)
		rbk_free(m->secrets[i]);
	rbk_free(m->secrets);
	m->secrets = NULL;
	m->n = 0;
}
