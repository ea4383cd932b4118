/* rbk/plugin.h: everything an rbk plugin needs, and nothing else.
 *
 * A plugin is a shared object (rbk-NAME.so) exporting two symbols:
 *
 *   rbk_plugin_abi   data: the ABI version and struct sizes the plugin was
 *                    built with; the host reads it BEFORE calling anything
 *                    and refuses a plugin of another major version or with
 *                    unexpected struct sizes. Define it with
 *                    RBK_PLUGIN_DECLARE().
 *   rbk_plugin_init  function: receives the host's function table and
 *                    returns the plugin's description (name, version,
 *                    actions). Return 0, or a negative value to refuse.
 *
 * Each action declares its typed params (the host checks what a runbook
 * wrote against this table before the action runs and rejects unknown
 * keys), its outputs and whether it is idempotent. Actions run in a child
 * process: a crash or a hang fails the step, never the engine.
 *
 * Memory: params are borrowed for the duration of the call; everything the
 * plugin hands to the host (outputs, messages) is copied by the host.
 * Nothing is freed across the boundary. Structs only ever grow at their end;
 * new host functions are appended to rbk_host. */
#ifndef RBK_PLUGIN_H
#define RBK_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RBK_PLUGIN_ABI_MAJOR 1
#define RBK_PLUGIN_ABI_MINOR 1

/* Types of params and outputs. */
typedef enum {
	RBK_TYPE_ANY = 0,
	RBK_TYPE_STRING = 1,
	RBK_TYPE_INT = 2,
	RBK_TYPE_NUMBER = 3, /* an int is accepted where a number is declared */
	RBK_TYPE_BOOL = 4,
	RBK_TYPE_DURATION = 5, /* written "30s"; handed to the action in milliseconds (int) */
	RBK_TYPE_LIST = 6,
	RBK_TYPE_MAP = 7,
	RBK_TYPE_NULL = 8 /* only as a value's type, never declared */
} rbk_type;

/* A value handed to an action (borrowed) or to the host (copied). */
typedef struct rbk_value rbk_value;
struct rbk_value {
	rbk_type type;
	union {
		struct {
			const char *ptr; /* NUL-terminated */
			size_t len;
		} str;
		int64_t i;       /* INT, DURATION (milliseconds) */
		double num;
		int boolean;
		struct {
			const rbk_value *items;
			size_t count;
		} list;
		struct {
			const char *const *keys;
			const rbk_value *values;
			size_t count;
		} map;
	} as;
};

typedef struct {
	const char *name;
	rbk_type type;
	int required;
	const char *default_text; /* documentation of the default, or NULL */
	const char *description;
} rbk_param_decl;

typedef struct {
	const char *name;
	rbk_type type;
	const char *description;
} rbk_output_decl;

/* The call an action is serving; opaque, passed back to host functions. */
typedef struct rbk_call rbk_call;

typedef struct {
	const char *name; /* "exec": the runbook writes "shell.exec" */
	const char *summary;
	const rbk_param_decl *params;   /* terminated by an entry whose name is NULL */
	const rbk_output_decl *outputs; /* same; NULL: the action declares none */
	int idempotent;                 /* safe to run again after a crash */
	/* Run the action. args is a map of the params the runbook gave, after
	 * templates were rendered and types checked; absent optional params are
	 * absent. Return 0 on success, non-zero on failure (after set_error). */
	int (*run)(rbk_call *call, const rbk_value *args);
	/* Optional: describe what run would do, for --dry-run (via log). */
	int (*plan)(rbk_call *call, const rbk_value *args);
	/* Optional: whether running it again with these args is safe, when
	 * that depends on them (an HTTP GET is, a POST is not). NULL: the
	 * `idempotent` flag above. A runbook's `idempotent:` overrides both. */
	int (*is_idempotent)(const rbk_value *args);
} rbk_action;

typedef struct {
	const char *name;    /* the plugin name: the part before the dot */
	const char *version; /* the plugin's own version */
	const rbk_action *actions;
	size_t action_count;
} rbk_plugin;

enum { RBK_LOG_DEBUG = 0, RBK_LOG_INFO = 1, RBK_LOG_WARN = 2, RBK_LOG_ERROR = 3 };

/* Functions the host offers. Check struct_size before using a function
 * added after ABI 1.0 (RBK_HOST_HAS below): an older rbk lacks it. */
