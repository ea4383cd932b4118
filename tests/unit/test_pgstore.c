/* Contract tests of the PostgreSQL store (store/pg.h) against a real server:
 * the URI in RBK_TEST_PG (tests/pg/cluster.sh starts a throwaway cluster).
 *
 * Each test keeps its store in a schema of its own (the URI's search_path),
 * dropped at the end, so runs never see each other's data. Tampering goes
 * through a separate libpq connection, as someone with write access to the
 * database would. Where the contract says "as the SQLite store", the same
 * calls run on an SQLite store in a temporary directory and the answers are
 * compared. */
#include "base/hash.h"
#include "base/mem.h"
#include "store/store.h"
#include "store/pg.h"

#include "t.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the server, and a schema per test ---- */

static const char *base_url;
static PGconn *adm;
static char *schemas[64];
static int nschemas;

static PGconn *connect_as(const char *url, const char *app)
{
	const char *keys[] = {"dbname", "application_name", NULL};
	const char *vals[] = {url, app, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(c) != CONNECTION_OK) {
		printf("# cannot connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Run SQL on the side connection; 0, or -1 with the error in *why (may be
 * NULL; a static buffer). */
static int adm_exec(const char **why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int adm_exec(const char **why, const char *fmt, ...)
{
	static char msg[512];
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	PGresult *r = PQexec(adm, sql);
	ExecStatusType st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	snprintf(msg, sizeof msg, "%s", ok ? "" : PQresultErrorMessage(r));
	PQclear(r);
	if (why)
		*why = msg;
	return ok ? 0 : -1;
}

/* The first cell of a query on the side connection (caller frees), or NULL. */
static char *adm_value(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *adm_value(const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	PGresult *r = PQexec(adm, sql);
	char *v = NULL;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = rbk_xstrdup(PQgetvalue(r, 0, 0));
	else if (PQresultStatus(r) != PGRES_TUPLES_OK)
		printf("# sql: %s", PQresultErrorMessage(r));
	PQclear(r);
	return v;
}

static int64_t adm_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t adm_int(const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	char *v = adm_value("%s", sql);
	int64_t n = v ? strtoll(v, NULL, 10) : -1;
	rbk_free(v);
	return n;
}

/* A fresh schema for one test; the URI that keeps the store in it. The
 * side connection's search_path follows it. */
static char *store_url(const char *name)
{
	char *schema = rbk_xasprintf("t%d_%s", (int)getpid(), name);
	const char *why;
	if (adm_exec(&why, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema) < 0)
		printf("# create schema %s: %s", schema, why);
	adm_exec(NULL, "SET search_path = %s", schema);
	if (nschemas < (int)(sizeof schemas / sizeof schemas[0]))
		schemas[nschemas++] = schema;
	else
		rbk_free(schema);
	return rbk_xasprintf("%s%coptions=-csearch_path%%3D%s", base_url, strchr(base_url, '?') ? '&' : '?',
			     schemas[nschemas - 1]);
}

static rbk_pgstore *open_ok(const char *url)
{
	rbk_pgstore *s = NULL;
	rbk_err e = {0};
	if (rbk_pgstore_open(&s, url, &e) < 0)
		printf("# unexpected open error: %s\n", e.msg);
	return s;
}

/* ---- an SQLite store to compare with ---- */

static char tmp_dir[256];

static rbk_store *sqlite_new(void)
{
	snprintf(tmp_dir, sizeof tmp_dir, "/tmp/rbk-test-pgstore-XXXXXX");
	if (!mkdtemp(tmp_dir)) {
		perror("mkdtemp");
		exit(2);
	}
	rbk_store *s = NULL;
	rbk_err e = {0};
	if (rbk_store_open(&s, tmp_dir, &e) < 0)
		printf("# sqlite open: %s\n", e.msg);
	return s;
}

static void sqlite_done(rbk_store *s)
{
	rbk_store_close(s);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmp_dir);
}

/* ---- helpers ---- */

static const char source_text[] = "name: deploy\nstates:\n  start: {end: true}\n";

static rbk_store_run_spec spec_of(const char *runbook, const char *actor)
{
	rbk_store_run_spec spec = {
		.runbook = runbook,
		.actor = actor,
		.params_json = "{\"env\":\"prod\",\"token\":\"***\"}",
		.source = source_text,
		.source_len = sizeof source_text - 1,
		.provenance_json = "{\"git\":{\"commit\":\"abc\"}}",
	};
	return spec;
}

static int64_t new_run(rbk_pgstore *s, const char *runbook, const char *actor)
{
	rbk_store_run_spec spec = spec_of(runbook, actor);
	int64_t id = 0;
	rbk_err e = {0};
	if (rbk_pgstore_run_create(s, &spec, &id, &e) < 0)
		printf("# run_create: %s\n", e.msg);
	return id;
}

static int is_iso_ms(const char *t)
{
	/* 2026-11-21T11:44:45.123Z */
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	if (!t || strlen(t) != sizeof shape - 1)
		return 0;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? t[i] < '0' || t[i] > '9' : t[i] != shape[i])
			return 0;
	return 1;
}

/* Every event, copied. */
typedef struct {
	int64_t seq, run_id;
	char *at, *actor, *kind, *data, *prev, *hash;
} ev_copy;

typedef struct {
	ev_copy v[2048];
	int n;
	int stop_at; /* return 7 at this event (1-based); 0: never */
} ev_list;

static int collect(void *ctx, const rbk_store_event *ev)
{
	ev_list *l = ctx;
	if (l->n < (int)(sizeof l->v / sizeof l->v[0])) {
		ev_copy *c = &l->v[l->n];
		c->seq = ev->seq;
		c->run_id = ev->run_id;
		c->at = rbk_xstrdup(ev->at);
		c->actor = rbk_xstrdup(ev->actor);
		c->kind = rbk_xstrdup(ev->kind);
		c->data = rbk_xstrdup(ev->data);
		c->prev = rbk_xstrdup(ev->prev_hash);
		c->hash = rbk_xstrdup(ev->hash);
	}
	l->n++;
	return l->stop_at && l->n == l->stop_at ? 7 : 0;
}

static void ev_list_free(ev_list *l)
{
	for (int i = 0; i < l->n && i < (int)(sizeof l->v / sizeof l->v[0]); i++) {
		ev_copy *c = &l->v[i];
		rbk_free(c->at);
		rbk_free(c->actor);
		rbk_free(c->kind);
		rbk_free(c->data);
		rbk_free(c->prev);
		rbk_free(c->hash);
	}
	l->n = 0;
}

static ev_list *ev_list_new(void) { return rbk_xcalloc(1, sizeof(ev_list)); }

static void ev_list_del(ev_list *l)
{
	ev_list_free(l);
	rbk_free(l);
}

/* Run ids a runs walk gave, as "5,4,1". */
typedef struct {
	char ids[256];
	int stop_after;
	int n;
} id_list;

static int collect_run(void *ctx, const rbk_store_run *r)
{
	id_list *l = ctx;
	size_t len = strlen(l->ids);
	snprintf(l->ids + len, sizeof l->ids - len, "%s%" PRId64, len ? "," : "", r->id);
	l->n++;
	return l->stop_after && l->n >= l->stop_after;
}

static const char *pg_runs(rbk_pgstore *s, const rbk_store_run_filter *f, id_list *l)
{
	memset(l, 0, sizeof *l);
	rbk_err e = {0};
	if (rbk_pgstore_runs(s, f, collect_run, l, &e) < 0)
		printf("# runs: %s\n", e.msg);
	return l->ids;
}

static const char *sq_runs(rbk_store *s, const rbk_store_run_filter *f, id_list *l)
{
	memset(l, 0, sizeof *l);
	rbk_err e = {0};
	if (rbk_store_runs(s, f, collect_run, l, &e) < 0)
		printf("# sqlite runs: %s\n", e.msg);
	return l->ids;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- tests ---- */

static void test_open_creates_schema(void)
{
	char *url = store_url("open");
	rbk_pgstore *s = open_ok(url);
	T_CHECK(s != NULL);
	if (!s)
		goto out;
	rbk_store_info info;
	rbk_err e = {0};
	T_CHECK(rbk_pgstore_info_get(s, &info, &e) == 0);
	T_CHECK(info.schema_version == rbk_pgstore_schema_latest());
	T_CHECK(info.schema_version == 3);
	T_STREQ(info.journal_mode, "wal");
	T_CHECK(info.foreign_keys == 1);
	T_CHECK(info.synchronous >= 0 && info.synchronous <= 2);
	T_CHECK(adm_int("SELECT count(*) FROM schema_version") == 3);
	T_CHECK(rbk_pgstore_migration_sql(1) && strstr(rbk_pgstore_migration_sql(1), "CREATE TABLE events"));
	T_CHECK(rbk_pgstore_migration_sql(0) == NULL && rbk_pgstore_migration_sql(4) == NULL);
	/* The lease columns, for later. */
	char *t = adm_value("SELECT string_agg(column_name || ':' || data_type || ':' || COALESCE(column_default, ''),"
			    " ',' ORDER BY column_name) FROM information_schema.columns WHERE table_schema ="
			    " current_schema() AND table_name = 'runs' AND column_name IN ('queue', 'lease_owner',"
			    " 'lease_until', 'epoch')");
	T_STREQ(t, "epoch:bigint:0,lease_owner:text:,lease_until:timestamp with time zone:,queue:text:");
	rbk_free(t);
	/* The name in messages: the server and database, no password. */
	const char *path = rbk_pgstore_path(s);
	T_CHECK(strncmp(path, "postgresql://", 13) == 0 && strstr(path, "/rbk") != NULL);
	/* Opening again migrates nothing. */
	rbk_pgstore *s2 = open_ok(url);
	T_CHECK(s2 != NULL);
	T_CHECK(adm_int("SELECT count(*) FROM schema_version") == 3);
	rbk_pgstore_close(s2);
	rbk_pgstore_close(s);
out:
	rbk_free(url);
}

/* Several processes opening a new store at once: one creates the schema,
 * the others wait and find it made. */
static void test_concurrent_first_open(void)
{
	char *url = store_url("first_open");
	enum { N = 4 };
	int go[2];
	T_CHECK(pipe(go) == 0);
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(go[1]);
			char c;
			if (read(go[0], &c, 1) != 1)
				_exit(3);
			rbk_pgstore *s = NULL;
			rbk_err e = {0};
			int rc = rbk_pgstore_open(&s, url, &e);
			if (rc < 0)
				printf("# child open: %s\n", e.msg);
			int64_t id = 0;
			if (rc == 0) {
				id = new_run(s, "first", "op@host");
				rbk_pgstore_close(s);
			}
			fflush(stdout);
			_exit(rc == 0 && id > 0 ? 0 : 1);
		}
	}
	close(go[0]);
	char bytes[N] = {0};
	T_CHECK(write(go[1], bytes, N) == N);
	close(go[1]);
	int ok = 0;
	for (int i = 0; i < N; i++) {
		int st;
		waitpid(pids[i], &st, 0);
		ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	T_CHECK(ok == N);
	T_CHECK(adm_int("SELECT count(*) FROM schema_version") == 3);
	char *ids = adm_value("SELECT string_agg(id::text, ',' ORDER BY id) FROM runs");
	T_STREQ(ids, "1,2,3,4");
	rbk_free(ids);
	rbk_free(url);
}

static void test_open_errors(void)
{
	rbk_pgstore *s = NULL;
	rbk_err e = {0};
	T_CHECK(rbk_pgstore_open(&s, "sqlite:/tmp/x.db", &e) < 0 && s == NULL);
	T_CHECK(strstr(e.msg, "not a PostgreSQL URI") != NULL);
	T_CHECK(e.code == RBK_ERR_STORE);

	/* No server there: the error names the place and the database, never
	 * the password. */
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_open(&s, "postgresql://alice:s3cretpw@/nosuchdb?host=/nonexistent-rbk-dir", &e) < 0);
	T_CHECK(e.code == RBK_ERR_STORE);
	T_CHECK(strstr(e.msg, "nosuchdb") != NULL);
	T_CHECK(strstr(e.msg, "/nonexistent-rbk-dir") != NULL);
	T_CHECK(strstr(e.msg, "s3cretpw") == NULL);
	printf("# %s\n", e.msg);

	/* Over TCP (nothing listens on port 1): host and port named. */
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_open(&s, "postgres://alice:s3cretpw@127.0.0.1:1/nosuchdb?connect_timeout=5", &e) < 0);
	T_CHECK(e.code == RBK_ERR_STORE);
	T_CHECK(strncmp(e.msg, "store postgresql://alice@127.0.0.1:1/nosuchdb: open: cannot connect: ", 69) == 0);
	T_CHECK(strstr(e.msg, "s3cretpw") == NULL);
	printf("# %s\n", e.msg);

	/* A database that does not exist on a live server. */
	char *bad = rbk_xasprintf("postgresql://%s:pw%%21secret@/rbk_missing_db?host=%s&port=%s", PQuser(adm),
				  PQhost(adm), PQport(adm));
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_open(&s, bad, &e) < 0);
	T_CHECK(e.code == RBK_ERR_STORE);
	T_CHECK(strstr(e.msg, "rbk_missing_db") != NULL && strstr(e.msg, "does not exist") != NULL);
	T_CHECK(strstr(e.msg, "secret") == NULL);
	printf("# %s\n", e.msg);
	rbk_free(bad);

	/* A URI libpq cannot parse, quoting the bad piece: the password in it
	 * is starred out. */
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_open(&s, "postgresql://bob:hunter2%zz@/db", &e) < 0);
	T_CHECK(strstr(e.msg, "hunter2") == NULL && strstr(e.msg, "malformed PostgreSQL URI") != NULL);
	printf("# %s\n", e.msg);

	/* A store from a newer rbk is refused, left as it is. */
	char *url = store_url("newer");
	rbk_pgstore *ok = open_ok(url);
	T_CHECK(ok != NULL);
	rbk_pgstore_close(ok);
	T_CHECK(adm_exec(NULL, "INSERT INTO schema_version VALUES (99, 'later')") == 0);
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_open(&s, url, &e) < 0);
	T_CHECK(strstr(e.msg, "store schema version 99 is newer than this rbk (3)") != NULL);
	rbk_free(url);

	/* A database that has tables of rbk's names but is not rbk's. */
	url = store_url("foreign");
	T_CHECK(adm_exec(NULL, "CREATE TABLE runs (x integer)") == 0);
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_open(&s, url, &e) < 0);
	T_CHECK(strstr(e.msg, "not an rbk store") != NULL && strstr(e.msg, "runs") != NULL);
	T_CHECK(adm_int("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()") == 1);
	rbk_free(url);
}

