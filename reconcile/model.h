/*
 * model — the desired state, as the inventory declares it after validation.
 *
 * Everything a later stage needs is resolved here once: durations are seconds,
 * key types and usages are enums/bits, references (issuer, target) point at
 * their objects. Secrets stay references ("env:NAME", "file:PATH"): nothing in
 * the model holds a secret value. The model is read-only after loading and is
 * shared between threads.
 */
#ifndef CW_MODEL_H
#define CW_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "common/util.h"
#include "common/node.h"
#include "common/pki.h"
#include "common/strmap.h"

struct cw_authority;
struct cw_target;

typedef struct cw_authority {
	char *name;
	cw_srcpos pos;
	char *type;                    /* "local" (ACME later) */
	char *parent;                  /* issuing authority's name, NULL for a root */
	struct cw_authority *parent_ref;
	char **profiles;               /* policy profiles, e.g. "private-ca" */
	size_t nprofiles;
	cw_cert_spec spec;             /* is_ca = 1 */
	int64_t crl_lifetime;          /* seconds; 0 = no CRL configured */
	cw_renew crl_renew;            /* reissue the CRL this long before its nextUpdate */
	char *on_remove;               /* "revoke" or "forget" as written; NULL = not set */
	int on_remove_revoke;          /* resolved: 1 = revoke what leaves the inventory (default) */
	int revoke_superseded;         /* default for its certificates: 0 or 1 */
	int64_t expiry_warning;        /* warn this long before the authority itself expires */
} cw_authority;

typedef struct {
	char *target;
	struct cw_target *target_ref;
	char **bind;                   /* services to point at the certificate (device-specific) */
	size_t nbind;
	cw_srcpos pos;
} cw_deployment;

/* A client bundle written outside git (issue 3): PKCS#12 + the CA as PEM and DER. */
typedef struct {
	int enabled;
	cw_srcpos pos;
	char *path;                    /* folder, absolute after "~/" expansion */
	char *passphrase;              /* secret REFERENCE (env:/file:), never the value */
	int legacy;                    /* 3DES/SHA-1 for old importers */
	int chain;                     /* put the CA certificates into the PKCS#12 */
} cw_export;

typedef struct cw_certificate {
	char *name;
	cw_srcpos pos;
	char *issuer;
	cw_authority *issuer_ref;
	char **profiles;
	size_t nprofiles;
	cw_cert_spec spec;             /* is_ca = 0 */
	cw_deployment *deploy;
	size_t ndeploy;
	int revoked;                   /* `revoked:` is set: revoke, remove from targets, never reissue */
	char *revoke_reason;           /* RFC 5280 reason name */
	cw_srcpos revoked_pos;
	int revoke_superseded;         /* revoke what a renewal replaced, once the new one is live */
	cw_export export;
} cw_certificate;

typedef struct cw_target {
	char *name;
	cw_srcpos pos;
	char *type;                    /* "files", "softether", "routeros", "expressway" */
	cw_node *config;               /* the whole map as written (owned), type checked by schema */
} cw_target;

typedef struct {
	int version;
	char **files;                  /* the YAML files read, in merge order (owned) */
	size_t nfiles;
	char digest[65];               /* SHA-256 over (file name, content) pairs in order */
	cw_authority *authorities;
	size_t nauthorities;
	cw_certificate *certificates;
	size_t ncertificates;
	cw_target *targets;
	size_t ntargets;
	char *report_dir;              /* folder in the repository for the state report */
	/* name -> index, filled by the loader so lookups stay O(1) at 10,000 entries; an
	 * inventory built by hand leaves them empty and lookups fall back to a scan */
	cw_strmap authority_index, certificate_index, target_index;
} cw_inventory;

cw_authority *cw_inventory_authority(const cw_inventory *inv, const char *name);
cw_certificate *cw_inventory_certificate(const cw_inventory *inv, const char *name);
cw_target *cw_inventory_target(const cw_inventory *inv, const char *name);
void cw_inventory_release(cw_inventory *inv);

#endif
