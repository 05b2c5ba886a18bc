/*
 * git — certwright's use of git through libgit2 (see git.h).
 *
 * Safety rules this file keeps:
 *  - the report folder is the only part of the work tree certwright writes or deletes
 *    in, and the only part of the index it changes; a commit is HEAD's tree with that
 *    folder replaced, so other staged or unstaged work is never swept into it;
 *  - a re-commit on top of a moved remote only ever drops local commits that touched
 *    nothing but the report folder; anything else stops with an explanation;
 *  - ssh host keys are checked here against the user's and the system's known_hosts,
 *    "[host]:port" entries included: libgit2's own default check differs between 1.5
 *    releases (none before 1.5.1) and reads only the user's file; TLS certificates must
 *    verify.
 *
 * Timeouts: libgit2 1.5 has no socket timeout option (GIT_OPT_SET_SERVER_TIMEOUT and
 * GIT_OPT_SET_SERVER_CONNECT_TIMEOUT came in 1.7). Each network operation carries a
 * deadline checked in every callback libgit2 makes while talking to the remote (host key
 * and credential checks, negotiation, progress), which stops a slow or stalling
 * transfer. A connect, or a peer that goes silent inside one blocking read, is bounded
 * only by the kernel (SYN retries for the connect; nothing for an idle read): that gap
 * closes when the build moves to libgit2 >= 1.7 (see git_timeouts_set).
 */
#include "reconcile/git.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <libssh2.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* An inventory file larger than this is a mistake (or an attack), not an inventory. */
#define INVENTORY_FILE_MAX ((size_t)16 << 20)
#define NET_TIMEOUT_SECONDS 120
#define PUSH_ROUNDS 3
#define FALLBACK_NAME "certwright"
#define FALLBACK_EMAIL "certwright@localhost"
#define DEFAULT_MESSAGE "certwright: update state report"

/* Socket timeouts where the library has them (libgit2 >= 1.7), in milliseconds. */
static void git_timeouts_set(void)
{
#if LIBGIT2_VER_MAJOR > 1 || (LIBGIT2_VER_MAJOR == 1 && LIBGIT2_VER_MINOR >= 7)
	git_libgit2_opts(GIT_OPT_SET_SERVER_CONNECT_TIMEOUT, NET_TIMEOUT_SECONDS * 1000);
	git_libgit2_opts(GIT_OPT_SET_SERVER_TIMEOUT, NET_TIMEOUT_SECONDS * 1000);
#endif
}

void cw_git_init(void)
{
	git_libgit2_init();
	/* The report commit records what was deployed: make it survive a power cut. */
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
	git_timeouts_set();
}

void cw_git_shutdown(void)
{
	git_libgit2_shutdown();
}

/* ---------------------------------------------------------------- errors */

/* Sets a CW_EGIT error: our description, then libgit2's reason. */
static int __attribute__((format(printf, 2, 3))) git_fail(cw_error *err, const char *fmt, ...)
{
	char what[CW_ERRMSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	const git_error *e = git_error_last();
	return cw_error_set(err, CW_EGIT, "%s: %s", what,
			    e && e->message ? e->message : "unknown libgit2 error");
}

/* ---------------------------------------------------------------- paths */

/* A folder inside the repository as a clean relative path ("a/b", no "./", no trailing
 * '/'). Absolute paths, ".." and ".git" are refused: whatever we write or delete must
 * stay inside the work tree and out of git's own files. The root ("", ".") is allowed
 * only where allow_root says so (reading the inventory, never writing the report). */
static int relpath_normalise(char **out, const char *what, const char *path, int allow_root,
			     cw_error *err)
{
	*out = NULL;
	if (!path)
		path = "";
	if (path[0] == '/')
		return cw_error_set(err, CW_EINVAL, "%s '%s': must be relative to the repository", what, path);
	cw_buf b = CW_BUF_INIT;
	cw_buf_adds(&b, "");
	char *copy = cw_xstrdup(path), *save = NULL;
	int rc = 0;
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..") || !strcasecmp(c, ".git")) {
			rc = cw_error_set(err, CW_EINVAL, "%s '%s': must stay inside the work tree and "
				     "out of .git", what, path);
			break;
		}
		cw_buf_addf(&b, "%s%s", b.len ? "/" : "", c);
	}
	free(copy);
	if (rc == 0 && !b.len && !allow_root)
		rc = cw_error_set(err, CW_EINVAL, "%s '%s': must name a folder below the repository root",
				  what, path);
	if (rc != 0) {
		cw_buf_release(&b);
		return -1;
	}
	*out = cw_buf_detach(&b);
	return 0;
}

/* Report file paths come from report.c; checked again here because this is where they
 * turn into writes and deletions. */
static int report_paths_check(const cw_report *rep, cw_error *err)
{
	for (size_t i = 0; i < rep->n; i++) {
		char *norm = NULL;
		const char *p = rep->files[i].path;
		if (relpath_normalise(&norm, "report file", p, 0, err) != 0)
			return -1;
		int same = !strcmp(norm, p);
		free(norm);
		if (!same)
			return cw_error_set(err, CW_EINVAL, "report file '%s': not a plain relative path", p);
	}
	return 0;
}

/* Refuses to write through a symbolic link anywhere between the work tree and the
 * report's folders: a link could point the writes (and deletions) outside the folder. */
static int path_check_no_links(const char *workdir, const char *rel, cw_error *err)
{
	char *copy = cw_xstrdup(rel), *save = NULL;
	cw_buf p = CW_BUF_INIT;
	cw_buf_adds(&p, workdir);
	int rc = 0;
	for (char *c = strtok_r(copy, "/", &save); c && rc == 0; c = strtok_r(NULL, "/", &save)) {
		cw_buf_addf(&p, "/%s", c);
		struct stat st;
		if (lstat(p.buf, &st) != 0) {
			if (errno != ENOENT)
				rc = cw_error_set(err, CW_EIO, "%s: cannot inspect: %s", p.buf, strerror(errno));
			break;   /* missing: we create it, as a real folder */
		}
		if (S_ISLNK(st.st_mode))
			rc = cw_error_set(err, CW_EINVAL, "report folder '%s': '%s' is a symbolic link; "
					  "refusing to write through it", rel, p.buf);
		else if (!S_ISDIR(st.st_mode))
			rc = cw_error_set(err, CW_EINVAL, "report folder '%s': '%s' is not a folder", rel,
					  p.buf);
	}
	free(copy);
	cw_buf_release(&p);
	return rc;
}

