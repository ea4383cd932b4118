/* serve: the console, an HTTP server for operators and auditors
 * (docs/console.md), built as the module rbk-serve.so so that only
 * `rbk serve` loads libmicrohttpd.
 *
 * The server keeps no record of its own. Every page's data is what the CLI
 * prints with --json, made by the rbk it starts for the request (the same
 * checks, the same output, one process per request), and every action is
 * that rbk acting for the person the server authenticated (--credential-fd:
 * the child checks the credential against the store itself). Executing runs
 * is left to agents; by default the server starts one for this host. */
#ifndef RBK_SERVE_H
#define RBK_SERVE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
	const char *listen;   /* ADDR:PORT; port 0: any free port */
	const char *home;     /* --home, or NULL: passed on to the rbk it starts */
	const char *state_dir; /* the state directory in force */
	const char *store_url; /* NULL: SQLite in state_dir */
	const char *tls_cert; /* PEM files; both or neither */
	const char *tls_key;
	bool public_read; /* reads need no token */
	bool agent;	  /* start `rbk agent` for this host's queue */
	int64_t session_ttl_s;
} rbk_serve_opts;

/* Serve until SIGTERM or SIGINT; returns the exit code. */
typedef int (*rbk_serve_main_fn)(const rbk_serve_opts *opts);
int rbk_serve_main(const rbk_serve_opts *opts);

#endif
