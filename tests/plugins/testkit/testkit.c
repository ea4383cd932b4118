/* rbk-testkit: actions that misbehave on purpose, for the engine's tests.
 * Never shipped (built to build/test-plugins/). */
#include <rbk/plugin.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

RBK_PLUGIN_DECLARE();

static const rbk_host *host;

/* Outputs every arg back, and logs a line. */
static int echo_run(rbk_call *call, const rbk_value *args)
{
	for (size_t i = 0; i < args->as.map.count; i++)
		host->set_output(call, args->as.map.keys[i], &args->as.map.values[i]);
	host->set_output_string(call, "key", host->idempotency_key(call), strlen(host->idempotency_key(call)));
	host->set_output_int(call, "time_left_ms", host->time_left_ms(call));
	host->log(call, RBK_LOG_INFO, "echoed %zu args", args->as.map.count);
	return 0;
}

static int fail_run(rbk_call *call, const rbk_value *args)
{
	const rbk_value *m = host->arg(args, "message");
	host->set_error(call, "%s", m && m->type == RBK_TYPE_STRING ? m->as.str.ptr : "failed on purpose");
	return 1;
}

static int crash_run(rbk_call *call, const rbk_value *args)
{
	(void)call;
	(void)args;
	raise(SIGSEGV);
	return 0;
}

/* Ignores its deadline: only the engine's kill stops it. */
static int hang_run(rbk_call *call, const rbk_value *args)
{
	(void)call;
	(void)args;
	signal(SIGTERM, SIG_IGN);
	for (;;)
		pause();
	return 0;
}

/* Appends "KEY LABEL" to the ledger file: every side effect, for crash
 * tests to count. Optionally sleeps first (ms), to be killed mid-action. */
static int ledger_run(rbk_call *call, const rbk_value *args)
{
	const rbk_value *file = host->arg(args, "file"), *label = host->arg(args, "label"),
			*ms = host->arg(args, "sleep_ms");
	if (ms && ms->type == RBK_TYPE_INT && ms->as.i > 0)
		usleep((useconds_t)ms->as.i * 1000);
	FILE *f = fopen(file->as.str.ptr, "a");
	if (!f) {
		host->set_error(call, "cannot open ledger %s", file->as.str.ptr);
		return 1;
	}
	fprintf(f, "%s %s\n", host->idempotency_key(call), label && label->type == RBK_TYPE_STRING ? label->as.str.ptr : "-");
	fflush(f);
	fsync(fileno(f));
	fclose(f);
	const rbk_value *fail = host->arg(args, "fail");
	if (fail && fail->type == RBK_TYPE_BOOL && fail->as.boolean) {
		host->set_error(call, "ledger entry written, then failed on purpose");
		return 1;
	}
	return 0;
}

/* Tells which process runs it, and what it finds of the last call (the
 * variable and directory "litter" leaves): for the worker's tests. */
static int whoami_run(rbk_call *call, const rbk_value *args)
{
	(void)args;
	char cwd[4096];
	const char *left = getenv("RBK_TESTKIT_LITTER");
	host->set_output_int(call, "pid", (int64_t)getpid());
	host->set_output_string(call, "env", left ? left : "", left ? strlen(left) : 0);
	host->set_output_string(call, "cwd", getcwd(cwd, sizeof cwd) ? cwd : "?", getcwd(cwd, sizeof cwd) ? strlen(cwd) : 1);
	return 0;
}

/* Leaves what an action should not: a variable, another working
 * directory, an ignored SIGTERM, and (spawn: true) a process it does not
 * hand to the host, double-forked so that it is nobody's child but a
 * subreaper's, its pid written to pidfile. */
