/* tz: IANA time zones through the C library.
 *
 * Zones come from the system zone database ($TZDIR, else /usr/share/zoneinfo)
 * and are applied by pointing TZ at the zone file and calling tzset(). TZ is
 * process-global, so these functions are not thread-safe; each restores the
 * caller's TZ before returning. */
#ifndef RBK_TZ_H
#define RBK_TZ_H

#include <stdint.h>
#include <time.h>

/* 1 when name is "UTC" or a relative path to a regular TZif file under the
 * zone directory (no absolute paths, no "." or ".." components), else 0. */
int rbk_tz_valid(const char *name);

/* UTC seconds -> broken-down local time in zone (NULL means UTC).
 * Returns 0, or -1 for an invalid zone or a time out of range. */
int rbk_tz_local(int64_t utc, const char *zone, struct tm *out);

/* A zone made current for a batch of localtime_r() calls: rbk_tz_enter sets
 * TZ for zone (NULL means UTC) and returns 0, or -1 for an invalid zone (then
 * nothing changed); rbk_tz_leave restores the previous TZ. */
typedef struct {
	char *saved; /* the previous TZ value, NULL when it was unset */
} rbk_tz_scope;

int rbk_tz_enter(rbk_tz_scope *s, const char *zone);
void rbk_tz_leave(rbk_tz_scope *s);

#endif
