/*
 * diff — (desired, recorded, live, now) -> plan. Pure: see diff.h for the order of
 * checks. Each check is a small function returning a reason code or NULL, so the
 * chain reads top to bottom and each link is testable through the table in
 * tests/unit/test_diff.c.
 */
#include "reconcile/diff.h"

#include <stdlib.h>
#include <string.h>

#include "common/strmap.h"
#include "issuers/crl.h"
#include "targets/target.h"

/* Indexes into st->issued of one name's entries, oldest first. */
typedef struct {
	size_t *idx;
	size_t n, cap;
} entry_list;

/* Bookkeeping per authority while planning. */
typedef struct {
	const cw_authority *ca;
	int planned;            /* an action exists for it (or it has one already) */
	int in_scope;
	long action;            /* index of its create/renew action, or -1 */
	int new_key;            /* create-ca: everything it signed must be reissued */
} ca_plan;

typedef struct {
	cw_plan *plan;
	const cw_inventory *inv;
	const cw_state *st;
	const cw_live *live;
	time_t now;
	const cw_diff_filter *filter;
	ca_plan *cas;
	long *cert_action;      /* per certificate: index of its issue action or -1 */
	cw_strmap by_name;      /* name -> index into lists: every issued entry of a name */
	entry_list *lists;
	size_t nlists;
} diff_ctx;

/* ---- helpers ---- */

static int str_eq(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

static int in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, list[i]))
			return 1;
	return 0;
}

static ca_plan *ca_of(diff_ctx *c, const cw_authority *ca)
{
	return &c->cas[ca - c->inv->authorities];
}

/* The CRL URL that goes into a certificate is its issuer's. */
static const char *issued_crl_url(const cw_authority *issuer)
{
	return issuer ? issuer->spec.crl_url : NULL;
}

static int sans_equal(const cw_cert_spec *a, const cw_cert_spec *b)
{
	if (a->nsans != b->nsans)
		return 0;
	for (size_t i = 0; i < a->nsans; i++) {
		int found = 0;
		for (size_t j = 0; j < b->nsans && !found; j++)
			found = a->sans[i].type == b->sans[j].type &&
				!strcmp(a->sans[i].value, b->sans[j].value);
		if (!found)
			return 0;
	}
	return 1;
}

/* Which field of the spec changed since issuance, or NULL. crl is what the certificate
 * would carry now. Order matters: the first difference found is the one reported. */
static const char *spec_change(const cw_cert_spec *want, const char *crl, const cw_cert_spec *had)
{
	if (!str_eq(want->subject, had->subject))
		return "spec-changed:subject";
	if (!sans_equal(want, had))
		return "spec-changed:sans";
	if (want->key != had->key)
		return "spec-changed:key";
	if (want->usage != had->usage)
		return "spec-changed:usage";
	if (want->lifetime != had->lifetime)
		return "spec-changed:lifetime";
	if (want->is_ca && want->path_len != had->path_len)
		return "spec-changed:path_len";
	if (!str_eq(crl, had->crl_url))
		return "spec-changed:crl_url";
	return NULL;
}

/* Issued under a --now in the future (or a clock that ran ahead): clients reject it.
 * The issuer backdates by 5 minutes; anything beyond that and a minute of slack is wrong. */
static int not_yet_valid(const diff_ctx *c, time_t not_before)
{
	return not_before > c->now + 360;
}

/* Every field that differs, for the plan's detail line ("changed: sans, lifetime");
 * the reason code names the first. */
static char *changed_fields(const cw_cert_spec *want, const char *crl, const cw_cert_spec *had)
{
	cw_buf b = CW_BUF_INIT;
	struct { int differs; const char *name; } f[] = {
		{ !str_eq(want->subject, had->subject), "subject" },
		{ !sans_equal(want, had), "sans" },
		{ want->key != had->key, "key" },
		{ want->usage != had->usage, "usage" },
		{ want->lifetime != had->lifetime, "lifetime" },
		{ want->is_ca && want->path_len != had->path_len, "path_len" },
		{ !str_eq(crl, had->crl_url), "crl_url" },
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i].differs)
			cw_buf_addf(&b, "%s%s", b.len ? ", " : "changed: ", f[i].name);
	return b.len ? cw_buf_detach(&b) : NULL;
}

static char *describe_dates(const char *what, time_t when)
{
	char t[32];
	cw_format_time(when, t);
	return cw_xasprintf("%s %s", what, t);
}

static void set_current(cw_plan *p, size_t a, const cw_issued *cur)
{
	if (!cur)
		return;
	p->actions[a].current_serial = cw_xstrdup(cur->serial);
	p->actions[a].current_fingerprint = cw_xstrdup(cur->fingerprint);
	p->actions[a].current_not_after = cur->not_after;
}

int cw_chain_digest(const cw_state *st, const cw_authority *issuer, char out[65])
{
	cw_buf b = CW_BUF_INIT;
	out[0] = '\0';
	for (const cw_authority *ca = issuer; ca; ca = ca->parent_ref) {
		const cw_issued *cur = cw_state_current(st, ca->name);
		if (!cur) {
			cw_buf_release(&b);
			return -1;
		}
		cw_buf_addf(&b, "%s\n", cur->fingerprint);
	}
	cw_sha256_hex(b.buf ? b.buf : "", b.len, out);
	cw_buf_release(&b);
	return 0;
}

