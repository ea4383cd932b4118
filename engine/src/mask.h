/* mask: secrets never leave the engine. Every occurrence of a registered
 * secret value in text (captured output, errors, rendered params, log
 * lines) is replaced by "***" before it is recorded or shown. */
#ifndef RBK_MASK_H
#define RBK_MASK_H

#include <stddef.h>

typedef struct {
	char **secrets;
	size_t n;
} rbk_mask;

/* Register a secret value (copied). Empty values are ignored: masking ""
 * would mangle every text. */
void rbk_mask_add(rbk_mask *m, const char *secret);
/* A fresh copy of text (len bytes) with every secret replaced by "***";
 * longer secrets are replaced first so one that contains another is
 * masked whole. *outlen receives the new length when not NULL. */
char *rbk_mask_apply(const rbk_mask *m, const char *text, size_t len, size_t *outlen);
void rbk_mask_free(rbk_mask *m);

#endif
