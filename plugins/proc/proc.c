/* rbk-proc: processes seen from outside: pid files, heartbeat files, and
 * stopping a process politely, then firmly.
 *
 * A process counts as gone when kill(pid, 0) says ESRCH, or when it is a
 * zombie (state Z in /proc/PID/stat): a zombie of a process that is not our
 * child waits for its own parent to reap it, and will never run again. */
#include <rbk/plugin.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

RBK_PLUGIN_DECLARE();

static const rbk_host *host;

#define PIDFILE_MAX 4096
#define POLL_MS 20
#define KILL_WAIT_MS 5000

/* ---- arguments and outputs ---- */

static int64_t ms_arg(const rbk_value *args, const char *name, int64_t def)
{
	const rbk_value *v = host->arg(args, name);
	return v && (v->type == RBK_TYPE_INT || v->type == RBK_TYPE_DURATION) ? v->as.i : def;
}

static void set_null(rbk_call *call, const char *name)
{
	rbk_value v = {.type = RBK_TYPE_NULL};
	host->set_output(call, name, &v);
}

static void set_note(rbk_call *call, const char *note)
{
	if (note)
		host->set_output_string(call, "note", note, strlen(note));
	else
		set_null(call, "note");
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- processes ---- */

/* The state letter of /proc/PID/stat, or 0 when it cannot be read. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "PID (COMM) S ...": COMM may hold spaces and parentheses. */
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

enum { P_GONE, P_ALIVE, P_FOREIGN };

/* Whether pid is running: gone (or a zombie), alive, or not ours (EPERM). */
static int probe(pid_t pid)
{
	if (kill(pid, 0) < 0)
		return errno == EPERM ? P_FOREIGN : P_GONE;
	return proc_state(pid) == 'Z' ? P_GONE : P_ALIVE;
}

/* ---- pid files ---- */

enum { PF_MISSING, PF_OK, PF_GARBAGE, PF_ERROR };

/* Read a pid file: its first line must be a decimal pid > 0, alone on the
 * line but for blanks. why holds the reason for PF_GARBAGE and PF_ERROR. */
static int read_pidfile(const char *path, pid_t *pid, char *why, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return PF_MISSING;
		snprintf(why, size, "cannot read pid file %s: %s", path, strerror(errno));
		return PF_ERROR;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(why, size, "pid file %s is not a regular file", path);
		return PF_ERROR;
	}
	char buf[PIDFILE_MAX + 1];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, PIDFILE_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, size, "cannot read pid file %s: %s", path, strerror(errno));
			close(fd);
			return PF_ERROR;
		}
		if (n == 0 || (len += (size_t)n) >= PIDFILE_MAX)
			break;
	}
	close(fd);
	buf[len] = '\0';
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = '\0';
	char *s = buf;
	while (*s == ' ' || *s == '\t')
		s++;
	char *end = s;
	long long v = 0;
	int digits = 0, big = 0;
	while (isdigit((unsigned char)*end)) {
		v = v * 10 + (*end - '0');
		if (v > INT_MAX)
			big = 1, v = INT_MAX;
		digits++;
		end++;
	}
	char *rest = end;
	while (*rest == ' ' || *rest == '\t' || *rest == '\r')
		rest++;
	if (!digits || *rest || big || v <= 0) {
		/* Quote a little of the content, printable characters only. */
		char shown[41];
		size_t k = 0;
		for (const char *p = buf; *p && k < sizeof shown - 1; p++)
			shown[k++] = isprint((unsigned char)*p) ? *p : '?';
		shown[k] = '\0';
		if (!len)
			snprintf(why, size, "pid file %s is empty", path);
		else
			snprintf(why, size, "pid file %s does not hold a pid (\"%s%s\")", path, shown,
				 strlen(buf) > k ? "..." : "");
		return PF_GARBAGE;
	}
	*pid = (pid_t)v;
	return PF_OK;
}

/* ---- proc.pidfile ---- */

