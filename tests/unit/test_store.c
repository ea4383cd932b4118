/* Unit tests for store (the durable event log) and hash.
 *
 * Each test works in its own mkdtemp directory under /tmp, removed after.
 * Tampering goes through the sqlite3 C API directly on the file, as an
 * attacker with write access to rbk.db would. */
#include "base/hash.h"
#include "base/mem.h"
#include "store/store.h"
#include "t.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

static char tmp_dir[256];

static const char *tmp_new(void)
{
	snprintf(tmp_dir, sizeof tmp_dir, "/tmp/rbk-test-store-XXXXXX");
	if (!mkdtemp(tmp_dir)) {
		perror("mkdtemp");
		exit(2);
	}
	return tmp_dir;
}

static void tmp_done(void)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmp_dir);
}

static char *path_in(const char *dir, const char *name)
{
	return rbk_xasprintf("%s/%s", dir, name);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	rbk_buf b = {0};
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		rbk_buf_add(&b, chunk, n);
	fclose(f);
	if (len)
		*len = b.len;
	return rbk_buf_take(&b);
}

static rbk_store *open_ok(const char *home)
{
	rbk_store *s = NULL;
	rbk_err e = {0};
	if (rbk_store_open(&s, home, &e) < 0)
		printf("# unexpected open error: %s\n", e.msg);
	return s;
}

static int64_t new_run(rbk_store *s, const char *runbook, const char *source)
{
	rbk_store_run_spec spec = {
		.runbook = runbook,
		.actor = "op@host",
		.params_json = "{\"env\":\"prod\",\"token\":\"***\"}",
		.source = source,
		.source_len = strlen(source),
		.provenance_json = "{\"commit\":\"abc123\",\"dirty\":false}",
	};
	int64_t id = 0;
	rbk_err e = {0};
	if (rbk_store_run_create(s, &spec, &id, &e) < 0)
		printf("# unexpected run_create error: %s\n", e.msg);
	return id;
}

static int64_t append(rbk_store *s, int64_t run, const char *kind, const char *data)
{
	int64_t seq = 0;
	rbk_err e = {0};
	if (rbk_store_append(s, run, "op@host", kind, data, &seq, &e) < 0)
		printf("# unexpected append error: %s\n", e.msg);
	return seq;
}

/* Raw SQL on the store file, as a tamperer would; loud unless it is
 * expected to fail. */
static int raw_exec_q(const char *home, const char *sql, int quiet)
{
	char *path = path_in(home, "rbk.db");
	sqlite3 *db = NULL;
	int rc = sqlite3_open(path, &db);
	char *msg = NULL;
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK && !quiet)
		printf("# raw sql failed (%s): %s\n", sql, msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	sqlite3_close(db);
	rbk_free(path);
	return rc;
}

static int raw_exec(const char *home, const char *sql) { return raw_exec_q(home, sql, 0); }

static int64_t raw_int(const char *home, const char *sql)
{
	char *path = path_in(home, "rbk.db");
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_open(path, &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	rbk_free(path);
	return v;
}

/* The chain hash as documented in store.h and schemas/store.sql, computed
 * here independently of store.c. */
static void doc_hash(const char *prev, int64_t seq, int64_t run, const char *at, const char *actor,
		     const char *kind, const char *data, char out[65])
{
	char *canon = rbk_xasprintf("%s%" PRId64 "\n%" PRId64 "\n%s\n%s\n%s\n%s", prev, seq, run,
				    at, actor, kind, data);
	rbk_hash_sha256_hex(canon, strlen(canon), out);
	rbk_free(canon);
}

/* Recompute event seq's hash from its stored columns (after a tamperer
 * changed them), as a tamperer covering their tracks would. */
static void raw_rehash(const char *home, int64_t seq)
{
	char *path = path_in(home, "rbk.db");
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	sqlite3_open(path, &db);
	sqlite3_prepare_v2(db,
			   "SELECT prev_hash, seq, run_id, at, actor, kind, data FROM events "
			   "WHERE seq = ?1",
			   -1, &st, NULL);
	sqlite3_bind_int64(st, 1, seq);
	char hash[65] = "";
	if (sqlite3_step(st) == SQLITE_ROW)
		doc_hash((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
			 sqlite3_column_int64(st, 2), (const char *)sqlite3_column_text(st, 3),
			 (const char *)sqlite3_column_text(st, 4),
			 (const char *)sqlite3_column_text(st, 5),
			 (const char *)sqlite3_column_text(st, 6), hash);
	sqlite3_finalize(st);
	sqlite3_close(db);
	rbk_free(path);
	char *sql = rbk_xasprintf("UPDATE events SET hash = '%s' WHERE seq = %" PRId64, hash, seq);
	raw_exec(home, sql);
	rbk_free(sql);
}

typedef struct {
	int64_t n, last_seq, bad_order;
	char last_hash[65];
	int chain_ok;
} walk;

static int walk_fn(void *ctx, const rbk_store_event *ev)
{
	walk *w = ctx;
	if (ev->seq <= w->last_seq)
		w->bad_order++;
	char h[65];
	doc_hash(ev->prev_hash, ev->seq, ev->run_id, ev->at, ev->actor, ev->kind, ev->data, h);
	if (strcmp(h, ev->hash) != 0)
		w->chain_ok = 0;
	/* Consecutive events link up. */
	if (w->n > 0 && ev->seq == w->last_seq + 1 && strcmp(ev->prev_hash, w->last_hash) != 0)
		w->chain_ok = 0;
	w->last_seq = ev->seq;
	snprintf(w->last_hash, sizeof w->last_hash, "%s", ev->hash);
	w->n++;
	return 0;
}

static int64_t count_events(rbk_store *s, int64_t run)
{
	walk w = {.chain_ok = 1};
	rbk_err e = {0};
	if (rbk_store_events(s, run, walk_fn, &w, &e) < 0)
		printf("# events error: %s\n", e.msg);
	return w.n;
}

/* Verify, returning the bad seq (0 = intact); why into whybuf. */
static int64_t verify(rbk_store *s, int64_t *count, char *whybuf, size_t n)
{
	int64_t c = 0, bad = -1;
	char *why = NULL;
	rbk_err e = {0};
	if (rbk_store_verify(s, &c, &bad, &why, &e) < 0)
		printf("# verify error: %s\n", e.msg);
	if (count)
		*count = c;
	if (whybuf)
		snprintf(whybuf, n, "%s", why ? why : "");
	rbk_free(why);
	return bad;
}

/* ---- a disk that fills up: an SQLite VFS over the default one whose
 * writes fail with SQLITE_FULL once a byte budget is spent ---- */

static sqlite3_vfs *real_vfs, full_vfs;
static long long full_budget = -1; /* bytes still writable; -1 = no limit */

typedef struct {
	sqlite3_file base;
	sqlite3_file *real; /* lives right after this struct */
} full_file;

#define REAL(f) (((full_file *)(void *)(f))->real)

static int ff_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int ff_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}
static int ff_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	if (full_budget >= 0) {
		if (n > full_budget) {
			full_budget = 0;
			return SQLITE_FULL;
		}
		full_budget -= n;
	}
	return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int ff_sync(sqlite3_file *f, int flags) { return REAL(f)->pMethods->xSync(REAL(f), flags); }
static int ff_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int ff_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int ff_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int ff_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int ff_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int ff_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int ff_device(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int ff_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, pp);
}
static int ff_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void ff_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int ff_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int ff_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}
static int ff_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods full_io = {
	3,	     ff_close,	     ff_read,	   ff_write,   ff_truncate, ff_sync,   ff_size,
	ff_lock,     ff_unlock,	     ff_reserved,  ff_control, ff_sector,   ff_device, ff_shm_map,
	ff_shm_lock, ff_shm_barrier, ff_shm_unmap, ff_fetch,   ff_unfetch,
};

