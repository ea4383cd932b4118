/* model: a runbook as data (format.md), built from a document tree.
 *
 * Building checks structure: required and unknown keys, types, durations,
 * names, and the syntax of every expression and template. Cross-references
 * (states, params, reachability) are the checker's job (check.h). Every
 * element keeps the place it came from. */
#ifndef RBK_MODEL_H
#define RBK_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runbook/diag.h"
#include "runbook/node.h"
#include "lang/parse.h"
#include "lang/tmpl.h"

typedef struct {
	int line, col;
} rbk_pos;

typedef enum { RBK_P_STRING, RBK_P_INT, RBK_P_NUMBER, RBK_P_BOOL, RBK_P_DURATION, RBK_P_ENUM } rbk_ptype;

typedef struct {
	char *name;
	rbk_pos pos;
	rbk_ptype type;
	const rbk_node *def; /* default, borrowed from the document; NULL if none */
	bool required;
	char *description;
	bool has_min, has_max;
	double min, max;
	char *pattern;
	rbk_pos pattern_pos;
	bool secret;
	char *env;
	char **values; /* enum */
	size_t nvalues;
} rbk_param;

/* An expression written in the file, parsed, with its place. */
typedef struct {
	char *src;
	rbk_expr *expr;
	rbk_pos pos; /* of the expression's first character */
	const rbk_node *node; /* the scalar it came from, borrowed */
	int off;              /* offset of src inside node->text */
} rbk_mexpr;

typedef struct {
	rbk_mexpr guard; /* guard.expr NULL: the else branch */
	char *to;
	rbk_pos to_pos;
} rbk_edge;

typedef struct {
	char *action; /* plugin.action */
	rbk_pos pos;
	const rbk_node *with; /* borrowed; NULL if absent */
} rbk_call_spec;

typedef struct {
	char *name;
	rbk_mexpr value;     /* when the YAML value is a string: an expression */
	const rbk_node *lit; /* otherwise: a literal value (borrowed) */
	bool secret;	     /* written {value: EXPR, secret: true}: the value is a secret */
} rbk_assign;

typedef enum { RBK_S_ACTION, RBK_S_DECISION, RBK_S_APPROVAL, RBK_S_WAIT, RBK_S_CALL, RBK_S_END } rbk_skind;

typedef struct {
	char *name;
	rbk_pos pos;
	rbk_skind kind;
	char *description;
	rbk_call_spec act; /* ACTION: do/with; CALL: call (runbook name)/with */
	struct {
		char *prompt;
		char **approvers;
		size_t napprovers;
		bool distinct;
		int64_t timeout_ms; /* -1: none */
	} approval;
	int64_t wait_ms;
	bool end_success;
	rbk_edge *next;
	size_t nnext;
	bool next_is_list;
	rbk_pos next_pos;
	char *on_failure; /* NULL: the runbook default */
	rbk_pos on_failure_pos;
	bool has_undo;
	rbk_call_spec undo;
	struct {
		int attempts; /* total tries, 1 when absent */
		int64_t delay_ms, max_delay_ms;
		double backoff;
	} retry;
	int64_t timeout_ms; /* -1: none */
	bool has_poll;
	struct {
		rbk_mexpr until;
		int64_t every_ms, for_ms;
	} poll;
	int idempotent; /* -1: the action's own declaration */
	rbk_assign *set;
	size_t nset;
	const rbk_node *dry_run; /* borrowed */
} rbk_state;

typedef struct {
	char *cron;
	rbk_pos pos;
	const rbk_node *cron_node; /* borrowed */
	char *timezone; /* "UTC" when absent */
	rbk_pos tz_pos;
	const rbk_node *params; /* borrowed */
	int64_t catch_up_ms;
	enum { RBK_OVERLAP_SKIP, RBK_OVERLAP_QUEUE, RBK_OVERLAP_ALLOW } overlap;
	char *queue; /* where its runs execute; NULL: the runbook's */
} rbk_schedule;

/* One entry of notify: (docs/operations.md, "Getting told"). */
typedef struct {
	unsigned on;	   /* RBK_NOTIFY_* bits: the statuses it is sent for */
	rbk_call_spec act; /* do/with */
	int attempts;	   /* tries before it is given up (default 3) */
	const rbk_doc *doc; /* the file it was written in (a runbook, or the shared _notify.yaml) */
} rbk_notify;

enum {
	RBK_NOTIFY_STARTED = 1, RBK_NOTIFY_WAITING = 2, RBK_NOTIFY_NEEDS_ATTENTION = 4, RBK_NOTIFY_SUCCEEDED = 8,
	RBK_NOTIFY_FAILED = 16, RBK_NOTIFY_ROLLED_BACK = 32, RBK_NOTIFY_ABORTED = 64
};
/* The bit of a status a notification can be sent for; 0: none. */
unsigned rbk_notify_bit(const char *status);

typedef struct {
	const rbk_doc *doc; /* borrowed: the file the model came from */
	char *name;
	char *title, *description;
	rbk_param *params;
	size_t nparams;
	rbk_assign *vars;
	size_t nvars;
	char *lock;
	rbk_pos lock_pos;
	char *queue; /* where its runs execute (docs/scale-out.md); NULL: the launching host */
	rbk_schedule *schedules;
	size_t nschedules;
	char *on_failure; /* "fail" when absent */
	rbk_pos on_failure_pos;
	int64_t max_transitions; /* the run's budget of transitions (RBK_MAX_TRANSITIONS when absent) */
	char *start;
	rbk_pos start_pos;
	rbk_state *states;
	size_t nstates;
	rbk_notify *notify;
	size_t nnotify;
} rbk_runbook;

/* max_transitions: the default, and the largest value a runbook may give. */
#define RBK_MAX_TRANSITIONS 10000
#define RBK_MAX_TRANSITIONS_LIMIT 1000000000

/* Build the model of doc. Returns 0, or -1 after adding every structural
 * error to d (the model is then not usable). doc must outlive the model. */
int rbk_model_build(rbk_runbook **out, const rbk_doc *doc, rbk_diag *d);
void rbk_model_free(rbk_runbook *rb);
/* The shared notifications of a _notify.yaml (a map with the one key
 * notify:), built as a runbook's notify: is, into an otherwise empty model
 * named "_notify". Returns 0, or -1 with the errors in d. */
int rbk_model_build_notify(rbk_runbook **out, const rbk_doc *doc, rbk_diag *d);
/* Index of the state called name, or -1. */
int rbk_model_state(const rbk_runbook *rb, const char *name);
const rbk_param *rbk_model_param(const rbk_runbook *rb, const char *name);
const char *rbk_model_kind_name(rbk_skind k);
/* Line and column of byte off inside scalar n. */
rbk_pos rbk_model_place(const rbk_node *n, int off);
/* A duration field (wait, timeout, poll.every, poll.for, approval.timeout)
 * written "{{ params.X }}", X a duration param, holds RBK_DUR_PARAM(X's
 * index); rbk_model_dur gives any field's milliseconds for a run with
 * these typed params (-1 stays "none"). */
#define RBK_DUR_PARAM(i) (-2 - (int64_t)(i))
int64_t rbk_model_dur(const rbk_runbook *rb, int64_t v, const rbk_val *params);
/* Whether runbook rb (an rbk_runbook, typed as rbk_scope's callback)
 * declares name as a param of type duration. */
bool rbk_model_param_is_duration(const void *rb, const char *name);

/* Whether q can name a queue: 1-100 of [A-Za-z0-9._:-]. */
bool rbk_model_queue_name_ok(const char *q);

#endif
