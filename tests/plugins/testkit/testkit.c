/* rbk-testkit: actions that misbehave on purpose, for the engine's tests.
 * Never shipped (built to build/test-plugins/). */
#include <rbk/plugin.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int exit_run(rbk_call *call, const rbk_value *args)
{
	(void)call;
	(void)args;
	_exit(3);
}

static const rbk_param_decl any_params[] = {{"message", RBK_TYPE_STRING, 0, NULL, "error message"},
					    {"value", RBK_TYPE_ANY, 0, NULL, "anything"},
					    {NULL, 0, 0, NULL, NULL}};

static const rbk_param_decl ledger_params[] = {{"file", RBK_TYPE_STRING, 1, NULL, "ledger file"},
					       {"label", RBK_TYPE_STRING, 0, NULL, "what to write"},
					       {"sleep_ms", RBK_TYPE_INT, 0, "0", "sleep first"},
					       {"fail", RBK_TYPE_BOOL, 0, "false", "fail after writing"},
					       {NULL, 0, 0, NULL, NULL}};

static const rbk_action actions[] = {
	{"ledger", "append to a ledger (not idempotent)", ledger_params, NULL, 0, ledger_run, NULL, NULL},
	{"ledger_idem", "append to a ledger (idempotent)", ledger_params, NULL, 1, ledger_run, NULL, NULL},
	{"echo", "outputs its args", any_params, NULL, 1, echo_run, NULL, NULL},
	{"fail", "fails with message", any_params, NULL, 1, fail_run, NULL, NULL},
	{"crash", "dies of SIGSEGV", any_params, NULL, 0, crash_run, NULL, NULL},
	{"hang", "never returns, ignores SIGTERM", any_params, NULL, 0, hang_run, NULL, NULL},
	{"exit", "exits without a result", any_params, NULL, 0, exit_run, NULL, NULL},
};

static const rbk_plugin plugin = {"testkit", "1.0.0", actions, sizeof actions / sizeof *actions};

int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out);
int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out)
{
	host = h;
	*out = &plugin;
	return 0;
}
