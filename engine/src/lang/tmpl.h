/* tmpl: templates, text with {{ expr }} parts.
 *
 * A template that is exactly one {{ expr }} (surrounding spaces inside the
 * braces allowed, nothing outside) keeps the expression's type; otherwise
 * every part is turned into text (rbk_val_to_text) and joined. */
#ifndef RBK_TMPL_H
#define RBK_TMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "lang/eval.h"
#include "lang/parse.h"

typedef struct rbk_tmpl rbk_tmpl;

/* Parse text. Errors (unclosed {{, bad expression) set err->pos to the
 * offset in text. */
int rbk_tmpl_parse(rbk_tmpl **out, const char *text, rbk_err *err);
void rbk_tmpl_free(rbk_tmpl *t);
/* True when text contains a {{ ... }} part (cheap, no parse). */
bool rbk_tmpl_has_expr(const char *text);
/* Expressions of the template, in order; *pos receives the offset of the
 * expression's first byte in the template text. */
size_t rbk_tmpl_count(const rbk_tmpl *t);
const rbk_expr *rbk_tmpl_expr(const rbk_tmpl *t, size_t i, int *pos);
int rbk_tmpl_render(const rbk_tmpl *t, const rbk_eval_env *env, rbk_val *out, rbk_err *err);

#endif
