/* eval: evaluate a syntax tree to a typed value. No side effects: the only
 * outside things it reads are names (through the environment), now() and
 * age(path), so a replay can evaluate a guard again. */
#ifndef RBK_EVAL_H
#define RBK_EVAL_H

#include <stdint.h>

#include "base/err.h"
#include "lang/parse.h"
#include "lang/value.h"

typedef struct {
	/* Resolve a dotted name into a fresh value. Return 0, or -1 with err
	 * (the evaluator sets err->pos to the name's column). When NULL, names
	 * are looked up in root (below). */
	int (*lookup)(void *ctx, const char *const *segs, size_t n, rbk_val *out, rbk_err *err);
	void *ctx;
	/* A map whose top-level keys are params, vars, run, steps: used when
	 * lookup is NULL. Borrowed. */
	const rbk_val *root;
	/* Unix seconds for now(); NULL means the wall clock. */
	int64_t (*now)(void *ctx);
	/* Told of every secret value the evaluation computes, the parts of a
	 * result as well as the result (so that each form a secret took can
	 * be masked). NULL: nobody listens. */
	void (*secret)(void *ctx, const rbk_val *v);
} rbk_eval_env;

/* Evaluate e. Returns 0 with a fresh *out, or -1 with err (pos = column of
 * the offending sub-expression). */
int rbk_eval(const rbk_expr *e, const rbk_eval_env *env, rbk_val *out, rbk_err *err);
/* Evaluate a guard: like rbk_eval, but the result must be a bool. */
int rbk_eval_guard(const rbk_expr *e, const rbk_eval_env *env, bool *out, rbk_err *err);
/* Resolve segs in root (maps only). "steps.x.out.k" walks steps -> x -> out -> k.
 * An absent key is an error naming the whole dotted name. */
int rbk_eval_lookup_root(const rbk_val *root, const char *const *segs, size_t n, rbk_val *out,
			 rbk_err *err);

#endif
