/* rbk verify [--json]: recompute the event chain, and check it against the
 * last seal.      rbk audit seal --git DIR: commit the chain head to git. */
#include "cli/cli.h"
#include "audit/bundle.h"
#include "base/exitcode.h"
#include "lang/json.h"
#include "base/mem.h"
#include "audit/provenance.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int verify(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, 0, 'j'}, {"home", required_argument, 0, 'H'}, {"store", required_argument, 0, RBK_OPT_STORE},
					     {"git", required_argument, 0, 'g'}, {"bundle", required_argument, 0, 'b'},
					     {0, 0, 0, 0}};
	bool json = false;
	const char *home_opt = NULL, *git_opt = NULL, *bundle = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'H')
			home_opt = optarg;
		else if (c == RBK_OPT_STORE)
			rbk_cli_set_store(optarg);
		else if (c == 'g')
			git_opt = optarg;
		else if (c == 'b')
			bundle = optarg;
		else
			return rbk_cli_option_error(&rbk_cmd_verify, c, argv[optind - 1]);
	}
	if (optind != argc)
		return rbk_cli_usage_error(&rbk_cmd_verify, "unexpected argument '%s'", argv[optind]);
	if (bundle) {
		/* Offline: the bundle alone, no store. */
		char *summary = NULL;
		rbk_err be = {0};
		int vr = rbk_bundle_verify(bundle, &summary, &be);
		if (vr < 0)
			fprintf(stderr, "rbk: error: %s\n", be.msg);
		else
			printf("%s: %s%s\n", bundle, vr ? "broken: " : "", summary);
		rbk_free(summary);
		return vr < 0 ? RBK_EXIT_BADINPUT : vr ? RBK_EXIT_FAILED : RBK_EXIT_OK;
	}
	rbk_store *s;
	char *home;
	if (rbk_cli_open_store(home_opt, &s, &home) < 0) {
		rbk_free(home);
		return RBK_EXIT_FAILED;
	}
	rbk_err e = {0};
	int64_t count = 0, bad = 0;
	char *why = NULL;
	int rc = rbk_store_verify(s, &count, &bad, &why, &e);
	int64_t head_seq = 0;
	char head[65];
	if (rc == 0)
		rc = rbk_store_head(s, &head_seq, head, &e);
	/* The seal: the repository given, else the one of the last seal. */
	char *seal_dir = git_opt ? rbk_xstrdup(git_opt) : NULL;
	if (!seal_dir && rc == 0)
		rbk_store_meta_get(s, "seal.git_dir", &seal_dir, &e);
	int64_t seal_seq = 0;
	char seal_hash[65] = "";
	char *seal_why = NULL;
	int sealed = 1;
	if (rc == 0 && !bad && seal_dir) {
		sealed = rbk_prov_last_seal(seal_dir, &seal_seq, seal_hash, &e);
		if (sealed < 0)
			seal_why = rbk_xstrdup(e.msg);
		else if (sealed == 0 && seal_seq > head_seq)
			seal_why = rbk_xasprintf("the store ends at event %lld but was sealed at event %lld: events after %lld "
						 "were removed (truncation)",
						 (long long)head_seq, (long long)seal_seq, (long long)head_seq);
		else if (sealed == 0) {
			/* The sealed event must still carry the sealed hash. */
			char now[65];
			if (rbk_store_event_hash(s, seal_seq, now, &e) != 0 || strcmp(now, seal_hash) != 0)
				seal_why = rbk_xasprintf("event %lld no longer has the hash it was sealed with: the chain up to it "
							 "was rewritten",
							 (long long)seal_seq);
		}
	}
	/* Remembered in the store: a broken chain takes no more runs (a seal
	 * that could not be read is not a broken chain). */
	if (rc == 0 && (bad || sealed >= 0))
		rbk_store_note_broken(s, bad ? why : sealed == 0 ? seal_why : NULL);
	if (rc == 0) {
		/* For rbk metrics: when the chain was last verified, and how it was. */
		char last[128];
		snprintf(last, sizeof last, "{\"at\": %lld, \"intact\": %s, \"events\": %lld}", (long long)time(NULL),
			 !bad && !seal_why ? "true" : "false", (long long)count);
		rbk_err me = {0};
		rbk_store_meta_set(s, "verify.last", last, &me);
	}
	int code = RBK_EXIT_OK;
	if (rc < 0) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		code = RBK_EXIT_FAILED;
	} else if (json) {
		rbk_val m = rbk_val_map();
		const char *p = why ? why : seal_why;
		rbk_val_map_set(&m, "intact", rbk_val_bool(!bad && !seal_why));
		rbk_val_map_set(&m, "events", rbk_val_int(count));
		rbk_val_map_set(&m, "head", rbk_val_str(head));
		rbk_val_map_set(&m, "first_bad_event", rbk_val_int(bad));
		rbk_val_map_set(&m, "problem", p ? rbk_val_str(p) : rbk_val_null());
		rbk_val_map_set(&m, "sealed_at", rbk_val_int(sealed == 0 ? seal_seq : 0));
		char *js = rbk_json_encode(&m);
		puts(js);
		rbk_free(js);
		rbk_val_free(&m);
	} else if (bad) {
		printf("chain broken at event %lld: %s\n", (long long)bad, why);
	} else if (seal_why) {
		printf("chain broken: %s\n", seal_why);
	} else {
		printf("%lld events, chain intact; head %s", (long long)count, head);
		if (sealed == 0)
			printf("; sealed at event %lld", (long long)seal_seq);
		putchar('\n');
	}
	if (rc == 0 && (bad || seal_why))
		code = RBK_EXIT_FAILED;
	rbk_free(why);
	rbk_free(seal_why);
	rbk_free(seal_dir);
	rbk_store_close(s);
	rbk_free(home);
	return code;
}

