/*
 * engine — the reconcile loop as a library: load inventory -> load state -> observe
 * targets -> diff -> plan; apply runs a plan. No printing, no exit(): progress goes to
 * the log callback, results to out-parameters, failures to cw_error.
 */
#ifndef CW_ENGINE_H
#define CW_ENGINE_H

#include <time.h>
#include "common/util.h"
#include "reconcile/diff.h"
#include "reconcile/plan.h"

typedef struct {
	const char *repo_dir;          /* git work tree; report and lock live there */
	const char *inventory_dir;     /* relative to repo_dir unless absolute */
	const char *ref;               /* read the inventory at this revision (NULL = work tree) */
	const char *keystore_dir;      /* NULL = cw_keystore_default_dir(repo_dir) */
	time_t now;
	int parallel;                  /* targets at once */
	int timeout_ms;                /* per external call, default 30000 */
	cw_diff_filter filter;
	const char *passphrase;        /* NULL: apply fails with CW_EPASS if it needs keys */
	size_t passphrase_len;
	int commit;                    /* commit the report after apply */
	int push;
	void (*log)(void *ud, int level, const char *msg);
	void *log_ud;
} cw_options;

int cw_engine_validate(const cw_options *o, cw_diags *diags, cw_error *err);
/* Fills plan (diags inside). Returns -1 only when no plan could be made. */
int cw_engine_plan(const cw_options *o, cw_plan *plan, cw_error *err);

typedef struct {
	char *kind, *name, *target;
	int ok;
	char *error;
} cw_step_result;

typedef struct {
	cw_plan plan;                  /* what was run */
	cw_step_result *steps;
	size_t nsteps;
	size_t failed;
	int committed;
	char *commit_message;
} cw_apply_result;

/* saved: a plan read from --plan FILE, or NULL. Refused (CW_ESTALE) when the inventory,
 * the state or the live targets moved since it was made. */
int cw_engine_apply(const cw_options *o, const cw_plan *saved, cw_apply_result *res, cw_error *err);
void cw_apply_result_release(cw_apply_result *r);

/* For `status`: the inventory and the recorded state, nothing observed, nothing changed. */
#include "reconcile/model.h"
#include "reconcile/state.h"

typedef struct {
	cw_inventory inv;
	cw_state st;
	int have_state;                /* 0 when the keystore does not exist yet */
} cw_status_view;

int cw_engine_status(const cw_options *o, cw_status_view *view, cw_diags *diags, cw_error *err);
void cw_status_view_release(cw_status_view *view);

#endif
