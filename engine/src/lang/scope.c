/* scope: name lookup over a run's maps. */
#include "lang/scope.h"
#include "base/mem.h"

#include <string.h>

static int walk_name(const rbk_val *v, const char *const *segs, size_t n, size_t from, rbk_val *out, rbk_err *err)
{
	bool secret = false; /* a value inside a secret is a secret */
	for (size_t i = from; i < n; i++) {
		secret |= v && v->secret;
		const rbk_val *up = v;
		v = v && v->t == RBK_V_MAP ? rbk_val_map_get(v, segs[i]) : NULL;
		if (!v) {
			rbk_buf b = {0};
			size_t prefix = 0;
			for (size_t j = 0; j < n; j++) {
				rbk_buf_printf(&b, "%s%s", j ? "." : "", segs[j]);
				if (j + 1 == i)
					prefix = b.len;
			}
			if (i > from && up && up->t != RBK_V_MAP) /* inside a value: say where the path stops */
				rbk_err_set(err, 0, "no value at '%s': '%.*s' is a %s, not a map", b.s, (int)prefix, b.s,
					    rbk_val_type_name(up->t));
			else if (i > from)
				rbk_err_set(err, 0, "no value at '%s': '%.*s' has no key '%s'", b.s, (int)prefix, b.s, segs[i]);
			else
				rbk_err_set(err, 0, "unknown name '%s'", b.s);
			if (err)
				err->code = RBK_ERR_NONAME;
			rbk_buf_free(&b);
			return -1;
		}
	}
	*out = rbk_val_copy(v);
	out->secret |= secret;
	return 0;
}

static int lookup(void *ctx, const char *const *segs, size_t n, rbk_val *out, rbk_err *err)
{
	const rbk_scope *sc = ctx;
	const char *root = segs[0];
	if (!strcmp(root, "params")) {
		int rc = walk_name(sc->params, segs, n, 1, out, err);
		if (rc == 0 && n == 2 && out->t == RBK_V_INT && sc->param_is_duration &&
		    sc->param_is_duration(sc->defn, segs[1]))
			out->t = RBK_V_DUR; /* the same milliseconds */
		return rc;
	}
	if (!strcmp(root, "vars"))
		return walk_name(sc->vars, segs, n, 1, out, err);
	if (!strcmp(root, "steps")) {
		int rc = walk_name(sc->steps, segs, n, 1, out, err);
		if (rc == 0 && n == 3 && out->t == RBK_V_INT && !strcmp(segs[2], "duration_ms"))
			out->t = RBK_V_DUR;
		return rc;
	}
	if (!strcmp(root, "run")) {
		rbk_val m = rbk_val_map();
		rbk_val_map_set(&m, "id", rbk_val_int(sc->run_id));
		rbk_val_map_set(&m, "name", rbk_val_str(sc->runbook ? sc->runbook : ""));
		rbk_val_map_set(&m, "actor", rbk_val_str(sc->actor ? sc->actor : ""));
		rbk_val_map_set(&m, "dry_run", rbk_val_bool(sc->dry_run));
		for (size_t i = 0; sc->notice && sc->notice->t == RBK_V_MAP && i < sc->notice->u.map.n; i++)
			rbk_val_map_set(&m, sc->notice->u.map.keys[i], rbk_val_copy(&sc->notice->u.map.vals[i]));
		int rc = walk_name(&m, segs, n, 1, out, err);
		rbk_val_free(&m);
		return rc;
	}
	return walk_name(NULL, segs, n, 0, out, err);
}

static void note_secret(void *ctx, const rbk_val *v) { rbk_mask_add_val(((const rbk_scope *)ctx)->mask, v); }

static int64_t fixed_now(void *ctx) { return ((const rbk_scope *)ctx)->now_s; }

rbk_eval_env rbk_scope_env(const rbk_scope *sc)
{
	return (rbk_eval_env){lookup, (void *)sc, NULL, sc->now_s ? fixed_now : NULL, sc->mask ? note_secret : NULL};
}
