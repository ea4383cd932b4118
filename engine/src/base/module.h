/* module: parts of the engine built as shared objects (the PostgreSQL store,
 * git provenance) and loaded the first time they are needed, so that a
 * command that does not use them does not pay for loading their libraries
 * (libpq, libgit2 and theirs are most of a bare start's cost).
 *
 * A module NAME is the file rbk-NAME.so, looked for in RBK_MODULE_PATH
 * (':'-separated) when set, else next to the program: EXE_DIR/modules,
 * EXE_DIR/../modules, EXE_DIR/../lib/rbk/modules. It is loaded once per
 * process and never unloaded; its code calls the engine's own functions
 * (the program exports them). */
#ifndef RBK_MODULE_H
#define RBK_MODULE_H

#include "base/err.h"

/* A search path for the program's companion files: the value of env when
 * set and not empty, else EXE_DIR/kind:EXE_DIR/../kind:EXE_DIR/../lib/rbk/kind
 * (./kind when the program's file cannot be found). Freed by the caller. */
char *rbk_module_search_path(const char *env, const char *kind);

/* The address of symbol in module name, loading the module if need be;
 * NULL with err (err->code RBK_ERR_GENERIC) naming what is missing. what
 * names, for messages, what the module is for ("the PostgreSQL store"). */
void *rbk_module_sym(const char *name, const char *what, const char *symbol, rbk_err *err);

#endif
