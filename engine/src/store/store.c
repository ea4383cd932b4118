/* store: the one door to the durable record; picks the backend a store URL
 * names and passes each call on (store.h). */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/dirlist.h"
#include "base/mem.h"
#include "base/module.h"
#include "lang/json.h"
#include "store/pg.h"
#include "store/sqlite.h"

struct rbk_store {
	rbk_sqlite *lite; /* exactly one of the two */
	rbk_pgstore *pg;
};

/* The PostgreSQL backend is a module (base/module.h), loaded by the first
 * PostgreSQL URL: an SQLite store never loads libpq. Each PG(f) comes
 * after a successful open, so the module is there; were it not, nothing
 * sensible could go on. */
#define PG_MODULE "store-pg"
#define PG_WHAT "the PostgreSQL store"
static void *pg_fn(const char *symbol)
{
	rbk_err e = {0};
	void *f = rbk_module_sym(PG_MODULE, PG_WHAT, symbol, &e);
	if (!f) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		abort();
	}
	return f;
}
#define PG(f) ((__typeof__(&rbk_pgstore_##f))pg_fn("rbk_pgstore_" #f))

static int is_pg_url(const char *url)
{
	return !strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11) ||
	       !strncmp(url, "postgresql:", 11);
}

int rbk_store_open(rbk_store **out, const char *home, rbk_err *err)
{
	return rbk_store_open_url(out, NULL, home, err);
}

int rbk_store_open_url(rbk_store **out, const char *url, const char *home, rbk_err *err)
{
	*out = NULL;
	rbk_store *s = rbk_xcalloc(1, sizeof *s);
	int rc;
	if (!url || !*url) {
		rc = rbk_sqlite_open(&s->lite, home, err);
	} else if (!strncmp(url, "sqlite:", 7)) {
		rc = rbk_sqlite_open_file(&s->lite, url + 7, err);
	} else if (is_pg_url(url)) {
		/* The state directory still holds this host's files (owners). */
		rc = home && *home ? rbk_mkdir_p(home, err) : 0;
		void *open = rc == 0 ? rbk_module_sym(PG_MODULE, PG_WHAT, "rbk_pgstore_open", err) : NULL;
		if (!open && rc == 0) {
			err->code = RBK_ERR_STORE;
			rc = -1;
		} else if (rc == 0) {
			rc = ((__typeof__(&rbk_pgstore_open))open)(&s->pg, url, err);
		}
	} else {
		/* Never echo the whole text: it may hold a password. */
		const char *colon = strchr(url, ':');
		rbk_err_set(err, -1, "store '%.*s...': unknown kind of store (use sqlite:PATH or postgresql://...)",
			    colon ? (int)(colon - url) : 0, url);
		err->code = RBK_ERR_STORE;
		rc = -1;
	}
	if (rc < 0) {
		rbk_free(s);
		return -1;
	}
	*out = s;
	return 0;
}

void rbk_store_close(rbk_store *s)
{
	if (!s)
		return;
	if (s->pg)
		PG(close)(s->pg);
	else
		rbk_sqlite_close(s->lite);
	rbk_free(s);
}

const char *rbk_store_path(const rbk_store *s) { return s->pg ? PG(path)(s->pg) : rbk_sqlite_path(s->lite); }

const char *rbk_store_kind(const rbk_store *s) { return s->pg ? "postgresql" : "sqlite"; }

int rbk_store_schema_latest(void) { return rbk_sqlite_schema_latest(); }

const char *rbk_store_migration_sql(int version) { return rbk_sqlite_migration_sql(version); }

void rbk_store_run_free(rbk_store_run *r)
{
	if (!r)
		return;
	char **fields[] = {&r->runbook,	      &r->status,	 &r->actor,
			   &r->created_at,    &r->updated_at,	 &r->parent_state,
			   &r->params_json,   &r->source_sha256, &r->provenance_json,
			   &r->current_state, &r->lock_key};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		rbk_free(*fields[i]);
		*fields[i] = NULL;
	}
}

/* ---- every other call: to the backend ---- */

int rbk_store_info_get(rbk_store *s, rbk_store_info *out, rbk_err *err)
{
	return s->pg ? PG(info_get)(s->pg, out, err) : rbk_sqlite_info_get(s->lite, out, err);
}

int rbk_store_begin(rbk_store *s, rbk_err *err)
{
	return s->pg ? PG(begin)(s->pg, err) : rbk_sqlite_begin(s->lite, err);
}

