/* node: a YAML document as a tree whose every node knows its line and
 * column. Built by the loader, read by the model; aliases are already
 * expanded (copies), so the tree is a plain tree. */
#ifndef RBK_NODE_H
#define RBK_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { RBK_N_NULL, RBK_N_BOOL, RBK_N_INT, RBK_N_NUM, RBK_N_STR, RBK_N_SEQ, RBK_N_MAP } rbk_ntype;

/* How a scalar was written; quoted and block scalars are always strings. */
typedef enum { RBK_STYLE_PLAIN, RBK_STYLE_QUOTED, RBK_STYLE_BLOCK } rbk_nstyle;

typedef struct rbk_node rbk_node;
struct rbk_node {
	rbk_ntype t;
	int line, col; /* 1-based place of the node's first character */
	rbk_nstyle style;
	int indent; /* block scalars: columns of indentation of the content */
	char *text; /* scalars: the value as text (after YAML unescaping) */
	size_t len;
	bool b;
	int64_t i;
	double n;
	size_t count;    /* SEQ: items; MAP: pairs */
	rbk_node **keys; /* MAP: scalar key nodes */
	rbk_node **vals; /* MAP: values; SEQ: items */
};

typedef struct {
	char *file;   /* as given by the caller */
	char *bytes;  /* the file's exact bytes, NUL-terminated */
	size_t size;
	rbk_node *root;
} rbk_doc;

/* The name of a node's type, for messages: "a string", "a map". */
const char *rbk_node_type_name(const rbk_node *n);
/* Borrowed value of key in a map node, or NULL. */
rbk_node *rbk_node_get(const rbk_node *map, const char *key);
void rbk_node_free(rbk_node *n);
rbk_node *rbk_node_copy(const rbk_node *n);

#endif
