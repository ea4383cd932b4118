/* render: node -> value, rendering templates. */
#include "lang/render.h"
#include "base/mem.h"
#include "lang/tmpl.h"

#include <string.h>

int rbk_render(const rbk_node *n, const rbk_eval_env *env, rbk_val *out, rbk_pos *where, rbk_err *err)
{
	switch (n->t) {
	case RBK_N_NULL: *out = rbk_val_null(); return 0;
	case RBK_N_BOOL: *out = rbk_val_bool(n->b); return 0;
	case RBK_N_INT: *out = rbk_val_int(n->i); return 0;
	case RBK_N_NUM: *out = rbk_val_num(n->n); return 0;
	case RBK_N_STR: {
		if (!rbk_tmpl_has_expr(n->text)) {
			*out = rbk_val_strn(n->text, n->len);
			return 0;
		}
		rbk_tmpl *t = NULL;
		int rc = rbk_tmpl_parse(&t, n->text, err);
		if (rc == 0 && !env) {
			rbk_err_set(err, 0, "template outside a run");
			rc = -1;
		}
		if (rc == 0)
			rc = rbk_tmpl_render(t, env, out, err);
		rbk_tmpl_free(t);
		if (rc < 0 && where)
			*where = rbk_model_place(n, err ? err->pos : 0);
		return rc;
	}
	case RBK_N_SEQ: {
		rbk_val l = rbk_val_list();
		for (size_t i = 0; i < n->count; i++) {
			rbk_val v;
			if (rbk_render(n->vals[i], env, &v, where, err) < 0) {
				rbk_val_free(&l);
				return -1;
			}
			rbk_val_list_push(&l, v);
		}
		*out = l;
		return 0;
	}
	case RBK_N_MAP: {
		rbk_val m = rbk_val_map();
		for (size_t i = 0; i < n->count; i++) {
			rbk_val v;
			if (rbk_render(n->vals[i], env, &v, where, err) < 0) {
				rbk_val_free(&m);
				return -1;
			}
			rbk_val_map_set(&m, n->keys[i]->text, v);
		}
		*out = m;
		return 0;
	}
	}
	*out = rbk_val_null();
	return 0;
}
