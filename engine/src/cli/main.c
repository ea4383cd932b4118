/* rbk: the command-line entry point; dispatches to the command table. */
#include "cli/cli.h"
#include "base/exitcode.h"
#include "base/mem.h"

#include <stdlib.h>

#include <stdio.h>
#include <string.h>

#ifndef RBK_VERSION
#define RBK_VERSION "0.1.0"
#endif

#define commands rbk_cli_commands

static void usage(FILE *to)
{
	fputs("usage: rbk COMMAND [ARGS]\n\ncommands:\n", to);
	for (size_t i = 0; commands[i]; i++)
		fprintf(to, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	fputs("\nexit codes: 0 succeeded, 1 failed, 2 bad input, 3 rolled back,\n"
	      "            4 waiting or needs attention, 5 interrupted (resumable)\n"
	      "see docs/cli.md\n",
	      to);
}

int main(int argc, char **argv)
{
	/* Fault injection for tests: the Nth allocation fails (docs/testing.md). */
	const char *alloc_fault = getenv("RBK_FAULT_ALLOC");
	if (alloc_fault && atol(alloc_fault) > 0)
		rbk_mem_fail_after((unsigned long)atol(alloc_fault));
	if (argc < 2) {
		usage(stderr);
		return RBK_EXIT_BADINPUT;
	}
	const char *name = argv[1];
	if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
		usage(stdout);
		return RBK_EXIT_OK;
	}
	if (!strcmp(name, "--version") || !strcmp(name, "version")) {
		printf("rbk %s (runbook format 1)\n", RBK_VERSION);
		return RBK_EXIT_OK;
	}
	for (size_t i = 0; commands[i]; i++)
		if (!strcmp(commands[i]->name, name)) {
			for (int j = 2; j < argc; j++)
				if (!strcmp(argv[j], "--help") || !strcmp(argv[j], "-h")) {
					printf("usage: rbk %s %s\n%s\n", name, commands[i]->usage, commands[i]->summary);
					return RBK_EXIT_OK;
				}
			return commands[i]->run(argc - 1, argv + 1);
		}
	fprintf(stderr, "rbk: error: unknown command '%s'\n", name);
	usage(stderr);
	return RBK_EXIT_BADINPUT;
}
