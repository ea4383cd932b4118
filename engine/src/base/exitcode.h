/* exitcode: the documented exit codes of every rbk command (docs/cli.md). */
#ifndef RBK_EXITCODE_H
#define RBK_EXITCODE_H

enum {
	RBK_EXIT_OK = 0,          /* succeeded */
	RBK_EXIT_FAILED = 1,      /* the run failed, or verification failed */
	RBK_EXIT_BADINPUT = 2,    /* usage, invalid runbook, bad param */
	RBK_EXIT_ROLLED_BACK = 3, /* the run rolled back */
	RBK_EXIT_WAITING = 4,     /* waiting, or needs attention */
	RBK_EXIT_INTERRUPTED = 5, /* interrupted, resumable */
	RBK_EXIT_STORE = 6        /* the store cannot be written, or its chain is broken: nothing was done */
};

#endif