int rbk_store_commit(rbk_store *s, rbk_err *err)
{
	return s->pg ? PG(commit)(s->pg, err) : rbk_sqlite_commit(s->lite, err);
}

void rbk_store_rollback(rbk_store *s)
{
	if (s->pg)
		PG(rollback)(s->pg);
	else
		rbk_sqlite_rollback(s->lite);
}

int rbk_store_run_create(rbk_store *s, const rbk_store_run_spec *spec, int64_t *out_id, rbk_err *err)
{
	return s->pg ? PG(run_create)(s->pg, spec, out_id, err) : rbk_sqlite_run_create(s->lite, spec, out_id, err);
}

int rbk_store_run_set(rbk_store *s, int64_t run_id, const char *status, const char *current_state, rbk_err *err)
{
	return s->pg ? PG(run_set)(s->pg, run_id, status, current_state, err) : rbk_sqlite_run_set(s->lite, run_id, status, current_state, err);
}

int rbk_store_run_get(rbk_store *s, int64_t id, rbk_store_run *out, rbk_err *err)
{
	return s->pg ? PG(run_get)(s->pg, id, out, err) : rbk_sqlite_run_get(s->lite, id, out, err);
}

int rbk_store_source(rbk_store *s, const char *sha256, char **bytes, size_t *len, rbk_err *err)
{
	return s->pg ? PG(source)(s->pg, sha256, bytes, len, err) : rbk_sqlite_source(s->lite, sha256, bytes, len, err);
}

int rbk_store_append(rbk_store *s, int64_t run_id, const char *actor, const char *kind, const char *data_json, int64_t *out_seq, rbk_err *err)
{
	return s->pg ? PG(append)(s->pg, run_id, actor, kind, data_json, false, out_seq, err)
		     : rbk_sqlite_append(s->lite, run_id, actor, kind, data_json, false, out_seq, err);
}

int rbk_store_append_encoded(rbk_store *s, int64_t run_id, const char *actor, const char *kind, const char *data_json,
			     int64_t *out_seq, rbk_err *err)
{
	return s->pg ? PG(append)(s->pg, run_id, actor, kind, data_json, true, out_seq, err)
		     : rbk_sqlite_append(s->lite, run_id, actor, kind, data_json, true, out_seq, err);
}

int rbk_store_append_val(rbk_store *s, int64_t run_id, const char *actor, const char *kind, const rbk_val *data,
			 int64_t *out_seq, rbk_err *err)
{
	/* Encoded here, so known to be JSON: not parsed again to check it. */
	char *json = rbk_json_encode(data);
	int rc = rbk_store_append_encoded(s, run_id, actor, kind, json, out_seq, err);
	rbk_free(json);
	return rc;
}

int rbk_store_events(rbk_store *s, int64_t run_id, int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx, rbk_err *err)
{
	return s->pg ? PG(events)(s->pg, run_id, fn, ctx, err) : rbk_sqlite_events(s->lite, run_id, fn, ctx, err);
}

int rbk_store_events_after(rbk_store *s, int64_t run_id, int64_t after_seq, int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx, rbk_err *err)
{
	return s->pg ? PG(events_after)(s->pg, run_id, after_seq, fn, ctx, err) : rbk_sqlite_events_after(s->lite, run_id, after_seq, fn, ctx, err);
}

typedef struct {
	int (*fn)(void *ctx, const rbk_store_event *ev);
	void *ctx;
} unbatch;

static int unbatch_event(void *ctx, const rbk_store_event *ev)
{
	unbatch *u = ctx;
	if (strcmp(ev->kind, RBK_STORE_BATCH) != 0)
		return u->fn(u->ctx, ev);
	rbk_val d = rbk_val_null();
	if (rbk_json_parse(&d, ev->data, strlen(ev->data), NULL) < 0)
		return u->fn(u->ctx, ev); /* not a batch rbk wrote: shown as stored */
	const rbk_val *list = d.t == RBK_V_MAP ? rbk_val_map_get(&d, "events") : NULL;
	int rc = 0;
	for (size_t i = 0; rc == 0 && list && list->t == RBK_V_LIST && i < list->u.list.n; i++) {
		const rbk_val *it = &list->u.list.items[i];
		const rbk_val *k = it->t == RBK_V_MAP ? rbk_val_map_get(it, "kind") : NULL;
		const rbk_val *data = it->t == RBK_V_MAP ? rbk_val_map_get(it, "data") : NULL;
		char *js = data ? rbk_json_encode(data) : NULL;
		rbk_store_event sub = *ev;
		sub.kind = k && k->t == RBK_V_STR ? k->u.s.s : "?";
		sub.data = js ? js : "{}";
		sub.part = (int)i + 1;
		rc = u->fn(u->ctx, &sub);
		rbk_free(js);
	}
	rbk_val_free(&d);
	return rc;
}

