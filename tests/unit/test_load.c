/* Unit tests for load: YAML bytes/files -> rbk_node tree (typing, places,
 * duplicate keys, limits, refusals). */
#include "runbook/load.h"
#include "t.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

static rbk_doc *L(const char *src, rbk_diag *d)
{
	rbk_doc *doc = NULL;
	int rc = rbk_load_bytes(&doc, "t.yaml", src, strlen(src), d);
	if ((rc == 0) != (doc != NULL))
		printf("# rc %d does not agree with doc %p\n", rc, (void *)doc);
	return doc;
}

/* The load errors of src as "LINE:COL: MSG" (the first one), or "ok". */
static const char *lerr_n(const char *src, size_t len)
{
	static char buf[8][700];
	static int k;
	char *b = buf[k++ % 8];
	rbk_diag d = {0};
	rbk_doc *doc = NULL;
	int rc = rbk_load_bytes(&doc, "t.yaml", src, len, &d);
	if (rc == 0) {
		snprintf(b, 700, "ok");
		if (d.n)
			snprintf(b, 700, "ok but %zu diagnostics", d.n);
	} else if (!d.n)
		snprintf(b, 700, "failed without a diagnostic");
	else
		snprintf(b, 700, "%d:%d: %s", d.items[0].line, d.items[0].col, d.items[0].msg);
	if (rc != 0 && doc)
		snprintf(b, 700, "failed but returned a document");
	rbk_doc_free(doc);
	rbk_diag_free(&d);
	return b;
}
static const char *lerr(const char *src) { return lerr_n(src, strlen(src)); }

static int starts(const char *s, const char *prefix) { return s && !strncmp(s, prefix, strlen(prefix)); }
static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

#define T_STARTS(s, p)                                                                              \
	do {                                                                                        \
		const char *t_s_ = (s);                                                             \
		if (!starts(t_s_, (p)) && !t_failed_checks++)                                       \
			printf("FAIL %s: %s:%d: \"%s\" does not start with \"%s\"\n", t_current,     \
			       __FILE__, __LINE__, t_s_ ? t_s_ : "(null)", (p));                     \
	} while (0)

/* The node of the only key 'v' in "v: TEXT" (kept in a static doc). */
static rbk_doc *vdoc;
static const rbk_node *V(const char *text)
{
	rbk_doc_free(vdoc);
	vdoc = NULL;
	char src[256];
	snprintf(src, sizeof src, "v: %s\n", text);
	rbk_diag d = {0};
	vdoc = L(src, &d);
	rbk_diag_free(&d);
	if (!vdoc) {
		static rbk_node bad = {.t = RBK_N_MAP};
		printf("# could not load '%s'\n", src);
		return &bad;
	}
	return rbk_node_get(vdoc->root, "v");
}

static char *repeat(const char *s, int n)
{
	size_t l = strlen(s);
	char *r = malloc(l * (size_t)n + 1);
	for (int i = 0; i < n; i++)
		memcpy(r + l * (size_t)i, s, l);
	r[l * (size_t)n] = '\0';
	return r;
}

/* "[[[...0...]]]" nested n deep. */
static char *nested(int n)
{
	char *open = repeat("[", n), *close = repeat("]", n);
	size_t len = strlen(open) + strlen(close) + 3;
	char *r = malloc(len);
	snprintf(r, len, "%s0%s\n", open, close);
	free(open);
	free(close);
	return r;
}

/* ---- scalar typing: YAML 1.2 core schema ---- */

static void test_null_forms(void)
{
	const char *forms[] = {"~", "null", "Null", "NULL", ""};
	for (size_t i = 0; i < sizeof forms / sizeof *forms; i++)
		T_CHECK(V(forms[i])->t == RBK_N_NULL);
	T_CHECK(V("nULL")->t == RBK_N_STR);
	T_CHECK(V("\"\"")->t == RBK_N_STR); /* quoted empty is an empty string */
	T_CHECK(V("'~'")->t == RBK_N_STR);
}

static void test_bool_forms(void)
{
	const rbk_node *n = V("true");
	T_CHECK(n->t == RBK_N_BOOL && n->b);
	n = V("True");
	T_CHECK(n->t == RBK_N_BOOL && n->b);
	n = V("TRUE");
	T_CHECK(n->t == RBK_N_BOOL && n->b);
	n = V("false");
	T_CHECK(n->t == RBK_N_BOOL && !n->b);
	n = V("FALSE");
	T_CHECK(n->t == RBK_N_BOOL && !n->b);
	T_CHECK(V("tRUE")->t == RBK_N_STR);
}

