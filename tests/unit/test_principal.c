/* Unit tests for principal (who acts: the OS user, and the one rule that
 * matches names against it) and err's quoting of long values. */
#include "base/err.h"
#include "base/mem.h"
#include "base/principal.h"
#include "t.h"

#include <pwd.h>
#include <unistd.h>

static void test_principal_is_the_process_user(void)
{
	char *p = rbk_principal();
	struct passwd *pw = getpwuid(geteuid());
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	char *want = rbk_xasprintf("%s@%s", pw ? pw->pw_name : "?", host);
	T_STREQ(p, want);
	rbk_free(want);
	rbk_free(p);
}

static void test_matching_rule(void)
{
	T_CHECK(rbk_principal_matches("alice", "alice@db1"));
	T_CHECK(rbk_principal_matches("alice@db1", "alice@db1"));
	T_CHECK(!rbk_principal_matches("alice@db2", "alice@db1"));
	T_CHECK(!rbk_principal_matches("alice", "alicia@db1"));
	T_CHECK(!rbk_principal_matches("ali", "alice@db1"));
	T_CHECK(!rbk_principal_matches("alice@db1", "alice"));
	T_CHECK(rbk_principal_matches("scheduler", "scheduler")); /* an actor from an older store */
	T_CHECK(!rbk_principal_matches("", "alice@db1"));
	T_CHECK(!rbk_principal_matches("@db1", "@db1"));
	T_CHECK(!rbk_principal_matches("alice@", "alice@db1"));
	char u[16];
	T_STREQ(rbk_principal_user("alice@db1", u, sizeof u), "alice");
	T_STREQ(rbk_principal_user("bob", u, sizeof u), "bob");
}

static void test_quote(void)
{
	T_STREQ(rbk_err_quote("short").s, "short");
	T_STREQ(rbk_err_quote(NULL).s, "");
	char big[200];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	rbk_err_quoted q = rbk_err_quote(big);
	T_CHECK(strlen(q.s) == RBK_ERR_QUOTE_MAX + 3 && !strcmp(q.s + RBK_ERR_QUOTE_MAX, "..."));
	/* 2-byte characters: the cut never splits one */
	char u8[201] = "";
	for (int i = 0; i < 100; i++)
		strcat(u8, "\xc3\xa9");
	q = rbk_err_quote(u8);
	T_CHECK(strlen(q.s) == RBK_ERR_QUOTE_MAX + 3 && !strcmp(q.s + RBK_ERR_QUOTE_MAX, "..."));
	char odd[203] = "x"; /* 'x' then 2-byte characters: byte 80 continues one */
	strcat(odd, u8);
	q = rbk_err_quote(odd);
	T_CHECK(strlen(q.s) == RBK_ERR_QUOTE_MAX - 1 + 3 && !strcmp(q.s + RBK_ERR_QUOTE_MAX - 1, "..."));
	rbk_err e;
	rbk_err_set(&e, -1, "param 'n' (-p): '%s' is not an int", rbk_err_quote(big).s);
	T_CHECK(strstr(e.msg, "...' is not an int") != NULL);
}

int main(void)
{
	T_RUN(test_principal_is_the_process_user);
	T_RUN(test_matching_rule);
	T_RUN(test_quote);
	return T_DONE();
}
