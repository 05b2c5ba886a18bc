/*
 * crl — signing certificate revocation lists for the local CA (RFC 5280 §5).
 * Only this module and localca hold a CA key; nothing here does I/O.
 *
 * Every CRL is v2, signed with the same digest rules as certificates (SHA-256; SHA-384
 * for P-384 CAs; none for Ed25519), carries the CRL number extension (non-critical,
 * monotonic, chosen by the caller), the authority key identifier of the CA, thisUpdate =
 * now - 300 s (clock skew, like certificates), nextUpdate = now + lifetime, and one
 * entry per revoked serial with its revocation date and, unless unspecified, the reason
 * code extension. Entries are sorted by serial so the same input gives the same CRL.
 */
#ifndef CW_CRL_H
#define CW_CRL_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <time.h>
#include "common/util.h"

/* RFC 5280 reason codes by name. certificate-hold is deliberately absent: a revocation
 * in certwright is final. */
typedef enum {
	CW_REASON_UNSPECIFIED = 0,
	CW_REASON_KEY_COMPROMISE = 1,
	CW_REASON_CA_COMPROMISE = 2,
	CW_REASON_AFFILIATION_CHANGED = 3,
	CW_REASON_SUPERSEDED = 4,
	CW_REASON_CESSATION_OF_OPERATION = 5,
	CW_REASON_PRIVILEGE_WITHDRAWN = 9,
	CW_REASON_AA_COMPROMISE = 10,
} cw_revoke_reason;

/* "key-compromise" <-> CW_REASON_KEY_COMPROMISE. parse returns -1 for unknown names. */
int cw_revoke_reason_parse(const char *name, cw_revoke_reason *out);
const char *cw_revoke_reason_name(cw_revoke_reason r);
extern const char *const cw_revoke_reason_names[];   /* NULL-terminated, for hints */

typedef struct {
	const char *serial_hex;   /* upper hex as cw_x509_info.serial */
	time_t revoked_at;
	cw_revoke_reason reason;
} cw_crl_entry;

/* Signs a CRL. number >= 1. The DER is malloc()ed, owned by the caller (free()). */
int cw_crl_sign(unsigned char **der, size_t *len, X509 *ca_cert, EVP_PKEY *ca_key,
		const cw_crl_entry *entries, size_t n, uint64_t number, time_t now,
		int64_t lifetime, cw_error *err);

/* What a CRL says, for observation, status and tests. */
typedef struct {
	uint64_t number;
	time_t this_update, next_update;
	size_t nrevoked;
	char **serials;           /* upper hex */
	char fingerprint[65];     /* SHA-256 of the DER */
} cw_crl_info;

int cw_crl_parse(const unsigned char *der, size_t len, cw_crl_info *out, cw_error *err);
void cw_crl_info_release(cw_crl_info *info);
void cw_crl_to_pem(const unsigned char *der, size_t len, cw_buf *out);

#endif
