/* err: fill an rbk_err. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

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
