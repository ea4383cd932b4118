/* store/pg: the PostgreSQL backend of the durable store (pg.h).
 *
 * The only module that includes libpq-fe.h. Statements mirror sqlite.c's one
 * for one; what differs is how PostgreSQL gives the same guarantees: a
 * locked chain-head row instead of BEGIN IMMEDIATE, the database's clock
 * instead of the host's, cursors instead of stepping a statement. */
#include "store/pg.h"

#include <inttypes.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/hash.h"
#include "lang/json.h"
#include "base/mem.h"
#include "lang/value.h"

/* How long a writer waits for the chain-head lock (as sqlite.c's
 * LOCK_WAIT_MS), how long a connection attempt may take when the URI and
 * PGCONNECT_TIMEOUT say nothing, and how many rows a walk holds at once. */
enum { LOCK_WAIT_S = 60, CONNECT_TIMEOUT_S = 10, FETCH_ROWS = 1000 };

/* Serializes first opens of one database: every rbk uses this key. */
#define MIGRATE_LOCK_KEY "7596548245474149"

/* UTC ISO-8601 with milliseconds, from the database's clock, at the moment
 * of the statement (not of the transaction): 2026-11-21T11:44:45.123Z. */
#define NOW_ISO "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* ---- migrations: append only; migration N is a row N of schema_version ---- */

static const char schema_v1[] =
	"-- rbk store, schema version 1 (PostgreSQL): SQLite's version 1, with the\n"
	"-- table of applied versions and the chain head.\n"
	"--\n"
	"-- Text columns compare and sort as bytes (COLLATE \"C\"), as SQLite's do, so\n"
	"-- orderings and range filters answer the same on both backends. Event data\n"
	"-- is text, never jsonb: the chain hashes its exact bytes.\n"
	"\n"
	"CREATE TABLE schema_version (\n"
	"\tversion    integer PRIMARY KEY,\n"
	"\tapplied_at text COLLATE \"C\" NOT NULL\n"
	");\n"
	"\n"
	"CREATE TABLE sources (\n"
	"\tsha256 text COLLATE \"C\" PRIMARY KEY,\n"
	"\tbytes  bytea NOT NULL\n"
	");\n"
	"\n"
	"CREATE TABLE runs (\n"
	"\tid              bigint PRIMARY KEY, -- max + 1 under the write lock: 1, 2, 3 ...\n"
	"\trunbook         text COLLATE \"C\" NOT NULL,\n"
	"\tstatus          text COLLATE \"C\" NOT NULL,\n"
	"\tactor           text COLLATE \"C\" NOT NULL,\n"
	"\tcreated_at      text COLLATE \"C\" NOT NULL, -- UTC ISO-8601 with milliseconds\n"
	"\tupdated_at      text COLLATE \"C\" NOT NULL,\n"
	"\tparent_run      bigint NULL REFERENCES runs(id),\n"
	"\tparent_state    text COLLATE \"C\" NULL,\n"
	"\tdry_run         integer NOT NULL,\n"
	"\tparams_json     text COLLATE \"C\" NOT NULL,\n"
	"\tsource_sha256   text COLLATE \"C\" NOT NULL REFERENCES sources(sha256),\n"
	"\tprovenance_json text COLLATE \"C\" NOT NULL,\n"
	"\tcurrent_state   text COLLATE \"C\" NULL,\n"
	"\towner_pid       bigint NULL,\n"
	"\tlock_key        text COLLATE \"C\" NULL\n"
	");\n"
	"\n"
	"CREATE INDEX runs_by_runbook ON runs(runbook, created_at);\n"
	"CREATE INDEX runs_by_status ON runs(status, created_at);\n"
	"CREATE INDEX runs_by_created ON runs(created_at);\n"
	"CREATE INDEX runs_by_lock ON runs(lock_key) WHERE lock_key IS NOT NULL;\n"
	"\n"
	"-- The one row every writing transaction locks first (SELECT ... FOR UPDATE),\n"
	"-- as SQLite's BEGIN IMMEDIATE takes the write lock: appends from every\n"
	"-- process and host take seq one after the other, without gaps.\n"
	"CREATE TABLE chain_head (\n"
	"\tid integer PRIMARY KEY CHECK (id = 1)\n"
	");\n"
	"INSERT INTO chain_head (id) VALUES (1);\n"
	"\n"
	"-- The audit chain, global across runs:\n"
	"--   hash = SHA-256(prev_hash || seq \"\\n\" run_id \"\\n\" at \"\\n\" actor \"\\n\" kind \"\\n\" data)\n"
	"CREATE TABLE events (\n"
	"\tseq       bigint PRIMARY KEY, -- 1, 2, 3 ... without gaps\n"
	"\trun_id    bigint NOT NULL REFERENCES runs(id),\n"
	"\tat        text COLLATE \"C\" NOT NULL, -- 2026-11-21T11:44:45.123Z\n"
	"\tactor     text COLLATE \"C\" NOT NULL,\n"
	"\tkind      text COLLATE \"C\" NOT NULL,\n"
	"\tdata      text COLLATE \"C\" NOT NULL, -- JSON\n"
	"\tprev_hash text COLLATE \"C\" NOT NULL,\n"
	"\thash      text COLLATE \"C\" NOT NULL\n"
	");\n"
	"\n"
	"CREATE INDEX events_by_run ON events(run_id, seq);\n"
	"\n"
	"-- Append-only: a change by mistake fails here; one on purpose (disabling\n"
	"-- these) is what the hash chain is for.\n"
	"CREATE FUNCTION rbk_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"\tRAISE EXCEPTION 'events are append-only';\n"
	"END\n"
	"$$;\n"
	"\n"
	"CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events\n"
	"\tFOR EACH ROW EXECUTE FUNCTION rbk_events_append_only();\n"
	"CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events\n"
	"\tFOR EACH STATEMENT EXECUTE FUNCTION rbk_events_append_only();\n"
	"\n"
	"-- One row per attempt of a state's action: what resume consults.\n"
	"CREATE TABLE steps (\n"
	"\trun_id          bigint NOT NULL REFERENCES runs(id),\n"
	"\tstate           text COLLATE \"C\" NOT NULL,\n"
	"\tattempt         integer NOT NULL,\n"
	"\tstatus          text COLLATE \"C\" NOT NULL,\n"
	"\tstarted_seq     bigint NULL,\n"
	"\tended_seq       bigint NULL,\n"
	"\tidempotency_key text COLLATE \"C\" NOT NULL UNIQUE, -- run:state:attempt\n"
	"\tPRIMARY KEY (run_id, state, attempt)\n"
	");\n";

static const char schema_v2[] =
	"-- migration 2: the scheduler's record of fires (as SQLite's version 2).\n"
	"CREATE TABLE fires (\n"
	"\tid         bigint PRIMARY KEY, -- max + 1 under the write lock\n"
	"\trunbook    text COLLATE \"C\" NOT NULL,\n"
	"\tentry      integer NOT NULL,\n"
	"\tnominal    text COLLATE \"C\" NOT NULL,\n"
	"\tdecided_at text COLLATE \"C\" NOT NULL,\n"
	"\toutcome    text COLLATE \"C\" NOT NULL,\n"
	"\trun_id     bigint NULL REFERENCES runs(id),\n"
	"\tnote       text COLLATE \"C\" NULL,\n"
	"\tUNIQUE (runbook, entry, nominal)\n"
	");\n"
	"\n"
	"CREATE TABLE meta (\n"
	"\tkey   text COLLATE \"C\" PRIMARY KEY,\n"
	"\tvalue text COLLATE \"C\" NOT NULL\n"
	");\n";

static const char schema_v3[] =
	"-- migration 3: where a run may execute and who executes it. A run's queue,\n"
	"-- its executor's lease (measured on the database's clock) and its epoch,\n"
	"-- the fencing token a claim bumps.\n"
	"ALTER TABLE runs\n"
	"\tADD COLUMN queue       text COLLATE \"C\" NULL,\n"
	"\tADD COLUMN lease_owner text COLLATE \"C\" NULL,\n"
	"\tADD COLUMN lease_until timestamptz NULL,\n"
	"\tADD COLUMN epoch       bigint NOT NULL DEFAULT 0;\n"
	"CREATE INDEX runs_by_queue ON runs(queue, status) WHERE parent_run IS NULL;\n";

static const char *const migrations[] = {schema_v1, schema_v2, schema_v3};
enum { SCHEMA_LATEST = (int)(sizeof migrations / sizeof migrations[0]) };

int rbk_pgstore_schema_latest(void) { return SCHEMA_LATEST; }

const char *rbk_pgstore_migration_sql(int version)
{
	return version >= 1 && version <= SCHEMA_LATEST ? migrations[version - 1] : NULL;
}

/* Whether rbk's schema_version is in the connection's schema, and which of
 * rbk's table names are there. From pg_class itself, never a catalog
 * cache: after waiting for another process's migration, that could still
 * say "absent". */
static const char sql_read_version[] =
	"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" WHERE n.nspname = current_schema() AND c.relname = 'schema_version'),"
	" (SELECT string_agg(c.relname, ', ' ORDER BY c.relname) FROM pg_catalog.pg_class c"
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"
	" AND c.relname IN ('sources', 'runs', 'chain_head', 'events', 'steps', 'fires', 'meta')),"
	" current_schema()";
static const char sql_max_version[] = "SELECT COALESCE(max(version), 0) FROM schema_version";

/* ---- statements ---- */

enum {
	ST_LAST_EVENT,
	ST_NEXT_EVENT,
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
	ST_COUNT
};

#define RUN_COLUMNS                                                                                        \
	"id, runbook, status, actor, created_at, updated_at, parent_run, parent_state, dry_run, params_json," \
	" source_sha256, provenance_json, current_state, owner_pid, lock_key"
#define EVENT_COLUMNS "seq, run_id, at, actor, kind, data, prev_hash, hash"
#define ACTIVE_STATUSES "('queued', 'running', 'waiting', 'interrupted', 'needs_attention')"

/* Prepared once per connection, on first use. Parameters are text (the
 * source's bytes binary); each is cast where PostgreSQL cannot infer it. */
