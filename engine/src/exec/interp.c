/* interp: the run loop. Every effect is an event first (emit), applied to
 * the run's fold (runstate) exactly as a resume would apply it. */
#include "exec/interp.h"
#include "base/dur.h"
#include "exec/lease.h"
#include "exec/notify.h"
#include "lang/eval.h"
#include "base/exitcode.h"
#include "base/hash.h"
#include "lang/json.h"
#include "lang/mask.h"
#include "base/mem.h"
#include "base/crashpoint.h"
#include "exec/decide.h"
#include "exec/owner.h"
#include "base/principal.h"
#include "exec/procs.h"
#include "audit/provenance.h"
#include "lang/render.h"
#include "exec/runner.h"
#include "exec/runstate.h"
#include "lang/scope.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The longest a batch of pure events stays uncommitted (drive). */
#define RBK_BATCH_MS 50
/* The most a batch event holds: a reader (the store's tail check, rbk log
 * --follow) then never parses or hashes a huge one. */
#define RBK_BATCH_BYTES 16384

static volatile int stop_signals; /* 1: stop at the next safe point; 2: interrupt the action */

static void on_signal(int sig)
{
	(void)sig;
	if (stop_signals < 2)
		stop_signals++;
}

void rbk_interp_install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A closed output (`rbk run X | head`) or terminal never stops a run,
	 * least of all mid-step: output is dropped (ui.c) and the run carries
	 * on to its end, recorded in the store (docs/cli.md, "Signals"). */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	rbk_runner_set_cancel(&stop_signals);
}

