/* Fuzz target: a template (text with {{ }} parts), parsed and rendered. */
#include "base/mem.h"
#include "lang/tmpl.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (memchr(data, '\0', size))
		return 0; /* templates are YAML strings: no NUL inside */
	char *text = rbk_xstrndup((const char *)data, size);
	rbk_val root = rbk_val_map(), params = rbk_val_map();
	rbk_val_map_set(&params, "x", rbk_val_int(1));
	rbk_val_map_set(&params, "l", rbk_val_list());
	rbk_val_map_set(&root, "params", params);
	rbk_tmpl *t = NULL;
	rbk_err err = {0};
	if (rbk_tmpl_parse(&t, text, &err) == 0) {
		rbk_eval_env env = {NULL, NULL, &root, NULL, NULL};
		rbk_val out;
		if (rbk_tmpl_render(t, &env, &out, &err) == 0)
			rbk_val_free(&out);
		rbk_tmpl_free(t);
	}
	rbk_val_free(&root);
	rbk_free(text);
	return 0;
}
