/* rbk scheduler [--once] [--metrics FILE] [--home DIR]: the daemon that
 * fires the schedule entries of the runbooks on $RBK_PATH. */
#include "cli/cli.h"
#include "base/exitcode.h"
#include "base/mem.h"
#include "exec/owner.h"
#include "runbook/diag.h"
#include "exec/interp.h"
#include "sched/schedule.h"
#include "store/store.h"

#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	reload_requested = 1;
}

typedef struct {
	pid_t pid;
	int64_t fire; /* 0: a sweep's resume, not a fire */
	int64_t run;  /* the run a sweep resumes */
	char *runbook;
} child;

typedef struct {
	const char *home;
	rbk_store *store;
	bool shared; /* a store shared by hosts: every fire is queued for agents */
	child *kids;
	size_t nkids;
	int started, failed_to_start;
} daemon_ctx;

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char ts[32];
	rbk_sched_iso(wall_ms(), ts);
	printf("%s scheduler ", ts);
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* Start this rbk again with argv (a separate process: a run outlives a
 * scheduler restart, and the scheduler's memory stays flat), and remember
 * it. Returns the pid, or -1. */
static pid_t spawn(daemon_ctx *d, char *const argv[], int64_t fire, int64_t run, const char *runbook)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		execv(exe, argv);
		_exit(127);
	}
	if (pid > 0) {
		d->kids = rbk_xrealloc(d->kids, (d->nkids + 1) * sizeof *d->kids);
		d->kids[d->nkids++] = (child){pid, fire, run, rbk_xstrdup(runbook)};
	}
	return pid;
}

/* As for a spawned `rbk run` that exits 2: no run, the fire says why. */
static void refused(daemon_ctx *d, int64_t fire)
{
	rbk_err e = {0};
	rbk_store_fire_set(d->store, fire, "failed", 0, "rbk run refused the runbook or its params (exit 2)", &e);
	d->failed_to_start++;
}

/* On a shared store, a fire's run is created queued by the scheduler
 * itself, in the process that claimed the fire: a leader that dies between
 * the two leaves a claim no other process can still answer, which the next
 * leader fires (rbk_sched_refire_stale). */
static int enqueue_fire(daemon_ctx *d, const rbk_sched_entry *e, int64_t fire, const char *nominal)
{
	rbk_diag diag = {0};
	rbk_cli_runbook rb;
	if (rbk_cli_load(&rb, e->path, true, &diag) < 0) {
		rbk_diag_print(&diag, stderr);
		rbk_diag_free(&diag);
		refused(d, fire);
		return 0;
	}
	rbk_diag_free(&diag);
	char *hostq = rbk_cli_host_queue(), *actor = rbk_cli_actor();
	rbk_ui ui;
	rbk_ui_init(&ui, stdout, false);
	rbk_interp ip = {d->store, rbk_cli_registry(), d->home, actor, &ui, false, e->queue ? e->queue : hostq, true, 0, false, 0, {0}, 0, NULL, {0}, 0, 0, {0}, rbk_cli_notify_shared()};
	rbk_interp_launch l = {rb.path, rb.doc, rb.rb, NULL, 0, &e->params, false, false, fire, nominal};
	int64_t id = 0;
	const char *status = "failed";
	rbk_err err = {0};
	int rc = rbk_interp_run(&ip, &l, &id, &status, &err);
	if (rc < 0) {
		say("fire %lld of %s: %s", (long long)fire, e->runbook, err.msg);
		if (!id && err.code == RBK_EXIT_BADINPUT) {
			refused(d, fire);
			rc = 0;
		}
	}
	else
		say("fired %s (entry %d, %s): fire %lld, run %lld queued on %s", e->runbook, e->entry, nominal,
		    (long long)fire, (long long)id, ip.queue);
	if (rc == 0)
		d->started++;
	rbk_free(hostq);
	rbk_free(actor);
	rbk_cli_runbook_free(&rb);
	return rc < 0 ? -1 : 0;
}

