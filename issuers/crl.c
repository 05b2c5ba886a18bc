/*
 * crl — signing and reading certificate revocation lists. See crl.h for what every CRL
 * carries; the reasons are next to the code that does it.
 *
 * Like localca, the extensions are built as ASN.1 structures and added with the i2d
 * helpers rather than through the text-driven X509V3 configuration machinery: the values
 * are few and fixed, and a typed structure cannot be misparsed.
 */
#include "issuers/crl.h"

#include <limits.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "common/pki.h"
#include "issuers/localca.h"

/* Latest time RFC 5280 GeneralizedTime can express: 9999-12-31T23:59:59Z. */
#define LATEST_TIME ((int64_t)253402300799LL)
/* RFC 5280 4.1.2.2: conforming serials are at most 20 octets. */
#define MAX_SERIAL_HEX 40

/* ------------------------------------------------------------------ reasons */

const char *const cw_revoke_reason_names[] = {
	"unspecified",
	"key-compromise",
	"ca-compromise",
	"affiliation-changed",
	"superseded",
	"cessation-of-operation",
	"privilege-withdrawn",
	"aa-compromise",
	NULL,
};

/* Same order as cw_revoke_reason_names; the codes have gaps (6 is certificateHold,
 * 8 removeFromCRL), so the names cannot be indexed by code. */
static const cw_revoke_reason reason_codes[] = {
	CW_REASON_UNSPECIFIED,
	CW_REASON_KEY_COMPROMISE,
	CW_REASON_CA_COMPROMISE,
	CW_REASON_AFFILIATION_CHANGED,
	CW_REASON_SUPERSEDED,
	CW_REASON_CESSATION_OF_OPERATION,
	CW_REASON_PRIVILEGE_WITHDRAWN,
	CW_REASON_AA_COMPROMISE,
};
#define N_REASONS (sizeof(reason_codes) / sizeof(reason_codes[0]))

int cw_revoke_reason_parse(const char *name, cw_revoke_reason *out)
{
	for (size_t i = 0; name && i < N_REASONS; i++) {
		if (!strcmp(cw_revoke_reason_names[i], name)) {
			*out = reason_codes[i];
			return 0;
		}
	}
	return -1;
}

const char *cw_revoke_reason_name(cw_revoke_reason r)
{
	for (size_t i = 0; i < N_REASONS; i++)
		if (reason_codes[i] == r)
			return cw_revoke_reason_names[i];
	return NULL;
}

/* ------------------------------------------------------------------ checks */

/* What messages call the CRL: its issuer's name, RFC 4514 order like the inventory. */
static void crl_label(X509 *ca_cert, char *buf, size_t size)
{
	snprintf(buf, size, "(unknown ca)");
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return;
	const X509_NAME *name = ca_cert ? X509_get_subject_name(ca_cert) : NULL;
	if (name && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
		int n = BIO_read(bio, buf, (int)size - 1);
		buf[n > 0 ? n : 0] = '\0';
	}
	BIO_free(bio);
	ERR_clear_error();
}

/* A CRL is only as good as the right of its signer to sign CRLs: RFC 5280 6.3.3 (f)
 * has verifiers reject it unless the CA certificate allows cRLSign. */
static int check_ca(const char *label, X509 *ca_cert, EVP_PKEY *ca_key, cw_error *err)
{
	uint32_t flags = X509_get_extension_flags(ca_cert);
	if (flags & EXFLAG_INVALID)
		return cw_error_set(err, CW_EINVAL,
				    "crl for '%s': ca certificate has invalid extensions", label);
	if (!(flags & EXFLAG_CA))
		return cw_error_set(err, CW_EINVAL, "crl for '%s': certificate is not a ca", label);
	/* X509_get_key_usage is all ones without a keyUsage extension: any use allowed. Our
	 * CRLs are never indirect (RFC 5280 5.2.5): the signer is the CA that issued the
	 * certificates listed, so it must be allowed to sign both. */
	uint32_t usage = X509_get_key_usage(ca_cert);
	if (!(usage & KU_KEY_CERT_SIGN))
		return cw_error_set(err, CW_EINVAL,
				    "crl for '%s': ca certificate does not allow key-cert-sign",
				    label);
	if (!(usage & KU_CRL_SIGN))
		return cw_error_set(err, CW_EINVAL,
				    "crl for '%s': ca certificate does not allow crl-sign", label);
	if (EVP_PKEY_eq(X509_get0_pubkey(ca_cert), ca_key) != 1) {
		ERR_clear_error();
		return cw_error_set(err, CW_EINVAL,
				    "crl for '%s': private key does not match the ca certificate",
				    label);
	}
	return 0;
}

