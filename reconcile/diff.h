/*
 * diff — the pure heart: (desired, recorded, live, now) -> plan. No I/O, no clock,
 * no randomness: the same inputs always give the same plan, so it is tested as a table.
 *
 * Per authority (parents first): missing -> create-ca; spec changed (subject, key) ->
 * create-ca (a rotation, named as such); renewal due -> renew-ca.
 * Per certificate, checks run in this order and the first that fires wins:
 *   missing, issuer-changed, spec-changed:<field>, expired, renewal-due  -> issue
 * Per (certificate, target) deployment, against the certificate that will be current:
 *   target unreachable (diagnostic, no action), not-deployed, drift:fingerprint,
 *   deploy-interrupted, deploy-failed, binding-missing              -> deploy
 * Recorded deployments no longer in the inventory -> remove (removed-from-inventory /
 * undeployed). Policy violations and device facts (key types a device refuses) become
 * error diagnostics naming the certificate, the target and the rule.
 */
#ifndef CW_DIFF_H
#define CW_DIFF_H

#include <time.h>
#include "reconcile/live.h"
#include "reconcile/model.h"
#include "reconcile/plan.h"
#include "reconcile/state.h"

typedef struct {
	const char *const *only_targets;      /* --target filters (NULL = all) */
	size_t nonly_targets;
	const char *const *only_certificates; /* --certificate filters */
	size_t nonly_certificates;
} cw_diff_filter;

/* SHA-256 over the fingerprints of the current certificates of issuer and its parents, in
 * chain order: what a deployment of a certificate under issuer carries besides the leaf.
 * Returns -1 (out = "") when one of them has no certificate yet. */
int cw_chain_digest(const cw_state *st, const cw_authority *issuer, char out[65]);

int cw_diff(cw_plan *out, const cw_inventory *inv, const cw_state *st, const cw_live *live,
	    time_t now, const cw_diff_filter *filter);

#endif
