/* runner: run one plugin action in a child process.
 *
 * The child (its own process group) calls the action and sends its outputs,
 * error and log back over a pipe as JSON. A plugin that crashes or hangs
 * therefore fails its step, never the engine or the store: a crash is
 * reported with the signal's name, and past the deadline (plus a grace
 * period for the action to stop by itself) the whole group is killed. */
#ifndef RBK_RUNNER_H
#define RBK_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "exec/registry.h"
#include "lang/value.h"

#define RBK_RUNNER_GRACE_MS 3000

typedef struct {
	bool ok;         /* the action returned 0 */
	rbk_val outputs; /* map */
	char *error;     /* NULL when ok */
	char *log;       /* lines the action logged ("" when none) */
	bool timed_out;
	int signal;      /* the signal that ended the child, 0 if none */
	int64_t duration_ms;
	rbk_val cut;     /* list: the outputs the host cut (registry.h), by path */
	rbk_val secrets; /* list: the texts the action marked secret (plugin.h mark_secret) */
} rbk_runner_result;

/* Run action with args (a map). timeout_ms < 0: none. plan: call the
 * action's plan function instead of run (dry runs). Returns 0 with *out
 * filled (out->ok tells the outcome), or -1 with err when the child could
 * not be started. */
int rbk_runner_exec(const rbk_reg_action *action, const rbk_val *args, const char *key, int64_t timeout_ms,
		    bool plan, rbk_runner_result *out, rbk_err *err);
void rbk_runner_result_free(rbk_runner_result *r);
/* A flag the runner watches while an action runs: once it reaches 2 (a
 * second interrupt), the action's process group is killed and the result
 * says so. NULL: none. */
void rbk_runner_set_cancel(volatile int *flag);
/* Called every 200 ms at most while an action runs (the executor renews
 * its lease there); when it returns false the action's process group is
 * killed at once and the result says the run was lost. NULL: none. */
void rbk_runner_set_tick(bool (*tick)(void *ctx), void *ctx);

#endif
