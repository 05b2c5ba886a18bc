/*
 * apply_issue — authorities and leaves: keys generated, certificates signed, both made
 * durable, then the issuance recorded in the authority's index (the commit point).
 * Authorities one at a time; leaves in parallel workers with one sync and one index write
 * per batch, which is what keeps 10,000 issuances fast and crash-safe.
 */
#include "reconcile/apply.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cancel.h"
#include "common/parallel.h"
#include "issuers/localca.h"
#include "reconcile/x509.h"

/* What a certificate (or authority) is issued with: its spec plus its issuer's CRL URL. */
static void effective_spec(cw_cert_spec *out, const cw_cert_spec *spec, const cw_authority *issuer)
{
	cw_cert_spec_copy(out, spec);
	free(out->crl_url);
	out->crl_url = cw_xstrdup(issuer ? issuer->spec.crl_url : NULL);
}

int run_load_signer(run_ctx *r, const char *ca_name, run_signer *s, cw_error *err)
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

void run_signer_release(run_signer *s)
{
	EVP_PKEY_free(s->key);
	X509_free(s->cert);
	s->key = NULL;
	s->cert = NULL;
}

/* Signs one certificate and stores key + certificate (durable only after a sync). Fills
 * the index entry the caller records. reuse_key: renew an authority with its own key. */
static int issue_one(run_ctx *r, const char *name, const cw_cert_spec *spec, const char *issuer_name,
		     const run_signer *issuer, EVP_PKEY *reuse_key, int sync, cw_issued *entry,
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
	run_signer parent = { 0 }, self = { 0 };
	EVP_PKEY *reuse = NULL;
	cw_cert_spec spec;
	cw_issued entry;
	int rc = -1;
	effective_spec(&spec, &ca->spec, ca->parent_ref);
	if (ca->parent_ref && run_load_signer(r, ca->parent, &parent, err) != 0)
		goto out;
	if (a->kind == CW_ACT_RENEW_CA) {
		if (run_load_signer(r, ca->name, &self, err) != 0)
			goto out;
		reuse = self.key;
	}
	if (issue_one(r, ca->name, &spec, ca->parent_ref ? ca->parent : ca->name,
		      ca->parent_ref ? &parent : NULL, reuse, 1, &entry, err) != 0)
		goto out;
	rc = cw_state_record_issued(&r->st, r->ks, &entry, 1, err);
	cw_issued_release(&entry);
out:
	run_signer_release(&parent);
	run_signer_release(&self);
	cw_cert_spec_release(&spec);
	return rc;
}

/* Leaves are issued by a pool of workers; each fills its own slots of `entries`. */
typedef struct {
	run_ctx *r;
	const cw_action **actions;
	size_t n;
	run_signer *signers;         /* per action: its issuer (shared objects, read-only) */
	cw_issued *entries;
	cw_error *errors;
	int *done;
} issue_job;

/* One leaf: workers share the job, each index is one issuance. */
static void issue_at(void *ctx, size_t i)
{
	issue_job *job = ctx;
	const cw_action *a = job->actions[i];
	const cw_certificate *cert = cw_inventory_certificate(&job->r->inv, a->name);
	if (cw_cancel_requested()) {
		cw_error_set(&job->errors[i], CW_ETARGET, "interrupted (signal %d) before issuing",
			     cw_cancel_requested());
		return;
	}
	if (!job->signers[i].key) {
		cw_error_set(&job->errors[i], CW_EINVAL, "certificate '%s': its authority '%s' is not "
			     "available", a->name, cert ? cert->issuer : "?");
		return;
	}
	cw_cert_spec spec;
	effective_spec(&spec, &cert->spec, cert->issuer_ref);
	job->done[i] = issue_one(job->r, cert->name, &spec, cert->issuer, &job->signers[i], NULL, 0,
				 &job->entries[i], &job->errors[i]) == 0;
	cw_cert_spec_release(&spec);
}

typedef struct {
	char *name;
	run_signer s;
	int loaded;
} signer_cache_entry;

