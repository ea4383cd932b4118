/* rbk-file: look at files (exists, age, size, sha256, free_space, find) and
 * change them safely (copy, move, write, append, remove).
 *
 * A file that is written whole (copy, write, move across file systems) is
 * first written to a hidden temp file in the destination's directory
 * (".NAME.rbk-tmp-XXXXXX"), synced, then renamed over the destination, and
 * the directory is synced: a reader sees the old file or the new one, never
 * a part. Directory walks (find, recursive remove) never follow symbolic
 * links. Anything that can take long checks the step's time left. */
#include <rbk/plugin.h>

#include <openssl/evp.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

RBK_PLUGIN_DECLARE();

static const rbk_host *host;

#define DEFAULT_FIND_MAX 1000
#define CHUNK 65536

/* ---- small helpers ---- */

/* A required string param the host let through absent (never, by contract). */
static int missing(rbk_call *call, const char *name)
{
	host->set_error(call, "param '%s' is missing or not a string", name);
	return 1;
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

static void set_str(rbk_call *call, const char *name, const char *s) { host->set_output_string(call, name, s, strlen(s)); }

static int expired(rbk_call *call) { return host->time_left_ms(call) == 0; }

static const char *type_of(mode_t m) { return S_ISREG(m) ? "file" : S_ISDIR(m) ? "dir" : "other"; }

/* The directory part of path ("." when none), allocated. */
static char *dir_name(const char *path)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	while (n > 0 && path[n - 1] != '/')
		n--;
	if (n == 0)
		return strdup(".");
	while (n > 1 && path[n - 1] == '/')
		n--;
	return strndup(path, n);
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static int write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A temp file beside path: fd, its name in *tmp. -1 with errno. */
static int make_temp(const char *path, char **tmp)
{
	char *dir = dir_name(path);
	*tmp = dir ? xasprintf("%s/.%s.rbk-tmp-XXXXXX", dir, base_name(path)) : NULL;
	free(dir);
	if (!*tmp) {
		errno = ENOMEM;
		return -1;
	}
	int fd = mkostemp(*tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		free(*tmp);
		*tmp = NULL;
		errno = e;
	}
	return fd;
}

/* Rename tmp to dst; without overwrite, refuse (EEXIST) when dst exists. */
static int put_in_place(const char *tmp, const char *dst, int overwrite)
{
	if (overwrite)
		return rename(tmp, dst);
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* A file system without RENAME_NOREPLACE: link fails on an existing name. */
	if (link(tmp, dst) != 0)
		return -1;
	unlink(tmp);
	return 0;
}

/* Parse an octal mode such as "0644" or "755". -1: not one. */
static long parse_mode(const char *s)
{
	if (!s || !*s || strlen(s) > 4)
		return -1;
	long m = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '7')
			return -1;
		m = m * 8 + (*p - '0');
	}
	return m;
}

/* Copy the open file in to the open file out; 0, or -1 with *why. */
static int copy_fd(rbk_call *call, int in, int out, const char *src, const char *dst, int64_t *bytes, char **why)
{
	char *buf = malloc(CHUNK);
	if (!buf) {
		*why = xasprintf("out of memory");
		return -1;
	}
	int rc = 0;
	*bytes = 0;
	for (;;) {
		if (expired(call)) {
			*why = xasprintf("copying %s timed out after %lld bytes", src, (long long)*bytes);
			rc = -1;
			break;
		}
		ssize_t n = read(in, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*why = xasprintf("cannot read %s: %s", src, strerror(errno));
			rc = -1;
			break;
		}
		if (n == 0)
			break;
		if (write_all(out, buf, (size_t)n) < 0) {
			*why = xasprintf("cannot write %s: %s", dst, strerror(errno));
			rc = -1;
			break;
		}
		*bytes += n;
	}
	free(buf);
	return rc;
}

/* Copy the regular file src to dst through a temp file: mode kept, synced,
 * renamed into place (refused when dst exists and !overwrite). */
