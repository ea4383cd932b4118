/* cli: shared command helpers. */
#include "cli/cli.h"
#include "auth/users.h"
#include "audit/runview.h"
#include "base/exitcode.h"
#include "base/mem.h"
#include "base/principal.h"
#include "exec/interp.h"
#include "exec/registry.h"
#include "store/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *rbk_cli_search_path(void)
{
	const char *p = getenv("RBK_PATH");
	return p && *p ? p : "./runbooks";
}

char *rbk_cli_call_path(const char *file)
{
	const char *slash = strrchr(file, '/');
	if (!slash)
		return rbk_xasprintf(".:%s", rbk_cli_search_path());
	return rbk_xasprintf("%.*s:%s", (int)(slash - file), slash == file ? "/" : file,
			     rbk_cli_search_path());
}

static bool looks_like_file(const char *s)
{
	return strchr(s, '/') || rbk_check_runbook_file(s);
}

int rbk_cli_load(rbk_cli_runbook *out, const char *name_or_file, bool check, rbk_diag *d)
{
	memset(out, 0, sizeof *out);
	if (looks_like_file(name_or_file))
		out->path = rbk_xstrdup(name_or_file);
	else if (!(out->path = rbk_check_find_runbook(rbk_cli_search_path(), name_or_file))) {
		rbk_diag_error(d, "rbk", 0, 0, "no runbook named '%s' on the path %s (set RBK_PATH, or give a file)",
			       name_or_file, rbk_cli_search_path());
		return -1;
	}
	if (rbk_load_file(&out->doc, out->path, d) < 0 || rbk_model_build(&out->rb, out->doc, d) < 0) {
		rbk_cli_runbook_free(out);
		return -1;
	}
	if (check) {
		char *sp = rbk_cli_call_path(out->path);
		rbk_registry *reg = rbk_cli_registry();
		rbk_check_actions acts = rbk_reg_checker(reg);
		rbk_check_opts opts = {.search_path = sp, .actions = &acts};
		int n = rbk_check(out->rb, &opts, d);
		rbk_free(sp);
		if (n) {
			rbk_cli_runbook_free(out);
			return -1;
		}
	}
	return 0;
}

static bool notify_broken;

bool rbk_cli_notify_broken(void) { return notify_broken; }

const rbk_runbook *rbk_cli_notify_shared(void)
{
	static bool loaded;
	static rbk_doc *doc;
	static rbk_runbook *shared;
	if (loaded)
		return shared;
	loaded = true;
	char *path = NULL;
	const char *sp = rbk_cli_search_path();
	for (const char *p = sp; *p && !path;) {
		size_t n = strcspn(p, ":");
		char *f = rbk_xasprintf("%.*s/" RBK_CLI_NOTIFY_FILE, (int)n, p);
		if (n && access(f, F_OK) == 0)
			path = f;
		else
			rbk_free(f);
		p += n + (p[n] == ':');
	}
	if (!path)
		return NULL;
	rbk_diag d = {0};
	rbk_registry *reg = rbk_cli_registry();
	rbk_check_actions acts = rbk_reg_checker(reg);
	rbk_check_opts opts = {.search_path = sp, .actions = &acts};
	if (rbk_load_file(&doc, path, &d) < 0 || rbk_model_build_notify(&shared, doc, &d) < 0 ||
	    rbk_check_notify(shared, &opts, &d) > 0) {
		/* Told, not fatal: a broken shared file must not stop a recovery. */
		rbk_diag_print(&d, stderr);
		fprintf(stderr, "rbk: warning: the shared notifications of %s are off until it is fixed\n", path);
		rbk_model_free(shared);
		shared = NULL;
		notify_broken = true;
	}
	rbk_diag_free(&d);
	rbk_free(path);
	return shared;
}

void rbk_cli_runbook_free(rbk_cli_runbook *r)
{
	rbk_model_free(r->rb);
	rbk_doc_free(r->doc);
	rbk_free(r->path);
	memset(r, 0, sizeof *r);
}

