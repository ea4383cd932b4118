/* provenance: where a runbook came from, and the chain's seals in git
 * (provenance.h). libgit2 does the work in the module rbk-gitrepo.so,
 * loaded only for a file in a work tree or a seal directory. */
#include "audit/provenance.h"
#include "audit/gitrepo.h"
#include "base/dirlist.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/module.h"
#include "lang/json.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MODULE "gitrepo"
#define WHAT "git provenance"
#define FN(f, err) ((__typeof__(&rbk_gitrepo_##f))rbk_module_sym(MODULE, WHAT, "rbk_gitrepo_" #f, err))

/* The directory holding .git (a directory or a file) at or above the file
 * abs, into top; false outside a work tree. A cheap test that spares
 * loading libgit2 for runbooks outside one. */
static bool work_tree_of(const char *abs, char top[PATH_MAX])
{
	snprintf(top, PATH_MAX, "%s", abs);
	for (char *slash; (slash = strrchr(top, '/'));) {
		*slash = '\0';
		char probe[PATH_MAX + 8];
		snprintf(probe, sizeof probe, "%s/.git", *top ? top : "");
		struct stat st;
		if (stat(probe, &st) == 0)
			return true;
	}
	return false;
}

/* ---- the cache of git facts ----
 *
 * libgit2 costs a start more than everything else (loading it and its TLS
 * library, which parses the system's certificates), for facts that change
 * only with the file, the index or HEAD. So they are kept in
 * HOME/cache/, under a key made of what they depend on, all read with a
 * few stat(2)s: the file's identity, size and times; HEAD's text, the ref
 * it names (its file, else packed-refs); the index's identity, size and
 * times. A file or index changed in the last 2 s is not cached (a change
 * within the same timestamp would go unseen: git's "racily clean"), nor is
 * a work tree whose .git is a file (a linked work tree, a submodule). */
#define RACY_S 2

static bool stat_key(rbk_buf *key, const char *tag, const char *path, bool racy_check)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		rbk_buf_printf(key, "%s none\n", tag);
		return true;
	}
	if (racy_check && (st.st_mtime >= time(NULL) - RACY_S || st.st_ctime >= time(NULL) - RACY_S))
		return false;
	rbk_buf_printf(key, "%s %ju %ju %jd %jd.%09ld %jd.%09ld\n", tag, (uintmax_t)st.st_dev, (uintmax_t)st.st_ino,
		       (intmax_t)st.st_size, (intmax_t)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
		       (intmax_t)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	return true;
}

static bool read_small(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return true;
}

static bool cache_key(const char *abs, const char *top, rbk_buf *key)
{
	char git[PATH_MAX + 8], path[2 * PATH_MAX], head[512];
	snprintf(git, sizeof git, "%s/.git", top);
	struct stat st;
	if (stat(git, &st) != 0 || !S_ISDIR(st.st_mode))
		return false;
	rbk_buf_printf(key, "rbk provenance cache 1\nfile %s\n", abs);
	if (!stat_key(key, "stat", abs, true))
		return false;
	snprintf(path, sizeof path, "%s/HEAD", git);
	if (!read_small(path, head, sizeof head))
		return false;
	head[strcspn(head, "\n")] = '\0';
	rbk_buf_printf(key, "head %s\n", head);
	if (!strncmp(head, "ref: ", 5)) {
		char ref[512];
		snprintf(path, sizeof path, "%s/%s", git, head + 5);
		if (read_small(path, ref, sizeof ref)) {
			ref[strcspn(ref, "\n")] = '\0';
			rbk_buf_printf(key, "ref %s\n", ref);
		} else {
			rbk_buf_printf(key, "ref packed\n");
		}
		snprintf(path, sizeof path, "%s/packed-refs", git);
		stat_key(key, "packed", path, false);
	}
	snprintf(path, sizeof path, "%s/index", git);
	return stat_key(key, "index", path, true);
}

static char *cache_file(const char *home, const char *abs)
{
	char h[65];
	rbk_hash_sha256_hex(abs, strlen(abs), h);
	return rbk_xasprintf("%s/cache/git-%.32s", home, h);
}

/* The facts cached under key, into out["git"]; false when there are none. */
static bool cache_get(const char *file, const rbk_buf *key, rbk_val *out)
{
	rbk_buf text = {0};
	if (rbk_buf_read_file(&text, file, 65536) < 0)
		return false;
	bool hit = text.len > key->len && !memcmp(text.s, key->s, key->len);
	rbk_val g = rbk_val_null();
	if (hit && (rbk_json_parse(&g, text.s + key->len, text.len - key->len, NULL) < 0 || g.t != RBK_V_MAP)) {
		rbk_val_free(&g);
		hit = false;
	}
	if (hit)
		rbk_val_map_set(out, "git", g);
	rbk_buf_free(&text);
	return hit;
}

static void cache_put(const char *home, const char *file, const rbk_buf *key, const rbk_val *g)
{
	rbk_err e = {0};
	char *dir = rbk_xasprintf("%s/cache", home), *tmp = rbk_xasprintf("%s.%ld", file, (long)getpid());
	char *json = rbk_json_encode(g);
	int fd = rbk_mkdir_p(dir, &e) == 0 ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
	if (fd >= 0) {
		bool ok = write(fd, key->s, key->len) == (ssize_t)key->len &&
			  write(fd, json, strlen(json)) == (ssize_t)strlen(json);
		close(fd);
		/* Renamed whole, or not at all: a reader sees one version. */
		if (!ok || rename(tmp, file) != 0)
			unlink(tmp);
	}
	rbk_free(json);
	rbk_free(tmp);
	rbk_free(dir);
}

void rbk_prov_git(const char *file, const char *home, rbk_val *out)
{
	char abs[PATH_MAX], top[PATH_MAX];
	if (!realpath(file, abs) || !work_tree_of(abs, top))
		return;
	rbk_buf key = {0};
	char *cached = home && *home && cache_key(abs, top, &key) ? cache_file(home, abs) : NULL;
	if (cached && cache_get(cached, &key, out)) {
		rbk_free(cached);
		rbk_buf_free(&key);
		return;
	}
	rbk_err e = {0};
	__typeof__(&rbk_gitrepo_facts) facts = FN(facts, &e);
	if (facts) {
		facts(file, out);
		/* Kept only when nothing changed meanwhile (libgit2 itself may
		 * rewrite the index): the facts are then those of the key. */
		const rbk_val *g = rbk_val_map_get(out, "git");
		rbk_buf after = {0};
		if (cached && g && g->t == RBK_V_MAP && cache_key(abs, top, &after) && after.len == key.len &&
		    !memcmp(after.s, key.s, key.len))
			cache_put(home, cached, &key, g);
		rbk_buf_free(&after);
	} else {
		/* Said in the record rather than left out: an auditor sees why. */
		rbk_val g = rbk_val_map();
		rbk_val_map_set(&g, "unavailable", rbk_val_str(e.msg));
		rbk_val_map_set(out, "git", g);
	}
	rbk_free(cached);
	rbk_buf_free(&key);
}

int rbk_prov_seal(const char *dir, int64_t seq, const char *hash, const char *actor, char **commit, rbk_err *err)
{
	__typeof__(&rbk_gitrepo_seal) seal = FN(seal, err);
	return seal ? seal(dir, seq, hash, actor, commit, err) : -1;
}

int rbk_prov_last_seal(const char *dir, int64_t *seq, char hash[65], rbk_err *err)
{
	__typeof__(&rbk_gitrepo_last_seal) last = FN(last_seal, err);
	return last ? last(dir, seq, hash, err) : -1;
}
