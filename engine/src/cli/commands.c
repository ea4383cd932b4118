/* commands: the table of rbk's commands, for main's dispatch, its help
 * and rbk completion. */
#include "cli/cli.h"

#include <stddef.h>

const rbk_cmd *const rbk_cli_commands[] = {
	&rbk_cmd_validate, &rbk_cmd_graph,     &rbk_cmd_plugins, &rbk_cmd_run,	   &rbk_cmd_resume,
	&rbk_cmd_approve,  &rbk_cmd_reject,    &rbk_cmd_abort,	 &rbk_cmd_status,  &rbk_cmd_show,
	&rbk_cmd_history,  &rbk_cmd_log,       &rbk_cmd_schedule, &rbk_cmd_scheduler, &rbk_cmd_agent,
	&rbk_cmd_verify,   &rbk_cmd_audit,     &rbk_cmd_replay,	 &rbk_cmd_export,  &rbk_cmd_report,
	&rbk_cmd_store,	   &rbk_cmd_runbooks, &rbk_cmd_user, &rbk_cmd_serve, &rbk_cmd_metrics,
	&rbk_cmd_completion, NULL};