/* ---- every entry of a name (revocation looks past the current one) ---- */

static void index_names(diff_ctx *c)
{
	cw_strmap_init(&c->by_name);
	for (size_t i = 0; i < c->st->nissued; i++) {
		size_t li;
		if (!cw_strmap_get(&c->by_name, c->st->issued[i].name, &li)) {
			li = c->nlists++;
			c->lists = cw_xrealloc(c->lists, c->nlists * sizeof(*c->lists));
			memset(&c->lists[li], 0, sizeof(c->lists[li]));
			cw_strmap_put(&c->by_name, c->st->issued[i].name, li);
		}
		entry_list *l = &c->lists[li];
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 4;
			l->idx = cw_xrealloc(l->idx, l->cap * sizeof(*l->idx));
		}
		l->idx[l->n++] = i;
	}
}

static void release_names(diff_ctx *c)
{
	for (size_t i = 0; i < c->nlists; i++)
		free(c->lists[i].idx);
	free(c->lists);
	cw_strmap_release(&c->by_name);
}

static const entry_list *entries_of(const diff_ctx *c, const char *name)
{
	size_t li;
	return cw_strmap_get(&c->by_name, name, &li) ? &c->lists[li] : NULL;
}

/* The newest entry of a name, revoked or not. */
static const cw_issued *newest_entry(const diff_ctx *c, const char *name)
{
	const entry_list *l = entries_of(c, name);
	const cw_issued *best = NULL;
	for (size_t i = 0; l && i < l->n; i++) {
		const cw_issued *e = &c->st->issued[l->idx[i]];
		if (!best || e->seq > best->seq)
			best = e;
	}
	return best;
}

/* Still worth revoking: not revoked yet, not expired (an expired certificate is
 * rejected by every verifier anyway and RFC 5280 lets a CRL drop it). */
static int revocable(const diff_ctx *c, const cw_issued *e)
{
	return !e->revoked && c->now < e->not_after;
}

/* ---- scope (--target / --certificate) ---- */

static int deployment_in_scope(const diff_ctx *c, const cw_deployment *d)
{
	const cw_diff_filter *f = c->filter;
	return !f || !f->nonly_targets || in_list(d->target, f->only_targets, f->nonly_targets);
}

static int certificate_in_scope(const diff_ctx *c, const cw_certificate *cert)
{
	const cw_diff_filter *f = c->filter;
	if (!f)
		return 1;
	if (f->nonly_certificates &&
	    !in_list(cert->name, f->only_certificates, f->nonly_certificates))
		return 0;
	if (f->nonly_targets) {
		for (size_t i = 0; i < cert->ndeploy; i++)
			if (deployment_in_scope(c, &cert->deploy[i]))
				return 1;
		return 0;
	}
	return 1;
}

static void mark_chain_in_scope(diff_ctx *c, const cw_authority *ca)
{
	for (; ca; ca = ca->parent_ref)
		ca_of(c, ca)->in_scope = 1;
}

static void compute_scope(diff_ctx *c)
{
	const cw_diff_filter *f = c->filter;
	int filtered = f && (f->nonly_targets || f->nonly_certificates);
	for (size_t i = 0; i < c->inv->nauthorities; i++)
		c->cas[i].in_scope = !filtered;
	if (!filtered)
		return;
	for (size_t i = 0; i < c->inv->ncertificates; i++) {
		const cw_certificate *cert = &c->inv->certificates[i];
		if (certificate_in_scope(c, cert))
			mark_chain_in_scope(c, cert->issuer_ref);
	}
	if (f->nonly_certificates)
		for (size_t i = 0; i < c->inv->nauthorities; i++)
			if (in_list(c->inv->authorities[i].name, f->only_certificates,
				    f->nonly_certificates))
				mark_chain_in_scope(c, &c->inv->authorities[i]);
}

/* When the authority itself ends: now + its lifetime if it gets a new certificate in this
 * plan, else its current certificate's notAfter. 0 when unknown. */
static time_t authority_end(diff_ctx *c, const cw_authority *ca)
{
	if (ca_of(c, ca)->action >= 0)
		return c->now + (time_t)ca->spec.lifetime;
	const cw_issued *cur = cw_state_current(c->st, ca->name);
	return cur ? cur->not_after : 0;
}

/* ---- authorities ---- */

/* The reason an authority needs a new certificate, or NULL. *new_key is set for a
 * rotation (a change of subject or key type: clients must reinstall the CA). */
static const char *authority_reason(diff_ctx *c, const cw_authority *ca, const cw_issued *cur,
				    int *new_key)
{
	*new_key = 0;
	if (!cur) {
		*new_key = 1;
		return "missing";
	}
	if (ca->parent_ref) {
		const ca_plan *parent = ca_of(c, ca->parent_ref);
		const cw_issued *pcur = cw_state_current(c->st, ca->parent);
		if (!str_eq(cur->issuer, ca->parent) || parent->new_key ||
		    (pcur && !str_eq(cur->issuer_key_id, pcur->key_id)))
			return "issuer-changed";
	} else if (!str_eq(cur->issuer, ca->name)) {
		return "issuer-changed";
	}
	const char *changed = spec_change(&ca->spec, issued_crl_url(ca->parent_ref), &cur->spec);
	if (changed && (!strcmp(changed, "spec-changed:subject") || !strcmp(changed, "spec-changed:key")))
		*new_key = 1;
	if (changed)
		return changed;
	if (not_yet_valid(c, cur->not_before))
		return "not-yet-valid";
	if (c->now >= cur->not_after)
		return "expired";
	if (c->now >= cw_renew_at(&ca->spec.renew, cur->not_before, cur->not_after))
		return "renewal-due";
	return NULL;
}

