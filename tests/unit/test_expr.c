/* Unit tests of the guard and template language: lexer, parser, evaluator,
 * templates, regexes and JSON. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "lang/eval.h"
#include "lang/json.h"
#include "lang/lex.h"
#include "base/mem.h"
#include "lang/parse.h"
#include "lang/regex.h"
#include "lang/tmpl.h"
#include "lang/value.h"

#include "t.h"

/* ---- fixtures ---- */

static rbk_val root;
static const int64_t NOW = 1000000;

static int64_t fixed_now(void *ctx)
{
	(void)ctx;
	return NOW;
}

static rbk_val parse_json(const char *s)
{
	rbk_val v;
	rbk_err err;
	if (rbk_json_parse(&v, s, strlen(s), &err) < 0) {
		fprintf(stderr, "fixture: %s\n", err.msg);
		abort();
	}
	return v;
}

static void make_root(void)
{
	root = parse_json("{"
			  "\"params\": {\"n\": [1, 2, 3], \"name\": \"web-1\", \"count\": 5,"
			  "  \"dry-run\": true, \"host\": \"Example.COM\", \"m\": {\"a\": 1},"
			  "  \"evil\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\"},"
			  "\"vars\": {\"x\": null, \"ratio\": 2.5},"
			  "\"run\": {\"id\": \"r1\"},"
			  "\"steps\": {\"1st\": {\"status\": \"ok\", \"exit_code\": 0,"
			  "  \"stdout\": \"MT5 disconnect\\nline2\\n\", \"out\": {\"k\": \"v\"}}}"
			  "}");
	/* A JSON document as a step's output, for json(). */
	rbk_val steps_read = rbk_val_map();
	rbk_val_map_set(&steps_read, "stdout",
			rbk_val_str("{\"a\": {\"b\": 1}, \"items\": [{\"name\": \"x\"}, "
				    "{\"name\": \"y\"}], \"odd key\": \"k\"}"));
	rbk_val *steps = (rbk_val *)rbk_val_map_get(&root, "steps");
	rbk_val_map_set(steps, "read", steps_read);
}

static rbk_eval_env env_root(void)
{
	rbk_eval_env env = {NULL, NULL, &root, fixed_now, NULL};
	return env;
}

/* "type:text" of a value, or "error@POS: message". Caller frees. */
static char *describe(int rc, const rbk_val *v, const rbk_err *err)
{
	if (rc < 0)
		return rbk_xasprintf("error@%d: %s", err->pos, err->msg);
	char *text = rbk_val_to_text(v);
	char *s = rbk_xasprintf("%s:%s", rbk_val_type_name(v->t), text);
	rbk_free(text);
	return s;
}

/* Parse and evaluate src against root; describe the outcome. */
static char *run_env(const char *src, const rbk_eval_env *env, rbk_err *err_out)
{
	rbk_expr *e;
	rbk_err err;
	memset(&err, 0, sizeof err);
	rbk_val v = rbk_val_null();
	int rc = rbk_parse(&e, src, strlen(src), &err);
	if (rc == 0) {
		rc = rbk_eval(e, env, &v, &err);
		rbk_expr_free(e);
	}
	char *s = describe(rc, &v, &err);
	rbk_val_free(&v);
	if (err_out)
		*err_out = err;
	return s;
}

static char *run(const char *src)
{
	rbk_eval_env env = env_root();
	return run_env(src, &env, NULL);
}

#define EXPECT(src, want)                                                                      \
	do {                                                                                   \
		char *got_ = run(src);                                                         \
		T_STREQ(got_, want);                                                           \
		rbk_free(got_);                                                                \
	} while (0)

/* The error message starts with prefix, at pos. */
#define EXPECT_ERR(src, pos, prefix)                                                           \
	do {                                                                                   \
		char *got_ = run(src);                                                         \
		char *want_ = rbk_xasprintf("error@%d: %s", pos, prefix);                      \
		if (strncmp(got_, want_, strlen(want_)) != 0)                                  \
			T_STREQ(got_, want_);                                                  \
		rbk_free(got_);                                                                \
		rbk_free(want_);                                                               \
	} while (0)

static char *tmpl_run(const char *text)
{
	rbk_tmpl *t;
	rbk_err err;
	rbk_val v = rbk_val_null();
	rbk_eval_env env = env_root();
	int rc = rbk_tmpl_parse(&t, text, &err);
	if (rc == 0) {
		rc = rbk_tmpl_render(t, &env, &v, &err);
		rbk_tmpl_free(t);
	}
	char *s = describe(rc, &v, &err);
	rbk_val_free(&v);
	return s;
}

#define EXPECT_TMPL(text, want)                                                                \
	do {                                                                                   \
		char *got_ = tmpl_run(text);                                                   \
		T_STREQ(got_, want);                                                           \
		rbk_free(got_);                                                                \
	} while (0)

/* ---- secrets follow the value ---- */

static int heard; /* secret values the evaluation reported */
static void hear(void *ctx, const rbk_val *v)
{
	(void)ctx;
	(void)v;
	heard++;
}

/* src evaluated with params.tok, params.pin and vars.cfg secret: is the
 * result secret? */
static int secret_of(const char *src)
{
	rbk_val r = rbk_val_copy(&root);
	rbk_val *params = (rbk_val *)rbk_val_map_get(&r, "params");
	rbk_val tok = rbk_val_str("Zq0123456789Kp"), pin = rbk_val_int(48213);
	rbk_val_mark_secret(&tok);
	rbk_val_mark_secret(&pin);
	rbk_val_map_set(params, "tok", tok);
	rbk_val_map_set(params, "pin", pin);
	rbk_val cfg = parse_json("{\"limits\": {\"max\": 3}}");
	rbk_val_mark_secret(&cfg);
	rbk_val_map_set((rbk_val *)rbk_val_map_get(&r, "vars"), "cfg", cfg);
	rbk_eval_env env = {NULL, NULL, &r, fixed_now, hear};
	rbk_expr *e;
	rbk_err err = {0};
	rbk_val v = rbk_val_null();
	int got = -1;
	if (rbk_parse(&e, src, strlen(src), &err) == 0) {
		if (rbk_eval(e, &env, &v, &err) == 0)
			got = rbk_val_has_secret(&v);
		rbk_expr_free(e);
	}
	rbk_val_free(&v);
	rbk_val_free(&r);
	return got;
}

static void test_secret_follows_every_operator_and_function(void)
{
	static const char *const derived[] = {
	    "params.tok", "upper(params.tok)", "lower(params.tok)", "trim(params.tok)", "len(params.tok)",
	    "str(params.pin)", "int(str(params.pin))", "num(params.pin)", "params.pin + 1", "params.pin - 1",
	    "params.pin * 2", "params.pin / 2", "params.pin % 7", "-params.pin", "params.tok + 'x'", "'x' + params.tok",
	    "params.tok == 'x'", "params.tok != 'x'", "params.tok < 'x'", "params.tok =~ /Zq/", "params.tok !~ /Zq/",
	    "!(params.tok == 'x')", "params.tok == 'x' || true", "true && params.tok == 'x'",
	    "contains(params.tok, 'Zq')", "starts_with(params.tok, 'Zq')", "ends_with(params.tok, 'Kp')",
	    "capture(params.tok, /Zq([0-9]+)/, 1)", "json('{\"k\":\"' + params.tok + '\"}', '$.k')",
	    "default(vars.x, params.tok)", "default(params.tok, 'y')", "vars.cfg.limits.max", "vars.cfg.limits",
	    "contains(params.n, params.pin)", NULL};
	for (size_t i = 0; derived[i]; i++) {
		int s = secret_of(derived[i]);
		if (s != 1)
			T_STREQ(derived[i], s < 0 ? "(fails)" : "(not secret)");
	}
	static const char *const clean[] = {"params.name", "upper(params.name)", "len(params.n) + 1", "vars.ratio * 2",
					    "true || params.tok == 'x'", NULL};
	for (size_t i = 0; clean[i]; i++)
		if (secret_of(clean[i]) != 0)
			T_STREQ(clean[i], "(secret)");
	heard = 0;
	T_CHECK(secret_of("upper(params.tok) + lower(params.tok)") == 1 && heard == 3); /* upper, lower, + */
}

/* ---- literals ---- */

