/*
 * test_git — libgit2 use against real repositories: the git CLI sets them up and is the
 * independent judge of what certwright committed and pushed. Remotes are real bare
 * repositories (local path, and git:// through `git daemon` where server-side hooks
 * must run).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "reconcile/git.h"

static char *g_root;   /* per-process temp root; HOME points into it */

/* Debian's libgit2 1.5.1 leaks inside itself: a pcre2 match block for every config entry
 * git_remote_lookup's url.*.insteadOf scan does not match (fixed upstream after 1.5,
 * libgit2/libgit2#6382), and a few small buffers plus its known_hosts list when the ssh
 * transport connects. Full allocation stacks (slow unwinding: libgit2 has no frame
 * pointers) let the suppressions name exactly those places; every other leak, including
 * a libgit2 object we forget to free, is still reported. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0:malloc_context_size=40";
}

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:pcre2_match_data_create_8\nleak:git_remote_connect_ext\n";
}

/* ---------------------------------------------------------------- helpers */

static char *git_run(const char *dir, const char *const *args, int want_ok)
{
	const char *argv[32] = { "git", "-C", dir };
	size_t n = 3;
	for (size_t i = 0; args[i]; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	char *out = NULL;
	int rc = tu_run(argv, &out);
	if ((rc == 0) != want_ok) {
		fprintf(stderr, "git -C %s %s ... -> %d: %s\n", dir, args[0], rc, out);
		fail();
	}
	return out;
}

#define GIT(dir, ...) free(git_run(dir, (const char *const[]){ __VA_ARGS__, NULL }, 1))
#define GIT_OUT(dir, ...) git_run(dir, (const char *const[]){ __VA_ARGS__, NULL }, 1)

static char *path_in(const char *dir, const char *rel)
{
	return cw_path_join(dir, rel);
}

static void write_in(const char *dir, const char *rel, const char *content)
{
	char *p = path_in(dir, rel);
	char *slash = strrchr(p, '/');
	*slash = '\0';
	cw_error err = { 0 };
	assert_int_equal(cw_mkdirs(p, 0755, &err), 0);
	*slash = '/';
	tu_write(p, content);
	free(p);
}

static int exists_in(const char *dir, const char *rel)
{
	char *p = path_in(dir, rel);
	int e = cw_path_exists(p);
	free(p);
	return e;
}

static char *read_in(const char *dir, const char *rel)
{
	char *p = path_in(dir, rel);
	cw_buf b = CW_BUF_INIT;
	cw_error err = { 0 };
	assert_int_equal(cw_read_file(p, 0, &b, &err), 0);
	free(p);
	return cw_buf_detach(&b);
}

static char *new_dir(const char *name)
{
	char *base = tu_tempdir();
	char *d = cw_path_join(base, name);
	cw_error err = { 0 };
	assert_int_equal(cw_mkdirs(d, 0755, &err), 0);
	free(base);
	return d;
}

/* The temp dir holding d (d was made by new_dir). */
static void drop_dir(char *d)
{
	char *slash = strrchr(d, '/');
	*slash = '\0';
	tu_rmtree(d);
	free(d);
}

static char *head_of(const char *dir, const char *rev)
{
	char *out = GIT_OUT(dir, "rev-parse", rev);
	out[strcspn(out, "\n")] = '\0';
	return out;
}

static char *init_repo(const char *name)
{
	char *d = new_dir(name);
	GIT(d, "init", "-q", "-b", "main");
	return d;
}

static void commit_all(const char *dir, const char *msg)
{
	GIT(dir, "add", "-A");
	GIT(dir, "commit", "-q", "-m", msg);
}

/* A report built by hand: pairs of path, content. */
static void report_set(cw_report *r, const char *path, const char *content)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->files = cw_xrealloc(r->files, r->cap * sizeof(*r->files));
	}
	r->files[r->n].path = cw_xstrdup(path);
	cw_buf_init(&r->files[r->n].content);
	cw_buf_adds(&r->files[r->n].content, content);
	r->n++;
}

static cw_report report_v1(void)
{
	cw_report r = { 0 };
	report_set(&r, "README.md", "# state\n\n| a | b |\n");
	report_set(&r, "certificates/a.json", "{\n  \"serial\": \"01\"\n}\n");
	report_set(&r, "certificates/b.json", "{\n  \"serial\": \"02\"\n}\n");
	return r;
}

/* a.json renewed, b taken out of the inventory */
static cw_report report_v2(void)
{
	cw_report r = { 0 };
	report_set(&r, "README.md", "# state\n\n| a | b |\n");
	report_set(&r, "certificates/a.json", "{\n  \"serial\": \"03\"\n}\n");
	return r;
}

static void commit_report_ok(const char *repo, const cw_report *rep, const char *msg, int want)
{
	cw_error err = { 0 };
	int committed = -1;
	int rc = cw_git_commit_report(repo, "state", rep, msg, &committed, &err);
	if (rc != 0)
		fprintf(stderr, "commit_report: %s\n", err.msg);
	assert_int_equal(rc, 0);
	assert_int_equal(committed, want);
}

