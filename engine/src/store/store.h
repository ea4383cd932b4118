/* store: the durable record of runs, an append-only hash-chained event log.
 *
 * Two backends behind this one interface: SQLite (store/sqlite.c), the
 * embedded default, one file rbk.db in the state directory in WAL mode with
 * synchronous=FULL; and PostgreSQL (store/pg.c), one database shared by many
 * hosts. A call that returns 0 after a commit has reached the disk. Every
 * SQL statement of rbk lives in the store layer; the engine, the CLI and
 * the audit code never know which backend they talk to.
 *
 * Transactions. Each writing call runs in its own transaction unless the
 * caller opened one with rbk_store_begin, in which case it joins it and
 * nothing is durable before rbk_store_commit. A database error inside the
 * caller's transaction rolls the whole transaction back (a half batch is
 * worth nothing); later calls and the commit then fail, and
 * rbk_store_rollback ends it. Writers in several processes serialize on
 * BEGIN IMMEDIATE with waiting and retries, so they never see "database is
 * locked" under ordinary contention.
 *
 * Audit chain. Every event's hash = SHA-256(prev_hash || canonical event),
 * canonical event = "SEQ\nRUN_ID\nAT\nACTOR\nKIND\nDATA" (schemas/store.sql).
 * Actors and kinds never contain '\n', so the encoding is unambiguous.
 *
 * Errors name the store file, and for a database failure the operation:
 * "store /home/op/.rbk/rbk.db: append event: disk full".
 *
 * A store handle belongs to one thread of one process: a forked child must
 * neither use nor close its parent's handle (it opens its own). */
#ifndef RBK_STORE_H
#define RBK_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "lang/value.h"

typedef struct rbk_store rbk_store;

/* Create home (mkdir -p, mode 0700) and home/rbk.db if missing, then bring
 * the schema up to date. Refuses, leaving the file untouched, a file that is
 * not an SQLite database and a store whose schema is newer than this build. */
int rbk_store_open(rbk_store **out, const char *home, rbk_err *err);
/* The store url names: NULL or "" = home/rbk.db as above; sqlite:PATH = that
 * SQLite file; postgresql://... or postgres://... = a libpq connection URI
 * (store/pg.h). Anything else is refused with err->code RBK_ERR_STORE,
 * without quoting more than its scheme (a URI may hold a password). */
int rbk_store_open_url(rbk_store **out, const char *url, const char *home, rbk_err *err);
/* Rolls back a transaction still open. NULL is allowed. */
void rbk_store_close(rbk_store *s);
/* The store's name in messages: the SQLite file, or the PostgreSQL URI
 * without its password. */
const char *rbk_store_path(const rbk_store *s);
/* "sqlite" or "postgresql". */
const char *rbk_store_kind(const rbk_store *s);

/* The schema versions this build knows: 1 .. rbk_store_schema_latest()
 * (the same logical versions on both backends). */
int rbk_store_schema_latest(void);
/* The SQLite SQL of migration version (schemas/store.sql holds them in
 * order), or NULL. */
const char *rbk_store_migration_sql(int version);

typedef struct {
	int schema_version;    /* PRAGMA user_version */
	char journal_mode[16]; /* "wal" */
	int synchronous;       /* 2 = FULL */
	int foreign_keys;      /* 1 = enforced */
} rbk_store_info;

int rbk_store_info_get(rbk_store *s, rbk_store_info *out, rbk_err *err);

/* ---- transactions ---- */

int rbk_store_begin(rbk_store *s, rbk_err *err);
int rbk_store_commit(rbk_store *s, rbk_err *err);
/* Ends the open transaction, if any, discarding its changes. */
void rbk_store_rollback(rbk_store *s);

/* ---- runs ---- */

typedef struct {
	const char *runbook; /* name */
	const char *actor;   /* the principal: user@host (principal.h); no '\n' */
	int dry_run;
	const char *params_json; /* JSON, secrets already masked; NULL = {} */
	const char *source;	 /* the runbook's exact bytes */
	size_t source_len;
	const char *provenance_json; /* JSON (git commit, dirty...); NULL = {} */
	int64_t parent_run;	     /* 0 = none */
	const char *parent_state;    /* NULL = none */
	const char *lock_key;	     /* NULL = none */
} rbk_store_run_spec;

/* Pin the source (stored once per SHA-256), create run N+1 with status
 * "running", owner_pid = getpid(), and append its run_created event. */
