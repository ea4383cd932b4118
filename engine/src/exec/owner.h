/* owner: one live process owns a run at a time. The proof is a POSIX
 * record lock on HOME/owners/RUN.lock, held while the process works on the
 * run and released by the kernel when it dies, however it dies: a live
 * owner is detected, not guessed from a timestamp. Record locks are not
 * inherited by forked children, so an action's child never holds it.
 * Closing any descriptor of the lock file releases a process's lock, so
 * the owner must never probe its own run. */
#ifndef RBK_OWNER_H
#define RBK_OWNER_H

#include <stdint.h>

#include "base/err.h"

/* Take ownership of run. Returns 0 with *fd, 1 when another live process
 * owns it (*pid set), -1 with err. */
int rbk_owner_take(const char *home, int64_t run, int *fd, int64_t *pid, rbk_err *err);
void rbk_owner_release(int fd);
/* The same for the one scheduler of a store (HOME/owners/scheduler.lock). */
int rbk_owner_take_scheduler(const char *home, int *fd, int64_t *pid, rbk_err *err);
/* 1 when a live process owns run (*pid set), 0 when none, -1 on error. */
int rbk_owner_probe(const char *home, int64_t run, int64_t *pid, rbk_err *err);

#endif
