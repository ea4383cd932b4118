/* mem: allocator hook, failure injection and a growable buffer. */
#include "base/mem.h"
#include "base/exitcode.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long fail_countdown;

static void default_oom(void)
{
	fputs("rbk: error: out of memory\n", stderr);
	exit(RBK_EXIT_INTERRUPTED);
}

static void (*oom_handler)(void) = default_oom;

void rbk_mem_fail_after(unsigned long n) { fail_countdown = n; }
void rbk_mem_set_oom_handler(void (*fn)(void)) { oom_handler = fn ? fn : default_oom; }

/* True when the injected failure is due now. */
static int injected_failure(void)
{
	if (fail_countdown == 0)
		return 0;
	return --fail_countdown == 0;
}

static void *checked(void *p)
{
	if (!p)
		oom_handler();
	return p;
}

void *rbk_xmalloc(size_t n)
{
	if (injected_failure())
		return checked(NULL);
	return checked(malloc(n ? n : 1));
}

void *rbk_xcalloc(size_t count, size_t n)
{
	if (injected_failure())
		return checked(NULL);
	return checked(calloc(count ? count : 1, n ? n : 1));
}

void *rbk_xrealloc(void *p, size_t n)
{
	if (injected_failure())
		return checked(NULL);
	return checked(realloc(p, n ? n : 1));
}

char *rbk_xstrndup(const char *s, size_t n)
{
	char *d = rbk_xmalloc(n + 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *rbk_xstrdup(const char *s) { return rbk_xstrndup(s, strlen(s)); }

/* Formats into a fresh string: one vsnprintf to measure, one to write. */
static char *vformat(const char *fmt, va_list ap)
{
	va_list aq;
	va_copy(aq, ap);
	int n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	size_t size = (size_t)(n < 0 ? 0 : n) + 1;
	char *s = rbk_xmalloc(size);
	vsnprintf(s, size, fmt, ap);
	return s;
}

char *rbk_xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = vformat(fmt, ap);
	va_end(ap);
	return s;
}

void rbk_free(void *p) { free(p); }

void rbk_buf_add(rbk_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->s = rbk_xrealloc(b->s, cap);
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void rbk_buf_puts(rbk_buf *b, const char *s) { rbk_buf_add(b, s, strlen(s)); }
void rbk_buf_putc(rbk_buf *b, char c) { rbk_buf_add(b, &c, 1); }

void rbk_buf_printf(rbk_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = vformat(fmt, ap);
	va_end(ap);
	rbk_buf_puts(b, s);
	rbk_free(s);
}

char *rbk_buf_take(rbk_buf *b)
{
	char *s = b->s ? b->s : rbk_xstrdup("");
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

void rbk_buf_free(rbk_buf *b)
{
	rbk_free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

int rbk_buf_read_file(rbk_buf *b, const char *path, size_t cap)
{
	FILE *f = fopen(path, "rbe");
	if (!f)
		return -1;
	char chunk[4096];
	size_t n;
	while ((!cap || b->len < cap) && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		rbk_buf_add(b, chunk, n);
	fclose(f);
	return 0;
}