static char *dirname_of(const char *rel)
{
	const char *slash = strrchr(rel, '/');
	return slash ? cw_xstrndup(rel, (size_t)(slash - rel)) : cw_xstrdup("");
}

/* ---------------------------------------------------------------- repository */

static int repo_open(git_repository **out, const char *path, cw_error *err)
{
	if (git_repository_open_ext(out, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0)
		return git_fail(err, "repository '%s': cannot open", path);
	if (git_repository_is_bare(*out)) {
		git_repository_free(*out);
		*out = NULL;
		return cw_error_set(err, CW_EGIT, "repository '%s': is bare; certwright needs a work tree",
				    path);
	}
	return 0;
}

/* The work tree without the trailing '/' libgit2 adds. */
static char *repo_workdir(git_repository *r)
{
	char *wd = cw_xstrdup(git_repository_workdir(r));
	size_t n = strlen(wd);
	while (n > 1 && wd[n - 1] == '/')
		wd[--n] = '\0';
	return wd;
}

int cw_git_discover(char **workdir, const char *path, cw_error *err)
{
	*workdir = NULL;
	git_buf found = GIT_BUF_INIT;
	if (git_repository_discover(&found, path, 0, NULL) < 0)
		return git_fail(err, "'%s': not inside a git repository", path);
	git_repository *r = NULL;
	int rc = repo_open(&r, found.ptr, err);
	git_buf_dispose(&found);
	if (rc != 0)
		return -1;
	*workdir = repo_workdir(r);
	git_repository_free(r);
	return 0;
}

/* HEAD's commit, or NULL when HEAD is unborn (a fresh repository). */
static int head_commit(git_commit **out, git_repository *r, cw_error *err)
{
	*out = NULL;
	git_reference *head = NULL;
	int rc = git_repository_head(&head, r);
	if (rc == GIT_EUNBORNBRANCH || rc == GIT_ENOTFOUND)
		return 0;
	if (rc < 0)
		return git_fail(err, "repository '%s': cannot read HEAD", git_repository_workdir(r));
	rc = git_reference_peel((git_object **)out, head, GIT_OBJECT_COMMIT);
	git_reference_free(head);
	if (rc < 0)
		return git_fail(err, "repository '%s': HEAD is not a commit", git_repository_workdir(r));
	return 0;
}

static int signature_make(git_signature **out, git_repository *r, cw_error *err)
{
	if (git_signature_default(out, r) == 0)
		return 0;
	if (git_signature_now(out, FALLBACK_NAME, FALLBACK_EMAIL) == 0)
		return 0;
	return git_fail(err, "repository '%s': cannot make a commit signature",
			git_repository_workdir(r));
}

/* A commit of tree_id with at most one parent; update_ref moves that ref (or NULL). */
static int commit_make(git_oid *out, git_repository *r, const char *update_ref, const git_oid *tree_id,
		       const git_commit *parent, const char *message, cw_error *err)
{
	git_tree *tree = NULL;
	git_signature *sig = NULL;
	git_buf msg = GIT_BUF_INIT;
	int rc = -1;
	if (git_tree_lookup(&tree, r, tree_id) < 0) {
		git_fail(err, "repository '%s': cannot read the new tree", git_repository_workdir(r));
		goto done;
	}
	if (signature_make(&sig, r, err) != 0)
		goto done;
	if (git_message_prettify(&msg, message && *message ? message : DEFAULT_MESSAGE, 0, '#') < 0) {
		git_fail(err, "commit message");
		goto done;
	}
	const git_commit *parents[1] = { parent };
	if (git_commit_create(out, r, update_ref, sig, sig, NULL, msg.ptr, tree, parent ? 1 : 0,
			      parents) < 0) {
		git_fail(err, "repository '%s': cannot commit the report", git_repository_workdir(r));
		goto done;
	}
	rc = 0;
done:
	git_buf_dispose(&msg);
	git_signature_free(sig);
	git_tree_free(tree);
	return rc;
}

/* ---------------------------------------------------------------- reading the inventory */

static int is_inventory_name(const char *name)
{
	size_t n = strlen(name);
	return (n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml"));
}

static int inventory_file_cmp(const void *a, const void *b)
{
	return strcmp(((const cw_inventory_file *)a)->name, ((const cw_inventory_file *)b)->name);
}

/* The tree of subdir ("" = root) at rev; a missing folder names both. */
static int rev_subtree(git_tree **out, git_repository *r, const char *rev, const char *subdir,
		       const char *shown_subdir, cw_error *err)
{
	git_object *obj = NULL;
	git_tree *root = NULL;
	git_tree_entry *entry = NULL;
	int rc = -1;
	*out = NULL;
	if (git_revparse_single(&obj, r, rev) < 0 ||
	    git_object_peel((git_object **)&root, obj, GIT_OBJECT_TREE) < 0) {
		git_fail(err, "revision '%s': not found", rev);
		goto done;
	}
	if (!*subdir) {
		rc = git_tree_dup(out, root) < 0 ? git_fail(err, "revision '%s'", rev) : 0;
		goto done;
	}
	if (git_tree_entry_bypath(&entry, root, subdir) < 0 ||
	    git_tree_entry_type(entry) != GIT_OBJECT_TREE) {
		rc = cw_error_set(err, CW_EGIT, "inventory folder '%s' does not exist at revision '%s'",
				  shown_subdir, rev);
		goto done;
	}
	if (git_tree_lookup(out, r, git_tree_entry_id(entry)) < 0) {
		git_fail(err, "inventory folder '%s' at revision '%s'", shown_subdir, rev);
		goto done;
	}
	rc = 0;
done:
	git_tree_entry_free(entry);
	git_tree_free(root);
	git_object_free(obj);
	return rc;
}

static int blob_copy(cw_inventory_file *f, git_repository *r, const git_tree_entry *e,
		     const char *name, cw_error *err)
{
	git_blob *blob = NULL;
	if (git_blob_lookup(&blob, r, git_tree_entry_id(e)) < 0)
		return git_fail(err, "inventory file '%s': cannot read", name);
	size_t len = (size_t)git_blob_rawsize(blob);
	if (len > INVENTORY_FILE_MAX) {
		git_blob_free(blob);
		return cw_error_set(err, CW_EINVAL, "inventory file '%s': larger than %zu bytes", name,
				    INVENTORY_FILE_MAX);
	}
	char *data = cw_xmalloc(len + 1);
	memcpy(data, git_blob_rawcontent(blob), len);
	data[len] = '\0';
	git_blob_free(blob);
	f->name = cw_xstrdup(name);
	f->data = data;
	f->len = len;
	return 0;
}

/* Regular files only: a symbolic link's blob is its target path, not YAML. */
static int collect_inventory(cw_inventory_file **files, size_t *n, git_repository *r,
			     const git_tree *tree, const char *subdir, cw_error *err)
{
	size_t count = git_tree_entrycount(tree);
	*files = cw_xcalloc(count + 1, sizeof(**files));
	*n = 0;
	for (size_t i = 0; i < count; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		git_filemode_t mode = git_tree_entry_filemode(e);
		const char *base = git_tree_entry_name(e);
		if ((mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE) ||
		    !is_inventory_name(base))
			continue;
		char *name = *subdir ? cw_xasprintf("%s/%s", subdir, base) : cw_xstrdup(base);
		int rc = blob_copy(&(*files)[*n], r, e, name, err);
		free(name);
		if (rc != 0)
			return -1;
		(*n)++;
	}
	qsort(*files, *n, sizeof(**files), inventory_file_cmp);
	return 0;
}

int cw_git_read_inventory(cw_inventory_file **files, size_t *n, const char *repo, const char *rev,
			  const char *subdir, cw_error *err)
{
	*files = NULL;
	*n = 0;
	if (!rev || !*rev)
		rev = "HEAD";
	char *dir = NULL;
	if (relpath_normalise(&dir, "inventory folder", subdir, 1, err) != 0)
		return -1;
	git_repository *r = NULL;
	git_tree *tree = NULL;
	int rc = -1;
	if (git_repository_open_ext(&r, repo, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
		git_fail(err, "repository '%s': cannot open", repo);
		goto done;
	}
	if (rev_subtree(&tree, r, rev, dir, subdir && *subdir ? subdir : ".", err) != 0)
		goto done;
	if (collect_inventory(files, n, r, tree, dir, err) != 0)
		goto done;
	if (*n == 0) {
		cw_error_set(err, CW_EINVAL, "inventory folder '%s' has no .yaml or .yml files at "
			     "revision '%s'", subdir && *subdir ? subdir : ".", rev);
		goto done;
	}
	rc = 0;
done:
	if (rc != 0) {
		cw_git_free_files(*files, *n);
		*files = NULL;
		*n = 0;
	}
	git_tree_free(tree);
	git_repository_free(r);
	free(dir);
	return rc;
}

void cw_git_free_files(cw_inventory_file *files, size_t n)
{
	if (!files)
		return;
	for (size_t i = 0; i < n; i++) {
		free((char *)files[i].name);
		free((char *)files[i].data);
	}
	free(files);
}

/* ---------------------------------------------------------------- writing the report folder */

/* 1 when path already holds exactly these bytes (then it is left alone: no rewrite,
 * no fsync, no new mtime for git to re-hash). A symbolic link never counts as equal. */
static int file_has_content(const char *path, const cw_buf *content)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	int same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == content->len;
	if (same && content->len) {
		char *data = cw_xmalloc(content->len);
		size_t got = 0;
		ssize_t r;
		while (got < content->len && (r = read(fd, data + got, content->len - got)) > 0)
			got += (size_t)r;
		same = got == content->len && !memcmp(data, content->buf, content->len);
		free(data);
	}
	close(fd);
	return same;
}

static int report_write_files(const char *workdir, const char *dir, const cw_report *rep,
			      cw_error *err)
{
	if (path_check_no_links(workdir, dir, err) != 0)
		return -1;
	for (size_t i = 0; i < rep->n; i++) {
		const cw_report_file *f = &rep->files[i];
		char *rel = cw_xasprintf("%s/%s", dir, f->path);
		char *reldir = dirname_of(rel);
		char *absdir = cw_path_join(workdir, reldir);
		char *abs = cw_path_join(workdir, rel);
		int rc = path_check_no_links(workdir, reldir, err);
		if (rc == 0)
			rc = cw_mkdirs(absdir, 0755, err);
		/* no fsync per file: the report is derived data, rebuilt by every run, and the
		 * commit below (git objects) is its durable copy */
		if (rc == 0 && !file_has_content(abs, &f->content))
			rc = cw_write_file_atomic_nosync(abs, f->content.buf, f->content.len, 0644, err);
		free(rel);
		free(reldir);
		free(absdir);
		free(abs);
		if (rc != 0)
			return -1;
	}
	return 0;
}

static int report_has_file(const cw_report *rep, const char *rel)
{
	for (size_t i = 0; i < rep->n; i++)
		if (!strcmp(rep->files[i].path, rel))
			return 1;
	return 0;
}

static int report_has_dir(const cw_report *rep, const char *rel)
{
	size_t n = strlen(rel);
	for (size_t i = 0; i < rep->n; i++)
		if (!strncmp(rep->files[i].path, rel, n) && rep->files[i].path[n] == '/')
			return 1;
	return 0;
}

/* The names in a folder, read completely before anything in it is deleted. */
static int dir_list(char ***names, size_t *n, const char *abs, cw_error *err)
{
	*names = NULL;
	*n = 0;
	DIR *d = opendir(abs);
	if (!d)
		return errno == ENOENT ? 0 : cw_error_set(err, CW_EIO, "%s: cannot list: %s", abs,
							  strerror(errno));
	size_t cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*names = cw_xrealloc(*names, cap * sizeof(**names));
		}
		(*names)[(*n)++] = cw_xstrdup(e->d_name);
	}
	closedir(d);
	return 0;
}