static int copy_atomic(rbk_call *call, const char *src, const char *dst, int overwrite, int64_t *bytes, char **why)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		*why = xasprintf("cannot read %s: %s", src, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
		*why = xasprintf("cannot copy %s: not a regular file", src);
		close(in);
		return -1;
	}
	char *tmp = NULL;
	int out = make_temp(dst, &tmp);
	if (out < 0) {
		*why = xasprintf("cannot create a temp file beside %s: %s", dst, strerror(errno));
		close(in);
		return -1;
	}
	int rc = copy_fd(call, in, out, src, dst, bytes, why);
	close(in);
	if (rc == 0 && fchmod(out, st.st_mode & 07777) != 0) {
		*why = xasprintf("cannot set the mode of %s: %s", tmp, strerror(errno));
		rc = -1;
	}
	if (rc == 0 && fsync(out) != 0) {
		*why = xasprintf("cannot sync %s: %s", tmp, strerror(errno));
		rc = -1;
	}
	if (close(out) != 0 && rc == 0) {
		*why = xasprintf("cannot write %s: %s", tmp, strerror(errno));
		rc = -1;
	}
	if (rc == 0 && put_in_place(tmp, dst, overwrite) != 0) {
		*why = errno == EEXIST ? xasprintf("%s already exists (overwrite: true replaces it)", dst)
				       : xasprintf("cannot rename %s to %s: %s", tmp, dst, strerror(errno));
		rc = -1;
	}
	if (rc)
		unlink(tmp);
	else {
		char *dir = dir_name(dst);
		if (dir)
			sync_dir(dir);
		free(dir);
	}
	free(tmp);
	return rc;
}

/* Whether the regular files a and b hold the same bytes. */
static int same_bytes(const char *a, const char *b)
{
	struct stat sa, sb;
	if (stat(a, &sa) != 0 || stat(b, &sb) != 0 || !S_ISREG(sa.st_mode) || !S_ISREG(sb.st_mode) ||
	    sa.st_size != sb.st_size)
		return 0;
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	int same = fa && fb;
	char *ba = malloc(CHUNK), *bb = malloc(CHUNK);
	if (!ba || !bb)
		same = 0;
	while (same) {
		size_t na = fread(ba, 1, CHUNK, fa), nb = fread(bb, 1, CHUNK, fb);
		if (na != nb || memcmp(ba, bb, na) != 0)
			same = 0;
		if (na < CHUNK)
			break;
	}
	if (same && (ferror(fa) || ferror(fb)))
		same = 0;
	free(ba);
	free(bb);
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

/* Whether path holds exactly content (and, when mode >= 0, that mode). */
static int holds(const char *path, const char *content, size_t len, long mode)
{
	struct stat st;
	if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != len ||
	    (mode >= 0 && (long)(st.st_mode & 07777) != mode))
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	char *buf = malloc(len ? len : 1);
	size_t got = 0;
	while (buf && got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	char extra;
	int same = buf && got == len && memcmp(buf, content, len) == 0 && read(fd, &extra, 1) == 0;
	free(buf);
	close(fd);
	return same;
}

/* ---- exists, age, size, sha256 ---- */

static int exists_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path");
	if (!path)
		return missing(call, "path");
	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno != ENOENT && errno != ENOTDIR) {
			host->set_error(call, "cannot stat %s: %s", path, strerror(errno));
			return 1;
		}
		host->set_output_bool(call, "exists", 0);
		set_str(call, "type", "none");
		return 0;
	}
	host->set_output_bool(call, "exists", 1);
	set_str(call, "type", type_of(st.st_mode));
	return 0;
}

static int age_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path");
	if (!path)
		return missing(call, "path");
	struct stat st;
	if (stat(path, &st) != 0) {
		host->set_error(call, "cannot stat %s: %s", path, strerror(errno));
		return 1;
	}
	host->set_output_int(call, "seconds", (int64_t)(time(NULL) - st.st_mtime));
	host->set_output_int(call, "mtime", (int64_t)st.st_mtime);
	return 0;
}

static int size_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path");
	if (!path)
		return missing(call, "path");
	struct stat st;
	if (stat(path, &st) != 0) {
		host->set_error(call, "cannot stat %s: %s", path, strerror(errno));
		return 1;
	}
	if (S_ISDIR(st.st_mode)) {
		host->set_error(call, "%s is a directory; file.size measures files", path);
		return 1;
	}
	host->set_output_int(call, "bytes", (int64_t)st.st_size);
	return 0;
}