static void plan_authority(diff_ctx *c, const cw_authority *ca)
{
	ca_plan *cp = ca_of(c, ca);
	if (cp->planned)
		return;
	cp->planned = 1;
	if (ca->parent_ref)
		plan_authority(c, ca->parent_ref);   /* parents first; cycles were rejected earlier */
	const cw_issued *cur = cw_state_current(c->st, ca->name);
	int new_key = 0;
	const char *reason = authority_reason(c, ca, cur, &new_key);
	if (!reason || !cp->in_scope)
		return;
	if (ca->parent_ref) {
		time_t parent_end = authority_end(c, ca->parent_ref);
		if (parent_end && c->now + (time_t)ca->spec.lifetime > parent_end) {
			char t[32];
			cw_format_time(parent_end, t);
			cw_diag *x = cw_diag_add(&c->plan->diags, CW_SEV_ERROR, &ca->pos,
						 "authority.outlived",
						 "shorten its lifetime, or renew its parent first",
						 "authority '%s' would outlive its parent '%s', which expires %s",
						 ca->name, ca->parent, t);
			x->certificate = cw_xstrdup(ca->name);
		}
	}
	cw_action_kind kind = new_key ? CW_ACT_CREATE_CA : CW_ACT_RENEW_CA;
	char *detail = NULL;
	if (new_key && cur)
		detail = cw_xasprintf("rotation: new key for authority '%s'; every certificate it "
				      "signed is reissued and clients must install the new CA", ca->name);
	else if (!strcmp(reason, "renewal-due") || !strcmp(reason, "expired"))
		detail = describe_dates("current certificate expires", cur->not_after);
	size_t a = cw_plan_add(c->plan, kind, ca->name, NULL, reason, detail);
	free(detail);
	set_current(c->plan, a, cur);
	cp->action = (long)a;
	cp->new_key = new_key;
	if (ca->parent_ref && ca_of(c, ca->parent_ref)->action >= 0)
		cw_plan_add_dep(c->plan, a, (size_t)ca_of(c, ca->parent_ref)->action);
}

/* ---- certificates ---- */

static const char *certificate_reason(diff_ctx *c, const cw_certificate *cert,
				      const cw_issued *cur, char **detail)
{
	const cw_authority *ca = cert->issuer_ref;
	if (!cur)
		return "missing";
	if (!str_eq(cur->issuer, cert->issuer)) {
		*detail = cw_xasprintf("issued by '%s', inventory says '%s'", cur->issuer, cert->issuer);
		return "issuer-changed";
	}
	const cw_issued *cacur = cw_state_current(c->st, ca->name);
	if (ca_of(c, ca)->new_key || (cacur && !str_eq(cur->issuer_key_id, cacur->key_id))) {
		*detail = cw_xasprintf("authority '%s' has a new key", ca->name);
		return "issuer-changed";
	}
	const char *changed = spec_change(&cert->spec, issued_crl_url(ca), &cur->spec);
	if (changed) {
		*detail = changed_fields(&cert->spec, issued_crl_url(ca), &cur->spec);
		return changed;
	}
	if (not_yet_valid(c, cur->not_before)) {
		*detail = describe_dates("valid only from", cur->not_before);
		return "not-yet-valid";
	}
	if (c->now >= cur->not_after) {
		*detail = describe_dates("expired", cur->not_after);
		return "expired";
	}
	time_t renew = cw_renew_at(&cert->spec.renew, cur->not_before, cur->not_after);
	if (c->now >= renew) {
		char na[32];
		cw_format_time(cur->not_after, na);
		char *d = describe_dates("renewal was due", renew);
		*detail = cw_xasprintf("%s; expires %s", d, na);
		free(d);
		return "renewal-due";
	}
	return NULL;
}

static void check_outlives_issuer(diff_ctx *c, const cw_certificate *cert)
{
	time_t ca_end = authority_end(c, cert->issuer_ref);
	time_t end = c->now + (time_t)cert->spec.lifetime;
	if (!ca_end || end <= ca_end)
		return;
	char t[32];
	cw_format_time(ca_end, t);
	cw_diag *x = cw_diag_add(&c->plan->diags, CW_SEV_ERROR, &cert->pos, "authority.outlived",
				 "shorten the certificate's lifetime, or renew the authority first",
				 "certificate '%s' would outlive its authority '%s', which expires %s",
				 cert->name, cert->issuer, t);
	x->certificate = cw_xstrdup(cert->name);
}

static void add_chain_deps(diff_ctx *c, size_t action, const cw_authority *ca)
{
	for (; ca; ca = ca->parent_ref)
		if (ca_of(c, ca)->action >= 0)
			cw_plan_add_dep(c->plan, action, (size_t)ca_of(c, ca)->action);
}

static int chain_changes(diff_ctx *c, const cw_authority *ca)
{
	for (; ca; ca = ca->parent_ref)
		if (ca_of(c, ca)->action >= 0)
			return 1;
	return 0;
}