static void test_yaml11_bools_stay_strings(void)
{
	const char *words[] = {"yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF"};
	for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
		const rbk_node *n = V(words[i]);
		T_CHECK(n->t == RBK_N_STR);
		T_STREQ(n->text, words[i]);
	}
}

static void test_ints(void)
{
	const rbk_node *n = V("42");
	T_CHECK(n->t == RBK_N_INT && n->i == 42);
	T_STREQ(n->text, "42");
	n = V("-7");
	T_CHECK(n->t == RBK_N_INT && n->i == -7);
	n = V("+3");
	T_CHECK(n->t == RBK_N_INT && n->i == 3);
	n = V("0");
	T_CHECK(n->t == RBK_N_INT && n->i == 0);
	n = V("9223372036854775807");
	T_CHECK(n->t == RBK_N_INT && n->i == INT64_MAX);
	n = V("-9223372036854775808");
	T_CHECK(n->t == RBK_N_INT && n->i == INT64_MIN);
	/* past int64: still a number, not a string */
	n = V("99999999999999999999");
	T_CHECK(n->t == RBK_N_NUM && n->n > 9.9e19);
}

static void test_not_ints(void)
{
	const char *words[] = {"1_000", "1,000", "12abc", "0b101", "1.2.3", "1e", "+", "-x", "1-2", "0 1"};
	for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
		const rbk_node *n = V(words[i]);
		T_CHECK(n->t == RBK_N_STR);
		T_STREQ(n->text, words[i]);
	}
}

static void test_floats(void)
{
	const rbk_node *n = V("1.5");
	T_CHECK(n->t == RBK_N_NUM && n->n == 1.5);
	n = V("-2.5e3");
	T_CHECK(n->t == RBK_N_NUM && n->n == -2500);
	n = V(".5");
	T_CHECK(n->t == RBK_N_NUM && n->n == 0.5);
	n = V("1e3");
	T_CHECK(n->t == RBK_N_NUM && n->n == 1000);
	n = V("1.");
	T_CHECK(n->t == RBK_N_NUM && n->n == 1);
	n = V("-.25");
	T_CHECK(n->t == RBK_N_NUM && n->n == -0.25);
	T_CHECK(V(".")->t == RBK_N_STR);
}

static void test_inf_nan(void)
{
	const rbk_node *n = V(".inf");
	T_CHECK(n->t == RBK_N_NUM && isinf(n->n) && n->n > 0);
	n = V("-.inf");
	T_CHECK(n->t == RBK_N_NUM && isinf(n->n) && n->n < 0);
	n = V("+.Inf");
	T_CHECK(n->t == RBK_N_NUM && isinf(n->n) && n->n > 0);
	n = V(".INF");
	T_CHECK(n->t == RBK_N_NUM && isinf(n->n));
	n = V(".nan");
	T_CHECK(n->t == RBK_N_NUM && isnan(n->n));
	n = V(".NaN");
	T_CHECK(n->t == RBK_N_NUM && isnan(n->n));
	/* strtod words are not YAML */
	T_CHECK(V("inf")->t == RBK_N_STR);
	T_CHECK(V("nan")->t == RBK_N_STR);
	T_CHECK(V("infinity")->t == RBK_N_STR);
	T_CHECK(V(".iNf")->t == RBK_N_STR);
}

static void test_quoted_and_block_stay_strings(void)
{
	const rbk_node *n = V("\"1\"");
	T_CHECK(n->t == RBK_N_STR && n->style == RBK_STYLE_QUOTED);
	T_STREQ(n->text, "1");
	n = V("'true'");
	T_CHECK(n->t == RBK_N_STR && n->style == RBK_STYLE_QUOTED);
	T_STREQ(n->text, "true");
	n = V("\"null\"");
	T_CHECK(n->t == RBK_N_STR);
	n = V("1");
	T_CHECK(n->style == RBK_STYLE_PLAIN);

	rbk_diag d = {0};
	rbk_doc *doc = L("v: |\n  42\nw: >-\n  true\n", &d);
	T_CHECK(doc && d.n == 0);
	if (doc) {
		const rbk_node *v = rbk_node_get(doc->root, "v"), *w = rbk_node_get(doc->root, "w");
		T_CHECK(v->t == RBK_N_STR && v->style == RBK_STYLE_BLOCK);
		T_STREQ(v->text, "42\n");
		T_CHECK(w->t == RBK_N_STR && w->style == RBK_STYLE_BLOCK);
		T_STREQ(w->text, "true");
	}
	rbk_doc_free(doc);
	rbk_diag_free(&d);
}

