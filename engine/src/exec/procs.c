/* procs: the processes of an action's attempts (procs.h). */
#include "exec/procs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The parent-death signal of the action worker: one no plugin has a reason
 * to use, so that its handler stays rbk's. */
#define DEATH_SIGNAL SIGUSR2
#define MAX_GROUPS 64
#define SETTLE_MS 5000

static char home_dir[4096];

void rbk_procs_set_home(const char *home) { snprintf(home_dir, sizeof home_dir, "%s", home ? home : ""); }

static int64_t run_of(const char *key) { return key ? strtoll(key, NULL, 10) : 0; }

static void record_path(char *out, size_t size, int64_t run)
{
	snprintf(out, size, "%s/owners/%lld.procs", home_dir, (long long)run);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The kernel's boot id: start times count from the boot. */
static void boot_id(char out[40])
{
	strcpy(out, "-");
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, out, 39);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	out[strcspn(out, " \n")] = '\0';
	if (!*out)
		strcpy(out, "-");
}

typedef struct {
	char state;
	pid_t pgrp;
	unsigned long long start; /* clock ticks after boot */
} pstat;

/* /proc/PID/stat: fields 3 (state), 5 (pgrp) and 22 (starttime). */
static int read_stat(pid_t pid, pstat *st)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the command may hold spaces and parens */
	if (!p || p[1] != ' ')
		return -1;
	p += 2;
	st->state = *p;
	for (int field = 3; field < 22; field++) {
		if (field == 5)
			st->pgrp = (pid_t)strtol(p, NULL, 10);
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	st->start = strtoull(p, NULL, 10);
	return 0;
}

/* ---- in the action worker ---- */

static volatile pid_t groups[MAX_GROUPS]; /* [0]: the worker's own */
static volatile sig_atomic_t ngroups;
static pid_t engine_pid;
static int rec_fd = -1;
static char rec_key[200], rec_boot[40];

/* The engine died, or the worker is told to stop (SIGTERM; SIGHUP, which
 * the kernel sends when the engine died while the worker was stopped):
 * every group the action started goes first. When the engine is gone, the
 * worker's own group goes too, with the worker; otherwise the worker ends by
 * the signal it got, so that the engine names it, and the engine kills
 * its group. Only async-signal-safe calls. */
static void on_stop(int sig)
{
	for (sig_atomic_t i = ngroups; i-- > 1;)
		kill(-groups[i], SIGKILL);
	if (sig == DEATH_SIGNAL || getppid() != engine_pid)
		kill(0, SIGKILL);
	signal(sig, SIG_DFL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	_exit(128 + sig);
}

static void record(pid_t pgid)
{
	if (rec_fd < 0)
		return;
	pstat st = {0};
	if (read_stat(pgid, &st) < 0)
		st.start = 0; /* the leader is gone already: its members are known by the key */
	char line[400];
	int n = snprintf(line, sizeof line, "%s %d %llu %s\n", rec_boot, (int)pgid, st.start, rec_key);
	if (n > 0 && (size_t)n < sizeof line && write(rec_fd, line, (size_t)n) != n) {
		/* A lost record only weakens the check on resume; the handler
		 * still kills the group when the engine dies. */
	}
}

int rbk_procs_worker_init(pid_t engine)
{
	groups[0] = getpgrp();
	ngroups = 1;
	engine_pid = engine;
	static const int sigs[] = {DEATH_SIGNAL, SIGHUP, SIGTERM};
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigfillset(&sa.sa_mask);
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
		sigaction(sigs[i], &sa, NULL);
		sigaddset(&set, sigs[i]);
	}
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	prctl(PR_SET_PDEATHSIG, DEATH_SIGNAL);
	if (getppid() != engine)
		return -1; /* the engine died before prctl took effect */
	boot_id(rec_boot);
	return 0;
}

void rbk_procs_attempt_begin(const char *key)
{
	snprintf(rec_key, sizeof rec_key, "%s", key ? key : "");
	ngroups = 1;
	setenv(RBK_PROCS_KEY_ENV, rec_key, 1);
	if (home_dir[0]) {
		char path[4200];
		record_path(path, sizeof path, run_of(key));
		rec_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		/* As the lock files: a home shared by a group is shared here too. */
		struct stat sb;
		if (rec_fd >= 0 && stat(home_dir, &sb) == 0 && fchmod(rec_fd, (sb.st_mode & 0660) | 0600) < 0) {
			/* not the file's owner: it keeps its mode */
		}
	}
	record(getpgrp());
}