static void test_literals_numbers(void)
{
	EXPECT("42", "int:42");
	EXPECT("0", "int:0");
	EXPECT("1.5", "number:1.5");
	EXPECT("2e3", "number:2000");
	EXPECT("2.5E-1", "number:0.25");
	EXPECT("9223372036854775807", "int:9223372036854775807");
}

static void test_literal_int_overflow(void)
{
	EXPECT_ERR("9223372036854775808", 0, "number '9223372036854775808' is out of range");
	EXPECT_ERR("1 + 99999999999999999999", 4, "number");
}

static void test_literal_strings(void)
{
	EXPECT("'text'", "string:text");
	EXPECT("\"text\"", "string:text");
	EXPECT("'a\\'b'", "string:a'b");
	EXPECT("\"a\\\"b\"", "string:a\"b");
	EXPECT("'a\\\\b'", "string:a\\b");
	EXPECT("'a\\nb\\tc\\rd'", "string:a\nb\tc\rd");
	EXPECT("'a\\/b'", "string:a/b");
	EXPECT("\"it's\"", "string:it's");
	EXPECT("''", "string:");
}

static void test_literal_string_bad_escape(void)
{
	EXPECT_ERR("'ab\\qc'", 3, "unknown escape '\\q' in string");
}

static void test_literal_keywords(void)
{
	EXPECT("true", "bool:true");
	EXPECT("false", "bool:false");
	EXPECT("null", "null:");
}

static void test_literal_regex(void)
{
	EXPECT("/a+b/i", "regex:/a+b/i");
	EXPECT("/x/", "regex:/x/");
	EXPECT("/a\\/b/", "regex:/a/b/");
	EXPECT("'a/b' =~ /a\\/b/", "bool:true");
	EXPECT("'a1' =~ /a\\d/", "bool:true"); /* other escapes reach PCRE2 as written */
}

static void test_literal_regex_bad_flags(void)
{
	EXPECT_ERR("'a' =~ /a/g", 10, "unknown regex flag 'g'");
	EXPECT_ERR("'a' =~ /a/ii", 11, "duplicate regex flag 'i'");
}

static void test_literal_regex_invalid_pattern(void)
{
	char *got = run("'a' =~ /(a/");
	T_CHECK(strncmp(got, "error@", 6) == 0);
	T_CHECK(strstr(got, "invalid regex") != NULL);
	rbk_free(got);
}

/* ---- operators, precedence, associativity ---- */

static void test_prec_mul_over_add(void)
{
	EXPECT("1+2*3", "int:7");
	EXPECT("1+2*3==7", "bool:true");
	EXPECT("2*3+1", "int:7");
}

static void test_prec_parentheses(void)
{
	EXPECT("(1+2)*3", "int:9");
	EXPECT("((((2))))", "int:2");
	EXPECT("2*(3+4)*2", "int:28");
}

static void test_assoc_left(void)
{
	EXPECT("10-4-3", "int:3");
	EXPECT("100/10/5", "number:2");
	EXPECT("2*3%4", "int:2");
	EXPECT("17%10%4", "int:3");
	EXPECT("'a'+'b'+'c'", "string:abc");
}

static void test_prec_unary(void)
{
	EXPECT("-2*3", "int:-6");
	EXPECT("-(2+3)", "int:-5");
	EXPECT("--2", "int:2");
	EXPECT("2--2", "int:4");
	EXPECT("-1.5", "number:-1.5");
	EXPECT("!false && false", "bool:false"); /* (!false) && false */
	EXPECT("!!true", "bool:true");
	EXPECT("!(1 > 2)", "bool:true");
}

static void test_prec_and_over_or(void)
{
	EXPECT("true || false && false", "bool:true");
	EXPECT("false && true || true", "bool:true");
	EXPECT("(true || false) && false", "bool:false");
}

static void test_prec_comparison_levels(void)
{
	EXPECT("1 + 1 == 2", "bool:true");
	EXPECT("1 < 2 == 2 < 3", "bool:true");
	EXPECT("'ab' =~ /a/ == true", "bool:true");
	EXPECT("1 < 2 && 3 > 2", "bool:true");
	EXPECT("'a' + 'b' =~ /^ab$/", "bool:true");
}

/* Durations: literals, their arithmetic, and a number meeting one as seconds. */
static void test_durations(void)
{
	EXPECT("5m", "duration:5m");
	EXPECT("1h30m", "duration:90m");
	EXPECT("90s", "duration:90s");
	EXPECT("2s500ms", "duration:2500ms");
	EXPECT("0s", "duration:0ms");
	EXPECT("5m + 30s", "duration:330s");
	EXPECT("1h - 90m", "duration:-30m");
	EXPECT("-5m", "duration:-5m");
	EXPECT("5m * 2", "duration:10m");
	EXPECT("2 * 1500ms", "duration:3s");
	EXPECT_ERR("1.5s", 0, "invalid number");
	EXPECT("1m / 4", "duration:15s");
	EXPECT("1h / 30m", "number:2");
	EXPECT("5m > 299s", "bool:true");
	EXPECT("1500ms < 2s", "bool:true");
	EXPECT("60s == 1m", "bool:true");
	/* computed numbers are seconds: now() is 1000000 */
	EXPECT("now() - 999700 > 4m", "bool:true");
	EXPECT("now() - 999700 > 5m", "bool:false");
	EXPECT("now() - 999700 >= 5m", "bool:true");
	EXPECT("now() - 5m", "int:999700");
	EXPECT("params.count + 500ms", "number:5.5");
	EXPECT("params.count == 5s", "bool:true");
	/* a duration kept as text (as vars are recorded) */
	EXPECT("'5m' < 6m", "bool:true");
	EXPECT("seconds(90s)", "int:90");
	EXPECT("seconds(1500ms)", "number:1.5");
	EXPECT("seconds('2m')", "int:120");
	EXPECT("duration('1h30m')", "duration:90m");
	EXPECT("duration(90)", "duration:90s");
	EXPECT("duration(2.5)", "duration:2500ms");
	EXPECT("str(2h) + ' left'", "string:2h left");
	EXPECT("5m", "duration:5m");
	/* a number written without a unit is refused where it meets a duration */
	EXPECT_ERR("5m > 300", 5, "'>': a number without a unit cannot meet a duration (write 2s, 500ms, 5m)");
	EXPECT_ERR("2000 < 2s", 0, "'<': a number without a unit cannot meet a duration");
	EXPECT_ERR("5m + 1", 5, "'+': a number without a unit cannot meet a duration");
	EXPECT_ERR("5m == -3", 6, "'==': a number without a unit cannot meet a duration");
	EXPECT_ERR("5m < 'soon'", 5, "'<' cannot compare duration and string");
	EXPECT_ERR("5m * 2m", 5, "'*' cannot take duration and duration (a duration is scaled by a number)");
	EXPECT_ERR("2 / 5m", 0, "'/' cannot take int and duration");
	EXPECT_ERR("5m + true", 5, "'+' cannot take duration and bool");
	EXPECT_ERR("5m / 0", 5, "division by zero");
	EXPECT_ERR("5m % 2", 0, "'%' needs ints, got duration");
	EXPECT_ERR("int(5m)", 4, "int(): a duration has no plain number: write seconds(d)");
	EXPECT_ERR("duration('soon')", 9, "duration(): 'soon' is not a duration");
	EXPECT_ERR("seconds(3)", 8, "seconds(): needs a duration, got int");
	EXPECT_ERR("5min", 0, "invalid number '5min'");
	EXPECT_ERR("1m1h", 0, "invalid number '1m1h'");
	EXPECT("5m != 300s", "bool:false");
	EXPECT("5m == 'x'", "bool:false");
}

static void test_op_comparisons(void)
{
	EXPECT("1 < 2", "bool:true");
	EXPECT("2 <= 2", "bool:true");
	EXPECT("3 > 2", "bool:true");
	EXPECT("2 >= 3", "bool:false");
	EXPECT("1 < 1.5", "bool:true");
	EXPECT("2.0 >= 2", "bool:true");
	EXPECT("'a' < 'b'", "bool:true");
	EXPECT("'abc' < 'abd'", "bool:true");
	EXPECT("'ab' < 'abc'", "bool:true");
	EXPECT("'b' <= 'a'", "bool:false");
}

