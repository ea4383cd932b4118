/* store: the SQLite backend of the durable store.
 *
 * The only module that includes sqlite3.h, and the home of every SQL
 * statement of rbk. Writers take the write lock up front (BEGIN IMMEDIATE),
 * so the read of the chain head and the insert of the next event can never
 * interleave with another process's append. */
#include "store/sqlite.h"
#include "base/perm.h"
#include "store/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/dirlist.h"
#include "base/hash.h"
#include "lang/json.h"
#include "base/mem.h"
#include "lang/value.h"

/* How long one statement waits in SQLite's busy handler, and how long the
 * retry loop around BEGIN IMMEDIATE and COMMIT keeps trying in all: far
 * beyond any batch rbk holds the lock for, so contention never surfaces as
 * "database is locked", while a store wedged by a stuck process still gives
 * an error eventually. */
enum { BUSY_TIMEOUT_MS = 2000, LOCK_WAIT_MS = 60000 };

/* ---- migrations: append only; migration N brings user_version to N ---- */

static const char schema_v1[] =
	"-- rbk store, schema version 1 (SQLite).\n"
	"--\n"
	"-- engine/src/store/sqlite.c embeds this text as migration 1 and records it in\n"
	"-- PRAGMA user_version; tests/unit/test_store.c checks the two stay\n"
	"-- byte-identical. Later versions are new migrations, never edits of this one.\n"
	"--\n"
	"-- The event log is the truth. runs and steps are indexes derived from it,\n"
	"-- updated in the same transactions as the events they summarize.\n"
	"\n"
	"-- A runbook's exact bytes, stored once per content.\n"
	"CREATE TABLE sources (\n"
	"\tsha256 TEXT PRIMARY KEY,\n"
	"\tbytes  BLOB NOT NULL\n"
	");\n"
	"\n"
	"CREATE TABLE runs (\n"
	"\tid              INTEGER PRIMARY KEY, -- 1, 2, 3 ...: short ids an operator types\n"
	"\trunbook         TEXT NOT NULL,\n"
	"\tstatus          TEXT NOT NULL,\n"
	"\tactor           TEXT NOT NULL,       -- user@host, or scheduler\n"
	"\tcreated_at      TEXT NOT NULL,       -- UTC ISO-8601 with milliseconds\n"
	"\tupdated_at      TEXT NOT NULL,\n"
	"\tparent_run      INTEGER NULL REFERENCES runs(id), -- the run that called this one\n"
	"\tparent_state    TEXT NULL,           -- the parent's state that made the call\n"
	"\tdry_run         INTEGER NOT NULL,\n"
	"\tparams_json     TEXT NOT NULL,       -- secrets already masked by the caller\n"
	"\tsource_sha256   TEXT NOT NULL REFERENCES sources(sha256),\n"
	"\tprovenance_json TEXT NOT NULL,\n"
	"\tcurrent_state   TEXT NULL,\n"
	"\towner_pid       INTEGER NULL,\n"
	"\tlock_key        TEXT NULL\n"
	");\n"
	"\n"
	"CREATE INDEX runs_by_runbook ON runs(runbook, created_at);\n"
	"CREATE INDEX runs_by_status ON runs(status, created_at);\n"
	"CREATE INDEX runs_by_created ON runs(created_at);\n"
	"CREATE INDEX runs_by_lock ON runs(lock_key) WHERE lock_key IS NOT NULL;\n"
	"\n"
	"-- The audit chain, global across runs:\n"
	"--   hash = SHA-256(prev_hash || seq \"\\n\" run_id \"\\n\" at \"\\n\" actor \"\\n\" kind "
	"\"\\n\" data)\n"
	"-- with prev_hash the previous event's hash as 64 hex digits (64 '0's for\n"
	"-- seq 1), integers in decimal, the other fields as stored.\n"
	"CREATE TABLE events (\n"
	"\tseq       INTEGER PRIMARY KEY,  -- 1, 2, 3 ... without gaps\n"
	"\trun_id    INTEGER NOT NULL REFERENCES runs(id),\n"
	"\tat        TEXT NOT NULL,        -- UTC ISO-8601 with milliseconds: "
	"2026-11-21T11:44:45.123Z\n"
	"\tactor     TEXT NOT NULL,\n"
	"\tkind      TEXT NOT NULL,\n"
	"\tdata      TEXT NOT NULL,        -- JSON\n"
	"\tprev_hash TEXT NOT NULL,\n"
	"\thash      TEXT NOT NULL\n"
	");\n"
	"\n"
	"CREATE INDEX events_by_run ON events(run_id, seq);\n"
	"\n"
	"-- Append-only: a change by mistake fails here; one on purpose (dropping\n"
	"-- these) is what the hash chain is for.\n"
	"CREATE TRIGGER events_no_update BEFORE UPDATE ON events\n"
	"BEGIN\n"
	"\tSELECT RAISE(ABORT, 'events are append-only');\n"
	"END;\n"
	"\n"
	"CREATE TRIGGER events_no_delete BEFORE DELETE ON events\n"
	"BEGIN\n"
	"\tSELECT RAISE(ABORT, 'events are append-only');\n"
	"END;\n"
	"\n"
	"-- One row per attempt of a state's action: what resume consults.\n"
	"CREATE TABLE steps (\n"
	"\trun_id          INTEGER NOT NULL REFERENCES runs(id),\n"
	"\tstate           TEXT NOT NULL,\n"
	"\tattempt         INTEGER NOT NULL,\n"
	"\tstatus          TEXT NOT NULL,\n"
	"\tstarted_seq     INTEGER NULL,  -- the step_started event\n"
	"\tended_seq       INTEGER NULL,  -- the event that recorded its result\n"
	"\tidempotency_key TEXT NOT NULL UNIQUE, -- run:state:attempt\n"
	"\tPRIMARY KEY (run_id, state, attempt)\n"
	");\n";

static const char schema_v2[] =
	"\n"
	"-- migration 2: the scheduler's record of fires.\n"
	"--\n"
	"-- One row per (runbook, schedule entry, nominal fire time), whatever was\n"
	"-- decided for it: fired (with its run), missed (the scheduler was down\n"
	"-- longer than catch_up), skipped (overlap: skip), queued (overlap: queue),\n"
	"-- or firing (claimed; a scheduler that died before starting the run leaves\n"
	"-- it so, and it is reported, not fired again). The unique key is what makes\n"
	"-- a restarted scheduler never fire twice.\n"
	"CREATE TABLE fires (\n"
	"\tid         INTEGER PRIMARY KEY,\n"
	"\trunbook    TEXT NOT NULL,\n"
	"\tentry      INTEGER NOT NULL,    -- index of the entry in the runbook's schedule\n"
	"\tnominal    TEXT NOT NULL,       -- UTC ISO-8601: the time the entry named\n"
	"\tdecided_at TEXT NOT NULL,\n"
	"\toutcome    TEXT NOT NULL,       -- firing fired missed skipped queued failed\n"
	"\trun_id     INTEGER NULL REFERENCES runs(id),\n"
	"\tnote       TEXT NULL,\n"
	"\tUNIQUE (runbook, entry, nominal)\n"
	");\n"
	"\n"
	"-- Small facts the engine keeps between processes: the scheduler's last\n"
	"-- tick (how far back a restarted scheduler must look for missed fires).\n"
	"CREATE TABLE meta (\n"
	"\tkey   TEXT PRIMARY KEY,\n"
	"\tvalue TEXT NOT NULL\n"
	");\n";

static const char schema_v3[] =
	"\n"
	"-- migration 3: where a run may execute and who executes it\n"
	"-- (docs/scale-out.md): its queue, its executor's lease (milliseconds since\n"
	"-- 1970 on the host's clock: an SQLite store serves one host) and its epoch,\n"
	"-- the fencing token each claim bumps.\n"
	"ALTER TABLE runs ADD COLUMN queue TEXT NULL;\n"
	"ALTER TABLE runs ADD COLUMN lease_owner TEXT NULL;\n"
	"ALTER TABLE runs ADD COLUMN lease_until INTEGER NULL;\n"
	"ALTER TABLE runs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;\n"
	"CREATE INDEX runs_by_queue ON runs(queue, status) WHERE parent_run IS NULL;\n";

/* schemas/store.sql is these texts, in order. */
static const char *const migrations[] = {schema_v1, schema_v2, schema_v3};
enum { SCHEMA_LATEST = (int)(sizeof migrations / sizeof migrations[0]) };

int rbk_sqlite_schema_latest(void) { return SCHEMA_LATEST; }

const char *rbk_sqlite_migration_sql(int version)
{
	return version >= 1 && version <= SCHEMA_LATEST ? migrations[version - 1] : NULL;
}

/* ---- statements ---- */

enum {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_LAST_EVENT,
	ST_INSERT_EVENT,
	ST_INSERT_SOURCE,
	ST_GET_SOURCE,
	ST_INSERT_RUN,
	ST_GET_RUN,
	ST_SET_RUN,
	ST_UPSERT_STEP,
	ST_LOCK_HOLDER,
	ST_SET_OWNER,
	ST_CLAIM_FIRE,
	ST_SET_FIRE,
	ST_GET_META,
	ST_SET_META,
	ST_EVENT_HASH,
	ST_FENCE,
	ST_COUNT
};