int rbk_store_run_create(rbk_store *s, const rbk_store_run_spec *spec, int64_t *out_id,
			 rbk_err *err);

/* Set status (one of running waiting interrupted needs_attention succeeded
 * failed rolled_back aborted) and current_state; NULL leaves a field as it is.
 * Touches updated_at. */
int rbk_store_run_set(rbk_store *s, int64_t run_id, const char *status, const char *current_state,
		      rbk_err *err);

typedef struct {
	int64_t id;
	char *runbook, *status, *actor, *created_at, *updated_at;
	int64_t parent_run; /* 0 = none */
	char *parent_state; /* NULL = none */
	int dry_run;
	char *params_json, *source_sha256, *provenance_json;
	char *current_state; /* NULL = none yet */
	int64_t owner_pid;   /* 0 = none */
	char *lock_key;	     /* NULL = none */
} rbk_store_run;

/* A missing run is an error with err->code RBK_ERR_NONAME. */
int rbk_store_run_get(rbk_store *s, int64_t id, rbk_store_run *out, rbk_err *err);
void rbk_store_run_free(rbk_store_run *r);

/* The pinned bytes of sha256 (64 hex digits) in a fresh buffer, NUL-terminated
 * for convenience (*len excludes it); the caller frees *bytes with rbk_free.
 * A missing source is an error with err->code RBK_ERR_NONAME. */
int rbk_store_source(rbk_store *s, const char *sha256, char **bytes, size_t *len, rbk_err *err);

/* ---- events ---- */

/* Append an event to run_id's log and the global chain; *out_seq (may be
 * NULL) receives its sequence number. kind and actor: non-empty, no '\n';
 * data_json: JSON (NULL = {}). */
int rbk_store_append(rbk_store *s, int64_t run_id, const char *actor, const char *kind,
		     const char *data_json, int64_t *out_seq, rbk_err *err);
/* The same, data a value (a map) the store encodes as JSON itself. */
int rbk_store_append_val(rbk_store *s, int64_t run_id, const char *actor, const char *kind, const rbk_val *data,
			 int64_t *out_seq, rbk_err *err);

/* The same, data_json text made by lang/json's encoder: not parsed again. */
int rbk_store_append_encoded(rbk_store *s, int64_t run_id, const char *actor, const char *kind, const char *data_json,
			     int64_t *out_seq, rbk_err *err);

typedef struct {
	int64_t seq, run_id;
	const char *at, *actor, *kind, *data, *prev_hash, *hash;
	int part; /* in a timeline: 1, 2 ... within a batch event; 0: an event of its own */
} rbk_store_event;

/* The kind of an event holding a batch of pure events (transitions and
 * vars_set) recorded together: data {"events": [{"kind": K, "data": D}...]}. */
#define RBK_STORE_BATCH "batch"

/* Call fn for each event of run_id (0 = every run), in seq order, streaming.
 * The event's strings live until fn returns. fn returns 0 to go on; any
 * other value stops the walk and is returned. fn must not write to s. */
int rbk_store_events(rbk_store *s, int64_t run_id, int (*fn)(void *ctx, const rbk_store_event *ev),
		     void *ctx, rbk_err *err);
/* The same for the events of run_id (not 0) after after_seq only: reads
 * just those (an index range), however long the run's log is. */
int rbk_store_events_after(rbk_store *s, int64_t run_id, int64_t after_seq,
			   int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx, rbk_err *err);

/* The run's timeline: rbk_store_events / _after with each batch event
 * unpacked into the events it holds, in order, each with the batch's seq,
 * at, actor and hashes and its part number. What every reader of a run's
 * story uses; the chain, bundles and store copies read events as stored. */
int rbk_store_timeline(rbk_store *s, int64_t run_id, int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx,
		       rbk_err *err);
int rbk_store_timeline_after(rbk_store *s, int64_t run_id, int64_t after_seq,
			     int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx, rbk_err *err);

/* Recompute the chain, streaming in constant memory. Returns 0 when the
 * check ran (negative on a database error) with *out_count the events
 * checked and *out_bad_seq 0 when the chain is intact, else the first event
 * found wrong, *out_why (may be NULL; caller frees) saying how: modified
 * (its hash does not match its content), removed (a gap in seq), or
 * inserted/reordered/re-hashed (its prev_hash is not the hash before it).
 * Removing the LAST events leaves a valid shorter chain and is not
 * detectable here: that takes a seal of the chain head kept elsewhere. */
