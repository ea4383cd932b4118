/* runstate: a run's state as a fold over its events.
 *
 * The interpreter never keeps state of its own: it records an event and
 * applies that same event here. Resuming a run (and replaying it) is
 * applying its recorded events in order, so the live run, a resumed run
 * and a replay see exactly the same values.
 *
 * Events (kind: data) — docs/audit.md lists them for auditors:
 *   run_started        {start}
 *   step_started       {state, attempt, key, params}
 *   step_finished      {state, attempt, status: ok|failed, result (result.cut: outputs cut, registry.h)}
 *   step_retry         {state, attempt, at_ms, delay_ms}
 *   step_poll          {state, attempt, at_ms}
 *   vars_set           {state, vars}
 *   transition         {from, to, via: next|failure, branch, guard}
 *   wait_started       {state, until_ms}
 *   approval_requested {state, prompt, approvers, distinct, deadline_ms}
 *   approval_decided   {state, decision: approved|rejected|timed_out, by, comment}
 *   call_started       {state, child}
 *   rollback_started   {from, error}
 *   undo_started       {state, attempt, key, params}
 *   undo_finished      {state, status, error}
 *   operator_decided   {state, decision: retry|success|failure, by}
 *   abort_requested    {by, rollback}
 *   run_status         {status, reason}
 *   run_finished       {status, reason} */
#ifndef RBK_RUNSTATE_H
#define RBK_RUNSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "lang/value.h"

typedef struct {
	char *state;
	bool undone;
} rbk_rs_done;

typedef enum { RBK_FLIGHT_NONE, RBK_FLIGHT_STEP, RBK_FLIGHT_UNDO } rbk_flight;

typedef struct {
	char status[24]; /* running waiting interrupted needs_attention succeeded failed rolled_back aborted */
	char *current;   /* state of the current visit; NULL before run_started */
	int64_t visit_started_ms;
	int attempts;         /* attempts made in the current visit */
	int failures;         /* consecutive failed attempts in the current visit */
	rbk_val attempt_nums; /* map state -> last attempt number in the run (keys stay unique) */
	rbk_val vars, steps;  /* maps */
	rbk_rs_done *done;    /* completed steps, oldest first */
	size_t ndone;
	rbk_flight flight; /* a step or undo started and not finished */
	char *flight_state;
	int flight_attempt;
	rbk_val flight_params; /* the params the step in flight was started with (masked) */
	int64_t resume_at_ms;  /* a retry or poll delay: the next attempt not before */
	int64_t wait_until_ms; /* a wait state: until then */
	bool approval_pending;
	int64_t approval_deadline_ms; /* -1: none */
	char *approval_decision;      /* approved rejected timed_out; NULL: none yet */
	int64_t child_run;
	bool rolling_back;
	char *rollback_error;
	bool abort_requested, abort_rollback;
	char *last_reason;
	int64_t last_at_ms; /* time of the last event applied */
	int64_t transitions; /* transition events so far: the budget spent (max_transitions) */
} rbk_rs;

void rbk_rs_init(rbk_rs *rs);
void rbk_rs_free(rbk_rs *rs);
/* Apply one event. data is the event's JSON data parsed (a map). */
void rbk_rs_apply(rbk_rs *rs, const char *kind, const rbk_val *data, int64_t at_ms);
/* The next attempt number for state (1, 2, ... across every visit). */
int rbk_rs_next_attempt(const rbk_rs *rs, const char *state);
bool rbk_rs_terminal(const rbk_rs *rs);
bool rbk_rs_status_terminal(const char *status);

#endif
