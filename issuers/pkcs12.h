/*
 * pkcs12 — client bundles (the RouterOS IKEv2 guide: Windows imports CA + client from one
 * PKCS#12; iOS takes the CA as PEM and the client as PKCS#12). Nothing here does I/O.
 *
 * Modern (default): PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC for both the key and the
 * certificate bags, SHA-256 MAC, 2048 iterations (what OpenSSL 3 writes by default).
 * Legacy: pbeWithSHA1And3-KeyTripleDES-CBC for both bags and a SHA-1 MAC, for old Windows
 * and iOS importers that cannot read PBES2 — documented as weaker.
 */
#ifndef CW_PKCS12_H
#define CW_PKCS12_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include "common/util.h"

typedef struct {
	const char *friendly_name;   /* shown by importers: the certificate's name */
	int legacy;
	int include_chain;           /* put the CA certificates into the bundle (Windows) */
} cw_pkcs12_opts;

/* chain: intermediates then root (may be empty). DER malloc()ed, caller frees. The
 * passphrase must not be empty. */
int cw_pkcs12_build(unsigned char **der, size_t *len, EVP_PKEY *key, X509 *cert,
		    X509 *const *chain, size_t nchain, const char *passphrase,
		    const cw_pkcs12_opts *opts, cw_error *err);

#endif
