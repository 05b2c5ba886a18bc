/*
 * engine — load, observe, diff; and apply. See engine.h.
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
 *   4. the report, committed to git (and pushed when asked).
 */
#include "reconcile/engine.h"

#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <openssl/pem.h>
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
#include "issuers/crl.h"
#include "issuers/localca.h"
#include "issuers/pkcs12.h"
#include "reconcile/git.h"
#include "reconcile/inventory.h"
#include "reconcile/keystore.h"
#include "reconcile/live.h"
#include "reconcile/report.h"
#include "reconcile/state.h"

/* Everything one run holds. */
typedef struct {
	const cw_options *o;
	char *inventory_path;    /* absolute folder, for a work-tree read */
	cw_inventory inv;
	cw_keystore *ks;
	cw_state st;
	cw_live live;
	char *work_dir;          /* private scratch folder, removed at the end */
	int repo_lock_fd;
	/* deploy workers read a record and write its successor; records live in an array that
	 * a write may move, so each read-modify-write happens under this lock */
	pthread_mutex_t record_mu;
} run_ctx;

static void logf_(const cw_options *o, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void logf_(const cw_options *o, int level, const char *fmt, ...)
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

static void target_log(void *ud, int level, const char *target, const char *msg)
{
	const cw_options *o = ud;
	logf_(o, level, "target '%s': %s", target, msg);
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
		.log = target_log,
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
static const cw_issued *find_entry(const cw_state *st, const char *name, const char *serial);

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
		if (serial && !find_entry(&r->st, ca->name, serial)) {
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
	logf_(r->o, CW_LOG_DEBUG, "load %.3f s, observe %.3f s, diff %.3f s", t1 - t0, t2 - t1,
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
		logf_(r->o, CW_LOG_DEBUG, "could not note our pid in the lock file");
	r->repo_lock_fd = fd;
	return 0;
}

/* ---- results ---- */

static void add_result(cw_apply_result *res, const cw_action *a, int ok, const char *error)
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

/* ---- issuing ---- */

/* What a certificate (or authority) is issued with: its spec plus its issuer's CRL URL. */
static void effective_spec(cw_cert_spec *out, const cw_cert_spec *spec, const cw_authority *issuer)
{
	cw_cert_spec_copy(out, spec);
	free(out->crl_url);
	out->crl_url = cw_xstrdup(issuer ? issuer->spec.crl_url : NULL);
}

typedef struct {
	EVP_PKEY *key;
	X509 *cert;
} signer;

static int load_signer(run_ctx *r, const char *ca_name, signer *s, cw_error *err)
{
	const cw_issued *cur = cw_state_current(&r->st, ca_name);
	if (!cur)
		return cw_error_set(err, CW_EINVAL, "authority '%s' has no certificate yet", ca_name);
	cw_buf der = CW_BUF_INIT;
	if (cw_keystore_get_cert(r->ks, ca_name, cur->serial, &der, err) != 0)
		return -1;
	const unsigned char *p = (const unsigned char *)der.buf;
	s->cert = d2i_X509(NULL, &p, (long)der.len);
	cw_buf_release(&der);
	if (!s->cert)
		return cw_error_openssl(err, "authority '%s': stored certificate unreadable", ca_name);
	return cw_keystore_get_key(r->ks, ca_name, cur->serial, &s->key, err);
}

static void signer_release(signer *s)
{
	EVP_PKEY_free(s->key);
	X509_free(s->cert);
	s->key = NULL;
	s->cert = NULL;
}

/* Signs one certificate and stores key + certificate (durable only after a sync). Fills
 * the index entry the caller records. reuse_key: renew an authority with its own key. */
static int issue_one(run_ctx *r, const char *name, const cw_cert_spec *spec, const char *issuer_name,
		     const signer *issuer, EVP_PKEY *reuse_key, int sync, cw_issued *entry,
		     cw_error *err)
{
	EVP_PKEY *key = reuse_key;
	X509 *cert = NULL;
	unsigned char *der = NULL;
	size_t len = 0;
	int rc = -1;
	if (!key && cw_key_generate(&key, spec->key, err) != 0)
		return -1;
	if (cw_ca_sign(&cert, spec, key, issuer ? issuer->cert : NULL, issuer ? issuer->key : NULL,
		       r->o->now, err) != 0 ||
	    cw_x509_to_der(cert, &der, &len, err) != 0)
		goto out;
	cw_x509_info info;
	if (cw_x509_parse(der, len, &info, err) != 0)
		goto out;
	memset(entry, 0, sizeof(*entry));
	entry->name = cw_xstrdup(name);
	entry->issuer = cw_xstrdup(issuer_name);
	entry->serial = cw_xstrdup(info.serial);
	memcpy(entry->fingerprint, info.fingerprint, sizeof(entry->fingerprint));
	entry->subject = cw_xstrdup(info.subject);
	entry->not_before = info.not_before;
	entry->not_after = info.not_after;
	entry->issued_at = r->o->now;
	cw_cert_spec_copy(&entry->spec, spec);
	entry->key_id = cw_xstrdup(info.ski);
	entry->issuer_key_id = cw_xstrdup(info.aki ? info.aki : info.ski);
	entry->is_ca = spec->is_ca;
	cw_x509_info_release(&info);
	if (cw_keystore_put_key(r->ks, name, entry->serial, key, sync, err) != 0 ||
	    cw_keystore_put_cert(r->ks, name, entry->serial, der, len, sync, err) != 0) {
		cw_issued_release(entry);
		goto out;
	}
	rc = 0;
out:
	free(der);
	X509_free(cert);
	if (key != reuse_key)
		EVP_PKEY_free(key);
	return rc;
}

static int run_authority(run_ctx *r, const cw_action *a, cw_error *err)
{
	const cw_authority *ca = cw_inventory_authority(&r->inv, a->name);
	if (!ca)
		return cw_error_set(err, CW_EINTERNAL, "authority '%s' vanished from the inventory", a->name);
	signer parent = { 0 }, self = { 0 };
	EVP_PKEY *reuse = NULL;
	cw_cert_spec spec;
	cw_issued entry;
	int rc = -1;
	effective_spec(&spec, &ca->spec, ca->parent_ref);
	if (ca->parent_ref && load_signer(r, ca->parent, &parent, err) != 0)
		goto out;
	if (a->kind == CW_ACT_RENEW_CA) {
		if (load_signer(r, ca->name, &self, err) != 0)
			goto out;
		reuse = self.key;
	}
	if (issue_one(r, ca->name, &spec, ca->parent_ref ? ca->parent : ca->name,
		      ca->parent_ref ? &parent : NULL, reuse, 1, &entry, err) != 0)
		goto out;
	rc = cw_state_record_issued(&r->st, r->ks, &entry, 1, err);
	cw_issued_release(&entry);
out:
	signer_release(&parent);
	signer_release(&self);
	cw_cert_spec_release(&spec);
	return rc;
}

/* Leaves are issued by a pool of workers; each fills its own slots of `entries`. */
typedef struct {
	run_ctx *r;
	const cw_action **actions;
	size_t n;
	signer *signers;         /* per action: its issuer (shared objects, read-only) */
	cw_issued *entries;
	cw_error *errors;
	int *done;
	pthread_mutex_t mu;
	size_t next;
} issue_job;

static void *issue_worker(void *arg)
{
	issue_job *job = arg;
	for (;;) {
		pthread_mutex_lock(&job->mu);
		size_t i = job->next++;
		pthread_mutex_unlock(&job->mu);
		if (i >= job->n)
			return NULL;
		const cw_action *a = job->actions[i];
		const cw_certificate *cert = cw_inventory_certificate(&job->r->inv, a->name);
		if (cw_cancel_requested()) {
			cw_error_set(&job->errors[i], CW_ETARGET, "interrupted (signal %d) before "
				     "issuing", cw_cancel_requested());
			continue;
		}
		if (!job->signers[i].key) {
			cw_error_set(&job->errors[i], CW_EINVAL, "certificate '%s': its authority '%s' "
				     "is not available", a->name, cert ? cert->issuer : "?");
			continue;
		}
		cw_cert_spec spec;
		effective_spec(&spec, &cert->spec, cert->issuer_ref);
		job->done[i] = issue_one(job->r, cert->name, &spec, cert->issuer, &job->signers[i],
					 NULL, 0, &job->entries[i], &job->errors[i]) == 0;
		cw_cert_spec_release(&spec);
	}
}

typedef struct {
	char *name;
	signer s;
	int loaded;
} signer_cache_entry;

/* Issues every ISSUE action whose dependencies succeeded; records results in res. */
static void run_issues(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res)
{
	issue_job job = { .r = r, .mu = PTHREAD_MUTEX_INITIALIZER };
	job.actions = cw_xcalloc(plan->n, sizeof(*job.actions));
	size_t *plan_index = cw_xcalloc(plan->n, sizeof(size_t));
	for (size_t i = 0; i < plan->n; i++) {
		const cw_action *a = &plan->actions[i];
		if (a->kind != CW_ACT_ISSUE)
			continue;
		int deps_ok = 1;
		for (size_t d = 0; d < a->ndeps; d++)
			deps_ok &= action_ok[a->deps[d]];
		if (!deps_ok) {
			add_result(res, a, 0, "skipped: its authority could not be issued");
			continue;
		}
		plan_index[job.n] = i;
		job.actions[job.n++] = a;
	}
	job.signers = cw_xcalloc(job.n ? job.n : 1, sizeof(signer));
	job.entries = cw_xcalloc(job.n ? job.n : 1, sizeof(cw_issued));
	job.errors = cw_xcalloc(job.n ? job.n : 1, sizeof(cw_error));
	job.done = cw_xcalloc(job.n ? job.n : 1, sizeof(int));

	/* one signer per authority, loaded once: decrypting a CA key per leaf would be waste */
	signer_cache_entry *cache = cw_xcalloc(r->inv.nauthorities + 1, sizeof(*cache));
	for (size_t i = 0; i < job.n; i++) {
		const cw_certificate *cert = cw_inventory_certificate(&r->inv, job.actions[i]->name);
		size_t ci = (size_t)(cert->issuer_ref - r->inv.authorities);
		if (!cache[ci].loaded) {
			cache[ci].loaded = 1;
			if (load_signer(r, cert->issuer, &cache[ci].s, &job.errors[i]) != 0)
				continue;
		}
		job.signers[i] = cache[ci].s;
		if (!job.signers[i].key && !job.errors[i].code)
			cw_error_set(&job.errors[i], CW_EINVAL, "authority '%s' could not be loaded",
				     cert->issuer);
	}

	size_t nworkers = r->o->parallel > 0 ? (size_t)r->o->parallel : 2;
	if (nworkers > job.n)
		nworkers = job.n;
	pthread_t *threads = cw_xcalloc(nworkers ? nworkers : 1, sizeof(pthread_t));
	size_t started = 0;
	for (; started < nworkers; started++)
		if (pthread_create(&threads[started], NULL, issue_worker, &job) != 0)
			break;
	if (!started)
		issue_worker(&job);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);

	/* the commit point: everything durable, then one index write per authority */
	cw_issued *batch = cw_xcalloc(job.n ? job.n : 1, sizeof(cw_issued));
	size_t nbatch = 0;
	for (size_t i = 0; i < job.n; i++)
		if (job.done[i])
			batch[nbatch++] = job.entries[i];
	cw_error rec_err = { 0 };
	int recorded = nbatch == 0 ||
		       (cw_keystore_sync(r->ks, &rec_err) == 0 &&
			cw_state_record_issued(&r->st, r->ks, batch, nbatch, &rec_err) == 0);
	for (size_t i = 0; i < job.n; i++) {
		int ok = job.done[i] && recorded;
		action_ok[plan_index[i]] = ok;
		add_result(res, job.actions[i], ok,
			   ok ? NULL : job.errors[i].code ? job.errors[i].msg : rec_err.msg);
		if (ok)
			logf_(r->o, CW_LOG_INFO, "issued %s (serial %s)", job.actions[i]->name,
			      job.entries[i].serial);
		else
			logf_(r->o, CW_LOG_ERROR, "certificate '%s': %s", job.actions[i]->name,
			      job.errors[i].code ? job.errors[i].msg : rec_err.msg);
		if (job.done[i])
			cw_issued_release(&job.entries[i]);
	}
	for (size_t i = 0; i <= r->inv.nauthorities; i++) {
		free(cache[i].name);
		signer_release(&cache[i].s);
	}
	free(cache);
	free(batch);
	free(job.actions);
	free(job.signers);
	free(job.entries);
	free(job.errors);
	free(job.done);
	free(plan_index);
}

/* ---- deploying ---- */

typedef struct {
	cw_bundle b;
	cw_blob *chain;
	size_t nchain;
	cw_buf cert, root, key;
	char *serial;
} bundle_store;

static void bundle_release(bundle_store *bs)
{
	for (size_t i = 0; i < bs->nchain; i++)
		free(bs->chain[i].data);
	free(bs->chain);
	cw_buf_release(&bs->cert);
	cw_buf_release(&bs->root);
	cw_buf_release_secret(&bs->key);
	free(bs->serial);
}

static int key_to_pem(EVP_PKEY *key, cw_buf *out, cw_error *err)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	if (!bio || !PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
		BIO_free(bio);
		return cw_error_openssl(err, "cannot encode a private key");
	}
	char *data;
	long len = BIO_get_mem_data(bio, &data);
	cw_buf_add(out, data, (size_t)len);
	BIO_free(bio); /* secure memory BIO: cleansed on free */
	return 0;
}

static int build_bundle(run_ctx *r, const cw_certificate *cert, const cw_deployment *d,
			const cw_issued *cur, const char *previous_fp, bundle_store *bs, cw_error *err)
{
	memset(bs, 0, sizeof(*bs));
	bs->serial = cw_xstrdup(cur->serial);
	if (cw_keystore_get_cert(r->ks, cert->name, cur->serial, &bs->cert, err) != 0)
		return -1;
	EVP_PKEY *key = NULL;
	if (cw_keystore_get_key(r->ks, cert->name, cur->serial, &key, err) != 0)
		return -1;
	int rc = key_to_pem(key, &bs->key, err);
	EVP_PKEY_free(key);
	if (rc != 0)
		return -1;
	for (const cw_authority *ca = cert->issuer_ref; ca; ca = ca->parent_ref) {
		const cw_issued *ci = cw_state_current(&r->st, ca->name);
		cw_buf der = CW_BUF_INIT;
		if (!ci || cw_keystore_get_cert(r->ks, ca->name, ci->serial, &der, err) != 0) {
			cw_buf_release(&der);
			return cw_error_set(err, CW_EINVAL, "authority '%s' has no certificate", ca->name);
		}
		if (!ca->parent_ref) {
			bs->root = der;
			break;
		}
		bs->chain = cw_xrealloc(bs->chain, (bs->nchain + 1) * sizeof(cw_blob));
		bs->chain[bs->nchain].len = der.len;
		bs->chain[bs->nchain++].data = (unsigned char *)cw_buf_detach(&der);
	}
	cw_bundle *b = &bs->b;
	b->slot = cert->name;
	b->serial_hex = bs->serial;
	b->fingerprint = cur->fingerprint;
	b->cert = (cw_blob){ (unsigned char *)bs->cert.buf, bs->cert.len };
	b->chain = bs->chain;
	b->nchain = bs->nchain;
	b->root = (cw_blob){ (unsigned char *)bs->root.buf, bs->root.len };
	b->key_pem = bs->key.buf;
	b->key_pem_len = bs->key.len;
	b->bind = (const char *const *)d->bind;
	b->nbind = d->nbind;
	b->previous_fingerprint = previous_fp;
	return 0;
}

/* Confirms from outside that the slot serves `want`; hands back the slot's digest. */
static int verify_live(cw_target_handle *th, const char *slot, const char *want,
		       char digest[65], cw_error *err)
{
	cw_observation obs;
	memset(&obs, 0, sizeof(obs));
	digest[0] = '\0';
	if (cw_th_verify(th, slot, &obs, err) != 0) {
		cw_observation_release(&obs);
		return -1;
	}
	char fp[65] = "";
	if (obs.present)
		cw_sha256_hex(obs.cert.data, obs.cert.len, fp);
	if (obs.digest && strlen(obs.digest) == 64)
		memcpy(digest, obs.digest, 65);
	cw_observation_release(&obs);
	if (strcmp(fp, want))
		return cw_error_set(err, CW_ETARGET,
				    "target '%s': verify failed: it serves %s, expected %.16s…",
				    th->name, *fp ? fp : "no certificate", want);
	return 0;
}

/* Journals a deployment record. Returns -1 when it could not be written: a deploy whose
 * "started" is not on disk must not begin (every step is recorded before the next). */
static int record(run_ctx *r, const char *target, const char *cert, cw_deploy_status status,
		  const cw_issued *cur, const char *error, const cw_deployment *d,
		  const char *slot_digest)
{
	pthread_mutex_lock(&r->record_mu);
	const cw_deploy_record *old = cw_state_deploy_record(&r->st, target, cert);
	cw_deploy_record rec;
	memset(&rec, 0, sizeof(rec));
	rec.target = (char *)target;
	rec.certificate = (char *)cert;
	rec.status = status;
	rec.serial = cur ? cur->serial : NULL;
	if (cur)
		memcpy(rec.fingerprint, cur->fingerprint, sizeof(rec.fingerprint));
	rec.attempts = status == CW_DEPLOY_FAILED ? (old ? old->attempts : 0) + 1 : 0;
	if (status == CW_DEPLOY_STARTED && old)
		rec.attempts = old->attempts;
	rec.last_error = (char *)error;
	rec.updated = r->o->now;
	if (slot_digest && strlen(slot_digest) == 64)
		memcpy(rec.slot_digest, slot_digest, 65);
	/* what was just deployed went with the current chain */
	const cw_certificate *c = cw_inventory_certificate(&r->inv, cert);
	if (status == CW_DEPLOY_OK && c)
		cw_chain_digest(&r->st, c->issuer_ref, rec.chain_digest);
	if (d && status == CW_DEPLOY_OK) {
		rec.bound = d->bind;
		rec.nbound = d->nbind;
	}
	cw_error err = { 0 };
	int rc = cw_state_record_deploy(&r->st, r->ks, &rec, &err);
	if (rc != 0)
		logf_(r->o, CW_LOG_ERROR, "%s", err.msg);
	pthread_mutex_unlock(&r->record_mu);
	return rc;
}

static const cw_deployment *find_deployment(const cw_certificate *cert, const char *target)
{
	for (size_t i = 0; cert && i < cert->ndeploy; i++)
		if (!strcmp(cert->deploy[i].target, target))
			return &cert->deploy[i];
	return NULL;
}

static int run_deploy(run_ctx *r, cw_target_handle *th, const cw_action *a, cw_error *err)
{
	const cw_certificate *cert = cw_inventory_certificate(&r->inv, a->name);
	const cw_deployment *d = find_deployment(cert, a->target);
	const cw_issued *cur = cert ? cw_state_current(&r->st, cert->name) : NULL;
	if (!d || !cur)
		return cw_error_set(err, CW_EINTERNAL, "certificate '%s': nothing issued to deploy",
				    a->name);
	bundle_store bs;
	if (record(r, a->target, a->name, CW_DEPLOY_STARTED, cur, NULL, NULL, NULL) != 0)
		return cw_error_set(err, CW_EIO, "certificate '%s': cannot journal the deploy to '%s'; "
				    "not starting it", a->name, a->target);
	int rc = build_bundle(r, cert, d, cur, a->live_fingerprint, &bs, err);
	if (rc == 0)
		rc = cw_th_deploy(th, &bs.b, err);
	if (rc == 0 && d->nbind)
		rc = cw_th_bind(th, &bs.b, err);
	if (rc == 0)
		rc = cw_th_activate(th, err);
	char digest[65] = "";
	if (rc == 0)
		rc = verify_live(th, a->name, cur->fingerprint, digest, err);
	/* only once the new certificate is live does the old one go */
	if (rc == 0 && a->live_fingerprint && strcmp(a->live_fingerprint, cur->fingerprint))
		rc = cw_th_remove(th, a->name, a->live_fingerprint, err);
	bundle_release(&bs);
	record(r, a->target, a->name, rc == 0 ? CW_DEPLOY_OK : CW_DEPLOY_FAILED, cur,
	       rc == 0 ? NULL : err->msg, d, rc == 0 ? digest : NULL);
	return rc;
}

static int run_remove(run_ctx *r, cw_target_handle *th, const cw_action *a, cw_error *err)
{
	int rc = cw_th_remove(th, a->name, NULL, err);
	if (rc == 0)
		rc = cw_th_activate(th, err);
	/* keep what the record said was there: copy it out under the lock */
	cw_issued was;
	memset(&was, 0, sizeof(was));
	pthread_mutex_lock(&r->record_mu);
	const cw_deploy_record *old = cw_state_deploy_record(&r->st, a->target, a->name);
	int had = old != NULL;
	if (had) {
		was.serial = cw_xstrdup(old->serial);
		memcpy(was.fingerprint, old->fingerprint, sizeof(was.fingerprint));
	}
	pthread_mutex_unlock(&r->record_mu);
	record(r, a->target, a->name, rc == 0 ? CW_DEPLOY_REMOVED : CW_DEPLOY_FAILED,
	       had ? &was : NULL, rc == 0 ? NULL : err->msg, NULL, NULL);
	free(was.serial);
	return rc;
}

typedef struct {
	run_ctx *r;
	cw_plan *plan;
	int *action_ok;
	cw_error *errors;          /* per action */
	int *ran;
	pthread_mutex_t mu;
	size_t next_target;
} deploy_job;

static void deploy_target(deploy_job *job, const cw_target *t)
{
	run_ctx *r = job->r;
	cw_plan *plan = job->plan;
	cw_target_handle th;
	cw_error open_err = { 0 };
	int opened = -1;
	for (size_t i = 0; i < plan->n; i++) {
		cw_action *a = &plan->actions[i];
		if ((a->kind != CW_ACT_DEPLOY && a->kind != CW_ACT_REMOVE) || strcmp(a->target, t->name))
			continue;
		job->ran[i] = 1;
		if (cw_cancel_requested()) {
			cw_error_set(&job->errors[i], CW_ETARGET, "interrupted (signal %d) before this "
				     "step; the next run does it", cw_cancel_requested());
			continue;
		}
		int deps_ok = 1;
		for (size_t d = 0; d < a->ndeps; d++)
			deps_ok &= job->action_ok[a->deps[d]];
		if (!deps_ok) {
			cw_error_set(&job->errors[i], CW_EINVAL, "skipped: certificate '%s' was not issued",
				     a->name);
			continue;
		}
		if (opened < 0) {
			char *work = cw_path_join(r->work_dir, t->name);
			cw_target_env env = { r->o->timeout_ms > 0 ? r->o->timeout_ms : 30000, work,
					      target_log, (void *)r->o };
			opened = cw_mkdirs(work, 0700, &open_err) == 0 &&
					 cw_target_handle_open(&th, t, &env, 0, &open_err) == 0
				 ? 1 : 0;
			free(work);
		}
		if (!opened) {
			cw_error_set(&job->errors[i], open_err.code, "%s", open_err.msg);
			if (a->kind == CW_ACT_DEPLOY) {
				const cw_issued *cur = cw_state_current(&r->st, a->name);
				record(r, t->name, a->name, CW_DEPLOY_FAILED, cur, open_err.msg, NULL, NULL);
			}
			continue;
		}
		int rc = a->kind == CW_ACT_DEPLOY ? run_deploy(r, &th, a, &job->errors[i])
						  : run_remove(r, &th, a, &job->errors[i]);
		job->action_ok[i] = rc == 0;
		logf_(r->o, rc == 0 ? CW_LOG_INFO : CW_LOG_ERROR, "%s %s %s %s%s%s",
		      cw_action_kind_name(a->kind), a->name, a->kind == CW_ACT_REMOVE ? "from" : "to",
		      t->name, rc == 0 ? "" : ": ", rc == 0 ? "" : job->errors[i].msg);
	}
	if (opened > 0)
		cw_target_handle_close(&th);
}

static void *deploy_worker(void *arg)
{
	deploy_job *job = arg;
	for (;;) {
		pthread_mutex_lock(&job->mu);
		size_t t = job->next_target++;
		pthread_mutex_unlock(&job->mu);
		if (t >= job->r->inv.ntargets)
			return NULL;
		deploy_target(job, &job->r->inv.targets[t]);
	}
}

static void run_deploys(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res)
{
	deploy_job job = { r, plan, action_ok, cw_xcalloc(plan->n + 1, sizeof(cw_error)),
			   cw_xcalloc(plan->n + 1, sizeof(int)), PTHREAD_MUTEX_INITIALIZER, 0 };
	size_t nworkers = r->o->parallel > 0 ? (size_t)r->o->parallel : 4;
	if (nworkers > r->inv.ntargets)
		nworkers = r->inv.ntargets;
	pthread_t *threads = cw_xcalloc(nworkers ? nworkers : 1, sizeof(pthread_t));
	size_t started = 0;
	for (; started < nworkers; started++)
		if (pthread_create(&threads[started], NULL, deploy_worker, &job) != 0)
			break;
	if (!started)
		deploy_worker(&job);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	for (size_t i = 0; i < plan->n; i++)
		if (job.ran[i])
			add_result(res, &plan->actions[i], action_ok[i],
				   action_ok[i] ? NULL : job.errors[i].msg);
	free(job.errors);
	free(job.ran);
}

/* Records that the target holds the current certificate, without a deploy: the chain and
 * slot digests it had are kept (a pending chain-changed or drift must stay pending); a
 * record that lacked them takes the current ones. */
static void record_reconciled(run_ctx *r, const cw_live_slot *s, const cw_issued *cur,
			      const cw_deployment *d, const cw_deploy_record *old)
{
	cw_deploy_record rec;
	memset(&rec, 0, sizeof(rec));
	rec.target = s->target;
	rec.certificate = s->slot;
	rec.status = CW_DEPLOY_OK;
	rec.serial = cur->serial;
	memcpy(rec.fingerprint, cur->fingerprint, sizeof(rec.fingerprint));
	rec.updated = r->o->now;
	rec.bound = d->bind;
	rec.nbound = d->nbind;
	if (old && old->slot_digest[0])
		memcpy(rec.slot_digest, old->slot_digest, sizeof(rec.slot_digest));
	else if (s->obs.digest && strlen(s->obs.digest) == 64)
		memcpy(rec.slot_digest, s->obs.digest, sizeof(rec.slot_digest));
	if (old && old->chain_digest[0])
		memcpy(rec.chain_digest, old->chain_digest, sizeof(rec.chain_digest));
	else
		cw_chain_digest(&r->st, cw_inventory_certificate(&r->inv, s->slot)->issuer_ref,
				rec.chain_digest);
	cw_error err = { 0 };
	if (cw_state_record_deploy(&r->st, r->ks, &rec, &err) != 0)
		logf_(r->o, CW_LOG_ERROR, "%s", err.msg);
}

/* A deployment certwright has no current record of (state lost, or deployed by an older
 * run that was not recorded), but whose target already holds the current certificate,
 * is recorded as it is. Failed or interrupted records are left alone: the diff redoes
 * those deploys, because the step that failed may have been the reload. */
static void reconcile_records(run_ctx *r)
{
	for (size_t i = 0; i < r->live.nslots; i++) {
		const cw_live_slot *s = &r->live.slots[i];
		if (!s->ok || !s->obs.present)
			continue;
		const cw_issued *cur = cw_state_current(&r->st, s->slot);
		const cw_certificate *cert = cw_inventory_certificate(&r->inv, s->slot);
		const cw_deployment *d = find_deployment(cert, s->target);
		if (!cur || !d || strcmp(cur->fingerprint, s->fingerprint))
			continue;
		const cw_deploy_record *rec = cw_state_deploy_record(&r->st, s->target, s->slot);
		if (rec && (rec->status == CW_DEPLOY_FAILED || rec->status == CW_DEPLOY_STARTED))
			continue;
		/* already right, no error from an earlier unreachable run to clear, and a slot
		 * digest known (an older record gets the current one; a known one is never
		 * replaced here: a difference is drift, and the plan redeploys) */
		if (rec && !strcmp(rec->fingerprint, s->fingerprint) && !rec->last_error &&
		    (rec->slot_digest[0] || !s->obs.digest))
			continue;
		record_reconciled(r, s, cur, d, rec);
	}
}

/* A target that could not be observed keeps its deployment status (nothing is known to
 * have changed there) but carries the error and counts the attempt, so the report and
 * `status` show why it is not right. */
static void record_unreachable(run_ctx *r)
{
	for (size_t t = 0; t < r->live.ntargets; t++) {
		const cw_live_target *lt = &r->live.targets[t];
		if (lt->ok)
			continue;
		for (size_t i = 0; i < r->inv.ncertificates; i++) {
			const cw_certificate *cert = &r->inv.certificates[i];
			if (!find_deployment(cert, lt->name))
				continue;
			const cw_deploy_record *old = cw_state_deploy_record(&r->st, lt->name, cert->name);
			cw_deploy_record rec;
			memset(&rec, 0, sizeof(rec));
			rec.target = lt->name;
			rec.certificate = cert->name;
			rec.status = old ? old->status : CW_DEPLOY_FAILED;
			rec.serial = old ? old->serial : NULL;
			if (old) {
				memcpy(rec.fingerprint, old->fingerprint, sizeof(rec.fingerprint));
				memcpy(rec.slot_digest, old->slot_digest, sizeof(rec.slot_digest));
			}
			rec.attempts = (old ? old->attempts : 0) + 1;
			rec.last_error = lt->error;
			rec.updated = r->o->now;
			if (old) {
				rec.bound = old->bound;
				rec.nbound = old->nbound;
			}
			cw_error err = { 0 };
			if (cw_state_record_deploy(&r->st, r->ks, &rec, &err) != 0)
				logf_(r->o, CW_LOG_ERROR, "%s", err.msg);
		}
	}
}

/* ---- revocation (after deploys: superseded ones wait for their replacement) ---- */

static int deps_ok(const cw_action *a, const int *action_ok)
{
	if (cw_cancel_requested())
		return 0; /* interrupted: the rest waits for the next run */
	for (size_t d = 0; d < a->ndeps; d++)
		if (!action_ok[a->deps[d]])
			return 0;
	return 1;
}

static const cw_issued *find_entry(const cw_state *st, const char *name, const char *serial)
{
	for (size_t i = 0; i < st->nissued; i++)
		if (!strcmp(st->issued[i].name, name) && !strcmp(st->issued[i].serial, serial))
			return &st->issued[i];
	return NULL;
}

static void issued_dup(cw_issued *dst, const cw_issued *src)
{
	*dst = *src;
	dst->name = cw_xstrdup(src->name);
	dst->issuer = cw_xstrdup(src->issuer);
	dst->serial = cw_xstrdup(src->serial);
	dst->subject = cw_xstrdup(src->subject);
	dst->issuer_key_id = cw_xstrdup(src->issuer_key_id);
	dst->key_id = cw_xstrdup(src->key_id);
	dst->revoke_reason = cw_xstrdup(src->revoke_reason);
	cw_cert_spec_copy(&dst->spec, &src->spec);
}

/* The RFC 5280 reason recorded for a plan reason. */
static const char *revocation_reason(run_ctx *r, const cw_action *a)
{
	if (!strcmp(a->reason, "superseded"))
		return "superseded";
	if (!strcmp(a->reason, "removed-from-inventory"))
		return "cessation-of-operation";
	const cw_certificate *cert = cw_inventory_certificate(&r->inv, a->name);
	return cert && cert->revoke_reason ? cert->revoke_reason : "unspecified";
}

/* All revocations of the plan are recorded in one batch: the index entries are rewritten
 * with revoked = true, which is what every later CRL is built from. */
static void run_revocations(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res)
{
	cw_issued *batch = cw_xcalloc(plan->n + 1, sizeof(cw_issued));
	size_t *which = cw_xcalloc(plan->n + 1, sizeof(size_t));
	size_t n = 0;
	for (size_t i = 0; i < plan->n; i++) {
		const cw_action *a = &plan->actions[i];
		if (a->kind != CW_ACT_REVOKE)
			continue;
		const cw_issued *e = find_entry(&r->st, a->name, a->current_serial);
		if (!deps_ok(a, action_ok) || !e) {
			add_result(res, a, 0, !e ? "no such certificate in the index"
						 : "skipped: the replacement is not deployed everywhere yet");
			continue;
		}
		issued_dup(&batch[n], e); /* the state frees the entry it replaces */
		batch[n].revoked = 1;
		batch[n].revoked_at = r->o->now;
		free(batch[n].revoke_reason);
		batch[n].revoke_reason = cw_xstrdup(revocation_reason(r, a));
		which[n++] = i;
	}
	cw_error err = { 0 };
	int ok = n == 0 || cw_state_record_issued(&r->st, r->ks, batch, n, &err) == 0;
	for (size_t k = 0; k < n; k++) {
		const cw_action *a = &plan->actions[which[k]];
		action_ok[which[k]] = ok;
		add_result(res, a, ok, ok ? NULL : err.msg);
		logf_(r->o, ok ? CW_LOG_INFO : CW_LOG_ERROR, "revoke %s serial %s%s%s", a->name,
		      a->current_serial, ok ? "" : ": ", ok ? "" : err.msg);
	}
	for (size_t k = 0; k < n; k++)
		cw_issued_release(&batch[k]);
	free(batch);
	free(which);
}

/* ---- CRLs ---- */

static int publish_crl(run_ctx *r, const cw_authority *ca, cw_error *err)
{
	signer s = { 0 };
	if (load_signer(r, ca->name, &s, err) != 0) {
		signer_release(&s);
		return -1;
	}
	cw_crl_entry *entries = cw_xcalloc(r->st.nissued + 1, sizeof(*entries));
	char **serials = cw_xcalloc(r->st.nissued + 1, sizeof(char *));
	size_t n = 0;
	for (size_t i = 0; i < r->st.nissued; i++) {
		const cw_issued *e = &r->st.issued[i];
		if (strcmp(e->issuer, ca->name) || !strcmp(e->name, ca->name) || !e->revoked ||
		    r->o->now >= e->not_after)
			continue;
		cw_revoke_reason code = CW_REASON_UNSPECIFIED;
		if (e->revoke_reason)
			cw_revoke_reason_parse(e->revoke_reason, &code);
		entries[n] = (cw_crl_entry){ e->serial, e->revoked_at, code };
		serials[n++] = e->serial;
	}
	const cw_crl_record *prev = cw_state_crl(&r->st, ca->name);
	unsigned char *der = NULL;
	size_t len = 0;
	cw_crl_info info;
	memset(&info, 0, sizeof(info));
	int rc = cw_crl_sign(&der, &len, s.cert, s.key, entries, n, prev ? prev->number + 1 : 1,
			     r->o->now, ca->crl_lifetime, err);
	if (rc == 0)
		rc = cw_crl_parse(der, len, &info, err);
	if (rc == 0) {
		cw_crl_record rec;
		memset(&rec, 0, sizeof(rec));
		rec.authority = ca->name;
		rec.number = info.number;
		rec.this_update = info.this_update;
		rec.next_update = info.next_update;
		memcpy(rec.fingerprint, info.fingerprint, sizeof(rec.fingerprint));
		cw_crl_serials_digest(serials, n, rec.revoked_digest);
		rec.nrevoked = n;
		const cw_issued *cacur = cw_state_current(&r->st, ca->name);
		if (cacur)
			memcpy(rec.ca_fingerprint, cacur->fingerprint, sizeof(rec.ca_fingerprint));
		rc = cw_state_record_crl(&r->st, r->ks, &rec, der, len, err);
	}
	cw_crl_info_release(&info);
	free(der);
	free(entries);
	free(serials);
	signer_release(&s);
	return rc;
}

static int deploy_crl(run_ctx *r, const cw_action *a, cw_error *err)
{
	const cw_target *t = cw_inventory_target(&r->inv, a->target);
	cw_buf der = CW_BUF_INIT;
	if (!t || cw_state_crl_der(r->ks, a->name, &der, err) != 0) {
		cw_buf_release(&der);
		return cw_error_set(err, CW_EINTERNAL, "authority '%s' has no CRL to deploy", a->name);
	}
	char *work = cw_path_join(r->work_dir, t->name);
	cw_target_env env = { r->o->timeout_ms > 0 ? r->o->timeout_ms : 30000, work, target_log,
			      (void *)r->o };
	cw_target_handle th;
	int rc = cw_mkdirs(work, 0700, err);
	if (rc == 0)
		rc = cw_target_handle_open(&th, t, &env, 0, err);
	if (rc == 0) {
		cw_blob blob = { (unsigned char *)der.buf, der.len };
		rc = th.ops->deploy_crl(th.h, a->name, &blob, err);
		if (rc == 0)
			rc = cw_th_activate(&th, err);
		cw_target_handle_close(&th);
	}
	if (rc == 0)
		rc = cw_state_crl_deployed(&r->st, r->ks, a->name, t->name, err);
	cw_buf_release(&der);
	free(work);
	return rc;
}

static void run_crls(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res)
{
	for (int pass = 0; pass < 2; pass++) {
		cw_action_kind kind = pass ? CW_ACT_DEPLOY_CRL : CW_ACT_PUBLISH_CRL;
		for (size_t i = 0; i < plan->n; i++) {
			cw_action *a = &plan->actions[i];
			if (a->kind != kind)
				continue;
			const cw_authority *ca = cw_inventory_authority(&r->inv, a->name);
			cw_error e = { 0 };
			if (!deps_ok(a, action_ok) || !ca)
				cw_error_set(&e, CW_EINVAL, "skipped: authority '%s' is not ready", a->name);
			else if (pass == 0)
				publish_crl(r, ca, &e);
			else
				deploy_crl(r, a, &e);
			action_ok[i] = e.code == CW_OK;
			add_result(res, a, action_ok[i], action_ok[i] ? NULL : e.msg);
			logf_(r->o, action_ok[i] ? CW_LOG_INFO : CW_LOG_ERROR, "%s %s%s%s%s%s",
			      cw_action_kind_name(kind), a->name, a->target ? " -> " : "",
			      a->target ? a->target : "", action_ok[i] ? "" : ": ",
			      action_ok[i] ? "" : e.msg);
		}
	}
}

/* ---- exports: client bundles outside git ---- */

static int load_x509(run_ctx *r, const char *name, const char *serial, X509 **out, cw_error *err)
{
	cw_buf der = CW_BUF_INIT;
	int rc = cw_keystore_get_cert(r->ks, name, serial, &der, err);
	if (rc == 0)
		rc = cw_x509_from_der(out, (const unsigned char *)der.buf, der.len, err);
	cw_buf_release(&der);
	return rc;
}

static int write_export_files(const cw_certificate *cert, const unsigned char *p12, size_t p12len,
			      X509 *root, cw_error *err)
{
	char *p12_path = cw_xasprintf("%s/%s.p12", cert->export.path, cert->name);
	char *pem_path = cw_xasprintf("%s/%s.ca.pem", cert->export.path, cert->name);
	char *der_path = cw_xasprintf("%s/%s.ca.der", cert->export.path, cert->name);
	unsigned char *der = NULL;
	size_t len = 0;
	cw_buf pem = CW_BUF_INIT;
	int rc = cw_mkdirs(cert->export.path, 0700, err);
	if (rc == 0)
		rc = cw_x509_to_der(root, &der, &len, err);
	if (rc == 0) {
		cw_der_to_pem(der, len, &pem);
		rc = cw_write_file_atomic(p12_path, p12, p12len, 0600, err);
	}
	if (rc == 0)
		rc = cw_write_file_atomic(pem_path, pem.buf, pem.len, 0644, err);
	if (rc == 0)
		rc = cw_write_file_atomic(der_path, der, len, 0644, err);
	cw_buf_release(&pem);
	free(der);
	free(p12_path);
	free(pem_path);
	free(der_path);
	return rc;
}

static int export_bundle(run_ctx *r, const cw_certificate *cert, cw_error *err)
{
	const cw_issued *cur = cw_state_current(&r->st, cert->name);
	if (!cur)
		return cw_error_set(err, CW_EINVAL, "certificate '%s': nothing issued to export", cert->name);
	char *repo = cw_git_worktree_of(cert->export.path);
	if (repo) {
		cw_error_set(err, CW_EINVAL, "certificate '%s': refusing to export a private key into "
			     "the git work tree at %s", cert->name, repo);
		free(repo);
		return -1;
	}
	X509 *leaf = NULL, *chain[8] = { NULL };
	size_t nchain = 0;
	EVP_PKEY *key = NULL;
	cw_buf pass = CW_BUF_INIT;
	unsigned char *p12 = NULL;
	size_t p12len = 0;
	int rc = load_x509(r, cert->name, cur->serial, &leaf, err);
	for (const cw_authority *ca = cert->issuer_ref; rc == 0 && ca && nchain < 8; ca = ca->parent_ref) {
		const cw_issued *ci = cw_state_current(&r->st, ca->name);
		rc = ci ? load_x509(r, ca->name, ci->serial, &chain[nchain++], err)
			: cw_error_set(err, CW_EINVAL, "authority '%s' has no certificate", ca->name);
	}
	if (rc == 0)
		rc = cw_keystore_get_key(r->ks, cert->name, cur->serial, &key, err);
	if (rc == 0)
		rc = cw_secret_resolve(cert->export.passphrase, &pass, err);
	if (rc == 0) {
		cw_pkcs12_opts opts = { cert->name, cert->export.legacy, cert->export.chain };
		rc = cw_pkcs12_build(&p12, &p12len, key, leaf, chain, nchain, pass.buf, &opts, err);
	}
	if (rc == 0)
		rc = write_export_files(cert, p12, p12len, chain[nchain - 1], err);
	if (rc == 0) {
		cw_deploy_record rec;
		memset(&rec, 0, sizeof(rec));
		rec.target = (char *)"@export";
		rec.certificate = cert->name;
		rec.status = CW_DEPLOY_OK;
		rec.serial = cur->serial;
		memcpy(rec.fingerprint, cur->fingerprint, sizeof(rec.fingerprint));
		rec.updated = r->o->now;
		rc = cw_state_record_deploy(&r->st, r->ks, &rec, err);
	}
	cw_buf_release_secret(&pass);
	free(p12);
	EVP_PKEY_free(key);
	X509_free(leaf);
	for (size_t i = 0; i < nchain; i++)
		X509_free(chain[i]);
	return rc;
}

static void run_exports(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res)
{
	for (size_t i = 0; i < plan->n; i++) {
		cw_action *a = &plan->actions[i];
		if (a->kind != CW_ACT_EXPORT)
			continue;
		const cw_certificate *cert = cw_inventory_certificate(&r->inv, a->name);
		cw_error e = { 0 };
		if (!deps_ok(a, action_ok) || !cert)
			cw_error_set(&e, CW_EINVAL, "skipped: certificate '%s' was not issued", a->name);
		else if (export_bundle(r, cert, &e) != 0)
			record(r, "@export", a->name, CW_DEPLOY_FAILED,
			       cw_state_current(&r->st, a->name), e.msg, NULL, NULL);
		action_ok[i] = e.code == CW_OK;
		add_result(res, a, action_ok[i], action_ok[i] ? NULL : e.msg);
		logf_(r->o, action_ok[i] ? CW_LOG_INFO : CW_LOG_ERROR, "export %s%s%s", a->name,
		      action_ok[i] ? "" : ": ", action_ok[i] ? "" : e.msg);
	}
}

/* Records on targets that left the inventory: the plan warned once; certwright cannot
 * reach them any more, so it forgets them rather than warn on every run. */
static void forget_removed_targets(run_ctx *r)
{
	for (size_t i = 0; i < r->st.ndeploys; i++) {
		const cw_deploy_record *rec = &r->st.deploys[i];
		if (rec->status == CW_DEPLOY_REMOVED || rec->target[0] == '@' ||
		    cw_inventory_target(&r->inv, rec->target))
			continue;
		char *target = cw_xstrdup(rec->target), *cert = cw_xstrdup(rec->certificate);
		record(r, target, cert, CW_DEPLOY_REMOVED, NULL, NULL, NULL, NULL);
		free(target);
		free(cert);
	}
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
	reconcile_records(&r);
	record_unreachable(&r);
	if (!o->filter.nonly_targets && !o->filter.nonly_certificates)
		forget_removed_targets(&r);
	for (size_t i = 0; i < plan->n; i++) {
		cw_action *a = &plan->actions[i];
		if (a->kind != CW_ACT_CREATE_CA && a->kind != CW_ACT_RENEW_CA)
			continue;
		int deps_ok = !cw_cancel_requested();
		for (size_t d = 0; d < a->ndeps; d++)
			deps_ok &= action_ok[a->deps[d]];
		cw_error e = { 0 };
		action_ok[i] = deps_ok && run_authority(&r, a, &e) == 0;
		add_result(res, a, action_ok[i], action_ok[i] ? NULL : deps_ok ? e.msg :
			   "skipped: its parent authority failed");
		logf_(o, action_ok[i] ? CW_LOG_INFO : CW_LOG_ERROR, "%s %s%s%s",
		      cw_action_kind_name(a->kind), a->name, action_ok[i] ? "" : ": ",
		      action_ok[i] ? "" : e.msg);
	}
	double t0 = now_seconds();
	run_issues(&r, plan, action_ok, res);
	double t1 = now_seconds();
	run_deploys(&r, plan, action_ok, res);
	run_exports(&r, plan, action_ok, res);   /* a superseded revocation waits for these */
	run_revocations(&r, plan, action_ok, res);
	run_crls(&r, plan, action_ok, res);
	double t2 = now_seconds();
	logf_(o, CW_LOG_DEBUG, "issuance %.3f s, deployment %.3f s", t1 - t0, t2 - t1);
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
