/* provenance: where a runbook file came from, for the audit record
 * (libgit2's part is the module gitrepo.h, loaded when first needed).
 *
 * When the file is in a git work tree: the commit of HEAD, the file's path
 * in the repository, and whether the file differs from that commit (or is
 * not tracked at all). Outside a work tree: nothing. */
#ifndef RBK_PROVENANCE_H
#define RBK_PROVENANCE_H

#include <stdint.h>

#include "base/err.h"
#include "lang/value.h"

/* Add "git": {commit, path, dirty, tracked, branch} to map out when file
 * is in a git work tree. Never fails a run: problems are left out. home:
 * the state directory, where the facts are cached (HOME/cache), or NULL. */
void rbk_prov_git(const char *file, const char *home, rbk_val *out);

/* Commit a seal of the chain head (seq, hash) into the git repository at
 * dir (created when absent): the file SEAL_FILE holds "seq N\nhash H\n",
 * committed on HEAD. Returns 0 with *commit (fresh hex), or -1 with err. */
#define RBK_SEAL_FILE "rbk-chain-seal"
int rbk_prov_seal(const char *dir, int64_t seq, const char *hash, const char *actor, char **commit, rbk_err *err);
/* The seal at HEAD of dir: 0 with *seq and hash, 1 when there is none, -1 with err. */
int rbk_prov_last_seal(const char *dir, int64_t *seq, char hash[65], rbk_err *err);

#endif