static int sha256_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path");
	if (!path)
		return missing(call, "path");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		host->set_error(call, "cannot read %s: %s", path, strerror(errno));
		return 1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
		host->set_error(call, "cannot hash %s: it is a directory", path);
		close(fd);
		return 1;
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char *buf = malloc(CHUNK);
	int rc = 1;
	int64_t total = 0;
	if (!ctx || !buf || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		host->set_error(call, "cannot hash %s: sha256 is not available", path);
		goto out;
	}
	for (;;) {
		if (expired(call)) {
			host->set_error(call, "hashing %s timed out after %lld bytes", path, (long long)total);
			goto out;
		}
		ssize_t n = read(fd, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			host->set_error(call, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		total += n;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
		host->set_error(call, "cannot hash %s", path);
		goto out;
	}
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	host->set_output_string(call, "sha256", hex, 2 * (size_t)mdlen);
	host->set_output_int(call, "bytes", total);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	close(fd);
	return rc;
}


/* ---- copy, move ---- */

static int copy_run(rbk_call *call, const rbk_value *args)
{
	const char *src = rbk_arg_string(args, "src"), *dst = rbk_arg_string(args, "dst");
	if (!src)
		return missing(call, "src");
	if (!dst)
		return missing(call, "dst");
	int overwrite = rbk_arg_bool(args, "overwrite", 0);
	struct stat st;
	if (stat(src, &st) != 0) {
		host->set_error(call, "cannot copy %s: %s", src, strerror(errno));
		return 1;
	}
	if (!S_ISREG(st.st_mode)) {
		host->set_error(call, "cannot copy %s: %s", src,
				S_ISDIR(st.st_mode) ? "it is a directory (file.copy copies files)" : "not a regular file");
		return 1;
	}
	if (stat(dst, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			host->set_error(call, "cannot copy to %s: it is a directory (name the file to create)", dst);
			return 1;
		}
		if (!overwrite) {
			host->set_error(call, "%s already exists (overwrite: true replaces it)", dst);
			return 1;
		}
	}
	int64_t bytes = 0;
	char *why = NULL;
	if (copy_atomic(call, src, dst, overwrite, &bytes, &why) < 0) {
		host->set_error(call, "%s", why ? why : "out of memory");
		free(why);
		return 1;
	}
	host->set_output_int(call, "bytes", bytes);
	host->log(call, RBK_LOG_INFO, "copied %s to %s (%lld bytes)", src, dst, (long long)bytes);
	return 0;
}

static int copy_plan(rbk_call *call, const rbk_value *args)
{
	host->log(call, RBK_LOG_INFO, "would copy %s to %s%s", rbk_arg_string(args, "src"), rbk_arg_string(args, "dst"),
		  rbk_arg_bool(args, "overwrite", 0) ? " (replacing it if it exists)" : " (refused if it exists)");
	return 0;
}

static int move_run(rbk_call *call, const rbk_value *args)
{
	const char *src = rbk_arg_string(args, "src"), *dst = rbk_arg_string(args, "dst");
	if (!src)
		return missing(call, "src");
	if (!dst)
		return missing(call, "dst");
	int overwrite = rbk_arg_bool(args, "overwrite", 0);
	struct stat ss, ds;
	int have_dst = lstat(dst, &ds) == 0;
	if (lstat(src, &ss) != 0) {
		if (errno == ENOENT && have_dst) {
			/* Done before: a re-run after the move happened. */
			host->log(call, RBK_LOG_INFO, "%s is gone and %s exists: already moved", src, dst);
			host->set_output_bool(call, "moved", 0);
			set_str(call, "path", dst);
			return 0;
		}
		host->set_error(call, "cannot move %s: %s", src, strerror(errno));
		return 1;
	}
	if (have_dst && !overwrite) {
		/* A move across file systems interrupted after its copy. */
		if (same_bytes(src, dst) && S_ISREG(ss.st_mode) && S_ISREG(ds.st_mode) && ss.st_ino != ds.st_ino &&
		    unlink(src) == 0) {
			host->log(call, RBK_LOG_INFO, "%s already holds the bytes of %s: removed %s", dst, src, src);
			host->set_output_bool(call, "moved", 1);
			set_str(call, "path", dst);
			return 0;
		}
		host->set_error(call, "%s already exists (overwrite: true replaces it)", dst);
		return 1;
	}
	if (put_in_place(src, dst, overwrite) != 0) {
		int e = errno;
		if (e == EEXIST) {
			host->set_error(call, "%s already exists (overwrite: true replaces it)", dst);
			return 1;
		}
		if (e != EXDEV) {
			host->set_error(call, "cannot move %s to %s: %s", src, dst, strerror(e));
			return 1;
		}
		if (!S_ISREG(ss.st_mode)) {
			host->set_error(call, "cannot move %s to %s: another file system, and only files are copied across",
					src, dst);
			return 1;
		}
		int64_t bytes = 0;
		char *why = NULL;
		if (copy_atomic(call, src, dst, overwrite, &bytes, &why) < 0) {
			host->set_error(call, "%s", why ? why : "out of memory");
			free(why);
			return 1;
		}
		if (unlink(src) != 0) {
			host->set_error(call, "copied %s to %s but cannot remove it: %s", src, dst, strerror(errno));
			return 1;
		}
	}
	char *d1 = dir_name(src), *d2 = dir_name(dst);
	if (d1)
		sync_dir(d1);
	if (d2 && (!d1 || strcmp(d1, d2)))
		sync_dir(d2);
	free(d1);
	free(d2);
	host->set_output_bool(call, "moved", 1);
	set_str(call, "path", dst);
	host->log(call, RBK_LOG_INFO, "moved %s to %s", src, dst);
	return 0;
}

static int move_plan(rbk_call *call, const rbk_value *args)
{
	host->log(call, RBK_LOG_INFO, "would move %s to %s%s", rbk_arg_string(args, "src"), rbk_arg_string(args, "dst"),
		  rbk_arg_bool(args, "overwrite", 0) ? " (replacing it if it exists)" : " (refused if it exists)");
	return 0;
}

/* ---- write, append ---- */

/* The params write and append share: path, content and mode (octal text,
 * 0644 by default). Returns 0, or 1 after setting the step's error. */
static int text_args(rbk_call *call, const rbk_value *args, const char **path, const rbk_value **c, long *mode)
{
	*path = rbk_arg_string(args, "path");
	if (!*path)
		return missing(call, "path");
	*c = host->arg(args, "content");
	if (!*c || (*c)->type != RBK_TYPE_STRING)
		return missing(call, "content");
	const char *mode_text = rbk_arg_string(args, "mode");
	*mode = parse_mode(mode_text ? mode_text : "0644");
	if (*mode < 0) {
		host->set_error(call, "mode must be octal digits such as \"0644\", not \"%s\"", mode_text);
		return 1;
	}
	return 0;
}

static int write_run(rbk_call *call, const rbk_value *args)
{
	const char *path;
	const rbk_value *c;
	long mode;
	if (text_args(call, args, &path, &c, &mode))
		return 1;
	const char *content = c->as.str.ptr;
	size_t len = c->as.str.len;
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		host->set_error(call, "cannot write %s: it is a directory", path);
		return 1;
	}
	host->set_output_int(call, "bytes", (int64_t)len);
	if (holds(path, content, len, mode)) {
		host->set_output_bool(call, "changed", 0);
		host->log(call, RBK_LOG_INFO, "%s already holds these %zu bytes with mode %04lo", path, len, mode);
		return 0;
	}
	char *tmp = NULL;
	int fd = make_temp(path, &tmp);
	if (fd < 0) {
		host->set_error(call, "cannot write %s: cannot create a temp file beside it: %s", path, strerror(errno));
		return 1;
	}
	int rc = 0;
	if (write_all(fd, content, len) < 0 || fchmod(fd, (mode_t)mode) != 0 || fsync(fd) != 0) {
		host->set_error(call, "cannot write %s: %s", tmp, strerror(errno));
		rc = 1;
	}
	if (close(fd) != 0 && !rc) {
		host->set_error(call, "cannot write %s: %s", tmp, strerror(errno));
		rc = 1;
	}
	if (!rc && rename(tmp, path) != 0) {
		host->set_error(call, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		rc = 1;
	}
	if (rc)
		unlink(tmp);
	else {
		char *dir = dir_name(path);
		if (dir)
			sync_dir(dir);
		free(dir);
		host->set_output_bool(call, "changed", 1);
		host->log(call, RBK_LOG_INFO, "wrote %zu bytes to %s (mode %04lo)", len, path, mode);
	}
	free(tmp);
	return rc;
}

static int write_plan(rbk_call *call, const rbk_value *args)
{
	const rbk_value *c = host->arg(args, "content");
	const char *m = rbk_arg_string(args, "mode");
	size_t n = c ? c->as.str.len : 0;
	host->log(call, RBK_LOG_INFO, "would write %zu byte%s to %s (mode %s), replacing it atomically", n, n == 1 ? "" : "s",
		  rbk_arg_string(args, "path"), m ? m : "0644");
	return 0;
}

static int append_run(rbk_call *call, const rbk_value *args)
{
	const char *path;
	const rbk_value *c;
	long mode;
	if (text_args(call, args, &path, &c, &mode))
		return 1;
	int created = 1;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		created = 0;
		fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	}
	if (fd < 0) {
		host->set_error(call, "cannot append to %s: %s", path, strerror(errno));
		return 1;
	}
	int rc = 0;
	struct stat st;
	if ((created && fchmod(fd, (mode_t)mode) != 0) || write_all(fd, c->as.str.ptr, c->as.str.len) < 0 ||
	    fsync(fd) != 0 || fstat(fd, &st) != 0) {
		host->set_error(call, "cannot append to %s: %s", path, strerror(errno));
		rc = 1;
	}
	if (close(fd) != 0 && !rc) {
		host->set_error(call, "cannot append to %s: %s", path, strerror(errno));
		rc = 1;
	}
	if (rc)
		return 1;
	if (created) {
		char *dir = dir_name(path);
		if (dir)
			sync_dir(dir);
		free(dir);
	}
	host->set_output_int(call, "bytes", (int64_t)c->as.str.len);
	host->set_output_int(call, "size", (int64_t)st.st_size);
	host->set_output_bool(call, "created", created);
	return 0;
}

