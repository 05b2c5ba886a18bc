/*
 * policy — certificate rules per profile (docs: ../shared/design/policies.md, README).
 * A profile is opted into by an inventory entry (`profile:`). Every rule has a stable
 * id "<profile>.<rule>" that the diagnostics carry, so reports and tests can name it.
 *
 * Two entry points: the spec (validate and plan time, before anything is issued) and
 * an issued certificate (lint what a CA actually returned). Both only add diagnostics.
 */
#ifndef CW_POLICY_H
#define CW_POLICY_H

#include <time.h>
#include "common/pki.h"
#include "common/util.h"
#include "reconcile/x509.h"

extern const char *const cw_profile_names[];  /* NULL-terminated: ios, public-tls, private-ca, expressway, routeros-ipsec */
int cw_profile_known(const char *name);

/* Checks spec against each profile. issued_at decides date-dependent limits (public-tls).
 * Diagnostics get pos, and certificate = name. */
void cw_policy_check_spec(const char *const *profiles, size_t nprofiles, const cw_cert_spec *spec,
			  const char *name, const cw_srcpos *pos, time_t issued_at, cw_diags *diags);
/* Lints an issued certificate against the same profiles. */
void cw_policy_check_issued(const char *const *profiles, size_t nprofiles,
			    const cw_x509_info *info, const char *name, const cw_srcpos *pos,
			    cw_diags *diags);

#endif
