/* runview: how runs and events are shown to people and as JSON, shared by
 * status, show, history and log. */
#ifndef RBK_RUNVIEW_H
#define RBK_RUNVIEW_H

#include <stdbool.h>
#include <stdio.h>

#include "store/store.h"
#include "lang/value.h"

/* The run as a JSON-ready map (params parsed back from their JSON). */
rbk_val rbk_runview_run(const rbk_store_run *r, const char *effective_status);
/* The status to show: a "running" run whose owner is gone is "interrupted". */
const char *rbk_runview_status(rbk_store *s, const char *home, const rbk_store_run *r);
/* One event as a timeline line: "11:31:02.123  step_finished  a ok 1.506s". */
void rbk_runview_event_line(FILE *out, const rbk_store_event *ev);
/* One event as a JSON object (data inlined as JSON). Caller frees. */
char *rbk_runview_event_json(const rbk_store_event *ev);

#endif