/* Prepared once per handle and reused: an append is on the engine's hot path. */
static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_LAST_EVENT] = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
	[ST_INSERT_EVENT] =
		"INSERT INTO events (seq, run_id, at, actor, kind, data, prev_hash, hash)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_INSERT_SOURCE] = "INSERT INTO sources (sha256, bytes) VALUES (?1, ?2)"
			     " ON CONFLICT (sha256) DO NOTHING",
	[ST_GET_SOURCE] = "SELECT bytes FROM sources WHERE sha256 = ?1",
	[ST_INSERT_RUN] =
		"INSERT INTO runs (runbook, status, actor, created_at, updated_at,"
		" parent_run, parent_state, dry_run, params_json, source_sha256,"
		" provenance_json, current_state, owner_pid, lock_key)"
		" VALUES (?1, 'running', ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, ?11)",
	[ST_GET_RUN] = "SELECT id, runbook, status, actor, created_at, updated_at, parent_run,"
		       " parent_state, dry_run, params_json, source_sha256, provenance_json,"
		       " current_state, owner_pid, lock_key FROM runs WHERE id = ?1",
	[ST_SET_RUN] =
		"UPDATE runs SET status = COALESCE(?2, status),"
		" current_state = COALESCE(?3, current_state), updated_at = ?4 WHERE id = ?1",
	[ST_UPSERT_STEP] =
		"INSERT INTO steps (run_id, state, attempt, status, started_seq, ended_seq,"
		" idempotency_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
		" ON CONFLICT (run_id, state, attempt) DO UPDATE SET status = excluded.status,"
		" started_seq = COALESCE(excluded.started_seq, steps.started_seq),"
		" ended_seq = COALESCE(excluded.ended_seq, steps.ended_seq)",
	[ST_LOCK_HOLDER] = "SELECT id FROM runs WHERE lock_key = ?1 AND id != ?2 AND status IN"
			   " ('queued', 'running', 'waiting', 'interrupted', 'needs_attention') ORDER BY id LIMIT 1",
	[ST_SET_OWNER] = "UPDATE runs SET owner_pid = ?2 WHERE id = ?1",
	[ST_CLAIM_FIRE] = "INSERT INTO fires (runbook, entry, nominal, decided_at, outcome, note)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (runbook, entry, nominal) DO NOTHING",
	[ST_SET_FIRE] = "UPDATE fires SET outcome = ?2, run_id = COALESCE(?3, run_id),"
			" note = COALESCE(?4, note) WHERE id = ?1",
	[ST_GET_META] = "SELECT value FROM meta WHERE key = ?1",
	[ST_SET_META] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
			" ON CONFLICT (key) DO UPDATE SET value = excluded.value",
	[ST_EVENT_HASH] = "SELECT hash FROM events WHERE seq = ?1",
	[ST_FENCE] = "SELECT epoch FROM runs WHERE id = ?1",
};

/* Walks get a statement of their own, so a callback may read the store. */
static const char sql_events_all[] =
	"SELECT seq, run_id, at, actor, kind, data, prev_hash, hash FROM events ORDER BY seq";
static const char sql_events_from[] =
	"SELECT seq, run_id, at, actor, kind, data, prev_hash, hash FROM events WHERE seq >= ?1 ORDER BY seq";
static const char sql_events_run[] =
	"SELECT seq, run_id, at, actor, kind, data, prev_hash, hash FROM events"
	" WHERE run_id = ?1 ORDER BY seq";
static const char sql_events_run_after[] =
	"SELECT seq, run_id, at, actor, kind, data, prev_hash, hash FROM events"
	" WHERE run_id = ?1 AND seq > ?2 ORDER BY seq";
static const char sql_steps_run[] =
	"SELECT run_id, state, attempt, status, started_seq, ended_seq, idempotency_key"
	" FROM steps WHERE run_id = ?1"
	" ORDER BY started_seq IS NULL, started_seq, state, attempt";
static const char sql_user_version[] = "PRAGMA user_version";
static const char sql_set_user_version[] = "PRAGMA user_version = %d";
static const char sql_journal_wal[] = "PRAGMA journal_mode = WAL";
static const char sql_journal_mode[] = "PRAGMA journal_mode";
static const char sql_sync_full[] = "PRAGMA synchronous = FULL";
static const char sql_synchronous[] = "PRAGMA synchronous";
static const char sql_fk_on[] = "PRAGMA foreign_keys = ON";
static const char sql_foreign_keys[] = "PRAGMA foreign_keys";

/* ---- the handle ---- */

enum { TX_NONE, TX_CALLER, TX_FAILED };

struct rbk_sqlite {
	sqlite3 *db;
	char *path;
	int tx;		  /* the caller's transaction, see store.h */
	char tx_why[512]; /* why a caller's transaction was rolled back */
	sqlite3_stmt *st[ST_COUNT];
	int64_t fence_run, fence_epoch; /* rbk_sqlite_fence */
	rbk_buf canon; /* reused for the bytes each event hash covers */
	unsigned rng;  /* backoff jitter */
	/* The last event appended in the open writing transaction: under its
	 * write lock no one else appends, so the next append needs no query. */
	bool tail_ok;
	int64_t tail_seq;
	char tail_hash[65];
};

const char *rbk_sqlite_path(const rbk_sqlite *s) { return s->path; }

static const char statuses[][16] = {"queued", "running",	 "waiting", "interrupted", "needs_attention",
				    "succeeded", "failed",  "rolled_back", "aborted"};

/* ---- small helpers ---- */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* UTC ISO-8601 with milliseconds: 2026-11-21T11:44:45.123Z. */
static void now_iso(char out[64])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

static int is_busy(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

/* Sleep 1..50 ms, growing with the attempt, jittered so that waiting writers
 * do not retry in lockstep. */
static void backoff(rbk_sqlite *s, int attempt)
{
	s->rng = s->rng * 1103515245u + 12345u;
	long cap = attempt < 6 ? 1L << attempt : 50;
	if (cap > 50)
		cap = 50;
	long ms = 1 + (long)((s->rng >> 16) % (unsigned)cap);
	struct timespec ts = {0, ms * 1000000L};
	nanosleep(&ts, NULL);
}

/* sqlite3_column_text that never returns NULL (a NULL column reads as ""). */
static const char *col_text(sqlite3_stmt *st, int i, size_t *len)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	if (len)
		*len = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
	return t ? (const char *)t : "";
}

