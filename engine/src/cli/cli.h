/* cli: the command table and what commands share (loading a runbook by
 * name or file, option parsing helpers). One file per command: cmd_*.c. */
#ifndef RBK_CLI_H
#define RBK_CLI_H

#include <stdbool.h>

#include "runbook/check.h"
#include "runbook/diag.h"
#include "runbook/load.h"
#include "runbook/model.h"
#include "store/store.h"

typedef struct {
	const char *name;
	const char *usage;   /* after "rbk NAME " */
	const char *summary; /* one line for `rbk help` */
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
} rbk_cmd;

/* Every command, NULL-terminated (commands.c). */
extern const rbk_cmd *const rbk_cli_commands[];
extern const rbk_cmd rbk_cmd_completion;
extern const rbk_cmd rbk_cmd_validate;
extern const rbk_cmd rbk_cmd_graph;
extern const rbk_cmd rbk_cmd_plugins;
extern const rbk_cmd rbk_cmd_run;
extern const rbk_cmd rbk_cmd_resume;
extern const rbk_cmd rbk_cmd_approve;
extern const rbk_cmd rbk_cmd_reject;
extern const rbk_cmd rbk_cmd_abort;
extern const rbk_cmd rbk_cmd_status;
extern const rbk_cmd rbk_cmd_show;
extern const rbk_cmd rbk_cmd_history;
extern const rbk_cmd rbk_cmd_log;
extern const rbk_cmd rbk_cmd_scheduler;
extern const rbk_cmd rbk_cmd_schedule;
extern const rbk_cmd rbk_cmd_verify;
extern const rbk_cmd rbk_cmd_audit;
extern const rbk_cmd rbk_cmd_replay;
extern const rbk_cmd rbk_cmd_export;
extern const rbk_cmd rbk_cmd_agent;
extern const rbk_cmd rbk_cmd_report;
extern const rbk_cmd rbk_cmd_store;
extern const rbk_cmd rbk_cmd_user;
extern const rbk_cmd rbk_cmd_serve;
extern const rbk_cmd rbk_cmd_metrics;
extern const rbk_cmd rbk_cmd_runbooks;

/* A loaded runbook: the document, its model and where it was found. */
typedef struct {
	rbk_doc *doc;
	rbk_runbook *rb;
	char *path;
} rbk_cli_runbook;

/* The runbook search path: $RBK_PATH, default "./runbooks". Borrowed. */
const char *rbk_cli_search_path(void);
/* The search path for calls made from file: its own directory first. Caller frees. */
char *rbk_cli_call_path(const char *file);
/* Load NAME (found on the search path) or FILE (contains '/' or ends in
 * .yaml/.yml), build and check it. check: run the semantic checks too.
 * Returns 0, or -1 with errors in d. */
int rbk_cli_load(rbk_cli_runbook *out, const char *name_or_file, bool check, rbk_diag *d);
void rbk_cli_runbook_free(rbk_cli_runbook *r);
/* The shared notifications: the first _notify.yaml on the runbook path,
 * loaded and checked once; NULL when there is none, or (after its errors
 * are printed as a warning) when it is broken. */
#define RBK_CLI_NOTIFY_FILE "_notify.yaml"
const rbk_runbook *rbk_cli_notify_shared(void);
/* Whether rbk_cli_notify_shared found the shared file broken. */
bool rbk_cli_notify_broken(void);

/* The plugins on the plugin path, loaded once per process (refusals are
 * printed to stderr). Freed at exit. */
struct rbk_registry;
struct rbk_registry *rbk_cli_registry(void);

/* The state directory: opt (--home), else $RBK_HOME, else
 * $XDG_STATE_HOME/rbk, else ~/.local/state/rbk. Caller frees. */
char *rbk_cli_home(const char *opt);
/* Who is acting: the operating-system user running rbk, as user@host
 * (principal.h); never a name given on the command line. Caller frees. */
char *rbk_cli_actor(void);
/* --credential-fd N (set by rbk serve): the person the console
 * authenticated acts, not the operating-system user. Reads one line
 * ("bearer TOKEN" or "session SID") from fd N, checks it against the
 * store's users (auth/users.h) and, when it proves an operator, replaces
 * *actor with NAME@console. Returns 0, else prints why and returns the exit
 * code (2: proves no operator; 6: the store). */
int rbk_cli_credential_actor(struct rbk_store *s, int fd, char **actor);

/* --store URL, accepted by every command that reads or writes the store
 * (getopt_long's value for it; no short form). */
enum { RBK_OPT_STORE = 0x100 };
/* Remember --store URL for this process and every rbk it starts: it is
 * kept in $RBK_STORE (the environment, unlike argv, is private to the
 * user, and a URI may carry a password). */
void rbk_cli_set_store(const char *url);
/* The store URL in force: --store, else $RBK_STORE, else NULL (SQLite in
 * the state directory). */
const char *rbk_cli_store_url(void);

/* Open the store (rbk_cli_store_url(), else SQLite under opt/$RBK_HOME...);
 * prints the error and returns -1. *home receives the state directory
 * (caller frees): per-host files live there whatever the store. */
struct rbk_store;
int rbk_cli_open_store(const char *opt, struct rbk_store **out, char **home);

/* The one run number left in argv after the options (argv[optind]); 0
 * after printing a usage error (*rc set). */
long long rbk_cli_run_number(const rbk_cmd *cmd, int argc, char **argv, int optind_now, int *rc);
/* Open the store and read run id into *run. On failure prints the error
 * and returns the exit code (2: no such run, 1: the store), else 0. */
struct rbk_store_run;
int rbk_cli_open_run(const char *home_opt, long long id, struct rbk_store **s, char **home, rbk_store_run *run);

/* Print "rbk: error: ..." and the command's usage to stderr; returns 2. */
int rbk_cli_usage_error(const rbk_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The usage error for an option getopt_long refused: c is ':' for a
 * missing value (the option string starts with ':'), else the option is
 * unknown; arg is the option as written (argv[optind - 1]). Returns 2. */
int rbk_cli_option_error(const rbk_cmd *cmd, int c, const char *arg);

/* This host's own queue: host:HOSTNAME (caller frees). */
char *rbk_cli_host_queue(void);
/* Whether a waiting run has something for an executor to do now: its
 * approval was answered, or its deadline passed (on the store's clock). */
bool rbk_cli_approval_due(struct rbk_store *s, int64_t run_id);
/* Print run id's timeline as it grows (from after_seq) until it ends,
 * waits or needs attention (to_end: until it ends, saying on stderr when it
 * waits for a person); returns its exit code (docs/cli.md). */
int rbk_cli_follow(struct rbk_store *s, int64_t run_id, int64_t after_seq, bool json, bool to_end);

#endif
