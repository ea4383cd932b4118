/* rbk run NAME|FILE [-p k=v]... [--dry-run] [--wait-lock] [--queue Q] [--detach] [--json] [--home DIR] */
#include "cli/cli.h"
#include "base/exitcode.h"
#include "exec/interp.h"
#include "base/mem.h"
#include "exec/registry.h"
#include "runbook/model.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int run(int argc, char **argv)
{
	static const struct option opts[] = {{"param", required_argument, 0, 'p'}, {"dry-run", no_argument, 0, 'n'},
					     {"wait-lock", no_argument, 0, 'w'},
					     {"json", no_argument, 0, 'j'},	    {"home", required_argument, 0, 'H'}, {"store", required_argument, 0, RBK_OPT_STORE},
					     {"queue", required_argument, 0, 'Q'}, {"detach", no_argument, 0, 'D'},
					     {"schedule-fire", required_argument, 0, 'F'},
					     {"schedule-nominal", required_argument, 0, 'N'},
					     {"credential-fd", required_argument, 0, 'C'},
					     {0, 0, 0, 0}};
	int cred_fd = -1;
	int64_t fire = 0;
	const char *nominal = NULL;
	const char *home_opt = NULL;
	bool dry = false, wait_lock = false, json = false, detach = false;
	const char *queue_opt = NULL;
	rbk_param_arg *args = rbk_xcalloc((size_t)argc, sizeof *args);
	char (*names)[128] = rbk_xcalloc((size_t)argc, sizeof *names);
	size_t nargs = 0;
	int c, rc = RBK_EXIT_OK;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:", opts, NULL)) != -1 && rc == RBK_EXIT_OK) {
		rbk_err e = {0};
		switch (c) {
		case 'p':
			if (rbk_params_parse_arg(optarg, &args[nargs], names[nargs], sizeof names[nargs], &e) < 0)
				rc = rbk_cli_usage_error(&rbk_cmd_run, "%s", e.msg);
			else
				nargs++;
			break;
		case 'n': dry = true; break;
		case 'w': wait_lock = true; break;
		case 'j': json = true; break;
		case 'H': home_opt = optarg; break;
		case RBK_OPT_STORE: rbk_cli_set_store(optarg); break;
		case 'Q': queue_opt = optarg; break;
		case 'D': detach = true; break;
		case 'F': fire = strtoll(optarg, NULL, 10); break; /* set by rbk scheduler */
		case 'N': nominal = optarg; break;
		case 'C': cred_fd = atoi(optarg); break; /* set by rbk serve */
		default: rc = rbk_cli_option_error(&rbk_cmd_run, c, argv[optind - 1]);
		}
	}
	if (rc == RBK_EXIT_OK && optind != argc - 1)
		rc = rbk_cli_usage_error(&rbk_cmd_run, optind >= argc ? "no runbook given" : "one runbook at a time");
	if (rc == RBK_EXIT_OK && queue_opt && !rbk_model_queue_name_ok(queue_opt))
		rc = rbk_cli_usage_error(&rbk_cmd_run, "bad queue name '%.80s' (letters, digits and . _ : - only, at most 100)",
					 queue_opt);
	if (rc == RBK_EXIT_OK && detach && dry)
		rc = rbk_cli_usage_error(&rbk_cmd_run, "a dry run runs here: --detach does not apply");
	if (rc != RBK_EXIT_OK) {
		rbk_free(args);
		rbk_free(names);
		return rc;
	}
	rbk_diag d = {0};
	rbk_cli_runbook rb;
	if (rbk_cli_load(&rb, argv[optind], true, &d) < 0) {
		rbk_diag_print(&d, stderr);
		rbk_diag_free(&d);
		rbk_free(args);
		rbk_free(names);
		return RBK_EXIT_BADINPUT;
	}
	rbk_diag_free(&d);
	char *home = rbk_cli_home(home_opt), *actor = rbk_cli_actor();
	rbk_err e = {0};
	rbk_store *store = NULL;
	if (rbk_store_open_url(&store, rbk_cli_store_url(), home, &e) < 0 || rbk_store_writable(store, &e) < 0) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		rc = e.code == RBK_ERR_STORE ? RBK_EXIT_STORE : RBK_EXIT_FAILED;
		rbk_store_close(store);
	} else if (cred_fd >= 0 && (rc = rbk_cli_credential_actor(store, cred_fd, &actor)) != 0) {
		rbk_store_close(store);
	} else {
		rbk_ui ui;
		rbk_ui_init(&ui, stdout, json);
		/* Where it executes: --queue, else the runbook's queue, else here.
		 * A queue other than this host's own is served by agents. */
		char *hostq = rbk_cli_host_queue();
		const char *queue = queue_opt ? queue_opt : rb.rb->queue ? rb.rb->queue : hostq;
		bool enqueue = !dry && (detach || strcmp(queue, hostq) != 0);
		rbk_interp ip = {store, rbk_cli_registry(), home, actor, &ui, false, queue, enqueue, 0, false, 0, {0}, 0, NULL, {0}, 0, 0, {0}, rbk_cli_notify_shared()};
		rbk_interp_launch l = {rb.path, rb.doc, rb.rb, args, nargs, NULL, dry, wait_lock, fire, nominal};
		int64_t id = 0;
		const char *status = "failed";
		rbk_interp_install_signals();
		if (rbk_interp_run(&ip, &l, &id, &status, &e) < 0) {
			fprintf(stderr, "rbk: error: %s\n", e.msg);
			rc = e.code ? e.code : RBK_EXIT_FAILED;
			if (!id && rc == RBK_EXIT_OK)
				rc = RBK_EXIT_FAILED;
		} else if (enqueue) {
			rc = RBK_EXIT_OK;
			if (detach && !json)
				printf("%lld\n", (long long)id);
			else if (!json)
				rbk_ui_note(&ui, id, "queued on %s; following it (Ctrl-C stops following, not the run)", queue);
			if (!detach) {
				/* Ctrl-C stops following; the run goes on with its agent. */
				signal(SIGINT, SIG_DFL);
				signal(SIGTERM, SIG_DFL);
				rc = rbk_cli_follow(store, id, 0, json, false);
			}
		} else {
			rc = rbk_interp_exit_code(status);
		}
		if (json && id && (!enqueue || detach))
			printf("{\"run\": %lld, \"status\": \"%s\"}\n", (long long)id, status);
		rbk_free(hostq);
		rbk_store_close(store);
	}
	rbk_free(home);
	rbk_free(actor);
	rbk_cli_runbook_free(&rb);
	rbk_free(args);
	rbk_free(names);
	return rc;
}

const rbk_cmd rbk_cmd_run = {"run",
			     "NAME|FILE [-p name=value]... [--dry-run] [--wait-lock] [--queue Q] [--detach] [--json]"
			     " [--home DIR] [--store URL]",
			     "run a runbook, durably", run};
