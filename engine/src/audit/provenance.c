/* provenance: where a runbook came from, and the chain's seals in git
 * (provenance.h). libgit2 does the work in the module rbk-gitrepo.so,
 * loaded only for a file in a work tree or a seal directory. */
#include "audit/provenance.h"
#include "audit/gitrepo.h"
#include "base/module.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MODULE "gitrepo"
#define WHAT "git provenance"
#define FN(f, err) ((__typeof__(&rbk_gitrepo_##f))rbk_module_sym(MODULE, WHAT, "rbk_gitrepo_" #f, err))

/* True when a .git (directory or file) sits in dir or above: a cheap test
 * that spares libgit2's start-up (it reads the TLS certificate bundle) for
 * runbooks outside a work tree. */
static bool in_work_tree(const char *abs)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", abs);
	for (char *slash; (slash = strrchr(dir, '/'));) {
		*slash = '\0';
		char probe[PATH_MAX + 8];
		snprintf(probe, sizeof probe, "%s/.git", dir);
		struct stat st;
		if (stat(probe, &st) == 0)
			return true;
	}
	return false;
}

void rbk_prov_git(const char *file, rbk_val *out)
{
	char abs[PATH_MAX];
	if (!realpath(file, abs) || !in_work_tree(abs))
		return;
	rbk_err e = {0};
	__typeof__(&rbk_gitrepo_facts) facts = FN(facts, &e);
	if (facts) {
		facts(file, out);
		return;
	}
	/* Said in the record rather than left out: an auditor sees why. */
	rbk_val g = rbk_val_map();
	rbk_val_map_set(&g, "unavailable", rbk_val_str(e.msg));
	rbk_val_map_set(out, "git", g);
}

int rbk_prov_seal(const char *dir, int64_t seq, const char *hash, const char *actor, char **commit, rbk_err *err)
{
	__typeof__(&rbk_gitrepo_seal) seal = FN(seal, err);
	return seal ? seal(dir, seq, hash, actor, commit, err) : -1;
}

int rbk_prov_last_seal(const char *dir, int64_t *seq, char hash[65], rbk_err *err)
{
	__typeof__(&rbk_gitrepo_last_seal) last = FN(last_seal, err);
	return last ? last(dir, seq, hash, err) : -1;
}
