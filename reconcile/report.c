/*
 * report — builds the public state report in memory (see report.h).
 *
 * Two rules shape everything here:
 *  - only public facts: the inputs are the inventory, the recorded state and the CA
 *    certificates; no function in this file can reach a private key;
 *  - determinism: the same inputs give the same bytes (sorted JSON keys, arrays in a
 *    defined order, files sorted by path, no clock), so an idle run commits nothing.
 */
#include "reconcile/report.h"

#include "issuers/crl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile/x509.h"

/* Older issuances listed per name: enough to trace recent rotations, bounded so a
 * short-lived certificate renewed daily does not grow its file forever. */
#define REPORT_HISTORY_MAX 20

#define JSON_FLAGS (JSON_INDENT(2) | JSON_SORT_KEYS)

/* ---------------------------------------------------------------- files */

static void report_add(cw_report *r, const char *path, const void *data, size_t len)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->files = cw_xrealloc(r->files, r->cap * sizeof(*r->files));
	}
	cw_report_file *f = &r->files[r->n++];
	f->path = cw_xstrdup(path);
	cw_buf_init(&f->content);
	cw_buf_add(&f->content, data, len);
}

static int report_add_json(cw_report *r, const char *path, const json_t *doc, cw_error *err)
{
	char *text = json_dumps(doc, JSON_FLAGS);
	if (!text)
		return cw_error_set(err, CW_EINTERNAL, "report file '%s': cannot encode json", path);
	cw_buf b = CW_BUF_INIT;
	cw_buf_adds(&b, text);
	cw_buf_adds(&b, "\n");
	free(text);
	report_add(r, path, b.buf, b.len);
	cw_buf_release(&b);
	return 0;
}

static int file_path_cmp(const void *a, const void *b)
{
	return strcmp(((const cw_report_file *)a)->path, ((const cw_report_file *)b)->path);
}

void cw_report_release(cw_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->files[i].path);
		cw_buf_release(&r->files[i].content);
	}
	free(r->files);
	memset(r, 0, sizeof(*r));
}

/* Names become file names: refuse anything that could leave the report folder or hide
 * a file, even though the inventory validates names too (defence in depth). */
static int check_file_name(const char *kind, const char *name, cw_error *err)
{
	int ok = name && *name && name[0] != '.';
	for (const char *p = name; ok && *p; p++)
		if (*p == '/' || *p == '\\' || (unsigned char)*p < 0x20)
			ok = 0;
	if (!ok)
		return cw_error_set(err, CW_EINVAL, "%s '%s': name cannot be used as a report file name",
				    kind, name ? name : "");
	return 0;
}

/* ---------------------------------------------------------------- json values */

/* A JSON string even for text that is not valid UTF-8 (a device's error message can be
 * anything): invalid bytes become '?', so the report is still written. */
static json_t *jstr(const char *s)
{
	if (!s)
		return json_null();
	json_t *v = json_string(s);
	if (v)
		return v;
	char *copy = cw_xstrdup(s);
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v ? v : json_null();
}

static json_t *jtime(time_t t)
{
	char buf[32];
	cw_format_time(t, buf);
	return json_string(buf);
}

static json_t *jstr_array(char *const *items, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, jstr(items[i]));
	return a;
}

static json_t *jsans(const cw_cert_spec *spec)
{
	json_t *a = json_array();
	for (size_t i = 0; i < spec->nsans; i++) {
		char *s = cw_xasprintf("%s:%s", cw_san_type_name(spec->sans[i].type),
				       spec->sans[i].value);
		json_array_append_new(a, jstr(s));
		free(s);
	}
	return a;
}

/* ---------------------------------------------------------------- facts */

/* What certificates and authorities share: the facts of the current issuance. renew
 * comes from the inventory (what will drive the next renewal), dates from the
 * certificate actually issued. */
