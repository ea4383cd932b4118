/* rbk-sqlite: integrity check, online backup, restore, query and exec on
 * SQLite database files.
 *
 * Backups are DIR/<basename>.<YYYYmmddTHHMMSSZ>.bak, written to a hidden
 * temp name in DIR and renamed into place once complete, checked and
 * synced, so a backup under its final name is always whole. A restore never
 * deletes anything: the database it replaces is moved aside, with its WAL,
 * SHM and journal files. Every wait for a lock, every backup step and every
 * long statement is bounded by the step's time left. */
#include <rbk/plugin.h>

#include <sqlite3.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

RBK_PLUGIN_DECLARE();

static const rbk_host *host;

#define DEFAULT_KEEP 7
#define DEFAULT_MAX_ROWS 1000
#define MAX_PROBLEMS 100
#define NO_DEADLINE_BUSY_MS 10000
#define TS_LEN 16 /* YYYYmmddTHHMMSSZ */

/* ---- small helpers ---- */

/* A required string param the host let through absent (never, by contract). */
static int missing(rbk_call *call, const char *name)
{
	host->set_error(call, "param '%s' is missing or not a string", name);
	return 1;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* A growable list of strings (problems, paths). */
typedef struct {
	char **items;
	size_t n, cap;
} strlist;

static int sl_push_owned(strlist *l, char *s)
{
	if (!s)
		return -1;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **ni = realloc(l->items, cap * sizeof *ni);
		if (!ni) {
			free(s);
			return -1;
		}
		l->items = ni;
		l->cap = cap;
	}
	l->items[l->n++] = s;
	return 0;
}

static int sl_push(strlist *l, const char *s) { return sl_push_owned(l, xstrdup(s)); }

static void sl_free(strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	memset(l, 0, sizeof *l);
}

static void set_string_list(rbk_call *call, const char *name, const strlist *l)
{
	rbk_value *items = calloc(l->n ? l->n : 1, sizeof *items);
	if (!items)
		return;
	for (size_t i = 0; i < l->n; i++) {
		items[i].type = RBK_TYPE_STRING;
		items[i].as.str.ptr = l->items[i];
		items[i].as.str.len = strlen(l->items[i]);
	}
	rbk_value v = {.type = RBK_TYPE_LIST};
	v.as.list.items = items;
	v.as.list.count = l->n;
	host->set_output(call, name, &v);
	free(items);
}

static void set_str(rbk_call *call, const char *name, const char *s) { host->set_output_string(call, name, s, strlen(s)); }

static void utc_stamp(time_t t, char out[TS_LEN + 1])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, TS_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

