/*
 * localca — the private CA that certwright keeps: makes keys, self-signs roots,
 * signs intermediates and leaves. Only this module and the keystore ever hold a
 * CA private key; nothing here does I/O.
 *
 * What every certificate gets: version 3, a random positive serial of 127 bits
 * (at least 64 bits of entropy, RFC 5280 and CA/B BR), SHA-256 (ECDSA P-384: SHA-384,
 * Ed25519: pure), notBefore backdated by 5 minutes for clock skew, SKI, and AKI
 * (keyid) unless self-signed. CAs: basicConstraints critical CA:TRUE (+pathlen),
 * keyUsage critical keyCertSign+cRLSign (+digitalSignature). Leaves: basicConstraints
 * critical CA:FALSE, keyUsage critical and EKU from the spec, SANs (critical when the
 * subject is empty), the CRL distribution point when the spec names one.
 */
#ifndef CW_LOCALCA_H
#define CW_LOCALCA_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <time.h>
#include "common/util.h"
#include "common/pki.h"

/* A fresh key of the given type. */
int cw_key_generate(EVP_PKEY **out, cw_key_type type, cw_error *err);

/* Signs a certificate for key with the spec. issuer_cert/issuer_key NULL = self-signed
 * (spec must be a CA). now is the issuance time (notBefore = now - 300 s,
 * notAfter = now + lifetime). The returned X509 is owned by the caller. */
int cw_ca_sign(X509 **out, const cw_cert_spec *spec, EVP_PKEY *key, X509 *issuer_cert,
	       EVP_PKEY *issuer_key, time_t now, cw_error *err);

/* Parse "CN=a,O=b,C=JP" (also "/CN=a/O=b") into an X509_NAME; errors name the bad part. */
int cw_dn_parse(const char *text, X509_NAME **out, cw_error *err);

/* DER of a certificate into a blob-like buffer. */
int cw_x509_to_der(X509 *cert, unsigned char **der, size_t *len, cw_error *err);

#endif