static json_t *issued_facts(const cw_issued *cur, const cw_renew *renew)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", jstr(cur->name));
	json_object_set_new(o, "issuer", jstr(cur->issuer));
	json_object_set_new(o, "serial", jstr(cur->serial));
	json_object_set_new(o, "fingerprint", jstr(cur->fingerprint));
	json_object_set_new(o, "subject", jstr(cur->subject));
	json_object_set_new(o, "sans", jsans(&cur->spec));
	json_object_set_new(o, "key", jstr(cw_key_type_name(cur->spec.key)));
	json_object_set_new(o, "not_before", jtime(cur->not_before));
	json_object_set_new(o, "not_after", jtime(cur->not_after));
	json_object_set_new(o, "renew_at", jtime(cw_renew_at(renew, cur->not_before, cur->not_after)));
	return o;
}

static int issued_newest_first(const void *a, const void *b)
{
	const cw_issued *x = *(const cw_issued *const *)a, *y = *(const cw_issued *const *)b;
	if (x->seq != y->seq)
		return x->seq > y->seq ? -1 : 1;
	return strcmp(x->serial ? x->serial : "", y->serial ? y->serial : "");
}

/* Every other issuance for the name, newest first, at most REPORT_HISTORY_MAX. */
static json_t *history_json(const cw_state *st, const cw_issued *cur)
{
	const cw_issued **older = cw_xcalloc(st->nissued ? st->nissued : 1, sizeof(*older));
	size_t n = 0;
	for (size_t i = 0; i < st->nissued; i++) {
		const cw_issued *e = &st->issued[i];
		if (e != cur && e->name && !strcmp(e->name, cur->name))
			older[n++] = e;
	}
	qsort(older, n, sizeof(*older), issued_newest_first);
	json_t *a = json_array();
	for (size_t i = 0; i < n && i < REPORT_HISTORY_MAX; i++) {
		json_t *h = json_object();
		json_object_set_new(h, "issuer", jstr(older[i]->issuer));
		json_object_set_new(h, "serial", jstr(older[i]->serial));
		json_object_set_new(h, "not_after", jtime(older[i]->not_after));
		json_object_set_new(h, "revoked", json_boolean(older[i]->revoked));
		json_array_append_new(a, h);
	}
	free(older);
	return a;
}

/* ---------------------------------------------------------------- deployments */

/* One row per target of a certificate: every deployment the inventory declares, plus
 * any recorded deployment to a target no longer declared that is still installed
 * there (people should see what is left on a device). rec may be NULL: not yet tried. */
typedef struct {
	const char *target;
	const cw_deploy_record *rec;
} target_row;

typedef struct {
	target_row *rows;
	size_t n;
} target_rows;

static int target_row_cmp(const void *a, const void *b)
{
	return strcmp(((const target_row *)a)->target, ((const target_row *)b)->target);
}

static int declared(const cw_certificate *cert, const char *target)
{
	for (size_t i = 0; i < cert->ndeploy; i++)
		if (cert->deploy[i].target && !strcmp(cert->deploy[i].target, target))
			return 1;
	return 0;
}

static void target_rows_collect(target_rows *out, const cw_certificate *cert, const cw_state *st)
{
	out->rows = cw_xcalloc(cert->ndeploy + st->ndeploys + 1, sizeof(*out->rows));
	out->n = 0;
	for (size_t i = 0; i < cert->ndeploy; i++) {
		const char *t = cert->deploy[i].target;
		if (!t)
			continue;
		out->rows[out->n].target = t;
		out->rows[out->n].rec = cw_state_deploy_record(st, t, cert->name);
		out->n++;
	}
	for (size_t i = 0; i < st->ndeploys; i++) {
		const cw_deploy_record *rec = &st->deploys[i];
		if (!rec->certificate || !rec->target || strcmp(rec->certificate, cert->name))
			continue;
		if (rec->status == CW_DEPLOY_REMOVED || declared(cert, rec->target))
			continue;
		out->rows[out->n].target = rec->target;
		out->rows[out->n].rec = rec;
		out->n++;
	}
	qsort(out->rows, out->n, sizeof(*out->rows), target_row_cmp);
}

/* "not-deployed" for a declared deployment with no record yet. */
static const char *target_row_status(const target_row *row)
{
	return row->rec ? cw_deploy_status_name(row->rec->status) : "not-deployed";
}