static const char *base_name(const char *path)
{
	if (!path)
		return "";
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* The directory part of path ("." when none), allocated. */
static char *dir_name(const char *path)
{
	const char *s = strrchr(path, '/');
	if (!s)
		return xstrdup(".");
	if (s == path)
		return xstrdup("/");
	char *d = malloc((size_t)(s - path) + 1);
	if (d) {
		memcpy(d, path, (size_t)(s - path));
		d[s - path] = '\0';
	}
	return d;
}

static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Time out: the step's deadline passed. */
static int expired(rbk_call *call) { return host->time_left_ms(call) == 0; }

static int progress_cb(void *p) { return expired(p); }

/* How long to wait for a lock held by another connection. */
static int busy_ms(rbk_call *call)
{
	int64_t left = host->time_left_ms(call);
	if (left < 0)
		return NO_DEADLINE_BUSY_MS;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* Open a database file that must already exist. On failure returns NULL
 * with *why set (allocated). */
static sqlite3 *open_db(rbk_call *call, const char *path, int readonly, char **why)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		*why = xasprintf("cannot open database %s: %s", path, strerror(errno));
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		*why = xasprintf("cannot open database %s: it is a directory", path);
		return NULL;
	}
	sqlite3 *db = NULL;
	int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
	int rc = sqlite3_open_v2(path, &db, flags, NULL);
	if (rc != SQLITE_OK) {
		*why = xasprintf("cannot open database %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_extended_result_codes(db, 0);
	sqlite3_busy_timeout(db, busy_ms(call));
	sqlite3_progress_handler(db, 10000, progress_cb, call);
	return db;
}

/* The message for a failed statement on path. */
static char *db_error(rbk_call *call, sqlite3 *db, int rc, const char *path)
{
	if (rc == SQLITE_INTERRUPT || ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && expired(call)))
		return xasprintf("%s: timed out (%s)", path, sqlite3_errmsg(db));
	if (rc == SQLITE_NOTADB)
		return xasprintf("%s is not a database", path);
	return xasprintf("%s: %s", path, sqlite3_errmsg(db));
}

/* ---- integrity check ---- */

/* One row of integrity_check may hold several problems, one a line, under
 * a "*** in database main ***" heading: one string per problem. */
static int add_problems(strlist *problems, const char *text)
{
	while (*text) {
		size_t n = strcspn(text, "\n");
		if (n && strncmp(text, "*** in database ", 16) != 0 && sl_push_owned(problems, strndup(text, n)) < 0)
			return -1;
		text += n;
		if (*text)
			text++;
	}
	return 0;
}

/* Run PRAGMA integrity_check on path. 0: the check ran (problems is empty
 * when the database is sound; a database too damaged to be read at all
 * gives SQLite's error as its one problem); -1: it could not run (missing
 * file, not a database, timeout): *why set. */
static int check_db(rbk_call *call, const char *path, strlist *problems, char **why)
{
	sqlite3 *db = open_db(call, path, 1, why);
	if (!db)
		return -1;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check(100)", -1, &st, NULL);
	int result = 0;
	while (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			break;
		const char *t = (const char *)sqlite3_column_text(st, 0);
		if (t && strcmp(t, "ok") != 0 && add_problems(problems, t) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		rc = SQLITE_OK;
	}
	if (rc == SQLITE_CORRUPT) {
		/* Too damaged to walk: that is the check's finding, not its failure. */
		if (sl_push(problems, sqlite3_errmsg(db)) < 0)
			rc = SQLITE_NOMEM;
		else
			rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE) {
		*why = db_error(call, db, rc, path);
		result = -1;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return result;
}

static int integrity_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "db");
	if (!path)
		return missing(call, "db");
	strlist problems = {0};
	char *why = NULL;
	if (check_db(call, path, &problems, &why) < 0) {
		host->set_error(call, "integrity check failed: %s", why ? why : "out of memory");
		free(why);
		sl_free(&problems);
		return 1;
	}
	host->set_output_bool(call, "ok", problems.n == 0);
	host->set_output_int(call, "count", (int64_t)problems.n);
	set_string_list(call, "problems", &problems);
	if (problems.n)
		host->log(call, RBK_LOG_WARN, "%s is damaged: %zu problem%s, first: %s", path, problems.n,
			  problems.n == 1 ? "" : "s", problems.items[0]);
	else
		host->log(call, RBK_LOG_INFO, "%s: integrity check ok", path);
	sl_free(&problems);
	return 0;
}

static int integrity_run(rbk_call *call, const rbk_value *args);

/* Under --dry-run it reads for real: it changes nothing, and the
 * run's guards then see what is (check mode, docs/cli.md). */
static int integrity_plan(rbk_call *call, const rbk_value *args)
{
	return integrity_run(call, args);
}

/* ---- backups: naming, listing ---- */

/* Whether name is "<base>.<YYYYmmddTHHMMSSZ>.bak". */
static int is_backup_name(const char *name, const char *base)
{
	size_t bl = strlen(base), nl = strlen(name);
	if (nl != bl + 1 + TS_LEN + 4 || strncmp(name, base, bl) != 0 || name[bl] != '.')
		return 0;
	const char *ts = name + bl + 1;
	for (int i = 0; i < TS_LEN; i++) {
		int want_digit = i != 8 && i != 15;
		if (want_digit ? !isdigit((unsigned char)ts[i]) : ts[i] != (i == 8 ? 'T' : 'Z'))
			return 0;
	}
	return strcmp(ts + TS_LEN, ".bak") == 0;
}

static int cmp_desc(const void *a, const void *b) { return strcmp(*(char *const *)b, *(char *const *)a); }

/* The backups of base in dir, newest first, as full paths. -1: dir cannot
 * be read (errno kept). */
static int list_backups(const char *dir, const char *base, strlist *out)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *e;
	strlist names = {0};
	while ((e = readdir(d)))
		if (is_backup_name(e->d_name, base))
			sl_push(&names, e->d_name);
	closedir(d);
	if (names.n)
		qsort(names.items, names.n, sizeof *names.items, cmp_desc);
	for (size_t i = 0; i < names.n; i++)
		sl_push_owned(out, xasprintf("%s/%s", dir, names.items[i]));
	sl_free(&names);
	return 0;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
	char *p = xstrdup(path);
	if (!p)
		return -1;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = '/';
	}
	int rc = mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
	free(p);
	if (rc == 0) {
		struct stat st;
		if (stat(path, &st) != 0)
			return -1;
		if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			return -1;
		}
	}
	return rc;
}

static void unlink_sqlite_files(const char *path)
{
	static const char *const sfx[] = {"", "-journal", "-wal", "-shm"};
	for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
		char *p = xasprintf("%s%s", path, sfx[i]);
		if (p)
			unlink(p);
		free(p);
	}
}

/* Copy the live database src into the new file tmp with the online backup
 * API, a bounded number of pages at a time, then make tmp a standalone file
 * in rollback-journal mode. 0 or -1 with *why. */
