/*
 * engine — load, observe, diff; and apply, whose phases live in apply_*.c (apply.h).
 *
 * Apply order and what is recorded before the next step (so a crash anywhere leaves a
 * state the next run completes without issuing twice):
 *   1. authorities, one at a time: key + certificate made durable, then the index entry
 *      (the commit point) — leaves signed later always find their issuer recorded;
 *   2. leaves, in parallel workers: keys and certificates written without fsync, one
 *      syncfs, then ONE index write per authority for the whole batch;
 *   3. deployments, one worker per target, up to --parallel at once: journal "started",
 *      deploy, bind, activate, verify the fingerprint from outside, clean up the previous
 *      certificate, journal "ok" (or "failed" with the error). A deploy that failed after
 *      issuance is retried next run with the certificate already issued;
 *   4. client bundles, then revocations (one batch), then CRLs signed from the index and
 *      put on the targets that take them;
 *   5. the report, committed to git (and pushed when asked).
 * The keystore is locked before its state is read; a stop request (SIGTERM) ends the run
 * between steps.
 */
#include "reconcile/engine.h"
#include "reconcile/apply.h"

#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cancel.h"
#include "common/secret.h"
#include "reconcile/git.h"
#include "reconcile/inventory.h"
#include "reconcile/keystore.h"
#include "reconcile/live.h"
#include "reconcile/report.h"
#include "reconcile/state.h"


void run_log(const cw_options *o, int level, const char *fmt, ...)
{
	if (!o->log)
		return;
	cw_buf b = CW_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cw_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	o->log(o->log_ud, level, b.buf);
	cw_buf_release(&b);
}

void run_target_log(void *ud, int level, const char *target, const char *msg)
{
	const cw_options *o = ud;
	run_log(o, level, "target '%s': %s", target, msg);
}

/* ---- loading ---- */

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *inventory_folder(const cw_options *o)
{
	const char *dir = o->inventory_dir ? o->inventory_dir : "inventory";
	if (dir[0] == '/' || !o->repo_dir)
		return cw_xstrdup(dir);
	return cw_path_join(o->repo_dir, dir);
}

static int load_inventory(run_ctx *r, cw_diags *diags, cw_error *err)
{
	const cw_options *o = r->o;
	memset(&r->inv, 0, sizeof(r->inv));
	if (o->ref) {
		if (!o->repo_dir)
			return cw_error_set(err, CW_EINVAL, "--ref needs a git repository (-C REPO)");
		cw_inventory_file *files = NULL;
		size_t n = 0;
		const char *sub = o->inventory_dir ? o->inventory_dir : "inventory";
		if (cw_git_read_inventory(&files, &n, o->repo_dir, o->ref, sub, err) != 0)
			return -1;
		int rc = cw_inventory_load_files(&r->inv, files, n, o->now, diags);
		cw_git_free_files(files, n);
		return rc;
	}
	r->inventory_path = inventory_folder(o);
	const char *shown = o->inventory_dir ? o->inventory_dir : "inventory";
	if (!cw_path_exists(r->inventory_path))
		return cw_error_set(err, CW_EINVAL, "%s: no inventory folder here%s", r->inventory_path,
				    o->repo_dir ? " (--inventory DIR names another one, relative to "
						  "the repository root)"
						: ", and not inside a git repository: use -C REPO or "
						  "--inventory DIR");
	return cw_inventory_load_dir(&r->inv, r->inventory_path, shown, o->now, diags, err);
}

int cw_engine_validate(const cw_options *o, cw_diags *diags, cw_error *err)
{
	run_ctx r = { .o = o, .repo_lock_fd = -1, .record_mu = PTHREAD_MUTEX_INITIALIZER };
	int rc = load_inventory(&r, diags, err);
	cw_inventory_release(&r.inv);
	free(r.inventory_path);
	if (err->code)
		return -1;
	return rc;
}