char *rbk_cli_home(const char *opt)
{
	if (opt && *opt)
		return rbk_xstrdup(opt);
	const char *e = getenv("RBK_HOME");
	if (e && *e)
		return rbk_xstrdup(e);
	e = getenv("XDG_STATE_HOME");
	if (e && *e)
		return rbk_xasprintf("%s/rbk", e);
	e = getenv("HOME");
	return rbk_xasprintf("%s/.local/state/rbk", e && *e ? e : ".");
}

char *rbk_cli_actor(void) { return rbk_principal(); }

int rbk_cli_credential_actor(rbk_store *s, int fd, char **actor)
{
	char line[512];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof line - 1 && (r = read(fd, line + n, sizeof line - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	char *who = NULL;
	rbk_role role = RBK_ROLE_NONE;
	rbk_err e = {0};
	int rc = rbk_users_credential(s, line, &who, &role, &e);
	if (rc < 0) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		return RBK_EXIT_STORE;
	}
	if (rc > 0 || !rbk_users_allows(role, RBK_DO_ACT)) {
		fprintf(stderr, "rbk: error: the console credential proves %s\n", rc > 0 ? "no one" : "no operator");
		rbk_free(who);
		return RBK_EXIT_BADINPUT;
	}
	rbk_free(*actor);
	*actor = who;
	return 0;
}

void rbk_cli_set_store(const char *url) { setenv("RBK_STORE", url, 1); }

const char *rbk_cli_store_url(void)
{
	const char *u = getenv("RBK_STORE");
	return u && *u ? u : NULL;
}

int rbk_cli_open_store(const char *opt, rbk_store **out, char **home)
{
	*home = rbk_cli_home(opt);
	rbk_err e = {0};
	if (rbk_store_open_url(out, rbk_cli_store_url(), *home, &e) < 0) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		return -1;
	}
	return 0;
}

long long rbk_cli_run_number(const rbk_cmd *cmd, int argc, char **argv, int optind_now, int *rc)
{
	char *end = NULL;
	long long id = optind_now == argc - 1 ? strtoll(argv[optind_now], &end, 10) : 0;
	if (optind_now != argc - 1 || !end || *end || id <= 0) {
		*rc = rbk_cli_usage_error(cmd, "give one run number");
		return 0;
	}
	return id;
}

int rbk_cli_open_run(const char *home_opt, long long id, rbk_store **s, char **home, rbk_store_run *run)
{
	if (rbk_cli_open_store(home_opt, s, home) < 0) {
		rbk_free(*home);
		*home = NULL;
		return RBK_EXIT_FAILED;
	}
	rbk_err e = {0};
	if (rbk_store_run_get(*s, id, run, &e) < 0) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		rbk_store_close(*s);
		rbk_free(*home);
		*s = NULL;
		*home = NULL;
		return e.code == RBK_ERR_NONAME ? RBK_EXIT_BADINPUT : RBK_EXIT_FAILED;
	}
	return 0;
}

static rbk_registry *registry;

static void free_registry(void) { rbk_reg_free(registry); }

rbk_registry *rbk_cli_registry(void)
{
	if (registry)
		return registry;
	/* Plugins load when first used; a refused one is reported then, and
	 * its actions are unknown. */
	char *path = rbk_reg_default_path();
	rbk_reg_open(&registry, path);
	rbk_free(path);
	atexit(free_registry);
	return registry;
}

int rbk_cli_usage_error(const rbk_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("rbk: error: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: rbk %s %s\n", cmd->name, cmd->usage);
	return RBK_EXIT_BADINPUT;
}

