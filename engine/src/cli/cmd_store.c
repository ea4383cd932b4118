/* rbk store copy --to URL [--home DIR | --store sqlite:PATH]: an SQLite
 * store copied verbatim into an empty PostgreSQL store, in one transaction
 * of the target (store.h, "copying a store"). */
#include "cli/cli.h"
#include "base/exitcode.h"
#include "base/mem.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What a walk's callback copied, and whether an import failed: not every
 * walk hands back its callback's return value. */
typedef struct {
	rbk_store *dst;
	rbk_err *err;
	int failed;
	int64_t sources, runs, steps, events, fires, meta;
} copier;

static int copy_source(void *ctx, const char *sha256, const char *bytes, size_t len)
{
	copier *c = ctx;
	if (rbk_store_import_source(c->dst, sha256, bytes, len, c->err) < 0)
		return c->failed = 1;
	c->sources++;
	return 0;
}

static int copy_step(void *ctx, const rbk_store_step *st)
{
	copier *c = ctx;
	if (rbk_store_import_step(c->dst, st, c->err) < 0)
		return c->failed = 1;
	c->steps++;
	return 0;
}

static int copy_event(void *ctx, const rbk_store_event *ev)
{
	copier *c = ctx;
	if (rbk_store_import_event(c->dst, ev, c->err) < 0)
		return c->failed = 1;
	c->events++;
	return 0;
}

static int copy_fire(void *ctx, const rbk_store_fire *f)
{
	copier *c = ctx;
	if (rbk_store_import_fire(c->dst, f, c->err) < 0)
		return c->failed = 1;
	c->fires++;
	return 0;
}

static int copy_meta(void *ctx, const char *key, const char *value)
{
	copier *c = ctx;
	if (rbk_store_import_meta(c->dst, key, value, c->err) < 0)
		return c->failed = 1;
	c->meta++;
	return 0;
}

static int newest_run(void *ctx, const rbk_store_run *r)
{
	*(int64_t *)ctx = r->id;
	return 1;
}

/* Runs in id order, each with its queue and its steps: a child run names
 * its parent, which must be there first. */
static int copy_runs(rbk_store *src, copier *c)
{
	int64_t max_id = 0;
	rbk_store_run_filter newest = {.limit = 1};
	if (rbk_store_runs(src, &newest, newest_run, &max_id, c->err) < 0)
		return -1;
	for (int64_t id = 1; id <= max_id; id++) {
		rbk_store_run r;
		if (rbk_store_run_get(src, id, &r, c->err) < 0) {
			if (c->err->code == RBK_ERR_NONAME)
				continue; /* ids need not be dense */
			return -1;
		}
		int rc = rbk_store_import_run(c->dst, &r, c->err);
		rbk_store_run_free(&r);
		if (rc < 0)
			return -1;
		c->runs++;
		rbk_store_lease l;
		if (rbk_store_lease_get(src, id, &l, c->err) < 0)
			return -1;
		if (l.queue || l.epoch)
			rc = rbk_store_import_queue(c->dst, id, l.queue, l.epoch, c->err);
		rbk_store_lease_free(&l);
		if (rc < 0 || rbk_store_steps(src, id, copy_step, c, c->err) < 0 || c->failed)
			return -1;
	}
	return 0;
}

/* "2 runs, 5 events" for the tables that are not empty. */
static void describe_rows(const rbk_store_counts *n, char *buf, size_t size)
{
	const struct {
		int64_t v;
		const char *what;
	} parts[] = {{n->runs, "run"}, {n->events, "event"}, {n->fires, "fire"}, {n->sources, "source"}, {n->steps, "step"}};
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof parts / sizeof parts[0] && o < size; i++)
		if (parts[i].v)
			o += (size_t)snprintf(buf + o, size - o, "%s%" PRId64 " %s%s", o ? ", " : "", parts[i].v,
					      parts[i].what, parts[i].v == 1 ? "" : "s");
}