static json_t *target_row_json(const target_row *row)
{
	const cw_deploy_record *rec = row->rec;
	json_t *o = json_object();
	json_object_set_new(o, "target", jstr(row->target));
	json_object_set_new(o, "status", jstr(target_row_status(row)));
	json_object_set_new(o, "serial", jstr(rec ? rec->serial : NULL));
	json_object_set_new(o, "fingerprint", jstr(rec && rec->fingerprint[0] ? rec->fingerprint : NULL));
	json_object_set_new(o, "attempts", json_integer(rec ? rec->attempts : 0));
	json_object_set_new(o, "last_error", jstr(rec ? rec->last_error : NULL));
	json_object_set_new(o, "bound", rec ? jstr_array(rec->bound, rec->nbound) : json_array());
	return o;
}

/* ---------------------------------------------------------------- per-object files */

static int add_certificate_json(cw_report *r, const cw_certificate *cert, const cw_issued *cur,
				const cw_state *st, cw_error *err)
{
	json_t *o = issued_facts(cur, &cert->spec.renew);
	json_object_set_new(o, "profiles", jstr_array(cert->profiles, cert->nprofiles));
	json_object_set_new(o, "history", history_json(st, cur));
	target_rows rows;
	target_rows_collect(&rows, cert, st);
	json_t *targets = json_array();
	for (size_t i = 0; i < rows.n; i++)
		json_array_append_new(targets, target_row_json(&rows.rows[i]));
	free(rows.rows);
	json_object_set_new(o, "targets", targets);

	char *path = cw_xasprintf("certificates/%s.json", cert->name);
	int rc = report_add_json(r, path, o, err);
	free(path);
	json_decref(o);
	return rc;
}

/* authorities/<name><pem_ext> and <name><der_ext>; releases both buffers. */
static void add_pem_and_der(cw_report *r, const char *name, const char *pem_ext, cw_buf *pem,
			    const char *der_ext, cw_buf *der)
{
	char *pem_path = cw_xasprintf("authorities/%s%s", name, pem_ext);
	char *der_path = cw_xasprintf("authorities/%s%s", name, der_ext);
	report_add(r, pem_path, pem->buf, pem->len);
	report_add(r, der_path, der->buf, der->len);
	free(pem_path);
	free(der_path);
	cw_buf_release(pem);
	cw_buf_release(der);
}

/* The CA certificate as clients install it. The keystore copy is checked against the
 * recorded fingerprint: a report must never publish a CA certificate other than the
 * one certwright recorded issuing. */
static int add_authority_certs(cw_report *r, const cw_authority *ca, const cw_issued *cur,
			       cw_keystore *ks, cw_error *err)
{
	cw_buf der = CW_BUF_INIT;
	if (cw_keystore_get_cert(ks, ca->name, cur->serial, &der, err) != 0) {
		cw_buf_release(&der);
		return -1;
	}
	char fp[65];
	cw_sha256_hex(der.buf, der.len, fp);
	if (strcmp(fp, cur->fingerprint) != 0) {
		cw_buf_release(&der);
		return cw_error_set(err, CW_EINVAL,
				    "authority '%s': keystore certificate %s does not match the recorded "
				    "fingerprint", ca->name, cur->serial);
	}
	cw_buf pem = CW_BUF_INIT;
	cw_der_to_pem((const unsigned char *)der.buf, der.len, &pem);
	add_pem_and_der(r, ca->name, ".pem", &pem, ".der", &der);
	return 0;
}

/* The authority's current CRL as clients and services fetch it, PEM and DER. */
static int add_authority_crl(cw_report *r, const cw_authority *ca, const cw_crl_record *crl,
			     cw_keystore *ks, cw_error *err)
{
	cw_buf der = CW_BUF_INIT;
	if (cw_state_crl_der(ks, ca->name, &der, err) != 0) {
		cw_buf_release(&der);
		return -1;
	}
	char fp[65];
	cw_sha256_hex(der.buf, der.len, fp);
	if (strcmp(fp, crl->fingerprint)) {
		cw_buf_release(&der);
		return cw_error_set(err, CW_EINVAL, "authority '%s': keystore CRL does not match the "
				    "recorded fingerprint", ca->name);
	}
	cw_buf pem = CW_BUF_INIT;
	cw_crl_to_pem((const unsigned char *)der.buf, der.len, &pem);
	add_pem_and_der(r, ca->name, ".crl.pem", &pem, ".crl", &der);
	return 0;
}