int rbk_interp_exit_code(const char *status)
{
	if (!strcmp(status, "succeeded"))
		return RBK_EXIT_OK;
	if (!strcmp(status, "rolled_back"))
		return RBK_EXIT_ROLLED_BACK;
	if (!strcmp(status, "waiting") || !strcmp(status, "needs_attention"))
		return RBK_EXIT_WAITING;
	if (!strcmp(status, "interrupted") || !strcmp(status, "running"))
		return RBK_EXIT_INTERRUPTED;
	return RBK_EXIT_FAILED;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep until a wall-clock instant; false when a signal asked to stop. */
/* The lease renewed from the places the engine waits (lease.h). */
static rbk_lease *cur_lease;

static bool sleep_until(int64_t at_ms)
{
	for (;;) {
		if (stop_signals)
			return false;
		if (cur_lease && !rbk_lease_tick(cur_lease))
			return false; /* lost: the next write is refused */
		int64_t left = at_ms - wall_ms();
		if (left <= 0)
			return true;
		if (left > 200)
			left = 200; /* look at the stop flag now and then */
		struct timespec ts = {left / 1000, (left % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
}

typedef struct run run;
struct run {
	rbk_interp *ip;
	int64_t id;
	rbk_doc *own_doc; /* when loaded from the pinned source */
	rbk_runbook *own_rb;
	const rbk_runbook *rb;
	char *path; /* the runbook file, for calls (may be NULL after resume) */
	rbk_val params;
	rbk_mask mask;
	rbk_rs rs;
	bool dry_run;
	char *launcher;
	int64_t parent; /* the run that called this one, 0 if none */
	int64_t last_seq; /* the last event of this run applied to rs */
	int owner_fd;
	int depth;
	rbk_lease lease; /* a top-level run's, while this process executes it */
	/* Notifications (exec/notify.h): the status changes recorded and not
	 * yet told, and the last approval's question, for the notice. */
	rbk_val notices; /* [{seq, status, reason, state, done: [entry ids]}] */
	rbk_val ask;	 /* the last approval_requested's data (masked) */
	bool delivering;
};

static bool lease_tick(void *ctx) { return rbk_lease_tick(ctx); }

/* A state's duration in milliseconds, for r: a param's when written so. */
#define DUR(field) rbk_model_dur(r->rb, (field), &r->params)

/* ---- recording ---- */

/* Event fields that name things of the definition or the engine (states,
 * keys, kinds of outcome): never secrets, and never masked, so a short
 * secret cannot mangle the names the run's fold reads back. */
static bool structural(const char *key)
{
	static const char *const keys[] = {"state", "from", "to", "via", "key", "action", "status", "start", "decision",
					   "by", NULL};
	for (size_t i = 0; keys[i]; i++)
		if (!strcmp(keys[i], key))
			return true;
	return false;
}

/* The event as it is recorded: secret values "***", the text of every
 * registered secret masked, the names of secret vars listed so that resume
 * knows what to derive again. */
static rbk_val recorded(const run *r, const char *kind, const rbk_val *data)
{
	if (data->t != RBK_V_MAP)
		return rbk_mask_val(&r->mask, data);
	rbk_val rec = rbk_val_map();
	for (size_t i = 0; i < data->u.map.n; i++) {
		const char *k = data->u.map.keys[i];
		const rbk_val *v = &data->u.map.vals[i];
		rbk_val_map_set(&rec, k, structural(k) ? rbk_val_copy(v) : rbk_mask_val(&r->mask, v));
	}
	const rbk_val *vars = rbk_val_map_get(data, "vars");
	if (!strcmp(kind, "vars_set") && vars && vars->t == RBK_V_MAP) {
		rbk_val names = rbk_val_list();
		for (size_t i = 0; i < vars->u.map.n; i++)
			if (rbk_val_has_secret(&vars->u.map.vals[i]))
				rbk_val_list_push(&names, rbk_val_str(vars->u.map.keys[i]));
		if (names.u.list.n)
			rbk_val_map_set(&rec, "secret", names);
		else
			rbk_val_free(&names);
	}
	return rec;
}

static int64_t tx_began_ms; /* when the open batch began (wall_ms) */

static int begin(run *r, rbk_err *err)
{
	if (r->ip->tx_open)
		return 0;
	if (rbk_store_begin(r->ip->store, err) < 0)
		return -1;
	r->ip->tx_open = true;
	tx_began_ms = wall_ms();
	return 0;
}

/* A step's end is shown once its result is durable (at the next barrier),
 * never before: a result the store could not commit is not shown as ok. */
static struct {
	rbk_ui *ui;
	int64_t run, ms;
	char *state, *error;
	bool ok, set;
} step_end_shown;

static void show_step_end(bool recorded)
{
	if (!step_end_shown.set)
		return;
	step_end_shown.set = false;
	rbk_ui_step_end(step_end_shown.ui, step_end_shown.run, step_end_shown.state, step_end_shown.ok && recorded,
			step_end_shown.ms,
			recorded ? step_end_shown.error : "its result could not be recorded (see the error below)");
	rbk_free(step_end_shown.state);
	rbk_free(step_end_shown.error);
}

static void step_end_after_barrier(rbk_ui *ui, int64_t run, const char *state, bool ok, int64_t ms, const char *error)
{
	show_step_end(true); /* none is pending at a step's end; never lost */
	step_end_shown.ui = ui;
	step_end_shown.run = run;
	step_end_shown.state = rbk_xstrdup(state);
	step_end_shown.error = error ? rbk_xstrdup(error) : NULL;
	step_end_shown.ok = ok;
	step_end_shown.ms = ms;
	step_end_shown.set = true;
}

/* Write the state a run's transitions moved it to into its row (each
 * transition would rewrite the row; only the last one before a commit is
 * ever seen, since nothing reads a run's row inside its own transaction). */
static int flush_state(rbk_interp *ip, rbk_err *err)
{
	if (!ip->pending_run)
		return 0;
	int64_t id = ip->pending_run;
	ip->pending_run = 0;
	return rbk_store_run_set(ip->store, id, NULL, ip->pending_state, err);
}

static bool pure_kind(const char *kind)
{
	return !strcmp(kind, "transition") || !strcmp(kind, "vars_set");
}

/* Record the held-back pure events: one alone as itself, several as one
 * batch event (RBK_STORE_BATCH), which readers of the timeline unpack. A
 * loop of decisions then costs one append per commit, not one per state. */
static int flush_batch(rbk_interp *ip, rbk_err *err)
{
	if (!ip->batch_run)
		return 0;
	int64_t run = ip->batch_run, *last = ip->batch_seq, seq = 0;
	int rc;
	if (ip->batch_n == 1) {
		ip->batch.s[ip->batch.len - 1] = '\0'; /* the item's closing brace */
		rc = rbk_store_append_encoded(ip->store, run, ip->actor, ip->batch_kind, ip->batch.s + ip->batch_data,
					      &seq, err);
	} else {
		rbk_buf_puts(&ip->batch, "]}");
		rc = rbk_store_append_encoded(ip->store, run, ip->actor, RBK_STORE_BATCH, ip->batch.s, &seq, err);
	}
	ip->batch_run = 0;
	rbk_buf_free(&ip->batch);
	if (rc == 0)
		*last = seq;
	return rc;
}

/* Hold a pure event of r (masked) for the next flush_batch. */
static void hold_pure(rbk_interp *ip, int64_t run, int64_t *last_seq, const char *kind, const rbk_val *rec)
{
	if (!ip->batch_run) {
		ip->batch_run = run;
		ip->batch_seq = last_seq;
		ip->batch_n = 0;
		ip->batch.len = 0;
		rbk_buf_puts(&ip->batch, "{\"events\":[");
		snprintf(ip->batch_kind, sizeof ip->batch_kind, "%s", kind);
	}
	rbk_buf_puts(&ip->batch, ip->batch_n++ ? ",{\"kind\":\"" : "{\"kind\":\"");
	rbk_buf_puts(&ip->batch, kind); /* one of pure_kind's: nothing to escape */
	rbk_buf_puts(&ip->batch, "\",\"data\":");
	if (ip->batch_n == 1)
		ip->batch_data = ip->batch.len;
	rbk_json_encode_to(&ip->batch, rec);
	rbk_buf_putc(&ip->batch, '}');
}

static void drop_batch(rbk_interp *ip)
{
	ip->batch_run = 0;
	rbk_buf_free(&ip->batch);
}

static int deliver(run *r, rbk_err *err);

/* Make everything recorded so far durable. */
static int barrier(run *r, rbk_err *err)
{
	if (!r->ip->tx_open) {
		show_step_end(true);
		return 0;
	}
	if (flush_batch(r->ip, err) < 0 || flush_state(r->ip, err) < 0) {
		drop_batch(r->ip);
		r->ip->tx_open = false;
		show_step_end(false);
		return -1;
	}
	r->ip->tx_open = false;
	rbk_crash_point("result.before_commit");
	int rc = rbk_store_commit(r->ip->store, err);
	if (rc == 0)
		rbk_crash_point("result.after_commit");
	show_step_end(rc == 0);
	return rc == 0 ? deliver(r, err) : rc;
}

static const char *str_in(const rbk_val *m, const char *k)
{
	const rbk_val *v = rbk_val_map_get(m, k);
	return v && v->t == RBK_V_STR ? v->u.s.s : NULL;
}

static int64_t int_in(const rbk_val *m, const char *k)
{
	const rbk_val *v = rbk_val_map_get(m, k);
	return v && v->t == RBK_V_INT ? v->u.i : 0;
}

/* ---- notifications ---- */

/* The notification entries of r: its runbook's, then (a top-level run's)
 * the shared ones. i counts across both; *from says whose. */
static const rbk_notify *notify_entry(const run *r, size_t i, const char **from)
{
	const rbk_runbook *sh = r->parent ? NULL : r->ip->notify_shared;
	*from = i < r->rb->nnotify ? "runbook" : "shared";
	if (i < r->rb->nnotify)
		return &r->rb->notify[i];
	i -= r->rb->nnotify;
	return sh && i < sh->nnotify ? &sh->notify[i] : NULL;
}

/* The status a notification is sent for, of an event of kind; NULL: none. */
static const char *notice_status(const char *kind, const rbk_val *data)
{
	if (!strcmp(kind, "run_started"))
		return "started";
	if (!strcmp(kind, "run_status") || !strcmp(kind, "run_finished")) {
		const rbk_val *st = rbk_val_map_get(data, "status");
		return st && st->t == RBK_V_STR && rbk_notify_bit(st->u.s.s) ? st->u.s.s : NULL;
	}
	return NULL;
}

/* An event was recorded (or, on resume, read back): a status change some
 * entry is for joins r's pending notices. On resume (replace) it replaces
 * the ones before it: a late "waiting" would mislead. */
static void note_status(run *r, const char *kind, const rbk_val *data, int64_t seq, bool replace)
{
	if (!strcmp(kind, "approval_requested")) {
		rbk_val_free(&r->ask);
		r->ask = rbk_mask_val(&r->mask, data);
		return;
	}
	const char *status = notice_status(kind, data);
	if (!status || r->dry_run)
		return;
	unsigned bit = rbk_notify_bit(status);
	bool wanted = false;
	const char *from;
	const rbk_notify *n;
	for (size_t i = 0; (n = notify_entry(r, i, &from)); i++)
		wanted |= (n->on & bit) != 0;
	if (!wanted)
		return;
	if (replace || r->notices.t != RBK_V_LIST) {
		rbk_val_free(&r->notices);
		r->notices = rbk_val_list();
	}
	rbk_val m = rbk_val_map();
	rbk_val_map_set(&m, "seq", rbk_val_int(seq));
	rbk_val_map_set(&m, "status", rbk_val_str(status));
	const rbk_val *why = rbk_val_map_get(data, "reason");
	rbk_val_map_set(&m, "reason", why ? rbk_mask_val(&r->mask, why) : rbk_val_null());
	rbk_val_map_set(&m, "done", rbk_val_list()); /* the entries already told of it */
	rbk_val_list_push(&r->notices, m);
}

/* On resume: a notified event marks an entry told of the pending notice. */
static void note_told(run *r, const rbk_val *data)
{
	const rbk_val *for_seq = rbk_val_map_get(data, "for_seq"), *id = rbk_val_map_get(data, "entry");
	if (r->notices.t != RBK_V_LIST || !r->notices.u.list.n || !for_seq || !id)
		return;
	rbk_val *m = &r->notices.u.list.items[r->notices.u.list.n - 1];
	const rbk_val *seq = rbk_val_map_get(m, "seq");
	if (seq && seq->t == RBK_V_INT && for_seq->t == RBK_V_INT && seq->u.i == for_seq->u.i)
		rbk_val_list_push((rbk_val *)rbk_val_map_get(m, "done"), rbk_val_copy(id));
}

static const rbk_scope *scope_of(run *r, rbk_scope *sc);
static int emit(run *r, const char *kind, rbk_val data, rbk_err *err);

/* Tell of the pending notice, each entry that is for it once, recording
 * each try's outcome as a notified event. Run after the commit that
 * recorded the status change; nothing here changes the run's outcome. */
static int tell(run *r, const rbk_val *m, rbk_err *err);

static int deliver(run *r, rbk_err *err)
{
	if (r->delivering || r->notices.t != RBK_V_LIST || !r->notices.u.list.n)
		return 0;
	r->delivering = true;
	rbk_val all = r->notices;
	r->notices = rbk_val_null();
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < all.u.list.n; i++)
		rc = tell(r, &all.u.list.items[i], err);
	rbk_val_free(&all);
	r->delivering = false;
	return rc;
}

/* Tell each entry that is for notice m, once. */
static int tell(run *r, const rbk_val *mp, rbk_err *err)
{
	const rbk_val m = *mp;
	const char *status = rbk_val_map_get(&m, "status")->u.s.s;
	int64_t seq = rbk_val_map_get(&m, "seq")->u.i;
	const rbk_val *done = rbk_val_map_get(&m, "done");
	unsigned bit = rbk_notify_bit(status);
	/* What a notification knows: run.status, run.reason ... (check.c). */
	rbk_val notice = rbk_val_map();
	rbk_val_map_set(&notice, "status", rbk_val_str(status));
	rbk_val_map_set(&notice, "reason", rbk_val_copy(rbk_val_map_get(&m, "reason")));
	rbk_val_map_set(&notice, "state", r->rs.current ? rbk_val_str(r->rs.current) : rbk_val_null());
	const rbk_val *q = !strcmp(status, "waiting") && r->ask.t == RBK_V_MAP ? &r->ask : NULL;
	const rbk_val *prompt = q ? rbk_val_map_get(q, "prompt") : NULL, *who = q ? rbk_val_map_get(q, "approvers") : NULL;
	rbk_val_map_set(&notice, "prompt", prompt ? rbk_val_copy(prompt) : rbk_val_null());
	rbk_val_map_set(&notice, "approvers", who ? rbk_val_copy(who) : rbk_val_list());
	char *cmd = !strcmp(status, "waiting")		? rbk_xasprintf("rbk approve %lld", (long long)r->id)
		    : !strcmp(status, "needs_attention") ? rbk_xasprintf("rbk resume %lld", (long long)r->id)
							  : rbk_xasprintf("rbk log %lld", (long long)r->id);
	rbk_val_map_set(&notice, "command", rbk_val_str(cmd));
	rbk_free(cmd);
	int rc = 0;
	const char *from;
	const rbk_notify *n;
	for (size_t i = 0; rc == 0 && (n = notify_entry(r, i, &from)); i++) {
		if (!(n->on & bit))
			continue;
		char id[32], key[96];
		snprintf(id, sizeof id, "%s#%zu", from, !strcmp(from, "runbook") ? i : i - r->rb->nnotify);
		bool told = false;
		for (size_t j = 0; done && done->t == RBK_V_LIST && j < done->u.list.n; j++)
			told |= done->u.list.items[j].t == RBK_V_STR && !strcmp(done->u.list.items[j].u.s.s, id);
		if (told)
			continue;
		snprintf(key, sizeof key, "%lld:notify:%lld:%s", (long long)r->id, (long long)seq, id);
		rbk_val_map_set(&notice, "key", rbk_val_str(key));
		rbk_scope sc;
		scope_of(r, &sc);
		sc.notice = &notice;
		rbk_notify_result res;
		rbk_crash_point("notify.before_send");
		rbk_notify_send(r->ip->reg, n, &sc, &r->mask, key, &res);
		if (!res.ok)
			rbk_ui_note(r->ip->ui, r->id, "notification %s (%s, %s) failed after %d %s: %s", id, n->act.action,
				    status, res.attempts, res.attempts == 1 ? "try" : "tries", res.error);
		rbk_val d = rbk_val_map();
		rbk_val_map_set(&d, "status", rbk_val_str(status));
		rbk_val_map_set(&d, "for_seq", rbk_val_int(seq));
		rbk_val_map_set(&d, "entry", rbk_val_str(id));
		rbk_val_map_set(&d, "action", rbk_val_str(n->act.action));
		rbk_val_map_set(&d, "ok", rbk_val_bool(res.ok));
		rbk_val_map_set(&d, "attempts", rbk_val_int(res.attempts));
		rbk_val_map_set(&d, "error", res.error ? rbk_val_str(res.error) : rbk_val_null());
		rbk_notify_result_free(&res);
		rc = emit(r, "notified", d, err);
		if (rc == 0)
			rc = barrier(r, err);
	}
	rbk_val_free(&notice);
	return rc;
}

/* Record an event (masked; data taken) and apply it, with its real
 * values, to the fold. */
static int emit(run *r, const char *kind, rbk_val data, rbk_err *err)
{
	/* What was computed from a secret joins the mask before anything is
	 * recorded or shown. */
	rbk_mask_add_val(&r->mask, &data);
	int rc = begin(r, err);
	int64_t seq = 0;
	bool pure = pure_kind(kind);
	/* Everything before this event is recorded before it. */
	if (rc == 0 && (!pure || r->ip->batch_run != r->id))
		rc = flush_batch(r->ip, err);
	if (rc == 0 && pure) {
		rbk_val rec = recorded(r, kind, &data);
		hold_pure(r->ip, r->id, &r->last_seq, kind, &rec);
		rbk_val_free(&rec);
		if (r->ip->batch.len >= RBK_BATCH_BYTES)
			rc = flush_batch(r->ip, err);
	} else if (rc == 0) {
		rbk_val rec = recorded(r, kind, &data);
		rc = rbk_store_append_val(r->ip->store, r->id, r->ip->actor, kind, &rec, &seq, err);
		rbk_val_free(&rec);
	}
	bool started = !strcmp(kind, "step_started"), finished = !strcmp(kind, "step_finished");
	if (rc == 0 && (started || finished))
		rc = rbk_store_step_record(r->ip->store, r->id, str_in(&data, "state"), (int)int_in(&data, "attempt"),
					   started ? "running" : str_in(&data, "status"), started ? seq : 0,
					   finished ? seq : 0, err);
	const char *to = !strcmp(kind, "transition") ? str_in(&data, "to") : NULL;
	if (rc == 0 && to && (r->ip->pending_run == r->id || !r->ip->pending_run || flush_state(r->ip, err) == 0) &&
	    strlen(to) < sizeof r->ip->pending_state) {
		r->ip->pending_run = r->id;
		snprintf(r->ip->pending_state, sizeof r->ip->pending_state, "%s", to);
	} else if (rc == 0 && (to || !strcmp(kind, "run_status") || !strcmp(kind, "run_finished") ||
			       !strcmp(kind, "run_started"))) {
		/* The row's status changes now, with the state pending, if any. */
		const char *state = to ? to : str_in(&data, "start");
		if (!state && r->ip->pending_run == r->id) {
			r->ip->pending_run = 0;
			state = r->ip->pending_state;
		}
		rc = rbk_store_run_set(r->ip->store, r->id, str_in(&data, "status"), state, err);
	}
	if (rc == 0) {
		/* Recorded masked; for the guards that read it, an output that
		 * holds a secret is a secret. */
		rbk_val *res = !strcmp(kind, "step_finished") ? (rbk_val *)rbk_val_map_get(&data, "result") : NULL;
		if (res)
			rbk_mask_taint(&r->mask, res);
		rbk_rs_apply(&r->rs, kind, &data, wall_ms());
		if (!pure) {
			r->last_seq = seq;
			note_status(r, kind, &data, seq, false);
		}
	} else {
		drop_batch(r->ip);
		r->ip->tx_open = false; /* the store rolled the batch back */
		show_step_end(false);
	}
	rbk_val_free(&data);
	return rc;
}

static rbk_val map2(const char *k1, rbk_val v1, const char *k2, rbk_val v2)
{
	rbk_val m = rbk_val_map();
	rbk_val_map_set(&m, k1, v1);
	if (k2)
		rbk_val_map_set(&m, k2, v2);
	return m;
}

static int set_status(run *r, const char *status, const char *reason, rbk_err *err)
{
	if (!strcmp(status, "needs_attention") && reason)
		rbk_ui_note(r->ip->ui, r->id, "needs attention: %s", reason);
	return emit(r, "run_status",
		    map2("status", rbk_val_str(status), "reason", reason ? rbk_val_str(reason) : rbk_val_null()), err);
}

static int finish(run *r, const char *status, const char *reason, rbk_err *err)
{
	if (emit(r, "run_finished",
		 map2("status", rbk_val_str(status), "reason", reason ? rbk_val_str(reason) : rbk_val_null()), err) < 0 ||
	    barrier(r, err) < 0)
		return -1;
	rbk_ui_run_end(r->ip->ui, r->id, status, reason);
	return 0;
}

/* ---- expressions ---- */

/* The run's scope for guards and templates; rebuilt on each use because
 * the maps it points at change as events are applied. */
#define env_of(r) rbk_scope_env(scope_of(r, &(rbk_scope){0}))

static const rbk_scope *scope_of(run *r, rbk_scope *sc)
{
	*sc = (rbk_scope){&r->params, &r->rs.vars, &r->rs.steps, r->id, r->rb->name, r->launcher, r->dry_run, 0, &r->mask, NULL,
			    rbk_model_param_is_duration, r->rb};
	return sc;
}

/* "guard at file:line:col: message", masked. */
static char *expr_error(run *r, const rbk_mexpr *m, const rbk_err *e)
{
	rbk_pos p = m->node ? rbk_model_place(m->node, m->off + (e->pos > 0 ? e->pos : 0)) : m->pos;
	char *s = rbk_xasprintf("%s:%d:%d: %s", r->rb->doc->file, p.line, p.col, e->msg);
	char *masked = rbk_mask_apply(&r->mask, s, strlen(s), NULL);
	rbk_free(s);
	return masked;
}

/* ---- choosing transitions ---- */

/* The next state after st succeeded (decide.h), with a guard's error
 * placed in the file and masked. */
static int choose(run *r, const rbk_state *st, const char **to, int *branch, char **why)
{
	rbk_eval_env env = env_of(r);
	const rbk_mexpr *bad = NULL;
	rbk_err er = {0};
	if (rbk_decide_next(st, &env, to, branch, why, &bad, &er) == 0)
		return 0;
	if (bad) {
		rbk_free(*why);
		*why = expr_error(r, bad, &er);
	}
	return -1;
}

static int go_why(run *r, const rbk_state *st, const char *to, const char *via, int branch, const char *error,
		  rbk_err *err)
{
	if (r->rs.transitions >= r->rb->max_transitions) {
		/* A runaway cycle ends here, whatever edge it would follow next
		 * (a failure edge is a transition too). The count is the fold's:
		 * a resumed run goes on spending the same budget. */
		char *why = rbk_xasprintf("transition budget of %lld spent (max_transitions); last state %s, next %s",
					  (long long)r->rb->max_transitions, st->name, to);
		int rc = finish(r, "failed", why, err);
		rbk_free(why);
		return rc;
	}
	rbk_val d = rbk_val_map();
	rbk_val_map_set(&d, "from", rbk_val_str(st->name));
	rbk_val_map_set(&d, "to", rbk_val_str(to));
	rbk_val_map_set(&d, "via", rbk_val_str(via));
	rbk_val_map_set(&d, "branch", branch >= 0 ? rbk_val_int(branch) : rbk_val_null());
	const char *g = branch >= 0 && (size_t)branch < st->nnext ? st->next[branch].guard.src : NULL;
	rbk_val_map_set(&d, "guard", g ? rbk_val_str(g) : rbk_val_null());
	if (error)
		rbk_val_map_set(&d, "error", rbk_val_str(error));
	return emit(r, "transition", d, err);
}

static int go(run *r, const rbk_state *st, const char *to, const char *via, int branch, rbk_err *err)
{
	return go_why(r, st, to, via, branch, NULL, err);
}

/* Follow st's failure edge after error. */
static int fail_edge_of(run *r, const rbk_state *st, const char *error, bool shown_already, rbk_err *err)
{
	const char *edge = rbk_decide_failure_edge(r->rb, st);
	if (!strcmp(edge, "fail"))
		return finish(r, "failed", error, err);
	if (!strcmp(edge, "rollback")) {
		int rc = emit(r, "rollback_started", map2("from", rbk_val_str(st->name), "error", rbk_val_str(error)), err);
		return rc < 0 ? rc : barrier(r, err);
	}
	/* The error is recorded with the edge: a step's own failure is in its
	 * result already, but a poll that ran out or a guard that could not be
	 * evaluated is said nowhere else. */
	if (!shown_already) {
		char *shown = rbk_mask_apply(&r->mask, error, strlen(error), NULL);
		rbk_ui_note(r->ip->ui, r->id, "%s failed: %s; on to %s", st->name, shown, edge);
		rbk_free(shown);
	}
	return go_why(r, st, edge, "failure", -1, error, err);
}

static int fail_edge(run *r, const rbk_state *st, const char *error, rbk_err *err)
{
	return fail_edge_of(r, st, error, false, err);
}

/* After a success: set, then the transition. */
static int succeed(run *r, const rbk_state *st, rbk_err *err)
{
	if (st->nset) {
		rbk_eval_env env = env_of(r);
		rbk_val vars = rbk_val_map();
		for (size_t i = 0; i < st->nset; i++) {
			const rbk_assign *a = &st->set[i];
			rbk_val v;
			rbk_err er = {0};
			if (a->lit) {
				rbk_render(a->lit, NULL, &v, NULL, &er);
			} else if (rbk_eval(a->value.expr, &env, &v, &er) < 0) {
				rbk_val_free(&vars);
				char *why = expr_error(r, &a->value, &er);
				int rc = fail_edge(r, st, why, err);
				rbk_free(why);
				return rc;
			}
			if (a->secret) /* declared secret: masked wherever it goes, like a secret param */
				rbk_val_mark_secret(&v);
			rbk_val_map_set(&vars, a->name, v);
		}
		if (emit(r, "vars_set", map2("state", rbk_val_str(st->name), "vars", vars), err) < 0)
			return -1;
	}
	const char *to = NULL;
	int branch = -1;
	char *why = NULL;
	if (choose(r, st, &to, &branch, &why) < 0) {
		int rc = fail_edge(r, st, why, err);
		rbk_free(why);
		return rc;
	}
	return go(r, st, to, "next", st->next_is_list ? branch : -1, err);
}

/* ---- actions ---- */

/* May the step in flight run again? The runbook's `idempotent:` first,
 * then the action's answer for the params it was started with, then the
 * action's flag. */
static bool idempotent(run *r, const rbk_state *st, const rbk_call_spec *cs)
{
	if (cs == &st->act && st->idempotent >= 0)
		return st->idempotent;
	const rbk_reg_action *a = cs->action ? rbk_reg_find(r->ip->reg, cs->action) : NULL;
	if (!a)
		return false;
	if (a->action->is_idempotent && r->rs.flight_params.t == RBK_V_MAP) {
		rbk_value *args = rbk_reg_args(&r->rs.flight_params);
		int yes = a->action->is_idempotent(args);
		rbk_reg_args_free(args);
		return yes != 0;
	}
	return a->action->idempotent;
}

/* The step's result as guards see it: steps.S.{status, exit_code, stdout,
 * stderr, out, attempts, error, duration_ms}. */
static rbk_val step_result(run *r, bool ok, const rbk_val *outputs, const char *error, int64_t ms)
{
	rbk_val res = rbk_val_map();
	rbk_val_map_set(&res, "status", rbk_val_str(ok ? "ok" : "failed"));
	static const char *const lifted[] = {"exit_code", "stdout", "stderr"};
	for (int i = 0; i < 3; i++) {
		const rbk_val *v = outputs ? rbk_val_map_get(outputs, lifted[i]) : NULL;
		if (v)
			rbk_val_map_set(&res, lifted[i], rbk_val_copy(v));
	}
	rbk_val_map_set(&res, "out", outputs ? rbk_val_copy(outputs) : rbk_val_map());
	rbk_val_map_set(&res, "attempts", rbk_val_int(r->rs.attempts));
	rbk_val_map_set(&res, "error", error ? rbk_val_str(error) : rbk_val_null());
	rbk_val_map_set(&res, "duration_ms", rbk_val_int(ms));
	return res;
}

/* Render an action's with and check it against the action's table. */
static int prepare(run *r, const rbk_call_spec *cs, const rbk_reg_action **act, rbk_val *args, char **why)
{
	*act = rbk_reg_find(r->ip->reg, cs->action);
	if (!*act) {
		*why = rbk_xasprintf("unknown action '%s' (no loaded plugin provides it)", cs->action);
		return -1;
	}
	rbk_eval_env env = env_of(r);
	rbk_err er = {0};
	rbk_pos where = cs->pos;
	if (cs->with) {
		if (rbk_render(cs->with, &env, args, &where, &er) < 0) {
			char *s = rbk_xasprintf("%s:%d:%d: %s", r->rb->doc->file, where.line, where.col, er.msg);
			*why = rbk_mask_apply(&r->mask, s, strlen(s), NULL);
			rbk_free(s);
			return -1;
		}
	} else {
		*args = rbk_val_map();
	}
	rbk_mask_add_val(&r->mask, args); /* before the action can echo them */
	if (rbk_reg_check_args(*act, args, &er) < 0) {
		rbk_val_free(args);
		*why = rbk_mask_apply(&r->mask, er.msg, strlen(er.msg), NULL);
		return -1;
	}
	return 0;
}

/* What the action marked secret (plugin.h mark_secret) joins the mask
 * before anything of its result is recorded or shown. */
static void take_secrets(run *r, const rbk_runner_result *res)
{
	for (size_t i = 0; res->secrets.t == RBK_V_LIST && i < res->secrets.u.list.n; i++)
		if (res->secrets.u.list.items[i].t == RBK_V_STR)
			rbk_mask_add(&r->mask, res->secrets.u.list.items[i].u.s.s);
}

/* Run (or, dry, pretend to run) one attempt of an action state. */
static int run_action(run *r, const rbk_state *st, int attempt, rbk_err *err)
{
	const rbk_reg_action *act = NULL;
	rbk_val args;
	char *why = NULL;
	char key[160];
	snprintf(key, sizeof key, "%lld:%s:%d", (long long)r->id, st->name, attempt);
	if (prepare(r, &st->act, &act, &args, &why) < 0) {
		/* Nothing ran: the attempt fails before its barrier. */
		rbk_ui_step_end(r->ip->ui, r->id, st->name, false, 0, why);
		rbk_val fin = rbk_val_map();
		rbk_val_map_set(&fin, "state", rbk_val_str(st->name));
		rbk_val_map_set(&fin, "attempt", rbk_val_int(attempt));
		rbk_val_map_set(&fin, "status", rbk_val_str("failed"));
		rbk_val_map_set(&fin, "result", step_result(r, false, NULL, why, 0));
		int rc = emit(r, "step_finished", fin, err);
		rbk_free(why);
		return rc;
	}
	rbk_val d = rbk_val_map();
	rbk_val_map_set(&d, "state", rbk_val_str(st->name));
	rbk_val_map_set(&d, "attempt", rbk_val_int(attempt));
	rbk_val_map_set(&d, "key", rbk_val_str(key));
	rbk_val_map_set(&d, "action", rbk_val_str(st->act.action));
	rbk_val_map_set(&d, "params", rbk_val_copy(&args));
	rbk_crash_point("step.before_start");
	if (emit(r, "step_started", d, err) < 0 || barrier(r, err) < 0) {
		rbk_val_free(&args);
		return -1;
	}
	rbk_crash_point("step.after_start");
	rbk_ui_step_start(r->ip->ui, r->id, st->name, st->act.action, attempt);
	rbk_runner_result res;
	bool ok;
	if (r->dry_run) {
		rbk_val pub = rbk_mask_val(&r->mask, &args);
		char *shown = rbk_json_encode(&pub);
		rbk_val_free(&pub);
		rbk_ui_note(r->ip->ui, r->id, "  would run %s %s", st->act.action, shown);
		rbk_free(shown);
		/* The action's own description of what it would do, if it has one;
		 * an action that only reads does its read for real in its plan
		 * (check mode: docs/cli.md), and its outputs are the step's. */
		rbk_runner_result plan;
		rbk_err perr = {0};
		bool checked = false;
		memset(&res, 0, sizeof res);
		if (act->action->plan && rbk_runner_exec(act, &args, key, DUR(st->timeout_ms) >= 0 ? DUR(st->timeout_ms) : 30000,
							 true, &plan, &perr) == 0) {
			take_secrets(r, &plan);
			if (plan.log && *plan.log) {
				char *log = rbk_mask_apply(&r->mask, plan.log, strlen(plan.log), NULL);
				for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
					rbk_ui_note(r->ip->ui, r->id, "    %s", line);
				rbk_free(log);
			}
			/* A plan that read something, or failed, is the step's result. */
			checked = (plan.outputs.t == RBK_V_MAP && plan.outputs.u.map.n > 0) || !plan.ok;
			if (checked && !st->dry_run) {
				res = plan;
				memset(&plan, 0, sizeof plan);
			}
			rbk_runner_result_free(&plan);
		}
		if (!checked || st->dry_run) {
			/* What a dry step "returns": a clean exit, unless dry_run: says otherwise. */
			rbk_runner_result_free(&res);
			memset(&res, 0, sizeof res);
			res.outputs = map2("exit_code", rbk_val_int(0), "stdout", rbk_val_str(""));
			rbk_val_map_set(&res.outputs, "stderr", rbk_val_str(""));
		}
		rbk_val given;
		rbk_eval_env env = env_of(r);
		if (st->dry_run && rbk_render(st->dry_run, &env, &given, NULL, NULL) == 0) {
			/* Step fields (exit_code, stdout...) at the top; named outputs
			 * may also be written under out:, as guards read them. */
			for (size_t i = 0; given.t == RBK_V_MAP && i < given.u.map.n; i++) {
				const rbk_val *gv = &given.u.map.vals[i];
				if (!strcmp(given.u.map.keys[i], "out") && gv->t == RBK_V_MAP)
					for (size_t j = 0; j < gv->u.map.n; j++)
						rbk_val_map_set(&res.outputs, gv->u.map.keys[j], rbk_val_copy(&gv->u.map.vals[j]));
				else
					rbk_val_map_set(&res.outputs, given.u.map.keys[i], rbk_val_copy(gv));
			}
			rbk_val_free(&given);
		}
		if (!checked || st->dry_run) {
			const rbk_val *code = rbk_val_map_get(&res.outputs, "exit_code");
			res.ok = !code || code->t != RBK_V_INT || code->u.i == 0;
			if (!res.ok)
				res.error = rbk_xasprintf("exited with code %lld (dry_run)", (long long)code->u.i);
		}
	} else if (rbk_runner_exec(act, &args, key, DUR(st->timeout_ms), false, &res, err) < 0) {
		rbk_val_free(&args);
		return -1;
	}
	rbk_val_free(&args);
	rbk_crash_point("action.returned");
	take_secrets(r, &res);
	ok = res.ok;
	if (res.signal == SIGKILL && stop_signals >= 2) {
		/* Interrupted by the operator: the attempt stays in flight. */
		rbk_ui_step_end(r->ip->ui, r->id, st->name, false, res.duration_ms, res.error);
		rbk_runner_result_free(&res);
		return set_status(r, "interrupted", "interrupted during an action", err) < 0 ? -1 : barrier(r, err);
	}
	char *error = res.error ? rbk_mask_apply(&r->mask, res.error, strlen(res.error), NULL) : NULL;
	step_end_after_barrier(r->ip->ui, r->id, st->name, ok, res.duration_ms, error);
	rbk_val fin = rbk_val_map();
	rbk_val_map_set(&fin, "state", rbk_val_str(st->name));
	rbk_val_map_set(&fin, "attempt", rbk_val_int(attempt));
	rbk_val_map_set(&fin, "status", rbk_val_str(ok ? "ok" : "failed"));
	rbk_val sres = step_result(r, ok, &res.outputs, error, res.duration_ms);
	if (res.cut.t == RBK_V_LIST && res.cut.u.list.n) /* the outputs the host cut (RBK_MAX_OUTPUT) */
		rbk_val_map_set(&sres, "cut", rbk_val_copy(&res.cut));
	rbk_val_map_set(&fin, "result", sres);
	if (res.log && *res.log)
		rbk_val_map_set(&fin, "log", rbk_val_str(res.log));
	rbk_free(error);
	rbk_runner_result_free(&res);
	return emit(r, "step_finished", fin, err);
}

/* After an attempt of st finished: poll, retry, success or failure edge. */
static int after_attempt(run *r, const rbk_state *st, rbk_err *err)
{
	const rbk_val *res = rbk_val_map_get(&r->rs.steps, st->name);
	const char *status = res ? str_in(res, "status") : NULL;
	bool ok = status && !strcmp(status, "ok");
	if (ok && st->has_poll && st->poll.until.expr) {
		rbk_eval_env env = env_of(r);
		bool done = false;
		rbk_err er = {0};
		if (rbk_eval_guard(st->poll.until.expr, &env, &done, &er) < 0) {
			char *why = expr_error(r, &st->poll.until, &er);
			int rc = fail_edge(r, st, why, err);
			rbk_free(why);
			return rc;
		}
		if (!done && r->dry_run) {
			rbk_ui_note(r->ip->ui, r->id, "  would poll %s until %s", st->name, st->poll.until.src);
			done = true;
		}
		if (!done) {
			int64_t next = wall_ms() + DUR(st->poll.every_ms);
			if (next > r->rs.visit_started_ms + DUR(st->poll.for_ms)) {
				char d[32];
				rbk_dur_text(DUR(st->poll.for_ms), d, sizeof d);
				char *why = rbk_xasprintf("poll: '%s' still false after %s", st->poll.until.src, d);
				int rc = fail_edge(r, st, why, err);
				rbk_free(why);
				return rc;
			}
			rbk_val d2 = map2("state", rbk_val_str(st->name), "at_ms", rbk_val_int(next));
			rbk_val_map_set(&d2, "delay_ms", rbk_val_int(DUR(st->poll.every_ms)));
			rbk_val_map_set(&d2, "attempt", rbk_val_int(r->rs.attempts));
			return emit(r, "step_poll", d2, err) < 0 ? -1 : barrier(r, err);
		}
	}
	if (ok)
		return succeed(r, st, err);
	if (r->rs.failures < st->retry.attempts) {
		int64_t delay = rbk_decide_retry_delay(st, r->rs.failures);
		rbk_val d = map2("state", rbk_val_str(st->name), "at_ms", rbk_val_int(wall_ms() + delay));
		rbk_val_map_set(&d, "delay_ms", rbk_val_int(delay));
		rbk_val_map_set(&d, "attempt", rbk_val_int(r->rs.attempts));
		return emit(r, "step_retry", d, err) < 0 ? -1 : barrier(r, err);
	}
	const char *error = res ? str_in(res, "error") : NULL;
	return fail_edge_of(r, st, error ? error : "failed", true, err);
}

/* ---- other kinds ---- */

static int do_wait(run *r, const rbk_state *st, rbk_err *err)
{
	if (!r->rs.wait_until_ms) {
		int64_t until = wall_ms() + (r->dry_run ? 0 : DUR(st->wait_ms));
		if (emit(r, "wait_started", map2("state", rbk_val_str(st->name), "until_ms", rbk_val_int(until)), err) < 0 ||
		    barrier(r, err) < 0)
			return -1;
		char d[32];
		rbk_dur_text(DUR(st->wait_ms), d, sizeof d);
		rbk_ui_note(r->ip->ui, r->id, "%s: waiting %s%s", st->name, d, r->dry_run ? " (skipped: dry run)" : "");
	}
	if (!sleep_until(r->rs.wait_until_ms))
		return 0; /* the loop sees the stop request */
	return succeed(r, st, err);
}

static int do_approval(run *r, const rbk_state *st, rbk_err *err)
{
	const char *d = r->rs.approval_decision;
	if (!d && r->dry_run) {
		rbk_ui_note(r->ip->ui, r->id, "%s: approval assumed (dry run)", st->name);
		if (emit(r, "approval_decided",
			 map2("state", rbk_val_str(st->name), "decision", rbk_val_str("approved")), err) < 0)
			return -1;
		d = r->rs.approval_decision;
	}
	if (!d && !r->rs.approval_pending) {
		rbk_val data = rbk_val_map();
		rbk_val_map_set(&data, "state", rbk_val_str(st->name));
		rbk_val prompt = rbk_val_str(st->approval.prompt ? st->approval.prompt : "");
		const rbk_node *sn = rbk_node_get(rbk_node_get(r->rb->doc->root, "states"), st->name);
		const rbk_node *pn = rbk_node_get(rbk_node_get(sn, "approval"), "prompt");
		if (pn) {
			rbk_eval_env env = env_of(r);
			rbk_val v;
			if (rbk_render(pn, &env, &v, NULL, NULL) == 0) {
				rbk_val_free(&prompt);
				prompt = v;
			}
		}
		rbk_val_map_set(&data, "prompt", prompt);
		rbk_val ap = rbk_val_list();
		for (size_t i = 0; i < st->approval.napprovers; i++)
			rbk_val_list_push(&ap, rbk_val_str(st->approval.approvers[i]));
		rbk_val_map_set(&data, "approvers", ap);
		rbk_val_map_set(&data, "distinct", rbk_val_bool(st->approval.distinct));
		int64_t dl = DUR(st->approval.timeout_ms) >= 0 ? rbk_store_now_ms(r->ip->store) + DUR(st->approval.timeout_ms) : -1;
		rbk_val_map_set(&data, "deadline_ms", rbk_val_int(dl));
		if (emit(r, "approval_requested", data, err) < 0)
			return -1;
	}
	if (!d) {
		if (r->rs.approval_deadline_ms >= 0 && rbk_store_now_ms(r->ip->store) > r->rs.approval_deadline_ms) {
			/* by: who found it timed out (an operator's resume, the scheduler). */
			rbk_val d = map2("state", rbk_val_str(st->name), "decision", rbk_val_str("timed_out"));
			rbk_val_map_set(&d, "by", rbk_val_str(r->ip->actor));
			if (emit(r, "approval_decided", d, err) < 0)
				return -1;
			return fail_edge(r, st, "approval timed out", err);
		}
		if (set_status(r, "waiting", "approval", err) < 0 || barrier(r, err) < 0)
			return -1;
		rbk_ui_note(r->ip->ui, r->id, "%s: waiting for approval: rbk approve %lld (or rbk reject %lld)", st->name,
			    (long long)r->id, (long long)r->id);
		return 0;
	}
	if (!strcmp(d, "approved"))
		return succeed(r, st, err);
	return fail_edge(r, st, !strcmp(d, "rejected") ? "approval rejected" : "approval timed out", err);
}

static int drive(run *r, rbk_err *err);
static int child_run(run *parent, const rbk_state *st, int attempt, rbk_err *err);

/* ---- rollback ---- */

static int run_undo(run *r, const rbk_state *st, int attempt, rbk_err *err)
{
	const rbk_reg_action *act = NULL;
	rbk_val args;
	char *why = NULL;
	char key[160];
	snprintf(key, sizeof key, "%lld:%s:%d", (long long)r->id, st->name, attempt);
	bool ok = false;
	char *error = NULL;
	int64_t ms = 0;
	if (prepare(r, &st->undo, &act, &args, &why) < 0) {
		error = why;
	} else {
		rbk_val d = map2("state", rbk_val_str(st->name), "attempt", rbk_val_int(attempt));
		rbk_val_map_set(&d, "key", rbk_val_str(key));
		rbk_val_map_set(&d, "action", rbk_val_str(st->undo.action));
		rbk_val_map_set(&d, "params", rbk_val_copy(&args));
		if (emit(r, "undo_started", d, err) < 0 || barrier(r, err) < 0) {
			rbk_val_free(&args);
			return -1;
		}
		rbk_crash_point("undo.after_start");
		char what[200];
		snprintf(what, sizeof what, "undo: %s", st->undo.action);
		rbk_ui_step_start(r->ip->ui, r->id, st->name, what, 1);
		rbk_runner_result res;
		if (r->dry_run) {
			rbk_ui_note(r->ip->ui, r->id, "  would run %s", st->undo.action);
			memset(&res, 0, sizeof res);
			res.ok = true;
			res.outputs = rbk_val_map();
		} else if (rbk_runner_exec(act, &args, key, DUR(st->timeout_ms), false, &res, err) < 0) {
			rbk_val_free(&args);
			return -1;
		}
		rbk_val_free(&args);
		take_secrets(r, &res);
		ok = res.ok;
		ms = res.duration_ms;
		error = res.error ? rbk_mask_apply(&r->mask, res.error, strlen(res.error), NULL) : NULL;
		rbk_runner_result_free(&res);
	}
	step_end_after_barrier(r->ip->ui, r->id, st->name, ok, ms, error);
	rbk_val d = map2("state", rbk_val_str(st->name), "status", rbk_val_str(ok ? "ok" : "failed"));
	rbk_val_map_set(&d, "attempt", rbk_val_int(attempt));
	rbk_val_map_set(&d, "error", error ? rbk_val_str(error) : rbk_val_null());
	rbk_free(error);
	return emit(r, "undo_finished", d, err);
}

static int rollback(run *r, rbk_err *err)
{
	for (size_t i = r->rs.ndone; i-- > 0;) {
		if (r->rs.done[i].undone)
			continue;
		int si = rbk_model_state(r->rb, r->rs.done[i].state);
		if (si < 0 || !r->rb->states[si].has_undo)
			continue;
		const rbk_state *st = &r->rb->states[si];
		if (stop_signals)
			return set_status(r, "interrupted", "stopped by a signal during rollback", err) < 0 ? -1 : barrier(r, err);
		if (run_undo(r, st, rbk_rs_next_attempt(&r->rs, st->name), err) < 0)
			return -1;
		/* The undo just recorded: was it a failure? */
		if (!r->rs.done[i].undone) {
			rbk_buf rest = {0};
			for (size_t j = i; j-- > 0;) {
				int sj = rbk_model_state(r->rb, r->rs.done[j].state);
				if (!r->rs.done[j].undone && sj >= 0 && r->rb->states[sj].has_undo)
					rbk_buf_printf(&rest, "%s%s", rest.len ? ", " : "", r->rs.done[j].state);
			}
			char *why = rbk_xasprintf("undo of %s failed; undos not run: %s", st->name, rest.len ? rest.s : "none");
			rbk_buf_free(&rest);
			int rc = finish(r, "failed", why, err);
			rbk_free(why);
			return rc;
		}
	}
	const char *why = r->rs.rollback_error ? r->rs.rollback_error : "rolled back";
	char *copy = rbk_xstrdup(why);
	int rc = finish(r, "rolled_back", copy, err);
	rbk_free(copy);
	return rc;
}

/* An undo found in flight: marked undone only through undo_finished, so
 * an idempotent undo simply runs again; otherwise ask a person. */
static int undo_in_flight(run *r, rbk_err *err)
{
	int si = rbk_model_state(r->rb, r->rs.flight_state);
	const rbk_state *st = si >= 0 ? &r->rb->states[si] : NULL;
	if (st && idempotent(r, st, &st->undo))
		return run_undo(r, st, r->rs.flight_attempt, err);
	char *why = rbk_xasprintf("the undo of %s was interrupted and is not idempotent: decide with "
				  "rbk resume %lld --retry-step or --mark-step success|failure",
				  r->rs.flight_state, (long long)r->id);
	int rc = set_status(r, "needs_attention", why, err);
	rbk_free(why);
	return rc < 0 ? rc : barrier(r, err);
}

/* ---- the loop ---- */

static int step(run *r, rbk_err *err)
{
	if (r->rs.abort_requested && !r->rs.rolling_back) {
		if (r->rs.abort_rollback)
			return emit(r, "rollback_started", map2("from", rbk_val_str(r->rs.current ? r->rs.current : ""),
								   "error", rbk_val_str("aborted by an operator")),
				    err);
		return finish(r, "aborted", "aborted by an operator", err);
	}
	if (r->rs.flight == RBK_FLIGHT_UNDO)
		return undo_in_flight(r, err);
	if (r->rs.rolling_back)
		return rollback(r, err);
	int si = r->rs.current ? rbk_model_state(r->rb, r->rs.current) : -1;
	if (si < 0) {
		rbk_err_set(err, -1, "run %lld is in an unknown state '%s'", (long long)r->id,
			    r->rs.current ? r->rs.current : "(none)");
		return -1;
	}
	const rbk_state *st = &r->rb->states[si];
	if (r->rs.flight == RBK_FLIGHT_STEP && st->kind == RBK_S_ACTION) {
		/* Resumed with this step in flight. */
		if (!idempotent(r, st, &st->act)) {
			char *why = rbk_xasprintf("step %s (attempt %d) was interrupted and is not idempotent: decide with "
						  "rbk resume %lld --retry-step or --mark-step success|failure",
						  st->name, r->rs.flight_attempt, (long long)r->id);
			int rc = set_status(r, "needs_attention", why, err);
			rbk_free(why);
			return rc < 0 ? rc : barrier(r, err);
		}
		rbk_ui_note(r->ip->ui, r->id, "%s: running again (idempotent, same key)", st->name);
		if (run_action(r, st, r->rs.flight_attempt, err) < 0)
			return -1;
		return rbk_rs_terminal(&r->rs) || !strcmp(r->rs.status, "interrupted") ? 0 : after_attempt(r, st, err);
	}
	switch (st->kind) {
	case RBK_S_END: {
		char *why = st->end_success ? NULL : rbk_xasprintf("ended in %s", st->name);
		int rc = finish(r, st->end_success ? "succeeded" : "failed", why, err);
		rbk_free(why);
		return rc;
	}
	case RBK_S_DECISION: return succeed(r, st, err);
	case RBK_S_WAIT: return do_wait(r, st, err);
	case RBK_S_APPROVAL: return do_approval(r, st, err);
	case RBK_S_CALL: {
		int attempt = r->rs.flight == RBK_FLIGHT_STEP ? r->rs.flight_attempt : rbk_rs_next_attempt(&r->rs, st->name);
		if (r->rs.resume_at_ms && !sleep_until(r->rs.resume_at_ms))
			return 0;
		if (child_run(r, st, attempt, err) < 0)
			return -1;
		if (r->rs.flight == RBK_FLIGHT_STEP)
			return 0; /* the child stopped without ending: so does the parent */
		return after_attempt(r, st, err);
	}
	case RBK_S_ACTION:
		if (r->rs.resume_at_ms && !sleep_until(r->rs.resume_at_ms))
			return 0;
		if (run_action(r, st, rbk_rs_next_attempt(&r->rs, st->name), err) < 0)
			return -1;
		if (!strcmp(r->rs.status, "interrupted"))
			return 0;
		return after_attempt(r, st, err);
	}
	return 0;
}

static int sync_external(run *r, rbk_err *err);

static int drive(run *r, rbk_err *err)
{
	while (!rbk_rs_terminal(&r->rs)) {
		if (!strcmp(r->rs.status, "waiting") || !strcmp(r->rs.status, "needs_attention") ||
		    !strcmp(r->rs.status, "interrupted"))
			return barrier(r, err);
		if (stop_signals && !r->rs.abort_requested) {
			/* Signalled: was it `rbk abort`? Its event is in the store. */
			if (barrier(r, err) < 0 || sync_external(r, err) < 0)
				return -1;
			if (r->rs.abort_requested) {
				stop_signals = 0;
				continue;
			}
		}
		if (stop_signals && r->ip->agent) {
			/* The agent stops, not the run: it stays running, without
			 * a lease, for another agent of its queue to take on. */
			if (set_status(r, "running", "handed back: its agent stopped", err) < 0)
				return -1;
			rbk_ui_note(r->ip->ui, r->id, "handed back to its queue");
			return barrier(r, err);
		}
		if (stop_signals) {
			if (set_status(r, "interrupted", "stopped by a signal", err) < 0)
				return -1;
			rbk_ui_note(r->ip->ui, r->id, "interrupted; continue with: rbk resume %lld", (long long)r->id);
			return barrier(r, err);
		}
		if (step(r, err) < 0)
			return -1;
		/* Pure states (decisions, and whatever else needs no barrier of its
		 * own) are committed in batches of at most RBK_BATCH_MS: a long
		 * cycle of them is durable as it goes, and a stop request never
		 * waits for a large batch to be written. */
		if (r->ip->tx_open && wall_ms() - tx_began_ms >= RBK_BATCH_MS && barrier(r, err) < 0)
			return -1;
	}
	return barrier(r, err);
}

/* The runbook's vars: rendered once at the start and recorded. */
static int init_vars(run *r, rbk_err *err)
{
	if (!r->rb->nvars)
		return 0;
	rbk_eval_env env = env_of(r);
	rbk_val vars = rbk_val_map();
	for (size_t i = 0; i < r->rb->nvars; i++) {
		rbk_val v;
		rbk_err er = {0};
		rbk_pos where = {0, 0};
		if (rbk_render(r->rb->vars[i].lit, &env, &v, &where, &er) < 0) {
			char *why = rbk_xasprintf("%s:%d:%d: vars: %s", r->rb->doc->file, where.line, where.col, er.msg);
			rbk_val_free(&vars);
			int rc = finish(r, "failed", why, err);
			rbk_free(why);
			return rc;
		}
		rbk_val_map_set(&vars, r->rb->vars[i].name, v);
	}
	return emit(r, "vars_set", map2("state", rbk_val_null(), "vars", vars), err);
}

/* The first events of a run; also for a run found without them (killed
 * before its first barrier). */
static int start_run(run *r, rbk_err *err)
{
	if (emit(r, "run_started", map2("start", rbk_val_str(r->rb->start), "status", rbk_val_str("running")), err) < 0)
		return -1;
	return init_vars(r, err);
}

/* ---- runs: creating, loading, owning ---- */

/* After an error, what was not committed is dropped (entry points only:
 * a called run shares its caller's transaction). */
static void drop_uncommitted(rbk_interp *ip)
{
	ip->pending_run = 0;
	drop_batch(ip);
	if (ip->tx_open) {
		rbk_store_rollback(ip->store);
		ip->tx_open = false;
	}
	show_step_end(false);
}

static void run_free(run *r)
{
	if (r->lease.held) {
		if (cur_lease == &r->lease) {
			cur_lease = NULL;
			rbk_runner_set_tick(NULL, NULL);
		}
		rbk_lease_release(&r->lease);
	}
	rbk_owner_release(r->owner_fd);
	rbk_val_free(&r->notices);
	rbk_val_free(&r->ask);
	rbk_rs_free(&r->rs);
	rbk_val_free(&r->params);
	rbk_mask_free(&r->mask);
	rbk_model_free(r->own_rb);
	rbk_doc_free(r->own_doc);
	rbk_free(r->launcher);
	rbk_free(r->path);
}

/* The lease's holder is a process of this host that is gone. */
static bool lease_holder_dead(run *r)
{
	rbk_store_lease l = {0};
	rbk_err e = {0};
	bool dead = rbk_store_lease_get(r->ip->store, r->id, &l, &e) == 0 && l.owner && rbk_lease_owner_gone(l.owner);
	rbk_store_lease_free(&l);
	return dead;
}

static int take_owner(run *r, rbk_err *err)
{
	int64_t pid = 0;
	int rc = rbk_owner_take(r->ip->home, r->id, &r->owner_fd, &pid, err);
	if (rc == 1) {
		rbk_err_set(err, -1, "run %lld is being worked on by a live process (pid %lld)", (long long)r->id,
			    (long long)pid);
		err->code = RBK_EXIT_FAILED;
		return -1;
	}
	if (rc < 0)
		return -1;
	/* A top-level run is also held by a lease in the store, which fences
	 * every write (lease.h); a called run is its caller's. On SQLite the
	 * owner lock just taken proves any earlier holder dead. */
	if (r->parent == 0 && !r->lease.held) {
		bool force = !strcmp(rbk_store_kind(r->ip->store), "sqlite") || lease_holder_dead(r);
		rc = rbk_lease_claim(&r->lease, r->ip->store, r->id, r->ip->lease_ms, force, err);
		if (rc == 1) {
			/* Another executor has it: nothing of ours to resume. */
			err->code = RBK_EXIT_FAILED;
			rbk_owner_release(r->owner_fd);
			r->owner_fd = -1;
		}
		if (rc != 0)
			return -1;
	}
	if (r->lease.held && !cur_lease) {
		cur_lease = &r->lease;
		rbk_runner_set_tick(lease_tick, &r->lease);
	}
	/* Nothing a previous owner's attempt started still runs (procs.h). */
	if (rbk_procs_takeover(r->ip->home, r->id, r->ip->ui, err) < 0)
		return -1;
	return rbk_store_run_owner(r->ip->store, r->id, getpid(), err);
}

static char *lock_key(const rbk_runbook *rb, run *r, rbk_err *err)
{
	if (!rb->lock)
		return NULL;
	const rbk_node *n = rbk_node_get(rb->doc->root, "lock");
	rbk_eval_env env = env_of(r);
	rbk_val v;
	if (rbk_render(n, &env, &v, NULL, err) < 0)
		return NULL;
	char *s = rbk_val_to_text(&v);
	if (rbk_val_has_secret(&v)) {
		/* Runs that compute the same secret still exclude each other, and
		 * the store and messages see only its digest. */
		char hex[65];
		rbk_hash_sha256_hex(s, strlen(s), hex);
		rbk_free(s);
		s = rbk_xasprintf("***sha256:%.16s", hex);
	}
	rbk_val_free(&v);
	return s;
}

/* Create the run (atomically with the lock check) and take ownership. */
static int create(run *r, const rbk_interp_launch *l, int64_t parent, const char *parent_state, rbk_err *err)
{
	rbk_val pub = rbk_params_public(r->rb, &r->params);
	char *pjson = rbk_json_encode(&pub);
	rbk_val_free(&pub);
	rbk_val prov = rbk_val_map();
	if (l->path) {
		rbk_val_map_set(&prov, "path", rbk_val_str(l->path));
		rbk_prov_git(l->path, r->ip->home, &prov);
	}
	if (l->fire_id) {
		rbk_val fire = map2("fire", rbk_val_int(l->fire_id), "nominal",
				    l->fire_nominal ? rbk_val_str(l->fire_nominal) : rbk_val_null());
		rbk_val_map_set(&prov, "schedule", fire);
	}
	char *provjson = rbk_json_encode(&prov);
	rbk_val_free(&prov);
	rbk_err kerr = {0};
	char *key = parent || l->dry_run ? NULL : lock_key(r->rb, r, &kerr);
	int rc = 0;
	if (parent) {
		/* A called run is created in its caller's open transaction, which
		 * commits it together with the caller's call_started: never an
		 * orphan. Called runs take no lock. */
		rbk_store_run_spec spec = {r->rb->name, r->ip->actor, l->dry_run, pjson, r->rb->doc->bytes,
					   r->rb->doc->size, provjson, parent, parent_state, NULL};
		rc = begin(r, err);
		if (rc == 0)
			rc = flush_batch(r->ip, err); /* the caller's story comes first in the chain */
		if (rc == 0)
			rc = rbk_store_run_create(r->ip->store, &spec, &r->id, err);
		rbk_free(pjson);
		rbk_free(provjson);
		rbk_free(key);
		return rc < 0 ? -1 : take_owner(r, err);
	}
	if (kerr.msg[0]) {
		rbk_err_set(err, -1, "lock: %s", kerr.msg);
		err->code = RBK_EXIT_BADINPUT;
		rc = -1;
	}
	for (bool told = false; rc == 0;) {
		int64_t holder = 0;
		if ((rc = rbk_store_begin(r->ip->store, err)) < 0)
			break;
		if (key && (rc = rbk_store_lock_holder(r->ip->store, key, 0, &holder, err)) < 0)
			break;
		if (!holder) {
			rbk_store_run_spec spec = {r->rb->name, r->ip->actor, l->dry_run, pjson, r->rb->doc->bytes,
						   r->rb->doc->size, provjson, parent, parent_state, key};
			rc = rbk_store_run_create(r->ip->store, &spec, &r->id, err);
			/* Its queue, and its lease when this process executes it, come
			 * with it: no agent ever sees it unowned. */
			if (rc == 0 && r->ip->queue)
				rc = rbk_store_run_queue(r->ip->store, r->id, r->ip->queue, r->ip->enqueue, err);
			if (rc == 0 && !r->ip->enqueue) {
				rc = rbk_lease_claim(&r->lease, r->ip->store, r->id, r->ip->lease_ms, true, err);
				rc = rc == 0 ? 0 : -1;
			}
			/* The fire and its run are recorded together, or not at all. */
			if (rc == 0 && l->fire_id)
				rc = rbk_store_fire_set(r->ip->store, l->fire_id, "fired", r->id, NULL, err);
			if (rc == 0)
				rc = rbk_store_commit(r->ip->store, err);
			else
				rbk_store_rollback(r->ip->store);
			break;
		}
		rbk_store_rollback(r->ip->store);
		if (!l->wait_lock) {
			rbk_err_set(err, -1, "lock '%s' is held by run %lld; try again later or use --wait-lock", key,
				    (long long)holder);
			err->code = RBK_EXIT_FAILED;
			rc = -1;
			break;
		}
		if (!told)
			rbk_ui_note(r->ip->ui, 0, "waiting for lock '%s' (held by run %lld)", key, (long long)holder);
		told = true;
		if (!sleep_until(wall_ms() + 500)) {
			rbk_err_set(err, -1, "stopped while waiting for lock '%s'", key);
			err->code = RBK_EXIT_INTERRUPTED;
			rc = -1;
		}
	}
	rbk_free(pjson);
	rbk_free(provjson);
	rbk_free(key);
	if (rc < 0) {
		if (r->lease.held) /* claimed in a transaction that did not commit */
			rbk_lease_release(&r->lease);
		return -1;
	}
	return r->ip->enqueue ? 0 : take_owner(r, err);
}

int rbk_interp_run(rbk_interp *ip, const rbk_interp_launch *l, int64_t *run_id, const char **status, rbk_err *err)
{
	run r;
	memset(&r, 0, sizeof r);
	r.ip = ip;
	r.rb = l->rb;
	r.owner_fd = -1;
	r.dry_run = l->dry_run;
	r.launcher = rbk_xstrdup(ip->actor);
	r.path = l->path ? rbk_xstrdup(l->path) : NULL;
	rbk_rs_init(&r.rs);
	*run_id = 0;
	int rc = rbk_params_bind(l->rb, l->args, l->nargs, l->preset, &r.params, &r.mask, err);
	if (rc < 0) {
		err->code = RBK_EXIT_BADINPUT;
		r.params = rbk_val_null();
	}
	if (rc == 0)
		rc = create(&r, l, 0, NULL, err);
	if (rc == 0 && ip->enqueue) {
		/* Queued: an agent serving the queue executes it. */
		*run_id = r.id;
		*status = "queued";
		run_free(&r);
		return 0;
	}
	if (rc == 0) {
		*run_id = r.id;
		rbk_ui_run_start(ip->ui, r.id, l->rb->name, l->dry_run);
		rc = start_run(&r, err);
	}
	if (rc == 0)
		rc = drive(&r, err);
	if (rc < 0) {
		drop_uncommitted(ip);
		/* A run that exists was interrupted by the error (the store, memory),
		 * not failed: what was committed stands, and it resumes from there. */
		if (*run_id && err->code != RBK_EXIT_BADINPUT) {
			size_t l = strlen(err->msg);
			snprintf(err->msg + l, sizeof err->msg - l, "; run %lld is resumable: rbk resume %lld", (long long)*run_id,
				 (long long)*run_id);
			err->code = RBK_EXIT_INTERRUPTED;
		}
	}
	*status = rc == 0 ? r.rs.status : "failed";
	static char final[24];
	snprintf(final, sizeof final, "%s", *status);
	*status = final;
	run_free(&r);
	return rc;
}

/* ---- loading an existing run ---- */

typedef struct {
	run *r;
	rbk_err *err;
	int bad;
	int64_t skip_to; /* events up to this seq are already applied */
} fold_ctx;


/* A var computed from a secret was recorded as "***": compute it again,
 * as the run did, from the state of the fold at that event (now() is the
 * event's time). What cannot be derived again (its expression fails, or
 * read a step's output, recorded masked) stays "***", and the operator is
 * told. */
static void rederive_vars(run *r, rbk_val *data, int64_t at_ms)
{
	const rbk_val *names = rbk_val_map_get(data, "secret");
	rbk_val *vars = (rbk_val *)rbk_val_map_get(data, "vars");
	if (!names || names->t != RBK_V_LIST || !vars || vars->t != RBK_V_MAP)
		return;
	const char *sname = str_in(data, "state");
	int si = sname ? rbk_model_state(r->rb, sname) : -1;
	rbk_scope sc;
	scope_of(r, &sc);
	sc.now_s = at_ms / 1000;
	rbk_eval_env env = rbk_scope_env(&sc);
	for (size_t i = 0; i < names->u.list.n; i++) {
		const rbk_val *nv = &names->u.list.items[i];
		if (nv->t != RBK_V_STR)
			continue;
		const char *name = nv->u.s.s;
		rbk_val v = rbk_val_null();
		rbk_err er = {0};
		int rc = -1;
		if (si < 0) {
			for (size_t k = 0; k < r->rb->nvars; k++)
				if (!strcmp(r->rb->vars[k].name, name))
					rc = rbk_render(r->rb->vars[k].lit, &env, &v, NULL, &er);
		} else {
			const rbk_state *st = &r->rb->states[si];
			for (size_t k = 0; k < st->nset; k++) {
				const rbk_assign *a = &st->set[k];
				if (strcmp(a->name, name))
					continue;
				rc = a->lit ? rbk_render(a->lit, NULL, &v, NULL, &er) : rbk_eval(a->value.expr, &env, &v, &er);
			}
		}
		if (rc == 0 && rbk_val_has_secret(&v)) {
			rbk_mask_add_val(&r->mask, &v);
			rbk_val_map_set(vars, name, v);
			continue;
		}
		rbk_val_free(&v);
		rbk_val lost = rbk_val_str("***");
		rbk_val_mark_secret(&lost);
		rbk_val_map_set(vars, name, lost);
		rbk_ui_note(r->ip->ui, r->id, "vars.%s was computed from a secret and cannot be computed again on resume; it "
			    "holds ***", name);
	}
}

static int fold_event(void *ctx, const rbk_store_event *ev)
{
	fold_ctx *f = ctx;
	if (ev->seq <= f->skip_to)
		return 0;
	f->r->last_seq = ev->seq;
	rbk_val data = rbk_val_null();
	rbk_err e = {0};
	if (rbk_json_parse(&data, ev->data, strlen(ev->data), &e) < 0) {
		rbk_err_set(f->err, -1, "event %lld of run %lld is not JSON: %s", (long long)ev->seq, (long long)ev->run_id,
			    e.msg);
		f->bad = 1;
		return 1;
	}
	if (!strcmp(ev->kind, "vars_set"))
		rederive_vars(f->r, &data, rbk_store_time_ms(ev->at));
	rbk_rs_apply(&f->r->rs, ev->kind, &data, rbk_store_time_ms(ev->at));
	if (!strcmp(ev->kind, "notified"))
		note_told(f->r, &data);
	else
		note_status(f->r, ev->kind, &data, ev->seq, true);
	rbk_val_free(&data);
	return 0;
}

/* Apply the events of r that another process appended (rbk abort). */
static int sync_external(run *r, rbk_err *err)
{
	fold_ctx f = {r, err, 0, r->last_seq};
	int rc = rbk_store_timeline_after(r->ip->store, r->id, r->last_seq, fold_event, &f, err);
	return rc < 0 || f.bad ? -1 : 0;
}

static int load_run(rbk_interp *ip, int64_t id, run *r, const rbk_param_arg *args, size_t nargs, rbk_err *err);

/* A called run's params that came from a secret were recorded as "***":
 * render its caller's with: again, in the caller's state as the store has
 * it, and take the secret ones from there. */
static void call_params_again(rbk_interp *ip, const rbk_store_run *info, rbk_val *preset)
{
	run p;
	rbk_err er = {0};
	rbk_val with = rbk_val_null();
	if (load_run(ip, info->parent_run, &p, NULL, 0, &er) == 0) {
		int si = rbk_model_state(p.rb, info->parent_state);
		const rbk_call_spec *cs = si >= 0 ? &p.rb->states[si].act : NULL;
		rbk_eval_env env = env_of(&p);
		if (cs && cs->with && rbk_render(cs->with, &env, &with, NULL, &er) < 0)
			with = rbk_val_null();
	}
	for (size_t i = 0; with.t == RBK_V_MAP && i < with.u.map.n; i++)
		if (rbk_val_has_secret(&with.u.map.vals[i]))
			rbk_val_map_set(preset, with.u.map.keys[i], rbk_val_copy(&with.u.map.vals[i]));
	rbk_val_free(&with);
	run_free(&p);
}

/* Load run id: its pinned definition, params (secrets read again from their
 * source), and the fold of its events. */
static int load_run(rbk_interp *ip, int64_t id, run *r, const rbk_param_arg *args, size_t nargs, rbk_err *err)
{
	memset(r, 0, sizeof *r);
	r->ip = ip;
	r->id = id;
	r->owner_fd = -1;
	r->params = rbk_val_null();
	rbk_rs_init(&r->rs);
	rbk_store_run info;
	if (rbk_store_run_get(ip->store, id, &info, err) < 0) {
		err->code = RBK_EXIT_BADINPUT;
		return -1;
	}
	r->dry_run = info.dry_run;
	r->launcher = rbk_xstrdup(info.actor);
	r->parent = info.parent_run;
	rbk_val prov = rbk_val_null();
	if (info.provenance_json && rbk_json_parse(&prov, info.provenance_json, strlen(info.provenance_json), NULL) == 0) {
		const char *path = str_in(&prov, "path");
		r->path = path ? rbk_xstrdup(path) : NULL; /* where its calls look for runbooks */
		rbk_val_free(&prov);
	}
	char *bytes = NULL;
	size_t len = 0;
	int rc = rbk_store_source(ip->store, info.source_sha256, &bytes, &len, err);
	rbk_diag d = {0};
	if (rc == 0) {
		char *name = rbk_xasprintf("run %lld: %s.yaml (pinned)", (long long)id, info.runbook);
		if (rbk_load_bytes(&r->own_doc, name, bytes, len, &d) < 0 ||
		    rbk_model_build(&r->own_rb, r->own_doc, &d) < 0) {
			rbk_err_set(err, -1, "the pinned definition of run %lld no longer loads: %s", (long long)id,
				    d.n ? d.items[0].msg : "?");
			rc = -1;
		}
		rbk_free(name);
	}
	rbk_diag_free(&d);
	rbk_free(bytes);
	r->rb = r->own_rb;
	if (rc == 0) {
		rbk_val stored = rbk_val_null();
		rbk_err e = {0};
		if (rbk_json_parse(&stored, info.params_json, strlen(info.params_json), &e) < 0)
			stored = rbk_val_map();
		/* Secrets were never stored: drop their "***" so they are read
		 * again from -p or their environment variable. */
		rbk_val preset = rbk_val_map();
		for (size_t i = 0; stored.t == RBK_V_MAP && i < stored.u.map.n; i++) {
			const rbk_param *p = rbk_model_param(r->rb, stored.u.map.keys[i]);
			if (p && !p->secret && stored.u.map.vals[i].t != RBK_V_NULL)
				rbk_val_map_set(&preset, stored.u.map.keys[i], rbk_val_copy(&stored.u.map.vals[i]));
		}
		rbk_val_free(&stored);
		if (info.parent_run && info.parent_state)
			call_params_again(ip, &info, &preset);
		rc = rbk_params_bind(r->rb, args, nargs, &preset, &r->params, &r->mask, err);
		rbk_val_free(&preset);
		if (rc < 0)
			r->params = rbk_val_null();
	}
	if (rc == 0) {
		fold_ctx f = {r, err, 0, 0};
		rc = rbk_store_timeline(ip->store, id, fold_event, &f, err);
		if (rc == 0 && f.bad)
			rc = -1;
	}
	rbk_store_run_free(&info);
	return rc;
}

/* Where a call's runbook is looked for: the caller's directory, then
 * $RBK_PATH (default ./runbooks). */
static char *call_path(const char *file)
{
	const char *env = getenv("RBK_PATH");
	const char *path = env && *env ? env : "./runbooks";
	const char *slash = file ? strrchr(file, '/') : NULL;
	if (!slash)
		return rbk_xasprintf(".:%s", path);
	return rbk_xasprintf("%.*s:%s", (int)(slash - file), file, path);
}

static int child_run(run *parent, const rbk_state *st, int attempt, rbk_err *err)
{
	rbk_interp *ip = parent->ip;
	run c;
	int rc = 0;
	char key[160];
	snprintf(key, sizeof key, "%lld:%s:%d", (long long)parent->id, st->name, attempt);
	if (parent->rs.child_run) {
		/* Resumed: continue the child that was started (from its start, if
		 * its first events never became durable). */
		if ((rc = load_run(ip, parent->rs.child_run, &c, NULL, 0, err)) == 0)
			rc = take_owner(&c, err);
		if (rc == 0 && !c.rs.current)
			rc = start_run(&c, err);
	} else {
		rbk_eval_env env = env_of(parent);
		rbk_val with = rbk_val_map();
		rbk_pos where = st->act.pos;
		rbk_err er = {0};
		char *why = NULL;
		if (st->act.with && rbk_render(st->act.with, &env, &with, &where, &er) < 0)
			why = rbk_xasprintf("%s:%d:%d: %s", parent->rb->doc->file, where.line, where.col, er.msg);
		rbk_mask_add_val(&parent->mask, &with);
		char *sp = call_path(parent->path);
		char *file = why ? NULL : rbk_check_find_runbook(sp, st->act.action);
		rbk_free(sp);
		rbk_doc *doc = NULL;
		rbk_runbook *rb = NULL;
		rbk_diag d = {0};
		if (!why && !file)
			why = rbk_xasprintf("call: no runbook named '%s' on the path", st->act.action);
		if (!why && (rbk_load_file(&doc, file, &d) < 0 || rbk_model_build(&rb, doc, &d) < 0))
			why = rbk_xasprintf("call: %s does not load: %s", file, d.n ? d.items[0].msg : "?");
		rbk_diag_free(&d);
		memset(&c, 0, sizeof c);
		c.ip = ip;
		c.owner_fd = -1;
		c.dry_run = parent->dry_run;
		c.launcher = rbk_xstrdup(parent->launcher);
		c.path = file;
		c.own_doc = doc;
		c.own_rb = rb;
		c.rb = rb;
		c.params = rbk_val_null();
		rbk_rs_init(&c.rs);
		if (!why && rbk_params_bind(rb, NULL, 0, &with, &c.params, &c.mask, &er) < 0) {
			why = rbk_xasprintf("call %s: %s", st->act.action, er.msg);
			c.params = rbk_val_null();
		}
		rbk_val_free(&with);
		/* The parent's secrets stay secret in the child's record too. */
		for (size_t i = 0; i < parent->mask.n; i++)
			rbk_mask_add(&c.mask, parent->mask.secrets[i]);
		rbk_val d0 = map2("state", rbk_val_str(st->name), "attempt", rbk_val_int(attempt));
		rbk_val_map_set(&d0, "key", rbk_val_str(key));
		rbk_val_map_set(&d0, "action", rbk_val_str(st->act.action));
		if (why) {
			char *masked = rbk_mask_apply(&parent->mask, why, strlen(why), NULL);
			rbk_free(why);
			why = masked;
			rbk_val_free(&d0);
			rbk_val fin = map2("state", rbk_val_str(st->name), "attempt", rbk_val_int(attempt));
			rbk_val_map_set(&fin, "status", rbk_val_str("failed"));
			rbk_val_map_set(&fin, "result", step_result(parent, false, NULL, why, 0));
			rbk_ui_step_end(ip->ui, parent->id, st->name, false, 0, why);
			rbk_free(why);
			run_free(&c);
			return emit(parent, "step_finished", fin, err);
		}
		if (emit(parent, "step_started", d0, err) < 0 || barrier(parent, err) < 0) {
			run_free(&c);
			return -1;
		}
		rbk_ui_step_start(ip->ui, parent->id, st->name, st->act.action, attempt);
		rbk_interp_launch l = {c.path, rb->doc, rb, NULL, 0, NULL, parent->dry_run, false, 0, NULL};
		rc = create(&c, &l, parent->id, st->name, err);
		if (rc == 0)
			rc = emit(parent, "call_started", map2("state", rbk_val_str(st->name), "child", rbk_val_int(c.id)), err);
		if (rc == 0)
			rc = barrier(parent, err);
		if (rc == 0)
			rc = start_run(&c, err);
	}
	int64_t began = wall_ms();
	if (rc == 0) {
		ip->ui->depth++;
		c.depth = parent->depth + 1;
		rc = drive(&c, err);
		ip->ui->depth--;
	}
	int64_t took = wall_ms() - began;
	if (rc < 0) {
		run_free(&c);
		return -1;
	}
	int64_t cid = c.id;
	char cstatus[24];
	snprintf(cstatus, sizeof cstatus, "%s", c.rs.status);
	rbk_val child_vars = rbk_val_copy(&c.rs.vars); /* what the called run computed */
	run_free(&c);
	if (!rbk_rs_status_terminal(cstatus)) {
		rbk_val_free(&child_vars);
		/* The child waits or was interrupted: the parent stops with it. */
		if (set_status(parent, cstatus, "a called run has not ended", err) < 0)
			return -1;
		return barrier(parent, err);
	}
	bool ok = !strcmp(cstatus, "succeeded");
	rbk_val outs = map2("run", rbk_val_int(cid), "status", rbk_val_str(cstatus));
	rbk_val_map_set(&outs, "vars", child_vars);
	char *why = ok ? NULL : rbk_xasprintf("called run %lld (%s) ended %s", (long long)cid, st->act.action, cstatus);
	step_end_after_barrier(ip->ui, parent->id, st->name, ok, took, why);
	rbk_val fin = map2("state", rbk_val_str(st->name), "attempt", rbk_val_int(attempt));
	rbk_val_map_set(&fin, "status", rbk_val_str(ok ? "ok" : "failed"));
	rbk_val_map_set(&fin, "result", step_result(parent, ok, &outs, why, took));
	rbk_val_free(&outs);
	rbk_free(why);
	return emit(parent, "step_finished", fin, err);
}

static bool may_approve(const run *r, const rbk_state *st, const char *actor, rbk_err *err)
{
	if (st->approval.napprovers) {
		bool listed = false;
		for (size_t i = 0; i < st->approval.napprovers; i++)
			listed |= rbk_principal_matches(st->approval.approvers[i], actor);
		if (!listed) {
			rbk_err_set(err, -1, "%s may not answer this approval (approvers: see rbk show %lld)", actor,
				    (long long)r->id);
			return false;
		}
	}
	char launcher[256]; /* distinct: the launcher's user, on any host */
	if (st->approval.distinct && r->launcher &&
	    rbk_principal_matches(rbk_principal_user(r->launcher, launcher, sizeof launcher), actor)) {
		rbk_err_set(err, -1, "%s launched run %lld; this approval needs someone else", actor, (long long)r->id);
		return false;
	}
	return true;
}

int rbk_interp_resume(rbk_interp *ip, int64_t run_id, rbk_resume_mode mode, const char *comment,
		      const rbk_param_arg *args, size_t nargs, const char **status, rbk_err *err)
{
	static char final[24];
	*status = "failed";
	run r;
	int rc = load_run(ip, run_id, &r, args, nargs, err);
	if (rc == 0 && r.rs.status[0] && rbk_rs_terminal(&r.rs)) {
		rbk_err_set(err, -1, "run %lld has ended (%s); nothing to do", (long long)run_id, r.rs.status);
		err->code = RBK_EXIT_BADINPUT;
		rc = -1;
	}
	bool fresh = rc == 0 && r.rs.current == NULL; /* killed before its first barrier */
	if (rc == 0 && !fresh && rbk_model_state(r.rb, r.rs.current) < 0) {
		rbk_err_set(err, -1, "run %lld is in state '%s', which its definition lacks", (long long)run_id, r.rs.current);
		rc = -1;
	}
	if (rc == 0 && (mode == RBK_RESUME_ABORT || mode == RBK_RESUME_ABORT_ROLLBACK)) {
		/* An abort is recorded even when a live process owns the run: the
		 * owner sees it at its next safe point (it is signalled). */
		int64_t pid = 0;
		int owned = rbk_owner_probe(ip->home, run_id, &pid, err);
		rc = emit(&r, "abort_requested",
			  map2("by", rbk_val_str(ip->actor), "rollback", rbk_val_bool(mode == RBK_RESUME_ABORT_ROLLBACK)), err);
		if (rc == 0)
			rc = barrier(&r, err);
		if (rc == 0 && owned == 1) {
			kill((pid_t)pid, SIGTERM);
			rbk_ui_note(ip->ui, run_id, "abort recorded; run %lld (pid %lld) stops at its next safe point",
				    (long long)run_id, (long long)pid);
			snprintf(final, sizeof final, "%s", r.rs.status);
			*status = final;
			run_free(&r);
			return 0;
		}
	}
	if (rc == 0)
		rc = take_owner(&r, err);
	/* What another executor recorded before our claim (it may have run the
	 * run to its end meanwhile): read after the claim, acted on from here. */
	if (rc == 0 && (rc = sync_external(&r, err)) == 0 && rbk_rs_terminal(&r.rs)) {
		rbk_err_set(err, -1, "run %lld has ended (%s); nothing to do", (long long)run_id, r.rs.status);
		err->code = RBK_EXIT_BADINPUT;
		rc = -1;
	}
	fresh = rc == 0 && r.rs.current == NULL;
	if (rc == 0 && fresh)
		rc = start_run(&r, err);
	const rbk_state *st = rc == 0 ? &r.rb->states[rbk_model_state(r.rb, r.rs.current)] : NULL;
	if (rc == 0 && (mode == RBK_RESUME_APPROVE || mode == RBK_RESUME_REJECT)) {
		if (st->kind != RBK_S_APPROVAL || !r.rs.approval_pending) {
			rbk_err_set(err, -1, "run %lld is not waiting for an approval (it is %s in %s)", (long long)run_id,
				    r.rs.status, r.rs.current);
			err->code = RBK_EXIT_BADINPUT;
			rc = -1;
		} else if (!may_approve(&r, st, ip->actor, err)) {
			err->code = RBK_EXIT_BADINPUT;
			rc = -1;
		} else {
			/* An answer after the deadline is too late, whatever it says. */
			bool late = r.rs.approval_deadline_ms >= 0 && rbk_store_now_ms(ip->store) > r.rs.approval_deadline_ms;
			if (late)
				rbk_ui_note(ip->ui, run_id, "%s: the approval had timed out; its failure edge follows", st->name);
			rbk_val d = map2("state", rbk_val_str(st->name), "decision",
					 rbk_val_str(late ? "timed_out" : mode == RBK_RESUME_APPROVE ? "approved" : "rejected"));
			rbk_val_map_set(&d, "by", rbk_val_str(ip->actor));
			rbk_val_map_set(&d, "comment", comment ? rbk_val_str(comment) : rbk_val_null());
			rc = emit(&r, "approval_decided", d, err);
		}
	}
	if (rc == 0 && (mode == RBK_RESUME_RETRY_STEP || mode == RBK_RESUME_MARK_SUCCESS ||
			mode == RBK_RESUME_MARK_FAILURE)) {
		if (r.rs.flight == RBK_FLIGHT_NONE) {
			rbk_err_set(err, -1, "run %lld has no interrupted step to decide on", (long long)run_id);
			err->code = RBK_EXIT_BADINPUT;
			rc = -1;
		} else {
			const char *dec = mode == RBK_RESUME_RETRY_STEP ? "retry" : mode == RBK_RESUME_MARK_SUCCESS ? "success" : "failure";
			rbk_val d = map2("state", rbk_val_str(r.rs.flight_state), "decision", rbk_val_str(dec));
			rbk_val_map_set(&d, "by", rbk_val_str(ip->actor));
			rbk_val_map_set(&d, "attempt", rbk_val_int(r.rs.flight_attempt));
			bool undo = r.rs.flight == RBK_FLIGHT_UNDO;
			char *fstate = rbk_xstrdup(r.rs.flight_state);
			int fattempt = r.rs.flight_attempt;
			rc = emit(&r, "operator_decided", d, err);
			if (rc == 0 && mode != RBK_RESUME_RETRY_STEP) {
				bool ok = mode == RBK_RESUME_MARK_SUCCESS;
				char *why = ok ? NULL : rbk_xasprintf("marked failed by %s", ip->actor);
				if (undo) {
					rbk_val u = map2("state", rbk_val_str(fstate), "status", rbk_val_str(ok ? "ok" : "failed"));
					rbk_val_map_set(&u, "attempt", rbk_val_int(fattempt));
					rbk_val_map_set(&u, "error", why ? rbk_val_str(why) : rbk_val_null());
					rc = emit(&r, "undo_finished", u, err);
				} else {
					rbk_val fin = map2("state", rbk_val_str(fstate), "attempt", rbk_val_int(fattempt));
					rbk_val_map_set(&fin, "status", rbk_val_str(ok ? "ok" : "failed"));
					rbk_val res = step_result(&r, ok, NULL, why, 0);
					rbk_val_map_set(&res, "marked_by", rbk_val_str(ip->actor));
					rbk_val_map_set(&fin, "result", res);
					rc = emit(&r, "step_finished", fin, err);
					if (rc == 0 && !r.rs.rolling_back) {
						/* Marked failed: no retries, the failure edge. */
						rc = ok ? succeed(&r, st, err) : fail_edge(&r, st, why, err);
					}
				}
				rbk_free(why);
			}
			rbk_free(fstate);
		}
	}
	/* A call in flight: the attention, if any, is its child's, and driving
	 * the parent drives the child. */
	bool call_in_flight = rc == 0 && r.rs.flight == RBK_FLIGHT_STEP && st && st->kind == RBK_S_CALL;
	if (rc == 0 && r.rs.flight != RBK_FLIGHT_NONE && !call_in_flight && !strcmp(r.rs.status, "needs_attention") &&
	    mode != RBK_RESUME_RETRY_STEP && mode != RBK_RESUME_ABORT && mode != RBK_RESUME_ABORT_ROLLBACK) {
		rbk_err_set(err, -1, "run %lld needs attention: %s", (long long)run_id,
			    r.rs.last_reason ? r.rs.last_reason : "decide on its interrupted step");
		err->code = RBK_EXIT_WAITING;
		rc = -1;
	}
	/* A step marked failed with no failure edge ends the run there: nothing
	 * is left to resume. */
	bool ended = rc == 0 && rbk_rs_terminal(&r.rs);
	if (rc == 0 && !ended && ip->enqueue) {
		/* The run's queue is served elsewhere: what was decided here is
		 * committed, and an agent of that queue goes on with it. A run
		 * stopped on purpose becomes running again, which agents take
		 * (a run left interrupted is one no agent touches). */
		if (!strcmp(r.rs.status, "interrupted") || !strcmp(r.rs.status, "needs_attention"))
			rc = emit(&r, "run_status", map2("status", rbk_val_str("running"), "reason", rbk_val_str("resumed")),
				  err);
		if (rc == 0)
			rc = barrier(&r, err);
		snprintf(final, sizeof final, "%s", rc == 0 ? r.rs.status : "failed");
		*status = final;
		run_free(&r);
		rbk_err ne = {0};
		rbk_store_notify(ip->store, &ne);
		return rc;
	}
	if (rc == 0 && !ended) {
		rbk_val d = map2("status", rbk_val_str("running"), "reason", rbk_val_str("resumed"));
		/* Which process took it on: after a takeover, the auditor sees
		 * the executor change (host/pid/start). */
		if (r.lease.held)
			rbk_val_map_set(&d, "executor", rbk_val_str(r.lease.owner));
		rc = emit(&r, "run_status", d, err);
		rbk_ui_note(ip->ui, run_id, "resumed by %s in %s", ip->actor, r.rs.current);
	}
	if (rc == 0 && !ended)
		rc = drive(&r, err);
	if (rc < 0) {
		drop_uncommitted(ip);
		if (r.id && r.owner_fd >= 0 && err->code != RBK_EXIT_BADINPUT && err->code != RBK_EXIT_WAITING) {
			size_t l = strlen(err->msg);
			snprintf(err->msg + l, sizeof err->msg - l, "; run %lld is resumable: rbk resume %lld", (long long)run_id,
				 (long long)run_id);
			err->code = RBK_EXIT_INTERRUPTED;
		}
	}
	int64_t parent = rc == 0 && rbk_rs_terminal(&r.rs) ? r.parent : 0;
	snprintf(final, sizeof final, "%s", rc == 0 ? r.rs.status : "failed");
	*status = final;
	run_free(&r);
	if (parent) {
		/* A called run that ended here (approved, resumed): its caller goes on. */
		rbk_ui_note(ip->ui, parent, "continuing run %lld, which called run %lld", (long long)parent,
			    (long long)run_id);
		return rbk_interp_resume(ip, parent, RBK_RESUME_PLAIN, NULL, args, nargs, status, err);
	}
	return rc;
}