static int ff_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	(void)vfs;
	full_file *ff = (full_file *)(void *)f;
	ff->real = (sqlite3_file *)(void *)(ff + 1);
	int rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out);
	ff->base.pMethods = ff->real->pMethods ? &full_io : NULL;
	return rc;
}

/* Make the filling disk SQLite's default for the store opened next. */
static void full_vfs_install(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	full_vfs = *real_vfs;
	full_vfs.zName = "rbk-test-full";
	full_vfs.szOsFile = (int)sizeof(full_file) + real_vfs->szOsFile;
	full_vfs.xOpen = ff_open;
	full_vfs.pNext = NULL;
	sqlite3_vfs_register(&full_vfs, 1);
}

static void full_vfs_remove(void)
{
	sqlite3_vfs_unregister(&full_vfs);
	full_budget = -1;
}

/* ---- hash ---- */

static void test_hash_vectors(void)
{
	char out[65];
	rbk_hash_sha256_hex("abc", 3, out);
	T_STREQ(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	rbk_hash_sha256_hex("", 0, out);
	T_STREQ(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

	/* Incremental in odd pieces equals one-shot. */
	char big[10000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)(i * 7 + 3);
	char one[65], inc[65];
	rbk_hash_sha256_hex(big, sizeof big, one);
	rbk_hash_sha256 *h = rbk_hash_sha256_init();
	size_t off = 0, step = 1;
	while (off < sizeof big) {
		size_t n = step < sizeof big - off ? step : sizeof big - off;
		rbk_hash_sha256_update(h, big + off, n);
		off += n;
		step = step * 3 + 1;
	}
	rbk_hash_sha256_final(h, inc);
	T_STREQ(inc, one);
	h = rbk_hash_sha256_init();
	rbk_hash_sha256_final(h, inc);
	T_STREQ(inc, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* ---- opening ---- */

static void test_open_creates_wal_store(void)
{
	const char *dir = tmp_new();
	char *home = path_in(dir, "a/b/home");
	rbk_store *s = open_ok(home);
	T_CHECK(s != NULL);
	if (!s)
		goto done;
	struct stat sb;
	T_CHECK(stat(home, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700);
	char *db = path_in(home, "rbk.db");
	T_STREQ(rbk_store_path(s), db);
	T_CHECK(stat(db, &sb) == 0 && S_ISREG(sb.st_mode));

	rbk_store_info info;
	rbk_err e = {0};
	T_CHECK(rbk_store_info_get(s, &info, &e) == 0);
	T_STREQ(info.journal_mode, "wal");
	T_CHECK(info.synchronous == 2); /* FULL */
	T_CHECK(info.foreign_keys == 1);
	T_CHECK(info.schema_version == rbk_store_schema_latest());
	rbk_store_close(s);

	/* WAL is persistent: file format bytes 18 and 19 are 2 in WAL mode. */
	size_t n;
	char *bytes = read_file(db, &n);
	T_CHECK(bytes && n >= 100 && memcmp(bytes, "SQLite format 3", 16) == 0);
	T_CHECK(bytes && bytes[18] == 2 && bytes[19] == 2);
	rbk_free(bytes);

	/* A trailing slash names the same store. */
	char *slash = rbk_xasprintf("%s/", home);
	s = open_ok(slash);
	T_CHECK(s && strcmp(rbk_store_path(s), db) == 0);
	rbk_store_close(s);

	/* The home must be a directory. */
	char *file = path_in(dir, "plain");
	FILE *f = fopen(file, "w");
	if (f)
		fclose(f);
	s = NULL;
	T_CHECK(rbk_store_open(&s, file, &e) < 0 && s == NULL);
	T_CHECK(strstr(e.msg, file) != NULL && strstr(e.msg, "not a directory") != NULL);
	rbk_free(file);
	rbk_free(slash);
	rbk_free(db);
done:
	rbk_free(home);
	tmp_done();
}

static void test_schema_and_migrations(void)
{
	/* schemas/store.sql is the migrations in order, byte for byte. */
	const char *root = getenv("RBK_ROOT");
	char *path = rbk_xasprintf("%s/schemas/store.sql", root ? root : ".");
	size_t n = 0;
	char *file = read_file(path, &n);
	if (!file)
		printf("# cannot read %s\n", path);
	rbk_buf all = {0};
	for (int v = 1; rbk_store_migration_sql(v); v++)
		rbk_buf_puts(&all, rbk_store_migration_sql(v));
	T_CHECK(file && all.s && n == all.len && memcmp(file, all.s, n) == 0);
	rbk_buf_free(&all);
	rbk_free(file);
	rbk_free(path);

	int latest = rbk_store_schema_latest();
	T_CHECK(latest >= 1);
	T_CHECK(rbk_store_migration_sql(0) == NULL);
	T_CHECK(rbk_store_migration_sql(latest + 1) == NULL);
	for (int v = 1; v <= latest; v++)
		T_CHECK(rbk_store_migration_sql(v) != NULL);

	const char *dir = tmp_new();
	rbk_store *s = open_ok(dir);
	rbk_store_close(s);
	T_CHECK(raw_int(dir, "PRAGMA user_version") == latest);
	T_CHECK(raw_int(dir, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
			     "('runs', 'sources', 'events', 'steps')") == 4);
	T_CHECK(raw_int(dir, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN "
			     "('runs_by_runbook', 'runs_by_status', 'runs_by_created', "
			     "'events_by_run')") == 4);

	/* Reopening applies nothing twice, and the events table refuses edits. */
	s = open_ok(dir);
	T_CHECK(s != NULL);
	int64_t run = new_run(s, "deploy", "name: deploy\n");
	rbk_store_close(s);
	T_CHECK(raw_int(dir, "PRAGMA user_version") == latest);
	T_CHECK(raw_int(dir, "SELECT count(*) FROM runs") == 1 && run == 1);
	T_CHECK(raw_exec_q(dir, "UPDATE events SET data = '{}' WHERE seq = 1", 1) != SQLITE_OK);
	T_CHECK(raw_exec_q(dir, "DELETE FROM events", 1) != SQLITE_OK);

	/* An older store (version 0: an empty database) is brought up to date. */
	tmp_done();
	dir = tmp_new();
	char *db = path_in(dir, "rbk.db");
	FILE *f = fopen(db, "w");
	if (f)
		fclose(f);
	s = open_ok(dir);
	T_CHECK(s != NULL);
	rbk_store_close(s);
	T_CHECK(raw_int(dir, "PRAGMA user_version") == latest);
	rbk_free(db);
	tmp_done();
}

static void test_newer_schema_refused(void)
{
	const char *dir = tmp_new();
	rbk_store *s = open_ok(dir);
	rbk_store_close(s);
	raw_exec(dir, "PRAGMA user_version = 99");
	char *db = path_in(dir, "rbk.db");
	size_t n0, n1;
	char *before = read_file(db, &n0);

	rbk_err e = {0};
	s = (rbk_store *)1;
	T_CHECK(rbk_store_open(&s, dir, &e) < 0);
	T_CHECK(s == NULL);
	char want[64];
	snprintf(want, sizeof want, "store schema version 99 is newer than this rbk (%d)",
		 rbk_store_schema_latest());
	T_CHECK(strstr(e.msg, want) != NULL);
	T_CHECK(strstr(e.msg, db) != NULL);
	char *after = read_file(db, &n1);
	T_CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
	T_CHECK(raw_int(dir, "PRAGMA user_version") == 99);
	rbk_free(before);
	rbk_free(after);
	rbk_free(db);
	tmp_done();
}

static void garbage_case(const char *content, size_t len, const char *expect)
{
	const char *dir = tmp_new();
	char *db = path_in(dir, "rbk.db");
	FILE *f = fopen(db, "wb");
	if (f) {
		fwrite(content, 1, len, f);
		fclose(f);
	}
	rbk_store *s = NULL;
	rbk_err e = {0};
	T_CHECK(rbk_store_open(&s, dir, &e) < 0 && s == NULL);
	T_CHECK(strstr(e.msg, db) != NULL);
	if (!strstr(e.msg, expect))
		printf("# message: %s\n", e.msg);
	T_CHECK(strstr(e.msg, expect) != NULL);
	size_t n;
	char *after = read_file(db, &n);
	T_CHECK(after && n == len && memcmp(after, content, len) == 0);
	rbk_free(after);
	/* Nothing was created beside it either. */
	char *wal = path_in(dir, "rbk.db-wal");
	struct stat sb;
	T_CHECK(stat(wal, &sb) < 0 && errno == ENOENT);
	rbk_free(wal);
	rbk_free(db);
	tmp_done();
}

static void test_garbage_file_refused(void)
{
	const char text[] = "this is my shopping list, not a database\n";
	garbage_case(text, sizeof text - 1, "not an sqlite database");
	/* A valid header over garbage: corrupt, refused, untouched. */
	static char corrupt[8192];
	memset(corrupt, 0xab, sizeof corrupt);
	memcpy(corrupt, "SQLite format 3", 16);
	garbage_case(corrupt, sizeof corrupt, "not an sqlite database");
	/* A short file. */
	garbage_case("SQL", 3, "not an sqlite database");
}

/* ---- runs and sources ---- */

static void test_run_ids_and_fields(void)
{
	const char *dir = tmp_new();
	rbk_store *s = open_ok(dir);
	T_CHECK(s != NULL);
	if (!s)
		goto done;
	T_CHECK(new_run(s, "deploy", "a") == 1);
	T_CHECK(new_run(s, "deploy", "a") == 2);

	rbk_store_run_spec spec = {
		.runbook = "db-restore",
		.actor = "scheduler",
		.dry_run = 1,
		.params_json = "{\"n\":3}",
		.source = "name: db-restore\n",
		.source_len = 17,
		.parent_run = 2,
		.parent_state = "restore",
		.lock_key = "db:main",
	};
	int64_t id = 0;
	rbk_err e = {0};
	T_CHECK(rbk_store_run_create(s, &spec, &id, &e) == 0 && id == 3);

	rbk_store_run r;
	T_CHECK(rbk_store_run_get(s, 3, &r, &e) == 0);
	T_CHECK(r.id == 3);
	T_STREQ(r.runbook, "db-restore");
	T_STREQ(r.status, "running");
	T_STREQ(r.actor, "scheduler");
	T_CHECK(r.dry_run == 1);
	T_STREQ(r.params_json, "{\"n\":3}");
	T_STREQ(r.provenance_json, "{}");
	T_CHECK(r.parent_run == 2);
	T_STREQ(r.parent_state, "restore");
	T_STREQ(r.lock_key, "db:main");
	T_CHECK(r.current_state == NULL);
	T_CHECK(r.owner_pid == (int64_t)getpid());
	char sha[65];
	rbk_hash_sha256_hex("name: db-restore\n", 17, sha);
	T_STREQ(r.source_sha256, sha);
	/* 2026-11-21T11:44:45.123Z */
	T_CHECK(r.created_at && strlen(r.created_at) == 24 && r.created_at[10] == 'T' &&
		r.created_at[19] == '.' && r.created_at[23] == 'Z');
	rbk_store_run_free(&r);

	T_CHECK(rbk_store_run_set(s, 3, "needs_attention", "restore", &e) == 0);
	T_CHECK(rbk_store_run_set(s, 3, NULL, NULL, &e) == 0);
	T_CHECK(rbk_store_run_get(s, 3, &r, &e) == 0);
	T_STREQ(r.status, "needs_attention");
	T_STREQ(r.current_state, "restore");
	rbk_store_run_free(&r);
	T_CHECK(rbk_store_run_get(s, 1, &r, &e) == 0);
	T_CHECK(r.parent_run == 0 && r.parent_state == NULL && r.lock_key == NULL &&
		r.dry_run == 0);
	rbk_store_run_free(&r);

	/* Refusals, each with a clear message. */
	T_CHECK(rbk_store_run_set(s, 3, "done", NULL, &e) < 0 &&
		strstr(e.msg, "unknown run status 'done'"));
	T_CHECK(rbk_store_run_set(s, 42, "failed", NULL, &e) < 0 &&
		strstr(e.msg, "run 42 does not exist") && e.code == RBK_ERR_NONAME);
	T_CHECK(rbk_store_run_get(s, 42, &r, &e) < 0 && strstr(e.msg, "run 42 does not exist") &&
		e.code == RBK_ERR_NONAME);
	spec.params_json = "{not json";
	T_CHECK(rbk_store_run_create(s, &spec, &id, &e) < 0 &&
		strstr(e.msg, "params is not JSON") && id == 0);
	spec.params_json = NULL;
	spec.parent_run = 99;
	T_CHECK(rbk_store_run_create(s, &spec, &id, &e) < 0 &&
		strstr(e.msg, "parent run 99 does not exist"));
	spec.parent_run = 0;
	spec.actor = "two\nlines";
	T_CHECK(rbk_store_run_create(s, &spec, &id, &e) < 0 && strstr(e.msg, "newline"));

	/* Failed creations leave no gap. */
	T_CHECK(new_run(s, "deploy", "a") == 4);
	rbk_store_close(s);
	T_CHECK(raw_int(dir, "SELECT count(*) FROM runs") == 4);
	T_CHECK(raw_int(dir, "SELECT count(*) FROM events WHERE kind = 'run_created'") == 4);
done:
	tmp_done();
}

static void test_source_pinned_once(void)
{
	const char *dir = tmp_new();
	rbk_store *s = open_ok(dir);
	T_CHECK(s != NULL);
	if (!s)
		goto done;
	/* Binary-safe: NULs, high bytes, no trailing newline. */
	char bin[300];
	for (size_t i = 0; i < sizeof bin; i++)
		bin[i] = (char)(255 - i % 256);
	bin[10] = '\0';
	rbk_store_run_spec spec = {
		.runbook = "r", .actor = "a@h", .source = bin, .source_len = sizeof bin};
	int64_t a = 0, b = 0, c = 0, d = 0;
	rbk_err e = {0};
	T_CHECK(rbk_store_run_create(s, &spec, &a, &e) == 0);
	T_CHECK(rbk_store_run_create(s, &spec, &b, &e) == 0);
	spec.source = "other";
	spec.source_len = 5;
	T_CHECK(rbk_store_run_create(s, &spec, &c, &e) == 0);
	spec.source = NULL;
	spec.source_len = 0;
	T_CHECK(rbk_store_run_create(s, &spec, &d, &e) == 0);

	rbk_store_run ra, rb, rc;
	T_CHECK(rbk_store_run_get(s, a, &ra, &e) == 0);
	T_CHECK(rbk_store_run_get(s, b, &rb, &e) == 0);
	T_CHECK(rbk_store_run_get(s, c, &rc, &e) == 0);
	T_STREQ(ra.source_sha256, rb.source_sha256);
	T_CHECK(strcmp(ra.source_sha256, rc.source_sha256) != 0);
	char sha[65];
	rbk_hash_sha256_hex(bin, sizeof bin, sha);
	T_STREQ(ra.source_sha256, sha);

	char *bytes = NULL;
	size_t len = 0;
	T_CHECK(rbk_store_source(s, ra.source_sha256, &bytes, &len, &e) == 0);
	T_CHECK(bytes && len == sizeof bin && memcmp(bytes, bin, len) == 0 && bytes[len] == '\0');
	rbk_free(bytes);
	T_CHECK(rbk_store_source(s, rc.source_sha256, &bytes, &len, &e) == 0);
	T_CHECK(len == 5 && strcmp(bytes, "other") == 0);
	rbk_free(bytes);
	rbk_hash_sha256_hex("", 0, sha);
	T_CHECK(rbk_store_source(s, sha, &bytes, &len, &e) == 0 && len == 0 && bytes[0] == '\0');
	rbk_free(bytes);
	T_CHECK(rbk_store_source(s, "00", &bytes, &len, &e) < 0 && bytes == NULL &&
		e.code == RBK_ERR_NONAME && strstr(e.msg, "no source with sha256 00"));
	rbk_store_run_free(&ra);
	rbk_store_run_free(&rb);
	rbk_store_run_free(&rc);
	rbk_store_close(s);
	T_CHECK(raw_int(dir, "SELECT count(*) FROM sources") == 3);
done:
	tmp_done();
}

/* ---- events and the chain ---- */

static void test_events_in_order_and_chained(void)
{
	const char *dir = tmp_new();
	rbk_store *s = open_ok(dir);
	T_CHECK(s != NULL);
	if (!s)
		goto done;
	int64_t r1 = new_run(s, "deploy", "a"), r2 = new_run(s, "backup", "b");
	T_CHECK(r1 == 1 && r2 == 2);
	/* seq 1 and 2 are the run_created events. */
	T_CHECK(append(s, r1, "step_started", "{\"state\":\"build\"}") == 3);
	T_CHECK(append(s, r2, "step_started", "{\"state\":\"dump\"}") == 4);
	T_CHECK(append(s, r1, "step_ended", "{\"state\":\"build\",\"ok\":true}") == 5);
	T_CHECK(append(s, r1, "note", NULL) == 6);
	T_CHECK(append(s, r1, "unicode", "{\"msg\":\"d\\u00e9j\\u00e0 vu \xe2\x9c\x93\"}") == 7);

	walk w = {.chain_ok = 1};
	rbk_err e = {0};
	T_CHECK(rbk_store_events(s, 0, walk_fn, &w, &e) == 0);
	T_CHECK(w.n == 7 && w.bad_order == 0 && w.chain_ok);
	T_CHECK(count_events(s, r1) == 5);
	T_CHECK(count_events(s, r2) == 2);
	T_CHECK(count_events(s, 77) == 0);

	/* The first event chains from 64 zeros, per the documented formula. */
	char h[65];
	char zeros[65];
	memset(zeros, '0', 64);
	zeros[64] = '\0';
	char *at = NULL, *data = NULL, *hash = NULL;
	{
		char *path = path_in(dir, "rbk.db");
		sqlite3 *db;
		sqlite3_stmt *st;
		sqlite3_open(path, &db);
		sqlite3_prepare_v2(db, "SELECT at, data, hash, prev_hash FROM events WHERE seq = 1",
				   -1, &st, NULL);
		if (sqlite3_step(st) == SQLITE_ROW) {
			at = rbk_xstrdup((const char *)sqlite3_column_text(st, 0));
			data = rbk_xstrdup((const char *)sqlite3_column_text(st, 1));
			hash = rbk_xstrdup((const char *)sqlite3_column_text(st, 2));
			T_STREQ((const char *)sqlite3_column_text(st, 3), zeros);
		}
		sqlite3_finalize(st);
		sqlite3_close(db);
		rbk_free(path);
	}
	T_CHECK(at && data && hash);
	if (at && data && hash) {
		doc_hash(zeros, 1, 1, at, "op@host", "run_created", data, h);
		T_STREQ(h, hash);
		T_CHECK(strstr(data, "\"runbook\":\"deploy\"") && strstr(data, "\"params\":{"));
		T_CHECK(strlen(at) == 24 && at[23] == 'Z');
	}
	rbk_free(at);
	rbk_free(data);
	rbk_free(hash);

	int64_t count = 0;
	T_CHECK(verify(s, &count, NULL, 0) == 0 && count == 7);

	/* Refusals. */
	int64_t seq = 0;
	T_CHECK(rbk_store_append(s, r1, "op@host", "bad\nkind", "{}", &seq, &e) < 0 &&
		strstr(e.msg, "newline"));
	T_CHECK(rbk_store_append(s, r1, "", "k", "{}", &seq, &e) < 0 &&
		strstr(e.msg, "empty actor"));
	T_CHECK(rbk_store_append(s, r1, "op@host", "k", "{\"a\":", &seq, &e) < 0 &&
		strstr(e.msg, "event data is not JSON"));
	T_CHECK(rbk_store_append(s, 99, "op@host", "k", "{}", &seq, &e) < 0 &&
		strstr(e.msg, "run 99 does not exist") && strstr(e.msg, rbk_store_path(s)));
	/* None of them left a trace or a gap. */
	T_CHECK(append(s, r1, "after", "{}") == 8);
	T_CHECK(verify(s, &count, NULL, 0) == 0 && count == 8);
	rbk_store_close(s);
done:
	tmp_done();
}

static int stop_at_3(void *ctx, const rbk_store_event *ev)
{
	int *n = ctx;
	++*n;
	return ev->seq == 3 ? 7 : 0;
}

static void test_events_walk_stops(void)
{
	const char *dir = tmp_new();
	rbk_store *s = open_ok(dir);
	int64_t r = new_run(s, "x", "x");
	for (int i = 0; i < 5; i++)
		append(s, r, "tick", "{}");
	int n = 0;
	rbk_err e = {0};
	T_CHECK(rbk_store_events(s, 0, stop_at_3, &n, &e) == 7 && n == 3);
	rbk_store_close(s);
	tmp_done();
}

/* A store with 3 runs and 40 events, closed, ready to tamper with. */
static void build_chain(const char *home)
{
	rbk_store *s = open_ok(home);
	int64_t runs[3];
	for (int i = 0; i < 3; i++)
		runs[i] = new_run(s, "deploy", i == 1 ? "v2" : "v1");
	for (int i = 4; i <= 40; i++) {
		char data[64];
		snprintf(data, sizeof data, "{\"i\":%d,\"state\":\"s%d\"}", i, i % 5);
		append(s, runs[i % 3], i % 2 ? "step_started" : "step_ended", data);
	}
	rbk_store_close(s);
}

typedef struct {
	const char *name;
	const char *sql; /* run after dropping the append-only triggers */
	int64_t rehash;	 /* recompute this event's hash afterwards, 0 = none */
	int64_t want_bad;
	const char *want_why;
	int64_t want_count;
} tamper;

static void test_verify_detects_tampering(void)
{
	const tamper cases[] = {
		{"data byte",
		 "UPDATE events SET data = replace(data, '\"i\":10', '\"i\":11') WHERE seq = 10", 0,
		 10, "event 10 was modified", 9},
		{"actor", "UPDATE events SET actor = 'op@hosT' WHERE seq = 10", 0, 10,
		 "event 10 was modified", 9},
		{"kind", "UPDATE events SET kind = 'step_endeD' WHERE seq = 10", 0, 10,
		 "event 10 was modified", 9},
		{"at", "UPDATE events SET at = '1999' || substr(at, 5) WHERE seq = 10", 0, 10,
		 "event 10 was modified", 9},
		{"run_id", "UPDATE events SET run_id = 3 WHERE seq = 10", 0, 10,
		 "event 10 was modified", 9},
		{"hash byte", "UPDATE events SET hash = substr(hash, 1, 63) || 'x' WHERE seq = 10",
		 0, 10, "event 10 was modified", 9},
		{"first event", "UPDATE events SET data = '{}' WHERE seq = 1", 0, 1,
		 "event 1 was modified", 0},
		{"deleted", "DELETE FROM events WHERE seq = 10", 0, 10, "event 10 was removed", 9},
		{"deleted range", "DELETE FROM events WHERE seq BETWEEN 10 AND 12", 0, 10,
		 "events 10 to 12 were removed", 9},
		{"deleted first", "DELETE FROM events WHERE seq = 1", 0, 1, "event 1 was removed",
		 0},
		{"deleted run", "DELETE FROM events WHERE run_id = 2", 0, 2, "event 2 was removed",
		 1},
		/* Inserted naively: later events renumbered, a made-up hash. */
		{"inserted",
		 "UPDATE events SET seq = seq + 1000 WHERE seq >= 10;"
		 "UPDATE events SET seq = seq - 999 WHERE seq >= 1000;"
		 "INSERT INTO events SELECT 10, run_id, at, actor, 'forged', data, hash, hash"
		 " FROM events WHERE seq = 9",
		 0, 10, "event 10 was modified", 9},
		/* Inserted with a correct hash of its own: the next event betrays it. */
		{"inserted and hashed",
		 "UPDATE events SET seq = seq + 1000 WHERE seq >= 10;"
		 "UPDATE events SET seq = seq - 999 WHERE seq >= 1000;"
		 "INSERT INTO events SELECT 10, run_id, at, actor, 'forged', data, hash, ''"
		 " FROM events WHERE seq = 9",
		 10, 11, "event 11: its prev_hash is not the hash of event 10", 10},
		/* Two events swapped (their contents trade places). */
		{"swapped",
		 "UPDATE events SET seq = -1 WHERE seq = 10;"
		 "UPDATE events SET seq = 10 WHERE seq = 11;"
		 "UPDATE events SET seq = 11 WHERE seq = -1",
		 0, 10, "event 10: its prev_hash is not the hash of event 9", 9},
		/* Modified and re-hashed: event 10 checks out alone, 11 does not. */
		{"re-hashed",
		 "UPDATE events SET data = '{\"i\":10,\"state\":\"evil\"}' WHERE seq = 10", 10, 11,
		 "event 10 was modified and re-hashed", 10},
		{"prev_hash", "UPDATE events SET prev_hash = hash WHERE seq = 20", 0, 20,
		 "event 20: its prev_hash is not the hash of event 19", 19},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const tamper *c = &cases[i];
		const char *dir = tmp_new();
		build_chain(dir);
		raw_exec(dir, "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete");
		raw_exec(dir, c->sql);
		if (c->rehash)
			raw_rehash(dir, c->rehash);
		rbk_store *s = open_ok(dir);
		int64_t count = -1;
		char why[512];
		int64_t bad = verify(s, &count, why, sizeof why);
		if (bad != c->want_bad || !strstr(why, c->want_why) || count != c->want_count)
			printf("# %s: bad %" PRId64 " count %" PRId64 ": %s\n", c->name, bad, count,
			       why);
		T_CHECK(bad == c->want_bad);
		T_CHECK(strstr(why, c->want_why) != NULL);
		T_CHECK(count == c->want_count);
		rbk_store_close(s);
		tmp_done();
	}
}

/* What the chain alone cannot see: removing the last events, or re-hashing
 * the very last one, leaves a valid (shorter) chain. Only a seal of the
 * chain head kept outside the store (rbk audit seal, later) catches that. */
static void test_verify_truncation_needs_a_seal(void)
{
	const char *dir = tmp_new();
	build_chain(dir);
	raw_exec(dir, "DROP TRIGGER events_no_delete; DELETE FROM events WHERE seq > 35");
	rbk_store *s = open_ok(dir);
	int64_t count = 0;
	T_CHECK(verify(s, &count, NULL, 0) == 0 && count == 35);
	rbk_store_close(s);
	raw_exec(dir,
		 "DROP TRIGGER events_no_update; UPDATE events SET data = '{}' WHERE seq = 35");
	raw_rehash(dir, 35);
	s = open_ok(dir);
	T_CHECK(verify(s, &count, NULL, 0) == 0 && count == 35);
	rbk_store_close(s);
	tmp_done();
}

static void test_verify_no_false_positives(void)
{
	const char *dir = tmp_new();
	rbk_store *s = open_ok(dir);
	int64_t count = -1;
	char why[256];
	/* Empty store. */
	T_CHECK(verify(s, &count, why, sizeof why) == 0 && count == 0 && why[0] == '\0');
	int64_t r = 0;
	for (int i = 1; i <= 300; i++) {
		if (i % 50 == 1)
			r = new_run(s, "many", i % 100 ? "a" : "b");
		char data[80];
		snprintf(data, sizeof data, "{\"i\":%d,\"s\":\"%s\"}", i, i % 7 ? "x\\ny" : "");
		append(s, r, "tick", data);
		if (i % 37 == 0)
			T_CHECK(verify(s, &count, why, sizeof why) == 0);
	}
	T_CHECK(verify(s, &count, why, sizeof why) == 0 && count == 306);
	rbk_store_close(s);
	tmp_done();
}

/* ---- transactions ---- */

static void test_batch_commit_and_rollback(void)
{
	const char *dir = tmp_new();
	rbk_store *s = open_ok(dir);
	rbk_err e = {0};
	T_CHECK(rbk_store_commit(s, &e) < 0 && strstr(e.msg, "no transaction is open"));

	/* Rolled back: no run, no event, no source, and the id is reused. */
	T_CHECK(rbk_store_begin(s, &e) == 0);
	T_CHECK(rbk_store_begin(s, &e) < 0 && strstr(e.msg, "already open"));
	int64_t r = new_run(s, "deploy", "rolled back source");
	T_CHECK(r == 1);
	for (int i = 0; i < 5; i++)
		append(s, r, "tick", "{}");
	T_CHECK(rbk_store_step_record(s, r, "build", 1, "started", 2, 0, &e) == 0);
	rbk_store_rollback(s);
	T_CHECK(count_events(s, 0) == 0);
	rbk_store_run run;
	T_CHECK(rbk_store_run_get(s, 1, &run, &e) < 0);
	T_CHECK(raw_int(dir, "SELECT count(*) FROM sources") == 0);
	T_CHECK(raw_int(dir, "SELECT count(*) FROM steps") == 0);

	/* Committed batch, seen by another handle only after the commit. */
	rbk_store *other = open_ok(dir);
	T_CHECK(rbk_store_begin(s, &e) == 0);
	r = new_run(s, "deploy", "kept");
	T_CHECK(r == 1);
	append(s, r, "a", "{}");
	append(s, r, "b", "{}");
	T_CHECK(count_events(other, 0) == 0);
	T_CHECK(rbk_store_commit(s, &e) == 0);
	T_CHECK(count_events(other, 0) == 3);

	/* An error inside a batch rolls the whole batch back; the batch is
	 * then refused until the caller ends it. */
	T_CHECK(rbk_store_begin(s, &e) == 0);
	T_CHECK(append(s, r, "c", "{}") == 4);
	int64_t seq = 0;
	T_CHECK(rbk_store_append(s, 55, "op@host", "d", "{}", &seq, &e) < 0 &&
		strstr(e.msg, "run 55 does not exist"));
	T_CHECK(rbk_store_append(s, r, "op@host", "e", "{}", &seq, &e) < 0 &&
		strstr(e.msg, "rolled back after an earlier error"));
	T_CHECK(rbk_store_commit(s, &e) < 0 && strstr(e.msg, "rolled back"));
	rbk_store_rollback(s);
	T_CHECK(count_events(s, 0) == 3);
	/* A refusal that is not the database's keeps the batch. */
	T_CHECK(rbk_store_begin(s, &e) == 0);
	T_CHECK(append(s, r, "c", "{}") == 4);
	T_CHECK(rbk_store_append(s, r, "op@host", "k", "not json", &seq, &e) < 0);
	T_CHECK(append(s, r, "d", "{}") == 5);
	T_CHECK(rbk_store_commit(s, &e) == 0);
	T_CHECK(count_events(other, 0) == 5);
	int64_t count;
	T_CHECK(verify(other, &count, NULL, 0) == 0 && count == 5);

	/* Batches of two handles one after the other, and single appends
	 * between them: each goes on from where the chain is, not from the
	 * last event the handle itself appended. */
	T_CHECK(rbk_store_begin(s, &e) == 0);
	T_CHECK(append(s, r, "s1", "{}") == 6);
	T_CHECK(append(s, r, "s2", "{}") == 7);
	T_CHECK(rbk_store_commit(s, &e) == 0);
	T_CHECK(append(other, r, "o1", "{}") == 8);
	T_CHECK(rbk_store_begin(other, &e) == 0);
	T_CHECK(append(other, r, "o2", "{}") == 9);
	T_CHECK(rbk_store_commit(other, &e) == 0);
	T_CHECK(append(s, r, "s3", "{}") == 10);
	T_CHECK(rbk_store_begin(s, &e) == 0);
	rbk_val m = rbk_val_map();
	rbk_val_map_set(&m, "text", rbk_val_str("a \"quoted\"\nline"));
	T_CHECK(rbk_store_append_val(s, r, "op@host", "val", &m, &seq, &e) == 0 && seq == 11);
	rbk_val_free(&m);
	T_CHECK(rbk_store_commit(s, &e) == 0);
	T_CHECK(verify(other, &count, NULL, 0) == 0 && count == 11);
	T_CHECK(raw_int(dir, "SELECT count(*) FROM events WHERE seq = 11 AND data = '{\"text\":\"a \\\"quoted\\\"\\nline\"}'") == 1);

	/* Closing with a batch open discards it. */
	T_CHECK(rbk_store_begin(s, &e) == 0);
	append(s, r, "lost", "{}");
	rbk_store_close(s);
	T_CHECK(count_events(other, 0) == 11);
	rbk_store_close(other);
	tmp_done();
}

static int collect_step(void *ctx, const rbk_store_step *st)
{
	rbk_buf *b = ctx;
	rbk_buf_printf(b, "%s/%d/%s/%" PRId64 "/%" PRId64 "/%s;", st->state, st->attempt,
		       st->status, st->started_seq, st->ended_seq, st->idempotency_key);
	return 0;
}

static void test_steps_index(void)
{
	const char *dir = tmp_new();
	rbk_store *s = open_ok(dir);
	rbk_err e = {0};
	int64_t r = new_run(s, "deploy", "x");
	/* The barrier: the step_started event and its step row, one commit. */
	T_CHECK(rbk_store_begin(s, &e) == 0);
	int64_t started = append(s, r, "step_started", "{\"state\":\"build\",\"attempt\":1}");
	T_CHECK(rbk_store_step_record(s, r, "build", 1, "started", started, 0, &e) == 0);
	T_CHECK(rbk_store_commit(s, &e) == 0);
	int64_t ended = append(s, r, "step_ended", "{}");
	T_CHECK(rbk_store_step_record(s, r, "build", 1, "failed", 0, ended, &e) == 0);
	T_CHECK(rbk_store_step_record(s, r, "build", 2, "started", ended + 1, 0, &e) == 0);
	T_CHECK(rbk_store_step_record(s, r, "", 2, "started", 0, 0, &e) < 0);
	T_CHECK(rbk_store_step_record(s, 9, "x", 1, "started", 0, 0, &e) < 0 &&
		strstr(e.msg, "run 9 does not exist"));
	rbk_buf b = {0};
	T_CHECK(rbk_store_steps(s, r, collect_step, &b, &e) == 0);
	T_STREQ(b.s, "build/1/failed/2/3/1:build:1;build/2/started/4/0/1:build:2;");
	rbk_buf_free(&b);
	rbk_store_close(s);
	tmp_done();
}

/* ---- processes ---- */

enum { NPROC = 20, NAPPEND = 50 };

static void test_concurrent_writers(void)
{
	const char *dir = tmp_new();
	char *home = path_in(dir, "home");
	fflush(stdout);
	pid_t pids[NPROC];
	for (int p = 0; p < NPROC; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			/* Every child opens (and so may create and migrate) the
			 * store itself, all at once. */
			rbk_store *s = NULL;
			rbk_err e = {0};
			int ok = rbk_store_open(&s, home, &e) == 0;
			int64_t run = 0;
			if (ok) {
				rbk_store_run_spec spec = {.runbook = "conc",
							   .actor = "child",
							   .source = "same",
							   .source_len = 4};
				ok = rbk_store_run_create(s, &spec, &run, &e) == 0;
			}
			for (int i = 0; ok && i < NAPPEND; i++) {
				char data[64];
				snprintf(data, sizeof data, "{\"child\":%d,\"i\":%d}", p, i);
				ok = rbk_store_append(s, run, "child", "tick", data, NULL, &e) == 0;
			}
			if (!ok)
				fprintf(stderr, "child %d: %s\n", p, e.msg);
			rbk_store_close(s);
			rbk_free(home); /* the child's copy: leak checkers watch children too */
			_exit(ok ? 0 : 1);
		}
	}
	int failed = 0;
	for (int p = 0; p < NPROC; p++) {
		int st = 0;
		waitpid(pids[p], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
	}
	T_CHECK(failed == 0);

	rbk_store *s = open_ok(home);
	T_CHECK(s != NULL);
	if (s) {
		int64_t count = 0;
		T_CHECK(verify(s, &count, NULL, 0) == 0);
		T_CHECK(count == NPROC * (NAPPEND + 1));
		/* Run ids unique and dense, each run's events whole and in order. */
		for (int64_t r = 1; r <= NPROC; r++) {
			walk w = {.chain_ok = 1};
			rbk_err e = {0};
			T_CHECK(rbk_store_events(s, r, walk_fn, &w, &e) == 0);
			T_CHECK(w.n == NAPPEND + 1 && w.bad_order == 0 && w.chain_ok);
		}
		rbk_store_close(s);
	}
	T_CHECK(raw_int(home, "SELECT count(*) FROM runs") == NPROC);
	T_CHECK(raw_int(home, "SELECT max(id) FROM runs") == NPROC);
	T_CHECK(raw_int(home, "SELECT count(*) FROM sources") == 1);
	rbk_free(home);
	tmp_done();
}

/* A file size limit (RLIMIT_FSIZE) in a child: writes fail for real, the
 * error names the store and the cause, and what was committed before stays,
 * intact. */
static void test_write_error(void)
{
	const char *dir = tmp_new();
	rbk_store *s = open_ok(dir);
	int64_t r = new_run(s, "fill", "x");
	rbk_store_close(s);
	T_CHECK(r == 1);

	int fds[2];
	T_CHECK(pipe(fds) == 0);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		signal(SIGXFSZ, SIG_IGN);
		struct rlimit rl = {512 * 1024, 512 * 1024};
		setrlimit(RLIMIT_FSIZE, &rl);
		rbk_store *cs = NULL;
		rbk_err e = {0};
		int n = 0;
		if (rbk_store_open(&cs, dir, &e) == 0) {
			rbk_buf big = {0};
			rbk_buf_puts(&big, "{\"blob\":\"");
			for (int i = 0; i < 64 * 1024; i++)
				rbk_buf_putc(&big, (char)('a' + i % 26));
			rbk_buf_puts(&big, "\"}");
			while (n < 1000 &&
			       rbk_store_append(cs, 1, "op@host", "big", big.s, NULL, &e) == 0)
				n++;
			rbk_buf_free(&big);
			rbk_store_close(cs);
		}
		char msg[600];
		int len = snprintf(msg, sizeof msg, "%d %s", n, e.msg);
		if (write(fds[1], msg, (size_t)len) < 0)
			_exit(2);
		_exit(0);
	}
	close(fds[1]);
	char msg[600] = "";
	ssize_t got = read(fds[0], msg, sizeof msg - 1);
	msg[got > 0 ? got : 0] = '\0';
	close(fds[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	int n = atoi(msg);
	printf("# write error after %d appends: %s\n", n,
	       strchr(msg, ' ') ? strchr(msg, ' ') + 1 : msg);
	T_CHECK(n > 0 && n < 1000);
	char *db = path_in(dir, "rbk.db");
	T_CHECK(strstr(msg, db) != NULL);
	T_CHECK(strstr(msg, "disk full") != NULL || strstr(msg, "i/o error") != NULL);
	rbk_free(db);

	s = open_ok(dir);
	T_CHECK(s != NULL);
	if (s) {
		int64_t count = 0;
		T_CHECK(verify(s, &count, NULL, 0) == 0);
		T_CHECK(count == n + 1);
		T_CHECK(append(s, 1, "after", "{}") == n + 2);
		rbk_store_close(s);
	}
	tmp_done();
}

/* SQLITE_FULL itself, injected: the error says "disk full", the failed
 * transaction leaves nothing behind, and the store works on once space
 * returns, in the same handle and after reopening. */
static void test_disk_full_injected(void)
{
	const char *dir = tmp_new();
	full_vfs_install();
	rbk_store *s = open_ok(dir);
	T_CHECK(s != NULL);
	if (!s) {
		full_vfs_remove();
		tmp_done();
		return;
	}
	int64_t r = new_run(s, "fill", "x");
	rbk_buf big = {0};
	rbk_buf_puts(&big, "{\"blob\":\"");
	for (int i = 0; i < 20000; i++)
		rbk_buf_putc(&big, (char)('a' + i % 26));
	rbk_buf_puts(&big, "\"}");
	char *want = rbk_xasprintf("store %s/rbk.db: append event: disk full", dir);

	/* A single append. */
	full_budget = 100 * 1024;
	int n = 0;
	rbk_err e = {0};
	while (n < 100 && rbk_store_append(s, r, "op@host", "big", big.s, NULL, &e) == 0)
		n++;
	T_CHECK(n > 0 && n < 100);
	T_STREQ(e.msg, want);
	full_budget = -1;
	int64_t count = 0;
	T_CHECK(verify(s, &count, NULL, 0) == 0 && count == n + 1);
	T_CHECK(append(s, r, "after", "{}") == n + 2);

	/* A batch: all of it goes. */
	T_CHECK(rbk_store_begin(s, &e) == 0);
	T_CHECK(append(s, r, "in-batch", "{}") == n + 3);
	full_budget = 0;
	T_CHECK(rbk_store_append(s, r, "op@host", "big", big.s, NULL, &e) < 0 ||
		rbk_store_commit(s, &e) < 0);
	T_CHECK(strstr(e.msg, "disk full") != NULL);
	full_budget = -1;
	rbk_store_rollback(s);
	T_CHECK(verify(s, &count, NULL, 0) == 0 && count == n + 2);
	T_CHECK(append(s, r, "after batch", "{}") == n + 3);
	rbk_store_close(s);
	full_vfs_remove();

	s = open_ok(dir);
	T_CHECK(s && verify(s, &count, NULL, 0) == 0 && count == n + 3);
	rbk_store_close(s);
	rbk_free(want);
	rbk_buf_free(&big);
	tmp_done();
}

static void test_reopen_keeps_everything(void)
{
	const char *dir = tmp_new();
	rbk_store *s = open_ok(dir);
	int64_t r1 = new_run(s, "deploy", "source one");
	int64_t r2 = new_run(s, "backup", "source two");
	for (int i = 0; i < 10; i++)
		append(s, i % 2 ? r1 : r2, "tick", "{}");
	rbk_err e = {0};
	T_CHECK(rbk_store_run_set(s, r1, "succeeded", "done", &e) == 0);
	T_CHECK(rbk_store_step_record(s, r2, "dump", 1, "succeeded", 3, 4, &e) == 0);
	rbk_store_close(s);

	for (int round = 0; round < 3; round++) {
		s = open_ok(dir);
		T_CHECK(s != NULL);
		if (!s)
			break;
		rbk_store_run run;
		T_CHECK(rbk_store_run_get(s, r1, &run, &e) == 0);
		T_STREQ(run.status, "succeeded");
		T_STREQ(run.current_state, "done");
		char *bytes = NULL;
		size_t len = 0;
		T_CHECK(rbk_store_source(s, run.source_sha256, &bytes, &len, &e) == 0);
		T_CHECK(bytes && strcmp(bytes, "source one") == 0);
		rbk_free(bytes);
		rbk_store_run_free(&run);
		rbk_buf b = {0};
		T_CHECK(rbk_store_steps(s, r2, collect_step, &b, &e) == 0);
		T_STREQ(b.s, "dump/1/succeeded/3/4/2:dump:1;");
		rbk_buf_free(&b);
		int64_t count = 0;
		T_CHECK(verify(s, &count, NULL, 0) == 0 && count == 12 + round);
		T_CHECK(append(s, r1, "again", "{}") == 13 + round);
		rbk_store_close(s);
	}
	T_CHECK(new_run(s = open_ok(dir), "third", "x") == 3);
	rbk_store_close(s);
	tmp_done();
}

/* ---- speed: measured and reported; bounded loosely, as tests also run under ASan and valgrind
 * ---- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_verify_speed(void)
{
	const char *dir = tmp_new();
	rbk_store *s = open_ok(dir);
	rbk_err e = {0};
	enum { N = 100000 };
	T_CHECK(rbk_store_begin(s, &e) == 0);
	int64_t r = new_run(s, "speed", "x");
	for (int i = 1; i < N; i++) {
		char data[96];
		snprintf(data, sizeof data, "{\"state\":\"step%d\",\"attempt\":1,\"exit\":0}",
			 i % 10);
		if (rbk_store_append(s, r, "op@host", i % 2 ? "step_started" : "step_ended", data,
				     NULL, &e) < 0)
			break;
	}
	T_CHECK(rbk_store_commit(s, &e) == 0);
	double t0 = now_s();
	int64_t count = 0;
	T_CHECK(verify(s, &count, NULL, 0) == 0 && count == N);
	double dt = now_s() - t0;
	printf("# verify: %d events in %.3f s, %.0f events/s (this build)\n", N, dt,
	       (double)N / dt);
	T_CHECK((double)N / dt > 10000); /* catches only a collapse, even under valgrind */
	rbk_store_close(s);
	tmp_done();
}

int main(void)
{
	T_RUN(test_hash_vectors);
	T_RUN(test_open_creates_wal_store);
	T_RUN(test_schema_and_migrations);
	T_RUN(test_newer_schema_refused);
	T_RUN(test_garbage_file_refused);
	T_RUN(test_run_ids_and_fields);
	T_RUN(test_source_pinned_once);
	T_RUN(test_events_in_order_and_chained);
	T_RUN(test_events_walk_stops);
	T_RUN(test_verify_detects_tampering);
	T_RUN(test_verify_truncation_needs_a_seal);
	T_RUN(test_verify_no_false_positives);
	T_RUN(test_batch_commit_and_rollback);
	T_RUN(test_steps_index);
	T_RUN(test_concurrent_writers);
	T_RUN(test_write_error);
	T_RUN(test_disk_full_injected);
	T_RUN(test_reopen_keeps_everything);
	T_RUN(test_verify_speed);
	return T_DONE();
}
