/* Fuzz target: an expression through the lexer, the parser and the
 * evaluator (names resolve in a small fixed root). */
#include "lang/eval.h"
#include "lang/parse.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rbk_val root = rbk_val_map(), params = rbk_val_map(), steps = rbk_val_map(), s = rbk_val_map();
	rbk_val_map_set(&params, "n", rbk_val_int(5));
	rbk_val_map_set(&params, "name", rbk_val_str("web-1"));
	rbk_val_map_set(&s, "stdout", rbk_val_str("{\"a\": [1, 2, {\"b\": \"x\"}]}\nline2"));
	rbk_val_map_set(&s, "exit_code", rbk_val_int(0));
	rbk_val_map_set(&steps, "s", s);
	rbk_val_map_set(&root, "params", params);
	rbk_val_map_set(&root, "steps", steps);
	rbk_expr *e = NULL;
	rbk_err err = {0};
	if (rbk_parse(&e, (const char *)data, size, &err) == 0) {
		rbk_eval_env env = {NULL, NULL, &root, NULL, NULL};
		rbk_val out;
		if (rbk_eval(e, &env, &out, &err) == 0)
			rbk_val_free(&out);
		rbk_expr_free(e);
	}
	rbk_val_free(&root);
	return 0;
}
