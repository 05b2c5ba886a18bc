/* certwright status — what is issued, when it expires and renews, where it is deployed. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"

typedef struct {
	const char *name;
	const char *kind;
	const cw_issued *cur;
	const cw_renew *renew;
} status_row;

static int row_cmp(const void *a, const void *b)
{
	const status_row *x = a, *y = b;
	time_t ex = x->cur ? x->cur->not_after : 0, ey = y->cur ? y->cur->not_after : 0;
	if (ex != ey)
		return ex < ey ? -1 : 1;
	return strcmp(x->name, y->name);
}

static size_t collect_rows(const cw_status_view *v, status_row **out)
{
	size_t n = v->inv.nauthorities + v->inv.ncertificates, k = 0;
	status_row *rows = cw_xcalloc(n ? n : 1, sizeof(*rows));
	for (size_t i = 0; i < v->inv.nauthorities; i++, k++)
		rows[k] = (status_row){ v->inv.authorities[i].name, "authority",
					cw_state_current(&v->st, v->inv.authorities[i].name),
					&v->inv.authorities[i].spec.renew };
	for (size_t i = 0; i < v->inv.ncertificates; i++, k++)
		rows[k] = (status_row){ v->inv.certificates[i].name, "certificate",
					cw_state_current(&v->st, v->inv.certificates[i].name),
					&v->inv.certificates[i].spec.renew };
	qsort(rows, n, sizeof(*rows), row_cmp);
	*out = rows;
	return n;
}

static void deployments_text(const cw_status_view *v, const char *name, cw_buf *b)
{
	for (size_t i = 0; i < v->st.ndeploys; i++) {
		const cw_deploy_record *r = &v->st.deploys[i];
		if (strcmp(r->certificate, name))
			continue;
		cw_buf_addf(b, "%s%s:%s", b->len ? " " : "", r->target, cw_deploy_status_name(r->status));
	}
}

/* The newest issuance of a name whose current one is gone: revoked (or never issued). */
static const cw_issued *newest_revoked(const cw_status_view *v, const char *name)
{
	const cw_issued *best = NULL;
	for (size_t i = 0; i < v->st.nissued; i++) {
		const cw_issued *e = &v->st.issued[i];
		if (!strcmp(e->name, name) && e->revoked && (!best || e->seq > best->seq))
			best = e;
	}
	return best;
}

static void print_crls(const cw_status_view *v, time_t now)
{
	for (size_t i = 0; i < v->st.ncrls; i++) {
		const cw_crl_record *c = &v->st.crls[i];
		char next[32];
		cw_format_time(c->next_update, next);
		printf("CRL %s: number %llu, %zu revoked, next update %s (%ld days)%s\n", c->authority, c->number, c->nrevoked, next,
		       (long)((c->next_update - now) / 86400), now >= c->next_update ? " OVERDUE" : "");
	}
}

static void print_text(const cw_status_view *v, const status_row *rows, size_t n, time_t now)
{
	printf("%-24s %-11s %-20s %6s %-20s %s\n", "NAME", "KIND", "EXPIRES", "DAYS", "RENEW AT",
	       "DEPLOYED");
	for (size_t i = 0; i < n; i++) {
		const status_row *r = &rows[i];
		if (!r->cur) {
			const cw_issued *rev = newest_revoked(v, r->name);
			char what[64];
			snprintf(what, sizeof(what), "%s%s", rev ? "revoked: " : "not issued",
				 rev && rev->revoke_reason ? rev->revoke_reason : "");
			printf("%-24s %-11s %-20s %6s %-20s %s%s\n", r->name, r->kind, what, "-", "-",
			       rev ? "serial " : "", rev ? rev->serial : "");
			continue;
		}
		char exp[32], ren[32];
		cw_format_time(r->cur->not_after, exp);
		cw_format_time(cw_renew_at(r->renew, r->cur->not_before, r->cur->not_after), ren);
		long days = (long)((r->cur->not_after - now) / 86400);
		cw_buf dep = CW_BUF_INIT;
		deployments_text(v, r->name, &dep);
		printf("%-24s %-11s %-20s %6ld %-20s %s\n", r->name, r->kind, exp, days, ren,
		       dep.buf ? dep.buf : "");
		cw_buf_release(&dep);
	}
	for (size_t i = 0; i < v->st.ndeploys; i++) {
		const cw_deploy_record *r = &v->st.deploys[i];
		if (r->last_error)
			printf("\nlast error: %s on %s (attempt %d): %s", r->certificate, r->target,
			       r->attempts, r->last_error);
	}
	printf("\n");
	print_crls(v, now);
}

