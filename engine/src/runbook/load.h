/* load: a YAML file -> a document tree (rbk_doc). The only module that
 * includes yaml.h.
 *
 * Limits keep hostile files harmless: a file larger than RBK_LOAD_MAX_BYTES
 * is refused, aliases are expanded as copies but the whole tree may not
 * exceed RBK_LOAD_MAX_NODES nodes (no billion-laughs blow-up), and nesting
 * deeper than RBK_LOAD_MAX_DEPTH is refused. Plain scalars are typed by the
 * YAML 1.2 core schema (so `no` and `on` stay strings); duplicate keys are
 * errors. */
#ifndef RBK_LOAD_H
#define RBK_LOAD_H

#include "runbook/diag.h"
#include "runbook/node.h"

#define RBK_LOAD_MAX_BYTES (1024 * 1024)
#define RBK_LOAD_MAX_NODES 100000
#define RBK_LOAD_MAX_DEPTH 64

/* Load path. Returns 0 with *out (free with rbk_doc_free), or -1 after
 * adding errors to d. */
int rbk_load_file(rbk_doc **out, const char *path, rbk_diag *d);
/* Same, from bytes already in memory (name is used in messages). */
int rbk_load_bytes(rbk_doc **out, const char *name, const char *bytes, size_t size, rbk_diag *d);
void rbk_doc_free(rbk_doc *doc);

#endif
