/* replay: re-derive every decision of a recorded run from its recorded
 * results and its pinned definition, with no side effect (architecture.md
 * "Audit"). Guards are evaluated again on the values the run recorded
 * (now() is the time of the event; a decision that read a secret, recorded
 * as "***", is counted apart and not re-derived), retries and
 * their delays, poll continuations, failure edges, `set` values and the
 * rollback order are checked against the definition, and each divergence
 * is reported with the event that holds it. Runs it called are replayed
 * too. */
#ifndef RBK_REPLAY_H
#define RBK_REPLAY_H

#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "store/store.h"

typedef struct {
	int events, decisions, divergences, runs;
	int secret; /* decisions that read a secret: not re-derived */
} rbk_replay_stats;

/* Replay run and its children, printing each divergence to out (and a
 * line per decision when verbose). Returns 0 (see stats), or -1 with err
 * when the run cannot be replayed at all. */
int rbk_replay_run(rbk_store *s, int64_t run, FILE *out, int verbose, rbk_replay_stats *stats, rbk_err *err);

#endif