/* Runs read back as written, and as the SQLite store records them. */
static void test_runs_round_trip(void)
{
	char *url = store_url("runs");
	rbk_pgstore *s = open_ok(url);
	rbk_store *q = sqlite_new();
	T_CHECK(s != NULL && q != NULL);
	if (!s || !q)
		goto out;
	rbk_err e = {0};
	rbk_store_run_spec a = spec_of("deploy", "alice@h1");
	rbk_store_run_spec b = spec_of("migrate", "bob@h2");
	b.dry_run = 1;
	b.parent_run = 1;
	b.parent_state = "call_migrate";
	b.lock_key = "db-prod";
	b.params_json = NULL;
	b.provenance_json = NULL;
	int64_t pa = 0, pb = 0, qa = 0, qb = 0;
	T_CHECK(rbk_pgstore_run_create(s, &a, &pa, &e) == 0 && pa == 1);
	T_CHECK(rbk_pgstore_run_create(s, &b, &pb, &e) == 0 && pb == 2);
	T_CHECK(rbk_store_run_create(q, &a, &qa, &e) == 0 && qa == 1);
	T_CHECK(rbk_store_run_create(q, &b, &qb, &e) == 0 && qb == 2);
	for (int64_t id = 1; id <= 2; id++) {
		rbk_store_run r = {0}, w = {0};
		T_CHECK(rbk_pgstore_run_get(s, id, &r, &e) == 0);
		T_CHECK(rbk_store_run_get(q, id, &w, &e) == 0);
		T_CHECK(r.id == w.id);
		T_STREQ(r.runbook, w.runbook);
		T_STREQ(r.status, "running");
		T_STREQ(r.status, w.status);
		T_STREQ(r.actor, w.actor);
		T_CHECK(is_iso_ms(r.created_at) && is_iso_ms(r.updated_at));
		T_STREQ(r.created_at, r.updated_at);
		T_CHECK(r.parent_run == w.parent_run);
		T_CHECK((r.parent_state == NULL) == (w.parent_state == NULL));
		if (r.parent_state && w.parent_state)
			T_STREQ(r.parent_state, w.parent_state);
		T_CHECK(r.dry_run == w.dry_run);
		T_STREQ(r.params_json, w.params_json);
		T_STREQ(r.source_sha256, w.source_sha256);
		T_STREQ(r.provenance_json, w.provenance_json);
		T_CHECK(r.current_state == NULL && w.current_state == NULL);
		T_CHECK(r.owner_pid == (int64_t)getpid() && r.owner_pid == w.owner_pid);
		T_CHECK((r.lock_key == NULL) == (w.lock_key == NULL));
		if (r.lock_key && w.lock_key)
			T_STREQ(r.lock_key, w.lock_key);
		rbk_store_run_free(&r);
		rbk_store_run_free(&w);
	}
	/* The run_created events carry the same JSON on both backends. */
	ev_list *pl = ev_list_new(), *ql = ev_list_new();
	T_CHECK(rbk_pgstore_events(s, 0, collect, pl, &e) == 0);
	T_CHECK(rbk_store_events(q, 0, collect, ql, &e) == 0);
	T_CHECK(pl->n == 2 && ql->n == 2);
	for (int i = 0; i < 2 && i < pl->n && i < ql->n; i++) {
		T_CHECK(pl->v[i].seq == ql->v[i].seq && pl->v[i].run_id == ql->v[i].run_id);
		T_STREQ(pl->v[i].kind, "run_created");
		T_STREQ(pl->v[i].actor, ql->v[i].actor);
		T_STREQ(pl->v[i].data, ql->v[i].data);
	}
	ev_list_del(pl);
	ev_list_del(ql);

	/* run_set */
	sleep_ms(3);
	T_CHECK(rbk_pgstore_run_set(s, 1, "succeeded", "done", &e) == 0);
	T_CHECK(rbk_pgstore_run_set(s, 1, NULL, NULL, &e) == 0);
	rbk_store_run r = {0};
	T_CHECK(rbk_pgstore_run_get(s, 1, &r, &e) == 0);
	T_STREQ(r.status, "succeeded");
	T_STREQ(r.current_state, "done");
	T_CHECK(r.updated_at && r.created_at && strcmp(r.updated_at, r.created_at) > 0);
	rbk_store_run_free(&r);
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_run_set(s, 1, "finished", NULL, &e) < 0);
	T_CHECK(strstr(e.msg, "unknown run status 'finished'") != NULL);
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_run_set(s, 99, "failed", NULL, &e) < 0 && e.code == RBK_ERR_NONAME);
	T_CHECK(strstr(e.msg, "run 99 does not exist") != NULL);
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_run_get(s, 99, &r, &e) < 0 && e.code == RBK_ERR_NONAME);
	rbk_store_run_free(&r);
	/* A missing parent, bad JSON, a bad actor: refused, no id used up. */
	rbk_store_run_spec c = spec_of("child", "op@h");
	c.parent_run = 42;
	int64_t id = 0;
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_run_create(s, &c, &id, &e) < 0 && id == 0);
	T_CHECK(strstr(e.msg, "parent run 42 does not exist") != NULL);
	c.parent_run = 0;
	c.params_json = "{nope";
	T_CHECK(rbk_pgstore_run_create(s, &c, &id, &e) < 0);
	T_CHECK(strstr(e.msg, "params is not JSON") != NULL);
	c.params_json = NULL;
	c.actor = "a\nb";
	T_CHECK(rbk_pgstore_run_create(s, &c, &id, &e) < 0);
	c.actor = "op@h";
	T_CHECK(rbk_pgstore_run_create(s, &c, &id, &e) == 0 && id == 3);
	/* run_owner */
	T_CHECK(rbk_pgstore_run_owner(s, 3, 4242, &e) == 0);
	T_CHECK(rbk_pgstore_run_get(s, 3, &r, &e) == 0 && r.owner_pid == 4242);
	rbk_store_run_free(&r);