static json_t *crl_json(const cw_crl_record *crl)
{
	json_t *o = json_object();
	json_object_set_new(o, "number", json_integer((json_int_t)crl->number));
	json_object_set_new(o, "this_update", jtime(crl->this_update));
	json_object_set_new(o, "next_update", jtime(crl->next_update));
	json_object_set_new(o, "revoked", json_integer((json_int_t)crl->nrevoked));
	json_object_set_new(o, "fingerprint", json_string(crl->fingerprint));
	json_object_set_new(o, "deployed", jstr_array(crl->deployed, crl->ndeployed));
	return o;
}

static int add_authority(cw_report *r, const cw_authority *ca, const cw_issued *cur,
			 const cw_state *st, cw_keystore *ks, cw_error *err)
{
	json_t *o = issued_facts(cur, &ca->spec.renew);
	json_object_set_new(o, "parent", jstr(ca->parent));
	json_object_set_new(o, "profiles", jstr_array(ca->profiles, ca->nprofiles));
	json_object_set_new(o, "history", history_json(st, cur));
	const cw_crl_record *crl = cw_state_crl(st, ca->name);
	json_object_set_new(o, "crl", crl ? crl_json(crl) : json_null());
	if (crl && add_authority_crl(r, ca, crl, ks, err) != 0) {
		json_decref(o);
		return -1;
	}
	char *path = cw_xasprintf("authorities/%s.json", ca->name);
	int rc = report_add_json(r, path, o, err);
	free(path);
	json_decref(o);
	if (rc != 0)
		return -1;
	return add_authority_certs(r, ca, cur, ks, err);
}

/* A certificate whose every issuance is revoked keeps a record in the report: what was
 * revoked, when and why (the entry may stay in the inventory as that record). */
static int add_revoked_json(cw_report *r, const cw_certificate *cert, const cw_state *st,
			    cw_error *err)
{
	json_t *list = json_array();
	const cw_issued *newest = NULL;
	for (size_t i = 0; i < st->nissued; i++) {
		const cw_issued *e = &st->issued[i];
		if (strcmp(e->name, cert->name) || !e->revoked)
			continue;
		json_t *x = json_object();
		json_object_set_new(x, "serial", json_string(e->serial));
		json_object_set_new(x, "revoked_at", jtime(e->revoked_at));
		json_object_set_new(x, "reason", jstr(e->revoke_reason));
		json_object_set_new(x, "not_after", jtime(e->not_after));
		json_array_append_new(list, x);
		if (!newest || e->seq > newest->seq)
			newest = e;
	}
	if (!newest) {
		json_decref(list);
		return 0; /* never issued */
	}
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(cert->name));
	json_object_set_new(o, "issuer", json_string(newest->issuer));
	json_object_set_new(o, "subject", jstr(newest->subject));
	json_object_set_new(o, "revoked", json_true());
	json_object_set_new(o, "revocations", list);
	char *path = cw_xasprintf("certificates/%s.json", cert->name);
	int rc = report_add_json(r, path, o, err);
	free(path);
	json_decref(o);
	return rc;
}

/* ---------------------------------------------------------------- README.md */

typedef struct {
	const char *name;
	const char *kind;              /* "authority" or "certificate" */
	const cw_issued *cur;          /* NULL: declared but not issued yet */
	const cw_renew *renew;
	const cw_certificate *cert;    /* NULL for authorities */
} summary_row;

/* By expiry, soonest first: that is what a reader scans for. Not yet issued last. */
static int summary_row_cmp(const void *a, const void *b)
{
	const summary_row *x = a, *y = b;
	if (!x->cur != !y->cur)
		return x->cur ? -1 : 1;
	if (x->cur && x->cur->not_after != y->cur->not_after)
		return x->cur->not_after < y->cur->not_after ? -1 : 1;
	int c = strcmp(x->kind, y->kind);
	return c ? c : strcmp(x->name, y->name);
}

