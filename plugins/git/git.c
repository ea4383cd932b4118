/* rbk-git: git repositories through libgit2.
 *
 * Actions: clone, fetch, checkout, tag, revert, rev, log. Each opens the
 * repository at exactly `path` (its work tree or its .git directory; no
 * search upwards), so that a runbook never acts on an enclosing repository
 * by accident. libgit2 is initialised at the start of each call and shut
 * down at its end; everything a call allocates is freed before it returns.
 *
 * "Dirty" means what `git status` shows for tracked files: staged changes,
 * and modified, deleted or type-changed files in the work tree. Untracked
 * and ignored files never count. */
#include <rbk/plugin.h>

#include <git2.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <time.h>

RBK_PLUGIN_DECLARE();

static const rbk_host *host;

#define MAX_DIRTY_SHOWN 10
#define MAX_LOG_COUNT 10000

/* ---- arguments ---- */

static const char *git_msg(void)
{
	const git_error *e = git_error_last();
	return e && e->message ? e->message : "unknown libgit2 error";
}

static void set_null(rbk_call *call, const char *name)
{
	rbk_value v = {.type = RBK_TYPE_NULL};
	host->set_output(call, name, &v);
}

static void set_str_or_null(rbk_call *call, const char *name, const char *s)
{
	if (s)
		host->set_output_string(call, name, s, strlen(s));
	else
		set_null(call, name);
}

static void set_oid(rbk_call *call, const char *name, const git_oid *oid)
{
	if (!oid) {
		set_null(call, name);
		return;
	}
	char hex[GIT_OID_HEXSZ + 1];
	git_oid_tostr(hex, sizeof hex, oid);
	host->set_output_string(call, name, hex, strlen(hex));
}

/* A URL as it may be shown: a password written into it becomes ***. */
static void redact_url(const char *url, char *out, size_t size)
{
	const char *scheme = strstr(url, "://");
	const char *start = scheme ? scheme + 3 : url;
	const char *slash = strchr(start, '/');
	const char *at = NULL;
	for (const char *p = start; *p && (!slash || p < slash); p++)
		if (*p == '@')
			at = p;
	const char *colon = NULL;
	for (const char *p = start; at && p < at; p++)
		if (*p == ':') {
			colon = p;
			break;
		}
	if (!at || !colon) {
		snprintf(out, size, "%s", url);
		return;
	}
	snprintf(out, size, "%.*s:***%s", (int)(colon - url), url, at);
}

/* ---- repositories ---- */

static git_repository *open_repo(rbk_call *call, const char *path)
{
	git_repository *repo = NULL;
	if (git_repository_open_ext(&repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		host->set_error(call, "cannot open git repository %s: %s", path, git_msg());
		return NULL;
	}
	return repo;
}

/* HEAD's commit id; 0 when HEAD is unborn, -1 on an error. */
static int head_commit(git_repository *repo, git_oid *out)
{
	int rc = git_reference_name_to_id(out, repo, "HEAD");
	if (rc == GIT_ENOTFOUND || rc == GIT_EUNBORNBRANCH)
		return 0;
	return rc < 0 ? -1 : 1;
}

/* The branch HEAD is on (also when unborn), or NULL when detached. */
static char *head_branch(git_repository *repo)
{
	git_reference *head = NULL;
	char *name = NULL;
	if (git_reference_lookup(&head, repo, "HEAD") < 0)
		return NULL;
	if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
		const char *t = git_reference_symbolic_target(head);
		if (t && !strncmp(t, "refs/heads/", 11))
			name = strdup(t + 11);
	}
	git_reference_free(head);
	return name;
}

typedef struct {
	size_t count;
	char *shown; /* "a, b, c" */
	size_t len, cap;
} path_list;

static void path_list_add(path_list *l, const char *p)
{
	l->count++;
	if (l->count > MAX_DIRTY_SHOWN)
		return;
	size_t need = l->len + strlen(p) + 3;
	if (need > l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		while (cap < need)
			cap *= 2;
		char *nb = realloc(l->shown, cap);
		if (!nb)
			return;
		l->shown = nb;
		l->cap = cap;
	}
	l->len += (size_t)snprintf(l->shown + l->len, l->cap - l->len, "%s%s", l->len ? ", " : "", p);
}

/* Tracked files with staged or unstaged changes; -1 on an error. */
static int dirty_paths(rbk_call *call, git_repository *repo, const char *path, path_list *out)
{
	memset(out, 0, sizeof *out);
	if (git_repository_is_bare(repo))
		return 0;
	git_status_options opts;
	git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
	opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	opts.flags = GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
	git_status_list *list = NULL;
	if (git_status_list_new(&list, repo, &opts) < 0) {
		host->set_error(call, "cannot read the status of %s: %s", path, git_msg());
		return -1;
	}
	const unsigned dirty = GIT_STATUS_INDEX_NEW | GIT_STATUS_INDEX_MODIFIED | GIT_STATUS_INDEX_DELETED |
			       GIT_STATUS_INDEX_RENAMED | GIT_STATUS_INDEX_TYPECHANGE | GIT_STATUS_WT_MODIFIED |
			       GIT_STATUS_WT_DELETED | GIT_STATUS_WT_TYPECHANGE | GIT_STATUS_WT_RENAMED |
			       GIT_STATUS_CONFLICTED;
	size_t n = git_status_list_entrycount(list);
	for (size_t i = 0; i < n; i++) {
		const git_status_entry *e = git_status_byindex(list, i);
		if (!(e->status & dirty))
			continue;
		const git_diff_delta *d = e->head_to_index ? e->head_to_index : e->index_to_workdir;
		const char *p = d ? (d->new_file.path ? d->new_file.path : d->old_file.path) : NULL;
		path_list_add(out, p ? p : "?");
	}
	git_status_list_free(list);
	return 0;
}