out:
	rbk_pgstore_close(s);
	if (q)
		sqlite_done(q);
	rbk_free(url);
}

static void test_sources(void)
{
	char *url = store_url("sources");
	rbk_pgstore *s = open_ok(url);
	T_CHECK(s != NULL);
	if (!s)
		goto out;
	rbk_err e = {0};
	static const char bin[] = {'a', '\0', 'b', (char)0xff, '\n'};
	rbk_store_run_spec spec = spec_of("bin", "op@h");
	spec.source = bin;
	spec.source_len = sizeof bin;
	int64_t id1 = 0, id2 = 0, id3 = 0;
	T_CHECK(rbk_pgstore_run_create(s, &spec, &id1, &e) == 0);
	T_CHECK(rbk_pgstore_run_create(s, &spec, &id2, &e) == 0);
	spec.source = NULL;
	spec.source_len = 0;
	T_CHECK(rbk_pgstore_run_create(s, &spec, &id3, &e) == 0);
	T_CHECK(adm_int("SELECT count(*) FROM sources") == 2);
	char sha[65], sha_empty[65];
	rbk_hash_sha256_hex(bin, sizeof bin, sha);
	rbk_hash_sha256_hex("", 0, sha_empty);
	char *bytes = NULL;
	size_t len = 0;
	T_CHECK(rbk_pgstore_source(s, sha, &bytes, &len, &e) == 0);
	T_CHECK(len == sizeof bin && bytes && memcmp(bytes, bin, len) == 0 && bytes[len] == '\0');
	rbk_free(bytes);
	T_CHECK(rbk_pgstore_source(s, sha_empty, &bytes, &len, &e) == 0 && len == 0 && bytes && bytes[0] == '\0');
	rbk_free(bytes);
	rbk_store_run r = {0};
	T_CHECK(rbk_pgstore_run_get(s, id2, &r, &e) == 0);
	T_STREQ(r.source_sha256, sha);
	rbk_store_run_free(&r);
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_source(s, "0123", &bytes, &len, &e) < 0 && e.code == RBK_ERR_NONAME && bytes == NULL);
	T_CHECK(strstr(e.msg, "no source with sha256 0123") != NULL);
	rbk_pgstore_close(s);
out:
	rbk_free(url);
}

/* A walk's callback reads the store between batches. */
typedef struct {
	rbk_pgstore *s;
	int reads_ok, writes_refused;
} reader_ctx;

static int read_during_walk(void *ctx, const rbk_store_event *ev)
{
	reader_ctx *c = ctx;
	rbk_store_run r = {0};
	rbk_err e = {0};
	if (rbk_pgstore_run_get(c->s, ev->run_id, &r, &e) == 0 && r.id == ev->run_id)
		c->reads_ok++;
	rbk_store_run_free(&r);
	if (rbk_pgstore_meta_set(c->s, "k", "v", &e) < 0 && strstr(e.msg, "cannot write"))
		c->writes_refused++;
	return 0;
}

