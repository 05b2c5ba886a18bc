/*
 * state — what certwright has done, as recorded in the keystore, loaded into memory
 * once per run. Two records:
 *
 *  - the issuance index, one file per authority (index/<authority>.json): every
 *    certificate it signed, from the first on (issue 3 builds CRLs from it). A
 *    certificate exists for certwright once its index entry is written; the key and
 *    certificate files are made durable BEFORE that, so a crash leaves at worst an
 *    orphan file, never an index entry without its key.
 *  - deployment records per (target, certificate): what was installed, the last
 *    error, attempts. Updated by appending to journal.jsonl (fsync per record, under a
 *    mutex: deploys run in parallel), folded into deployments.json by cw_state_compact().
 *    Loading = snapshot + journal replay, so a crash loses nothing that was journaled.
 */
#ifndef CW_STATE_H
#define CW_STATE_H

#include <pthread.h>
#include <time.h>
#include "common/pki.h"
#include "common/util.h"
#include "reconcile/keystore.h"

typedef struct {
	char *name;               /* certificate or authority name in the inventory */
	char *issuer;             /* authority that signed it (its own name for a root) */
	char *serial;             /* upper hex */
	char fingerprint[65];
	char *subject;
	time_t not_before, not_after, issued_at;
	cw_cert_spec spec;        /* the spec it was issued for (what the diff compares) */
	char *issuer_key_id;      /* SKI of the signing key (root: its own) */
	char *key_id;             /* SKI of its own key */
	int is_ca;
	int revoked;              /* issue 3 */
	time_t revoked_at;
	char *revoke_reason;
	unsigned long long seq;   /* issuance order across the keystore: newest wins */
} cw_issued;

typedef enum {
	CW_DEPLOY_STARTED = 1,    /* deploy began; outcome unknown (crash?) */
	CW_DEPLOY_OK,             /* installed and verified */
	CW_DEPLOY_FAILED,         /* last attempt failed: last_error says why */
	CW_DEPLOY_REMOVED,        /* taken off the target */
} cw_deploy_status;

const char *cw_deploy_status_name(cw_deploy_status s);

typedef struct {
	char *target;
	char *certificate;
	cw_deploy_status status;
	char *serial;             /* what we deployed or tried to */
	char fingerprint[65];
	char slot_digest[65];     /* the target's digest of the rest of the slot after the
				   * verified deploy ("" = the type cannot tell) */
	char chain_digest[65];    /* which authority certificates (chain + root) went with
				   * it: a CA renewed later makes the deploy due again */
	int attempts;             /* consecutive failed attempts; 0 after success */
	char *last_error;         /* NULL after success */
	time_t updated;
	char **bound;
	size_t nbound;
} cw_deploy_record;

/* The current CRL of an authority (issue 3): crls/<authority>.der holds it, and
 * crls/<authority>.json these facts — written after the DER, so it is the commit point. */
typedef struct {
	char *authority;
	unsigned long long number;    /* CRL number extension; the next one is number + 1 */
	time_t this_update, next_update;
	char fingerprint[65];         /* SHA-256 of the DER */
	char revoked_digest[65];      /* over the sorted serials it lists: "does it say the
				       * same as the index?" without parsing it */
	char ca_fingerprint[65];      /* the authority certificate it was signed under */
	size_t nrevoked;
	char **deployed;              /* targets that hold exactly this CRL */
	size_t ndeployed;
} cw_crl_record;

typedef struct {
	cw_issued *issued;
	size_t nissued, cap_issued;
	cw_deploy_record *deploys;
	size_t ndeploys, cap_deploys;
	unsigned long long next_seq;
	char digest[65];          /* SHA-256 over the loaded records: a saved plan checks it.
				   * Set by cw_state_load only; record_* leave it alone (reload
				   * to see the digest of what is on disk now) */
	cw_crl_record *crls;
	size_t ncrls;
	pthread_mutex_t lock;     /* guards deploys and the journal during apply */
	struct cw_state_lookup *lookup;  /* private to state.c: hash indexes over issued and
					  * deploys. NULL (a state built by hand in a test)
					  * makes the lookups fall back to linear scans */
} cw_state;

/* ks NULL: the empty state (no keystore yet), with the same digest a new keystore gives. */
int cw_state_load(cw_state *st, cw_keystore *ks, cw_error *err);
void cw_state_release(cw_state *st);

/* Lookups are O(1) on a loaded state. The returned pointers point into st and stay valid
 * until the next cw_state_record_* call that adds a record of the same kind. */
/* Newest entry for a name that is not revoked, or NULL. */
const cw_issued *cw_state_current(const cw_state *st, const char *name);
/* The entry with this authority and serial, or NULL. */
const cw_issued *cw_state_find(const cw_state *st, const char *issuer, const char *serial);
const cw_deploy_record *cw_state_deploy_record(const cw_state *st, const char *target,
					       const char *certificate);

/* Records a batch of issuances (the commit point): assigns seq, rewrites each affected
 * authority's index atomically with fsync, then adds them to st. The caller has already
 * made keys and certificates durable. Entries are copied.
 * An entry whose (issuer, serial) is already recorded REPLACES that record and keeps its
 * seq: that is how a revocation (revoked, revoked_at, revoke_reason) is recorded. The same
 * (issuer, serial) twice in one batch is CW_EINVAL. If writing one authority's index
 * fails, the authorities written before it stay recorded (memory matches disk).
 * Not thread-safe: issuance is recorded from one thread. */
int cw_state_record_issued(cw_state *st, cw_keystore *ks, const cw_issued *entries, size_t n,
			   cw_error *err);
/* Appends a deployment record to the journal (fsync) and updates st. Thread-safe. */
int cw_state_record_deploy(cw_state *st, cw_keystore *ks, const cw_deploy_record *rec,
			   cw_error *err);
/* Writes deployments.json from st and empties the journal. */
int cw_state_compact(cw_state *st, cw_keystore *ks, cw_error *err);

/* CRLs. record writes the DER then the facts (both atomic, fsync) and updates st. */
const cw_crl_record *cw_state_crl(const cw_state *st, const char *authority);
int cw_state_record_crl(cw_state *st, cw_keystore *ks, const cw_crl_record *rec,
			const unsigned char *der, size_t len, cw_error *err);
int cw_state_crl_der(cw_keystore *ks, const char *authority, cw_buf *der, cw_error *err);
/* Notes that target now holds the authority's current CRL (rewrites its facts file). */
int cw_state_crl_deployed(cw_state *st, cw_keystore *ks, const char *authority,
			  const char *target, cw_error *err);
int cw_crl_record_on(const cw_crl_record *rec, const char *target);
/* SHA-256 over serials sorted and joined with '\n': the revoked_digest of a CRL listing them. */
void cw_crl_serials_digest(char **serials, size_t n, char out[65]);

void cw_issued_release(cw_issued *e);
void cw_deploy_record_release(cw_deploy_record *r);

#endif