/* Deletes what is in the report folder but not in the report (a certificate taken out
 * of the inventory), then folders left empty. Never follows a link: a link is removed
 * like a file. rel is relative to the report folder. */
static int report_prune(const char *abs, const char *rel, const cw_report *rep, cw_error *err)
{
	char **names;
	size_t n;
	if (dir_list(&names, &n, abs, err) != 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		char *child_abs = cw_path_join(abs, names[i]);
		char *child_rel = *rel ? cw_xasprintf("%s/%s", rel, names[i]) : cw_xstrdup(names[i]);
		struct stat st;
		if (rc == 0 && lstat(child_abs, &st) == 0) {
			if (S_ISDIR(st.st_mode)) {
				rc = report_prune(child_abs, child_rel, rep, err);
				if (rc == 0 && !report_has_dir(rep, child_rel) && rmdir(child_abs) != 0)
					rc = cw_error_set(err, CW_EIO, "%s: cannot remove folder: %s",
							  child_abs, strerror(errno));
			} else if (!report_has_file(rep, child_rel) && unlink(child_abs) != 0) {
				rc = cw_error_set(err, CW_EIO, "%s: cannot remove: %s", child_abs,
						  strerror(errno));
			}
		}
		free(child_abs);
		free(child_rel);
		free(names[i]);
	}
	free(names);
	return rc;
}

