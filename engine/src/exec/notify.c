/* notify: sending one notification (notify.h). */
#include "exec/notify.h"
#include "base/mem.h"
#include "exec/runner.h"
#include "lang/render.h"

#include <string.h>
#include <time.h>

/* The longest one try may take: a notification must not hold a run's
 * executor for long. */
enum { NOTIFY_TIMEOUT_MS = 30000, NOTIFY_FIRST_DELAY_MS = 1000 };

static char *masked(rbk_mask *mask, char *s)
{
	char *m = rbk_mask_apply(mask, s, strlen(s), NULL);
	rbk_free(s);
	return m;
}

void rbk_notify_send(rbk_registry *reg, const rbk_notify *n, const rbk_scope *sc, rbk_mask *mask, const char *key,
		     rbk_notify_result *out)
{
	memset(out, 0, sizeof *out);
	const rbk_reg_action *act = rbk_reg_find(reg, n->act.action);
	if (!act) {
		out->error = rbk_xasprintf("unknown action '%s' (no loaded plugin provides it)", n->act.action);
		return;
	}
	rbk_eval_env env = rbk_scope_env(sc);
	rbk_val args = rbk_val_map();
	rbk_err er = {0};
	rbk_pos where = n->act.pos;
	if (n->act.with) {
		rbk_val_free(&args);
		if (rbk_render(n->act.with, &env, &args, &where, &er) < 0) {
			out->error = masked(mask, rbk_xasprintf("%s:%d:%d: %s", n->doc->file, where.line, where.col, er.msg));
			return;
		}
	}
	rbk_mask_add_val(mask, &args); /* before the action can echo them */
	if (rbk_reg_check_args(act, &args, &er) < 0) {
		rbk_val_free(&args);
		out->error = masked(mask, rbk_xstrdup(er.msg));
		return;
	}
	int64_t delay = NOTIFY_FIRST_DELAY_MS;
	for (out->attempts = 1;; out->attempts++) {
		rbk_runner_result res;
		rbk_err xe = {0};
		if (rbk_runner_exec(act, &args, key, NOTIFY_TIMEOUT_MS, false, &res, &xe) < 0) {
			rbk_free(out->error);
			out->error = masked(mask, rbk_xstrdup(xe.msg));
		} else {
			out->ok = res.ok;
			rbk_free(out->error);
			out->error = res.ok ? NULL : masked(mask, rbk_xstrdup(res.error ? res.error : "failed"));
			rbk_runner_result_free(&res);
		}
		if (out->ok || out->attempts >= n->attempts)
			break;
		struct timespec ts = {delay / 1000, (long)(delay % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		delay *= 2;
	}
	rbk_val_free(&args);
}

void rbk_notify_result_free(rbk_notify_result *r)
{
	rbk_free(r->error);
	r->error = NULL;
}
