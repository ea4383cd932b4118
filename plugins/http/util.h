/* util: the parts of rbk-http that do not need libcurl: a growable buffer,
 * a JSON writer over rbk_value, expected-status sets, secret masking and
 * base64. Every function here is pure (no host calls). */
#ifndef RBK_HTTP_UTIL_H
#define RBK_HTTP_UTIL_H

#include <rbk/plugin.h>

#include <stddef.h>

/* A growable byte buffer, always NUL-terminated once anything was added.
 * oom is set when an allocation failed; the content is then incomplete. */
typedef struct {
	char *s;
	size_t len, cap;
	int oom;
} hbuf;

void hb_add(hbuf *b, const char *s, size_t n);
void hb_puts(hbuf *b, const char *s);
void hb_printf(hbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;
void hb_free(hbuf *b);
/* The text, or "" when nothing was added. Borrowed. */
const char *hb_str(const hbuf *b);

/* Append v to b as JSON. Returns 0, or -1 with a message in err (a number
 * that is not finite, nesting deeper than 64 levels). */
int hjson_write(hbuf *b, const rbk_value *v, char *err, size_t errsize);

/* The text of a scalar (string, int, duration, number, bool): the string
 * itself or its text in buf. NULL for null, lists and maps. */
const char *scalar_text(const rbk_value *v, char *buf, size_t size);

/* A set of expected statuses: inclusive ranges. */
typedef struct {
	struct {
		int lo, hi;
	} r[32];
	size_t n;
} status_set;

/* Parse expect_status: an int, a string "200-299", "200,204,300-399", or a
 * list of ints and such strings. NULL means 200-299. Returns 0, or -1 with a
 * message in err. */
int status_parse(const rbk_value *v, status_set *out, char *err, size_t errsize);
int status_match(const status_set *s, long code);
/* "200-299", "200, 204": the set as written back, into b. */
void status_text(const status_set *s, hbuf *b);

/* Secrets to hide: every occurrence in a text becomes "***". */
typedef struct {
	const char *s[4];
	size_t n;
} secrets;

void secrets_add(secrets *m, const char *s);
/* A malloc'd copy of text[0..len) with every secret replaced; *outlen gets
 * its length when not NULL. NULL when out of memory. */
char *mask_apply(const secrets *m, const char *text, size_t len, size_t *outlen);

/* base64 of s[0..n), malloc'd; NULL when out of memory. */
char *base64(const char *s, size_t n);

#endif
