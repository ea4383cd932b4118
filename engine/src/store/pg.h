/* store/pg: the PostgreSQL backend of the durable store.
 *
 * The same contract as store.h, operation for operation: each
 * rbk_pgstore_NAME behaves as rbk_store_NAME (same arguments, JSON, chain
 * hashes, error codes and messages), on a database shared by many processes
 * and hosts. The store is named by a libpq URI,
 * postgresql://... or postgres://...; its password is never printed: errors
 * name the store as postgresql://USER@HOST:PORT/DB.
 *
 * Differences that follow from the database, not from the contract:
 *  - Every writing transaction (each writing call, or rbk_pgstore_begin)
 *    first locks the one row of chain_head (SELECT ... FOR UPDATE), as
 *    SQLite's BEGIN IMMEDIATE takes its write lock: writers serialize, seq
 *    has no gaps, run and fire ids are max + 1 as on SQLite, and no two
 *    writers can deadlock. Waiting for it ends after 60 s (lock_timeout).
 *  - Timestamps (events' at, runs' created_at/updated_at, fires'
 *    decided_at) come from the database's clock, in the same format.
 *  - rbk_store_info: journal_mode is "wal" (PostgreSQL always logs ahead),
 *    synchronous is 0 when the server runs with fsync or synchronous_commit
 *    off, 1 for synchronous_commit = local, else 2; foreign_keys is 1.
 *  - The schema lives in the connection's first search_path schema; its
 *    version is the highest row of schema_version. Version N is the same
 *    logical schema as SQLite's user_version N; version 3 adds the runs'
 *    lease columns (queue, lease_owner, lease_until, epoch).
 *
 * The only module that includes libpq-fe.h; nothing outside the store layer
 * includes this header. */
#ifndef RBK_STORE_PG_H
#define RBK_STORE_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/store.h"

typedef struct rbk_pgstore rbk_pgstore;

/* Connect to url and bring the schema up to date (created on first open,
 * under an advisory lock so that concurrent first opens do not race).
 * Refuses a schema newer than this build and a database holding rbk's
 * table names without rbk's schema_version. A connection failure is an
 * error with err->code RBK_ERR_STORE. */
int rbk_pgstore_open(rbk_pgstore **out, const char *url, rbk_err *err);
void rbk_pgstore_close(rbk_pgstore *s);
/* The store's name in messages: the URI without its password. */
const char *rbk_pgstore_path(const rbk_pgstore *s);

int rbk_pgstore_schema_latest(void);
const char *rbk_pgstore_migration_sql(int version);

int rbk_pgstore_info_get(rbk_pgstore *s, rbk_store_info *out, rbk_err *err);

int rbk_pgstore_begin(rbk_pgstore *s, rbk_err *err);
int rbk_pgstore_commit(rbk_pgstore *s, rbk_err *err);
void rbk_pgstore_rollback(rbk_pgstore *s);

int rbk_pgstore_run_create(rbk_pgstore *s, const rbk_store_run_spec *spec, int64_t *out_id, rbk_err *err);
int rbk_pgstore_run_set(rbk_pgstore *s, int64_t run_id, const char *status, const char *current_state,
			rbk_err *err);
int rbk_pgstore_run_get(rbk_pgstore *s, int64_t id, rbk_store_run *out, rbk_err *err);
int rbk_pgstore_source(rbk_pgstore *s, const char *sha256, char **bytes, size_t *len, rbk_err *err);

int rbk_pgstore_append(rbk_pgstore *s, int64_t run_id, const char *actor, const char *kind,
		       const char *data_json, bool is_json, int64_t *out_seq, rbk_err *err);
/* Walks read in batches through a cursor (constant memory), inside the
 * caller's transaction or one of their own; fn may read the store. */
int rbk_pgstore_events(rbk_pgstore *s, int64_t run_id, int (*fn)(void *ctx, const rbk_store_event *ev),
		       void *ctx, rbk_err *err);
int rbk_pgstore_events_after(rbk_pgstore *s, int64_t run_id, int64_t after_seq,
			     int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx, rbk_err *err);
int rbk_pgstore_verify(rbk_pgstore *s, int64_t *out_count, int64_t *out_bad_seq, char **out_why,
		       rbk_err *err);
int rbk_pgstore_writable(rbk_pgstore *s, rbk_err *err);
void rbk_pgstore_note_broken(rbk_pgstore *s, const char *why);

int rbk_pgstore_step_record(rbk_pgstore *s, int64_t run_id, const char *state, int attempt,
			    const char *status, int64_t started_seq, int64_t ended_seq, rbk_err *err);
int rbk_pgstore_steps(rbk_pgstore *s, int64_t run_id, int (*fn)(void *ctx, const rbk_store_step *st),
		      void *ctx, rbk_err *err);
int rbk_pgstore_lock_holder(rbk_pgstore *s, const char *key, int64_t except_run, int64_t *out_run,
			    rbk_err *err);
