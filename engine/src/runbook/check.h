/* check: the semantic checks of a runbook model (architecture.md "check"):
 * undefined states, params, variables and steps in guards and templates;
 * unreachable states; states with no path to an end; templates inside a
 * script; cron and time zones; param declarations; called runbooks; and,
 * when an action catalogue is given, actions and their params. */
#ifndef RBK_CHECK_H
#define RBK_CHECK_H

#include "runbook/diag.h"
#include "runbook/model.h"

/* What the checker may ask about the actions that plugins provide. */
typedef struct {
	void *ctx;
	/* 1 when the action exists. */
	int (*has_action)(void *ctx, const char *action);
	/* Check with (may be NULL) against the action's param table, adding
	 * errors to d (file is the runbook's file). */
	void (*check_params)(void *ctx, const char *action, const rbk_node *with, const char *file,
			     const rbk_pos *where, rbk_diag *d);
	/* 1 when the action declares output name (or declares none). */
	int (*has_output)(void *ctx, const char *action, const char *name);
	/* 1 when a plugin of this name is loaded. NULL: every plugin is
	 * considered loaded, so any unknown action is an error. Actions of a
	 * plugin that is not loaded are not checked (a typo of a loaded
	 * plugin's name still is). */
	int (*has_plugin)(void *ctx, const char *plugin);
	/* The closest known action ("shell.exec") or plugin name, or NULL. */
	const char *(*suggest)(void *ctx, const char *word, int plugin_names);
} rbk_check_actions;

typedef struct {
	/* Directories searched for called runbooks, ':'-separated; NULL: none. */
	const char *search_path;
	/* NULL: actions are not checked (no plugins loaded). */
	const rbk_check_actions *actions;
} rbk_check_opts;

/* Returns the number of errors added to d (0: valid). */
int rbk_check(const rbk_runbook *rb, const rbk_check_opts *opts, rbk_diag *d);
/* The same checks for a shared notify file's model (rbk_model_build_notify). */
int rbk_check_notify(const rbk_runbook *shared, const rbk_check_opts *opts, rbk_diag *d);

/* Whether a file name is a runbook's: it ends in .yaml or .yml. */
bool rbk_check_runbook_file(const char *name);
/* Find runbook name on search_path (NAME.yaml or NAME.yml in each
 * directory). Returns a fresh path or NULL. */
char *rbk_check_find_runbook(const char *search_path, const char *name);

#endif