static void test_events_and_chain(void)
{
	char *url = store_url("events");
	rbk_pgstore *s = open_ok(url);
	T_CHECK(s != NULL);
	if (!s)
		goto out;
	rbk_err e = {0};
	int64_t r1 = new_run(s, "deploy", "op@h"), r2 = new_run(s, "backup", "op@h");
	T_CHECK(r1 == 1 && r2 == 2);
	for (int i = 0; i < 20; i++) {
		char data[128];
		snprintf(data, sizeof data, "{\"i\":%d,\"text\":\"caf\xc3\xa9 \\\"q\\\"\",\"n\":null}", i);
		int64_t seq = 0;
		T_CHECK(rbk_pgstore_append(s, i % 3 ? r1 : r2, "op@h", "step_started", data, false, &seq, &e) == 0);
		T_CHECK(seq == 3 + i);
	}
	T_CHECK(rbk_pgstore_append(s, r1, "op@h", "note", NULL, false, NULL, &e) == 0);
	ev_list *l = ev_list_new();
	T_CHECK(rbk_pgstore_events(s, 0, collect, l, &e) == 0);
	T_CHECK(l->n == 23);
	char prev[65];
	memset(prev, '0', 64);
	prev[64] = '\0';
	for (int i = 0; i < l->n; i++) {
		ev_copy *c = &l->v[i];
		T_CHECK(c->seq == i + 1);
		T_STREQ(c->prev, prev);
		char h[65];
		rbk_store_chain_hash(c->prev, c->seq, c->run_id, c->at, c->actor, c->kind, c->data, h);
		T_STREQ(c->hash, h);
		T_CHECK(is_iso_ms(c->at));
		if (i)
			T_CHECK(strcmp(c->at, l->v[i - 1].at) >= 0);
		memcpy(prev, c->hash, 65);
	}
	T_STREQ(l->v[22].data, "{}");
	T_STREQ(l->v[2].data, "{\"i\":0,\"text\":\"caf\xc3\xa9 \\\"q\\\"\",\"n\":null}");
	/* The database's clock, not ours: the same instant, give or take. */
	char *db_now = adm_value("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')");
	T_CHECK(db_now && strncmp(db_now, l->v[22].at, 15) == 0);
	rbk_free(db_now);

	/* head, event_hash, links */
	int64_t head = 0;
	char hash[65];
	T_CHECK(rbk_pgstore_head(s, &head, hash, &e) == 0 && head == 23);
	T_STREQ(hash, l->v[22].hash);
	T_CHECK(rbk_pgstore_event_hash(s, 5, hash, &e) == 0);
	T_STREQ(hash, l->v[4].hash);
	T_CHECK(rbk_pgstore_event_hash(s, 999, hash, &e) == 1);
	ev_list_free(l);
	T_CHECK(rbk_pgstore_links(s, 3, 5, collect, l, &e) == 0);
	T_CHECK(l->n == 3 && l->v[0].seq == 3 && l->v[2].seq == 5);
	ev_list_free(l);

	/* One run's events; after a seq; a walk stopped by its callback. */
	T_CHECK(rbk_pgstore_events(s, r2, collect, l, &e) == 0);
	T_CHECK(l->n == 8 && l->v[0].seq == 2 && l->v[1].seq == 3 && l->v[7].seq == 21);
	ev_list_free(l);
	T_CHECK(rbk_pgstore_events_after(s, r2, 12, collect, l, &e) == 0);
	T_CHECK(l->n == 3 && l->v[0].seq == 15);
	ev_list_free(l);
	l->stop_at = 4;
	T_CHECK(rbk_pgstore_events(s, 0, collect, l, &e) == 7 && l->n == 4);
	ev_list_free(l);
	l->stop_at = 0;
	ev_list_del(l);

	/* Refused appends leave the chain as it was. */
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_append(s, r1, "", "k", NULL, false, NULL, &e) < 0 && strstr(e.msg, "empty actor"));
	T_CHECK(rbk_pgstore_append(s, r1, "op", "a\nb", NULL, false, NULL, &e) < 0 && strstr(e.msg, "kind contains a newline"));
	T_CHECK(rbk_pgstore_append(s, r1, "op", "k", "{bad", false, NULL, &e) < 0 && strstr(e.msg, "event data is not JSON"));
	T_CHECK(rbk_pgstore_append(s, 999, "op", "k", NULL, false, NULL, &e) < 0);
	T_CHECK(strstr(e.msg, "append event: run 999 does not exist") != NULL);
	T_CHECK(rbk_pgstore_head(s, &head, hash, &e) == 0 && head == 23);
	T_CHECK(rbk_pgstore_append(s, r1, "op", "k", NULL, false, &head, &e) == 0 && head == 24);

	/* Append-only, unless someone disables the triggers on purpose. */
	const char *why = NULL;
	T_CHECK(adm_exec(&why, "UPDATE events SET data = '{}' WHERE seq = 1") < 0 && strstr(why, "append-only"));
	T_CHECK(adm_exec(&why, "DELETE FROM events WHERE seq = 24") < 0 && strstr(why, "append-only"));
	T_CHECK(adm_exec(&why, "TRUNCATE events CASCADE") < 0 && strstr(why, "append-only"));

	/* A callback may read the store, never write it. */
	reader_ctx rc = {s, 0, 0};
	T_CHECK(rbk_pgstore_events(s, r1, read_during_walk, &rc, &e) == 0);
	T_CHECK(rc.reads_ok == 16 && rc.writes_refused == 16);
	T_CHECK(rbk_pgstore_meta_set(s, "k", "v", &e) == 0);

	int64_t count = 0, bad = -1;
	char *vwhy = NULL;
	T_CHECK(rbk_pgstore_verify(s, &count, &bad, &vwhy, &e) == 0 && count == 24 && bad == 0 && vwhy == NULL);
	rbk_pgstore_close(s);
out:
	rbk_free(url);
}

/* Two processes append 500 events each at the same time: seq has no gaps,
 * each process's events keep their order, and the chain verifies. */
static void test_concurrent_appends(void)
{
	char *url = store_url("concurrent");
	rbk_pgstore *s = open_ok(url);
	T_CHECK(s != NULL);
	if (!s)
		goto out;
	int64_t runs[2] = {new_run(s, "a", "op@h"), new_run(s, "b", "op@h")};
	rbk_pgstore_close(s);
	enum { PER = 500 };
	int go[2];
	T_CHECK(pipe(go) == 0);
	pid_t pids[2];
	for (int p = 0; p < 2; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			close(go[1]);
			char c;
			if (read(go[0], &c, 1) != 1)
				_exit(3);
			rbk_pgstore *cs = NULL;
			rbk_err e = {0};
			if (rbk_pgstore_open(&cs, url, &e) < 0) {
				printf("# child open: %s\n", e.msg);
				fflush(stdout);
				_exit(1);
			}
			int fails = 0;
			for (int k = 0; k < PER;) {
				/* Mostly single appends; now and then a batch of five
				 * in one transaction. */
				int batch = k % 50 == 45 ? 5 : 1;
				if (batch > 1 && rbk_pgstore_begin(cs, &e) < 0)
					fails++;
				for (int j = 0; j < batch; j++, k++) {
					char data[64];
					snprintf(data, sizeof data, "{\"p\":%d,\"k\":%d}", p, k);
					if (rbk_pgstore_append(cs, runs[p], "op@h", "tick", data, false, NULL, &e) < 0) {
						printf("# child append: %s\n", e.msg);
						fails++;
					}
				}
				if (batch > 1 && rbk_pgstore_commit(cs, &e) < 0)
					fails++;
			}
			rbk_pgstore_close(cs);
			fflush(stdout);
			_exit(fails ? 1 : 0);
		}
	}
	close(go[0]);
	double t0 = now_s();
	T_CHECK(write(go[1], "go", 2) == 2);
	close(go[1]);
	for (int p = 0; p < 2; p++) {
		int st;
		waitpid(pids[p], &st, 0);
		T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	double took = now_s() - t0;
	s = open_ok(url);
	T_CHECK(s != NULL);
	if (!s)
		goto out;
	rbk_err e = {0};
	ev_list *l = ev_list_new();
	T_CHECK(rbk_pgstore_events(s, 0, collect, l, &e) == 0);
	T_CHECK(l->n == 2 + 2 * PER);
	int next[2] = {0, 0}, switches = 0, last = -1, gaps = 0, order = 0;
	for (int i = 0; i < l->n && i < (int)(sizeof l->v / sizeof l->v[0]); i++) {
		gaps += l->v[i].seq != i + 1;
		int p, k;
		if (sscanf(l->v[i].data, "{\"p\":%d,\"k\":%d}", &p, &k) != 2 || p < 0 || p > 1)
			continue;
		order += k != next[p]++;
		switches += last >= 0 && p != last;
		last = p;
	}
	T_CHECK(gaps == 0);
	T_CHECK(order == 0);
	T_CHECK(next[0] == PER && next[1] == PER);
	T_CHECK(switches > 10); /* they did interleave */
	printf("# %d appends from 2 processes in %.2f s, %d interleavings\n", 2 * PER, took, switches);
	ev_list_del(l);
	int64_t count = 0, bad = -1;
	T_CHECK(rbk_pgstore_verify(s, &count, &bad, NULL, &e) == 0 && count == 2 + 2 * PER && bad == 0);
	T_CHECK(adm_int("SELECT max(seq) - min(seq) + 1 - count(*) FROM events") == 0);
	rbk_pgstore_close(s);
out:
	rbk_free(url);
}

