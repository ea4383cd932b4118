/* schedule: the schedule entries of the runbooks on the path, and what is due
 * (format.md "Schedules", architecture.md "Scheduler").
 *
 * A tick looks, for each entry, at every nominal fire time since the last
 * one recorded (or since catch_up before the first tick) up to now, and
 * records a decision for each under a unique key (runbook, entry, nominal
 * time), so no time is ever fired twice, whoever restarts:
 *   - late by at most catch_up + one minute (a tick's slack): due;
 *   - later than that: missed (the scheduler was down);
 *   - due, but an older one of several due at once (after downtime):
 *     skipped, superseded by the newest, which alone fires;
 *   - due while this entry's previous run is still active: skipped
 *     (overlap: skip), queued (overlap: queue: fired when it ends), or
 *     fired anyway (overlap: allow).
 * Firing is left to a callback (the daemon starts `rbk run`). */
#ifndef RBK_SCHEDULE_H
#define RBK_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "sched/cron.h"
#include "runbook/diag.h"
#include "store/store.h"
#include "lang/value.h"

#define RBK_SCHED_SLACK_MS 60000 /* a tick may come this late and still fire */
#define RBK_SCHED_MAX_PER_TICK 1000 /* nominal times looked at per entry per tick */

typedef struct {
	char *runbook, *path;
	int entry;
	char *cron_text, *tz;
	rbk_cron cron;
	int64_t catch_up_ms;
	int overlap; /* RBK_OVERLAP_* of model.h */
	rbk_val params; /* the entry's params, typed (a map) */
	char *queue;	/* the entry's queue, else the runbook's; NULL: none */
} rbk_sched_entry;

typedef struct {
	rbk_sched_entry *e;
	size_t n;
} rbk_sched;

typedef struct {
	int fired, missed, skipped, queued, already;
} rbk_sched_stats;

/* Fire: start the run for fire id; returns 0, or -1 (the fire is then
 * recorded as failed by the caller). */
typedef int (*rbk_sched_fire_fn)(void *ctx, const rbk_sched_entry *e, int64_t fire, const char *nominal);

/* Every valid runbook with a schedule on search_path (invalid ones are
 * reported in d and left out). */
int rbk_sched_load(rbk_sched *s, const char *search_path, rbk_diag *d);
void rbk_sched_free(rbk_sched *s);
/* Decide and fire everything due at now_ms. first_tick_ms: when the daemon
 * started (an entry never fired before looks back from there). */
int rbk_sched_tick(const rbk_sched *s, rbk_store *st, int64_t now_ms, int64_t first_tick_ms, rbk_sched_fire_fn fire,
		   void *ctx, rbk_sched_stats *stats, rbk_err *err);
/* At start-up (one scheduler per store): fires claimed more than a minute
 * ago whose run never started are recorded as failed, not fired again. */
int rbk_sched_settle_stale(rbk_store *st, int64_t now_ms, int *settled, rbk_err *err);
/* On a shared store, by a scheduler that has just become the leader: the
 * former leader is gone (its session lock with it), and a fire it claimed
 * without creating its run is fired now, so a failover neither loses nor
 * repeats a due time. *refired: how many. */
int rbk_sched_refire_stale(const rbk_sched *s, rbk_store *st, rbk_sched_fire_fn fire, void *ctx, int *refired,
			   rbk_err *err);
/* UTC ms -> "2026-11-21T08:55:00Z" (fire times have whole seconds). */
void rbk_sched_iso(int64_t ms, char out[32]);
/* "2026-11-21T08:55:00Z", "...+02:00", "2026-11-21T08:55" (UTC) -> ms; -1 if malformed. */
int64_t rbk_sched_parse_iso(const char *s);

#endif
