/* mask: secrets never leave the engine. Every occurrence of a registered
 * secret value in text (captured output, errors, rendered params, log
 * lines) is replaced by "***" before it is recorded or shown. */
#ifndef RBK_MASK_H
#define RBK_MASK_H

#include <stddef.h>

#include "lang/value.h"

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
/* Register every secret in v: the text of each secret scalar (strings and
 * numbers; a bool or null has no text worth hiding), and of every scalar
 * inside a secret list or map. Texts shorter than RBK_MASK_MIN_DERIVED are
 * not searched for in free text (len() of a secret, "42", would mask every
 * 42 of every output); as values they are still recorded as "***". Nor is
 * a text that holds a registered secret: its secret parts are masked
 * already (each part an expression computed was registered as it was
 * computed), and "denied for ***" tells more than "***". A declared secret
 * param is registered whole with rbk_mask_add, whatever its length. */
#define RBK_MASK_MIN_DERIVED 4
void rbk_mask_add_val(rbk_mask *m, const rbk_val *v);
/* A copy of v as it may be recorded or shown: each secret value becomes
 * "***", every other string has the registered secrets masked. */
rbk_val rbk_mask_val(const rbk_mask *m, const rbk_val *v);
/* Mark secret every string in v that contains a registered secret (what a
 * step printed of a secret is a secret in the guards that read it). */
void rbk_mask_taint(const rbk_mask *m, rbk_val *v);
char *rbk_mask_apply(const rbk_mask *m, const char *text, size_t len, size_t *outlen);
void rbk_mask_free(rbk_mask *m);

#endif
