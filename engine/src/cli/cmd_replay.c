/* rbk replay RUN [--verbose]: re-derive a past run's decisions. */
#include "cli/cli.h"
#include "base/exitcode.h"
#include "base/mem.h"
#include "audit/replay.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static int run(int argc, char **argv)
{
	static const struct option opts[] = {{"verbose", no_argument, 0, 'v'}, {"home", required_argument, 0, 'H'}, {"store", required_argument, 0, RBK_OPT_STORE}, {0, 0, 0, 0}};
	int verbose = 0, c;
	const char *home_opt = NULL;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":v", opts, NULL)) != -1) {
		if (c == 'v')
			verbose = 1;
		else if (c == 'H')
			home_opt = optarg;
		else if (c == RBK_OPT_STORE)
			rbk_cli_set_store(optarg);
		else
			return rbk_cli_option_error(&rbk_cmd_replay, c, argv[optind - 1]);
	}
	int rc = RBK_EXIT_OK;
	long long id = rbk_cli_run_number(&rbk_cmd_replay, argc, argv, optind, &rc);
	if (!id)
		return rc;
	rbk_store *s;
	char *home;
	if (rbk_cli_open_store(home_opt, &s, &home) < 0) {
		rbk_free(home);
		return RBK_EXIT_FAILED;
	}
	rbk_replay_stats st = {0};
	rbk_err e = {0};
	int code;
	if (rbk_replay_run(s, id, stdout, verbose, &st, &e) < 0) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		code = e.code == RBK_ERR_NONAME ? RBK_EXIT_BADINPUT : RBK_EXIT_FAILED;
	} else {
		char secret[64] = "";
		if (st.secret)
			snprintf(secret, sizeof secret, ", %d read a secret (not re-derived)", st.secret);
		printf("replay of run %lld: %d run%s, %d events, %d decisions re-derived%s, %d divergence%s\n", id, st.runs,
		       st.runs == 1 ? "" : "s", st.events, st.decisions, secret, st.divergences, st.divergences == 1 ? "" : "s");
		code = st.divergences ? RBK_EXIT_FAILED : RBK_EXIT_OK;
	}
	rbk_store_close(s);
	rbk_free(home);
	return code;
}

const rbk_cmd rbk_cmd_replay = {"replay", "RUN [--verbose]",
				"re-derive every decision of a past run from its record and pinned definition; exit 0 when it matches",
				run};
