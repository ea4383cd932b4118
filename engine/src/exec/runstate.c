/* runstate: fold events into a run's state. */
#include "exec/runstate.h"
#include "base/mem.h"

#include <stdio.h>
#include <string.h>

void rbk_rs_init(rbk_rs *rs)
{
	memset(rs, 0, sizeof *rs);
	snprintf(rs->status, sizeof rs->status, "running");
	rs->attempt_nums = rbk_val_map();
	rs->vars = rbk_val_map();
	rs->steps = rbk_val_map();
	rs->approval_deadline_ms = -1;
	rs->flight_params = rbk_val_null();
}

void rbk_rs_free(rbk_rs *rs)
{
	rbk_free(rs->current);
	rbk_val_free(&rs->attempt_nums);
	rbk_val_free(&rs->vars);
	rbk_val_free(&rs->steps);
	for (size_t i = 0; i < rs->ndone; i++)
		rbk_free(rs->done[i].state);
	rbk_free(rs->done);
	rbk_free(rs->flight_state);
	rbk_val_free(&rs->flight_params);
	rbk_free(rs->approval_decision);
	rbk_free(rs->rollback_error);
	rbk_free(rs->last_reason);
	memset(rs, 0, sizeof *rs);
}

static const char *str_of(const rbk_val *data, const char *key)
{
	const rbk_val *v = data ? rbk_val_map_get(data, key) : NULL;
	return v && v->t == RBK_V_STR ? v->u.s.s : NULL;
}

static int64_t int_of(const rbk_val *data, const char *key, int64_t dflt)
{
	const rbk_val *v = data ? rbk_val_map_get(data, key) : NULL;
	return v && v->t == RBK_V_INT ? v->u.i : dflt;
}

static void set_str(char **slot, const char *v)
{
	rbk_free(*slot);
	*slot = v ? rbk_xstrdup(v) : NULL;
}

static void enter(rbk_rs *rs, const char *state, int64_t at_ms)
{
	set_str(&rs->current, state);
	rs->visit_started_ms = at_ms;
	rs->attempts = 0;
	rs->failures = 0;
	rs->resume_at_ms = 0;
	rs->wait_until_ms = 0;
	rs->approval_pending = false;
	rs->approval_deadline_ms = -1;
	set_str(&rs->approval_decision, NULL);
	rs->child_run = 0;
}

int rbk_rs_next_attempt(const rbk_rs *rs, const char *state)
{
	const rbk_val *v = rbk_val_map_get(&rs->attempt_nums, state);
	return v ? (int)v->u.i + 1 : 1;
}

bool rbk_rs_status_terminal(const char *s)
{
	return !strcmp(s, "succeeded") || !strcmp(s, "failed") || !strcmp(s, "rolled_back") || !strcmp(s, "aborted");
}

bool rbk_rs_terminal(const rbk_rs *rs) { return rbk_rs_status_terminal(rs->status); }

static void start_flight(rbk_rs *rs, rbk_flight kind, const rbk_val *data)
{
	const char *state = str_of(data, "state");
	int attempt = (int)int_of(data, "attempt", 1);
	/* The same attempt started again (an idempotent re-run after a crash)
	 * is not another attempt. */
	bool rerun = rs->flight == kind && rs->flight_attempt == attempt && state && rs->flight_state &&
		     !strcmp(rs->flight_state, state);
	rs->flight = kind;
	set_str(&rs->flight_state, state);
	rs->flight_attempt = attempt;
	const rbk_val *params = data ? rbk_val_map_get(data, "params") : NULL;
	rbk_val_free(&rs->flight_params);
	rs->flight_params = params ? rbk_val_copy(params) : rbk_val_null();
	if (state)
		rbk_val_map_set(&rs->attempt_nums, state, rbk_val_int(attempt));
	if (kind == RBK_FLIGHT_STEP && !rerun)
		rs->attempts++;
}