/* The part of a store URL before its first ':', for messages: the rest may
 * hold a password. */
static int scheme_len(const char *url)
{
	const char *colon = strchr(url, ':');
	size_t n = colon ? (size_t)(colon - url) + 1 : 0;
	return n > 24 ? 24 : (int)n;
}

static int is_pg(const char *url) { return !strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11); }

/* The copy itself, the target's transaction open: 0, 2 (the target is not
 * empty) or 6, the error printed; the caller rolls back unless 0. */
static int copy_into(rbk_store *src, rbk_store *dst, const rbk_store_counts *want, int64_t head_seq,
		     const char *head, copier *c)
{
	rbk_err *e = c->err;
	rbk_store_counts had;
	if (rbk_store_counts_get(dst, &had, e) < 0)
		goto store_error;
	if (had.runs || had.events || had.fires || had.sources || had.steps) {
		char rows[160];
		describe_rows(&had, rows, sizeof rows);
		fprintf(stderr,
			"rbk: error: store copy: the target %s is not empty (it holds %s): store copy writes only into "
			"an empty store; nothing was changed\n",
			rbk_store_path(dst), rows);
		return RBK_EXIT_BADINPUT;
	}
	if (rbk_store_sources(src, copy_source, c, e) < 0 || c->failed || copy_runs(src, c) < 0 ||
	    rbk_store_events(src, 0, copy_event, c, e) < 0 || c->failed ||
	    rbk_store_fires(src, NULL, -1, NULL, 0, copy_fire, c, e) < 0 || c->failed ||
	    rbk_store_meta_all(src, copy_meta, c, e) < 0 || c->failed)
		goto store_error;

	/* Before the commit: the target, as this transaction sees it, holds
	 * what the source does and its chain recomputes to the same head. */
	rbk_store_counts got;
	int64_t seq = 0, count = 0, bad = 0;
	char hash[65], *why = NULL;
	if (rbk_store_counts_get(dst, &got, e) < 0 || rbk_store_head(dst, &seq, hash, e) < 0 ||
	    rbk_store_verify(dst, &count, &bad, &why, e) < 0)
		goto store_error;
	const char *wrong = got.runs != want->runs || got.events != want->events || got.steps != want->steps ||
					    got.fires != want->fires || got.sources != want->sources || c->meta != want->meta
				    ? "its rows differ in number from the source's"
			    : seq != head_seq || strcmp(hash, head) != 0 ? "its chain head differs from the source's"
			    : bad || count != want->events		 ? "its chain does not verify"
									 : NULL;
	if (wrong) {
		fprintf(stderr,
			"rbk: error: store copy: the copy in %s is not the source: %s (head %" PRId64 " %s, source %" PRId64
			" %s%s%s); nothing was committed\n",
			rbk_store_path(dst), wrong, seq, hash, head_seq, head, why ? "; " : "", why ? why : "");
		rbk_free(why);
		return RBK_EXIT_STORE;
	}
	if (rbk_store_commit(dst, e) < 0)
		goto store_error;
	return 0;
store_error:
	fprintf(stderr, "rbk: error: store copy: %s; nothing was committed\n", e->msg);
	return RBK_EXIT_STORE;
}