static int pidfile_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path");
	pid_t pid = 0;
	char why[512] = "";
	int r = read_pidfile(path, &pid, why, sizeof why);
	if (r == PF_ERROR) {
		host->set_error(call, "%s", why);
		return 1;
	}
	host->set_output_bool(call, "exists", r != PF_MISSING);
	if (r == PF_OK)
		host->set_output_int(call, "pid", pid);
	else
		set_null(call, "pid");
	int alive = 0, stale = r == PF_GARBAGE;
	char note[640];
	const char *n = r == PF_GARBAGE ? why : NULL;
	if (r == PF_OK) {
		int p = probe(pid);
		alive = p == P_ALIVE;
		stale = !alive;
		if (p == P_GONE) {
			snprintf(note, sizeof note, "no process %d is running", (int)pid);
			n = note;
		} else if (p == P_FOREIGN) {
			snprintf(note, sizeof note, "process %d exists but is not ours to signal", (int)pid);
			n = note;
		}
	}
	host->set_output_bool(call, "alive", alive);
	host->set_output_bool(call, "stale", stale);
	set_note(call, n);
	if (n)
		host->log(call, RBK_LOG_INFO, "%s: %s", path, n);
	return 0;
}

static int pidfile_run(rbk_call *call, const rbk_value *args);

/* Under --dry-run it reads for real: it changes nothing, and the
 * run's guards then see what is (check mode, docs/cli.md). */
static int pidfile_plan(rbk_call *call, const rbk_value *args)
{
	return pidfile_run(call, args);
}

/* ---- proc.heartbeat ---- */

/* A Unix timestamp in seconds (a fraction allowed) into milliseconds. */
static int parse_timestamp(const char *s, int64_t *ms)
{
	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return -1;
	int64_t sec = 0, frac = 0, scale = 1000;
	while (isdigit((unsigned char)*s)) {
		if (sec > (INT64_MAX / 1000 - 9) / 10)
			return -1;
		sec = sec * 10 + (*s++ - '0');
	}
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -1;
		while (isdigit((unsigned char)*s)) {
			if (scale > 1) {
				scale /= 10;
				frac += (*s - '0') * scale;
			}
			s++;
		}
	}
	while (isspace((unsigned char)*s))
		s++;
	if (*s)
		return -1;
	*ms = sec * 1000 + frac;
	return 0;
}

static int heartbeat_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path");
	int64_t max_age = ms_arg(args, "max_age", 0);
	int content = rbk_arg_bool(args, "content", 0);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, beat = 0;
	const char *note = NULL;
	char buf[128], why[512];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT) {
		host->set_output_bool(call, "exists", 0);
		set_null(call, "age_ms");
		host->set_output_bool(call, "fresh", 0);
		set_note(call, "no heartbeat file");
		host->log(call, RBK_LOG_INFO, "heartbeat file %s does not exist", path);
		return 0;
	}
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		host->set_error(call, "cannot read heartbeat file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (!content) {
		beat = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
	} else {
		if (!S_ISREG(st.st_mode)) {
			close(fd);
			host->set_error(call, "heartbeat file %s is not a regular file", path);
			return 1;
		}
		ssize_t n;
		while ((n = read(fd, buf, sizeof buf - 1)) < 0 && errno == EINTR)
			;
		if (n < 0) {
			host->set_error(call, "cannot read heartbeat file %s: %s", path, strerror(errno));
			close(fd);
			return 1;
		}
		buf[n] = '\0';
		if (parse_timestamp(buf, &beat) < 0) {
			char shown[41];
			size_t k = 0;
			for (const char *p = buf; *p && k < sizeof shown - 1; p++)
				shown[k++] = isprint((unsigned char)*p) ? *p : '?';
			shown[k] = '\0';
			snprintf(why, sizeof why, "heartbeat file %s does not hold a Unix timestamp (\"%s%s\")", path,
				 shown, (size_t)n > k ? "..." : "");
			close(fd);
			host->set_output_bool(call, "exists", 1);
			set_null(call, "age_ms");
			host->set_output_bool(call, "fresh", 0);
			set_note(call, why);
			host->log(call, RBK_LOG_WARN, "%s", why);
			return 0;
		}
	}
	close(fd);
	int64_t age = now_ms - beat;
	if (age < 0) {
		note = "the heartbeat is in the future (clock skew?); its age counts as 0";
		age = 0;
	}
	int fresh = age <= max_age;
	host->set_output_bool(call, "exists", 1);
	host->set_output_int(call, "age_ms", age);
	host->set_output_bool(call, "fresh", fresh);
	set_note(call, note);
	host->log(call, RBK_LOG_INFO, "heartbeat %s is %lldms old (%s; max %lldms)", path, (long long)age,
		  fresh ? "fresh" : "stale", (long long)max_age);
	return 0;
}