/* Text inside a Markdown table cell: one line, no column breaks, no markup or HTML
 * from the outside world (subjects and device error messages are not ours). */
static void md_text(cw_buf *out, const char *s)
{
	if (!s)
		return;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f)
			cw_buf_adds(out, " ");
		else if (strchr("\\|*_`<>[]#", c))
			cw_buf_addf(out, "\\%c", c);
		else
			cw_buf_add(out, p, 1);
	}
}

typedef struct {
	size_t certificates, not_issued, authorities;
	size_t ok, failed, pending;
} summary_totals;

static void md_targets_cell(cw_buf *out, const summary_row *row, const cw_state *st,
			    summary_totals *tot)
{
	if (!row->cert) {
		cw_buf_adds(out, "—");
		return;
	}
	target_rows rows;
	target_rows_collect(&rows, row->cert, st);
	for (size_t i = 0; i < rows.n; i++) {
		const char *status = target_row_status(&rows.rows[i]);
		cw_buf_adds(out, i ? ", " : "");
		md_text(out, rows.rows[i].target);
		cw_buf_adds(out, " (");
		md_text(out, status);
		cw_buf_adds(out, ")");
		if (rows.rows[i].rec && rows.rows[i].rec->status == CW_DEPLOY_OK)
			tot->ok++;
		else if (rows.rows[i].rec && rows.rows[i].rec->status == CW_DEPLOY_FAILED)
			tot->failed++;
		else
			tot->pending++;
	}
	if (!rows.n)
		cw_buf_adds(out, "—");
	free(rows.rows);
}

static void md_row(cw_buf *out, const summary_row *row, const cw_state *st, summary_totals *tot)
{
	char na[32] = "not issued", ra[32] = "—";
	if (row->cur) {
		cw_format_time(row->cur->not_after, na);
		cw_format_time(cw_renew_at(row->renew, row->cur->not_before, row->cur->not_after), ra);
	} else if (row->cert && row->cert->revoked) {
		snprintf(na, sizeof(na), "revoked");   /* the entry stays as the record */
	}
	cw_buf_adds(out, "| ");
	md_text(out, row->name);
	cw_buf_addf(out, " | %s | ", row->kind);
	md_text(out, row->cur ? row->cur->subject : NULL);
	cw_buf_adds(out, " | ");
	md_text(out, row->cur ? row->cur->serial : NULL);
	cw_buf_addf(out, " | %s | %s | ", na, ra);
	md_targets_cell(out, row, st, tot);
	cw_buf_adds(out, " |\n");
}

static void md_failures(cw_buf *out, const summary_row *rows, size_t n, const cw_state *st)
{
	cw_buf_adds(out, "\n## Failed deployments\n\n");
	size_t listed = 0;
	for (size_t i = 0; i < n; i++) {
		if (!rows[i].cert)
			continue;
		target_rows tr;
		target_rows_collect(&tr, rows[i].cert, st);
		for (size_t j = 0; j < tr.n; j++) {
			const cw_deploy_record *rec = tr.rows[j].rec;
			if (!rec || rec->status != CW_DEPLOY_FAILED)
				continue;
			cw_buf_adds(out, "- ");
			md_text(out, rows[i].name);
			cw_buf_adds(out, " on ");
			md_text(out, tr.rows[j].target);
			cw_buf_addf(out, " (%d attempt%s): ", rec->attempts, rec->attempts == 1 ? "" : "s");
			md_text(out, rec->last_error ? rec->last_error : "no error recorded");
			cw_buf_adds(out, "\n");
			listed++;
		}
		free(tr.rows);
	}
	if (!listed)
		cw_buf_adds(out, "None.\n");
}

static void md_totals(cw_buf *out, const summary_totals *t)
{
	cw_buf_addf(out, "\n%zu certificate%s", t->certificates, t->certificates == 1 ? "" : "s");
	if (t->not_issued)
		cw_buf_addf(out, " (%zu not issued)", t->not_issued);
	cw_buf_addf(out, ", %zu authorit%s; deployments: %zu ok, %zu failed, %zu pending.\n",
		    t->authorities, t->authorities == 1 ? "y" : "ies", t->ok, t->failed, t->pending);
}