static void test_op_comparison_type_errors(void)
{
	EXPECT_ERR("1 < 'a'", 4, "'<' needs two numbers, two durations or two strings, got int and string");
	EXPECT_ERR("null < 1", 0, "'<' needs two numbers, two durations or two strings, got null and int");
	EXPECT_ERR("true >= false", 0, "'>=' needs two numbers, two durations or two strings");
}

static void test_op_equality(void)
{
	EXPECT("1 == 1.0", "bool:true");
	EXPECT("1 == '1'", "bool:false");
	EXPECT("1 != '1'", "bool:true");
	EXPECT("null == null", "bool:true");
	EXPECT("null == false", "bool:false");
	EXPECT("'a' != 'b'", "bool:true");
	EXPECT("params.n == params.n", "bool:true");
	EXPECT("params.n == json('[1,2,3]', '$')", "bool:true");
	EXPECT("params.n == json('[1,2]', '$')", "bool:false");
	EXPECT("params.m == json('{\"a\":1.0}', '$')", "bool:true");
	EXPECT("/a/i == /a/i", "bool:true");
	EXPECT("/a/i == /a/", "bool:false");
	EXPECT("/a/ == 'a'", "bool:false");
}

static void test_op_match(void)
{
	EXPECT("'Hello' =~ /ell/", "bool:true");
	EXPECT("'Hello' =~ /^ell/", "bool:false");
	EXPECT("'Hello' !~ /xyz/", "bool:true");
	EXPECT("'Hello' !~ /H/", "bool:false");
	EXPECT("'abc' =~ 'b.'", "bool:true"); /* a string pattern, compiled at evaluation */
	EXPECT("'abc' =~ 'B'", "bool:false");
	EXPECT("steps.1st.stdout =~ /MT5.*(disconnect|connection)/i", "bool:true");
}

static void test_op_match_type_errors(void)
{
	EXPECT_ERR("1 =~ /a/", 0, "'=~' needs a string on the left, got int");
	EXPECT_ERR("'a' =~ 1", 7, "'=~' needs a regex or a string, got int");
	EXPECT_ERR("'a' !~ '('", 7, "invalid regex");
}

static void test_regex_flag_i(void)
{
	EXPECT("'ABC' =~ /abc/i", "bool:true");
	EXPECT("'ABC' =~ /abc/", "bool:false");
}

static void test_regex_flag_m(void)
{
	EXPECT("'a\\nb' =~ /^b$/m", "bool:true");
	EXPECT("'a\\nb' =~ /^b$/", "bool:false");
}

static void test_regex_flag_s(void)
{
	EXPECT("'a\\nb' =~ /a.b/s", "bool:true");
	EXPECT("'a\\nb' =~ /a.b/", "bool:false");
}

static void test_regex_flag_x(void)
{
	EXPECT("'ab' =~ /a b # comment/x", "bool:true");
	EXPECT("'ab' =~ /a b/", "bool:false");
	EXPECT("'AB' =~ /a b/xi", "bool:true");
}

static void test_regex_utf8(void)
{
	EXPECT("'é' =~ /^.$/", "bool:true"); /* one code point, two bytes */
}

static void test_regex_versus_division(void)
{
	EXPECT("6 / 2 / 3", "number:1");
	EXPECT("(6)/2", "number:3");
	EXPECT("params.count / 5", "number:1");
	EXPECT("len('ab') / 2", "number:1");
	EXPECT("6/2 == 3", "bool:true");
	EXPECT("'a/b' =~ /\\//", "bool:true");
	EXPECT("capture('x=1', /x=(\\d)/, 1)", "string:1"); /* after ',' a regex */
	EXPECT("(/b/ == /b/)", "bool:true");                /* after '(' a regex */
	EXPECT("!(/b/ == /c/)", "bool:true");
}

static void test_op_plus(void)
{
	EXPECT("1 + 2", "int:3");
	EXPECT("1 + 1.5", "number:2.5");
	EXPECT("'a' + 'b'", "string:ab");
	EXPECT_ERR("1 + 'a'", 4, "'+' needs two numbers or two strings, got int and string");
	EXPECT_ERR("'a' + 1", 6, "'+' needs two numbers or two strings, got string and int");
	EXPECT_ERR("null + 1", 0, "'+' needs two numbers or two strings");
}

static void test_op_minus_times(void)
{
	EXPECT("5 - 7", "int:-2");
	EXPECT("5 - 0.5", "number:4.5");
	EXPECT("3 * 2.0", "number:6");
	EXPECT("-3 * -3", "int:9");
	EXPECT_ERR("'a' - 1", 0, "'-' needs numbers, got string");
	EXPECT_ERR("2 * true", 4, "'*' needs numbers, got bool");
}

static void test_op_int_overflow(void)
{
	EXPECT_ERR("9223372036854775807 + 1", 0, "integer overflow in '+'");
	EXPECT_ERR("-9223372036854775807 - 2", 0, "integer overflow in '-'");
	EXPECT_ERR("4611686018427387904 * 2", 0, "integer overflow in '*'");
	EXPECT("-9223372036854775807 - 1", "int:-9223372036854775808");
	EXPECT_ERR("-(-9223372036854775807 - 1)", 0, "integer overflow in '-'");
}

static void test_op_divide(void)
{
	EXPECT("7 / 2", "number:3.5");
	EXPECT("6 / 3", "number:2"); /* always a number */
	EXPECT("1 / 4.0", "number:0.25");
	EXPECT_ERR("1 / 0", 4, "division by zero");
	EXPECT_ERR("1 / 0.0", 4, "division by zero");
	EXPECT_ERR("'6' / 2", 0, "'/' needs numbers, got string");
}

static void test_op_modulo(void)
{
	EXPECT("7 % 3", "int:1");
	EXPECT("-7 % 3", "int:-1");
	EXPECT("(-9223372036854775807 - 1) % -1", "int:0");
	EXPECT("-9223372036854775807 - 1 % -1", "int:-9223372036854775807");
	EXPECT_ERR("7 % 0", 4, "modulo by zero");
	EXPECT_ERR("7.5 % 2", 0, "'%' needs ints, got number");
	EXPECT_ERR("7 % 2.0", 4, "'%' needs ints, got number");
}

static void test_op_unary_type_errors(void)
{
	EXPECT_ERR("-'a'", 1, "'-' needs a number, got string");
	EXPECT_ERR("!1", 1, "'!' needs a bool operand, got int");
	EXPECT_ERR("1 + !null", 5, "'!' needs a bool operand, got null");
}

static void test_op_logic_type_errors(void)
{
	EXPECT_ERR("'a' && true", 0, "'&&' needs bool operands, got string");
	EXPECT_ERR("true && 1", 8, "'&&' needs bool operands, got int");
	EXPECT_ERR("false || 'x'", 9, "'||' needs bool operands, got string");
	EXPECT_ERR("null || true", 0, "'||' needs bool operands, got null");
}

static void test_short_circuit(void)
{
	EXPECT("false && steps.nope.x == 1", "bool:false");
	EXPECT("true || steps.nope.x == 1", "bool:true");
	EXPECT("false && 1 / 0 > 1", "bool:false");
	EXPECT("true || 1", "bool:true"); /* the right side is never looked at */
	EXPECT_ERR("true && steps.nope.x == 1", 8, "unknown name 'steps.nope.x'");
}

/* ---- names ---- */

static void test_names_root(void)
{
	EXPECT("params.count", "int:5");
	EXPECT("params.name", "string:web-1");
	EXPECT("params.n", "list:[1,2,3]");
	EXPECT("run.id", "string:r1");
	EXPECT("vars.x", "null:");
	EXPECT("vars.ratio * 2", "number:5");
	EXPECT("steps.1st.status", "string:ok");
	EXPECT("steps.1st.out.k", "string:v");
	EXPECT("steps.1st.exit_code == 0", "bool:true");
}

static void test_names_dash_is_minus(void)
{
	EXPECT("params.count - 1", "int:4");
	EXPECT("params.count -1", "int:4");
	/* No name contains '-': without spaces it is still a subtraction. */
	EXPECT("params.count-1", "int:4");
	EXPECT("steps.1st.exit_code-1", "int:-1");
}

