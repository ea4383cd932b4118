/* tz: validate zone names and convert with localtime_r under a scoped TZ. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* setenv, localtime_r, O_CLOEXEC */
#endif
#include "sched/tz.h"
#include "base/mem.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *zone_dir(void)
{
	const char *d = getenv("TZDIR");
	return d && *d ? d : "/usr/share/zoneinfo";
}

/* Why so strict: the name becomes a path, so it must not escape the zone
 * directory. Components are non-empty, not "." or "..", and made of the
 * characters IANA names use. */
static int name_ok(const char *name)
{
	if (!name || !*name || *name == '/')
		return 0;
	for (const char *p = name; *p;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		for (size_t i = 0; i < n; i++) {
			char c = p[i];
			if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			      c == '_' || c == '-' || c == '+' || c == '.'))
				return 0;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	return name[strlen(name) - 1] != '/';
}

int rbk_tz_valid(const char *name)
{
	if (name && strcmp(name, "UTC") == 0)
		return 1;
	if (!name_ok(name))
		return 0;
	char *path = rbk_xasprintf("%s/%s", zone_dir(), name);
	int ok = 0;
	struct stat st;
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			char magic[4];
			ok = read(fd, magic, 4) == 4 && memcmp(magic, "TZif", 4) == 0;
			close(fd);
		}
	}
	rbk_free(path);
	return ok;
}

int rbk_tz_enter(rbk_tz_scope *s, const char *zone)
{
	s->saved = NULL;
	if (zone && !rbk_tz_valid(zone))
		return -1;
	const char *old = getenv("TZ");
	if (old)
		s->saved = rbk_xstrdup(old);
	/* "UTC0" is a POSIX rule, needing no file; a zone gets its absolute path
	 * so the C library reads exactly the file rbk_tz_valid checked. */
	if (!zone || strcmp(zone, "UTC") == 0) {
		setenv("TZ", "UTC0", 1);
	} else {
		char *v = rbk_xasprintf(":%s/%s", zone_dir(), zone);
		setenv("TZ", v, 1);
		rbk_free(v);
	}
	tzset();
	return 0;
}

void rbk_tz_leave(rbk_tz_scope *s)
{
	if (s->saved)
		setenv("TZ", s->saved, 1);
	else
		unsetenv("TZ");
	tzset();
	rbk_free(s->saved);
	s->saved = NULL;
}

int rbk_tz_local(int64_t utc, const char *zone, struct tm *out)
{
	rbk_tz_scope s;
	if (rbk_tz_enter(&s, zone) < 0)
		return -1;
	time_t t = (time_t)utc;
	int rc = (int64_t)t == utc && localtime_r(&t, out) ? 0 : -1;
	rbk_tz_leave(&s);
	return rc;
}
