/* rbk completion bash|zsh: a completion script for the shell, made from
 * the command table, so it never falls behind the commands. */
#include "cli/cli.h"
#include "base/exitcode.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The words a command takes after its name: its --options (from its usage
 * line, with those every command has), and its sub-commands. */
static void words(const rbk_cmd *c, FILE *out)
{
	const char *u = c->usage;
	bool first = true;
	for (const char *p = strstr(u, "--"); p; p = strstr(p + 2, "--")) {
		size_t n = 2 + strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-");
		if (n > 2) {
			fprintf(out, "%s%.*s", first ? "" : " ", (int)n, p);
			first = false;
		}
	}
	fprintf(out, "%s--help --home --store", first ? "" : " ");
	if (!strcmp(c->name, "schedule"))
		fputs(" list next", out);
	else if (!strcmp(c->name, "audit"))
		fputs(" seal", out);
	else if (!strcmp(c->name, "store"))
		fputs(" copy", out);
	else if (!strcmp(c->name, "completion"))
		fputs(" bash zsh", out);
}

/* One case arm per command setting w to its words: open and close quote
 * them as a string (bash) or an array (zsh). */
static void cases(FILE *out, const char *open, const char *close)
{
	for (size_t i = 0; rbk_cli_commands[i]; i++) {
		fprintf(out, "\t%s) w=%s", rbk_cli_commands[i]->name, open);
		words(rbk_cli_commands[i], out);
		fprintf(out, "%s ;;\n", close);
	}
}

static void bash(FILE *out)
{
	fputs("# bash completion for rbk (rbk completion bash); source it, or install it as\n"
	      "# /usr/share/bash-completion/completions/rbk\n"
	      "_rbk_runbooks() {\n"
	      "\tlocal d IFS=:\n"
	      "\tfor d in ${RBK_PATH:-./runbooks}; do\n"
	      "\t\tfor f in \"$d\"/*.yaml \"$d\"/*.yml; do\n"
	      "\t\t\t[[ -e $f ]] || continue\n"
	      "\t\t\tf=${f##*/}; f=${f%.y*ml}\n"
	      "\t\t\t[[ $f == _* ]] || printf '%s\\n' \"$f\"\n"
	      "\t\tdone\n"
	      "\tdone\n"
	      "}\n"
	      "_rbk() {\n"
	      "\tlocal cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]}\n"
	      "\tif ((COMP_CWORD == 1)); then\n"
	      "\t\tCOMPREPLY=($(compgen -W \"",
	      out);
	for (size_t i = 0; rbk_cli_commands[i]; i++)
		fprintf(out, "%s%s", i ? " " : "", rbk_cli_commands[i]->name);
	fputs(" help\" -- \"$cur\"))\n\t\treturn\n\tfi\n\tlocal w=\n\tcase $cmd in\n", out);
	cases(out, "\"", "\"");
	fputs("\tesac\n"
	      "\tif [[ $cur == -* ]]; then\n"
	      "\t\tCOMPREPLY=($(compgen -W \"$w\" -- \"$cur\"))\n",
	      out);
	fputs("\telif [[ $cmd == run || $cmd == validate || $cmd == graph || $cmd == schedule ]]; then\n"
	      "\t\tCOMPREPLY=($(compgen -W \"$(_rbk_runbooks) ${w//--*([a-z-])/}\" -- \"$cur\") $(compgen -f -X '!*.y*ml' -- \"$cur\"))\n"
	      "\telse\n"
	      "\t\tCOMPREPLY=($(compgen -W \"${w//--*([a-z-])/}\" -- \"$cur\"))\n"
	      "\tfi\n"
	      "}\n"
	      "shopt -s extglob\n"
	      "complete -F _rbk rbk\n",
	      out);
}

static void zsh(FILE *out)
{
	fputs("#compdef rbk\n"
	      "# zsh completion for rbk (rbk completion zsh); put it in a directory of $fpath as _rbk\n"
	      "_rbk() {\n"
	      "\tlocal -a cmds\n"
	      "\tcmds=(\n",
	      out);
	for (size_t i = 0; rbk_cli_commands[i]; i++) {
		fprintf(out, "\t\t'%s:", rbk_cli_commands[i]->name);
		for (const char *s = rbk_cli_commands[i]->summary; *s; s++)
			fputs(*s == '\'' ? "'\\''" : *s == ':' ? "\\:" : (char[]){*s, 0}, out);
		fputs("'\n", out);
	}
	fputs("\t)\n"
	      "\tif (( CURRENT == 2 )); then\n"
	      "\t\t_describe 'rbk command' cmds\n"
	      "\t\treturn\n"
	      "\tfi\n"
	      "\tlocal -a w\n"
	      "\tcase $words[2] in\n",
	      out);
	cases(out, "(", ")");
	fputs("\tesac\n"
	      "\tlocal -a books\n"
	      "\tlocal d f\n"
	      "\tfor d in ${(s.:.)${RBK_PATH:-./runbooks}}; do\n"
	      "\t\tfor f in $d/*.y(a|)ml(N); do\n"
	      "\t\t\tf=${f:t:r}\n"
	      "\t\t\t[[ $f == _* ]] || books+=($f)\n"
	      "\t\tdone\n"
	      "\tdone\n"
	      "\tcase $words[2] in\n"
	      "\trun|validate|graph|schedule) compadd -a w books; _files -g '*.y(a|)ml' ;;\n"
	      "\t*) compadd -a w ;;\n"
	      "\tesac\n"
	      "}\n"
	      "compdef _rbk rbk\n",
	      out);
}

static int completion(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "bash") != 0 && strcmp(argv[1], "zsh") != 0))
		return rbk_cli_usage_error(&rbk_cmd_completion, "give the shell: bash or zsh");
	if (!strcmp(argv[1], "bash"))
		bash(stdout);
	else
		zsh(stdout);
	return RBK_EXIT_OK;
}

const rbk_cmd rbk_cmd_completion = {"completion", "bash|zsh",
				    "print a completion script for bash or zsh (commands, options, runbook names)", completion};