/* Start `rbk run` for a fire, with the entry's params. */
static int start_run(void *ctx, const rbk_sched_entry *e, int64_t fire, const char *nominal)
{
	daemon_ctx *d = ctx;
	if (d->shared)
		return enqueue_fire(d, e, fire, nominal);
	size_t np = e->params.t == RBK_V_MAP ? e->params.u.map.n : 0;
	char **argv = rbk_xcalloc(17 + 2 * np, sizeof *argv);
	size_t a = 0;
	char fire_s[32];
	snprintf(fire_s, sizeof fire_s, "%lld", (long long)fire);
	const char *fixed[] = {"rbk", "run", e->path, "--home", d->home, "--schedule-fire", fire_s,
			       "--schedule-nominal", nominal};
	for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
		argv[a++] = rbk_xstrdup(fixed[i]);
	/* On a queue, the fire only enqueues its run: an agent of the queue
	 * executes it. */
	char *hostq = rbk_cli_host_queue();
	if (e->queue) {
		argv[a++] = rbk_xstrdup("--queue");
		argv[a++] = rbk_xstrdup(e->queue);
		argv[a++] = rbk_xstrdup("--detach");
	}
	rbk_free(hostq);
	for (size_t i = 0; i < np; i++) {
		char *v = rbk_val_to_text(&e->params.u.map.vals[i]);
		argv[a++] = rbk_xstrdup("-p");
		argv[a++] = rbk_xasprintf("%s=%s", e->params.u.map.keys[i], v);
		rbk_free(v);
	}
	pid_t pid = spawn(d, argv, fire, 0, e->runbook);
	for (size_t i = 0; i < a; i++)
		rbk_free(argv[i]);
	rbk_free(argv);
	if (pid < 0)
		return -1;
	d->started++;
	say("fired %s (entry %d, %s): fire %lld, pid %d", e->runbook, e->entry, nominal, (long long)fire, (int)pid);
	return 0;
}

/* Collect finished runs; block when wait is set, until none is left. */
static void reap(daemon_ctx *d, bool wait)
{
	while (d->nkids) {
		int status = 0;
		pid_t pid = waitpid(-1, &status, wait ? 0 : WNOHANG);
		if (pid < 0 && errno == EINTR && !wait)
			return;
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		for (size_t i = 0; i < d->nkids; i++) {
			if (d->kids[i].pid != pid)
				continue;
			int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			say("run of %s (fire %lld) ended with exit code %d", d->kids[i].runbook, (long long)d->kids[i].fire, code);
			/* Exit 2: refused before any run existed; 126/127: rbk could not
			 * be executed. Anything else ended a run that was created. */
			if (d->kids[i].fire && (code == RBK_EXIT_BADINPUT || code == 126 || code == 127)) {
				/* No run was created: the fire says why. */
				rbk_err e = {0};
				rbk_store_fire_set(d->store, d->kids[i].fire, "failed", 0,
						   code == RBK_EXIT_BADINPUT ? "rbk run refused the runbook or its params (exit 2)"
									     : "rbk run could not be started",
						   &e);
				d->failed_to_start++;
			}
			rbk_free(d->kids[i].runbook);
			d->kids[i] = d->kids[--d->nkids];
			break;
		}
	}
}

/* ---- approvals past their timeout ---- */

typedef struct {
	daemon_ctx *d;
	int64_t now;
	int started;
} sweep_ctx;

/* A run waiting for an approval whose timeout has passed is resumed, so the
 * timeout takes effect (the failure edge) without anyone coming back. */
static int sweep_one(void *ctx, const rbk_store_run *r)
{
	sweep_ctx *sw = ctx;
	daemon_ctx *d = sw->d;
	if (strcmp(r->status, "waiting") != 0)
		return 0;
	for (size_t i = 0; i < d->nkids; i++)
		if (d->kids[i].run == r->id)
			return 0; /* already being resumed */
	if (!rbk_cli_approval_due(d->store, r->id))
		return 0;
	char id[32];
	snprintf(id, sizeof id, "%lld", (long long)r->id);
	char *const argv[] = {"rbk", "resume", id, "--home", (char *)d->home, NULL};
	if (spawn(d, argv, 0, r->id, r->runbook) < 0)
		return 0;
	say("run %lld (%s): its approval timed out; resuming it to take its failure edge", (long long)r->id, r->runbook);
	sw->started++;
	return 0;
}