int rbk_procs_add_group(pid_t pgid)
{
	if (ngroups < 1 || pgid <= 1 || ngroups >= MAX_GROUPS)
		return -1;
	groups[ngroups] = pgid;
	ngroups = ngroups + 1;
	record(pgid);
	return 0;
}

void rbk_procs_attempt_done(void)
{
	if (rec_fd >= 0)
		close(rec_fd);
	rec_fd = -1;
	ngroups = 1; /* the attempt's groups were waited for, or are the engine's to settle */
}

/* ---- in the engine ---- */

typedef struct {
	pid_t pgid;
	unsigned long long start;
	char *key;
	bool leader; /* the recorded leader still runs (same start time) */
	pid_t *seen; /* the processes stopped */
	size_t nseen;
} rec;

/* Whether pid's environment holds KEY=key. */
static bool has_key(pid_t pid, const char *key)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	rbk_buf b = {0};
	char chunk[8192];
	ssize_t n;
	while (b.len < (4u << 20) && (n = read(fd, chunk, sizeof chunk)) > 0)
		rbk_buf_add(&b, chunk, (size_t)n);
	close(fd);
	char *want = rbk_xasprintf("%s=%s", RBK_PROCS_KEY_ENV, key);
	bool found = false;
	for (size_t i = 0; i < b.len && !found; i += strlen(b.s + i) + 1)
		found = !strcmp(b.s + i, want);
	rbk_free(want);
	rbk_buf_free(&b);
	return found;
}

static void parse(const char *text, const char *boot, rec **recs, size_t *n)
{
	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char *l = rbk_xstrndup(line, len);
		char b[40];
		int pgid = 0, used = 0;
		unsigned long long start = 0;
		if (sscanf(l, "%39s %d %llu %n", b, &pgid, &start, &used) == 3 && used > 0 && pgid > 1 &&
		    !strcmp(b, boot)) {
			*recs = rbk_xrealloc(*recs, (*n + 1) * sizeof **recs);
			(*recs)[(*n)++] = (rec){(pid_t)pgid, start, rbk_xstrdup(l + used), false, NULL, 0};
		}
		rbk_free(l);
		line += len + (end ? 1 : 0);
	}
}

static void saw(rec *r, pid_t pid, int *total)
{
	for (size_t i = 0; i < r->nseen; i++)
		if (r->seen[i] == pid)
			return;
	r->seen = rbk_xrealloc(r->seen, (r->nseen + 1) * sizeof *r->seen);
	r->seen[r->nseen++] = pid;
	(*total)++;
}

/* One pass: kill every live process of the records. Returns how many
 * were found alive; *pending names one, *denied one rbk may not signal. */
static int sweep(rec *recs, size_t n, pid_t spare, int *total, pid_t *pending, pid_t *denied)
{
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		if (recs[i].pgid == spare) {
			recs[i].leader = false;
			continue; /* the live worker: its group holds nothing else (runner.c) */
		}
		pstat st;
		recs[i].leader = read_stat(recs[i].pgid, &st) == 0 && st.start == recs[i].start && st.state != 'Z' &&
				 st.state != 'X';
		/* No process in the group, or only its zombies left for a
		 * reaper: nothing to look for. */
		any |= recs[i].leader || kill(-recs[i].pgid, 0) == 0;
	}
	if (!any)
		return 0;
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	int found = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
		pstat st;
		if (pid <= 1 || pid == getpid() || read_stat(pid, &st) < 0 || st.state == 'Z' || st.state == 'X')
			continue;
		for (size_t i = 0; i < n; i++) {
			rec *r = &recs[i];
			if (r->pgid == spare)
				continue;
			bool mine = (pid == r->pgid && r->leader) ||
				    (st.pgrp == r->pgid && (r->leader || (st.start >= r->start && has_key(pid, r->key))));
			if (!mine)
				continue;
			if (kill(pid, SIGKILL) < 0 && errno == EPERM)
				*denied = pid;
			if (st.pgrp == r->pgid)
				kill(-r->pgid, SIGKILL); /* the group at once: nothing forks past it */
			saw(r, pid, total);
			*pending = pid;
			found++;
			break;
		}
	}
	closedir(d);
	return found;
}