static void plan_certificate(diff_ctx *c, size_t idx)
{
	const cw_certificate *cert = &c->inv->certificates[idx];
	c->cert_action[idx] = -1;
	if (!certificate_in_scope(c, cert))
		return;
	if (cert->revoked)
		return; /* plan_revocations takes it */
	const cw_issued *newest = newest_entry(c, cert->name);
	if (newest && newest->revoked && !str_eq(newest->revoke_reason, "superseded")) {
		cw_diag *x = cw_diag_add(&c->plan->diags, CW_SEV_ERROR, &cert->pos, "revocation.final",
					 "keep `revoked:` on the entry; to issue again for this "
					 "identity, give the certificate a new name",
					 "certificate '%s': serial %s was revoked (%s): a revocation is final "
					 "and cannot be taken back", cert->name, newest->serial,
					 newest->revoke_reason ? newest->revoke_reason : "unspecified");
		x->certificate = cw_xstrdup(cert->name);
		return;
	}
	const cw_issued *cur = cw_state_current(c->st, cert->name);
	char *detail = NULL;
	const char *reason = certificate_reason(c, cert, cur, &detail);
	if (!reason)
		return;
	check_outlives_issuer(c, cert);
	size_t a = cw_plan_add(c->plan, CW_ACT_ISSUE, cert->name, NULL, reason, detail);
	free(detail);
	set_current(c->plan, a, cur);
	add_chain_deps(c, a, cert->issuer_ref);
	c->cert_action[idx] = (long)a;
}

/* ---- deployments ---- */

static int fingerprint_was_ours(const cw_state *st, const char *name, const char *fp)
{
	for (size_t i = 0; i < st->nissued; i++)
		if (!strcmp(st->issued[i].name, name) && !strcmp(st->issued[i].fingerprint, fp))
			return 1;
	return 0;
}

static const char *missing_binding(const cw_deployment *d, const cw_live_slot *slot)
{
	for (size_t i = 0; i < d->nbind; i++) {
		int found = 0;
		for (size_t j = 0; j < slot->obs.nbound && !found; j++)
			found = !strcmp(d->bind[i], slot->obs.bound[j]);
		if (!found)
			return d->bind[i];
	}
	return NULL;
}

/* Why the deployment needs work, given what the target holds; NULL when it is right.
 * A failed or interrupted deploy of the current certificate is redone even when the
 * target already shows it: the failing step may have been the reload that makes the
 * service use it. */
static const char *deployment_reason(diff_ctx *c, const cw_certificate *cert,
				     const cw_deployment *d, const cw_issued *cur, int reissue,
				     const cw_live_slot *slot, const cw_deploy_record *rec,
				     char **detail)
{
	if (reissue)
		return "new-certificate";
	if (rec && cur && str_eq(rec->serial, cur->serial)) {
		if (rec->status == CW_DEPLOY_FAILED) {
			*detail = cw_xasprintf("attempt %d failed: %s", rec->attempts,
					       rec->last_error ? rec->last_error : "unknown error");
			return "deploy-failed";
		}
		if (rec->status == CW_DEPLOY_STARTED)
			return "deploy-interrupted";
	}
	if (!slot) /* target not observed: only recorded facts can speak */
		return rec && rec->status == CW_DEPLOY_OK && cur && str_eq(rec->serial, cur->serial)
			       ? NULL
			       : "not-deployed";
	if (!slot->obs.present)
		return "not-deployed";
	if (!cur || strcmp(slot->fingerprint, cur->fingerprint)) {
		if (fingerprint_was_ours(c->st, cert->name, slot->fingerprint))
			return "outdated";
		*detail = cw_xasprintf("target holds %.16s..., not the issued %.16s...",
				       slot->fingerprint, cur ? cur->fingerprint : "-");
		return "drift:fingerprint";
	}
	if (rec && rec->status == CW_DEPLOY_OK && rec->slot_digest[0] && slot->obs.digest &&
	    strcmp(rec->slot_digest, slot->obs.digest)) {
		*detail = cw_xstrdup(slot->obs.note ? slot->obs.note
						    : "the key, chain or CA files (or their modes) changed");
		return "drift:files";
	}
	const char *unbound = missing_binding(d, slot);
	if (unbound) {
		*detail = cw_xasprintf("'%s' does not use this certificate", unbound);
		return "binding-missing";
	}
	if (chain_changes(c, cert->issuer_ref))
		return "chain-changed";
	char chain[65];
	if (rec && rec->status == CW_DEPLOY_OK && rec->chain_digest[0] &&
	    cw_chain_digest(c->st, cert->issuer_ref, chain) == 0 && strcmp(chain, rec->chain_digest)) {
		*detail = cw_xstrdup("an authority above it has a new certificate since it was deployed");
		return "chain-changed";
	}
	return NULL;
}

static void add_deploy_steps(cw_plan *p, size_t a, const cw_deployment *d, const cw_target *t,
			     int replaces)
{
	const cw_target_ops *ops = cw_target_type(t->type);
	unsigned caps = ops ? ops->caps : 0;
	cw_plan_add_step(p, a, "upload");
	if (caps & CW_TARGET_CAN_BIND)
		for (size_t i = 0; i < d->nbind; i++) {
			char *s = cw_xasprintf("bind %s", d->bind[i]);
			cw_plan_add_step(p, a, s);
			free(s);
		}
	if (caps & CW_TARGET_NEEDS_ACTIVATE)
		cw_plan_add_step(p, a, "activate");
	cw_plan_add_step(p, a, "verify");
	if (ops && ops->remove && replaces)
		cw_plan_add_step(p, a, "clean up previous");
}