/* Borrowed text of a column that may be NULL (NULL stays NULL). */
static const char *col_opt(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? NULL : (const char *)sqlite3_column_text(st, i);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	size_t n;
	const char *t = col_text(st, i, &n);
	return rbk_xstrndup(t, n);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_id_or_null(sqlite3_stmt *st, int i, int64_t v)
{
	if (v)
		sqlite3_bind_int64(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

/* ---- errors ---- */

/* The system call behind an extended i/o error code, when it says. */
static const char *io_what(int rc)
{
	switch (rc) {
	case SQLITE_IOERR_READ:
	case SQLITE_IOERR_SHORT_READ:
		return "read";
	case SQLITE_IOERR_WRITE:
		return "write";
	case SQLITE_IOERR_FSYNC:
	case SQLITE_IOERR_DIR_FSYNC:
		return "fsync";
	case SQLITE_IOERR_TRUNCATE:
		return "truncate";
	case SQLITE_IOERR_SHMOPEN:
	case SQLITE_IOERR_SHMSIZE:
	case SQLITE_IOERR_SHMMAP:
		return "shared memory (rbk.db-shm)";
	default:
		return NULL;
	}
}

/* Why path (the store's file) cannot be written, from the file system: the
 * file itself, or its directory, where SQLite creates rbk.db-wal and
 * rbk.db-shm. Writes "PATH: reason" into buf; 0 when nothing is found.
 * Asks with faccessat, never by opening: closing a descriptor of a file
 * would drop the POSIX locks SQLite holds on it in this process. */
static int why_unwritable(const char *path, char *buf, size_t n)
{
	if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) < 0 && errno != ENOENT) {
		snprintf(buf, n, "%s: %s", path, strerror(errno));
		return 1;
	}
	const char *slash = strrchr(path, '/');
	char *dir = slash ? rbk_xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : rbk_xstrdup(".");
	int found = 0;
	if (faccessat(AT_FDCWD, dir, W_OK, AT_EACCESS) < 0) {
		snprintf(buf, n, "%s: %s (the store's directory must be writable: SQLite keeps rbk.db-wal and "
			 "rbk.db-shm there)", dir, strerror(errno));
		found = 1;
	}
	for (int i = 0; i < 2 && !found; i++) {
		char *side = rbk_xasprintf("%s%s", path, i ? "-shm" : "-wal");
		if (faccessat(AT_FDCWD, side, W_OK, AT_EACCESS) < 0 && errno != ENOENT) {
			snprintf(buf, n, "%s: %s", side, strerror(errno));
			found = 1;
		}
		rbk_free(side);
	}
	rbk_free(dir);
	return found;
}

/* What went wrong, in words an operator acts on. */
static void describe(rbk_sqlite *s, int rc, char *buf, size_t n)
{
	int sys = s->db ? sqlite3_system_errno(s->db) : 0;
	int prim = rc & 0xff;
	if ((prim == SQLITE_READONLY || prim == SQLITE_CANTOPEN || prim == SQLITE_PERM) && n > 16) {
		/* SQLite's own words ("cannot open (No such file or directory)")
		 * hide the cause: ask the file system. */
		memcpy(buf, "cannot write: ", 15);
		if (why_unwritable(s->path, buf + 14, n - 14))
			return;
	}
	switch (prim) {
	case SQLITE_FULL:
		snprintf(buf, n, "disk full");
		break;
	case SQLITE_IOERR: {
		const char *what = io_what(rc);
		if (what && sys)
			snprintf(buf, n, "i/o error (%s failed: %s)", what, strerror(sys));
		else if (what)
			snprintf(buf, n, "i/o error (%s failed)", what);
		else if (sys)
			snprintf(buf, n, "i/o error (%s)", strerror(sys));
		else
			snprintf(buf, n, "i/o error");
		break;
	}
	case SQLITE_CORRUPT:
		snprintf(buf, n, "the database file is corrupt");
		break;
	case SQLITE_NOTADB:
		snprintf(buf, n, "not an sqlite database");
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		snprintf(buf, n, "locked by another process for too long (waited up to %d s)",
			 LOCK_WAIT_MS / 1000);
		break;
	case SQLITE_READONLY:
		snprintf(buf, n, "the database is read-only");
		break;
	case SQLITE_CANTOPEN:
		snprintf(buf, n, "cannot open%s%s%s", sys ? " (" : "", sys ? strerror(sys) : "",
			 sys ? ")" : "");
		break;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		snprintf(buf, n, "permission denied");
		break;
	case SQLITE_NOMEM:
		snprintf(buf, n, "out of memory");
		break;
	default:
		snprintf(buf, n, "%s", s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
	}
}

static void rollback_now(rbk_sqlite *s)
{
	s->tail_ok = false;
	/* After FULL or IOERR SQLite may have rolled back already; a ROLLBACK
	 * without a transaction would only fail, so ask first. */
	if (s->db && !sqlite3_get_autocommit(s->db)) {
		sqlite3_stmt *st = s->st[ST_ROLLBACK];
		if (st) {
			sqlite3_step(st);
			sqlite3_reset(st);
		} else {
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		}
	}
}

/* A database failure during op: the transaction, whoever opened it, is rolled
 * back so the store stays as it was before it began. what overrides the
 * description of rc. Returns -1. */
static int db_fail(rbk_sqlite *s, int rc, const char *op, const char *what, rbk_err *err)
{
	char desc[256];
	rbk_err local;
	if (!what) {
		describe(s, rc, desc, sizeof desc);
		what = desc;
	}
	rbk_err_set(&local, -1, "store %s: %s: %s", s->path, op, what);
	int prim = rc & 0xff;
	if (prim == SQLITE_READONLY || prim == SQLITE_CANTOPEN || prim == SQLITE_PERM)
		local.code = RBK_ERR_STORE;
	rollback_now(s);
	if (s->tx == TX_CALLER) {
		s->tx = TX_FAILED;
		snprintf(s->tx_why, sizeof s->tx_why, "%s", local.msg);
	}
	if (err)
		*err = local;
	return -1;
}

/* An error that is not the database's: nothing to roll back. */
static int plain_fail(rbk_sqlite *s, rbk_err *err, int code, const char *op, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int plain_fail(rbk_sqlite *s, rbk_err *err, int code, const char *op, const char *fmt, ...)
{
	char what[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	rbk_err_set(err, -1, "store %s: %s: %s", s->path, op, what);
	if (err)
		err->code = code;
	return -1;
}

/* ---- statements and transactions ---- */

static sqlite3_stmt *stmt(rbk_sqlite *s, int id, const char *op, rbk_err *err)
{
	if (!s->st[id]) {
		int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					    &s->st[id], NULL);
		if (rc != SQLITE_OK) {
			db_fail(s, rc, op, NULL, err);
			return NULL;
		}
	}
	return s->st[id];
}

/* Step a statement that is safe to repeat (BEGIN, COMMIT, a pragma) until it
 * stops being busy or the lock wait is over. The caller resets it. */
static int step_retry(rbk_sqlite *s, sqlite3_stmt *st)
{
	int64_t deadline = mono_ms() + LOCK_WAIT_MS;
	for (int attempt = 0;; attempt++) {
		int rc = sqlite3_step(st);
		if (!is_busy(rc) || mono_ms() >= deadline)
			return rc;
		sqlite3_reset(st);
		backoff(s, attempt);
	}
}

static int check_fence(rbk_sqlite *s, const char *op, rbk_err *err);

static int tx_begin(rbk_sqlite *s, const char *op, rbk_err *err)
{
	s->tail_ok = false;
	sqlite3_stmt *st = stmt(s, ST_BEGIN, op, err);
	if (!st)
		return -1;
	int rc = step_retry(s, st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(s, rc, op, NULL, err);
	/* Under the write lock every claim also takes: the epoch cannot move
	 * until this transaction ends. */
	if (s->fence_run && check_fence(s, op, err) < 0) {
		rollback_now(s);
		return -1;
	}
	return 0;
}

static int tx_commit(rbk_sqlite *s, const char *op, rbk_err *err)
{
	sqlite3_stmt *st = stmt(s, ST_COMMIT, op, err);
	if (!st)
		return -1;
	int rc = step_retry(s, st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_fail(s, rc, op, NULL, err);
}

/* Start a writing operation: join the caller's transaction or open one of
 * our own (*own = 1). */
static int op_begin(rbk_sqlite *s, int *own, const char *op, rbk_err *err)
{
	*own = 0;
	if (s->tx == TX_CALLER)
		return 0;
	if (s->tx == TX_FAILED)
		return plain_fail(s, err, RBK_ERR_GENERIC, op,
				  "the transaction was rolled back after an earlier error (%s)",
				  s->tx_why);
	*own = 1;
	return tx_begin(s, op, err);
}

/* End a writing operation begun with op_begin, rc its result so far. */
static int op_end(rbk_sqlite *s, int own, int rc, const char *op, rbk_err *err)
{
	if (rc < 0) {
		if (own)
			rollback_now(s);
		return rc;
	}
	return own ? tx_commit(s, op, err) : 0;
}

int rbk_sqlite_begin(rbk_sqlite *s, rbk_err *err)
{
	if (s->tx != TX_NONE)
		return plain_fail(s, err, RBK_ERR_GENERIC, "begin",
				  "a transaction is already open");
	if (tx_begin(s, "begin", err) < 0)
		return -1;
	s->tx = TX_CALLER;
	return 0;
}

int rbk_sqlite_commit(rbk_sqlite *s, rbk_err *err)
{
	if (s->tx == TX_NONE)
		return plain_fail(s, err, RBK_ERR_GENERIC, "commit", "no transaction is open");
	if (s->tx == TX_FAILED) {
		s->tx = TX_NONE;
		return plain_fail(s, err, RBK_ERR_GENERIC, "commit",
				  "the transaction was rolled back after an earlier error (%s)",
				  s->tx_why);
	}
	int rc = tx_commit(s, "commit", err);
	s->tx = TX_NONE;
	return rc;
}

void rbk_sqlite_rollback(rbk_sqlite *s)
{
	rollback_now(s);
	s->tx = TX_NONE;
}

/* ---- opening ---- */

/* Run a parameterless statement (with retries when busy); *out_int and
 * out_text (size n) receive the first column of its first row if given. */
static int exec1(rbk_sqlite *s, const char *sql, const char *op, int *out_int, char *out_text,
		 size_t n, rbk_err *err)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_fail(s, rc, op, NULL, err);
	rc = step_retry(s, st);
	if (rc == SQLITE_ROW) {
		if (out_int)
			*out_int = sqlite3_column_int(st, 0);
		if (out_text)
			snprintf(out_text, n, "%s", col_text(st, 0, NULL));
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_fail(s, rc, op, NULL, err);
}

/* Refuse a file that is not SQLite before SQLite touches it: never risk
 * rewriting someone's file that happens to sit at the store's path. An empty
 * file is what SQLite itself treats as a new database. */
/* A store anyone can write is no record: another user could replace,
 * remove or rewrite it. Its directory and file are refused when writable
 * by others (a directory's sticky bit does not help: rbk.db-wal can still
 * be planted beside it). */
static int check_private(const char *home, const char *path, rbk_err *err)
{
	unsigned mode = 0;
	const char *what = rbk_perm_open_to_all((const char *const[]){home, path, NULL}, &mode);
	if (!what)
		return 0;
	rbk_err_set(err, -1,
		    "store %s: %s can be written by anyone (mode %04o), so the record could be replaced or removed "
		    "by another user; refused (chmod o-w %s)",
		    path, what, mode, what);
	err->code = RBK_ERR_STORE;
	return -1;
}

static int check_header(const char *path, rbk_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		rbk_err_set(err, -1, "store %s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	char hdr[16];
	ssize_t n = read(fd, hdr, sizeof hdr);
	int e = errno;
	close(fd);
	if (n < 0) {
		rbk_err_set(err, -1, "store %s: cannot read: %s", path, strerror(e));
		return -1;
	}
	if (n > 0 && (n < 16 || memcmp(hdr, "SQLite format 3", 16) != 0)) {
		rbk_err_set(err, -1, "store %s: not an sqlite database (left as it is)", path);
		return -1;
	}
	return 0;
}

static int migrate(rbk_sqlite *s, rbk_err *err)
{
	const char *op = "migrate schema";
	if (tx_begin(s, op, err) < 0)
		return -1;
	/* Read again under the write lock: another process may have migrated
	 * since we looked. */
	int version = 0;
	if (exec1(s, sql_user_version, op, &version, NULL, 0, err) < 0)
		return -1;
	if (version > SCHEMA_LATEST) {
		rollback_now(s);
		return plain_fail(s, err, RBK_ERR_GENERIC, "open",
				  "store schema version %d is newer than this rbk (%d)", version,
				  SCHEMA_LATEST);
	}
	for (int v = version + 1; v <= SCHEMA_LATEST; v++) {
		int rc = sqlite3_exec(s->db, migrations[v - 1], NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			char what[400];
			describe(s, rc, what, sizeof what);
			char op2[64];
			snprintf(op2, sizeof op2, "migrate schema to version %d", v);
			return db_fail(s, rc, op2, what, err);
		}
		char sql[64];
		snprintf(sql, sizeof sql, sql_set_user_version, v);
		if (exec1(s, sql, op, NULL, NULL, 0, err) < 0)
			return -1;
	}
	return tx_commit(s, op, err);
}

int rbk_sqlite_open(rbk_sqlite **out, const char *home, rbk_err *err)
{
	*out = NULL;
	if (!home || !*home) {
		rbk_err_set(err, -1, "store: no home directory given");
		return -1;
	}
	size_t hl = strlen(home);
	while (hl > 1 && home[hl - 1] == '/')
		hl--;
	char *path = rbk_xasprintf("%.*s/rbk.db", (int)hl, home);
	int rc = rbk_sqlite_open_file(out, path, err);
	rbk_free(path);
	return rc;
}

int rbk_sqlite_open_file(rbk_sqlite **out, const char *file, rbk_err *err)
{
	*out = NULL;
	if (!file || !*file) {
		rbk_err_set(err, -1, "store: no SQLite file given");
		return -1;
	}
	char *home = rbk_xstrdup(file);
	char *slash = strrchr(home, '/');
	if (!slash)
		strcpy(home, ".");
	else if (slash == home)
		slash[1] = 0;
	else
		*slash = 0;
	int hrc = rbk_mkdir_p(home, err);
	char *path = rbk_xstrdup(file);
	if (hrc < 0 || check_private(home, path, err) < 0 || check_header(path, err) < 0) {
		rbk_free(home);
		rbk_free(path);
		return -1;
	}
	/* A new store file takes its directory's permissions (without x),
	 * whatever the umask: a personal home (0700) gives 0600, a home shared
	 * by a group (2770) gives 0660; SQLite gives rbk.db-wal and rbk.db-shm
	 * the mode of rbk.db (docs/security.md). An empty file is a new store. */
	struct stat hs;
	int nfd = stat(home, &hs) == 0 ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
	if (nfd >= 0) {
		if (fchmod(nfd, hs.st_mode & 0666) < 0) {
			/* leave it 0600: only its owner can use it */
		}
		close(nfd);
	}
	rbk_free(home);
	rbk_sqlite *s = rbk_xcalloc(1, sizeof *s);
	s->path = path;
	s->rng = (unsigned)getpid() ^ (unsigned)mono_ms();
	rbk_store_fault_install(); /* a no-op unless RBK_FAULT_IO is set (tests) */

	int rc = sqlite3_open_v2(path, &s->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		db_fail(s, rc, "open", NULL, err);
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	/* The WAL stays when the last connection closes: each short-lived rbk
	 * process would otherwise create it anew (a sync of the directory) and
	 * restart it (a sync of its header) in its first commit, three syncs
	 * where one makes the commit durable. Checkpoints still run as it
	 * grows (wal_autocheckpoint). */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);

	/* The version check comes first: a store from a newer rbk is refused
	 * before anything (even the journal mode) is written to it. */
	int version = 0;
	if (exec1(s, sql_user_version, "open", &version, NULL, 0, err) < 0)
		goto fail;
	if (version > SCHEMA_LATEST) {
		plain_fail(s, err, RBK_ERR_GENERIC, "open",
			   "store schema version %d is newer than this rbk (%d)", version,
			   SCHEMA_LATEST);
		goto fail;
	}
	char mode[16];
	if (exec1(s, sql_fk_on, "open", NULL, NULL, 0, err) < 0 ||
	    exec1(s, sql_journal_wal, "open: set WAL mode", NULL, mode, sizeof mode, err) < 0 ||
	    exec1(s, sql_sync_full, "open", NULL, NULL, 0, err) < 0)
		goto fail;
	if (strcmp(mode, "wal") != 0) {
		plain_fail(
			s, err, RBK_ERR_GENERIC, "open",
			"cannot use WAL mode (the journal mode stays '%s'; a network filesystem?)",
			mode);
		goto fail;
	}
	if (version < SCHEMA_LATEST && migrate(s, err) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	rbk_sqlite_close(s);
	return -1;
}

void rbk_sqlite_close(rbk_sqlite *s)
{
	if (!s)
		return;
	rollback_now(s);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	rbk_buf_free(&s->canon);
	rbk_free(s->path);
	rbk_free(s);
}

int rbk_sqlite_info_get(rbk_sqlite *s, rbk_store_info *out, rbk_err *err)
{
	memset(out, 0, sizeof *out);
	if (exec1(s, sql_user_version, "info", &out->schema_version, NULL, 0, err) < 0 ||
	    exec1(s, sql_journal_mode, "info", NULL, out->journal_mode, sizeof out->journal_mode,
		  err) < 0 ||
	    exec1(s, sql_synchronous, "info", &out->synchronous, NULL, 0, err) < 0 ||
	    exec1(s, sql_foreign_keys, "info", &out->foreign_keys, NULL, 0, err) < 0)
		return -1;
	return 0;
}

/* ---- the chain ---- */

static void put_i64(rbk_buf *b, int64_t v)
{
	char tmp[24];
	int n = 0;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[n++] = '-';
	char out[24];
	for (int i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	rbk_buf_add(b, out, (size_t)n);
}

/* hash = SHA-256(prev ‖ seq \n run_id \n at \n actor \n kind \n data). */
static void chain_hash(rbk_buf *b, const char *prev, size_t prev_len, int64_t seq, int64_t run_id,
		       const char *at, size_t at_len, const char *actor, size_t actor_len,
		       const char *kind, size_t kind_len, const char *data, size_t data_len,
		       char out[65])
{
	b->len = 0;
	rbk_buf_add(b, prev, prev_len);
	put_i64(b, seq);
	rbk_buf_putc(b, '\n');
	put_i64(b, run_id);
	rbk_buf_putc(b, '\n');
	rbk_buf_add(b, at, at_len);
	rbk_buf_putc(b, '\n');
	rbk_buf_add(b, actor, actor_len);
	rbk_buf_putc(b, '\n');
	rbk_buf_add(b, kind, kind_len);
	rbk_buf_putc(b, '\n');
	rbk_buf_add(b, data, data_len);
	rbk_hash_sha256_hex(b->s, b->len, out);
}

static const char zero_hash[65] =
	"0000000000000000000000000000000000000000000000000000000000000000";

/* An actor or kind is one non-empty line: the canonical form relies on it. */
static int check_line(rbk_sqlite *s, const char *what, const char *v, const char *op, rbk_err *err)
{
	if (!v || !*v)
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "empty %s", what);
	if (strchr(v, '\n'))
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "%s contains a newline", what);
	return 0;
}

static int check_json(rbk_sqlite *s, const char *what, const char *text, const char *op,
		      rbk_val *keep, rbk_err *err)
{
	rbk_val v;
	rbk_err je = {0};
	if (rbk_json_parse(&v, text, strlen(text), &je) < 0)
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "%s is not JSON: %s", what, je.msg);
	if (keep)
		*keep = v;
	else
		rbk_val_free(&v);
	return 0;
}

/* The append itself, inside an open transaction (ours or the caller's). */
static int append_tx(rbk_sqlite *s, int64_t run_id, const char *actor, const char *kind,
		     const char *data, int64_t *out_seq, rbk_err *err)
{
	const char *op = "append event";
	int64_t seq = 1;
	char prev[65];
	sqlite3_stmt *st;
	int rc;
	if (s->tail_ok) {
		seq = s->tail_seq + 1;
		memcpy(prev, s->tail_hash, sizeof prev);
	} else {
		if (!(st = stmt(s, ST_LAST_EVENT, op, err)))
			return -1;
		memcpy(prev, zero_hash, sizeof prev);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			seq = sqlite3_column_int64(st, 0) + 1;
			snprintf(prev, sizeof prev, "%s", col_text(st, 1, NULL));
			rc = SQLITE_DONE;
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return db_fail(s, rc, op, NULL, err);
	}

	char at[64], hash[65];
	now_iso(at);
	chain_hash(&s->canon, prev, strlen(prev), seq, run_id, at, strlen(at), actor, strlen(actor),
		   kind, strlen(kind), data, strlen(data), hash);

	if (!(st = stmt(s, ST_INSERT_EVENT, op, err)))
		return -1;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, run_id);
	sqlite3_bind_text(st, 3, at, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, data, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, prev, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, hash, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		char what[64];
		snprintf(what, sizeof what, "run %" PRId64 " does not exist", run_id);
		return db_fail(s, rc, op, what, err);
	}
	if (rc != SQLITE_DONE)
		return db_fail(s, rc, op, NULL, err);
	/* Only inside the caller's transaction: one of our own ends here. */
	s->tail_ok = s->tx == TX_CALLER;
	s->tail_seq = seq;
	memcpy(s->tail_hash, hash, sizeof s->tail_hash);
	if (out_seq)
		*out_seq = seq;
	return 0;
}

int rbk_sqlite_append(rbk_sqlite *s, int64_t run_id, const char *actor, const char *kind,
		     const char *data_json, bool is_json, int64_t *out_seq, rbk_err *err)
{
	const char *op = "append event";
	const char *data = data_json ? data_json : "{}";
	if (check_line(s, "actor", actor, op, err) < 0 ||
	    check_line(s, "kind", kind, op, err) < 0 ||
	    (!is_json && check_json(s, "event data", data, op, NULL, err) < 0))
		return -1;
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	int rc = append_tx(s, run_id, actor, kind, data, out_seq, err);
	return op_end(s, own, rc, op, err);
}

/* ---- runs ---- */

/* The run_created event: everything the run was created with, so the run
 * row is derivable from the log alone. Takes params and prov. */
static char *run_created_data(const rbk_store_run_spec *spec, const char *sha, rbk_val params,
			      rbk_val prov)
{
	rbk_val m = rbk_val_map();
	rbk_val_map_set(&m, "runbook", rbk_val_str(spec->runbook));
	rbk_val_map_set(&m, "source_sha256", rbk_val_str(sha));
	rbk_val_map_set(&m, "dry_run", rbk_val_bool(spec->dry_run != 0));
	rbk_val_map_set(&m, "params", params);
	rbk_val_map_set(&m, "provenance", prov);
	rbk_val_map_set(&m, "parent_run",
			spec->parent_run ? rbk_val_int(spec->parent_run) : rbk_val_null());
	rbk_val_map_set(&m, "parent_state",
			spec->parent_state ? rbk_val_str(spec->parent_state) : rbk_val_null());
	rbk_val_map_set(&m, "lock_key",
			spec->lock_key ? rbk_val_str(spec->lock_key) : rbk_val_null());
	rbk_val_map_set(&m, "owner_pid", rbk_val_int((int64_t)getpid()));
	char *json = rbk_json_encode(&m);
	rbk_val_free(&m);
	return json;
}

static int insert_source(rbk_sqlite *s, const char *sha, const char *bytes, size_t len,
			 const char *op, rbk_err *err)
{
	sqlite3_stmt *st = stmt(s, ST_INSERT_SOURCE, op, err);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
	/* A NULL pointer would bind SQL NULL: an empty runbook is an empty blob. */
	sqlite3_bind_blob64(st, 2, len ? bytes : "", len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : db_fail(s, rc, op, NULL, err);
}

static int insert_run(rbk_sqlite *s, const rbk_store_run_spec *spec, const char *sha,
		      const char *params, const char *prov, int64_t *out_id, const char *op,
		      rbk_err *err)
{
	sqlite3_stmt *st = stmt(s, ST_INSERT_RUN, op, err);
	if (!st)
		return -1;
	char at[64];
	now_iso(at);
	sqlite3_bind_text(st, 1, spec->runbook, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, spec->actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, at, -1, SQLITE_STATIC);
	bind_id_or_null(st, 4, spec->parent_run);
	bind_text_or_null(st, 5, spec->parent_state);
	sqlite3_bind_int(st, 6, spec->dry_run != 0);
	sqlite3_bind_text(st, 7, params, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, sha, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, prov, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, (int64_t)getpid());
	bind_text_or_null(st, 11, spec->lock_key);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		char what[80];
		snprintf(what, sizeof what, "parent run %" PRId64 " does not exist",
			 spec->parent_run);
		return db_fail(s, rc, op, what, err);
	}
	if (rc != SQLITE_DONE)
		return db_fail(s, rc, op, NULL, err);
	*out_id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int rbk_sqlite_run_create(rbk_sqlite *s, const rbk_store_run_spec *spec, int64_t *out_id,
			 rbk_err *err)
{
	const char *op = "create run";
	*out_id = 0;
	const char *params = spec->params_json ? spec->params_json : "{}";
	const char *prov = spec->provenance_json ? spec->provenance_json : "{}";
	if (!spec->runbook || !*spec->runbook)
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "no runbook name");
	if (!spec->source && spec->source_len)
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "no source bytes");
	if (check_line(s, "actor", spec->actor, op, err) < 0)
		return -1;
	rbk_val pv, vv;
	if (check_json(s, "params", params, op, &pv, err) < 0)
		return -1;
	if (check_json(s, "provenance", prov, op, &vv, err) < 0) {
		rbk_val_free(&pv);
		return -1;
	}
	char sha[65];
	rbk_hash_sha256_hex(spec->source_len ? spec->source : "", spec->source_len, sha);
	char *data = run_created_data(spec, sha, pv, vv);

	int own;
	int64_t id = 0;
	int rc = op_begin(s, &own, op, err);
	if (rc == 0) {
		rc = insert_source(s, sha, spec->source, spec->source_len, op, err);
		if (rc == 0)
			rc = insert_run(s, spec, sha, params, prov, &id, op, err);
		if (rc == 0)
			rc = append_tx(s, id, spec->actor, "run_created", data, NULL, err);
		rc = op_end(s, own, rc, op, err);
	}
	rbk_free(data);
	if (rc == 0)
		*out_id = id;
	return rc;
}

static int is_status(const char *v)
{
	for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
		if (strcmp(statuses[i], v) == 0)
			return 1;
	return 0;
}

int rbk_sqlite_run_set(rbk_sqlite *s, int64_t run_id, const char *status, const char *current_state,
		      rbk_err *err)
{
	const char *op = "update run";
	if (status && !is_status(status))
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "unknown run status '%s'", status);
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	int rc = -1;
	sqlite3_stmt *st = stmt(s, ST_SET_RUN, op, err);
	if (st) {
		char at[64];
		now_iso(at);
		sqlite3_bind_int64(st, 1, run_id);
		bind_text_or_null(st, 2, status);
		bind_text_or_null(st, 3, current_state);
		sqlite3_bind_text(st, 4, at, -1, SQLITE_STATIC);
		int src = sqlite3_step(st);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (src != SQLITE_DONE)
			rc = db_fail(s, src, op, NULL, err);
		else if (sqlite3_changes(s->db) == 0)
			rc = plain_fail(s, err, RBK_ERR_NONAME, op,
					"run %" PRId64 " does not exist", run_id);
		else
			rc = 0;
	}
	return op_end(s, own, rc, op, err);
}

int rbk_sqlite_run_get(rbk_sqlite *s, int64_t id, rbk_store_run *out, rbk_err *err)
{
	const char *op = "read run";
	memset(out, 0, sizeof *out);
	sqlite3_stmt *st = stmt(s, ST_GET_RUN, op, err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->id = sqlite3_column_int64(st, 0);
		out->runbook = col_dup(st, 1);
		out->status = col_dup(st, 2);
		out->actor = col_dup(st, 3);
		out->created_at = col_dup(st, 4);
		out->updated_at = col_dup(st, 5);
		out->parent_run = sqlite3_column_int64(st, 6);
		out->parent_state = col_dup(st, 7);
		out->dry_run = sqlite3_column_int(st, 8);
		out->params_json = col_dup(st, 9);
		out->source_sha256 = col_dup(st, 10);
		out->provenance_json = col_dup(st, 11);
		out->current_state = col_dup(st, 12);
		out->owner_pid = sqlite3_column_int64(st, 13);
		out->lock_key = col_dup(st, 14);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE)
		return plain_fail(s, err, RBK_ERR_NONAME, op, "run %" PRId64 " does not exist", id);
	if (rc != SQLITE_ROW)
		return db_fail(s, rc, op, NULL, err);
	return 0;
}

int rbk_sqlite_source(rbk_sqlite *s, const char *sha256, char **bytes, size_t *len, rbk_err *err)
{
	const char *op = "read source";
	*bytes = NULL;
	*len = 0;
	sqlite3_stmt *st = stmt(s, ST_GET_SOURCE, op, err);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, sha256, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const void *b = sqlite3_column_blob(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		*bytes = rbk_xmalloc(n + 1);
		if (n)
			memcpy(*bytes, b, n);
		(*bytes)[n] = '\0';
		*len = n;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE)
		return plain_fail(s, err, RBK_ERR_NONAME, op, "no source with sha256 %s", sha256);
	if (rc != SQLITE_ROW)
		return db_fail(s, rc, op, NULL, err);
	return 0;
}

/* ---- walks ---- */

/* A statement of its own for a walk (see sql_events_all). */
static sqlite3_stmt *walk_stmt(rbk_sqlite *s, const char *sql, const char *op, rbk_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		db_fail(s, rc, op, NULL, err);
		return NULL;
	}
	return st;
}

static int walk_end(rbk_sqlite *s, sqlite3_stmt *st, int rc, int stopped, const char *op,
		    rbk_err *err)
{
	if (stopped) {
		sqlite3_finalize(st);
		return stopped;
	}
	if (rc != SQLITE_DONE) {
		int r = db_fail(s, rc, op, NULL, err);
		sqlite3_finalize(st);
		return r;
	}
	sqlite3_finalize(st);
	return 0;
}

static int events_walk(rbk_sqlite *s, int64_t run_id, int64_t after, int (*fn)(void *ctx, const rbk_store_event *ev),
		       void *ctx, rbk_err *err)
{
	const char *op = "read events";
	if (!run_id)
		after = 0; /* every run's events: all of them */
	sqlite3_stmt *st = walk_stmt(s, after ? sql_events_run_after : run_id ? sql_events_run : sql_events_all, op, err);
	if (!st)
		return -1;
	if (run_id)
		sqlite3_bind_int64(st, 1, run_id);
	if (after)
		sqlite3_bind_int64(st, 2, after);
	int rc, stopped = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rbk_store_event ev = {
			.seq = sqlite3_column_int64(st, 0),
			.run_id = sqlite3_column_int64(st, 1),
			.at = col_text(st, 2, NULL),
			.actor = col_text(st, 3, NULL),
			.kind = col_text(st, 4, NULL),
			.data = col_text(st, 5, NULL),
			.prev_hash = col_text(st, 6, NULL),
			.hash = col_text(st, 7, NULL),
		};
		if ((stopped = fn(ctx, &ev)) != 0)
			break;
	}
	return walk_end(s, st, rc, stopped, op, err);
}

