/* cron: parse five-field expressions, match them, find the next fire time. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* localtime_r */
#endif
#include "sched/cron.h"
#include "sched/tz.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>

/* ---- parsing ---- */

typedef struct {
	const char *name; /* for messages */
	int lo, hi;
	const char *const *names; /* 3-letter names for lo, lo+1, ... or NULL */
	int nnames;
	const char *kind; /* "month" / "day" in "unknown month name" */
} field_def;

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
					  "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const field_def fields[5] = {
	{"minute", 0, 59, NULL, 0, NULL},
	{"hour", 0, 23, NULL, 0, NULL},
	{"day-of-month", 1, 31, NULL, 0, NULL},
	{"month", 1, 12, month_names, 12, "month"},
	{"day-of-week", 0, 7, day_names, 7, "day"},
};

static const struct {
	const char *name, *expansion;
} macros[] = {
	{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
};

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static int is_space(char c) { return isspace((unsigned char)c) != 0; }

/* ASCII case-insensitive comparison of n bytes (no locale involved). */
static int same_word(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* Read a number at expr[*p] (saturating, so huge numbers still read as out of
 * range) and advance *p past it. */
static long read_number(const char *expr, size_t *p, size_t end)
{
	long v = 0;
	while (*p < end && is_digit(expr[*p])) {
		if (v < 1000000)
			v = v * 10 + (expr[*p] - '0');
		(*p)++;
	}
	return v;
}

/* One value of field f at expr[*p..end): a number or (month, day-of-week) a
 * name. Stores it in *out and advances *p, or fails with err. */
static int parse_value(const field_def *f, const char *expr, size_t *p, size_t end, int *out,
		       rbk_err *err)
{
	size_t s = *p;
	if (s < end && is_digit(expr[s])) {
		long v = read_number(expr, p, end);
		if (v < f->lo || v > f->hi) {
			rbk_err_set(err, (int)s, "%s %.*s out of range %d-%d", f->name, (int)(*p - s),
				    expr + s, f->lo, f->hi);
			return -1;
		}
		*out = (int)v;
		return 0;
	}
	if (s < end && is_alpha(expr[s])) {
		while (*p < end && is_alpha(expr[*p]))
			(*p)++;
		int len = (int)(*p - s);
		if (!f->names) {
			rbk_err_set(err, (int)s, "unexpected '%.*s' in %s field", len, expr + s, f->name);
			return -1;
		}
		for (int i = 0; len == 3 && i < f->nnames; i++) {
			if (same_word(expr + s, f->names[i], 3)) {
				*out = f->lo + i;
				return 0;
			}
		}
		rbk_err_set(err, (int)s, "unknown %s name '%.*s'", f->kind, len, expr + s);
		return -1;
	}
	if (s == end || expr[s] == ',' || expr[s] == '-' || expr[s] == '/')
		rbk_err_set(err, (int)s, "expected a %s in %s field",
			    f->names ? "number or name" : "number", f->name);
	else
		rbk_err_set(err, (int)s, "unexpected '%c' in %s field", expr[s], f->name);
	return -1;
}

/* Parse the list expr[start..end) of field f into the bit set *bits:
 * items "*", "v", "a-b", each optionally followed by "/step". */
static int parse_field(const field_def *f, const char *expr, size_t start, size_t end,
		       uint64_t *bits, rbk_err *err)
{
	size_t p = start;
	for (;;) {
		size_t item = p;
		int lo, hi, star = 0, ranged = 0;
		if (p == end || expr[p] == ',') {
			rbk_err_set(err, (int)item, "empty list item in %s field", f->name);
			return -1;
		}
		if (expr[p] == '*') {
			star = 1;
			lo = f->lo;
			hi = f->hi;
			p++;
		} else {
			if (parse_value(f, expr, &p, end, &lo, err) < 0)
				return -1;
			hi = lo;
			if (p < end && expr[p] == '-') {
				p++;
				if (parse_value(f, expr, &p, end, &hi, err) < 0)
					return -1;
				if (lo > hi) {
					rbk_err_set(err, (int)item, "range %.*s is backwards",
						    (int)(p - item), expr + item);
					return -1;
				}
				ranged = 1;
			}
		}
		long step = 1;
		if (p < end && expr[p] == '/') {
			size_t sp = ++p;
			if (p == end || !is_digit(expr[p])) {
				rbk_err_set(err, (int)sp, "expected a step number after '/' in %s field",
					    f->name);
				return -1;
			}
			step = read_number(expr, &p, end);
			if (step < 1) {
				rbk_err_set(err, (int)sp, "step must be at least 1");
				return -1;
			}
			if (!star && !ranged)
				hi = f->hi; /* "a/n" runs from a to the field's maximum */
		}
		if (p < end && expr[p] != ',') {
			rbk_err_set(err, (int)p, "unexpected '%c' in %s field", expr[p], f->name);
			return -1;
		}
		for (long v = lo; v <= hi; v += step)
			*bits |= (uint64_t)1 << v;
		if (p == end)
			return 0;
		p++; /* the comma */
	}
}

int rbk_cron_parse(rbk_cron *out, const char *expr, rbk_err *err)
{
	memset(out, 0, sizeof *out);
	if (!expr)
		expr = "";
	size_t len = strlen(expr), p = 0;
	while (p < len && is_space(expr[p]))
		p++;
	if (p < len && expr[p] == '@') {
		size_t s = p;
		while (p < len && !is_space(expr[p]))
			p++;
		size_t n = p - s;
		while (p < len && is_space(expr[p]))
			p++;
		for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
			if (strlen(macros[i].name) != n || !same_word(expr + s, macros[i].name, n))
				continue;
			if (p < len) {
				rbk_err_set(err, (int)p, "unexpected text after %s", macros[i].name);
				return -1;
			}
			return rbk_cron_parse(out, macros[i].expansion, err);
		}
		rbk_err_set(err, (int)s, "unknown macro '%.*s'", (int)n, expr + s);
		return -1;
	}

	size_t fs[5], fe[5];
	int n = 0;
	while (p < len) {
		size_t s = p;
		while (p < len && !is_space(expr[p]))
			p++;
		if (n == 5) {
			int total = n;
			for (p = s; p < len;) {
				total++;
				while (p < len && !is_space(expr[p]))
					p++;
				while (p < len && is_space(expr[p]))
					p++;
			}
			rbk_err_set(err, (int)s, "expected 5 fields, got %d", total);
			return -1;
		}
		fs[n] = s;
		fe[n++] = p;
		while (p < len && is_space(expr[p]))
			p++;
	}
	if (n < 5) {
		rbk_err_set(err, (int)len, "expected 5 fields, got %d", n);
		return -1;
	}

	uint64_t bits[5] = {0};
	for (int i = 0; i < 5; i++) {
		if (parse_field(&fields[i], expr, fs[i], fe[i], &bits[i], err) < 0) {
			memset(out, 0, sizeof *out);
			return -1;
		}
	}
	if (bits[4] & (1u << 7))
		bits[4] = (bits[4] | 1u) & ~(uint64_t)(1u << 7); /* 7 is Sunday too */
	out->minute = bits[0];
	out->hour = (uint32_t)bits[1];
	out->dom = (uint32_t)bits[2];
	out->month = (uint16_t)bits[3];
	out->dow = (uint8_t)bits[4];
	out->dom_star = expr[fs[2]] == '*';
	out->dow_star = expr[fs[4]] == '*';
	return 0;
}

/* ---- matching ---- */

/* cron's day rule: with both day fields restricted either may match. */
static int day_match(const rbk_cron *c, int month, int mday, int wday)
{
	if (!(c->month >> month & 1))
		return 0;
	int dom = (int)(c->dom >> mday & 1), dow = c->dow >> wday & 1;
	if (c->dom_star || c->dow_star)
		return dom && dow;
	return dom || dow;
}

int rbk_cron_match(const rbk_cron *c, const struct tm *t)
{
	if (t->tm_min < 0 || t->tm_min > 59 || t->tm_hour < 0 || t->tm_hour > 23 || t->tm_mday < 1 ||
	    t->tm_mday > 31 || t->tm_mon < 0 || t->tm_mon > 11 || t->tm_wday < 0 || t->tm_wday > 6)
		return 0;
	return (c->minute >> t->tm_min & 1) && (c->hour >> t->tm_hour & 1) &&
	       day_match(c, t->tm_mon + 1, t->tm_mday, t->tm_wday);
}

/* ---- next fire time ---- */

/* Wall clock seconds: local time written as if it were UTC, so that local
 * dates and times can be counted with plain arithmetic. */

static int64_t floordiv(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = floordiv(y, 400);
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *m, int *d)
{
	z += 719468;
	int64_t era = floordiv(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
}

/* The wall clock at UTC instant u in the current TZ. */
static int wall_at(int64_t u, int64_t *wall)
{
	time_t t = (time_t)u;
	struct tm tm;
	if (!localtime_r(&t, &tm))
		return -1;
	*wall = days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) * 86400 +
		tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
	return 0;
}

/* UTC offset in force at u. */
static int offset_at(int64_t u, int64_t *off)
{
	int64_t w;
	if (wall_at(u, &w) < 0)
		return -1;
	*off = w - u;
	return 0;
}

/* The UTC instant for wall time w under format.md's rules: the earliest
 * instant showing w (so a repeated hour maps to its first pass), or, when
 * w falls in a gap, the first instant after the gap. Why probes a day apart:
 * the instant showing w lies within a day of w, and the offsets in force a
 * day before and after cover both sides of any single transition. */
static int wall_to_utc(int64_t w, int64_t *out)
{
	int64_t off[3], omin, omax, best = 0, x;
	int found = 0;
	for (int i = 0; i < 3; i++)
		if (offset_at(w + (i - 1) * 86400, &off[i]) < 0)
			return -1;
	omin = omax = off[0];
	for (int i = 0; i < 3; i++) {
		int64_t u = w - off[i];
		if (wall_at(u, &x) < 0)
			return -1;
		if (x == w && (!found || u < best)) {
			best = u;
			found = 1;
		}
		omin = off[i] < omin ? off[i] : omin;
		omax = off[i] > omax ? off[i] : omax;
	}
	if (found) {
		*out = best;
		return 0;
	}
	/* In a gap: the wall clock is below w at w - omax and above it at
	 * w - omin; bisect for the first instant showing a later time. */
	int64_t lo = w - omax, hi = w - omin;
	if (wall_at(lo, &x) < 0 || x >= w || wall_at(hi, &x) < 0 || x <= w)
		return -1;
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;
		if (wall_at(mid, &x) < 0)
			return -1;
		if (x > w)
			hi = mid;
		else
			lo = mid;
	}
	*out = hi;
	return 0;
}