static int append_plan(rbk_call *call, const rbk_value *args)
{
	const rbk_value *c = host->arg(args, "content");
	size_t n = c ? c->as.str.len : 0;
	host->log(call, RBK_LOG_INFO, "would append %zu byte%s to %s", n, n == 1 ? "" : "s", rbk_arg_string(args, "path"));
	return 0;
}

/* ---- remove ---- */

/* Remove everything inside the open directory fd (closed here), never
 * following a symbolic link. Counts removed entries. */
static int empty_dir(rbk_call *call, int fd, const char *path, int64_t *count, char **why)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		*why = xasprintf("cannot read %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (errno = 0, e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (expired(call)) {
			*why = xasprintf("removing %s timed out after %lld entries", path, (long long)*count);
			rc = -1;
			break;
		}
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT)
				continue;
			*why = xasprintf("cannot stat %s/%s: %s", path, e->d_name, strerror(errno));
			rc = -1;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			char *sub = xasprintf("%s/%s", path, e->d_name);
			int cfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (!sub || cfd < 0) {
				*why = xasprintf("cannot open %s/%s: %s", path, e->d_name, strerror(errno));
				if (cfd >= 0)
					close(cfd);
				free(sub);
				rc = -1;
				break;
			}
			rc = empty_dir(call, cfd, sub, count, why);
			free(sub);
			if (rc == 0 && unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) != 0) {
				*why = xasprintf("cannot remove %s/%s: %s", path, e->d_name, strerror(errno));
				rc = -1;
			}
		} else if (unlinkat(dirfd(d), e->d_name, 0) != 0) {
			*why = xasprintf("cannot remove %s/%s: %s", path, e->d_name, strerror(errno));
			rc = -1;
		}
		if (rc == 0)
			(*count)++;
	}
	if (rc == 0 && errno != 0) {
		*why = xasprintf("cannot read %s: %s", path, strerror(errno));
		rc = -1;
	}
	closedir(d);
	return rc;
}

