/*
 * live — what the targets really have, observed read-only and in parallel.
 */
#ifndef CW_LIVE_H
#define CW_LIVE_H

#include "common/strmap.h"
#include "reconcile/model.h"
#include "reconcile/state.h"
#include "reconcile/x509.h"
#include "targets/target.h"

typedef struct {
	char *target;
	char *slot;               /* certificate name */
	int ok;                   /* observation succeeded */
	cw_observation obs;
	char fingerprint[65];     /* of obs.cert when present, else "" */
} cw_live_slot;

typedef struct {
	char *name;
	int ok;                   /* the target could be opened and observed */
	char *error;              /* why not */
	cw_device_facts facts;
} cw_live_target;

typedef struct {
	cw_live_target *targets;
	size_t ntargets;
	cw_live_slot *slots;
	size_t nslots;
	char digest[65];          /* over (target, slot, fingerprint, bound) */
	cw_strmap slot_index;     /* "target\nslot" -> index in slots */
} cw_live;

/* A target opened for this run. A plan opens targets read-only: every mutating call
 * then fails with CW_EREADONLY, so a dry run is dry by construction. */
typedef struct {
	const cw_target_ops *ops;
	void *h;
	const char *name;
	int readonly;
} cw_target_handle;

int cw_target_handle_open(cw_target_handle *th, const cw_target *t, const cw_target_env *env,
			  int readonly, cw_error *err);
void cw_target_handle_close(cw_target_handle *th);
int cw_th_deploy(cw_target_handle *th, const cw_bundle *b, cw_error *err);
int cw_th_bind(cw_target_handle *th, const cw_bundle *b, cw_error *err);
int cw_th_activate(cw_target_handle *th, cw_error *err);
int cw_th_remove(cw_target_handle *th, const char *slot, const char *previous_fp, cw_error *err);
/* verify() when the type has it, else observe(). */
int cw_th_verify(cw_target_handle *th, const char *slot, cw_observation *obs, cw_error *err);

typedef struct {
	int parallel;             /* targets observed at once */
	int timeout_ms;
	const char *work_dir;     /* private scratch root; each target gets a sub-folder */
	const char *const *only_targets;
	size_t nonly_targets;
	void (*log)(void *ud, int level, const char *target, const char *msg);
	void *log_ud;
} cw_observe_opts;

/* Observes every target of the inventory (the slots of the certificates deployed to it and
 * of recorded deployments), read-only, in parallel. A target that fails is recorded as not
 * ok with its error; the call itself fails only on internal errors. */
int cw_observe(cw_live *out, const cw_inventory *inv, const cw_deploy_record *records,
	       size_t nrecords, const cw_observe_opts *opts, cw_error *err);

/* Adds a slot certwright observes itself (target names starting with '@', e.g. the
 * "@export" bundles): present or not, no certificate bytes. */
void cw_live_add_local(cw_live *l, const char *target, const char *slot, int present);

const cw_live_target *cw_live_target_find(const cw_live *l, const char *target);
const cw_live_slot *cw_live_slot_find(const cw_live *l, const char *target, const char *slot);
void cw_live_release(cw_live *l);

#endif
