/* graph: a runbook's machine as a picture, in Graphviz DOT or Mermaid.
 * Plain edges solid, guarded edges labelled with their guard, failure and
 * rollback edges dashed and red, the start marked by an entry point and the
 * end states by their shape and colour. */
#ifndef RBK_GRAPH_H
#define RBK_GRAPH_H

#include <stdio.h>

#include "runbook/model.h"

typedef enum { RBK_GRAPH_DOT, RBK_GRAPH_MERMAID, RBK_GRAPH_SVG } rbk_graph_format;

void rbk_graph_write(const rbk_runbook *rb, rbk_graph_format fmt, FILE *out);

/* DOT source drawn as SVG by Graphviz's `dot` (its XML prolog dropped, for
 * inline use); NULL when dot is missing or fails. Caller frees. */
char *rbk_graph_svg(const char *dot, size_t len);

#endif
