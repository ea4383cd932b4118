/* dur: durations as written in runbooks and expressions: a whole number and
 * a unit (500ms, 30s, 5m, 2h, 1d), or a sum of such parts from the largest
 * unit down (1h30m, 2s500ms). One grammar for YAML fields, params and
 * expression literals. */
#ifndef RBK_DUR_H
#define RBK_DUR_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds of the whole of s, or -1 when s is not a duration. */
int64_t rbk_dur_parse(const char *s);
/* The length of the duration written at the start of s (at most len bytes),
 * with its milliseconds in *ms; 0 when s does not start with one. A digit
 * run without a unit is not a duration. */
size_t rbk_dur_span(const char *s, size_t len, int64_t *ms);
/* ms in the largest unit that divides it exactly: 90000 -> "90s",
 * 5400000 -> "90m", 2500 -> "2500ms", 0 -> "0ms", -300000 -> "-5m". */
void rbk_dur_text(int64_t ms, char *buf, size_t size);

#endif