/* A device that states which key types it takes refuses the others at plan time. */
static int key_refused(diff_ctx *c, const cw_certificate *cert, const cw_deployment *d,
		       const cw_live_target *lt)
{
	if (!lt || !lt->ok || !lt->facts.accepted_keys)
		return 0;
	if (lt->facts.accepted_keys & (1u << cert->spec.key))
		return 0;
	cw_diag *x = cw_diag_add(&c->plan->diags, CW_SEV_ERROR, &d->pos, "target.key-type", NULL,
				 "certificate '%s': target '%s' (%s) does not accept %s keys; "
				 "nothing will be deployed there",
				 cert->name, d->target, lt->facts.version ? lt->facts.version : "device",
				 cw_key_type_name(cert->spec.key));
	x->certificate = cw_xstrdup(cert->name);
	x->target = cw_xstrdup(d->target);
	return 1;
}

/* A revoked certificate leaves every target: the slot is emptied (files removed), and the
 * plan says so, since the service there is left without this certificate. */
static void plan_revoked_deployment(diff_ctx *c, const cw_certificate *cert,
				    const cw_deployment *d)
{
	const cw_live_slot *slot = cw_live_slot_find(c->live, d->target, cert->name);
	const cw_deploy_record *rec = cw_state_deploy_record(c->st, d->target, cert->name);
	int present = slot && slot->ok ? slot->obs.present
				       : rec && rec->status != CW_DEPLOY_REMOVED;
	if (!present)
		return;
	size_t a = cw_plan_add(c->plan, CW_ACT_REMOVE, cert->name, d->target, "revoked",
			       "the target is left without this certificate");
	if (slot && slot->ok && slot->obs.present)
		c->plan->actions[a].live_fingerprint = cw_xstrdup(slot->fingerprint);
}

static void plan_deployment(diff_ctx *c, size_t idx, const cw_deployment *d)
{
	const cw_certificate *cert = &c->inv->certificates[idx];
	if (!certificate_in_scope(c, cert) || !deployment_in_scope(c, d))
		return;
	if (cert->revoked) {
		plan_revoked_deployment(c, cert, d);
		return;
	}
	const cw_live_target *lt = cw_live_target_find(c->live, d->target);
	if (key_refused(c, cert, d, lt))
		return;
	const cw_live_slot *slot = cw_live_slot_find(c->live, d->target, cert->name);
	if (slot && !slot->ok)
		slot = NULL;
	const cw_issued *cur = cw_state_current(c->st, cert->name);
	const cw_deploy_record *rec = cw_state_deploy_record(c->st, d->target, cert->name);
	char *detail = NULL;
	const char *reason = deployment_reason(c, cert, d, cur, c->cert_action[idx] >= 0, slot,
					       rec, &detail);
	if (!reason)
		return;
	size_t a = cw_plan_add(c->plan, CW_ACT_DEPLOY, cert->name, d->target, reason, detail);
	free(detail);
	set_current(c->plan, a, cur);
	if (slot && slot->obs.present)
		c->plan->actions[a].live_fingerprint = cw_xstrdup(slot->fingerprint);
	if (c->cert_action[idx] >= 0)
		cw_plan_add_dep(c->plan, a, (size_t)c->cert_action[idx]);
	add_chain_deps(c, a, cert->issuer_ref);
	add_deploy_steps(c->plan, a, d, d->target_ref, slot && slot->obs.present);
}

/* ---- removals: recorded deployments the inventory no longer asks for ---- */

static int still_deployed(const cw_certificate *cert, const char *target)
{
	for (size_t i = 0; cert && i < cert->ndeploy; i++)
		if (!strcmp(cert->deploy[i].target, target))
			return 1;
	return 0;
}

static void plan_removal(diff_ctx *c, const cw_deploy_record *rec)
{
	if (rec->status == CW_DEPLOY_REMOVED || rec->target[0] == '@')
		return; /* "@export" and the like are certwright's own, not targets */
	const cw_certificate *cert = cw_inventory_certificate(c->inv, rec->certificate);
	if (still_deployed(cert, rec->target))
		return;
	const cw_diff_filter *f = c->filter;
	if (f && f->nonly_targets && !in_list(rec->target, f->only_targets, f->nonly_targets))
		return;
	if (f && f->nonly_certificates &&
	    !in_list(rec->certificate, f->only_certificates, f->nonly_certificates))
		return;
	if (!cw_inventory_target(c->inv, rec->target)) {
		if (rec->status == CW_DEPLOY_FAILED && !rec->slot_digest[0])
			return; /* never got there: nothing to leave behind */
		cw_diag_add(&c->plan->diags, CW_SEV_WARNING, NULL, "target.removed",
			    "certwright forgets it after the next apply",
			    "target '%s' is no longer in the inventory: certificate '%s' stays on it "
			    "(certwright cannot reach a target it has no settings for)",
			    rec->target, rec->certificate);
		return;
	}
	const char *reason = cert ? "undeployed" : "removed-from-inventory";
	size_t a = cw_plan_add(c->plan, CW_ACT_REMOVE, rec->certificate, rec->target, reason, NULL);
	const cw_live_slot *slot = cw_live_slot_find(c->live, rec->target, rec->certificate);
	if (slot && slot->ok && slot->obs.present)
		c->plan->actions[a].live_fingerprint = cw_xstrdup(slot->fingerprint);
}

