/* schedule: schedule entries and the per-tick decisions. */
#include "sched/schedule.h"
#include "base/dirlist.h"
#include "runbook/load.h"
#include "base/mem.h"
#include "runbook/check.h"
#include "runbook/model.h"
#include "lang/render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void rbk_sched_iso(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t rbk_sched_parse_iso(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int n = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &n) != 5)
		return -1;
	const char *p = s + n;
	if (*p == ':') {
		int m = 0;
		if (sscanf(p, ":%2d%n", &tm.tm_sec, &m) != 1)
			return -1;
		p += m;
	}
	if (*p == '.') /* fractions of a second are ignored */
		while (*++p >= '0' && *p <= '9')
			;
	int64_t offset = 0;
	if (*p == 'Z')
		p++;
	else if (*p == '+' || *p == '-') {
		int hh = 0, mm = 0, m = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &m) != 2)
			return -1;
		offset = (int64_t)(hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
		p += 1 + m;
	}
	if (*p)
		return -1;
	/* timegm would quietly normalise 2026-13-45: refuse it instead. */
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > mdays[tm.tm_mon - 1] || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return ((int64_t)timegm(&tm) - offset) * 1000;
}

static void add_entries(rbk_sched *s, const char *path, rbk_runbook *rb)
{
	for (size_t i = 0; i < rb->nschedules; i++) {
		const rbk_schedule *sc = &rb->schedules[i];
		rbk_sched_entry e;
		memset(&e, 0, sizeof e);
		rbk_err er = {0};
		if (rbk_cron_parse(&e.cron, sc->cron, &er) < 0)
			continue; /* reported by the checker already */
		e.runbook = rbk_xstrdup(rb->name);
		e.path = rbk_xstrdup(path);
		e.entry = (int)i;
		e.cron_text = rbk_xstrdup(sc->cron);
		e.tz = rbk_xstrdup(sc->timezone);
		e.catch_up_ms = sc->catch_up_ms;
		e.overlap = sc->overlap;
		e.queue = sc->queue ? rbk_xstrdup(sc->queue) : rb->queue ? rbk_xstrdup(rb->queue) : NULL;
		if (!sc->params || rbk_render(sc->params, NULL, &e.params, NULL, &er) < 0)
			e.params = rbk_val_map();
		s->e = rbk_xrealloc(s->e, (s->n + 1) * sizeof *s->e);
		s->e[s->n++] = e;
	}
}

typedef struct {
	rbk_sched *s;
	rbk_diag *d;
} loading;

static void load_one(void *ctx, const char *dir, const char *name)
{
	loading *l = ctx;
	char *path = rbk_xasprintf("%s/%s", dir, name);
	rbk_doc *doc = NULL;
	rbk_runbook *rb = NULL;
	if (rbk_load_file(&doc, path, l->d) == 0 && rbk_model_build(&rb, doc, l->d) == 0) {
		bool dup = false;
		for (size_t j = 0; j < l->s->n; j++)
			dup |= !strcmp(l->s->e[j].runbook, rb->name);
		if (!dup) /* the first directory on the path wins, as for rbk run NAME */
			add_entries(l->s, path, rb);
	}
	rbk_model_free(rb);
	rbk_doc_free(doc);
	rbk_free(path);
}

int rbk_sched_load(rbk_sched *s, const char *search_path, rbk_diag *d)
{
	memset(s, 0, sizeof s[0]);
	loading l = {s, d};
	rbk_dir_each(search_path, rbk_check_runbook_file, load_one, &l);
	return 0;
}

void rbk_sched_free(rbk_sched *s)
{
	for (size_t i = 0; i < s->n; i++) {
		rbk_free(s->e[i].runbook);
		rbk_free(s->e[i].path);
		rbk_free(s->e[i].cron_text);
		rbk_free(s->e[i].tz);
		rbk_free(s->e[i].queue);
		rbk_val_free(&s->e[i].params);
	}
	rbk_free(s->e);
	memset(s, 0, sizeof *s);
}

/* ---- one entry's tick ---- */

typedef struct {
	char nominal[32];
	int64_t run_id;
	bool active, found;
	int64_t queued_id;
	char queued_nominal[32];
} history;

static bool active_status(const char *st)
{
	return st && (!strcmp(st, "running") || !strcmp(st, "waiting") || !strcmp(st, "interrupted") ||
		      !strcmp(st, "needs_attention"));
}

