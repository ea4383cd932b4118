/* procs: nothing an action starts outlives its attempt.
 *
 * The worker that runs actions (runner.c) leads a process group; a plugin
 * that starts a program in a group of its own hands that group to the host
 * (rbk_host.add_process_group) before the worker can act on a signal
 * (shell.exec blocks them until then). Those groups are
 *
 *  - killed by the worker when the engine dies, whatever kills it: the
 *    engine's death reaches the worker as a parent-death signal whose
 *    handler kills every group of the attempt, then the worker's own;
 *  - recorded, with the start time of each group's leader and the
 *    attempt's key, in HOME/owners/RUN.procs, so that what survives
 *    anyway (the worker killed or stopped with the engine, the operator's
 *    second Ctrl-C) is killed by the engine when the attempt ends, and by
 *    the next process that takes the run over (rbk resume, approve, abort)
 *    before anything else happens to it: a step never runs again, and is
 *    never marked, beside a leftover of its previous attempt.
 *
 * A process is the attempt's when it is in a recorded group and the
 * group's leader is still the recorded process (its start time, from
 * /proc/PID/stat, is the recorded one), or, the leader gone, it started
 * after the leader and carries the attempt's key in its environment
 * (RBK_IDEMPOTENCY_KEY, set for every action): a group number reused by an
 * unrelated process is never killed. Records from before a reboot are
 * ignored (the kernel's boot id is recorded). A program that leaves its
 * group (setsid, setpgid: a daemon) is out of reach; docs/cli.md says how
 * to contain it. Linux only (/proc, prctl). */
#ifndef RBK_PROCS_H
#define RBK_PROCS_H

#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "base/mem.h"
#include "cli/ui.h"

/* The variable every action's processes carry: the attempt's key. */
#define RBK_PROCS_KEY_ENV "RBK_IDEMPOTENCY_KEY"

/* Where the records go: HOME/owners (set when a run is taken). */
void rbk_procs_set_home(const char *home);

/* In the action worker (runner.c), which leads its group: the parent-death
 * handler. -1 when the engine is already gone. */
int rbk_procs_worker_init(pid_t engine);
/* In the worker, before an attempt's action runs: the key in the
 * environment, the record of the worker's group under the key. */
void rbk_procs_attempt_begin(const char *key);
/* In the worker: a group the action started (the host function). 0, or -1
 * when it cannot be tracked. */
int rbk_procs_add_group(pid_t pgid);
/* In the worker, once the attempt's action returned. */
void rbk_procs_attempt_done(void);

/* Kill whatever the recorded attempts of run left running and wait until
 * it is gone (5s at most), sparing the group spare (a live worker whose
 * group holds nothing else; 0: none). One line per attempt that left something is
 * appended to notes (may be NULL). Returns the number of processes
 * stopped, or -1 with err when one would not die (the record is kept). */
int rbk_procs_settle(int64_t run, pid_t spare, rbk_buf *notes, rbk_err *err);
/* After an attempt of the run whose key is key ended: settle it quietly,
 * sparing spare. */
void rbk_procs_attempt_ended(const char *key, pid_t spare);
/* A process takes run over: settle it, each note shown on ui. */
int rbk_procs_takeover(const char *home, int64_t run, rbk_ui *ui, rbk_err *err);

#endif
