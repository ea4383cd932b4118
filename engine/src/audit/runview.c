/* runview: presentation of runs and events. */
#include "audit/runview.h"
#include "lang/json.h"
#include "base/mem.h"
#include "exec/lease.h"
#include "exec/owner.h"

#include <string.h>

rbk_val rbk_runview_run(const rbk_store_run *r, const char *status)
{
	rbk_val m = rbk_val_map();
	rbk_val_map_set(&m, "run", rbk_val_int(r->id));
	rbk_val_map_set(&m, "runbook", rbk_val_str(r->runbook));
	rbk_val_map_set(&m, "status", rbk_val_str(status ? status : r->status));
	rbk_val_map_set(&m, "actor", rbk_val_str(r->actor));
	rbk_val_map_set(&m, "created_at", rbk_val_str(r->created_at));
	rbk_val_map_set(&m, "updated_at", rbk_val_str(r->updated_at));
	rbk_val_map_set(&m, "state", r->current_state ? rbk_val_str(r->current_state) : rbk_val_null());
	rbk_val_map_set(&m, "dry_run", rbk_val_bool(r->dry_run));
	rbk_val_map_set(&m, "parent_run", r->parent_run ? rbk_val_int(r->parent_run) : rbk_val_null());
	rbk_val_map_set(&m, "lock", r->lock_key ? rbk_val_str(r->lock_key) : rbk_val_null());
	rbk_val_map_set(&m, "source_sha256", rbk_val_str(r->source_sha256));
	rbk_val p = rbk_val_null();
	if (rbk_json_parse(&p, r->params_json, strlen(r->params_json), NULL) < 0)
		p = rbk_val_null();
	rbk_val_map_set(&m, "params", p);
	rbk_val prov = rbk_val_null();
	if (r->provenance_json && rbk_json_parse(&prov, r->provenance_json, strlen(r->provenance_json), NULL) < 0)
		prov = rbk_val_null();
	rbk_val_map_set(&m, "provenance", prov);
	return m;
}

const char *rbk_runview_status(rbk_store *s, const char *home, const rbk_store_run *r)
{
	if (strcmp(r->status, "running") != 0)
		return r->status;
	int64_t pid = 0;
	if (rbk_owner_probe(home, r->id, &pid, NULL) == 1)
		return "running";
	/* Executed on another host: its lease in the store says it lives,
	 * unless it names a process of this host that is gone. */
	rbk_store_lease l = {0};
	rbk_err e = {0};
	bool live = s && rbk_store_lease_get(s, r->id, &l, &e) == 0 && l.owner && l.left_ms > 0 &&
		    !rbk_lease_owner_gone(l.owner);
	rbk_store_lease_free(&l);
	return live ? "running" : "interrupted";
}

static const char *s_of(const rbk_val *m, const char *k)
{
	const rbk_val *v = m->t == RBK_V_MAP ? rbk_val_map_get(m, k) : NULL;
	return v && v->t == RBK_V_STR ? v->u.s.s : NULL;
}

static long long i_of(const rbk_val *m, const char *k)
{
	const rbk_val *v = m->t == RBK_V_MAP ? rbk_val_map_get(m, k) : NULL;
	return v && v->t == RBK_V_INT ? v->u.i : 0;
}

