/* ui: what `rbk run` shows while it works. On a terminal: each step as it
 * starts and ends, with elapsed time, in colour unless NO_COLOR is set.
 * Otherwise plain lines with a UTC timestamp, one per event, for logs.
 * Quiet (--json) shows nothing: the caller prints one JSON object. An
 * output that was closed (`rbk run X | head -1`, a closed terminal) is
 * given up silently: the run goes on, recorded in the store. */
#ifndef RBK_UI_H
#define RBK_UI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
	FILE *out;
	bool tty, color, quiet;
	bool gone; /* the output was closed (EPIPE, EIO: a reader or a terminal went away): nothing more is written */
	int depth; /* nesting of child runs, for indentation */
} rbk_ui;

void rbk_ui_init(rbk_ui *ui, FILE *out, bool quiet);
void rbk_ui_step_start(rbk_ui *ui, int64_t run, const char *state, const char *what, int attempt);
void rbk_ui_step_end(rbk_ui *ui, int64_t run, const char *state, bool ok, int64_t elapsed_ms, const char *error);
void rbk_ui_run_start(rbk_ui *ui, int64_t run, const char *runbook, bool dry_run);
void rbk_ui_run_end(rbk_ui *ui, int64_t run, const char *status, const char *reason);
void rbk_ui_note(rbk_ui *ui, int64_t run, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