int rbk_sqlite_events(rbk_sqlite *s, int64_t run_id, int (*fn)(void *ctx, const rbk_store_event *ev),
		     void *ctx, rbk_err *err)
{
	return events_walk(s, run_id, 0, fn, ctx, err);
}

int rbk_sqlite_events_after(rbk_sqlite *s, int64_t run_id, int64_t after_seq,
			   int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx, rbk_err *err)
{
	return events_walk(s, run_id, after_seq > 0 ? after_seq : 0, fn, ctx, err);
}

/* The chain from event from on (1: all of it), streaming in constant
 * memory: the first event's link to the one before it is checked too. */
static int check_chain(rbk_sqlite *s, int64_t from, const char *op, int64_t *out_count, int64_t *out_bad_seq,
		       char **out_why, rbk_err *err)
{
	*out_count = 0;
	*out_bad_seq = 0;
	if (out_why)
		*out_why = NULL;
	/* Constant memory: the previous hash, and one buffer reused for each
	 * event's canonical bytes. */
	char head[65], hash[65];
	memcpy(head, zero_hash, sizeof head);
	if (from > 1) {
		int r = rbk_sqlite_event_hash(s, from - 1, head, err);
		if (r < 0)
			return -1;
		if (r == 1 || strlen(head) != 64) {
			*out_bad_seq = from - 1;
			if (out_why)
				*out_why = rbk_xasprintf("event %" PRId64 " was removed or damaged", from - 1);
			return 0;
		}
	}
	sqlite3_stmt *st = walk_stmt(s, sql_events_from, op, err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, from);
	int64_t expect = from, count = 0, bad = 0;
	char *why = NULL;
	rbk_buf b = {0};
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);
		int64_t run_id = sqlite3_column_int64(st, 1);
		size_t at_n, actor_n, kind_n, data_n, prev_n, hash_n;
		const char *at = col_text(st, 2, &at_n);
		const char *actor = col_text(st, 3, &actor_n);
		const char *kind = col_text(st, 4, &kind_n);
		const char *data = col_text(st, 5, &data_n);
		const char *prev = col_text(st, 6, &prev_n);
		const char *stored = col_text(st, 7, &hash_n);
		if (seq != expect) {
			bad = expect;
			if (seq == expect + 1)
				why = rbk_xasprintf("event %" PRId64
						    " was removed (seq goes from %" PRId64
						    " to %" PRId64 ")",
						    expect, expect - 1, seq);
			else
				why = rbk_xasprintf("events %" PRId64 " to %" PRId64
						    " were removed (seq goes from %" PRId64
						    " to %" PRId64 ")",
						    expect, seq - 1, expect - 1, seq);
			break;
		}
		if (prev_n != 64 || memcmp(prev, head, 64) != 0) {
			bad = seq;
			if (seq == 1)
				why = rbk_xstrdup(
					"event 1: its prev_hash is not the start of a chain: "
					"events were removed or inserted before it");
			else
				why = rbk_xasprintf(
					"event %" PRId64
					": its prev_hash is not the hash of event %" PRId64
					": an event was inserted or reordered, or event %" PRId64
					" was modified and re-hashed",
					seq, seq - 1, seq - 1);
			break;
		}
		chain_hash(&b, prev, prev_n, seq, run_id, at, at_n, actor, actor_n, kind, kind_n,
			   data, data_n, hash);
		if (hash_n != 64 || memcmp(stored, hash, 64) != 0) {
			bad = seq;
			why = rbk_xasprintf("event %" PRId64
					    " was modified: its hash does not match its content",
					    seq);
			break;
		}
		memcpy(head, hash, 64);
		expect++;
		count++;
	}
	rbk_buf_free(&b);
	int r = walk_end(s, st, bad ? SQLITE_DONE : rc, 0, op, err);
	if (r < 0) {
		rbk_free(why);
		return r;
	}
	*out_count = count;
	*out_bad_seq = bad;
	if (out_why)
		*out_why = why;
	else
		rbk_free(why);
	return 0;
}