static int check_sign_args(const char *label, uint64_t number, time_t now, int64_t lifetime,
			   const cw_crl_entry *entries, size_t n, cw_error *err)
{
	/* RFC 5280 5.2.3: the number only grows; 0 is what "no CRL yet" looks like. Any
	 * uint64 fits the 20 octets the RFC allows. */
	if (number == 0)
		return cw_error_set(err, CW_EINVAL, "crl for '%s': crl number must be at least 1",
				    label);
	if (lifetime <= 0 || lifetime > LATEST_TIME - (int64_t)now)
		return cw_error_set(err, CW_EINVAL, "crl for '%s': lifetime %lld s is out of range",
				    label, (long long)lifetime);
	if (n > 0 && !entries)
		return cw_error_set(err, CW_EINVAL, "crl for '%s': %zu entries but no entry list",
				    label, n);
	return 0;
}

/* ------------------------------------------------------------------ entries */

typedef struct {
	BIGNUM *serial;
	const cw_crl_entry *entry;
} sorted_entry;

static void sorted_entries_free(sorted_entry *s, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		BN_free(s[i].serial);
	free(s);
}

/* BN_hex2bn stops at the first non-hex character and accepts a sign: insist on the whole
 * string being hex digits so a typo cannot revoke some other certificate. */
static int parse_serial(const char *label, const char *hex, BIGNUM **out, cw_error *err)
{
	*out = NULL;
	size_t len = hex ? strlen(hex) : 0;
	if (len == 0)
		return cw_error_set(err, CW_EINVAL, "crl for '%s': empty serial", label);
	if (strspn(hex, "0123456789abcdefABCDEF") != len)
		return cw_error_set(err, CW_EINVAL, "crl for '%s': serial '%s' is not hexadecimal",
				    label, hex);
	size_t skip = strspn(hex, "0");
	if (len - skip > MAX_SERIAL_HEX || len > 4 * MAX_SERIAL_HEX)
		return cw_error_set(err, CW_EINVAL,
				    "crl for '%s': serial '%s' is longer than 20 octets", label,
				    hex);
	if (BN_hex2bn(out, hex) != (int)len) {
		BN_free(*out);
		*out = NULL;
		return cw_error_openssl(err, "crl for '%s': cannot read serial '%s'", label, hex);
	}
	return 0;
}

static int compare_serials(const void *a, const void *b)
{
	return BN_cmp(((const sorted_entry *)a)->serial, ((const sorted_entry *)b)->serial);
}

/* Entries sorted by serial value (not by text: "0A" and "A" are one serial). Two entries
 * for one serial would say two different things about it: refused. */
static int sort_entries(const char *label, const cw_crl_entry *entries, size_t n,
			sorted_entry **out, cw_error *err)
{
	sorted_entry *s = cw_xcalloc(n ? n : 1, sizeof(*s));
	for (size_t i = 0; i < n; i++) {
		s[i].entry = &entries[i];
		int rc = parse_serial(label, entries[i].serial_hex, &s[i].serial, err);
		if (rc == 0 && !cw_revoke_reason_name(entries[i].reason))
			rc = cw_error_set(err, CW_EINVAL,
					  "crl for '%s': serial '%s' has unknown reason code %d",
					  label, entries[i].serial_hex, (int)entries[i].reason);
		if (rc != 0) {
			sorted_entries_free(s, n);
			return -1;
		}
	}
	qsort(s, n, sizeof(*s), compare_serials);
	for (size_t i = 1; i < n; i++) {
		if (BN_cmp(s[i - 1].serial, s[i].serial) == 0) {
			cw_error_set(err, CW_EINVAL, "crl for '%s': serial '%s' is listed twice",
				     label, s[i].entry->serial_hex);
			sorted_entries_free(s, n);
			return -1;
		}
	}
	*out = s;
	return 0;
}