int rbk_store_verify(rbk_store *s, int64_t *out_count, int64_t *out_bad_seq, char **out_why,
		     rbk_err *err);

/* How many of the newest events rbk_store_writable checks. */
enum { RBK_STORE_TAIL_CHECK = 64 };

/* Before a command appends (run, resume, approve, reject, abort): 0 when
 * the store can take events, else -1 with err->code RBK_ERR_STORE and why:
 * it cannot be written (read-only file system, permissions; the path and
 * the reason named), rbk verify found its chain broken (remembered by
 * rbk_store_note_broken), or one of its newest RBK_STORE_TAIL_CHECK events
 * does not link. Constant time, whatever the store's size. */
int rbk_store_writable(rbk_store *s, rbk_err *err);
/* Remember what rbk verify found (why NULL: intact); written only when it
 * changes, and silently not on a read-only store. */
void rbk_store_note_broken(rbk_store *s, const char *why);

/* ---- steps: the index resume reads, derived from events ---- */

/* Insert or update the step (run_id, state, attempt), whose idempotency key
 * is "RUN:STATE:ATTEMPT". started_seq/ended_seq: 0 leaves the stored value
 * (NULL for a new row). Call it in the transaction of the event it records. */
int rbk_store_step_record(rbk_store *s, int64_t run_id, const char *state, int attempt,
			  const char *status, int64_t started_seq, int64_t ended_seq, rbk_err *err);

typedef struct {
	int64_t run_id;
	const char *state;
	int attempt;
	const char *status;
	int64_t started_seq, ended_seq; /* 0 = none */
	const char *idempotency_key;
} rbk_store_step;

/* Call fn for each step of run_id in the order they started (as
 * rbk_store_events does with its return values). */
int rbk_store_steps(rbk_store *s, int64_t run_id, int (*fn)(void *ctx, const rbk_store_step *st),
		    void *ctx, rbk_err *err);

/* The active run (running, waiting, interrupted, needs_attention) other
 * than except_run that holds lock key, or 0 in *out_run. Inside the
 * caller's transaction this is atomic with a following run_create. */
int rbk_store_lock_holder(rbk_store *s, const char *key, int64_t except_run, int64_t *out_run, rbk_err *err);
/* Record the pid of the process that owns a run (0: none). */
int rbk_store_run_owner(rbk_store *s, int64_t run_id, int64_t pid, rbk_err *err);

/* ---- executors: queues, leases, fencing (docs/scale-out.md) ----
 *
 * A run belongs to a queue (where its actions may execute). Its executor
 * holds a lease measured on the store's clock (PostgreSQL's now(); the
 * host's for SQLite, one host) and renews it; claiming a run bumps its
 * epoch, the fencing token. A handle fenced with (run, epoch) checks, at
 * the start of each writing transaction and under the same lock that every
 * claim takes, that the run's epoch is still epoch: once another executor
 * has claimed the run, every write fails with err->code RBK_ERR_FENCED and
 * nothing is written. */

/* Set run's queue; queued != 0 also makes it "queued" (created, waiting for
 * an executor). Call it in the transaction of rbk_store_run_create. */
int rbk_store_run_queue(rbk_store *s, int64_t run_id, const char *queue, int queued, rbk_err *err);

typedef struct {
	char *queue;	     /* NULL: none (a run from before queues) */
	char *owner;	     /* NULL: no lease */
	int64_t epoch;	     /* claims so far */
	int64_t left_ms;     /* until the lease ends on the store's clock; <= 0: ended */
} rbk_store_lease;

int rbk_store_lease_get(rbk_store *s, int64_t run_id, rbk_store_lease *out, rbk_err *err);
void rbk_store_lease_free(rbk_store_lease *l);

/* Claim run for owner for lease_ms: when it has no lease, an ended one, one
 * of owner's, or force (SQLite, where a free owner lock proves the holder
 * dead). 0 with *epoch the new epoch; 1 when another owner's lease is live
 * (err says whose and for how long); -1 with err. Takes the writers' lock
 * (joins the caller's transaction). */
int rbk_store_claim(rbk_store *s, int64_t run_id, const char *owner, int64_t lease_ms, int force, int64_t *epoch,
		    rbk_err *err);
/* Extend owner's lease at epoch: 0, 1 when it was lost (another epoch), -1
 * with err. Never waits for the writers' lock. */
int rbk_store_renew(rbk_store *s, int64_t run_id, const char *owner, int64_t epoch, int64_t lease_ms,
		    rbk_err *err);