static void test_names_unknown(void)
{
	rbk_eval_env env = env_root();
	rbk_err err;
	char *got = run_env("1 + steps.x.out.k", &env, &err);
	T_STREQ(got, "error@4: unknown name 'steps.x.out.k'");
	T_CHECK(err.code == RBK_ERR_NONAME);
	rbk_free(got);
	got = run_env("params.count.x", &env, &err); /* through a non-map */
	T_STREQ(got, "error@0: unknown name 'params.count.x'");
	T_CHECK(err.code == RBK_ERR_NONAME);
	rbk_free(got);
	got = run_env("nothing", &env, &err);
	T_STREQ(got, "error@0: unknown name 'nothing'");
	rbk_free(got);
}

static void test_names_no_root(void)
{
	rbk_eval_env env = {NULL, NULL, NULL, NULL, NULL};
	rbk_err err;
	char *got = run_env("params.x", &env, &err);
	T_STREQ(got, "error@0: unknown name 'params.x'");
	T_CHECK(err.code == RBK_ERR_NONAME);
	rbk_free(got);
}

static void test_names_spaces_around_dot(void)
{
	EXPECT_ERR("params. count", 6, "expected a name right after '.'");
	EXPECT_ERR("params .count", 7, "unexpected space before '.'");
	EXPECT_ERR("params.", 6, "expected a name right after '.'");
}

static void test_lookup_root_direct(void)
{
	const char *segs[] = {"steps", "1st", "out", "k"};
	rbk_val v;
	rbk_err err;
	T_CHECK(rbk_eval_lookup_root(&root, segs, 4, &v, &err) == 0);
	T_CHECK(v.t == RBK_V_STR && strcmp(v.u.s.s, "v") == 0);
	rbk_val_free(&v);
	const char *bad[] = {"steps", "1st", "nope"};
	T_CHECK(rbk_eval_lookup_root(&root, bad, 3, &v, &err) == -1);
	T_CHECK(err.code == RBK_ERR_NONAME);
	T_STREQ(err.msg, "unknown name 'steps.1st.nope'");
	T_CHECK(v.t == RBK_V_NULL);
	T_CHECK(rbk_eval_lookup_root(&root, bad, 3, &v, NULL) == -1);
}

/* A lookup that knows only "a.b" (an int) and fails for anything else. */
static int custom_lookup(void *ctx, const char *const *segs, size_t n, rbk_val *out,
			 rbk_err *err)
{
	int *calls = ctx;
	++*calls;
	if (n == 2 && strcmp(segs[0], "a") == 0 && strcmp(segs[1], "b") == 0) {
		*out = rbk_val_int(40);
		return 0;
	}
	if (n == 1 && strcmp(segs[0], "boom") == 0) {
		rbk_err_set(err, 99, "lookup exploded");
		return -1;
	}
	rbk_err_set(err, 99, "no such thing '%s'", segs[0]);
	err->code = RBK_ERR_NONAME;
	return -1;
}

static void test_names_custom_lookup(void)
{
	int calls = 0;
	rbk_eval_env env = {custom_lookup, &calls, NULL, NULL, NULL};
	rbk_err err;
	char *got = run_env("a.b + 2", &env, &err);
	T_STREQ(got, "int:42");
	T_CHECK(calls == 1);
	rbk_free(got);
	got = run_env("1 + zz", &env, &err); /* pos fixed to the name's column */
	T_STREQ(got, "error@4: no such thing 'zz'");
	T_CHECK(err.code == RBK_ERR_NONAME);
	rbk_free(got);
	got = run_env("default(zz, 7)", &env, &err);
	T_STREQ(got, "int:7");
	rbk_free(got);
	got = run_env("default(boom, 7)", &env, &err);
	T_STREQ(got, "error@8: lookup exploded");
	T_CHECK(err.code == RBK_ERR_GENERIC);
	rbk_free(got);
}

/* ---- functions ---- */

static void test_fn_int(void)
{
	EXPECT("int('42')", "int:42");
	EXPECT("int(' 7\\n')", "int:7");
	EXPECT("int('-12')", "int:-12");
	EXPECT("int('3.9')", "int:3");
	EXPECT("int('1e3')", "int:1000");
	EXPECT("int(3.9)", "int:3");
	EXPECT("int(-3.9)", "int:-3");
	EXPECT("int(true)", "int:1");
	EXPECT("int(false)", "int:0");
	EXPECT("int(5)", "int:5");
	EXPECT("int(steps.1st.exit_code) + 1", "int:1");
}

static void test_fn_int_errors(void)
{
	EXPECT_ERR("int('abc')", 4, "int(): 'abc' is not a number");
	EXPECT_ERR("int('')", 4, "int(): '' is not a number");
	EXPECT_ERR("int('0x10')", 4, "int(): '0x10' is not a number");
	EXPECT_ERR("int('inf')", 4, "int(): 'inf' is not a number");
	EXPECT_ERR("int(null)", 4, "int(): cannot convert null to a number");
	EXPECT_ERR("int(params.n)", 4, "int(): cannot convert list");
	EXPECT_ERR("int(1e300)", 4, "int(): 1e+300 is out of range");
	EXPECT_ERR("int('99999999999999999999')", 4, "int(): 1e+20 is out of range");
}

static void test_fn_num(void)
{
	EXPECT("num('2.5')", "number:2.5");
	EXPECT("num(3)", "number:3");
	EXPECT("num(' 4 ')", "number:4");
	EXPECT("num(true)", "number:1");
	EXPECT("num('99999999999999999999')", "number:1e+20");
	EXPECT_ERR("num('x1')", 4, "num(): 'x1' is not a number");
	EXPECT_ERR("num(null)", 4, "num(): cannot convert null");
}

static void test_fn_str(void)
{
	EXPECT("str(42)", "string:42");
	EXPECT("str(2.0)", "string:2");
	EXPECT("str(0.1 + 0.2)", "string:0.3");
	EXPECT("str(null)", "string:");
	EXPECT("str(true)", "string:true");
	EXPECT("str('x')", "string:x");
	EXPECT("str(params.n)", "string:[1,2,3]");
	EXPECT("str(params.m)", "string:{\"a\":1}");
	EXPECT("str(/a b/ix)", "string:/a b/ix");
	EXPECT("str(1) + str(2)", "string:12");
}

static void test_fn_len(void)
{
	EXPECT("len('hello')", "int:5");
	EXPECT("len('h\xc3\xa9llo')", "int:5"); /* code points, not bytes */
	EXPECT("len('')", "int:0");
	EXPECT("len(params.n)", "int:3");
	EXPECT("len(params.m)", "int:1");
	EXPECT_ERR("len(1)", 4, "len(): needs a string, list or map, got int");
}

static void test_fn_lower_upper(void)
{
	EXPECT("lower('AbC-1')", "string:abc-1");
	EXPECT("upper('AbC-1')", "string:ABC-1");
	EXPECT("upper('a\xc3\xa9')", "string:A\xc3\xa9"); /* ASCII only */
	EXPECT("lower(params.host) == 'example.com'", "bool:true");
	EXPECT_ERR("lower(1)", 6, "lower(): needs a string, got int");
	EXPECT_ERR("upper(null)", 6, "upper(): needs a string, got null");
}

static void test_fn_trim(void)
{
	EXPECT("trim('  hi \\n')", "string:hi");
	EXPECT("trim('\\t\\r\\n')", "string:");
	EXPECT("trim('a b')", "string:a b");
	EXPECT_ERR("trim(3)", 5, "trim(): needs a string, got int");
}

static void test_fn_contains(void)
{
	EXPECT("contains('hello', 'ell')", "bool:true");
	EXPECT("contains('hello', 'xyz')", "bool:false");
	EXPECT("contains('hello', '')", "bool:true");
	EXPECT("contains(params.n, 2)", "bool:true");
	EXPECT("contains(params.n, 2.0)", "bool:true");
	EXPECT("contains(params.n, '2')", "bool:false");
	EXPECT("contains(params, 'count')", "bool:true");
	EXPECT("contains(params, 'nope')", "bool:false");
	EXPECT_ERR("contains(1, 'a')", 9, "contains(): needs a string, list or map, got int");
	EXPECT_ERR("contains('a', 1)", 14, "contains(): needs a string to look for in a string");
}

