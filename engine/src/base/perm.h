/* perm: whether a file or directory could be changed by anyone, for what
 * rbk refuses to trust then: a store (store/sqlite.c) and plugin code
 * (exec/registry.c). */
#ifndef RBK_PERM_H
#define RBK_PERM_H

/* The first of paths (NULL-terminated) that exists and that other users
 * may write, with its permission bits in *mode; NULL when there is none. */
const char *rbk_perm_open_to_all(const char *const *paths, unsigned *mode);

#endif