static int backup_into(rbk_call *call, const char *src_path, const char *tmp, char **why)
{
	sqlite3 *src = open_db(call, src_path, 1, why);
	if (!src)
		return -1;
	sqlite3 *dst = NULL;
	int rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXCLUSIVE, NULL);
	if (rc != SQLITE_OK) {
		*why = xasprintf("cannot create %s: %s", tmp, dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
		sqlite3_close(dst);
		sqlite3_close(src);
		return -1;
	}
	sqlite3_busy_timeout(dst, busy_ms(call));
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		*why = xasprintf("cannot back up %s: %s", src_path, sqlite3_errmsg(dst));
		sqlite3_close(dst);
		sqlite3_close(src);
		return -1;
	}
	for (;;) {
		rc = sqlite3_backup_step(b, 256);
		if (rc == SQLITE_DONE)
			break;
		if (rc == SQLITE_OK)
			continue;
		if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && !expired(call)) {
			sleep_ms(20);
			continue;
		}
		break;
	}
	int frc = sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE || frc != SQLITE_OK) {
		if (rc == SQLITE_OK || rc == SQLITE_DONE)
			rc = frc;
		if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && expired(call))
			*why = xasprintf("backup of %s timed out: the database stayed locked", src_path);
		else if (rc == SQLITE_NOTADB)
			*why = xasprintf("%s is not a database", src_path);
		else
			*why = xasprintf("backup of %s failed: %s", src_path, sqlite3_errstr(rc));
		sqlite3_close(dst);
		sqlite3_close(src);
		return -1;
	}
	sqlite3_close(src);
	/* A standalone file: no -wal beside a backup. */
	char *err = NULL;
	rc = sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, &err);
	if (rc != SQLITE_OK) {
		*why = xasprintf("cannot finish %s: %s", tmp, err ? err : sqlite3_errstr(rc));
		sqlite3_free(err);
		sqlite3_close(dst);
		return -1;
	}
	if (sqlite3_close(dst) != SQLITE_OK) {
		*why = xasprintf("cannot close %s", tmp);
		return -1;
	}
	/* SQLite synced the pages it wrote; sync the file once more for the
	 * header the journal-mode change rewrote. */
	int fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		*why = xasprintf("cannot sync %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int backup_run(rbk_call *call, const rbk_value *args)
{
	const char *db = rbk_arg_string(args, "db"), *dir = rbk_arg_string(args, "dir");
	if (!db)
		return missing(call, "db");
	if (!dir)
		return missing(call, "dir");
	int64_t keep = rbk_arg_int(args, "keep", DEFAULT_KEEP);
	int verify = rbk_arg_bool(args, "check", 1);
	if (keep < 1) {
		host->set_error(call, "keep must be at least 1, not %lld", (long long)keep);
		return 1;
	}
	const char *base = base_name(db);
	if (!*base) {
		host->set_error(call, "db %s names no file", db);
		return 1;
	}
	struct stat st;
	if (stat(db, &st) != 0) {
		host->set_error(call, "cannot back up %s: %s", db, strerror(errno));
		return 1;
	}
	if (make_dirs(dir) != 0) {
		host->set_error(call, "cannot create backup directory %s: %s", dir, strerror(errno));
		return 1;
	}
	/* One backup per second per database: the names sort by time. */
	char ts[TS_LEN + 1];
	char *final = NULL, *tmp = NULL;
	for (;;) {
		utc_stamp(time(NULL), ts);
		free(final);
		final = xasprintf("%s/%s.%s.bak", dir, base, ts);
		if (!final) {
			host->set_error(call, "out of memory");
			return 1;
		}
		if (access(final, F_OK) != 0)
			break;
		if (expired(call)) {
			host->set_error(call, "cannot back up %s: %s already exists and the step timed out", db, final);
			free(final);
			return 1;
		}
		sleep_ms(100);
	}
	tmp = xasprintf("%s/.%s.%s.bak.tmp-%ld", dir, base, ts, (long)getpid());
	if (!tmp) {
		free(final);
		host->set_error(call, "out of memory");
		return 1;
	}
	unlink_sqlite_files(tmp); /* a leftover of a killed attempt of this process id */
	char *why = NULL;
	int rc = 1;
	strlist problems = {0}, removed = {0}, all = {0};
	if (backup_into(call, db, tmp, &why) < 0) {
		host->set_error(call, "%s", why ? why : "out of memory");
		goto out;
	}
	if (verify) {
		if (check_db(call, tmp, &problems, &why) < 0) {
			host->set_error(call, "cannot check the backup of %s: %s", db, why ? why : "out of memory");
			goto out;
		}
		if (problems.n) {
			host->set_error(call, "%s is damaged (%zu problem%s, first: %s); no backup kept and none pruned", db,
					problems.n, problems.n == 1 ? "" : "s", problems.items[0]);
			goto out;
		}
	}
	if (rename(tmp, final) != 0) {
		host->set_error(call, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
		goto out;
	}
	sync_dir(dir);
	host->log(call, RBK_LOG_INFO, "backed up %s to %s", db, final);
	if (stat(final, &st) == 0)
		host->set_output_int(call, "size", (int64_t)st.st_size);
	set_str(call, "path", final);
	host->set_output_bool(call, "checked", verify);
	/* Prune: keep the newest `keep`. */
	if (list_backups(dir, base, &all) == 0) {
		for (size_t i = (size_t)keep; i < all.n; i++) {
			if (!strcmp(all.items[i], final))
				continue; /* newer names than now (a clock set back) never prune the new backup */
			if (unlink(all.items[i]) == 0) {
				sl_push(&removed, all.items[i]);
				host->log(call, RBK_LOG_INFO, "removed old backup %s", all.items[i]);
			} else {
				host->log(call, RBK_LOG_WARN, "cannot remove old backup %s: %s", all.items[i], strerror(errno));
			}
		}
		if (removed.n)
			sync_dir(dir);
	} else {
		host->log(call, RBK_LOG_WARN, "cannot list %s to prune: %s", dir, strerror(errno));
	}
	set_string_list(call, "removed", &removed);
	rc = 0;
out:
	if (rc)
		unlink_sqlite_files(tmp);
	free(why);
	free(final);
	free(tmp);
	sl_free(&problems);
	sl_free(&removed);
	sl_free(&all);
	return rc;
}

static int backup_plan(rbk_call *call, const rbk_value *args)
{
	host->log(call, RBK_LOG_INFO, "would back up %s to %s/%s.<UTC time>.bak%s and keep the newest %lld",
		  rbk_arg_string(args, "db"), rbk_arg_string(args, "dir"), base_name(rbk_arg_string(args, "db")),
		  rbk_arg_bool(args, "check", 1) ? " (checked)" : "", (long long)rbk_arg_int(args, "keep", DEFAULT_KEEP));
	return 0;
}

/* ---- restore ---- */

/* Whether files a and b have the same bytes. */
static int same_bytes(const char *a, const char *b)
{
	struct stat sa, sb;
	if (stat(a, &sa) != 0 || stat(b, &sb) != 0 || sa.st_size != sb.st_size)
		return 0;
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	int same = fa && fb;
	char ba[65536], bb[65536];
	while (same) {
		size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
		if (na != nb || memcmp(ba, bb, na) != 0)
			same = 0;
		if (na == 0 || na < sizeof ba)
			break;
	}
	if (same && (ferror(fa) || ferror(fb)))
		same = 0;
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

/* Copy src to the new file dst (created exclusively with mode), synced. */
static int copy_file(rbk_call *call, const char *src, const char *dst, mode_t mode, char **why)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		*why = xasprintf("cannot read %s: %s", src, strerror(errno));
		return -1;
	}
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		*why = xasprintf("cannot create %s: %s", dst, strerror(errno));
		close(in);
		return -1;
	}
	char buf[65536];
	int rc = 0;
	for (;;) {
		if (expired(call)) {
			*why = xasprintf("copying %s timed out", src);
			rc = -1;
			break;
		}
		ssize_t n = read(in, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*why = xasprintf("cannot read %s: %s", src, strerror(errno));
			rc = -1;
			break;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n && rc == 0;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				*why = xasprintf("cannot write %s: %s", dst, strerror(errno));
				rc = -1;
			} else {
				off += w;
			}
		}
		if (rc)
			break;
	}
	if (rc == 0 && fchmod(out, mode) != 0) {
		*why = xasprintf("cannot set the mode of %s: %s", dst, strerror(errno));
		rc = -1;
	}
	if (rc == 0 && fsync(out) != 0) {
		*why = xasprintf("cannot sync %s: %s", dst, strerror(errno));
		rc = -1;
	}
	close(in);
	if (close(out) != 0 && rc == 0) {
		*why = xasprintf("cannot write %s: %s", dst, strerror(errno));
		rc = -1;
	}
	if (rc)
		unlink(dst);
	return rc;
}

