/*
 * apply_revoke — the certificate lifecycle after deploys: client bundles (exports),
 * revocations (recorded in one batch: the index entries are what every CRL is built
 * from) and CRLs (signed from the index, then put on targets that take them). Exports
 * run first because a superseded revocation waits for the new bundle.
 */
#include "reconcile/apply.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cancel.h"
#include "common/secret.h"
#include "issuers/crl.h"
#include "issuers/localca.h"
#include "issuers/pkcs12.h"
#include "reconcile/x509.h"



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
void apply_revocations(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res)
{
	cw_issued *batch = cw_xcalloc(plan->n + 1, sizeof(cw_issued));
	size_t *which = cw_xcalloc(plan->n + 1, sizeof(size_t));
	size_t n = 0;
	for (size_t i = 0; i < plan->n; i++) {
		const cw_action *a = &plan->actions[i];
		if (a->kind != CW_ACT_REVOKE)
			continue;
		const cw_issued *e = run_find_entry(&r->st, a->name, a->current_serial);
		if (!run_deps_ok(a, action_ok) || !e) {
			run_add_result(res, a, 0, !e ? "no such certificate in the index"
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
		run_add_result(res, a, ok, ok ? NULL : err.msg);
		run_log(r->o, ok ? CW_LOG_INFO : CW_LOG_ERROR, "revoke %s serial %s%s%s", a->name,
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
	run_signer s = { 0 };
	if (run_load_signer(r, ca->name, &s, err) != 0) {
		run_signer_release(&s);
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
	run_signer_release(&s);
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
	cw_target_handle th;
	int rc = run_open_target(r, t, &th, err);
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
	return rc;
}

void apply_crls(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res)
{
	for (int pass = 0; pass < 2; pass++) {
		cw_action_kind kind = pass ? CW_ACT_DEPLOY_CRL : CW_ACT_PUBLISH_CRL;
		for (size_t i = 0; i < plan->n; i++) {
			cw_action *a = &plan->actions[i];
			if (a->kind != kind)
				continue;
			const cw_authority *ca = cw_inventory_authority(&r->inv, a->name);
			cw_error e = { 0 };
			if (!run_deps_ok(a, action_ok) || !ca)
				cw_error_set(&e, CW_EINVAL, "skipped: authority '%s' is not ready", a->name);
			else if (pass == 0)
				publish_crl(r, ca, &e);
			else
				deploy_crl(r, a, &e);
			action_ok[i] = e.code == CW_OK;
			run_add_result(res, a, action_ok[i], action_ok[i] ? NULL : e.msg);
			run_log(r->o, action_ok[i] ? CW_LOG_INFO : CW_LOG_ERROR, "%s %s%s%s%s%s",
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

void apply_exports(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res)
{
	for (size_t i = 0; i < plan->n; i++) {
		cw_action *a = &plan->actions[i];
		if (a->kind != CW_ACT_EXPORT)
			continue;
		const cw_certificate *cert = cw_inventory_certificate(&r->inv, a->name);
		cw_error e = { 0 };
		if (!run_deps_ok(a, action_ok) || !cert)
			cw_error_set(&e, CW_EINVAL, "skipped: certificate '%s' was not issued", a->name);
		else if (export_bundle(r, cert, &e) != 0)
			run_record(r, "@export", a->name, CW_DEPLOY_FAILED,
			       cw_state_current(&r->st, a->name), e.msg, NULL, NULL);
		action_ok[i] = e.code == CW_OK;
		run_add_result(res, a, action_ok[i], action_ok[i] ? NULL : e.msg);
		run_log(r->o, action_ok[i] ? CW_LOG_INFO : CW_LOG_ERROR, "export %s%s%s", a->name,
		      action_ok[i] ? "" : ": ", action_ok[i] ? "" : e.msg);
	}
}
