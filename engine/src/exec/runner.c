/* runner: fork, run the action, collect its result. */
#include "exec/runner.h"
#include "lang/json.h"
#include "base/mem.h"
#include "exec/procs.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* In the child: never returns. */
static void child(const rbk_reg_action *a, const rbk_val *args, const char *key, int64_t deadline, bool plan, int fd,
		  pid_t engine)
{
	setpgid(0, 0);
	/* Default dispositions: a crash must end the child by its signal (not in
	 * a handler inherited from the engine or a sanitizer), so it is named;
	 * what the engine ignores (a closed output, a closed terminal) is not
	 * ignored by the programs an action starts. */
	static const int sigs[] = {SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		signal(sigs[i], SIG_DFL);
	/* An action must not outlive the engine: after a crash of rbk, a step in
	 * flight is interrupted, not finishing unseen beside a resumed run; the
	 * engine's death kills every process group of the attempt (procs.h). */
	if (rbk_procs_child_init(engine, key) < 0)
		_exit(1); /* the engine died before the parent-death signal was set */
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
	char *json = rbk_json_encode(&res);
	write_all(fd, json, strlen(json));
	/* Freed though the process ends: memory checkers read every exit. */
	rbk_free(json);
	rbk_val_free(&res);
	rbk_reg_args_free(av);
	rbk_reg_call_free(&call);
	rbk_procs_child_done();
	_exit(0);
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
	const rbk_val *cut = rbk_val_map_get(&res, "cut");
	for (size_t i = 0; cut && cut->t == RBK_V_LIST && i < cut->u.list.n; i++)
		if (cut->u.list.items[i].t == RBK_V_STR)
			rbk_val_list_push(&out->cut, rbk_val_copy(&cut->u.list.items[i]));
	rbk_val_free(&res);
}

int rbk_runner_exec(const rbk_reg_action *a, const rbk_val *args, const char *key, int64_t timeout_ms, bool plan,
		    rbk_runner_result *out, rbk_err *err)
{
	memset(out, 0, sizeof *out);
	out->outputs = rbk_val_map();
	out->log = rbk_xstrdup("");
	out->cut = rbk_val_list();
	int p[2];
	if (pipe(p) < 0) {
		rbk_err_set(err, -1, "cannot run %s: pipe: %s", a->full_name, strerror(errno));
		return -1;
	}
	int64_t start = now_ms();
	int64_t deadline = timeout_ms >= 0 ? start + timeout_ms : -1;
	/* The child sends outputs the host has capped already (registry.h);
	 * this bounds what is read whatever it sends: past it the pipe is
	 * drained and the rest thrown away, never held. JSON may spell a byte
	 * in 6 ("\u0000"), hence the factor. Read before the fork: the child
	 * inherits the limit. */
	size_t most = 6 * rbk_reg_outputs_budget() + 2 * rbk_reg_output_limit() + 65536;
	fflush(NULL); /* buffered output must not be written twice */
	pid_t engine = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		rbk_err_set(err, -1, "cannot run %s: fork: %s", a->full_name, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		child(a, args, key, deadline, plan, p[1], engine);
	}
	setpgid(pid, pid);
	close(p[1]);
	rbk_buf b = {0};
	size_t dropped = 0;
	int64_t kill_at = deadline >= 0 ? deadline + RBK_RUNNER_GRACE_MS : -1;
	bool cancelled = false;
	bool lost = false;
	for (;;) {
		int wait = -1;
		if (cancel_flag && *cancel_flag >= 2 && !cancelled) {
			cancelled = true;
			kill(-pid, SIGKILL);
		}
		if (tick_fn && !lost && !tick_fn(tick_ctx)) {
			lost = true;
			kill(-pid, SIGKILL);
		}
		if (cancel_flag || tick_fn)
			wait = 200; /* look at the flag between reads */
		if (kill_at >= 0) {
			int64_t left = kill_at - now_ms();
			if (left <= 0) {
				out->timed_out = true;
				kill(-pid, SIGKILL);
				break;
			}
			wait = wait >= 0 && wait < left ? wait : (int)left;
		}
		struct pollfd pf = {p[0], POLLIN, 0};
		int r = poll(&pf, 1, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		char chunk[65536];
		ssize_t n = read(p[0], chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (b.len + (size_t)n > most || dropped)
			dropped += (size_t)n;
		else
			rbk_buf_add(&b, chunk, (size_t)n);
	}
	close(p[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	kill(-pid, SIGKILL); /* whatever the action left running in its group */
	/* ... and in the groups of the programs it started: when the child was
	 * killed (a timeout, a second Ctrl-C), they lost their parent, not
	 * their children. */
	rbk_procs_attempt_ended(key);
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
	} else if (WIFSIGNALED(status)) {
		out->signal = WTERMSIG(status);
		fail_result(out, rbk_xasprintf("%s crashed: killed by signal %d (%s)", a->full_name, out->signal,
						strsignal(out->signal)));
	} else if (dropped) {
		fail_result(out, rbk_xasprintf("%s sent a result larger than %zu bytes; it was discarded (RBK_MAX_OUTPUT)",
						a->full_name, most));
	} else if (WEXITSTATUS(status) != 0 || b.len == 0) {
		fail_result(out, rbk_xasprintf("%s exited with status %d before reporting a result", a->full_name,
						WEXITSTATUS(status)));
	} else {
		decode(out, b.s, b.len);
	}
	rbk_buf_free(&b);
	return 0;
}

void rbk_runner_result_free(rbk_runner_result *r)
{
	rbk_val_free(&r->outputs);
	rbk_val_free(&r->cut);
	rbk_free(r->error);
	rbk_free(r->log);
	memset(r, 0, sizeof *r);
}