int rbk_sqlite_verify(rbk_sqlite *s, int64_t *out_count, int64_t *out_bad_seq, char **out_why,
		     rbk_err *err)
{
	return check_chain(s, 1, "verify", out_count, out_bad_seq, out_why, err);
}

/* The meta key that remembers what rbk verify found wrong ("" or absent:
 * nothing). */
static const char broken_key[] = "chain.broken";

void rbk_sqlite_note_broken(rbk_sqlite *s, const char *why)
{
	char *was = NULL;
	if (rbk_sqlite_meta_get(s, broken_key, &was, NULL) == 0 && strcmp(was ? was : "", why ? why : "") != 0)
		rbk_sqlite_meta_set(s, broken_key, why ? why : "", NULL); /* a read-only store stays as it is */
	rbk_free(was);
}

int rbk_sqlite_writable(rbk_sqlite *s, rbk_err *err)
{
	const char *op = "open for writing";
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		char why[400];
		if (!why_unwritable(s->path, why, sizeof why))
			snprintf(why, sizeof why, "the database is read-only");
		return plain_fail(s, err, RBK_ERR_STORE, op, "cannot write: %s", why);
	}
	char *mark = NULL;
	if (rbk_sqlite_meta_get(s, broken_key, &mark, err) < 0)
		return -1;
	if (mark && *mark) {
		plain_fail(s, err, RBK_ERR_STORE, op,
			   "refused: rbk verify found its chain broken (%.200s); nothing more is recorded in it "
			   "(docs/security.md)",
			   mark);
		rbk_free(mark);
		return -1;
	}
	rbk_free(mark);
	/* The newest events, whose links are cheap to check: a store damaged
	 * there is not appended to. */
	int64_t head = 0, count = 0, bad = 0;
	char hash[65], *why = NULL;
	if (rbk_sqlite_head(s, &head, hash, err) < 0 ||
	    check_chain(s, head > RBK_STORE_TAIL_CHECK ? head - RBK_STORE_TAIL_CHECK + 1 : 1, op, &count, &bad, &why,
			err) < 0)
		return -1;
	if (bad) {
		plain_fail(s, err, RBK_ERR_STORE, op,
			   "refused: its chain is broken at event %" PRId64 " (%.200s); nothing more is recorded "
			   "in it: see rbk verify (docs/security.md)",
			   bad, why ? why : "");
		rbk_free(why);
		return -1;
	}
	return 0;
}