int rbk_store_timeline(rbk_store *s, int64_t run_id, int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx, rbk_err *err)
{
	unbatch u = {fn, ctx};
	return rbk_store_events(s, run_id, unbatch_event, &u, err);
}

int rbk_store_timeline_after(rbk_store *s, int64_t run_id, int64_t after_seq, int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx, rbk_err *err)
{
	unbatch u = {fn, ctx};
	return rbk_store_events_after(s, run_id, after_seq, unbatch_event, &u, err);
}

int rbk_store_verify(rbk_store *s, int64_t *out_count, int64_t *out_bad_seq, char **out_why, rbk_err *err)
{
	return s->pg ? PG(verify)(s->pg, out_count, out_bad_seq, out_why, err) : rbk_sqlite_verify(s->lite, out_count, out_bad_seq, out_why, err);
}

int rbk_store_writable(rbk_store *s, rbk_err *err)
{
	return s->pg ? PG(writable)(s->pg, err) : rbk_sqlite_writable(s->lite, err);
}

void rbk_store_note_broken(rbk_store *s, const char *why)
{
	if (s->pg)
		PG(note_broken)(s->pg, why);
	else
		rbk_sqlite_note_broken(s->lite, why);
}

int rbk_store_step_record(rbk_store *s, int64_t run_id, const char *state, int attempt, const char *status, int64_t started_seq, int64_t ended_seq, rbk_err *err)
{
	return s->pg ? PG(step_record)(s->pg, run_id, state, attempt, status, started_seq, ended_seq, err) : rbk_sqlite_step_record(s->lite, run_id, state, attempt, status, started_seq, ended_seq, err);
}

int rbk_store_steps(rbk_store *s, int64_t run_id, int (*fn)(void *ctx, const rbk_store_step *st), void *ctx, rbk_err *err)
{
	return s->pg ? PG(steps)(s->pg, run_id, fn, ctx, err) : rbk_sqlite_steps(s->lite, run_id, fn, ctx, err);
}

int rbk_store_lock_holder(rbk_store *s, const char *key, int64_t except_run, int64_t *out_run, rbk_err *err)
{
	return s->pg ? PG(lock_holder)(s->pg, key, except_run, out_run, err) : rbk_sqlite_lock_holder(s->lite, key, except_run, out_run, err);
}

int rbk_store_run_owner(rbk_store *s, int64_t run_id, int64_t pid, rbk_err *err)
{
	return s->pg ? PG(run_owner)(s->pg, run_id, pid, err) : rbk_sqlite_run_owner(s->lite, run_id, pid, err);
}

int rbk_store_runs(rbk_store *s, const rbk_store_run_filter *f, int (*fn)(void *ctx, const rbk_store_run *run), void *ctx, rbk_err *err)
{
	return s->pg ? PG(runs)(s->pg, f, fn, ctx, err) : rbk_sqlite_runs(s->lite, f, fn, ctx, err);
}

int rbk_store_fire_claim(rbk_store *s, const char *runbook, int entry, const char *nominal, const char *outcome, const char *note, int64_t *out_id, rbk_err *err)
{
	return s->pg ? PG(fire_claim)(s->pg, runbook, entry, nominal, outcome, note, out_id, err) : rbk_sqlite_fire_claim(s->lite, runbook, entry, nominal, outcome, note, out_id, err);
}

int rbk_store_fire_set(rbk_store *s, int64_t fire, const char *outcome, int64_t run_id, const char *note, rbk_err *err)
{
	return s->pg ? PG(fire_set)(s->pg, fire, outcome, run_id, note, err) : rbk_sqlite_fire_set(s->lite, fire, outcome, run_id, note, err);
}

int rbk_store_fires(rbk_store *s, const char *runbook, int entry, const char *outcome, int64_t limit, int (*fn)(void *ctx, const rbk_store_fire *f), void *ctx, rbk_err *err)
{
	return s->pg ? PG(fires)(s->pg, runbook, entry, outcome, limit, fn, ctx, err) : rbk_sqlite_fires(s->lite, runbook, entry, outcome, limit, fn, ctx, err);
}

