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

static int exit_run(rbk_call *call, const rbk_value *args)
{
	(void)call;
	(void)args;
	_exit(3);
}

static const rbk_param_decl any_params[] = {{"message", RBK_TYPE_STRING, 0, NULL, "error message"},
					    {"value", RBK_TYPE_ANY, 0, NULL, "anything"},
					    {NULL, 0, 0, NULL, NULL}};

static const rbk_action actions[] = {
	{"echo", "outputs its args", any_params, NULL, 1, echo_run, NULL},
	{"fail", "fails with message", any_params, NULL, 1, fail_run, NULL},
	{"crash", "dies of SIGSEGV", any_params, NULL, 0, crash_run, NULL},
	{"hang", "never returns, ignores SIGTERM", any_params, NULL, 0, hang_run, NULL},
	{"exit", "exits without a result", any_params, NULL, 0, exit_run, NULL},
};

static const rbk_plugin plugin = {"testkit", "1.0.0", actions, sizeof actions / sizeof *actions};

int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out);
int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out)
{
	host = h;
	*out = &plugin;
	return 0;
}
