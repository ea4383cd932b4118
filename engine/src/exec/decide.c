/* decide: transition, retry and failure rules. */
#include "exec/decide.h"
#include "base/mem.h"

int rbk_decide_next(const rbk_state *st, const rbk_eval_env *env, const char **to, int *branch, char **why,
		    const rbk_mexpr **why_expr, rbk_err *why_err)
{
	*why = NULL;
	*why_expr = NULL;
	for (size_t i = 0; i < st->nnext; i++) {
		const rbk_edge *e = &st->next[i];
		bool ok = true;
		if (e->guard.expr && rbk_eval_guard(e->guard.expr, env, &ok, why_err) < 0) {
			*why_expr = &e->guard;
			*why = rbk_xstrdup(why_err->msg);
			return -1;
		}
		if (ok) {
			*to = e->to;
			*branch = (int)i;
			return 0;
		}
	}
	*why = rbk_xstrdup("no transition matched");
	return -1;
}

int64_t rbk_decide_retry_delay(const rbk_state *st, int failures)
{
	double d = (double)st->retry.delay_ms;
	for (int i = 1; i < failures; i++)
		d *= st->retry.backoff;
	if (st->retry.max_delay_ms >= 0 && d > (double)st->retry.max_delay_ms)
		d = (double)st->retry.max_delay_ms;
	return (int64_t)d;
}

const char *rbk_decide_failure_edge(const rbk_runbook *rb, const rbk_state *st)
{
	return st->on_failure ? st->on_failure : rb->on_failure;
}