typedef struct {
	char text[512];
	int n, stop_at;
} step_list;

static int collect_step(void *ctx, const rbk_store_step *st)
{
	step_list *l = ctx;
	size_t len = strlen(l->text);
	snprintf(l->text + len, sizeof l->text - len, "%s%s/%d/%s/%" PRId64 "/%" PRId64 "/%s", len ? " " : "", st->state,
		 st->attempt, st->status, st->started_seq, st->ended_seq, st->idempotency_key);
	l->n++;
	return l->stop_at && l->n == l->stop_at ? 9 : 0;
}

static void test_steps(void)
{
	char *url = store_url("steps");
	rbk_pgstore *s = open_ok(url);
	rbk_store *q = sqlite_new();
	T_CHECK(s != NULL && q != NULL);
	if (!s || !q)
		goto out;
	rbk_err e = {0};
	int64_t run = new_run(s, "deploy", "op@h"), qrun = 0;
	rbk_store_run_spec spec = spec_of("deploy", "op@h");
	T_CHECK(rbk_store_run_create(q, &spec, &qrun, &e) == 0 && qrun == run);
	/* The same calls on both backends, ordered the same: by start, then
	 * never-started ones by state name as bytes ("Z" before "c"). */
	struct {
		const char *state;
		int attempt;
		const char *status;
		int64_t started, ended;
	} calls[] = {
		{"b", 1, "started", 5, 0}, {"a", 1, "started", 3, 0},	  {"c", 1, "pending", 0, 0},
		{"Z", 1, "pending", 0, 0}, {"a", 1, "succeeded", 0, 7}, {"a", 2, "started", 9, 0},
	};
	for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
		T_CHECK(rbk_pgstore_step_record(s, run, calls[i].state, calls[i].attempt, calls[i].status, calls[i].started,
						calls[i].ended, &e) == 0);
		T_CHECK(rbk_store_step_record(q, run, calls[i].state, calls[i].attempt, calls[i].status, calls[i].started,
					      calls[i].ended, &e) == 0);
	}
	step_list pl = {0}, ql = {0};
	T_CHECK(rbk_pgstore_steps(s, run, collect_step, &pl, &e) == 0);
	T_CHECK(rbk_store_steps(q, run, collect_step, &ql, &e) == 0);
	T_STREQ(pl.text, "a/1/succeeded/3/7/1:a:1 b/1/started/5/0/1:b:1 a/2/started/9/0/1:a:2 Z/1/pending/0/0/1:Z:1 "
			 "c/1/pending/0/0/1:c:1");
	T_STREQ(pl.text, ql.text);
	step_list stop = {.stop_at = 2};
	T_CHECK(rbk_pgstore_steps(s, run, collect_step, &stop, &e) == 9 && stop.n == 2);
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_step_record(s, 999, "a", 1, "started", 0, 0, &e) < 0);
	T_CHECK(strstr(e.msg, "record step: run 999 does not exist") != NULL);
	T_CHECK(rbk_pgstore_step_record(s, run, "", 1, "started", 0, 0, &e) < 0 && strstr(e.msg, "empty state"));
	T_CHECK(rbk_pgstore_step_record(s, run, "a", 1, "", 0, 0, &e) < 0 && strstr(e.msg, "empty step status"));
out:
	rbk_pgstore_close(s);
	if (q)
		sqlite_done(q);
	rbk_free(url);
}

static void test_locks(void)
{
	char *url = store_url("locks");
	rbk_pgstore *s = open_ok(url);
	T_CHECK(s != NULL);
	if (!s)
		goto out;
	rbk_err e = {0};
	rbk_store_run_spec spec = spec_of("deploy", "op@h");
	spec.lock_key = "db-prod";
	int64_t r1 = 0, r2 = 0, r3 = 0, holder = -1;
	T_CHECK(rbk_pgstore_run_create(s, &spec, &r1, &e) == 0);
	T_CHECK(rbk_pgstore_run_create(s, &spec, &r2, &e) == 0);
	spec.lock_key = NULL;
	T_CHECK(rbk_pgstore_run_create(s, &spec, &r3, &e) == 0);
	T_CHECK(rbk_pgstore_lock_holder(s, "db-prod", r2, &holder, &e) == 0 && holder == r1);
	T_CHECK(rbk_pgstore_lock_holder(s, "db-prod", r1, &holder, &e) == 0 && holder == r2);
	T_CHECK(rbk_pgstore_lock_holder(s, "db-prod", 0, &holder, &e) == 0 && holder == r1);
	T_CHECK(rbk_pgstore_lock_holder(s, "other", 0, &holder, &e) == 0 && holder == 0);
	T_CHECK(rbk_pgstore_run_set(s, r1, "needs_attention", NULL, &e) == 0);
	T_CHECK(rbk_pgstore_lock_holder(s, "db-prod", r2, &holder, &e) == 0 && holder == r1);
	T_CHECK(rbk_pgstore_run_set(s, r1, "succeeded", NULL, &e) == 0);
	T_CHECK(rbk_pgstore_lock_holder(s, "db-prod", r2, &holder, &e) == 0 && holder == 0);

	/* A caller's transaction holds the write lock from begin to commit,
	 * as BEGIN IMMEDIATE does: another process's begin waits for it, so a
	 * lock check and the run_create after it are atomic. */
	T_CHECK(rbk_pgstore_begin(s, &e) == 0);
	T_CHECK(rbk_pgstore_lock_holder(s, "db-prod", 0, &holder, &e) == 0 && holder == r2);
	int ready[2];
	T_CHECK(pipe(ready) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		rbk_pgstore *cs = NULL;
		rbk_err ce = {0};
		int rc = rbk_pgstore_open(&cs, url, &ce);
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		double t0 = now_s();
		if (rc == 0)
			rc = rbk_pgstore_begin(cs, &ce);
		double waited = now_s() - t0;
		int64_t h = -1;
		if (rc == 0)
			rc = rbk_pgstore_lock_holder(cs, "db-prod", 0, &h, &ce);
		rbk_pgstore_rollback(cs);
		rbk_pgstore_close(cs);
		/* It waited, then saw the parent's committed run. */
		_exit(rc == 0 && waited > 0.25 && h == 4 ? 0 : 1);
	}
	close(ready[1]);
	char c;
	T_CHECK(read(ready[0], &c, 1) == 1);
	close(ready[0]);
	sleep_ms(400);
	rbk_store_run_spec next = spec_of("deploy", "op@h");
	next.lock_key = "db-prod";
	int64_t r4 = 0;
	T_CHECK(rbk_pgstore_run_set(s, r2, "aborted", NULL, &e) == 0);
	T_CHECK(rbk_pgstore_run_create(s, &next, &r4, &e) == 0 && r4 == 4);
	T_CHECK(rbk_pgstore_commit(s, &e) == 0);
	int st;
	waitpid(pid, &st, 0);
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	rbk_pgstore_close(s);
out:
	rbk_free(url);
}

typedef struct {
	char text[1024];
} fire_list;

static int collect_fire(void *ctx, const rbk_store_fire *f)
{
	fire_list *l = ctx;
	size_t len = strlen(l->text);
	snprintf(l->text + len, sizeof l->text - len, "%s%" PRId64 "/%s/%d/%s/%s/%" PRId64 "/%s/%s", len ? " " : "", f->id,
		 f->runbook, f->entry, f->nominal, f->outcome, f->run_id, f->note ? f->note : "-",
		 f->run_status ? f->run_status : "-");
	return is_iso_ms(f->decided_at) ? 0 : 1;
}