/* ---------------------------------------------------------------- staging */

/* Drops every entry under dir (all stages: an unresolved merge there is ours to
 * settle) and a file where the folder belongs. */
static int index_drop_dir(git_index *idx, const char *dir)
{
	for (int stage = 0; stage <= 3; stage++)
		if (git_index_remove_directory(idx, dir, stage) < 0)
			return -1;
	if (git_index_get_bypath(idx, dir, 0) && git_index_remove(idx, dir, 0) < 0)
		return -1;
	return 0;
}

/* Stages the report files in the repository's index (through git's own add, so
 * filters and stat data match what `git add` would record and `git status` is clean)
 * and leaves every other index entry as it was. */
static int index_stage_report(git_index *idx, const char *dir, const cw_report *rep, cw_error *err)
{
	if (git_index_read(idx, 0) < 0 || index_drop_dir(idx, dir) < 0)
		return git_fail(err, "report folder '%s': cannot update the index", dir);
	for (size_t i = 0; i < rep->n; i++) {
		char *rel = cw_xasprintf("%s/%s", dir, rep->files[i].path);
		int rc = git_index_add_bypath(idx, rel);
		if (rc < 0)
			git_fail(err, "report file '%s': cannot stage", rel);
		free(rel);
		if (rc < 0)
			return -1;
	}
	if (git_index_write(idx) < 0)
		return git_fail(err, "report folder '%s': cannot write the index", dir);
	return 0;
}

/* base's tree with dir replaced by the report entries staged in idx: other staged
 * changes are deliberately not part of it. base may be NULL (first commit). */
static int tree_with_staged_report(git_oid *out, git_repository *r, const git_tree *base,
				   git_index *idx, const char *dir, const cw_report *rep, cw_error *err)
{
	git_index *tmp = NULL;
	int rc = -1;
	if (git_index_new(&tmp) < 0 || (base && git_index_read_tree(tmp, base) < 0) ||
	    index_drop_dir(tmp, dir) < 0) {
		git_fail(err, "report folder '%s': cannot build the tree", dir);
		goto done;
	}
	for (size_t i = 0; i < rep->n; i++) {
		char *rel = cw_xasprintf("%s/%s", dir, rep->files[i].path);
		const git_index_entry *e = git_index_get_bypath(idx, rel, 0);
		int ok = e && git_index_add(tmp, e) == 0;
		if (!ok)
			git_fail(err, "report file '%s': cannot add to the tree", rel);
		free(rel);
		if (!ok)
			goto done;
	}
	if (git_index_write_tree_to(out, tmp, r) < 0) {
		git_fail(err, "report folder '%s': cannot write the tree", dir);
		goto done;
	}
	rc = 0;
done:
	git_index_free(tmp);
	return rc;
}

static int report_stage_and_commit(git_repository *r, const char *dir, const cw_report *rep,
				   const char *message, int *committed, cw_error *err)
{
	git_commit *parent = NULL;
	git_tree *base = NULL;
	git_index *idx = NULL;
	git_oid tree_id, commit_id;
	int rc = -1;
	if (head_commit(&parent, r, err) != 0)
		goto done;
	if (parent && git_commit_tree(&base, parent) < 0) {
		git_fail(err, "repository '%s': cannot read HEAD's tree", git_repository_workdir(r));
		goto done;
	}
	if (git_repository_index(&idx, r) < 0) {
		git_fail(err, "repository '%s': cannot open the index", git_repository_workdir(r));
		goto done;
	}
	if (index_stage_report(idx, dir, rep, err) != 0 ||
	    tree_with_staged_report(&tree_id, r, base, idx, dir, rep, err) != 0)
		goto done;
	/* Unchanged tree: an idle run must leave history alone. */
	int unchanged = base ? git_oid_equal(&tree_id, git_tree_id(base)) : rep->n == 0;
	if (!unchanged) {
		if (commit_make(&commit_id, r, "HEAD", &tree_id, parent, message, err) != 0)
			goto done;
		*committed = 1;
	}
	rc = 0;
done:
	git_index_free(idx);
	git_tree_free(base);
	git_commit_free(parent);
	return rc;
}

int cw_git_commit_report(const char *repo, const char *report_dir, const cw_report *report,
			 const char *message, int *committed, cw_error *err)
{
	*committed = 0;
	char *dir = NULL, *workdir = NULL, *absdir = NULL;
	git_repository *r = NULL;
	int rc = -1;
	if (relpath_normalise(&dir, "report folder", report_dir, 0, err) != 0 ||
	    report_paths_check(report, err) != 0 || repo_open(&r, repo, err) != 0)
		goto done;
	/* A commit on HEAD in the middle of a merge or rebase would change what that
	 * operation finishes with: the person running it decides first. */
	if (git_repository_state(r) != GIT_REPOSITORY_STATE_NONE) {
		cw_error_set(err, CW_EGIT, "repository '%s': a merge, rebase or similar is in "
			     "progress; finish or abort it, then run again", repo);
		goto done;
	}
	workdir = repo_workdir(r);
	absdir = cw_path_join(workdir, dir);
	if (report_write_files(workdir, dir, report, err) != 0 ||
	    report_prune(absdir, "", report, err) != 0)
		goto done;
	rc = report_stage_and_commit(r, dir, report, message, committed, err);
done:
	git_repository_free(r);
	free(absdir);
	free(workdir);
	free(dir);
	return rc;
}

/* ---------------------------------------------------------------- network callbacks */

typedef struct {
	int ssh_port;             /* from the URL, for known_hosts; -1 = default */
	struct timespec deadline;
	unsigned tried;           /* credential types already offered on this connection */
	cw_errcode fail_code;
	char failure[512];        /* why one of our callbacks stopped libgit2 */
	char rejected[512];       /* the remote's reason for refusing a ref update */
} net_ctx;

