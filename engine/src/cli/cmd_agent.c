/* rbk agent [--queue Q]... [--lease DURATION] [--concurrency N] [--poll DURATION] [--once]
 *           [--home DIR] [--store URL]
 * The executor daemon (docs/scale-out.md): serves host:<its hostname> and the
 * named queues, executing what is due there without anyone watching: queued
 * runs, runs whose executor died (their lease ended), approvals answered or
 * timed out. Each run executes in a process of its own (`rbk resume RUN
 * --agent`), which dies with the agent, as an action dies with its engine. */
#include "cli/cli.h"
#include "base/dur.h"
#include "base/exitcode.h"
#include "base/mem.h"
#include "exec/lease.h"
#include "runbook/model.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

typedef struct {
	pid_t pid;
	int64_t run;
} kid;

typedef struct {
	const char *home;
	rbk_store *store;
	kid *kids;
	size_t nkids, max;
	int64_t lease_ms;
	char exe[PATH_MAX];
	int started;
} agent_ctx;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	char ts[32];
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s agent ", ts);
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static bool busy_with(const agent_ctx *a, int64_t run)
{
	for (size_t i = 0; i < a->nkids; i++)
		if (a->kids[i].run == run)
			return true;
	return false;
}

static void execute(agent_ctx *a, int64_t run, const char *why)
{
	/* Reserve the run under the name its executor will claim it with: of
	 * several agents that see it, one starts a process for it. */
	char name[200], id[32], lease[32];
	snprintf(name, sizeof name, "%s/run-%lld", rbk_lease_executor(), (long long)run);
	int64_t epoch = 0;
	rbk_err e = {0};
	int c = rbk_store_claim(a->store, run, name, a->lease_ms, 0, &epoch, &e);
	if (c != 0) {
		if (c < 0)
			say("run %lld: cannot reserve it: %s", (long long)run, e.msg);
		return; /* 1: another executor was quicker */
	}
	snprintf(id, sizeof id, "%lld", (long long)run);
	snprintf(lease, sizeof lease, "%lldms", (long long)a->lease_ms);
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		/* The executor dies with its agent: a host that dies takes its
		 * executions with it, and the runs' leases end. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		setenv("RBK_EXECUTOR", name, 1);
		char *const argv[] = {"rbk", "resume", id, "--agent", "--lease", lease, "--home", (char *)a->home, NULL};
		execv(a->exe, argv);
		_exit(127);
	}
	if (pid < 0) {
		say("run %lld: cannot start its executor: %s", (long long)run, strerror(errno));
		return;
	}
	a->kids = rbk_xrealloc(a->kids, (a->nkids + 1) * sizeof *a->kids);
	a->kids[a->nkids++] = (kid){pid, run};
	a->started++;
	say("run %lld: %s; executing it (pid %ld)", (long long)run, why, (long)pid);
}

static void reap(agent_ctx *a, bool block)
{
	for (;;) {
		int st = 0;
		pid_t p = waitpid(-1, &st, block ? 0 : WNOHANG);
		if (p <= 0)
			return;
		for (size_t i = 0; i < a->nkids; i++) {
			if (a->kids[i].pid != p)
				continue;
			if (WIFEXITED(st))
				say("run %lld: its executor ended (exit %d)", (long long)a->kids[i].run, WEXITSTATUS(st));
			else if (WIFSIGNALED(st))
				say("run %lld: its executor was killed by signal %d", (long long)a->kids[i].run, WTERMSIG(st));
			a->kids[i] = a->kids[--a->nkids];
			break;
		}
	}
}

typedef struct {
	int64_t run;
	char status[24];
} candidate;

typedef struct {
	candidate *c;
	size_t n;
} candidates;

/* Collected first: a walk's callback does not write (a claim does). */
static int collect(void *ctx, int64_t run, const char *status)
{
	candidates *l = ctx;
	l->c = rbk_xrealloc(l->c, (l->n + 1) * sizeof *l->c);
	l->c[l->n].run = run;
	snprintf(l->c[l->n].status, sizeof l->c[l->n].status, "%s", status);
	l->n++;
	return 0;
}

static int consider(void *ctx, int64_t run, const char *status)
{
	agent_ctx *a = ctx;
	if (a->nkids >= a->max || stop_requested)
		return 1;
	if (busy_with(a, run))
		return 0;
	if (!strcmp(status, "waiting")) {
		/* Only when there is something to do: an answer, or a deadline. */
		if (!rbk_cli_approval_due(a->store, run))
			return 0;
		execute(a, run, "its approval was answered or timed out");
	} else if (!strcmp(status, "queued")) {
		execute(a, run, "queued");
	} else {
		execute(a, run, "its executor is gone (no live lease)");
	}
	return 0;
}

static int agent(int argc, char **argv)
{
	static const struct option opts[] = {{"queue", required_argument, 0, 'q'},
					     {"lease", required_argument, 0, 'l'},
					     {"concurrency", required_argument, 0, 'c'},
					     {"poll", required_argument, 0, 'P'},
					     {"once", no_argument, 0, '1'},
					     {"home", required_argument, 0, 'H'},
					     {"store", required_argument, 0, RBK_OPT_STORE},
					     {0, 0, 0, 0}};
	const char *home_opt = NULL;
	const char **queues = rbk_xcalloc((size_t)argc + 1, sizeof *queues);
	size_t nq = 0;
	int64_t lease_ms = RBK_LEASE_DEFAULT_MS, poll_ms = 1000;
	long conc = 4;
	bool once = false;
	int c, rc = RBK_EXIT_OK;
	optind = 1;
	opterr = 0;
	char *hostq = rbk_cli_host_queue();
	queues[nq++] = hostq;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1 && rc == RBK_EXIT_OK) {
		char *end = NULL;
		switch (c) {
		case 'q':
			if (!rbk_model_queue_name_ok(optarg))
				rc = rbk_cli_usage_error(&rbk_cmd_agent,
							 "bad queue name '%.80s' (letters, digits and . _ : - only, at most 100)",
							 optarg);
			else
				queues[nq++] = optarg;
			break;
		case 'l':
			if ((lease_ms = rbk_dur_parse(optarg)) < 1000)
				rc = rbk_cli_usage_error(&rbk_cmd_agent, "--lease takes a duration of 1s or more, not '%.80s'",
							 optarg);
			break;
		case 'P':
			if ((poll_ms = rbk_dur_parse(optarg)) < 10)
				rc = rbk_cli_usage_error(&rbk_cmd_agent, "--poll takes a duration of 10ms or more, not '%.80s'",
							 optarg);
			break;
		case 'c':
			conc = strtol(optarg, &end, 10);
			if (!end || *end || conc < 1 || conc > 1000)
				rc = rbk_cli_usage_error(&rbk_cmd_agent, "--concurrency takes a number from 1 to 1000, not '%.80s'",
							 optarg);
			break;
		case '1': once = true; break;
		case 'H': home_opt = optarg; break;
		case RBK_OPT_STORE: rbk_cli_set_store(optarg); break;
		default: rc = rbk_cli_option_error(&rbk_cmd_agent, c, argv[optind - 1]);
		}
	}
	if (rc == RBK_EXIT_OK && optind != argc)
		rc = rbk_cli_usage_error(&rbk_cmd_agent, "unexpected argument '%.80s'", argv[optind]);
	agent_ctx a = {0};
	rbk_store *store = NULL;
	char *home = NULL;
	if (rc == RBK_EXIT_OK && rbk_cli_open_store(home_opt, &store, &home) < 0)
		rc = RBK_EXIT_STORE;
	ssize_t n = rc == RBK_EXIT_OK ? readlink("/proc/self/exe", a.exe, sizeof a.exe - 1) : 1;
	if (n <= 0) {
		fprintf(stderr, "rbk: error: cannot find this program's file (/proc/self/exe)\n");
		rc = RBK_EXIT_FAILED;
	} else if (rc == RBK_EXIT_OK) {
		a.exe[n] = '\0';
	}
	if (rc != RBK_EXIT_OK) {
		rbk_store_close(store);
		rbk_free(home);
		rbk_free(queues);
		rbk_free(hostq);
		return rc;
	}
	a.home = home;
	a.store = store;
	a.max = (size_t)conc;
	a.lease_ms = lease_ms;
	struct sigaction sa = {0};
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rbk_buf qs = {0};
	for (size_t i = 0; i < nq; i++)
		rbk_buf_printf(&qs, "%s%s", i ? ", " : "", queues[i]);
	say("serving %s on %s (lease %llds, at most %ld runs at once)", qs.s, rbk_store_path(store),
	    (long long)lease_ms / 1000, conc);
	rbk_buf_free(&qs);
	int errors = 0;
	while (!stop_requested) {
		reap(&a, false);
		rbk_err e = {0};
		candidates l = {0};
		/* Every candidate is listed: a waiting run with nothing due is
		 * skipped, so a limit would let such runs starve queued ones. */
		int lrc = a.nkids < a.max ? rbk_store_claimable(store, queues, nq, 0, collect, &l, &e) : 0;
		for (size_t i = 0; lrc >= 0 && i < l.n; i++)
			if (consider(&a, l.c[i].run, l.c[i].status))
				break;
		rbk_free(l.c);
		if (lrc < 0) {
			if (errors++ == 0)
				say("cannot read the store: %s (trying again)", e.msg);
		} else {
			if (errors)
				say("the store answers again");
			errors = 0;
		}
		if (once)
			break;
		e = (rbk_err){0};
		if (rbk_store_wait_work(store, (int)poll_ms, &e) < 0) {
			/* The database went away: reconnect by reopening the store. */
			if (errors++ == 0)
				say("lost the store: %s (trying again)", e.msg);
			struct timespec ts = {1, 0};
			nanosleep(&ts, NULL);
			rbk_store *fresh = NULL;
			if (rbk_store_open_url(&fresh, rbk_cli_store_url(), home, &e) == 0) {
				rbk_store_close(store);
				store = a.store = fresh;
			}
		}
	}
	if (stop_requested && a.nkids) {
		/* Each executor stops at its next safe point; what it leaves is
		 * taken over by another agent once its lease ends. */
		say("stopping: asking %zu executor(s) to stop at a safe point", a.nkids);
		for (size_t i = 0; i < a.nkids; i++)
			kill(a.kids[i].pid, SIGTERM);
	}
	while (a.nkids)
		reap(&a, true);
	say("stopped (%d run(s) executed)", a.started);
	rbk_store_close(store);
	rbk_free(a.kids);
	rbk_free(home);
	rbk_free(queues);
	rbk_free(hostq);
	return RBK_EXIT_OK;
}

const rbk_cmd rbk_cmd_agent = {"agent",
			       "[--queue Q]... [--lease DURATION] [--concurrency N] [--poll DURATION] [--once]"
			       " [--home DIR] [--store URL]",
			       "execute the runs of this host's queue and of the named queues, unattended", agent};