static void test_fn_starts_ends_with(void)
{
	EXPECT("starts_with('hello', 'he')", "bool:true");
	EXPECT("starts_with('hello', 'lo')", "bool:false");
	EXPECT("starts_with('he', 'hello')", "bool:false");
	EXPECT("ends_with('hello', 'lo')", "bool:true");
	EXPECT("ends_with('hello', 'he')", "bool:false");
	EXPECT("ends_with('hello', '')", "bool:true");
	EXPECT_ERR("starts_with(1, 'a')", 12, "starts_with(): needs a string, got int");
	EXPECT_ERR("ends_with('a', null)", 15, "ends_with(): needs a string, got null");
}

static void test_fn_json_paths(void)
{
	EXPECT("json(steps.read.stdout, '$.a.b')", "int:1");
	EXPECT("json(steps.read.stdout, '$.items[1].name')", "string:y");
	EXPECT("json(steps.read.stdout, \"$['odd key']\")", "string:k");
	EXPECT("json(steps.read.stdout, '$[\"a\"][\"b\"]')", "int:1");
	EXPECT("json(steps.read.stdout, '$.a')", "map:{\"b\":1}");
	EXPECT("json('[10, 20]', '$[0]') + 1", "int:11");
	EXPECT("json('{\"x\": 1.5}', '$.x')", "number:1.5");
	EXPECT("json('\"s\"', '$')", "string:s");
}

static void test_fn_json_absent(void)
{
	EXPECT("json(steps.read.stdout, '$.nope')", "null:");
	EXPECT("json(steps.read.stdout, '$.items[5].name')", "null:");
	EXPECT("json(steps.read.stdout, '$.a.b.c')", "null:");
	EXPECT("json('[1]', '$.a')", "null:");
	EXPECT("default(json('{}', '$.x'), 'none')", "string:none");
}

static void test_fn_json_errors(void)
{
	EXPECT_ERR("json('{\"a\": ', '$.a')", 5, "json(): invalid JSON at line 1 column");
	EXPECT_ERR("json('not json', '$')", 5, "json(): invalid JSON at line 1 column");
	EXPECT_ERR("json('{}', 'a.b')", 11, "json(): malformed path 'a.b'");
	EXPECT_ERR("json('{}', '$.')", 11, "json(): malformed path '$.'");
	EXPECT_ERR("json('{}', '$[x]')", 11, "json(): malformed path '$[x]'");
	EXPECT_ERR("json('{}', \"$['a\")", 11, "json(): malformed path");
	EXPECT_ERR("json(1, '$')", 5, "json(): needs a string, got int");
}

static void test_fn_capture(void)
{
	EXPECT("capture('v1.22.3', /(\\d+)\\.(\\d+)/, 2)", "string:22");
	EXPECT("capture('v1.22.3', /(\\d+)\\.(\\d+)/, 0)", "string:1.22");
	EXPECT("capture('abc', /x(y)/, 1)", "null:");
	EXPECT("capture('a', /(a)|(b)/, 2)", "null:");
	EXPECT("capture('key=val', 'key=(\\\\w+)', 1)", "string:val");
	EXPECT("capture('ABC', /b(c)/i, 1)", "string:C");
	EXPECT_ERR("capture('a', /(a)/, 2)", 13, "capture(): regex has no group 2 (it has 1)");
	EXPECT_ERR("capture('a', /(a)/, '1')", 20, "capture(): group must be an int");
	EXPECT_ERR("capture('a', 5, 1)", 13, "capture() needs a regex or a string, got int");
	EXPECT_ERR("capture(1, /a/, 1)", 8, "capture(): needs a string, got int");
}

static void test_fn_default(void)
{
	EXPECT("default(steps.nope.x, 'd')", "string:d");
	EXPECT("default(null, 1)", "int:1");
	EXPECT("default(vars.x, 'y')", "string:y");
	EXPECT("default(params.count, 0)", "int:5");
	EXPECT("default(params.count.x, 1)", "int:1");
	EXPECT("default(steps.nope.x + 1, 0)", "int:0");
	EXPECT("default(false, true)", "bool:false");
	EXPECT_ERR("default(1 / 0, 2)", 12, "division by zero");
	EXPECT_ERR("default(steps.nope, 1 + 'a')", 24, "'+' needs two numbers");
}

static void test_fn_if(void)
{
	EXPECT("if(params.count > 3, 'many', 'few')", "string:many");
	EXPECT("if(params.count > 9, 'many', 'few')", "string:few");
	EXPECT("if(true, 1, steps.nope.x)", "int:1"); /* the branch not taken is not evaluated */
	EXPECT("if(false, 1 / 0, 2)", "int:2");
	EXPECT("if(true, 5m, 1s) > 2m", "bool:true");
	EXPECT("'disk ' + if(params.count == 5, 'full', 'ok')", "string:disk full");
	EXPECT_ERR("if(params.count, 1, 2)", 3, "if(): the condition must be a bool, got int");
	EXPECT_ERR("if(true, steps.nope.x, 2)", 9, "");
	EXPECT_ERR("if(true, 1)", 0, "");
}

static void test_fn_now(void)
{
	EXPECT("now()", "int:1000000");
	EXPECT("now() - 1000000", "int:0");
	rbk_eval_env env = {NULL, NULL, &root, NULL, NULL}; /* wall clock */
	rbk_expr *e;
	rbk_val v;
	T_CHECK(rbk_parse(&e, "now()", 5, NULL) == 0);
	int64_t before = (int64_t)time(NULL);
	T_CHECK(rbk_eval(e, &env, &v, NULL) == 0);
	T_CHECK(v.t == RBK_V_INT && v.u.i >= before && v.u.i <= before + 5);
	rbk_expr_free(e);
}

static void test_fn_age(void)
{
	char path[] = "/tmp/rbk_test_age_XXXXXX";
	int fd = mkstemp(path);
	T_CHECK(fd >= 0);
	if (fd < 0)
		return;
	close(fd);
	struct utimbuf ut = {NOW - 42, NOW - 42};
	T_CHECK(utime(path, &ut) == 0);
	char *src = rbk_xasprintf("age('%s')", path);
	EXPECT(src, "int:42");
	rbk_free(src);
	unlink(path);
	src = rbk_xasprintf("age('%s')", path);
	char *want = rbk_xasprintf("age(): cannot stat '%s'", path);
	EXPECT_ERR(src, 4, want);
	rbk_free(src);
	rbk_free(want);
	src = rbk_xasprintf("age('%s')", path);
	char *got = run(src);
	T_CHECK(strstr(got, ": no such file or directory") != NULL);
	rbk_free(got);
	rbk_free(src);
	EXPECT_ERR("age(1)", 4, "age(): needs a string, got int");
}

/* ---- parse errors ---- */

static void test_parse_unexpected_token(void)
{
	EXPECT_ERR("1 2", 2, "unexpected '2'");
	EXPECT_ERR("1 +", 3, "unexpected end of expression");
	EXPECT_ERR("* 2", 0, "unexpected '*'");
	EXPECT_ERR("(1 + 2))", 7, "unexpected ')'");
	EXPECT_ERR("a == 'x' 'y'", 9, "unexpected string");
	EXPECT_ERR("1, 2", 1, "unexpected ','");
	EXPECT_ERR("1 .5", 2, "unexpected '.'");
}

static void test_parse_missing_paren(void)
{
	EXPECT_ERR("(1 + 2", 6, "missing ')', found end of expression");
	EXPECT_ERR("(1 + 2 3", 7, "missing ')', found '3'");
	EXPECT_ERR("len('a'", 7, "missing ')' to close the call, found end of expression");
	EXPECT_ERR("len('a' 'b')", 8, "missing ')' to close the call, found string");
}

static void test_parse_unknown_function(void)
{
	EXPECT_ERR("foo(1)", 0, "unknown function 'foo'");
	EXPECT_ERR("1 + bar()", 4, "unknown function 'bar'");
	EXPECT_ERR("len(nope(1))", 4, "unknown function 'nope'");
}

static void test_parse_wrong_arg_count(void)
{
	EXPECT_ERR("len(1, 2)", 0, "len() takes 1 argument, got 2");
	EXPECT_ERR("len()", 0, "len() takes 1 argument, got 0");
	EXPECT_ERR("now(1)", 0, "now() takes no arguments, got 1");
	EXPECT_ERR("1 + capture('a')", 4, "capture() takes 3 arguments, got 1");
	EXPECT_ERR("default(1)", 0, "default() takes 2 arguments, got 1");
}