/* ---- revocation ---- */

static size_t add_revoke(diff_ctx *c, const cw_issued *e, const char *reason, const char *why)
{
	char *detail = cw_xasprintf("serial %s, reason %s", e->serial, why);
	size_t a = cw_plan_add(c->plan, CW_ACT_REVOKE, e->name, NULL, reason, detail);
	free(detail);
	c->plan->actions[a].current_serial = cw_xstrdup(e->serial);
	c->plan->actions[a].current_fingerprint = cw_xstrdup(e->fingerprint);
	c->plan->actions[a].current_not_after = e->not_after;
	return a;
}

static void plan_requested_revocations(diff_ctx *c, const cw_certificate *cert)
{
	const entry_list *l = entries_of(c, cert->name);
	for (size_t i = 0; l && i < l->n; i++) {
		const cw_issued *e = &c->st->issued[l->idx[i]];
		if (revocable(c, e))
			add_revoke(c, e, "revoke-requested", cert->revoke_reason);
	}
}

/* The actions a superseded revocation must wait for: the certificate's issue, each of its
 * deploys and its export in this plan. -1 when one of its deployments (or its bundle) is
 * neither planned here nor known to hold the current certificate — out of --target scope,
 * refused by the device, unreachable — then what it replaces must stay valid for now. */
static int replacement_actions(diff_ctx *c, const cw_certificate *cert, size_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	int reissued = c->cert_action[cert - c->inv->certificates] >= 0;
	for (size_t i = 0; i < c->plan->n; i++) {
		const cw_action *a = &c->plan->actions[i];
		if ((a->kind == CW_ACT_DEPLOY || a->kind == CW_ACT_ISSUE || a->kind == CW_ACT_EXPORT) &&
		    !strcmp(a->name, cert->name)) {
			*out = cw_xrealloc(*out, (*n + 1) * sizeof(**out));
			(*out)[(*n)++] = i;
		}
	}
	const cw_issued *cur = cw_state_current(c->st, cert->name);
	for (size_t j = 0; j <= cert->ndeploy; j++) {
		int is_export = j == cert->ndeploy;
		if (is_export && !cert->export.enabled)
			continue;
		const char *target = is_export ? "@export" : cert->deploy[j].target;
		int planned = 0;
		for (size_t i = 0; i < *n && !planned; i++) {
			const cw_action *a = &c->plan->actions[(*out)[i]];
			planned = is_export ? a->kind == CW_ACT_EXPORT
					    : a->kind == CW_ACT_DEPLOY && !strcmp(a->target, target);
		}
		const cw_deploy_record *rec = cw_state_deploy_record(c->st, target, cert->name);
		int holds_current = !reissued && rec && rec->status == CW_DEPLOY_OK && cur &&
				    str_eq(rec->serial, cur->serial);
		if (!planned && !holds_current)
			return -1;
	}
	return 0;
}

/* revoke_superseded: what a renewal replaced is revoked once the new certificate is
 * deployed and verified everywhere — in this plan after its deploys, or later. */
static void plan_superseded(diff_ctx *c, const cw_certificate *cert)
{
	const entry_list *l = entries_of(c, cert->name);
	if (!l)
		return;
	int reissued = c->cert_action[cert - c->inv->certificates] >= 0;
	const cw_issued *cur = cw_state_current(c->st, cert->name);
	size_t *deps, ndeps;
	if (replacement_actions(c, cert, &deps, &ndeps) != 0) {
		free(deps);
		return;
	}
	for (size_t i = 0; i < l->n; i++) {
		const cw_issued *e = &c->st->issued[l->idx[i]];
		if (!revocable(c, e) || (!reissued && e == cur))
			continue;
		size_t a = add_revoke(c, e, "superseded", "superseded");
		for (size_t d = 0; d < ndeps; d++)
			cw_plan_add_dep(c->plan, a, deps[d]);
	}
	free(deps);
}

/* Certificates that left the inventory: their authority's on_remove decides. */
static void plan_removed_names(diff_ctx *c)
{
	for (size_t li = 0; li < c->nlists; li++) {
		const entry_list *l = &c->lists[li];
		const cw_issued *first = &c->st->issued[l->idx[0]];
		if (first->is_ca || cw_inventory_certificate(c->inv, first->name) ||
		    cw_inventory_authority(c->inv, first->name))
			continue;
		const cw_diff_filter *f = c->filter;
		if (f && (f->nonly_targets || f->nonly_certificates))
			continue;
		const cw_authority *ca = cw_inventory_authority(c->inv, first->issuer);
		int warned = 0;
		for (size_t i = 0; i < l->n; i++) {
			const cw_issued *e = &c->st->issued[l->idx[i]];
			if (!revocable(c, e))
				continue;
			if (ca && ca->on_remove_revoke) {
				add_revoke(c, e, "removed-from-inventory", "cessation-of-operation");
			} else if (!warned++) {
				char t[32];
				cw_format_time(e->not_after, t);
				cw_diag *x = cw_diag_add(&c->plan->diags, CW_SEV_WARNING, ca ? &ca->pos : NULL,
							 "revocation.forget", NULL,
							 "certificate '%s' left the inventory; %s: its "
							 "certificates stay valid until they expire (%s)",
							 e->name, ca ? "authority policy on_remove: forget"
								     : "its authority is gone too", t);
				x->certificate = cw_xstrdup(e->name);
			}
		}
	}
}

