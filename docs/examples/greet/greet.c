/* rbk-greet: an example plugin with one action, greet.hello.
 * Build: cc -std=c11 -shared -fPIC $(pkg-config --cflags rbk-plugin) -o rbk-greet.so greet.c */
#include <rbk/plugin.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

RBK_PLUGIN_DECLARE(); /* the ABI version and struct sizes, read before init */

static const rbk_host *host; /* the engine's functions, given to init */

/* greet.hello: make a greeting. Params arrive checked against the table
 * below: "name" is present and a string, "shout" is a bool if given. */
static int hello_run(rbk_call *call, const rbk_value *args)
{
	const rbk_value *name = host->arg(args, "name");
	const rbk_value *shout = host->arg(args, "shout");
	if (name->as.str.len == 0) {
		host->set_error(call, "name is empty");
		return 1; /* the step fails with this message */
	}
	char text[256];
	int n = snprintf(text, sizeof text, "hello, %s", name->as.str.ptr);
	if (n < 0 || (size_t)n >= sizeof text)
		n = (int)sizeof text - 1;
	if (shout && shout->as.boolean)
		for (int i = 0; i < n; i++)
			text[i] = (char)toupper((unsigned char)text[i]);
	host->set_output_string(call, "greeting", text, (size_t)n); /* copied by the host */
	host->set_output_int(call, "length", n);
	host->log(call, RBK_LOG_INFO, "greeted %s", name->as.str.ptr);
	return 0;
}

/* Under --dry-run the engine calls plan instead of run. */
static int hello_plan(rbk_call *call, const rbk_value *args)
{
	host->log(call, RBK_LOG_INFO, "would greet %s", host->arg(args, "name")->as.str.ptr);
	return 0;
}

static const rbk_param_decl hello_params[] = {
	{"name", RBK_TYPE_STRING, 1, NULL, "who to greet"},
	{"shout", RBK_TYPE_BOOL, 0, "false", "upper-case the greeting"},
	{NULL, 0, 0, NULL, NULL}};

static const rbk_output_decl hello_outputs[] = {
	{"greeting", RBK_TYPE_STRING, "the greeting"},
	{"length", RBK_TYPE_INT, "its length in bytes"},
	{NULL, 0, NULL}};

static const rbk_action actions[] = {
	/* name, summary, params, outputs, idempotent, run, plan, is_idempotent */
	{"hello", "make a greeting", hello_params, hello_outputs, 1, hello_run, hello_plan, NULL},
};

static const rbk_plugin plugin = {"greet", "1.0.0", actions, sizeof actions / sizeof *actions};

int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out);
int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out)
{
	if (h->abi_major != RBK_PLUGIN_ABI_MAJOR || h->struct_size < sizeof(rbk_host))
		return -1; /* refused: the engine names this file */
	host = h;
	*out = &plugin;
	return 0;
}