static void test_escapes_unescaped(void)
{
	const rbk_node *n = V("\"a\\tb\\u00e9\"");
	T_CHECK(n->t == RBK_N_STR);
	T_STREQ(n->text, "a\tb\xc3\xa9");
	T_CHECK(n->len == 5);
	n = V("'it''s'");
	T_STREQ(n->text, "it's");
}

/* ---- places ---- */

static void test_places_of_nodes(void)
{
	rbk_diag d = {0};
	rbk_doc *doc = L("# comment\n"
			 "top:\n"
			 "  key: value\n"
			 "  list:\n"
			 "    - one\n"
			 "    -   \"two\"\n"
			 "  flow: {a: 1, b: [x, y]}\n",
			 &d);
	T_CHECK(doc != NULL);
	if (!doc)
		return;
	const rbk_node *root = doc->root;
	T_CHECK(root->t == RBK_N_MAP && root->line == 2 && root->col == 1);
	T_CHECK(root->keys[0]->line == 2 && root->keys[0]->col == 1);
	const rbk_node *top = rbk_node_get(root, "top");
	T_CHECK(top->t == RBK_N_MAP && top->line == 3 && top->col == 3);
	const rbk_node *v = rbk_node_get(top, "key");
	T_CHECK(v->line == 3 && v->col == 8);
	const rbk_node *list = rbk_node_get(top, "list");
	T_CHECK(list->t == RBK_N_SEQ && list->count == 2);
	T_CHECK(list->line == 5 && list->col == 5);
	T_CHECK(list->vals[0]->line == 5 && list->vals[0]->col == 7);
	T_CHECK(list->vals[1]->line == 6 && list->vals[1]->col == 9); /* the opening quote */
	const rbk_node *flow = rbk_node_get(top, "flow");
	T_CHECK(flow->line == 7 && flow->col == 9);
	const rbk_node *b = rbk_node_get(flow, "b");
	T_CHECK(b->line == 7 && b->col == 19);
	T_CHECK(b->vals[1]->line == 7 && b->vals[1]->col == 23);
	T_CHECK(flow->keys[1]->line == 7 && flow->keys[1]->col == 16);
	rbk_doc_free(doc);
	rbk_diag_free(&d);
}

static void test_doc_keeps_bytes_and_name(void)
{
	const char *src = "a: 1\nb: [2, 3]\n";
	rbk_diag d = {0};
	rbk_doc *doc = L(src, &d);
	T_CHECK(doc != NULL);
	if (doc) {
		T_STREQ(doc->file, "t.yaml");
		T_STREQ(doc->bytes, src);
		T_CHECK(doc->size == strlen(src));
		T_CHECK(doc->root->count == 2);
	}
	rbk_doc_free(doc);
	rbk_diag_free(&d);
}

static void test_node_helpers(void)
{
	rbk_diag d = {0};
	rbk_doc *doc = L("m: {k: v}\ns: [1]\ni: 1\nn: 1.5\nb: true\nz: ~\nt: x\n", &d);
	T_CHECK(doc != NULL);
	if (!doc)
		return;
	const rbk_node *r = doc->root;
	T_STREQ(rbk_node_type_name(rbk_node_get(r, "m")), "a map");
	T_STREQ(rbk_node_type_name(rbk_node_get(r, "s")), "a list");
	T_STREQ(rbk_node_type_name(rbk_node_get(r, "i")), "an integer");
	T_STREQ(rbk_node_type_name(rbk_node_get(r, "n")), "a number");
	T_STREQ(rbk_node_type_name(rbk_node_get(r, "b")), "a bool");
	T_STREQ(rbk_node_type_name(rbk_node_get(r, "z")), "null");
	T_STREQ(rbk_node_type_name(rbk_node_get(r, "t")), "a string");
	T_CHECK(rbk_node_get(r, "missing") == NULL);
	T_CHECK(rbk_node_get(rbk_node_get(r, "s"), "k") == NULL); /* not a map */
	T_CHECK(rbk_node_get(NULL, "k") == NULL);
	rbk_doc_free(doc);
	rbk_diag_free(&d);
}

