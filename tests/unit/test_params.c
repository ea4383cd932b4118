/* params and mask: binding a run's params, and keeping secrets out of text. */
#include "runbook/load.h"
#include "lang/mask.h"
#include "runbook/model.h"
#include "runbook/params.h"
#include "t.h"

#include <stdarg.h>
#include <stdlib.h>

static const char RB[] = "rbk: 1\nname: p\nparams:\n"
			 "  n: {type: int, default: 3, min: 1, max: 10}\n"
			 "  ratio: {type: number, default: 0.5}\n"
			 "  on: {type: bool, default: false}\n"
			 "  wait: {type: duration, default: 30s}\n"
			 "  mode: {type: enum, values: [paper, live], default: paper}\n"
			 "  tag: {type: string, pattern: \"v[0-9]+\", default: v1}\n"
			 "  token: {type: string, secret: true, env: RBK_TEST_TOKEN}\n"
			 "  who: {type: string, required: true}\n"
			 "start: a\nstates:\n  a: {end: success}\n";

typedef struct {
	rbk_doc *doc;
	rbk_runbook *rb;
	rbk_val v;
	rbk_mask mask;
	rbk_err err;
	int rc;
} fx;

/* Bind with -p args "k=v"... (NULL-terminated) and an optional preset. */
static fx bind(const rbk_val *preset, ...)
{
	fx f = {0};
	rbk_diag d = {0};
	if (rbk_load_bytes(&f.doc, "p.yaml", RB, sizeof RB - 1, &d) || rbk_model_build(&f.rb, f.doc, &d))
		abort();
	rbk_diag_free(&d);
	rbk_param_arg args[16];
	char names[16][64];
	size_t n = 0;
	va_list ap;
	va_start(ap, preset);
	for (const char *a; (a = va_arg(ap, const char *)) && n < 16; n++)
		if (rbk_params_parse_arg(a, &args[n], names[n], sizeof names[n], &f.err) < 0)
			abort();
	va_end(ap);
	f.rc = rbk_params_bind(f.rb, args, n, preset, &f.v, &f.mask, &f.err);
	return f;
}

static void done(fx *f)
{
	if (f->rc == 0)
		rbk_val_free(&f->v);
	rbk_mask_free(&f->mask);
	rbk_model_free(f->rb);
	rbk_doc_free(f->doc);
}

static const rbk_val *get(fx *f, const char *k) { return rbk_val_map_get(&f->v, k); }

static void test_defaults_and_types(void)
{
	unsetenv("RBK_TEST_TOKEN");
	fx f = bind(NULL, "who=ana", NULL);
	T_CHECK(f.rc == 0);
	T_CHECK(get(&f, "n")->t == RBK_V_INT && get(&f, "n")->u.i == 3);
	T_CHECK(get(&f, "ratio")->t == RBK_V_NUM && get(&f, "ratio")->u.n == 0.5);
	T_CHECK(get(&f, "on")->t == RBK_V_BOOL && !get(&f, "on")->u.b);
	T_CHECK(get(&f, "wait")->t == RBK_V_INT && get(&f, "wait")->u.i == 30000); /* durations are milliseconds */
	T_STREQ(get(&f, "mode")->u.s.s, "paper");
	T_CHECK(get(&f, "token")->t == RBK_V_NULL); /* optional: has env, unset */
	T_STREQ(get(&f, "who")->u.s.s, "ana");
	done(&f);
}

static void test_command_line_values(void)
{
	fx f = bind(NULL, "who=x", "n=7", "ratio=2", "on=true", "wait=2m", "mode=live", "tag=v42", NULL);
	T_CHECK(f.rc == 0);
	T_CHECK(get(&f, "n")->u.i == 7);
	T_CHECK(get(&f, "ratio")->t == RBK_V_NUM && get(&f, "ratio")->u.n == 2);
	T_CHECK(get(&f, "on")->u.b);
	T_CHECK(get(&f, "wait")->u.i == 120000);
	T_STREQ(get(&f, "mode")->u.s.s, "live");
	T_STREQ(get(&f, "tag")->u.s.s, "v42");
	done(&f);
}

#define BAD(want, ...)                                                                                        \
	do {                                                                                                 \
		fx f_ = bind(NULL, __VA_ARGS__, NULL);                                                       \
		T_CHECK(f_.rc == -1);                                                                        \
		T_STREQ(f_.err.msg, want);                                                                    \
		done(&f_);                                                                                   \
	} while (0)

