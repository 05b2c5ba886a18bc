/*
 * live — what the targets really have, observed read-only and in parallel.
 */
#ifndef CW_LIVE_H
#define CW_LIVE_H

#include "reconcile/model.h"
#include "reconcile/x509.h"
#include "targets/target.h"

typedef struct {
	char *target;
	char *slot;               /* certificate name */
	int ok;                   /* observation succeeded */
	cw_observation obs;
	char fingerprint[65];     /* of obs.cert when present, else "" */
	int parsed;               /* info valid */
	cw_x509_info info;
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
} cw_live;

const cw_live_target *cw_live_target_find(const cw_live *l, const char *target);
const cw_live_slot *cw_live_slot_find(const cw_live *l, const char *target, const char *slot);
void cw_live_release(cw_live *l);

#endif
