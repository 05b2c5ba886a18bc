/*
 * localca — the private CA that certwright keeps: makes keys, self-signs roots,
 * signs intermediates and leaves. Only this module and the keystore ever hold a
 * CA private key; nothing here does I/O.
 *
 * What every certificate gets: version 3, a random positive serial of 127 bits
 * (at least 64 bits of entropy, RFC 5280 and CA/B BR), SHA-256 (ECDSA P-384: SHA-384,
 * Ed25519: pure), notBefore backdated by 5 minutes for clock skew (notAfter = notBefore + lifetime: the
 * span is exactly the lifetime asked for), SKI, and AKI
 * (keyid) unless self-signed. CAs: basicConstraints critical CA:TRUE (+pathlen),
 * keyUsage critical keyCertSign+cRLSign (+digitalSignature). Leaves: basicConstraints
 * critical CA:FALSE, keyUsage critical and EKU from the spec, SANs (critical when the
 * subject is empty), the CRL distribution point when the spec names one.
 * spec->crl_url is the ISSUER's CRL URL: intermediates carry it too, a root never.
 */
#ifndef CW_LOCALCA_H
#define CW_LOCALCA_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <time.h>
#include "common/util.h"
#include "common/pki.h"

/* Seconds notBefore is set before the issuance time, for clients whose clock is behind. */
#define CW_CA_BACKDATE 300

/* A fresh key of the given type. */
int cw_key_generate(EVP_PKEY **out, cw_key_type type, cw_error *err);

/* Signs a certificate for key with the spec. issuer_cert/issuer_key NULL = self-signed
 * (spec must be a CA). now is the issuance time (notBefore = now - 300 s,
 * notAfter = notBefore + lifetime). The returned X509 is owned by the caller. */
int cw_ca_sign(X509 **out, const cw_cert_spec *spec, EVP_PKEY *key, X509 *issuer_cert,
	       EVP_PKEY *issuer_key, time_t now, cw_error *err);

/* Parse "CN=a,O=b,C=JP" (also "/CN=a/O=b") into an X509_NAME; errors name the bad part. */
int cw_dn_parse(const char *text, X509_NAME **out, cw_error *err);

/* DER of a certificate into a buffer the caller free()s. */
int cw_x509_to_der(X509 *cert, unsigned char **der, size_t *len, cw_error *err);

/* The inverse, for the keystore and the engine: exactly one DER certificate, no trailing
 * bytes. The returned X509 is owned by the caller. */
int cw_x509_from_der(X509 **out, const unsigned char *der, size_t len, cw_error *err);

/* Which of our key types a key is (CW_KEY_NONE for others, e.g. RSA-8192 or P-521);
 * bits (may be NULL) gets the key's size either way. */
cw_key_type cw_key_type_of(const EVP_PKEY *key, int *bits);

/* One attribute of a DN text, unescaped, in RFC 4514 order (most specific first, the
 * way the inventory writes "CN=a,O=b,C=JP"); the slash form "/C=JP/O=b/CN=a" is
 * reversed into that order. The DN text grammar lives here, next to cw_dn_parse, so
 * that x509 (cw_dn_equal) and policy (CN checks) read DNs exactly as the CA builds them. */
typedef struct {
	char *attr;
	char *value;
	int joined;   /* 1 = same RDN as the previous part ("CN=a+UID=b") */
} cw_dn_part;

/* Splits without judging attribute names; errors name the DN text and the bad part. */
int cw_dn_split(const char *text, cw_dn_part **parts, size_t *n, cw_error *err);
void cw_dn_parts_free(cw_dn_part *parts, size_t n);

/* ASN.1 helpers shared by the certificate and CRL parsers (one rendering of serials and
 * times, so a serial from a certificate and from a CRL compare as strings). */
/* Upper hex without leading zeros ("0F1234" -> "F1234"); NULL when unreadable. */
char *cw_asn1_serial_hex(const ASN1_INTEGER *serial);
/* ASN1_TIME -> time_t (UTC). -1 when unreadable. */
int cw_asn1_time(const ASN1_TIME *t, time_t *out);

#endif