static int litter_run(rbk_call *call, const rbk_value *args)
{
	setenv("RBK_TESTKIT_LITTER", "left", 1);
	if (chdir("/") != 0)
		host->set_error(call, "chdir");
	signal(SIGTERM, SIG_IGN);
	const rbk_value *spawn = host->arg(args, "spawn"), *pidfile = host->arg(args, "pidfile");
	if (spawn && spawn->type == RBK_TYPE_BOOL && spawn->as.boolean && pidfile && pidfile->type == RBK_TYPE_STRING) {
		pid_t p = fork();
		if (p == 0) {
			if (fork() == 0) {
				/* Written aside, then renamed: the file exists only whole,
				 * so the wait below never sees it empty. */
				char tmp[4096];
				snprintf(tmp, sizeof tmp, "%s.tmp", pidfile->as.str.ptr);
				FILE *f = fopen(tmp, "w");
				if (f) {
					fprintf(f, "%d\n", (int)getpid());
					fclose(f);
					rename(tmp, pidfile->as.str.ptr);
				}
				for (;;)
					pause();
			}
			_exit(0);
		}
		if (p > 0) {
			while (waitpid(p, NULL, 0) < 0)
				;
			for (int i = 0; i < 200 && access(pidfile->as.str.ptr, F_OK) != 0; i++)
				usleep(10000);
		}
	}
	return 0;
}

static int exit_run(rbk_call *call, const rbk_value *args)
{
	(void)call;
	(void)args;
	_exit(3);
}

static const rbk_param_decl any_params[] = {{"message", RBK_TYPE_STRING, 0, NULL, "error message"},
					    {"value", RBK_TYPE_ANY, 0, NULL, "anything"},
					    {NULL, 0, 0, NULL, NULL}};

static const rbk_param_decl litter_params[] = {{"spawn", RBK_TYPE_BOOL, 0, "false", "leave a process"},
					       {"pidfile", RBK_TYPE_STRING, 0, NULL, "where its pid goes"},
					       {NULL, 0, 0, NULL, NULL}};
static const rbk_param_decl ledger_params[] = {{"file", RBK_TYPE_STRING, 1, NULL, "ledger file"},
					       {"label", RBK_TYPE_STRING, 0, NULL, "what to write"},
					       {"sleep_ms", RBK_TYPE_INT, 0, "0", "sleep first"},
					       {"fail", RBK_TYPE_BOOL, 0, "false", "fail after writing"},
					       {NULL, 0, 0, NULL, NULL}};

/* A fresh credential, as a login would hand one out: marked secret
 * (plugin.h mark_secret), then output, logged and put in the error. */
static int token_run(rbk_call *call, const rbk_value *args)
{
	(void)args;
	char tok[48];
	FILE *f = fopen("/dev/urandom", "r");
	unsigned char raw[12] = {0};
	if (!f || fread(raw, 1, sizeof raw, f) != sizeof raw) {
		if (f)
			fclose(f);
		host->set_error(call, "no randomness");
		return 1;
	}
	fclose(f);
	int n = snprintf(tok, sizeof tok, "tok-");
	for (size_t i = 0; i < sizeof raw; i++)
		n += snprintf(tok + n, sizeof tok - (size_t)n, "%02x", raw[i]);
	host->mark_secret(call, tok, strlen(tok));
	host->set_output_string(call, "token", tok, strlen(tok));
	char line[96];
	snprintf(line, sizeof line, "session %s opened", tok);
	host->set_output_string(call, "message", line, strlen(line));
	host->log(call, RBK_LOG_INFO, "got %s", tok);
	return 0;
}

static const rbk_action actions[] = {
	{"ledger", "append to a ledger (not idempotent)", ledger_params, NULL, 0, ledger_run, NULL, NULL},
	{"ledger_idem", "append to a ledger (idempotent)", ledger_params, NULL, 1, ledger_run, NULL, NULL},
	{"echo", "outputs its args", any_params, NULL, 1, echo_run, NULL, NULL},
	{"token", "a fresh credential, marked secret", any_params, NULL, 1, token_run, NULL, NULL},
	{"fail", "fails with message", any_params, NULL, 1, fail_run, NULL, NULL},
	{"crash", "dies of SIGSEGV", any_params, NULL, 0, crash_run, NULL, NULL},
	{"hang", "never returns, ignores SIGTERM", any_params, NULL, 0, hang_run, NULL, NULL},
	{"exit", "exits without a result", any_params, NULL, 0, exit_run, NULL, NULL},
	{"whoami", "its process, variable and directory", any_params, NULL, 1, whoami_run, NULL, NULL},
	{"litter", "leaves a variable, a directory, a process", litter_params, NULL, 1, litter_run, NULL, NULL},
};

static const rbk_plugin plugin = {"testkit", "1.0.0", actions, sizeof actions / sizeof *actions};

int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out);
int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out)
{
	host = h;
	*out = &plugin;
	return 0;
}
