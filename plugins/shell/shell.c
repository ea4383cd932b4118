/* rbk-shell: the shell.exec action.
 *
 * argv runs a program directly (no shell ever parses its arguments); script
 * runs /bin/sh -c. The child gets its own process group so that a timeout
 * kills everything it started, not just the first process. */
#include <rbk/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

RBK_PLUGIN_DECLARE();

static const rbk_host *host;

#define DEFAULT_MAX_OUTPUT (1024 * 1024)
#define KILL_GRACE_MS 2000

typedef struct {
	char *buf;
	size_t len, cap, limit, dropped;
} capture;

static void cap_add(capture *c, const char *s, size_t n)
{
	size_t room = c->limit > c->len ? c->limit - c->len : 0;
	size_t take = n < room ? n : room;
	c->dropped += n - take;
	if (!take)
		return;
	if (c->len + take + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		while (cap < c->len + take + 1)
			cap *= 2;
		char *nb = realloc(c->buf, cap);
		if (!nb) {
			c->dropped += take;
			return;
		}
		c->buf = nb;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, s, take);
	c->len += take;
	c->buf[c->len] = '\0';
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Text of a scalar argument: strings as they are, numbers and bools as
 * written (an argv element or env value may come from a typed template).
 * buf holds the text when it is not the string itself. NULL: not a scalar. */
static const char *scalar_text(const rbk_value *v, char *buf, size_t size)
{
	switch (v->type) {
	case RBK_TYPE_STRING: return v->as.str.ptr;
	case RBK_TYPE_INT:
	case RBK_TYPE_DURATION: snprintf(buf, size, "%lld", (long long)v->as.i); return buf;
	case RBK_TYPE_NUMBER: snprintf(buf, size, "%.15g", v->as.num); return buf;
	case RBK_TYPE_BOOL: return v->as.boolean ? "true" : "false";
	default: return NULL;
	}
}

/* What the program's process needs, all prepared before it exists: it
 * shares the action's memory until it executes the program (spawn), so it
 * only makes system calls, through syscall(2), which no sanitizer or
 * library wraps. */
typedef struct {
	const char *path; /* the program's file, found on PATH already */
	char **argv, **envp;
	const char *cwd;
	int in, out, err;
	pid_t parent;
} spawn_ctx;

static void say(int fd, const char *a, const char *b, const char *c)
{
	const char *parts[] = {a, b, c, "\n"};
	for (size_t i = 0; i < 4; i++)
		if (parts[i] && syscall(SYS_write, fd, parts[i], strlen(parts[i])) < 0)
			return;
}

static int spawned(void *arg)
{
	const spawn_ctx *c = arg;
	syscall(SYS_setpgid, 0, 0);
	/* The program dies with the action that started it. */
	syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (syscall(SYS_getppid) != c->parent)
		syscall(SYS_exit, 126);
	/* Default dispositions, then nothing blocked: what rbk ignores (a
	 * closed output, a hangup) or handles is rbk's business, and an
	 * ignored signal would survive exec. The kernel's struct sigaction:
	 * handler, flags, restorer, mask. */
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		unsigned long mask;
	} dfl = {SIG_DFL, 0, NULL, 0};
	for (int sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
	unsigned long none = 0;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
	syscall(SYS_dup3, c->in, 0, 0);
	syscall(SYS_dup3, c->out, 1, 0);
	syscall(SYS_dup3, c->err, 2, 0);
	/* Nothing of the engine's (the store, lock files) reaches the program. */
	syscall(SYS_close_range, 3, ~0U, 0);
	if (c->cwd && syscall(SYS_chdir, c->cwd) != 0) {
		say(2, "cannot change directory to ", c->cwd, "");
		syscall(SYS_exit, 126);
	}
	syscall(SYS_execve, c->path, c->argv, c->envp);
	int e = errno;
	say(2, "cannot run ", c->argv[0],
	    e == ENOENT ? ": No such file or directory" : e == EACCES ? ": Permission denied"
		: e == ENOEXEC ? ": Exec format error" : ": cannot execute it");
	syscall(SYS_exit, e == ENOENT ? 127 : 126);
	return 0;
}

/* argv[0] as execvp finds it: a name without '/' is looked for on the
 * PATH of the program's environment envp (the step's env: may set it). */
static char *find_program(const char *name, char **envp)
{
	if (strchr(name, '/'))
		return strdup(name);
	const char *path = NULL;
	for (size_t i = 0; envp && envp[i] && !path; i++)
		if (!strncmp(envp[i], "PATH=", 5))
			path = envp[i] + 5;
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		char *file = NULL;
		if (asprintf(&file, "%.*s%s%s", (int)n, n ? p : ".", "/", name) < 0)
			return NULL;
		if (access(file, X_OK) == 0)
			return file;
		free(file);
		p += n + (p[n] == ':');
	}
	return strdup(name); /* execve says ENOENT */
}

