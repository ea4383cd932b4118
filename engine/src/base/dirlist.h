/* dirlist: the files of a search path, in an order that does not depend on
 * the file system (plugins, runbooks for the scheduler). */
#ifndef RBK_DIRLIST_H
#define RBK_DIRLIST_H

#include <stdbool.h>

/* For each directory of the ':'-separated path, in path order, call
 * fn(ctx, dir, name) for every entry whose name accept keeps, names sorted.
 * Directories that cannot be opened are skipped. */
void rbk_dir_each(const char *path, bool (*accept)(const char *name),
		  void (*fn)(void *ctx, const char *dir, const char *name), void *ctx);

#endif