/* Eight years, because consecutive Feb 29ths can be that far apart
 * (2096, 2104); beyond it a spec never fires. */
#define SEARCH_DAYS (8 * 366 + 1)
/* Keep arithmetic far from overflow: about +-34,000 years. */
#define MAX_ABS_TIME ((int64_t)1 << 40)

/* Walk the local calendar from the earliest wall time that can map to t or
 * later, in wall-clock order; wall_to_utc is monotonic in the wall time, so
 * the first candidate landing at or after t is the answer. */
static int search(const rbk_cron *c, int64_t t, int64_t *out_utc)
{
	int64_t omin = 0;
	for (int i = 0; i < 3; i++) {
		int64_t o;
		if (offset_at(t + (i - 1) * 86400, &o) < 0)
			return -1;
		if (i == 0 || o < omin)
			omin = o;
	}
	int64_t lo = t + omin, d0 = floordiv(lo, 86400);
	for (int64_t d = d0; d <= d0 + SEARCH_DAYS; d++) {
		int month, mday, wday = (int)((d % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
		civil_from_days(d, &month, &mday);
		if (!day_match(c, month, mday, wday))
			continue;
		for (int h = 0; h < 24; h++) {
			int64_t wh = d * 86400 + h * 3600;
			if (!(c->hour >> h & 1) || wh + 3599 < lo)
				continue;
			for (int m = 0; m < 60; m++) {
				int64_t w = wh + m * 60, u;
				if (!(c->minute >> m & 1) || w < lo)
					continue;
				if (wall_to_utc(w, &u) < 0)
					return -1;
				if (u >= t) {
					*out_utc = u;
					return 0;
				}
			}
		}
	}
	return -1;
}

int rbk_cron_next(const rbk_cron *c, const char *zone, int64_t after_utc, int64_t *out_utc,
		  struct tm *out_local)
{
	if (after_utc < -MAX_ABS_TIME || after_utc > MAX_ABS_TIME)
		return -1;
	rbk_tz_scope s;
	if (rbk_tz_enter(&s, zone) < 0)
		return -1;
	int64_t u;
	int rc = search(c, floordiv(after_utc, 60) * 60 + 60, &u);
	if (rc == 0) {
		time_t tt = (time_t)u;
		if (out_local && !localtime_r(&tt, out_local))
			rc = -1;
		else
			*out_utc = u;
	}
	rbk_tz_leave(&s);
	return rc;
}