static void plan_revocations(diff_ctx *c)
{
	for (size_t i = 0; i < c->inv->ncertificates; i++) {
		const cw_certificate *cert = &c->inv->certificates[i];
		if (!certificate_in_scope(c, cert))
			continue;
		if (cert->revoked)
			plan_requested_revocations(c, cert);
		else if (cert->revoke_superseded)
			plan_superseded(c, cert);
	}
	plan_removed_names(c);
}

/* ---- CRLs ---- */

static int issued_by(const cw_issued *e, const cw_authority *ca)
{
	return !strcmp(e->issuer, ca->name) && strcmp(e->name, ca->name);
}

/* The serials the authority's CRL must list once this plan has run. */
static void crl_digest_wanted(diff_ctx *c, const cw_authority *ca, char out[65], int *changes)
{
	char **serials = NULL;
	size_t n = 0;
	*changes = 0;
	for (size_t i = 0; i < c->st->nissued; i++) {
		const cw_issued *e = &c->st->issued[i];
		if (issued_by(e, ca) && e->revoked && c->now < e->not_after) {
			serials = cw_xrealloc(serials, (n + 1) * sizeof(char *));
			serials[n++] = e->serial;
		}
	}
	for (size_t i = 0; i < c->plan->n; i++) {
		const cw_action *a = &c->plan->actions[i];
		if (a->kind != CW_ACT_REVOKE)
			continue;
		const cw_issued *e = cw_state_find(c->st, ca->name, a->current_serial);
		if (!e || !issued_by(e, ca))
			continue;
		serials = cw_xrealloc(serials, (n + 1) * sizeof(char *));
		serials[n++] = e->serial;
		*changes = 1;
	}
	cw_crl_serials_digest(serials, n, out);
	free(serials);
}

static const char *crl_reason(diff_ctx *c, const cw_authority *ca, const cw_crl_record *rec,
			      const char *digest, int changes)
{
	if (!rec)
		return "missing";
	if (ca_of(c, ca)->action >= 0)
		return "issuer-changed";
	const cw_issued *cacur = cw_state_current(c->st, ca->name);
	if (rec->ca_fingerprint[0] && cacur && strcmp(rec->ca_fingerprint, cacur->fingerprint))
		return "issuer-changed"; /* signed under an older certificate of the authority */
	if (changes || strcmp(rec->revoked_digest, digest))
		return "revocation-changed";
	if (not_yet_valid(c, rec->this_update))
		return "not-yet-valid";
	if (c->now >= cw_renew_at(&ca->crl_renew, rec->this_update, rec->next_update))
		return "crl-due";
	return NULL;
}

/* Targets that take CRLs and hold a certificate from under this authority. */
static int target_wants_crl(diff_ctx *c, const cw_target *t, const cw_authority *ca)
{
	const cw_target_ops *ops = cw_target_type(t->type);
	if (!ops || !ops->takes_crl || !ops->deploy_crl || !ops->takes_crl(t->config))
		return 0;
	for (size_t i = 0; i < c->inv->ncertificates; i++) {
		const cw_certificate *cert = &c->inv->certificates[i];
		int under = 0;
		for (const cw_authority *a = cert->issuer_ref; a && !under; a = a->parent_ref)
			under = a == ca;
		for (size_t j = 0; under && j < cert->ndeploy; j++)
			if (!strcmp(cert->deploy[j].target, t->name))
				return 1;
	}
	return 0;
}

static void plan_crl(diff_ctx *c, const cw_authority *ca)
{
	if (!ca->crl_lifetime || !ca_of(c, ca)->in_scope)
		return;
	char digest[65];
	int changes;
	crl_digest_wanted(c, ca, digest, &changes);
	const cw_crl_record *rec = cw_state_crl(c->st, ca->name);
	const char *reason = crl_reason(c, ca, rec, digest, changes);
	long publish = -1;
	if (reason) {
		char *detail = rec ? cw_xasprintf("CRL number %llu", rec->number + 1) : NULL;
		publish = (long)cw_plan_add(c->plan, CW_ACT_PUBLISH_CRL, ca->name, NULL, reason, detail);
		free(detail);
		if (ca_of(c, ca)->action >= 0)
			cw_plan_add_dep(c->plan, (size_t)publish, (size_t)ca_of(c, ca)->action);
		/* revocations come first, but a failed one must not hold back the CRL of the
		 * others: apply builds the CRL from what is recorded */
	}
	for (size_t t = 0; t < c->inv->ntargets; t++) {
		const cw_target *tg = &c->inv->targets[t];
		const cw_diff_filter *f = c->filter;
		if (f && f->nonly_targets && !in_list(tg->name, f->only_targets, f->nonly_targets))
			continue;
		if (!target_wants_crl(c, tg, ca))
			continue;
		if (publish >= 0) {
			size_t a = cw_plan_add(c->plan, CW_ACT_DEPLOY_CRL, ca->name, tg->name, "new-crl", NULL);
			cw_plan_add_dep(c->plan, a, (size_t)publish);
		} else if (!cw_crl_record_on(rec, tg->name)) {
			cw_plan_add(c->plan, CW_ACT_DEPLOY_CRL, ca->name, tg->name, "not-deployed", NULL);
		}
	}
}