static void net_ctx_start(net_ctx *ctx)
{
	clock_gettime(CLOCK_MONOTONIC, &ctx->deadline);
	ctx->deadline.tv_sec += NET_TIMEOUT_SECONDS;
	ctx->tried = 0;
	ctx->fail_code = CW_OK;
	ctx->failure[0] = '\0';
	ctx->rejected[0] = '\0';
}

static int __attribute__((format(printf, 3, 4)))
net_stop(net_ctx *ctx, cw_errcode code, const char *fmt, ...)
{
	if (!ctx->failure[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ctx->failure, sizeof(ctx->failure), fmt, ap);
		va_end(ap);
		ctx->fail_code = code;
	}
	return GIT_EUSER;
}

static int net_check_deadline(net_ctx *ctx)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec < ctx->deadline.tv_sec)
		return 0;
	return net_stop(ctx, CW_ETIMEOUT, "no result after %d seconds", NET_TIMEOUT_SECONDS);
}

/* Our own reason when a callback stopped libgit2, else libgit2's. */
static int net_fail(cw_error *err, const net_ctx *ctx, const char *what)
{
	if (ctx->failure[0])
		return cw_error_set(err, ctx->fail_code, "%s: %s", what, ctx->failure);
	return git_fail(err, "%s", what);
}

/* Each credential type is offered once per connection: libgit2 asks again after a
 * refusal, and answering the same again would loop. */
static int cb_credentials(git_credential **out, const char *url, const char *user_from_url,
			  unsigned int allowed, void *payload)
{
	net_ctx *ctx = payload;
	if (net_check_deadline(ctx))
		return GIT_EUSER;
	unsigned fresh = allowed & ~ctx->tried;
	if ((allowed & GIT_CREDENTIAL_SSH_KEY) && (ctx->tried & GIT_CREDENTIAL_SSH_KEY))
		return net_stop(ctx, CW_EGIT, "the ssh server accepted none of the keys in ssh-agent");
	if (fresh & GIT_CREDENTIAL_SSH_KEY) {
		ctx->tried |= GIT_CREDENTIAL_SSH_KEY;
		if (!getenv("SSH_AUTH_SOCK"))
			return net_stop(ctx, CW_EGIT, "ssh needs a running ssh-agent (SSH_AUTH_SOCK is "
					"not set)");
		return git_credential_ssh_key_from_agent(out, user_from_url ? user_from_url : "git");
	}
	if (fresh & GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
		ctx->tried |= GIT_CREDENTIAL_USERPASS_PLAINTEXT;
		const char *user = getenv("CERTWRIGHT_GIT_USERNAME");
		const char *pass = getenv("CERTWRIGHT_GIT_PASSWORD");
		if (!user || !*user)
			user = user_from_url;
		if (!user || !pass)
			return net_stop(ctx, CW_EGIT, "the server asks for a username and password; "
					"set CERTWRIGHT_GIT_USERNAME and CERTWRIGHT_GIT_PASSWORD");
		return git_credential_userpass_plaintext_new(out, user, pass);
	}
	if (fresh & GIT_CREDENTIAL_USERNAME) {
		ctx->tried |= GIT_CREDENTIAL_USERNAME;
		return git_credential_username_new(out, user_from_url ? user_from_url : "git");
	}
	return net_stop(ctx, CW_EGIT, "authentication failed");
}

/* Port of an ssh:// URL for known_hosts ("[host]:port" entries); -1 = default port. */
static int ssh_url_port(const char *url)
{
	static const char *const schemes[] = { "ssh://", "git+ssh://", "ssh+git://" };
	const char *p = NULL;
	for (size_t i = 0; url && !p && i < sizeof(schemes) / sizeof(*schemes); i++)
		if (!strncmp(url, schemes[i], strlen(schemes[i])))
			p = url + strlen(schemes[i]);
	if (!p)
		return -1;
	const char *slash = strchr(p, '/'), *at = strchr(p, '@');
	if (at && (!slash || at < slash))
		p = at + 1;
	if (*p == '[') {
		p = strchr(p, ']');
		if (!p)
			return -1;
		p++;
	} else {
		p += strcspn(p, ":/");
	}
	int port = *p == ':' ? atoi(p + 1) : -1;
	return port > 0 && port != 22 ? port : -1;
}

/* Reads known_hosts line by line: libssh2's own reader stops at the first line it does
 * not understand (a newer key type, a @cert-authority marker), hiding the rest. */
static void known_hosts_load(LIBSSH2_KNOWNHOSTS *kh, const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char line[8192];
	while (fgets(line, sizeof(line), f))
		(void)libssh2_knownhost_readline(kh, line, strlen(line), LIBSSH2_KNOWNHOST_FILE_OPENSSH);
	fclose(f);
}

static int known_hosts_check(const char *host, int port, const char *key, size_t len)
{
	int verdict = LIBSSH2_KNOWNHOST_CHECK_FAILURE;
	LIBSSH2_SESSION *s = libssh2_session_init();
	LIBSSH2_KNOWNHOSTS *kh = s ? libssh2_knownhost_init(s) : NULL;
	if (kh) {
		const char *home = getenv("HOME");
		if (home && *home) {
			char *user_file = cw_path_join(home, ".ssh/known_hosts");
			known_hosts_load(kh, user_file);
			free(user_file);
		}
		known_hosts_load(kh, "/etc/ssh/ssh_known_hosts");
		verdict = libssh2_knownhost_checkp(kh, host, port, key, len,
						   LIBSSH2_KNOWNHOST_TYPE_PLAIN |
						   LIBSSH2_KNOWNHOST_KEYENC_RAW, NULL);
		libssh2_knownhost_free(kh);
	}
	if (s)
		libssh2_session_free(s);
	return verdict;
}

/* "SHA256:..." as ssh prints it, so the message can be compared with ssh-keyscan. */
static void ssh_fingerprint(const git_cert_hostkey *hk, char out[64])
{
	if (!(hk->type & GIT_CERT_SSH_SHA256)) {
		snprintf(out, 64, "(unknown)");
		return;
	}
	unsigned char b64[48];
	int n = EVP_EncodeBlock(b64, hk->hash_sha256, 32);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	snprintf(out, 64, "SHA256:%.*s", n, (const char *)b64);
}

