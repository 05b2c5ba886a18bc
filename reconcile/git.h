/*
 * git — everything certwright does with git, through libgit2: finding the repository,
 * reading the inventory at a revision without checking it out, committing the report,
 * pushing it (and re-committing it on top of a remote that moved).
 * Call cw_git_init() once per process before anything else here.
 */
#ifndef CW_GIT_H
#define CW_GIT_H

#include "common/util.h"
#include "reconcile/inventory.h"
#include "reconcile/report.h"

void cw_git_init(void);
void cw_git_shutdown(void);

/* The work tree root of the repository containing path (caller frees). */
int cw_git_discover(char **workdir, const char *path, cw_error *err);

/* The *.yaml / *.yml files directly in subdir at revision rev (any rev-parse spec).
 * names are "subdir/file.yaml"; everything is heap memory freed by cw_git_free_files. */
int cw_git_read_inventory(cw_inventory_file **files, size_t *n, const char *repo, const char *rev,
			  const char *subdir, cw_error *err);
void cw_git_free_files(cw_inventory_file *files, size_t n);

/* Makes <repo>/<report_dir> exactly the report (writing and deleting files there only),
 * stages that folder alone, and commits on HEAD when the staged tree differs. Other
 * changes in the work tree or index are left as they are. *committed = 1 when a
 * commit was made. Author/committer: the repository's user.name/email, else
 * "certwright <certwright@localhost>". */
int cw_git_commit_report(const char *repo, const char *report_dir, const cw_report *report,
			 const char *message, int *committed, cw_error *err);

/* *dirty = 1 when anything under path (relative to the work tree) differs from HEAD:
 * modified, staged, new (untracked) or deleted files. */
int cw_git_path_dirty(const char *repo, const char *path, int *dirty, cw_error *err);

/* Pushes the current branch to its upstream (or "origin", same branch name). When the
 * remote moved and the push is refused, fetches, makes a new commit of the report folder
 * on top of the remote head, fast-forwards the local branch to it, and pushes again
 * (at most 3 rounds). Credentials: ssh-agent for ssh remotes. */
int cw_git_push(const char *repo, const char *report_dir, const char *message, cw_error *err);

#endif