/* The dirty-tree refusal, shared by checkout and revert. */
static void refuse_dirty(rbk_call *call, const char *path, const path_list *d, const char *what)
{
	host->set_error(call, "work tree of %s has uncommitted changes to %zu tracked file%s: %s%s; %s", path,
			d->count, d->count == 1 ? "" : "s", d->shown ? d->shown : "",
			d->count > MAX_DIRTY_SHOWN ? ", ..." : "", what);
}

static git_signature *make_signature(git_repository *repo, const char *name, const char *email)
{
	git_config *cfg = NULL;
	const char *cn = NULL, *ce = NULL;
	if ((!name || !email) && repo && git_repository_config_snapshot(&cfg, repo) == 0) {
		if (git_config_get_string(&cn, cfg, "user.name") < 0)
			cn = NULL;
		if (git_config_get_string(&ce, cfg, "user.email") < 0)
			ce = NULL;
	}
	git_signature *sig = NULL;
	if (git_signature_now(&sig, name ? name : cn && *cn ? cn : "rbk", email ? email : ce && *ce ? ce : "rbk@localhost") < 0)
		sig = NULL;
	git_config_free(cfg);
	return sig;
}

/* ---- network: credentials, progress and the step's time limit ---- */

typedef struct {
	rbk_call *call;
	const char *username, *secret;
	char user[256]; /* the user last sent */
	int tries, auth_failed, no_credentials, timed_out;
	unsigned updated;
} net_ctx;

static int out_of_time(net_ctx *n)
{
	if (host->time_left_ms(n->call) == 0) {
		n->timed_out = 1;
		return 1;
	}
	return 0;
}

static int cb_credentials(git_credential **out, const char *url, const char *user_from_url, unsigned int allowed,
			  void *payload)
{
	(void)url;
	net_ctx *n = payload;
	if (out_of_time(n))
		return GIT_EUSER;
	if (!(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) || !n->secret) {
		n->no_credentials = 1;
		return GIT_PASSTHROUGH;
	}
	if (n->tries++ > 0) {
		/* The server refused what we gave: asking again would loop. */
		n->auth_failed = 1;
		return GIT_EAUTH;
	}
	const char *user = n->username ? n->username : user_from_url && *user_from_url ? user_from_url : "git";
	snprintf(n->user, sizeof n->user, "%s", user);
	return git_credential_userpass_plaintext_new(out, user, n->secret);
}

static int cb_transfer(const git_indexer_progress *stats, void *payload)
{
	(void)stats;
	return out_of_time(payload) ? -1 : 0;
}

static int cb_sideband(const char *str, int len, void *payload)
{
	(void)str;
	(void)len;
	return out_of_time(payload) ? -1 : 0;
}

static int cb_update_tips(const char *refname, const git_oid *a, const git_oid *b, void *payload)
{
	(void)refname;
	(void)a;
	(void)b;
	((net_ctx *)payload)->updated++;
	return 0;
}

static void net_init(net_ctx *n, rbk_call *call, const rbk_value *args, git_remote_callbacks *cb)
{
	memset(n, 0, sizeof *n);
	n->call = call;
	n->username = rbk_arg_string(args, "username");
	n->secret = rbk_arg_string(args, "token");
	if (!n->secret)
		n->secret = rbk_arg_string(args, "password");
	cb->credentials = cb_credentials;
	cb->transfer_progress = cb_transfer;
	cb->sideband_progress = cb_sideband;
	cb->update_tips = cb_update_tips;
	cb->payload = n;
}

static int check_secrets(rbk_call *call, const rbk_value *args, const char *action)
{
	if (rbk_arg_string(args, "password") && rbk_arg_string(args, "token")) {
		host->set_error(call, "git.%s takes either 'password' or 'token', not both", action);
		return -1;
	}
	return 0;
}

/* The error of a failed network operation, with what we know of the cause. */
static void net_error(rbk_call *call, net_ctx *n, const char *what, const char *url)
{
	char shown[1024];
	redact_url(url, shown, sizeof shown);
	if (n->timed_out)
		host->set_error(call, "%s %s: the step's time limit was reached", what, shown);
	else if (n->auth_failed)
		host->set_error(call, "%s %s: authentication failed for user '%s'", what, shown, n->user);
	else if (n->no_credentials && !n->secret)
		host->set_error(call, "%s %s: the remote asks for credentials; give 'username' and 'password' or 'token' (%s)",
				what, shown, git_msg());
	else
		host->set_error(call, "%s %s: %s", what, shown, git_msg());
}

/* ---- git.clone ---- */

