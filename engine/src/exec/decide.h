/* decide: the rules that pick what happens after a state, as pure
 * functions of the definition and the run's values. The interpreter acts
 * on them; replay checks a recorded run against them. */
#ifndef RBK_DECIDE_H
#define RBK_DECIDE_H

#include <stdint.h>

#include "lang/eval.h"
#include "runbook/model.h"

/* The next state after st succeeded: 0 with *to (borrowed) and *branch
 * (the index of the branch taken), or -1 with *why (fresh, the guard's
 * error or "no transition matched") and *why_expr (the failing guard, or
 * NULL). */
int rbk_decide_next(const rbk_state *st, const rbk_eval_env *env, const char **to, int *branch, char **why,
		    const rbk_mexpr **why_expr, rbk_err *why_err);
/* The delay before the retry that follows the failures-th consecutive failure. */
int64_t rbk_decide_retry_delay(const rbk_state *st, int failures);
/* st's failure edge: a state name, "rollback" or "fail" (borrowed). */
const char *rbk_decide_failure_edge(const rbk_runbook *rb, const rbk_state *st);

#endif