/* A name for the damaged file that is not taken: <db>.damaged.<ts>[.N]. */
static char *aside_name(const char *db)
{
	char ts[TS_LEN + 1];
	utc_stamp(time(NULL), ts);
	for (int i = 0; i < 1000; i++) {
		char *p = i ? xasprintf("%s.damaged.%s.%d", db, ts, i) : xasprintf("%s.damaged.%s", db, ts);
		struct stat st;
		if (!p || (lstat(p, &st) != 0 && errno == ENOENT))
			return p;
		free(p);
	}
	return NULL;
}

static void add_tried(rbk_value **items, size_t *n, char ***keep, size_t *nkeep, const char *path, char *reason)
{
	static const char *const keys[] = {"path", "reason"};
	char *p = xstrdup(path);
	rbk_value *ni = realloc(*items, (*n + 1) * sizeof *ni);
	char **nk = realloc(*keep, (*nkeep + 2) * sizeof *nk);
	if (nk)
		*keep = nk;
	if (ni)
		*items = ni;
	rbk_value *vals = calloc(2, sizeof *vals);
	if (!p || !ni || !nk || !vals || !reason) {
		free(p);
		free(reason);
		free(vals);
		return;
	}
	vals[0].type = vals[1].type = RBK_TYPE_STRING;
	vals[0].as.str.ptr = p;
	vals[0].as.str.len = strlen(p);
	vals[1].as.str.ptr = reason;
	vals[1].as.str.len = strlen(reason);
	rbk_value *m = &(*items)[(*n)++];
	memset(m, 0, sizeof *m);
	m->type = RBK_TYPE_MAP;
	m->as.map.keys = keys;
	m->as.map.values = vals;
	m->as.map.count = 2;
	(*keep)[(*nkeep)++] = p;
	(*keep)[(*nkeep)++] = reason;
}