static void test_parse_empty(void)
{
	EXPECT_ERR("", 0, "empty expression");
	EXPECT_ERR("   ", 3, "empty expression");
	EXPECT_ERR("()", 1, "unexpected ')'");
}

static void test_parse_nesting_limit(void)
{
	rbk_buf b = {0};
	for (int i = 0; i < 200; i++)
		rbk_buf_putc(&b, '(');
	rbk_buf_putc(&b, '1');
	for (int i = 0; i < 200; i++)
		rbk_buf_putc(&b, ')');
	char *got = run(b.s);
	T_CHECK(strstr(got, "expression nested too deeply") != NULL);
	rbk_free(got);
	rbk_buf_free(&b);

	for (int i = 0; i < 200; i++)
		rbk_buf_putc(&b, '!');
	rbk_buf_puts(&b, "true");
	got = run(b.s);
	T_CHECK(strstr(got, "expression nested too deeply") != NULL);
	rbk_free(got);
	rbk_buf_free(&b);

	for (int i = 0; i < 200; i++)
		rbk_buf_puts(&b, "len(");
	rbk_buf_puts(&b, "'a'");
	for (int i = 0; i < 200; i++)
		rbk_buf_putc(&b, ')');
	got = run(b.s);
	T_CHECK(strstr(got, "expression nested too deeply") != NULL);
	rbk_free(got);
	rbk_buf_free(&b);

	for (int i = 0; i < 50; i++) /* modest nesting is fine */
		rbk_buf_putc(&b, '(');
	rbk_buf_putc(&b, '1');
	for (int i = 0; i < 50; i++)
		rbk_buf_putc(&b, ')');
	got = run(b.s);
	T_STREQ(got, "int:1");
	rbk_free(got);
	rbk_buf_free(&b);
}

static void test_parse_long_chain_limit(void)
{
	rbk_buf b = {0};
	rbk_buf_putc(&b, '1');
	for (int i = 1; i < 500; i++)
		rbk_buf_puts(&b, "+1");
	char *got = run(b.s);
	T_STREQ(got, "int:500");
	rbk_free(got);
	for (int i = 500; i < 100000; i++)
		rbk_buf_puts(&b, "+1");
	got = run(b.s);
	T_CHECK(strstr(got, "expression nested too deeply") != NULL);
	rbk_free(got);
	rbk_buf_free(&b);
}

/* ---- lexer errors ---- */

static void test_lex_unterminated_string(void)
{
	EXPECT_ERR("'abc", 0, "unterminated string");
	EXPECT_ERR("1 + \"x", 4, "unterminated string");
	EXPECT_ERR("'abc\\", 0, "unterminated string");
}

static void test_lex_bad_char(void)
{
	EXPECT_ERR("1 # 2", 2, "unexpected character '#'");
	EXPECT_ERR("a = b", 2, "unexpected character '=' (did you mean '=='?)");
	EXPECT_ERR("true & false", 5, "unexpected character '&' (did you mean '&&'?)");
	EXPECT_ERR("true | false", 5, "unexpected character '|' (did you mean '||'?)");
	EXPECT_ERR("1 + \x01", 4, "unexpected byte 0x01");
	EXPECT_ERR("x {", 2, "unexpected character '{'");
}

static void test_lex_unterminated_regex(void)
{
	EXPECT_ERR("'a' =~ /abc", 7, "unterminated regex");
	EXPECT_ERR("'a' =~ /abc\\/", 7, "unterminated regex");
}

static void test_lex_bad_number(void)
{
	EXPECT_ERR("1st", 0, "invalid number '1st'");
	EXPECT_ERR("2 + 3x", 4, "invalid number '3x'");
	EXPECT("steps.1st.status", "string:ok"); /* fine after a dot */
}

/* The lexer gets exact-size heap buffers with no NUL: ASan reports any read
 * past the end. */
static void lex_exact(const char *s, int want_rc)
{
	size_t n = strlen(s);
	char *buf = rbk_xmalloc(n);
	memcpy(buf, s, n);
	rbk_expr *e = NULL;
	rbk_err err;
	int rc = rbk_parse(&e, buf, n, &err);
	T_CHECK(rc == want_rc);
	rbk_expr_free(e);
	rbk_free(buf);
}

static void test_lex_never_reads_past_len(void)
{
	lex_exact("1+2", 0);
	lex_exact("'ab", -1);
	lex_exact("'ab\\", -1);
	lex_exact("/ab", -1);
	lex_exact("/ab\\", -1);
	lex_exact("/ab/i", 0);
	lex_exact("1.", -1);
	lex_exact("1e", -1);
	lex_exact("1e+", -1);
	lex_exact("2.5", 0);
	lex_exact("a.b", 0);
	lex_exact("a.b-", -1);
	lex_exact("a.", -1);
	lex_exact("a=", -1);
	lex_exact("1 !", -1);
	lex_exact("1 <", -1);
	lex_exact("x &", -1);
	/* A slice of a longer string: only the first 3 bytes count. */
	rbk_expr *e;
	rbk_val v;
	T_CHECK(rbk_parse(&e, "1+2+3", 3, NULL) == 0);
	T_CHECK(rbk_eval(e, NULL, &v, NULL) == 0 && v.t == RBK_V_INT && v.u.i == 3);
	rbk_expr_free(e);
}

static void test_lex_tokens(void)
{
	const char *src = "a.b <= 1.5 && !(x =~ /y/i) || 'z' != 2 % 3";
	rbk_tok_kind want[] = {RBK_T_IDENT, RBK_T_DOT,    RBK_T_IDENT,  RBK_T_LE,     RBK_T_NUM,
			       RBK_T_AND,   RBK_T_NOT,    RBK_T_LPAREN, RBK_T_IDENT,  RBK_T_MATCH,
			       RBK_T_REGEX, RBK_T_RPAREN, RBK_T_OR,     RBK_T_STR,    RBK_T_NE,
			       RBK_T_INT,   RBK_T_PERCENT, RBK_T_INT,   RBK_T_EOF};
	rbk_lexer lx;
	rbk_lex_init(&lx, src, strlen(src));
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		rbk_tok t;
		T_CHECK(rbk_lex_next(&lx, &t, NULL) == 0);
		T_CHECK(t.kind == want[i]);
		if (t.kind == RBK_T_REGEX) {
			T_STREQ(t.text, "y");
			T_STREQ(t.flags, "i");
			T_CHECK(t.pos == 21);
		}
		rbk_tok_free(&t);
	}
	T_STREQ(rbk_tok_name(RBK_T_AND), "'&&'");
	T_STREQ(rbk_tok_name(RBK_T_EOF), "end of expression");
}

/* ---- guards ---- */

static void test_guard(void)
{
	rbk_eval_env env = env_root();
	rbk_expr *e;
	rbk_err err;
	bool b = false;
	const char *src = "int('7') > params.count";
	T_CHECK(rbk_parse(&e, src, strlen(src), &err) == 0);
	T_CHECK(rbk_eval_guard(e, &env, &b, &err) == 0);
	T_CHECK(b == true);
	rbk_expr_free(e);

	T_CHECK(rbk_parse(&e, "params.count", 12, &err) == 0);
	T_CHECK(rbk_eval_guard(e, &env, &b, &err) == -1);
	T_STREQ(err.msg, "guard must be a bool, got int");
	T_CHECK(err.pos == 0);
	rbk_expr_free(e);

	T_CHECK(rbk_parse(&e, "'s'", 3, &err) == 0);
	T_CHECK(rbk_eval_guard(e, &env, &b, NULL) == -1); /* NULL err is allowed */
	rbk_expr_free(e);
}

/* ---- templates ---- */

static void test_tmpl_keeps_type(void)
{
	EXPECT_TMPL("{{ 42 }}", "int:42");
	EXPECT_TMPL("{{42}}", "int:42");
	EXPECT_TMPL("{{ params.n }}", "list:[1,2,3]");
	EXPECT_TMPL("{{\n params.count \n}}", "int:5");
	EXPECT_TMPL("{{ null }}", "null:");
	EXPECT_TMPL("{{ 7 / 2 }}", "number:3.5");
}