static int remove_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path");
	if (!path)
		return missing(call, "path");
	int recursive = rbk_arg_bool(args, "recursive", 0);
	struct stat st;
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT) {
			host->set_output_bool(call, "removed", 0);
			host->set_output_int(call, "count", 0);
			host->log(call, RBK_LOG_INFO, "%s does not exist; nothing to remove", path);
			return 0;
		}
		host->set_error(call, "cannot remove %s: %s", path, strerror(errno));
		return 1;
	}
	int64_t count = 0;
	if (S_ISDIR(st.st_mode)) {
		if (!recursive) {
			host->set_error(call, "%s is a directory (recursive: true removes it and everything in it)", path);
			return 1;
		}
		char *real = realpath(path, NULL);
		if (real && !strcmp(real, "/")) {
			host->set_error(call, "refusing to remove / recursively");
			free(real);
			return 1;
		}
		free(real);
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		char *why = NULL;
		if (fd < 0) {
			host->set_error(call, "cannot open %s: %s", path, strerror(errno));
			return 1;
		}
		if (empty_dir(call, fd, path, &count, &why) < 0) {
			host->set_output_int(call, "count", count);
			host->set_error(call, "%s", why ? why : "out of memory");
			free(why);
			return 1;
		}
		if (rmdir(path) != 0) {
			host->set_output_int(call, "count", count);
			host->set_error(call, "cannot remove %s: %s", path, strerror(errno));
			return 1;
		}
	} else if (unlink(path) != 0) {
		host->set_error(call, "cannot remove %s: %s", path, strerror(errno));
		return 1;
	}
	count++;
	char *dir = dir_name(path);
	if (dir)
		sync_dir(dir);
	free(dir);
	host->set_output_bool(call, "removed", 1);
	host->set_output_int(call, "count", count);
	host->log(call, RBK_LOG_INFO, "removed %s (%lld entr%s)", path, (long long)count, count == 1 ? "y" : "ies");
	return 0;
}

static int remove_plan(rbk_call *call, const rbk_value *args)
{
	host->log(call, RBK_LOG_INFO, "would remove %s%s", rbk_arg_string(args, "path"),
		  rbk_arg_bool(args, "recursive", 0) ? " and everything in it" : " (not a directory)");
	return 0;
}

/* ---- free_space ---- */