/* ---- steps ---- */

int rbk_sqlite_step_record(rbk_sqlite *s, int64_t run_id, const char *state, int attempt,
			  const char *status, int64_t started_seq, int64_t ended_seq, rbk_err *err)
{
	const char *op = "record step";
	if (!state || !*state)
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "empty state");
	if (!status || !*status)
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "empty step status");
	char *key = rbk_xasprintf("%" PRId64 ":%s:%d", run_id, state, attempt);
	int own;
	int rc = op_begin(s, &own, op, err);
	if (rc == 0) {
		sqlite3_stmt *st = stmt(s, ST_UPSERT_STEP, op, err);
		rc = -1;
		if (st) {
			sqlite3_bind_int64(st, 1, run_id);
			sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 3, attempt);
			sqlite3_bind_text(st, 4, status, -1, SQLITE_STATIC);
			bind_id_or_null(st, 5, started_seq);
			bind_id_or_null(st, 6, ended_seq);
			sqlite3_bind_text(st, 7, key, -1, SQLITE_STATIC);
			int src = sqlite3_step(st);
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			if (src == SQLITE_CONSTRAINT_FOREIGNKEY) {
				char what[64];
				snprintf(what, sizeof what, "run %" PRId64 " does not exist",
					 run_id);
				rc = db_fail(s, src, op, what, err);
			} else {
				rc = src == SQLITE_DONE ? 0 : db_fail(s, src, op, NULL, err);
			}
		}
		rc = op_end(s, own, rc, op, err);
	}
	rbk_free(key);
	return rc;
}

int rbk_sqlite_steps(rbk_sqlite *s, int64_t run_id, int (*fn)(void *ctx, const rbk_store_step *st),
		    void *ctx, rbk_err *err)
{
	const char *op = "read steps";
	sqlite3_stmt *st = walk_stmt(s, sql_steps_run, op, err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, run_id);
	int rc, stopped = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rbk_store_step step = {
			.run_id = sqlite3_column_int64(st, 0),
			.state = col_text(st, 1, NULL),
			.attempt = sqlite3_column_int(st, 2),
			.status = col_text(st, 3, NULL),
			.started_seq = sqlite3_column_int64(st, 4),
			.ended_seq = sqlite3_column_int64(st, 5),
			.idempotency_key = col_text(st, 6, NULL),
		};
		if ((stopped = fn(ctx, &step)) != 0)
			break;
	}
	return walk_end(s, st, rc, stopped, op, err);
}

int rbk_sqlite_lock_holder(rbk_sqlite *s, const char *key, int64_t except_run, int64_t *out_run, rbk_err *err)
{
	const char *op = "read lock";
	*out_run = 0;
	sqlite3_stmt *st = stmt(s, ST_LOCK_HOLDER, op, err);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, except_run);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out_run = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(s, rc, op, NULL, err);
	return 0;
}

int rbk_sqlite_run_owner(rbk_sqlite *s, int64_t run_id, int64_t pid, rbk_err *err)
{
	const char *op = "set run owner";
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	int rc = -1;
	sqlite3_stmt *st = stmt(s, ST_SET_OWNER, op, err);
	if (st) {
		sqlite3_bind_int64(st, 1, run_id);
		sqlite3_bind_int64(st, 2, pid);
		int src = sqlite3_step(st);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		rc = src == SQLITE_DONE ? 0 : db_fail(s, src, op, NULL, err);
	}
	return op_end(s, own, rc, op, err);
}

/* History reads: one statement per call, built from the filter (values are
 * bound, never spliced into the SQL). Newest first. */
int rbk_sqlite_runs(rbk_sqlite *s, const rbk_store_run_filter *f, int (*fn)(void *ctx, const rbk_store_run *run),
		   void *ctx, rbk_err *err)
{
	const char *op = "list runs";
	rbk_buf q = {0};
	rbk_buf_puts(&q, "SELECT id, runbook, status, actor, created_at, updated_at, parent_run, parent_state, dry_run,"
			 " params_json, source_sha256, provenance_json, current_state, owner_pid, lock_key"
			 " FROM runs WHERE 1");
	if (f && f->runbook)
		rbk_buf_puts(&q, " AND runbook = ?1");
	if (f && f->status)
		rbk_buf_puts(&q, " AND status = ?2");
	if (f && f->actor) /* principal.h's rule: "alice" is alice on any host */
		rbk_buf_puts(&q, " AND (actor = ?3 OR (instr(?3, '@') = 0 AND substr(actor, 1, length(?3) + 1) = ?3 || '@'))");
	if (f && f->since)
		rbk_buf_puts(&q, " AND created_at >= ?4");
	if (f && f->until)
		rbk_buf_puts(&q, " AND created_at < ?5");
	if (f && f->active_only)
		rbk_buf_puts(&q, " AND status IN ('queued', 'running', 'waiting', 'interrupted', 'needs_attention')");
	if (f && f->top_level_only)
		rbk_buf_puts(&q, " AND parent_run IS NULL");
	if (f && f->scheduled_only)
		rbk_buf_puts(&q, " AND id IN (SELECT run_id FROM fires WHERE run_id IS NOT NULL)");
	rbk_buf_puts(&q, " ORDER BY id DESC LIMIT ?6");
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, q.s, -1, &st, NULL);
	rbk_buf_free(&q);
	if (rc != SQLITE_OK)
		return db_fail(s, rc, op, NULL, err);
	if (f && f->runbook)
		sqlite3_bind_text(st, 1, f->runbook, -1, SQLITE_STATIC);
	if (f && f->status)
		sqlite3_bind_text(st, 2, f->status, -1, SQLITE_STATIC);
	if (f && f->actor)
		sqlite3_bind_text(st, 3, f->actor, -1, SQLITE_STATIC);
	if (f && f->since)
		sqlite3_bind_text(st, 4, f->since, -1, SQLITE_STATIC);
	if (f && f->until)
		sqlite3_bind_text(st, 5, f->until, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, f && f->limit > 0 ? f->limit : -1);
	int stop = 0;
	while (!stop && (rc = step_retry(s, st)) == SQLITE_ROW) {
		rbk_store_run r = {0};
		r.id = sqlite3_column_int64(st, 0);
		r.runbook = (char *)col_text(st, 1, NULL);
		r.status = (char *)col_text(st, 2, NULL);
		r.actor = (char *)col_text(st, 3, NULL);
		r.created_at = (char *)col_text(st, 4, NULL);
		r.updated_at = (char *)col_text(st, 5, NULL);
		r.parent_run = sqlite3_column_int64(st, 6);
		r.parent_state = (char *)col_opt(st, 7);
		r.dry_run = sqlite3_column_int(st, 8);
		r.params_json = (char *)col_text(st, 9, NULL);
		r.source_sha256 = (char *)col_text(st, 10, NULL);
		r.provenance_json = (char *)col_text(st, 11, NULL);
		r.current_state = (char *)col_opt(st, 12);
		r.owner_pid = sqlite3_column_int64(st, 13);
		r.lock_key = (char *)col_opt(st, 14);
		stop = fn(ctx, &r);
	}
	int ret = 0;
	if (!stop && rc != SQLITE_DONE)
		ret = db_fail(s, rc, op, NULL, err);
	sqlite3_finalize(st);
	return ret;
}