void rbk_runview_event_line(FILE *out, const rbk_store_event *ev)
{
	rbk_val d = rbk_val_null();
	if (rbk_json_parse(&d, ev->data, strlen(ev->data), NULL) < 0)
		d = rbk_val_null();
	/* "2026-11-21T11:44:45.123Z" -> "2026-11-21 11:44:45.123" */
	char at[32];
	snprintf(at, sizeof at, "%.10s %.12s", ev->at, strlen(ev->at) > 11 ? ev->at + 11 : "");
	fprintf(out, "%s  %-18s ", at, ev->kind);
	const char *k = ev->kind, *st = s_of(&d, "state");
	if (!strcmp(k, "step_started") || !strcmp(k, "undo_started"))
		fprintf(out, "%s attempt %lld (%s) key %s", st, i_of(&d, "attempt"), s_of(&d, "action") ? s_of(&d, "action") : "",
			s_of(&d, "key") ? s_of(&d, "key") : "");
	else if (!strcmp(k, "step_finished")) {
		const rbk_val *res = rbk_val_map_get(&d, "result");
		fprintf(out, "%s attempt %lld %s", st, i_of(&d, "attempt"), s_of(&d, "status"));
		if (res) {
			fprintf(out, " %.3fs", (double)i_of(res, "duration_ms") / 1000.0);
			if (s_of(res, "error"))
				fprintf(out, ": %s", s_of(res, "error"));
			if (s_of(res, "marked_by"))
				fprintf(out, " (marked by %s)", s_of(res, "marked_by"));
			const rbk_val *cut = rbk_val_map_get(res, "cut"); /* outputs the host cut (registry.h) */
			for (size_t i = 0; cut && cut->t == RBK_V_LIST && i < cut->u.list.n; i++)
				if (cut->u.list.items[i].t == RBK_V_STR)
					fprintf(out, "%s%s", i ? ", " : " (output cut: ", cut->u.list.items[i].u.s.s);
			if (cut && cut->t == RBK_V_LIST && cut->u.list.n)
				fputc(')', out);
		}
	} else if (!strcmp(k, "undo_finished"))
		fprintf(out, "%s %s%s%s", st, s_of(&d, "status"), s_of(&d, "error") ? ": " : "",
			s_of(&d, "error") ? s_of(&d, "error") : "");
	else if (!strcmp(k, "transition")) {
		fprintf(out, "%s -> %s (%s", s_of(&d, "from"), s_of(&d, "to"), s_of(&d, "via"));
		if (s_of(&d, "guard"))
			fprintf(out, ", branch %lld: %s", i_of(&d, "branch") + 1, s_of(&d, "guard"));
		fputc(')', out);
		if (s_of(&d, "error"))
			fprintf(out, ": %s", s_of(&d, "error"));
	} else if (!strcmp(k, "step_retry") || !strcmp(k, "step_poll"))
		fprintf(out, "%s after attempt %lld, next in %.3fs", st, i_of(&d, "attempt"),
			(double)(i_of(&d, "delay_ms")) / 1000.0);
	else if (!strcmp(k, "approval_requested"))
		fprintf(out, "%s: %s", st, s_of(&d, "prompt") ? s_of(&d, "prompt") : "");
	else if (!strcmp(k, "approval_decided"))
		fprintf(out, "%s %s%s%s%s%s", st, s_of(&d, "decision"), s_of(&d, "by") ? " by " : "",
			s_of(&d, "by") ? s_of(&d, "by") : "", s_of(&d, "comment") ? ": " : "",
			s_of(&d, "comment") ? s_of(&d, "comment") : "");
	else if (!strcmp(k, "operator_decided"))
		fprintf(out, "%s %s by %s", st, s_of(&d, "decision"), s_of(&d, "by"));
	else if (!strcmp(k, "call_started"))
		fprintf(out, "%s called run %lld", st, i_of(&d, "child"));
	else if (!strcmp(k, "run_started"))
		fprintf(out, "start %s", s_of(&d, "start"));
	else if (!strcmp(k, "run_status") || !strcmp(k, "run_finished"))
		fprintf(out, "%s%s%s%s%s", s_of(&d, "status"), s_of(&d, "reason") ? ": " : "",
			s_of(&d, "reason") ? s_of(&d, "reason") : "", s_of(&d, "executor") ? " by executor " : "",
			s_of(&d, "executor") ? s_of(&d, "executor") : "");
	else if (!strcmp(k, "rollback_started"))
		fprintf(out, "from %s: %s", s_of(&d, "from"), s_of(&d, "error") ? s_of(&d, "error") : "");
	else if (!strcmp(k, "vars_set")) {
		char *v = rbk_json_encode(rbk_val_map_get(&d, "vars") ? rbk_val_map_get(&d, "vars") : &d);
		fprintf(out, "%s %s", st, v);
		rbk_free(v);
	} else if (!strcmp(k, "wait_started"))
		fprintf(out, "%s", st);
	else if (!strcmp(k, "abort_requested"))
		fprintf(out, "by %s", s_of(&d, "by"));
	else if (!strcmp(k, "run_created"))
		fprintf(out, "%s by %s", s_of(&d, "runbook") ? s_of(&d, "runbook") : "", ev->actor);
	fprintf(out, "  [%s]\n", ev->actor);
	rbk_val_free(&d);
}

char *rbk_runview_event_json(const rbk_store_event *ev)
{
	rbk_val m = rbk_val_map(), d = rbk_val_null();
	if (rbk_json_parse(&d, ev->data, strlen(ev->data), NULL) < 0)
		d = rbk_val_str(ev->data);
	rbk_val_map_set(&m, "seq", rbk_val_int(ev->seq));
	if (ev->part)
		rbk_val_map_set(&m, "part", rbk_val_int(ev->part));
	rbk_val_map_set(&m, "run", rbk_val_int(ev->run_id));
	rbk_val_map_set(&m, "at", rbk_val_str(ev->at));
	rbk_val_map_set(&m, "actor", rbk_val_str(ev->actor));
	rbk_val_map_set(&m, "kind", rbk_val_str(ev->kind));
	rbk_val_map_set(&m, "data", d);
	rbk_val_map_set(&m, "hash", rbk_val_str(ev->hash));
	char *s = rbk_json_encode(&m);
	rbk_val_free(&m);
	return s;
}
