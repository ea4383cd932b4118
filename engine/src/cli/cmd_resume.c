/* rbk resume RUN [--retry-step | --mark-step success|failure]
 * rbk approve RUN [--comment T]   rbk reject RUN [--comment T]
 * rbk abort RUN [--rollback]
 * Four doors into one thing: act on an existing run, then drive it on. */
#include "cli/cli.h"
#include "base/dur.h"
#include "base/exitcode.h"
#include "exec/interp.h"
#include "base/mem.h"
#include "runbook/model.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int act(const rbk_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {{"retry-step", no_argument, 0, 'r'}, {"mark-step", required_argument, 0, 'm'},
					     {"comment", required_argument, 0, 'c'},  {"rollback", no_argument, 0, 'b'},
					     {"home", required_argument, 0, 'H'}, {"store", required_argument, 0, RBK_OPT_STORE},
					     {"param", required_argument, 0, 'p'},    {"json", no_argument, 0, 'j'},
					     {"lease", required_argument, 0, 'L'},    {"agent", no_argument, 0, 'A'},
					     {"credential-fd", required_argument, 0, 'C'}, {"handoff", no_argument, 0, 'O'},
					     {0, 0, 0, 0}};
	int cred_fd = -1;
	bool handoff = false;
	rbk_resume_mode mode = cmd == &rbk_cmd_approve	 ? RBK_RESUME_APPROVE
			       : cmd == &rbk_cmd_reject	 ? RBK_RESUME_REJECT
			       : cmd == &rbk_cmd_abort	 ? RBK_RESUME_ABORT
							 : RBK_RESUME_PLAIN;
	const char *home_opt = NULL, *comment = NULL;
	bool json = false, agent = false;
	int64_t lease_ms = 0;
	rbk_param_arg *args = rbk_xcalloc((size_t)argc, sizeof *args);
	char (*names)[128] = rbk_xcalloc((size_t)argc, sizeof *names);
	size_t nargs = 0;
	int c, rc = RBK_EXIT_OK;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:", opts, NULL)) != -1 && rc == RBK_EXIT_OK) {
		rbk_err e = {0};
		bool resume = cmd == &rbk_cmd_resume, decide = cmd == &rbk_cmd_approve || cmd == &rbk_cmd_reject;
		switch (c) {
		case 'r':
			if (!resume)
				goto bad;
			mode = RBK_RESUME_RETRY_STEP;
			break;
		case 'm':
			if (!resume)
				goto bad;
			if (!strcmp(optarg, "success"))
				mode = RBK_RESUME_MARK_SUCCESS;
			else if (!strcmp(optarg, "failure"))
				mode = RBK_RESUME_MARK_FAILURE;
			else
				rc = rbk_cli_usage_error(cmd, "--mark-step takes success or failure, not '%s'", optarg);
			break;
		case 'c':
			if (!decide)
				goto bad;
			comment = optarg;
			break;
		case 'b':
			if (cmd != &rbk_cmd_abort)
				goto bad;
			mode = RBK_RESUME_ABORT_ROLLBACK;
			break;
		case 'H': home_opt = optarg; break;
		case RBK_OPT_STORE: rbk_cli_set_store(optarg); break;
		case 'j': json = true; break;
		case 'L':
			if ((lease_ms = rbk_dur_parse(optarg)) < 1000)
				rc = rbk_cli_usage_error(cmd, "--lease takes a duration of 1s or more (30s, 2m), not '%.80s'", optarg);
			break;
		case 'A': agent = true; break; /* set by rbk agent: it serves the run's queue */
		case 'C': cred_fd = atoi(optarg); break; /* set by rbk serve */
		case 'O': handoff = true; break;	  /* rbk serve: record, let the agents execute */
		case 'p':
			if (rbk_params_parse_arg(optarg, &args[nargs], names[nargs], sizeof names[nargs], &e) < 0)
				rc = rbk_cli_usage_error(cmd, "%s", e.msg);
			else
				nargs++;
			break;
		default:
		bad:
			rc = rbk_cli_option_error(cmd, c, argv[optind - 1]);
		}
	}
	long long id = rc == RBK_EXIT_OK ? rbk_cli_run_number(cmd, argc, argv, optind, &rc) : 0;
	if (rc != RBK_EXIT_OK) {
		rbk_free(args);
		rbk_free(names);
		return rc;
	}
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
		/* A run queued elsewhere is only acted on here (a decision
		 * recorded), then handed back to the agents of its queue. */
		char *hostq = rbk_cli_host_queue();
		rbk_store_lease lease = {0};
		bool elsewhere = !agent && rbk_store_lease_get(store, id, &lease, &e) == 0 && lease.queue &&
				 (handoff || strcmp(lease.queue, hostq) != 0);
		e = (rbk_err){0};
		rbk_interp ip = {store, rbk_cli_registry(), home, actor, &ui, false, NULL, elsewhere, lease_ms, agent, 0, {0}, 0, NULL, {0}, 0, 0, {0}, rbk_cli_notify_shared()};
		const char *status = "failed";
		rbk_interp_install_signals();
		if (rbk_interp_resume(&ip, id, mode, comment, args, nargs, &status, &e) < 0) {
			fprintf(stderr, "rbk: error: %s\n", e.msg);
			rc = e.code ? e.code : RBK_EXIT_FAILED;
		} else {
			/* An abort handed to a live owner is done once it is recorded. */
			bool handed = (mode == RBK_RESUME_ABORT || mode == RBK_RESUME_ABORT_ROLLBACK) &&
				      !strcmp(status, "running");
			rc = handed ? RBK_EXIT_OK : rbk_interp_exit_code(status);
			if (elsewhere && !json)
				rbk_ui_note(&ui, id, "handed to queue %s: an agent serving it goes on with the run", lease.queue);
			if (elsewhere)
				rc = !strcmp(status, "needs_attention") ? RBK_EXIT_WAITING : RBK_EXIT_OK;
			if (json)
				printf("{\"run\": %lld, \"status\": \"%s\"}\n", id, status);
		}
		rbk_store_lease_free(&lease);
		rbk_free(hostq);
		rbk_store_close(store);
	}
	rbk_free(home);
	rbk_free(actor);
	rbk_free(args);
	rbk_free(names);
	return rc;
}

static int resume(int argc, char **argv) { return act(&rbk_cmd_resume, argc, argv); }
static int approve(int argc, char **argv) { return act(&rbk_cmd_approve, argc, argv); }
static int reject(int argc, char **argv) { return act(&rbk_cmd_reject, argc, argv); }
static int abort_run(int argc, char **argv) { return act(&rbk_cmd_abort, argc, argv); }

const rbk_cmd rbk_cmd_resume = {"resume", "RUN [--retry-step | --mark-step success|failure] [-p name=value]...",
				"continue an interrupted or waiting run", resume};
const rbk_cmd rbk_cmd_approve = {"approve", "RUN [--comment TEXT]", "approve the step a run waits on",
				 approve};
const rbk_cmd rbk_cmd_reject = {"reject", "RUN [--comment TEXT]",
				"reject the step a run waits on (its failure edge follows)", reject};
const rbk_cmd rbk_cmd_abort = {"abort", "RUN [--rollback]", "stop a run for good, optionally rolling it back",
			       abort_run};