int rbk_procs_settle(int64_t run, pid_t spare, rbk_buf *notes, rbk_err *err)
{
	if (!home_dir[0] || run <= 0)
		return 0;
	char path[4200];
	record_path(path, sizeof path, run);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	rbk_buf text = {0};
	char chunk[4096];
	ssize_t k;
	while ((k = read(fd, chunk, sizeof chunk)) > 0)
		rbk_buf_add(&text, chunk, (size_t)k);
	close(fd);
	char boot[40];
	boot_id(boot);
	rec *recs = NULL;
	size_t n = 0;
	if (text.s)
		parse(text.s, boot, &recs, &n);
	rbk_buf_free(&text);
	int total = 0, rc = 0;
	pid_t pending = 0, denied = 0;
	for (int64_t until = mono_ms() + SETTLE_MS;;) {
		if (sweep(recs, n, spare, &total, &pending, &denied) == 0)
			break;
		if (denied) {
			rbk_err_set(err, -1,
				    "process %d, left running by an attempt of run %lld, runs as another user: rbk may not "
				    "stop it; stop it, then try again",
				    (int)denied, (long long)run);
			rc = -1;
			break;
		}
		if (mono_ms() > until) {
			rbk_err_set(err, -1, "process %d, left running by an attempt of run %lld, does not stop (SIGKILL sent)",
				    (int)pending, (long long)run);
			rc = -1;
			break;
		}
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
	/* One note per attempt that left something: "STATE (attempt N)". */
	for (size_t i = 0; i < n; i++) {
		if (!recs[i].nseen || !notes)
			continue;
		bool first = true;
		for (size_t j = 0; j < i; j++)
			first &= strcmp(recs[j].key, recs[i].key) != 0 || !recs[j].nseen;
		if (!first)
			continue;
		size_t count = 0, listed = 0;
		rbk_buf pids = {0};
		for (size_t j = i; j < n; j++) {
			if (strcmp(recs[j].key, recs[i].key))
				continue;
			count += recs[j].nseen;
			for (size_t m = 0; m < recs[j].nseen && listed < 10; m++, listed++)
				rbk_buf_printf(&pids, "%s%d", pids.len ? " " : "", (int)recs[j].seen[m]);
		}
		const char *state = strchr(recs[i].key, ':');
		const char *attempt = strrchr(recs[i].key, ':');
		if (state && attempt > state)
			rbk_buf_printf(notes, "%.*s (attempt %s): ", (int)(attempt - state - 1), state + 1, attempt + 1);
		else
			rbk_buf_printf(notes, "%s: ", recs[i].key);
		rbk_buf_printf(notes, "stopped %zu process%s it left running (pid %s%s)\n", count, count == 1 ? "" : "es",
			       pids.s, count > listed ? " ..." : "");
		rbk_buf_free(&pids);
	}
	for (size_t i = 0; i < n; i++) {
		rbk_free(recs[i].key);
		rbk_free(recs[i].seen);
	}
	rbk_free(recs);
	if (rc == 0)
		unlink(path);
	return rc < 0 ? -1 : total;
}

void rbk_procs_attempt_ended(const char *key, pid_t spare)
{
	rbk_err e = {0};
	rbk_procs_settle(run_of(key), spare, NULL, &e);
}

int rbk_procs_takeover(const char *home, int64_t run, rbk_ui *ui, rbk_err *err)
{
	rbk_procs_set_home(home);
	rbk_buf notes = {0};
	int rc = rbk_procs_settle(run, 0, &notes, err);
	for (char *line = notes.s, *end; line && *line; line = end + 1) {
		end = strchr(line, '\n');
		*end = '\0';
		rbk_ui_note(ui, run, "%s", line);
	}
	rbk_buf_free(&notes);
	return rc < 0 ? -1 : 0;
}