static int open_keystore(run_ctx *r, int create, cw_error *err)
{
	char *dir = r->o->keystore_dir ? cw_xstrdup(r->o->keystore_dir)
				       : cw_keystore_default_dir(r->o->repo_dir ? r->o->repo_dir : ".");
	int exists = cw_path_exists(dir);
	int rc = 0;
	char *repo = exists ? NULL : cw_git_worktree_of(dir);
	if (repo) /* a plan would not notice until apply creates it */
		rc = cw_error_set(err, CW_EINVAL, "keystore %s is inside the git work tree at %s: "
				  "keys must live outside the repository (--keystore, CERTWRIGHT_KEYSTORE)",
				  dir, repo);
	else if (exists || create)
		rc = cw_keystore_open(&r->ks, dir, create, err);
	free(repo);
	free(dir);
	return rc;
}

/* Work folders of runs that were killed (SIGKILL, power loss) are removed by the next
 * run: each holds the pid of its run, and a folder whose run is gone is garbage. */
static void sweep_dead_work_dirs(const char *base)
{
	DIR *d = opendir(base);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "certwright.", 11))
			continue;
		char *dir = cw_path_join(base, e->d_name);
		char *pidfile = cw_path_join(dir, "pid");
		cw_buf b = CW_BUF_INIT;
		cw_error ignored = { 0 };
		struct stat st;
		if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
		    cw_read_file(pidfile, 64, &b, &ignored) == 0) {
			long pid = strtol(b.buf, NULL, 10);
			if (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
				cw_remove_tree(dir);
		}
		cw_buf_release(&b);
		free(pidfile);
		free(dir);
	}
	closedir(d);
}

static int make_work_dir(run_ctx *r, cw_error *err)
{
	const char *base = getenv("TMPDIR");
	base = base && *base ? base : "/tmp";
	sweep_dead_work_dirs(base);
	char *tmpl = cw_xasprintf("%s/certwright.XXXXXX", base);
	if (!mkdtemp(tmpl)) {
		cw_error_set(err, CW_EIO, "%s: cannot create a private work folder: %s", tmpl,
			     strerror(errno));
		free(tmpl);
		return -1;
	}
	r->work_dir = tmpl;
	char *pidfile = cw_path_join(tmpl, "pid");
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	int rc = cw_write_file_atomic_nosync(pidfile, pid, (size_t)n, 0600, err);
	free(pidfile);
	return rc;
}


static void run_release(run_ctx *r)
{
	cw_live_release(&r->live);
	cw_state_release(&r->st);
	if (r->ks)
		cw_keystore_close(r->ks);
	cw_inventory_release(&r->inv);
	free(r->inventory_path);
	if (r->work_dir) {
		cw_remove_tree(r->work_dir);
		free(r->work_dir);
	}
	if (r->repo_lock_fd >= 0)
		close(r->repo_lock_fd);
}

static int observe(run_ctx *r, cw_error *err)
{
	const cw_options *o = r->o;
	cw_observe_opts oo = {
		.parallel = o->parallel > 0 ? o->parallel : 4,
		.timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000,
		.work_dir = r->work_dir,
		.only_targets = o->filter.only_targets,
		.nonly_targets = o->filter.nonly_targets,
		.log = run_target_log,
		.log_ud = (void *)o,
	};
	if (cw_observe(&r->live, &r->inv, r->st.deploys, r->st.ndeploys, &oo, err) != 0)
		return -1;
	/* client bundles: a deleted one is written again */
	for (size_t i = 0; i < r->inv.ncertificates; i++) {
		const cw_certificate *c = &r->inv.certificates[i];
		if (!c->export.enabled || !c->export.path)
			continue;
		char *p12 = cw_xasprintf("%s/%s.p12", c->export.path, c->name);
		cw_live_add_local(&r->live, "@export", c->name, cw_path_exists(p12));
		free(p12);
	}
	return 0;
}

/* The report committed in git names every authority certwright created, with its serial.
 * A keystore that does not know that serial is the wrong keystore (another path, user or
 * machine, a typo in --keystore): planning on it would silently build a second PKI, so
 * it is an error that names both places. */
