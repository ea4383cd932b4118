/* diag: collect, order and print diagnostics. */
#include "runbook/diag.h"
#include "base/mem.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void rbk_diag_error(rbk_diag *d, const char *file, int line, int col, const char *fmt, ...)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->items = rbk_xrealloc(d->items, d->cap * sizeof *d->items);
	}
	va_list ap;
	va_start(ap, fmt);
	rbk_buf b = {0};
	char tmp[1024];
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	rbk_buf_puts(&b, tmp);
	rbk_diag_item *it = &d->items[d->n++];
	it->file = rbk_xstrdup(file ? file : "rbk");
	it->line = line;
	it->col = col;
	it->msg = rbk_buf_take(&b);
}

/* Stable: qsort is not, so ties fall back to the insertion index. */
typedef struct {
	const rbk_diag_item *it;
	size_t idx;
} ordered;

static int cmp_item(const void *pa, const void *pb)
{
	const ordered *a = pa, *b = pb;
	int c = strcmp(a->it->file, b->it->file);
	if (c)
		return c;
	if (a->it->line != b->it->line)
		return a->it->line < b->it->line ? -1 : 1;
	if (a->it->col != b->it->col)
		return a->it->col < b->it->col ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

void rbk_diag_print(rbk_diag *d, FILE *to)
{
	if (!d->n)
		return;
	ordered *o = rbk_xmalloc(d->n * sizeof *o);
	for (size_t i = 0; i < d->n; i++)
		o[i] = (ordered){&d->items[i], i};
	qsort(o, d->n, sizeof *o, cmp_item);
	for (size_t i = 0; i < d->n; i++) {
		const rbk_diag_item *it = o[i].it;
		/* The same message at the same place (an alias used twice) once. */
		if (i && o[i - 1].it->line == it->line && o[i - 1].it->col == it->col &&
		    !strcmp(o[i - 1].it->msg, it->msg) && !strcmp(o[i - 1].it->file, it->file))
			continue;
		if (it->line)
			fprintf(to, "%s:%d:%d: error: %s\n", it->file, it->line, it->col, it->msg);
		else
			fprintf(to, "%s: error: %s\n", it->file, it->msg);
	}
	rbk_free(o);
}

void rbk_diag_free(rbk_diag *d)
{
	for (size_t i = 0; i < d->n; i++) {
		rbk_free(d->items[i].file);
		rbk_free(d->items[i].msg);
	}
	rbk_free(d->items);
	memset(d, 0, sizeof *d);
}
