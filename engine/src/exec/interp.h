/* interp: drive a run through its states, durably (architecture.md
 * "Durability and resume").
 *
 * Every decision is recorded as an event before it is acted on, and the
 * run's state is only ever the fold of its events (runstate.h). Barriers:
 * a step_started event is committed (synchronous=FULL) before its action
 * starts; the result and the chosen transition are committed before the
 * next action starts. Pure states (decisions, set) ride along with the next
 * barrier. A step found in flight on resume runs again only when it is
 * idempotent; otherwise the run stops in needs_attention for an operator. */
#ifndef RBK_INTERP_H
#define RBK_INTERP_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "runbook/load.h"
#include "runbook/model.h"
#include "runbook/params.h"
#include "exec/registry.h"
#include "store/store.h"
#include "cli/ui.h"

typedef struct {
	rbk_store *store;
	rbk_registry *reg;
	const char *home;
	const char *actor; /* who is acting now: the principal, user@host (principal.h) */
	rbk_ui *ui;
	bool tx_open; /* one store connection, one transaction, shared by nested runs */
	/* Executors (docs/scale-out.md). */
	const char *queue; /* the queue of the runs it creates; NULL: none recorded */
	bool enqueue;	   /* create runs "queued" for an agent, and stop there */
	int64_t lease_ms;  /* 0: RBK_LEASE_DEFAULT_MS */
	bool agent;	   /* executing for rbk agent: a stop hands the run back to the queue */
	/* A run's current state, moved by transitions and written to its row
	 * once, before the transaction commits (interp.c). */
	int64_t pending_run;
	char pending_state[128];
	/* A run's pure events (transitions, vars_set) held back and recorded
	 * as one batch event before anything else is (interp.c). */
	int64_t batch_run;
	int64_t *batch_seq; /* that run's last_seq, moved when the batch is recorded */
	rbk_buf batch;	    /* {"events":[{"kind":K,"data":D},... as JSON, masked */
	size_t batch_n, batch_data; /* events held; where the first one's D starts */
	char batch_kind[16];	    /* the first one's K */
	/* The shared notifications (_notify.yaml on the path) of every
	 * top-level run; NULL: none. */
	const rbk_runbook *notify_shared;
} rbk_interp;

typedef struct {
	const char *path;     /* the runbook file, for calls and provenance */
	const rbk_doc *doc;   /* loaded and checked */
	const rbk_runbook *rb;
	const rbk_param_arg *args;
	size_t nargs;
	const rbk_val *preset; /* typed params (a schedule entry's); NULL: none */
	bool dry_run, wait_lock;
	int64_t fire_id;          /* the scheduler's fire this run answers; 0: none */
	const char *fire_nominal; /* its nominal time */
} rbk_interp_launch;

typedef enum {
	RBK_RESUME_PLAIN,
	RBK_RESUME_RETRY_STEP,
	RBK_RESUME_MARK_SUCCESS,
	RBK_RESUME_MARK_FAILURE,
	RBK_RESUME_APPROVE,
	RBK_RESUME_REJECT,
	RBK_RESUME_ABORT,
	RBK_RESUME_ABORT_ROLLBACK
} rbk_resume_mode;

/* Create a run and drive it until it ends, waits or is interrupted. Returns
 * 0 with *run_id and *status (a static string: succeeded, failed,
 * rolled_back, aborted, waiting, needs_attention, interrupted), or -1 with
 * err when the run could not start (bad params, lock held, store error);
 * err->code is then RBK_EXIT_BADINPUT or RBK_EXIT_FAILED. */
int rbk_interp_run(rbk_interp *ip, const rbk_interp_launch *l, int64_t *run_id, const char **status, rbk_err *err);

/* Act on an existing run (resume, approve, reject, abort) and drive it. */
int rbk_interp_resume(rbk_interp *ip, int64_t run_id, rbk_resume_mode mode, const char *comment,
		      const rbk_param_arg *args, size_t nargs, const char **status, rbk_err *err);

/* The exit code of a final status (docs/cli.md). */
int rbk_interp_exit_code(const char *status);

/* SIGINT and SIGTERM: the first stops the run at its next safe point, a
 * second interrupts the running action. */
void rbk_interp_install_signals(void);

#endif
