/* Unit tests for model: document tree -> runbook model (kinds, keys,
 * durations, retry, poll, params, schedules, edges, expressions, places). */
#include "runbook/load.h"
#include "base/dur.h"
#include "runbook/model.h"
#include "t.h"

#include <stdint.h>
#include <stdlib.h>

/* ---- helpers ---- */

typedef struct {
	rbk_diag d;
	rbk_doc *doc;
	rbk_runbook *rb;
	int rc; /* model result; -2 when the YAML did not load */
} fx;

static fx M(const char *src)
{
	fx f = {0};
	if (rbk_load_bytes(&f.doc, "m.yaml", src, strlen(src), &f.d) < 0) {
		printf("# YAML did not load: %s\n", f.d.n ? f.d.items[0].msg : "?");
		f.rc = -2;
		return f;
	}
	f.rc = rbk_model_build(&f.rb, f.doc, &f.d);
	if ((f.rc == 0) != (f.rb != NULL))
		printf("# rc %d does not agree with the model %p\n", f.rc, (void *)f.rb);
	return f;
}

static void X(fx *f)
{
	rbk_model_free(f->rb);
	rbk_doc_free(f->doc);
	rbk_diag_free(&f->d);
}

static void dump(const fx *f)
{
	for (size_t i = 0; i < f->d.n; i++)
		printf("#   %d:%d: %s\n", f->d.items[i].line, f->d.items[i].col, f->d.items[i].msg);
}

/* 1 when some diagnostic is at line:col and contains sub. */
static int has(const fx *f, int line, int col, const char *sub)
{
	for (size_t i = 0; i < f->d.n; i++)
		if (f->d.items[i].line == line && f->d.items[i].col == col && strstr(f->d.items[i].msg, sub))
			return 1;
	printf("# wanted %d:%d: ...%s... among %zu:\n", line, col, sub, f->d.n);
	dump(f);
	return 0;
}

/* 1 when the build failed with exactly one diagnostic, at line:col with sub. */
static int only(const fx *f, int line, int col, const char *sub)
{
	if (f->rc != -1 || f->d.n != 1) {
		printf("# wanted one error (%d:%d %s), got rc %d and %zu:\n", line, col, sub, f->rc, f->d.n);
		dump(f);
		return 0;
	}
	return has(f, line, col, sub);
}

static int built(const fx *f)
{
	if (f->rc == 0 && f->d.n == 0)
		return 1;
	printf("# wanted a model, got rc %d and %zu:\n", f->rc, f->d.n);
	dump(f);
	return 0;
}

static int any_msg(const fx *f, const char *sub)
{
	for (size_t i = 0; i < f->d.n; i++)
		if (strstr(f->d.items[i].msg, sub))
			return 1;
	return 0;
}

/* A runbook whose state 'a' has body (lines indented by 4; the first body
 * line is line 6, its keys at column 5), followed by an end state 'done'. */
static char srcbuf[8192];
static fx ST(const char *body)
{
	snprintf(srcbuf, sizeof srcbuf,
		 "rbk: 1\nname: t\nstart: a\nstates:\n  a:\n%s  done: {end: success}\n", body);
	return M(srcbuf);
}

/* A runbook with a params block (first param on line 4, at column 3). */
static fx PARAMS(const char *block)
{
	snprintf(srcbuf, sizeof srcbuf, "rbk: 1\nname: t\nparams:\n%sstart: a\nstates:\n  a: {end: success}\n",
		 block);
	return M(srcbuf);
}

/* A runbook with a schedule block (its first line is line 4). */
static fx SCHED(const char *block)
{
	snprintf(srcbuf, sizeof srcbuf,
		 "rbk: 1\nname: t\nparams:\n  env: {type: string, default: x}\nschedule:\n%sstart: a\n"
		 "states:\n  a: {end: success}\n",
		 block);
	return M(srcbuf);
}

static const rbk_state *S(const fx *f, const char *name)
{
	static rbk_state none;
	if (!f->rb)
		return &none;
	int i = rbk_model_state(f->rb, name);
	return i < 0 ? &none : &f->rb->states[i];
}

/* ---- whole runbooks ---- */

static void test_minimal_runbook(void)
{
	fx f = M("rbk: 1\nname: hello-world\ntitle: Hello\ndescription: says hi\nstart: greet\nstates:\n"
		 "  greet:\n    do: shell.exec\n    with: {argv: [echo, hi]}\n    next: done\n"
		 "  done:\n    end: success\n");
	T_CHECK(built(&f));
	if (f.rb) {
		T_STREQ(f.rb->name, "hello-world");
		T_STREQ(f.rb->title, "Hello");
		T_STREQ(f.rb->description, "says hi");
		T_STREQ(f.rb->start, "greet");
		T_CHECK(f.rb->start_pos.line == 5 && f.rb->start_pos.col == 8);
		T_STREQ(f.rb->on_failure, "fail"); /* the default */
		T_CHECK(f.rb->doc == f.doc);
		T_CHECK(f.rb->nstates == 2);
		const rbk_state *g = &f.rb->states[0];
		T_STREQ(g->name, "greet");
		T_CHECK(g->pos.line == 7 && g->pos.col == 3);
		T_STREQ(g->act.action, "shell.exec");
		T_CHECK(g->act.pos.line == 8 && g->act.pos.col == 9);
		T_CHECK(g->act.with && g->act.with->t == RBK_N_MAP);
		T_CHECK(g->nnext == 1 && !g->next_is_list);
		T_STREQ(g->next[0].to, "done");
		T_CHECK(g->next[0].to_pos.line == 10 && g->next[0].to_pos.col == 11);
		T_CHECK(g->next[0].guard.expr == NULL);
		/* defaults of an action state */
		T_CHECK(g->retry.attempts == 1 && g->retry.backoff == 1 && g->retry.max_delay_ms == -1);
		T_CHECK(g->timeout_ms == -1 && g->idempotent == -1 && !g->has_poll && !g->has_undo);
		T_CHECK(g->on_failure == NULL && g->nset == 0 && g->dry_run == NULL);
	}
	X(&f);
}

static void test_root_must_be_map(void)
{
	fx f = M("- a\n- b\n");
	T_CHECK(only(&f, 1, 1, "a runbook is a map with keys rbk, name, start and states, not a list"));
	X(&f);
	f = M("just text\n");
	T_CHECK(only(&f, 1, 1, "not a string"));
	X(&f);
}

static void test_missing_top_level_keys(void)
{
	fx f = M("title: nothing else\n");
	T_CHECK(f.rc == -1 && f.d.n == 4);
	T_CHECK(has(&f, 1, 1, "missing 'rbk: 1' (the format version)"));
	T_CHECK(has(&f, 1, 1, "missing 'name'"));
	T_CHECK(has(&f, 1, 1, "missing 'start' (the first state)"));
	T_CHECK(has(&f, 1, 1, "missing 'states'"));
	X(&f);
}

static void test_format_version(void)
{
	fx f = M("rbk: 2\nname: t\nstart: a\nstates:\n  a: {end: success}\n");
	T_CHECK(only(&f, 1, 6, "unsupported format version 2 (this rbk reads 'rbk: 1')"));
	X(&f);
	f = M("rbk: \"1\"\nname: t\nstart: a\nstates:\n  a: {end: success}\n");
	T_CHECK(only(&f, 1, 6, "'rbk' must be the integer 1 (the format version), not a string"));
	X(&f);
	f = M("rbk: 1.0\nname: t\nstart: a\nstates:\n  a: {end: success}\n");
	T_CHECK(only(&f, 1, 6, "not a number"));
	X(&f);
}

static void test_names_of_runbook_and_states(void)
{
	fx f = M("rbk: 1\nname: My_Book\nstart: a\nstates:\n  a: {end: success}\n");
	T_CHECK(only(&f, 2, 7, "bad runbook name 'My_Book' (use [a-z0-9][a-z0-9-]*)"));
	X(&f);
	f = M("rbk: 1\nname: -lead\nstart: a\nstates:\n  a: {end: success}\n");
	T_CHECK(only(&f, 2, 7, "bad runbook name '-lead'"));
	X(&f);
	f = M("rbk: 1\nname: ok-2\nstart: a\nstates:\n  a: {end: success}\n  Bad-State: {end: failure}\n");
	T_CHECK(only(&f, 6, 3, "bad state name 'Bad-State' (use [a-z0-9_]+)"));
	X(&f);
	f = M("rbk: 1\nname: t\nstart: a\nstates:\n  a: {end: success}\n  fail: {end: failure}\n"
	      "  rollback: {end: failure}\n");
	T_CHECK(f.rc == -1 && f.d.n == 2);
	T_CHECK(has(&f, 6, 3, "state name 'fail' is reserved: on_failure uses it as a keyword"));
	T_CHECK(has(&f, 7, 3, "state name 'rollback' is reserved"));
	X(&f);
	f = M("rbk: 1\nname: [x]\nstart: a\nstates:\n  a: {end: success}\n");
	T_CHECK(only(&f, 2, 7, "'name' must be a string, not a list"));
	X(&f);
}

