/* ui: progress lines for people. */
#include "cli/ui.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void rbk_ui_init(rbk_ui *ui, FILE *out, bool quiet)
{
	memset(ui, 0, sizeof *ui);
	ui->out = out;
	ui->quiet = quiet;
	ui->tty = isatty(fileno(out));
	const char *nc = getenv("NO_COLOR");
	ui->color = ui->tty && !(nc && *nc);
}

/* Whether to write at all: not quiet, and the output still there. */
static bool shown(const rbk_ui *ui) { return !ui->quiet && !ui->gone; }

/* Write out a line; a closed output is given up, never an error. */
static void flush(rbk_ui *ui)
{
	if (fflush(ui->out) == 0)
		return;
	if (errno == EPIPE || errno == EIO) {
		ui->gone = true;
		clearerr(ui->out);
	}
}

static void prefix(rbk_ui *ui, int64_t run)
{
	if (!ui->tty) {
		char ts[32];
		time_t t = time(NULL);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (run > 0)
			fprintf(ui->out, "%s run %lld ", ts, (long long)run);
		else
			fprintf(ui->out, "%s ", ts);
	}
	for (int i = 0; i < ui->depth; i++)
		fputs("  ", ui->out);
}

static const char *paint(rbk_ui *ui, const char *code) { return ui->color ? code : ""; }

void rbk_ui_step_start(rbk_ui *ui, int64_t run, const char *state, const char *what, int attempt)
{
	if (!shown(ui))
		return;
	prefix(ui, run);
	if (ui->tty)
		fprintf(ui->out, "%s→%s %s%s%s", paint(ui, "\033[36m"), paint(ui, "\033[0m"), paint(ui, "\033[1m"), state,
			paint(ui, "\033[0m"));
	else
		fprintf(ui->out, "start %s", state);
	if (what && *what)
		fprintf(ui->out, " (%s)", what);
	if (attempt > 1)
		fprintf(ui->out, " attempt %d", attempt);
	fputc('\n', ui->out);
	flush(ui);
}

void rbk_ui_step_end(rbk_ui *ui, int64_t run, const char *state, bool ok, int64_t elapsed_ms, const char *error)
{
	if (!shown(ui))
		return;
	prefix(ui, run);
	if (ui->tty)
		fprintf(ui->out, "%s%s%s %s %.3fs", paint(ui, ok ? "\033[32m" : "\033[31m"), ok ? "✓" : "✗",
			paint(ui, "\033[0m"), state, (double)elapsed_ms / 1000.0);
	else
		fprintf(ui->out, "%s %s %.3fs", ok ? "ok" : "failed", state, (double)elapsed_ms / 1000.0);
	if (!ok && error) {
		/* One line: a multi-line error would break the log's shape. */
		fputs(": ", ui->out);
		for (const char *p = error; *p && p - error < 500; p++)
			fputc(*p == '\n' ? ' ' : *p, ui->out);
	}
	fputc('\n', ui->out);
	flush(ui);
}

void rbk_ui_note(rbk_ui *ui, int64_t run, const char *fmt, ...)
{
	if (!shown(ui))
		return;
	prefix(ui, run);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(ui->out, fmt, ap);
	va_end(ap);
	fputc('\n', ui->out);
	flush(ui);
}

void rbk_ui_run_start(rbk_ui *ui, int64_t run, const char *runbook, bool dry_run)
{
	if (!shown(ui))
		return;
	prefix(ui, run);
	if (ui->tty)
		fprintf(ui->out, "%srun %lld%s: %s%s\n", paint(ui, "\033[1m"), (long long)run, paint(ui, "\033[0m"),
			runbook, dry_run ? " (dry run: nothing is executed)" : "");
	else
		fprintf(ui->out, "started %s%s\n", runbook, dry_run ? " (dry run)" : "");
	flush(ui);
}

void rbk_ui_run_end(rbk_ui *ui, int64_t run, const char *status, const char *reason)
{
	if (!shown(ui))
		return;
	prefix(ui, run);
	bool good = !strcmp(status, "succeeded");
	if (ui->tty)
		fprintf(ui->out, "%srun %lld %s%s", paint(ui, good ? "\033[32m" : "\033[31m"), (long long)run, status,
			paint(ui, "\033[0m"));
	else
		fputs(status, ui->out);
	if (reason)
		fprintf(ui->out, ": %s", reason);
	fputc('\n', ui->out);
	flush(ui);
}
