/* scope: what names mean in a run's guards and templates: params.X,
 * vars.X, steps.S.*, run.{id,name,actor,dry_run}. A duration param and
 * steps.S.duration_ms read as durations. Used by the interpreter
 * and by replay, so both resolve names identically. */
#ifndef RBK_SCOPE_H
#define RBK_SCOPE_H

#include <stdbool.h>
#include <stdint.h>

#include "lang/eval.h"
#include "lang/mask.h"
#include "lang/value.h"

typedef struct {
	const rbk_val *params, *vars, *steps; /* maps, borrowed */
	int64_t run_id;
	const char *runbook, *actor;
	bool dry_run;
	int64_t now_s; /* for now(): 0 means the wall clock (replay passes the event's time) */
	rbk_mask *mask; /* where each secret computed is registered; NULL: none */
	const rbk_val *notice; /* a notification's run.status, run.reason ...: a map; NULL: none */
	/* Which params are durations: the record keeps their milliseconds as
	 * ints, expressions see durations. NULL: none. */
	bool (*param_is_duration)(const void *defn, const char *name);
	const void *defn;
} rbk_scope;

/* An evaluation environment reading from sc (which must outlive it). */
rbk_eval_env rbk_scope_env(const rbk_scope *sc);

#endif