static void test_fires(void)
{
	char *url = store_url("fires");
	rbk_pgstore *s = open_ok(url);
	T_CHECK(s != NULL);
	if (!s)
		goto out;
	rbk_err e = {0};
	int64_t id = 0, run = new_run(s, "nightly", "scheduler");
	const char *n1 = "2026-01-01T00:00:00Z", *n2 = "2026-01-02T00:00:00Z";
	T_CHECK(rbk_pgstore_fire_claim(s, "nightly", 0, n1, "firing", NULL, &id, &e) == 0 && id == 1);
	/* The same nominal time again: refused, and no id used up. */
	T_CHECK(rbk_pgstore_fire_claim(s, "nightly", 0, n1, "firing", NULL, &id, &e) == 1 && id == 0);
	T_CHECK(rbk_pgstore_fire_claim(s, "nightly", 1, n1, "skipped", "overlap", &id, &e) == 0 && id == 2);
	T_CHECK(rbk_pgstore_fire_claim(s, "nightly", 0, n2, "missed", NULL, &id, &e) == 0 && id == 3);
	T_CHECK(rbk_pgstore_fire_claim(s, "weekly", 0, n1, "queued", NULL, &id, &e) == 0 && id == 4);
	T_CHECK(rbk_pgstore_fire_set(s, 1, "fired", run, "started", &e) == 0);
	T_CHECK(rbk_pgstore_fire_set(s, 1, "fired", 0, NULL, &e) == 0); /* keeps run and note */
	fire_list l = {0};
	T_CHECK(rbk_pgstore_fires(s, NULL, -1, NULL, 0, collect_fire, &l, &e) == 0);
	T_STREQ(l.text, "3/nightly/0/2026-01-02T00:00:00Z/missed/0/-/- 4/weekly/0/2026-01-01T00:00:00Z/queued/0/-/- "
			"2/nightly/1/2026-01-01T00:00:00Z/skipped/0/overlap/- "
			"1/nightly/0/2026-01-01T00:00:00Z/fired/1/started/running");
	memset(&l, 0, sizeof l);
	T_CHECK(rbk_pgstore_fires(s, "nightly", 0, NULL, 0, collect_fire, &l, &e) == 0);
	T_STREQ(l.text, "3/nightly/0/2026-01-02T00:00:00Z/missed/0/-/- 1/nightly/0/2026-01-01T00:00:00Z/fired/1/started/running");
	memset(&l, 0, sizeof l);
	T_CHECK(rbk_pgstore_fires(s, NULL, -1, "skipped", 0, collect_fire, &l, &e) == 0);
	T_STREQ(l.text, "2/nightly/1/2026-01-01T00:00:00Z/skipped/0/overlap/-");
	memset(&l, 0, sizeof l);
	T_CHECK(rbk_pgstore_fires(s, NULL, -1, NULL, 2, collect_fire, &l, &e) == 0);
	T_STREQ(l.text, "3/nightly/0/2026-01-02T00:00:00Z/missed/0/-/- 4/weekly/0/2026-01-01T00:00:00Z/queued/0/-/-");
	rbk_pgstore_close(s);

	/* Two schedulers claiming one nominal time at once: exactly one wins. */
	int go[2];
	T_CHECK(pipe(go) == 0);
	pid_t pids[2];
	for (int p = 0; p < 2; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			close(go[1]);
			rbk_pgstore *cs = NULL;
			rbk_err ce = {0};
			int rc = rbk_pgstore_open(&cs, url, &ce);
			char c;
			if (read(go[0], &c, 1) != 1)
				_exit(3);
			int64_t fid = 0;
			if (rc == 0)
				rc = rbk_pgstore_fire_claim(cs, "race", 0, n1, "firing", NULL, &fid, &ce);
			rbk_pgstore_close(cs);
			_exit(rc == 0 ? 10 : rc == 1 ? 11 : 12);
		}
	}
	close(go[0]);
	T_CHECK(write(go[1], "go", 2) == 2);
	close(go[1]);
	int won = 0, refused = 0;
	for (int p = 0; p < 2; p++) {
		int st;
		waitpid(pids[p], &st, 0);
		won += WIFEXITED(st) && WEXITSTATUS(st) == 10;
		refused += WIFEXITED(st) && WEXITSTATUS(st) == 11;
	}
	T_CHECK(won == 1 && refused == 1);
	T_CHECK(adm_int("SELECT count(*) FROM fires WHERE runbook = 'race'") == 1);
out:
	rbk_free(url);
}

static void test_meta(void)
{
	char *url = store_url("meta");
	rbk_pgstore *s = open_ok(url), *s2 = open_ok(url);
	T_CHECK(s != NULL && s2 != NULL);
	if (!s || !s2)
		goto out;
	rbk_err e = {0};
	char *v = (char *)"unset";
	T_CHECK(rbk_pgstore_meta_get(s, "scheduler.tick", &v, &e) == 0 && v == NULL);
	T_CHECK(rbk_pgstore_meta_set(s, "scheduler.tick", "2026-01-01T00:00:00.000Z", &e) == 0);
	T_CHECK(rbk_pgstore_meta_get(s2, "scheduler.tick", &v, &e) == 0);
	T_STREQ(v, "2026-01-01T00:00:00.000Z");
	rbk_free(v);
	T_CHECK(rbk_pgstore_meta_set(s2, "scheduler.tick", "", &e) == 0);
	T_CHECK(rbk_pgstore_meta_get(s, "scheduler.tick", &v, &e) == 0);
	T_STREQ(v, "");
	rbk_free(v);
out:
	rbk_pgstore_close(s);
	rbk_pgstore_close(s2);
	rbk_free(url);
}

static void test_transactions(void)
{
	char *url = store_url("tx");
	rbk_pgstore *s = open_ok(url), *other = open_ok(url);
	T_CHECK(s != NULL && other != NULL);
	if (!s || !other)
		goto out;
	rbk_err e = {0};
	rbk_store_run r = {0};
	int64_t head = 0, run = 0;
	char hash[65];

	/* Nothing is visible before the commit. */
	T_CHECK(rbk_pgstore_begin(s, &e) == 0);
	rbk_store_run_spec spec = spec_of("deploy", "op@h");
	T_CHECK(rbk_pgstore_run_create(s, &spec, &run, &e) == 0 && run == 1);
	T_CHECK(rbk_pgstore_append(s, run, "op@h", "step_started", NULL, false, NULL, &e) == 0);
	T_CHECK(rbk_pgstore_step_record(s, run, "a", 1, "started", 2, 0, &e) == 0);
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_run_get(other, run, &r, &e) < 0 && e.code == RBK_ERR_NONAME);
	T_CHECK(rbk_pgstore_head(other, &head, hash, &e) == 0 && head == 0);
	T_CHECK(rbk_pgstore_commit(s, &e) == 0);
	T_CHECK(rbk_pgstore_run_get(other, run, &r, &e) == 0);
	rbk_store_run_free(&r);
	T_CHECK(rbk_pgstore_head(other, &head, hash, &e) == 0 && head == 2);

	/* Rolled back: gone, and the next append takes the same seq. */
	T_CHECK(rbk_pgstore_begin(s, &e) == 0);
	T_CHECK(rbk_pgstore_append(s, run, "op@h", "x", NULL, false, &head, &e) == 0 && head == 3);
	rbk_pgstore_rollback(s);
	T_CHECK(rbk_pgstore_head(other, &head, hash, &e) == 0 && head == 2);

	/* Misuse. */
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_commit(s, &e) < 0 && strstr(e.msg, "no transaction is open"));
	T_CHECK(rbk_pgstore_begin(s, &e) == 0);
	T_CHECK(rbk_pgstore_begin(s, &e) < 0 && strstr(e.msg, "a transaction is already open"));
	rbk_pgstore_rollback(s);

	/* An error inside the caller's transaction discards all of it; later
	 * calls and the commit say why. */
	T_CHECK(rbk_pgstore_begin(s, &e) == 0);
	T_CHECK(rbk_pgstore_append(s, run, "op@h", "kept?", NULL, false, NULL, &e) == 0);
	T_CHECK(rbk_pgstore_append(s, 999, "op@h", "x", NULL, false, NULL, &e) < 0);
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_append(s, run, "op@h", "x", NULL, false, NULL, &e) < 0);
	T_CHECK(strstr(e.msg, "the transaction was rolled back after an earlier error") != NULL);
	T_CHECK(strstr(e.msg, "run 999 does not exist") != NULL);
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_commit(s, &e) < 0 && strstr(e.msg, "rolled back after an earlier error"));
	T_CHECK(rbk_pgstore_head(other, &head, hash, &e) == 0 && head == 2);
	/* ...and the handle works again afterwards. */
	T_CHECK(rbk_pgstore_append(s, run, "op@h", "x", NULL, false, &head, &e) == 0 && head == 3);

	/* A statement first prepared in a rolled-back transaction stays
	 * prepared. */
	T_CHECK(rbk_pgstore_begin(other, &e) == 0);
	T_CHECK(rbk_pgstore_meta_set(other, "a", "1", &e) == 0);
	rbk_pgstore_rollback(other);
	T_CHECK(rbk_pgstore_meta_set(other, "a", "2", &e) == 0);
	char *v = NULL;
	T_CHECK(rbk_pgstore_meta_get(s, "a", &v, &e) == 0);
	T_STREQ(v, "2");
	rbk_free(v);
	/* Walks inside the caller's transaction see its own writes. */
	T_CHECK(rbk_pgstore_begin(s, &e) == 0);
	T_CHECK(rbk_pgstore_append(s, run, "op@h", "in-tx", NULL, false, NULL, &e) == 0);
	ev_list *l = ev_list_new();
	T_CHECK(rbk_pgstore_events(s, run, collect, l, &e) == 0 && l->n == 4);
	ev_list_del(l);
	T_CHECK(rbk_pgstore_commit(s, &e) == 0);