int rbk_cli_option_error(const rbk_cmd *cmd, int c, const char *arg)
{
	if (c != ':' && (!strcmp(arg, "--actor") || !strncmp(arg, "--actor=", 8)))
		return rbk_cli_usage_error(cmd, "--actor was removed: events record the operating-system user "
						"running rbk (see docs/security.md)");
	if (c == ':')
		return rbk_cli_usage_error(cmd, "option %s needs a value", arg);
	return rbk_cli_usage_error(cmd, "unknown option '%s'", arg);
}

char *rbk_cli_host_queue(void)
{
	char host[256] = "localhost";
	gethostname(host, sizeof host - 1);
	return rbk_xasprintf("host:%s", host);
}

typedef struct {
	int64_t deadline_ms; /* of the pending approval; -1: none pending */
	bool answered;	     /* decided, not yet acted on */
} pending;

static int scan_approval(void *ctx, const rbk_store_event *ev)
{
	pending *p = ctx;
	if (!strcmp(ev->kind, "approval_requested")) {
		const char *at = strstr(ev->data, "\"deadline_ms\":");
		p->deadline_ms = at ? strtoll(at + 14, NULL, 10) : -1;
		p->answered = false;
	} else if (!strcmp(ev->kind, "approval_decided")) {
		p->deadline_ms = -1;
		p->answered = true;
	} else if (!strcmp(ev->kind, "transition") || !strcmp(ev->kind, "run_finished")) {
		p->deadline_ms = -1;
		p->answered = false;
	}
	return 0;
}

bool rbk_cli_approval_due(rbk_store *s, int64_t run_id)
{
	pending p = {-1, false};
	rbk_err e = {0};
	if (rbk_store_timeline(s, run_id, scan_approval, &p, &e) < 0)
		return false;
	/* Deadlines are set and judged on the store's clock, shared by hosts. */
	return p.answered || (p.deadline_ms >= 0 && p.deadline_ms <= rbk_store_now_ms(s));
}

typedef struct {
	int64_t last;
	bool json;
} follow_ctx;

static int follow_line(void *ctx, const rbk_store_event *ev)
{
	follow_ctx *f = ctx;
	f->last = ev->seq;
	if (f->json) {
		char *j = rbk_runview_event_json(ev);
		printf("%s\n", j);
		rbk_free(j);
	} else {
		rbk_runview_event_line(stdout, ev);
	}
	return 0;
}

int rbk_cli_follow(rbk_store *s, int64_t run_id, int64_t after_seq, bool json, bool to_end)
{
	follow_ctx f = {after_seq, json};
	char told[32] = "";
	for (;;) {
		rbk_err e = {0};
		rbk_store_run r = {0};
		/* The status first: events up to it are then all there to print. */
		if (rbk_store_run_get(s, run_id, &r, &e) < 0 || rbk_store_timeline_after(s, run_id, f.last, follow_line, &f, &e) < 0) {
			fprintf(stderr, "rbk: error: %s\n", e.msg);
			rbk_store_run_free(&r);
			return e.code == RBK_ERR_STORE ? RBK_EXIT_STORE : RBK_EXIT_FAILED;
		}
		fflush(stdout);
		bool active = !strcmp(r.status, "queued") || !strcmp(r.status, "running") || !strcmp(r.status, "interrupted");
		bool person = !strcmp(r.status, "waiting") || !strcmp(r.status, "needs_attention");
		if (to_end && person && strcmp(told, r.status) != 0)
			fprintf(stderr, "rbk: run %lld %s: %s (still following; Ctrl-C stops following, not the run)\n",
				(long long)run_id, !strcmp(r.status, "waiting") ? "waits for an answer" : "needs attention",
				!strcmp(r.status, "waiting") ? "rbk approve or rbk reject" : "rbk resume or rbk abort");
		snprintf(told, sizeof told, "%s", r.status);
		int code = rbk_interp_exit_code(r.status);
		rbk_store_run_free(&r);
		if (!active && !(to_end && person))
			return code;
		struct timespec ts = {0, 200 * 1000000L};
		nanosleep(&ts, NULL);
	}
}
