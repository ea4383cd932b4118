/* Fuzz target: a cron expression parsed, then its next fire times in a
 * zone with DST. */
#include "sched/cron.h"
#include "base/mem.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 256 || memchr(data, '\0', size))
		return 0;
	char *text = rbk_xstrndup((const char *)data, size);
	rbk_cron c;
	rbk_err err = {0};
	if (rbk_cron_parse(&c, text, &err) == 0) {
		int64_t t = 1774746000; /* 2026-03-29, Europe/Berlin's spring forward */
		struct tm local;
		for (int i = 0; i < 3 && rbk_cron_next(&c, "Europe/Berlin", t, &t, &local) == 0; i++)
			;
	}
	rbk_free(text);
	return 0;
}
