/* t: the smallest unit-test harness. Each test is a function; T_RUN runs it
 * and prints "ok NAME" or "FAIL NAME" with the first failed check, which the
 * runner (tests/run) counts. */
#ifndef RBK_T_H
#define RBK_T_H

#include <stdio.h>
#include <string.h>

static int t_failed_checks, t_passed, t_failed;
static const char *t_current;

#define T_CHECK(cond)                                                                          \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			if (!t_failed_checks++)                                                \
				printf("FAIL %s: %s:%d: %s\n", t_current, __FILE__, __LINE__,  \
				       #cond);                                                 \
		}                                                                              \
	} while (0)

#define T_STREQ(a, b)                                                                          \
	do {                                                                                   \
		const char *t_a_ = (a), *t_b_ = (b);                                           \
		if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0) {                               \
			if (!t_failed_checks++)                                                \
				printf("FAIL %s: %s:%d: \"%s\" != \"%s\"\n", t_current,        \
				       __FILE__, __LINE__, t_a_ ? t_a_ : "(null)",             \
				       t_b_ ? t_b_ : "(null)");                                \
		}                                                                              \
	} while (0)

#define T_RUN(fn)                                                                              \
	do {                                                                                   \
		t_current = #fn;                                                               \
		t_failed_checks = 0;                                                           \
		fn();                                                                          \
		if (t_failed_checks)                                                           \
			t_failed++;                                                            \
		else {                                                                         \
			t_passed++;                                                            \
			printf("ok %s\n", #fn);                                                \
		}                                                                              \
	} while (0)

#define T_DONE() (printf("# %d passed, %d failed\n", t_passed, t_failed), t_failed ? 1 : 0)

#endif