int rbk_pgstore_run_owner(rbk_pgstore *s, int64_t run_id, int64_t pid, rbk_err *err);
int rbk_pgstore_runs(rbk_pgstore *s, const rbk_store_run_filter *f,
		     int (*fn)(void *ctx, const rbk_store_run *run), void *ctx, rbk_err *err);

int rbk_pgstore_fire_claim(rbk_pgstore *s, const char *runbook, int entry, const char *nominal,
			   const char *outcome, const char *note, int64_t *out_id, rbk_err *err);
int rbk_pgstore_fire_set(rbk_pgstore *s, int64_t fire, const char *outcome, int64_t run_id, const char *note,
			 rbk_err *err);
int rbk_pgstore_fires(rbk_pgstore *s, const char *runbook, int entry, const char *outcome, int64_t limit,
		      int (*fn)(void *ctx, const rbk_store_fire *f), void *ctx, rbk_err *err);

int rbk_pgstore_head(rbk_pgstore *s, int64_t *seq, char hash[65], rbk_err *err);
int rbk_pgstore_event_hash(rbk_pgstore *s, int64_t seq, char hash[65], rbk_err *err);
int rbk_pgstore_links(rbk_pgstore *s, int64_t from_seq, int64_t to_seq,
		      int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx, rbk_err *err);

int rbk_pgstore_meta_get(rbk_pgstore *s, const char *key, char **out, rbk_err *err);
int rbk_pgstore_meta_set(rbk_pgstore *s, const char *key, const char *value, rbk_err *err);

int rbk_pgstore_run_queue(rbk_pgstore *s, int64_t run_id, const char *queue, int queued, rbk_err *err);
int rbk_pgstore_lease_get(rbk_pgstore *s, int64_t run_id, rbk_store_lease *out, rbk_err *err);
int rbk_pgstore_claim(rbk_pgstore *s, int64_t run_id, const char *owner, int64_t lease_ms, int force, int64_t *epoch,
		rbk_err *err);
int rbk_pgstore_renew(rbk_pgstore *s, int64_t run_id, const char *owner, int64_t epoch, int64_t lease_ms, rbk_err *err);
int rbk_pgstore_release(rbk_pgstore *s, int64_t run_id, int64_t epoch, rbk_err *err);
void rbk_pgstore_fence(rbk_pgstore *s, int64_t run_id, int64_t epoch);
int rbk_pgstore_run_counts(rbk_pgstore *s, int (*fn)(void *ctx, const char *runbook, const char *status, int64_t n),
			   void *ctx, rbk_err *err);
int rbk_pgstore_step_times(rbk_pgstore *s,
			   int (*fn)(void *ctx, const char *runbook, const char *state, const char *status,
				     const char *started_at, const char *ended_at),
			   void *ctx, rbk_err *err);
int rbk_pgstore_claimable(rbk_pgstore *s, const char *const *queues, size_t nqueues, int64_t limit,
		int (*fn)(void *ctx, int64_t run_id, const char *status), void *ctx, rbk_err *err);
int rbk_pgstore_ping(rbk_pgstore *s, rbk_err *err);
int rbk_pgstore_notify(rbk_pgstore *s, rbk_err *err);
int rbk_pgstore_wait_work(rbk_pgstore *s, int timeout_ms, rbk_err *err);
int rbk_pgstore_lead(rbk_pgstore *s, const char *name, rbk_err *err);

/* ---- copying a store (rbk store copy; store.h) ----
 *
 * Imports write rows verbatim (ids, times, hashes as given; nothing is
 * derived or recomputed), only inside the caller's transaction. Nothing
 * else needs setting afterwards: chain_head is only the writers' lock, and
 * append, run_create and fire_claim take the next seq, run id and fire id
 * from the rows themselves (max + 1), the prev hash from the newest event. */
int rbk_pgstore_counts(rbk_pgstore *s, rbk_store_counts *out, rbk_err *err);
int rbk_pgstore_import_source(rbk_pgstore *s, const char *sha256, const char *bytes, size_t len, rbk_err *err);
int rbk_pgstore_import_run(rbk_pgstore *s, const rbk_store_run *run, rbk_err *err);
int rbk_pgstore_import_queue(rbk_pgstore *s, int64_t run_id, const char *queue, int64_t epoch, rbk_err *err);
int rbk_pgstore_import_event(rbk_pgstore *s, const rbk_store_event *ev, rbk_err *err);
int rbk_pgstore_import_step(rbk_pgstore *s, const rbk_store_step *st, rbk_err *err);
int rbk_pgstore_import_fire(rbk_pgstore *s, const rbk_store_fire *f, rbk_err *err);
int rbk_pgstore_import_meta(rbk_pgstore *s, const char *key, const char *value, rbk_err *err);

int rbk_pgstore_now_ms(rbk_pgstore *s, int64_t *ms);

#endif