typedef struct {
	unsigned abi_major, abi_minor;
	size_t struct_size;
	/* A named output of this call (copied). */
	void (*set_output)(rbk_call *call, const char *name, const rbk_value *value);
	/* Convenience setters for the common cases. */
	void (*set_output_string)(rbk_call *call, const char *name, const char *value, size_t len);
	void (*set_output_int)(rbk_call *call, const char *name, int64_t value);
	void (*set_output_bool)(rbk_call *call, const char *name, int value);
	/* The step's error message (the last call wins); secrets are masked. */
	void (*set_error)(rbk_call *call, const char *fmt, ...)
#if defined(__GNUC__)
		__attribute__((format(printf, 2, 3)))
#endif
		;
	/* A line for the run's log. */
	void (*log)(rbk_call *call, int level, const char *fmt, ...)
#if defined(__GNUC__)
		__attribute__((format(printf, 3, 4)))
#endif
		;
	/* Value of a param by name in args, or NULL. */
	const rbk_value *(*arg)(const rbk_value *args, const char *name);
	/* The step's idempotency key, "RUN:STATE:ATTEMPT". */
	const char *(*idempotency_key)(rbk_call *call);
	/* Milliseconds left before the step's timeout; -1 when none. */
	int64_t (*time_left_ms)(rbk_call *call);
	/* 1 when the run is a dry run (plan only). */
	int (*dry_run)(rbk_call *call);
	/* Added after ABI 1.0. A process group the action started for a
	 * program (setpgid): rbk kills it with the action when rbk dies, and
	 * before an interrupted attempt of the step runs again or is decided
	 * on. Call it after fork, before the program runs anything. Returns 0,
	 * or -1 when the group cannot be tracked (do not run the program). */
	int (*add_process_group)(rbk_call *call, int64_t pgid);
	/* Added after ABI 1.0. The most bytes of one string output the host
	 * keeps (RBK_MAX_OUTPUT, default 1 MiB): a longer one is cut to fit,
	 * ending with "\n[rbk: output cut at K of N bytes]". A plugin that
	 * reads something large need not read or keep more than this. */
	size_t (*output_limit)(rbk_call *call);
	/* Added in ABI 1.1. text (len bytes) is a secret from now on: a token
	 * the action obtained, a key in a response. rbk masks every occurrence
	 * of it as *** in what it records and shows (this step's outputs,
	 * error and log included), and what is computed from it is a secret
	 * too; the runbook's later steps still get the real value. */
	void (*mark_secret)(rbk_call *call, const char *text, size_t len);
} rbk_host;

/* 1 when the host table h offers fn, a function added after ABI 1.0. */
#define RBK_HOST_HAS(h, fn) ((h)->struct_size >= offsetof(rbk_host, fn) + sizeof((h)->fn) && (h)->fn != NULL)

/* What the plugin was built with; read by the host before anything runs. */
typedef struct {
	unsigned abi_major, abi_minor;
	size_t plugin_size, action_size, param_size, output_size, value_size;
} rbk_plugin_abi_info;

#define RBK_PLUGIN_DECLARE()                                                                       \
	const rbk_plugin_abi_info rbk_plugin_abi = {RBK_PLUGIN_ABI_MAJOR, RBK_PLUGIN_ABI_MINOR,     \
						    sizeof(rbk_plugin), sizeof(rbk_action),         \
						    sizeof(rbk_param_decl), sizeof(rbk_output_decl), \
						    sizeof(rbk_value)}

typedef int (*rbk_plugin_init_fn)(const rbk_host *host, const rbk_plugin **out);

/* Reading an action's args (the map of params it was given): the value of
 * name when it is present and of the type asked for, else the default. */
static inline const rbk_value *rbk_arg_get(const rbk_value *args, const char *name)
{
	if (!args || args->type != RBK_TYPE_MAP)
		return NULL;
	for (size_t i = 0; i < args->as.map.count; i++)
		if (!strcmp(args->as.map.keys[i], name))
			return &args->as.map.values[i];
	return NULL;
}

/* A string param, or NULL. */
static inline const char *rbk_arg_string(const rbk_value *args, const char *name)
{
	const rbk_value *v = rbk_arg_get(args, name);
	return v && v->type == RBK_TYPE_STRING ? v->as.str.ptr : NULL;
}

/* An int param (a duration arrives as milliseconds), or def. */
static inline int64_t rbk_arg_int(const rbk_value *args, const char *name, int64_t def)
{
	const rbk_value *v = rbk_arg_get(args, name);
	return v && (v->type == RBK_TYPE_INT || v->type == RBK_TYPE_DURATION) ? v->as.i : def;
}

/* A bool param (0 or 1), or def. */
static inline int rbk_arg_bool(const rbk_value *args, const char *name, int def)
{
	const rbk_value *v = rbk_arg_get(args, name);
	return v && v->type == RBK_TYPE_BOOL ? v->as.boolean != 0 : def;
}

#define RBK_PLUGIN_ABI_SYMBOL "rbk_plugin_abi"
#define RBK_PLUGIN_INIT_SYMBOL "rbk_plugin_init"

#ifdef __cplusplus
}
#endif

#endif
