/* lease: claim, renew from the waiting places, release (lease.h). */
#include "exec/lease.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/mem.h"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *rbk_lease_executor(void)
{
	static char name[160];
	static pid_t for_pid;
	/* Started by an agent that reserved the run under this name. */
	const char *given = getenv("RBK_EXECUTOR");
	if (given && *given && strlen(given) < sizeof name)
		return given;
	if (for_pid != getpid()) {
		char host[64] = "localhost";
		gethostname(host, sizeof host - 1);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(name, sizeof name, "%s/%ld/%lld", host, (long)getpid(),
			 (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
		for_pid = getpid();
	}
	return name;
}

bool rbk_lease_owner_gone(const char *owner)
{
	char host[64] = "localhost";
	gethostname(host, sizeof host - 1);
	size_t hl = strlen(host);
	if (strncmp(owner, host, hl) != 0 || owner[hl] != '/')
		return false;
	long pid = strtol(owner + hl + 1, NULL, 10);
	return pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

int rbk_lease_claim(rbk_lease *l, rbk_store *s, int64_t run, int64_t ms, bool force, rbk_err *err)
{
	memset(l, 0, sizeof *l);
	l->store = s;
	l->run = run;
	l->ms = ms > 0 ? ms : RBK_LEASE_DEFAULT_MS;
	int64_t start = mono_ms();
	int rc = rbk_store_claim(s, run, rbk_lease_executor(), l->ms, force, &l->epoch, err);
	if (rc != 0)
		return rc;
	l->owner = rbk_xstrdup(rbk_lease_executor());
	l->held = true;
	/* Counted from before the claim: the store's lease ends no earlier. */
	l->held_until = start + l->ms;
	l->renew_at = start + l->ms / 3;
	rbk_store_fence(s, run, l->epoch);
	return 0;
}

bool rbk_lease_tick(rbk_lease *l)
{
	if (!l->held || l->lost)
		return !l->lost;
	int64_t now = mono_ms();
	if (now < l->renew_at)
		return true;
	rbk_err e = {0};
	int rc = rbk_store_renew(l->store, l->run, l->owner, l->epoch, l->ms, &e);
	if (rc == 0) {
		l->held_until = now + l->ms;
		l->renew_at = now + l->ms / 3;
		return true;
	}
	if (rc == 1 || now >= l->held_until) {
		/* Taken over, or unprovable: another executor may own it now. */
		l->lost = true;
		return false;
	}
	l->renew_at = now + 1000; /* the store is away: try again soon */
	return true;
}

void rbk_lease_release(rbk_lease *l)
{
	if (!l->store)
		return;
	if (l->held && !l->lost) {
		rbk_err e = {0};
		rbk_store_release(l->store, l->run, l->epoch, &e);
	}
	rbk_store_fence(l->store, 0, 0);
	rbk_free(l->owner);
	memset(l, 0, sizeof *l);
}
