/* replay: a recorded run against its definition. */
#include "audit/replay.h"
#include "exec/decide.h"
#include "lang/json.h"
#include "runbook/load.h"
#include "base/mem.h"
#include "runbook/model.h"
#include "exec/runstate.h"
#include "store/store.h"
#include "lang/scope.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

typedef struct {
	rbk_store *s;
	FILE *out;
	int verbose;
	rbk_replay_stats *stats;
	int64_t run;
	const rbk_runbook *rb;
	rbk_val params;
	char *runbook, *actor;
	bool dry;
	rbk_rs rs;
	rbk_val children; /* runs called, replayed afterwards */
	rbk_scope sc;     /* the scope of the decision being checked */
	bool read_secret; /* ... and whether it read a value recorded as a secret */
} replayer;

static void diverge(replayer *p, int64_t seq, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void diverge(replayer *p, int64_t seq, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(p->out, "run %lld event %lld: divergence: ", (long long)p->run, (long long)seq);
	vfprintf(p->out, fmt, ap);
	fputc('\n', p->out);
	va_end(ap);
	p->stats->divergences++;
}

static void decided(replayer *p, int64_t seq, const char *what)
{
	p->stats->decisions++;
	if (p->verbose)
		fprintf(p->out, "run %lld event %lld: %s: matches\n", (long long)p->run, (long long)seq, what);
}

static const char *s_in(const rbk_val *m, const char *k)
{
	const rbk_val *v = m->t == RBK_V_MAP ? rbk_val_map_get(m, k) : NULL;
	return v && v->t == RBK_V_STR ? v->u.s.s : NULL;
}

static int64_t i_in(const rbk_val *m, const char *k, int64_t d)
{
	const rbk_val *v = m->t == RBK_V_MAP ? rbk_val_map_get(m, k) : NULL;
	return v && v->t == RBK_V_INT ? v->u.i : d;
}

/* Whole seconds of a stored time, as now() gives them. */
static int64_t iso_s(const char *at) { return rbk_store_time_ms(at) / 1000; }

static const rbk_state *state(replayer *p, const char *name)
{
	int i = name ? rbk_model_state(p->rb, name) : -1;
	return i >= 0 ? &p->rb->states[i] : NULL;
}

/* Names resolve as in the run; a secret read is noted, since what was
 * decided on a secret's real value cannot be decided again on "***". */
static int lookup_noting(void *ctx, const char *const *segs, size_t n, rbk_val *out, rbk_err *err)
{
	replayer *p = ctx;
	rbk_eval_env env = rbk_scope_env(&p->sc);
	int rc = env.lookup(env.ctx, segs, n, out, err);
	if (rc == 0 && rbk_val_has_secret(out))
		p->read_secret = true;
	return rc;
}

/* now() as at the event: the scope's, reached through the replayer, which
 * is the environment's context. */
static int64_t replay_now(void *ctx) { return ((replayer *)ctx)->sc.now_s; }

/* The scope as it was just before the event. */
static rbk_eval_env env_at(replayer *p, rbk_scope *sc, const rbk_store_event *ev)
{
	*sc = (rbk_scope){&p->params, &p->rs.vars, &p->rs.steps, p->run, p->runbook, p->actor, p->dry, iso_s(ev->at), NULL, NULL,
			    rbk_model_param_is_duration, p->rb};
	p->sc = *sc;
	p->read_secret = false;
	rbk_eval_env env = rbk_scope_env(sc);
	env.lookup = lookup_noting;
	env.now = replay_now;
	env.ctx = p;
	return env;
}

/* A decision that read a secret: not re-derived, and said so. */
static bool on_secret(replayer *p, int64_t seq, const char *what)
{
	if (!p->read_secret)
		return false;
	p->stats->secret++;
	if (p->verbose)
		fprintf(p->out, "run %lld event %lld: %s: reads a secret, not re-derived\n", (long long)p->run, (long long)seq,
			what);
	return true;
}

static void check_transition(replayer *p, const rbk_store_event *ev, const rbk_val *d)
{
	const char *from = s_in(d, "from"), *to = s_in(d, "to"), *via = s_in(d, "via");
	const rbk_state *st = state(p, from);
	if (!st || !to || !via) {
		diverge(p, ev->seq, "a transition from an unknown state '%s'", from ? from : "?");
		return;
	}
	if (p->rs.transitions >= p->rb->max_transitions) {
		diverge(p, ev->seq, "%s went to %s after the budget of %lld transitions was spent (max_transitions)", from, to,
			(long long)p->rb->max_transitions);
		return;
	}
	if (!strcmp(via, "failure")) {
		const char *edge = rbk_decide_failure_edge(p->rb, st);
		if (strcmp(edge, to) != 0)
			diverge(p, ev->seq, "%s failed and went to %s; its failure edge is %s", from, to, edge);
		else
			decided(p, ev->seq, "failure edge");
		return;
	}
	rbk_scope sc;
	rbk_eval_env env = env_at(p, &sc, ev);
	const char *want = NULL;
	int branch = -1;
	char *why = NULL;
	const rbk_mexpr *bad = NULL;
	rbk_err e = {0};
	int rc = rbk_decide_next(st, &env, &want, &branch, &why, &bad, &e);
	if ((rc < 0 || strcmp(want, to) != 0 || (st->next_is_list && i_in(d, "branch", -1) != branch)) &&
	    on_secret(p, ev->seq, "transition"))
		;
	else if (rc < 0)
		diverge(p, ev->seq, "%s went to %s, but the definition gives no transition: %s", from, to, why);
	else if (strcmp(want, to) != 0)
		diverge(p, ev->seq, "%s went to %s; on the recorded values its guards choose %s (branch %d)", from, to, want,
			branch + 1);
	else if (st->next_is_list && i_in(d, "branch", -1) != branch)
		diverge(p, ev->seq, "%s went to %s by branch %lld; its guards choose branch %d", from, to,
			(long long)i_in(d, "branch", -1) + 1, branch + 1);
	else
		decided(p, ev->seq, "transition");
	rbk_free(why);
}

static void check_set(replayer *p, const rbk_store_event *ev, const rbk_val *d)
{
	const rbk_state *st = state(p, s_in(d, "state"));
	const rbk_val *vars = rbk_val_map_get(d, "vars");
	if (!st || !vars || vars->t != RBK_V_MAP)
		return; /* the runbook's initial vars: rendered, not decided */
	rbk_scope sc;
	rbk_eval_env env = env_at(p, &sc, ev);
	for (size_t i = 0; i < st->nset; i++) {
		const rbk_assign *a = &st->set[i];
		const rbk_val *got = rbk_val_map_get(vars, a->name);
		if (!a->value.expr || !got)
			continue;
		if (got->secret) {
			p->read_secret = true;
			on_secret(p, ev->seq, "set");
			continue;
		}
		rbk_val v;
		rbk_err e = {0};
		if (rbk_eval(a->value.expr, &env, &v, &e) < 0) {
			diverge(p, ev->seq, "set %s: the expression fails on the recorded values: %s", a->name, e.msg);
			continue;
		}
		/* As recorded: a duration is kept as its text. */
		char *x = rbk_json_encode(&v), *y = rbk_json_encode(got);
		if (!rbk_val_equal(&v, got) && strcmp(x, y) != 0)
			diverge(p, ev->seq, "set %s recorded %s; the expression gives %s", a->name, y, x);
		else
			decided(p, ev->seq, "set");
		rbk_free(x);
		rbk_free(y);
		rbk_val_free(&v);
	}
}

static void check_retry(replayer *p, const rbk_store_event *ev, const rbk_val *d)
{
	const rbk_state *st = state(p, s_in(d, "state"));
	if (!st)
		return;
	int f = p->rs.failures;
	if (f >= st->retry.attempts)
		diverge(p, ev->seq, "%s retried after %d failures; retry allows %d attempts", st->name, f, st->retry.attempts);
	else if (i_in(d, "delay_ms", -1) != rbk_decide_retry_delay(st, f))
		diverge(p, ev->seq, "%s waited %lldms before its retry; the definition gives %lldms", st->name,
			(long long)i_in(d, "delay_ms", -1), (long long)rbk_decide_retry_delay(st, f));
	else
		decided(p, ev->seq, "retry");
}

static void check_poll(replayer *p, const rbk_store_event *ev, const rbk_val *d)
{
	const rbk_state *st = state(p, s_in(d, "state"));
	if (!st || !st->has_poll || !st->poll.until.expr) {
		diverge(p, ev->seq, "a poll of %s, which does not poll", s_in(d, "state") ? s_in(d, "state") : "?");
		return;
	}
	rbk_scope sc;
	rbk_eval_env env = env_at(p, &sc, ev);
	bool done = false;
	rbk_err e = {0};
	if (rbk_eval_guard(st->poll.until.expr, &env, &done, &e) < 0)
		diverge(p, ev->seq, "%s polled again, but its condition fails on the recorded values: %s", st->name, e.msg);
	else if (done && !p->dry)
		diverge(p, ev->seq, "%s polled again although '%s' holds on the recorded values", st->name,
			st->poll.until.src);
	else
		decided(p, ev->seq, "poll");
}

static void check_undo(replayer *p, const rbk_store_event *ev, const rbk_val *d)
{
	/* Newest first: the newest completed step with an undo not yet undone. */
	const char *want = NULL;
	for (size_t i = p->rs.ndone; i-- > 0 && !want;) {
		const rbk_state *st = state(p, p->rs.done[i].state);
		if (!p->rs.done[i].undone && st && st->has_undo)
			want = p->rs.done[i].state;
	}
	const char *got = s_in(d, "state");
	if (p->rs.flight == RBK_FLIGHT_UNDO && got && p->rs.flight_state && !strcmp(got, p->rs.flight_state))
		decided(p, ev->seq, "undo re-run"); /* an idempotent undo run again after a crash */
	else if (!want || !got || strcmp(want, got) != 0)
		diverge(p, ev->seq, "the undo of %s ran; newest first, the next undo is %s's", got ? got : "?",
			want ? want : "none");
	else
		decided(p, ev->seq, "rollback order");
}

static void check_rollback(replayer *p, const rbk_store_event *ev, const rbk_val *d)
{
	const rbk_state *st = state(p, s_in(d, "from"));
	if (p->rs.abort_requested && p->rs.abort_rollback)
		decided(p, ev->seq, "rollback on abort");
	else if (!st || strcmp(rbk_decide_failure_edge(p->rb, st), "rollback") != 0)
		diverge(p, ev->seq, "a rollback from %s, whose failure edge is %s", s_in(d, "from") ? s_in(d, "from") : "?",
			st ? rbk_decide_failure_edge(p->rb, st) : "?");
	else
		decided(p, ev->seq, "rollback");
}

static void check_finish(replayer *p, const rbk_store_event *ev, const rbk_val *d)
{
	const char *status = s_in(d, "status");
	const rbk_state *st = state(p, p->rs.current);
	if (!status)
		return;
	const char *reason = s_in(d, "reason");
	if (!strcmp(status, "failed") && reason && !strncmp(reason, "transition budget of ", 21)) {
		/* The run was stopped by its budget, not by its definition. */
		if (p->rs.transitions < p->rb->max_transitions)
			diverge(p, ev->seq, "the run ended for a spent transition budget after %lld of its %lld transitions",
				(long long)p->rs.transitions, (long long)p->rb->max_transitions);
		else
			decided(p, ev->seq, "transition budget");
		return;
	}
	if (!strcmp(status, "succeeded") && !(st && st->kind == RBK_S_END && st->end_success))
		diverge(p, ev->seq, "the run succeeded in %s, which is not an end: success state", p->rs.current);
	else if (!strcmp(status, "rolled_back")) {
		for (size_t i = 0; i < p->rs.ndone; i++) {
			const rbk_state *ds = state(p, p->rs.done[i].state);
			if (ds && ds->has_undo && !p->rs.done[i].undone) {
				diverge(p, ev->seq, "rolled back, but the undo of %s never succeeded", p->rs.done[i].state);
				return;
			}
		}
		decided(p, ev->seq, "rolled back");
	} else if (st && st->kind == RBK_S_END && !p->rs.rolling_back &&
		   strcmp(status, st->end_success ? "succeeded" : "failed") != 0 && strcmp(status, "aborted") != 0)
		diverge(p, ev->seq, "the run ended %s in %s, an end: %s state", status, st->name,
			st->end_success ? "success" : "failure");
	else
		decided(p, ev->seq, "outcome");
}

/* The vars an event lists as secret hold "***": mark them, so decisions
 * that read them are known to read a secret. */
static void mark_secret_vars(rbk_val *d)
{
	const rbk_val *names = d->t == RBK_V_MAP ? rbk_val_map_get(d, "secret") : NULL;
	rbk_val *vars = d->t == RBK_V_MAP ? (rbk_val *)rbk_val_map_get(d, "vars") : NULL;
	for (size_t i = 0; names && vars && names->t == RBK_V_LIST && i < names->u.list.n; i++) {
		const rbk_val *n = &names->u.list.items[i];
		rbk_val *v = n->t == RBK_V_STR && vars->t == RBK_V_MAP ? (rbk_val *)rbk_val_map_get(vars, n->u.s.s) : NULL;
		if (v)
			rbk_val_mark_secret(v);
	}
}

static int on_event(void *ctx, const rbk_store_event *ev)
{
	replayer *p = ctx;
	rbk_val d = rbk_val_null();
	if (rbk_json_parse(&d, ev->data, strlen(ev->data), NULL) < 0) {
		diverge(p, ev->seq, "its data is not JSON");
		return 0;
	}
	p->stats->events++;
	const char *k = ev->kind;
	mark_secret_vars(&d);
	if (!strcmp(k, "transition"))
		check_transition(p, ev, &d);
	else if (!strcmp(k, "vars_set"))
		check_set(p, ev, &d);
	else if (!strcmp(k, "step_retry"))
		check_retry(p, ev, &d);
	else if (!strcmp(k, "step_poll"))
		check_poll(p, ev, &d);
	else if (!strcmp(k, "undo_started"))
		check_undo(p, ev, &d);
	else if (!strcmp(k, "rollback_started"))
		check_rollback(p, ev, &d);
	else if (!strcmp(k, "run_finished"))
		check_finish(p, ev, &d);
	else if (!strcmp(k, "call_started")) {
		const rbk_val *c = rbk_val_map_get(&d, "child");
		if (c && c->t == RBK_V_INT)
			rbk_val_list_push(&p->children, rbk_val_int(c->u.i));
	}
	/* Then the event becomes part of the state, as in the run itself. */
	rbk_rs_apply(&p->rs, k, &d, iso_s(ev->at) * 1000);
	rbk_val_free(&d);
	return 0;
}

int rbk_replay_run(rbk_store *s, int64_t run, FILE *out, int verbose, rbk_replay_stats *stats, rbk_err *err)
{
	rbk_store_run info;
	if (rbk_store_run_get(s, run, &info, err) < 0)
		return -1;
	char *bytes = NULL;
	size_t len = 0;
	rbk_doc *doc = NULL;
	rbk_runbook *rb = NULL;
	rbk_diag dg = {0};
	int rc = rbk_store_source(s, info.source_sha256, &bytes, &len, err);
	if (rc == 0 && (rbk_load_bytes(&doc, info.runbook, bytes, len, &dg) < 0 || rbk_model_build(&rb, doc, &dg) < 0)) {
		rbk_err_set(err, -1, "run %lld: its pinned definition does not load: %s", (long long)run,
			    dg.n ? dg.items[0].msg : "?");
		rc = -1;
	}
	rbk_free(bytes);
	rbk_diag_free(&dg);
	if (rc == 0) {
		replayer p;
		memset(&p, 0, sizeof p);
		p.s = s;
		p.out = out;
		p.verbose = verbose;
		p.stats = stats;
		p.run = run;
		p.rb = rb;
		p.runbook = info.runbook;
		p.actor = info.actor;
		p.dry = info.dry_run;
		p.children = rbk_val_list();
		/* Params as recorded: secrets are "***", as the run itself recorded them. */
		if (rbk_json_parse(&p.params, info.params_json, strlen(info.params_json), NULL) < 0)
			p.params = rbk_val_map();
		for (size_t i = 0; p.params.t == RBK_V_MAP && i < p.params.u.map.n; i++) {
			rbk_val *v = &p.params.u.map.vals[i];
			if (v->t == RBK_V_STR && !strcmp(v->u.s.s, "***"))
				rbk_val_mark_secret(v);
		}
		rbk_rs_init(&p.rs);
		stats->runs++;
		rc = rbk_store_timeline(s, run, on_event, &p, err);
		for (size_t i = 0; rc == 0 && i < p.children.u.list.n; i++)
			rc = rbk_replay_run(s, p.children.u.list.items[i].u.i, out, verbose, stats, err);
		rbk_rs_free(&p.rs);
		rbk_val_free(&p.params);
		rbk_val_free(&p.children);
	}
	rbk_model_free(rb);
	rbk_doc_free(doc);
	rbk_store_run_free(&info);
	return rc;
}