/* End the lease of epoch (nothing when the run was claimed since). */
int rbk_store_release(rbk_store *s, int64_t run_id, int64_t epoch, rbk_err *err);
/* Fence every later writing transaction of this handle with (run, epoch);
 * run 0 removes the fence. */
void rbk_store_fence(rbk_store *s, int64_t run_id, int64_t epoch);

/* Top-level runs of the queues that need an executor: queued, or running
 * or waiting with no live lease (an interrupted run was stopped on
 * purpose: an operator resumes it). Queued and running ones first, then
 * waiting ones, oldest first; at most limit (0: all). fn returns non-zero
 * to stop. */
int rbk_store_claimable(rbk_store *s, const char *const *queues, size_t nqueues, int64_t limit,
			int (*fn)(void *ctx, int64_t run_id, const char *status), void *ctx, rbk_err *err);

/* ---- figures for rbk metrics ---- */

/* How many runs each (runbook, status) has, the called ones included. */
int rbk_store_run_counts(rbk_store *s, int (*fn)(void *ctx, const char *runbook, const char *status, int64_t n),
			 void *ctx, rbk_err *err);
/* Every step attempt that ended: its runbook, state, status, and the times
 * of its step_started and ending events (UTC ISO-8601). */
int rbk_store_step_times(rbk_store *s,
			 int (*fn)(void *ctx, const char *runbook, const char *state, const char *status,
				   const char *started_at, const char *ended_at),
			 void *ctx, rbk_err *err);

/* A time as the store writes it ("2026-11-21T11:44:45.123Z", UTC) in ms
 * since 1970; 0 when it is not one. */
int64_t rbk_store_time_ms(const char *at);

/* The store's clock, in ms since 1970 (PostgreSQL's clock_timestamp();
 * SQLite: the host's): what deadlines shared by hosts are measured on. */
int64_t rbk_store_now_ms(rbk_store *s);

/* Wake executors waiting in rbk_store_wait_work (PostgreSQL: NOTIFY;
 * SQLite: nothing, they poll). */
int rbk_store_notify(rbk_store *s, rbk_err *err);
/* Wait up to timeout_ms for a notification: 1 woken, 0 timed out, -1 err. */
int rbk_store_wait_work(rbk_store *s, int timeout_ms, rbk_err *err);

/* Try to become the one leader named name (the scheduler): 1 when this
 * handle leads (PostgreSQL: a session advisory lock, released by the
 * database when the connection dies), 0 when another does; SQLite: 1
 * (one host: the scheduler's owner lock decides). */
int rbk_store_lead(rbk_store *s, const char *name, rbk_err *err);
/* 0 while this handle can still reach the store (a leader that cannot
 * must stop firing), -1 with err. */
int rbk_store_ping(rbk_store *s, rbk_err *err);

typedef struct {
	const char *runbook, *status, *actor; /* NULL: any; actor as in principal.h */
	const char *since, *until;            /* ISO-8601 UTC bounds on created_at; NULL: open */
	int active_only;                      /* running, waiting, interrupted, needs_attention */
	int top_level_only;                   /* no child runs */
	int scheduled_only;                   /* runs started by a schedule fire */
	int64_t limit;                        /* 0: no limit */
} rbk_store_run_filter;

/* Runs matching f (NULL: all), newest first. The run passed to fn is
 * borrowed for the call; fn returns non-zero to stop. */
int rbk_store_runs(rbk_store *s, const rbk_store_run_filter *f, int (*fn)(void *ctx, const rbk_store_run *run),
		   void *ctx, rbk_err *err);

/* ---- the scheduler's fires (schemas/store.sql, migration 2) ---- */

typedef struct {
	int64_t id;
	const char *runbook;
	int entry;
	const char *nominal, *decided_at, *outcome;
	int64_t run_id;         /* 0: none */
	const char *note;       /* NULL: none */
	const char *run_status; /* the fired run's status; NULL: none */
} rbk_store_fire;

/* Record the decision for one nominal fire time. Returns 0 with *out_id
 * when this call recorded it, 1 when it was already recorded (a restarted
 * or second scheduler: do nothing), -1 with err. */
int rbk_store_fire_claim(rbk_store *s, const char *runbook, int entry, const char *nominal, const char *outcome,
			 const char *note, int64_t *out_id, rbk_err *err);