/* The newest fire of the entry, its newest fired run, and the oldest queued fire. */
static int scan(void *ctx, const rbk_store_fire *f)
{
	history *h = ctx;
	if (!h->found) {
		snprintf(h->nominal, sizeof h->nominal, "%s", f->nominal);
		h->found = true;
	}
	if (f->run_id && !h->run_id) {
		h->run_id = f->run_id;
		h->active |= active_status(f->run_status);
	}
	if (!strcmp(f->outcome, "firing"))
		h->active = true; /* started, its run not recorded yet */
	if (!strcmp(f->outcome, "queued")) { /* newest first: the last seen is the oldest */
		h->queued_id = f->id;
		snprintf(h->queued_nominal, sizeof h->queued_nominal, "%s", f->nominal);
	}
	return 0;
}

static int fire_one(const rbk_sched_entry *e, rbk_store *st, int64_t fire, const char *nominal, rbk_sched_fire_fn fn,
		    void *ctx, rbk_err *err)
{
	if (fn(ctx, e, fire, nominal) < 0)
		return rbk_store_fire_set(st, fire, "failed", 0, "the run could not be started", err);
	return 0;
}

static int tick_entry(const rbk_sched_entry *e, rbk_store *st, int64_t now, int64_t first_tick, rbk_sched_fire_fn fn,
		      void *ctx, rbk_sched_stats *stats, rbk_err *err)
{
	history h;
	memset(&h, 0, sizeof h);
	if (rbk_store_fires(st, e->runbook, e->entry, NULL, 0, scan, &h, err) < 0)
		return -1;
	/* A queued fire goes first, once the run before it has ended. */
	if (h.queued_id && !h.active) {
		if (rbk_store_fire_set(st, h.queued_id, "firing", 0, NULL, err) < 0 ||
		    fire_one(e, st, h.queued_id, h.queued_nominal, fn, ctx, err) < 0)
			return -1;
		stats->fired++;
		h.active = true;
		h.queued_id = 0;
	}
	/* Never fired: from the last tick (or, on a first start, only what
	 * catch_up still allows). */
	/* Never fired: from the last tick (or, on a first start, only what
	 * catch_up still allows). */
	int64_t from = h.found ? rbk_sched_parse_iso(h.nominal) : first_tick - e->catch_up_ms - RBK_SCHED_SLACK_MS;
	/* The nominal times up to now; of those still due, only the newest
	 * fires (after downtime, one run, not one per missed time). */
	int64_t times[RBK_SCHED_MAX_PER_TICK];
	int n = 0, newest_due = -1;
	while (n < RBK_SCHED_MAX_PER_TICK) {
		int64_t next_s;
		struct tm local;
		if (rbk_cron_next(&e->cron, e->tz, from / 1000, &next_s, &local) < 0 || next_s * 1000 > now)
			break;
		from = times[n] = next_s * 1000;
		if (now - times[n] <= e->catch_up_ms + RBK_SCHED_SLACK_MS)
			newest_due = n;
		n++;
	}
	char newest_iso[32] = "";
	if (newest_due >= 0)
		rbk_sched_iso(times[newest_due], newest_iso);
	char active_run[64];
	if (h.run_id)
		snprintf(active_run, sizeof active_run, "run %lld", (long long)h.run_id);
	else
		snprintf(active_run, sizeof active_run, "the run fired for %s", h.nominal);
	for (int i = 0; i < n; i++) {
		int64_t nominal = times[i];
		char iso[32];
		rbk_sched_iso(nominal, iso);
		int64_t late = now - nominal, id = 0;
		const char *outcome = "firing";
		char note[160] = "";
		if (late > e->catch_up_ms + RBK_SCHED_SLACK_MS) {
			outcome = "missed";
			snprintf(note, sizeof note, "%llds late, catch_up allows %llds", (long long)(late / 1000),
				 (long long)(e->catch_up_ms / 1000));
		} else if (i < newest_due) {
			outcome = "skipped";
			snprintf(note, sizeof note, "superseded by the fire at %s", newest_iso);
		} else if (h.active && e->overlap == RBK_OVERLAP_SKIP) {
			outcome = "skipped";
			snprintf(note, sizeof note, "%s of this entry was still active", active_run);
		} else if ((h.active || h.queued_id) && e->overlap == RBK_OVERLAP_QUEUE) {
			outcome = h.queued_id ? "skipped" : "queued";
			if (h.queued_id)
				snprintf(note, sizeof note, "a fire of this entry is already queued");
			else
				snprintf(note, sizeof note, "waits for %s of this entry to end", active_run);
		}
		int rc = rbk_store_fire_claim(st, e->runbook, e->entry, iso, outcome, note[0] ? note : NULL, &id, err);
		if (rc < 0)
			return -1;
		if (rc == 1) {
			stats->already++;
			continue;
		}
		if (!strcmp(outcome, "missed"))
			stats->missed++;
		else if (!strcmp(outcome, "skipped"))
			stats->skipped++;
		else if (!strcmp(outcome, "queued")) {
			stats->queued++;
			h.queued_id = id;
		} else {
			if (fire_one(e, st, id, iso, fn, ctx, err) < 0)
				return -1;
			stats->fired++;
			h.active = true;
			h.run_id = 0; /* its run is not recorded yet: name it by its time */
			snprintf(h.nominal, sizeof h.nominal, "%s", iso);
			snprintf(active_run, sizeof active_run, "the run fired for %s", iso);
		}
	}
	return 0;
}