static void test_states_shape(void)
{
	fx f = M("rbk: 1\nname: t\nstart: a\nstates: {}\n");
	T_CHECK(only(&f, 4, 9, "'states' is empty"));
	X(&f);
	f = M("rbk: 1\nname: t\nstart: a\nstates:\n  - a\n");
	T_CHECK(only(&f, 5, 3, "'states' must be a map, not a list"));
	X(&f);
	f = M("rbk: 1\nname: t\nstart: a\nstates:\n  a: shell.exec\n");
	T_CHECK(only(&f, 5, 6, "state 'a' must be a map, not a string"));
	X(&f);
	f = M("rbk: 1\nname: t\nstart: [a]\nstates:\n  a: {end: success}\n");
	T_CHECK(only(&f, 3, 8, "'start' must be a string, not a list"));
	X(&f);
}

static void test_top_level_unknown_key_hint(void)
{
	fx f = M("rbk: 1\nname: t\nstart: a\nstats: {}\nstates:\n  a: {end: success}\n");
	T_CHECK(only(&f, 4, 1, "unknown key 'stats' at the top level (did you mean 'states'?)"));
	X(&f);
	f = M("rbk: 1\nname: t\nstart: a\ncompletely_unrelated: 1\nstates:\n  a: {end: success}\n");
	T_CHECK(only(&f, 4, 1, "unknown key 'completely_unrelated' at the top level"));
	T_CHECK(!any_msg(&f, "did you mean"));
	X(&f);
}

static void test_runbook_on_failure_and_lock(void)
{
	fx f = M("rbk: 1\nname: t\non_failure: rollback\nlock: \"deploy-{{ params.env }}\"\nstart: a\n"
		 "states:\n  a: {end: success}\n");
	T_CHECK(built(&f));
	if (f.rb) {
		T_STREQ(f.rb->on_failure, "rollback");
		T_CHECK(f.rb->on_failure_pos.line == 3 && f.rb->on_failure_pos.col == 13);
		T_STREQ(f.rb->lock, "deploy-{{ params.env }}");
		T_CHECK(f.rb->lock_pos.line == 4 && f.rb->lock_pos.col == 7);
	}
	X(&f);
	f = M("rbk: 1\nname: t\nlock: \"deploy-{{ params.env\"\nstart: a\nstates:\n  a: {end: success}\n");
	T_CHECK(only(&f, 3, 15, "'lock': unclosed '{{'"));
	X(&f);
}

/* ---- kinds ---- */

static void test_every_kind_detected(void)
{
	fx f = M("rbk: 1\nname: t\nstart: act\nstates:\n"
		 "  act: {do: shell.exec, next: dec}\n"
		 "  dec:\n    next:\n      - if: \"1 == 1\"\n        to: appr\n      - to: bad\n"
		 "  appr: {approval: {prompt: go?}, next: w}\n"
		 "  w: {wait: 5m, next: c}\n"
		 "  c: {call: child-book, next: fin}\n"
		 "  fin: {end: success}\n"
		 "  bad: {end: failure}\n");
	T_CHECK(built(&f));
	T_CHECK(S(&f, "act")->kind == RBK_S_ACTION);
	T_CHECK(S(&f, "dec")->kind == RBK_S_DECISION);
	T_CHECK(S(&f, "appr")->kind == RBK_S_APPROVAL);
	T_CHECK(S(&f, "w")->kind == RBK_S_WAIT && S(&f, "w")->wait_ms == 300000);
	T_CHECK(S(&f, "c")->kind == RBK_S_CALL);
	T_STREQ(S(&f, "c")->act.action, "child-book");
	T_CHECK(S(&f, "fin")->kind == RBK_S_END && S(&f, "fin")->end_success);
	T_CHECK(S(&f, "bad")->kind == RBK_S_END && !S(&f, "bad")->end_success);
	T_STREQ(S(&f, "appr")->approval.prompt, "go?");
	T_STREQ(rbk_model_kind_name(RBK_S_ACTION), "action");
	T_STREQ(rbk_model_kind_name(RBK_S_DECISION), "decision");
	T_STREQ(rbk_model_kind_name(RBK_S_APPROVAL), "approval");
	T_STREQ(rbk_model_kind_name(RBK_S_WAIT), "wait");
	T_STREQ(rbk_model_kind_name(RBK_S_CALL), "call");
	T_STREQ(rbk_model_kind_name(RBK_S_END), "end");
	X(&f);
}

static void test_two_kinds_in_one_state(void)
{
	fx f = ST("    do: shell.exec\n    wait: 5s\n    next: done\n");
	T_CHECK(only(&f, 6, 5, "state 'a' is both 'do' and 'wait': a state is exactly one kind"));
	X(&f);
	/* three kind keys: reported once, naming the first two */
	f = ST("    call: other\n    end: success\n    approval: {}\n    next: done\n");
	T_CHECK(f.rc == -1);
	T_CHECK(has(&f, 6, 5, "state 'a' is both 'call' and 'end'"));
	T_CHECK(f.d.n == 1);
	X(&f);
}

static void test_end_value(void)
{
	fx f = ST("    end: maybe\n");
	T_CHECK(only(&f, 6, 10, "'end' must be success or failure, not 'maybe'"));
	X(&f);
	f = ST("    end: [x]\n");
	T_CHECK(only(&f, 6, 10, "'end' must be success or failure, not 'a list'"));
	X(&f);
	f = ST("    end: failure\n    description: gives up\n");
	T_CHECK(built(&f));
	T_CHECK(S(&f, "a")->kind == RBK_S_END && !S(&f, "a")->end_success);
	T_STREQ(S(&f, "a")->description, "gives up");
	X(&f);
}

/* ---- allowed and forbidden keys per kind ---- */

static void test_action_all_keys(void)
{
	fx f = ST("    description: does it\n"
		  "    do: shell.exec\n"
		  "    with: {argv: [echo, \"{{ params.x }}\"]}\n"
		  "    undo: {do: shell.exec, with: {argv: [undo]}}\n"
		  "    retry: {attempts: 3, delay: 1s, backoff: 2.5, max_delay: 1m}\n"
		  "    timeout: 30s\n"
		  "    poll: {until: \"steps.a.exit_code == 0\", every: 5s, for: 5m}\n"
		  "    idempotent: true\n"
		  "    dry_run: {stdout: fake}\n"
		  "    next: done\n"
		  "    on_failure: rollback\n"
		  "    set: {x: \"1 + 1\"}\n");
	T_CHECK(built(&f));
	const rbk_state *a = S(&f, "a");
	T_CHECK(a->kind == RBK_S_ACTION);
	T_STREQ(a->description, "does it");
	T_CHECK(a->has_undo);
	T_STREQ(a->undo.action, "shell.exec");
	T_CHECK(a->undo.pos.line == 9 && a->undo.pos.col == 16);
	T_CHECK(a->undo.with && a->undo.with->t == RBK_N_MAP);
	T_CHECK(a->retry.attempts == 3 && a->retry.delay_ms == 1000 && a->retry.backoff == 2.5 &&
		a->retry.max_delay_ms == 60000);
	T_CHECK(a->timeout_ms == 30000);
	T_CHECK(a->has_poll && a->poll.every_ms == 5000 && a->poll.for_ms == 300000 && a->poll.until.expr);
	T_STREQ(a->poll.until.src, "steps.a.exit_code == 0");
	T_CHECK(a->poll.until.pos.line == 12 && a->poll.until.pos.col == 20);
	T_CHECK(a->idempotent == 1);
	T_CHECK(a->dry_run && a->dry_run->t == RBK_N_MAP);
	T_STREQ(a->on_failure, "rollback");
	T_CHECK(a->on_failure_pos.line == 16 && a->on_failure_pos.col == 17);
	T_CHECK(a->nset == 1);
	X(&f);
}

