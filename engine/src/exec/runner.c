/* runner: run each action in the worker process, collect its result. */
#include "exec/runner.h"
#include "lang/json.h"
#include "base/mem.h"
#include "exec/procs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int *cancel_flag;

static bool (*tick_fn)(void *ctx);
static void *tick_ctx;

void rbk_runner_set_tick(bool (*tick)(void *ctx), void *ctx)
{
	tick_fn = tick;
	tick_ctx = ctx;
}

void rbk_runner_set_cancel(volatile int *flag) { cancel_flag = flag; }

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the worker: one process per engine that runs the actions ----
 *
 * Forking a process per action copied the engine's memory every step; the
 * worker is forked once and runs the actions one after the other, each
 * request and result a frame on a pipe. It is replaced when it dies (a
 * crash fails that step only), when it is killed (a timeout, a second
 * interrupt, a lost lease), when it may hold something of an action (a
 * process it did not hand to the host: it is a child subreaper, so even an
 * orphan of an orphan comes back to it and is seen), and when the engine
 * loaded a plugin after forking it (it would not know the action). */

typedef struct {
	uint32_t magic;
	uint32_t plan;
	int64_t deadline;
	const rbk_reg_action *action; /* the same address in the worker: forked after the plugin was loaded */
	uint64_t key_len, args_len;
} request;

typedef struct {
	uint32_t magic;
	uint32_t retire; /* the worker may hold what an action left: replace it */
	uint64_t len;
} reply;

#define FRAME_MAGIC 0x72626b31u /* "rbk1" */

static struct {
	pid_t pid; /* 0: none */
	int req, res;
	unsigned generation;
} worker;

static int write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	char *s = p;
	while (n > 0) {
		ssize_t r = read(fd, s, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		s += r;
		n -= (size_t)r;
	}
	return 0;
}

/* The dispositions an action starts with: a crash ends the worker by its
 * signal (not in a handler inherited from the engine or a sanitizer), so
 * that it is named; what the engine ignores (a closed output, a closed
 * terminal) is not ignored by the programs an action starts. */