static void check_keystore_matches_report(run_ctx *r, cw_diags *diags)
{
	if (!r->o->repo_dir || !r->inv.report_dir)
		return;
	for (size_t i = 0; i < r->inv.nauthorities; i++) {
		const cw_authority *ca = &r->inv.authorities[i];
		char *rel = cw_xasprintf("%s/authorities/%s.json", r->inv.report_dir, ca->name);
		char *path = cw_path_join(r->o->repo_dir, rel);
		json_t *doc = json_load_file(path, 0, NULL);
		const char *serial = json_string_value(json_object_get(doc, "serial"));
		if (serial && !run_find_entry(&r->st, ca->name, serial)) {
			const char *ks = r->ks ? cw_keystore_dir(r->ks) : "(none yet)";
			cw_diag *x = cw_diag_add(diags, CW_SEV_ERROR, &ca->pos, "keystore.mismatch",
				"point certwright at the keystore that issued it (--keystore or "
				"CERTWRIGHT_KEYSTORE); to start a new PKI on purpose, delete the report folder",
				"authority '%s': %s records serial %s, but the keystore %s does not know it: "
				"wrong keystore?", ca->name, rel, serial, ks);
			x->certificate = cw_xstrdup(ca->name);
		}
		json_decref(doc);
		free(path);
		free(rel);
	}
}

/* --target/--certificate names that name nothing would turn a typo into "no changes". */
static void check_filters(run_ctx *r, cw_diags *diags)
{
	const cw_diff_filter *f = &r->o->filter;
	for (size_t i = 0; i < f->nonly_targets; i++)
		if (!cw_inventory_target(&r->inv, f->only_targets[i]))
			cw_diag_add(diags, CW_SEV_ERROR, NULL, "filter.unknown", NULL,
				    "--target %s: no such target in the inventory", f->only_targets[i]);
	for (size_t i = 0; i < f->nonly_certificates; i++)
		if (!cw_inventory_certificate(&r->inv, f->only_certificates[i]) &&
		    !cw_inventory_authority(&r->inv, f->only_certificates[i]))
			cw_diag_add(diags, CW_SEV_ERROR, NULL, "filter.unknown", NULL,
				    "--certificate %s: no such certificate or authority in the inventory",
				    f->only_certificates[i]);
}

/* Problems apply would only meet half-way through, found while planning. */
static void check_before_apply(run_ctx *r, cw_plan *plan)
{
	for (size_t i = 0; i < plan->n; i++) {
		const cw_action *a = &plan->actions[i];
		if (a->kind != CW_ACT_EXPORT)
			continue;
		const cw_certificate *c = cw_inventory_certificate(&r->inv, a->name);
		if (!c)
			continue;
		cw_buf pass = CW_BUF_INIT;
		cw_error e = { 0 };
		if (cw_secret_resolve(c->export.passphrase, &pass, &e) != 0) {
			cw_diag *x = cw_diag_add(&plan->diags, CW_SEV_ERROR, &c->export.pos, "export.secret",
						 NULL, "certificate '%s' export: %s", c->name, e.msg);
			x->certificate = cw_xstrdup(c->name);
		}
		cw_buf_release_secret(&pass);
		char *repo = cw_git_worktree_of(c->export.path);
		if (repo) {
			cw_diag *x = cw_diag_add(&plan->diags, CW_SEV_ERROR, &c->export.pos, "export.path",
						 "a bundle holds a private key: export outside any repository",
						 "certificate '%s' export: %s is inside the git work tree at %s",
						 c->name, c->export.path, repo);
			x->certificate = cw_xstrdup(c->name);
			free(repo);
		}
	}
}

/* Loads inventory, state and live state and diffs them. On inventory errors the plan
 * carries the diagnostics and nothing is observed. */
/* create_keystore: apply's mode — the keystore is made when missing and LOCKED before the
 * state is read, so two runs sharing a keystore (two clones, two repositories) never act
 * on the same state: the second waits for nothing and fails at once. */