static void test_other_kinds_all_keys(void)
{
	fx f = M("rbk: 1\nname: t\nstart: d\nstates:\n"
		 "  d:\n    description: x\n    next: [{if: \"true\", to: ap}, {to: w}]\n"
		 "    on_failure: w\n    set: {v: \"2\"}\n"
		 "  ap:\n    description: x\n    approval: {prompt: p, approvers: [a, b], distinct: true}\n"
		 "    timeout: 1h\n    next: w\n    on_failure: fin\n    set: {v: \"3\"}\n"
		 "  w:\n    description: x\n    wait: 1d\n    next: c\n    on_failure: fin\n    set: {v: \"4\"}\n"
		 "  c:\n    description: x\n    call: child\n    with: {p: 1}\n    undo: {do: shell.exec}\n"
		 "    retry: {attempts: 2}\n    timeout: 2h\n    idempotent: false\n    dry_run: {}\n"
		 "    next: fin\n    on_failure: rollback\n    set: {v: \"5\"}\n"
		 "  fin:\n    description: x\n    end: success\n");
	T_CHECK(built(&f));
	const rbk_state *ap = S(&f, "ap");
	T_CHECK(ap->approval.napprovers == 2 && ap->approval.distinct);
	T_STREQ(ap->approval.approvers[1], "b");
	T_CHECK(ap->timeout_ms == 3600000);
	T_CHECK(ap->approval.timeout_ms == 3600000); /* falls back to the state's timeout */
	T_CHECK(S(&f, "w")->wait_ms == 86400000);
	const rbk_state *c = S(&f, "c");
	T_CHECK(c->has_undo && c->retry.attempts == 2 && c->timeout_ms == 7200000 && c->idempotent == 0);
	T_CHECK(c->act.with && rbk_node_get(c->act.with, "p"));
	T_STREQ(c->on_failure, "rollback");
	T_STREQ(S(&f, "d")->on_failure, "w");
	X(&f);
}

static void test_forbidden_keys_per_kind(void)
{
	static const struct {
		const char *body, *msg;
	} cases[] = {
		{"    retry: {attempts: 2}\n    next: [{to: done}]\n",
		 "key 'retry' does not apply to a decision state ('a')"},
		{"    with: {x: 1}\n    next: [{to: done}]\n", "key 'with' does not apply to a decision state ('a')"},
		{"    dry_run: {}\n    next: [{to: done}]\n", "key 'dry_run' does not apply to a decision state"},
		{"    undo: {do: shell.exec}\n    wait: 1s\n    next: done\n",
		 "key 'undo' does not apply to a wait state ('a')"},
		{"    timeout: 1s\n    wait: 1s\n    next: done\n", "key 'timeout' does not apply to a wait state"},
		{"    with: {}\n    approval: {}\n    next: done\n",
		 "key 'with' does not apply to an approval state ('a')"},
		{"    retry: {attempts: 2}\n    approval: {}\n    next: done\n",
		 "key 'retry' does not apply to an approval state"},
		{"    idempotent: true\n    approval: {}\n    next: done\n",
		 "key 'idempotent' does not apply to an approval state"},
		{"    poll: {until: \"true\", every: 1s, for: 1m}\n    call: child\n    next: done\n",
		 "key 'poll' does not apply to a call state ('a')"},
		{"    next: done\n    end: success\n", "key 'next' does not apply to an end state ('a')"},
		{"    on_failure: fail\n    end: success\n", "key 'on_failure' does not apply to an end state"},
		{"    set: {x: \"1\"}\n    end: success\n", "key 'set' does not apply to an end state"},
		{"    timeout: 1s\n    end: failure\n", "key 'timeout' does not apply to an end state"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		fx f = ST(cases[i].body);
		if (!only(&f, 6, 5, cases[i].msg))
			T_CHECK(!cases[i].msg);
		X(&f);
	}
}

static void test_unknown_state_key_hints(void)
{
	fx f = ST("    do: shell.exec\n    nxt: done\n    next: done\n");
	T_CHECK(only(&f, 7, 5, "unknown key 'nxt' in state 'a' (did you mean 'next'?)"));
	X(&f);
	f = ST("    do: shell.exec\n    rety: {attempts: 2}\n    next: done\n");
	T_CHECK(only(&f, 7, 5, "unknown key 'rety' in state 'a' (did you mean 'retry'?)"));
	X(&f);
	f = ST("    do: shell.exec\n    onfailure: fail\n    next: done\n");
	T_CHECK(only(&f, 7, 5, "(did you mean 'on_failure'?)"));
	X(&f);
	f = ST("    do: shell.exec\n    frobnicate: 1\n    next: done\n");
	T_CHECK(only(&f, 7, 5, "unknown key 'frobnicate' in state 'a'"));
	T_CHECK(!any_msg(&f, "did you mean"));
	X(&f);
}

static void test_unknown_nested_key_hints(void)
{
	fx f = ST("    do: shell.exec\n    retry: {attempt: 2}\n    next: done\n");
	T_CHECK(has(&f, 7, 13, "unknown key 'attempt' in 'retry' (did you mean 'attempts'?)"));
	X(&f);
	f = ST("    do: shell.exec\n    poll: {until: \"true\", evry: 1s, for: 1m}\n    next: done\n");
	T_CHECK(has(&f, 7, 27, "unknown key 'evry' in 'poll' (did you mean 'every'?)"));
	X(&f);
	f = ST("    approval: {approver: [x]}\n    next: done\n");
	T_CHECK(only(&f, 6, 16, "unknown key 'approver' in 'approval' (did you mean 'approvers'?)"));
	X(&f);
	f = ST("    next:\n      - iff: \"true\"\n        to: done\n      - to: done\n");
	T_CHECK(has(&f, 7, 9, "unknown key 'iff' in a branch of state 'a' (did you mean 'if'?)"));
	X(&f);
	f = ST("    do: shell.exec\n    undo: {do: shell.exec, wiht: {}}\n    next: done\n");
	T_CHECK(only(&f, 7, 28, "unknown key 'wiht' in 'undo' (did you mean 'with'?)"));
	X(&f);
	f = PARAMS("  x: {type: int, defualt: 3}\n");
	T_CHECK(only(&f, 4, 18, "unknown key 'defualt' in param 'x' (did you mean 'default'?)"));
	X(&f);
}

/* ---- durations ---- */

static void test_duration_values_in_wait(void)
{
	static const struct {
		const char *text;
		int64_t ms;
	} good[] = {{"500ms", 500},	   {"30s", 30000},	{"5m", 300000}, {"2h", 7200000},
		    {"1d", 86400000},	   {"0s", 0},		{"007s", 7000}, {"\"90s\"", 90000}};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		char body[128];
		snprintf(body, sizeof body, "    wait: %s\n    next: done\n", good[i].text);
		fx f = ST(body);
		T_CHECK(built(&f));
		T_CHECK(S(&f, "a")->wait_ms == good[i].ms);
		X(&f);
	}
}

static void test_bad_durations(void)
{
	static const char *const bad[] = {"30 seconds", "1.5s", "-1s", "9999999999999999d", "5M", "30m1h", "1m1m",
					  "s", "30", "\"\"", "1w", "+1s"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char body[128], want[200];
		snprintf(body, sizeof body, "    wait: %s\n    next: done\n", bad[i]);
		const char *shown = bad[i][0] == '"' ? "" : bad[i];
		snprintf(want, sizeof want, "'wait': bad duration '%s' (write a whole number and a unit: 500ms, 30s, 5m, 2h, 1d, or a sum such as 1h30m)",
			 shown);
		fx f = ST(body);
		if (!only(&f, 6, 11, want))
			T_CHECK(!bad[i]);
		X(&f);
	}
	fx f = ST("    wait: [1s]\n    next: done\n");
	T_CHECK(only(&f, 6, 11, "'wait' must be a duration such as 30s, not a list"));
	X(&f);
	f = ST("    wait: 1.5\n    next: done\n");
	T_CHECK(only(&f, 6, 11, "'wait' must be a duration such as 30s, not a number"));
	X(&f);
	f = ST("    wait:\n    next: done\n");
	T_CHECK(only(&f, 6, 10, "'wait' must be a duration such as 30s, not null"));
	X(&f);
	f = ST("    do: shell.exec\n    timeout: forever\n    next: done\n");
	T_CHECK(only(&f, 7, 14, "'timeout': bad duration 'forever'"));
	X(&f);
}

static void test_model_duration_parse(void)
{
	T_CHECK(rbk_dur_parse("500ms") == 500);
	T_CHECK(rbk_dur_parse("30s") == 30000);
	T_CHECK(rbk_dur_parse("5m") == 300000);
	T_CHECK(rbk_dur_parse("2h") == 7200000);
	T_CHECK(rbk_dur_parse("1d") == 86400000);
	T_CHECK(rbk_dur_parse("0ms") == 0);
	T_CHECK(rbk_dur_parse("9223372036854775807ms") == INT64_MAX);
	T_CHECK(rbk_dur_parse("106751991167d") == 106751991167LL * 86400000);
	T_CHECK(rbk_dur_parse("106751991168d") == -1);
	T_CHECK(rbk_dur_parse("9223372036854775808ms") == -1);
	T_CHECK(rbk_dur_parse("18446744073709551616ms") == -1);
	T_CHECK(rbk_dur_parse("99999999999999999999999s") == -1);
	T_CHECK(rbk_dur_parse("9999999999999999d") == -1);
	T_CHECK(rbk_dur_parse("30 seconds") == -1);
	T_CHECK(rbk_dur_parse("30 s") == -1);
	T_CHECK(rbk_dur_parse("1.5s") == -1);
	T_CHECK(rbk_dur_parse("-1s") == -1);
	T_CHECK(rbk_dur_parse("+1s") == -1);
	T_CHECK(rbk_dur_parse(" 1s") == -1);
	T_CHECK(rbk_dur_parse("1s ") == -1);
	T_CHECK(rbk_dur_parse("1") == -1);
	T_CHECK(rbk_dur_parse("ms") == -1);
	T_CHECK(rbk_dur_parse("") == -1);
	T_CHECK(rbk_dur_parse(NULL) == -1);
	T_CHECK(rbk_dur_parse("1S") == -1);
	T_CHECK(rbk_dur_parse("1sec") == -1);
}