static int add_reason(X509_REVOKED *rev, cw_revoke_reason reason)
{
	/* RFC 5280 5.3.1: absent means unspecified, and the code 0 SHOULD NOT be written */
	if (reason == CW_REASON_UNSPECIFIED)
		return 1;
	ASN1_ENUMERATED *code = ASN1_ENUMERATED_new();
	int ok = code && ASN1_ENUMERATED_set(code, (long)reason) &&
		 X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, code, 0, X509V3_ADD_DEFAULT) == 1;
	ASN1_ENUMERATED_free(code);
	return ok;
}

static int add_entry(X509_CRL *crl, const sorted_entry *s)
{
	X509_REVOKED *rev = X509_REVOKED_new();
	ASN1_INTEGER *serial = rev ? BN_to_ASN1_INTEGER(s->serial, NULL) : NULL;
	ASN1_TIME *when = serial ? ASN1_TIME_set(NULL, s->entry->revoked_at) : NULL;
	int ok = when && X509_REVOKED_set_serialNumber(rev, serial) &&
		 X509_REVOKED_set_revocationDate(rev, when) && add_reason(rev, s->entry->reason) &&
		 X509_CRL_add0_revoked(crl, rev);
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(when);
	if (!ok)
		X509_REVOKED_free(rev);
	return ok;
}

static int add_entries(X509_CRL *crl, const char *label, const cw_crl_entry *entries, size_t n,
		       cw_error *err)
{
	sorted_entry *sorted;
	if (sort_entries(label, entries, n, &sorted, err) != 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (!add_entry(crl, &sorted[i]))
			rc = cw_error_openssl(err, "crl for '%s': cannot add serial '%s'", label,
					      sorted[i].entry->serial_hex);
	sorted_entries_free(sorted, n);
	return rc;
}

/* ------------------------------------------------------------------ CRL fields */

static int set_header(X509_CRL *crl, const char *label, X509 *ca_cert, time_t now,
		      int64_t lifetime, cw_error *err)
{
	/* thisUpdate is backdated like notBefore, so a client whose clock is a little behind
	 * does not see a CRL from the future */
	ASN1_TIME *this_update = ASN1_TIME_set(NULL, now - CW_CA_BACKDATE);
	ASN1_TIME *next_update = ASN1_TIME_set(NULL, (time_t)(now + lifetime));
	int ok = this_update && next_update && X509_CRL_set_version(crl, X509_CRL_VERSION_2) &&
		 X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) &&
		 X509_CRL_set1_lastUpdate(crl, this_update) &&
		 X509_CRL_set1_nextUpdate(crl, next_update);
	ASN1_TIME_free(this_update);
	ASN1_TIME_free(next_update);
	return ok ? 0 : cw_error_openssl(err, "crl for '%s': cannot set the header", label);
}

static int add_crl_number(X509_CRL *crl, const char *label, uint64_t number, cw_error *err)
{
	ASN1_INTEGER *value = ASN1_INTEGER_new();
	int ok = value && ASN1_INTEGER_set_uint64(value, number) &&
		 X509_CRL_add1_ext_i2d(crl, NID_crl_number, value, 0, X509V3_ADD_DEFAULT) == 1;
	ASN1_INTEGER_free(value);
	return ok ? 0 : cw_error_openssl(err, "crl for '%s': cannot add the crl number", label);
}

/* RFC 5280 5.2.1: the AKI names the key that signed, so verifiers find the right CA
 * certificate across a key rollover. It is the CA's own SKI, exactly as localca puts it
 * into the certificates this CA signs. */