static void push_ok(const char *repo, const char *msg)
{
	cw_error err = { 0 };
	int rc = cw_git_push(repo, "state", msg, &err);
	if (rc != 0)
		fprintf(stderr, "push: %s\n", err.msg);
	assert_int_equal(rc, 0);
}

/* A bare remote whose first commit is on main (see testlab.md: an empty remote would
 * leave a libgit2 clone on master). */
static char *make_remote(const char *root)
{
	char *remote = cw_path_join(root, "remote.git");
	char *seed = cw_path_join(root, "seed");
	GIT(root, "init", "-q", "--bare", "-b", "main", remote);
	GIT(root, "init", "-q", "-b", "main", seed);
	write_in(seed, "README.txt", "hello\n");
	write_in(seed, "shared.txt", "line 1\n");
	commit_all(seed, "seed");
	GIT(seed, "push", "-q", remote, "main");
	free(seed);
	return remote;
}

static char *clone_of(const char *root, const char *url, const char *name)
{
	char *d = cw_path_join(root, name);
	GIT(root, "clone", "-q", url, d);
	return d;
}

/* ---------------------------------------------------------------- discover */

static void test_discover(void **state)
{
	char *repo = init_repo("repo");
	write_in(repo, "a/b/c/file", "x");
	char *deep = path_in(repo, "a/b/c");
	char *wd = NULL;
	cw_error err = { 0 };
	assert_int_equal(cw_git_discover(&wd, deep, &err), 0);
	char real[4096];
	assert_non_null(realpath(repo, real));
	assert_string_equal(wd, real);      /* the work tree, no trailing '/' */
	free(wd);

	char *bare = cw_path_join(repo, "../bare.git");
	GIT(repo, "init", "-q", "--bare", bare);
	wd = (char *)1;
	assert_int_equal(cw_git_discover(&wd, bare, &err), -1);
	assert_null(wd);
	assert_int_equal(err.code, CW_EGIT);
	assert_non_null(strstr(err.msg, "is bare"));

	char *plain = new_dir("plain");
	cw_error_clear(&err);
	assert_int_equal(cw_git_discover(&wd, plain, &err), -1);
	assert_int_equal(err.code, CW_EGIT);
	assert_non_null(strstr(err.msg, "not inside a git repository"));
	drop_dir(plain);
	free(bare);
	free(deep);
	drop_dir(repo);
}

/* ---------------------------------------------------------------- read_inventory */

static void assert_files(cw_inventory_file *files, size_t n, const char *const *expect)
{
	size_t i = 0;
	for (; expect[i]; i++) {
		assert_true(i < n);
		assert_string_equal(files[i].name, expect[i]);
	}
	assert_int_equal(n, i);
}

static void read_ok(const char *repo, const char *rev, const char *subdir, cw_inventory_file **files,
		    size_t *n)
{
	cw_error err = { 0 };
	int rc = cw_git_read_inventory(files, n, repo, rev, subdir, &err);
	if (rc != 0)
		fprintf(stderr, "read_inventory: %s\n", err.msg);
	assert_int_equal(rc, 0);
}

static void test_read_inventory_revisions(void **state)
{
	char *repo = init_repo("repo");
	write_in(repo, "examples/inventory/pki.yaml", "version: 1 # first\n");
	write_in(repo, "examples/inventory/targets.yml", "targets: {}\n");
	write_in(repo, "examples/inventory/notes.txt", "not yaml\n");
	write_in(repo, "examples/inventory/nested/deeper.yaml", "ignored: true\n");
	write_in(repo, "top.yaml", "version: 1\n");
	commit_all(repo, "one");
	write_in(repo, "examples/inventory/pki.yaml", "version: 1 # second\n");
	write_in(repo, "examples/inventory/added.yaml", "certificates: {}\n");
	char *link = path_in(repo, "examples/inventory/link.yaml");
	assert_int_equal(symlink("pki.yaml", link), 0);
	commit_all(repo, "two");
	/* uncommitted work must not be seen */
	write_in(repo, "examples/inventory/pki.yaml", "version: 1 # dirty\n");

	cw_inventory_file *files;
	size_t n;
	read_ok(repo, "HEAD~1", "examples/inventory", &files, &n);
	assert_files(files, n, (const char *const[]){ "examples/inventory/pki.yaml",
						     "examples/inventory/targets.yml", NULL });
	assert_string_equal(files[0].data, "version: 1 # first\n");
	assert_int_equal(files[0].len, strlen("version: 1 # first\n"));
	cw_git_free_files(files, n);

	/* trailing slash and "./" are the same folder; a link is not an inventory file */
	read_ok(repo, "HEAD", "./examples/inventory/", &files, &n);
	assert_files(files, n, (const char *const[]){ "examples/inventory/added.yaml",
						     "examples/inventory/pki.yaml",
						     "examples/inventory/targets.yml", NULL });
	assert_string_equal(files[1].data, "version: 1 # second\n");
	cw_git_free_files(files, n);

	read_ok(repo, "main", ".", &files, &n);
	assert_files(files, n, (const char *const[]){ "top.yaml", NULL });
	cw_git_free_files(files, n);

	cw_error err = { 0 };
	files = (cw_inventory_file *)1;
	assert_int_equal(cw_git_read_inventory(&files, &n, repo, "HEAD~1", "nope", &err), -1);
	assert_int_equal(err.code, CW_EGIT);
	assert_string_equal(err.msg, "inventory folder 'nope' does not exist at revision 'HEAD~1'");
	assert_null(files);
	assert_int_equal(n, 0);

	cw_error_clear(&err);
	assert_int_equal(cw_git_read_inventory(&files, &n, repo, "HEAD", "top.yaml", &err), -1);
	assert_string_equal(err.msg, "inventory folder 'top.yaml' does not exist at revision 'HEAD'");

	cw_error_clear(&err);
	assert_int_equal(cw_git_read_inventory(&files, &n, repo, "no-such-branch", "examples", &err), -1);
	assert_int_equal(err.code, CW_EGIT);
	assert_non_null(strstr(err.msg, "revision 'no-such-branch': not found"));

	cw_error_clear(&err);
	assert_int_equal(cw_git_read_inventory(&files, &n, repo, "HEAD", "examples", &err), -1);
	assert_non_null(strstr(err.msg, "inventory folder 'examples' has no .yaml or .yml files"));

	cw_error_clear(&err);
	assert_int_equal(cw_git_read_inventory(&files, &n, repo, "HEAD", "../outside", &err), -1);
	assert_int_equal(err.code, CW_EINVAL);
	free(link);
	drop_dir(repo);
}

