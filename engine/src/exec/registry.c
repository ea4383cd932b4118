/* registry: dlopen plugins, check their ABI, serve their actions. */
#include "exec/registry.h"
#include "base/perm.h"
#include "base/dur.h"
#include "base/dirlist.h"
#include "base/mem.h"
#include "base/module.h"
#include "runbook/model.h"
#include "exec/procs.h"
#include "lang/regex.h"
#include "runbook/suggest.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
	void *handle;
	char *file;
	const rbk_plugin *plugin;
} loaded;

typedef struct {
	char *name; /* the plugin's name: the file is rbk-NAME.so */
	char *file;
	bool tried;
} available;

struct rbk_registry {
	loaded *plugins;
	size_t nplugins;
	rbk_reg_action *actions;
	size_t nactions;
	available *avail; /* plugin files on the path, loaded when first needed */
	size_t navail;
	rbk_diag *late;   /* where refusals of lazily loaded plugins go (stderr when NULL) */
};

const char *rbk_reg_type_name(rbk_type t)
{
	static const char *const names[] = {"any", "string", "int", "number", "bool", "duration", "list", "map", "null"};
	return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

char *rbk_reg_default_path(void) { return rbk_module_search_path("RBK_PLUGIN_PATH", "plugins"); }

/* Changes whenever an action's address may have: a plugin loaded, a
 * registry made or freed. */
static unsigned generation;

unsigned rbk_reg_generation(void) { return generation; }

rbk_registry *rbk_reg_new(void)
{
	generation++;
	return rbk_xcalloc(1, sizeof(rbk_registry));
}

static bool name_ok(const char *s)
{
	if (!s || !(*s >= 'a' && *s <= 'z'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static const rbk_reg_action *find_loaded(const rbk_registry *r, const char *full_name);

/* Refuse a plugin: report, unload, return -1. */
static int refuse(rbk_diag *d, const char *file, void *handle, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int refuse(rbk_diag *d, const char *file, void *handle, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	rbk_diag_error(d, file, 0, 0, "plugin refused: %s", msg);
	if (handle)
		dlclose(handle);
	return -1;
}

/* Call a plugin's init in a child first: an init that crashes (or ends
 * the process) takes that child down, not rbk. Returns 0 when the child
 * came back (or could not be started: the real call decides), else -1
 * with why. */
static int trial_init(rbk_plugin_init_fn init, char *why, size_t n)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		/* Die by the signal, without a core file or a sanitizer's report. */
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
		for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
			signal(sigs[i], SIG_DFL);
		const rbk_plugin *p = NULL;
		init(rbk_reg_host(), &p);
		_exit(0);
	}
	int st = 0;
	pid_t w;
	while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	if (w < 0)
		return 0;
	if (WIFSIGNALED(st)) {
		int sig = WTERMSIG(st);
		const char *abbrev = sigabbrev_np(sig);
		snprintf(why, n, "%s crashed (in a trial process): killed by signal %d (SIG%s, %s)", RBK_PLUGIN_INIT_SYMBOL,
			 sig, abbrev ? abbrev : "?", strsignal(sig));
		return -1;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
		snprintf(why, n, "%s ended the process (in a trial process): exit status %d", RBK_PLUGIN_INIT_SYMBOL,
			 WEXITSTATUS(st));
		return -1;
	}
	return 0;
}

int rbk_reg_load_file(rbk_registry *r, const char *file, rbk_diag *d)
{
	/* NODELETE: code stays mapped after dlclose, so nothing that outlives
	 * the registry (an atexit handler, a sanitizer's report) calls into an
	 * unmapped plugin. */
	/* Code anyone can replace is not loaded: the plugin's file and its
	 * directory must not be writable by others. */
	char *copy = rbk_xstrdup(file);
	const char *dir = dirname(copy);
	unsigned mode = 0;
	const char *open_to = rbk_perm_open_to_all((const char *const[]){file, dir, NULL}, &mode);
	if (open_to) {
		int rc = refuse(d, file, NULL, "%s can be written by anyone (mode %04o): chmod o-w %s", open_to, mode,
				open_to);
		rbk_free(copy);
		return rc;
	}
	rbk_free(copy);
	void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!h)
		return refuse(d, file, NULL, "cannot load: %s", dlerror());
	const rbk_plugin_abi_info *abi = dlsym(h, RBK_PLUGIN_ABI_SYMBOL);
	if (!abi)
		return refuse(d, file, h, "no %s symbol (define it with RBK_PLUGIN_DECLARE())", RBK_PLUGIN_ABI_SYMBOL);
	if (abi->abi_major != RBK_PLUGIN_ABI_MAJOR)
		return refuse(d, file, h, "built for plugin ABI %u.%u, this rbk speaks %d.%d", abi->abi_major,
			      abi->abi_minor, RBK_PLUGIN_ABI_MAJOR, RBK_PLUGIN_ABI_MINOR);
	if (abi->plugin_size != sizeof(rbk_plugin) || abi->action_size != sizeof(rbk_action) ||
	    abi->param_size != sizeof(rbk_param_decl) || abi->output_size != sizeof(rbk_output_decl) ||
	    abi->value_size != sizeof(rbk_value))
		return refuse(d, file, h, "struct sizes differ from this rbk's (plugin.h mismatch; rebuild the plugin)");
	rbk_plugin_init_fn init;
	*(void **)&init = dlsym(h, RBK_PLUGIN_INIT_SYMBOL);
	if (!init)
		return refuse(d, file, h, "no %s function", RBK_PLUGIN_INIT_SYMBOL);
	char crashed[300];
	if (trial_init(init, crashed, sizeof crashed) < 0)
		return refuse(d, file, h, "%s", crashed);
	const rbk_plugin *p = NULL;
	int rc = init(rbk_reg_host(), &p);
	if (rc != 0 || !p)
		return refuse(d, file, h, "%s failed (returned %d)", RBK_PLUGIN_INIT_SYMBOL, rc);
	if (!name_ok(p->name))
		return refuse(d, file, h, "bad plugin name '%s' (use [a-z][a-z0-9_]*)", p->name ? p->name : "(null)");
	for (size_t i = 0; i < p->action_count; i++) {
		const rbk_action *a = &p->actions[i];
		if (!name_ok(a->name) || !a->run || !a->params)
			return refuse(d, file, h, "action %zu of plugin '%s' has a bad name, no run function or no param table",
				      i, p->name);
		char *full = rbk_xasprintf("%s.%s", p->name, a->name);
		const rbk_reg_action *dup = find_loaded(r, full);
		bool twice = false;
		for (size_t j = 0; j < i; j++)
			twice |= !strcmp(p->actions[j].name, a->name);
		if (dup || twice) {
			int ret = refuse(d, file, h, "action '%s' is already provided by %s", full, dup ? dup->file : file);
			rbk_free(full);
			return ret;
		}
		rbk_free(full);
	}
	r->plugins = rbk_xrealloc(r->plugins, (r->nplugins + 1) * sizeof *r->plugins);
	loaded *l = &r->plugins[r->nplugins++];
	l->handle = h;
	l->file = rbk_xstrdup(file);
	l->plugin = p;
	r->actions = rbk_xrealloc(r->actions, (r->nactions + p->action_count + 1) * sizeof *r->actions);
	generation++;
	for (size_t i = 0; i < p->action_count; i++)
		r->actions[r->nactions++] = (rbk_reg_action){p, &p->actions[i],
							      rbk_xasprintf("%s.%s", p->name, p->actions[i].name), l->file};
	return 0;
}


static bool plugin_file(const char *name)
{
	size_t l = strlen(name);
	return !strncmp(name, "rbk-", 4) && l >= 8 && !strcmp(name + l - 3, ".so");
}

static void add_available(void *ctx, const char *dir, const char *file)
{
	rbk_registry *r = ctx;
	char *name = rbk_xstrndup(file + 4, strlen(file) - 7);
	for (size_t j = 0; j < r->navail; j++)
		if (!strcmp(r->avail[j].name, name)) { /* one file per plugin: the first directory wins */
			rbk_free(name);
			return;
		}
	r->avail = rbk_xrealloc(r->avail, (r->navail + 1) * sizeof *r->avail);
	r->avail[r->navail++] = (available){name, rbk_xasprintf("%s/%s", dir, file), false};
}

int rbk_reg_open(rbk_registry **out, const char *path)
{
	rbk_registry *r = rbk_reg_new();
	rbk_dir_each(path, plugin_file, add_available, r);
	*out = r;
	return 0;
}

/* Load the plugin file named for plugin name, once. */
static void ensure(rbk_registry *r, const char *name)
{
	for (size_t i = 0; i < r->navail; i++) {
		if (strcmp(r->avail[i].name, name) != 0 || r->avail[i].tried)
			continue;
		r->avail[i].tried = true;
		rbk_diag d = {0};
		rbk_reg_load_file(r, r->avail[i].file, r->late ? r->late : &d);
		rbk_diag_print(&d, stderr);
		rbk_diag_free(&d);
	}
}

int rbk_reg_load_all(rbk_registry *r, rbk_diag *d)
{
	int refused = 0;
	for (size_t i = 0; i < r->navail; i++) {
		if (r->avail[i].tried)
			continue;
		r->avail[i].tried = true;
		refused += rbk_reg_load_file(r, r->avail[i].file, d) < 0;
	}
	return refused;
}

int rbk_reg_load(rbk_registry **out, const char *path, rbk_diag *d)
{
	rbk_reg_open(out, path);
	return rbk_reg_load_all(*out, d);
}

void rbk_reg_free(rbk_registry *r)
{
	generation++;
	if (!r)
		return;
	for (size_t i = 0; i < r->nactions; i++)
		rbk_free(r->actions[i].full_name);
	for (size_t i = 0; i < r->nplugins; i++) {
		dlclose(r->plugins[i].handle);
		rbk_free(r->plugins[i].file);
	}
	rbk_free(r->actions);
	rbk_free(r->plugins);
	for (size_t i = 0; i < r->navail; i++) {
		rbk_free(r->avail[i].name);
		rbk_free(r->avail[i].file);
	}
	rbk_free(r->avail);
	rbk_free(r);
}

size_t rbk_reg_count(const rbk_registry *r) { return r->nactions; }
const rbk_reg_action *rbk_reg_at(const rbk_registry *r, size_t i) { return i < r->nactions ? &r->actions[i] : NULL; }

static const rbk_reg_action *find_loaded(const rbk_registry *r, const char *full_name)
{
	for (size_t i = 0; i < r->nactions; i++)
		if (!strcmp(r->actions[i].full_name, full_name))
			return &r->actions[i];
	return NULL;
}

const rbk_reg_action *rbk_reg_find(rbk_registry *r, const char *full_name)
{
	const rbk_reg_action *a = find_loaded(r, full_name);
	if (a)
		return a;
	/* Not loaded yet: load the plugin the name's prefix names, if there is one. */
	char plugin[128];
	snprintf(plugin, sizeof plugin, "%.*s", (int)strcspn(full_name, "."), full_name);
	ensure(r, plugin);
	return find_loaded(r, full_name);
}

/* ---- the checker's view ---- */

static int has_action(void *ctx, const char *action) { return rbk_reg_find(ctx, action) != NULL; }

static int has_output(void *ctx, const char *action, const char *name)
{
	const rbk_reg_action *a = rbk_reg_find(ctx, action);
	if (!a || !a->action->outputs)
		return 1;
	for (const rbk_output_decl *o = a->action->outputs; o->name; o++)
		if (!strcmp(o->name, name))
			return 1;
	return 0;
}

/* A string that renders at run time cannot be type-checked now. */
static bool templated(const rbk_node *n) { return n->t == RBK_N_STR && strstr(n->text, "{{"); }

static bool fits(rbk_type t, const rbk_node *n)
{
	switch (t) {
	case RBK_TYPE_ANY: return true;
	case RBK_TYPE_STRING: return n->t == RBK_N_STR;
	case RBK_TYPE_INT: return n->t == RBK_N_INT;
	case RBK_TYPE_NUMBER: return n->t == RBK_N_INT || n->t == RBK_N_NUM;
	case RBK_TYPE_BOOL: return n->t == RBK_N_BOOL;
	case RBK_TYPE_DURATION: return n->t == RBK_N_STR && rbk_dur_parse(n->text) >= 0;
	case RBK_TYPE_LIST: return n->t == RBK_N_SEQ;
	case RBK_TYPE_MAP: return n->t == RBK_N_MAP;
	case RBK_TYPE_NULL: return n->t == RBK_N_NULL;
	}
	return false;
}

static void check_params(void *ctx, const char *action, const rbk_node *with, const char *file,
			 const rbk_pos *where, rbk_diag *d)
{
	const rbk_reg_action *a = rbk_reg_find(ctx, action);
	if (!a)
		return;
	const rbk_param_decl *decl = a->action->params;
	size_t n = 0;
	while (decl[n].name)
		n++;
	const char **names = rbk_xcalloc(n + 1, sizeof *names);
	for (size_t i = 0; i < n; i++)
		names[i] = decl[i].name;
	for (size_t i = 0; with && i < with->count; i++) {
		const rbk_node *k = with->keys[i], *v = with->vals[i];
		const rbk_param_decl *p = NULL;
		for (size_t j = 0; j < n && !p; j++)
			if (!strcmp(decl[j].name, k->text))
				p = &decl[j];
		if (!p) {
			const char *hint = rbk_suggest(k->text, names, n);
			rbk_diag_error(d, file, k->line, k->col, "%s has no param '%s'%s%s%s", action, k->text,
				       hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
			continue;
		}
		if (!templated(v) && !fits(p->type, v))
			rbk_diag_error(d, file, v->line, v->col, "param '%s' of %s must be %s%s%s, not %s", p->name, action,
				       p->type == RBK_TYPE_INT || p->type == RBK_TYPE_ANY ? "an " : "a ",
				       rbk_reg_type_name(p->type), p->type == RBK_TYPE_DURATION ? " such as 30s" : "",
				       rbk_node_type_name(v));
	}
	for (size_t j = 0; j < n; j++)
		if (decl[j].required && !rbk_node_get(with, decl[j].name))
			rbk_diag_error(d, file, where->line, where->col, "%s needs param '%s' (%s)", action, decl[j].name,
				       rbk_reg_type_name(decl[j].type));
	rbk_free(names);
}

static int has_plugin(void *ctx, const char *plugin)
{
	rbk_registry *r = ctx;
	ensure(r, plugin);
	for (size_t i = 0; i < r->nplugins; i++)
		if (!strcmp(r->plugins[i].plugin->name, plugin))
			return 1;
	return 0;
}

static const char *suggest(void *ctx, const char *word, int plugin_names)
{
	const rbk_registry *r = ctx;
	/* Plugin names come from the files on the path: no need to load them. */
	size_t n = plugin_names ? r->navail : r->nactions;
	const char **names = rbk_xcalloc(n + 1, sizeof *names);
	for (size_t i = 0; i < n; i++)
		names[i] = plugin_names ? r->avail[i].name : r->actions[i].full_name;
	const char *best = rbk_suggest(word, names, n);
	rbk_free(names);
	return best;
}

rbk_check_actions rbk_reg_checker(rbk_registry *r)
{
	return (rbk_check_actions){r, has_action, check_params, has_output, has_plugin, suggest};
}

static bool val_fits(rbk_type t, const rbk_val *v)
{
	switch (t) {
	case RBK_TYPE_ANY: return true;
	case RBK_TYPE_STRING: return v->t == RBK_V_STR;
	case RBK_TYPE_INT: return v->t == RBK_V_INT;
	case RBK_TYPE_NUMBER: return v->t == RBK_V_INT || v->t == RBK_V_NUM;
	case RBK_TYPE_BOOL: return v->t == RBK_V_BOOL;
	case RBK_TYPE_DURATION: return v->t == RBK_V_INT && v->u.i >= 0;
	case RBK_TYPE_LIST: return v->t == RBK_V_LIST;
	case RBK_TYPE_MAP: return v->t == RBK_V_MAP;
	case RBK_TYPE_NULL: return v->t == RBK_V_NULL;
	}
	return false;
}

int rbk_reg_check_args(const rbk_reg_action *a, rbk_val *args, rbk_err *err)
{
	const rbk_param_decl *decl = a->action->params;
	for (size_t i = 0; i < args->u.map.n; i++) {
		const char *k = args->u.map.keys[i];
		rbk_val *v = &args->u.map.vals[i];
		const rbk_param_decl *p = NULL;
		for (size_t j = 0; decl[j].name && !p; j++)
			if (!strcmp(decl[j].name, k))
				p = &decl[j];
		if (!p) {
			rbk_err_set(err, -1, "%s has no param '%s'", a->full_name, k);
			return -1;
		}
		/* Durations travel as milliseconds: "30s" and 30s become 30000;
		 * a string param gets a duration as written. */
		if (p->type == RBK_TYPE_DURATION && v->t == RBK_V_STR) {
			int64_t ms = rbk_dur_parse(v->u.s.s);
			if (ms >= 0) {
				rbk_val_free(v);
				*v = rbk_val_int(ms);
			}
		} else if (v->t == RBK_V_DUR) {
			bool secret = v->secret;
			*v = p->type == RBK_TYPE_STRING ? rbk_val_str_take(rbk_val_to_text(v)) : rbk_val_int(v->u.i);
			v->secret = secret;
		}
		if (v->t == RBK_V_NULL && !p->required)
			continue;
		if (!val_fits(p->type, v)) {
			char *txt = rbk_val_to_text(v);
			rbk_err_set(err, -1, "param '%s' of %s must be %s, not %s '%.80s'", k, a->full_name,
				    rbk_reg_type_name(p->type), rbk_val_type_name(v->t), txt);
			rbk_free(txt);
			return -1;
		}
	}
	for (size_t j = 0; decl[j].name; j++) {
		const rbk_val *v = rbk_val_map_get(args, decl[j].name);
		if (decl[j].required && (!v || v->t == RBK_V_NULL)) {
			rbk_err_set(err, -1, "%s needs param '%s'", a->full_name, decl[j].name);
			return -1;
		}
	}
	return 0;
}

/* ---- values across the boundary ---- */

static void to_value(const rbk_val *v, rbk_value *out)
{
	memset(out, 0, sizeof *out);
	switch (v->t) {
	case RBK_V_NULL: out->type = RBK_TYPE_NULL; break;
	case RBK_V_BOOL: out->type = RBK_TYPE_BOOL; out->as.boolean = v->u.b; break;
	case RBK_V_INT:
	case RBK_V_DUR: out->type = RBK_TYPE_INT; out->as.i = v->u.i; break; /* milliseconds */
	case RBK_V_NUM: out->type = RBK_TYPE_NUMBER; out->as.num = v->u.n; break;
	case RBK_V_STR:
		out->type = RBK_TYPE_STRING;
		out->as.str.ptr = v->u.s.s;
		out->as.str.len = v->u.s.len;
		break;
	case RBK_V_REGEX:
		out->type = RBK_TYPE_STRING;
		out->as.str.ptr = rbk_re_source(v->u.re);
		out->as.str.len = strlen(out->as.str.ptr);
		break;
	case RBK_V_LIST: {
		rbk_value *items = rbk_xcalloc(v->u.list.n ? v->u.list.n : 1, sizeof *items);
		for (size_t i = 0; i < v->u.list.n; i++)
			to_value(&v->u.list.items[i], &items[i]);
		out->type = RBK_TYPE_LIST;
		out->as.list.items = items;
		out->as.list.count = v->u.list.n;
		break;
	}
	case RBK_V_MAP: {
		rbk_value *vals = rbk_xcalloc(v->u.map.n ? v->u.map.n : 1, sizeof *vals);
		for (size_t i = 0; i < v->u.map.n; i++)
			to_value(&v->u.map.vals[i], &vals[i]);
		out->type = RBK_TYPE_MAP;
		out->as.map.keys = (const char *const *)v->u.map.keys;
		out->as.map.values = vals;
		out->as.map.count = v->u.map.n;
		break;
	}
	}
}

rbk_value *rbk_reg_args(const rbk_val *v)
{
	rbk_value *a = rbk_xmalloc(sizeof *a);
	to_value(v, a);
	return a;
}

static void free_inner(rbk_value *a)
{
	if (a->type == RBK_TYPE_LIST) {
		for (size_t i = 0; i < a->as.list.count; i++)
			free_inner((rbk_value *)&a->as.list.items[i]);
		rbk_free((void *)a->as.list.items);
	} else if (a->type == RBK_TYPE_MAP) {
		for (size_t i = 0; i < a->as.map.count; i++)
			free_inner((rbk_value *)&a->as.map.values[i]);
		rbk_free((void *)a->as.map.values);
	}
}

void rbk_reg_args_free(rbk_value *a)
{
	if (!a)
		return;
	free_inner(a);
	rbk_free(a);
}

rbk_val rbk_reg_from_value(const rbk_value *v)
{
	if (!v)
		return rbk_val_null();
	switch (v->type) {
	case RBK_TYPE_STRING: return rbk_val_strn(v->as.str.ptr ? v->as.str.ptr : "", v->as.str.ptr ? v->as.str.len : 0);
	case RBK_TYPE_INT:
	case RBK_TYPE_DURATION: return rbk_val_int(v->as.i);
	case RBK_TYPE_NUMBER: return rbk_val_num(v->as.num);
	case RBK_TYPE_BOOL: return rbk_val_bool(v->as.boolean != 0);
	case RBK_TYPE_LIST: {
		rbk_val l = rbk_val_list();
		for (size_t i = 0; i < v->as.list.count; i++)
			rbk_val_list_push(&l, rbk_reg_from_value(&v->as.list.items[i]));
		return l;
	}
	case RBK_TYPE_MAP: {
		rbk_val m = rbk_val_map();
		for (size_t i = 0; i < v->as.map.count; i++)
			rbk_val_map_set(&m, v->as.map.keys[i], rbk_reg_from_value(&v->as.map.values[i]));
		return m;
	}
	case RBK_TYPE_ANY:
	case RBK_TYPE_NULL: break;
	}
	return rbk_val_null();
}

/* ---- the output cap (registry.h) ---- */

size_t rbk_reg_output_limit(void)
{
	static size_t limit;
	if (limit)
		return limit;
	limit = RBK_OUTPUT_DEFAULT;
	const char *e = getenv("RBK_MAX_OUTPUT");
	if (e && *e) {
		char *end = NULL;
		errno = 0;
		unsigned long long v = strtoull(e, &end, 10);
		if (errno || *end || *e < '0' || *e > '9' || v < RBK_OUTPUT_MIN || v > RBK_OUTPUT_MAX)
			fprintf(stderr, "rbk: warning: RBK_MAX_OUTPUT='%s' is not a number of bytes from %zu to %zu; using %zu\n",
				e, RBK_OUTPUT_MIN, RBK_OUTPUT_MAX, limit);
		else
			limit = (size_t)v;
	}
	return limit;
}

size_t rbk_reg_outputs_budget(void) { return 4 * rbk_reg_output_limit(); }

/* What a kept value costs the budget: its text, and a little per node and
 * key, so that a million tiny items cost something too. */
enum { NODE_COST = 16, MARK_ROOM = 96 };

static size_t val_cost(const rbk_val *v)
{
	size_t c = NODE_COST;
	if (v->t == RBK_V_STR)
		c += v->u.s.len;
	else if (v->t == RBK_V_LIST)
		for (size_t i = 0; i < v->u.list.n; i++)
			c += val_cost(&v->u.list.items[i]);
	else if (v->t == RBK_V_MAP)
		for (size_t i = 0; i < v->u.map.n; i++)
			c += strlen(v->u.map.keys[i]) + val_cost(&v->u.map.vals[i]);
	return c;
}

typedef struct {
	size_t cap, left;
	rbk_buf path; /* "rows.0.v" */
	rbk_val *cut; /* list */
} cutter;

static void note_cut(cutter *k) { rbk_val_list_push(k->cut, rbk_val_strn(k->path.s ? k->path.s : "", k->path.len)); }

/* v as the host keeps it, charged to k->left (exactly val_cost of the
 * result); false, with nothing built, when not even an empty node fits. */
static bool keep_value(cutter *k, const rbk_value *v, rbk_val *out)
{
	if (k->left < NODE_COST + MARK_ROOM)
		return false;
	k->left -= NODE_COST;
	size_t at = k->path.len;
	switch (v ? v->type : RBK_TYPE_NULL) {
	case RBK_TYPE_STRING: {
		const char *s = v->as.str.ptr ? v->as.str.ptr : "";
		size_t n = v->as.str.ptr ? v->as.str.len : 0;
		if (n <= k->cap && n <= k->left) {
			*out = rbk_val_strn(s, n);
			k->left -= n;
			break;
		}
		/* Kept text and marker together within the limit. */
		size_t keep = (k->cap < k->left ? k->cap : k->left) - MARK_ROOM;
		while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80)
			keep--; /* not inside a UTF-8 character */
		rbk_buf b = {0};
		rbk_buf_add(&b, s, keep);
		rbk_buf_printf(&b, "\n[rbk: output cut at %zu of %zu bytes]", keep, n);
		k->left -= b.len;
		*out = rbk_val_strn(b.s, b.len);
		rbk_buf_free(&b);
		note_cut(k);
		break;
	}
	case RBK_TYPE_LIST:
		*out = rbk_val_list();
		for (size_t i = 0; i < v->as.list.count; i++) {
			rbk_val item;
			rbk_buf_printf(&k->path, ".%zu", i);
			bool kept = keep_value(k, &v->as.list.items[i], &item);
			k->path.len = at;
			k->path.s[at] = '\0';
			if (!kept) {
				note_cut(k); /* the items from i on were dropped */
				break;
			}
			rbk_val_list_push(out, item);
		}
		break;
	case RBK_TYPE_MAP:
		*out = rbk_val_map();
		for (size_t i = 0; i < v->as.map.count; i++) {
			const char *key = v->as.map.keys[i];
			size_t kl = strlen(key);
			rbk_val item;
			bool kept = false;
			if (k->left >= kl) {
				k->left -= kl;
				rbk_buf_printf(&k->path, ".%s", key);
				kept = keep_value(k, &v->as.map.values[i], &item);
				k->path.len = at;
				k->path.s[at] = '\0';
				if (!kept)
					k->left += kl;
			}
			if (!kept) {
				note_cut(k);
				break;
			}
			rbk_val_map_set(out, key, item);
		}
		break;
	default:
		*out = rbk_reg_from_value(v);
		break;
	}
	return true;
}

/* ---- host functions ---- */

static void h_set_output(rbk_call *c, const char *name, const rbk_value *v)
{
	if (!name)
		return;
	const rbk_val *old = rbk_val_map_get(&c->outputs, name);
	if (old) {
		/* Replaced: its room is free again. */
		c->out_left += strlen(name) + val_cost(old);
		if (c->out_left > rbk_reg_outputs_budget())
			c->out_left = rbk_reg_outputs_budget();
	}
	rbk_val cut = rbk_val_list();
	rbk_val kept = rbk_val_null();
	size_t kl = strlen(name);
	bool big = v && (v->type == RBK_TYPE_STRING || v->type == RBK_TYPE_LIST || v->type == RBK_TYPE_MAP);
	/* Strings, lists and maps leave a reserve for the scalars that come
	 * after them (an exit code after a long stdout). */
	size_t room = c->out_left > kl ? c->out_left - kl : 0;
	size_t reserve = rbk_reg_outputs_budget() / 16;
	if (big)
		room = room > reserve ? room - reserve : 0;
	cutter k = {rbk_reg_output_limit(), room, {0}, &cut};
	rbk_buf_puts(&k.path, name);
	if (!keep_value(&k, v, &kept)) {
		kept = rbk_val_null(); /* no room left at all: null, and said so */
		note_cut(&k);
	}
	rbk_buf_free(&k.path);
	size_t cost = kl + val_cost(&kept);
	c->out_left = c->out_left > cost ? c->out_left - cost : 0;
	rbk_val_map_set(&c->outputs, name, kept);
	rbk_val_map_set(&c->cut, name, cut);
}

static void h_set_output_string(rbk_call *c, const char *name, const char *s, size_t len)
{
	rbk_value v = {.type = RBK_TYPE_STRING};
	v.as.str.ptr = s ? s : "";
	v.as.str.len = s ? len : 0;
	h_set_output(c, name, &v);
}

static void h_set_output_int(rbk_call *c, const char *name, int64_t i)
{
	rbk_value v = {.type = RBK_TYPE_INT};
	v.as.i = i;
	h_set_output(c, name, &v);
}

static void h_set_output_bool(rbk_call *c, const char *name, int b)
{
	rbk_value v = {.type = RBK_TYPE_BOOL};
	v.as.boolean = b != 0;
	h_set_output(c, name, &v);
}

static size_t h_output_limit(rbk_call *c)
{
	(void)c;
	return rbk_reg_output_limit();
}

rbk_val rbk_reg_call_cut(const rbk_call *c)
{
	rbk_val all = rbk_val_list();
	for (size_t i = 0; c->cut.t == RBK_V_MAP && i < c->cut.u.map.n; i++) {
		const rbk_val *l = &c->cut.u.map.vals[i];
		for (size_t j = 0; l->t == RBK_V_LIST && j < l->u.list.n; j++)
			rbk_val_list_push(&all, rbk_val_copy(&l->u.list.items[j]));
	}
	return all;
}

static void h_set_error(rbk_call *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char buf[2048];
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	rbk_free(c->error);
	c->error = rbk_xstrdup(buf);
}

static void h_log(rbk_call *c, int level, const char *fmt, ...)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	va_list ap;
	va_start(ap, fmt);
	char buf[2048];
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (c->log.len + strlen(buf) + 8 > rbk_reg_output_limit()) {
		/* The log is capped like an output; the first line past it says so. */
		if (!c->log_cut)
			rbk_buf_printf(&c->log, "warn: [rbk: log cut at %zu bytes]\n", c->log.len);
		c->log_cut = 1;
		return;
	}
	rbk_buf_printf(&c->log, "%s: %s\n", names[level < 0 ? 0 : level > 3 ? 3 : level], buf);
}

static const rbk_value *h_arg(const rbk_value *args, const char *name) { return rbk_arg_get(args, name); }

static const char *h_key(rbk_call *c) { return c->key ? c->key : ""; }

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t h_time_left(rbk_call *c)
{
	if (c->deadline_ms < 0)
		return -1;
	int64_t left = c->deadline_ms - now_ms();
	return left > 0 ? left : 0;
}

static int h_dry_run(rbk_call *c) { return c->dry_run; }

static int h_add_process_group(rbk_call *c, int64_t pgid)
{
	(void)c;
	return pgid > 1 && pgid <= INT32_MAX ? rbk_procs_add_group((pid_t)pgid) : -1;
}

static void h_mark_secret(rbk_call *c, const char *text, size_t len)
{
	if (!text || !len)
		return;
	if (c->secrets.t != RBK_V_LIST)
		c->secrets = rbk_val_list();
	rbk_val_list_push(&c->secrets, rbk_val_strn(text, len));
}

const rbk_host *rbk_reg_host(void)
{
	static const rbk_host host = {RBK_PLUGIN_ABI_MAJOR, RBK_PLUGIN_ABI_MINOR, sizeof(rbk_host), h_set_output,
				      h_set_output_string, h_set_output_int, h_set_output_bool, h_set_error, h_log,
				      h_arg, h_key, h_time_left, h_dry_run, h_add_process_group, h_output_limit,
				      h_mark_secret};
	return &host;
}

void rbk_reg_call_init(rbk_call *c, const char *key, int64_t deadline_ms, int dry_run)
{
	memset(c, 0, sizeof *c);
	c->outputs = rbk_val_map();
	c->out_left = rbk_reg_outputs_budget();
	c->cut = rbk_val_map();
	c->secrets = rbk_val_list();
	c->key = key;
	c->deadline_ms = deadline_ms;
	c->dry_run = dry_run;
}

void rbk_reg_call_free(rbk_call *c)
{
	rbk_val_free(&c->outputs);
	rbk_val_free(&c->cut);
	rbk_val_free(&c->secrets);
	rbk_free(c->error);
	rbk_buf_free(&c->log);
}
