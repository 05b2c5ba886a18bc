/*
 * x509 — the ONE place that parses certificates. Everything the engine wants to
 * know about a certificate (from the keystore, from a device, from a CA) comes
 * through cw_x509_parse(), so a quirk is handled once.
 */
#ifndef CW_X509_H
#define CW_X509_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "common/pki.h"
#include "common/util.h"

typedef struct {
	char fingerprint[65];     /* SHA-256 of the DER, lower hex */
	char *serial;             /* upper hex, no leading zeros, e.g. "4F1A..." */
	char *subject;            /* RFC 4514-style one-line, "CN=vpn.example.net,O=Example,C=JP" */
	char *issuer;
	time_t not_before, not_after;
	cw_key_type key;          /* CW_KEY_NONE when not one we know */
	int key_bits;
	char *sig_alg;            /* "sha256WithRSAEncryption", "ecdsa-with-SHA256", "ED25519" */
	cw_san *sans;
	size_t nsans;
	uint32_t usage;           /* KU + EKU bits as in pki.h */
	int is_ca;
	int path_len;             /* -1 none */
	char *ski, *aki;          /* lower hex key identifiers, or NULL */
	char *crl_url;            /* first URI of the CRL distribution points, or NULL */
	int self_signed;
} cw_x509_info;

int cw_x509_parse(const unsigned char *der, size_t len, cw_x509_info *out, cw_error *err);
/* PEM (first certificate) or DER, sniffed. */
int cw_x509_parse_any(const unsigned char *data, size_t len, cw_x509_info *out, cw_error *err);
void cw_x509_info_release(cw_x509_info *info);

/* Every certificate in a PEM text as DER blobs (for bundles). Caller frees each data and the array. */
int cw_pem_to_der_list(const char *pem, size_t len, unsigned char ***ders, size_t **lens, size_t *n,
		       cw_error *err);
/* DER -> PEM "-----BEGIN CERTIFICATE-----..." into out. */
void cw_der_to_pem(const unsigned char *der, size_t len, cw_buf *out);

/* Does DN text a equal DN text b, ignoring spacing around separators? */
int cw_dn_equal(const char *a, const char *b);

#endif
