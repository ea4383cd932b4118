/* lease: the executor's hold on a run in the store (docs/scale-out.md).
 *
 * A top-level run is executed under a lease kept in the store and measured
 * on its clock; the process renews it every third of its length from the
 * places it waits (an action's output, a wait: state), so a process that is
 * paused or cut off for longer than the lease loses the run: another
 * executor claims it (bumping its epoch) and the store refuses every later
 * write of this one (store.h, fencing). When the renewal finds the lease
 * lost, the running action's process group is killed and nothing more is
 * written. The same on both backends; on SQLite the owner lock (owner.h)
 * still decides first, and a free owner lock proves the holder dead. */
#ifndef RBK_LEASE_H
#define RBK_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "store/store.h"

enum { RBK_LEASE_DEFAULT_MS = 30000 };

typedef struct {
	rbk_store *store;
	int64_t run, epoch, ms;
	int64_t renew_at, held_until; /* monotonic ms */
	char *owner;
	bool held, lost;
} rbk_lease;

/* This process's name as an executor: HOST/PID/START (unique per process),
 * or $RBK_EXECUTOR, the name under which an agent reserved the run for it. */
const char *rbk_lease_executor(void);

/* Whether owner (an executor name as above) is a process of this host
 * that no longer exists: its lease ends with it (kill -9, out of memory). */
bool rbk_lease_owner_gone(const char *owner);

/* Claim run (joins the caller's transaction): 0 when held, then the store
 * handle is fenced with the new epoch; 1 when another executor's lease is
 * live (err says whose); -1 with err. */
int rbk_lease_claim(rbk_lease *l, rbk_store *s, int64_t run, int64_t ms, bool force, rbk_err *err);
/* Renew when due. false once the lease is lost (or could not be renewed
 * before it ended): the caller stops and writes nothing more. */
bool rbk_lease_tick(rbk_lease *l);
/* End the lease (when still ours) and remove the fence. */
void rbk_lease_release(rbk_lease *l);

#endif
