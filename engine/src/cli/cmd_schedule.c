/* rbk schedule list [--json]
 * rbk schedule next NAME|FILE [--from TIME] [--count N] [--json] */
#include "cli/cli.h"
#include "base/exitcode.h"
#include "lang/json.h"
#include "base/mem.h"
#include "sched/schedule.h"
#include "store/store.h"
#include "sched/tz.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* "2026-03-29 03:00:00 CEST (+02:00)" */
static void local_text(int64_t utc_s, const char *zone, char *out, size_t size)
{
	struct tm tm;
	if (rbk_tz_local(utc_s, zone, &tm) < 0) {
		snprintf(out, size, "?");
		return;
	}
	char when[32];
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
	long off = tm.tm_gmtoff;
	char sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	snprintf(out, size, "%s %s (%c%02ld:%02ld)", when, tm.tm_zone ? tm.tm_zone : "", sign, off / 3600, off % 3600 / 60);
}

typedef struct {
	char nominal[32], outcome[16], run_status[24];
	int64_t run;
	bool found;
} last_fire;

static int take_last(void *ctx, const rbk_store_fire *f)
{
	last_fire *l = ctx;
	snprintf(l->nominal, sizeof l->nominal, "%s", f->nominal);
	snprintf(l->outcome, sizeof l->outcome, "%s", f->outcome);
	snprintf(l->run_status, sizeof l->run_status, "%s", f->run_status ? f->run_status : "");
	l->run = f->run_id;
	l->found = true;
	return 1;
}

static int list(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, 0, 'j'}, {"home", required_argument, 0, 'H'}, {"store", required_argument, 0, RBK_OPT_STORE}, {0, 0, 0, 0}};
	bool json = false;
	const char *home_opt = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'H')
			home_opt = optarg;
		else if (c == RBK_OPT_STORE)
			rbk_cli_set_store(optarg);
		else
			return rbk_cli_option_error(&rbk_cmd_schedule, c, argv[optind - 1]);
	}
	rbk_sched s;
	rbk_diag d = {0};
	rbk_sched_load(&s, rbk_cli_search_path(), &d);
	rbk_diag_print(&d, stderr);
	rbk_diag_free(&d);
	rbk_store *st = NULL;
	char *home = NULL;
	if (rbk_cli_open_store(home_opt, &st, &home) < 0) {
		rbk_free(home);
		rbk_sched_free(&s);
		return RBK_EXIT_FAILED;
	}
	int64_t now_s = time(NULL);
	rbk_val out = rbk_val_list();
	for (size_t i = 0; i < s.n; i++) {
		const rbk_sched_entry *e = &s.e[i];
		int64_t next = 0;
		struct tm tm;
		bool has_next = rbk_cron_next(&e->cron, e->tz, now_s, &next, &tm) == 0;
		char utc[32] = "-", local[96] = "-";
		if (has_next) {
			rbk_sched_iso(next * 1000, utc);
			local_text(next, e->tz, local, sizeof local);
		}
		last_fire l;
		memset(&l, 0, sizeof l);
		rbk_err er = {0};
		rbk_store_fires(st, e->runbook, e->entry, NULL, 1, take_last, &l, &er);
		if (json) {
			rbk_val m = rbk_val_map();
			rbk_val_map_set(&m, "runbook", rbk_val_str(e->runbook));
			rbk_val_map_set(&m, "entry", rbk_val_int(e->entry));
			rbk_val_map_set(&m, "cron", rbk_val_str(e->cron_text));
			rbk_val_map_set(&m, "timezone", rbk_val_str(e->tz));
			rbk_val_map_set(&m, "next_utc", has_next ? rbk_val_str(utc) : rbk_val_null());
			rbk_val_map_set(&m, "next_local", has_next ? rbk_val_str(local) : rbk_val_null());
			rbk_val_map_set(&m, "last_nominal", l.found ? rbk_val_str(l.nominal) : rbk_val_null());
			rbk_val_map_set(&m, "last_outcome", l.found ? rbk_val_str(l.outcome) : rbk_val_null());
			rbk_val_map_set(&m, "last_run", l.run ? rbk_val_int(l.run) : rbk_val_null());
			rbk_val_map_set(&m, "last_run_status", l.run_status[0] ? rbk_val_str(l.run_status) : rbk_val_null());
			rbk_val_list_push(&out, m);
		} else {
			if (i == 0)
				printf("%-20s %-5s %-16s %-20s %-42s %s\n", "RUNBOOK", "ENTRY", "CRON", "TIMEZONE", "NEXT (LOCAL)",
				       "LAST");
			char last[96] = "never";
			if (l.found)
				snprintf(last, sizeof last, "%s %s%s%s", l.nominal, l.outcome, l.run_status[0] ? ", run " : "",
					 l.run_status);
			printf("%-20s %-5d %-16s %-20s %-42s %s\n", e->runbook, e->entry, e->cron_text, e->tz, local, last);
		}
	}
	if (json) {
		rbk_val wrap = rbk_val_map();
		rbk_val_map_set(&wrap, "entries", out);
		char *js = rbk_json_encode(&wrap);
		puts(js);
		rbk_free(js);
		rbk_val_free(&wrap);
	} else {
		if (!s.n)
			printf("no schedule entries on %s\n", rbk_cli_search_path());
		rbk_val_free(&out);
	}
	rbk_store_close(st);
	rbk_free(home);
	rbk_sched_free(&s);
	return RBK_EXIT_OK;
}