static int ssh_host_key_check(const git_cert_hostkey *hk, const char *host, net_ctx *ctx)
{
	if (!(hk->type & GIT_CERT_SSH_RAW) || !hk->hostkey)
		return net_stop(ctx, CW_EGIT, "the ssh host key of '%s' cannot be checked", host);
	char fp[64];
	ssh_fingerprint(hk, fp);
	switch (known_hosts_check(host, ctx->ssh_port, hk->hostkey, hk->hostkey_len)) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		return 0;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		return net_stop(ctx, CW_EGIT, "host key %s of '%s' does not match known_hosts; "
				"refusing to connect (the server changed or someone is in between)",
				fp, host);
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		return net_stop(ctx, CW_EGIT, "host '%s' is not in known_hosts; check that its "
				"host key is %s and add it (ssh-keyscan)", host, fp);
	default:
		return net_stop(ctx, CW_EGIT, "cannot check the ssh host key of '%s'", host);
	}
}

static int cb_certificate_check(git_cert *cert, int valid, const char *host, void *payload)
{
	net_ctx *ctx = payload;
	if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2)
		return ssh_host_key_check((const git_cert_hostkey *)cert, host, ctx);
	if (!valid)
		return net_stop(ctx, CW_EGIT, "the TLS certificate of '%s' is not trusted", host);
	return 0;
}

static int cb_push_update_reference(const char *refname, const char *status, void *payload)
{
	net_ctx *ctx = payload;
	if (status && !ctx->rejected[0])
		snprintf(ctx->rejected, sizeof(ctx->rejected), "%s: %s", refname, status);
	return 0;
}

static int cb_sideband(const char *str, int len, void *payload)
{
	return net_check_deadline(payload);
}

static int cb_transfer(const git_indexer_progress *stats, void *payload)
{
	return net_check_deadline(payload);
}

static int cb_push_transfer(unsigned int current, unsigned int total, size_t bytes, void *payload)
{
	return net_check_deadline(payload);
}

static int cb_push_negotiation(const git_push_update **updates, size_t len, void *payload)
{
	return net_check_deadline(payload);
}

static void net_callbacks(git_remote_callbacks *cb, net_ctx *ctx)
{
	cb->credentials = cb_credentials;
	cb->certificate_check = cb_certificate_check;
	cb->sideband_progress = cb_sideband;
	cb->transfer_progress = cb_transfer;
	cb->push_transfer_progress = cb_push_transfer;
	cb->push_negotiation = cb_push_negotiation;
	cb->push_update_reference = cb_push_update_reference;
	cb->payload = ctx;
}

/* ---------------------------------------------------------------- push */

typedef struct {
	char *branch_ref;      /* refs/heads/B */
	char *remote_name;
	char *dst_ref;         /* the upstream's branch, else the same name */
	char *tracking_ref;    /* refs/remotes/<remote>/<branch> */
	char *refspec;
	git_remote *remote;
	net_ctx net;
	char refused[512];     /* the remote's reason at the last refused push */
} push_job;

static void push_job_release(push_job *job)
{
	free(job->branch_ref);
	free(job->remote_name);
	free(job->dst_ref);
	free(job->tracking_ref);
	free(job->refspec);
	git_remote_free(job->remote);
	memset(job, 0, sizeof(*job));
}

static int push_job_branch(push_job *job, git_repository *r, cw_error *err)
{
	git_reference *head = NULL;
	int rc = git_repository_head(&head, r);
	if (rc == GIT_EUNBORNBRANCH)
		return cw_error_set(err, CW_EGIT, "repository '%s': nothing to push, the branch has no "
				    "commits", git_repository_workdir(r));
	if (rc < 0)
		return git_fail(err, "repository '%s': cannot read HEAD", git_repository_workdir(r));
	if (!git_reference_is_branch(head)) {
		git_reference_free(head);
		return cw_error_set(err, CW_EGIT, "repository '%s': HEAD is detached; check out a branch "
				    "to push", git_repository_workdir(r));
	}
	job->branch_ref = cw_xstrdup(git_reference_name(head));
	git_reference_free(head);
	return 0;
}

/* The branch's upstream (branch.B.remote / branch.B.merge), else origin and B. */
static int push_job_resolve(push_job *job, git_repository *r, cw_error *err)
{
	if (push_job_branch(job, r, err) != 0)
		return -1;
	git_buf buf = GIT_BUF_INIT;
	job->remote_name = git_branch_upstream_remote(&buf, r, job->branch_ref) == 0 ?
		cw_xstrdup(buf.ptr) : cw_xstrdup("origin");
	git_buf_dispose(&buf);
	job->dst_ref = git_branch_upstream_merge(&buf, r, job->branch_ref) == 0 ?
		cw_xstrdup(buf.ptr) : cw_xstrdup(job->branch_ref);
	git_buf_dispose(&buf);
	git_error_clear();
	const char *short_dst = job->dst_ref;
	if (!strncmp(short_dst, "refs/heads/", 11))
		short_dst += 11;
	job->tracking_ref = cw_xasprintf("refs/remotes/%s/%s", job->remote_name, short_dst);
	job->refspec = cw_xasprintf("%s:%s", job->branch_ref, job->dst_ref);
	if (git_remote_lookup(&job->remote, r, job->remote_name) < 0)
		return git_fail(err, "remote '%s'", job->remote_name);
	const char *url = git_remote_pushurl(job->remote);
	job->net.ssh_port = ssh_url_port(url ? url : git_remote_url(job->remote));
	return 0;
}

/* 0 pushed (or nothing to push), 1 refused by the remote (reason in net.rejected), -1 error. */
static int push_once(push_job *job, cw_error *err)
{
	git_push_options opts;
	git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
	net_callbacks(&opts.callbacks, &job->net);
	net_ctx_start(&job->net);
	char *specs[1] = { job->refspec };
	git_strarray arr = { specs, 1 };
	int rc = git_remote_push(job->remote, &arr, &opts);
	if (rc == GIT_ENONFASTFORWARD) {
		const git_error *e = git_error_last();
		snprintf(job->refused, sizeof(job->refused), "%s",
			 e && e->message ? e->message : "not a fast-forward");
		return 1;
	}
	if (rc < 0) {
		char what[256];
		snprintf(what, sizeof(what), "push to remote '%s'", job->remote_name);
		return net_fail(err, &job->net, what);
	}
	if (!job->net.rejected[0])
		return 0;
	snprintf(job->refused, sizeof(job->refused), "%s", job->net.rejected);
	return 1;
}