/* ---------------------------------------------------------------- commit_report */

static void test_commit_first_on_fresh_repo(void **state)
{
	char *repo = init_repo("repo");
	cw_report rep = report_v1();
	commit_report_ok(repo, &rep, "certwright: first report", 1);

	char *log = GIT_OUT(repo, "log", "--format=%an <%ae>|%s");
	/* no user.name/email anywhere (HOME is empty): the fallback identity */
	assert_string_equal(log, "certwright <certwright@localhost>|certwright: first report\n");
	free(log);
	char *names = GIT_OUT(repo, "show", "--name-only", "--format=", "HEAD");
	assert_string_equal(names, "state/README.md\nstate/certificates/a.json\nstate/certificates/b.json\n");
	free(names);
	char *a = read_in(repo, "state/certificates/a.json");
	assert_string_equal(a, "{\n  \"serial\": \"01\"\n}\n");
	free(a);
	char *status = GIT_OUT(repo, "status", "--porcelain");
	assert_string_equal(status, "");
	free(status);
	cw_report_release(&rep);
	drop_dir(repo);
}

static void test_commit_idempotent_and_selective(void **state)
{
	char *repo = init_repo("repo");
	GIT(repo, "config", "user.name", "Repo Owner");
	GIT(repo, "config", "user.email", "owner@example.net");
	write_in(repo, "other.txt", "original\n");
	write_in(repo, "inventory/pki.yaml", "version: 1\n");
	commit_all(repo, "initial");

	cw_report v1 = report_v1(), v2 = report_v2();
	commit_report_ok(repo, &v1, "report v1", 1);
	char *h1 = head_of(repo, "HEAD");

	/* the same report again: no commit, HEAD unchanged */
	commit_report_ok(repo, &v1, "report v1 again", 0);
	char *h1b = head_of(repo, "HEAD");
	assert_string_equal(h1, h1b);

	/* someone's unrelated work in progress, staged and unstaged, and a stray file in
	 * the report folder */
	write_in(repo, "other.txt", "edited, not committed\n");
	write_in(repo, "staged.txt", "staged, not committed\n");
	GIT(repo, "add", "staged.txt");
	write_in(repo, "state/certificates/stray.json", "{}\n");

	commit_report_ok(repo, &v2, "report v2", 1);
	char *parent = head_of(repo, "HEAD~1");
	assert_string_equal(parent, h1);
	char *names = GIT_OUT(repo, "show", "--name-status", "--format=%an|%s", "HEAD");
	assert_string_equal(names, "Repo Owner|report v2\n\n"
				   "M\tstate/certificates/a.json\n"
				   "D\tstate/certificates/b.json\n");
	free(names);
	assert_false(exists_in(repo, "state/certificates/b.json"));
	assert_false(exists_in(repo, "state/certificates/stray.json"));
	char *status = GIT_OUT(repo, "status", "--porcelain");
	assert_string_equal(status, " M other.txt\nA  staged.txt\n");
	free(status);
	char *other = read_in(repo, "other.txt");
	assert_string_equal(other, "edited, not committed\n");
	free(other);

	/* a report with no certificates: the folder goes away with its files */
	cw_report empty = { 0 };
	report_set(&empty, "README.md", "# state\n\n| a | b |\n");
	commit_report_ok(repo, &empty, "report v3", 1);
	assert_false(exists_in(repo, "state/certificates"));
	char *tree = GIT_OUT(repo, "ls-tree", "-r", "--name-only", "HEAD");
	assert_string_equal(tree, "inventory/pki.yaml\nother.txt\nstate/README.md\n");
	free(tree);

	cw_report_release(&empty);
	free(parent);
	free(h1);
	free(h1b);
	cw_report_release(&v1);
	cw_report_release(&v2);
	drop_dir(repo);
}

