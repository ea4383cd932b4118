/* params: bind a run's params to their declarations (format.md "Params").
 *
 * Sources, highest precedence first: values given as text (rbk run
 * -p name=value), preset typed values (a schedule entry's params, a call's
 * rendered with), the environment variable named by `env:`, the default.
 * Every value is checked (type, enum values, min, max, whole-value pattern)
 * before anything runs. Durations become integers of milliseconds. */
#ifndef RBK_PARAMS_H
#define RBK_PARAMS_H

#include "base/err.h"
#include "lang/mask.h"
#include "runbook/model.h"
#include "lang/value.h"

typedef struct {
	const char *name;
	const char *value; /* as typed on the command line */
} rbk_param_arg;

/* Parse "name=value" (as given to -p). Returns 0, or -1 with err. The
 * result borrows from text. */
int rbk_params_parse_arg(const char *text, rbk_param_arg *out, char *namebuf, size_t namelen, rbk_err *err);

/* Bind every declared param. preset: a map value or NULL. On success *out
 * is a map of typed values and every secret's value is added to mask (may
 * be NULL). Returns 0, or -1 with the first problem in err. */
int rbk_params_bind(const rbk_runbook *rb, const rbk_param_arg *args, size_t nargs, const rbk_val *preset,
		    rbk_val *out, rbk_mask *mask, rbk_err *err);

/* The map of params as it may be recorded: secrets replaced by "***".
 * Caller frees. */
rbk_val rbk_params_public(const rbk_runbook *rb, const rbk_val *bound);

#endif