/* ---- the scheduler's fires ---- */

int rbk_sqlite_fire_claim(rbk_sqlite *s, const char *runbook, int entry, const char *nominal, const char *outcome,
			 const char *note, int64_t *out_id, rbk_err *err)
{
	const char *op = "record fire";
	*out_id = 0;
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	int ret = -1;
	sqlite3_stmt *st = stmt(s, ST_CLAIM_FIRE, op, err);
	if (st) {
		char at[64];
		now_iso(at);
		sqlite3_bind_text(st, 1, runbook, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, entry);
		sqlite3_bind_text(st, 3, nominal, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, at, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, outcome, -1, SQLITE_STATIC);
		bind_text_or_null(st, 6, note);
		int rc = sqlite3_step(st);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (rc == SQLITE_DONE) {
			ret = sqlite3_changes(s->db) ? 0 : 1;
			if (ret == 0)
				*out_id = sqlite3_last_insert_rowid(s->db);
		} else
			ret = db_fail(s, rc, op, NULL, err);
	}
	return op_end(s, own, ret < 0 ? -1 : 0, op, err) < 0 ? -1 : ret;
}

int rbk_sqlite_fire_set(rbk_sqlite *s, int64_t fire, const char *outcome, int64_t run_id, const char *note, rbk_err *err)
{
	const char *op = "update fire";
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	int ret = -1;
	sqlite3_stmt *st = stmt(s, ST_SET_FIRE, op, err);
	if (st) {
		sqlite3_bind_int64(st, 1, fire);
		sqlite3_bind_text(st, 2, outcome, -1, SQLITE_STATIC);
		bind_id_or_null(st, 3, run_id);
		bind_text_or_null(st, 4, note);
		int rc = sqlite3_step(st);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		ret = rc == SQLITE_DONE ? 0 : db_fail(s, rc, op, NULL, err);
	}
	return op_end(s, own, ret, op, err);
}

int rbk_sqlite_fires(rbk_sqlite *s, const char *runbook, int entry, const char *outcome, int64_t limit,
		    int (*fn)(void *ctx, const rbk_store_fire *f), void *ctx, rbk_err *err)
{
	const char *op = "read fires";
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db,
				    "SELECT f.id, f.runbook, f.entry, f.nominal, f.decided_at, f.outcome, f.run_id, f.note,"
				    " r.status FROM fires f LEFT JOIN runs r ON r.id = f.run_id"
				    " WHERE (?1 IS NULL OR f.runbook = ?1) AND (?2 < 0 OR f.entry = ?2)"
				    " AND (?3 IS NULL OR f.outcome = ?3) ORDER BY f.nominal DESC, f.id DESC LIMIT ?4",
				    -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_fail(s, rc, op, NULL, err);
	bind_text_or_null(st, 1, runbook);
	sqlite3_bind_int(st, 2, entry);
	bind_text_or_null(st, 3, outcome);
	sqlite3_bind_int64(st, 4, limit > 0 ? limit : -1);
	int stop = 0;
	while (!stop && (rc = step_retry(s, st)) == SQLITE_ROW) {
		rbk_store_fire f = {sqlite3_column_int64(st, 0), col_text(st, 1, NULL), sqlite3_column_int(st, 2),
				    col_text(st, 3, NULL), col_text(st, 4, NULL), col_text(st, 5, NULL),
				    sqlite3_column_int64(st, 6), col_opt(st, 7), col_opt(st, 8)};
		stop = fn(ctx, &f);
	}
	int ret = !stop && rc != SQLITE_DONE ? db_fail(s, rc, op, NULL, err) : 0;
	sqlite3_finalize(st);
	return ret;
}

int rbk_sqlite_meta_get(rbk_sqlite *s, const char *key, char **out, rbk_err *err)
{
	const char *op = "read meta";
	*out = NULL;
	sqlite3_stmt *st = stmt(s, ST_GET_META, op, err);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int rc = step_retry(s, st);
	if (rc == SQLITE_ROW)
		*out = col_dup(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(s, rc, op, NULL, err);
}

int rbk_sqlite_meta_set(rbk_sqlite *s, const char *key, const char *value, rbk_err *err)
{
	const char *op = "write meta";
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	int ret = -1;
	sqlite3_stmt *st = stmt(s, ST_SET_META, op, err);
	if (st) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		ret = rc == SQLITE_DONE ? 0 : db_fail(s, rc, op, NULL, err);
	}
	return op_end(s, own, ret, op, err);
}

int rbk_sqlite_head(rbk_sqlite *s, int64_t *seq, char hash[65], rbk_err *err)
{
	const char *op = "read chain head";
	*seq = 0;
	memcpy(hash, zero_hash, 65);
	sqlite3_stmt *st = stmt(s, ST_LAST_EVENT, op, err);
	if (!st)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		snprintf(hash, 65, "%s", col_text(st, 1, NULL));
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(s, rc, op, NULL, err);
}

int rbk_sqlite_event_hash(rbk_sqlite *s, int64_t seq, char hash[65], rbk_err *err)
{
	const char *op = "read event";
	hash[0] = '\0';
	sqlite3_stmt *st = stmt(s, ST_EVENT_HASH, op, err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, seq);
	int rc = step_retry(s, st);
	if (rc == SQLITE_ROW)
		snprintf(hash, 65, "%s", col_text(st, 0, NULL));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? 1 : db_fail(s, rc, op, NULL, err);
}

void rbk_store_chain_hash(const char *prev, int64_t seq, int64_t run_id, const char *at, const char *actor,
			  const char *kind, const char *data, char out[65])
{
	rbk_buf b = {0};
	chain_hash(&b, prev, strlen(prev), seq, run_id, at, strlen(at), actor, strlen(actor), kind, strlen(kind), data,
		   strlen(data), out);
	rbk_buf_free(&b);
}

int rbk_sqlite_links(rbk_sqlite *s, int64_t from_seq, int64_t to_seq, int (*fn)(void *ctx, const rbk_store_event *ev),
		    void *ctx, rbk_err *err)
{
	const char *op = "read chain";
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db,
				    "SELECT seq, run_id, at, actor, kind, data, prev_hash, hash FROM events"
				    " WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
				    -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_fail(s, rc, op, NULL, err);
	sqlite3_bind_int64(st, 1, from_seq);
	sqlite3_bind_int64(st, 2, to_seq);
	int stop = 0;
	while (!stop && (rc = step_retry(s, st)) == SQLITE_ROW) {
		rbk_store_event ev = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), col_text(st, 2, NULL),
				      col_text(st, 3, NULL),	     col_text(st, 4, NULL),	       col_text(st, 5, NULL),
				      col_text(st, 6, NULL),	     col_text(st, 7, NULL), 0};
		stop = fn(ctx, &ev);
	}
	int ret = !stop && rc != SQLITE_DONE ? db_fail(s, rc, op, NULL, err) : 0;
	sqlite3_finalize(st);
	return ret;
}

/* ---- executors: queues, leases, fencing ---- */

static int64_t wall_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int check_fence(rbk_sqlite *s, const char *op, rbk_err *err)
{
	sqlite3_stmt *st = stmt(s, ST_FENCE, op, err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, s->fence_run);
	int rc = step_retry(s, st);
	int64_t now = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(s, rc, op, NULL, err);
	if (now != s->fence_epoch)
		return plain_fail(s, err, RBK_ERR_FENCED, op,
				  "run %" PRId64 " was taken over (epoch %" PRId64 ", this executor's %" PRId64
				  "): this executor writes nothing more for it",
				  s->fence_run, now, s->fence_epoch);
	return 0;
}

void rbk_sqlite_fence(rbk_sqlite *s, int64_t run_id, int64_t epoch)
{
	s->fence_run = run_id;
	s->fence_epoch = epoch;
}

/* One ad hoc statement, bound by the caller; NULL with err. */
static sqlite3_stmt *prep(rbk_sqlite *s, const char *sql, const char *op, rbk_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		db_fail(s, rc, op, NULL, err);
		return NULL;
	}
	return st;
}