void rbk_rs_apply(rbk_rs *rs, const char *kind, const rbk_val *data, int64_t at_ms)
{
	rs->last_at_ms = at_ms;
	const char *state = str_of(data, "state");
	if (!strcmp(kind, "run_started")) {
		snprintf(rs->status, sizeof rs->status, "running");
		if (!rs->current)
			enter(rs, str_of(data, "start"), at_ms);
	} else if (!strcmp(kind, "step_started")) {
		start_flight(rs, RBK_FLIGHT_STEP, data);
		rs->resume_at_ms = 0;
	} else if (!strcmp(kind, "step_finished")) {
		rs->flight = RBK_FLIGHT_NONE;
		const rbk_val *res = data ? rbk_val_map_get(data, "result") : NULL;
		const char *status = str_of(data, "status");
		if (state && res)
			rbk_val_map_set(&rs->steps, state, rbk_val_copy(res));
		rs->failures = status && !strcmp(status, "ok") ? 0 : rs->failures + 1;
		if (state && status && !strcmp(status, "ok") && !rs->rolling_back) {
			rs->done = rbk_xrealloc(rs->done, (rs->ndone + 1) * sizeof *rs->done);
			rs->done[rs->ndone++] = (rbk_rs_done){rbk_xstrdup(state), false};
		}
	} else if (!strcmp(kind, "step_retry") || !strcmp(kind, "step_poll")) {
		rs->resume_at_ms = int_of(data, "at_ms", at_ms);
		rs->child_run = 0; /* a call's next attempt starts a new child run */
	} else if (!strcmp(kind, "vars_set")) {
		const rbk_val *vars = data ? rbk_val_map_get(data, "vars") : NULL;
		for (size_t i = 0; vars && vars->t == RBK_V_MAP && i < vars->u.map.n; i++)
			rbk_val_map_set(&rs->vars, vars->u.map.keys[i], rbk_val_copy(&vars->u.map.vals[i]));
	} else if (!strcmp(kind, "transition")) {
		enter(rs, str_of(data, "to"), at_ms);
		rs->transitions++;
	} else if (!strcmp(kind, "wait_started")) {
		rs->wait_until_ms = int_of(data, "until_ms", at_ms);
	} else if (!strcmp(kind, "approval_requested")) {
		rs->approval_pending = true;
		rs->approval_deadline_ms = int_of(data, "deadline_ms", -1);
	} else if (!strcmp(kind, "approval_decided")) {
		rs->approval_pending = false;
		const char *d = str_of(data, "decision");
		set_str(&rs->approval_decision, d);
		/* An approval is a step too: steps.S.status, .error, .out.by ... */
		if (state && d) {
			bool ok = !strcmp(d, "approved");
			rbk_val res = rbk_val_map(), out = rbk_val_map();
			rbk_val_map_set(&res, "status", rbk_val_str(ok ? "ok" : "failed"));
			rbk_val_map_set(&out, "decision", rbk_val_str(d));
			const char *by = str_of(data, "by"), *comment = str_of(data, "comment");
			rbk_val_map_set(&out, "by", by ? rbk_val_str(by) : rbk_val_null());
			rbk_val_map_set(&out, "comment", comment ? rbk_val_str(comment) : rbk_val_null());
			rbk_val_map_set(&res, "out", out);
			rbk_val_map_set(&res, "attempts", rbk_val_int(1));
			rbk_val_map_set(&res, "error", ok ? rbk_val_null()
							  : rbk_val_str(!strcmp(d, "rejected") ? "approval rejected" : "approval timed out"));
			rbk_val_map_set(&res, "duration_ms", rbk_val_int(at_ms - rs->visit_started_ms));
			rbk_val_map_set(&rs->steps, state, res);
		}
	} else if (!strcmp(kind, "call_started")) {
		rs->child_run = int_of(data, "child", 0);
	} else if (!strcmp(kind, "rollback_started")) {
		rs->rolling_back = true;
		set_str(&rs->rollback_error, str_of(data, "error"));
	} else if (!strcmp(kind, "undo_started")) {
		start_flight(rs, RBK_FLIGHT_UNDO, data);
	} else if (!strcmp(kind, "undo_finished")) {
		rs->flight = RBK_FLIGHT_NONE;
		/* The newest completed step of that name not yet undone; a failed
		 * undo leaves it not undone (the run then ends failed, listing it). */
		const char *ust = str_of(data, "status");
		for (size_t i = rs->ndone; ust && !strcmp(ust, "ok") && i-- > 0;)
			if (state && !rs->done[i].undone && !strcmp(rs->done[i].state, state)) {
				rs->done[i].undone = true;
				break;
			}
	} else if (!strcmp(kind, "operator_decided")) {
		const char *d = str_of(data, "decision");
		if (d && !strcmp(d, "retry"))
			rs->flight = RBK_FLIGHT_NONE; /* the next attempt runs it again */
	} else if (!strcmp(kind, "abort_requested")) {
		rs->abort_requested = true;
		const rbk_val *rb = data ? rbk_val_map_get(data, "rollback") : NULL;
		rs->abort_rollback = rb && rb->t == RBK_V_BOOL && rb->u.b;
	} else if (!strcmp(kind, "run_status") || !strcmp(kind, "run_finished")) {
		const char *st = str_of(data, "status");
		if (st)
			snprintf(rs->status, sizeof rs->status, "%s", st);
		set_str(&rs->last_reason, str_of(data, "reason"));
	}
}
