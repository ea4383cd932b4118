/* mem: the one allocator hook of rbk.
 *
 * Every allocation in the engine goes through these functions, so a test can
 * make the Nth allocation fail and a build can count them. The x* variants
 * never return NULL: on exhaustion they call the out-of-memory handler, which
 * by default prints a message and exits with RBK_EXIT_INTERRUPTED, leaving
 * any run resumable (the store is only ever changed by committed
 * transactions). */
#ifndef RBK_MEM_H
#define RBK_MEM_H

#include <stddef.h>

void *rbk_xmalloc(size_t n);
void *rbk_xcalloc(size_t count, size_t n);
void *rbk_xrealloc(void *p, size_t n);
char *rbk_xstrdup(const char *s);
char *rbk_xstrndup(const char *s, size_t n);
/* printf into a fresh string; the caller frees it with rbk_free. */
char *rbk_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void rbk_free(void *p);

/* Fail the nth allocation from now (1 = the next one), 0 disables. */
void rbk_mem_fail_after(unsigned long n);
/* Replace the out-of-memory handler (it must not return). */
void rbk_mem_set_oom_handler(void (*fn)(void));

/* Growable byte buffer, always NUL-terminated. */
typedef struct {
	char *s;
	size_t len, cap;
} rbk_buf;

void rbk_buf_add(rbk_buf *b, const char *s, size_t n);
void rbk_buf_puts(rbk_buf *b, const char *s);
void rbk_buf_putc(rbk_buf *b, char c);
void rbk_buf_printf(rbk_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the buffer's string to the caller (never NULL) and reset the buffer. */
char *rbk_buf_take(rbk_buf *b);
void rbk_buf_free(rbk_buf *b);
/* Append the bytes of the file at path to b, until it holds at least cap
 * bytes (0: the whole file). Returns 0, or -1 (errno set) when the file
 * cannot be opened. */
int rbk_buf_read_file(rbk_buf *b, const char *path, size_t cap);

#endif