/* ---- keys ---- */

static void test_duplicate_key_names_first_place(void)
{
	T_STREQ(lerr("a: 1\nb: 2\na: 3\n"), "3:1: duplicate key 'a' (first defined at 1:1)");
	T_STREQ(lerr("outer:\n  x: 1\n  y: 2\n  x: 3\n"), "4:3: duplicate key 'x' (first defined at 2:3)");
	T_STREQ(lerr("m: {k: 1, j: 2, k: 3}\n"), "1:17: duplicate key 'k' (first defined at 1:5)");
	/* the same key in two different maps is fine */
	T_STREQ(lerr("a: {k: 1}\nb: {k: 2}\n"), "ok");
}

static void test_duplicate_key_reported_once(void)
{
	rbk_diag d = {0};
	rbk_doc *doc = L("a: 1\na: 2\na: 3\n", &d);
	T_CHECK(doc == NULL);
	T_CHECK(d.n == 1);
	rbk_diag_free(&d);
}

static void test_non_scalar_keys(void)
{
	T_STREQ(lerr("? [a, b]\n: 1\n"), "1:3: a map key must be a plain value, not a list or map");
	T_STREQ(lerr("x: 1\n? {k: v}\n: 2\n"), "2:3: a map key must be a plain value, not a list or map");
	T_STREQ(lerr("? |\n  block\n: 1\n"), "ok"); /* a block scalar key is still a scalar */
}

/* ---- syntax and structure ---- */

static void test_syntax_error_place(void)
{
	const char *e = lerr("a: 1\nb: [1, 2\nc: 3\n");
	T_STREQ(e, "3:2: YAML syntax: did not find expected ',' or ']' while parsing a flow sequence (line 2)");
	e = lerr("a: 1\n  b: 2\n");
	T_STARTS(e, "2:4: YAML syntax: mapping values are not allowed in this context");
	e = lerr("k: \"unterminated\n");
	T_STARTS(e, "2:1: YAML syntax: found unexpected end of stream");
	T_CHECK(contains(e, "while scanning a quoted scalar (line 1)"));
}

static void test_unknown_alias(void)
{
	T_STREQ(lerr("a: 1\nb: *nope\n"), "2:4: unknown alias '*nope'");
}

static void test_second_document_refused(void)
{
	T_STREQ(lerr("a: 1\n---\nb: 2\n"), "2:1: a runbook file holds one YAML document; found a second one");
	T_STREQ(lerr("--- \na: 1\n...\n--- \nb: 2\n"),
		"4:1: a runbook file holds one YAML document; found a second one");
	/* one explicit document with an end marker is fine */
	T_STREQ(lerr("---\na: 1\n...\n"), "ok");
}

static void test_empty_file(void)
{
	T_STREQ(lerr(""), "1:1: the file is empty");
	T_STREQ(lerr("# only a comment\n\n"), "1:1: the file is empty");
	T_STREQ(lerr("\n\n   \n"), "1:1: the file is empty");
	/* an explicit null document is not empty: the model reports its type */
	rbk_diag d = {0};
	rbk_doc *doc = L("~\n", &d);
	T_CHECK(doc && doc->root->t == RBK_N_NULL);
	rbk_doc_free(doc);
	rbk_diag_free(&d);
}

static void test_tags(void)
{
	T_STREQ(lerr("a: !foo 1\n"), "1:4: unsupported YAML tag '!foo'");
	T_STREQ(lerr("a:\n  b: !!binary aGk=\n"), "2:6: unsupported YAML tag 'tag:yaml.org,2002:binary'");
	T_STREQ(lerr("a: !!set {x: ~}\n"), "1:4: unsupported YAML tag 'tag:yaml.org,2002:set'");
	T_STREQ(lerr("a: !!python/object:os.system {}\n"),
		"1:4: unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'");
	/* !!str forces a string */
	const rbk_node *n = V("!!str 1");
	T_CHECK(n->t == RBK_N_STR);
	T_STREQ(n->text, "1");
	n = V("!!str true");
	T_CHECK(n->t == RBK_N_STR);
	T_STREQ(n->text, "true");
	/* the standard collection tags are accepted */
	T_STREQ(lerr("a: !!map {k: 1}\nb: !!seq [1]\n"), "ok");
}