static int heartbeat_run(rbk_call *call, const rbk_value *args);

/* Under --dry-run it reads for real: it changes nothing, and the
 * run's guards then see what is (check mode, docs/cli.md). */
static int heartbeat_plan(rbk_call *call, const rbk_value *args)
{
	return heartbeat_run(call, args);
}

/* ---- proc.signal ---- */

static const struct {
	const char *name;
	int sig;
} signames[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ABRT", SIGABRT}, {"KILL", SIGKILL},
		{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},
		{"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"WINCH", SIGWINCH}};

/* TERM, SIGTERM, term, 15 or "15"; 0 when unknown. */
static int parse_signal(const rbk_value *v, char *name, size_t size)
{
	int sig = 0;
	if (!v || v->type == RBK_TYPE_NULL)
		sig = SIGTERM;
	else if (v->type == RBK_TYPE_INT)
		sig = v->as.i >= 1 && v->as.i <= SIGRTMAX ? (int)v->as.i : 0;
	else if (v->type == RBK_TYPE_STRING) {
		const char *s = v->as.str.ptr;
		char *end;
		long n = strtol(s, &end, 10);
		if (isdigit((unsigned char)*s) && !*end)
			sig = n >= 1 && n <= SIGRTMAX ? (int)n : 0;
		else {
			if (!strncasecmp(s, "SIG", 3))
				s += 3;
			for (size_t i = 0; i < sizeof signames / sizeof *signames; i++)
				if (!strcasecmp(s, signames[i].name))
					sig = signames[i].sig;
		}
	}
	for (size_t i = 0; i < sizeof signames / sizeof *signames; i++)
		if (signames[i].sig == sig) {
			snprintf(name, size, "SIG%s", signames[i].name);
			return sig;
		}
	snprintf(name, size, "signal %d", sig);
	return sig;
}

/* Wait up to ms for pid to be gone; 1 when it is. */
static int wait_gone(pid_t pid, int64_t ms)
{
	int64_t until = mono_ms() + ms;
	for (;;) {
		if (probe(pid) == P_GONE)
			return 1;
		int64_t left = until - mono_ms();
		if (left <= 0)
			return 0;
		sleep_ms(left < POLL_MS ? left : POLL_MS);
	}
}

static void signal_outputs(rbk_call *call, pid_t pid, int signalled, int exited, int killed, int64_t waited)
{
	if (pid > 0)
		host->set_output_int(call, "pid", pid);
	else
		set_null(call, "pid");
	host->set_output_bool(call, "signalled", signalled);
	host->set_output_bool(call, "exited", exited);
	host->set_output_bool(call, "killed", killed);
	host->set_output_int(call, "waited_ms", waited);
}

static int signal_run(rbk_call *call, const rbk_value *args)
{
	const rbk_value *pv = host->arg(args, "pid");
	const char *pidfile = rbk_arg_string(args, "pidfile");
	int have_pid = pv && pv->type == RBK_TYPE_INT;
	if (have_pid == (pidfile != NULL)) {
		host->set_error(call, "proc.signal needs exactly one of 'pid' and 'pidfile'");
		return 1;
	}
	char signame[32];
	int sig = parse_signal(host->arg(args, "signal"), signame, sizeof signame);
	if (!sig) {
		const rbk_value *s = host->arg(args, "signal");
		if (s && s->type == RBK_TYPE_STRING)
			host->set_error(call, "unknown signal '%s' (use a name such as TERM, HUP, USR1 or a number)",
					s->as.str.ptr);
		else
			host->set_error(call, "signal must be a name such as TERM or a number from 1 to %d", SIGRTMAX);
		return 1;
	}
	int64_t grace = ms_arg(args, "grace", 10000);
	int kill_after = rbk_arg_bool(args, "kill", 1), must_exist = rbk_arg_bool(args, "must_exist", 0);
	pid_t pid = 0;
	char what[600];
	if (have_pid) {
		if (pv->as.i <= 0 || pv->as.i > INT_MAX) {
			host->set_error(call, "pid must be a positive number, not %lld", (long long)pv->as.i);
			return 1;
		}
		pid = (pid_t)pv->as.i;
		snprintf(what, sizeof what, "process %d", (int)pid);
	} else {
		char why[512];
		int r = read_pidfile(pidfile, &pid, why, sizeof why);
		if (r == PF_MISSING) {
			if (must_exist) {
				host->set_error(call, "pid file %s does not exist", pidfile);
				return 1;
			}
			host->log(call, RBK_LOG_INFO, "pid file %s does not exist; nothing to signal", pidfile);
			signal_outputs(call, 0, 0, 0, 0, 0);
			return 0;
		}
		if (r != PF_OK) {
			host->set_error(call, "%s", why);
			return 1;
		}
		snprintf(what, sizeof what, "process %d (from %s)", (int)pid, pidfile);
	}
	if (pid == 1 || pid == getpid() || pid == getppid()) {
		host->set_error(call, "refusing to signal %s: it is %s", what,
				pid == 1 ? "init" : pid == getpid() ? "this action" : "rbk itself");
		return 1;
	}
	int p = probe(pid);
	if (p == P_GONE) {
		if (must_exist) {
			host->set_error(call, "no %s is running", what);
			signal_outputs(call, pid, 0, 0, 0, 0);
			return 1;
		}
		host->log(call, RBK_LOG_INFO, "no %s is running; nothing to signal", what);
		signal_outputs(call, pid, 0, 0, 0, 0);
		return 0;
	}
	if (kill(pid, sig) < 0) {
		if (errno == ESRCH) { /* gone in between */
			signal_outputs(call, pid, 0, 0, 0, 0);
			return 0;
		}
		host->set_error(call, "cannot send %s to %s: %s", signame, what, strerror(errno));
		signal_outputs(call, pid, 0, 0, 0, 0);
		return 1;
	}
	host->log(call, RBK_LOG_INFO, "sent %s to %s", signame, what);
	/* Keep room for SIGKILL within the step's own time limit. */
	int64_t left = host->time_left_ms(call);
	if (left >= 0 && grace > left - 500)
		grace = left > 1000 ? left - 500 : left / 2;
	int64_t start = mono_ms();
	int exited = wait_gone(pid, grace), killed = 0;
	if (!exited && kill_after && sig != SIGKILL) {
		host->log(call, RBK_LOG_WARN, "%s still running after %lldms; sending SIGKILL", what,
			  (long long)(mono_ms() - start));
		if (kill(pid, SIGKILL) == 0 || errno == ESRCH) {
			killed = 1;
			left = host->time_left_ms(call);
			int64_t w = left >= 0 && left < KILL_WAIT_MS ? left : KILL_WAIT_MS;
			if (!wait_gone(pid, w)) {
				signal_outputs(call, pid, 1, 0, 1, mono_ms() - start);
				host->set_error(call, "%s did not exit after SIGKILL", what);
				return 1;
			}
		}
	}
	int64_t waited = mono_ms() - start;
	signal_outputs(call, pid, 1, exited, killed, waited);
	if (exited)
		host->log(call, RBK_LOG_INFO, "%s exited after %lldms", what, (long long)waited);
	else if (killed)
		host->log(call, RBK_LOG_INFO, "%s killed", what);
	else
		host->log(call, RBK_LOG_INFO, "%s still running after %lldms", what, (long long)waited);
	return 0;
}

static int signal_plan(rbk_call *call, const rbk_value *args)
{
	const rbk_value *pv = host->arg(args, "pid");
	const char *pidfile = rbk_arg_string(args, "pidfile");
	char signame[32], target[600];
	int sig = parse_signal(host->arg(args, "signal"), signame, sizeof signame);
	if (pv && pv->type == RBK_TYPE_INT)
		snprintf(target, sizeof target, "process %lld", (long long)pv->as.i);
	else
		snprintf(target, sizeof target, "the process in %s", pidfile ? pidfile : "?");
	host->log(call, RBK_LOG_INFO, "would send %s to %s, wait up to %lldms for it to exit%s", sig ? signame : "?",
		  target, (long long)ms_arg(args, "grace", 10000), rbk_arg_bool(args, "kill", 1) ? ", then SIGKILL" : "");
	return 0;
}

/* ---- declarations ---- */

static const rbk_param_decl pidfile_params[] = {
	{"path", RBK_TYPE_STRING, 1, NULL, "the pid file"},
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl pidfile_outputs[] = {
	{"exists", RBK_TYPE_BOOL, "the pid file exists"},
	{"pid", RBK_TYPE_INT, "the pid it holds (null when missing or unreadable)"},
	{"alive", RBK_TYPE_BOOL, "that process is running and ours to signal"},
	{"stale", RBK_TYPE_BOOL, "the file exists but its process is gone, not ours, or the file holds no pid"},
	{"note", RBK_TYPE_STRING, "why the file is stale (null otherwise)"},
	{NULL, 0, NULL}};

static const rbk_param_decl heartbeat_params[] = {
	{"path", RBK_TYPE_STRING, 1, NULL, "the heartbeat file"},
	{"max_age", RBK_TYPE_DURATION, 1, NULL, "the oldest heartbeat that is still fresh"},
	{"content", RBK_TYPE_BOOL, 0, "false", "read a Unix timestamp from the file instead of its mtime"},
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl heartbeat_outputs[] = {
	{"exists", RBK_TYPE_BOOL, "the heartbeat file exists"},
	{"age_ms", RBK_TYPE_INT, "age of the heartbeat (null when there is none)"},
	{"fresh", RBK_TYPE_BOOL, "age_ms <= max_age"},
	{"note", RBK_TYPE_STRING, "why there is no age, or a clock skew (null otherwise)"},
	{NULL, 0, NULL}};

static const rbk_param_decl signal_params[] = {
	{"pid", RBK_TYPE_INT, 0, NULL, "the process (or give pidfile)"},
	{"pidfile", RBK_TYPE_STRING, 0, NULL, "a file holding the pid (or give pid)"},
	{"signal", RBK_TYPE_ANY, 0, "TERM", "a name (TERM, INT, HUP, KILL, USR1, ...) or a number"},
	{"grace", RBK_TYPE_DURATION, 0, "10s", "how long to wait for the process to exit"},
	{"kill", RBK_TYPE_BOOL, 0, "true", "send SIGKILL when it is still running after grace"},
	{"must_exist", RBK_TYPE_BOOL, 0, "false", "fail when there is no such process (or no pid file)"},
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl signal_outputs_decl[] = {
	{"pid", RBK_TYPE_INT, "the process (null when the pid file is missing)"},
	{"signalled", RBK_TYPE_BOOL, "the signal was sent"},
	{"exited", RBK_TYPE_BOOL, "the process exited within grace"},
	{"killed", RBK_TYPE_BOOL, "SIGKILL was sent after grace"},
	{"waited_ms", RBK_TYPE_INT, "time spent waiting for the process to exit"},
	{NULL, 0, NULL}};

static const rbk_action actions[] = {
	{"pidfile", "read a pid file: is its process alive, or is the file stale?", pidfile_params, pidfile_outputs, 1,
	 pidfile_run, pidfile_plan, NULL},
	{"heartbeat", "the age of a heartbeat file (its mtime or a timestamp in it)", heartbeat_params,
	 heartbeat_outputs, 1, heartbeat_run, heartbeat_plan, NULL},
	{"signal", "signal a process, wait for it to exit, then SIGKILL it", signal_params, signal_outputs_decl, 1,
	 signal_run, signal_plan, NULL},
};

static const rbk_plugin plugin = {"proc", "1.0.0", actions, sizeof actions / sizeof *actions};

int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out);
int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out)
{
	if (h->abi_major != RBK_PLUGIN_ABI_MAJOR || h->struct_size < sizeof(rbk_host))
		return -1;
	host = h;
	*out = &plugin;
	return 0;
}