static int copy(int argc, char **argv, const rbk_cmd *cmd)
{
	static const struct option opts[] = {{"to", required_argument, 0, 't'},
					     {"home", required_argument, 0, 'H'},
					     {"store", required_argument, 0, RBK_OPT_STORE},
					     {0, 0, 0, 0}};
	const char *to = NULL, *home_opt = NULL;
	int c;
	optind = 1;
	opterr = 0;
	/* argv[0] is "copy": getopt takes it for the program's name. */
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 't')
			to = optarg;
		else if (c == 'H')
			home_opt = optarg;
		else if (c == RBK_OPT_STORE)
			rbk_cli_set_store(optarg);
		else
			return rbk_cli_option_error(cmd, c, argv[optind - 1]);
	}
	if (optind != argc)
		return rbk_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (!to || !*to)
		return rbk_cli_usage_error(cmd, "--to URL is required (the PostgreSQL store to copy into)");
	if (!is_pg(to)) {
		fprintf(stderr,
			"rbk: error: store copy writes only into PostgreSQL: --to must be a postgresql://... URI, not "
			"'%.*s...'\n",
			scheme_len(to), to);
		return RBK_EXIT_BADINPUT;
	}
	const char *url = rbk_cli_store_url();
	if (url && strncmp(url, "sqlite:", 7) != 0) {
		fprintf(stderr,
			"rbk: error: store copy reads only from SQLite: the source (--store or RBK_STORE) is '%.*s...'; "
			"name it with --home DIR or --store sqlite:PATH\n",
			scheme_len(url), url);
		return RBK_EXIT_BADINPUT;
	}

	/* Opening would create a missing SQLite store: there is nothing to copy. */
	char *home = rbk_cli_home(home_opt);
	char *file = url ? rbk_xstrdup(url + 7) : rbk_xasprintf("%s/rbk.db", home);
	struct stat st;
	if (stat(file, &st) != 0) {
		fprintf(stderr, "rbk: error: store copy: no SQLite store at %s (%s); nothing to copy\n", file,
			strerror(errno));
		rbk_free(file);
		rbk_free(home);
		return RBK_EXIT_BADINPUT;
	}
	rbk_free(file);

	int rc = RBK_EXIT_OK;
	rbk_err e = {0};
	rbk_store *src = NULL, *dst = NULL;
	rbk_store_counts want;
	int64_t head_seq = 0, count = 0, bad = 0;
	char head[65], *why = NULL;
	if (rbk_store_open_url(&src, url, home, &e) < 0 || rbk_store_read_snapshot(src, &e) < 0 ||
	    rbk_store_counts_get(src, &want, &e) < 0 || rbk_store_head(src, &head_seq, head, &e) < 0 ||
	    rbk_store_verify(src, &count, &bad, &why, &e) < 0) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		rc = RBK_EXIT_STORE;
		goto out;
	}
	if (bad) {
		/* A copy would carry the damage over: rbk verify says where. */
		fprintf(stderr, "rbk: error: store copy: the chain of %s is broken at event %" PRId64 " (%s); nothing copied\n",
			rbk_store_path(src), bad, why ? why : "");
		rc = RBK_EXIT_STORE;
		goto out;
	}
	/* The target's password stays in to: messages name rbk_store_path. */
	if (rbk_store_open_url(&dst, to, NULL, &e) < 0 || rbk_store_begin(dst, &e) < 0) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		rc = RBK_EXIT_STORE;
		goto out;
	}
	copier cp = {.dst = dst, .err = &e};
	rc = copy_into(src, dst, &want, head_seq, head, &cp);
	if (rc != 0) {
		rbk_store_rollback(dst);
		goto out;
	}
	printf("copied %" PRId64 " runs, %" PRId64 " events, %" PRId64 " fires from %s to %s; chain head %" PRId64
	       " %s\n",
	       cp.runs, cp.events, cp.fires, rbk_store_path(src), rbk_store_path(dst), head_seq, head);
out:
	if (src)
		rbk_store_rollback(src); /* the snapshot: nothing was written to the source */
	rbk_free(why);
	rbk_store_close(dst);
	rbk_store_close(src);
	rbk_free(home);
	return rc;
}

static int store(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "copy") != 0)
		return rbk_cli_usage_error(&rbk_cmd_store, "use 'rbk store copy --to URL'");
	return copy(argc - 1, argv + 1, &rbk_cmd_store);
}

const rbk_cmd rbk_cmd_store = {"store", "copy --to URL [--home DIR | --store sqlite:PATH]",
			       "copy an SQLite store into an empty PostgreSQL store: every run, event, fire and "
			       "seal, the chain verbatim",
			       store};