static int restore_run(rbk_call *call, const rbk_value *args)
{
	const char *db = rbk_arg_string(args, "db"), *dir = rbk_arg_string(args, "dir");
	if (!db)
		return missing(call, "db");
	if (!dir)
		return missing(call, "dir");
	const char *base = base_name(db);
	strlist backups = {0};
	if (!*base) {
		host->set_error(call, "db %s names no file", db);
		return 1;
	}
	if (list_backups(dir, base, &backups) < 0) {
		host->set_error(call, "cannot read backup directory %s: %s", dir, strerror(errno));
		return 1;
	}
	rbk_value *tried = NULL;
	size_t ntried = 0, nkeep = 0;
	char **keep = NULL;
	const char *chosen = NULL;
	for (size_t i = 0; i < backups.n && !chosen; i++) {
		const char *b = backups.items[i];
		struct stat st;
		if (stat(b, &st) == 0 && st.st_size == 0) {
			add_tried(&tried, &ntried, &keep, &nkeep, b, xstrdup("empty file"));
			host->log(call, RBK_LOG_WARN, "rejected %s: empty file", b);
			continue;
		}
		strlist problems = {0};
		char *why = NULL;
		if (check_db(call, b, &problems, &why) < 0) {
			if (expired(call)) {
				host->set_error(call, "restore of %s timed out while checking %s", db, b);
				free(why);
				sl_free(&problems);
				goto fail;
			}
			host->log(call, RBK_LOG_WARN, "rejected %s: %s", b, why ? why : "cannot check");
			add_tried(&tried, &ntried, &keep, &nkeep, b, why ? why : xstrdup("cannot check"));
		} else if (problems.n) {
			char *reason = xasprintf("integrity check: %zu problem%s, first: %s", problems.n,
						 problems.n == 1 ? "" : "s", problems.items[0]);
			host->log(call, RBK_LOG_WARN, "rejected %s: %s", b, reason ? reason : "damaged");
			add_tried(&tried, &ntried, &keep, &nkeep, b, reason);
		} else {
			chosen = b;
		}
		sl_free(&problems);
	}
	rbk_value tl = {.type = RBK_TYPE_LIST};
	tl.as.list.items = tried;
	tl.as.list.count = ntried;
	host->set_output(call, "tried", &tl);
	if (!chosen) {
		if (!backups.n)
			host->set_error(call, "no backups of %s in %s", base, dir);
		else
			host->set_error(call, "no backup of %s in %s passes its integrity check (%zu tried)", base, dir,
					backups.n);
		goto fail;
	}

	/* Already in place (a second run of the same restore): nothing to do. */
	char *wal = xasprintf("%s-wal", db), *jrn = xasprintf("%s-journal", db);
	struct stat st, wst;
	int pristine = wal && jrn && (lstat(wal, &wst) != 0 || wst.st_size == 0) && lstat(jrn, &wst) != 0;
	free(wal);
	free(jrn);
	if (pristine && same_bytes(chosen, db)) {
		host->log(call, RBK_LOG_INFO, "%s already holds the bytes of %s; nothing to do", db, chosen);
		set_str(call, "restored_from", chosen);
		set_str(call, "moved_aside", "");
		host->set_output_bool(call, "changed", 0);
		goto ok;
	}

	int have_db = lstat(db, &st) == 0;
	struct stat bst;
	mode_t mode = have_db ? st.st_mode & 07777 : (stat(chosen, &bst) == 0 ? bst.st_mode & 07777 : 0644);
	char *ddir = dir_name(db);
	char *tmp = xasprintf("%s/.%s.restore-tmp-%ld", ddir ? ddir : ".", base, (long)getpid());
	char *why = NULL;
	unlink(tmp ? tmp : "");
	if (!ddir || !tmp || copy_file(call, chosen, tmp, mode, &why) < 0) {
		host->set_error(call, "cannot restore %s from %s: %s", db, chosen, why ? why : "out of memory");
		free(why);
		free(ddir);
		free(tmp);
		goto fail;
	}
	if (have_db && geteuid() == 0 && fchownat(AT_FDCWD, tmp, st.st_uid, st.st_gid, 0) != 0)
		host->log(call, RBK_LOG_WARN, "cannot give %s the owner of %s: %s", tmp, db, strerror(errno));
	char *aside = NULL;
	int linked = 0;
	if (have_db) {
		aside = aside_name(db);
		/* A hard link keeps the damaged bytes while the rename below swaps
		 * the new file in atomically; without links, a plain rename. */
		linked = aside && link(db, aside) == 0;
		if (!linked && (!aside || rename(db, aside) != 0)) {
			host->set_error(call, "cannot move %s aside to %s: %s", db, aside ? aside : "?", strerror(errno));
			unlink(tmp);
			free(aside);
			free(ddir);
			free(tmp);
			goto fail;
		}
		host->log(call, RBK_LOG_INFO, "moved %s aside to %s", db, aside);
	}
	/* A WAL or journal left by the damaged file must not be applied to the
	 * restored one: they go aside with it (or, with no file, to <db>.orphan). */
	static const char *const sfx[] = {"-wal", "-shm", "-journal"};
	for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
		char *from = xasprintf("%s%s", db, sfx[i]);
		if (from && lstat(from, &wst) == 0) {
			char *orphan = aside ? NULL : aside_name(db);
			char *to = xasprintf("%s%s", aside ? aside : orphan ? orphan : db, sfx[i]);
			if (to && rename(from, to) == 0)
				host->log(call, RBK_LOG_INFO, "moved %s aside to %s", from, to);
			else
				host->log(call, RBK_LOG_WARN, "cannot move %s aside: %s", from, strerror(errno));
			free(to);
			free(orphan);
		}
		free(from);
	}
	if (rename(tmp, db) != 0) {
		host->set_error(call, "cannot put %s in place of %s: %s", tmp, db, strerror(errno));
		if (aside && !linked)
			rename(aside, db); /* put the damaged file back where it was */
		unlink(tmp);
		free(aside);
		free(ddir);
		free(tmp);
		goto fail;
	}
	sync_dir(ddir);
	host->log(call, RBK_LOG_INFO, "restored %s from %s", db, chosen);
	set_str(call, "restored_from", chosen);
	set_str(call, "moved_aside", aside ? aside : "");
	host->set_output_bool(call, "changed", 1);
	free(aside);
	free(ddir);
	free(tmp);
