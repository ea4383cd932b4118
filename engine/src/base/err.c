/* err: fill an rbk_err. */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void rbk_err_set(rbk_err *e, int pos, const char *fmt, ...)
{
	if (!e)
		return;
	va_list ap;
	va_start(ap, fmt);
	e->pos = pos;
	e->code = RBK_ERR_GENERIC;
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
}

rbk_err_quoted rbk_err_quote(const char *value)
{
	rbk_err_quoted q;
	size_t n = value ? strlen(value) : 0;
	if (n <= RBK_ERR_QUOTE_MAX) {
		memcpy(q.s, value ? value : "", n + 1);
		return q;
	}
	n = RBK_ERR_QUOTE_MAX;
	while (n > 0 && ((unsigned char)value[n] & 0xC0) == 0x80)
		n--; /* value[n] continues a character: cut before it starts */
	memcpy(q.s, value, n);
	memcpy(q.s + n, "...", 4);
	return q;
}
