/* gitrepo: libgit2's part of provenance (provenance.h), built as the
 * module rbk-gitrepo.so: the one file of the engine that includes git2.h. */
#include "audit/gitrepo.h"
#include "audit/provenance.h"
#include "base/mem.h"

#include <git2.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rbk_gitrepo_facts(const char *file, rbk_val *out)
{
	char abs[PATH_MAX];
	if (!realpath(file, abs))
		return;
	git_libgit2_init();
	git_buf root = {0};
	git_repository *repo = NULL;
	if (git_repository_discover(&root, abs, 0, NULL) != 0 || git_repository_open(&repo, root.ptr) != 0 ||
	    git_repository_is_bare(repo)) {
		git_buf_dispose(&root);
		git_repository_free(repo);
		git_libgit2_shutdown();
		return;
	}
	const char *wd = git_repository_workdir(repo);
	size_t wl = wd ? strlen(wd) : 0;
	const char *rel = wd && !strncmp(abs, wd, wl) ? abs + wl : abs;
	rbk_val g = rbk_val_map();
	git_oid head;
	if (git_reference_name_to_id(&head, repo, "HEAD") == 0) {
		char hex[GIT_OID_HEXSZ + 1];
		git_oid_tostr(hex, sizeof hex, &head);
		rbk_val_map_set(&g, "commit", rbk_val_str(hex));
	} else {
		rbk_val_map_set(&g, "commit", rbk_val_null()); /* a repository without commits */
	}
	git_reference *ref = NULL;
	if (git_repository_head(&ref, repo) == 0 && git_reference_is_branch(ref))
		rbk_val_map_set(&g, "branch", rbk_val_str(git_reference_shorthand(ref)));
	else
		rbk_val_map_set(&g, "branch", rbk_val_null());
	git_reference_free(ref);
	rbk_val_map_set(&g, "path", rbk_val_str(rel));
	unsigned int flags = 0;
	int rc = git_status_file(&flags, repo, rel);
	bool tracked = rc == 0 && !(flags & (GIT_STATUS_WT_NEW | GIT_STATUS_IGNORED));
	bool dirty = rc != 0 || flags != GIT_STATUS_CURRENT;
	rbk_val_map_set(&g, "tracked", rbk_val_bool(tracked));
	/* dirty: the bytes that ran are not the bytes of that commit. */
	rbk_val_map_set(&g, "dirty", rbk_val_bool(dirty));
	rbk_val_map_set(out, "git", g);
	git_repository_free(repo);
	git_buf_dispose(&root);
	git_libgit2_shutdown();
}

static int git_fail(rbk_err *err, const char *what, const char *dir)
{
	const git_error *e = git_error_last();
	rbk_err_set(err, -1, "seal %s: %s: %s", dir, what, e && e->message ? e->message : "failed");
	return -1;
}

int rbk_gitrepo_seal(const char *dir, int64_t seq, const char *hash, const char *actor, char **commit, rbk_err *err)
{
	*commit = NULL;
	git_libgit2_init();
	git_repository *repo = NULL;
	git_index *index = NULL;
	git_signature *sig = NULL;
	git_tree *tree = NULL;
	git_reference *head = NULL;
	git_commit *parent = NULL;
	int rc = -1;
	char *file = rbk_xasprintf("%s/%s", dir, RBK_SEAL_FILE);
	char text[160];
	snprintf(text, sizeof text, "seq %lld\nhash %s\n", (long long)seq, hash);
	FILE *f = NULL;
	git_oid tree_id, commit_id;
	if (git_repository_open(&repo, dir) != 0 && git_repository_init(&repo, dir, 0) != 0) {
		git_fail(err, "cannot open or create the repository", dir);
		goto done;
	}
	if (!(f = fopen(file, "w")) || fputs(text, f) < 0 || fclose(f) != 0) {
		rbk_err_set(err, -1, "seal %s: cannot write %s", dir, RBK_SEAL_FILE);
		goto done;
	}
	if (git_repository_index(&index, repo) || git_index_add_bypath(index, RBK_SEAL_FILE) || git_index_write(index) ||
	    git_index_write_tree(&tree_id, index) || git_tree_lookup(&tree, repo, &tree_id)) {
		git_fail(err, "cannot stage the seal", dir);
		goto done;
	}
	if (git_signature_now(&sig, actor && *actor ? actor : "rbk", "rbk@localhost")) {
		git_fail(err, "cannot sign", dir);
		goto done;
	}
	if (git_repository_head(&head, repo) == 0)
		git_commit_lookup(&parent, repo, git_reference_target(head));
	char msg[200];
	snprintf(msg, sizeof msg, "rbk seal: chain head at event %lld\n\n%s", (long long)seq, text);
	const git_commit *parents[1] = {parent};
	if (git_commit_create(&commit_id, repo, "HEAD", sig, sig, NULL, msg, tree, parent ? 1 : 0, parents)) {
		git_fail(err, "cannot commit", dir);
		goto done;
	}
	char hex[GIT_OID_HEXSZ + 1];
	git_oid_tostr(hex, sizeof hex, &commit_id);
	*commit = rbk_xstrdup(hex);
	rc = 0;
done:
	git_commit_free(parent);
	git_reference_free(head);
	git_tree_free(tree);
	git_signature_free(sig);
	git_index_free(index);
	git_repository_free(repo);
	git_libgit2_shutdown();
	rbk_free(file);
	return rc;
}

int rbk_gitrepo_last_seal(const char *dir, int64_t *seq, char hash[65], rbk_err *err)
{
	git_libgit2_init();
	git_repository *repo = NULL;
	git_object *blob = NULL;
	int rc = 1;
	if (git_repository_open(&repo, dir) != 0) {
		rc = git_fail(err, "cannot open the repository", dir);
	} else if (git_revparse_single(&blob, repo, "HEAD:" RBK_SEAL_FILE) == 0) {
		/* The committed seal, not the working file: that one is easy to edit. */
		const char *content = git_blob_rawcontent((git_blob *)blob);
		size_t size = (size_t)git_blob_rawsize((git_blob *)blob);
		char buf[200];
		snprintf(buf, sizeof buf, "%.*s", (int)(size < sizeof buf ? size : sizeof buf - 1), content);
		long long s = 0;
		char h[65] = "";
		if (sscanf(buf, "seq %lld\nhash %64s", &s, h) == 2 && strlen(h) == 64) {
			*seq = s;
			memcpy(hash, h, 65);
			rc = 0;
		} else {
			rbk_err_set(err, -1, "seal %s: %s at HEAD is malformed", dir, RBK_SEAL_FILE);
			rc = -1;
		}
	}
	git_object_free(blob);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return rc;
}