static json_t *row_json(const cw_status_view *v, const status_row *r, time_t now)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(r->name));
	json_object_set_new(o, "kind", json_string(r->kind));
	json_object_set_new(o, "issued", json_boolean(r->cur != NULL));
	const cw_issued *rev = r->cur ? NULL : newest_revoked(v, r->name);
	json_object_set_new(o, "revoked", json_boolean(rev != NULL));
	if (rev) {
		json_object_set_new(o, "revoked_serial", json_string(rev->serial));
		json_object_set_new(o, "revoke_reason", json_string(rev->revoke_reason ? rev->revoke_reason : "unspecified"));
	}
	if (r->cur) {
		char exp[32], ren[32];
		cw_format_time(r->cur->not_after, exp);
		cw_format_time(cw_renew_at(r->renew, r->cur->not_before, r->cur->not_after), ren);
		json_object_set_new(o, "serial", json_string(r->cur->serial));
		json_object_set_new(o, "fingerprint", json_string(r->cur->fingerprint));
		json_object_set_new(o, "not_after", json_string(exp));
		json_object_set_new(o, "renew_at", json_string(ren));
		json_object_set_new(o, "days_left", json_integer((r->cur->not_after - now) / 86400));
	}
	json_t *deps = json_array();
	for (size_t i = 0; i < v->st.ndeploys; i++) {
		const cw_deploy_record *d = &v->st.deploys[i];
		if (strcmp(d->certificate, r->name))
			continue;
		json_t *x = json_object();
		json_object_set_new(x, "target", json_string(d->target));
		json_object_set_new(x, "status", json_string(cw_deploy_status_name(d->status)));
		json_object_set_new(x, "serial", d->serial ? json_string(d->serial) : json_null());
		json_object_set_new(x, "attempts", json_integer(d->attempts));
		json_object_set_new(x, "last_error", d->last_error ? json_string(d->last_error) : json_null());
		json_array_append_new(deps, x);
	}
	json_object_set_new(o, "deployments", deps);
	return o;
}

int cmd_status(cw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int json = 0, c;
	while ((c = getopt_long(argc, argv, "f:hvq", opts, NULL)) != -1) {
		int code;
		if (cli_common_option(cli, c, "status", &code)) {
			if (c == 'h')
				return code;
			continue;
		}
		if (c != 'f')
			return EXIT_USAGE;
		if (!strcmp(optarg, "json"))
			json = 1;
		else if (strcmp(optarg, "text"))
			return cli_usage_error("status --format: '%s' is not text or json", optarg);
	}
	cw_status_view v;
	cw_diags diags;
	cw_diags_init(&diags);
	cw_error err = { 0 };
	int rc = cw_engine_status(&cli->opts, &v, &diags, &err);
	cli_print_diags(&diags, stderr);
	cw_diags_release(&diags);
	if (rc != 0) {
		if (err.code)
			cli_error(&err);
		cw_status_view_release(&v);
		return EXIT_FAIL;
	}
	status_row *rows;
	size_t n = collect_rows(&v, &rows);
	if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, row_json(&v, &rows[i], cli->opts.now));
		json_t *root = json_object();
		json_object_set_new(root, "format", json_string("certwright-status"));
		json_object_set_new(root, "version", json_integer(1));
		json_object_set_new(root, "entries", arr);
		json_t *crls = json_array();
		for (size_t i = 0; i < v.st.ncrls; i++) {
			const cw_crl_record *crl = &v.st.crls[i];
			char next[32];
			cw_format_time(crl->next_update, next);
			json_t *x = json_object();
			json_object_set_new(x, "authority", json_string(crl->authority));
			json_object_set_new(x, "number", json_integer((json_int_t)crl->number));
			json_object_set_new(x, "revoked", json_integer((json_int_t)crl->nrevoked));
			json_object_set_new(x, "next_update", json_string(next));
			json_array_append_new(crls, x);
		}
		json_object_set_new(root, "crls", crls);
		char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s);
		free(s);
		json_decref(root);
	} else {
		print_text(&v, rows, n, cli->opts.now);
	}
	free(rows);
	cw_status_view_release(&v);
	return EXIT_OK;
}