static const char *dtext(int64_t ms)
{
	static char buf[4][32];
	static int k;
	char *b = buf[k++ % 4];
	rbk_dur_text(ms, b, 32);
	return b;
}

static void test_model_duration_text(void)
{
	T_STREQ(dtext(0), "0ms");
	T_STREQ(dtext(1), "1ms");
	T_STREQ(dtext(999), "999ms");
	T_STREQ(dtext(1000), "1s");
	T_STREQ(dtext(1500), "1500ms");
	T_STREQ(dtext(60000), "1m");
	T_STREQ(dtext(90000), "90s");
	T_STREQ(dtext(3600000), "1h");
	T_STREQ(dtext(5400000), "90m");
	T_STREQ(dtext(86400000), "1d");
	T_STREQ(dtext(90000000), "25h");
	T_STREQ(dtext(172800000), "2d");
	char small[3];
	rbk_dur_text(90000, small, sizeof small);
	T_STREQ(small, "90"); /* truncated, still terminated */
}

static void test_model_duration_round_trip(void)
{
	static const int64_t ms[] = {0, 1, 7, 999, 1000, 1001, 59000, 60000, 61000, 3599000, 3600000, 5400000,
				     86399999, 86400000, 90000000, 604800000, 31536000000LL, INT64_MAX};
	for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) {
		const char *t = dtext(ms[i]);
		if (rbk_dur_parse(t) != ms[i]) {
			printf("# %lld -> %s -> %lld\n", (long long)ms[i], t, (long long)rbk_dur_parse(t));
			T_CHECK(rbk_dur_parse(t) == ms[i]);
		}
	}
	static const char *const texts[] = {"1ms", "1500ms", "90s", "1m", "90m", "25h", "2d", "0ms"};
	for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
		T_STREQ(dtext(rbk_dur_parse(texts[i])), texts[i]);
	/* non-canonical texts come back in the largest exact unit */
	T_STREQ(dtext(rbk_dur_parse("120s")), "2m");
	T_STREQ(dtext(rbk_dur_parse("24h")), "1d");
	T_STREQ(dtext(rbk_dur_parse("1000ms")), "1s");
}

/* ---- retry and poll ---- */

static void test_retry_attempts_bounds(void)
{
	static const struct {
		const char *v, *msg;
	} bad[] = {{"0", "not 0"},
		   {"1001", "not 1001"},
		   {"-1", "not -1"},
		   {"three", "not a string"},
		   {"2.5", "not a number"},
		   {"\"2\"", "not a string"}};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char body[160], want[160];
		snprintf(body, sizeof body, "    do: shell.exec\n    retry: {attempts: %s}\n    next: done\n", bad[i].v);
		snprintf(want, sizeof want, "'attempts' must be an integer from 1 to 1000, %s", bad[i].msg);
		fx f = ST(body);
		if (!only(&f, 7, 23, want))
			T_CHECK(!bad[i].v);
		X(&f);
	}
	fx f = ST("    do: shell.exec\n    retry: {attempts: 1000}\n    next: done\n");
	T_CHECK(built(&f) && S(&f, "a")->retry.attempts == 1000);
	X(&f);
	f = ST("    do: shell.exec\n    retry: {attempts: 1}\n    next: done\n");
	T_CHECK(built(&f) && S(&f, "a")->retry.attempts == 1);
	X(&f);
}

static void test_retry_other_fields(void)
{
	fx f = ST("    do: shell.exec\n    retry: {delay: 1s}\n    next: done\n");
	T_CHECK(only(&f, 7, 12, "'retry' in state 'a' needs 'attempts'"));
	X(&f);
	f = ST("    do: shell.exec\n    retry: 3\n    next: done\n");
	T_CHECK(only(&f, 7, 12, "'retry' must be a map, not an integer"));
	X(&f);
	static const struct {
		const char *v, *shown;
	} bad[] = {{"0.5", "0.5"}, {"101", "101"}, {"fast", "fast"}, {"0", "0"}, {"[2]", "a list"}};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char body[160], want[160];
		snprintf(body, sizeof body, "    do: shell.exec\n    retry: {attempts: 2, backoff: %s}\n    next: done\n",
			 bad[i].v);
		snprintf(want, sizeof want, "'backoff' must be a number from 1 to 100, not %s", bad[i].shown);
		f = ST(body);
		if (!only(&f, 7, 35, want))
			T_CHECK(!bad[i].v);
		X(&f);
	}
	f = ST("    do: shell.exec\n    retry: {attempts: 2, backoff: 100, delay: 250ms, max_delay: 2s}\n"
	       "    next: done\n");
	T_CHECK(built(&f));
	T_CHECK(S(&f, "a")->retry.backoff == 100 && S(&f, "a")->retry.delay_ms == 250 &&
		S(&f, "a")->retry.max_delay_ms == 2000);
	X(&f);
	f = ST("    do: shell.exec\n    retry: {attempts: 2, delay: soon}\n    next: done\n");
	T_CHECK(only(&f, 7, 33, "'delay': bad duration 'soon'"));
	X(&f);
}

static void test_poll_requirements(void)
{
	fx f = ST("    do: shell.exec\n    poll: {every: 5s, for: 1m}\n    next: done\n");
	T_CHECK(only(&f, 7, 11, "'poll' in state 'a' needs 'until'"));
	X(&f);
	f = ST("    do: shell.exec\n    poll: {until: \"true\", for: 1m}\n    next: done\n");
	T_CHECK(only(&f, 7, 11, "'poll' in state 'a' needs 'every'"));
	X(&f);
	f = ST("    do: shell.exec\n    poll: {until: \"true\", every: 1s}\n    next: done\n");
	T_CHECK(only(&f, 7, 11, "'poll' in state 'a' needs 'for'"));
	X(&f);
	f = ST("    do: shell.exec\n    poll: {}\n    next: done\n");
	T_CHECK(f.rc == -1 && f.d.n == 3);
	X(&f);
	f = ST("    do: shell.exec\n    poll: every 5s\n    next: done\n");
	T_CHECK(only(&f, 7, 11, "'poll' must be a map, not a string"));
	X(&f);
	f = ST("    do: shell.exec\n    poll: {until: true, every: 1s, for: 1m}\n    next: done\n");
	T_CHECK(only(&f, 7, 19, "'until' must be an expression (a string), not a bool"));
	X(&f);
	f = ST("    do: shell.exec\n    poll: {until: \"a == == b\", every: 1s, for: 1m}\n    next: done\n");
	T_CHECK(only(&f, 7, 25, "'until': unexpected '=='"));
	X(&f);
}

static void test_poll_until_braces_accepted(void)
{
	fx f = ST("    do: shell.exec\n    poll: {until: \"{{ steps.a.exit_code == 0 }}\", every: 1s, for: 1m}\n"
		  "    next: done\n");
	T_CHECK(built(&f));
	const rbk_state *a = S(&f, "a");
	T_CHECK(a->poll.until.expr != NULL);
	T_CHECK(a->poll.until.src && strstr(a->poll.until.src, "steps.a.exit_code == 0"));
	T_CHECK(a->poll.until.src && !strstr(a->poll.until.src, "{{"));
	T_CHECK(a->poll.until.off == 2);
	T_CHECK(a->poll.until.pos.line == 7 && a->poll.until.pos.col == 22);
	X(&f);
	/* text around the braces: a template, not an expression */
	f = ST("    do: shell.exec\n    poll: {until: \"x {{ 1 }}\", every: 1s, for: 1m}\n    next: done\n");
	T_CHECK(f.rc == -1 && any_msg(&f, "'until'"));
	X(&f);
}

/* ---- params ---- */