static void test_tmpl_joins_text(void)
{
	EXPECT_TMPL("n={{ 1+1 }}", "string:n=2");
	EXPECT_TMPL(" {{ 1 }}", "string: 1");
	EXPECT_TMPL("{{ 1 }} ", "string:1 ");
	EXPECT_TMPL("{{ params.name }}:{{ params.count }}", "string:web-1:5");
	EXPECT_TMPL("x{{ null }}y{{ 2.50 }}", "string:xy2.5");
	EXPECT_TMPL("l={{ params.n }}", "string:l=[1,2,3]");
	EXPECT_TMPL("feed-halt on {{ params.name }}", "string:feed-halt on web-1");
}

static void test_tmpl_plain_text(void)
{
	EXPECT_TMPL("plain text", "string:plain text");
	EXPECT_TMPL("", "string:");
	EXPECT_TMPL("a }} b", "string:a }} b");
	EXPECT_TMPL("{ x }", "string:{ x }");
}

static void test_tmpl_errors(void)
{
	EXPECT_TMPL("a {{ b", "error@2: unclosed '{{' (no matching '}}')");
	EXPECT_TMPL("{{ 1 }} {{", "error@8: unclosed '{{' (no matching '}}')");
	EXPECT_TMPL("ab {{ 1 + }}", "error@9: unexpected end of expression");
	EXPECT_TMPL("ab {{ 1 # }}", "error@8: unexpected character '#'");
	EXPECT_TMPL("x{{ }}", "error@1: empty expression in '{{ }}'");
	EXPECT_TMPL("xx {{ params.nope }}", "error@6: unknown name 'params.nope'");
	EXPECT_TMPL("{{ 1 + 'a' }}", "error@7: '+' needs two numbers or two strings, got int and string");
}

static void test_tmpl_exprs_and_positions(void)
{
	rbk_tmpl *t;
	rbk_err err;
	T_CHECK(rbk_tmpl_parse(&t, "a {{ x }} b {{y.z}}", &err) == 0);
	T_CHECK(rbk_tmpl_count(t) == 2);
	int pos = -1;
	const rbk_expr *e = rbk_tmpl_expr(t, 0, &pos);
	T_CHECK(e && e->kind == RBK_E_NAME && pos == 5);
	e = rbk_tmpl_expr(t, 1, &pos);
	T_CHECK(e && e->kind == RBK_E_NAME && e->nsegs == 2 && pos == 14);
	T_CHECK(rbk_tmpl_expr(t, 2, &pos) == NULL);
	rbk_tmpl_free(t);

	T_CHECK(rbk_tmpl_parse(&t, "no braces", &err) == 0);
	T_CHECK(rbk_tmpl_count(t) == 0);
	rbk_tmpl_free(t);
}

static void test_tmpl_has_expr(void)
{
	T_CHECK(rbk_tmpl_has_expr("a {{ b }}"));
	T_CHECK(rbk_tmpl_has_expr("{{"));
	T_CHECK(!rbk_tmpl_has_expr("plain } {"));
	T_CHECK(!rbk_tmpl_has_expr(""));
}

/* ---- regex module ---- */

static void test_regex_match_limit(void)
{
	rbk_re *re;
	rbk_err err;
	T_CHECK(rbk_re_compile(&re, "(a+)+$", 6, "", 0, &err) == 0);
	char subject[64];
	memset(subject, 'a', 40);
	subject[40] = 'b';
	clock_t start = clock();
	int rc = rbk_re_match(re, subject, 41, -1, NULL, NULL, &err);
	double secs = (double)(clock() - start) / CLOCKS_PER_SEC;
	T_CHECK(rc == -1);
	T_STREQ(err.msg, "regex match limit exceeded");
	T_CHECK(secs < 2.0);
	rbk_re_free(re);
	/* The same through an expression: an error with the regex's column. */
	EXPECT_ERR("params.evil =~ /(a+)+$/", 15, "regex match limit exceeded");
}

static void test_regex_whole_and_refs(void)
{
	rbk_re *re;
	rbk_err err;
	T_CHECK(rbk_re_compile(&re, "a+", 2, "i", 1, &err) == 0);
	T_CHECK(rbk_re_match(re, "AAA", 3, -1, NULL, NULL, &err) == 1);
	T_CHECK(rbk_re_match(re, "aaab", 4, -1, NULL, NULL, &err) == 0);
	T_CHECK(rbk_re_match(re, "baaa", 4, -1, NULL, NULL, &err) == 0);
	T_STREQ(rbk_re_source(re), "a+");
	T_STREQ(rbk_re_flags(re), "i");
	rbk_re *again = rbk_re_ref(re);
	T_CHECK(again == re);
	rbk_re_free(re);
	T_CHECK(rbk_re_match(again, "a", 1, -1, NULL, NULL, &err) == 1); /* still alive */
	rbk_re_free(again);

	T_CHECK(rbk_re_compile(&re, "a", 1, "q", 0, &err) == -1);
	T_STREQ(err.msg, "unknown regex flag 'q'");
	T_CHECK(rbk_re_compile(&re, "a(", 2, "", 0, &err) == -1);
	T_CHECK(strncmp(err.msg, "invalid regex: ", 15) == 0 && err.pos == 2);
}

static void test_regex_capture_api(void)
{
	rbk_re *re;
	rbk_err err;
	char *out;
	size_t n;
	T_CHECK(rbk_re_compile(&re, "(x)?(y)", 7, "", 0, &err) == 0);
	T_CHECK(rbk_re_match(re, "zy", 2, 2, &out, &n, &err) == 1);
	T_STREQ(out, "y");
	T_CHECK(n == 1);
	rbk_free(out);
	T_CHECK(rbk_re_match(re, "zy", 2, 1, &out, &n, &err) == 1);
	T_CHECK(out == NULL); /* group 1 did not participate */
	T_CHECK(rbk_re_match(re, "zy", 2, 3, &out, &n, &err) == -1);
	rbk_re_free(re);
}

/* ---- json module ---- */

static void test_json_parse_types(void)
{
	rbk_val v = parse_json("{\"z\": 1, \"a\": [true, null, 2.5, \"s\"], \"big\": 9007199254740993}");
	T_CHECK(v.t == RBK_V_MAP && v.u.map.n == 3);
	T_STREQ(v.u.map.keys[0], "z"); /* document order */
	T_STREQ(v.u.map.keys[1], "a");
	const rbk_val *big = rbk_val_map_get(&v, "big");
	T_CHECK(big && big->t == RBK_V_INT && big->u.i == 9007199254740993LL);
	const rbk_val *a = rbk_val_map_get(&v, "a");
	T_CHECK(a && a->t == RBK_V_LIST && a->u.list.n == 4);
	T_CHECK(a->u.list.items[0].t == RBK_V_BOOL && a->u.list.items[1].t == RBK_V_NULL);
	T_CHECK(a->u.list.items[2].t == RBK_V_NUM && a->u.list.items[3].t == RBK_V_STR);
	char *s = rbk_json_encode(&v);
	T_STREQ(s, "{\"z\":1,\"a\":[true,null,2.5,\"s\"],\"big\":9007199254740993}");
	rbk_free(s);
	rbk_val_free(&v);
}

static void test_json_parse_huge_int(void)
{
	rbk_val v = parse_json("[99999999999999999999, 1]");
	T_CHECK(v.t == RBK_V_LIST && v.u.list.n == 2);
	T_CHECK(v.u.list.items[0].t == RBK_V_NUM && v.u.list.items[0].u.n == 1e20);
	rbk_val_free(&v);
}

static void test_json_parse_errors(void)
{
	rbk_val v;
	rbk_err err;
	T_CHECK(rbk_json_parse(&v, "{\"a\":\n ]", 8, &err) == -1);
	T_CHECK(strncmp(err.msg, "invalid JSON at line 2 column", 29) == 0);
	T_CHECK(v.t == RBK_V_NULL);
	T_CHECK(rbk_json_parse(&v, "", 0, &err) == -1);
	T_CHECK(rbk_json_parse(&v, "[1] x", 5, NULL) == -1);
}