static void sweep_approvals(daemon_ctx *d, int64_t now)
{
	rbk_store_run_filter f = {.status = "waiting"};
	sweep_ctx sw = {d, now, 0};
	rbk_err e = {0};
	rbk_store_runs(d->store, &f, sweep_one, &sw, &e);
}

/* Prometheus textfile-collector metrics, written atomically (tmp + rename). */
typedef struct {
	FILE *f;
	const char *runbook;
	int entry;
	long fired, missed, skipped, failures;
	char last_success[32];
} metric_ctx;

static int count_fire(void *ctx, const rbk_store_fire *f)
{
	metric_ctx *m = ctx;
	if (!strcmp(f->outcome, "fired")) {
		m->fired++;
		if (f->run_status && (!strcmp(f->run_status, "failed") || !strcmp(f->run_status, "rolled_back") ||
				      !strcmp(f->run_status, "aborted")))
			m->failures++;
		if (f->run_status && !strcmp(f->run_status, "succeeded") && strcmp(f->nominal, m->last_success) > 0)
			snprintf(m->last_success, sizeof m->last_success, "%s", f->nominal);
	} else if (!strcmp(f->outcome, "missed"))
		m->missed++;
	else if (!strcmp(f->outcome, "skipped"))
		m->skipped++;
	else if (!strcmp(f->outcome, "failed"))
		m->failures++;
	return 0;
}

