/* registry: the plugins loaded with dlopen and the actions they provide.
 *
 * Loading reads rbk_plugin_abi before calling anything in the plugin and
 * refuses, with a message naming the file, a plugin without the symbols,
 * of another ABI major, with unexpected struct sizes, whose init fails, or
 * that declares an action name already taken. */
#ifndef RBK_REGISTRY_H
#define RBK_REGISTRY_H

#include <rbk/plugin.h>

#include "runbook/check.h"
#include "runbook/diag.h"
#include "lang/value.h"

typedef struct rbk_registry rbk_registry;

typedef struct {
	const rbk_plugin *plugin;
	const rbk_action *action;
	char *full_name; /* "shell.exec" */
	const char *file;
} rbk_reg_action;

/* The plugin search path: $RBK_PLUGIN_PATH, else the plugins directories
 * next to the executable (DIR/plugins, DIR/../plugins, DIR/../lib/rbk/plugins). Caller frees. */
char *rbk_reg_default_path(void);
/* Find the plugin files (rbk-NAME.so) in the ':'-separated path, the
 * first directory winning for a name, without loading any: a plugin is
 * loaded the first time one of its actions is looked up, so a run loads
 * only what it uses. Refusals of plugins loaded then go to stderr. */
int rbk_reg_open(rbk_registry **out, const char *path);
/* Load every plugin found (rbk plugins). Refused plugins are reported in d
 * and skipped; returns the number refused. */
int rbk_reg_load_all(rbk_registry *r, rbk_diag *d);
/* rbk_reg_open then rbk_reg_load_all. */
int rbk_reg_load(rbk_registry **out, const char *path, rbk_diag *d);
/* Load one file (tests, `rbk plugins FILE`). Returns 0 or -1 with d. */
int rbk_reg_load_file(rbk_registry *r, const char *file, rbk_diag *d);
rbk_registry *rbk_reg_new(void);
void rbk_reg_free(rbk_registry *r);

size_t rbk_reg_count(const rbk_registry *r);
const rbk_reg_action *rbk_reg_at(const rbk_registry *r, size_t i);
/* The action, loading its plugin first if needed; NULL when none provides it. */
const rbk_reg_action *rbk_reg_find(rbk_registry *r, const char *full_name);
/* A number that changes whenever a loaded action may have moved (a plugin
 * loaded, a registry made or freed): a process forked before holds stale
 * addresses. */
unsigned rbk_reg_generation(void);
/* The checker's view of the registry (valid while r lives). */
rbk_check_actions rbk_reg_checker(rbk_registry *r);
const char *rbk_reg_type_name(rbk_type t);
/* Check rendered args (a map) against the action's param table before it
 * runs: unknown keys, missing required params, types. Duration strings are
 * converted to milliseconds in place. Returns 0, or -1 with err. */
int rbk_reg_check_args(const rbk_reg_action *a, rbk_val *args, rbk_err *err);

/* A call being served: what host functions write into. */
struct rbk_call {
	rbk_val outputs; /* map */
	char *error;
	rbk_buf log;
	const char *key;
	int64_t deadline_ms; /* monotonic ms; -1 none */
	int dry_run;
	size_t out_left; /* what the outputs may still take (rbk_reg_outputs_budget) */
	rbk_val cut;     /* map: output name -> list of the paths cut in it */
	int log_cut;
	rbk_val secrets; /* list: the texts the action marked secret (mark_secret) */
};

/* The output cap (docs/plugins.md): every string a plugin hands over as
 * an output, at any depth, is kept up to rbk_reg_output_limit() bytes
 * (RBK_MAX_OUTPUT, default 1 MiB); a longer one is cut to its first K
 * bytes followed by "\n[rbk: output cut at K of N bytes]", the whole within
 * the limit. All outputs of one call together
 * take at most rbk_reg_outputs_budget() bytes (4 times the limit): past it,
 * list items and map entries are dropped. The log is kept up to the limit.
 * What was cut is listed by rbk_reg_call_cut. */
#define RBK_OUTPUT_DEFAULT ((size_t)1 << 20)
#define RBK_OUTPUT_MIN ((size_t)1024)
#define RBK_OUTPUT_MAX ((size_t)1 << 30)
size_t rbk_reg_output_limit(void);
size_t rbk_reg_outputs_budget(void);
/* The paths of the outputs cut in this call, e.g. ["stdout", "rows.0.v"]:
 * a list (empty when nothing was cut). */
rbk_val rbk_reg_call_cut(const rbk_call *c);

const rbk_host *rbk_reg_host(void);
void rbk_reg_call_init(rbk_call *c, const char *key, int64_t deadline_ms, int dry_run);
void rbk_reg_call_free(rbk_call *c);
/* rbk_val (a map of rendered params) <-> the plugin's rbk_value tree.
 * The tree borrows strings from v and is freed with rbk_reg_args_free. */
rbk_value *rbk_reg_args(const rbk_val *v);
void rbk_reg_args_free(rbk_value *a);
rbk_val rbk_reg_from_value(const rbk_value *v);

#endif
