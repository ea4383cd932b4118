/* rbk status [--json]: the runs that are not over.
 * rbk history [--runbook N] [--status S] [--actor A] [--since T] [--until T] [--limit N] [--json] */
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

typedef struct {
	rbk_store *store;
	const char *home;
	bool json;
	int count;
	rbk_val list;
	const char *want_status; /* the status asked for, as shown (interrupted includes a dead owner's running) */
} lister;

static int one(void *ctx, const rbk_store_run *r)
{
	lister *l = ctx;
	const char *status = rbk_runview_status(l->store, l->home, r);
	if (l->want_status && strcmp(status, l->want_status) != 0)
		return 0;
	if (l->json) {
		rbk_val_list_push(&l->list, rbk_runview_run(r, status));
	} else {
		if (!l->count)
			printf("%-6s %-20s %-16s %-20s %-24s %s\n", "RUN", "RUNBOOK", "STATUS", "STATE", "STARTED (UTC)", "ACTOR");
		char started[32];
		snprintf(started, sizeof started, "%.10s %.8s", r->created_at, strlen(r->created_at) > 11 ? r->created_at + 11 : "");
		printf("%-6lld %-20s %-16s %-20s %-24s %s%s%s\n", (long long)r->id, r->runbook, status,
		       r->current_state ? r->current_state : "-", started, r->actor, r->dry_run ? " (dry run)" : "",
		       r->parent_run ? " (called)" : "");
	}
	l->count++;
	return 0;
}

static int list_runs(const rbk_cmd *cmd, int argc, char **argv, bool active)
{
	static const struct option opts[] = {{"runbook", required_argument, 0, 'r'}, {"status", required_argument, 0, 's'},
					     {"actor", required_argument, 0, 'a'},   {"since", required_argument, 0, 'S'},
					     {"until", required_argument, 0, 'U'},   {"limit", required_argument, 0, 'l'},
					     {"json", no_argument, 0, 'j'},	     {"home", required_argument, 0, 'H'}, {"store", required_argument, 0, RBK_OPT_STORE},
					     {"scheduled", no_argument, 0, 'c'},    {0, 0, 0, 0}};
	rbk_store_run_filter f = {0};
	f.active_only = active;
	const char *home_opt = NULL;
	bool json = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (active && c != 'j' && c != 'H' && c != RBK_OPT_STORE)
			return rbk_cli_option_error(cmd, c == ':' ? ':' : '?', argv[optind - 1]);
		switch (c) {
		case 'r': f.runbook = optarg; break;
		case 's': f.status = optarg; break;
		case 'a': f.actor = optarg; break;
		case 'S': f.since = optarg; break;
		case 'U': f.until = optarg; break;
		case 'l': {
			char *end;
			f.limit = strtoll(optarg, &end, 10);
			if (*end || f.limit <= 0)
				return rbk_cli_usage_error(cmd, "--limit takes a positive number, not '%s'", optarg);
			break;
		}
		case 'j': json = true; break;
		case 'H': home_opt = optarg; break;
		case RBK_OPT_STORE: rbk_cli_set_store(optarg); break;
		case 'c': f.scheduled_only = 1; break;
		default: return rbk_cli_option_error(cmd, c, argv[optind - 1]);
		}
	}
	if (optind != argc)
		return rbk_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (!active && !f.limit)
		f.limit = 50;
	rbk_store *s;
	char *home;
	if (rbk_cli_open_store(home_opt, &s, &home) < 0) {
		rbk_free(home);
		return RBK_EXIT_FAILED;
	}
	lister l = {s, home, json, 0, rbk_val_list(), f.status};
	rbk_err e = {0};
	/* A run stored as running whose owner died shows as interrupted: filter
	 * on the status shown, reading both when either is asked for. */
	int rc;
	if (f.status && (!strcmp(f.status, "interrupted") || !strcmp(f.status, "running"))) {
		rbk_store_run_filter g = f;
		g.status = "running";
		rc = rbk_store_runs(s, &g, one, &l, &e);
		g.status = "interrupted";
		if (rc == 0)
			rc = rbk_store_runs(s, &g, one, &l, &e);
	} else {
		rc = rbk_store_runs(s, &f, one, &l, &e);
	}
	if (rc < 0)
		fprintf(stderr, "rbk: error: %s\n", e.msg);
	else if (json) {
		rbk_val out = rbk_val_map();
		rbk_val_map_set(&out, "runs", l.list);
		l.list = rbk_val_null();
		char *js = rbk_json_encode(&out);
		puts(js);
		rbk_free(js);
		rbk_val_free(&out);
	} else if (!l.count)
		puts(active ? "no active runs" : "no runs");
	rbk_val_free(&l.list);
	rbk_store_close(s);
	rbk_free(home);
	return rc < 0 ? RBK_EXIT_FAILED : RBK_EXIT_OK;
}

static int status(int argc, char **argv) { return list_runs(&rbk_cmd_status, argc, argv, true); }
static int history(int argc, char **argv) { return list_runs(&rbk_cmd_history, argc, argv, false); }

const rbk_cmd rbk_cmd_status = {"status", "[--json]", "the runs that are not over (running, waiting, interrupted, needs attention)", status};
const rbk_cmd rbk_cmd_history = {"history", "[--runbook N] [--status S] [--actor A] [--since T] [--until T] [--scheduled] [--limit N] [--json]",
				 "past runs, newest first (50 unless --limit)", history};