static int free_space_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path");
	if (!path)
		return missing(call, "path");
	struct statvfs v;
	if (statvfs(path, &v) != 0) {
		host->set_error(call, "cannot measure the file system of %s: %s", path, strerror(errno));
		return 1;
	}
	uint64_t fr = v.f_frsize ? v.f_frsize : v.f_bsize;
	uint64_t total = (uint64_t)v.f_blocks * fr, avail = (uint64_t)v.f_bavail * fr;
	uint64_t used = ((uint64_t)v.f_blocks - (uint64_t)v.f_bfree) * fr;
	/* As df: use is used / (used + available to unprivileged users). */
	uint64_t denom = used + avail;
	uint64_t pct100 = denom ? (uint64_t)((double)used * 10000.0 / (double)denom + 0.5) : 0;
	host->set_output_int(call, "bytes_free", (int64_t)avail);
	host->set_output_int(call, "bytes_total", (int64_t)total);
	host->set_output_int(call, "bytes_used", (int64_t)used);
	rbk_value pu = {.type = RBK_TYPE_NUMBER}, pf = {.type = RBK_TYPE_NUMBER};
	pu.as.num = (double)pct100 / 100.0;
	pf.as.num = (double)(10000 - pct100) / 100.0;
	host->set_output(call, "percent_used", &pu);
	host->set_output(call, "percent_free", &pf);
	return 0;
}

static int free_space_run(rbk_call *call, const rbk_value *args);

/* Under --dry-run it reads for real: it changes nothing, and the
 * run's guards then see what is (check mode, docs/cli.md). */
static int free_space_plan(rbk_call *call, const rbk_value *args)
{
	return free_space_run(call, args);
}

/* ---- find ---- */

typedef struct {
	rbk_call *call;
	const char *pattern;
	int64_t older_ms; /* -1: any age */
	int64_t now_ms;
	int want; /* 0 file, 1 dir, 2 any */
	int64_t max;
	char **paths;
	size_t n, cap;
	int truncated, timed_out;
} finder;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int add_path(finder *f, const char *p)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 32;
		char **np = realloc(f->paths, cap * sizeof *np);
		if (!np)
			return -1;
		f->paths = np;
		f->cap = cap;
	}
	char *s = strdup(p);
	if (!s)
		return -1;
	f->paths[f->n++] = s;
	return 0;
}

/* Walk the open directory fd (closed here) named path. */
static void walk(finder *f, int fd, const char *path)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		host->log(f->call, RBK_LOG_WARN, "cannot read %s: %s", path, strerror(errno));
		close(fd);
		return;
	}
	/* Sorted, so the result does not depend on the directory's order. */
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(names, cap * sizeof *nn);
			if (!nn)
				break;
			names = nn;
		}
		if (!(names[n] = strdup(e->d_name)))
			break;
		n++;
	}
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n && !f->truncated && !f->timed_out; i++) {
		if (expired(f->call)) {
			f->timed_out = 1;
			break;
		}
		struct stat st;
		if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		char *full = xasprintf("%s/%s", path, names[i]);
		if (!full)
			break;
		int kind_ok = f->want == 2 || (f->want == 0 && S_ISREG(st.st_mode)) || (f->want == 1 && S_ISDIR(st.st_mode));
		int64_t mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
		if (kind_ok && fnmatch(f->pattern, names[i], 0) == 0 &&
		    (f->older_ms < 0 || f->now_ms - mtime_ms > f->older_ms)) {
			if ((int64_t)f->n >= f->max)
				f->truncated = 1;
			else
				add_path(f, full);
		}
		if (S_ISDIR(st.st_mode) && !f->truncated) {
			int cfd = openat(dirfd(d), names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0)
				host->log(f->call, RBK_LOG_WARN, "cannot read %s: %s", full, strerror(errno));
			else
				walk(f, cfd, full);
		}
		free(full);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
}

