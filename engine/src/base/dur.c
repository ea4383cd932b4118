/* dur: the one duration grammar (see dur.h). */
#include "base/dur.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *unit;
	int64_t ms;
} UNITS[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
enum { NUNITS = sizeof UNITS / sizeof UNITS[0] };

/* The unit at s: its index, with its length in *n; -1 when none. "ms" is
 * tried before "m", and a unit must not run on into a letter ("5min"). */
static int unit_at(const char *s, size_t len, size_t *n)
{
	static const int order[] = {4, 0, 1, 2, 3};
	for (size_t k = 0; k < NUNITS; k++) {
		int u = order[k];
		size_t l = strlen(UNITS[u].unit);
		if (l <= len && !memcmp(s, UNITS[u].unit, l)) {
			char next = l < len ? s[l] : '\0';
			if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || next == '_')
				return -1;
			*n = l;
			return u;
		}
	}
	return -1;
}

size_t rbk_dur_span(const char *s, size_t len, int64_t *ms)
{
	size_t at = 0;
	int64_t total = 0;
	int last = -1; /* parts go from the largest unit down, each once */
	while (at < len && s[at] >= '0' && s[at] <= '9') {
		size_t i = at;
		int64_t v = 0;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			int digit = s[i++] - '0';
			if (v > (INT64_MAX - digit) / 10)
				return 0;
			v = v * 10 + digit;
		}
		size_t ul;
		int u = unit_at(s + i, len - i, &ul);
		if (u < 0 || u <= last || v > INT64_MAX / UNITS[u].ms || total > INT64_MAX - v * UNITS[u].ms)
			break;
		total += v * UNITS[u].ms;
		last = u;
		at = i + ul;
	}
	if (last < 0)
		return 0;
	*ms = total;
	return at;
}

int64_t rbk_dur_parse(const char *s)
{
	int64_t ms;
	size_t len = s ? strlen(s) : 0;
	return len && rbk_dur_span(s, len, &ms) == len ? ms : -1;
}

void rbk_dur_text(int64_t ms, char *buf, size_t size)
{
	for (size_t u = 0; u + 1 < NUNITS; u++)
		if (ms && ms % UNITS[u].ms == 0) {
			snprintf(buf, size, "%lld%s", (long long)(ms / UNITS[u].ms), UNITS[u].unit);
			return;
		}
	snprintf(buf, size, "%lldms", (long long)ms);
}
