/* bundle: export a run with its chain proof, and check one offline. */
#include "audit/bundle.h"
#include "base/hash.h"
#include "lang/json.h"
#include "base/mem.h"
#include "audit/provenance.h"
#include "audit/runview.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	rbk_val events, links;
	int64_t first, last;
} gather;

static rbk_val event_val(const rbk_store_event *ev)
{
	rbk_val m = rbk_val_map();
	rbk_val_map_set(&m, "seq", rbk_val_int(ev->seq));
	rbk_val_map_set(&m, "run", rbk_val_int(ev->run_id));
	rbk_val_map_set(&m, "at", rbk_val_str(ev->at));
	rbk_val_map_set(&m, "actor", rbk_val_str(ev->actor));
	rbk_val_map_set(&m, "kind", rbk_val_str(ev->kind));
	rbk_val_map_set(&m, "data", rbk_val_str(ev->data)); /* the exact text that was hashed */
	rbk_val_map_set(&m, "prev_hash", rbk_val_str(ev->prev_hash));
	rbk_val_map_set(&m, "hash", rbk_val_str(ev->hash));
	return m;
}

static int take_event(void *ctx, const rbk_store_event *ev)
{
	gather *g = ctx;
	rbk_val_list_push(&g->events, event_val(ev));
	if (!g->first)
		g->first = ev->seq;
	g->last = ev->seq;
	return 0;
}

static int take_link(void *ctx, const rbk_store_event *ev)
{
	gather *g = ctx;
	rbk_val l = rbk_val_map();
	rbk_val_map_set(&l, "seq", rbk_val_int(ev->seq));
	rbk_val_map_set(&l, "run", rbk_val_int(ev->run_id)); /* so a run's event cannot be left out */
	rbk_val_map_set(&l, "prev_hash", rbk_val_str(ev->prev_hash));
	rbk_val_map_set(&l, "hash", rbk_val_str(ev->hash));
	rbk_val_list_push(&g->links, l);
	return 0;
}

int rbk_bundle_export(rbk_store *s, int64_t run, const char *seal_dir, FILE *out, rbk_err *err)
{
	rbk_store_run r;
	if (rbk_store_run_get(s, run, &r, err) < 0)
		return -1;
	gather g = {rbk_val_list(), rbk_val_list(), 0, 0};
	char *bytes = NULL;
	size_t len = 0;
	int rc = rbk_store_source(s, r.source_sha256, &bytes, &len, err);
	if (rc == 0)
		rc = rbk_store_events(s, run, take_event, &g, err);
	/* The proof ends at the seal when it covers the run, else at the head. */
	int64_t end = 0, seal_seq = 0;
	char end_hash[65] = "", seal_hash[65] = "";
	bool sealed = false;
	if (rc == 0)
		rc = rbk_store_head(s, &end, end_hash, err);
	if (rc == 0 && seal_dir && rbk_prov_last_seal(seal_dir, &seal_seq, seal_hash, err) == 0 && seal_seq >= g.last &&
	    seal_seq <= end) {
		end = seal_seq;
		memcpy(end_hash, seal_hash, 65);
		sealed = true;
	}
	if (rc == 0 && g.first)
		rc = rbk_store_links(s, g.first + 1, end, take_link, &g, err);
	if (rc == 0) {
		rbk_val b = rbk_val_map();
		rbk_val_map_set(&b, "rbk_bundle", rbk_val_int(1));
		rbk_val_map_set(&b, "run", rbk_runview_run(&r, r.status));
		rbk_val_map_set(&b, "source", rbk_val_strn(bytes, len));
		rbk_val_map_set(&b, "source_sha256", rbk_val_str(r.source_sha256));
		rbk_val_map_set(&b, "events", g.events);
		rbk_val_map_set(&b, "links", g.links);
		g.events = g.links = rbk_val_null();
		rbk_val pe = rbk_val_map();
		rbk_val_map_set(&pe, "seq", rbk_val_int(end));
		rbk_val_map_set(&pe, "hash", rbk_val_str(end_hash));
		rbk_val_map_set(&pe, "sealed", rbk_val_bool(sealed));
		rbk_val_map_set(&b, "proof_end", pe);
		char *js = rbk_json_encode(&b);
		fputs(js, out);
		fputc('\n', out);
		rbk_free(js);
		rbk_val_free(&b);
	}
	rbk_val_free(&g.events);
	rbk_val_free(&g.links);
	rbk_free(bytes);
	rbk_store_run_free(&r);
	return rc;
}