static void expect_refused(const char *repo, const char *dir, const cw_report *rep, const char *msg_part)
{
	cw_error err = { 0 };
	int committed = -1;
	assert_int_equal(cw_git_commit_report(repo, dir, rep, "x", &committed, &err), -1);
	assert_int_equal(committed, 0);
	assert_int_equal(err.code, CW_EINVAL);
	if (!strstr(err.msg, msg_part))
		fprintf(stderr, "unexpected message: %s\n", err.msg);
	assert_non_null(strstr(err.msg, msg_part));
}

static void test_commit_refuses_path_escape(void **state)
{
	char *repo = init_repo("repo");
	write_in(repo, "keep.txt", "keep\n");
	commit_all(repo, "initial");
	char *h0 = head_of(repo, "HEAD");
	cw_report rep = report_v1();

	expect_refused(repo, "../outside", &rep, "must stay inside the work tree");
	expect_refused(repo, "state/../../outside", &rep, "must stay inside the work tree");
	expect_refused(repo, "/tmp/abs", &rep, "must be relative to the repository");
	expect_refused(repo, ".git", &rep, "out of .git");
	expect_refused(repo, "state/.GIT", &rep, "out of .git");
	expect_refused(repo, ".", &rep, "must name a folder below the repository root");
	expect_refused(repo, "", &rep, "must name a folder below the repository root");

	cw_report evil = { 0 };
	report_set(&evil, "../escaped.txt", "x");
	expect_refused(repo, "state", &evil, "report file '../escaped.txt'");
	cw_report_release(&evil);

	/* a report folder that is a link out of the work tree */
	char *outside = new_dir("outside");
	char *link = path_in(repo, "state");
	assert_int_equal(symlink(outside, link), 0);
	expect_refused(repo, "state", &rep, "is a symbolic link");
	assert_false(exists_in(outside, "README.md"));
	assert_false(exists_in(outside, "certificates"));

	char *h1 = head_of(repo, "HEAD");
	assert_string_equal(h0, h1);
	assert_false(exists_in(repo, "escaped.txt"));
	free(h0);
	free(h1);
	free(link);
	drop_dir(outside);
	cw_report_release(&rep);
	drop_dir(repo);
}

/* Half-way through a merge, a report commit would change what the merge finishes
 * with: refused, nothing written. */
static void test_commit_refused_during_merge(void **state)
{
	char *repo = init_repo("repo");
	write_in(repo, "shared.txt", "base\n");
	commit_all(repo, "base");
	GIT(repo, "checkout", "-q", "-b", "side");
	write_in(repo, "shared.txt", "side\n");
	commit_all(repo, "side");
	GIT(repo, "checkout", "-q", "main");
	write_in(repo, "shared.txt", "main\n");
	commit_all(repo, "main");
	free(git_run(repo, (const char *const[]){ "merge", "-q", "side", NULL }, 0));
	char *h0 = head_of(repo, "HEAD");

	cw_report rep = report_v1();
	cw_error err = { 0 };
	int committed = -1;
	assert_int_equal(cw_git_commit_report(repo, "state", &rep, "x", &committed, &err), -1);
	assert_int_equal(err.code, CW_EGIT);
	assert_non_null(strstr(err.msg, "a merge, rebase or similar is in progress"));
	assert_int_equal(committed, 0);
	assert_false(exists_in(repo, "state"));
	char *h1 = head_of(repo, "HEAD");
	assert_string_equal(h0, h1);
	free(h0);
	free(h1);
	cw_report_release(&rep);
	drop_dir(repo);
}

/* ---------------------------------------------------------------- push */

static void test_push_to_bare_remote(void **state)
{
	char *root = new_dir("root");
	char *remote = make_remote(root);
	char *a = clone_of(root, remote, "a");
	cw_report rep = report_v1();
	commit_report_ok(a, &rep, "certwright: report", 1);
	push_ok(a, "certwright: report");

	char *log = GIT_OUT(remote, "log", "--format=%s", "main");
	assert_string_equal(log, "certwright: report\nseed\n");
	free(log);
	char *readme = GIT_OUT(remote, "show", "main:state/README.md");
	assert_string_equal(readme, "# state\n\n| a | b |\n");
	free(readme);
	char *local = head_of(a, "HEAD"), *theirs = head_of(remote, "main");
	char *tracking = head_of(a, "refs/remotes/origin/main");
	assert_string_equal(local, theirs);
	assert_string_equal(tracking, theirs);

	/* nothing new: pushing again is fine and changes nothing */
	push_ok(a, "certwright: report");
	char *again = head_of(remote, "main");
	assert_string_equal(again, theirs);
	free(again);
	free(local);
	free(theirs);
	free(tracking);
	cw_report_release(&rep);
	free(a);
	free(remote);
	drop_dir(root);
}