/* ---- anchors and aliases ---- */

static void test_anchor_alias_copied(void)
{
	rbk_diag d = {0};
	rbk_doc *doc = L("base: &b {retries: 3, tags: [x, y]}\n"
			 "copy: *b\n"
			 "scalar: &s hello\n"
			 "again: *s\n",
			 &d);
	T_CHECK(doc && d.n == 0);
	if (!doc)
		return;
	const rbk_node *base = rbk_node_get(doc->root, "base"), *copy = rbk_node_get(doc->root, "copy");
	T_CHECK(copy && copy->t == RBK_N_MAP && copy->count == 2);
	T_CHECK(copy != base);
	const rbk_node *r = rbk_node_get(copy, "retries");
	T_CHECK(r && r->t == RBK_N_INT && r->i == 3);
	T_CHECK(r != rbk_node_get(base, "retries"));
	const rbk_node *tags = rbk_node_get(copy, "tags");
	T_CHECK(tags && tags->count == 2 && tags->vals[1]->text != rbk_node_get(base, "tags")->vals[1]->text);
	T_STREQ(tags->vals[1]->text, "y");
	/* the copy is placed where the alias is used */
	T_CHECK(copy->line == 2 && copy->col == 7);
	const rbk_node *again = rbk_node_get(doc->root, "again");
	T_CHECK(again->t == RBK_N_STR && again->line == 4 && again->col == 8);
	T_STREQ(again->text, "hello");
	rbk_doc_free(doc); /* copies are freed independently (ASan) */
	rbk_diag_free(&d);
}

static void test_alias_merge_key_is_plain_key(void)
{
	/* no YAML 1.1 merge magic: '<<' is an ordinary key */
	rbk_diag d = {0};
	rbk_doc *doc = L("a: &a {x: 1}\nb: {<<: *a, y: 2}\n", &d);
	T_CHECK(doc != NULL);
	if (doc) {
		const rbk_node *b = rbk_node_get(doc->root, "b");
		T_CHECK(rbk_node_get(b, "x") == NULL);
		T_CHECK(rbk_node_get(b, "<<") && rbk_node_get(b, "<<")->t == RBK_N_MAP);
	}
	rbk_doc_free(doc);
	rbk_diag_free(&d);
}

