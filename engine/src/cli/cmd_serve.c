/* rbk serve [--listen ADDR:PORT] [--tls-cert FILE --tls-key FILE] [--public-read] [--no-agent]
 *           [--session-ttl DURATION] [--home DIR] [--store URL]
 * The console (serve/serve.h), loaded from the module rbk-serve.so. */
#include "cli/cli.h"
#include "base/dur.h"
#include "base/exitcode.h"
#include "base/mem.h"
#include "base/module.h"
#include "serve/serve.h"

#include <getopt.h>
#include <stdio.h>

static int serve(int argc, char **argv)
{
	static const struct option opts[] = {{"listen", required_argument, 0, 'l'},   {"tls-cert", required_argument, 0, 'c'},
					     {"tls-key", required_argument, 0, 'k'},  {"public-read", no_argument, 0, 'P'},
					     {"no-agent", no_argument, 0, 'N'},	      {"session-ttl", required_argument, 0, 'T'},
					     {"home", required_argument, 0, 'H'},     {"store", required_argument, 0, RBK_OPT_STORE},
					     {0, 0, 0, 0}};
	rbk_serve_opts o = {.listen = "127.0.0.1:8470", .agent = true, .session_ttl_s = 12 * 3600};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'l': o.listen = optarg; break;
		case 'c': o.tls_cert = optarg; break;
		case 'k': o.tls_key = optarg; break;
		case 'P': o.public_read = true; break;
		case 'N': o.agent = false; break;
		case 'T': {
			int64_t ms = rbk_dur_parse(optarg);
			if (ms < 60000)
				return rbk_cli_usage_error(&rbk_cmd_serve, "--session-ttl takes a duration of 1m or more, not '%s'",
							   optarg);
			o.session_ttl_s = ms / 1000;
			break;
		}
		case 'H': o.home = optarg; break;
		case RBK_OPT_STORE: rbk_cli_set_store(optarg); break;
		default: return rbk_cli_option_error(&rbk_cmd_serve, c, argv[optind - 1]);
		}
	}
	if (optind != argc)
		return rbk_cli_usage_error(&rbk_cmd_serve, "unexpected argument '%s'", argv[optind]);
	rbk_err e = {0};
	rbk_serve_main_fn fn = (rbk_serve_main_fn)rbk_module_sym("serve", "rbk serve", "rbk_serve_main", &e);
	if (!fn) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		return RBK_EXIT_FAILED;
	}
	char *dir = rbk_cli_home(o.home);
	o.state_dir = dir;
	o.store_url = rbk_cli_store_url();
	int rc = fn(&o);
	rbk_free(dir);
	return rc;
}

const rbk_cmd rbk_cmd_serve = {"serve",
			       "[--listen ADDR:PORT] [--tls-cert FILE --tls-key FILE] [--public-read] [--no-agent]"
			       " [--session-ttl DURATION] [--home DIR] [--store URL]",
			       "the web console and its JSON API, for the users of rbk user", serve};