static const char *const stmt_sql[ST_COUNT] = {
	[ST_LAST_EVENT] = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
	/* Read after the lock is held, so the time is never older than the
	 * previous writer's. */
	[ST_NEXT_EVENT] = "SELECT e.seq, e.hash, " NOW_ISO " FROM (SELECT 1) AS one LEFT JOIN"
			  " (SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1) AS e ON true",
	[ST_INSERT_EVENT] = "INSERT INTO events (" EVENT_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
	[ST_INSERT_SOURCE] = "INSERT INTO sources (sha256, bytes) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
	[ST_GET_SOURCE] = "SELECT bytes FROM sources WHERE sha256 = $1",
	[ST_INSERT_RUN] = "WITH t AS (SELECT " NOW_ISO " AS at)"
			  " INSERT INTO runs (" RUN_COLUMNS ")"
			  " SELECT (SELECT COALESCE(max(id), 0) + 1 FROM runs), $1::text, 'running', $2::text, t.at,"
			  " t.at, $3::bigint, $4::text, $5::integer, $6::text, $7::text, $8::text, NULL, $9::bigint,"
			  " $10::text FROM t RETURNING id",
	[ST_GET_RUN] = "SELECT " RUN_COLUMNS " FROM runs WHERE id = $1",
	[ST_SET_RUN] = "UPDATE runs SET status = COALESCE($2::text, status),"
		       " current_state = COALESCE($3::text, current_state), updated_at = " NOW_ISO " WHERE id = $1",
	[ST_UPSERT_STEP] = "INSERT INTO steps (run_id, state, attempt, status, started_seq, ended_seq,"
			   " idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7)"
			   " ON CONFLICT (run_id, state, attempt) DO UPDATE SET status = excluded.status,"
			   " started_seq = COALESCE(excluded.started_seq, steps.started_seq),"
			   " ended_seq = COALESCE(excluded.ended_seq, steps.ended_seq)",
	[ST_LOCK_HOLDER] = "SELECT id FROM runs WHERE lock_key = $1 AND id <> $2 AND status IN " ACTIVE_STATUSES
			   " ORDER BY id LIMIT 1",
	[ST_SET_OWNER] = "UPDATE runs SET owner_pid = $2 WHERE id = $1",
	[ST_CLAIM_FIRE] = "INSERT INTO fires (id, runbook, entry, nominal, decided_at, outcome, note)"
			  " SELECT (SELECT COALESCE(max(id), 0) + 1 FROM fires), $1::text, $2::integer, $3::text, "
			  NOW_ISO ", $4::text, $5::text"
			  " ON CONFLICT (runbook, entry, nominal) DO NOTHING RETURNING id",
	[ST_SET_FIRE] = "UPDATE fires SET outcome = $2, run_id = COALESCE($3::bigint, run_id),"
			" note = COALESCE($4::text, note) WHERE id = $1",
	[ST_GET_META] = "SELECT value FROM meta WHERE key = $1",
	[ST_SET_META] = "INSERT INTO meta (key, value) VALUES ($1, $2)"
			" ON CONFLICT (key) DO UPDATE SET value = excluded.value",
	[ST_EVENT_HASH] = "SELECT hash FROM events WHERE seq = $1",
};

/* Walks: DECLAREd as cursors, read FETCH_ROWS at a time. */
static const char sql_events_all[] = "SELECT " EVENT_COLUMNS " FROM events ORDER BY seq";
static const char sql_events_from[] = "SELECT " EVENT_COLUMNS " FROM events WHERE seq >= $1 ORDER BY seq";
static const char sql_events_run[] = "SELECT " EVENT_COLUMNS " FROM events WHERE run_id = $1 ORDER BY seq";
static const char sql_events_run_after[] =
	"SELECT " EVENT_COLUMNS " FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq";
static const char sql_links[] = "SELECT " EVENT_COLUMNS " FROM events WHERE seq >= $1 AND seq <= $2 ORDER BY seq";
static const char sql_steps_run[] = "SELECT run_id, state, attempt, status, started_seq, ended_seq, idempotency_key"
				    " FROM steps WHERE run_id = $1"
				    " ORDER BY started_seq IS NULL, started_seq, state, attempt";
static const char sql_fires[] =
	"SELECT f.id, f.runbook, f.entry, f.nominal, f.decided_at, f.outcome, f.run_id, f.note, r.status"
	" FROM fires f LEFT JOIN runs r ON r.id = f.run_id"
	" WHERE ($1::text IS NULL OR f.runbook = $1::text) AND ($2::integer < 0 OR f.entry = $2::integer)"
	" AND ($3::text IS NULL OR f.outcome = $3::text) ORDER BY f.nominal DESC, f.id DESC LIMIT $4::bigint";

/* A writer paused inside its transaction (SIGSTOP, a frozen VM) would hold
 * the chain-head lock every writer needs: the server ends a writing
 * transaction left idle for 5 s, so one paused host never stops the others
 * for long. rbk never keeps a writing transaction idle: its batches commit
 * before each action. (Reads are not limited: `rbk log | less` may wait.) */
static const char sql_begin_write[] =
	"BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL idle_in_transaction_session_timeout = '5s';"
	" SELECT id FROM chain_head WHERE id = 1 FOR UPDATE";
static const char sql_begin_read[] = "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY";

/* ---- the handle ---- */

enum { TX_NONE, TX_CALLER, TX_FAILED };

struct rbk_pgstore {
	PGconn *conn;
	char *path;	  /* the URI without its password, for messages */
	int tx;		  /* the caller's transaction, as in sqlite.c */
	char tx_why[512]; /* why a caller's transaction was rolled back */
	int walk_tx;	  /* a walk's own (read-only) transaction is open */
	unsigned cursors; /* names each walk's cursor */
	unsigned char prepared[ST_COUNT];
	int64_t fence_run, fence_epoch; /* rbk_pgstore_fence */
	int listening;			/* LISTEN rbk_work sent */
};

const char *rbk_pgstore_path(const rbk_pgstore *s) { return s->path; }

static const char statuses[][16] = {"queued", "running",	 "waiting", "interrupted", "needs_attention",
				    "succeeded", "failed",  "rolled_back", "aborted"};

static const char zero_hash[65] = "0000000000000000000000000000000000000000000000000000000000000000";

/* ---- parameters and columns ---- */

enum { MAX_PARAMS = 12 };

typedef struct {
	int n;
	const char *val[MAX_PARAMS];
	int len[MAX_PARAMS];
	int fmt[MAX_PARAMS];
	char num[MAX_PARAMS][24];
} pgparams;

static void p_text(pgparams *p, const char *v)
{
	p->val[p->n] = v; /* NULL is SQL NULL */
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

static void p_i64(pgparams *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof p->num[p->n], "%" PRId64, v);
	p_text(p, p->num[p->n]);
}

/* An id where 0 means none (NULL), as sqlite.c's bind_id_or_null. */
static void p_id(pgparams *p, int64_t v)
{
	if (v)
		p_i64(p, v);
	else
		p_text(p, NULL);
}

