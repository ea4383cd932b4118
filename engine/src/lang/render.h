/* render: a node tree of the runbook (with:, vars, dry_run, a call's with,
 * lock, prompt) -> a typed value, every templated string rendered. A
 * string that is exactly one {{ expr }} keeps the expression's type. */
#ifndef RBK_RENDER_H
#define RBK_RENDER_H

#include "base/err.h"
#include "lang/eval.h"
#include "runbook/model.h"
#include "lang/value.h"

/* Render n. On error, err->msg names the problem and *where the place in
 * the file. env may be NULL when n is known to hold no template. */
int rbk_render(const rbk_node *n, const rbk_eval_env *env, rbk_val *out, rbk_pos *where, rbk_err *err);

#endif