ok:
	for (size_t i = 0; i < ntried; i++)
		free((void *)tried[i].as.map.values);
	free(tried);
	for (size_t i = 0; i < nkeep; i++)
		free(keep[i]);
	free(keep);
	sl_free(&backups);
	return 0;
fail:
	for (size_t i = 0; i < ntried; i++)
		free((void *)tried[i].as.map.values);
	free(tried);
	for (size_t i = 0; i < nkeep; i++)
		free(keep[i]);
	free(keep);
	sl_free(&backups);
	return 1;
}

static int restore_plan(rbk_call *call, const rbk_value *args)
{
	const char *db = rbk_arg_string(args, "db");
	host->log(call, RBK_LOG_INFO,
		  "would restore %s from the newest backup in %s that passes its integrity check, moving %s aside "
		  "to %s.damaged.<UTC time>",
		  db, rbk_arg_string(args, "dir"), db, db);
	return 0;
}

/* ---- query and exec ---- */

/* Bind params positionally. 0 or -1 after set_error. */
static int bind_params(rbk_call *call, sqlite3_stmt *st, const rbk_value *params, const char *db)
{
	int want = sqlite3_bind_parameter_count(st);
	size_t have = params && params->type == RBK_TYPE_LIST ? params->as.list.count : 0;
	if ((size_t)want != have) {
		host->set_error(call, "the sql has %d parameter%s but params gives %zu", want, want == 1 ? "" : "s", have);
		return -1;
	}
	for (int i = 0; i < want; i++) {
		const rbk_value *v = &params->as.list.items[i];
		int rc;
		switch (v->type) {
		case RBK_TYPE_STRING: rc = sqlite3_bind_text(st, i + 1, v->as.str.ptr, (int)v->as.str.len, SQLITE_TRANSIENT); break;
		case RBK_TYPE_INT:
		case RBK_TYPE_DURATION: rc = sqlite3_bind_int64(st, i + 1, v->as.i); break;
		case RBK_TYPE_NUMBER: rc = sqlite3_bind_double(st, i + 1, v->as.num); break;
		case RBK_TYPE_BOOL: rc = sqlite3_bind_int(st, i + 1, v->as.boolean ? 1 : 0); break;
		case RBK_TYPE_NULL: rc = sqlite3_bind_null(st, i + 1); break;
		default:
			host->set_error(call, "params[%d] must be a string, a number, a bool or null", i);
			return -1;
		}
		if (rc != SQLITE_OK) {
			host->set_error(call, "%s: cannot bind params[%d]: %s", db, i, sqlite3_errstr(rc));
			return -1;
		}
	}
	return 0;
}

/* Whether the text after the first statement holds anything but blanks,
 * semicolons and comments. */
static int more_sql(const char *tail)
{
	while (tail && *tail) {
		if (isspace((unsigned char)*tail) || *tail == ';')
			tail++;
		else if (tail[0] == '-' && tail[1] == '-')
			tail += strcspn(tail, "\n");
		else if (tail[0] == '/' && tail[1] == '*') {
			const char *e = strstr(tail + 2, "*/");
			tail = e ? e + 2 : tail + strlen(tail);
		} else
			return 1;
	}
	return 0;
}

/* Prepare the one statement of sql on db. NULL after set_error. */
static sqlite3_stmt *prepare_one(rbk_call *call, sqlite3 *db, const char *path, const char *sql)
{
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, &tail);
	if (rc != SQLITE_OK) {
		char *why = db_error(call, db, rc, path);
		host->set_error(call, "%s", why ? why : "out of memory");
		free(why);
		return NULL;
	}
	if (!st) {
		host->set_error(call, "the sql holds no statement");
		return NULL;
	}
	if (more_sql(tail)) {
		sqlite3_finalize(st);
		host->set_error(call, "the sql must be one statement; run several steps for several statements");
		return NULL;
	}
	return st;
}

typedef struct {
	rbk_value *vals; /* one per column */
} row;

static void free_rows(row *rows, size_t n, int ncol)
{
	for (size_t r = 0; r < n; r++) {
		for (int c = 0; c < ncol; c++)
			if (rows[r].vals[c].type == RBK_TYPE_STRING)
				free((void *)rows[r].vals[c].as.str.ptr);
		free(rows[r].vals);
	}
	free(rows);
}

static int column_value(sqlite3_stmt *st, int c, rbk_value *out)
{
	memset(out, 0, sizeof *out);
	switch (sqlite3_column_type(st, c)) {
	case SQLITE_INTEGER:
		out->type = RBK_TYPE_INT;
		out->as.i = sqlite3_column_int64(st, c);
		return 0;
	case SQLITE_FLOAT:
		out->type = RBK_TYPE_NUMBER;
		out->as.num = sqlite3_column_double(st, c);
		return 0;
	case SQLITE_NULL: out->type = RBK_TYPE_NULL; return 0;
	case SQLITE_BLOB: {
		/* Hex text: outputs are JSON and cannot hold raw bytes. */
		const unsigned char *b = sqlite3_column_blob(st, c);
		size_t n = (size_t)sqlite3_column_bytes(st, c);
		char *s = malloc(2 * n + 1);
		if (!s)
			return -1;
		for (size_t i = 0; i < n; i++)
			snprintf(s + 2 * i, 3, "%02x", b[i]);
		s[2 * n] = '\0';
		out->type = RBK_TYPE_STRING;
		out->as.str.ptr = s;
		out->as.str.len = 2 * n;
		return 0;
	}
	default: {
		const char *t = (const char *)sqlite3_column_text(st, c);
		size_t n = (size_t)sqlite3_column_bytes(st, c);
		char *s = malloc(n + 1);
		if (!s)
			return -1;
		if (n)
			memcpy(s, t, n);
		s[n] = '\0';
		out->type = RBK_TYPE_STRING;
		out->as.str.ptr = s;
		out->as.str.len = strlen(s); /* text with a NUL in it stops there */
		return 0;
	}
	}
}

