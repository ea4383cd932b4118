/* cron: five-field cron expressions and their next fire time in a zone.
 *
 * A parsed expression is a bit set per field. Day-of-week 7 is stored as 0
 * (Sunday). dom_star/dow_star record that the field was written starting
 * with '*' (as in Vixie cron, so a stepped star counts too): when neither is
 * set, a day matches if day-of-month OR day-of-week matches, otherwise both
 * must. */
#ifndef RBK_CRON_H
#define RBK_CRON_H

#include <stdint.h>
#include <time.h>

#include "base/err.h"

typedef struct {
	uint64_t minute; /* bits 0..59 */
	uint32_t hour;   /* bits 0..23 */
	uint32_t dom;    /* bits 1..31 */
	uint16_t month;  /* bits 1..12 */
	uint8_t dow;     /* bits 0..6, 0 = Sunday */
	unsigned char dom_star, dow_star;
} rbk_cron;

/* Parse expr (five whitespace-separated fields, or a macro such as @daily)
 * into out. Returns 0, or -1 with err filled (pos = byte offset in expr). */
int rbk_cron_parse(rbk_cron *out, const char *expr, rbk_err *err);

/* 1 when the local broken-down time (tm_min, tm_hour, tm_mday, tm_mon,
 * tm_wday) matches c, else 0. */
int rbk_cron_match(const rbk_cron *c, const struct tm *local);

/* The first fire time strictly after after_utc, with zone's wall clock (NULL
 * means UTC). A wall time skipped by a spring-forward gap fires at the first
 * instant after the gap; one repeated by a fall-back fires only at its first
 * occurrence. Returns 0 with *out_utc and *out_local (may be NULL) set, or -1
 * when the zone is invalid or nothing fires within eight years. */
int rbk_cron_next(const rbk_cron *c, const char *zone, int64_t after_utc, int64_t *out_utc,
		  struct tm *out_local);

#endif
