/* rbk show RUN [--json]      rbk log RUN [--json] */
#include "cli/cli.h"
#include "base/exitcode.h"
#include "lang/json.h"
#include "base/mem.h"
#include "audit/runview.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool want_source, want_follow;

/* Parse "RUN [--json] [--source] [--home DIR]". Returns the run id, or 0 after a usage error. */
static long long parse(const rbk_cmd *cmd, int argc, char **argv, bool *json, const char **home, int *rc)
{
	static const struct option opts[] = {{"json", no_argument, 0, 'j'}, {"home", required_argument, 0, 'H'}, {"store", required_argument, 0, RBK_OPT_STORE},
					     {"source", no_argument, 0, 's'}, {"follow", no_argument, 0, 'f'}, {0, 0, 0, 0}};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 'j')
			*json = true;
		else if (c == 's' && cmd == &rbk_cmd_show)
			want_source = true;
		else if (c == 'f' && cmd == &rbk_cmd_log)
			want_follow = true;
		else if (c == 'H')
			*home = optarg;
		else if (c == RBK_OPT_STORE)
			rbk_cli_set_store(optarg);
		else {
			*rc = rbk_cli_option_error(cmd, c, argv[optind - 1]);
			return 0;
		}
	}
	return rbk_cli_run_number(cmd, argc, argv, optind, rc);
}

typedef struct {
	bool json;
	int64_t first_ms, last_ms;
	char *reason;
	rbk_val children;
	int n;
} walk;

static int ev_log(void *ctx, const rbk_store_event *ev)
{
	walk *w = ctx;
	if (w->json) {
		char *s = rbk_runview_event_json(ev);
		puts(s);
		rbk_free(s);
	} else {
		rbk_runview_event_line(stdout, ev);
	}
	w->n++;
	return 0;
}

static int ev_summary(void *ctx, const rbk_store_event *ev)
{
	walk *w = ctx;
	rbk_val d = rbk_val_null();
	if (rbk_json_parse(&d, ev->data, strlen(ev->data), NULL) < 0)
		return 0;
	if (!strcmp(ev->kind, "run_finished") || !strcmp(ev->kind, "run_status")) {
		const rbk_val *r = rbk_val_map_get(&d, "reason");
		rbk_free(w->reason);
		w->reason = r && r->t == RBK_V_STR ? rbk_xstrdup(r->u.s.s) : NULL;
	}
	if (!strcmp(ev->kind, "call_started")) {
		const rbk_val *c = rbk_val_map_get(&d, "child");
		if (c)
			rbk_val_list_push(&w->children, rbk_val_copy(c));
	}
	rbk_val_free(&d);
	return 0;
}