static int query_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "db"), *sql = rbk_arg_string(args, "sql");
	if (!path)
		return missing(call, "db");
	if (!sql)
		return missing(call, "sql");
	int64_t max_rows = rbk_arg_int(args, "max_rows", DEFAULT_MAX_ROWS);
	if (max_rows < 0) {
		host->set_error(call, "max_rows must be 0 or more, not %lld", (long long)max_rows);
		return 1;
	}
	char *why = NULL;
	sqlite3 *db = open_db(call, path, 1, &why);
	if (!db) {
		host->set_error(call, "%s", why ? why : "out of memory");
		free(why);
		return 1;
	}
	sqlite3_stmt *st = prepare_one(call, db, path, sql);
	if (!st) {
		sqlite3_close(db);
		return 1;
	}
	int rc = 1;
	row *rows = NULL;
	size_t n = 0, cap = 0;
	int ncol = sqlite3_column_count(st), truncated = 0;
	char **names = calloc((size_t)(ncol ? ncol : 1), sizeof *names);
	if (!sqlite3_stmt_readonly(st)) {
		host->set_error(call, "sqlite.query only reads; use sqlite.exec to change %s", path);
		goto out;
	}
	if (!names || bind_params(call, st, host->arg(args, "params"), path) < 0)
		goto out;
	int src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if ((int64_t)n >= max_rows) {
			truncated = 1;
			break;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			row *nr = realloc(rows, nc * sizeof *nr);
			if (!nr)
				goto oom;
			rows = nr;
			cap = nc;
		}
		rows[n].vals = calloc((size_t)(ncol ? ncol : 1), sizeof(rbk_value));
		if (!rows[n].vals)
			goto oom;
		n++;
		for (int c = 0; c < ncol; c++)
			if (column_value(st, c, &rows[n - 1].vals[c]) < 0)
				goto oom;
	}
	if (src != SQLITE_ROW && src != SQLITE_DONE) {
		why = db_error(call, db, src, path);
		host->set_error(call, "%s", why ? why : "out of memory");
		free(why);
		goto out;
	}
	for (int c = 0; c < ncol; c++) {
		const char *nm = sqlite3_column_name(st, c);
		names[c] = nm ? (char *)nm : (char *)"";
	}
	rbk_value *items = calloc(n ? n : 1, sizeof *items);
	if (!items)
		goto oom;
	for (size_t r = 0; r < n; r++) {
		items[r].type = RBK_TYPE_MAP;
		items[r].as.map.keys = (const char *const *)names;
		items[r].as.map.values = rows[r].vals;
		items[r].as.map.count = (size_t)ncol;
	}
	rbk_value list = {.type = RBK_TYPE_LIST};
	list.as.list.items = items;
	list.as.list.count = n;
	host->set_output(call, "rows", &list);
	host->set_output_int(call, "count", (int64_t)n);
	host->set_output_bool(call, "truncated", truncated);
	free(items);
	if (truncated)
		host->log(call, RBK_LOG_WARN, "%s: more than %lld rows; the rest were not read", path, (long long)max_rows);
	rc = 0;
	goto out;
oom:
	host->set_error(call, "out of memory reading the rows of %s", path);
out:
	free_rows(rows, n, ncol);
	free(names);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

static int query_run(rbk_call *call, const rbk_value *args);

/* Under --dry-run it reads for real: it changes nothing, and the
 * run's guards then see what is (check mode, docs/cli.md). */
static int query_plan(rbk_call *call, const rbk_value *args)
{
	return query_run(call, args);
}

static int exec_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "db"), *sql = rbk_arg_string(args, "sql");
	if (!path)
		return missing(call, "db");
	if (!sql)
		return missing(call, "sql");
	char *why = NULL;
	sqlite3 *db = open_db(call, path, 0, &why);
	if (!db) {
		host->set_error(call, "%s", why ? why : "out of memory");
		free(why);
		return 1;
	}
	sqlite3_stmt *st = prepare_one(call, db, path, sql);
	if (!st) {
		sqlite3_close(db);
		return 1;
	}
	int rc = 1;
	if (bind_params(call, st, host->arg(args, "params"), path) < 0)
		goto out;
	int src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (src != SQLITE_DONE) {
		why = db_error(call, db, src, path);
		host->set_error(call, "%s", why ? why : "out of memory");
		free(why);
		goto out;
	}
	host->set_output_int(call, "changes", sqlite3_changes64(db));
	host->set_output_int(call, "last_insert_rowid", sqlite3_last_insert_rowid(db));
	host->log(call, RBK_LOG_INFO, "%s: %lld row%s changed", path, (long long)sqlite3_changes64(db),
		  sqlite3_changes64(db) == 1 ? "" : "s");
	rc = 0;
out:
	sqlite3_finalize(st);
	if (sqlite3_close(db) != SQLITE_OK && rc == 0) {
		host->set_error(call, "%s: cannot close the database", path);
		rc = 1;
	}
	return rc;
}