/* 1: missing or an empty directory; 0: something is there; -1: error. */
static int is_empty_dest(rbk_call *call, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			return 1;
		host->set_error(call, "cannot use %s as a clone destination: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return 0;
	DIR *d = opendir(path);
	if (!d) {
		host->set_error(call, "cannot read directory %s: %s", path, strerror(errno));
		return -1;
	}
	int empty = 1;
	struct dirent *e;
	while (empty && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}

static void head_outputs(rbk_call *call, git_repository *repo)
{
	git_oid oid;
	int h = head_commit(repo, &oid);
	set_oid(call, "commit", h > 0 ? &oid : NULL);
	char *b = git_repository_head_detached(repo) == 1 ? NULL : head_branch(repo);
	set_str_or_null(call, "branch", b);
	free(b);
}

/* A repeated clone: the destination already holds a clone of url. */
static int clone_again(rbk_call *call, const char *url, const char *path, const char *branch)
{
	char shown[1024];
	redact_url(url, shown, sizeof shown);
	git_repository *repo = NULL;
	git_remote *origin = NULL;
	int rc = 1;
	if (git_repository_open_ext(&repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0 ||
	    git_remote_lookup(&origin, repo, "origin") < 0 || !git_remote_url(origin) ||
	    strcmp(git_remote_url(origin), url)) {
		host->set_error(call, "cannot clone %s: destination %s exists and is not an empty directory", shown, path);
		goto out;
	}
	char *b = head_branch(repo);
	if (branch && (!b || strcmp(b, branch))) {
		host->set_error(call, "cannot clone %s: %s already holds a clone of it on %s%s, not on branch '%s'", shown,
				path, b ? "branch " : "a detached HEAD", b ? b : "", branch);
		free(b);
		goto out;
	}
	free(b);
	host->log(call, RBK_LOG_INFO, "%s already holds a clone of %s; nothing to do", path, shown);
	head_outputs(call, repo);
	host->set_output_bool(call, "cloned", 0);
	rc = 0;
out:
	git_remote_free(origin);
	git_repository_free(repo);
	return rc;
}

static int clone_run(rbk_call *call, const rbk_value *args)
{
	const char *url = rbk_arg_string(args, "url"), *path = rbk_arg_string(args, "path"), *branch = rbk_arg_string(args, "branch");
	char shown[1024];
	redact_url(url, shown, sizeof shown);
	if (check_secrets(call, args, "clone") < 0)
		return 1;
	int empty = is_empty_dest(call, path);
	if (empty < 0)
		return 1;
	if (!empty)
		return clone_again(call, url, path, branch);
	git_clone_options opts;
	git_clone_options_init(&opts, GIT_CLONE_OPTIONS_VERSION);
	net_ctx n;
	net_init(&n, call, args, &opts.fetch_opts.callbacks);
	opts.checkout_branch = branch;
	git_repository *repo = NULL;
	if (git_clone(&repo, url, path, &opts) < 0) {
		char missing[1100];
		snprintf(missing, sizeof missing, "'refs/remotes/origin/%s' not found", branch ? branch : "");
		if (branch && !n.timed_out && !n.auth_failed && strstr(git_msg(), missing))
			host->set_error(call, "cannot clone %s: it has no branch '%s'", shown, branch);
		else
			net_error(call, &n, "cannot clone", url);
		return 1;
	}
	head_outputs(call, repo);
	host->set_output_bool(call, "cloned", 1);
	host->log(call, RBK_LOG_INFO, "cloned %s into %s", shown, path);
	git_repository_free(repo);
	return 0;
}

static int clone_plan(rbk_call *call, const rbk_value *args)
{
	const char *url = rbk_arg_string(args, "url"), *path = rbk_arg_string(args, "path"), *branch = rbk_arg_string(args, "branch");
	char shown[1024];
	redact_url(url ? url : "", shown, sizeof shown);
	host->log(call, RBK_LOG_INFO, "would clone %s into %s%s%s%s", shown, path ? path : "?",
		  branch ? " (branch " : "", branch ? branch : "", branch ? ")" : "");
	if (rbk_arg_string(args, "password") || rbk_arg_string(args, "token"))
		host->log(call, RBK_LOG_INFO, "with credentials for user '%s' (secret ***)",
			  rbk_arg_string(args, "username") ? rbk_arg_string(args, "username") : "git");
	return 0;
}

/* ---- git.fetch ---- */

static int fetch_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path"), *name = rbk_arg_string(args, "remote");
	if (!name)
		name = "origin";
	if (check_secrets(call, args, "fetch") < 0)
		return 1;
	git_repository *repo = open_repo(call, path);
	if (!repo)
		return 1;
	int rc = 1;
	git_remote *remote = NULL;
	if (git_remote_lookup(&remote, repo, name) < 0) {
		host->set_error(call, "repository %s has no remote '%s': %s", path, name, git_msg());
		goto out;
	}
	git_fetch_options opts;
	git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION);
	net_ctx n;
	net_init(&n, call, args, &opts.callbacks);
	const char *url = git_remote_url(remote) ? git_remote_url(remote) : name;
	if (git_remote_fetch(remote, NULL, &opts, "fetch") < 0) {
		char what[256];
		snprintf(what, sizeof what, "cannot fetch '%s' into %s from", name, path);
		net_error(call, &n, what, url);
		goto out;
	}
	host->set_output_int(call, "updated", n.updated);
	host->set_output_string(call, "remote", name, strlen(name));
	char shown[1024];
	redact_url(url, shown, sizeof shown);
	host->log(call, RBK_LOG_INFO, "fetched %s: %u ref%s updated", shown, n.updated, n.updated == 1 ? "" : "s");
	rc = 0;
out:
	git_remote_free(remote);
	git_repository_free(repo);
	return rc;
}

static int fetch_plan(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path"), *name = rbk_arg_string(args, "remote");
	host->log(call, RBK_LOG_INFO, "would fetch remote '%s' into %s", name ? name : "origin", path ? path : "?");
	return 0;
}

/* ---- git.checkout ---- */

typedef struct {
	git_object *commit; /* peeled target */
	char *branch_ref;   /* "refs/heads/x" when HEAD will follow a branch */
	char *shown;        /* the output 'ref' */
	int created;        /* a local branch was created from origin/x */
} target;

static void target_free(target *t)
{
	git_object_free(t->commit);
	free(t->branch_ref);
	free(t->shown);
}

static char *cat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 1);
	if (s) {
		memcpy(s, a, la);
		memcpy(s + la, b, lb + 1);
	}
	return s;
}

/* 1: found (t filled); 0: no such reference; -1: error (set). */
static int peel_ref(rbk_call *call, git_repository *repo, const char *full, git_object **out)
{
	git_reference *r = NULL;
	int rc = git_reference_lookup(&r, repo, full);
	if (rc == GIT_ENOTFOUND || rc == GIT_EINVALIDSPEC)
		return 0;
	if (rc < 0 || git_reference_peel(out, r, GIT_OBJECT_COMMIT) < 0) {
		host->set_error(call, "cannot resolve %s: %s", full, git_msg());
		git_reference_free(r);
		return -1;
	}
	git_reference_free(r);
	return 1;
}