/* A pure function of the runbook, the entry and the time: tests use it to
 * check zones with and without DST. */
static int next(int argc, char **argv)
{
	static const struct option opts[] = {{"from", required_argument, 0, 'f'}, {"count", required_argument, 0, 'c'},
					     {"json", no_argument, 0, 'j'}, {0, 0, 0, 0}};
	const char *from_opt = NULL;
	long count = 5;
	bool json = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 'f')
			from_opt = optarg;
		else if (c == 'c') {
			char *end;
			count = strtol(optarg, &end, 10);
			if (*end || count < 1 || count > 10000)
				return rbk_cli_usage_error(&rbk_cmd_schedule, "--count takes 1 to 10000, not '%s'", optarg);
		} else if (c == 'j')
			json = true;
		else
			return rbk_cli_option_error(&rbk_cmd_schedule, c, argv[optind - 1]);
	}
	if (optind != argc - 1)
		return rbk_cli_usage_error(&rbk_cmd_schedule, "give one runbook");
	int64_t from = from_opt ? rbk_sched_parse_iso(from_opt) : (int64_t)time(NULL) * 1000;
	if (from < 0)
		return rbk_cli_usage_error(&rbk_cmd_schedule, "--from takes an ISO-8601 time such as 2026-03-29T00:00:00Z, not '%s'",
					   from_opt);
	rbk_diag d = {0};
	rbk_cli_runbook rb;
	if (rbk_cli_load(&rb, argv[optind], true, &d) < 0) {
		rbk_diag_print(&d, stderr);
		rbk_diag_free(&d);
		return RBK_EXIT_BADINPUT;
	}
	if (!rb.rb->nschedules) {
		fprintf(stderr, "rbk: error: runbook '%s' has no schedule\n", rb.rb->name);
		rbk_cli_runbook_free(&rb);
		return RBK_EXIT_BADINPUT;
	}
	/* Every entry's times, merged in time order. */
	size_t n = rb.rb->nschedules;
	rbk_cron *crons = rbk_xcalloc(n, sizeof *crons);
	int64_t *at = rbk_xcalloc(n, sizeof *at);
	for (size_t i = 0; i < n; i++) {
		rbk_cron_parse(&crons[i], rb.rb->schedules[i].cron, NULL);
		struct tm tm;
		if (rbk_cron_next(&crons[i], rb.rb->schedules[i].timezone, from / 1000, &at[i], &tm) < 0)
			at[i] = -1;
	}
	for (long k = 0; k < count; k++) {
		size_t best = n;
		for (size_t i = 0; i < n; i++)
			if (at[i] >= 0 && (best == n || at[i] < at[best]))
				best = i;
		if (best == n)
			break;
		const char *zone = rb.rb->schedules[best].timezone;
		char utc[32], local[96];
		rbk_sched_iso(at[best] * 1000, utc);
		local_text(at[best], zone, local, sizeof local);
		if (json)
			printf("{\"entry\": %zu, \"utc\": \"%s\", \"local\": \"%s\", \"timezone\": \"%s\"}\n", best, utc, local, zone);
		else
			printf("%s  %s  entry %zu (%s)\n", local, utc, best, rb.rb->schedules[best].cron);
		struct tm tm;
		if (rbk_cron_next(&crons[best], zone, at[best], &at[best], &tm) < 0)
			at[best] = -1;
	}
	rbk_free(crons);
	rbk_free(at);
	rbk_cli_runbook_free(&rb);
	return RBK_EXIT_OK;
}

static int schedule(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "list"))
		return list(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "next"))
		return next(argc - 1, argv + 1);
	return rbk_cli_usage_error(&rbk_cmd_schedule, "use 'rbk schedule list' or 'rbk schedule next NAME'");
}

const rbk_cmd rbk_cmd_schedule = {"schedule", "list [--json] | next NAME|FILE [--from TIME] [--count N] [--json]",
				  "the schedule entries and their next fire times", schedule};