static void write_metrics(const rbk_sched *s, rbk_store *st, const char *path)
{
	if (!path)
		return;
	char *tmp = rbk_xasprintf("%s.tmp.%d", path, (int)getpid());
	FILE *f = fopen(tmp, "w");
	if (!f) {
		say("cannot write metrics to %s: %s", tmp, strerror(errno));
		rbk_free(tmp);
		return;
	}
	static const char *const names[][2] = {
		{"rbk_schedule_fires_total", "Fires of a schedule entry that started a run."},
		{"rbk_schedule_misses_total", "Fire times missed while the scheduler was down (beyond catch_up)."},
		{"rbk_schedule_skips_total", "Fire times skipped because the previous run was still active."},
		{"rbk_schedule_failures_total", "Fired runs that failed, rolled back or were aborted, and fires that could not start."},
		{"rbk_schedule_last_success_timestamp_seconds", "Nominal time of the newest fire whose run succeeded."}};
	metric_ctx *ms = rbk_xcalloc(s->n ? s->n : 1, sizeof *ms);
	rbk_err e = {0};
	for (size_t i = 0; i < s->n; i++) {
		ms[i].runbook = s->e[i].runbook;
		ms[i].entry = s->e[i].entry;
		rbk_store_fires(st, s->e[i].runbook, s->e[i].entry, NULL, 0, count_fire, &ms[i], &e);
	}
	for (int k = 0; k < 5; k++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", names[k][0], names[k][1], names[k][0], k < 4 ? "counter" : "gauge");
		for (size_t i = 0; i < s->n; i++) {
			long v = k == 0 ? ms[i].fired : k == 1 ? ms[i].missed : k == 2 ? ms[i].skipped : ms[i].failures;
			if (k == 4)
				v = ms[i].last_success[0] ? (long)(rbk_sched_parse_iso(ms[i].last_success) / 1000) : 0;
			fprintf(f, "%s{runbook=\"%s\",entry=\"%d\"} %ld\n", names[k][0], ms[i].runbook, ms[i].entry, v);
		}
	}
	rbk_free(ms);
	bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok &= fclose(f) == 0;
	if (!ok || rename(tmp, path) != 0) {
		say("cannot write metrics to %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	rbk_free(tmp);
}

/* Runs started by the scheduler that are left interrupted: reported so a
 * person decides; never resumed silently. */
static int report_run(void *ctx, const rbk_store_run *r)
{
	const char *home = ctx;
	int64_t pid = 0;
	if (rbk_owner_probe(home, r->id, &pid, NULL) == 1)
		return 0;
	if (!strcmp(r->status, "waiting") || !strcmp(r->status, "queued"))
		return 0;
	say("run %lld (%s) is %s: see rbk show %lld; continue with rbk resume %lld", (long long)r->id, r->runbook,
	    !strcmp(r->status, "running") ? "interrupted" : r->status, (long long)r->id, (long long)r->id);
	return 0;
}

/* Become the store's one scheduler: 0 once leading, -1 when stopped
 * (or the store cannot be reached at all). Reconnects as needed. */
static int lead(daemon_ctx *d, const char *home)
{
	bool told = false;
	while (!stop_requested) {
		rbk_err e = {0};
		int r = rbk_store_lead(d->store, "scheduler", &e);
		if (r == 1) {
			if (told || d->shared)
				say("leading the schedules of %s", rbk_store_path(d->store));
			return 0;
		}
		if (r < 0) {
			say("cannot reach the store: %s (trying again)", e.msg);
			rbk_store *fresh = NULL;
			if (rbk_store_open_url(&fresh, rbk_cli_store_url(), home, &e) == 0) {
				rbk_store_close(d->store);
				d->store = fresh;
			}
		} else if (!told) {
			say("another scheduler leads %s; waiting to take over", rbk_store_path(d->store));
			told = true;
		}
		for (int i = 0; i < 10 && !stop_requested; i++) {
			struct timespec ts = {0, 200 * 1000000};
			nanosleep(&ts, NULL);
			reap(d, false);
		}
	}
	return -1;
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {{"once", no_argument, 0, 'o'},	     {"metrics", required_argument, 0, 'm'},
					     {"home", required_argument, 0, 'H'}, {"store", required_argument, 0, RBK_OPT_STORE},   {"now", required_argument, 0, 'n'},
					     {"ticks", required_argument, 0, 't'},  {0, 0, 0, 0}};
	long ticks = 1;
	bool once = false;
	const char *metrics = NULL, *home_opt = NULL, *now_opt = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'o': once = true; break;
		case 'm': metrics = optarg; break;
		case 'H': home_opt = optarg; break;
		case RBK_OPT_STORE: rbk_cli_set_store(optarg); break;
		case 'n': now_opt = optarg; break;
		case 't': ticks = strtol(optarg, NULL, 10); break;
		default: return rbk_cli_option_error(&rbk_cmd_scheduler, c, argv[optind - 1]);
		}
	}
	if (optind != argc)
		return rbk_cli_usage_error(&rbk_cmd_scheduler, "unexpected argument '%s'", argv[optind]);
	int64_t fixed_now = now_opt ? rbk_sched_parse_iso(now_opt) : 0;
	if (now_opt && (fixed_now < 0 || !once))
		return rbk_cli_usage_error(&rbk_cmd_scheduler, "--now takes an ISO-8601 time and goes with --once");
	if (ticks < 1 || (ticks > 1 && !now_opt))
		return rbk_cli_usage_error(&rbk_cmd_scheduler, "--ticks N (a simulated minute each) goes with --once --now");
	daemon_ctx d = {0};
	char *home = NULL;
	if (rbk_cli_open_store(home_opt, &d.store, &home) < 0) {
		rbk_free(home);
		return RBK_EXIT_FAILED;
	}
	d.home = home;
	rbk_err e = {0};
	int lock_fd = -1;
	int64_t holder = 0;
	int rc = rbk_owner_take_scheduler(home, &lock_fd, &holder, &e);
	if (rc != 0) {
		if (rc == 1)
			fprintf(stderr, "rbk: error: another scheduler (pid %lld) works on the store %s\n", (long long)holder, home);
		else
			fprintf(stderr, "rbk: error: %s\n", e.msg);
		rbk_store_close(d.store);
		rbk_free(home);
		return RBK_EXIT_FAILED;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	d.shared = strcmp(rbk_store_kind(d.store), "sqlite") != 0;
	/* One leader per store (on PostgreSQL, a session advisory lock the
	 * database releases when the leader's connection dies); the others
	 * wait to take over. */
	if (lead(&d, home) < 0) {
		rbk_owner_release(lock_fd);
		rbk_store_close(d.store);
		rbk_free(home);
		return stop_requested ? RBK_EXIT_OK : RBK_EXIT_STORE;
	}

	int64_t start = fixed_now ? fixed_now : wall_ms();
	int settled = 0;
	if (!d.shared && rbk_sched_settle_stale(d.store, start, &settled, &e) == 0 && settled)
		say("%d fire(s) claimed by a scheduler that stopped before starting them are recorded as failed", settled);
	rbk_store_run_filter f = {.active_only = 1, .scheduled_only = 1};
	rbk_store_runs(d.store, &f, report_run, home, &e);

	rbk_sched s;
	rbk_diag diag = {0};
	rbk_sched_load(&s, rbk_cli_search_path(), &diag);
	rbk_diag_print(&diag, stderr);
	rbk_diag_free(&diag);
	say("%zu schedule entr%s on %s", s.n, s.n == 1 ? "y" : "ies", rbk_cli_search_path());
	int refired = 0;
	if (d.shared && rbk_sched_refire_stale(&s, d.store, start_run, &d, &refired, &e) == 0 && refired)
		say("%d fire(s) claimed by a former leader that stopped before creating their runs: fired now", refired);
	int exit_code = RBK_EXIT_OK;
	for (;;) {
		if (reload_requested) {
			reload_requested = 0;
			rbk_sched_free(&s);
			rbk_sched_load(&s, rbk_cli_search_path(), &diag);
			rbk_diag_print(&diag, stderr);
			rbk_diag_free(&diag);
			say("reloaded: %zu schedule entries", s.n);
		}
		reap(&d, false);
		if (d.shared && rbk_store_ping(d.store, &e) < 0) {
			/* Cut off from the store: the lock is gone with the
			 * connection, and another scheduler may lead by now. */
			say("lost the store (%s); no longer leading", e.msg);
			if (lead(&d, home) < 0)
				break;
			if (rbk_sched_refire_stale(&s, d.store, start_run, &d, &refired, &e) == 0 && refired)
				say("%d fire(s) claimed by a former leader and never started: fired now", refired);
		}
		rbk_sched_stats st;
		int64_t now = fixed_now ? fixed_now : wall_ms();
		if (rbk_sched_tick(&s, d.store, now, start, start_run, &d, &st, &e) < 0) {
			say("error: %s", e.msg);
			exit_code = RBK_EXIT_FAILED;
		} else if (st.missed || st.skipped || st.queued) {
			say("%d missed, %d skipped, %d queued", st.missed, st.skipped, st.queued);
		}
		/* With --now the clock is simulated: deadlines are real times, so
		 * only the real clock sweeps them. */
		if (!fixed_now)
			sweep_approvals(&d, now);
		if (once) {
			reap(&d, true);
			write_metrics(&s, d.store, metrics);
			/* --ticks: the next simulated minute (soak tests). */
			if (--ticks > 0 && !stop_requested) {
				fixed_now += 60000;
				continue;
			}
			break;
		}
		write_metrics(&s, d.store, metrics);
		/* Sleep to the next minute (cron's resolution), waking for signals
		 * and to collect finished runs. */
		int64_t next = (now / 60000 + 1) * 60000 + 50;
		while (!stop_requested && !reload_requested && wall_ms() < next) {
			struct timespec ts = {0, 200 * 1000000};
			nanosleep(&ts, NULL);
			reap(&d, false);
		}
		if (stop_requested) {
			say("stopping (SIGTERM); %zu run(s) still running continue on their own", d.nkids);
			break;
		}
	}
	if (d.failed_to_start)
		exit_code = RBK_EXIT_FAILED;
	for (size_t i = 0; i < d.nkids; i++)
		rbk_free(d.kids[i].runbook);
	rbk_free(d.kids);
	rbk_sched_free(&s);
	rbk_owner_release(lock_fd);
	rbk_store_close(d.store);
	rbk_free(home);
	return exit_code;
}

const rbk_cmd rbk_cmd_scheduler = {"scheduler",
				   "[--once [--now TIME [--ticks N]]] [--metrics FILE] [--home DIR] [--store URL]",
				   "fire the schedule entries of the runbooks on $RBK_PATH (a foreground daemon)", run};
