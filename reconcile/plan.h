/*
 * plan — the ordered list of actions that would make the targets match the
 * inventory, and its three renderings (text, JSON, Markdown).
 *
 * Each action has a kind (what apply does) and a reason (why, a stable code shown to
 * people and machines). The reason never drives apply: the kind does.
 *
 * Reason codes (stable; documented in the README):
 *   authorities and certificates: missing, issuer-changed, spec-changed:<field>,
 *     expired, renewal-due
 *   deployments: new-certificate, deploy-failed, not-deployed, deploy-interrupted,
 *     outdated, drift:fingerprint, binding-missing, chain-changed
 *   removals: undeployed, removed-from-inventory, revoked
 *   revocations: revoke-requested, removed-from-inventory, superseded
 *   CRLs: missing, revocation-changed, crl-due, issuer-changed; deploy-crl: new-crl,
 *     not-deployed
 *   exports: new-certificate, not-exported
 */
#ifndef CW_PLAN_H
#define CW_PLAN_H

#include <time.h>
#include "common/util.h"

typedef enum {
	CW_ACT_CREATE_CA = 0,  /* new authority: key + self-signed or parent-signed cert */
	CW_ACT_RENEW_CA,       /* same key, new certificate */
	CW_ACT_ISSUE,          /* new key + certificate for a leaf (first, renew or reissue) */
	CW_ACT_DEPLOY,         /* install + bind + activate + verify + clean up on one target */
	CW_ACT_REMOVE,         /* take a certificate off a target */
	CW_ACT_REVOKE,         /* mark one issued certificate (current_serial) revoked: final */
	CW_ACT_PUBLISH_CRL,    /* sign the authority's next CRL */
	CW_ACT_DEPLOY_CRL,     /* put the authority's current CRL on a target */
	CW_ACT_EXPORT,         /* write the client bundle (PKCS#12 + CA PEM/DER) */
} cw_action_kind;

/* "create-ca", "renew-ca", "issue", "deploy", "remove", "revoke", "publish-crl",
 * "deploy-crl", "export" */
const char *cw_action_kind_name(cw_action_kind k);
int cw_action_kind_parse(const char *s, cw_action_kind *out);

typedef struct {
	cw_action_kind kind;
	char *name;              /* authority or certificate */
	char *target;            /* DEPLOY and REMOVE */
	char *reason;            /* stable code */
	char *detail;            /* one human sentence */
	char *current_serial;    /* what is issued now, or NULL */
	char *current_fingerprint;
	time_t current_not_after;
	char *live_fingerprint;  /* what the target holds now, or NULL */
	size_t *deps;            /* indexes of actions that must succeed first */
	size_t ndeps;
	char **steps;            /* for DEPLOY: "upload", "bind www-ssl", "restart", "verify", "remove old" */
	size_t nsteps;
} cw_action;

typedef struct {
	time_t now;
	char inventory_digest[65];
	char state_digest[65];
	char live_digest[65];
	cw_action *actions;
	size_t n, cap;
	cw_diags diags;          /* errors block apply; warnings are shown */
} cw_plan;

void cw_plan_init(cw_plan *p);
void cw_plan_release(cw_plan *p);
/* Appends an action; strings are copied (NULLs allowed). Returns its index. */
size_t cw_plan_add(cw_plan *p, cw_action_kind kind, const char *name, const char *target,
		   const char *reason, const char *detail);
void cw_plan_add_dep(cw_plan *p, size_t action, size_t depends_on);
void cw_plan_add_step(cw_plan *p, size_t action, const char *step);
/* Number of actions of a kind; kind -1 = all. */
size_t cw_plan_count(const cw_plan *p, int kind);

/* Errors that stop apply: every error except those about one target ("target.*") or one
 * client bundle ("export.*"), which only skip that work so a failing host never stops
 * the others. */
size_t cw_plan_blocking_errors(const cw_plan *p);

/* Renderings. text: color=1 adds ANSI colours (only when stdout is a terminal). */
void cw_plan_render_text(const cw_plan *p, int color, cw_buf *out);
/* JSON schema "certwright-plan" version 1 (README documents it). */
void cw_plan_render_json(const cw_plan *p, cw_buf *out);
void cw_plan_render_markdown(const cw_plan *p, cw_buf *out);
/* Reads a JSON plan written by cw_plan_render_json. */
int cw_plan_parse_json(cw_plan *p, const char *text, size_t len, cw_error *err);
/* Same actions (kind, name, target) in the same order? */
int cw_plan_same_actions(const cw_plan *a, const cw_plan *b);

#endif