static int build_plan(run_ctx *r, cw_plan *plan, int create_keystore, cw_error *err)
{
	double t0 = now_seconds();
	if (load_inventory(r, &plan->diags, err) != 0) {
		if (err->code)
			return -1;
		memcpy(plan->inventory_digest, r->inv.digest, sizeof(plan->inventory_digest));
		plan->now = r->o->now;
		return 0;
	}
	check_filters(r, &plan->diags);
	if (open_keystore(r, create_keystore, err) != 0)
		return -1;
	if (create_keystore && (!r->ks || cw_keystore_lock(r->ks, err) != 0))
		return r->ks ? -1 : cw_error_set(err, CW_EINTERNAL, "no keystore");
	if (cw_state_load(&r->st, r->ks, err) != 0)
		return -1;
	check_keystore_matches_report(r, &plan->diags);
	double t1 = now_seconds();
	if (make_work_dir(r, err) != 0 || observe(r, err) != 0)
		return -1;
	double t2 = now_seconds();
	int rc = cw_diff(plan, &r->inv, &r->st, &r->live, r->o->now, &r->o->filter);
	check_before_apply(r, plan);
	run_log(r->o, CW_LOG_DEBUG, "load %.3f s, observe %.3f s, diff %.3f s", t1 - t0, t2 - t1,
	      now_seconds() - t2);
	return rc;
}

int cw_engine_plan(const cw_options *o, cw_plan *plan, cw_error *err)
{
	run_ctx r = { .o = o, .repo_lock_fd = -1, .record_mu = PTHREAD_MUTEX_INITIALIZER };
	cw_plan_init(plan);
	int rc = build_plan(&r, plan, 0, err);
	run_release(&r);
	return rc;
}

/* ---- locking ---- */

static int lock_repo(run_ctx *r, cw_error *err)
{
	if (!r->o->repo_dir)
		return 0;
	char *gitdir = cw_path_join(r->o->repo_dir, ".git");
	char *path = cw_path_join(gitdir, "certwright.lock");
	free(gitdir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(path);
		return 0; /* not a plain .git folder (worktree file, bare): the keystore lock still holds */
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		cw_error_set(err, CW_ELOCKED,
			     "%s: another certwright apply is running on this inventory (pid %s)", path,
			     *pid ? pid : "unknown");
		free(path);
		return -1;
	}
	free(path);
	/* who holds it, for the message another run prints */
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
		run_log(r->o, CW_LOG_DEBUG, "could not note our pid in the lock file");
	r->repo_lock_fd = fd;
	return 0;
}

/* ---- results ---- */

void run_add_result(cw_apply_result *res, const cw_action *a, int ok, const char *error)
{
	res->steps = cw_xrealloc(res->steps, (res->nsteps + 1) * sizeof(*res->steps));
	cw_step_result *s = &res->steps[res->nsteps++];
	s->kind = cw_xstrdup(cw_action_kind_name(a->kind));
	s->name = cw_xstrdup(a->name);
	s->target = cw_xstrdup(a->target);
	s->ok = ok;
	s->error = cw_xstrdup(error);
	if (!ok)
		res->failed++;
}

void cw_apply_result_release(cw_apply_result *r)
{
	cw_plan_release(&r->plan);
	for (size_t i = 0; i < r->nsteps; i++) {
		free(r->steps[i].kind);
		free(r->steps[i].name);
		free(r->steps[i].target);
		free(r->steps[i].error);
	}
	free(r->steps);
	free(r->commit_message);
	memset(r, 0, sizeof(*r));
}

/* ---- lookups the phases share ---- */

/* ---- revocation (after deploys: superseded ones wait for their replacement) ---- */

int run_deps_ok(const cw_action *a, const int *action_ok)
{
	if (cw_cancel_requested())
		return 0; /* interrupted: the rest waits for the next run */
	for (size_t d = 0; d < a->ndeps; d++)
		if (!action_ok[a->deps[d]])
			return 0;
	return 1;
}

