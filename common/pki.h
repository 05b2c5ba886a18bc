/*
 * pki — the vocabulary shared by every layer: key types, key usages, SAN kinds.
 * No OpenSSL here: targets use it to state what a device accepts.
 */
#ifndef CW_PKI_H
#define CW_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "util.h"

typedef enum {
	CW_KEY_NONE = 0,
	CW_KEY_RSA1024,   /* legacy: only so policies can name and refuse it */
	CW_KEY_RSA2048,
	CW_KEY_RSA3072,
	CW_KEY_RSA4096,
	CW_KEY_EC_P256,
	CW_KEY_EC_P384,
	CW_KEY_ED25519,
} cw_key_type;

const char *cw_key_type_name(cw_key_type k);      /* "rsa-2048", ... */
int cw_key_type_parse(const char *s, cw_key_type *out);
int cw_key_type_is_rsa(cw_key_type k);
int cw_key_type_bits(cw_key_type k);               /* 2048.., 256, 384, 255 */

/* Key usages and extended key usages in one bit set (both are "what may this key do"). */
enum {
	CW_KU_DIGITAL_SIGNATURE = 1u << 0,
	CW_KU_NON_REPUDIATION   = 1u << 1,  /* a.k.a. content-commitment */
	CW_KU_KEY_ENCIPHERMENT  = 1u << 2,
	CW_KU_DATA_ENCIPHERMENT = 1u << 3,
	CW_KU_KEY_AGREEMENT     = 1u << 4,
	CW_KU_KEY_CERT_SIGN     = 1u << 5,
	CW_KU_CRL_SIGN          = 1u << 6,
	CW_EKU_SERVER_AUTH      = 1u << 8,
	CW_EKU_CLIENT_AUTH      = 1u << 9,
	CW_EKU_CODE_SIGNING     = 1u << 10,
	CW_EKU_EMAIL_PROTECTION = 1u << 11,
	CW_EKU_TIME_STAMPING    = 1u << 12,
	CW_EKU_OCSP_SIGNING     = 1u << 13,
	CW_EKU_IPSEC_IKE        = 1u << 14, /* 1.3.6.1.5.5.7.3.17 */
	CW_EKU_IKE_INTERMEDIATE = 1u << 15, /* 1.3.6.1.5.5.8.2.2 (Windows/macOS IKEv2) */
};
#define CW_KU_MASK  0x00ffu
#define CW_EKU_MASK 0xff00u

/* Name table: "digital-signature" <-> bit. Returns 0 when unknown. */
uint32_t cw_usage_parse(const char *name);
const char *cw_usage_name(uint32_t bit);
extern const char *const cw_usage_names[];   /* NULL-terminated, for hints and docs */
/* Comma-separated names in bit order into out ("digital-signature,server-auth"). */
void cw_usage_format(uint32_t usage, cw_buf *out);

typedef enum { CW_SAN_DNS, CW_SAN_IP, CW_SAN_EMAIL, CW_SAN_URI } cw_san_type;

typedef struct {
	cw_san_type type;
	char *value;         /* without the "DNS:" prefix */
} cw_san;

const char *cw_san_type_name(cw_san_type t);  /* "DNS", "IP", "email", "URI" */

/* When to renew: an absolute margin before notAfter, or a share of the lifetime left. */
typedef struct {
	int is_percent;
	int percent;         /* 1..99: renew when this share of the lifetime is left */
	int64_t seconds;     /* margin before notAfter */
} cw_renew;

/* The moment a certificate with these dates is due for renewal. */
time_t cw_renew_at(const cw_renew *r, time_t not_before, time_t not_after);

/* What a certificate must look like. Authorities and leaves share it. */
typedef struct {
	char *subject;       /* RFC 4514-ish "CN=x,O=y,C=JP" as written in the inventory */
	cw_san *sans;
	size_t nsans;
	uint32_t usage;
	cw_key_type key;
	int64_t lifetime;    /* seconds */
	cw_renew renew;
	int is_ca;
	int path_len;        /* CA only; -1 = not constrained */
	char *crl_url;       /* CRL distribution point to put in the certificate, or NULL */
} cw_cert_spec;

/* Canonical text of a spec, stable across versions: what the index records at issuance
 * and what the diff compares field by field. Field order: subject, sans, key, usage,
 * lifetime, is_ca, path_len, crl_url. */
void cw_cert_spec_copy(cw_cert_spec *dst, const cw_cert_spec *src);
void cw_cert_spec_release(cw_cert_spec *s);

#endif