static int find_run(rbk_call *call, const rbk_value *args)
{
	const char *dir = rbk_arg_string(args, "dir"), *name = rbk_arg_string(args, "name"), *type = rbk_arg_string(args, "type");
	if (!dir)
		return missing(call, "dir");
	finder f = {.call = call, .pattern = name ? name : "*", .older_ms = rbk_arg_int(args, "older_than", -1),
		    .max = rbk_arg_int(args, "max", DEFAULT_FIND_MAX)};
	if (!type || !strcmp(type, "file"))
		f.want = 0;
	else if (!strcmp(type, "dir"))
		f.want = 1;
	else if (!strcmp(type, "any"))
		f.want = 2;
	else {
		host->set_error(call, "type must be file, dir or any, not \"%s\"", type);
		return 1;
	}
	if (f.max < 1) {
		host->set_error(call, "max must be at least 1, not %lld", (long long)f.max);
		return 1;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	f.now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		host->set_error(call, "cannot search %s: %s", dir, errno == ENOTDIR ? "not a directory" : strerror(errno));
		return 1;
	}
	size_t dl = strlen(dir);
	char *top = strndup(dir, dl > 1 && dir[dl - 1] == '/' ? dl - 1 : dl);
	if (top)
		walk(&f, fd, top);
	else
		close(fd);
	free(top);
	int rc = 0;
	if (f.timed_out) {
		host->set_error(call, "searching %s timed out after %zu matches", dir, f.n);
		rc = 1;
	} else {
		rbk_value *items = calloc(f.n ? f.n : 1, sizeof *items);
		for (size_t i = 0; items && i < f.n; i++) {
			items[i].type = RBK_TYPE_STRING;
			items[i].as.str.ptr = f.paths[i];
			items[i].as.str.len = strlen(f.paths[i]);
		}
		rbk_value l = {.type = RBK_TYPE_LIST};
		l.as.list.items = items;
		l.as.list.count = items ? f.n : 0;
		host->set_output(call, "paths", &l);
		host->set_output_int(call, "count", (int64_t)l.as.list.count);
		host->set_output_bool(call, "truncated", f.truncated);
		if (f.truncated)
			host->log(call, RBK_LOG_WARN, "more than %lld matches in %s; the rest were not listed", (long long)f.max,
				  dir);
		free(items);
	}
	for (size_t i = 0; i < f.n; i++)
		free(f.paths[i]);
	free(f.paths);
	return rc;
}

static int find_run(rbk_call *call, const rbk_value *args);

/* Under --dry-run it reads for real: it changes nothing, and the
 * run's guards then see what is (check mode, docs/cli.md). */
static int find_plan(rbk_call *call, const rbk_value *args)
{
	return find_run(call, args);
}

/* ---- the plugin ---- */

#define END_PARAMS {NULL, 0, 0, NULL, NULL}
#define END_OUTPUTS {NULL, 0, NULL}

static const rbk_param_decl path_params[] = {
	{"path", RBK_TYPE_STRING, 1, NULL, "the path (symbolic links are followed)"}, END_PARAMS};
static const rbk_output_decl exists_outputs[] = {
	{"exists", RBK_TYPE_BOOL, "whether the path exists"},
	{"type", RBK_TYPE_STRING, "file, dir, other (device, socket, fifo) or none"},
	END_OUTPUTS};
static const rbk_output_decl age_outputs[] = {
	{"seconds", RBK_TYPE_INT, "seconds since the last modification (negative when in the future)"},
	{"mtime", RBK_TYPE_INT, "time of the last modification, Unix seconds"},
	END_OUTPUTS};
static const rbk_output_decl size_outputs[] = {{"bytes", RBK_TYPE_INT, "size in bytes"}, END_OUTPUTS};
static const rbk_output_decl sha256_outputs[] = {
	{"sha256", RBK_TYPE_STRING, "SHA-256 of the content, 64 lowercase hex digits"},
	{"bytes", RBK_TYPE_INT, "bytes read"},
	END_OUTPUTS};

static const rbk_param_decl copy_params[] = {
	{"src", RBK_TYPE_STRING, 1, NULL, "the regular file to copy"},
	{"dst", RBK_TYPE_STRING, 1, NULL, "the new file's path (not a directory)"},
	{"overwrite", RBK_TYPE_BOOL, 0, "false", "replace dst when it exists"},
	END_PARAMS};
static const rbk_output_decl copy_outputs[] = {{"bytes", RBK_TYPE_INT, "bytes copied"}, END_OUTPUTS};

static const rbk_param_decl move_params[] = {
	{"src", RBK_TYPE_STRING, 1, NULL, "the file or directory to move"},
	{"dst", RBK_TYPE_STRING, 1, NULL, "its new path"},
	{"overwrite", RBK_TYPE_BOOL, 0, "false", "replace dst when it exists"},
	END_PARAMS};
static const rbk_output_decl move_outputs[] = {
	{"moved", RBK_TYPE_BOOL, "false when src was already gone and dst existed (moved before)"},
	{"path", RBK_TYPE_STRING, "dst"},
	END_OUTPUTS};

static const rbk_param_decl write_params[] = {
	{"path", RBK_TYPE_STRING, 1, NULL, "the file to create or replace"},
	{"content", RBK_TYPE_STRING, 1, NULL, "its whole new content"},
	{"mode", RBK_TYPE_STRING, 0, "\"0644\"", "permissions, octal (not changed by the umask)"},
	END_PARAMS};
static const rbk_output_decl write_outputs[] = {
	{"bytes", RBK_TYPE_INT, "bytes in the file"},
	{"changed", RBK_TYPE_BOOL, "false when the file already held this content with this mode"},
	END_OUTPUTS};

