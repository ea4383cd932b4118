/* crashpoint: SIGKILL at a named point, for crash tests. */
#include "base/crashpoint.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

void rbk_crash_point(const char *name)
{
	static int armed = -1; /* -1: not read yet, 0: off, 1: on */
	static char target[64];
	static long left;
	if (armed < 0) {
		const char *spec = getenv("RBK_CRASH_POINT");
		const char *colon = spec ? strrchr(spec, ':') : NULL;
		armed = colon && (size_t)(colon - spec) < sizeof target;
		if (armed) {
			memcpy(target, spec, (size_t)(colon - spec));
			target[colon - spec] = '\0';
			left = strtol(colon + 1, NULL, 10);
		}
	}
	if (armed && !strcmp(name, target) && --left == 0)
		raise(SIGKILL);
}
