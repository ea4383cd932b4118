/* Fuzz target: a YAML file through the loader, the model and the checker. */
#include "runbook/check.h"
#include "runbook/load.h"
#include "runbook/model.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rbk_diag d = {0};
	rbk_doc *doc = NULL;
	rbk_runbook *rb = NULL;
	if (rbk_load_bytes(&doc, "fuzz.yaml", (const char *)data, size, &d) == 0 && rbk_model_build(&rb, doc, &d) == 0) {
		rbk_check_opts opts = {NULL, NULL};
		rbk_check(rb, &opts, &d);
	}
	rbk_model_free(rb);
	rbk_doc_free(doc);
	rbk_diag_free(&d);
	return 0;
}