/* Change a fire's outcome; run_id 0 and note NULL keep what is there. */
int rbk_store_fire_set(rbk_store *s, int64_t fire, const char *outcome, int64_t run_id, const char *note, rbk_err *err);
/* Fires, newest nominal time first; runbook NULL and entry < 0 and
 * outcome NULL match any; limit 0: all. Borrowed for the call. */
int rbk_store_fires(rbk_store *s, const char *runbook, int entry, const char *outcome, int64_t limit,
		    int (*fn)(void *ctx, const rbk_store_fire *f), void *ctx, rbk_err *err);

/* The newest event's seq and hash (0 and 64 '0's for an empty store). */
int rbk_store_head(rbk_store *s, int64_t *seq, char hash[65], rbk_err *err);

/* The hash of event seq: 0, 1 when there is no such event, -1 with err. */
int rbk_store_event_hash(rbk_store *s, int64_t seq, char hash[65], rbk_err *err);

/* The chain rule as a pure function (for bundles checked away from the
 * store): hash = SHA-256(prev || seq \n run_id \n at \n actor \n kind \n data). */
void rbk_store_chain_hash(const char *prev, int64_t seq, int64_t run_id, const char *at, const char *actor,
			  const char *kind, const char *data, char out[65]);
/* Every event with from_seq <= seq <= to_seq, in order (borrowed for the call). */
int rbk_store_links(rbk_store *s, int64_t from_seq, int64_t to_seq, int (*fn)(void *ctx, const rbk_store_event *ev),
		    void *ctx, rbk_err *err);

/* A small fact kept between processes (NULL in *out when absent; caller frees). */
int rbk_store_meta_get(rbk_store *s, const char *key, char **out, rbk_err *err);
int rbk_store_meta_set(rbk_store *s, const char *key, const char *value, rbk_err *err);

/* ---- copying a store ----
 *
 * rbk store copy: an SQLite store read whole, from one snapshot, and
 * written verbatim into an empty PostgreSQL store inside one
 * rbk_store_begin transaction of the target: ids, times, owner pids and the
 * events' hashes as they are, nothing recomputed, so the copy's chain head
 * and any seal of the source stay valid. The reads below answer on SQLite
 * only, the imports on PostgreSQL only; the other backend gets an error. */

typedef struct {
	int64_t runs, events, steps, fires, sources, meta;
} rbk_store_counts;

/* Rows per table (both backends). */
int rbk_store_counts_get(rbk_store *s, rbk_store_counts *out, rbk_err *err);

/* Open a read transaction: every read until rbk_store_rollback sees the
 * store as it was now, while other processes go on writing. SQLite only. */
int rbk_store_read_snapshot(rbk_store *s, rbk_err *err);
/* Every pinned source, in sha256 order: its len bytes, borrowed for the
 * call and not NUL-terminated. fn returns non-zero to stop. SQLite only. */
int rbk_store_sources(rbk_store *s, int (*fn)(void *ctx, const char *sha256, const char *bytes, size_t len),
		      void *ctx, rbk_err *err);
/* Every meta row, in key order (borrowed for the call). SQLite only. */
int rbk_store_meta_all(rbk_store *s, int (*fn)(void *ctx, const char *key, const char *value), void *ctx,
		       rbk_err *err);

/* One row each, exactly as given (0 ids and seqs are NULL, as the structs
 * say), only inside the caller's rbk_store_begin transaction; a key already
 * there or a reference to a missing row is an error that rolls it back.
 * Sources first, then runs in id order (a child refers to its parent),
 * then events, steps and fires. import_source refuses bytes that do not
 * hash to sha256; import_queue sets a run's queue and epoch (no lease:
 * the copy starts with none); import_meta replaces a key the target had.
 * PostgreSQL only: on SQLite, "store copy writes only into PostgreSQL". */
int rbk_store_import_source(rbk_store *s, const char *sha256, const char *bytes, size_t len, rbk_err *err);
int rbk_store_import_run(rbk_store *s, const rbk_store_run *run, rbk_err *err);
int rbk_store_import_queue(rbk_store *s, int64_t run_id, const char *queue, int64_t epoch, rbk_err *err);
int rbk_store_import_event(rbk_store *s, const rbk_store_event *ev, rbk_err *err);
int rbk_store_import_step(rbk_store *s, const rbk_store_step *st, rbk_err *err);
int rbk_store_import_fire(rbk_store *s, const rbk_store_fire *f, rbk_err *err);
int rbk_store_import_meta(rbk_store *s, const char *key, const char *value, rbk_err *err);

#endif