static void default_signals(void)
{
	static const int sigs[] = {SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		signal(sigs[i], SIG_DFL);
}

/* Whether the worker has a child left (an action's process it did not
 * hand over, or an orphan of one), once the zombies are reaped. */
static bool holds_children(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	char path[64], buf[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true; /* cannot tell: replace the worker, as a fork per action would */
	ssize_t n = read(fd, buf, sizeof buf);
	close(fd);
	return n != 0;
}

static char *run_action(const rbk_reg_action *a, const rbk_val *args, const char *key, int64_t deadline, bool plan)
{
	rbk_call call;
	rbk_reg_call_init(&call, key, deadline, plan);
	rbk_value *av = rbk_reg_args(args);
	int rc = 0;
	if (plan)
		rc = a->action->plan ? a->action->plan(&call, av) : 0;
	else
		rc = a->action->run(&call, av);
	rbk_val res = rbk_val_map();
	rbk_val_map_set(&res, "ok", rbk_val_bool(rc == 0));
	rbk_val_map_set(&res, "outputs", rbk_val_copy(&call.outputs));
	if (rc != 0)
		rbk_val_map_set(&res, "error",
				rbk_val_str(call.error ? call.error : "the action failed without a message"));
	rbk_val_map_set(&res, "log", rbk_val_str(call.log.s ? call.log.s : ""));
	rbk_val_map_set(&res, "cut", rbk_reg_call_cut(&call));
	rbk_val_map_set(&res, "secrets", rbk_val_copy(&call.secrets));
	char *json = rbk_json_encode(&res);
	rbk_val_free(&res);
	rbk_reg_args_free(av);
	rbk_reg_call_free(&call);
	return json;
}

/* The worker's life: never returns. */
static void worker_main(int req, int res, pid_t engine)
{
	setpgid(0, 0);
	default_signals();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (rbk_procs_worker_init(engine) < 0)
		_exit(1); /* the engine died before the parent-death signal was set */
	/* What an action may change for the next: the environment and the
	 * working directory, put back after each. */
	extern char **environ;
	size_t nenv = 0;
	while (environ[nenv])
		nenv++;
	char **env = rbk_xcalloc(nenv + 1, sizeof *env);
	for (size_t i = 0; i < nenv; i++)
		env[i] = rbk_xstrdup(environ[i]);
	int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (;;) {
		request q;
		if (read_all(req, &q, sizeof q) < 0 || q.magic != FRAME_MAGIC)
			break; /* the engine is done (or gone) */
		char *key = rbk_xcalloc(1, q.key_len + 1), *text = rbk_xcalloc(1, q.args_len + 1);
		if (read_all(req, key, q.key_len) < 0 || read_all(req, text, q.args_len) < 0) {
			rbk_free(key);
			rbk_free(text);
			break;
		}
		rbk_val args = rbk_val_null();
		if (rbk_json_parse(&args, text, q.args_len, NULL) < 0)
			args = rbk_val_map();
		rbk_free(text);
		rbk_procs_attempt_begin(key);
		char *json = run_action(q.action, &args, key, q.deadline, q.plan != 0);
		rbk_procs_attempt_done();
		rbk_val_free(&args);
		rbk_free(key);
		clearenv();
		for (size_t i = 0; i < nenv; i++)
			putenv(env[i]);
		if (cwd >= 0 && fchdir(cwd) < 0) {
			/* the directory went away: the next action starts where it is */
		}
		default_signals();
		if (rbk_procs_worker_init(engine) < 0)
			_exit(1);
		reply r = {FRAME_MAGIC, holds_children(), strlen(json)};
		int w = write_all(res, &r, sizeof r) < 0 || write_all(res, json, r.len) < 0 ? -1 : 0;
		rbk_free(json);
		if (w < 0)
			break;
	}
	/* Freed though the process ends: memory checkers read every exit. */
	for (size_t i = 0; i < nenv; i++)
		rbk_free(env[i]);
	rbk_free(env);
	_exit(0);
}

/* Kill the worker and its group, and wait for it: its status, or -1. */
static int retire(bool kill_it)
{
	if (!worker.pid)
		return -1;
	if (kill_it)
		kill(-worker.pid, SIGKILL);
	close(worker.req);
	close(worker.res);
	int status = -1;
	while (waitpid(worker.pid, &status, 0) < 0 && errno == EINTR)
		;
	kill(-worker.pid, SIGKILL); /* whatever it left running in its group */
	worker.pid = 0;
	return status;
}

static void retire_at_exit(void) { retire(false); }

static int start_worker(rbk_err *err)
{
	int q[2], r[2];
	if (pipe2(q, O_CLOEXEC) < 0) {
		rbk_err_set(err, -1, "cannot start the action worker: pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(r, O_CLOEXEC) < 0) {
		close(q[0]);
		close(q[1]);
		rbk_err_set(err, -1, "cannot start the action worker: pipe: %s", strerror(errno));
		return -1;
	}
	/* Read before the fork, so that the worker inherits it (and a bad
	 * setting is reported once). */
	(void)rbk_reg_outputs_budget();
	fflush(NULL); /* buffered output must not be written twice */
	pid_t engine = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		close(q[0]);
		close(q[1]);
		close(r[0]);
		close(r[1]);
		rbk_err_set(err, -1, "cannot start the action worker: fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(q[1]);
		close(r[0]);
		worker_main(q[0], r[1], engine);
	}
	setpgid(pid, pid);
	close(q[0]);
	close(r[1]);
	static bool registered;
	if (!registered)
		registered = atexit(retire_at_exit) == 0;
	worker.pid = pid;
	worker.req = q[1];
	worker.res = r[0];
	worker.generation = rbk_reg_generation();
	return 0;
}

static void fail_result(rbk_runner_result *out, char *msg)
{
	out->ok = false;
	rbk_free(out->error);
	out->error = msg;
}

static void decode(rbk_runner_result *out, const char *json, size_t len)
{
	rbk_val res = rbk_val_null();
	rbk_err e = {0};
	if (rbk_json_parse(&res, json, len, &e) < 0) {
		fail_result(out, rbk_xasprintf("the action's result could not be read: %s", e.msg));
		return;
	}
	if (res.t != RBK_V_MAP) {
		rbk_val_free(&res);
		fail_result(out, rbk_xstrdup("the action's result could not be read: not an object"));
		return;
	}
	const rbk_val *ok = rbk_val_map_get(&res, "ok"), *o = rbk_val_map_get(&res, "outputs"),
		      *er = rbk_val_map_get(&res, "error"), *lg = rbk_val_map_get(&res, "log");
	out->ok = ok && ok->t == RBK_V_BOOL && ok->u.b;
	if (o && o->t == RBK_V_MAP) {
		rbk_val_free(&out->outputs);
		out->outputs = rbk_val_copy(o);
	}
	if (er && er->t == RBK_V_STR)
		out->error = rbk_xstrdup(er->u.s.s);
	if (lg && lg->t == RBK_V_STR) {
		rbk_free(out->log);
		out->log = rbk_xstrdup(lg->u.s.s);
	}
	const rbk_val *cut = rbk_val_map_get(&res, "cut"), *sec = rbk_val_map_get(&res, "secrets");
	for (size_t i = 0; cut && cut->t == RBK_V_LIST && i < cut->u.list.n; i++)
		if (cut->u.list.items[i].t == RBK_V_STR)
			rbk_val_list_push(&out->cut, rbk_val_copy(&cut->u.list.items[i]));
	for (size_t i = 0; sec && sec->t == RBK_V_LIST && i < sec->u.list.n; i++)
		if (sec->u.list.items[i].t == RBK_V_STR)
			rbk_val_list_push(&out->secrets, rbk_val_copy(&sec->u.list.items[i]));
	rbk_val_free(&res);
}

int rbk_runner_exec(const rbk_reg_action *a, const rbk_val *args, const char *key, int64_t timeout_ms, bool plan,
		    rbk_runner_result *out, rbk_err *err)
{
	memset(out, 0, sizeof *out);
	out->outputs = rbk_val_map();
	out->log = rbk_xstrdup("");
	out->cut = rbk_val_list();
	out->secrets = rbk_val_list();
	if (worker.pid && worker.generation != rbk_reg_generation())
		retire(true);
	if (!worker.pid && start_worker(err) < 0)
		return -1;
	int64_t start = now_ms();
	int64_t deadline = timeout_ms >= 0 ? start + timeout_ms : -1;
	/* The worker sends outputs the host has capped already (registry.h);
	 * this bounds what is read whatever it sends. JSON may spell a byte in
	 * 6 ("\u0000"), hence the factor. */
	size_t most = 6 * rbk_reg_outputs_budget() + 2 * rbk_reg_output_limit() + 65536;
	char *text = rbk_json_encode(args);
	request q = {FRAME_MAGIC, plan, deadline, a, strlen(key), strlen(text)};
	bool sent = write_all(worker.req, &q, sizeof q) == 0 && write_all(worker.req, key, q.key_len) == 0 &&
		    write_all(worker.req, text, q.args_len) == 0;
	rbk_free(text);
	rbk_buf b = {0};
	reply r = {0};
	size_t need = sizeof r; /* the header first, then its body */
	bool have_header = false, too_big = false;
	int64_t kill_at = deadline >= 0 ? deadline + RBK_RUNNER_GRACE_MS : -1;
	bool cancelled = false, lost = false, ended = false;
	while (sent) {
		int wait = -1;
		if (cancel_flag && *cancel_flag >= 2 && !cancelled) {
			cancelled = true;
			break;
		}
		if (tick_fn && !lost && !tick_fn(tick_ctx)) {
			lost = true;
			break;
		}
		if (cancel_flag || tick_fn)
			wait = 200; /* look at the flag between reads */
		if (kill_at >= 0) {
			int64_t left = kill_at - now_ms();
			if (left <= 0) {
				out->timed_out = true;
				break;
			}
			wait = wait >= 0 && wait < left ? wait : (int)left;
		}
		struct pollfd pf = {worker.res, POLLIN, 0};
		int pr = poll(&pf, 1, wait);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		char chunk[65536];
		size_t want = need - b.len < sizeof chunk ? need - b.len : sizeof chunk;
		ssize_t n = read(worker.res, chunk, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the worker is gone */
		rbk_buf_add(&b, chunk, (size_t)n);
		if (b.len < need)
			continue;
		if (!have_header) {
			memcpy(&r, b.s, sizeof r);
			if (r.magic != FRAME_MAGIC || r.len > most) {
				too_big = r.magic == FRAME_MAGIC;
				break;
			}
			have_header = true;
			b.len = 0;
			need = r.len;
			if (need > 0)
				continue;
		}
		ended = true;
		break;
	}
	int status = 0;
	/* A worker that did not answer (it died, or a timeout, an interrupt,
	 * a lost lease, a result too large) or may hold something is killed
	 * with its group; a dead one's status tells how it ended. */
	if (!ended || r.retire)
		status = retire(true);
	/* Whatever the attempt's programs left running, in their groups. */
	rbk_procs_attempt_ended(key, worker.pid);
	out->duration_ms = now_ms() - start;
	if (lost) {
		out->signal = SIGKILL;
		fail_result(out, rbk_xasprintf("%s was killed: this executor lost the run's lease", a->full_name));
	} else if (cancelled) {
		out->signal = SIGKILL;
		fail_result(out, rbk_xasprintf("%s was interrupted by the operator", a->full_name));
	} else if (out->timed_out) {
		fail_result(out, rbk_xasprintf("%s timed out after %lldms; its process group was killed", a->full_name,
						(long long)timeout_ms));
	} else if (too_big) {
		fail_result(out, rbk_xasprintf("%s sent a result larger than %zu bytes; it was discarded (RBK_MAX_OUTPUT)",
						a->full_name, most));
	} else if (ended) {
		decode(out, b.s ? b.s : "", b.len);
	} else if (status != -1 && WIFSIGNALED(status)) {
		out->signal = WTERMSIG(status);
		fail_result(out, rbk_xasprintf("%s crashed: killed by signal %d (%s)", a->full_name, out->signal,
						strsignal(out->signal)));
	} else {
		fail_result(out, rbk_xasprintf("%s exited with status %d before reporting a result", a->full_name,
						status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1));
	}
	rbk_buf_free(&b);
	return 0;
}

void rbk_runner_result_free(rbk_runner_result *r)
{
	rbk_val_free(&r->outputs);
	rbk_val_free(&r->cut);
	rbk_val_free(&r->secrets);
	rbk_free(r->error);
	rbk_free(r->log);
	memset(r, 0, sizeof *r);
}
