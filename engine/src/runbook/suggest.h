/* suggest: "did you mean" for a misspelt key or name. */
#ifndef RBK_SUGGEST_H
#define RBK_SUGGEST_H

#include <stddef.h>

/* The candidate closest to word (at most 2 edits, and fewer than half of
 * word's length), or NULL.
 * candidates: n strings; NULL entries are skipped. */
const char *rbk_suggest(const char *word, const char *const *candidates, size_t n);

#endif