static void test_bad_values(void)
{
	BAD("param 'n' (-p): 'seven' is not an int", "who=x", "n=seven");
	BAD("param 'n' (-p): '7.5' is not an int", "who=x", "n=7.5");
	BAD("param 'n' (-p): 0 is below the minimum 1", "who=x", "n=0");
	BAD("param 'n' (-p): 11 is above the maximum 10", "who=x", "n=11");
	BAD("param 'ratio' (-p): 'half' is not a number", "who=x", "ratio=half");
	BAD("param 'on' (-p): 'yes' is not a bool", "who=x", "on=yes");
	BAD("param 'wait' (-p): '30 seconds' is not a duration such as 30s", "who=x", "wait=30 seconds");
	BAD("param 'mode' (-p): 'prod' is not one of paper, live", "who=x", "mode=prod");
	BAD("param 'tag' (-p): 'v1x' does not match the pattern v[0-9]+", "who=x", "tag=v1x");
	BAD("param 'who' is required: give -p who=VALUE", "n=2");
	BAD("runbook 'p' has no param 'nn' (did you mean 'n'?)", "who=x", "nn=2");
	BAD("runbook 'p' has no param 'colour'", "who=x", "colour=red");
}

static void test_parse_arg(void)
{
	rbk_param_arg a;
	char name[8];
	rbk_err e;
	T_CHECK(rbk_params_parse_arg("k=v=w", &a, name, sizeof name, &e) == 0);
	T_STREQ(a.name, "k");
	T_STREQ(a.value, "v=w");
	T_CHECK(rbk_params_parse_arg("k=", &a, name, sizeof name, &e) == 0 && !*a.value);
	T_CHECK(rbk_params_parse_arg("novalue", &a, name, sizeof name, &e) == -1);
	T_STREQ(e.msg, "-p 'novalue': write name=value");
	T_CHECK(rbk_params_parse_arg("=v", &a, name, sizeof name, &e) == -1);
	T_CHECK(rbk_params_parse_arg("waytoolongname=v", &a, name, sizeof name, &e) == -1);
}

static void test_precedence(void)
{
	setenv("RBK_TEST_TOKEN", "from-env", 1);
	rbk_val preset = rbk_val_map();
	rbk_val_map_set(&preset, "n", rbk_val_int(5));
	rbk_val_map_set(&preset, "who", rbk_val_str("preset"));
	rbk_val_map_set(&preset, "wait", rbk_val_str("1h"));
	fx f = bind(&preset, "n=8", NULL);
	T_CHECK(f.rc == 0);
	T_CHECK(get(&f, "n")->u.i == 8);          /* -p beats preset */
	T_STREQ(get(&f, "who")->u.s.s, "preset"); /* preset beats default */
	T_CHECK(get(&f, "wait")->u.i == 3600000);
	T_STREQ(get(&f, "token")->u.s.s, "from-env"); /* env beats nothing */
	done(&f);
	rbk_val_map_set(&preset, "n", rbk_val_str("5"));
	f = bind(&preset, NULL);
	T_CHECK(f.rc == -1);
	T_STREQ(f.err.msg, "param 'n' (given): string '5' is not an int");
	done(&f);
	rbk_val_free(&preset);
	unsetenv("RBK_TEST_TOKEN");
}

static void test_secrets_masked(void)
{
	setenv("RBK_TEST_TOKEN", "s3cr3t-value", 1);
	fx f = bind(NULL, "who=x", NULL);
	T_CHECK(f.rc == 0);
	T_CHECK(f.mask.n == 1);
	size_t len;
	const char text[] = "auth s3cr3t-value ok s3cr3t-value";
	char *m = rbk_mask_apply(&f.mask, text, sizeof text - 1, &len);
	T_STREQ(m, "auth *** ok ***");
	T_CHECK(len == strlen(m));
	rbk_free(m);
	rbk_val pub = rbk_params_public(f.rb, &f.v);
	T_STREQ(rbk_val_map_get(&pub, "token")->u.s.s, "***");
	T_STREQ(rbk_val_map_get(&pub, "who")->u.s.s, "x");
	rbk_val_free(&pub);
	done(&f);
	/* A secret that fails its check is not echoed. */
	fx g = bind(NULL, "who=x", "token=", NULL);
	T_CHECK(g.rc == 0 && g.mask.n == 0); /* an empty secret masks nothing */
	done(&g);
	unsetenv("RBK_TEST_TOKEN");
}

static void test_mask_overlaps(void)
{
	rbk_mask m = {0};
	rbk_mask_add(&m, "abc");
	rbk_mask_add(&m, "abcdef");
	rbk_mask_add(&m, "abc"); /* once */
	rbk_mask_add(&m, "");
	T_CHECK(m.n == 2);
	char *s = rbk_mask_apply(&m, "xabcdefy abc ab", 15, NULL);
	T_STREQ(s, "x***y *** ab"); /* the longer secret is masked whole */
	rbk_free(s);
	s = rbk_mask_apply(&m, "a\0abc", 5, NULL); /* binary-safe */
	T_CHECK(!memcmp(s, "a\0***", 5));
	rbk_free(s);
	rbk_mask_free(&m);
	s = rbk_mask_apply(NULL, "plain", 5, NULL);
	T_STREQ(s, "plain");
	rbk_free(s);
}

int main(void)
{
	T_RUN(test_defaults_and_types);
	T_RUN(test_command_line_values);
	T_RUN(test_bad_values);
	T_RUN(test_parse_arg);
	T_RUN(test_precedence);
	T_RUN(test_secrets_masked);
	T_RUN(test_mask_overlaps);
	return T_DONE();
}