static int fetch_remote_head(git_oid *out, git_repository *r, push_job *job, cw_error *err)
{
	git_fetch_options opts;
	git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION);
	net_callbacks(&opts.callbacks, &job->net);
	opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	net_ctx_start(&job->net);
	char *spec = cw_xasprintf("+%s:%s", job->dst_ref, job->tracking_ref);
	char *specs[1] = { spec };
	git_strarray arr = { specs, 1 };
	int rc = git_remote_fetch(job->remote, &arr, &opts, "certwright: fetch before re-committing");
	free(spec);
	if (rc < 0) {
		char what[256];
		snprintf(what, sizeof(what), "fetch from remote '%s'", job->remote_name);
		return net_fail(err, &job->net, what);
	}
	if (git_reference_name_to_id(out, r, job->tracking_ref) < 0)
		return git_fail(err, "remote '%s': no branch '%s' after fetching", job->remote_name,
				job->dst_ref);
	return 0;
}

/* Does the commit change only paths under dir? A merge or a root commit never counts. */
static int commit_touches_only(int *only, git_repository *r, const git_commit *c, const char *dir,
			       cw_error *err)
{
	*only = 0;
	if (git_commit_parentcount(c) != 1)
		return 0;
	git_commit *parent = NULL;
	git_tree *pt = NULL, *ct = NULL;
	git_diff *diff = NULL;
	int rc = -1;
	if (git_commit_parent(&parent, c, 0) < 0 || git_commit_tree(&pt, parent) < 0 ||
	    git_commit_tree(&ct, c) < 0 || git_diff_tree_to_tree(&diff, r, pt, ct, NULL) < 0) {
		git_fail(err, "commit %.7s", git_oid_tostr_s(git_commit_id(c)));
		goto done;
	}
	size_t n = strlen(dir);
	*only = 1;
	for (size_t i = 0; i < git_diff_num_deltas(diff) && *only; i++) {
		const git_diff_delta *d = git_diff_get_delta(diff, i);
		const char *paths[2] = { d->old_file.path, d->new_file.path };
		for (int k = 0; k < 2; k++)
			if (paths[k] && (strncmp(paths[k], dir, n) || paths[k][n] != '/'))
				*only = 0;
	}
	rc = 0;
done:
	git_diff_free(diff);
	git_tree_free(ct);
	git_tree_free(pt);
	git_commit_free(parent);
	return rc;
}

/* The local commits the remote does not have must be report commits only: those are
 * the ones the re-commit replaces. Anyone else's work stops the push. */
static int local_commits_check(git_repository *r, const git_oid *local, const git_oid *theirs,
			       const char *dir, const push_job *job, cw_error *err)
{
	git_revwalk *walk = NULL;
	git_oid id;
	int rc = -1, next;
	if (git_revwalk_new(&walk, r) < 0 || git_revwalk_push(walk, local) < 0 ||
	    git_revwalk_hide(walk, theirs) < 0) {
		git_fail(err, "branch '%s': cannot walk its history", job->branch_ref);
		goto done;
	}
	while ((next = git_revwalk_next(&id, walk)) == 0) {
		git_commit *c = NULL;
		int only = 0;
		if (git_commit_lookup(&c, r, &id) < 0) {
			git_fail(err, "commit %.7s", git_oid_tostr_s(&id));
			goto done;
		}
		int crc = commit_touches_only(&only, r, c, dir, err);
		git_commit_free(c);
		if (crc != 0)
			goto done;
		if (!only) {
			char hex[GIT_OID_HEXSZ + 1];
			git_oid_tostr(hex, sizeof(hex), &id);
			cw_error_set(err, CW_EGIT, "branch '%s': local commit %.7s changes more than '%s' "
				     "and is not on remote '%s'; merge and push it first, then run again",
				     job->branch_ref, hex, dir, job->remote_name);
			goto done;
		}
	}
	if (next != GIT_ITEROVER) {
		git_fail(err, "branch '%s': cannot walk its history", job->branch_ref);
		goto done;
	}
	rc = 0;
done:
	git_revwalk_free(walk);
	return rc;
}

typedef struct {
	git_index *idx;
	const char *dir;
	int failed;
} subtree_copy;

static int cb_copy_entry(const char *root, const git_tree_entry *entry, void *payload)
{
	subtree_copy *cp = payload;
	if (git_tree_entry_type(entry) == GIT_OBJECT_TREE)
		return 0;
	git_index_entry e;
	memset(&e, 0, sizeof(e));
	char *path = cw_xasprintf("%s/%s%s", cp->dir, root, git_tree_entry_name(entry));
	e.path = path;
	e.mode = git_tree_entry_filemode(entry);
	git_oid_cpy(&e.id, git_tree_entry_id(entry));
	int rc = git_index_add(cp->idx, &e);
	free(path);
	if (rc < 0) {
		cp->failed = 1;
		return -1;
	}
	return 0;
}

/* base's tree with dir replaced by dir as it is in src (absent in src: absent). */
static int tree_with_folder_of(git_oid *out, git_repository *r, const git_tree *base,
			       const git_tree *src, const char *dir, cw_error *err)
{
	git_index *tmp = NULL;
	git_tree_entry *entry = NULL;
	git_tree *sub = NULL;
	int rc = -1;
	if (git_index_new(&tmp) < 0 || git_index_read_tree(tmp, base) < 0 ||
	    index_drop_dir(tmp, dir) < 0)
		goto fail;
	if (git_tree_entry_bypath(&entry, src, dir) == 0 &&
	    git_tree_entry_type(entry) == GIT_OBJECT_TREE) {
		subtree_copy cp = { tmp, dir, 0 };
		if (git_tree_lookup(&sub, r, git_tree_entry_id(entry)) < 0 ||
		    git_tree_walk(sub, GIT_TREEWALK_PRE, cb_copy_entry, &cp) < 0 || cp.failed)
			goto fail;
	}
	if (git_index_write_tree_to(out, tmp, r) < 0)
		goto fail;
	rc = 0;
	goto done;
fail:
	git_fail(err, "report folder '%s': cannot rebuild on top of the remote", dir);
done:
	git_tree_free(sub);
	git_tree_entry_free(entry);
	git_index_free(tmp);
	return rc;
}

typedef struct {
	char path[512];
} checkout_conflict;

static int cb_checkout_notify(git_checkout_notify_t why, const char *path,
			      const git_diff_file *baseline, const git_diff_file *target,
			      const git_diff_file *workdir, void *payload)
{
	checkout_conflict *c = payload;
	if (why == GIT_CHECKOUT_NOTIFY_CONFLICT && !c->path[0] && path)
		snprintf(c->path, sizeof(c->path), "%s", path);
	return 0;
}