/* Issues every ISSUE action whose dependencies succeeded; records results in res. */
void apply_issues(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res)
{
	issue_job job = { .r = r };
	job.actions = cw_xcalloc(plan->n, sizeof(*job.actions));
	size_t *plan_index = cw_xcalloc(plan->n, sizeof(size_t));
	for (size_t i = 0; i < plan->n; i++) {
		const cw_action *a = &plan->actions[i];
		if (a->kind != CW_ACT_ISSUE)
			continue;
		if (!run_deps_ok(a, action_ok)) {
			run_add_result(res, a, 0, cw_cancel_requested() ? "interrupted before issuing"
						: "skipped: its authority could not be issued");
			continue;
		}
		plan_index[job.n] = i;
		job.actions[job.n++] = a;
	}
	job.signers = cw_xcalloc(job.n ? job.n : 1, sizeof(run_signer));
	job.entries = cw_xcalloc(job.n ? job.n : 1, sizeof(cw_issued));
	job.errors = cw_xcalloc(job.n ? job.n : 1, sizeof(cw_error));
	job.done = cw_xcalloc(job.n ? job.n : 1, sizeof(int));

	/* one run_signer per authority, loaded once: decrypting a CA key per leaf would be waste */
	signer_cache_entry *cache = cw_xcalloc(r->inv.nauthorities + 1, sizeof(*cache));
	for (size_t i = 0; i < job.n; i++) {
		const cw_certificate *cert = cw_inventory_certificate(&r->inv, job.actions[i]->name);
		size_t ci = (size_t)(cert->issuer_ref - r->inv.authorities);
		if (!cache[ci].loaded) {
			cache[ci].loaded = 1;
			if (run_load_signer(r, cert->issuer, &cache[ci].s, &job.errors[i]) != 0)
				continue;
		}
		job.signers[i] = cache[ci].s;
		if (!job.signers[i].key && !job.errors[i].code)
			cw_error_set(&job.errors[i], CW_EINVAL, "authority '%s' could not be loaded",
				     cert->issuer);
	}

	/* key generation (RSA above all) is the cost: one worker per --parallel */
	cw_parallel_for(job.n, r->o->parallel > 0 ? (size_t)r->o->parallel : 2, issue_at, &job);

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
		run_add_result(res, job.actions[i], ok,
			   ok ? NULL : job.errors[i].code ? job.errors[i].msg : rec_err.msg);
		if (ok)
			run_log(r->o, CW_LOG_INFO, "issued %s (serial %s)", job.actions[i]->name,
			      job.entries[i].serial);
		else
			run_log(r->o, CW_LOG_ERROR, "certificate '%s': %s", job.actions[i]->name,
			      job.errors[i].code ? job.errors[i].msg : rec_err.msg);
		if (job.done[i])
			cw_issued_release(&job.entries[i]);
	}
	for (size_t i = 0; i <= r->inv.nauthorities; i++) {
		free(cache[i].name);
		run_signer_release(&cache[i].s);
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

/* Authorities one at a time, parents first (the plan's order): each is recorded before
 * anything it signs is issued. */
void apply_authorities(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res)
{
	for (size_t i = 0; i < plan->n; i++) {
		cw_action *a = &plan->actions[i];
		if (a->kind != CW_ACT_CREATE_CA && a->kind != CW_ACT_RENEW_CA)
			continue;
		int ready = run_deps_ok(a, action_ok);
		cw_error e = { 0 };
		action_ok[i] = ready && run_authority(r, a, &e) == 0;
		run_add_result(res, a, action_ok[i], action_ok[i] ? NULL : ready ? e.msg :
			   "skipped: its parent authority failed or the run was interrupted");
		run_log(r->o, action_ok[i] ? CW_LOG_INFO : CW_LOG_ERROR, "%s %s%s%s",
		      cw_action_kind_name(a->kind), a->name, action_ok[i] ? "" : ": ",
		      action_ok[i] ? "" : e.msg);
	}
}