static void md_crls(cw_buf *out, const cw_inventory *inv, const cw_state *st)
{
	int any = 0;
	for (size_t i = 0; i < inv->nauthorities; i++) {
		const cw_crl_record *crl = cw_state_crl(st, inv->authorities[i].name);
		if (!crl)
			continue;
		if (!any++)
			cw_buf_adds(out, "\n## Revocation lists\n\n| Authority | CRL number | Revoked "
					 "| Next update | File |\n|---|---|---|---|---|\n");
		char t[32];
		cw_format_time(crl->next_update, t);
		cw_buf_adds(out, "| ");
		md_text(out, crl->authority);
		cw_buf_addf(out, " | %llu | %zu | %s | `authorities/", crl->number, crl->nrevoked, t);
		md_text(out, crl->authority);
		cw_buf_adds(out, ".crl` |\n");
	}
}

static void add_readme(cw_report *r, const cw_inventory *inv, const cw_state *st)
{
	size_t n = 0;
	summary_row *rows = cw_xcalloc(inv->nauthorities + inv->ncertificates + 1, sizeof(*rows));
	summary_totals tot = { 0 };
	for (size_t i = 0; i < inv->nauthorities; i++) {
		const cw_authority *ca = &inv->authorities[i];
		rows[n++] = (summary_row){ ca->name, "authority", cw_state_current(st, ca->name),
					   &ca->spec.renew, NULL };
		tot.authorities++;
	}
	for (size_t i = 0; i < inv->ncertificates; i++) {
		const cw_certificate *c = &inv->certificates[i];
		rows[n] = (summary_row){ c->name, "certificate", cw_state_current(st, c->name),
					 &c->spec.renew, c };
		tot.certificates++;
		tot.not_issued += rows[n].cur == NULL;
		n++;
	}
	qsort(rows, n, sizeof(*rows), summary_row_cmp);

	cw_buf md = CW_BUF_INIT;
	cw_buf_adds(&md, "# Certificate state\n\n"
			 "Written by certwright from its records: public facts only. "
			 "Sorted by expiry, soonest first. Times are UTC.\n\n"
			 "| Name | Kind | Subject | Serial | Not after | Renew at | Targets |\n"
			 "|---|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < n; i++)
		md_row(&md, &rows[i], st, &tot);
	md_totals(&md, &tot);
	md_failures(&md, rows, n, st);
	md_crls(&md, inv, st);
	report_add(r, "README.md", md.buf, md.len);
	cw_buf_release(&md);
	free(rows);
}

/* ---------------------------------------------------------------- build */

static int add_objects(cw_report *r, const cw_inventory *inv, const cw_state *st, cw_keystore *ks,
		       cw_error *err)
{
	for (size_t i = 0; i < inv->nauthorities; i++) {
		const cw_authority *ca = &inv->authorities[i];
		const cw_issued *cur = cw_state_current(st, ca->name);
		if (check_file_name("authority", ca->name, err) != 0)
			return -1;
		if (cur && add_authority(r, ca, cur, st, ks, err) != 0)
			return -1;
	}
	for (size_t i = 0; i < inv->ncertificates; i++) {
		const cw_certificate *c = &inv->certificates[i];
		const cw_issued *cur = cw_state_current(st, c->name);
		if (check_file_name("certificate", c->name, err) != 0)
			return -1;
		if (cur && add_certificate_json(r, c, cur, st, err) != 0)
			return -1;
		if (!cur && add_revoked_json(r, c, st, err) != 0)
			return -1;
	}
	return 0;
}

int cw_report_build(cw_report *out, const cw_inventory *inv, const cw_state *st, cw_keystore *ks,
		    cw_error *err)
{
	memset(out, 0, sizeof(*out));
	if (add_objects(out, inv, st, ks, err) != 0) {
		cw_report_release(out);
		return -1;
	}
	add_readme(out, inv, st);
	qsort(out->files, out->n, sizeof(*out->files), file_path_cmp);
	return 0;
}