static const rbk_param_decl append_params[] = {
	{"path", RBK_TYPE_STRING, 1, NULL, "the file to append to (created when missing)"},
	{"content", RBK_TYPE_STRING, 1, NULL, "text added at its end"},
	{"mode", RBK_TYPE_STRING, 0, "\"0644\"", "permissions of a file this creates, octal"},
	END_PARAMS};
static const rbk_output_decl append_outputs[] = {
	{"bytes", RBK_TYPE_INT, "bytes appended"},
	{"size", RBK_TYPE_INT, "size of the file afterwards"},
	{"created", RBK_TYPE_BOOL, "whether the file was created"},
	END_OUTPUTS};

static const rbk_param_decl remove_params[] = {
	{"path", RBK_TYPE_STRING, 1, NULL, "the file, link or directory to remove (a link itself, never its target)"},
	{"recursive", RBK_TYPE_BOOL, 0, "false", "remove a directory and everything in it"},
	END_PARAMS};
static const rbk_output_decl remove_outputs[] = {
	{"removed", RBK_TYPE_BOOL, "false when the path did not exist"},
	{"count", RBK_TYPE_INT, "entries removed, the path itself included"},
	END_OUTPUTS};

static const rbk_param_decl free_space_params[] = {
	{"path", RBK_TYPE_STRING, 1, NULL, "any path on the file system to measure"}, END_PARAMS};
static const rbk_output_decl free_space_outputs[] = {
	{"bytes_free", RBK_TYPE_INT, "bytes available to unprivileged users"},
	{"bytes_total", RBK_TYPE_INT, "size of the file system"},
	{"bytes_used", RBK_TYPE_INT, "bytes in use"},
	{"percent_used", RBK_TYPE_NUMBER, "use in percent as df computes it, 2 decimals"},
	{"percent_free", RBK_TYPE_NUMBER, "100 - percent_used"},
	END_OUTPUTS};

static const rbk_param_decl find_params[] = {
	{"dir", RBK_TYPE_STRING, 1, NULL, "the directory to search, recursively"},
	{"name", RBK_TYPE_STRING, 0, "\"*\"", "glob matched against each entry's name (fnmatch)"},
	{"older_than", RBK_TYPE_DURATION, 0, "none", "only entries modified longer ago than this"},
	{"type", RBK_TYPE_STRING, 0, "file", "file, dir or any"},
	{"max", RBK_TYPE_INT, 0, "1000", "at most this many paths"},
	END_PARAMS};
static const rbk_output_decl find_outputs[] = {
	{"paths", RBK_TYPE_LIST, "matching paths (dir/relative path), sorted per directory"},
	{"count", RBK_TYPE_INT, "how many paths"},
	{"truncated", RBK_TYPE_BOOL, "true when more entries matched than max"},
	END_OUTPUTS};

/* The actions that only read have their run as their plan: under --dry-run
 * they read for real (check mode, docs/cli.md). */
static const rbk_action actions[] = {
	{"exists", "whether a path exists, and its type", path_params, exists_outputs, 1, exists_run, exists_run, NULL},
	{"age", "seconds since a file was last modified", path_params, age_outputs, 1, age_run, age_run, NULL},
	{"size", "size of a file in bytes", path_params, size_outputs, 1, size_run, size_run, NULL},
	{"sha256", "SHA-256 of a file's content", path_params, sha256_outputs, 1, sha256_run, sha256_run, NULL},
	{"copy", "copy a file atomically (temp file, then rename), keeping its mode", copy_params, copy_outputs, 0,
	 copy_run, copy_plan, NULL},
	{"move", "rename a file or directory (copy and remove across file systems)", move_params, move_outputs, 1,
	 move_run, move_plan, NULL},
	{"write", "replace a file's content atomically (temp file, fsync, rename)", write_params, write_outputs, 1,
	 write_run, write_plan, NULL},
	{"append", "append text to a file and fsync it", append_params, append_outputs, 0, append_run, append_plan, NULL},
	{"remove", "remove a file, or a directory with recursive; a missing path is not an error", remove_params,
	 remove_outputs, 1, remove_run, remove_plan, NULL},
	{"free_space", "free and used space of the file system holding a path", free_space_params, free_space_outputs,
	 1, free_space_run, free_space_plan, NULL},
	{"find", "list entries under a directory by name, age and type, never following links", find_params,
	 find_outputs, 1, find_run, find_plan, NULL},
};

static const rbk_plugin plugin = {"file", "1.0.0", actions, sizeof actions / sizeof *actions};

int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out);
int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out)
{
	if (h->abi_major != RBK_PLUGIN_ABI_MAJOR || h->struct_size < sizeof(rbk_host))
		return -1;
	host = h;
	*out = &plugin;
	return 0;
}