static void p_bytes(pgparams *p, const char *bytes, size_t len)
{
	p->val[p->n] = len ? bytes : ""; /* NULL would be SQL NULL: an empty runbook is empty bytes */
	p->len[p->n] = (int)len;
	p->fmt[p->n] = 1;
	p->n++;
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Borrowed text of a column that may be NULL (NULL stays NULL); PQgetvalue
 * itself reads a NULL as "", as sqlite.c's col_text. */
static const char *col_opt(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static char *col_dup(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	return rbk_xstrndup(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

static int result_ok(const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	return r && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
}

/* ---- errors ---- */

/* libpq's messages span lines ("...failed: ...\n\tIs the server running");
 * ours are one line. */
static void one_line(const char *in, char *out, size_t n)
{
	size_t o = 0;
	int space = 0;
	for (; in && *in && o + 1 < n; in++) {
		if (*in == '\n' || *in == '\t' || *in == '\r' || *in == ' ') {
			space = o > 0;
			continue;
		}
		if (space && o + 2 < n)
			out[o++] = ' ';
		space = 0;
		out[o++] = *in;
	}
	out[o] = '\0';
}

static int is_sqlstate(const char *code, const char *want)
{
	return code && strncmp(code, want, strlen(want)) == 0;
}

/* What went wrong, in words an operator acts on; *code is RBK_ERR_STORE
 * when the store cannot be reached or written, as sqlite.c's CANTOPEN,
 * READONLY and PERM. */
static void describe(rbk_pgstore *s, const PGresult *r, char *buf, size_t n, int *code)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char msg[400];
	one_line(primary ? primary : PQerrorMessage(s->conn), msg, sizeof msg);
	*code = RBK_ERR_GENERIC;
	if (PQstatus(s->conn) == CONNECTION_BAD || is_sqlstate(state, "08") || is_sqlstate(state, "57P")) {
		*code = RBK_ERR_STORE;
		snprintf(buf, n, "connection lost: %s", msg);
	} else if (is_sqlstate(state, "53100")) {
		snprintf(buf, n, "disk full");
	} else if (is_sqlstate(state, "53200")) {
		snprintf(buf, n, "out of memory");
	} else if (is_sqlstate(state, "55P03")) {
		snprintf(buf, n, "locked by another process for too long (waited up to %d s)", LOCK_WAIT_S);
	} else if (is_sqlstate(state, "25006")) {
		*code = RBK_ERR_STORE;
		snprintf(buf, n, "the database is read-only (%s)", msg);
	} else if (is_sqlstate(state, "42501") || is_sqlstate(state, "28")) {
		*code = RBK_ERR_STORE;
		snprintf(buf, n, "permission denied (%s)", msg);
	} else {
		snprintf(buf, n, "%s", msg[0] ? msg : "unknown error");
	}
}

static void rollback_now(rbk_pgstore *s)
{
	PGTransactionStatusType ts = s->conn ? PQtransactionStatus(s->conn) : PQTRANS_UNKNOWN;
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
		PQclear(PQexec(s->conn, "ROLLBACK"));
	s->walk_tx = 0;
}

/* A database failure during op (r: its result, may be NULL): the
 * transaction, whoever opened it, is rolled back, as sqlite.c's db_fail.
 * what overrides the description. Returns -1. */
static int db_fail(rbk_pgstore *s, const PGresult *r, const char *op, const char *what, rbk_err *err)
{
	char desc[480];
	int code;
	describe(s, r, desc, sizeof desc, &code);
	rbk_err local;
	rbk_err_set(&local, -1, "store %s: %s: %s", s->path, op, what ? what : desc);
	local.code = code;
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
static int plain_fail(rbk_pgstore *s, rbk_err *err, int code, const char *op, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int plain_fail(rbk_pgstore *s, rbk_err *err, int code, const char *op, const char *fmt, ...)
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

/* Run statement id; NULL (with err, the transaction rolled back) unless
 * it succeeded. binary: the result's columns in binary (the source).
 * fk_what (may be NULL) replaces the database's words for a foreign key
 * violation ("run 7 does not exist"). */
static PGresult *run_stmt_fk(rbk_pgstore *s, int id, const pgparams *p, int binary, const char *op,
			     const char *fk_what, rbk_err *err)
{
	char name[24];
	snprintf(name, sizeof name, "rbk_%d", id);
	if (!s->prepared[id]) {
		PGresult *r = PQprepare(s->conn, name, stmt_sql[id], 0, NULL);
		if (!result_ok(r)) {
			db_fail(s, r, op, NULL, err);
			PQclear(r);
			return NULL;
		}
		PQclear(r);
		s->prepared[id] = 1;
	}
	PGresult *r = PQexecPrepared(s->conn, name, p ? p->n : 0, p ? p->val : NULL, p ? p->len : NULL,
				     p ? p->fmt : NULL, binary);
	if (!result_ok(r)) {
		const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		db_fail(s, r, op, fk_what && is_sqlstate(state, "23503") ? fk_what : NULL, err);
		PQclear(r);
		return NULL;
	}
	return r;
}

static PGresult *run_stmt(rbk_pgstore *s, int id, const pgparams *p, int binary, const char *op, rbk_err *err)
{
	return run_stmt_fk(s, id, p, binary, op, NULL, err);
}

/* A parameterless statement outside the prepared set; NULL with err. */
static PGresult *exec_sql(rbk_pgstore *s, const char *sql, const char *op, rbk_err *err)
{
	PGresult *r = PQexec(s->conn, sql);
	if (!result_ok(r)) {
		db_fail(s, r, op, NULL, err);
		PQclear(r);
		return NULL;
	}
	return r;
}

/* Open a writing transaction: BEGIN and the chain-head lock, in one round
 * trip. Every writer takes that lock first, so writers run one at a time
 * (never deadlocking) and ids and seq are allocated without gaps. */
static int check_fence(rbk_pgstore *s, const char *op, rbk_err *err);

static int tx_begin(rbk_pgstore *s, const char *op, rbk_err *err)
{
	PGresult *r = exec_sql(s, sql_begin_write, op, err);
	if (!r)
		return -1;
	int rows = PQntuples(r);
	PQclear(r);
	if (rows != 1) {
		rollback_now(s);
		return plain_fail(s, err, RBK_ERR_STORE, op, "the chain_head row is missing (the schema was damaged)");
	}
	/* Every claim takes the chain-head lock too: the epoch cannot move
	 * until this transaction ends. */
	if (s->fence_run && check_fence(s, op, err) < 0) {
		rollback_now(s);
		return -1;
	}
	return 0;
}

static int tx_commit(rbk_pgstore *s, const char *op, rbk_err *err)
{
	PGresult *r = PQexec(s->conn, "COMMIT");
	int rc = 0;
	if (!result_ok(r))
		rc = db_fail(s, r, op, NULL, err);
	else if (strcmp(PQcmdStatus(r), "COMMIT") != 0) /* a failed transaction "commits" as ROLLBACK */
		rc = db_fail(s, r, op, "the transaction was rolled back by the database", err);
	PQclear(r);
	return rc;
}

/* Start a writing operation: join the caller's transaction or open one of
 * our own (*own = 1). */
static int op_begin(rbk_pgstore *s, int *own, const char *op, rbk_err *err)
{
	*own = 0;
	if (s->walk_tx)
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "a walk's callback cannot write to the store");
	if (s->tx == TX_CALLER)
		return 0;
	if (s->tx == TX_FAILED)
		return plain_fail(s, err, RBK_ERR_GENERIC, op,
				  "the transaction was rolled back after an earlier error (%s)", s->tx_why);
	*own = 1;
	return tx_begin(s, op, err);
}

static int op_end(rbk_pgstore *s, int own, int rc, const char *op, rbk_err *err)
{
	if (rc < 0) {
		if (own)
			rollback_now(s);
		return rc;
	}
	return own ? tx_commit(s, op, err) : 0;
}

int rbk_pgstore_begin(rbk_pgstore *s, rbk_err *err)
{
	if (s->tx != TX_NONE)
		return plain_fail(s, err, RBK_ERR_GENERIC, "begin", "a transaction is already open");
	if (s->walk_tx)
		return plain_fail(s, err, RBK_ERR_GENERIC, "begin", "a walk's callback cannot write to the store");
	if (tx_begin(s, "begin", err) < 0)
		return -1;
	s->tx = TX_CALLER;
	return 0;
}

int rbk_pgstore_commit(rbk_pgstore *s, rbk_err *err)
{
	if (s->tx == TX_NONE)
		return plain_fail(s, err, RBK_ERR_GENERIC, "commit", "no transaction is open");
	if (s->tx == TX_FAILED) {
		s->tx = TX_NONE;
		return plain_fail(s, err, RBK_ERR_GENERIC, "commit",
				  "the transaction was rolled back after an earlier error (%s)", s->tx_why);
	}
	s->tx = TX_NONE; /* a failed COMMIT ends the transaction too */
	return tx_commit(s, "commit", err);
}

void rbk_pgstore_rollback(rbk_pgstore *s)
{
	rollback_now(s);
	s->tx = TX_NONE;
}

/* ---- walks ---- */

typedef int (*row_fn)(void *wctx, const PGresult *r, int row);

/* Read sql's rows through a cursor, calling row for each until it returns
 * non-zero (*stopped receives that value). Inside the caller's transaction,
 * or a read-only one of its own, so that row may read the store between
 * batches. 0, or -1 with err. */
static int walk(rbk_pgstore *s, const char *sql, const pgparams *p, const char *op, row_fn row, void *wctx,
		int *stopped, rbk_err *err)
{
	*stopped = 0;
	int own = PQtransactionStatus(s->conn) == PQTRANS_IDLE;
	if (own) {
		PGresult *r = exec_sql(s, sql_begin_read, op, err);
		if (!r)
			return -1;
		PQclear(r);
		s->walk_tx = 1;
	}
	char name[32], fetch[64];
	snprintf(name, sizeof name, "rbk_walk_%u", ++s->cursors);
	snprintf(fetch, sizeof fetch, "FETCH FORWARD %d FROM %s", FETCH_ROWS, name);
	char *decl = rbk_xasprintf("DECLARE %s NO SCROLL CURSOR FOR %s", name, sql);
	PGresult *r = PQexecParams(s->conn, decl, p ? p->n : 0, NULL, p ? p->val : NULL, p ? p->len : NULL,
				   p ? p->fmt : NULL, 0);
	rbk_free(decl);
	int rc = 0;
	if (!result_ok(r))
		rc = db_fail(s, r, op, NULL, err);
	PQclear(r);
	while (rc == 0) {
		r = PQexec(s->conn, fetch);
		if (!result_ok(r)) {
			rc = db_fail(s, r, op, NULL, err);
			PQclear(r);
			break;
		}
		int n = PQntuples(r);
		for (int i = 0; i < n && !*stopped; i++)
			*stopped = row(wctx, r, i);
		PQclear(r);
		if (*stopped || n < FETCH_ROWS)
			break;
	}
	/* A read in row may have failed and rolled everything back: then
	 * there is neither a cursor to close nor a transaction to end. */
	if (rc == 0 && PQtransactionStatus(s->conn) == PQTRANS_INTRANS) {
		if (own) {
			s->walk_tx = 0;
			r = exec_sql(s, "COMMIT", op, err);
		} else {
			char close[48];
			snprintf(close, sizeof close, "CLOSE %s", name);
			r = exec_sql(s, close, op, err);
		}
		if (!r)
			rc = -1;
		PQclear(r);
	}
	if (own)
		s->walk_tx = 0;
	return rc;
}

/* ---- opening ---- */

static void quiet_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message; /* "relation ... already exists, skipping" and the like: not for an operator */
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Replace every occurrence of secret (n bytes) in msg (capacity cap) by
 * "***", or by as many '*' when there is no room to grow. */
static void redact_one(char *msg, size_t cap, const char *secret, size_t n)
{
	if (n == 0)
		return;
	char *p = msg;
	while ((p = memmem(p, strlen(p), secret, n)) != NULL) {
		size_t len = strlen(msg), tail = strlen(p + n);
		size_t stars = n >= 3 || len + 3 - n < cap ? 3 : n;
		memmove(p + stars, p + n, tail + 1);
		memset(p, '*', stars);
		p += stars;
	}
}

/* Take a password spelled in url (user:PASSWORD@ or ?password=) out of
 * msg, as written and percent-decoded: libpq quotes pieces of a URI it
 * cannot parse. */
static void redact(char *msg, size_t cap, const char *url)
{
	const char *secrets[2] = {NULL, NULL};
	size_t lens[2] = {0, 0};
	const char *rest = strstr(url, "://");
	rest = rest ? rest + 3 : url;
	size_t auth = strcspn(rest, "@/?#");
	if (rest[auth] == '@') {
		const char *colon = memchr(rest, ':', auth);
		if (colon) {
			secrets[0] = colon + 1;
			lens[0] = (size_t)(rest + auth - colon - 1);
		}
	}
	const char *q = strchr(url, '?');
	for (const char *k = q; k; k = strchr(k + 1, '&')) {
		if (strncmp(k + 1, "password=", 9) == 0) {
			secrets[1] = k + 10;
			lens[1] = strcspn(secrets[1], "&#");
		}
	}
	for (int i = 0; i < 2; i++) {
		if (!secrets[i])
			continue;
		char *raw = rbk_xstrndup(secrets[i], lens[i]);
		char *dec = rbk_xmalloc(lens[i] + 1);
		size_t d = 0;
		for (size_t j = 0; j < lens[i]; j++) {
			int h, l;
			if (raw[j] == '%' && j + 2 < lens[i] + 1 && (h = hexval(raw[j + 1])) >= 0 &&
			    (l = hexval(raw[j + 2])) >= 0) {
				dec[d++] = (char)(h * 16 + l);
				j += 2;
			} else {
				dec[d++] = raw[j];
			}
		}
		dec[d] = '\0';
		redact_one(msg, cap, raw, lens[i]);
		redact_one(msg, cap, dec, d);
		rbk_free(raw);
		rbk_free(dec);
	}
}

/* The store's name in messages: where it is and which database, never the
 * password. A socket directory is a URI's host parameter. */
static char *display_name(PGconn *c)
{
	const char *user = c ? PQuser(c) : NULL, *host = c ? PQhost(c) : NULL;
	const char *port = c ? PQport(c) : NULL, *db = c ? PQdb(c) : NULL;
	const char *at = user && *user ? "@" : "";
	user = user && *user ? user : "";
	db = db ? db : "";
	if (!host || !*host || host[0] == '/') {
		int other_port = port && *port && strcmp(port, "5432") != 0;
		return rbk_xasprintf("postgresql://%s%s/%s%s%s%s%s", user, at, db, host && *host ? "?host=" : "",
				     host && *host ? host : "", other_port ? (host && *host ? "&port=" : "?port=") : "",
				     other_port ? port : "");
	}
	return rbk_xasprintf("postgresql://%s%s%s%s%s/%s", user, at, host, port && *port ? ":" : "",
			     port && *port ? port : "", db);
}

static int read_version(rbk_pgstore *s, const char *op, int *version, char **foreign, rbk_err *err)
{
	*version = 0;
	if (foreign)
		*foreign = NULL;
	PGresult *r = exec_sql(s, sql_read_version, op, err);
	if (!r)
		return -1;
	if (PQgetisnull(r, 0, 2)) {
		PQclear(r);
		return plain_fail(s, err, RBK_ERR_STORE, op,
				  "no schema to keep the store in (the connection's search_path names none that exists)");
	}
	int has = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	if (foreign && !has && !PQgetisnull(r, 0, 1))
		*foreign = rbk_xasprintf("%s (in schema %s)", PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
	PQclear(r);
	if (!has)
		return 0;
	if (!(r = exec_sql(s, sql_max_version, op, err)))
		return -1;
	*version = (int)col_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

static int refuse_newer(rbk_pgstore *s, int version, rbk_err *err)
{
	return plain_fail(s, err, RBK_ERR_GENERIC, "open", "store schema version %d is newer than this rbk (%d)",
			  version, SCHEMA_LATEST);
}

static int refuse_foreign(rbk_pgstore *s, char *foreign, rbk_err *err)
{
	plain_fail(s, err, RBK_ERR_GENERIC, "open",
		   "not an rbk store: the database has tables %s but no schema_version (left as it is)", foreign);
	rbk_free(foreign);
	return -1;
}

static int migrate(rbk_pgstore *s, rbk_err *err)
{
	const char *op = "migrate schema";
	/* Concurrent first opens wait for each other here, then read the
	 * version again: another process may have migrated meanwhile. */
	PGresult *r = exec_sql(s, "BEGIN; SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")", op, err);
	if (!r)
		return -1;
	PQclear(r);
	int version;
	char *foreign;
	if (read_version(s, op, &version, &foreign, err) < 0) {
		rollback_now(s);
		return -1;
	}
	if (version > SCHEMA_LATEST || foreign) {
		rollback_now(s);
		return foreign ? refuse_foreign(s, foreign, err) : refuse_newer(s, version, err);
	}
	for (int v = version + 1; v <= SCHEMA_LATEST; v++) {
		char op2[64];
		snprintf(op2, sizeof op2, "migrate schema to version %d", v);
		if (!(r = exec_sql(s, migrations[v - 1], op2, err)))
			return -1;
		PQclear(r);
		pgparams p = {0};
		p_i64(&p, v);
		r = PQexecParams(s->conn, "INSERT INTO schema_version (version, applied_at) VALUES ($1, " NOW_ISO ")",
				 p.n, NULL, p.val, p.len, p.fmt, 0);
		if (!result_ok(r)) {
			db_fail(s, r, op2, NULL, err);
			PQclear(r);
			return -1;
		}
		PQclear(r);
	}
	return tx_commit(s, op, err);
}

int rbk_pgstore_open(rbk_pgstore **out, const char *url, rbk_err *err)
{
	*out = NULL;
	if (!url || (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0)) {
		rbk_err_set(err, -1, "store: not a PostgreSQL URI (postgresql://... or postgres://...)");
		if (err)
			err->code = RBK_ERR_STORE;
		return -1;
	}
	/* The URI's own settings win over these defaults (later keywords
	 * override earlier ones), and PGCONNECT_TIMEOUT over ours. */
	const char *keys[9], *vals[9];
	int k = 0;
	/* A peer that vanished (a host cut off mid-transaction) is noticed by
	 * the server within about 20 s, and its locks released. */
	keys[k] = "keepalives_idle";
	vals[k++] = "10";
	keys[k] = "keepalives_interval";
	vals[k++] = "5";
	keys[k] = "keepalives_count";
	vals[k++] = "2";
	char timeout[16];
	if (!getenv("PGCONNECT_TIMEOUT")) {
		snprintf(timeout, sizeof timeout, "%d", CONNECT_TIMEOUT_S);
		keys[k] = "connect_timeout";
		vals[k++] = timeout;
	}
	keys[k] = "fallback_application_name";
	vals[k++] = "rbk";
	keys[k] = "dbname";
	vals[k++] = url;
	keys[k] = NULL;
	vals[k] = NULL;

	/* A URI libpq cannot read fails before any connection: say so (its
	 * words may quote the URI, hence the redaction). */
	char *perr = NULL;
	PQconninfoOption *parsed = PQconninfoParse(url, &perr);
	if (!parsed) {
		char msg[400];
		one_line(perr ? perr : "out of memory", msg, sizeof msg);
		redact(msg, sizeof msg, url);
		rbk_err_set(err, -1, "store: open: malformed PostgreSQL URI: %s", msg);
		if (err)
			err->code = RBK_ERR_STORE;
		PQfreemem(perr);
		return -1;
	}
	PQconninfoFree(parsed);

	rbk_pgstore *s = rbk_xcalloc(1, sizeof *s);
	s->conn = PQconnectdbParams(keys, vals, 1);
	s->path = display_name(s->conn);
	if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
		char msg[400];
		one_line(s->conn ? PQerrorMessage(s->conn) : "out of memory", msg, sizeof msg);
		redact(msg, sizeof msg, url);
		rbk_err_set(err, -1, "store %s: open: cannot connect: %s", s->path, msg);
		if (err)
			err->code = RBK_ERR_STORE;
		goto fail;
	}
	PQsetNoticeProcessor(s->conn, quiet_notice, NULL);
	if (PQserverVersion(s->conn) < 110000) {
		plain_fail(s, err, RBK_ERR_STORE, "open", "PostgreSQL %d.%d is too old (rbk needs 11 or later)",
			   PQserverVersion(s->conn) / 10000, PQserverVersion(s->conn) % 10000 / 100);
		goto fail;
	}
	if (PQsetClientEncoding(s->conn, "UTF8") != 0) {
		db_fail(s, NULL, "open: set client encoding", NULL, err);
		goto fail;
	}
	char set_lock[64];
	snprintf(set_lock, sizeof set_lock, "SET lock_timeout = '%ds'", LOCK_WAIT_S);
	PGresult *r = exec_sql(s, set_lock, "open", err);
	if (!r)
		goto fail;
	PQclear(r);

	/* The version check comes first: a store from a newer rbk is refused
	 * before anything is written to it. */
	int version;
	char *foreign;
	if (read_version(s, "open", &version, &foreign, err) < 0)
		goto fail;
	if (foreign) {
		refuse_foreign(s, foreign, err);
		goto fail;
	}
	if (version > SCHEMA_LATEST) {
		refuse_newer(s, version, err);
		goto fail;
	}
	if (version < SCHEMA_LATEST && migrate(s, err) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	if (err && err->code == RBK_ERR_GENERIC && PQstatus(s->conn) != CONNECTION_OK)
		err->code = RBK_ERR_STORE;
	rbk_pgstore_close(s);
	return -1;
}

void rbk_pgstore_close(rbk_pgstore *s)
{
	if (!s)
		return;
	if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
		rollback_now(s);
	PQfinish(s->conn);
	rbk_free(s->path);
	rbk_free(s);
}

int rbk_pgstore_info_get(rbk_pgstore *s, rbk_store_info *out, rbk_err *err)
{
	memset(out, 0, sizeof *out);
	PGresult *r = exec_sql(s,
			       "SELECT (SELECT COALESCE(max(version), 0) FROM schema_version),"
			       " current_setting('fsync'), current_setting('synchronous_commit')",
			       "info", err);
	if (!r)
		return -1;
	out->schema_version = (int)col_i64(r, 0, 0);
	snprintf(out->journal_mode, sizeof out->journal_mode, "wal");
	const char *fsync = PQgetvalue(r, 0, 1), *sync = PQgetvalue(r, 0, 2);
	out->synchronous = strcmp(fsync, "on") != 0 || strcmp(sync, "off") == 0 ? 0 : strcmp(sync, "local") == 0 ? 1 : 2;
	out->foreign_keys = 1;
	PQclear(r);
	return 0;
}

/* ---- the chain ---- */

/* An actor or kind is one non-empty line: the canonical form relies on it. */
static int check_line(rbk_pgstore *s, const char *what, const char *v, const char *op, rbk_err *err)
{
	if (!v || !*v)
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "empty %s", what);
	if (strchr(v, '\n'))
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "%s contains a newline", what);
	return 0;
}

static int check_json(rbk_pgstore *s, const char *what, const char *text, const char *op, rbk_val *keep,
		      rbk_err *err)
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

/* The append itself, inside the open writing transaction (ours or the
 * caller's), whose chain-head lock makes the read of the last event and the
 * insert of the next one atomic across every writer. */
static int append_tx(rbk_pgstore *s, int64_t run_id, const char *actor, const char *kind, const char *data,
		     int64_t *out_seq, rbk_err *err)
{
	const char *op = "append event";
	PGresult *r = run_stmt(s, ST_NEXT_EVENT, NULL, 0, op, err);
	if (!r)
		return -1;
	int64_t seq = 1;
	char prev[65], at[64], hash[65];
	memcpy(prev, zero_hash, sizeof prev);
	if (!PQgetisnull(r, 0, 0)) {
		seq = col_i64(r, 0, 0) + 1;
		snprintf(prev, sizeof prev, "%s", PQgetvalue(r, 0, 1));
	}
	snprintf(at, sizeof at, "%s", PQgetvalue(r, 0, 2));
	PQclear(r);
	rbk_store_chain_hash(prev, seq, run_id, at, actor, kind, data, hash);

	pgparams p = {0};
	p_i64(&p, seq);
	p_i64(&p, run_id);
	p_text(&p, at);
	p_text(&p, actor);
	p_text(&p, kind);
	p_text(&p, data);
	p_text(&p, prev);
	p_text(&p, hash);
	char what[64];
	snprintf(what, sizeof what, "run %" PRId64 " does not exist", run_id);
	if (!(r = run_stmt_fk(s, ST_INSERT_EVENT, &p, 0, op, what, err)))
		return -1;
	PQclear(r);
	if (out_seq)
		*out_seq = seq;
	return 0;
}

int rbk_pgstore_append(rbk_pgstore *s, int64_t run_id, const char *actor, const char *kind, const char *data_json,
		       bool is_json, int64_t *out_seq, rbk_err *err)
{
	const char *op = "append event";
	const char *data = data_json ? data_json : "{}";
	if (check_line(s, "actor", actor, op, err) < 0 || check_line(s, "kind", kind, op, err) < 0 ||
	    (!is_json && check_json(s, "event data", data, op, NULL, err) < 0))
		return -1;
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	int rc = append_tx(s, run_id, actor, kind, data, out_seq, err);
	return op_end(s, own, rc, op, err);
}

/* ---- runs ---- */

/* The run_created event, as sqlite.c writes it: everything the run was
 * created with, so the run row is derivable from the log alone. Takes
 * params and prov. */
static char *run_created_data(const rbk_store_run_spec *spec, const char *sha, rbk_val params, rbk_val prov)
{
	rbk_val m = rbk_val_map();
	rbk_val_map_set(&m, "runbook", rbk_val_str(spec->runbook));
	rbk_val_map_set(&m, "source_sha256", rbk_val_str(sha));
	rbk_val_map_set(&m, "dry_run", rbk_val_bool(spec->dry_run != 0));
	rbk_val_map_set(&m, "params", params);
	rbk_val_map_set(&m, "provenance", prov);
	rbk_val_map_set(&m, "parent_run", spec->parent_run ? rbk_val_int(spec->parent_run) : rbk_val_null());
	rbk_val_map_set(&m, "parent_state", spec->parent_state ? rbk_val_str(spec->parent_state) : rbk_val_null());
	rbk_val_map_set(&m, "lock_key", spec->lock_key ? rbk_val_str(spec->lock_key) : rbk_val_null());
	rbk_val_map_set(&m, "owner_pid", rbk_val_int((int64_t)getpid()));
	char *json = rbk_json_encode(&m);
	rbk_val_free(&m);
	return json;
}

static int insert_run(rbk_pgstore *s, const rbk_store_run_spec *spec, const char *sha, const char *params,
		      const char *prov, int64_t *out_id, const char *op, rbk_err *err)
{
	pgparams p = {0};
	p_text(&p, spec->runbook);
	p_text(&p, spec->actor);
	p_id(&p, spec->parent_run);
	p_text(&p, spec->parent_state);
	p_i64(&p, spec->dry_run != 0);
	p_text(&p, params);
	p_text(&p, sha);
	p_text(&p, prov);
	p_i64(&p, (int64_t)getpid());
	p_text(&p, spec->lock_key);
	char what[80];
	snprintf(what, sizeof what, "parent run %" PRId64 " does not exist", spec->parent_run);
	PGresult *r = run_stmt_fk(s, ST_INSERT_RUN, &p, 0, op, what, err);
	if (!r)
		return -1;
	*out_id = col_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

int rbk_pgstore_run_create(rbk_pgstore *s, const rbk_store_run_spec *spec, int64_t *out_id, rbk_err *err)
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
		pgparams p = {0};
		p_text(&p, sha);
		p_bytes(&p, spec->source, spec->source_len);
		PGresult *r = run_stmt(s, ST_INSERT_SOURCE, &p, 0, op, err);
		rc = r ? 0 : -1;
		PQclear(r);
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

int rbk_pgstore_run_set(rbk_pgstore *s, int64_t run_id, const char *status, const char *current_state, rbk_err *err)
{
	const char *op = "update run";
	if (status && !is_status(status))
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "unknown run status '%s'", status);
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	pgparams p = {0};
	p_i64(&p, run_id);
	p_text(&p, status);
	p_text(&p, current_state);
	PGresult *r = run_stmt(s, ST_SET_RUN, &p, 0, op, err);
	int rc = -1;
	if (r) {
		rc = strcmp(PQcmdTuples(r), "0") == 0
			     ? plain_fail(s, err, RBK_ERR_NONAME, op, "run %" PRId64 " does not exist", run_id)
			     : 0;
		PQclear(r);
	}
	return op_end(s, own, rc, op, err);
}

static void run_from_row(const PGresult *r, int i, rbk_store_run *out, int dup)
{
#define TEXT(c) (dup ? col_dup(r, i, c) : (char *)PQgetvalue(r, i, c))
#define OPT(c) (dup ? col_dup(r, i, c) : (char *)col_opt(r, i, c))
	out->id = col_i64(r, i, 0);
	out->runbook = TEXT(1);
	out->status = TEXT(2);
	out->actor = TEXT(3);
	out->created_at = TEXT(4);
	out->updated_at = TEXT(5);
	out->parent_run = col_i64(r, i, 6);
	out->parent_state = OPT(7);
	out->dry_run = (int)col_i64(r, i, 8);
	out->params_json = TEXT(9);
	out->source_sha256 = TEXT(10);
	out->provenance_json = TEXT(11);
	out->current_state = OPT(12);
	out->owner_pid = col_i64(r, i, 13);
	out->lock_key = OPT(14);
#undef TEXT
#undef OPT
}

int rbk_pgstore_run_get(rbk_pgstore *s, int64_t id, rbk_store_run *out, rbk_err *err)
{
	const char *op = "read run";
	memset(out, 0, sizeof *out);
	pgparams p = {0};
	p_i64(&p, id);
	PGresult *r = run_stmt(s, ST_GET_RUN, &p, 0, op, err);
	if (!r)
		return -1;
	int found = PQntuples(r) > 0;
	if (found)
		run_from_row(r, 0, out, 1);
	PQclear(r);
	if (!found)
		return plain_fail(s, err, RBK_ERR_NONAME, op, "run %" PRId64 " does not exist", id);
	return 0;
}


int rbk_pgstore_source(rbk_pgstore *s, const char *sha256, char **bytes, size_t *len, rbk_err *err)
{
	const char *op = "read source";
	*bytes = NULL;
	*len = 0;
	pgparams p = {0};
	p_text(&p, sha256);
	PGresult *r = run_stmt(s, ST_GET_SOURCE, &p, 1, op, err);
	if (!r)
		return -1;
	int found = PQntuples(r) > 0;
	if (found) {
		size_t n = (size_t)PQgetlength(r, 0, 0);
		*bytes = rbk_xmalloc(n + 1);
		if (n)
			memcpy(*bytes, PQgetvalue(r, 0, 0), n);
		(*bytes)[n] = '\0';
		*len = n;
	}
	PQclear(r);
	if (!found)
		return plain_fail(s, err, RBK_ERR_NONAME, op, "no source with sha256 %s", sha256);
	return 0;
}

/* ---- event walks ---- */

typedef struct {
	int (*fn)(void *ctx, const rbk_store_event *ev);
	void *ctx;
} event_walk;

static void event_from_row(const PGresult *r, int i, rbk_store_event *ev)
{
	ev->seq = col_i64(r, i, 0);
	ev->run_id = col_i64(r, i, 1);
	ev->at = PQgetvalue(r, i, 2);
	ev->actor = PQgetvalue(r, i, 3);
	ev->kind = PQgetvalue(r, i, 4);
	ev->data = PQgetvalue(r, i, 5);
	ev->prev_hash = PQgetvalue(r, i, 6);
	ev->hash = PQgetvalue(r, i, 7);
}

static int event_row(void *wctx, const PGresult *r, int i)
{
	event_walk *w = wctx;
	rbk_store_event ev = {0};
	event_from_row(r, i, &ev);
	return w->fn(w->ctx, &ev);
}

static int events_walk(rbk_pgstore *s, int64_t run_id, int64_t after, int (*fn)(void *ctx, const rbk_store_event *ev),
		       void *ctx, rbk_err *err)
{
	if (!run_id)
		after = 0; /* every run's events: all of them */
	pgparams p = {0};
	if (run_id)
		p_i64(&p, run_id);
	if (after)
		p_i64(&p, after);
	event_walk w = {fn, ctx};
	int stopped;
	if (walk(s, after ? sql_events_run_after : run_id ? sql_events_run : sql_events_all, &p, "read events",
		 event_row, &w, &stopped, err) < 0)
		return -1;
	return stopped;
}

int rbk_pgstore_events(rbk_pgstore *s, int64_t run_id, int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx,
		       rbk_err *err)
{
	return events_walk(s, run_id, 0, fn, ctx, err);
}

int rbk_pgstore_events_after(rbk_pgstore *s, int64_t run_id, int64_t after_seq,
			     int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx, rbk_err *err)
{
	return events_walk(s, run_id, after_seq > 0 ? after_seq : 0, fn, ctx, err);
}

int rbk_pgstore_links(rbk_pgstore *s, int64_t from_seq, int64_t to_seq,
		      int (*fn)(void *ctx, const rbk_store_event *ev), void *ctx, rbk_err *err)
{
	pgparams p = {0};
	p_i64(&p, from_seq);
	p_i64(&p, to_seq);
	event_walk w = {fn, ctx};
	int stopped;
	return walk(s, sql_links, &p, "read chain", event_row, &w, &stopped, err) < 0 ? -1 : 0;
}

/* ---- verify: sqlite.c's check_chain, row by row ---- */

typedef struct {
	char head[65];
	int64_t expect, count, bad;
	char *why;
} chain_check;

static int chain_row(void *wctx, const PGresult *r, int i)
{
	chain_check *c = wctx;
	rbk_store_event ev = {0};
	event_from_row(r, i, &ev);
	int64_t seq = ev.seq;
	if (seq != c->expect) {
		c->bad = c->expect;
		if (seq == c->expect + 1)
			c->why = rbk_xasprintf("event %" PRId64 " was removed (seq goes from %" PRId64 " to %" PRId64 ")",
					       c->expect, c->expect - 1, seq);
		else
			c->why = rbk_xasprintf("events %" PRId64 " to %" PRId64 " were removed (seq goes from %" PRId64
					       " to %" PRId64 ")",
					       c->expect, seq - 1, c->expect - 1, seq);
		return 1;
	}
	if (PQgetlength(r, i, 6) != 64 || memcmp(ev.prev_hash, c->head, 64) != 0) {
		c->bad = seq;
		if (seq == 1)
			c->why = rbk_xstrdup("event 1: its prev_hash is not the start of a chain: "
					     "events were removed or inserted before it");
		else
			c->why = rbk_xasprintf("event %" PRId64 ": its prev_hash is not the hash of event %" PRId64
					       ": an event was inserted or reordered, or event %" PRId64
					       " was modified and re-hashed",
					       seq, seq - 1, seq - 1);
		return 1;
	}
	char hash[65];
	rbk_store_chain_hash(ev.prev_hash, seq, ev.run_id, ev.at, ev.actor, ev.kind, ev.data, hash);
	if (PQgetlength(r, i, 7) != 64 || memcmp(ev.hash, hash, 64) != 0) {
		c->bad = seq;
		c->why = rbk_xasprintf("event %" PRId64 " was modified: its hash does not match its content", seq);
		return 1;
	}
	memcpy(c->head, hash, 64);
	c->expect++;
	c->count++;
	return 0;
}

/* The chain from event from on (1: all of it), in constant memory: the
 * first event's link to the one before it is checked too. */
static int check_chain(rbk_pgstore *s, int64_t from, const char *op, int64_t *out_count, int64_t *out_bad_seq,
		       char **out_why, rbk_err *err)
{
	*out_count = 0;
	*out_bad_seq = 0;
	if (out_why)
		*out_why = NULL;
	chain_check c = {.expect = from};
	memcpy(c.head, zero_hash, sizeof c.head);
	if (from > 1) {
		int r = rbk_pgstore_event_hash(s, from - 1, c.head, err);
		if (r < 0)
			return -1;
		if (r == 1 || strlen(c.head) != 64) {
			*out_bad_seq = from - 1;
			if (out_why)
				*out_why = rbk_xasprintf("event %" PRId64 " was removed or damaged", from - 1);
			return 0;
		}
	}
	pgparams p = {0};
	p_i64(&p, from);
	int stopped;
	if (walk(s, sql_events_from, &p, op, chain_row, &c, &stopped, err) < 0) {
		rbk_free(c.why);
		return -1;
	}
	*out_count = c.count;
	*out_bad_seq = c.bad;
	if (out_why)
		*out_why = c.why;
	else
		rbk_free(c.why);
	return 0;
}

int rbk_pgstore_verify(rbk_pgstore *s, int64_t *out_count, int64_t *out_bad_seq, char **out_why, rbk_err *err)
{
	return check_chain(s, 1, "verify", out_count, out_bad_seq, out_why, err);
}

/* The meta key that remembers what rbk verify found wrong (as in sqlite.c). */
static const char broken_key[] = "chain.broken";

void rbk_pgstore_note_broken(rbk_pgstore *s, const char *why)
{
	char *was = NULL;
	if (rbk_pgstore_meta_get(s, broken_key, &was, NULL) == 0 && strcmp(was ? was : "", why ? why : "") != 0)
		rbk_pgstore_meta_set(s, broken_key, why ? why : "", NULL); /* a read-only store stays as it is */
	rbk_free(was);
}

/* What the writing calls need; has_table_privilege is true when ANY listed
 * privilege is held, hence one row per privilege. */
static const char sql_writable[] =
	"SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only') = 'on', current_user,"
	" (SELECT string_agg(t || ' (' || p || ')', ', ') FROM (VALUES ('chain_head', 'UPDATE'),"
	" ('events', 'INSERT'), ('runs', 'INSERT'), ('runs', 'UPDATE'), ('steps', 'INSERT'), ('steps', 'UPDATE'),"
	" ('sources', 'INSERT'), ('fires', 'INSERT'), ('fires', 'UPDATE'), ('meta', 'INSERT'), ('meta', 'UPDATE'))"
	" AS v(t, p) WHERE NOT has_table_privilege(t, p))";

int rbk_pgstore_writable(rbk_pgstore *s, rbk_err *err)
{
	const char *op = "open for writing";
	PGresult *r = exec_sql(s, sql_writable, op, err);
	if (!r)
		return -1;
	int rc = 0;
	if (strcmp(PQgetvalue(r, 0, 0), "t") == 0)
		rc = plain_fail(s, err, RBK_ERR_STORE, op,
				"cannot write: the database is read-only (a standby in recovery)");
	else if (strcmp(PQgetvalue(r, 0, 1), "t") == 0)
		rc = plain_fail(s, err, RBK_ERR_STORE, op,
				"cannot write: the database is read-only (default_transaction_read_only is on)");
	else if (!PQgetisnull(r, 0, 3))
		rc = plain_fail(s, err, RBK_ERR_STORE, op, "cannot write: user %s lacks privileges on %s",
				PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3));
	PQclear(r);
	if (rc < 0)
		return -1;
	char *mark = NULL;
	if (rbk_pgstore_meta_get(s, broken_key, &mark, err) < 0)
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
	if (rbk_pgstore_head(s, &head, hash, err) < 0 ||
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

/* ---- steps and locks ---- */

int rbk_pgstore_step_record(rbk_pgstore *s, int64_t run_id, const char *state, int attempt, const char *status,
			    int64_t started_seq, int64_t ended_seq, rbk_err *err)
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
		pgparams p = {0};
		p_i64(&p, run_id);
		p_text(&p, state);
		p_i64(&p, attempt);
		p_text(&p, status);
		p_id(&p, started_seq);
		p_id(&p, ended_seq);
		p_text(&p, key);
		char what[64];
		snprintf(what, sizeof what, "run %" PRId64 " does not exist", run_id);
		PGresult *r = run_stmt_fk(s, ST_UPSERT_STEP, &p, 0, op, what, err);
		rc = r ? 0 : -1;
		PQclear(r);
		rc = op_end(s, own, rc, op, err);
	}
	rbk_free(key);
	return rc;
}

typedef struct {
	int (*fn)(void *ctx, const rbk_store_step *st);
	void *ctx;
} step_walk;

static int step_row(void *wctx, const PGresult *r, int i)
{
	step_walk *w = wctx;
	rbk_store_step st = {
		.run_id = col_i64(r, i, 0),
		.state = PQgetvalue(r, i, 1),
		.attempt = (int)col_i64(r, i, 2),
		.status = PQgetvalue(r, i, 3),
		.started_seq = col_i64(r, i, 4),
		.ended_seq = col_i64(r, i, 5),
		.idempotency_key = PQgetvalue(r, i, 6),
	};
	return w->fn(w->ctx, &st);
}

int rbk_pgstore_steps(rbk_pgstore *s, int64_t run_id, int (*fn)(void *ctx, const rbk_store_step *st), void *ctx,
		      rbk_err *err)
{
	pgparams p = {0};
	p_i64(&p, run_id);
	step_walk w = {fn, ctx};
	int stopped;
	if (walk(s, sql_steps_run, &p, "read steps", step_row, &w, &stopped, err) < 0)
		return -1;
	return stopped;
}

int rbk_pgstore_lock_holder(rbk_pgstore *s, const char *key, int64_t except_run, int64_t *out_run, rbk_err *err)
{
	*out_run = 0;
	pgparams p = {0};
	p_text(&p, key);
	p_i64(&p, except_run);
	PGresult *r = run_stmt(s, ST_LOCK_HOLDER, &p, 0, "read lock", err);
	if (!r)
		return -1;
	if (PQntuples(r) > 0)
		*out_run = col_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

int rbk_pgstore_run_owner(rbk_pgstore *s, int64_t run_id, int64_t pid, rbk_err *err)
{
	const char *op = "set run owner";
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	pgparams p = {0};
	p_i64(&p, run_id);
	p_i64(&p, pid);
	PGresult *r = run_stmt(s, ST_SET_OWNER, &p, 0, op, err);
	int rc = r ? 0 : -1;
	PQclear(r);
	return op_end(s, own, rc, op, err);
}

/* ---- history reads ---- */

typedef struct {
	int (*fn)(void *ctx, const rbk_store_run *run);
	void *ctx;
} run_walk;

static int run_row(void *wctx, const PGresult *r, int i)
{
	run_walk *w = wctx;
	rbk_store_run run;
	run_from_row(r, i, &run, 0);
	return w->fn(w->ctx, &run);
}

/* One statement per call, built from the filter (values are bound, never
 * spliced into the SQL), numbering only the parameters it uses. Newest
 * first. */
int rbk_pgstore_runs(rbk_pgstore *s, const rbk_store_run_filter *f, int (*fn)(void *ctx, const rbk_store_run *run),
		     void *ctx, rbk_err *err)
{
	rbk_buf q = {0};
	pgparams p = {0};
	rbk_buf_puts(&q, "SELECT " RUN_COLUMNS " FROM runs WHERE true");
	if (f && f->runbook) {
		p_text(&p, f->runbook);
		rbk_buf_printf(&q, " AND runbook = $%d::text", p.n);
	}
	if (f && f->status) {
		p_text(&p, f->status);
		rbk_buf_printf(&q, " AND status = $%d::text", p.n);
	}
	if (f && f->actor) { /* principal.h's rule: "alice" is alice on any host */
		p_text(&p, f->actor);
		rbk_buf_printf(&q,
			       " AND (actor = $%d::text OR (strpos($%d::text, '@') = 0"
			       " AND substr(actor, 1, length($%d::text) + 1) = $%d::text || '@'))",
			       p.n, p.n, p.n, p.n);
	}
	if (f && f->since) {
		p_text(&p, f->since);
		rbk_buf_printf(&q, " AND created_at >= $%d::text", p.n);
	}
	if (f && f->until) {
		p_text(&p, f->until);
		rbk_buf_printf(&q, " AND created_at < $%d::text", p.n);
	}
	if (f && f->active_only)
		rbk_buf_puts(&q, " AND status IN " ACTIVE_STATUSES);
	if (f && f->top_level_only)
		rbk_buf_puts(&q, " AND parent_run IS NULL");
	if (f && f->scheduled_only)
		rbk_buf_puts(&q, " AND id IN (SELECT run_id FROM fires WHERE run_id IS NOT NULL)");
	rbk_buf_puts(&q, " ORDER BY id DESC");
	if (f && f->limit > 0) {
		p_i64(&p, f->limit);
		rbk_buf_printf(&q, " LIMIT $%d::bigint", p.n);
	}
	run_walk w = {fn, ctx};
	int stopped;
	int rc = walk(s, q.s, &p, "list runs", run_row, &w, &stopped, err);
	rbk_buf_free(&q);
	return rc < 0 ? -1 : 0;
}

/* ---- the scheduler's fires ---- */

int rbk_pgstore_fire_claim(rbk_pgstore *s, const char *runbook, int entry, const char *nominal, const char *outcome,
			   const char *note, int64_t *out_id, rbk_err *err)
{
	const char *op = "record fire";
	*out_id = 0;
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	pgparams p = {0};
	p_text(&p, runbook);
	p_i64(&p, entry);
	p_text(&p, nominal);
	p_text(&p, outcome);
	p_text(&p, note);
	PGresult *r = run_stmt(s, ST_CLAIM_FIRE, &p, 0, op, err);
	int ret = -1;
	if (r) {
		ret = PQntuples(r) > 0 ? 0 : 1;
		if (ret == 0)
			*out_id = col_i64(r, 0, 0);
		PQclear(r);
	}
	return op_end(s, own, ret < 0 ? -1 : 0, op, err) < 0 ? -1 : ret;
}

int rbk_pgstore_fire_set(rbk_pgstore *s, int64_t fire, const char *outcome, int64_t run_id, const char *note,
			 rbk_err *err)
{
	const char *op = "update fire";
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	pgparams p = {0};
	p_i64(&p, fire);
	p_text(&p, outcome);
	p_id(&p, run_id);
	p_text(&p, note);
	PGresult *r = run_stmt(s, ST_SET_FIRE, &p, 0, op, err);
	int rc = r ? 0 : -1;
	PQclear(r);
	return op_end(s, own, rc, op, err);
}

typedef struct {
	int (*fn)(void *ctx, const rbk_store_fire *f);
	void *ctx;
} fire_walk;

static int fire_row(void *wctx, const PGresult *r, int i)
{
	fire_walk *w = wctx;
	rbk_store_fire f = {col_i64(r, i, 0),	  PQgetvalue(r, i, 1), (int)col_i64(r, i, 2),
			    PQgetvalue(r, i, 3),  PQgetvalue(r, i, 4), PQgetvalue(r, i, 5),
			    col_i64(r, i, 6),	  col_opt(r, i, 7),    col_opt(r, i, 8)};
	return w->fn(w->ctx, &f);
}

int rbk_pgstore_fires(rbk_pgstore *s, const char *runbook, int entry, const char *outcome, int64_t limit,
		      int (*fn)(void *ctx, const rbk_store_fire *f), void *ctx, rbk_err *err)
{
	pgparams p = {0};
	p_text(&p, runbook);
	p_i64(&p, entry);
	p_text(&p, outcome);
	if (limit > 0)
		p_i64(&p, limit);
	else
		p_text(&p, NULL); /* LIMIT NULL: all */
	fire_walk w = {fn, ctx};
	int stopped;
	return walk(s, sql_fires, &p, "read fires", fire_row, &w, &stopped, err) < 0 ? -1 : 0;
}

/* ---- meta and the chain head ---- */

int rbk_pgstore_meta_get(rbk_pgstore *s, const char *key, char **out, rbk_err *err)
{
	*out = NULL;
	pgparams p = {0};
	p_text(&p, key);
	PGresult *r = run_stmt(s, ST_GET_META, &p, 0, "read meta", err);
	if (!r)
		return -1;
	if (PQntuples(r) > 0)
		*out = col_dup(r, 0, 0);
	PQclear(r);
	return 0;
}

int rbk_pgstore_meta_set(rbk_pgstore *s, const char *key, const char *value, rbk_err *err)
{
	const char *op = "write meta";
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	pgparams p = {0};
	p_text(&p, key);
	p_text(&p, value);
	PGresult *r = run_stmt(s, ST_SET_META, &p, 0, op, err);
	int rc = r ? 0 : -1;
	PQclear(r);
	return op_end(s, own, rc, op, err);
}

int rbk_pgstore_head(rbk_pgstore *s, int64_t *seq, char hash[65], rbk_err *err)
{
	*seq = 0;
	memcpy(hash, zero_hash, 65);
	PGresult *r = run_stmt(s, ST_LAST_EVENT, NULL, 0, "read chain head", err);
	if (!r)
		return -1;
	if (PQntuples(r) > 0) {
		*seq = col_i64(r, 0, 0);
		snprintf(hash, 65, "%s", PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	return 0;
}

int rbk_pgstore_event_hash(rbk_pgstore *s, int64_t seq, char hash[65], rbk_err *err)
{
	hash[0] = '\0';
	pgparams p = {0};
	p_i64(&p, seq);
	PGresult *r = run_stmt(s, ST_EVENT_HASH, &p, 0, "read event", err);
	if (!r)
		return -1;
	int found = PQntuples(r) > 0;
	if (found)
		snprintf(hash, 65, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return found ? 0 : 1;
}

/* ---- executors: queues, leases, fencing ---- */

/* One statement with text parameters outside the prepared set; NULL with
 * err (the transaction rolled back). */
static PGresult *exec_params(rbk_pgstore *s, const char *sql, const pgparams *p, const char *op, rbk_err *err)
{
	PGresult *r = PQexecParams(s->conn, sql, p->n, NULL, p->val, p->len, p->fmt, 0);
	if (!result_ok(r)) {
		db_fail(s, r, op, NULL, err);
		PQclear(r);
		return NULL;
	}
	return r;
}

static int check_fence(rbk_pgstore *s, const char *op, rbk_err *err)
{
	pgparams p = {0};
	p_i64(&p, s->fence_run);
	PGresult *r = exec_params(s, "SELECT epoch FROM runs WHERE id = $1", &p, op, err);
	if (!r)
		return -1;
	int64_t now = PQntuples(r) == 1 ? col_i64(r, 0, 0) : -1;
	PQclear(r);
	if (now != s->fence_epoch)
		return plain_fail(s, err, RBK_ERR_FENCED, op,
				  "run %" PRId64 " was taken over (epoch %" PRId64 ", this executor's %" PRId64
				  "): this executor writes nothing more for it",
				  s->fence_run, now, s->fence_epoch);
	return 0;
}

void rbk_pgstore_fence(rbk_pgstore *s, int64_t run_id, int64_t epoch)
{
	s->fence_run = run_id;
	s->fence_epoch = epoch;
}

int rbk_pgstore_run_queue(rbk_pgstore *s, int64_t run_id, const char *queue, int queued, rbk_err *err)
{
	const char *op = "set run queue";
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	pgparams p = {0};
	p_i64(&p, run_id);
	p_text(&p, queue);
	p_text(&p, queued ? "t" : "f");
	PGresult *r = exec_params(s,
				  "UPDATE runs SET queue = $2, status = CASE WHEN $3::boolean THEN 'queued' ELSE status END"
				  " WHERE id = $1",
				  &p, op, err);
	int rc = r ? 0 : -1;
	PQclear(r);
	if (rc == 0 && queued)
		PQclear(PQexec(s->conn, "NOTIFY rbk_work")); /* delivered at commit */
	return op_end(s, own, rc, op, err);
}

#define LEASE_LEFT_MS "(EXTRACT(EPOCH FROM (lease_until - clock_timestamp())) * 1000)::bigint"

int rbk_pgstore_lease_get(rbk_pgstore *s, int64_t run_id, rbk_store_lease *out, rbk_err *err)
{
	const char *op = "read lease";
	memset(out, 0, sizeof *out);
	pgparams p = {0};
	p_i64(&p, run_id);
	PGresult *r = exec_params(s, "SELECT queue, lease_owner, epoch, COALESCE(" LEASE_LEFT_MS ", 0) FROM runs WHERE id = $1",
				  &p, op, err);
	if (!r)
		return -1;
	int rc = 0;
	if (PQntuples(r) != 1) {
		rc = plain_fail(s, err, RBK_ERR_NONAME, op, "run %" PRId64 " does not exist", run_id);
	} else {
		out->queue = col_dup(r, 0, 0);
		out->owner = col_dup(r, 0, 1);
		out->epoch = col_i64(r, 0, 2);
		out->left_ms = col_i64(r, 0, 3);
	}
	PQclear(r);
	return rc;
}

int rbk_pgstore_claim(rbk_pgstore *s, int64_t run_id, const char *owner, int64_t lease_ms, int force, int64_t *epoch,
		      rbk_err *err)
{
	const char *op = "claim run";
	int own;
	if (op_begin(s, &own, op, err) < 0)
		return -1;
	pgparams p = {0};
	p_i64(&p, run_id);
	p_text(&p, owner);
	p_i64(&p, lease_ms);
	p_text(&p, force ? "t" : "f");
	/* The database's clock decides: an executor whose clock is wrong never
	 * sees a live lease as ended. */
	PGresult *r = exec_params(s,
				  "UPDATE runs SET lease_owner = $2, epoch = epoch + 1,"
				  " lease_until = clock_timestamp() + $3::bigint * interval '1 millisecond'"
				  " WHERE id = $1 AND ($4::boolean OR lease_owner IS NULL OR lease_until IS NULL"
				  " OR lease_until <= clock_timestamp() OR lease_owner = $2) RETURNING epoch",
				  &p, op, err);
	int rc = -1;
	if (r) {
		if (PQntuples(r) == 1) {
			*epoch = col_i64(r, 0, 0);
			rc = 0;
		} else {
			rc = 1;
		}
		PQclear(r);
	}
	if (rc == 1) {
		rbk_store_lease l;
		if (rbk_pgstore_lease_get(s, run_id, &l, err) < 0) {
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

int rbk_pgstore_renew(rbk_pgstore *s, int64_t run_id, const char *owner, int64_t epoch, int64_t lease_ms, rbk_err *err)
{
	const char *op = "renew lease";
	pgparams p = {0};
	p_i64(&p, run_id);
	p_i64(&p, epoch);
	p_text(&p, owner);
	p_i64(&p, lease_ms);
	PGresult *r = exec_params(s,
				  "UPDATE runs SET lease_until = clock_timestamp() + $4::bigint * interval '1 millisecond'"
				  " WHERE id = $1 AND epoch = $2 AND lease_owner = $3",
				  &p, op, err);
	if (!r)
		return -1;
	int rc = atoi(PQcmdTuples(r)) == 1 ? 0 : 1;
	PQclear(r);
	return rc;
}

int rbk_pgstore_release(rbk_pgstore *s, int64_t run_id, int64_t epoch, rbk_err *err)
{
	const char *op = "release lease";
	int own;
	int64_t fr = s->fence_run;
	s->fence_run = 0; /* releasing a lost lease is a no-op, not an error */
	int rc = op_begin(s, &own, op, err);
	s->fence_run = fr;
	if (rc < 0)
		return -1;
	pgparams p = {0};
	p_i64(&p, run_id);
	p_i64(&p, epoch);
	PGresult *r = exec_params(s, "UPDATE runs SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND epoch = $2",
				  &p, op, err);
	rc = r ? 0 : -1;
	PQclear(r);
	if (rc == 0)
		PQclear(PQexec(s->conn, "NOTIFY rbk_work"));
	return op_end(s, own, rc, op, err);
}

typedef struct {
	int (*fn)(void *ctx, int64_t run_id, const char *status);
	void *ctx;
} claimable_walk;

static int claimable_row(void *wctx, const PGresult *r, int i)
{
	claimable_walk *w = wctx;
	return w->fn(w->ctx, col_i64(r, i, 0), PQgetvalue(r, i, 1));
}

int rbk_pgstore_claimable(rbk_pgstore *s, const char *const *queues, size_t nqueues, int64_t limit,
			  int (*fn)(void *ctx, int64_t run_id, const char *status), void *ctx, rbk_err *err)
{
	int stop = 0;
	claimable_walk w = {fn, ctx};
	for (size_t q = 0; q < nqueues && !stop; q++) {
		pgparams p = {0};
		p_text(&p, queues[q]);
		p_i64(&p, limit > 0 ? limit : INT64_MAX);
		if (walk(s,
			 "SELECT id, status FROM runs WHERE parent_run IS NULL AND queue = $1 AND status IN"
			 " ('queued', 'running', 'waiting')"
			 " AND (lease_until IS NULL OR lease_until <= clock_timestamp()) ORDER BY status = 'waiting', id LIMIT $2",
			 &p, "list runs to execute", claimable_row, &w, &stop, err) < 0)
			return -1;
	}
	return stop;
}

typedef struct {
	int (*counts)(void *ctx, const char *runbook, const char *status, int64_t n);
	int (*times)(void *ctx, const char *runbook, const char *state, const char *status, const char *started_at,
		     const char *ended_at);
	void *ctx;
} figures_walk;

static int counts_row(void *wctx, const PGresult *r, int i)
{
	figures_walk *w = wctx;
	return w->counts(w->ctx, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), col_i64(r, i, 2));
}

static int times_row(void *wctx, const PGresult *r, int i)
{
	figures_walk *w = wctx;
	return w->times(w->ctx, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
			PQgetvalue(r, i, 4));
}

int rbk_pgstore_run_counts(rbk_pgstore *s, int (*fn)(void *ctx, const char *runbook, const char *status, int64_t n),
			   void *ctx, rbk_err *err)
{
	figures_walk w = {.counts = fn, .ctx = ctx};
	pgparams p = {0};
	int stop = 0;
	if (walk(s, "SELECT runbook, status, count(*) FROM runs GROUP BY runbook, status ORDER BY runbook, status", &p, "count runs", counts_row, &w, &stop, err) < 0)
		return -1;
	return stop;
}

int rbk_pgstore_step_times(rbk_pgstore *s,
			   int (*fn)(void *ctx, const char *runbook, const char *state, const char *status,
				     const char *started_at, const char *ended_at),
			   void *ctx, rbk_err *err)
{
	figures_walk w = {.times = fn, .ctx = ctx};
	pgparams p = {0};
	int stop = 0;
	if (walk(s, "SELECT r.runbook, s.state, s.status, a.at, b.at FROM steps s JOIN runs r ON r.id = s.run_id JOIN events a ON a.seq = s.started_seq JOIN events b ON b.seq = s.ended_seq", &p, "read step times", times_row, &w, &stop, err) < 0)
		return -1;
	return stop;
}

int rbk_pgstore_notify(rbk_pgstore *s, rbk_err *err)
{
	PGresult *r = exec_sql(s, "NOTIFY rbk_work", "notify", err);
	if (!r)
		return -1;
	PQclear(r);
	return 0;
}

int rbk_pgstore_wait_work(rbk_pgstore *s, int timeout_ms, rbk_err *err)
{
	const char *op = "wait for work";
	if (!s->listening) {
		PGresult *r = exec_sql(s, "LISTEN rbk_work", op, err);
		if (!r)
			return -1;
		PQclear(r);
		s->listening = 1;
	}
	int woken = 0;
	for (PGnotify *n; (n = PQnotifies(s->conn)) != NULL; PQfreemem(n))
		woken = 1;
	if (woken)
		return 1;
	int fd = PQsocket(s->conn);
	if (fd < 0)
		return plain_fail(s, err, RBK_ERR_STORE, op, "the connection is closed");
	struct pollfd pfd = {fd, POLLIN, 0};
	int pr = poll(&pfd, 1, timeout_ms);
	if (pr < 0 && errno != EINTR)
		return plain_fail(s, err, RBK_ERR_STORE, op, "poll: %s", strerror(errno));
	if (pr > 0 && !PQconsumeInput(s->conn)) {
		char msg[300];
		one_line(PQerrorMessage(s->conn), msg, sizeof msg);
		return plain_fail(s, err, RBK_ERR_STORE, op, "%s", msg);
	}
	for (PGnotify *n; (n = PQnotifies(s->conn)) != NULL; PQfreemem(n))
		woken = 1;
	return woken;
}

int rbk_pgstore_lead(rbk_pgstore *s, const char *name, rbk_err *err)
{
	pgparams p = {0};
	p_text(&p, name);
	/* A session lock: held until released or the connection ends, so a
	 * leader that dies (or is cut off) leaves the place to another. */
	PGresult *r = exec_params(s, "SELECT pg_try_advisory_lock(hashtextextended('rbk:' || $1, 0))", &p,
				  "elect leader", err);
	if (!r)
		return -1;
	int lead = !strcmp(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	return lead;
}

int rbk_pgstore_ping(rbk_pgstore *s, rbk_err *err)
{
	PGresult *r = exec_sql(s, "SELECT 1", "ping", err);
	if (!r)
		return -1;
	PQclear(r);
	return 0;
}

/* ---- copying a store: counts and imports (rbk store copy) ---- */

int rbk_pgstore_counts(rbk_pgstore *s, rbk_store_counts *out, rbk_err *err)
{
	memset(out, 0, sizeof *out);
	PGresult *r = exec_sql(s,
			       "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM events),"
			       " (SELECT count(*) FROM steps), (SELECT count(*) FROM fires),"
			       " (SELECT count(*) FROM sources), (SELECT count(*) FROM meta)",
			       "count rows", err);
	if (!r)
		return -1;
	out->runs = col_i64(r, 0, 0);
	out->events = col_i64(r, 0, 1);
	out->steps = col_i64(r, 0, 2);
	out->fires = col_i64(r, 0, 3);
	out->sources = col_i64(r, 0, 4);
	out->meta = col_i64(r, 0, 5);
	PQclear(r);
	return 0;
}

/* pgparams holds MAX_PARAMS; a run row has more columns. */
enum { IMPORT_PARAMS = 16 };

typedef struct {
	int n;
	const char *val[IMPORT_PARAMS];
	int len[IMPORT_PARAMS];
	int fmt[IMPORT_PARAMS];
	char num[IMPORT_PARAMS][24];
} import_params;

static void ip_text(import_params *p, const char *v)
{
	p->val[p->n] = v; /* NULL is SQL NULL */
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

static void ip_i64(import_params *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof p->num[p->n], "%" PRId64, v);
	ip_text(p, p->num[p->n]);
}

/* 0 means none in the store's structs: NULL, as p_id. */
static void ip_id(import_params *p, int64_t v)
{
	if (v)
		ip_i64(p, v);
	else
		ip_text(p, NULL);
}

/* One imported row. Only inside the caller's transaction: a copy is all or
 * nothing, never committed row by row. dup and missing (may be NULL)
 * replace the database's words for a key already there and for a
 * reference to a row that is not. */
static int import_exec(rbk_pgstore *s, const char *op, const char *sql, const import_params *p, const char *dup,
		       const char *missing, rbk_err *err)
{
	if (s->tx == TX_FAILED)
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "the transaction was rolled back after an earlier error (%s)",
				  s->tx_why);
	if (s->tx != TX_CALLER)
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "an import runs only inside the caller's transaction");
	PGresult *r = PQexecParams(s->conn, sql, p->n, NULL, p->val, p->len, p->fmt, 0);
	if (!result_ok(r)) {
		const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		const char *what = is_sqlstate(state, "23505") ? dup : is_sqlstate(state, "23503") ? missing : NULL;
		db_fail(s, r, op, what, err);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

int rbk_pgstore_import_source(rbk_pgstore *s, const char *sha256, const char *bytes, size_t len, rbk_err *err)
{
	const char *op = "import source";
	/* The key is the content's hash: bytes that do not hash to it would
	 * pin runs to a definition they never ran. */
	char sha[65];
	rbk_hash_sha256_hex(len ? bytes : "", len, sha);
	if (!sha256 || strcmp(sha, sha256) != 0)
		return plain_fail(s, err, RBK_ERR_GENERIC, op, "the bytes of source %.64s hash to %s, not to their key",
				  sha256 ? sha256 : "(none)", sha);
	import_params p = {0};
	ip_text(&p, sha256);
	p.val[p.n] = len ? bytes : ""; /* binary: the exact bytes, whatever they hold */
	p.len[p.n] = (int)len;
	p.fmt[p.n] = 1;
	p.n++;
	char dup[128];
	snprintf(dup, sizeof dup, "source %s is already in the store", sha256);
	return import_exec(s, op, "INSERT INTO sources (sha256, bytes) VALUES ($1, $2)", &p, dup, NULL, err);
}

int rbk_pgstore_import_run(rbk_pgstore *s, const rbk_store_run *run, rbk_err *err)
{
	import_params p = {0};
	ip_i64(&p, run->id);
	ip_text(&p, run->runbook);
	ip_text(&p, run->status);
	ip_text(&p, run->actor);
	ip_text(&p, run->created_at);
	ip_text(&p, run->updated_at);
	ip_id(&p, run->parent_run);
	ip_text(&p, run->parent_state);
	ip_i64(&p, run->dry_run);
	ip_text(&p, run->params_json);
	ip_text(&p, run->source_sha256);
	ip_text(&p, run->provenance_json);
	ip_text(&p, run->current_state);
	ip_id(&p, run->owner_pid);
	ip_text(&p, run->lock_key);
	char dup[64], missing[160];
	snprintf(dup, sizeof dup, "run %" PRId64 " is already in the store", run->id);
	snprintf(missing, sizeof missing,
		 "run %" PRId64 ": its parent run %" PRId64 " or its source %.64s is not in the store", run->id,
		 run->parent_run, run->source_sha256 ? run->source_sha256 : "");
	return import_exec(s, "import run",
			   "INSERT INTO runs (" RUN_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
			   " $13, $14, $15)",
			   &p, dup, missing, err);
}

int rbk_pgstore_import_event(rbk_pgstore *s, const rbk_store_event *ev, rbk_err *err)
{
	import_params p = {0};
	ip_i64(&p, ev->seq);
	ip_i64(&p, ev->run_id);
	ip_text(&p, ev->at);
	ip_text(&p, ev->actor);
	ip_text(&p, ev->kind);
	ip_text(&p, ev->data);
	ip_text(&p, ev->prev_hash);
	ip_text(&p, ev->hash);
	char dup[64], missing[80];
	snprintf(dup, sizeof dup, "event %" PRId64 " is already in the store", ev->seq);
	snprintf(missing, sizeof missing, "event %" PRId64 ": its run %" PRId64 " is not in the store", ev->seq,
		 ev->run_id);
	return import_exec(s, "import event",
			   "INSERT INTO events (" EVENT_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", &p, dup,
			   missing, err);
}

int rbk_pgstore_import_step(rbk_pgstore *s, const rbk_store_step *st, rbk_err *err)
{
	import_params p = {0};
	ip_i64(&p, st->run_id);
	ip_text(&p, st->state);
	ip_i64(&p, st->attempt);
	ip_text(&p, st->status);
	ip_id(&p, st->started_seq);
	ip_id(&p, st->ended_seq);
	ip_text(&p, st->idempotency_key);
	char dup[160], missing[80];
	snprintf(dup, sizeof dup, "step %.120s is already in the store", st->idempotency_key ? st->idempotency_key : "");
	snprintf(missing, sizeof missing, "a step of run %" PRId64 ": the run is not in the store", st->run_id);
	return import_exec(s, "import step",
			   "INSERT INTO steps (run_id, state, attempt, status, started_seq, ended_seq, idempotency_key)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7)",
			   &p, dup, missing, err);
}

int rbk_pgstore_import_fire(rbk_pgstore *s, const rbk_store_fire *f, rbk_err *err)
{
	import_params p = {0};
	ip_i64(&p, f->id);
	ip_text(&p, f->runbook);
	ip_i64(&p, f->entry);
	ip_text(&p, f->nominal);
	ip_text(&p, f->decided_at);
	ip_text(&p, f->outcome);
	ip_id(&p, f->run_id);
	ip_text(&p, f->note);
	char dup[64], missing[80];
	snprintf(dup, sizeof dup, "fire %" PRId64 " is already in the store", f->id);
	snprintf(missing, sizeof missing, "fire %" PRId64 ": its run %" PRId64 " is not in the store", f->id, f->run_id);
	return import_exec(s, "import fire",
			   "INSERT INTO fires (id, runbook, entry, nominal, decided_at, outcome, run_id, note)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
			   &p, dup, missing, err);
}

int rbk_pgstore_import_meta(rbk_pgstore *s, const char *key, const char *value, rbk_err *err)
{
	import_params p = {0};
	ip_text(&p, key);
	ip_text(&p, value);
	/* The source's fact wins over one the empty target already had (a
	 * scheduler tick, say). */
	return import_exec(s, "import meta",
			   "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
			   &p, NULL, NULL, err);
}

/* A run's queue and epoch (schema version 3), after its row. Its lease is
 * not imported: it was held by an executor of the source, on that host's
 * clock, and a copied store starts with none. */
int rbk_pgstore_import_queue(rbk_pgstore *s, int64_t run_id, const char *queue, int64_t epoch, rbk_err *err)
{
	import_params p = {0};
	ip_i64(&p, run_id);
	ip_text(&p, queue);
	ip_i64(&p, epoch);
	return import_exec(s, "import run queue", "UPDATE runs SET queue = $2, epoch = $3 WHERE id = $1", &p, NULL, NULL,
			   err);
}

int rbk_pgstore_now_ms(rbk_pgstore *s, int64_t *ms)
{
	rbk_err e = {0};
	PGresult *r = exec_sql(s, "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint", "read the clock", &e);
	if (!r)
		return -1;
	*ms = col_i64(r, 0, 0);
	PQclear(r);
	return 0;
}