static int show(int argc, char **argv)
{
	bool json = false;
	const char *home_opt = NULL;
	int rc = RBK_EXIT_OK;
	long long id = parse(&rbk_cmd_show, argc, argv, &json, &home_opt, &rc);
	if (!id)
		return rc;
	rbk_store *s;
	char *home;
	rbk_store_run r;
	rbk_err e = {0};
	if ((rc = rbk_cli_open_run(home_opt, id, &s, &home, &r)) != 0)
		return rc;
	if (want_source) {
		/* The exact bytes that ran, pinned to the run. */
		char *bytes = NULL;
		size_t len = 0;
		int src = rbk_store_source(s, r.source_sha256, &bytes, &len, &e);
		if (src == 0)
			fwrite(bytes, 1, len, stdout);
		else
			fprintf(stderr, "rbk: error: %s\n", e.msg);
		rbk_free(bytes);
		rbk_store_run_free(&r);
		rbk_store_close(s);
		rbk_free(home);
		return src == 0 ? RBK_EXIT_OK : RBK_EXIT_FAILED;
	}
	walk w = {json, 0, 0, NULL, rbk_val_list(), 0};
	rbk_store_timeline(s, id, ev_summary, &w, &e);
	const char *status = rbk_runview_status(s, home, &r);
	rbk_val m = rbk_runview_run(&r, status);
	rbk_val_map_set(&m, "reason", w.reason ? rbk_val_str(w.reason) : rbk_val_null());
	rbk_val_map_set(&m, "children", w.children);
	if (json) {
		char *js = rbk_json_encode(&m);
		puts(js);
		rbk_free(js);
	} else {
		printf("run        %lld%s\nrunbook    %s\nstatus     %s%s%s\nstate      %s\nactor      %s\n"
		       "started    %s\nupdated    %s\nsource     sha256:%s\n",
		       id, r.dry_run ? " (dry run)" : "", r.runbook, status, w.reason ? " — " : "", w.reason ? w.reason : "",
		       r.current_state ? r.current_state : "-", r.actor, r.created_at, r.updated_at, r.source_sha256);
		if (r.parent_run)
			printf("called by  run %lld (state %s)\n", (long long)r.parent_run, r.parent_state ? r.parent_state : "?");
		if (r.lock_key)
			printf("lock       %s\n", r.lock_key);
		rbk_store_lease l = {0};
		if (rbk_store_lease_get(s, id, &l, &e) == 0 && l.queue) {
			printf("queue      %s\n", l.queue);
			if (l.owner && l.left_ms > 0)
				printf("executor   %s (lease ends in %lld s)\n", l.owner, (long long)(l.left_ms + 999) / 1000);
		}
		rbk_store_lease_free(&l);
		const rbk_val *prov = rbk_val_map_get(&m, "provenance");
		const rbk_val *git = prov && prov->t == RBK_V_MAP ? rbk_val_map_get(prov, "git") : NULL;
		const rbk_val *path = prov && prov->t == RBK_V_MAP ? rbk_val_map_get(prov, "path") : NULL;
		if (path && path->t == RBK_V_STR)
			printf("file       %s\n", path->u.s.s);
		if (git && git->t == RBK_V_MAP) {
			const rbk_val *cm = rbk_val_map_get(git, "commit"), *dirty = rbk_val_map_get(git, "dirty"),
				      *tracked = rbk_val_map_get(git, "tracked");
			printf("git        %s%s\n", cm && cm->t == RBK_V_STR ? cm->u.s.s : "(no commit)",
			       tracked && tracked->t == RBK_V_BOOL && !tracked->u.b ? " (file not tracked)"
			       : dirty && dirty->t == RBK_V_BOOL && dirty->u.b ? " (file differed from the commit)"
										   : "");
		}
		for (size_t i = 0; i < w.children.u.list.n; i++)
			printf("called     run %lld\n", (long long)w.children.u.list.items[i].u.i);
		const rbk_val *p = rbk_val_map_get(&m, "params");
		for (size_t i = 0; p && p->t == RBK_V_MAP && i < p->u.map.n; i++) {
			char *v = rbk_val_to_text(&p->u.map.vals[i]);
			printf("%s %s = %s\n", i ? "          " : "params    ", p->u.map.keys[i], v);
			rbk_free(v);
		}
	}
	rbk_val_free(&m);
	rbk_free(w.reason);
	rbk_store_run_free(&r);
	rbk_store_close(s);
	rbk_free(home);
	return RBK_EXIT_OK;
}

static int log_cmd(int argc, char **argv)
{
	bool json = false;
	const char *home_opt = NULL;
	int rc = RBK_EXIT_OK;
	long long id = parse(&rbk_cmd_log, argc, argv, &json, &home_opt, &rc);
	if (!id)
		return rc;
	rbk_store *s;
	char *home;
	rbk_store_run r;
	rbk_err e = {0};
	if ((rc = rbk_cli_open_run(home_opt, id, &s, &home, &r)) != 0)
		return rc;
	walk w = {json, 0, 0, NULL, rbk_val_null(), 0};
	if (want_follow) {
		/* Until the run ends, whoever executes it; Ctrl-C stops following. */
		rc = rbk_cli_follow(s, id, 0, json, true);
	} else if (rbk_store_timeline(s, id, ev_log, &w, &e) < 0) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		rc = RBK_EXIT_FAILED;
	}
	rbk_store_run_free(&r);
	rbk_store_close(s);
	rbk_free(home);
	return rc;
}

const rbk_cmd rbk_cmd_show = {"show", "RUN [--json | --source]",
			      "a run: status, params (secrets masked), provenance, outcome, child runs; --source: the exact definition that ran",
			      show};
const rbk_cmd rbk_cmd_log = {"log", "RUN [--json] [--follow]",
			     "a run's timeline (JSON Lines with --json); --follow: as it grows, until the run ends, exiting with its exit code",
			     log_cmd};