static void test_param_types(void)
{
	fx f = PARAMS("  s: {type: string, default: x, pattern: \"[a-z]+\", description: a string}\n"
		      "  i: {type: int, default: 3, min: 1, max: 10}\n"
		      "  n: {type: number, default: 2, min: 0.5}\n"
		      "  b: {type: bool, default: false}\n"
		      "  d: {type: duration, default: 10m}\n"
		      "  e: {type: enum, values: [red, green], default: green}\n"
		      "  k: {type: string, secret: true, env: API_KEY}\n");
	T_CHECK(built(&f));
	if (f.rb) {
		T_CHECK(f.rb->nparams == 7);
		const rbk_param *p = rbk_model_param(f.rb, "s");
		T_CHECK(p && p->type == RBK_P_STRING && p->def && !p->required);
		T_STREQ(p ? p->pattern : NULL, "[a-z]+");
		T_CHECK(p && p->pattern_pos.line == 4 && p->pattern_pos.col == 42);
		T_STREQ(p ? p->description : NULL, "a string");
		T_CHECK(p && p->pos.line == 4 && p->pos.col == 3);
		p = rbk_model_param(f.rb, "i");
		T_CHECK(p && p->type == RBK_P_INT && p->has_min && p->min == 1 && p->has_max && p->max == 10);
		p = rbk_model_param(f.rb, "n");
		T_CHECK(p && p->type == RBK_P_NUMBER && p->min == 0.5 && !p->has_max);
		p = rbk_model_param(f.rb, "b");
		T_CHECK(p && p->type == RBK_P_BOOL && p->def && p->def->t == RBK_N_BOOL);
		p = rbk_model_param(f.rb, "d");
		T_CHECK(p && p->type == RBK_P_DURATION);
		p = rbk_model_param(f.rb, "e");
		T_CHECK(p && p->type == RBK_P_ENUM && p->nvalues == 2);
		T_STREQ(p ? p->values[1] : NULL, "green");
		p = rbk_model_param(f.rb, "k");
		T_CHECK(p && p->secret && !p->required); /* env makes it optional */
		T_STREQ(p ? p->env : NULL, "API_KEY");
		T_CHECK(rbk_model_param(f.rb, "nope") == NULL);
	}
	X(&f);
}

static void test_param_required_rules(void)
{
	fx f = PARAMS("  a: {type: string}\n  b: {type: string, default: ~}\n  c: {type: string, default: x, required: true}\n"
		      "  d: {type: string, required: false}\n");
	T_CHECK(built(&f));
	if (f.rb) {
		T_CHECK(rbk_model_param(f.rb, "a")->required);
		T_CHECK(rbk_model_param(f.rb, "b")->required && rbk_model_param(f.rb, "b")->def == NULL);
		T_CHECK(rbk_model_param(f.rb, "c")->required);
		T_CHECK(!rbk_model_param(f.rb, "d")->required);
	}
	X(&f);
	f = PARAMS("  a: {type: string, required: yes}\n");
	T_CHECK(only(&f, 4, 31, "'required' must be true or false, not a string"));
	X(&f);
}

static void test_param_bad_type_and_shape(void)
{
	fx f = PARAMS("  x: {type: float}\n");
	T_CHECK(only(&f, 4, 13, "bad param type 'float' (string, int, number, bool, duration or enum)"));
	X(&f);
	f = PARAMS("  x: {type: 3}\n");
	T_CHECK(only(&f, 4, 13, "bad param type '3'"));
	X(&f);
	f = PARAMS("  x: {default: 1}\n");
	T_CHECK(only(&f, 4, 3, "param 'x' has no 'type'"));
	X(&f);
	f = PARAMS("  x: string\n");
	T_CHECK(only(&f, 4, 6, "param 'x' must be a map, not a string"));
	X(&f);
	f = PARAMS("  Host: {type: string}\n");
	T_CHECK(only(&f, 4, 3, "bad param name 'Host' (use [a-z_][a-z0-9_]*)"));
	X(&f);
	f = M("rbk: 1\nname: t\nparams: [a]\nstart: a\nstates:\n  a: {end: success}\n");
	T_CHECK(only(&f, 3, 9, "'params' must be a map, not a list"));
	X(&f);
}

static void test_param_enum_values(void)
{
	fx f = PARAMS("  e: {type: enum}\n");
	T_CHECK(only(&f, 4, 3, "enum param 'e' needs 'values'"));
	X(&f);
	f = PARAMS("  e: {type: enum, values: []}\n");
	T_CHECK(only(&f, 4, 27, "'values' must be a non-empty list of strings"));
	X(&f);
	f = PARAMS("  e: {type: enum, values: red}\n");
	T_CHECK(only(&f, 4, 27, "'values' must be a non-empty list of strings"));
	X(&f);
	f = PARAMS("  e: {type: enum, values: [red, 1]}\n");
	T_CHECK(only(&f, 4, 33, "an enum value must be a string, not an integer"));
	X(&f);
	f = PARAMS("  s: {type: string, values: [a]}\n");
	T_CHECK(only(&f, 4, 29, "'values' applies to enum params only (param 's')"));
	X(&f);
	f = PARAMS("  e: {type: enum, values: [red, green], default: blue}\n");
	T_CHECK(only(&f, 4, 50, "default of param 'e' is not a valid enum (not one of its values)"));
	X(&f);
}

static void test_param_default_type_mismatch(void)
{
	static const struct {
		const char *decl, *type;
	} bad[] = {{"int, default: x", "int"},	      {"int, default: 1.5", "int"},
		   {"int, default: \"3\"", "int"},     {"number, default: \"1\"", "number"},
		   {"bool, default: yes", "bool"},     {"bool, default: 0", "bool"},
		   {"duration, default: 5 minutes", "duration"},
		   {"duration, default: 300", "duration"},
		   {"string, default: 5", "string"},   {"string, default: true", "string"},
		   {"string, default: [a]", "string"}};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char block[160], want[160];
		snprintf(block, sizeof block, "  x: {type: %s}\n", bad[i].decl);
		snprintf(want, sizeof want, "default of param 'x' is not a valid %s", bad[i].type);
		fx f = PARAMS(block);
		int col = 7 + (int)(strstr(bad[i].decl, "default: ") - bad[i].decl) + 9 + 6;
		if (!only(&f, 4, col, want))
			T_CHECK(!bad[i].decl);
		X(&f);
	}
	fx f = PARAMS("  n: {type: number, default: 3}\n  m: {type: number, default: .inf}\n");
	T_CHECK(built(&f)); /* an int is a number */
	X(&f);
}

static void test_param_min_max_pattern_env(void)
{
	fx f = PARAMS("  x: {type: int, min: 5, max: 1}\n");
	T_CHECK(only(&f, 4, 3, "param 'x': min is greater than max"));
	X(&f);
	f = PARAMS("  x: {type: int, min: 5, max: 5}\n");
	T_CHECK(built(&f));
	X(&f);
	f = PARAMS("  x: {type: string, min: 1}\n");
	T_CHECK(only(&f, 4, 26, "'min' applies to int and number params only (param 'x')"));
	X(&f);
	f = PARAMS("  x: {type: int, max: \"9\"}\n");
	T_CHECK(only(&f, 4, 23, "'max' must be a number, not a string"));
	X(&f);
	f = PARAMS("  x: {type: int, pattern: \"[0-9]+\"}\n");
	T_CHECK(only(&f, 4, 27, "'pattern' applies to string params only (param 'x')"));
	X(&f);
	f = PARAMS("  x: {type: string, env: 1X}\n");
	T_CHECK(only(&f, 4, 26, "bad environment variable name '1X'"));
	X(&f);
	f = PARAMS("  x: {type: string, env: DB-HOST}\n");
	T_CHECK(only(&f, 4, 26, "bad environment variable name 'DB-HOST'"));
	X(&f);
	f = PARAMS("  x: {type: string, env: _db_Host2}\n");
	T_CHECK(built(&f));
	X(&f);
	f = PARAMS("  x: {type: string, secret: 1}\n");
	T_CHECK(only(&f, 4, 29, "'secret' must be true or false, not an integer"));
	X(&f);
}

/* ---- schedules ---- */

static void test_schedule_fields(void)
{
	fx f = SCHED("  - cron: \"0 3 * * *\"\n    timezone: Europe/Lisbon\n    params: {env: prod}\n"
		     "    catch_up: 1h\n    overlap: queue\n"
		     "  - cron: \"*/5 * * * *\"\n"
		     "  - {cron: \"0 0 1 * *\", overlap: allow}\n");
	T_CHECK(built(&f));
	if (f.rb && f.rb->nschedules == 3) {
		const rbk_schedule *s = &f.rb->schedules[0];
		T_STREQ(s->cron, "0 3 * * *");
		T_CHECK(s->pos.line == 6 && s->pos.col == 11);
		T_STREQ(s->timezone, "Europe/Lisbon");
		T_CHECK(s->tz_pos.line == 7 && s->tz_pos.col == 15);
		T_CHECK(s->params && rbk_node_get(s->params, "env"));
		T_CHECK(s->catch_up_ms == 3600000 && s->overlap == RBK_OVERLAP_QUEUE);
		s = &f.rb->schedules[1];
		T_STREQ(s->timezone, "UTC"); /* the default */
		T_CHECK(s->tz_pos.line == s->pos.line && s->tz_pos.col == s->pos.col);
		T_CHECK(s->catch_up_ms == 0 && s->overlap == RBK_OVERLAP_SKIP && s->params == NULL);
		T_CHECK(f.rb->schedules[2].overlap == RBK_OVERLAP_ALLOW);
	} else
		T_CHECK(!"three schedules");
	X(&f);
}

