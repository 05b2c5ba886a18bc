/*
 * apply_deploy — putting certificates on targets and taking them off, one worker per
 * target (up to --parallel at once): journal "started", deploy, bind, activate, verify
 * from outside, clean up the previous certificate, journal "ok" or "failed". Also keeps
 * the deployment records in line with what targets hold.
 */
#include "reconcile/apply.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/pem.h>

#include "common/cancel.h"
#include "common/parallel.h"
#include "reconcile/diff.h"

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
/* The next record for (target, cert), starting as a copy of the previous one: what a
 * caller does not set stays as it was — the digests of the slot and the chain above all,
 * which say what the target was last known to hold. Shallow: the strings stay the
 * state's, which copies the record before it replaces the old one. */
static cw_deploy_record record_base(run_ctx *r, const cw_deploy_record *old, const char *target,
				    const char *cert)
{
	cw_deploy_record rec;
	if (old)
		rec = *old;
	else
		memset(&rec, 0, sizeof(rec));
	rec.target = (char *)target;
	rec.certificate = (char *)cert;
	rec.last_error = NULL;
	rec.updated = r->o->now;
	return rec;
}

int run_record(run_ctx *r, const char *target, const char *cert, cw_deploy_status status,
		  const cw_issued *cur, const char *error, const cw_deployment *d,
		  const char *slot_digest)
{
	pthread_mutex_lock(&r->record_mu);
	const cw_deploy_record *old = cw_state_deploy_record(&r->st, target, cert);
	cw_deploy_record rec = record_base(r, old, target, cert);
	rec.status = status;
	rec.serial = cur ? cur->serial : NULL;
	memset(rec.fingerprint, 0, sizeof(rec.fingerprint));
	if (cur)
		memcpy(rec.fingerprint, cur->fingerprint, sizeof(rec.fingerprint));
	if (status == CW_DEPLOY_FAILED)
		rec.attempts++;
	else if (status != CW_DEPLOY_STARTED)
		rec.attempts = 0;
	rec.last_error = (char *)error;
	if (status == CW_DEPLOY_OK) {
		/* what was just deployed, verified, went with the current chain */
		const cw_certificate *c = cw_inventory_certificate(&r->inv, cert);
		memset(rec.slot_digest, 0, sizeof(rec.slot_digest));
		if (slot_digest && strlen(slot_digest) == 64)
			memcpy(rec.slot_digest, slot_digest, 65);
		if (c)
			cw_chain_digest(&r->st, c->issuer_ref, rec.chain_digest);
		rec.bound = d ? d->bind : NULL;
		rec.nbound = d ? d->nbind : 0;
	} else if (status == CW_DEPLOY_REMOVED) {
		rec.bound = NULL; /* nothing uses what is gone */
		rec.nbound = 0;
	}
	cw_error err = { 0 };
	int rc = cw_state_record_deploy(&r->st, r->ks, &rec, &err);
	if (rc != 0)
		run_log(r->o, CW_LOG_ERROR, "%s", err.msg);
	pthread_mutex_unlock(&r->record_mu);
	return rc;
}


static int run_deploy(run_ctx *r, cw_target_handle *th, const cw_action *a, cw_error *err)
{
	const cw_certificate *cert = cw_inventory_certificate(&r->inv, a->name);
	const cw_deployment *d = run_find_deployment(cert, a->target);
	const cw_issued *cur = cert ? cw_state_current(&r->st, cert->name) : NULL;
	if (!d || !cur)
		return cw_error_set(err, CW_EINTERNAL, "certificate '%s': nothing issued to deploy",
				    a->name);
	bundle_store bs;
	if (run_record(r, a->target, a->name, CW_DEPLOY_STARTED, cur, NULL, NULL, NULL) != 0)
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
	run_record(r, a->target, a->name, rc == 0 ? CW_DEPLOY_OK : CW_DEPLOY_FAILED, cur,
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
	run_record(r, a->target, a->name, rc == 0 ? CW_DEPLOY_REMOVED : CW_DEPLOY_FAILED,
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
} deploy_job;

int run_open_target(run_ctx *r, const cw_target *t, cw_target_handle *th, cw_error *err)
{
	char *work = cw_path_join(r->work_dir, t->name);
	cw_target_env env = { r->o->timeout_ms > 0 ? r->o->timeout_ms : 30000, work,
			      run_target_log, (void *)r->o };
	int rc = cw_mkdirs(work, 0700, err);
	if (rc == 0)
		rc = cw_target_handle_open(th, t, &env, 0, err);
	free(work);
	return rc;
}

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
		if (!run_deps_ok(a, job->action_ok)) {
			cw_error_set(&job->errors[i], CW_EINVAL, "skipped: certificate '%s' was not issued",
				     a->name);
			continue;
		}
		if (opened < 0)
			opened = run_open_target(r, t, &th, &open_err) == 0;
		if (!opened) {
			cw_error_set(&job->errors[i], open_err.code, "%s", open_err.msg);
			if (a->kind == CW_ACT_DEPLOY) {
				const cw_issued *cur = cw_state_current(&r->st, a->name);
				run_record(r, t->name, a->name, CW_DEPLOY_FAILED, cur, open_err.msg, NULL, NULL);
			}
			continue;
		}
		int rc = a->kind == CW_ACT_DEPLOY ? run_deploy(r, &th, a, &job->errors[i])
						  : run_remove(r, &th, a, &job->errors[i]);
		job->action_ok[i] = rc == 0;
		run_log(r->o, rc == 0 ? CW_LOG_INFO : CW_LOG_ERROR, "%s %s %s %s%s%s",
		      cw_action_kind_name(a->kind), a->name, a->kind == CW_ACT_REMOVE ? "from" : "to",
		      t->name, rc == 0 ? "" : ": ", rc == 0 ? "" : job->errors[i].msg);
	}
	if (opened > 0)
		cw_target_handle_close(&th);
}