int rbk_store_head(rbk_store *s, int64_t *seq, char hash[65], rbk_err *err)
{
	return s->pg ? PG(head)(s->pg, seq, hash, err) : rbk_sqlite_head(s->lite, seq, hash, err);
}

int rbk_store_event_hash(rbk_store *s, int64_t seq, char hash[65], rbk_err *err)
{
	return s->pg ? PG(event_hash)(s->pg, seq, hash, err) : rbk_sqlite_event_hash(s->lite, seq, hash, err);
}

int rbk_store_links(rbk_store *s, int64_t from_seq, int64_t to_seq, int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx, rbk_err *err)
{
	return s->pg ? PG(links)(s->pg, from_seq, to_seq, fn, ctx, err) : rbk_sqlite_links(s->lite, from_seq, to_seq, fn, ctx, err);
}

int rbk_store_meta_get(rbk_store *s, const char *key, char **out, rbk_err *err)
{
	return s->pg ? PG(meta_get)(s->pg, key, out, err) : rbk_sqlite_meta_get(s->lite, key, out, err);
}

int rbk_store_meta_set(rbk_store *s, const char *key, const char *value, rbk_err *err)
{
	return s->pg ? PG(meta_set)(s->pg, key, value, err) : rbk_sqlite_meta_set(s->lite, key, value, err);
}

/* ---- executors: queues, leases, fencing ---- */

void rbk_store_lease_free(rbk_store_lease *l)
{
	rbk_free(l->queue);
	rbk_free(l->owner);
	l->queue = l->owner = NULL;
}

int rbk_store_run_queue(rbk_store *s, int64_t run_id, const char *queue, int queued, rbk_err *err)
{
	return s->pg ? PG(run_queue)(s->pg, run_id, queue, queued, err)
		     : rbk_sqlite_run_queue(s->lite, run_id, queue, queued, err);
}

int rbk_store_lease_get(rbk_store *s, int64_t run_id, rbk_store_lease *out, rbk_err *err)
{
	return s->pg ? PG(lease_get)(s->pg, run_id, out, err) : rbk_sqlite_lease_get(s->lite, run_id, out, err);
}

int rbk_store_claim(rbk_store *s, int64_t run_id, const char *owner, int64_t lease_ms, int force, int64_t *epoch,
		    rbk_err *err)
{
	return s->pg ? PG(claim)(s->pg, run_id, owner, lease_ms, force, epoch, err)
		     : rbk_sqlite_claim(s->lite, run_id, owner, lease_ms, force, epoch, err);
}

int rbk_store_renew(rbk_store *s, int64_t run_id, const char *owner, int64_t epoch, int64_t lease_ms,
		    rbk_err *err)
{
	return s->pg ? PG(renew)(s->pg, run_id, owner, epoch, lease_ms, err)
		     : rbk_sqlite_renew(s->lite, run_id, owner, epoch, lease_ms, err);
}

int rbk_store_release(rbk_store *s, int64_t run_id, int64_t epoch, rbk_err *err)
{
	return s->pg ? PG(release)(s->pg, run_id, epoch, err) : rbk_sqlite_release(s->lite, run_id, epoch, err);
}

void rbk_store_fence(rbk_store *s, int64_t run_id, int64_t epoch)
{
	if (s->pg)
		PG(fence)(s->pg, run_id, epoch);
	else
		rbk_sqlite_fence(s->lite, run_id, epoch);
}

int rbk_store_claimable(rbk_store *s, const char *const *queues, size_t nqueues, int64_t limit,
			int (*fn)(void *ctx, int64_t run_id, const char *status), void *ctx, rbk_err *err)
{
	return s->pg ? PG(claimable)(s->pg, queues, nqueues, limit, fn, ctx, err)
		     : rbk_sqlite_claimable(s->lite, queues, nqueues, limit, fn, ctx, err);
}

int rbk_store_run_counts(rbk_store *s, int (*fn)(void *ctx, const char *runbook, const char *status, int64_t n),
			 void *ctx, rbk_err *err)
{
	return s->pg ? PG(run_counts)(s->pg, fn, ctx, err) : rbk_sqlite_run_counts(s->lite, fn, ctx, err);
}

int rbk_store_step_times(rbk_store *s,
			 int (*fn)(void *ctx, const char *runbook, const char *state, const char *status,
				   const char *started_at, const char *ended_at),
			 void *ctx, rbk_err *err)
{
	return s->pg ? PG(step_times)(s->pg, fn, ctx, err) : rbk_sqlite_step_times(s->lite, fn, ctx, err);
}