static void test_schedule_errors(void)
{
	fx f = SCHED("  - cron: \"0 3 * * *\"\n    overlap: sometimes\n");
	T_CHECK(only(&f, 7, 14, "'overlap' must be skip, queue or allow, not 'sometimes'"));
	X(&f);
	f = SCHED("  - cron: \"0 3 * * *\"\n    overlap: [skip]\n");
	T_CHECK(only(&f, 7, 14, "not 'a list'"));
	X(&f);
	f = SCHED("  - cron: \"0 3 * * *\"\n    catch_up: forever\n");
	T_CHECK(only(&f, 7, 15, "'catch_up': bad duration 'forever'"));
	X(&f);
	f = SCHED("  - timezone: UTC\n");
	T_CHECK(only(&f, 6, 5, "a schedule entry needs 'cron'"));
	X(&f);
	f = SCHED("  - \"0 3 * * *\"\n");
	T_CHECK(only(&f, 6, 5, "a schedule entry must be a map, not a string"));
	X(&f);
	f = SCHED("  - cron: \"0 3 * * *\"\n    timezon: UTC\n");
	T_CHECK(only(&f, 7, 5, "unknown key 'timezon' in a schedule entry (did you mean 'timezone'?)"));
	X(&f);
	f = SCHED("  - cron: \"0 3 * * *\"\n    params: [env]\n");
	T_CHECK(only(&f, 7, 13, "'params' of a schedule must be a map, not a list"));
	X(&f);
	f = SCHED("  cron: \"0 3 * * *\"\n");
	T_CHECK(only(&f, 6, 3, "'schedule' must be a list, not a map"));
	X(&f);
	f = SCHED("  - cron: 5\n");
	T_CHECK(only(&f, 6, 11, "'cron' must be a string, not an integer"));
	X(&f);
}

/* ---- next ---- */

static void test_next_string_and_list(void)
{
	fx f = ST("    do: shell.exec\n    next: done\n");
	T_CHECK(built(&f));
	T_CHECK(S(&f, "a")->nnext == 1 && !S(&f, "a")->next_is_list);
	T_CHECK(S(&f, "a")->next_pos.line == 7 && S(&f, "a")->next_pos.col == 11);
	X(&f);
	f = ST("    do: shell.exec\n    next:\n      - if: steps.a.exit_code == 0\n        to: done\n"
	       "      - if: \"steps.a.exit_code == 1\"\n        to: a\n      - to: done\n");
	T_CHECK(built(&f));
	const rbk_state *a = S(&f, "a");
	T_CHECK(a->nnext == 3 && a->next_is_list);
	T_CHECK(a->next_pos.line == 8 && a->next_pos.col == 7);
	if (a->nnext == 3) {
		T_STREQ(a->next[0].guard.src, "steps.a.exit_code == 0");
		T_CHECK(a->next[0].guard.pos.line == 8 && a->next[0].guard.pos.col == 13);
		T_CHECK(a->next[1].guard.pos.line == 10 && a->next[1].guard.pos.col == 14);
		T_STREQ(a->next[1].to, "a");
		T_CHECK(a->next[1].to_pos.line == 11 && a->next[1].to_pos.col == 13);
		T_CHECK(a->next[2].guard.expr == NULL && a->next[2].guard.src == NULL);
		T_STREQ(a->next[2].to, "done");
	}
	X(&f);
	/* an action may take a list too, and a single else branch */
	f = ST("    do: shell.exec\n    next: [{to: done}]\n");
	T_CHECK(built(&f));
	X(&f);
}

static void test_next_errors(void)
{
	fx f = ST("    do: shell.exec\n    next: []\n");
	T_CHECK(only(&f, 7, 11, "'next' in state 'a' must be a state name or a list of {if, to}, not an empty list"));
	X(&f);
	f = ST("    do: shell.exec\n    next: 5\n");
	T_CHECK(only(&f, 7, 11, "not an integer"));
	X(&f);
	f = ST("    do: shell.exec\n    next: {to: done}\n");
	T_CHECK(only(&f, 7, 11, "not a map"));
	X(&f);
	f = ST("    do: shell.exec\n");
	T_CHECK(only(&f, 5, 3, "state 'a' has no 'next' (only an end state may stop)"));
	X(&f);
	f = ST("    next:\n      - if: \"true\"\n");
	T_CHECK(only(&f, 7, 9, "a branch of state 'a' has no 'to'"));
	X(&f);
	f = ST("    next:\n      - done\n");
	T_CHECK(only(&f, 7, 9, "a branch of 'next' must be a map, not a string"));
	X(&f);
	f = ST("    next:\n      - {if: \"true\", to: 7}\n");
	T_CHECK(only(&f, 7, 26, "'to' must be a string, not an integer"));
	X(&f);
	f = ST("    next: done\n");
	T_CHECK(only(&f, 6, 11, "decision state 'a' needs a list of {if, to} branches in 'next'"));
	X(&f);
}

static void test_else_branch_only_last(void)
{
	fx f = ST("    next:\n      - to: done\n      - if: \"true\"\n        to: a\n");
	T_CHECK(only(&f, 7, 9, "only the last branch of 'next' may omit 'if' (state 'a')"));
	X(&f);
	f = ST("    next:\n      - {to: done}\n      - {to: a}\n      - {if: \"true\", to: done}\n");
	T_CHECK(f.rc == -1 && f.d.n == 2);
	T_CHECK(has(&f, 7, 9, "only the last branch"));
	T_CHECK(has(&f, 8, 9, "only the last branch"));
	X(&f);
}

/* ---- expressions: places of syntax errors ---- */

static void test_guard_error_column_plain(void)
{
	fx f = ST("    next:\n      - if: a == == b\n        to: done\n");
	T_CHECK(only(&f, 7, 18, "guard: unexpected '=='"));
	X(&f);
	f = ST("    next:\n      - {if: params.x &&, to: done}\n");
	T_CHECK(only(&f, 7, 25, "guard: unexpected end of expression"));
	X(&f);
	f = ST("    next:\n      - if: nope(1)\n        to: done\n");
	T_CHECK(only(&f, 7, 13, "guard: unknown function 'nope'"));
	X(&f);
}

static void test_guard_error_column_quoted(void)
{
	fx f = ST("    next:\n      - if: \"a == == b\"\n        to: done\n");
	T_CHECK(only(&f, 7, 19, "guard: unexpected '=='"));
	X(&f);
	f = ST("    next:\n      - if: 'params.x == ''ok'\n        to: done\n");
	T_CHECK(f.rc == -1 && f.d.n == 1 && f.d.items[0].line == 7);
	X(&f);
	/* inside {{ }}: the column still points into the source */
	f = ST("    next:\n      - if: \"{{ a == == b }}\"\n        to: done\n");
	T_CHECK(only(&f, 7, 22, "guard: unexpected '=='"));
	X(&f);
}

static void test_guard_error_line_block(void)
{
	/* the line of a block scalar error is right; see bug_block_scalar_column */
	fx f = ST("    next:\n      - if: |\n          a == == b\n        to: done\n");
	T_CHECK(f.rc == -1 && f.d.n == 1);
	T_CHECK(f.d.n && f.d.items[0].line == 8 && strstr(f.d.items[0].msg, "guard: unexpected '=='"));
	X(&f);
	f = ST("    next:\n      - if: >-\n          params.x == 1 &&\n          (a\n        to: done\n");
	T_CHECK(f.rc == -1 && f.d.n == 1);
	T_CHECK(f.d.n && strstr(f.d.items[0].msg, "missing ')'"));
	X(&f);
}