static int add_authority_key_id(X509_CRL *crl, const char *label, X509 *ca_cert, cw_error *err)
{
	AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
	if (!akid)
		return cw_error_openssl(err, "crl for '%s': out of memory", label);
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca_cert);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (ski) {
		akid->keyid = ASN1_OCTET_STRING_dup(ski);
	} else if (X509_pubkey_digest(ca_cert, EVP_sha1(), md, &mdlen)) {
		/* an imported CA without SKI: RFC 5280 4.2.1.2 method 1, as localca does */
		akid->keyid = ASN1_OCTET_STRING_new();
		if (akid->keyid && !ASN1_OCTET_STRING_set(akid->keyid, md, (int)mdlen)) {
			ASN1_OCTET_STRING_free(akid->keyid);
			akid->keyid = NULL;
		}
	}
	int ok = akid->keyid &&
		 X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0,
				       X509V3_ADD_DEFAULT) == 1;
	AUTHORITY_KEYID_free(akid);
	return ok ? 0
		  : cw_error_openssl(err, "crl for '%s': cannot add the authority key identifier",
				     label);
}

/* The same digest rule as the certificates the CA signs (localca.h): SHA-384 keeps a
 * P-384 key's strength, Ed25519 signs the message itself. */
static const EVP_MD *digest_for(EVP_PKEY *signer)
{
	switch (cw_key_type_of(signer, NULL)) {
	case CW_KEY_EC_P384:
		return EVP_sha384();
	case CW_KEY_ED25519:
		return NULL;
	default:
		if (EVP_PKEY_is_a(signer, "EC") && EVP_PKEY_get_bits(signer) > 384)
			return EVP_sha512();
		return EVP_sha256();
	}
}

static int crl_to_der(X509_CRL *crl, const char *label, unsigned char **der, size_t *len,
		      cw_error *err)
{
	int n = i2d_X509_CRL(crl, NULL);
	if (n <= 0)
		return cw_error_openssl(err, "crl for '%s': cannot encode as DER", label);
	/* our own buffer, so the caller frees with free() and not OPENSSL_free() */
	unsigned char *buf = cw_xmalloc((size_t)n);
	unsigned char *p = buf;
	if (i2d_X509_CRL(crl, &p) != n) {
		free(buf);
		return cw_error_openssl(err, "crl for '%s': cannot encode as DER", label);
	}
	*der = buf;
	*len = (size_t)n;
	return 0;
}

int cw_crl_sign(unsigned char **der, size_t *len, X509 *ca_cert, EVP_PKEY *ca_key,
		const cw_crl_entry *entries, size_t n, uint64_t number, time_t now,
		int64_t lifetime, cw_error *err)
{
	*der = NULL;
	*len = 0;
	char label[256];
	crl_label(ca_cert, label, sizeof(label));
	if (!ca_cert || !ca_key)
		return cw_error_set(err, CW_EINVAL, "crl for '%s': no ca certificate or key",
				    label);
	if (check_sign_args(label, number, now, lifetime, entries, n, err) != 0 ||
	    check_ca(label, ca_cert, ca_key, err) != 0)
		return -1;

	X509_CRL *crl = X509_CRL_new();
	if (!crl)
		return cw_error_openssl(err, "crl for '%s': out of memory", label);
	int rc = -1;
	if (set_header(crl, label, ca_cert, now, lifetime, err) == 0 &&
	    add_entries(crl, label, entries, n, err) == 0 &&
	    add_crl_number(crl, label, number, err) == 0 &&
	    add_authority_key_id(crl, label, ca_cert, err) == 0) {
		if (X509_CRL_sign(crl, ca_key, digest_for(ca_key)) > 0)
			rc = crl_to_der(crl, label, der, len, err);
		else
			cw_error_openssl(err, "crl for '%s': signing failed", label);
	}
	X509_CRL_free(crl);
	return rc;
}

/* ------------------------------------------------------------------ reading */

