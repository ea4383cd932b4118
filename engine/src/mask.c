/* mask: replace secret values by "***". */
#include "mask.h"
#include "mem.h"

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