static void test_json_encode(void)
{
	rbk_val m = rbk_val_map();
	rbk_val_map_set(&m, "q", rbk_val_str("a\"b\\c\n\t\x01 \xc3\xa9"));
	rbk_val_map_set(&m, "n", rbk_val_num(0.1));
	rbk_val_map_set(&m, "third", rbk_val_num(1.0 / 3.0));
	rbk_val_map_set(&m, "nan", rbk_val_num(NAN));
	rbk_val_map_set(&m, "i", rbk_val_int(INT64_MIN));
	rbk_val_map_set(&m, "bad", rbk_val_str("x\xff"));
	rbk_val_map_set(&m, "e", rbk_val_list());
	rbk_val_map_set(&m, "n", rbk_val_num(2.0)); /* replaces, keeps its place */
	char *s = rbk_json_encode(&m);
	T_STREQ(s, "{\"q\":\"a\\\"b\\\\c\\n\\t\\u0001 \xc3\xa9\",\"n\":2,"
		   "\"third\":0.3333333333333333,\"nan\":null,\"i\":-9223372036854775808,"
		   "\"bad\":\"x\\ufffd\",\"e\":[]}");
	rbk_free(s);
	rbk_val_free(&m);
	rbk_val n = rbk_val_num(0.1);
	s = rbk_json_encode(&n);
	T_STREQ(s, "0.1");
	rbk_free(s);
}

/* ---- values ---- */

static void test_value_copy_equal(void)
{
	rbk_val c = rbk_val_copy(&root);
	T_CHECK(rbk_val_equal(&c, &root));
	rbk_val *params = (rbk_val *)rbk_val_map_get(&c, "params");
	rbk_val_map_set(params, "count", rbk_val_int(6));
	T_CHECK(!rbk_val_equal(&c, &root));
	rbk_val_free(&c);
	T_CHECK(c.t == RBK_V_NULL);

	rbk_val a = rbk_val_map(), b = rbk_val_map();
	rbk_val_map_set(&a, "x", rbk_val_int(1));
	rbk_val_map_set(&a, "y", rbk_val_int(2));
	rbk_val_map_set(&b, "y", rbk_val_num(2.0));
	rbk_val_map_set(&b, "x", rbk_val_int(1));
	T_CHECK(rbk_val_equal(&a, &b)); /* key order does not matter */
	rbk_val_free(&a);
	rbk_val_free(&b);
}

static void test_value_text_and_truthy(void)
{
	rbk_val v = rbk_val_num(2.0);
	char *s = rbk_val_to_text(&v);
	T_STREQ(s, "2");
	rbk_free(s);
	v = rbk_val_num(1.0 / 3.0);
	s = rbk_val_to_text(&v);
	T_STREQ(s, "0.333333333333333");
	rbk_free(s);
	v = rbk_val_strn("a\0b", 3);
	T_CHECK(v.u.s.len == 3);
	rbk_val_free(&v);
	T_STREQ(rbk_val_type_name(RBK_V_NUM), "number");
	T_STREQ(rbk_val_type_name(RBK_V_REGEX), "regex");
	rbk_val z = rbk_val_int(0), e = rbk_val_str(""), t = rbk_val_str("x");
	T_CHECK(!rbk_val_truthy(&z) && !rbk_val_truthy(&e) && rbk_val_truthy(&t));
	rbk_val_free(&e);
	rbk_val_free(&t);
}

/* ---- tree ---- */

static void count_node(const rbk_expr *node, void *ctx)
{
	(void)node;
	++*(int *)ctx;
}

static void test_expr_walk_and_positions(void)
{
	rbk_expr *e;
	const char *src = "len(a.b) + 2 * -x";
	T_CHECK(rbk_parse(&e, src, strlen(src), NULL) == 0);
	int n = 0;
	rbk_expr_walk(e, count_node, &n);
	T_CHECK(n == 7); /* + len a.b * 2 - x */
	T_CHECK(e->kind == RBK_E_BINARY && e->op == RBK_T_PLUS && e->pos == 0);
	T_CHECK(e->a->kind == RBK_E_CALL && strcmp(e->a->fn, "len") == 0);
	T_CHECK(e->a->args[0]->kind == RBK_E_NAME && e->a->args[0]->pos == 4);
	T_CHECK(e->b->op == RBK_T_STAR && e->b->b->kind == RBK_E_UNARY && e->b->b->pos == 15);
	rbk_expr_free(e);
}

int main(void)
{
	make_root();
	T_RUN(test_literals_numbers);
	T_RUN(test_literal_int_overflow);
	T_RUN(test_literal_strings);
	T_RUN(test_literal_string_bad_escape);
	T_RUN(test_literal_keywords);
	T_RUN(test_literal_regex);
	T_RUN(test_literal_regex_bad_flags);
	T_RUN(test_literal_regex_invalid_pattern);
	T_RUN(test_prec_mul_over_add);
	T_RUN(test_prec_parentheses);
	T_RUN(test_assoc_left);
	T_RUN(test_prec_unary);
	T_RUN(test_prec_and_over_or);
	T_RUN(test_prec_comparison_levels);
	T_RUN(test_op_comparisons);
	T_RUN(test_op_comparison_type_errors);
	T_RUN(test_op_equality);
	T_RUN(test_op_match);
	T_RUN(test_op_match_type_errors);
	T_RUN(test_regex_flag_i);
	T_RUN(test_regex_flag_m);
	T_RUN(test_regex_flag_s);
	T_RUN(test_regex_flag_x);
	T_RUN(test_regex_utf8);
	T_RUN(test_regex_versus_division);
	T_RUN(test_op_plus);
	T_RUN(test_op_minus_times);
	T_RUN(test_op_int_overflow);
	T_RUN(test_op_divide);
	T_RUN(test_op_modulo);
	T_RUN(test_op_unary_type_errors);
	T_RUN(test_op_logic_type_errors);
	T_RUN(test_short_circuit);
	T_RUN(test_names_root);
	T_RUN(test_names_dash_is_minus);
	T_RUN(test_names_unknown);
	T_RUN(test_names_no_root);
	T_RUN(test_names_spaces_around_dot);
	T_RUN(test_lookup_root_direct);
	T_RUN(test_names_custom_lookup);
	T_RUN(test_fn_int);
	T_RUN(test_fn_int_errors);
	T_RUN(test_fn_num);
	T_RUN(test_fn_str);
	T_RUN(test_fn_len);
	T_RUN(test_fn_lower_upper);
	T_RUN(test_fn_trim);
	T_RUN(test_fn_contains);
	T_RUN(test_fn_starts_ends_with);
	T_RUN(test_fn_json_paths);
	T_RUN(test_fn_json_absent);
	T_RUN(test_fn_json_errors);
	T_RUN(test_fn_capture);
	T_RUN(test_fn_default);
	T_RUN(test_fn_if);
	T_RUN(test_fn_now);
	T_RUN(test_fn_age);
	T_RUN(test_parse_unexpected_token);
	T_RUN(test_parse_missing_paren);
	T_RUN(test_parse_unknown_function);
	T_RUN(test_parse_wrong_arg_count);
	T_RUN(test_parse_empty);
	T_RUN(test_parse_nesting_limit);
	T_RUN(test_parse_long_chain_limit);
	T_RUN(test_lex_unterminated_string);
	T_RUN(test_lex_bad_char);
	T_RUN(test_lex_unterminated_regex);
	T_RUN(test_lex_bad_number);
	T_RUN(test_lex_never_reads_past_len);
	T_RUN(test_lex_tokens);
	T_RUN(test_guard);
	T_RUN(test_tmpl_keeps_type);
	T_RUN(test_tmpl_joins_text);
	T_RUN(test_tmpl_plain_text);
	T_RUN(test_tmpl_errors);
	T_RUN(test_tmpl_exprs_and_positions);
	T_RUN(test_tmpl_has_expr);
	T_RUN(test_regex_match_limit);
	T_RUN(test_regex_whole_and_refs);
	T_RUN(test_regex_capture_api);
	T_RUN(test_json_parse_types);
	T_RUN(test_json_parse_huge_int);
	T_RUN(test_json_parse_errors);
	T_RUN(test_json_encode);
	T_RUN(test_value_copy_equal);
	T_RUN(test_value_text_and_truthy);
	T_RUN(test_expr_walk_and_positions);
	T_RUN(test_secret_follows_every_operator_and_function);
	T_RUN(test_durations);
	rbk_val_free(&root);
	return T_DONE();
}
