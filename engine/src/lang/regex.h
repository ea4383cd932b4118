/* regex: PCRE2, compiled once, matched with limits.
 *
 * The only module that includes pcre2.h. Every match runs under a match limit
 * and a depth limit, so a pathological pattern fails with an error instead of
 * hanging the engine. Compiled patterns are reference-counted so values can
 * share them. */
#ifndef RBK_REGEX_H
#define RBK_REGEX_H

#include <stddef.h>

#include "base/err.h"

typedef struct rbk_re rbk_re;

/* Compile pattern (len bytes) with flags, a string of the letters i m s x.
 * whole: the pattern must match the whole subject (param `pattern:`).
 * On error, err->pos is the offset in the pattern. */
int rbk_re_compile(rbk_re **out, const char *pattern, size_t len, const char *flags, int whole,
		   rbk_err *err);
rbk_re *rbk_re_ref(rbk_re *re);
void rbk_re_free(rbk_re *re); /* drops one reference */
const char *rbk_re_source(const rbk_re *re);
const char *rbk_re_flags(const rbk_re *re);

/* Match subject. Returns 1 on a match, 0 on none, -1 on error (limit hit).
 * When group >= 0 and the match succeeded, *out and *outlen receive a fresh copy
 * of that group (NULL when the group did not participate); the caller frees. */
int rbk_re_match(const rbk_re *re, const char *subject, size_t len, int group, char **out,
		 size_t *outlen, rbk_err *err);

#endif