out:
	rbk_pgstore_close(s);
	rbk_pgstore_close(other);
	rbk_free(url);
}

static void tamper_data(int64_t seq, const char *data)
{
	const char *why;
	if (adm_exec(&why,
		     "BEGIN; ALTER TABLE events DISABLE TRIGGER USER;"
		     " UPDATE events SET data = '%s' WHERE seq = %" PRId64 ";"
		     " ALTER TABLE events ENABLE TRIGGER USER; COMMIT",
		     data, seq) < 0) {
		printf("# tamper: %s", why);
		adm_exec(NULL, "ROLLBACK");
	}
}

static rbk_pgstore *chain_of(const char *name, int events, char **url_out)
{
	char *url = store_url(name);
	rbk_pgstore *s = open_ok(url);
	*url_out = url;
	if (!s)
		return NULL;
	int64_t run = new_run(s, "deploy", "op@h");
	rbk_err e = {0};
	for (int i = 1; i < events; i++) {
		char data[32];
		snprintf(data, sizeof data, "{\"i\":%d}", i);
		if (rbk_pgstore_append(s, run, "op@h", "tick", data, false, NULL, &e) < 0)
			printf("# append: %s\n", e.msg);
	}
	return s;
}

static void test_verify_catches_tampering(void)
{
	char *url;
	rbk_pgstore *s = chain_of("tamper", 30, &url);
	T_CHECK(s != NULL);
	if (!s)
		goto out;
	rbk_err e = {0};
	int64_t count = 0, bad = -1;
	char *why = NULL;
	T_CHECK(rbk_pgstore_verify(s, &count, &bad, &why, &e) == 0 && count == 30 && bad == 0 && !why);
	T_CHECK(rbk_pgstore_writable(s, &e) == 0);

	/* Changed data: the event's own hash no longer matches. */
	tamper_data(10, "{\"i\":666}");
	T_CHECK(rbk_pgstore_verify(s, &count, &bad, &why, &e) == 0);
	T_CHECK(bad == 10 && count == 9);
	T_STREQ(why, "event 10 was modified: its hash does not match its content");
	/* Within the newest events: refused for writing. */
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_writable(s, &e) < 0 && e.code == RBK_ERR_STORE);
	T_CHECK(strstr(e.msg, "refused: its chain is broken at event 10") != NULL);
	/* What verify found is remembered. */
	rbk_pgstore_note_broken(s, why);
	char *mark = NULL;
	T_CHECK(rbk_pgstore_meta_get(s, "chain.broken", &mark, &e) == 0);
	T_STREQ(mark, why);
	rbk_free(mark);
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_writable(s, &e) < 0 && strstr(e.msg, "rbk verify found its chain broken"));
	rbk_free(why);
	why = NULL;
	tamper_data(10, "{\"i\":9}");
	rbk_pgstore_note_broken(s, NULL);
	T_CHECK(rbk_pgstore_writable(s, &e) == 0);
	T_CHECK(rbk_pgstore_verify(s, &count, &bad, NULL, &e) == 0 && count == 30 && bad == 0);

	/* Modified and re-hashed: the next event's link breaks. */
	char h[65], prev[65];
	T_CHECK(rbk_pgstore_event_hash(s, 4, prev, &e) == 0);
	rbk_store_chain_hash(prev, 5, 1, "2020-01-01T00:00:00.000Z", "op@h", "tick", "{\"i\":4}", h);
	const char *err;
	T_CHECK(adm_exec(&err,
			 "BEGIN; ALTER TABLE events DISABLE TRIGGER USER;"
			 " UPDATE events SET at = '2020-01-01T00:00:00.000Z', hash = '%s' WHERE seq = 5;"
			 " ALTER TABLE events ENABLE TRIGGER USER; COMMIT",
			 h) == 0);
	T_CHECK(rbk_pgstore_verify(s, &count, &bad, &why, &e) == 0 && bad == 6);
	T_CHECK(why && strstr(why, "event 6: its prev_hash is not the hash of event 5") != NULL);
	rbk_free(why);
	why = NULL;

	/* A removed event: a gap in seq. */
	T_CHECK(adm_exec(&err,
			 "BEGIN; ALTER TABLE events DISABLE TRIGGER USER; DELETE FROM events WHERE seq = 2;"
			 " ALTER TABLE events ENABLE TRIGGER USER; COMMIT") == 0);
	T_CHECK(rbk_pgstore_verify(s, &count, &bad, &why, &e) == 0 && bad == 2);
	T_STREQ(why, "event 2 was removed (seq goes from 1 to 3)");
	rbk_free(why);
	rbk_pgstore_close(s);
out:
	rbk_free(url);
}