/* ---- exports (client bundles) ---- */

static void plan_export(diff_ctx *c, size_t idx)
{
	const cw_certificate *cert = &c->inv->certificates[idx];
	if (!cert->export.enabled || cert->revoked || !certificate_in_scope(c, cert))
		return;
	const char *reason = NULL;
	if (c->cert_action[idx] >= 0) {
		reason = "new-certificate";
	} else {
		const cw_issued *cur = cw_state_current(c->st, cert->name);
		const cw_deploy_record *rec = cw_state_deploy_record(c->st, "@export", cert->name);
		const cw_live_slot *slot = cw_live_slot_find(c->live, "@export", cert->name);
		if (!cur || !rec || rec->status != CW_DEPLOY_OK || !str_eq(rec->serial, cur->serial) ||
		    (slot && slot->ok && !slot->obs.present))
			reason = "not-exported";
	}
	if (!reason)
		return;
	size_t a = cw_plan_add(c->plan, CW_ACT_EXPORT, cert->name, NULL, reason, cert->export.path);
	if (c->cert_action[idx] >= 0)
		cw_plan_add_dep(c->plan, a, (size_t)c->cert_action[idx]);
}

/* ---- authorities near their end ---- */

static void warn_expiring_authorities(diff_ctx *c)
{
	for (size_t i = 0; i < c->inv->nauthorities; i++) {
		const cw_authority *ca = &c->inv->authorities[i];
		const cw_issued *cur = cw_state_current(c->st, ca->name);
		if (!cur || ca_of(c, ca)->action >= 0 || c->now + ca->expiry_warning < cur->not_after)
			continue;
		char t[32];
		cw_format_time(cur->not_after, t);
		cw_diag *x = cw_diag_add(&c->plan->diags, CW_SEV_WARNING, &ca->pos, "authority.expiring",
					 "renew it (lower renew_before or change its lifetime) before "
					 "clients stop trusting what it signed",
					 "authority '%s' expires %s", ca->name, t);
		x->certificate = cw_xstrdup(ca->name);
	}
}

/* ---- observation problems become findings ---- */

static void report_unreachable(diff_ctx *c)
{
	for (size_t i = 0; i < c->live->ntargets; i++) {
		const cw_live_target *lt = &c->live->targets[i];
		if (lt->ok)
			continue;
		const cw_target *t = cw_inventory_target(c->inv, lt->name);
		/* adapters name the target themselves: don't say it twice */
		char *prefix = cw_xasprintf("target '%s': ", lt->name);
		const char *msg = lt->error ? lt->error : "could not be observed";
		int named = !strncmp(msg, prefix, strlen(prefix));
		cw_diag *x = cw_diag_add(&c->plan->diags, CW_SEV_ERROR, t ? &t->pos : NULL,
					 "target.unreachable", NULL, "%s%s", named ? "" : prefix, msg);
		free(prefix);
		x->target = cw_xstrdup(lt->name);
	}
}

int cw_diff(cw_plan *out, const cw_inventory *inv, const cw_state *st, const cw_live *live,
	    time_t now, const cw_diff_filter *filter)
{
	diff_ctx c;
	memset(&c, 0, sizeof(c));
	c.plan = out;
	c.inv = inv;
	c.st = st;
	c.live = live;
	c.now = now;
	c.filter = filter;
	index_names(&c);
	out->now = now;
	memcpy(out->inventory_digest, inv->digest, sizeof(out->inventory_digest));
	memcpy(out->state_digest, st->digest, sizeof(out->state_digest));
	memcpy(out->live_digest, live->digest, sizeof(out->live_digest));
	c.cas = cw_xcalloc(inv->nauthorities, sizeof(*c.cas));
	c.cert_action = cw_xcalloc(inv->ncertificates, sizeof(*c.cert_action));
	for (size_t i = 0; i < inv->nauthorities; i++) {
		c.cas[i].ca = &inv->authorities[i];
		c.cas[i].action = -1;
	}
	compute_scope(&c);
	for (size_t i = 0; i < inv->nauthorities; i++)
		plan_authority(&c, &inv->authorities[i]);
	for (size_t i = 0; i < inv->ncertificates; i++)
		plan_certificate(&c, i);
	for (size_t i = 0; i < inv->ncertificates; i++)
		for (size_t j = 0; j < inv->certificates[i].ndeploy; j++)
			plan_deployment(&c, i, &inv->certificates[i].deploy[j]);
	for (size_t i = 0; i < st->ndeploys; i++)
		plan_removal(&c, &st->deploys[i]);
	for (size_t i = 0; i < inv->ncertificates; i++)
		plan_export(&c, i);
	plan_revocations(&c);     /* after exports: a superseded one waits for the new bundle */
	for (size_t i = 0; i < inv->nauthorities; i++)
		plan_crl(&c, &inv->authorities[i]);
	warn_expiring_authorities(&c);
	report_unreachable(&c);
	release_names(&c);
	free(c.cas);
	free(c.cert_action);
	return 0;
}
