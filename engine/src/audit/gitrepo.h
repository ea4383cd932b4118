/* gitrepo: the libgit2 half of provenance (provenance.h), built as the
 * module rbk-gitrepo.so (base/module.h) so that only the commands that read
 * or write a git repository load libgit2. Called through provenance.c
 * only; each function does what its rbk_prov_ twin says. */
#ifndef RBK_GITREPO_H
#define RBK_GITREPO_H

#include <stdint.h>

#include "base/err.h"
#include "lang/value.h"

void rbk_gitrepo_facts(const char *file, rbk_val *out);
int rbk_gitrepo_seal(const char *dir, int64_t seq, const char *hash, const char *actor, char **commit, rbk_err *err);
int rbk_gitrepo_last_seal(const char *dir, int64_t *seq, char hash[65], rbk_err *err);

#endif