static void test_model_place(void)
{
	rbk_diag d = {0};
	rbk_doc *doc = NULL;
	const char *src = "p: abc\nq: \"abc\"\nr: |\n  line one\n  line two\ns: 'x'\n";
	T_CHECK(rbk_load_bytes(&doc, "p.yaml", src, strlen(src), &d) == 0);
	if (!doc)
		return;
	const rbk_node *p = rbk_node_get(doc->root, "p"), *q = rbk_node_get(doc->root, "q"),
		       *r = rbk_node_get(doc->root, "r"), *s = rbk_node_get(doc->root, "s");
	rbk_pos x = rbk_model_place(p, 2);
	T_CHECK(x.line == 1 && x.col == 6);
	x = rbk_model_place(p, 0);
	T_CHECK(x.line == 1 && x.col == 4);
	x = rbk_model_place(q, 0);
	T_CHECK(x.line == 2 && x.col == 5); /* after the quote */
	x = rbk_model_place(q, 2);
	T_CHECK(x.line == 2 && x.col == 7);
	x = rbk_model_place(s, 0);
	T_CHECK(x.line == 6 && x.col == 5);
	x = rbk_model_place(p, -1);
	T_CHECK(x.line == 1 && x.col == 4);
	x = rbk_model_place(r, 0);
	T_CHECK(x.line == 4);
	x = rbk_model_place(r, 9 + 5); /* "two" */
	T_CHECK(x.line == 5);
	rbk_doc_free(doc);
	rbk_diag_free(&d);
}

/* ---- set, vars, with, undo, approval, actions ---- */

static void test_set_expression_vs_literal(void)
{
	fx f = ST("    do: shell.exec\n    next: done\n    set:\n      count: \"params.n + 1\"\n"
		  "      flag: true\n      n: 5\n      m: {a: 1}\n      word: \"'hello'\"\n");
	T_CHECK(built(&f));
	const rbk_state *a = S(&f, "a");
	T_CHECK(a->nset == 5);
	if (a->nset == 5) {
		T_STREQ(a->set[0].name, "count");
		T_CHECK(a->set[0].value.expr != NULL && a->set[0].lit == NULL);
		T_STREQ(a->set[0].value.src, "params.n + 1");
		T_CHECK(a->set[0].value.pos.line == 9 && a->set[0].value.pos.col == 15);
		T_CHECK(a->set[1].lit && a->set[1].lit->t == RBK_N_BOOL && a->set[1].value.expr == NULL);
		T_CHECK(a->set[2].lit && a->set[2].lit->t == RBK_N_INT && a->set[2].lit->i == 5);
		T_CHECK(a->set[3].lit && a->set[3].lit->t == RBK_N_MAP);
		T_CHECK(a->set[4].value.expr && a->set[4].value.expr->kind == RBK_E_LIT);
	}
	X(&f);
}

static void test_set_errors(void)
{
	fx f = ST("    do: shell.exec\n    next: done\n    set: {Count: \"1\"}\n");
	T_CHECK(only(&f, 8, 11, "bad variable name 'Count' (use [a-z_][a-z0-9_]*)"));
	X(&f);
	f = ST("    do: shell.exec\n    next: done\n    set: {c: \"1 +\"}\n");
	T_CHECK(only(&f, 8, 18, "set: unexpected end of expression"));
	X(&f);
	f = ST("    do: shell.exec\n    next: done\n    set: [c]\n");
	T_CHECK(only(&f, 8, 10, "'set' must be a map, not a list"));
	X(&f);
}

static void test_vars(void)
{
	fx f = M("rbk: 1\nname: t\nvars:\n  region: eu\n  hosts: [a, b]\n  msg: \"hi {{ params.x }}\"\n"
		 "start: a\nstates:\n  a: {end: success}\n");
	T_CHECK(built(&f));
	if (f.rb) {
		T_CHECK(f.rb->nvars == 3);
		T_STREQ(f.rb->vars[1].name, "hosts");
		T_CHECK(f.rb->vars[1].lit && f.rb->vars[1].lit->t == RBK_N_SEQ);
	}
	X(&f);
	f = M("rbk: 1\nname: t\nvars:\n  Region: eu\n  bad: [\"{{ 1 +\"]\nstart: a\nstates:\n  a: {end: success}\n");
	T_CHECK(f.rc == -1 && f.d.n == 2);
	T_CHECK(has(&f, 4, 3, "bad variable name 'Region'"));
	T_CHECK(has(&f, 5, 10, "'vars': unclosed '{{'"));
	X(&f);
	f = M("rbk: 1\nname: t\nvars: [x]\nstart: a\nstates:\n  a: {end: success}\n");
	T_CHECK(only(&f, 3, 7, "'vars' must be a map, not a list"));
	X(&f);
}

static void test_action_and_call_names(void)
{
	static const struct {
		const char *v, *msg;
	} bad[] = {{"shell", "'do' in state 'a': 'shell' is not an action name (plugin.action, lower case)"},
		   {"Shell.exec", "'Shell.exec' is not an action name"},
		   {"a.b.c", "'a.b.c' is not an action name"},
		   {"shell.", "'shell.' is not an action name"},
		   {".exec", "'.exec' is not an action name"},
		   {"1shell.exec", "'1shell.exec' is not an action name"},
		   {"5", "'do' in state 'a' must be a string, not an integer"}};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char body[160];
		snprintf(body, sizeof body, "    do: %s\n    next: done\n", bad[i].v);
		fx f = ST(body);
		if (!only(&f, 6, 9, bad[i].msg))
			T_CHECK(!bad[i].v);
		X(&f);
	}
	fx f = ST("    do: my_plugin2.do_it_3\n    next: done\n");
	T_CHECK(built(&f));
	X(&f);
	f = ST("    call: Child_Book\n    next: done\n");
	T_CHECK(only(&f, 6, 11, "'call' in state 'a': 'Child_Book' is not a runbook name ([a-z0-9][a-z0-9-]*)"));
	X(&f);
	f = ST("    do: shell.exec\n    undo: {do: Shell}\n    next: done\n");
	T_CHECK(only(&f, 7, 16, "'Shell' is not an action name"));
	X(&f);
}

static void test_with_shapes_and_templates(void)
{
	fx f = ST("    do: shell.exec\n    with: [1]\n    next: done\n");
	T_CHECK(only(&f, 7, 11, "'with' in state 'a' must be a map, not a list"));
	X(&f);
	f = ST("    do: shell.exec\n    with:\n    next: done\n");
	T_CHECK(built(&f));
	T_CHECK(S(&f, "a")->act.with == NULL);
	X(&f);
	f = ST("    do: shell.exec\n    with: {argv: [\"{{ a == == b }}\"], script: \"echo {{ x\"}\n    next: done\n");
	T_CHECK(f.rc == -1 && f.d.n == 2);
	T_CHECK(has(&f, 7, 28, "'with' in state 'a': unexpected '=='"));
	T_CHECK(has(&f, 7, 53, "'with' in state 'a': unclosed '{{' (no matching '}}')"));
	X(&f);
	f = ST("    do: shell.exec\n    with:\n      env:\n        X: \"{{ }}\"\n    next: done\n");
	T_CHECK(only(&f, 9, 13, "empty expression in '{{ }}'"));
	X(&f);
}

static void test_undo_errors(void)
{
	fx f = ST("    do: shell.exec\n    undo: {with: {a: 1}}\n    next: done\n");
	T_CHECK(only(&f, 7, 11, "'undo' in state 'a' needs 'do'"));
	X(&f);
	f = ST("    do: shell.exec\n    undo: shell.exec\n    next: done\n");
	T_CHECK(only(&f, 7, 11, "'undo' must be a map, not a string"));
	X(&f);
	f = ST("    do: shell.exec\n    undo: {do: shell.exec, with: \"x\"}\n    next: done\n");
	T_CHECK(only(&f, 7, 34, "'with' in state 'a' must be a map, not a string"));
	X(&f);
}

static void test_approval_errors(void)
{
	fx f = ST("    approval:\n    next: done\n");
	T_CHECK(built(&f));
	T_CHECK(S(&f, "a")->kind == RBK_S_APPROVAL && S(&f, "a")->approval.prompt == NULL);
	T_CHECK(S(&f, "a")->approval.timeout_ms == -1);
	X(&f);
	f = ST("    approval: yes\n    next: done\n");
	T_CHECK(only(&f, 6, 15, "'approval' must be a map, not a string"));
	X(&f);
	f = ST("    approval: {approvers: alice}\n    next: done\n");
	T_CHECK(only(&f, 6, 27, "'approvers' must be a list of names, not a string"));
	X(&f);
	f = ST("    approval: {approvers: [alice, 3]}\n    next: done\n");
	T_CHECK(only(&f, 6, 35, "an approver must be a string, not an integer"));
	X(&f);
	f = ST("    approval: {distinct: 1}\n    next: done\n");
	T_CHECK(only(&f, 6, 26, "'distinct' must be true or false, not an integer"));
	X(&f);
	f = ST("    approval: {timeout: 4h}\n    timeout: 1h\n    next: done\n");
	T_CHECK(built(&f));
	T_CHECK(S(&f, "a")->approval.timeout_ms == 4 * 3600000 && S(&f, "a")->timeout_ms == 3600000);
	X(&f);
	f = ST("    approval: {prompt: \"go {{ params.x\"}\n    next: done\n");
	T_CHECK(only(&f, 6, 28, "'prompt': unclosed '{{'"));
	X(&f);
}