/* Step a writing statement to its end inside op_begin/op_end; 0 or -1. */
static int write1(rbk_sqlite *s, sqlite3_stmt *st, const char *op, rbk_err *err)
{
	int rc = step_retry(s, st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(s, rc, op, NULL, err);
}

int rbk_sqlite_run_queue(rbk_sqlite *s, int64_t run_id, const char *queue, int queued, rbk_err *err)
{
	const char *op = "set run queue";
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	sqlite3_stmt *st = prep(s,
				"UPDATE runs SET queue = ?2, status = CASE WHEN ?3 THEN 'queued' ELSE status END"
				" WHERE id = ?1",
				op, err);
	int rc = -1;
	if (st) {
		sqlite3_bind_int64(st, 1, run_id);
		sqlite3_bind_text(st, 2, queue, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, queued != 0);
		rc = write1(s, st, op, err);
	}
	return op_end(s, own, rc, op, err);
}

int rbk_sqlite_lease_get(rbk_sqlite *s, int64_t run_id, rbk_store_lease *out, rbk_err *err)
{
	const char *op = "read lease";
	memset(out, 0, sizeof *out);
	sqlite3_stmt *st = prep(s, "SELECT queue, lease_owner, epoch, lease_until FROM runs WHERE id = ?1", op, err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, run_id);
	int rc = step_retry(s, st);
	if (rc == SQLITE_ROW) {
		out->queue = col_dup(st, 0);
		out->owner = col_dup(st, 1);
		out->epoch = sqlite3_column_int64(st, 2);
		out->left_ms = sqlite3_column_type(st, 3) == SQLITE_NULL ? 0
									  : sqlite3_column_int64(st, 3) - wall_now_ms();
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return plain_fail(s, err, RBK_ERR_NONAME, op, "run %" PRId64 " does not exist", run_id);
	return rc == SQLITE_ROW ? 0 : db_fail(s, rc, op, NULL, err);
}

int rbk_sqlite_claim(rbk_sqlite *s, int64_t run_id, const char *owner, int64_t lease_ms, int force, int64_t *epoch,
		     rbk_err *err)
{
	const char *op = "claim run";
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	int64_t now = wall_now_ms();
	sqlite3_stmt *st = prep(s,
				"UPDATE runs SET lease_owner = ?2, lease_until = ?3 + ?4, epoch = epoch + 1"
				" WHERE id = ?1 AND (?5 OR lease_owner IS NULL OR lease_until IS NULL"
				" OR lease_until <= ?3 OR lease_owner = ?2) RETURNING epoch",
				op, err);
	int rc = -1;
	if (st) {
		sqlite3_bind_int64(st, 1, run_id);
		sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, now);
		sqlite3_bind_int64(st, 4, lease_ms);
		sqlite3_bind_int(st, 5, force != 0);
		int src = step_retry(s, st);
		if (src == SQLITE_ROW) {
			*epoch = sqlite3_column_int64(st, 0);
			rc = 0;
		} else if (src == SQLITE_DONE) {
			rc = 1;
		} else {
			db_fail(s, src, op, NULL, err);
		}
		sqlite3_finalize(st);
	}
	if (rc == 1) {
		rbk_store_lease l;
		if (rbk_sqlite_lease_get(s, run_id, &l, err) < 0) {
			rc = -1;
		} else {
			rbk_err_set(err, -1, "run %" PRId64 " is executed by %s (its lease ends in %" PRId64 " s)", run_id,
				    l.owner ? l.owner : "?", (l.left_ms + 999) / 1000);
			rbk_store_lease_free(&l);
		}
	}
	int end = op_end(s, own, rc < 0 ? -1 : 0, op, err);
	return end < 0 ? -1 : rc;
}

int rbk_sqlite_renew(rbk_sqlite *s, int64_t run_id, const char *owner, int64_t epoch, int64_t lease_ms, rbk_err *err)
{
	const char *op = "renew lease";
	sqlite3_stmt *st = prep(s, "UPDATE runs SET lease_until = ?4 WHERE id = ?1 AND epoch = ?2 AND lease_owner = ?3",
				op, err);
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, run_id);
	sqlite3_bind_int64(st, 2, epoch);
	sqlite3_bind_text(st, 3, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, wall_now_ms() + lease_ms);
	int rc = step_retry(s, st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(s, rc, op, NULL, err);
	return sqlite3_changes(s->db) == 1 ? 0 : 1;
}

int rbk_sqlite_release(rbk_sqlite *s, int64_t run_id, int64_t epoch, rbk_err *err)
{
	const char *op = "release lease";
	int own;
	int64_t fr = s->fence_run;
	s->fence_run = 0; /* releasing a lost lease is a no-op, not an error */
	int rc = op_begin(s, &own, op, err);
	s->fence_run = fr;
	if (rc < 0)
		return -1;
	sqlite3_stmt *st =
		prep(s, "UPDATE runs SET lease_owner = NULL, lease_until = NULL WHERE id = ?1 AND epoch = ?2", op, err);
	rc = -1;
	if (st) {
		sqlite3_bind_int64(st, 1, run_id);
		sqlite3_bind_int64(st, 2, epoch);
		rc = write1(s, st, op, err);
	}
	return op_end(s, own, rc, op, err);
}

int rbk_sqlite_claimable(rbk_sqlite *s, const char *const *queues, size_t nqueues, int64_t limit,
			 int (*fn)(void *ctx, int64_t run_id, const char *status), void *ctx, rbk_err *err)
{
	const char *op = "list runs to execute";
	int stop = 0;
	for (size_t q = 0; q < nqueues && !stop; q++) {
		sqlite3_stmt *st = prep(s,
					"SELECT id, status FROM runs WHERE parent_run IS NULL AND queue = ?1 AND status IN"
					" ('queued', 'running', 'waiting')"
					" AND (lease_until IS NULL OR lease_until <= ?2) ORDER BY status = 'waiting', id LIMIT ?3",
					op, err);
		if (!st)
			return -1;
		sqlite3_bind_text(st, 1, queues[q], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, wall_now_ms());
		sqlite3_bind_int64(st, 3, limit > 0 ? limit : INT64_MAX);
		int rc;
		while (!stop && (rc = step_retry(s, st)) == SQLITE_ROW)
			stop = fn(ctx, sqlite3_column_int64(st, 0), col_text(st, 1, NULL));
		sqlite3_finalize(st);
		if (!stop && rc != SQLITE_DONE)
			return db_fail(s, rc, op, NULL, err);
	}
	return stop;
}

int rbk_sqlite_run_counts(rbk_sqlite *s, int (*fn)(void *ctx, const char *runbook, const char *status, int64_t n),
			  void *ctx, rbk_err *err)
{
	const char *op = "count runs";
	sqlite3_stmt *st = prep(s, "SELECT runbook, status, count(*) FROM runs GROUP BY runbook, status ORDER BY runbook, status", op, err);
	if (!st)
		return -1;
	int rc, stop = 0;
	while (!stop && (rc = step_retry(s, st)) == SQLITE_ROW)
		stop = fn(ctx, col_text(st, 0, NULL), col_text(st, 1, NULL), sqlite3_column_int64(st, 2));
	sqlite3_finalize(st);
	return !stop && rc != SQLITE_DONE ? db_fail(s, rc, op, NULL, err) : stop;
}

int rbk_sqlite_step_times(rbk_sqlite *s,
			  int (*fn)(void *ctx, const char *runbook, const char *state, const char *status,
				    const char *started_at, const char *ended_at),
			  void *ctx, rbk_err *err)
{
	const char *op = "read step times";
	sqlite3_stmt *st = prep(s, "SELECT r.runbook, s.state, s.status, a.at, b.at FROM steps s JOIN runs r ON r.id = s.run_id JOIN events a ON a.seq = s.started_seq JOIN events b ON b.seq = s.ended_seq", op, err);
	if (!st)
		return -1;
	int rc, stop = 0;
	while (!stop && (rc = step_retry(s, st)) == SQLITE_ROW)
		stop = fn(ctx, col_text(st, 0, NULL), col_text(st, 1, NULL), col_text(st, 2, NULL), col_text(st, 3, NULL),
			  col_text(st, 4, NULL));
	sqlite3_finalize(st);
	return !stop && rc != SQLITE_DONE ? db_fail(s, rc, op, NULL, err) : stop;
}

int rbk_sqlite_ping(rbk_sqlite *s, rbk_err *err)
{
	(void)s;
	(void)err;
	return 0;
}

/* ---- copying a store: the source's reads (rbk store copy) ---- */

int rbk_sqlite_read_snapshot(rbk_sqlite *s, rbk_err *err)
{
	const char *op = "read snapshot";
	if (s->tx != TX_NONE)
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "a transaction is already open");
	/* A deferred BEGIN takes no write lock: writers in other processes go
	 * on (WAL) and the reads that follow see none of it. Its first read
	 * fixes the snapshot, so read something now. */
	if (exec1(s, "BEGIN DEFERRED", op, NULL, NULL, 0, err) < 0)
		return -1;
	if (exec1(s, "SELECT max(seq) FROM events", op, NULL, NULL, 0, err) < 0) {
		rollback_now(s);
		return -1;
	}
	s->tx = TX_CALLER;
	return 0;
}

int rbk_sqlite_counts(rbk_sqlite *s, rbk_store_counts *out, rbk_err *err)
{
	const char *op = "count rows";
	memset(out, 0, sizeof *out);
	sqlite3_stmt *st = walk_stmt(s,
				     "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM events),"
				     " (SELECT count(*) FROM steps), (SELECT count(*) FROM fires),"
				     " (SELECT count(*) FROM sources), (SELECT count(*) FROM meta)",
				     op, err);
	if (!st)
		return -1;
	int rc = step_retry(s, st);
	if (rc == SQLITE_ROW) {
		out->runs = sqlite3_column_int64(st, 0);
		out->events = sqlite3_column_int64(st, 1);
		out->steps = sqlite3_column_int64(st, 2);
		out->fires = sqlite3_column_int64(st, 3);
		out->sources = sqlite3_column_int64(st, 4);
		out->meta = sqlite3_column_int64(st, 5);
		rc = SQLITE_DONE;
	}
	return walk_end(s, st, rc, 0, op, err);
}

int rbk_sqlite_sources(rbk_sqlite *s, int (*fn)(void *ctx, const char *sha256, const char *bytes, size_t len),
		       void *ctx, rbk_err *err)
{
	const char *op = "read sources";
	sqlite3_stmt *st = walk_stmt(s, "SELECT sha256, bytes FROM sources ORDER BY sha256", op, err);
	if (!st)
		return -1;
	int rc, stopped = 0;
	while ((rc = step_retry(s, st)) == SQLITE_ROW) {
		const void *b = sqlite3_column_blob(st, 1);
		size_t n = (size_t)sqlite3_column_bytes(st, 1);
		if ((stopped = fn(ctx, col_text(st, 0, NULL), b ? (const char *)b : "", n)) != 0)
			break;
	}
	return walk_end(s, st, rc, stopped, op, err);
}

int rbk_sqlite_meta_all(rbk_sqlite *s, int (*fn)(void *ctx, const char *key, const char *value), void *ctx,
			rbk_err *err)
{
	const char *op = "read meta";
	sqlite3_stmt *st = walk_stmt(s, "SELECT key, value FROM meta ORDER BY key", op, err);
	if (!st)
		return -1;
	int rc, stopped = 0;
	while ((rc = step_retry(s, st)) == SQLITE_ROW)
		if ((stopped = fn(ctx, col_text(st, 0, NULL), col_text(st, 1, NULL))) != 0)
			break;
	return walk_end(s, st, rc, stopped, op, err);
}
