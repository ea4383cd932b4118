/* dirlist: walk a search path's directories, sorted. */
#include "base/dirlist.h"
#include "base/err.h"
#include "base/mem.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void rbk_dir_each(const char *path, bool (*accept)(const char *name),
		  void (*fn)(void *ctx, const char *dir, const char *name), void *ctx)
{
	for (const char *p = path; p && *p;) {
		size_t n = strcspn(p, ":");
		char *dir = rbk_xstrndup(p, n);
		p += n + (p[n] == ':');
		DIR *dh = opendir(dir);
		if (!dh) {
			rbk_free(dir);
			continue;
		}
		char **names = NULL;
		size_t count = 0;
		struct dirent *e;
		while ((e = readdir(dh))) {
			if (!accept(e->d_name))
				continue;
			names = rbk_xrealloc(names, (count + 1) * sizeof *names);
			names[count++] = rbk_xstrdup(e->d_name);
		}
		closedir(dh);
		if (count)
			qsort(names, count, sizeof *names, by_name);
		for (size_t i = 0; i < count; i++) {
			fn(ctx, dir, names[i]);
			rbk_free(names[i]);
		}
		rbk_free(names);
		rbk_free(dir);
	}
}

int rbk_mkdir_p(const char *dir, rbk_err *err)
{
	char *p = rbk_xstrdup(dir);
	int rc = 0;
	for (char *q = p + 1;; q++) {
		if (*q != '/' && *q != '\0')
			continue;
		char c = *q;
		*q = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			rbk_err_set(err, -1, "store home %s: cannot create %s: %s", dir, p,
				    strerror(errno));
			rc = -1;
			break;
		}
		*q = c;
		if (!c)
			break;
	}
	rbk_free(p);
	struct stat sb;
	if (rc == 0 && (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode))) {
		rbk_err_set(err, -1, "store home %s: not a directory", dir);
		rc = -1;
	}
	return rc;
}