void cw_crl_info_release(cw_crl_info *info)
{
	if (!info)
		return;
	for (size_t i = 0; i < info->nrevoked; i++)
		free(info->serials[i]);
	free(info->serials);
	memset(info, 0, sizeof(*info));
}



/* A CRL without the number extension (v1, or another CA's) reads as number 0. */
static int read_number(X509_CRL *crl, uint64_t *out, cw_error *err)
{
	int crit = 0;
	ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
	*out = 0;
	if (!num) {
		ERR_clear_error();
		return crit == -1 ? 0 : cw_error_set(err, CW_EINVAL, "crl: unreadable crl number");
	}
	int ok = ASN1_INTEGER_get_uint64(out, num);
	ASN1_INTEGER_free(num);
	if (!ok) {
		ERR_clear_error();
		return cw_error_set(err, CW_EINVAL, "crl: crl number is negative or too large");
	}
	return 0;
}

static int read_revoked(X509_CRL *crl, cw_crl_info *info, cw_error *err)
{
	STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
	int n = revoked ? sk_X509_REVOKED_num(revoked) : 0;
	info->serials = cw_xcalloc(n > 0 ? (size_t)n : 1, sizeof(*info->serials));
	for (int i = 0; i < n; i++) {
		const X509_REVOKED *rev = sk_X509_REVOKED_value(revoked, i);
		char *serial = cw_asn1_serial_hex(X509_REVOKED_get0_serialNumber(rev));
		if (!serial)
			return cw_error_set(err, CW_EINVAL, "crl: unreadable serial in entry %d",
					    i + 1);
		info->serials[info->nrevoked++] = serial;
	}
	return 0;
}

static int read_crl(X509_CRL *crl, cw_crl_info *out, cw_error *err)
{
	if (read_number(crl, &out->number, err) != 0)
		return -1;
	if (cw_asn1_time(X509_CRL_get0_lastUpdate(crl), &out->this_update) != 0)
		return cw_error_set(err, CW_EINVAL, "crl: unreadable thisUpdate");
	/* nextUpdate is optional in the ASN.1 (RFC 5280 requires it of conforming CAs) */
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
	if (next && cw_asn1_time(next, &out->next_update) != 0)
		return cw_error_set(err, CW_EINVAL, "crl: unreadable nextUpdate");
	return read_revoked(crl, out, err);
}

int cw_crl_parse(const unsigned char *der, size_t len, cw_crl_info *out, cw_error *err)
{
	memset(out, 0, sizeof(*out));
	if (!der || len == 0)
		return cw_error_set(err, CW_EINVAL, "crl: empty input");
	if (len > LONG_MAX)
		return cw_error_set(err, CW_EINVAL, "crl: %zu bytes is too large", len);
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
	if (!crl)
		return cw_error_openssl(err, "crl: not a DER certificate revocation list");
	size_t used = (size_t)(p - der);
	int rc = 0;
	if (used != len)
		/* the fingerprint would be over bytes that are not the CRL */
		rc = cw_error_set(err, CW_EINVAL,
				  "crl: %zu bytes of trailing data after the DER crl", len - used);
	else
		rc = read_crl(crl, out, err);
	X509_CRL_free(crl);
	if (rc != 0) {
		cw_crl_info_release(out);
		return -1;
	}
	cw_sha256_hex(der, len, out->fingerprint);
	return 0;
}

void cw_crl_to_pem(const unsigned char *der, size_t len, cw_buf *out)
{
	cw_buf_adds(out, "-----BEGIN X509 CRL-----\n");
	unsigned char line[65];
	/* 48 input bytes are one 64-character line, as RFC 7468 asks */
	for (size_t off = 0; off < len; off += 48) {
		size_t chunk = len - off < 48 ? len - off : 48;
		int n = EVP_EncodeBlock(line, der + off, (int)chunk);
		cw_buf_add(out, line, (size_t)n);
		cw_buf_adds(out, "\n");
	}
	cw_buf_adds(out, "-----END X509 CRL-----\n");
}