typedef struct {
	rbk_store *st;
	int64_t now;
	int settled;
	rbk_err *err;
} stale_ctx;

static int settle_one(void *ctx, const rbk_store_fire *f)
{
	stale_ctx *c = ctx;
	if (f->run_id || c->now - rbk_sched_parse_iso(f->decided_at) < RBK_SCHED_SLACK_MS)
		return 0;
	if (rbk_store_fire_set(c->st, f->id, "failed", 0, "the scheduler stopped before its run started", c->err) < 0)
		return 1;
	c->settled++;
	return 0;
}

int rbk_sched_settle_stale(rbk_store *st, int64_t now_ms, int *settled, rbk_err *err)
{
	stale_ctx c = {st, now_ms, 0, err};
	int rc = rbk_store_fires(st, NULL, -1, "firing", 0, settle_one, &c, err);
	*settled = c.settled;
	return rc;
}

int rbk_sched_tick(const rbk_sched *s, rbk_store *st, int64_t now_ms, int64_t first_tick_ms, rbk_sched_fire_fn fire,
		   void *ctx, rbk_sched_stats *stats, rbk_err *err)
{
	memset(stats, 0, sizeof *stats);
	/* An entry that never fired looks back to the last tick of any
	 * scheduler on this store, so downtime is seen even for it. */
	char *last = NULL;
	if (rbk_store_meta_get(st, "scheduler.last_tick", &last, err) < 0)
		return -1;
	int64_t since = last ? rbk_sched_parse_iso(last) : -1;
	rbk_free(last);
	if (since < 0 || since > first_tick_ms)
		since = first_tick_ms;
	for (size_t i = 0; i < s->n; i++)
		if (tick_entry(&s->e[i], st, now_ms, since, fire, ctx, stats, err) < 0)
			return -1;
	char iso[32];
	rbk_sched_iso(now_ms, iso);
	return rbk_store_meta_set(st, "scheduler.last_tick", iso, err);
}

typedef struct {
	int64_t *ids;
	char (*nominal)[32];
	char **runbook;
	int *entry;
	size_t n;
} stale_list;

static int collect_stale(void *ctx, const rbk_store_fire *f)
{
	stale_list *l = ctx;
	if (f->run_id)
		return 0;
	l->ids = rbk_xrealloc(l->ids, (l->n + 1) * sizeof *l->ids);
	l->nominal = rbk_xrealloc(l->nominal, (l->n + 1) * sizeof *l->nominal);
	l->runbook = rbk_xrealloc(l->runbook, (l->n + 1) * sizeof *l->runbook);
	l->entry = rbk_xrealloc(l->entry, (l->n + 1) * sizeof *l->entry);
	l->ids[l->n] = f->id;
	snprintf(l->nominal[l->n], sizeof l->nominal[l->n], "%s", f->nominal);
	l->runbook[l->n] = rbk_xstrdup(f->runbook);
	l->entry[l->n] = f->entry;
	l->n++;
	return 0;
}

int rbk_sched_refire_stale(const rbk_sched *s, rbk_store *st, rbk_sched_fire_fn fn, void *ctx, int *refired,
			   rbk_err *err)
{
	*refired = 0;
	stale_list l = {0};
	/* Collected first: a walk's callback does not write. */
	int rc = rbk_store_fires(st, NULL, -1, "firing", 0, collect_stale, &l, err);
	for (size_t i = 0; rc >= 0 && i < l.n; i++) {
		const rbk_sched_entry *e = NULL;
		for (size_t j = 0; j < s->n && !e; j++)
			if (!strcmp(s->e[j].runbook, l.runbook[i]) && s->e[j].entry == l.entry[i])
				e = &s->e[j];
		if (!e)
			rc = rbk_store_fire_set(st, l.ids[i], "failed", 0, "its schedule entry is gone", err);
		else if ((rc = fire_one(e, st, l.ids[i], l.nominal[i], fn, ctx, err)) == 0)
			(*refired)++;
	}
	for (size_t i = 0; i < l.n; i++)
		rbk_free(l.runbook[i]);
	rbk_free(l.ids);
	rbk_free(l.nominal);
	rbk_free(l.runbook);
	rbk_free(l.entry);
	return rc < 0 ? -1 : 0;
}
