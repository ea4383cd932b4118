/* auth/users: roles, names, tokens and sessions in a real SQLite store. */
#include "t.h"
#include "auth/users.h"
#include "base/mem.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char home[] = "/tmp/rbk-test-users-XXXXXX";

static rbk_store *open_store(void)
{
	rbk_store *s = NULL;
	rbk_err e = {0};
	if (rbk_store_open(&s, home, &e) < 0)
		printf("# open: %s\n", e.msg);
	return s;
}

static void roles(void)
{
	T_CHECK(rbk_users_role_parse("operator") == RBK_ROLE_OPERATOR);
	T_CHECK(rbk_users_role_parse("root") == RBK_ROLE_NONE);
	T_CHECK(rbk_users_role_parse(NULL) == RBK_ROLE_NONE);
	T_STREQ(rbk_users_role_name(RBK_ROLE_AUDITOR), "auditor");
	T_CHECK(rbk_users_allows(RBK_ROLE_VIEWER, RBK_DO_READ) && !rbk_users_allows(RBK_ROLE_VIEWER, RBK_DO_ACT) &&
		!rbk_users_allows(RBK_ROLE_VIEWER, RBK_DO_AUDIT));
	T_CHECK(rbk_users_allows(RBK_ROLE_OPERATOR, RBK_DO_ACT) && !rbk_users_allows(RBK_ROLE_OPERATOR, RBK_DO_AUDIT));
	T_CHECK(rbk_users_allows(RBK_ROLE_AUDITOR, RBK_DO_AUDIT) && !rbk_users_allows(RBK_ROLE_AUDITOR, RBK_DO_ACT));
	T_CHECK(!rbk_users_allows(RBK_ROLE_NONE, RBK_DO_READ));
}

static void names_and_compare(void)
{
	T_CHECK(rbk_users_name_ok("ann") && rbk_users_name_ok("rbk-alice.2") && rbk_users_name_ok("a_b"));
	T_CHECK(!rbk_users_name_ok("") && !rbk_users_name_ok("-x") && !rbk_users_name_ok(".x") &&
		!rbk_users_name_ok("a@b") && !rbk_users_name_ok("a b") && !rbk_users_name_ok("a\nb"));
	char longname[70];
	memset(longname, 'a', 65);
	longname[65] = '\0';
	T_CHECK(!rbk_users_name_ok(longname));
	T_CHECK(rbk_users_same("abc", "abc") && !rbk_users_same("abc", "abd") && !rbk_users_same("abc", "ab") &&
		!rbk_users_same("", "a") && rbk_users_same("", ""));
	char a[65], b[65];
	rbk_users_csrf("s1", a);
	rbk_users_csrf("s2", b);
	T_CHECK(strlen(a) == 64 && strcmp(a, b) != 0);
}

static void tokens(void)
{
	rbk_store *s = open_store();
	T_CHECK(s != NULL);
	if (!s)
		return;
	rbk_err e = {0};
	char *tok = NULL, *name = NULL, *tok2 = NULL;
	rbk_role role;
	T_CHECK(rbk_users_add(s, "ann", RBK_ROLE_OPERATOR, false, "root@h", &tok, &e) == 0);
	T_CHECK(tok && strncmp(tok, "rbk_", 4) == 0 && strlen(tok) == 68);
	T_CHECK(rbk_users_check_token(s, tok, &name, &role, &e) == 0);
	T_STREQ(name, "ann");
	T_CHECK(role == RBK_ROLE_OPERATOR);
	rbk_free(name);
	/* the stored facts hold the hash, not the token */
	char *raw = NULL;
	T_CHECK(rbk_store_meta_get(s, "auth.users", &raw, &e) == 0 && raw && !strstr(raw, tok));
	rbk_free(raw);
	/* a second add of the name is refused; rotate replaces the token */
	T_CHECK(rbk_users_add(s, "ann", RBK_ROLE_VIEWER, false, "root@h", &tok2, &e) < 0 && strstr(e.msg, "exists"));
	T_CHECK(rbk_users_add(s, "ann", RBK_ROLE_NONE, true, "root@h", &tok2, &e) == 0);
	T_CHECK(rbk_users_check_token(s, tok, &name, &role, &e) == 1 && name == NULL);
	T_CHECK(rbk_users_check_token(s, tok2, &name, &role, &e) == 0 && role == RBK_ROLE_OPERATOR);
	rbk_free(name);
	T_CHECK(rbk_users_check_token(s, "nonsense", &name, &role, &e) == 1);
	char *none = NULL;
	T_CHECK(rbk_users_add(s, "bad name", RBK_ROLE_VIEWER, false, "root@h", &none, &e) < 0 && none == NULL);
	/* credentials as rbk serve hands them on */
	char *line = rbk_xasprintf("bearer %s", tok2), *actor = NULL;
	T_CHECK(rbk_users_credential(s, line, &actor, &role, &e) == 0);
	T_STREQ(actor, "ann@console");
	rbk_free(actor);
	rbk_free(line);
	T_CHECK(rbk_users_credential(s, "bearer rbk_00", &actor, &role, &e) == 1 && !actor);
	T_CHECK(rbk_users_credential(s, "garbage", &actor, &role, &e) == 1 && !actor);
	/* sessions: made, checked, ended; a removed user's sessions end too */
	char *sid = NULL, *sid2 = NULL;
	T_CHECK(rbk_users_session_new(s, "ann", 3600, &sid, &e) == 0 && sid && strlen(sid) == 64);
	T_CHECK(rbk_users_check_session(s, sid, &name, &role, &e) == 0);
	T_STREQ(name, "ann");
	rbk_free(name);
	line = rbk_xasprintf("session %s", sid);
	T_CHECK(rbk_users_credential(s, line, &actor, &role, &e) == 0);
	T_STREQ(actor, "ann@console");
	rbk_free(actor);
	rbk_free(line);
	T_CHECK(rbk_users_session_end(s, sid, &e) == 0);
	T_CHECK(rbk_users_check_session(s, sid, &name, &role, &e) == 1);
	T_CHECK(rbk_users_session_new(s, "ann", -1, &sid2, &e) == 0); /* already expired */
	T_CHECK(rbk_users_check_session(s, sid2, &name, &role, &e) == 1);
	rbk_free(sid2);
	T_CHECK(rbk_users_session_new(s, "ann", 3600, &sid2, &e) == 0);
	rbk_val list;
	T_CHECK(rbk_users_list(s, &list, &e) == 0 && list.t == RBK_V_MAP && list.u.map.n == 1);
	rbk_val_free(&list);
	T_CHECK(rbk_users_remove(s, "ann", &e) == 0);
	T_CHECK(rbk_users_remove(s, "ann", &e) == 1);
	T_CHECK(rbk_users_check_session(s, sid2, &name, &role, &e) == 1);
	T_CHECK(rbk_users_check_token(s, tok2, &name, &role, &e) == 1);
	rbk_free(sid);
	rbk_free(sid2);
	rbk_free(tok);
	rbk_free(tok2);
	rbk_store_close(s);
}

int main(void)
{
	if (!mkdtemp(home))
		return 1;
	T_RUN(roles);
	T_RUN(names_and_compare);
	T_RUN(tokens);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", home);
	if (system(cmd) != 0)
		return 1;
	return T_DONE();
}
