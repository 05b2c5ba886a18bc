/*
 * apply — the phases of `apply`, split by what they do; private to reconcile/ (engine.c
 * runs them in order, see the order and the crash-safety rules at the top of engine.c).
 *   apply_issue.c   authorities and leaves (the only code here that signs)
 *   apply_deploy.c  deployments, removals and deployment records
 *   apply_revoke.c  exports, revocations and CRLs (issue 3's lifecycle)
 * Every phase takes the plan and action_ok[] (one flag per action: did it succeed), skips
 * an action whose dependencies failed or when the run was interrupted, and adds one
 * result per action it ran or skipped.
 */
#ifndef CW_APPLY_H
#define CW_APPLY_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>

#include "reconcile/engine.h"
#include "reconcile/keystore.h"
#include "reconcile/live.h"
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

/* engine.c: logging, results, lookups the phases share */
void run_log(const cw_options *o, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The log callback handed to targets (cw_target_env.log). */
void run_target_log(void *ud, int level, const char *target, const char *msg);
void run_add_result(cw_apply_result *res, const cw_action *a, int ok, const char *error);
/* All of a's dependencies succeeded and no stop was requested. */
int run_deps_ok(const cw_action *a, const int *action_ok);
const cw_issued *run_find_entry(const cw_state *st, const char *name, const char *serial);
const cw_deployment *run_find_deployment(const cw_certificate *cert, const char *target);

/* apply_issue.c */
typedef struct {
	EVP_PKEY *key;
	X509 *cert;
} run_signer;

/* An authority's current certificate and key, from the keystore. */
int run_load_signer(run_ctx *r, const char *ca_name, run_signer *s, cw_error *err);
void run_signer_release(run_signer *s);
void apply_authorities(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res);
void apply_issues(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res);

/* apply_deploy.c */
/* Opens a target for changes, with its private work folder under the run's. */
int run_open_target(run_ctx *r, const cw_target *t, cw_target_handle *th, cw_error *err);
/* Journals a deployment record (thread-safe); -1 when it could not be written. */
int run_record(run_ctx *r, const char *target, const char *cert, cw_deploy_status status,
		  const cw_issued *cur, const char *error, const cw_deployment *d,
		  const char *slot_digest);
void apply_reconcile_records(run_ctx *r);
void apply_record_unreachable(run_ctx *r);
void apply_forget_removed_targets(run_ctx *r);
void apply_deploys(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res);

/* apply_revoke.c */
void apply_exports(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res);
void apply_revocations(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res);
void apply_crls(run_ctx *r, cw_plan *plan, int *action_ok, cw_apply_result *res);

#endif
