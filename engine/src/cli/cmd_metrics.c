/* rbk metrics: the store's figures in the Prometheus text format (what rbk
 * serve answers at /metrics; also fit for node_exporter's textfile
 * collector). Every figure is read from the store, so any host sharing it
 * reports the same. */
#include "cli/cli.h"
#include "audit/runview.h"
#include "base/exitcode.h"
#include "base/mem.h"
#include "lang/json.h"
#include "sched/schedule.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Upper bounds of the step-duration buckets, in seconds. */
static const double bounds[] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
enum { NB = sizeof bounds / sizeof bounds[0] };

typedef struct {
	char *runbook;
	int64_t buckets[NB], count;
	double sum;
} hist;

typedef struct {
	hist *h;
	size_t n;
} hists;

/* A label value as the text format wants it: \ " and newline escaped. */
static void label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f), fputc(*v, f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static int print_count(void *ctx, const char *runbook, const char *status, int64_t n)
{
	FILE *f = ctx;
	fputs("rbk_runs{runbook=\"", f);
	label(f, runbook);
	fprintf(f, "\",status=\"%s\"} %lld\n", status, (long long)n);
	return 0;
}

/* Seconds since 1970 of a stored time (-1 if not one). */
static double iso_seconds(const char *iso)
{
	int64_t ms = rbk_store_time_ms(iso);
	return ms > 0 ? ms / 1000.0 : -1;
}

static int add_step(void *ctx, const char *runbook, const char *state, const char *status, const char *started,
		    const char *ended)
{
	(void)state;
	(void)status;
	hists *hs = ctx;
	double a = iso_seconds(started), b = iso_seconds(ended);
	if (a < 0 || b < a)
		return 0;
	hist *h = NULL;
	for (size_t i = 0; i < hs->n && !h; i++)
		if (!strcmp(hs->h[i].runbook, runbook))
			h = &hs->h[i];
	if (!h) {
		hs->h = rbk_xrealloc(hs->h, (hs->n + 1) * sizeof *hs->h);
		h = &hs->h[hs->n++];
		*h = (hist){.runbook = rbk_xstrdup(runbook)};
	}
	for (int i = 0; i < NB; i++)
		if (b - a <= bounds[i])
			h->buckets[i]++;
	h->count++;
	h->sum += b - a;
	return 0;
}

typedef struct {
	rbk_store *s;
	const char *home;
	int64_t waiting;
	double oldest;
	double now;
} waits;

static int add_wait(void *ctx, const rbk_store_run *r)
{
	waits *w = ctx;
	if (strcmp(rbk_runview_status(w->s, w->home, r), "waiting") != 0)
		return 0;
	w->waiting++;
	double since = iso_seconds(r->updated_at);
	if (since > 0 && w->now - since > w->oldest)
		w->oldest = w->now - since;
	return 0;
}

static void help(FILE *f, const char *name, const char *type, const char *text)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* A number kept as JSON under a meta key ("verify.last": {"at": ...}). */
static double meta_num(rbk_store *s, const char *key, const char *field, bool *found)
{
	char *text = NULL;
	rbk_err e = {0};
	double out = 0;
	*found = false;
	if (rbk_store_meta_get(s, key, &text, &e) == 0 && text) {
		rbk_val v;
		if (rbk_json_parse(&v, text, strlen(text), &e) == 0) {
			const rbk_val *x = v.t == RBK_V_MAP ? rbk_val_map_get(&v, field) : NULL;
			if (x && (x->t == RBK_V_INT || x->t == RBK_V_BOOL || x->t == RBK_V_NUM)) {
				out = x->t == RBK_V_INT ? (double)x->u.i : x->t == RBK_V_BOOL ? x->u.b : x->u.n;
				*found = true;
			}
			rbk_val_free(&v);
		}
	}
	rbk_free(text);
	return out;
}

static int metrics(int argc, char **argv)
{
	static const struct option opts[] = {{"home", required_argument, 0, 'H'},
					     {"store", required_argument, 0, RBK_OPT_STORE}, {0, 0, 0, 0}};
	const char *home_opt = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 'H')
			home_opt = optarg;
		else if (c == RBK_OPT_STORE)
			rbk_cli_set_store(optarg);
		else
			return rbk_cli_option_error(&rbk_cmd_metrics, c, argv[optind - 1]);
	}
	if (optind != argc)
		return rbk_cli_usage_error(&rbk_cmd_metrics, "unexpected argument '%s'", argv[optind]);
	rbk_store *s;
	char *home;
	if (rbk_cli_open_store(home_opt, &s, &home) < 0) {
		rbk_free(home);
		return RBK_EXIT_STORE;
	}
	/* Written to memory first: a store error prints nothing half-done. */
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	rbk_err e = {0};
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	help(f, "rbk_runs", "gauge", "Runs in the store, by runbook and status.");
	int rc = rbk_store_run_counts(s, print_count, f, &e);
	hists hs = {0};
	if (rc == 0) {
		help(f, "rbk_step_duration_seconds", "histogram", "How long step attempts took, by runbook.");
		rc = rbk_store_step_times(s, add_step, &hs, &e);
		for (size_t i = 0; i < hs.n && rc == 0; i++) {
			for (int b = 0; b < NB; b++) {
				fputs("rbk_step_duration_seconds_bucket{runbook=\"", f);
				label(f, hs.h[i].runbook);
				fprintf(f, "\",le=\"%g\"} %lld\n", bounds[b], (long long)hs.h[i].buckets[b]);
			}
			fputs("rbk_step_duration_seconds_bucket{runbook=\"", f);
			label(f, hs.h[i].runbook);
			fprintf(f, "\",le=\"+Inf\"} %lld\n", (long long)hs.h[i].count);
			fputs("rbk_step_duration_seconds_sum{runbook=\"", f);
			label(f, hs.h[i].runbook);
			fprintf(f, "\"} %.3f\n", hs.h[i].sum);
			fputs("rbk_step_duration_seconds_count{runbook=\"", f);
			label(f, hs.h[i].runbook);
			fprintf(f, "\"} %lld\n", (long long)hs.h[i].count);
		}
	}
	waits w = {s, home, 0, 0, now};
	if (rc == 0) {
		rbk_store_run_filter flt = {.active_only = 1};
		rc = rbk_store_runs(s, &flt, add_wait, &w, &e);
		help(f, "rbk_approvals_waiting", "gauge", "Runs waiting for a person's answer.");
		fprintf(f, "rbk_approvals_waiting %lld\n", (long long)w.waiting);
		help(f, "rbk_approval_oldest_wait_seconds", "gauge", "How long the oldest waiting run has waited.");
		fprintf(f, "rbk_approval_oldest_wait_seconds %.3f\n", w.oldest);
	}
	int64_t head = 0;
	char hash[65];
	if (rc == 0 && (rc = rbk_store_head(s, &head, hash, &e)) == 0) {
		help(f, "rbk_chain_events", "gauge", "Events in the audit chain.");
		fprintf(f, "rbk_chain_events %lld\n", (long long)head);
		bool found;
		double at = meta_num(s, "verify.last", "at", &found);
		help(f, "rbk_verify_last_timestamp_seconds", "gauge", "When rbk verify last checked the chain (0: never).");
		fprintf(f, "rbk_verify_last_timestamp_seconds %.0f\n", found ? at : 0);
		double intact = meta_num(s, "verify.last", "intact", &found);
		help(f, "rbk_verify_last_intact", "gauge", "1 if the last verify found the chain intact, 0 if not or never.");
		fprintf(f, "rbk_verify_last_intact %d\n", found && intact > 0);
		char *tick = NULL;
		rbk_store_meta_get(s, "scheduler.last_tick", &tick, &e);
		double t = tick ? rbk_sched_parse_iso(tick) / 1000.0 : -1;
		help(f, "rbk_scheduler_last_tick_timestamp_seconds", "gauge", "The scheduler's last tick (0: never).");
		fprintf(f, "rbk_scheduler_last_tick_timestamp_seconds %.0f\n", t > 0 ? t : 0);
		help(f, "rbk_scheduler_lag_seconds", "gauge", "How far the scheduler's last tick is behind now (0: never ticked).");
		fprintf(f, "rbk_scheduler_lag_seconds %.3f\n", t > 0 ? now - t : 0);
		rbk_free(tick);
	}
	fclose(f);
	for (size_t i = 0; i < hs.n; i++)
		rbk_free(hs.h[i].runbook);
	rbk_free(hs.h);
	if (rc < 0)
		fprintf(stderr, "rbk: error: %s\n", e.msg);
	else
		fwrite(text, 1, len, stdout);
	free(text);
	rbk_store_close(s);
	rbk_free(home);
	return rc < 0 ? RBK_EXIT_STORE : RBK_EXIT_OK;
}

const rbk_cmd rbk_cmd_metrics = {"metrics", "",
				 "the store's figures in the Prometheus text format (what rbk serve gives at /metrics)",
				 metrics};
