/* dirlist: the files of a search path, in an order that does not depend on
 * the file system (plugins, runbooks for the scheduler). */
#ifndef RBK_DIRLIST_H
#define RBK_DIRLIST_H

#include <stdbool.h>

#include "base/err.h"

/* For each directory of the ':'-separated path, in path order, call
 * fn(ctx, dir, name) for every entry whose name accept keeps, names sorted.
 * Directories that cannot be opened are skipped. */
void rbk_dir_each(const char *path, bool (*accept)(const char *name),
		  void (*fn)(void *ctx, const char *dir, const char *name), void *ctx);

/* mkdir -p dir, each new directory mode 0700; -1 with err (naming dir and
 * the part that failed) when it cannot be made or is not a directory. */
int rbk_mkdir_p(const char *dir, rbk_err *err);

#endif