/* A branch, then a tag, then origin's branch, then any revision. */
static int resolve_target(rbk_call *call, git_repository *repo, const char *path, const char *ref, target *t)
{
	memset(t, 0, sizeof *t);
	char *full = cat("refs/heads/", ref);
	int rc = full ? peel_ref(call, repo, full, &t->commit) : -1;
	if (rc != 0) {
		t->branch_ref = full;
		t->shown = rc > 0 ? strdup(full) : NULL;
		return rc > 0 ? 0 : -1;
	}
	free(full);
	full = cat("refs/tags/", ref);
	rc = full ? peel_ref(call, repo, full, &t->commit) : -1;
	if (rc != 0) {
		t->shown = full;
		return rc > 0 ? 0 : -1;
	}
	free(full);
	full = cat("refs/remotes/origin/", ref);
	rc = full ? peel_ref(call, repo, full, &t->commit) : -1;
	free(full);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		t->branch_ref = cat("refs/heads/", ref);
		t->shown = t->branch_ref ? strdup(t->branch_ref) : NULL;
		t->created = 1;
		return 0;
	}
	git_object *obj = NULL;
	if (git_revparse_single(&obj, repo, ref) < 0) {
		host->set_error(call, "no branch, tag or commit '%s' in %s", ref, path);
		return -1;
	}
	if (git_object_peel(&t->commit, obj, GIT_OBJECT_COMMIT) < 0) {
		host->set_error(call, "'%s' in %s does not name a commit: %s", ref, path, git_msg());
		git_object_free(obj);
		return -1;
	}
	git_object_free(obj);
	char hex[GIT_OID_HEXSZ + 1];
	git_oid_tostr(hex, sizeof hex, git_object_id(t->commit));
	t->shown = strdup(hex);
	return 0;
}

static int checkout_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path"), *ref = rbk_arg_string(args, "ref");
	int force = rbk_arg_bool(args, "force", 0);
	git_repository *repo = open_repo(call, path);
	if (!repo)
		return 1;
	int rc = 1;
	target t;
	memset(&t, 0, sizeof t);
	path_list dirty = {0};
	if (git_repository_is_bare(repo)) {
		host->set_error(call, "cannot check out in %s: it is a bare repository", path);
		goto out;
	}
	git_oid prev;
	int had = head_commit(repo, &prev);
	if (had < 0) {
		host->set_error(call, "cannot read HEAD of %s: %s", path, git_msg());
		goto out;
	}
	if (!force) {
		if (dirty_paths(call, repo, path, &dirty) < 0)
			goto out;
		if (dirty.count) {
			refuse_dirty(call, path, &dirty, "commit or stash them, or pass force: true to discard them");
			goto out;
		}
	}
	if (resolve_target(call, repo, path, ref, &t) < 0 || !t.shown)
		goto out;
	git_checkout_options co;
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	co.checkout_strategy = force ? GIT_CHECKOUT_FORCE : GIT_CHECKOUT_SAFE;
	if (git_checkout_tree(repo, t.commit, &co) < 0) {
		host->set_error(call, "cannot check out '%s' in %s: %s", ref, path, git_msg());
		goto out;
	}
	if (t.created) {
		git_reference *b = NULL;
		char upstream[1024];
		snprintf(upstream, sizeof upstream, "origin/%s", ref);
		if (git_branch_create(&b, repo, ref, (git_commit *)t.commit, 0) < 0 ||
		    git_branch_set_upstream(b, upstream) < 0) {
			host->set_error(call, "cannot create branch '%s' from %s in %s: %s", ref, upstream, path, git_msg());
			git_reference_free(b);
			goto out;
		}
		git_reference_free(b);
		host->log(call, RBK_LOG_INFO, "created branch %s tracking %s", ref, upstream);
	}
	int set = t.branch_ref ? git_repository_set_head(repo, t.branch_ref)
			       : git_repository_set_head_detached(repo, git_object_id(t.commit));
	if (set < 0) {
		host->set_error(call, "cannot move HEAD of %s to '%s': %s", path, ref, git_msg());
		goto out;
	}
	set_oid(call, "commit", git_object_id(t.commit));
	set_oid(call, "previous_commit", had > 0 ? &prev : NULL);
	host->set_output_string(call, "ref", t.shown, strlen(t.shown));
	host->set_output_bool(call, "detached", t.branch_ref == NULL);
	host->log(call, RBK_LOG_INFO, "checked out %s in %s%s", t.shown, path, t.branch_ref ? "" : " (detached HEAD)");
	rc = 0;
out:
	free(dirty.shown);
	target_free(&t);
	git_repository_free(repo);
	return rc;
}

static int checkout_plan(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path"), *ref = rbk_arg_string(args, "ref");
	host->log(call, RBK_LOG_INFO, "would check out '%s' in %s%s", ref ? ref : "?", path ? path : "?",
		  rbk_arg_bool(args, "force", 0) ? ", discarding uncommitted changes" : "");
	return 0;
}

/* ---- git.tag ---- */