static void deploy_at(void *ctx, size_t t)
{
	deploy_job *job = ctx;
	deploy_target(job, &job->r->inv.targets[t]);
}

void apply_deploys(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res)
{
	deploy_job job = { r, plan, action_ok, cw_xcalloc(plan->n + 1, sizeof(cw_error)),
			   cw_xcalloc(plan->n + 1, sizeof(int)) };
	/* one worker per target: a target's steps stay in order, targets run side by side */
	cw_parallel_for(r->inv.ntargets, r->o->parallel > 0 ? (size_t)r->o->parallel : 4,
			deploy_at, &job);
	for (size_t i = 0; i < plan->n; i++)
		if (job.ran[i])
			run_add_result(res, &plan->actions[i], action_ok[i],
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
	cw_deploy_record rec = record_base(r, old, s->target, s->slot);
	rec.status = CW_DEPLOY_OK;
	rec.serial = cur->serial;
	memcpy(rec.fingerprint, cur->fingerprint, sizeof(rec.fingerprint));
	rec.attempts = 0;
	rec.bound = d->bind;
	rec.nbound = d->nbind;
	if (!rec.slot_digest[0] && s->obs.digest && strlen(s->obs.digest) == 64)
		memcpy(rec.slot_digest, s->obs.digest, sizeof(rec.slot_digest));
	if (!rec.chain_digest[0])
		cw_chain_digest(&r->st, cw_inventory_certificate(&r->inv, s->slot)->issuer_ref,
				rec.chain_digest);
	cw_error err = { 0 };
	if (cw_state_record_deploy(&r->st, r->ks, &rec, &err) != 0)
		run_log(r->o, CW_LOG_ERROR, "%s", err.msg);
}

/* A deployment certwright has no current record of (state lost, or deployed by an older
 * run that was not recorded), but whose target already holds the current certificate,
 * is recorded as it is. Failed or interrupted records are left alone: the diff redoes
 * those deploys, because the step that failed may have been the reload. */
void apply_reconcile_records(run_ctx *r)
{
	for (size_t i = 0; i < r->live.nslots; i++) {
		const cw_live_slot *s = &r->live.slots[i];
		if (!s->ok || !s->obs.present)
			continue;
		const cw_issued *cur = cw_state_current(&r->st, s->slot);
		const cw_certificate *cert = cw_inventory_certificate(&r->inv, s->slot);
		const cw_deployment *d = run_find_deployment(cert, s->target);
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
void apply_record_unreachable(run_ctx *r)
{
	for (size_t t = 0; t < r->live.ntargets; t++) {
		const cw_live_target *lt = &r->live.targets[t];
		if (lt->ok)
			continue;
		for (size_t i = 0; i < r->inv.ncertificates; i++) {
			const cw_certificate *cert = &r->inv.certificates[i];
			if (!run_find_deployment(cert, lt->name))
				continue;
			const cw_deploy_record *old = cw_state_deploy_record(&r->st, lt->name, cert->name);
			cw_deploy_record rec = record_base(r, old, lt->name, cert->name);
			if (!old)
				rec.status = CW_DEPLOY_FAILED;
			rec.attempts++;
			rec.last_error = lt->error;
			cw_error err = { 0 };
			if (cw_state_record_deploy(&r->st, r->ks, &rec, &err) != 0)
				run_log(r->o, CW_LOG_ERROR, "%s", err.msg);
		}
	}
}

/* Records on targets that left the inventory: the plan warned once; certwright cannot
 * reach them any more, so it forgets them rather than warn on every run. */
void apply_forget_removed_targets(run_ctx *r)
{
	for (size_t i = 0; i < r->st.ndeploys; i++) {
		const cw_deploy_record *rec = &r->st.deploys[i];
		if (rec->status == CW_DEPLOY_REMOVED || rec->target[0] == '@' ||
		    cw_inventory_target(&r->inv, rec->target))
			continue;
		char *target = cw_xstrdup(rec->target), *cert = cw_xstrdup(rec->certificate);
		run_record(r, target, cert, CW_DEPLOY_REMOVED, NULL, NULL, NULL, NULL);
		free(target);
		free(cert);
	}
}