int rbk_store_notify(rbk_store *s, rbk_err *err) { return s->pg ? PG(notify)(s->pg, err) : 0; }

int rbk_store_wait_work(rbk_store *s, int timeout_ms, rbk_err *err)
{
	if (s->pg)
		return PG(wait_work)(s->pg, timeout_ms, err);
	/* SQLite has no notifications: the caller polls at this pace. */
	struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	return 0;
}

int rbk_store_lead(rbk_store *s, const char *name, rbk_err *err)
{
	return s->pg ? PG(lead)(s->pg, name, err) : 1;
}

int rbk_store_ping(rbk_store *s, rbk_err *err)
{
	return s->pg ? PG(ping)(s->pg, err) : rbk_sqlite_ping(s->lite, err);
}

/* ---- copying a store ---- */

/* A read of the source or an import into the target on the other kind of
 * store: rbk store copy checks the kinds first, so this is a caller's bug. */
static int wrong_kind(rbk_store *s, const char *what, rbk_err *err)
{
	rbk_err_set(err, -1, "store %s: %s", rbk_store_path(s), what);
	return -1;
}

#define ONLY_PG "store copy writes only into PostgreSQL"
#define ONLY_SQLITE "store copy reads only from SQLite"

int rbk_store_counts_get(rbk_store *s, rbk_store_counts *out, rbk_err *err)
{
	return s->pg ? PG(counts)(s->pg, out, err) : rbk_sqlite_counts(s->lite, out, err);
}

int rbk_store_read_snapshot(rbk_store *s, rbk_err *err)
{
	return s->pg ? wrong_kind(s, ONLY_SQLITE, err) : rbk_sqlite_read_snapshot(s->lite, err);
}

int rbk_store_sources(rbk_store *s, int (*fn)(void *ctx, const char *sha256, const char *bytes, size_t len),
		      void *ctx, rbk_err *err)
{
	return s->pg ? wrong_kind(s, ONLY_SQLITE, err) : rbk_sqlite_sources(s->lite, fn, ctx, err);
}

int rbk_store_meta_all(rbk_store *s, int (*fn)(void *ctx, const char *key, const char *value), void *ctx,
		       rbk_err *err)
{
	return s->pg ? wrong_kind(s, ONLY_SQLITE, err) : rbk_sqlite_meta_all(s->lite, fn, ctx, err);
}

int rbk_store_import_source(rbk_store *s, const char *sha256, const char *bytes, size_t len, rbk_err *err)
{
	return s->pg ? PG(import_source)(s->pg, sha256, bytes, len, err) : wrong_kind(s, ONLY_PG, err);
}

int rbk_store_import_run(rbk_store *s, const rbk_store_run *run, rbk_err *err)
{
	return s->pg ? PG(import_run)(s->pg, run, err) : wrong_kind(s, ONLY_PG, err);
}

int rbk_store_import_queue(rbk_store *s, int64_t run_id, const char *queue, int64_t epoch, rbk_err *err)
{
	return s->pg ? PG(import_queue)(s->pg, run_id, queue, epoch, err) : wrong_kind(s, ONLY_PG, err);
}

int rbk_store_import_event(rbk_store *s, const rbk_store_event *ev, rbk_err *err)
{
	return s->pg ? PG(import_event)(s->pg, ev, err) : wrong_kind(s, ONLY_PG, err);
}

int rbk_store_import_step(rbk_store *s, const rbk_store_step *st, rbk_err *err)
{
	return s->pg ? PG(import_step)(s->pg, st, err) : wrong_kind(s, ONLY_PG, err);
}

int rbk_store_import_fire(rbk_store *s, const rbk_store_fire *f, rbk_err *err)
{
	return s->pg ? PG(import_fire)(s->pg, f, err) : wrong_kind(s, ONLY_PG, err);
}

int rbk_store_import_meta(rbk_store *s, const char *key, const char *value, rbk_err *err)
{
	return s->pg ? PG(import_meta)(s->pg, key, value, err) : wrong_kind(s, ONLY_PG, err);
}

int64_t rbk_store_now_ms(rbk_store *s)
{
	int64_t ms = -1;
	if (s->pg && PG(now_ms)(s->pg, &ms) == 0)
		return ms;
	/* SQLite, or a database out of reach: this host's clock. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rbk_store_time_ms(const char *at)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int ms = 0;
	if (!at || sscanf(at, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			  &tm.tm_sec, &ms) < 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}