static int tag_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path"), *name = rbk_arg_string(args, "name"), *msg = rbk_arg_string(args, "message");
	const char *ref = rbk_arg_string(args, "ref");
	const char *tn = rbk_arg_string(args, "tagger_name"), *te = rbk_arg_string(args, "tagger_email");
	int force = rbk_arg_bool(args, "force", 0);
	if (!ref)
		ref = "HEAD";
	git_repository *repo = open_repo(call, path);
	if (!repo)
		return 1;
	int rc = 1;
	git_object *obj = NULL, *commit = NULL;
	git_reference *existing = NULL;
	git_signature *sig = NULL;
	git_buf pretty = {0};
	char *full = cat("refs/tags/", name);
	if (!full)
		goto out;
	if (git_revparse_single(&obj, repo, ref) < 0) {
		host->set_error(call, "no commit '%s' in %s to tag: %s", ref, path, git_msg());
		goto out;
	}
	if (git_object_peel(&commit, obj, GIT_OBJECT_COMMIT) < 0) {
		host->set_error(call, "'%s' in %s does not name a commit: %s", ref, path, git_msg());
		goto out;
	}
	if (git_reference_lookup(&existing, repo, full) == 0 && !force) {
		git_object *old = NULL;
		char hex[GIT_OID_HEXSZ + 1] = "?";
		if (git_reference_peel(&old, existing, GIT_OBJECT_COMMIT) == 0)
			git_oid_tostr(hex, sizeof hex, git_object_id(old));
		git_object_free(old);
		host->set_error(call, "tag '%s' already exists in %s (at %s); pass force: true to move it", name, path, hex);
		goto out;
	}
	git_oid oid;
	if (msg) {
		sig = make_signature(NULL, tn ? tn : "rbk", te ? te : "rbk@localhost");
		if (!sig || git_message_prettify(&pretty, msg, 0, 0) < 0) {
			host->set_error(call, "cannot tag %s in %s: %s", name, path, git_msg());
			goto out;
		}
		if (git_tag_create(&oid, repo, name, commit, sig, pretty.ptr, force) < 0) {
			host->set_error(call, "cannot create tag '%s' in %s: %s", name, path, git_msg());
			goto out;
		}
	} else if (git_tag_create_lightweight(&oid, repo, name, commit, force) < 0) {
		host->set_error(call, "cannot create tag '%s' in %s: %s", name, path, git_msg());
		goto out;
	}
	host->set_output_string(call, "tag", name, strlen(name));
	set_oid(call, "commit", git_object_id(commit));
	host->set_output_bool(call, "annotated", msg != NULL);
	char hex[GIT_OID_HEXSZ + 1];
	git_oid_tostr(hex, sizeof hex, git_object_id(commit));
	host->log(call, RBK_LOG_INFO, "tagged %s as %s%s in %s", hex, name, msg ? " (annotated)" : "", path);
	rc = 0;
out:
	git_buf_dispose(&pretty);
	git_signature_free(sig);
	git_reference_free(existing);
	git_object_free(commit);
	git_object_free(obj);
	free(full);
	git_repository_free(repo);
	return rc;
}

static int tag_plan(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path"), *name = rbk_arg_string(args, "name"), *ref = rbk_arg_string(args, "ref");
	host->log(call, RBK_LOG_INFO, "would tag %s as %s%s in %s%s", ref ? ref : "HEAD", name ? name : "?",
		  rbk_arg_string(args, "message") ? " (annotated)" : "", path ? path : "?",
		  rbk_arg_bool(args, "force", 0) ? ", replacing an existing tag" : "");
	return 0;
}

/* ---- git.revert ---- */

/* Conflicted paths of the index, listed. */
static void conflicts(git_index *index, path_list *out)
{
	memset(out, 0, sizeof *out);
	git_index_conflict_iterator *it = NULL;
	if (git_index_conflict_iterator_new(&it, index) < 0)
		return;
	const git_index_entry *anc, *ours, *theirs;
	while (git_index_conflict_next(&anc, &ours, &theirs, it) == 0) {
		const git_index_entry *e = ours ? ours : theirs ? theirs : anc;
		path_list_add(out, e && e->path ? e->path : "?");
	}
	git_index_conflict_iterator_free(it);
}

static int revert_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path"), *what = rbk_arg_string(args, "commit"), *msg = rbk_arg_string(args, "message");
	git_repository *repo = open_repo(call, path);
	if (!repo)
		return 1;
	int rc = 1, touched = 0;
	git_object *obj = NULL;
	git_commit *target = NULL, *head = NULL;
	git_index *index = NULL;
	git_tree *tree = NULL;
	git_signature *sig = NULL;
	path_list dirty = {0}, conf = {0};
	char *message = NULL;
	git_oid head_id, tree_id, new_id;
	if (git_repository_is_bare(repo)) {
		host->set_error(call, "cannot revert in %s: it is a bare repository", path);
		goto out;
	}
	int h = head_commit(repo, &head_id);
	if (h <= 0) {
		host->set_error(call, "cannot revert in %s: %s", path, h < 0 ? git_msg() : "HEAD has no commit yet");
		goto out;
	}
	if (dirty_paths(call, repo, path, &dirty) < 0)
		goto out;
	if (dirty.count) {
		refuse_dirty(call, path, &dirty, "commit or stash them before reverting");
		goto out;
	}
	if (git_revparse_single(&obj, repo, what) < 0 || git_object_peel((git_object **)&target, obj, GIT_OBJECT_COMMIT) < 0) {
		host->set_error(call, "no commit '%s' in %s to revert", what, path);
		goto out;
	}
	char hex[GIT_OID_HEXSZ + 1];
	git_oid_tostr(hex, sizeof hex, git_commit_id(target));
	if (git_commit_parentcount(target) > 1) {
		host->set_error(call, "cannot revert %s in %s: it is a merge commit (not supported)", hex, path);
		goto out;
	}
	if (git_commit_lookup(&head, repo, &head_id) < 0) {
		host->set_error(call, "cannot read HEAD of %s: %s", path, git_msg());
		goto out;
	}
	git_revert_options ro;
	git_revert_options_init(&ro, GIT_REVERT_OPTIONS_VERSION);
	touched = 1;
	if (git_revert(repo, target, &ro) < 0) {
		host->set_error(call, "cannot revert %s in %s: %s", hex, path, git_msg());
		goto out;
	}
	if (git_repository_index(&index, repo) < 0) {
		host->set_error(call, "cannot read the index of %s: %s", path, git_msg());
		goto out;
	}
	if (git_index_has_conflicts(index)) {
		conflicts(index, &conf);
		host->set_error(call, "reverting %s in %s conflicts in %zu file%s: %s%s; nothing was changed", hex, path,
				conf.count, conf.count == 1 ? "" : "s", conf.shown ? conf.shown : "",
				conf.count > MAX_DIRTY_SHOWN ? ", ..." : "");
		goto out;
	}
	if (git_index_write_tree(&tree_id, index) < 0 || git_tree_lookup(&tree, repo, &tree_id) < 0) {
		host->set_error(call, "cannot write the reverted tree in %s: %s", path, git_msg());
		goto out;
	}
	if (git_oid_equal(&tree_id, git_commit_tree_id(head))) {
		host->set_error(call, "reverting %s in %s changes nothing (already reverted?)", hex, path);
		goto out;
	}
	if (!msg) {
		const char *subject = git_commit_summary(target);
		size_t n = strlen(subject ? subject : "") + 128;
		message = malloc(n);
		if (!message)
			goto out;
		snprintf(message, n, "Revert \"%s\"\n\nThis reverts commit %s.\n", subject ? subject : "", hex);
	}
	sig = make_signature(repo, rbk_arg_string(args, "author_name"), rbk_arg_string(args, "author_email"));
	const git_commit *parents[] = {head};
	if (!sig || git_commit_create(&new_id, repo, "HEAD", sig, sig, NULL, msg ? msg : message, tree, 1, parents) < 0) {
		host->set_error(call, "cannot commit the revert of %s in %s: %s", hex, path, git_msg());
		goto out;
	}
	git_repository_state_cleanup(repo);
	touched = 0;
	set_oid(call, "commit", &new_id);
	host->set_output_string(call, "reverted", hex, strlen(hex));
	char nhex[GIT_OID_HEXSZ + 1];
	git_oid_tostr(nhex, sizeof nhex, &new_id);
	host->log(call, RBK_LOG_INFO, "reverted %s in %s as %s", hex, path, nhex);
	rc = 0;