/* Brings the work tree and index to target (from HEAD, without touching anyone's local
 * changes: GIT_CHECKOUT_SAFE refuses instead), then moves the branch there. */
static int branch_move_safely(git_repository *r, const push_job *job, const git_oid *target,
			      cw_error *err)
{
	git_commit *c = NULL;
	git_reference *ref = NULL, *moved = NULL;
	checkout_conflict conflict = { "" };
	git_checkout_options co;
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	co.checkout_strategy = GIT_CHECKOUT_SAFE;
	co.notify_flags = GIT_CHECKOUT_NOTIFY_CONFLICT;
	co.notify_cb = cb_checkout_notify;
	co.notify_payload = &conflict;
	int rc = -1;
	if (git_commit_lookup(&c, r, target) < 0) {
		git_fail(err, "commit %.7s", git_oid_tostr_s(target));
		goto done;
	}
	if (git_checkout_tree(r, (const git_object *)c, &co) < 0) {
		if (conflict.path[0])
			cw_error_set(err, CW_EGIT, "work tree '%s': local changes to '%s' conflict with "
				     "what remote '%s' changed; commit or stash them, then run again",
				     git_repository_workdir(r), conflict.path, job->remote_name);
		else
			git_fail(err, "work tree '%s': cannot update to the remote's version",
				 git_repository_workdir(r));
		goto done;
	}
	if (git_reference_lookup(&ref, r, job->branch_ref) < 0 ||
	    git_reference_set_target(&moved, ref, target, "certwright: report on top of the remote") < 0) {
		git_fail(err, "branch '%s': cannot move", job->branch_ref);
		goto done;
	}
	rc = 0;
done:
	git_reference_free(moved);
	git_reference_free(ref);
	git_commit_free(c);
	return rc;
}

/* After a refused push: the report of the local HEAD as a new commit on the remote
 * head, the local branch moved there. 0 = ready to push again, 1 = the remote already
 * has exactly this report (nothing to push), -1 = error. */
static int recommit_on_remote(git_repository *r, push_job *job, const char *dir,
			      const char *message, cw_error *err)
{
	git_oid theirs_id, local_id, base_id, tree_id, new_id;
	git_commit *theirs = NULL, *local = NULL;
	git_tree *theirs_tree = NULL, *local_tree = NULL;
	int rc = -1;
	if (git_repository_state(r) != GIT_REPOSITORY_STATE_NONE) {
		cw_error_set(err, CW_EGIT, "push to remote '%s' refused (%s), and a merge, rebase or "
			     "similar is in progress here; finish it, then run again", job->remote_name,
			     job->refused);
		goto done;
	}
	if (fetch_remote_head(&theirs_id, r, job, err) != 0)
		goto done;
	if (git_reference_name_to_id(&local_id, r, job->branch_ref) < 0 ||
	    git_commit_lookup(&local, r, &local_id) < 0 || git_commit_tree(&local_tree, local) < 0 ||
	    git_commit_lookup(&theirs, r, &theirs_id) < 0 || git_commit_tree(&theirs_tree, theirs) < 0) {
		git_fail(err, "branch '%s'", job->branch_ref);
		goto done;
	}
	/* Already on top of the remote head: the refusal was not about a moved remote
	 * (a hook, a protected branch), and re-committing cannot help. */
	if (git_merge_base(&base_id, r, &local_id, &theirs_id) == 0 && git_oid_equal(&base_id, &theirs_id)) {
		cw_error_set(err, CW_EGIT, "push to remote '%s' refused: %s", job->remote_name,
			     job->refused);
		goto done;
	}
	if (local_commits_check(r, &local_id, &theirs_id, dir, job, err) != 0 ||
	    tree_with_folder_of(&tree_id, r, theirs_tree, local_tree, dir, err) != 0)
		goto done;
	int same = git_oid_equal(&tree_id, git_tree_id(theirs_tree));
	if (same)
		git_oid_cpy(&new_id, &theirs_id);
	else if (commit_make(&new_id, r, NULL, &tree_id, theirs, message, err) != 0)
		goto done;
	if (branch_move_safely(r, job, &new_id, err) != 0)
		goto done;
	rc = same ? 1 : 0;
done:
	git_tree_free(local_tree);
	git_tree_free(theirs_tree);
	git_commit_free(local);
	git_commit_free(theirs);
	return rc;
}

static int push_rounds(git_repository *r, push_job *job, const char *dir, const char *message,
		       cw_error *err)
{
	for (int round = 1; round <= PUSH_ROUNDS; round++) {
		int rc = push_once(job, err);
		if (rc <= 0)
			return rc;
		if (round == PUSH_ROUNDS)
			break;
		rc = recommit_on_remote(r, job, dir, message, err);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
	}
	return cw_error_set(err, CW_EGIT, "push to %s refused %d times: %s", job->remote_name,
			    PUSH_ROUNDS, job->refused);
}

int cw_git_push(const char *repo, const char *report_dir, const char *message, cw_error *err)
{
	char *dir = NULL;
	git_repository *r = NULL;
	push_job job;
	memset(&job, 0, sizeof(job));
	int rc = -1;
	if (relpath_normalise(&dir, "report folder", report_dir, 0, err) == 0 &&
	    repo_open(&r, repo, err) == 0 && push_job_resolve(&job, r, err) == 0)
		rc = push_rounds(r, &job, dir, message, err);
	push_job_release(&job);
	git_repository_free(r);
	free(dir);
	return rc;
}

/* ---------------------------------------------------------------- status */

int cw_git_path_dirty(const char *repo, const char *path, int *dirty, cw_error *err)
{
	*dirty = 0;
	git_repository *r = NULL;
	if (git_repository_open(&r, repo) != 0)
		return cw_error_set(err, CW_EGIT, "repository '%s': %s", repo,
				    git_error_last() ? git_error_last()->message : "cannot open");
	git_status_options opts;
	git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
	char *spec = (char *)path;
	opts.pathspec.strings = &spec;
	opts.pathspec.count = 1;
	opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
		     GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
	git_status_list *list = NULL;
	int rc = 0;
	if (git_status_list_new(&list, r, &opts) != 0)
		rc = cw_error_set(err, CW_EGIT, "repository '%s': status: %s", repo,
				  git_error_last() ? git_error_last()->message : "failed");
	else
		*dirty = git_status_list_entrycount(list) > 0;
	git_status_list_free(list);
	git_repository_free(r);
	return rc;
}