/* The runs filters, against the SQLite store given the same history. */
static void test_runs_filters(void)
{
	char *url = store_url("filters");
	rbk_pgstore *s = open_ok(url);
	rbk_store *q = sqlite_new();
	T_CHECK(s != NULL && q != NULL);
	if (!s || !q)
		goto out;
	rbk_err e = {0};
	struct {
		const char *runbook, *actor;
		int64_t parent;
		const char *status;
	} runs[] = {
		{"deploy", "alice@h1", 0, "succeeded"}, {"deploy", "alice@h2", 1, NULL}, {"backup", "bob@h1", 0, "failed"},
		{"backup", "alicex@h1", 0, "needs_attention"}, {"deploy", "alice@h3", 0, NULL},
	};
	char created[6][32];
	for (int i = 0; i < 5; i++) {
		rbk_store_run_spec spec = spec_of(runs[i].runbook, runs[i].actor);
		spec.parent_run = runs[i].parent;
		int64_t a = 0, b = 0;
		T_CHECK(rbk_pgstore_run_create(s, &spec, &a, &e) == 0 && a == i + 1);
		T_CHECK(rbk_store_run_create(q, &spec, &b, &e) == 0 && b == i + 1);
		if (runs[i].status) {
			T_CHECK(rbk_pgstore_run_set(s, a, runs[i].status, NULL, &e) == 0);
			T_CHECK(rbk_store_run_set(q, b, runs[i].status, NULL, &e) == 0);
		}
		rbk_store_run r = {0};
		T_CHECK(rbk_pgstore_run_get(s, a, &r, &e) == 0);
		snprintf(created[i + 1], sizeof created[i + 1], "%s", r.created_at ? r.created_at : "");
		rbk_store_run_free(&r);
		sleep_ms(5); /* distinct created_at */
	}
	int64_t fid;
	T_CHECK(rbk_pgstore_fire_claim(s, "backup", 0, "2026-01-01T00:00:00Z", "fired", NULL, &fid, &e) == 0);
	T_CHECK(rbk_pgstore_fire_set(s, fid, "fired", 3, NULL, &e) == 0);
	T_CHECK(rbk_store_fire_claim(q, "backup", 0, "2026-01-01T00:00:00Z", "fired", NULL, &fid, &e) == 0);
	T_CHECK(rbk_store_fire_set(q, fid, "fired", 3, NULL, &e) == 0);

	id_list a, b;
	rbk_store_run_filter f = {0};
	T_STREQ(pg_runs(s, NULL, &a), "5,4,3,2,1");
	T_STREQ(pg_runs(s, &f, &a), "5,4,3,2,1");
	f.runbook = "deploy";
	T_STREQ(pg_runs(s, &f, &a), "5,2,1");
	T_STREQ(a.ids, sq_runs(q, &f, &b));
	f = (rbk_store_run_filter){.status = "failed"};
	T_STREQ(pg_runs(s, &f, &a), "3");
	f = (rbk_store_run_filter){.actor = "alice"};
	T_STREQ(pg_runs(s, &f, &a), "5,2,1");
	T_STREQ(a.ids, sq_runs(q, &f, &b));
	f = (rbk_store_run_filter){.actor = "alice@h1"};
	T_STREQ(pg_runs(s, &f, &a), "1");
	f = (rbk_store_run_filter){.active_only = 1};
	T_STREQ(pg_runs(s, &f, &a), "5,4,2");
	T_STREQ(a.ids, sq_runs(q, &f, &b));
	f = (rbk_store_run_filter){.top_level_only = 1};
	T_STREQ(pg_runs(s, &f, &a), "5,4,3,1");
	f = (rbk_store_run_filter){.scheduled_only = 1};
	T_STREQ(pg_runs(s, &f, &a), "3");
	T_STREQ(a.ids, sq_runs(q, &f, &b));
	f = (rbk_store_run_filter){.limit = 2};
	T_STREQ(pg_runs(s, &f, &a), "5,4");
	f = (rbk_store_run_filter){.since = created[3]};
	T_STREQ(pg_runs(s, &f, &a), "5,4,3");
	f = (rbk_store_run_filter){.until = created[3]};
	T_STREQ(pg_runs(s, &f, &a), "2,1");
	f = (rbk_store_run_filter){.since = created[2], .until = created[5], .runbook = "backup", .limit = 1};
	T_STREQ(pg_runs(s, &f, &a), "4");
	f = (rbk_store_run_filter){.actor = "alice", .active_only = 1, .top_level_only = 1};
	T_STREQ(pg_runs(s, &f, &a), "5");
	T_STREQ(a.ids, sq_runs(q, &f, &b));
	/* A day-only bound compares as text, as on SQLite. */
	f = (rbk_store_run_filter){.since = "2000-01-01"};
	T_STREQ(pg_runs(s, &f, &a), "5,4,3,2,1");
	/* A callback stops the walk: the call still succeeds. */
	memset(&a, 0, sizeof a);
	a.stop_after = 2;
	T_CHECK(rbk_pgstore_runs(s, NULL, collect_run, &a, &e) == 0);
	T_STREQ(a.ids, "5,4");
out:
	rbk_pgstore_close(s);
	if (q)
		sqlite_done(q);
	rbk_free(url);
}

/* The server ends the session: calls fail with a clear error, no crash. */
static void test_connection_lost(void)
{
	char *url0 = store_url("lost");
	char app[64];
	snprintf(app, sizeof app, "rbk-lost-%d", (int)getpid());
	char *url = rbk_xasprintf("%s&application_name=%s", url0, app);
	rbk_pgstore *s = open_ok(url);
	T_CHECK(s != NULL);
	if (!s)
		goto out;
	rbk_err e = {0};
	int64_t run = new_run(s, "deploy", "op@h");
	T_CHECK(run == 1);
	T_CHECK(adm_int("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '%s'",
			app) == 1);
	sleep_ms(100);
	char *v = NULL;
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_meta_get(s, "x", &v, &e) < 0 && e.code == RBK_ERR_STORE);
	T_CHECK(strstr(e.msg, "connection lost") != NULL);
	printf("# %s\n", e.msg);
	memset(&e, 0, sizeof e);
	T_CHECK(rbk_pgstore_append(s, run, "op@h", "x", NULL, false, NULL, &e) < 0 && e.code == RBK_ERR_STORE);
	rbk_pgstore_close(s);
out:
	rbk_free(url);
	rbk_free(url0);
}

/* The same calls on both backends give the same history: every event's
 * seq, run, actor, kind and data, and a chain that verifies on each. */
static void test_same_history_as_sqlite(void)
{
	char *url = store_url("same");
	rbk_pgstore *s = open_ok(url);
	rbk_store *q = sqlite_new();
	T_CHECK(s != NULL && q != NULL);
	if (!s || !q)
		goto out;
	rbk_err e = {0};
	rbk_store_run_spec spec = spec_of("deploy", "op@h");
	int64_t a = 0, b = 0;
	T_CHECK(rbk_pgstore_run_create(s, &spec, &a, &e) == 0 && rbk_store_run_create(q, &spec, &b, &e) == 0 && a == b);
	spec.parent_run = a;
	spec.parent_state = "sub";
	T_CHECK(rbk_pgstore_run_create(s, &spec, &a, &e) == 0 && rbk_store_run_create(q, &spec, &b, &e) == 0 && a == b);
	const char *kinds[] = {"state_entered", "step_started", "step_succeeded", "vars_set", "run_finished"};
	for (int i = 0; i < 40; i++) {
		char data[96];
		snprintf(data, sizeof data, "{\"state\":\"s%d\",\"n\":%d,\"ok\":%s,\"u\":\"\\u00e9\"}", i % 7, i,
			 i % 2 ? "true" : "false");
		int64_t ps = 0, qs = 0;
		T_CHECK(rbk_pgstore_append(s, 1 + i % 2, "op@h", kinds[i % 5], data, false, &ps, &e) == 0);
		T_CHECK(rbk_store_append(q, 1 + i % 2, "op@h", kinds[i % 5], data, &qs, &e) == 0);
		T_CHECK(ps == qs);
	}
	ev_list *pl = ev_list_new(), *ql = ev_list_new();
	T_CHECK(rbk_pgstore_events(s, 0, collect, pl, &e) == 0 && rbk_store_events(q, 0, collect, ql, &e) == 0);
	T_CHECK(pl->n == 42 && ql->n == 42);
	int same = 0;
	for (int i = 0; i < pl->n && i < ql->n; i++)
		same += pl->v[i].seq == ql->v[i].seq && pl->v[i].run_id == ql->v[i].run_id &&
			strcmp(pl->v[i].actor, ql->v[i].actor) == 0 && strcmp(pl->v[i].kind, ql->v[i].kind) == 0 &&
			strcmp(pl->v[i].data, ql->v[i].data) == 0 && strlen(pl->v[i].at) == strlen(ql->v[i].at);
	T_CHECK(same == 42);
	ev_list_del(pl);
	ev_list_del(ql);
	int64_t pc = 0, qc = 0, pb = -1, qb = -1;
	T_CHECK(rbk_pgstore_verify(s, &pc, &pb, NULL, &e) == 0 && rbk_store_verify(q, &qc, &qb, NULL, &e) == 0);
	T_CHECK(pc == 42 && qc == 42 && pb == 0 && qb == 0);
out:
	rbk_pgstore_close(s);
	if (q)
		sqlite_done(q);
	rbk_free(url);
}

int main(void)
{
	base_url = getenv("RBK_TEST_PG");
	if (!base_url || !*base_url) {
		printf("FAIL pgstore: RBK_TEST_PG not set (eval \"$(tests/pg/cluster.sh)\" starts a server)\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	adm = connect_as(base_url, "rbk-test-admin");
	if (!adm) {
		printf("FAIL pgstore: cannot connect to RBK_TEST_PG\n");
		return 1;
	}
	PQclear(PQexec(adm, "SET client_min_messages = warning"));
	T_RUN(test_open_creates_schema);
	T_RUN(test_concurrent_first_open);
	T_RUN(test_open_errors);
	T_RUN(test_runs_round_trip);
	T_RUN(test_sources);
	T_RUN(test_events_and_chain);
	T_RUN(test_concurrent_appends);
	T_RUN(test_steps);
	T_RUN(test_locks);
	T_RUN(test_fires);
	T_RUN(test_meta);
	T_RUN(test_transactions);
	T_RUN(test_verify_catches_tampering);
	T_RUN(test_runs_filters);
	T_RUN(test_connection_lost);
	T_RUN(test_same_history_as_sqlite);
	for (int i = 0; i < nschemas; i++) {
		adm_exec(NULL, "DROP SCHEMA IF EXISTS %s CASCADE", schemas[i]);
		rbk_free(schemas[i]);
	}
	PQfinish(adm);
	return T_DONE();
}