out:
	if (touched) {
		/* Leave the work tree as it was: at the previous HEAD, clean. */
		git_checkout_options co;
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
		co.checkout_strategy = GIT_CHECKOUT_FORCE;
		if (head && git_reset(repo, (git_object *)head, GIT_RESET_HARD, &co) < 0)
			host->log(call, RBK_LOG_ERROR, "could not reset %s to its previous HEAD: %s", path, git_msg());
		git_repository_state_cleanup(repo);
	}
	free(message);
	free(dirty.shown);
	free(conf.shown);
	git_signature_free(sig);
	git_tree_free(tree);
	git_index_free(index);
	git_commit_free(head);
	git_commit_free(target);
	git_object_free(obj);
	git_repository_free(repo);
	return rc;
}

static int revert_plan(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path"), *what = rbk_arg_string(args, "commit");
	host->log(call, RBK_LOG_INFO, "would commit the revert of %s on the current branch of %s", what ? what : "?",
		  path ? path : "?");
	return 0;
}

/* ---- git.rev ---- */

typedef struct {
	git_repository *repo;
	git_oid head;
	char *best;
	int best_annotated;
} tag_search;

static int cb_tag(const char *name, git_oid *oid, void *payload)
{
	tag_search *s = payload;
	git_object *obj = NULL, *peeled = NULL;
	if (git_object_lookup(&obj, s->repo, oid, GIT_OBJECT_ANY) < 0)
		return 0;
	int annotated = git_object_type(obj) == GIT_OBJECT_TAG;
	if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) == 0 && git_oid_equal(git_object_id(peeled), &s->head)) {
		const char *short_name = !strncmp(name, "refs/tags/", 10) ? name + 10 : name;
		/* An annotated tag wins over a lightweight one, then name order. */
		if (!s->best || annotated > s->best_annotated ||
		    (annotated == s->best_annotated && strcmp(short_name, s->best) < 0)) {
			free(s->best);
			s->best = strdup(short_name);
			s->best_annotated = annotated;
		}
	}
	git_object_free(peeled);
	git_object_free(obj);
	return 0;
}

static int rev_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path");
	git_repository *repo = open_repo(call, path);
	if (!repo)
		return 1;
	int rc = 1;
	path_list dirty = {0};
	git_object *obj = NULL;
	git_buf sh = {0};
	tag_search ts = {repo, {{0}}, NULL, 0};
	int h = head_commit(repo, &ts.head);
	if (h < 0) {
		host->set_error(call, "cannot read HEAD of %s: %s", path, git_msg());
		goto out;
	}
	if (dirty_paths(call, repo, path, &dirty) < 0)
		goto out;
	if (h > 0) {
		if (git_object_lookup(&obj, repo, &ts.head, GIT_OBJECT_COMMIT) < 0 || git_object_short_id(&sh, obj) < 0) {
			host->set_error(call, "cannot read HEAD's commit in %s: %s", path, git_msg());
			goto out;
		}
		if (git_tag_foreach(repo, cb_tag, &ts) < 0) {
			host->set_error(call, "cannot list the tags of %s: %s", path, git_msg());
			goto out;
		}
	}
	set_oid(call, "commit", h > 0 ? &ts.head : NULL);
	set_str_or_null(call, "short", h > 0 ? sh.ptr : NULL);
	char *b = git_repository_head_detached(repo) == 1 ? NULL : head_branch(repo);
	set_str_or_null(call, "branch", b);
	free(b);
	host->set_output_bool(call, "dirty", dirty.count > 0);
	set_str_or_null(call, "tag", ts.best);
	rc = 0;
out:
	free(ts.best);
	free(dirty.shown);
	git_buf_dispose(&sh);
	git_object_free(obj);
	git_repository_free(repo);
	return rc;
}

static int rev_run_call(rbk_call *call, const rbk_value *args);

/* Under --dry-run it reads for real: it changes nothing, and the
 * run's guards then see what is (check mode, docs/cli.md). */
static int rev_plan(rbk_call *call, const rbk_value *args)
{
	return rev_run_call(call, args);
}

/* ---- git.log ---- */

static const char *const log_keys[] = {"commit", "author", "date", "subject"};

typedef struct {
	char commit[GIT_OID_HEXSZ + 1];
	char *author;
	char date[32];
	char *subject;
} log_entry;