static long maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void test_billion_laughs_refused(void)
{
	/* 9 levels of 10 aliases each: 10^9 nodes if expanded. */
	char src[4096];
	size_t o = 0;
	o += (size_t)snprintf(src + o, sizeof src - o, "l0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
	for (int lv = 1; lv <= 9; lv++) {
		o += (size_t)snprintf(src + o, sizeof src - o, "l%d: &a%d [", lv, lv);
		for (int j = 0; j < 10; j++)
			o += (size_t)snprintf(src + o, sizeof src - o, "%s*a%d", j ? ", " : "", lv - 1);
		o += (size_t)snprintf(src + o, sizeof src - o, "]\n");
	}
	long rss0 = maxrss_kb();
	clock_t t0 = clock();
	rbk_diag d = {0};
	rbk_doc *doc = L(src, &d);
	double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	long grown_kb = maxrss_kb() - rss0;
	T_CHECK(doc == NULL);
	T_CHECK(d.n == 1);
	if (d.n) {
		T_STREQ(d.items[0].msg, "document too large: more than 100000 nodes after expanding aliases");
		T_CHECK(d.items[0].line == 5); /* stops at level 4: 10 x 11111 > 100000 */
	}
	T_CHECK(secs < 2.0);
	T_CHECK(grown_kb < 200 * 1024);
	rbk_doc_free(doc);
	rbk_diag_free(&d);
}

static void test_node_limit_without_aliases(void)
{
	/* 100001 scalars in one flow list is over the limit even unaliased */
	size_t n = 100001;
	char *src = malloc(n * 2 + 8);
	size_t o = 0;
	src[o++] = '[';
	for (size_t i = 0; i < n; i++) {
		src[o++] = '1';
		src[o++] = ',';
	}
	src[o - 1] = ']';
	src[o] = '\0';
	const char *e = lerr(src);
	T_CHECK(contains(e, "document too large: more than 100000 nodes"));
	/* and 50000 are fine */
	src[50000 * 2 - 1] = ']';
	src[50000 * 2] = '\0';
	T_STREQ(lerr(src), "ok");
	free(src);
}

static void test_alias_within_limit_ok(void)
{
	/* 3 levels × 10 = 1000 leaves: expanded fine */
	const char *src = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
			  "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			  "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
	rbk_diag d = {0};
	rbk_doc *doc = L(src, &d);
	T_CHECK(doc != NULL);
	if (doc) {
		const rbk_node *c = rbk_node_get(doc->root, "c");
		T_CHECK(c->count == 10 && c->vals[9]->count == 10 && c->vals[9]->vals[9]->count == 10);
		T_CHECK(c->vals[9]->vals[9]->vals[9]->i == 10);
	}
	rbk_doc_free(doc);
	rbk_diag_free(&d);
}

/* ---- depth ---- */

static void test_depth_limit(void)
{
	char *ok = nested(RBK_LOAD_MAX_DEPTH);
	T_STREQ(lerr(ok), "ok");
	free(ok);
	char *deep = nested(RBK_LOAD_MAX_DEPTH + 2);
	const char *e = lerr(deep);
	T_CHECK(contains(e, "document nested too deeply"));
	T_STARTS(e, "1:66: "); /* the first collection past the limit */
	free(deep);
	/* very deep input is refused, not a stack overflow */
	char *huge = nested(5000);
	T_CHECK(contains(lerr(huge), "nested too deeply"));
	free(huge);
}

static void test_depth_limit_block_maps(void)
{
	char src[20000];
	size_t o = 0;
	for (int i = 0; i < 80; i++)
		o += (size_t)snprintf(src + o, sizeof src - o, "%*sk%d:\n", i, "", i);
	o += (size_t)snprintf(src + o, sizeof src - o, "%*sleaf: 1\n", 80, "");
	const char *e = lerr(src);
	T_CHECK(contains(e, "document nested too deeply"));
	T_STARTS(e, "66:66: ");
}

/* ---- size ---- */

static void test_oversized_input_refused(void)
{
	size_t n = RBK_LOAD_MAX_BYTES + 1;
	char *big = malloc(n + 1);
	memset(big, '#', n);
	memcpy(big, "a: 1\n", 5);
	big[n] = '\0';
	rbk_diag d = {0};
	rbk_doc *doc = NULL;
	T_CHECK(rbk_load_bytes(&doc, "big.yaml", big, n, &d) == -1);
	T_CHECK(doc == NULL && d.n == 1);
	if (d.n) {
		T_CHECK(d.items[0].line == 0 && d.items[0].col == 0);
		T_STREQ(d.items[0].file, "big.yaml");
		T_CHECK(contains(d.items[0].msg, "1048577 bytes, more than the 1048576 byte limit"));
	}
	rbk_diag_free(&d);
	/* exactly the limit is accepted */
	T_STREQ(lerr_n(big, RBK_LOAD_MAX_BYTES), "ok");
	free(big);
}

/* ---- odd bytes ---- */

static void test_nul_inside_scalar(void)
{
	T_STREQ(lerr("a: ok\nb: \"x\\0y\"\n"), "2:4: NUL character inside a scalar");
	T_STREQ(lerr("\"k\\0\": 1\n"), "1:1: NUL character inside a scalar");
	/* a raw NUL byte is not YAML at all */
	const char raw[] = "a: x\0y\n";
	T_STREQ(lerr_n(raw, sizeof raw - 1), "1:5: unreadable input: control characters are not allowed (byte 0x00)");
}

static void test_crlf_and_bom(void)
{
	rbk_diag d = {0};
	rbk_doc *doc = L("\xef\xbb\xbf" "a: 1\r\nb: two\r\n", &d);
	T_CHECK(doc != NULL);
	if (doc) {
		const rbk_node *b = rbk_node_get(doc->root, "b");
		T_CHECK(b && b->line == 2 && b->col == 4);
		T_STREQ(b ? b->text : NULL, "two");
		T_CHECK(rbk_node_get(doc->root, "a")->i == 1);
	}
	rbk_doc_free(doc);
	rbk_diag_free(&d);
}

/* ---- files ---- */

static char tmpdir[64];

static char *write_tmp(const char *name, const char *text, size_t len)
{
	static char path[256];
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		return path;
	fwrite(text, 1, len, f);
	fclose(f);
	return path;
}

static void test_load_file_ok(void)
{
	const char *text = "name: x\nlist: [1, 2]\n";
	char *p = write_tmp("ok.yaml", text, strlen(text));
	rbk_diag d = {0};
	rbk_doc *doc = NULL;
	T_CHECK(rbk_load_file(&doc, p, &d) == 0);
	T_CHECK(doc && d.n == 0);
	if (doc) {
		T_STREQ(doc->file, p);
		T_STREQ(doc->bytes, text);
		const rbk_node *l = rbk_node_get(doc->root, "list");
		T_CHECK(l && l->line == 2 && l->col == 7);
	}
	rbk_doc_free(doc);
	rbk_diag_free(&d);
}

static void test_load_file_errors_name_the_path(void)
{
	const char *text = "a: 1\na: 2\n";
	char *p = write_tmp("dup.yaml", text, strlen(text));
	rbk_diag d = {0};
	rbk_doc *doc = NULL;
	T_CHECK(rbk_load_file(&doc, p, &d) == -1);
	T_CHECK(doc == NULL && d.n == 1);
	if (d.n) {
		T_STREQ(d.items[0].file, p);
		T_CHECK(d.items[0].line == 2 && d.items[0].col == 1);
	}
	rbk_diag_free(&d);
}

static void test_load_file_missing(void)
{
	char path[128];
	snprintf(path, sizeof path, "%s/does-not-exist.yaml", tmpdir);
	rbk_diag d = {0};
	rbk_doc *doc = (rbk_doc *)&d; /* must be reset to NULL */
	T_CHECK(rbk_load_file(&doc, path, &d) == -1);
	T_CHECK(doc == NULL);
	T_CHECK(d.n == 1);
	if (d.n) {
		T_STREQ(d.items[0].file, path);
		T_CHECK(d.items[0].line == 0);
		T_STREQ(d.items[0].msg, "cannot open: No such file or directory");
	}
	rbk_diag_free(&d);
}

static void test_load_file_directory(void)
{
	rbk_diag d = {0};
	rbk_doc *doc = NULL;
	T_CHECK(rbk_load_file(&doc, tmpdir, &d) == -1);
	T_CHECK(doc == NULL && d.n == 1);
	if (d.n) {
		T_CHECK(d.items[0].line == 0);
		T_CHECK(contains(d.items[0].msg, "not a regular file") || contains(d.items[0].msg, "directory"));
	}
	rbk_diag_free(&d);
}

static void test_load_file_empty_and_oversized(void)
{
	char *p = write_tmp("empty.yaml", "", 0);
	rbk_diag d = {0};
	rbk_doc *doc = NULL;
	T_CHECK(rbk_load_file(&doc, p, &d) == -1);
	T_CHECK(d.n == 1 && d.items[0].line == 1 && d.items[0].col == 1);
	T_CHECK(d.n && !strcmp(d.items[0].msg, "the file is empty"));
	rbk_diag_free(&d);

	size_t n = 3 * 1024 * 1024;
	char *big = malloc(n);
	memset(big, '#', n);
	p = write_tmp("big.yaml", big, n);
	free(big);
	T_CHECK(rbk_load_file(&doc, p, &d) == -1);
	T_CHECK(doc == NULL && d.n == 1);
	if (d.n) {
		T_CHECK(d.items[0].line == 0);
		T_CHECK(contains(d.items[0].msg, "larger than the 1048576 byte limit"));
	}
	rbk_diag_free(&d);
}

static void test_diag_print_format(void)
{
	rbk_diag d = {0};
	rbk_diag_error(&d, "b.yaml", 1, 1, "late file");
	rbk_diag_error(&d, "a.yaml", 3, 2, "third %d", 3);
	rbk_diag_error(&d, "a.yaml", 0, 0, "no place");
	rbk_diag_error(&d, "a.yaml", 3, 2, "third %d", 3); /* duplicate: printed once */
	rbk_diag_error(&d, "a.yaml", 1, 9, "first");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	rbk_diag_print(&d, f);
	fclose(f);
	T_STREQ(buf, "a.yaml: error: no place\n"
		     "a.yaml:1:9: error: first\n"
		     "a.yaml:3:2: error: third 3\n"
		     "b.yaml:1:1: error: late file\n");
	T_CHECK(d.n == 5); /* printing does not drop items */
	free(buf);
	rbk_diag_free(&d);
	T_CHECK(d.n == 0 && d.items == NULL);
}

/* Regression tests of fixed bugs. */
/* libyaml reader errors (control characters, bad UTF-8) carry no
 * problem_mark, so they are all reported at 1:1. */
static void test_reader_error_place(void)
{
	T_STARTS(lerr("a: 1\nb: 2\nc: \x01\n"), "3:4: ");
	T_STARTS(lerr("a: 1\nb: 2\nc: \xff\xfe\n"), "3:4: ");
}

/* The depth limit is checked on the source nesting only: an alias copies a
 * deep subtree below another deep one, so depth grows without bound. */
static void test_alias_bypasses_depth_limit(void)
{
	char src[8192];
	size_t o = (size_t)snprintf(src, sizeof src, "l0: &a0 x\n");
	for (int k = 1; k <= 20; k++) {
		o += (size_t)snprintf(src + o, sizeof src - o, "l%d: &a%d ", k, k);
		for (int i = 0; i < 60; i++)
			src[o++] = '[';
		o += (size_t)snprintf(src + o, sizeof src - o, "*a%d", k - 1);
		for (int i = 0; i < 60; i++)
			src[o++] = ']';
		src[o++] = '\n';
	}
	src[o] = '\0';
	T_CHECK(contains(lerr(src), "nested too deeply")); /* loads, 1202 deep */
}

/* YAML 1.2 core ints include 0o17 and 0x1F. */
static void test_core_hex_octal_ints(void)
{
	const rbk_node *n = V("0x1F");
	T_CHECK(n->t == RBK_N_INT && n->i == 31);
	n = V("0o17");
	T_CHECK(n->t == RBK_N_INT && n->i == 15);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/rbk-test-load-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	T_RUN(test_null_forms);
	T_RUN(test_bool_forms);
	T_RUN(test_yaml11_bools_stay_strings);
	T_RUN(test_ints);
	T_RUN(test_not_ints);
	T_RUN(test_floats);
	T_RUN(test_inf_nan);
	T_RUN(test_quoted_and_block_stay_strings);
	T_RUN(test_escapes_unescaped);
	T_RUN(test_places_of_nodes);
	T_RUN(test_doc_keeps_bytes_and_name);
	T_RUN(test_node_helpers);
	T_RUN(test_duplicate_key_names_first_place);
	T_RUN(test_duplicate_key_reported_once);
	T_RUN(test_non_scalar_keys);
	T_RUN(test_syntax_error_place);
	T_RUN(test_unknown_alias);
	T_RUN(test_second_document_refused);
	T_RUN(test_empty_file);
	T_RUN(test_tags);
	T_RUN(test_anchor_alias_copied);
	T_RUN(test_alias_merge_key_is_plain_key);
	T_RUN(test_billion_laughs_refused);
	T_RUN(test_node_limit_without_aliases);
	T_RUN(test_alias_within_limit_ok);
	T_RUN(test_depth_limit);
	T_RUN(test_depth_limit_block_maps);
	T_RUN(test_oversized_input_refused);
	T_RUN(test_nul_inside_scalar);
	T_RUN(test_crlf_and_bom);
	T_RUN(test_load_file_ok);
	T_RUN(test_load_file_errors_name_the_path);
	T_RUN(test_load_file_missing);
	T_RUN(test_load_file_directory);
	T_RUN(test_load_file_empty_and_oversized);
	T_RUN(test_diag_print_format);
	T_RUN(test_reader_error_place);
	T_RUN(test_alias_bypasses_depth_limit);
	T_RUN(test_core_hex_octal_ints);
	rbk_doc_free(vdoc);
	const char *names[] = {"ok.yaml", "dup.yaml", "empty.yaml", "big.yaml"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		char p[256];
		snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
		unlink(p);
	}
	rmdir(tmpdir);
	return T_DONE();
}