static void test_push_after_remote_moved(void **state)
{
	char *root = new_dir("root");
	char *remote = make_remote(root);
	char *a = clone_of(root, remote, "a");
	char *b = clone_of(root, remote, "b");

	/* b pushes first */
	write_in(b, "inventory/pki.yaml", "version: 1\n");
	commit_all(b, "b: inventory");
	GIT(b, "push", "-q", "origin", "main");
	char *b_head = head_of(b, "HEAD");

	/* a has an unrelated local edit, commits its report and pushes */
	write_in(a, "README.txt", "local edit\n");
	cw_report rep = report_v1();
	commit_report_ok(a, &rep, "certwright: report", 1);
	push_ok(a, "certwright: report");

	char *log = GIT_OUT(remote, "log", "--format=%s", "main");
	assert_string_equal(log, "certwright: report\nb: inventory\nseed\n");
	free(log);
	char *parent = head_of(remote, "main~1");
	assert_string_equal(parent, b_head);
	char *tree = GIT_OUT(remote, "ls-tree", "-r", "--name-only", "main");
	assert_string_equal(tree, "README.txt\ninventory/pki.yaml\nshared.txt\nstate/README.md\n"
				  "state/certificates/a.json\nstate/certificates/b.json\n");
	free(tree);
	char *names = GIT_OUT(remote, "show", "--name-only", "--format=", "main");
	assert_string_equal(names, "state/README.md\nstate/certificates/a.json\nstate/certificates/b.json\n");
	free(names);

	/* a is now on the remote's head, has b's file, and keeps its own edit */
	char *local = head_of(a, "HEAD"), *theirs = head_of(remote, "main");
	assert_string_equal(local, theirs);
	assert_true(exists_in(a, "inventory/pki.yaml"));
	char *status = GIT_OUT(a, "status", "--porcelain");
	assert_string_equal(status, " M README.txt\n");
	free(status);

	free(local);
	free(theirs);
	free(parent);
	free(b_head);
	cw_report_release(&rep);
	free(a);
	free(b);
	free(remote);
	drop_dir(root);
}

static void test_push_conflicting_local_change(void **state)
{
	char *root = new_dir("root");
	char *remote = make_remote(root);
	char *a = clone_of(root, remote, "a");
	char *b = clone_of(root, remote, "b");
	write_in(b, "shared.txt", "line 1 from b\n");
	commit_all(b, "b: shared");
	GIT(b, "push", "-q", "origin", "main");
	char *remote_before = head_of(remote, "main");

	write_in(a, "shared.txt", "line 1 edited in a\n");
	cw_report rep = report_v1();
	commit_report_ok(a, &rep, "certwright: report", 1);
	cw_error err = { 0 };
	assert_int_equal(cw_git_push(a, "state", "certwright: report", &err), -1);
	assert_int_equal(err.code, CW_EGIT);
	assert_non_null(strstr(err.msg, "local changes to 'shared.txt' conflict"));
	char *shared = read_in(a, "shared.txt");
	assert_string_equal(shared, "line 1 edited in a\n");
	char *remote_after = head_of(remote, "main");
	assert_string_equal(remote_before, remote_after);

	free(shared);
	free(remote_before);
	free(remote_after);
	cw_report_release(&rep);
	free(a);
	free(b);
	free(remote);
	drop_dir(root);
}

/* A local commit that is not a report commit must never be dropped by a re-commit. */
static void test_push_keeps_foreign_local_commit(void **state)
{
	char *root = new_dir("root");
	char *remote = make_remote(root);
	char *a = clone_of(root, remote, "a");
	char *b = clone_of(root, remote, "b");
	write_in(b, "b.txt", "b\n");
	commit_all(b, "b: file");
	GIT(b, "push", "-q", "origin", "main");

	write_in(a, "notes.txt", "my notes\n");
	commit_all(a, "a: notes");
	cw_report rep = report_v1();
	commit_report_ok(a, &rep, "certwright: report", 1);
	char *a_before = head_of(a, "HEAD");
	cw_error err = { 0 };
	assert_int_equal(cw_git_push(a, "state", "certwright: report", &err), -1);
	assert_int_equal(err.code, CW_EGIT);
	assert_non_null(strstr(err.msg, "changes more than 'state' and is not on remote 'origin'"));
	char *a_after = head_of(a, "HEAD");
	assert_string_equal(a_before, a_after);
	char *log = GIT_OUT(remote, "log", "--format=%s", "main");
	assert_string_equal(log, "b: file\nseed\n");

	free(log);
	free(a_before);
	free(a_after);
	cw_report_release(&rep);
	free(a);
	free(b);
	free(remote);
	drop_dir(root);
}

/* ---------------------------------------------------------------- git daemon (hooks run) */

typedef struct {
	pid_t pid;
	int port;
	char *url;
} daemon_t;

static daemon_t g_daemon_slot;  /* static: a failed test unwinds its stack */
static daemon_t *g_daemon;       /* the running one, for daemon_teardown */

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	close(s);
	return ntohs(a.sin_port);
}

static int port_open(int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(s);
	return ok;
}

/* git-daemon itself (not the `git daemon` wrapper, which would not pass SIGTERM on), in
 * its own process group so its per-connection children go with it, and told to die with
 * this test process: a failed assertion must not leave a server behind. */