static const char *str(const rbk_val *m, const char *k)
{
	const rbk_val *v = m && m->t == RBK_V_MAP ? rbk_val_map_get(m, k) : NULL;
	return v && v->t == RBK_V_STR ? v->u.s.s : NULL;
}

static int64_t num(const rbk_val *m, const char *k)
{
	const rbk_val *v = m && m->t == RBK_V_MAP ? rbk_val_map_get(m, k) : NULL;
	return v && v->t == RBK_V_INT ? v->u.i : -1;
}

static int verdict(char **summary, int bad, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int verdict(char **summary, int bad, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char buf[600];
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	*summary = rbk_xstrdup(buf);
	return bad;
}

int rbk_bundle_verify(const char *path, char **summary, rbk_err *err)
{
	*summary = NULL;
	rbk_buf b = {0};
	if (rbk_buf_read_file(&b, path, 0) < 0) {
		rbk_err_set(err, -1, "cannot open %s", path);
		return -1;
	}
	rbk_val bundle = rbk_val_null();
	rbk_err je = {0};
	if (rbk_json_parse(&bundle, b.s ? b.s : "", b.len, &je) < 0 || bundle.t != RBK_V_MAP ||
	    num(&bundle, "rbk_bundle") != 1) {
		rbk_buf_free(&b);
		rbk_val_free(&bundle);
		rbk_err_set(err, -1, "%s is not an rbk bundle%s%s", path, je.msg[0] ? ": " : "", je.msg);
		return -1;
	}
	rbk_buf_free(&b);
	int rc = 0;
	const rbk_val *events = rbk_val_map_get(&bundle, "events"), *links = rbk_val_map_get(&bundle, "links"),
		      *pe = rbk_val_map_get(&bundle, "proof_end");
	const char *source = str(&bundle, "source"), *sha = str(&bundle, "source_sha256");
	char h[65];
	if (!events || events->t != RBK_V_LIST || !events->u.list.n || !links || links->t != RBK_V_LIST || !pe || !source ||
	    !sha) {
		rc = verdict(summary, 1, "the bundle lacks events, links, its source or its proof");
		goto done;
	}
	rbk_hash_sha256_hex(source, strlen(source), h);
	if (strcmp(h, sha) != 0) {
		rc = verdict(summary, 1, "the source's SHA-256 is %s, not the pinned %s: the definition was changed", h, sha);
		goto done;
	}
	/* Each event of the run recomputes to its hash. */
	for (size_t i = 0; i < events->u.list.n; i++) {
		const rbk_val *e = &events->u.list.items[i];
		const char *prev = str(e, "prev_hash"), *at = str(e, "at"), *actor = str(e, "actor"), *kind = str(e, "kind"),
			   *data = str(e, "data"), *hash = str(e, "hash");
		if (!prev || !at || !actor || !kind || !data || !hash) {
			rc = verdict(summary, 1, "event %zu of the bundle is incomplete", i + 1);
			goto done;
		}
		rbk_store_chain_hash(prev, num(e, "seq"), num(e, "run"), at, actor, kind, data, h);
		if (strcmp(h, hash) != 0) {
			rc = verdict(summary, 1, "event %lld was modified: its content does not hash to its recorded hash",
				     (long long)num(e, "seq"));
			goto done;
		}
	}
	/* The summary names the run the events belong to, and its outcome is
	 * the one its events record. */
	const rbk_val *runinfo = rbk_val_map_get(&bundle, "run");
	int64_t run_id = num(runinfo, "run");
	const char *final = NULL;
	for (size_t i = 0; i < events->u.list.n; i++) {
		const rbk_val *e = &events->u.list.items[i];
		if (num(e, "run") != run_id) {
			rc = verdict(summary, 1, "event %lld belongs to run %lld, not to the bundle's run %lld",
				     (long long)num(e, "seq"), (long long)num(e, "run"), (long long)run_id);
			goto done;
		}
		const char *k = str(e, "kind");
		if (k && (!strcmp(k, "run_finished") || !strcmp(k, "run_status"))) {
			rbk_val d = rbk_val_null();
			if (rbk_json_parse(&d, str(e, "data"), strlen(str(e, "data")), NULL) == 0) {
				const char *st = str(&d, "status");
				static char last[32];
				if (st) {
					snprintf(last, sizeof last, "%s", st);
					final = last;
				}
			}
			rbk_val_free(&d);
		}
	}
	const char *claimed = str(runinfo, "status");
	if (final && claimed && strcmp(final, claimed) != 0 &&
	    !(!strcmp(claimed, "interrupted") && !strcmp(final, "running"))) {
		rc = verdict(summary, 1, "the bundle says run %lld %s, its events say %s", (long long)run_id, claimed, final);
		goto done;
	}
	/* The links chain from the run's first event to the proof's end, and
	 * the run's later events are links of that chain. */
	const rbk_val *first = &events->u.list.items[0];
	int64_t seq = num(first, "seq");
	const char *prev = str(first, "hash");
	size_t next_event = 1;
	for (size_t i = 0; i < links->u.list.n; i++) {
		const rbk_val *l = &links->u.list.items[i];
		if (num(l, "seq") != seq + 1) {
			rc = verdict(summary, 1, "the chain skips from event %lld to %lld", (long long)seq, (long long)num(l, "seq"));
			goto done;
		}
		if (!str(l, "prev_hash") || strcmp(str(l, "prev_hash"), prev) != 0) {
			rc = verdict(summary, 1, "event %lld does not follow event %lld in the chain", (long long)num(l, "seq"),
				     (long long)seq);
			goto done;
		}
		seq = num(l, "seq");
		prev = str(l, "hash");
		if (next_event < events->u.list.n && num(&events->u.list.items[next_event], "seq") == seq) {
			if (strcmp(str(&events->u.list.items[next_event], "hash"), prev) != 0) {
				rc = verdict(summary, 1, "event %lld of the run is not the event the chain holds", (long long)seq);
				goto done;
			}
			next_event++;
		} else if (num(l, "run") == run_id) {
			rc = verdict(summary, 1, "event %lld of run %lld is in the chain but missing from the bundle",
				     (long long)seq, (long long)run_id);
			goto done;
		}
	}
	if (next_event != events->u.list.n) {
		rc = verdict(summary, 1, "events of the run are missing from the chain proof");
		goto done;
	}
	if (num(pe, "seq") != seq || !str(pe, "hash") || strcmp(str(pe, "hash"), prev) != 0) {
		rc = verdict(summary, 1, "the chain proof does not end at the event it names (%lld)", (long long)num(pe, "seq"));
		goto done;
	}
	const rbk_val *sealed = rbk_val_map_get(pe, "sealed");
	rc = verdict(summary, 0, "run %lld: %zu events intact, source intact, chained to event %lld (%s)%s",
		     (long long)num(rbk_val_map_get(&bundle, "run"), "run"), events->u.list.n, (long long)seq, prev,
		     sealed && sealed->t == RBK_V_BOOL && sealed->u.b ? ", which was sealed" : ", the head at export");
done:
	rbk_val_free(&bundle);
	return rc;
}