static void test_idempotent_dry_run_description(void)
{
	fx f = ST("    do: shell.exec\n    idempotent: yes\n    next: done\n");
	T_CHECK(only(&f, 7, 17, "'idempotent' must be true or false, not a string"));
	X(&f);
	f = ST("    do: shell.exec\n    dry_run: skip\n    next: done\n");
	T_CHECK(only(&f, 7, 14, "'dry_run' must be a map, not a string"));
	X(&f);
	f = ST("    do: shell.exec\n    description: [x]\n    next: done\n");
	T_CHECK(only(&f, 7, 18, "'description' must be a string, not a list"));
	X(&f);
	f = ST("    do: shell.exec\n    on_failure: [x]\n    next: done\n");
	T_CHECK(only(&f, 7, 17, "'on_failure' must be a string, not a list"));
	X(&f);
}

static void test_lookups(void)
{
	fx f = M("rbk: 1\nname: t\nparams:\n  p: {type: int, default: 1}\nstart: a\nstates:\n"
		 "  a: {wait: 1s, next: b}\n  b: {end: success}\n");
	T_CHECK(built(&f));
	if (f.rb) {
		T_CHECK(rbk_model_state(f.rb, "a") == 0);
		T_CHECK(rbk_model_state(f.rb, "b") == 1);
		T_CHECK(rbk_model_state(f.rb, "c") == -1);
		T_CHECK(rbk_model_state(f.rb, "") == -1);
		T_CHECK(rbk_model_param(f.rb, "p") == &f.rb->params[0]);
		T_CHECK(rbk_model_param(f.rb, "a") == NULL);
	}
	X(&f);
}

/* ---- every error reported, in file order ---- */

static void test_all_errors_reported_in_file_order(void)
{
	/* five independent mistakes; the builder meets them out of file order */
	const char *src = "name: Bad_Name\n"				/* 1 */
			  "start: a\n"					/* 2 */
			  "states:\n"					/* 3 */
			  "  a:\n"					/* 4 */
			  "    wait: 30 seconds\n"			/* 5 */
			  "    next: b\n"				/* 6 */
			  "  b:\n"					/* 7 */
			  "    end: success\n"				/* 8 */
			  "    nxt: a\n"				/* 9 */
			  "params:\n"					/* 10 */
			  "  x: {type: float}\n"			/* 11 */
			  "rbk: 2\n";					/* 12 */
	fx f = M(src);
	T_CHECK(f.rc == -1);
	T_CHECK(f.d.n == 5);
	T_CHECK(has(&f, 1, 7, "bad runbook name 'Bad_Name'"));
	T_CHECK(has(&f, 5, 11, "'wait': bad duration '30 seconds'"));
	T_CHECK(has(&f, 9, 5, "unknown key 'nxt' in state 'b' (did you mean 'next'?)"));
	T_CHECK(has(&f, 11, 13, "bad param type 'float'"));
	T_CHECK(has(&f, 12, 6, "unsupported format version 2"));
	char *out = NULL;
	size_t len = 0;
	FILE *mf = open_memstream(&out, &len);
	rbk_diag_print(&f.d, mf);
	fclose(mf);
	const char *want[] = {"m.yaml:1:7: error: bad runbook name", "m.yaml:5:11: error: 'wait': bad duration",
			      "m.yaml:9:5: error: unknown key 'nxt'", "m.yaml:11:13: error: bad param type",
			      "m.yaml:12:6: error: unsupported format version"};
	const char *p = out;
	int lines = 0;
	for (size_t i = 0; i < 5 && p; i++) {
		T_CHECK(!strncmp(p, want[i], strlen(want[i])));
		p = strchr(p, '\n');
		if (p) {
			p++;
			lines++;
		}
	}
	T_CHECK(lines == 5 && p && *p == '\0');
	if (t_failed_checks)
		printf("# printed:\n%s", out);
	free(out);
	X(&f);
}

static void test_errors_in_many_states_all_reported(void)
{
	fx f = M("rbk: 1\nname: t\nstart: a\nstates:\n"
		 "  a: {do: Bad, next: b}\n"
		 "  b: {wait: soon, next: c}\n"
		 "  c: {retry: {attempts: 0}, next: [{to: d}]}\n"
		 "  d: {approval: {prompt: 1}, next: e}\n"
		 "  e: {end: never}\n");
	T_CHECK(f.rc == -1 && f.d.n == 5);
	T_CHECK(has(&f, 5, 11, "'Bad' is not an action name"));
	T_CHECK(has(&f, 6, 13, "bad duration 'soon'"));
	T_CHECK(has(&f, 7, 7, "key 'retry' does not apply to a decision state ('c')"));
	T_CHECK(has(&f, 8, 26, "'prompt' must be a string, not an integer"));
	T_CHECK(has(&f, 9, 12, "'end' must be success or failure, not 'never'"));
	X(&f);
}

/* A place inside a block scalar is a column of the file: its indentation
 * counts (8:16, not 8:6). */
static void test_block_scalar_column(void)
{
	fx f = ST("    next:\n      - if: |\n          a == == b\n        to: done\n");
	T_CHECK(only(&f, 8, 16, "guard: unexpected '=='"));
	X(&f);
}

/* Known limitations, not run by default (build with -DRBK_TEST_KNOWN_LIMITS):
 * places are mapped through the scalar's value, so YAML folding and escapes
 * can move them. A folded plain scalar: the error is on the continuation
 * line 8, column 11, reported at 7:18. */
#ifdef RBK_TEST_KNOWN_LIMITS
static void bug_multiline_plain_place(void)
{
	fx f = ST("    next:\n      - if: a ==\n          == b\n        to: done\n");
	T_CHECK(only(&f, 8, 11, "guard: unexpected '=='"));
	X(&f);
}

/* Escapes in a double-quoted scalar shift the reported column (13:22, the
 * '==' is at column 26). */
static void bug_escape_shifts_column(void)
{
	fx f = ST("    next:\n      - if: \"'\\u00e9' == == b\"\n        to: done\n");
	T_CHECK(only(&f, 7, 26, "guard: unexpected '=='"));
	X(&f);
}
#endif

int main(void)
{
	T_RUN(test_minimal_runbook);
	T_RUN(test_root_must_be_map);
	T_RUN(test_missing_top_level_keys);
	T_RUN(test_format_version);
	T_RUN(test_names_of_runbook_and_states);
	T_RUN(test_states_shape);
	T_RUN(test_top_level_unknown_key_hint);
	T_RUN(test_runbook_on_failure_and_lock);
	T_RUN(test_every_kind_detected);
	T_RUN(test_two_kinds_in_one_state);
	T_RUN(test_end_value);
	T_RUN(test_action_all_keys);
	T_RUN(test_other_kinds_all_keys);
	T_RUN(test_forbidden_keys_per_kind);
	T_RUN(test_unknown_state_key_hints);
	T_RUN(test_unknown_nested_key_hints);
	T_RUN(test_duration_values_in_wait);
	T_RUN(test_bad_durations);
	T_RUN(test_model_duration_parse);
	T_RUN(test_model_duration_text);
	T_RUN(test_model_duration_round_trip);
	T_RUN(test_retry_attempts_bounds);
	T_RUN(test_retry_other_fields);
	T_RUN(test_poll_requirements);
	T_RUN(test_poll_until_braces_accepted);
	T_RUN(test_param_types);
	T_RUN(test_param_required_rules);
	T_RUN(test_param_bad_type_and_shape);
	T_RUN(test_param_enum_values);
	T_RUN(test_param_default_type_mismatch);
	T_RUN(test_param_min_max_pattern_env);
	T_RUN(test_schedule_fields);
	T_RUN(test_schedule_errors);
	T_RUN(test_next_string_and_list);
	T_RUN(test_next_errors);
	T_RUN(test_else_branch_only_last);
	T_RUN(test_guard_error_column_plain);
	T_RUN(test_guard_error_column_quoted);
	T_RUN(test_guard_error_line_block);
	T_RUN(test_model_place);
	T_RUN(test_set_expression_vs_literal);
	T_RUN(test_set_errors);
	T_RUN(test_vars);
	T_RUN(test_action_and_call_names);
	T_RUN(test_with_shapes_and_templates);
	T_RUN(test_undo_errors);
	T_RUN(test_approval_errors);
	T_RUN(test_idempotent_dry_run_description);
	T_RUN(test_lookups);
	T_RUN(test_all_errors_reported_in_file_order);
	T_RUN(test_errors_in_many_states_all_reported);
	T_RUN(test_block_scalar_column);
#ifdef RBK_TEST_KNOWN_LIMITS
	T_RUN(bug_multiline_plain_place);
	T_RUN(bug_escape_shifts_column);
#endif
	return T_DONE();
}
