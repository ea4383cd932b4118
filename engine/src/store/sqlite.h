/* store/sqlite: the SQLite backend of the durable store, the embedded
 * default: one file in WAL mode with synchronous=FULL, writers serialized by
 * BEGIN IMMEDIATE. Each rbk_sqlite_NAME behaves as rbk_store_NAME
 * (store.h), which calls it; nothing outside the store layer includes this.
 * The only module that includes sqlite3.h. */
#ifndef RBK_STORE_SQLITE_H
#define RBK_STORE_SQLITE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "store/store.h"

typedef struct rbk_sqlite rbk_sqlite;

/* home/rbk.db, home created (mode 0700) when missing. */
int rbk_sqlite_open(rbk_sqlite **out, const char *home, rbk_err *err);
/* The SQLite file itself (sqlite:PATH); its directory is created when
 * missing. Refuses, leaving it untouched, a file that is not an SQLite
 * database and a store whose schema is newer than this build. */
int rbk_sqlite_open_file(rbk_sqlite **out, const char *file, rbk_err *err);
void rbk_sqlite_close(rbk_sqlite *s);
/* The database file. */
const char *rbk_sqlite_path(const rbk_sqlite *s);

int rbk_sqlite_schema_latest(void);
const char *rbk_sqlite_migration_sql(int version);

int rbk_sqlite_info_get(rbk_sqlite *s, rbk_store_info *out, rbk_err *err);

int rbk_sqlite_begin(rbk_sqlite *s, rbk_err *err);
int rbk_sqlite_commit(rbk_sqlite *s, rbk_err *err);
void rbk_sqlite_rollback(rbk_sqlite *s);

int rbk_sqlite_run_create(rbk_sqlite *s, const rbk_store_run_spec *spec, int64_t *out_id, rbk_err *err);
int rbk_sqlite_run_set(rbk_sqlite *s, int64_t run_id, const char *status, const char *current_state,
			rbk_err *err);
int rbk_sqlite_run_get(rbk_sqlite *s, int64_t id, rbk_store_run *out, rbk_err *err);
int rbk_sqlite_source(rbk_sqlite *s, const char *sha256, char **bytes, size_t *len, rbk_err *err);

int rbk_sqlite_append(rbk_sqlite *s, int64_t run_id, const char *actor, const char *kind,
		       const char *data_json, bool is_json, int64_t *out_seq, rbk_err *err);
int rbk_sqlite_events(rbk_sqlite *s, int64_t run_id, int (*fn)(void *ctx, const rbk_store_event *ev),
		       void *ctx, rbk_err *err);
int rbk_sqlite_events_after(rbk_sqlite *s, int64_t run_id, int64_t after_seq,
			     int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx, rbk_err *err);
int rbk_sqlite_verify(rbk_sqlite *s, int64_t *out_count, int64_t *out_bad_seq, char **out_why,
		       rbk_err *err);
int rbk_sqlite_writable(rbk_sqlite *s, rbk_err *err);
void rbk_sqlite_note_broken(rbk_sqlite *s, const char *why);

int rbk_sqlite_step_record(rbk_sqlite *s, int64_t run_id, const char *state, int attempt,
			    const char *status, int64_t started_seq, int64_t ended_seq, rbk_err *err);
int rbk_sqlite_steps(rbk_sqlite *s, int64_t run_id, int (*fn)(void *ctx, const rbk_store_step *st),
		      void *ctx, rbk_err *err);
int rbk_sqlite_lock_holder(rbk_sqlite *s, const char *key, int64_t except_run, int64_t *out_run,
			    rbk_err *err);
int rbk_sqlite_run_owner(rbk_sqlite *s, int64_t run_id, int64_t pid, rbk_err *err);
int rbk_sqlite_runs(rbk_sqlite *s, const rbk_store_run_filter *f,
		     int (*fn)(void *ctx, const rbk_store_run *run), void *ctx, rbk_err *err);

int rbk_sqlite_fire_claim(rbk_sqlite *s, const char *runbook, int entry, const char *nominal,
			   const char *outcome, const char *note, int64_t *out_id, rbk_err *err);
int rbk_sqlite_fire_set(rbk_sqlite *s, int64_t fire, const char *outcome, int64_t run_id, const char *note,
			 rbk_err *err);
int rbk_sqlite_fires(rbk_sqlite *s, const char *runbook, int entry, const char *outcome, int64_t limit,
		      int (*fn)(void *ctx, const rbk_store_fire *f), void *ctx, rbk_err *err);

int rbk_sqlite_head(rbk_sqlite *s, int64_t *seq, char hash[65], rbk_err *err);
int rbk_sqlite_event_hash(rbk_sqlite *s, int64_t seq, char hash[65], rbk_err *err);
int rbk_sqlite_links(rbk_sqlite *s, int64_t from_seq, int64_t to_seq,
		      int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx, rbk_err *err);

int rbk_sqlite_meta_get(rbk_sqlite *s, const char *key, char **out, rbk_err *err);
int rbk_sqlite_meta_set(rbk_sqlite *s, const char *key, const char *value, rbk_err *err);

int rbk_sqlite_run_queue(rbk_sqlite *s, int64_t run_id, const char *queue, int queued, rbk_err *err);
int rbk_sqlite_lease_get(rbk_sqlite *s, int64_t run_id, rbk_store_lease *out, rbk_err *err);
int rbk_sqlite_claim(rbk_sqlite *s, int64_t run_id, const char *owner, int64_t lease_ms, int force, int64_t *epoch,
		rbk_err *err);
int rbk_sqlite_renew(rbk_sqlite *s, int64_t run_id, const char *owner, int64_t epoch, int64_t lease_ms, rbk_err *err);
int rbk_sqlite_release(rbk_sqlite *s, int64_t run_id, int64_t epoch, rbk_err *err);
void rbk_sqlite_fence(rbk_sqlite *s, int64_t run_id, int64_t epoch);
int rbk_sqlite_run_counts(rbk_sqlite *s, int (*fn)(void *ctx, const char *runbook, const char *status, int64_t n),
			  void *ctx, rbk_err *err);
int rbk_sqlite_step_times(rbk_sqlite *s,
			  int (*fn)(void *ctx, const char *runbook, const char *state, const char *status,
				    const char *started_at, const char *ended_at),
			  void *ctx, rbk_err *err);
int rbk_sqlite_claimable(rbk_sqlite *s, const char *const *queues, size_t nqueues, int64_t limit,
		int (*fn)(void *ctx, int64_t run_id, const char *status), void *ctx, rbk_err *err);
int rbk_sqlite_ping(rbk_sqlite *s, rbk_err *err);

/* ---- copying a store (rbk store copy; store.h) ---- */
int rbk_sqlite_read_snapshot(rbk_sqlite *s, rbk_err *err);
int rbk_sqlite_counts(rbk_sqlite *s, rbk_store_counts *out, rbk_err *err);
int rbk_sqlite_sources(rbk_sqlite *s, int (*fn)(void *ctx, const char *sha256, const char *bytes, size_t len),
		       void *ctx, rbk_err *err);
int rbk_sqlite_meta_all(rbk_sqlite *s, int (*fn)(void *ctx, const char *key, const char *value), void *ctx,
			rbk_err *err);

#endif