const cw_issued *run_find_entry(const cw_state *st, const char *name, const char *serial)
{
	for (size_t i = 0; i < st->nissued; i++)
		if (!strcmp(st->issued[i].name, name) && !strcmp(st->issued[i].serial, serial))
			return &st->issued[i];
	return NULL;
}

const cw_deployment *run_find_deployment(const cw_certificate *cert, const char *target)
{
	for (size_t i = 0; cert && i < cert->ndeploy; i++)
		if (!strcmp(cert->deploy[i].target, target))
			return &cert->deploy[i];
	return NULL;
}

/* ---- the report ---- */

static char *commit_message(const cw_plan *plan, const cw_apply_result *res)
{
	cw_buf b = CW_BUF_INIT;
	size_t ok = res->nsteps - res->failed;
	cw_buf_addf(&b, "certwright: %zu action(s) applied", ok);
	if (res->failed)
		cw_buf_addf(&b, ", %zu failed", res->failed);
	cw_buf_adds(&b, "\n\n");
	for (size_t i = 0; i < res->nsteps; i++) {
		const cw_step_result *s = &res->steps[i];
		cw_buf_addf(&b, "- %s %s%s%s%s%s\n", s->kind, s->name, s->target ? " -> " : "",
			    s->target ? s->target : "", s->ok ? "" : ": FAILED: ",
			    s->ok ? "" : s->error ? s->error : "");
	}
	(void)plan;
	return cw_buf_detach(&b);
}

static int write_report(run_ctx *r, cw_apply_result *res, cw_error *err)
{
	const cw_options *o = r->o;
	if (!o->commit || !o->repo_dir)
		return 0;
	cw_report rep;
	memset(&rep, 0, sizeof(rep));
	if (cw_report_build(&rep, &r->inv, &r->st, r->ks, err) != 0) {
		cw_report_release(&rep);
		return -1;
	}
	res->commit_message = res->nsteps ? commit_message(&res->plan, res)
					  : cw_xstrdup("certwright: state report");
	int rc = cw_git_commit_report(o->repo_dir, r->inv.report_dir, &rep, res->commit_message,
				      &res->committed, err);
	cw_report_release(&rep);
	if (rc == 0 && o->push)
		rc = cw_git_push(o->repo_dir, r->inv.report_dir, res->commit_message, err);
	return rc;
}

/* ---- apply ---- */

static int needs_keys(const cw_plan *p)
{
	return cw_plan_count(p, -1) > 0;
}

static int check_saved(const cw_plan *saved, const cw_plan *now, cw_error *err)
{
	if (strcmp(saved->inventory_digest, now->inventory_digest))
		return cw_error_set(err, CW_ESTALE, "saved plan is stale: the inventory changed since "
				    "it was made; run plan again");
	if (strcmp(saved->state_digest, now->state_digest))
		return cw_error_set(err, CW_ESTALE, "saved plan is stale: certwright's recorded state "
				    "changed since it was made (another apply?); run plan again");
	if (strcmp(saved->live_digest, now->live_digest))
		return cw_error_set(err, CW_ESTALE, "saved plan is stale: what the targets hold "
				    "changed since it was made; run plan again");
	if (!cw_plan_same_actions(saved, now))
		return cw_error_set(err, CW_ESTALE, "saved plan is stale: the actions differ from a "
				    "fresh plan (was it made with another --now or filters?)");
	return 0;
}

/* apply acts on the work tree's inventory but commits its report on top of HEAD: say so
 * when the two differ, so a report never silently describes an inventory git lacks. */
static void warn_uncommitted_inventory(run_ctx *r, cw_plan *plan)
{
	if (!r->o->repo_dir || r->o->ref)
		return;
	const char *dir = r->o->inventory_dir ? r->o->inventory_dir : "inventory";
	int dirty = 0;
	cw_error e = { 0 };
	if (cw_git_path_dirty(r->o->repo_dir, dir, &dirty, &e) == 0 && dirty)
		cw_diag_add(&plan->diags, CW_SEV_WARNING, NULL, "inventory.uncommitted",
			    "commit the inventory first, so the report and the inventory in git agree",
			    "the inventory folder '%s' has uncommitted changes: apply uses them", dir);
}

