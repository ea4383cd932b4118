/* json: JSON text <-> values. The only module that includes jansson. */
#ifndef RBK_JSON_H
#define RBK_JSON_H

#include <stddef.h>

#include "base/err.h"
#include "base/mem.h"
#include "lang/value.h"

int rbk_json_parse(rbk_val *out, const char *text, size_t len, rbk_err *err);
/* Walk path ("$", "$.a.b", "$.items[0].name", "$['odd key']") in the JSON
 * text. An absent member gives null; text that is not JSON or a malformed
 * path is an error. */
int rbk_json_path(rbk_val *out, const char *text, size_t len, const char *path, rbk_err *err);
/* Compact JSON with keys in insertion order; regexes as "/src/flags".
 * Caller frees. */
char *rbk_json_encode(const rbk_val *v);
/* The same, appended to b. */
void rbk_json_encode_to(rbk_buf *b, const rbk_val *v);

#endif