/* The environment of the program: rbk's, with the step's env on top. */
static char **build_env(const rbk_value *args)
{
	extern char **environ;
	const rbk_value *env = host->arg(args, "env");
	size_t ne = env && env->type == RBK_TYPE_MAP ? env->as.map.count : 0, n = 0;
	while (environ[n])
		n++;
	char **v = calloc(n + ne + 1, sizeof *v);
	if (!v)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool over = false;
		for (size_t j = 0; j < ne && !over; j++) {
			size_t kl = strlen(env->as.map.keys[j]);
			over = !strncmp(environ[i], env->as.map.keys[j], kl) && environ[i][kl] == '=';
		}
		if (!over)
			v[k++] = strdup(environ[i]);
	}
	for (size_t j = 0; j < ne; j++) {
		char num[64];
		const char *s = scalar_text(&env->as.map.values[j], num, sizeof num);
		if (s && asprintf(&v[k], "%s=%s", env->as.map.keys[j], s) >= 0)
			k++;
	}
	for (size_t i = 0; i < k; i++)
		if (!v[i]) { /* out of memory */
			for (size_t j = 0; j < k; j++)
				free(v[j]);
			free(v);
			return NULL;
		}
	return v;
}

static void close_pipes(int in[2], int out[2], int err[2])
{
	int *p[] = {in, out, err};
	for (int i = 0; i < 3; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
}

static void free_env(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static char **build_argv(rbk_call *call, const rbk_value *args)
{
	const rbk_value *av = host->arg(args, "argv");
	const char *script = rbk_arg_string(args, "script");
	if ((av != NULL) == (script != NULL)) {
		host->set_error(call, "shell.exec needs exactly one of 'argv' and 'script'");
		return NULL;
	}
	if (script) {
		char **v = calloc(4, sizeof *v);
		if (!v)
			return NULL;
		v[0] = (char *)"/bin/sh";
		v[1] = (char *)"-c";
		v[2] = (char *)script;
		return v;
	}
	if (av->type != RBK_TYPE_LIST || av->as.list.count == 0) {
		host->set_error(call, "'argv' must be a non-empty list");
		return NULL;
	}
	/* One block: the pointers, then the text of non-string elements. */
	size_t n = av->as.list.count;
	char **v = calloc(1, (n + 1) * sizeof *v + n * 64);
	if (!v)
		return NULL;
	char *texts = (char *)(v + n + 1);
	for (size_t i = 0; i < n; i++) {
		const char *t = scalar_text(&av->as.list.items[i], texts + i * 64, 64);
		if (!t) {
			host->set_error(call, "argv[%zu] must be a string, a number or a bool", i);
			free(v);
			return NULL;
		}
		v[i] = (char *)t;
	}
	return v;
}

/* The most bytes of one output the host keeps (it cuts what is longer). */
static size_t host_limit(rbk_call *call)
{
	return RBK_HOST_HAS(host, output_limit) ? host->output_limit(call) : (size_t)-1;
}

static void mark_truncated(rbk_call *call, const char *name, capture *c)
{
	char out[64];
	snprintf(out, sizeof out, "%s_truncated", name);
	host->set_output_bool(call, out, c->dropped > 0);
	if (c->dropped) {
		char note[96];
		int n = snprintf(note, sizeof note, "\n[rbk: %zu more bytes not captured]\n", c->dropped);
		/* Text and note within the host's limit, so that the host keeps
		 * the note rather than cutting the text again. */
		for (size_t most = host_limit(call); c->len > 0 && c->len + (size_t)n > most;) {
			size_t over = c->len + (size_t)n - most;
			over = over < c->len ? over : c->len;
			c->len -= over;
			c->dropped += over;
			n = snprintf(note, sizeof note, "\n[rbk: %zu more bytes not captured]\n", c->dropped);
		}
		size_t keep = c->limit;
		c->limit += (size_t)n;
		c->dropped = 0;
		cap_add(c, note, (size_t)n);
		c->limit = keep;
	}
	host->set_output_string(call, name, c->buf ? c->buf : "", c->len);
}

static int exec_run(rbk_call *call, const rbk_value *args)
{
	char **argvv = build_argv(call, args);
	if (!argvv)
		return 1;
	const rbk_value *t = host->arg(args, "timeout"), *mo = host->arg(args, "max_output");
	int64_t timeout = t ? t->as.i : -1, left = host->time_left_ms(call);
	if (left >= 0 && (timeout < 0 || left < timeout))
		timeout = left;
	size_t limit = mo && mo->type == RBK_TYPE_INT && mo->as.i >= 0 ? (size_t)mo->as.i : DEFAULT_MAX_OUTPUT;
	if (limit > host_limit(call))
		limit = host_limit(call); /* the host would not keep more: never hold it */
	const char *in_text = rbk_arg_string(args, "stdin");

	int pin[2], pout[2], perr[2];
	spawn_ctx sc = {0};
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
		host->set_error(call, "pipe: %s", strerror(errno));
		free(argvv);
		return 1;
	}
	sc.envp = build_env(args);
	sc.path = sc.envp ? find_program(argvv[0], sc.envp) : NULL;
	sc.argv = argvv;
	sc.cwd = rbk_arg_string(args, "cwd");
	sc.in = pin[0];
	sc.out = pout[1];
	sc.err = perr[1];
	sc.parent = getpid();
	/* One process per program, made without copying the action's memory:
	 * the action waits (CLONE_VFORK) while the new process, on a stack of
	 * its own, prepares and executes the program. Every signal stays
	 * blocked meanwhile, until the host tracks the program's group: the
	 * handler that kills the groups of the attempt when rbk dies (a
	 * parent-death signal) cannot run in between, and if the action is
	 * killed outright the program dies with it (PR_SET_PDEATHSIG). */
	static char stack[64 * 1024] __attribute__((aligned(16)));
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t pid = sc.path && sc.envp ? clone(spawned, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &sc) : -1;
	int spawn_errno = errno;
	free((char *)sc.path);
	free_env(sc.envp);
	free(argvv);
	if (pid < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		host->set_error(call, "cannot start the program: %s", strerror(spawn_errno));
		close_pipes(pin, pout, perr);
		return 1;
	}
	/* The host kills the program's group with the action, even when rbk
	 * dies. */
	if (RBK_HOST_HAS(host, add_process_group) && host->add_process_group(call, pid) != 0) {
		kill(-pid, SIGKILL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		close_pipes(pin, pout, perr);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		host->set_error(call, "cannot track the program's process group");
		return 1;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	signal(SIGPIPE, SIG_IGN);
	fcntl(pin[1], F_SETFL, O_NONBLOCK);

	capture out = {.limit = limit}, err = {.limit = limit};
	size_t in_len = in_text ? strlen(in_text) : 0, in_off = 0;
	if (!in_len) {
		close(pin[1]);
		pin[1] = -1;
	}
	int64_t start = now_ms(), kill_at = timeout >= 0 ? start + timeout : -1;
	int timed_out = 0, open_fds = 2;
	while (open_fds > 0 || pin[1] >= 0) {
		struct pollfd fds[3] = {{pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}, {pin[1], POLLOUT, 0}};
		int wait = -1;
		if (kill_at >= 0) {
			int64_t now = now_ms();
			if (now >= kill_at) {
				if (!timed_out) {
					timed_out = 1;
					kill(-pid, SIGTERM);
					kill_at = now + KILL_GRACE_MS;
				} else {
					kill(-pid, SIGKILL);
					kill_at = -1;
				}
				continue;
			}
			wait = (int)(kill_at - now);
		}
		int r = poll(fds, 3, wait);
		if (r < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[8192];
			ssize_t n = read(fds[i].fd, buf, sizeof buf);
			if (n > 0)
				cap_add(i == 0 ? &out : &err, buf, (size_t)n);
			else if (n == 0 || errno != EINTR) {
				close(fds[i].fd);
				if (i == 0)
					pout[0] = -1;
				else
					perr[0] = -1;
				open_fds--;
			}
		}
		if (pin[1] >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t n = write(pin[1], in_text + in_off, in_len - in_off);
			if (n > 0)
				in_off += (size_t)n;
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				in_off = in_len;
			if (in_off >= in_len) {
				close(pin[1]);
				pin[1] = -1;
			}
		}
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	kill(-pid, SIGKILL); /* leftovers of the group, if any outlived their parent */

	mark_truncated(call, "stdout", &out);
	mark_truncated(call, "stderr", &err);
	/* The last line the program wrote to stderr says why it failed: it goes
	 * with "exited with code N", so the terminal and the log show it. */
	char why[240] = "";
	size_t e = err.len;
	while (e && (err.buf[e - 1] == '\n' || err.buf[e - 1] == '\r' || err.buf[e - 1] == ' '))
		e--;
	size_t b = e;
	while (b && err.buf[b - 1] != '\n')
		b--;
	if (e > b)
		snprintf(why, sizeof why, ": %.*s%s", (int)(e - b > 200 ? 200 : e - b), err.buf + b, e - b > 200 ? "..." : "");
	free(out.buf);
	free(err.buf);
	host->set_output_int(call, "duration_ms", now_ms() - start);
	if (timed_out) {
		host->set_output_int(call, "exit_code", -1);
		host->set_error(call, "timed out after %lldms; process group killed", (long long)timeout);
		return 1;
	}
	if (WIFSIGNALED(status)) {
		host->set_output_int(call, "exit_code", 128 + WTERMSIG(status));
		host->set_output_string(call, "signal", strsignal(WTERMSIG(status)), strlen(strsignal(WTERMSIG(status))));
		host->set_error(call, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
		return 1;
	}
	int code = WEXITSTATUS(status);
	host->set_output_int(call, "exit_code", code);
	const rbk_value *ok = host->arg(args, "ok_exit_codes");
	int accepted = code == 0;
	if (ok && ok->type == RBK_TYPE_LIST) {
		accepted = 0;
		for (size_t i = 0; i < ok->as.list.count; i++)
			accepted |= ok->as.list.items[i].type == RBK_TYPE_INT && ok->as.list.items[i].as.i == code;
	}
	if (!accepted) {
		host->set_error(call, "exited with code %d%s", code, why);
		return 1;
	}
	return 0;
}

static int exec_plan(rbk_call *call, const rbk_value *args)
{
	const rbk_value *av = host->arg(args, "argv");
	const char *script = rbk_arg_string(args, "script");
	if (script)
		host->log(call, RBK_LOG_INFO, "would run /bin/sh -c %s", script);
	else if (av && av->type == RBK_TYPE_LIST) {
		char line[1024] = "";
		for (size_t i = 0; i < av->as.list.count; i++)
			if (av->as.list.items[i].type == RBK_TYPE_STRING) {
				strncat(line, i ? " " : "", sizeof line - strlen(line) - 1);
				strncat(line, av->as.list.items[i].as.str.ptr, sizeof line - strlen(line) - 1);
			}
		host->log(call, RBK_LOG_INFO, "would run %s", line);
	}
	return 0;
}

static const rbk_param_decl exec_params[] = {
	{"argv", RBK_TYPE_LIST, 0, NULL, "program and arguments; no shell parses them"},
	{"script", RBK_TYPE_STRING, 0, NULL, "a /bin/sh script; pass values through env, never templates"},
	{"env", RBK_TYPE_MAP, 0, NULL, "extra environment variables"},
	{"cwd", RBK_TYPE_STRING, 0, NULL, "working directory"},
	{"stdin", RBK_TYPE_STRING, 0, NULL, "text written to the program's standard input"},
	{"timeout", RBK_TYPE_DURATION, 0, "none", "kill the process group after this long"},
	{"max_output", RBK_TYPE_INT, 0, "1048576", "bytes of stdout and of stderr kept; the rest is counted"},
	{"ok_exit_codes", RBK_TYPE_LIST, 0, "[0]", "exit codes that count as success"},
	{NULL, 0, 0, NULL, NULL}};

static const rbk_output_decl exec_outputs[] = {
	{"exit_code", RBK_TYPE_INT, "exit status (128+N when killed by signal N; -1 on timeout)"},
	{"stdout", RBK_TYPE_STRING, "captured standard output"},
	{"stderr", RBK_TYPE_STRING, "captured standard error"},
	{"stdout_truncated", RBK_TYPE_BOOL, "true when stdout exceeded max_output"},
	{"stderr_truncated", RBK_TYPE_BOOL, "true when stderr exceeded max_output"},
	{"signal", RBK_TYPE_STRING, "the signal that killed the program, if any"},
	{"duration_ms", RBK_TYPE_INT, "wall time of the program"},
	{NULL, 0, NULL}};

static const rbk_action actions[] = {
	{"exec", "run a program (argv) or a /bin/sh script", exec_params, exec_outputs, 0, exec_run, exec_plan, NULL},
};

static const rbk_plugin plugin = {"shell", "1.0.0", actions, sizeof actions / sizeof *actions};

int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out);
int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out)
{
	/* add_process_group is used when the host has it. */
	if (h->abi_major != RBK_PLUGIN_ABI_MAJOR || h->struct_size < offsetof(rbk_host, add_process_group))
		return -1;
	host = h;
	*out = &plugin;
	return 0;
}