static void daemon_start(daemon_t *d, const char *base)
{
	char *exec_path = GIT_OUT(base, "--exec-path");
	exec_path[strcspn(exec_path, "\n")] = '\0';
	char *binary = cw_path_join(exec_path, "git-daemon");
	/* git-daemon starts a copy of itself per connection, found on PATH */
	char *path_env = cw_xasprintf("%s:%s", exec_path, getenv("PATH") ? getenv("PATH") : "/usr/bin");
	free(exec_path);
	d->port = free_port();
	char port_arg[32], base_arg[4200];
	snprintf(port_arg, sizeof(port_arg), "--port=%d", d->port);
	snprintf(base_arg, sizeof(base_arg), "--base-path=%s", base);
	d->pid = fork();
	assert_true(d->pid >= 0);
	if (d->pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		setenv("PATH", path_env, 1);
		execl(binary, "git-daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
		      "--listen=127.0.0.1", port_arg, base_arg, base, (char *)NULL);
		_exit(127);
	}
	free(binary);
	free(path_env);
	g_daemon = d;
	for (int i = 0; i < 100 && !port_open(d->port); i++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	assert_true(port_open(d->port));
	d->url = cw_xasprintf("git://127.0.0.1:%d/remote.git", d->port);
}

static void daemon_stop(daemon_t *d)
{
	kill(-d->pid, SIGTERM);
	waitpid(d->pid, NULL, 0);
	free(d->url);
	d->url = NULL;
	g_daemon = NULL;
}

/* Runs after every daemon test, passed or failed. */
static int daemon_teardown(void **state)
{
	if (g_daemon)
		daemon_stop(g_daemon);
	return 0;
}

static void hook_install(const char *remote, const char *script)
{
	char *hook = cw_path_join(remote, "hooks/pre-receive");
	tu_write(hook, script);
	assert_int_equal(chmod(hook, 0755), 0);
	free(hook);
}

static int hook_count(const char *remote)
{
	char *s = read_in(remote, "hook-count");
	int n = atoi(s);
	free(s);
	return n;
}

/* A remote that refuses for a reason of its own (not because it moved): no re-commit
 * can help, so certwright stops after the first answer and shows the remote's reason. */
static void test_push_refused_by_hook(void **state)
{
	char *root = new_dir("root");
	char *remote = make_remote(root);
	hook_install(remote, "#!/bin/sh\n"
			     "n=$(cat hook-count 2>/dev/null || echo 0); echo $((n+1)) > hook-count\n"
			     "echo 'protected branch' >&2\nexit 1\n");
	daemon_t *d = &g_daemon_slot;
	daemon_start(d, root);
	char *a = clone_of(root, d->url, "a");
	cw_report rep = report_v1();
	commit_report_ok(a, &rep, "certwright: report", 1);
	cw_error err = { 0 };
	assert_int_equal(cw_git_push(a, "state", "certwright: report", &err), -1);
	assert_int_equal(err.code, CW_EGIT);
	assert_string_equal(err.msg, "push to remote 'origin' refused: refs/heads/main: "
				     "pre-receive hook declined");
	assert_int_equal(hook_count(remote), 1);
	char *log = GIT_OUT(remote, "log", "--format=%s", "main");
	assert_string_equal(log, "seed\n");
	free(log);
	daemon_stop(d);
	cw_report_release(&rep);
	free(a);
	free(remote);
	drop_dir(root);
}

/* A remote that moves on every push attempt (another writer always wins): certwright
 * re-commits on top each time and gives up after 3 attempts. */
static void test_push_gives_up_after_three_rounds(void **state)
{
	char *root = new_dir("root");
	char *remote = make_remote(root);
	hook_install(remote,
		     "#!/bin/sh\n"
		     "unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES\n"
		     "export GIT_AUTHOR_NAME=other GIT_AUTHOR_EMAIL=o@x GIT_COMMITTER_NAME=other "
		     "GIT_COMMITTER_EMAIL=o@x\n"
		     "n=$(cat hook-count 2>/dev/null || echo 0); n=$((n+1)); echo $n > hook-count\n"
		     "old=$(git rev-parse refs/heads/main)\n"
		     "new=$(echo \"other writer $n\" | git commit-tree \"$old^{tree}\" -p \"$old\")\n"
		     "git update-ref refs/heads/main \"$new\" \"$old\"\n"
		     "exit 1\n");
	daemon_t *d = &g_daemon_slot;
	daemon_start(d, root);
	char *a = clone_of(root, d->url, "a");
	cw_report rep = report_v1();
	commit_report_ok(a, &rep, "certwright: report", 1);
	cw_error err = { 0 };
	assert_int_equal(cw_git_push(a, "state", "certwright: report", &err), -1);
	assert_int_equal(err.code, CW_EGIT);
	assert_string_equal(err.msg, "push to origin refused 3 times: refs/heads/main: "
				     "pre-receive hook declined");
	assert_int_equal(hook_count(remote), 3);
	/* a was re-committed on top of the second writer's commit, report intact */
	char *log = GIT_OUT(a, "log", "--format=%s", "-3", "HEAD");
	assert_string_equal(log, "certwright: report\nother writer 2\nother writer 1\n");
	free(log);
	char *names = GIT_OUT(a, "show", "--name-only", "--format=", "HEAD");
	assert_string_equal(names, "state/README.md\nstate/certificates/a.json\nstate/certificates/b.json\n");
	free(names);
	char *status = GIT_OUT(a, "status", "--porcelain");
	assert_string_equal(status, "");
	free(status);
	daemon_stop(d);
	cw_report_release(&rep);
	free(a);
	free(remote);
	drop_dir(root);
}

/* ---------------------------------------------------------------- ssh (host keys) */

/* A private sshd on loopback in front of the bare remote, an ssh-agent holding the
 * client key: the real transport, so the known_hosts check is exercised end to end. */
typedef struct {
	pid_t sshd, agent;
	int port;
	char *dir, *url, *host_pub, *sock;
} ssh_lab;

static ssh_lab g_ssh;

static pid_t spawn_quiet(const char *const *argv)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static void wait_for(int (*ready)(const char *, int), const char *path, int port)
{
	for (int i = 0; i < 100 && !ready(path, port); i++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	assert_true(ready(path, port));
}

static int sock_exists(const char *path, int port)
{
	return cw_path_exists(path);
}

static int tcp_ready(const char *path, int port)
{
	return port_open(port);
}

static void ssh_keygen(const char *path)
{
	const char *argv[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path, NULL };
	char *out = NULL;
	assert_int_equal(tu_run(argv, &out), 0);
	free(out);
}

static void ssh_lab_start(ssh_lab *lab, const char *root, const char *remote)
{
	lab->dir = cw_path_join(root, "ssh");
	cw_error err = { 0 };
	assert_int_equal(cw_mkdirs(lab->dir, 0700, &err), 0);
	assert_int_equal(cw_mkdirs("/run/sshd", 0755, &err), 0);
	char *host_key = cw_path_join(lab->dir, "host_key");
	char *user_key = cw_path_join(lab->dir, "user_key");
	ssh_keygen(host_key);
	ssh_keygen(user_key);
	lab->host_pub = cw_xasprintf("%s.pub", host_key);
	char *user_pub = read_in(lab->dir, "user_key.pub");
	write_in(lab->dir, "authorized_keys", user_pub);
	free(user_pub);

	lab->port = free_port();
	char *config = cw_xasprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\n"
				    "PidFile %s/sshd.pid\nAuthorizedKeysFile %s/authorized_keys\n"
				    "UsePAM no\nStrictModes no\nPasswordAuthentication no\n"
				    "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n",
				    lab->port, host_key, lab->dir, lab->dir);
	write_in(lab->dir, "sshd_config", config);
	free(config);
	char *config_path = cw_path_join(lab->dir, "sshd_config");
	const char *sshd[] = { "/usr/sbin/sshd", "-D", "-e", "-f", config_path, NULL };
	lab->sshd = spawn_quiet(sshd);
	wait_for(tcp_ready, NULL, lab->port);

	lab->sock = cw_path_join(lab->dir, "agent.sock");
	const char *agent[] = { "/usr/bin/ssh-agent", "-D", "-a", lab->sock, NULL };
	lab->agent = spawn_quiet(agent);
	wait_for(sock_exists, lab->sock, 0);
	setenv("SSH_AUTH_SOCK", lab->sock, 1);
	const char *add[] = { "ssh-add", "-q", user_key, NULL };
	char *out = NULL;
	assert_int_equal(tu_run(add, &out), 0);
	free(out);

	lab->url = cw_xasprintf("ssh://root@127.0.0.1:%d%s", lab->port, remote);
	free(config_path);
	free(host_key);
	free(user_key);
}

static int ssh_lab_teardown(void **state)
{
	ssh_lab *lab = &g_ssh;
	if (lab->sshd > 0) {
		kill(-lab->sshd, SIGTERM);
		waitpid(lab->sshd, NULL, 0);
	}
	if (lab->agent > 0) {
		kill(-lab->agent, SIGTERM);
		waitpid(lab->agent, NULL, 0);
	}
	unsetenv("SSH_AUTH_SOCK");
	char *known = cw_path_join(getenv("HOME"), ".ssh");
	tu_rmtree(known);
	free(known);
	free(lab->dir);
	free(lab->url);
	free(lab->host_pub);
	free(lab->sock);
	memset(lab, 0, sizeof(*lab));
	return 0;
}

/* "SHA256:..." of the host key, as ssh-keygen prints it. */
static char *host_fingerprint(const ssh_lab *lab)
{
	const char *argv[] = { "ssh-keygen", "-l", "-E", "sha256", "-f", lab->host_pub, NULL };
	char *out = NULL;
	assert_int_equal(tu_run(argv, &out), 0);
	char *start = strstr(out, "SHA256:");
	assert_non_null(start);
	char *fp = cw_xstrndup(start, strcspn(start, " "));
	free(out);
	return fp;
}

static void known_hosts_write(const ssh_lab *lab, const char *pub_path)
{
	char *home_ssh = cw_path_join(getenv("HOME"), ".ssh");
	cw_error err = { 0 };
	assert_int_equal(cw_mkdirs(home_ssh, 0700, &err), 0);
	cw_buf pub = CW_BUF_INIT;
	assert_int_equal(cw_read_file(pub_path, 0, &pub, &err), 0);
	/* a comment and a line libssh2 does not understand must not hide the real entry */
	char *line = cw_xasprintf("# lab\n@cert-authority *.example.net ssh-ed25519 AAAA\n"
				  "[127.0.0.1]:%d %s", lab->port, pub.buf);
	write_in(home_ssh, "known_hosts", line);
	free(line);
	cw_buf_release(&pub);
	free(home_ssh);
}

static void test_push_over_ssh_checks_host_key(void **state)
{
	if (geteuid() != 0 || !cw_path_exists("/usr/sbin/sshd"))
		skip();
	char *root = new_dir("root");
	char *remote = make_remote(root);
	ssh_lab *lab = &g_ssh;
	ssh_lab_start(lab, root, remote);
	char *a = clone_of(root, remote, "a");
	GIT(a, "remote", "set-url", "origin", lab->url);
	cw_report rep = report_v1();
	commit_report_ok(a, &rep, "certwright: report over ssh", 1);
	char *fp = host_fingerprint(lab);

	/* unknown host: refused, with the fingerprint to check */
	cw_error err = { 0 };
	assert_int_equal(cw_git_push(a, "state", "certwright: report over ssh", &err), -1);
	assert_int_equal(err.code, CW_EGIT);
	char *want = cw_xasprintf("push to remote 'origin': host '127.0.0.1' is not in known_hosts; "
				  "check that its host key is %s and add it", fp);
	if (!strstr(err.msg, want))
		fprintf(stderr, "got: %s\n", err.msg);
	assert_non_null(strstr(err.msg, want));
	free(want);

	/* a different key on record for this host: refused */
	char *other = cw_path_join(lab->dir, "other_key");
	ssh_keygen(other);
	char *other_pub = cw_xasprintf("%s.pub", other);
	known_hosts_write(lab, other_pub);
	cw_error_clear(&err);
	assert_int_equal(cw_git_push(a, "state", "certwright: report over ssh", &err), -1);
	assert_non_null(strstr(err.msg, "push to remote 'origin': host key SHA256:"));
	assert_non_null(strstr(err.msg, "of '127.0.0.1' does not match known_hosts"));
	char *log = GIT_OUT(remote, "log", "--format=%s", "main");
	assert_string_equal(log, "seed\n");
	free(log);

	/* the right host key, but the agent holds a key the server does not know */
	known_hosts_write(lab, lab->host_pub);
	const char *swap[] = { "ssh-add", "-q", "-D", NULL };
	char *out = NULL;
	assert_int_equal(tu_run(swap, &out), 0);
	free(out);
	const char *add_other[] = { "ssh-add", "-q", other, NULL };
	assert_int_equal(tu_run(add_other, &out), 0);
	free(out);
	cw_error_clear(&err);
	assert_int_equal(cw_git_push(a, "state", "certwright: report over ssh", &err), -1);
	assert_string_equal(err.msg, "push to remote 'origin': the ssh server accepted none of the "
				     "keys in ssh-agent");

	/* the right key: pushed, with the ssh-agent's key */
	char *user_key = cw_path_join(lab->dir, "user_key");
	const char *add_user[] = { "ssh-add", "-q", user_key, NULL };
	assert_int_equal(tu_run(add_user, &out), 0);
	free(out);
	free(user_key);
	push_ok(a, "certwright: report over ssh");
	log = GIT_OUT(remote, "log", "--format=%s", "main");
	assert_string_equal(log, "certwright: report over ssh\nseed\n");
	free(log);

	free(other);
	free(other_pub);
	free(fp);
	cw_report_release(&rep);
	free(a);
	free(remote);
	ssh_lab_teardown(NULL);
	drop_dir(root);
}

/* ---------------------------------------------------------------- main */

static int group_setup(void **state)
{
	g_root = tu_tempdir();
	char *home = cw_path_join(g_root, "home");
	cw_error err = { 0 };
	assert_int_equal(cw_mkdirs(home, 0700, &err), 0);
	/* no user identity anywhere but what a test sets: the fallback is observable */
	setenv("HOME", home, 1);
	unsetenv("XDG_CONFIG_HOME");
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_AUTHOR_NAME", "Test Person", 1);
	setenv("GIT_AUTHOR_EMAIL", "test@example.net", 1);
	setenv("GIT_COMMITTER_NAME", "Test Person", 1);
	setenv("GIT_COMMITTER_EMAIL", "test@example.net", 1);
	free(home);
	cw_git_init();
	return 0;
}

static int group_teardown(void **state)
{
	cw_git_shutdown();
	tu_rmtree(g_root);
	free(g_root);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_discover),
		cmocka_unit_test(test_read_inventory_revisions),
		cmocka_unit_test(test_commit_first_on_fresh_repo),
		cmocka_unit_test(test_commit_idempotent_and_selective),
		cmocka_unit_test(test_commit_refuses_path_escape),
		cmocka_unit_test(test_commit_refused_during_merge),
		cmocka_unit_test(test_push_to_bare_remote),
		cmocka_unit_test(test_push_after_remote_moved),
		cmocka_unit_test(test_push_conflicting_local_change),
		cmocka_unit_test(test_push_keeps_foreign_local_commit),
		cmocka_unit_test_teardown(test_push_refused_by_hook, daemon_teardown),
		cmocka_unit_test_teardown(test_push_gives_up_after_three_rounds, daemon_teardown),
		cmocka_unit_test_teardown(test_push_over_ssh_checks_host_key, ssh_lab_teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
