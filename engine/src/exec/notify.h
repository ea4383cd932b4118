/* notify: sending one notification of a run's status change
 * (docs/operations.md, "Getting told"): its with: rendered in the run's
 * scope and the notice, its action run with retries and backoff. A
 * notification never changes the run's outcome: what goes wrong is
 * returned, for the interpreter to record. */
#ifndef RBK_NOTIFY_H
#define RBK_NOTIFY_H

#include <stdbool.h>

#include "exec/registry.h"
#include "lang/mask.h"
#include "lang/scope.h"
#include "runbook/model.h"

typedef struct {
	bool ok;
	int attempts;
	char *error; /* masked; NULL when ok */
} rbk_notify_result;

/* Send n for the run of sc (whose notice holds run.status ...). key: its
 * idempotency key, given to the action, the same on every try and after a
 * crash (RUN:notify:SEQ:ENTRY). Sleeps between tries (1 s, 2 s, 4 s ...). */
void rbk_notify_send(rbk_registry *reg, const rbk_notify *n, const rbk_scope *sc, rbk_mask *mask, const char *key,
		     rbk_notify_result *out);
void rbk_notify_result_free(rbk_notify_result *r);

#endif
