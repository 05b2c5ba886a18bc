/*
 * report — the public state that goes back into git: one JSON file per certificate,
 * the CA certificates (PEM and DER, for clients to install), and a Markdown summary
 * sorted by expiry. Only public facts: no private key, no secret, and nothing that
 * changes by itself from one run to the next (no "generated at", no "days left"), so a
 * run with nothing to do produces an identical report and no commit.
 *
 * Layout under the inventory's report folder (default "certwright-state"):
 *   README.md                         summary table, sorted by notAfter
 *   certificates/<name>.json          serial, fingerprint, dates, renew_at, issuer, targets
 *   authorities/<name>.json           the authority's current certificate facts
 *   authorities/<name>.pem / .der     its certificate for clients
 */
#ifndef CW_REPORT_H
#define CW_REPORT_H

#include "common/util.h"
#include "reconcile/keystore.h"
#include "reconcile/model.h"
#include "reconcile/state.h"

typedef struct {
	char *path;               /* relative to the report folder, '/' separated */
	cw_buf content;
} cw_report_file;

typedef struct {
	cw_report_file *files;
	size_t n, cap;
} cw_report;

int cw_report_build(cw_report *out, const cw_inventory *inv, const cw_state *st, cw_keystore *ks,
		    cw_error *err);
void cw_report_release(cw_report *r);

#endif