static int audit(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "seal") != 0)
		return rbk_cli_usage_error(&rbk_cmd_audit, "use 'rbk audit seal --git DIR'");
	static const struct option opts[] = {{"git", required_argument, 0, 'g'}, {"home", required_argument, 0, 'H'}, {"store", required_argument, 0, RBK_OPT_STORE},
					     {0, 0, 0, 0}};
	const char *dir = NULL, *home_opt = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc - 1, argv + 1, ":", opts, NULL)) != -1) {
		if (c == 'g')
			dir = optarg;
		else if (c == 'H')
			home_opt = optarg;
		else if (c == RBK_OPT_STORE)
			rbk_cli_set_store(optarg);
		else
			return rbk_cli_option_error(&rbk_cmd_audit, c, argv[optind]);
	}
	if (!dir)
		return rbk_cli_usage_error(&rbk_cmd_audit, "--git DIR is required");
	rbk_store *s;
	char *home;
	if (rbk_cli_open_store(home_opt, &s, &home) < 0) {
		rbk_free(home);
		return RBK_EXIT_FAILED;
	}
	rbk_err e = {0};
	int64_t count = 0, bad = 0, seq = 0;
	char *why = NULL, *commit = NULL, head[65];
	int code = RBK_EXIT_OK;
	char *actor = rbk_cli_actor();
	/* Only an intact chain is worth sealing. */
	if (rbk_store_verify(s, &count, &bad, &why, &e) < 0 || rbk_store_head(s, &seq, head, &e) < 0) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		code = RBK_EXIT_FAILED;
	} else if (bad) {
		fprintf(stderr, "rbk: error: not sealed: chain broken at event %lld: %s\n", (long long)bad, why);
		code = RBK_EXIT_FAILED;
	} else if (rbk_prov_seal(dir, seq, head, actor, &commit, &e) < 0) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		code = RBK_EXIT_FAILED;
	} else {
		char abs[4096];
		rbk_store_meta_set(s, "seal.git_dir", realpath(dir, abs) ? abs : dir, &e);
		printf("sealed event %lld (%s) in %s, commit %s\n", (long long)seq, head, dir, commit);
	}
	rbk_free(actor);
	rbk_free(commit);
	rbk_free(why);
	rbk_store_close(s);
	rbk_free(home);
	return code;
}

const rbk_cmd rbk_cmd_verify = {"verify", "[--git DIR] [--json] | --bundle FILE",
				"recompute the event chain (and check it against the last seal); exit 0 when intact, 1 otherwise",
				verify};
const rbk_cmd rbk_cmd_audit = {"audit", "seal --git DIR", "commit the chain head into a git repository (a seal)", audit};
