/* rbk user add NAME --role viewer|operator|auditor [--rotate]
 * rbk user list [--json]
 * rbk user remove NAME
 * The people of the console (auth/users.h): a new token is printed once and
 * only its hash is kept. Whoever can write the store can manage them. */
#include "cli/cli.h"
#include "auth/users.h"
#include "base/exitcode.h"
#include "base/mem.h"
#include "lang/json.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static int user(int argc, char **argv)
{
	static const struct option opts[] = {{"role", required_argument, 0, 'r'}, {"rotate", no_argument, 0, 'R'},
					     {"json", no_argument, 0, 'j'},	  {"home", required_argument, 0, 'H'},
					     {"store", required_argument, 0, RBK_OPT_STORE}, {0, 0, 0, 0}};
	const char *home_opt = NULL, *role_opt = NULL;
	bool json = false, rotate = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'r': role_opt = optarg; break;
		case 'R': rotate = true; break;
		case 'j': json = true; break;
		case 'H': home_opt = optarg; break;
		case RBK_OPT_STORE: rbk_cli_set_store(optarg); break;
		default: return rbk_cli_option_error(&rbk_cmd_user, c, argv[optind - 1]);
		}
	}
	const char *sub = optind < argc ? argv[optind] : "";
	bool add = !strcmp(sub, "add"), list = !strcmp(sub, "list"), rm = !strcmp(sub, "remove");
	if (!add && !list && !rm)
		return rbk_cli_usage_error(&rbk_cmd_user, *sub ? "unknown sub-command '%s'" : "add, list or remove%s", sub);
	if ((add || rm) && optind + 2 != argc)
		return rbk_cli_usage_error(&rbk_cmd_user, "give one user name");
	if (list && optind + 1 != argc)
		return rbk_cli_usage_error(&rbk_cmd_user, "unexpected argument '%s'", argv[optind + 1]);
	rbk_role role = role_opt ? rbk_users_role_parse(role_opt) : RBK_ROLE_NONE;
	if (role_opt && role == RBK_ROLE_NONE)
		return rbk_cli_usage_error(&rbk_cmd_user, "--role takes viewer, operator or auditor, not '%s'", role_opt);
	if (add && !rotate && !role_opt)
		return rbk_cli_usage_error(&rbk_cmd_user, "--role viewer|operator|auditor is required");
	if ((role_opt || rotate) && !add)
		return rbk_cli_usage_error(&rbk_cmd_user, "--role and --rotate go with add");
	rbk_store *s;
	char *home;
	if (rbk_cli_open_store(home_opt, &s, &home) < 0) {
		rbk_free(home);
		return RBK_EXIT_STORE;
	}
	rbk_err e = {0};
	int rc = RBK_EXIT_OK;
	if (add) {
		char *token = NULL, *by = rbk_cli_actor();
		if (rbk_store_writable(s, &e) < 0 || rbk_users_add(s, argv[optind + 1], role, rotate, by, &token, &e) < 0) {
			fprintf(stderr, "rbk: error: %s\n", e.msg);
			rc = e.code == RBK_ERR_STORE ? RBK_EXIT_STORE : RBK_EXIT_BADINPUT;
		} else {
			/* The token goes to stdout alone, for `TOKEN=$(rbk user add ...)`. */
			printf("%s\n", token);
			fprintf(stderr, "rbk: %s %s: this token is shown once; only its hash is kept\n",
				rotate ? "new token for" : "added", argv[optind + 1]);
		}
		rbk_free(token);
		rbk_free(by);
	} else if (rm) {
		int r = rbk_store_writable(s, &e) < 0 ? -1 : rbk_users_remove(s, argv[optind + 1], &e);
		if (r != 0) {
			if (r > 0)
				fprintf(stderr, "rbk: error: no user '%s'\n", argv[optind + 1]);
			else
				fprintf(stderr, "rbk: error: %s\n", e.msg);
			rc = r > 0 ? RBK_EXIT_BADINPUT : RBK_EXIT_STORE;
		}
	} else {
		rbk_val users;
		if (rbk_users_list(s, &users, &e) < 0) {
			fprintf(stderr, "rbk: error: %s\n", e.msg);
			rc = RBK_EXIT_STORE;
		} else if (json) {
			char *t = rbk_json_encode(&users);
			printf("%s\n", t);
			rbk_free(t);
		} else {
			for (size_t i = 0; i < users.u.map.n; i++) {
				const rbk_val *u = &users.u.map.vals[i];
				printf("%-20s %-9s added %s by %s\n", users.u.map.keys[i],
				       rbk_val_map_get(u, "role")->u.s.s, rbk_val_map_get(u, "created_at")->u.s.s,
				       rbk_val_map_get(u, "created_by")->u.s.s);
			}
		}
		rbk_val_free(&users);
	}
	rbk_store_close(s);
	rbk_free(home);
	return rc;
}

const rbk_cmd rbk_cmd_user = {"user", "add NAME --role viewer|operator|auditor [--rotate] | list [--json] | remove NAME",
			      "the people of the console (rbk serve): a token printed once, only its hash kept", user};