static int prepare_apply(run_ctx *r, cw_plan *plan, const cw_plan *saved, cw_error *err)
{
	const cw_options *o = r->o;
	if (lock_repo(r, err) != 0)
		return -1;
	if (build_plan(r, plan, 1, err) != 0)
		return -1;
	size_t blocking = cw_plan_blocking_errors(plan);
	if (blocking)
		return cw_error_set(err, CW_EINVAL, "the plan has %zu error(s); nothing was applied",
				    blocking);
	if (saved && check_saved(saved, plan, err) != 0)
		return -1;
	warn_uncommitted_inventory(r, plan);
	if (needs_keys(plan) || cw_keystore_initialised(r->ks)) {
		if (!o->passphrase && needs_keys(plan))
			return cw_error_set(err, CW_EPASS, "a passphrase is needed to use the keystore: "
					    "set CERTWRIGHT_PASSPHRASE or pass --passphrase-file FILE");
		if (o->passphrase &&
		    cw_keystore_unlock(r->ks, o->passphrase, o->passphrase_len, err) != 0)
			return -1;
	}
	return 0;
}

int cw_engine_apply(const cw_options *o, const cw_plan *saved, cw_apply_result *res, cw_error *err)
{
	run_ctx r = { .o = o, .repo_lock_fd = -1, .record_mu = PTHREAD_MUTEX_INITIALIZER };
	memset(res, 0, sizeof(*res));
	cw_plan_init(&res->plan);
	cw_plan *plan = &res->plan;
	if (prepare_apply(&r, plan, saved, err) != 0) {
		run_release(&r);
		return -1;
	}
	int *action_ok = cw_xcalloc(plan->n + 1, sizeof(int));
	apply_reconcile_records(&r);
	apply_record_unreachable(&r);
	if (!o->filter.nonly_targets && !o->filter.nonly_certificates)
		apply_forget_removed_targets(&r);
	apply_authorities(&r, plan, action_ok, res);
	double t0 = now_seconds();
	apply_issues(&r, plan, action_ok, res);
	double t1 = now_seconds();
	apply_deploys(&r, plan, action_ok, res);
	apply_exports(&r, plan, action_ok, res);   /* a superseded revocation waits for these */
	apply_revocations(&r, plan, action_ok, res);
	apply_crls(&r, plan, action_ok, res);
	double t2 = now_seconds();
	run_log(o, CW_LOG_DEBUG, "issuance %.3f s, deployment %.3f s", t1 - t0, t2 - t1);
	free(action_ok);
	int rc = 0;
	if (cw_state_compact(&r.st, r.ks, err) != 0)
		rc = -1;
	else if (cw_cancel_requested())
		rc = cw_error_set(err, CW_ETARGET, "interrupted by signal %d: what was done is "
				  "recorded; the next run continues from there", cw_cancel_requested());
	else if (write_report(&r, res, err) != 0)
		rc = -1;
	run_release(&r);
	return rc;
}

/* ---- status ---- */

int cw_engine_status(const cw_options *o, cw_status_view *view, cw_diags *diags, cw_error *err)
{
	run_ctx r = { .o = o, .repo_lock_fd = -1, .record_mu = PTHREAD_MUTEX_INITIALIZER };
	memset(view, 0, sizeof(*view));
	int rc = load_inventory(&r, diags, err);
	if (rc == 0)
		rc = open_keystore(&r, 0, err);
	if (rc == 0)
		rc = cw_state_load(&r.st, r.ks, err);
	view->inv = r.inv;
	view->st = r.st;
	view->have_state = r.ks != NULL;
	memset(&r.inv, 0, sizeof(r.inv));
	memset(&r.st, 0, sizeof(r.st));
	run_release(&r);
	return rc;
}

void cw_status_view_release(cw_status_view *view)
{
	cw_inventory_release(&view->inv);
	cw_state_release(&view->st);
	memset(view, 0, sizeof(*view));
}