static int log_run(rbk_call *call, const rbk_value *args)
{
	const char *path = rbk_arg_string(args, "path"), *ref = rbk_arg_string(args, "ref");
	int64_t count = rbk_arg_int(args, "count", 10);
	if (count < 1 || count > MAX_LOG_COUNT) {
		host->set_error(call, "count must be between 1 and %d, not %lld", MAX_LOG_COUNT, (long long)count);
		return 1;
	}
	git_repository *repo = open_repo(call, path);
	if (!repo)
		return 1;
	int rc = 1;
	git_revwalk *walk = NULL;
	log_entry *e = calloc((size_t)count, sizeof *e);
	rbk_value *items = calloc((size_t)count, sizeof *items);
	rbk_value *vals = calloc((size_t)count * 4, sizeof *vals);
	size_t n = 0;
	if (!e || !items || !vals) {
		host->set_error(call, "out of memory reading the log of %s", path);
		goto out;
	}
	git_oid start;
	if (!ref) {
		int h = head_commit(repo, &start);
		if (h <= 0) {
			if (h < 0)
				host->set_error(call, "cannot read HEAD of %s: %s", path, git_msg());
			else {
				rbk_value list = {.type = RBK_TYPE_LIST};
				host->set_output(call, "commits", &list);
				host->set_output_int(call, "count", 0);
				rc = 0;
			}
			goto out;
		}
	} else {
		git_object *obj = NULL, *c = NULL;
		if (git_revparse_single(&obj, repo, ref) < 0 || git_object_peel(&c, obj, GIT_OBJECT_COMMIT) < 0) {
			host->set_error(call, "no commit '%s' in %s", ref, path);
			git_object_free(obj);
			goto out;
		}
		git_oid_cpy(&start, git_object_id(c));
		git_object_free(c);
		git_object_free(obj);
	}
	if (git_revwalk_new(&walk, repo) < 0 || git_revwalk_sorting(walk, GIT_SORT_TIME) < 0 ||
	    git_revwalk_push(walk, &start) < 0) {
		host->set_error(call, "cannot walk the history of %s: %s", path, git_msg());
		goto out;
	}
	git_oid oid;
	while (n < (size_t)count && git_revwalk_next(&oid, walk) == 0) {
		if (host->time_left_ms(call) == 0) {
			host->set_error(call, "reading the log of %s: the step's time limit was reached", path);
			goto out;
		}
		git_commit *c = NULL;
		if (git_commit_lookup(&c, repo, &oid) < 0) {
			host->set_error(call, "cannot read commit in %s: %s", path, git_msg());
			goto out;
		}
		log_entry *le = &e[n];
		git_oid_tostr(le->commit, sizeof le->commit, &oid);
		const git_signature *a = git_commit_author(c);
		size_t al = strlen(a->name) + strlen(a->email) + 4;
		le->author = malloc(al);
		const char *subject = git_commit_summary(c);
		le->subject = strdup(subject ? subject : "");
		if (le->author)
			snprintf(le->author, al, "%s <%s>", a->name, a->email);
		time_t t = (time_t)a->when.time;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(le->date, sizeof le->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
		git_commit_free(c);
		if (!le->author || !le->subject) {
			n++;
			host->set_error(call, "out of memory reading the log of %s", path);
			goto out;
		}
		const char *texts[4] = {le->commit, le->author, le->date, le->subject};
		for (int k = 0; k < 4; k++) {
			rbk_value *v = &vals[n * 4 + (size_t)k];
			v->type = RBK_TYPE_STRING;
			v->as.str.ptr = texts[k];
			v->as.str.len = strlen(texts[k]);
		}
		items[n].type = RBK_TYPE_MAP;
		items[n].as.map.keys = log_keys;
		items[n].as.map.values = &vals[n * 4];
		items[n].as.map.count = 4;
		n++;
	}
	rbk_value list = {.type = RBK_TYPE_LIST};
	list.as.list.items = items;
	list.as.list.count = n;
	host->set_output(call, "commits", &list);
	host->set_output_int(call, "count", (int64_t)n);
	rc = 0;
out:
	for (size_t i = 0; e && i < n; i++) {
		free(e[i].author);
		free(e[i].subject);
	}
	free(e);
	free(items);
	free(vals);
	git_revwalk_free(walk);
	git_repository_free(repo);
	return rc;
}

static int log_run_call(rbk_call *call, const rbk_value *args);

/* Under --dry-run it reads for real: it changes nothing, and the
 * run's guards then see what is (check mode, docs/cli.md). */
static int log_plan(rbk_call *call, const rbk_value *args)
{
	return log_run_call(call, args);
}

/* ---- libgit2 around every call ---- */

#define WRAP(fn)                                                             \
	static int fn##_call(rbk_call *call, const rbk_value *args)          \
	{                                                                    \
		if (git_libgit2_init() < 0) {                                \
			host->set_error(call, "cannot initialise libgit2");  \
			return 1;                                            \
		}                                                            \
		int rc = fn(call, args);                                     \
		git_libgit2_shutdown();                                      \
		return rc;                                                   \
	}
WRAP(clone_run)
WRAP(fetch_run)
WRAP(checkout_run)
WRAP(tag_run)
WRAP(revert_run)
WRAP(rev_run)
WRAP(log_run)

/* ---- declarations ---- */

#define CRED_PARAMS                                                                                         \
	{"username", RBK_TYPE_STRING, 0, "the user in the URL, else \"git\"", "user for HTTP(S) authentication"}, \
	{"password", RBK_TYPE_STRING, 0, NULL, "password for HTTP(S) authentication (secret, never logged)"},     \
	{"token", RBK_TYPE_STRING, 0, NULL, "access token, sent as the password (secret, never logged)"}

static const rbk_param_decl clone_params[] = {
	{"url", RBK_TYPE_STRING, 1, NULL, "repository to clone: https://, file:// or a local path"},
	{"path", RBK_TYPE_STRING, 1, NULL, "destination directory: missing or empty"},
	{"branch", RBK_TYPE_STRING, 0, "the remote's HEAD", "branch to check out"},
	CRED_PARAMS,
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl clone_outputs[] = {
	{"commit", RBK_TYPE_STRING, "the checked-out commit (null for an empty repository)"},
	{"branch", RBK_TYPE_STRING, "the checked-out branch"},
	{"cloned", RBK_TYPE_BOOL, "false when path already held a clone of url"},
	{NULL, 0, NULL}};

static const rbk_param_decl fetch_params[] = {
	{"path", RBK_TYPE_STRING, 1, NULL, "the repository"},
	{"remote", RBK_TYPE_STRING, 0, "origin", "remote to fetch from"},
	CRED_PARAMS,
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl fetch_outputs[] = {
	{"updated", RBK_TYPE_INT, "how many references were created or moved"},
	{"remote", RBK_TYPE_STRING, "the remote fetched from"},
	{NULL, 0, NULL}};

static const rbk_param_decl checkout_params[] = {
	{"path", RBK_TYPE_STRING, 1, NULL, "the repository"},
	{"ref", RBK_TYPE_STRING, 1, NULL, "a branch, a tag or a commit"},
	{"force", RBK_TYPE_BOOL, 0, "false", "discard uncommitted changes to tracked files"},
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl checkout_outputs[] = {
	{"commit", RBK_TYPE_STRING, "the commit now checked out"},
	{"previous_commit", RBK_TYPE_STRING, "the commit HEAD was at before (null if none)"},
	{"ref", RBK_TYPE_STRING, "refs/heads/B, refs/tags/T or the commit id"},
	{"detached", RBK_TYPE_BOOL, "true when HEAD is now detached (a tag or a commit)"},
	{NULL, 0, NULL}};

static const rbk_param_decl tag_params[] = {
	{"path", RBK_TYPE_STRING, 1, NULL, "the repository"},
	{"name", RBK_TYPE_STRING, 1, NULL, "the tag's name"},
	{"message", RBK_TYPE_STRING, 0, NULL, "makes an annotated tag with this message; absent: a lightweight tag"},
	{"ref", RBK_TYPE_STRING, 0, "HEAD", "what to tag: a branch, a tag or a commit"},
	{"tagger_name", RBK_TYPE_STRING, 0, "rbk", "tagger of an annotated tag"},
	{"tagger_email", RBK_TYPE_STRING, 0, "rbk@localhost", "tagger's email"},
	{"force", RBK_TYPE_BOOL, 0, "false", "move an existing tag of this name"},
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl tag_outputs[] = {
	{"tag", RBK_TYPE_STRING, "the tag's name"},
	{"commit", RBK_TYPE_STRING, "the tagged commit"},
	{"annotated", RBK_TYPE_BOOL, "true for an annotated tag"},
	{NULL, 0, NULL}};

static const rbk_param_decl revert_params[] = {
	{"path", RBK_TYPE_STRING, 1, NULL, "the repository"},
	{"commit", RBK_TYPE_STRING, 1, NULL, "the commit to revert (any revision)"},
	{"message", RBK_TYPE_STRING, 0, "Revert \"SUBJECT\" ...", "message of the new commit"},
	{"author_name", RBK_TYPE_STRING, 0, "user.name, else rbk", "author and committer of the new commit"},
	{"author_email", RBK_TYPE_STRING, 0, "user.email, else rbk@localhost", "their email"},
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl revert_outputs[] = {
	{"commit", RBK_TYPE_STRING, "the new commit"},
	{"reverted", RBK_TYPE_STRING, "the full id of the reverted commit"},
	{NULL, 0, NULL}};

static const rbk_param_decl rev_params[] = {
	{"path", RBK_TYPE_STRING, 1, NULL, "the repository"},
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl rev_outputs[] = {
	{"commit", RBK_TYPE_STRING, "HEAD's commit (null before the first commit)"},
	{"short", RBK_TYPE_STRING, "its unique abbreviation"},
	{"branch", RBK_TYPE_STRING, "the current branch (null when detached)"},
	{"dirty", RBK_TYPE_BOOL, "tracked files have uncommitted changes"},
	{"tag", RBK_TYPE_STRING, "a tag exactly at HEAD (null if none)"},
	{NULL, 0, NULL}};

static const rbk_param_decl log_params[] = {
	{"path", RBK_TYPE_STRING, 1, NULL, "the repository"},
	{"count", RBK_TYPE_INT, 0, "10", "how many commits, newest first (1 to 10000)"},
	{"ref", RBK_TYPE_STRING, 0, "HEAD", "where the history starts"},
	{NULL, 0, 0, NULL, NULL}};
static const rbk_output_decl log_outputs[] = {
	{"commits", RBK_TYPE_LIST, "list of {commit, author, date, subject}, newest first"},
	{"count", RBK_TYPE_INT, "how many commits are listed"},
	{NULL, 0, NULL}};

static const rbk_action actions[] = {
	{"clone", "clone a repository into an empty or missing directory", clone_params, clone_outputs, 1,
	 clone_run_call, clone_plan, NULL},
	{"fetch", "fetch a remote's branches and tags", fetch_params, fetch_outputs, 1, fetch_run_call, fetch_plan, NULL},
	{"checkout", "check out a branch, tag or commit; refuses a dirty work tree unless forced", checkout_params,
	 checkout_outputs, 1, checkout_run_call, checkout_plan, NULL},
	{"tag", "create a lightweight or annotated tag", tag_params, tag_outputs, 0, tag_run_call, tag_plan, NULL},
	{"revert", "commit the revert of a commit on the current branch", revert_params, revert_outputs, 0,
	 revert_run_call, revert_plan, NULL},
	{"rev", "the current commit, branch, exact tag and dirtiness", rev_params, rev_outputs, 1, rev_run_call,
	 rev_plan, NULL},
	{"log", "the latest commits", log_params, log_outputs, 1, log_run_call, log_plan, NULL},
};

static const rbk_plugin plugin = {"git", "1.0.0", actions, sizeof actions / sizeof *actions};

int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out);
int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out)
{
	if (h->abi_major != RBK_PLUGIN_ABI_MAJOR || h->struct_size < sizeof(rbk_host))
		return -1;
	host = h;
	*out = &plugin;
	return 0;
}