static int exec_plan(rbk_call *call, const rbk_value *args)
{
	const rbk_value *p = host->arg(args, "params");
	host->log(call, RBK_LOG_INFO, "would execute on %s: %s [%zu bound param%s]", rbk_arg_string(args, "db"),
		  rbk_arg_string(args, "sql"), p && p->type == RBK_TYPE_LIST ? p->as.list.count : 0,
		  p && p->type == RBK_TYPE_LIST && p->as.list.count == 1 ? "" : "s");
	return 0;
}

/* ---- the plugin ---- */

static const rbk_param_decl integrity_params[] = {
	{"db", RBK_TYPE_STRING, 1, NULL, "path of the database file (opened read-only)"},
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl integrity_outputs[] = {
	{"ok", RBK_TYPE_BOOL, "true when PRAGMA integrity_check found no problem"},
	{"problems", RBK_TYPE_LIST, "the problems found (strings), at most 100"},
	{"count", RBK_TYPE_INT, "how many problems were found"},
	{NULL, 0, NULL}};

static const rbk_param_decl backup_params[] = {
	{"db", RBK_TYPE_STRING, 1, NULL, "path of the database file"},
	{"dir", RBK_TYPE_STRING, 1, NULL, "directory of the backups (created if missing)"},
	{"keep", RBK_TYPE_INT, 0, "7", "how many backups of this database to keep, newest first (at least 1)"},
	{"check", RBK_TYPE_BOOL, 0, "true", "run an integrity check on the copy before keeping it"},
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl backup_outputs[] = {
	{"path", RBK_TYPE_STRING, "the new backup: DIR/<basename>.<YYYYmmddTHHMMSSZ>.bak"},
	{"size", RBK_TYPE_INT, "its size in bytes"},
	{"checked", RBK_TYPE_BOOL, "whether the copy passed an integrity check"},
	{"removed", RBK_TYPE_LIST, "the old backups pruned (paths)"},
	{NULL, 0, NULL}};

static const rbk_param_decl restore_params[] = {
	{"db", RBK_TYPE_STRING, 1, NULL, "path of the database file to restore"},
	{"dir", RBK_TYPE_STRING, 1, NULL, "directory of the backups made by sqlite.backup"},
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl restore_outputs[] = {
	{"restored_from", RBK_TYPE_STRING, "the backup now in place"},
	{"tried", RBK_TYPE_LIST, "newer backups rejected: maps {path, reason}"},
	{"moved_aside", RBK_TYPE_STRING, "where the replaced database went (empty when there was none or nothing changed)"},
	{"changed", RBK_TYPE_BOOL, "false when the database already held the chosen backup's bytes"},
	{NULL, 0, NULL}};

static const rbk_param_decl query_params[] = {
	{"db", RBK_TYPE_STRING, 1, NULL, "path of the database file (opened read-only)"},
	{"sql", RBK_TYPE_STRING, 1, NULL, "one read-only statement; ? or ?NNN for params"},
	{"params", RBK_TYPE_LIST, 0, "[]", "values bound to the statement's parameters, in order"},
	{"max_rows", RBK_TYPE_INT, 0, "1000", "rows returned at most; the rest are not read"},
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl query_outputs[] = {
	{"rows", RBK_TYPE_LIST, "one map per row: column name to value (int, number, string, null; blobs as hex)"},
	{"count", RBK_TYPE_INT, "how many rows were returned"},
	{"truncated", RBK_TYPE_BOOL, "true when more rows than max_rows matched"},
	{NULL, 0, NULL}};

static const rbk_param_decl exec_params[] = {
	{"db", RBK_TYPE_STRING, 1, NULL, "path of the database file (must exist)"},
	{"sql", RBK_TYPE_STRING, 1, NULL, "one statement; ? or ?NNN for params"},
	{"params", RBK_TYPE_LIST, 0, "[]", "values bound to the statement's parameters, in order"},
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl exec_outputs[] = {
	{"changes", RBK_TYPE_INT, "rows inserted, updated or deleted by the statement"},
	{"last_insert_rowid", RBK_TYPE_INT, "rowid of the last row inserted on this connection (0 when none)"},
	{NULL, 0, NULL}};

static const rbk_action actions[] = {
	{"integrity_check", "check a database file with PRAGMA integrity_check", integrity_params, integrity_outputs, 1,
	 integrity_run, integrity_plan, NULL},
	{"backup", "online backup to DIR/<name>.<UTC time>.bak, pruned to the newest `keep`", backup_params,
	 backup_outputs, 1, backup_run, backup_plan, NULL},
	{"restore", "restore the newest backup that passes an integrity check; the current file is moved aside",
	 restore_params, restore_outputs, 1, restore_run, restore_plan, NULL},
	{"query", "run one read-only statement with bound params; rows as maps", query_params, query_outputs, 1,
	 query_run, query_plan, NULL},
	{"exec", "run one statement with bound params; count the changed rows", exec_params, exec_outputs, 0, exec_run,
	 exec_plan, NULL},
};

static const rbk_plugin plugin = {"sqlite", "1.0.0", actions, sizeof actions / sizeof *actions};

int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out);
int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out)
{
	if (h->abi_major != RBK_PLUGIN_ABI_MAJOR || h->struct_size < sizeof(rbk_host))
		return -1;
	host = h;
	*out = &plugin;
	return 0;
}
