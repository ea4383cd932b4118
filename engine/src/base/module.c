/* module: load engine parts from shared objects when first needed (module.h). */
#include "base/module.h"
#include "base/mem.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_MODULES 8

static struct {
	char name[32];
	void *handle;
} loaded[MAX_MODULES];
static int nloaded;

char *rbk_module_search_path(const char *env, const char *kind)
{
	const char *v = getenv(env);
	if (v && *v)
		return rbk_xstrdup(v);
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return rbk_xasprintf("./%s", kind);
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	return rbk_xasprintf("%s/%s:%s/../%s:%s/../lib/rbk/%s", exe, kind, exe, kind, exe, kind);
}

static void *load(const char *name, const char *what, rbk_err *err)
{
	for (int i = 0; i < nloaded; i++)
		if (!strcmp(loaded[i].name, name))
			return loaded[i].handle;
	char *path = rbk_module_search_path("RBK_MODULE_PATH", "modules");
	void *h = NULL;
	rbk_buf why = {0};
	for (char *dir = path, *end; dir && !h; dir = end ? end + 1 : NULL) {
		end = strchr(dir, ':');
		if (end)
			*end = '\0';
		char *file = rbk_xasprintf("%s/rbk-%s.so", *dir ? dir : ".", name);
		if (access(file, F_OK) == 0) {
			h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
			if (!h)
				rbk_buf_printf(&why, "; %s", dlerror());
		}
		rbk_free(file);
		if (end)
			*end = ':';
	}
	if (!h) {
		rbk_err_set(err, -1, "%s needs the module rbk-%s.so, which could not be loaded from %s (RBK_MODULE_PATH)%s",
			    what, name, path, why.s ? why.s : ": not found");
	} else if (nloaded < MAX_MODULES) {
		snprintf(loaded[nloaded].name, sizeof loaded[nloaded].name, "%s", name);
		loaded[nloaded++].handle = h;
	}
	rbk_buf_free(&why);
	rbk_free(path);
	return h;
}

void *rbk_module_sym(const char *name, const char *what, const char *symbol, rbk_err *err)
{
	void *h = load(name, what, err);
	if (!h)
		return NULL;
	void *f = dlsym(h, symbol);
	if (!f)
		rbk_err_set(err, -1, "%s: the module rbk-%s.so lacks %s (built from other sources than this rbk)", what,
			    name, symbol);
	return f;
}
