/* node: the document tree's small helpers. */
#include "runbook/node.h"
#include "base/mem.h"

#include <string.h>

const char *rbk_node_type_name(const rbk_node *n)
{
	switch (n->t) {
	case RBK_N_NULL: return "null";
	case RBK_N_BOOL: return "a bool";
	case RBK_N_INT: return "an integer";
	case RBK_N_NUM: return "a number";
	case RBK_N_STR: return "a string";
	case RBK_N_SEQ: return "a list";
	case RBK_N_MAP: return "a map";
	}
	return "?";
}

rbk_node *rbk_node_get(const rbk_node *map, const char *key)
{
	if (!map || map->t != RBK_N_MAP)
		return NULL;
	for (size_t i = 0; i < map->count; i++)
		if (!strcmp(map->keys[i]->text, key))
			return map->vals[i];
	return NULL;
}

void rbk_node_free(rbk_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->count; i++) {
		if (n->keys)
			rbk_node_free(n->keys[i]);
		rbk_node_free(n->vals[i]);
	}
	rbk_free(n->keys);
	rbk_free(n->vals);
	rbk_free(n->text);
	rbk_free(n);
}

rbk_node *rbk_node_copy(const rbk_node *n)
{
	rbk_node *c = rbk_xmalloc(sizeof *c);
	*c = *n;
	c->text = n->text ? rbk_xstrndup(n->text, n->len) : NULL;
	c->keys = c->vals = NULL;
	if (n->count) {
		c->vals = rbk_xmalloc(n->count * sizeof *c->vals);
		if (n->keys)
			c->keys = rbk_xmalloc(n->count * sizeof *c->keys);
		for (size_t i = 0; i < n->count; i++) {
			c->vals[i] = rbk_node_copy(n->vals[i]);
			if (n->keys)
				c->keys[i] = rbk_node_copy(n->keys[i]);
		}
	}
	return c;
}
