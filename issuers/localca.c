/*
 * localca — keys, names and signatures of the private CA. See localca.h for what
 * every certificate gets; the reasons are next to the code that does it.
 *
 * Issuance is on the engine's hot path (thousands of leaves per run), so signing
 * builds the extensions as ASN.1 structures directly instead of going through the
 * text-driven X509V3 configuration machinery, and takes the issuer's key identifier
 * from the issuer certificate's cached extensions instead of recomputing it.
 */
#include "issuers/localca.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Latest notAfter that RFC 5280 GeneralizedTime can express: 9999-12-31T23:59:59Z. */
#define LATEST_NOT_AFTER ((int64_t)253402300799LL)
#define SERIAL_BYTES 16

/* ------------------------------------------------------------------ keys */

int cw_key_generate(EVP_PKEY **out, cw_key_type type, cw_error *err)
{
	EVP_PKEY *key = NULL;
	*out = NULL;
	switch (type) {
	case CW_KEY_RSA1024:
	case CW_KEY_RSA2048:
	case CW_KEY_RSA3072:
	case CW_KEY_RSA4096:
		/* EVP_PKEY_Q_keygen uses the public exponent 65537 for RSA */
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)cw_key_type_bits(type));
		break;
	case CW_KEY_EC_P256:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case CW_KEY_EC_P384:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		break;
	case CW_KEY_ED25519:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	case CW_KEY_NONE:
		return cw_error_set(err, CW_EINVAL, "key: no key type given");
	}
	if (!key)
		return cw_error_openssl(err, "key %s: generation failed", cw_key_type_name(type));
	*out = key;
	return 0;
}

static cw_key_type ec_key_type(const EVP_PKEY *key)
{
	char group[80];
	size_t len = 0;
	if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					    &len)) {
		ERR_clear_error(); /* explicit curve parameters: not a curve we name */
		return CW_KEY_NONE;
	}
	if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256"))
		return CW_KEY_EC_P256;
	if (!strcmp(group, "secp384r1") || !strcmp(group, "P-384"))
		return CW_KEY_EC_P384;
	return CW_KEY_NONE;
}

cw_key_type cw_key_type_of(const EVP_PKEY *key, int *bits)
{
	int nbits = EVP_PKEY_get_bits(key);
	if (bits)
		*bits = nbits > 0 ? nbits : 0;
	if (EVP_PKEY_is_a(key, "RSA")) {
		switch (nbits) {
		case 1024: return CW_KEY_RSA1024;
		case 2048: return CW_KEY_RSA2048;
		case 3072: return CW_KEY_RSA3072;
		case 4096: return CW_KEY_RSA4096;
		default: return CW_KEY_NONE;
		}
	}
	if (EVP_PKEY_is_a(key, "EC"))
		return ec_key_type(key);
	if (EVP_PKEY_is_a(key, "ED25519"))
		return CW_KEY_ED25519;
	return CW_KEY_NONE;
}

/* ------------------------------------------------------------------ DN text */

void cw_dn_parts_free(cw_dn_part *parts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(parts[i].attr);
		free(parts[i].value);
	}
	free(parts);
}

typedef struct {
	const char *text;     /* the whole DN, for messages */
	const char *p;        /* read position */
	char sep;             /* ',' or '/' */
	cw_dn_part *parts;
	size_t n, cap;
	cw_error *err;
} dn_reader;

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int dn_fail(dn_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int dn_fail(dn_reader *r, const char *fmt, ...)
{
	char detail[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return cw_error_set(r->err, CW_EINVAL, "subject '%s': %s", r->text, detail);
}

static void skip_spaces(dn_reader *r)
{
	while (*r->p == ' ')
		r->p++;
}

static int is_attr_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '.';
}

static int read_attr(dn_reader *r, char **attr)
{
	skip_spaces(r);
	const char *start = r->p;
	while (is_attr_char(*r->p))
		r->p++;
	size_t len = (size_t)(r->p - start);
	skip_spaces(r);
	if (*r->p != '=') {
		size_t shown = strcspn(start, r->sep == ',' ? ",+" : "/");
		if (shown == 0)
			return dn_fail(r, "empty attribute");
		char *part = cw_xstrndup(start, shown);
		int rc = dn_fail(r, "'%s' is not of the form attribute=value", part);
		free(part);
		return rc;
	}
	if (len == 0)
		return dn_fail(r, "missing attribute name before '='");
	*attr = cw_xstrndup(start, len);
	r->p++; /* '=' */
	return 0;
}

/* One escape after a backslash: "\," style or a "\2C" hex pair. */
static int read_escape(dn_reader *r, cw_buf *value)
{
	int hi = hexval(r->p[0]);
	int lo = hi >= 0 ? hexval(r->p[1]) : -1;
	if (hi >= 0 && lo >= 0) {
		char byte = (char)(hi << 4 | lo);
		if (byte == '\0')
			return dn_fail(r, "escaped NUL byte in a value");
		cw_buf_add(value, &byte, 1);
		r->p += 2;
		return 0;
	}
	if (!*r->p || !strchr(",+\"\\<>;=# /", *r->p))
		return dn_fail(r, "bad escape '\\%.1s'", r->p);
	cw_buf_add(value, r->p, 1);
	r->p++;
	return 0;
}

/* Reads up to the next unescaped separator; trims unescaped spaces at both ends. A '+'
 * joins attributes into one RDN in the comma form only: in the slash form it is a plain
 * character, as with OpenSSL's -subj. */
static int read_value(dn_reader *r, char **out)
{
	cw_buf value = CW_BUF_INIT;
	size_t keep = 0; /* length without trailing unescaped spaces */
	skip_spaces(r);
	while (*r->p && *r->p != r->sep && !(r->sep == ',' && *r->p == '+')) {
		if (*r->p == '\\') {
			r->p++;
			if (read_escape(r, &value) != 0) {
				cw_buf_release(&value);
				return -1;
			}
			keep = value.len;
			continue;
		}
		cw_buf_add(&value, r->p, 1);
		if (*r->p != ' ')
			keep = value.len;
		r->p++;
	}
	cw_buf_add(&value, "", 0);
	value.buf[keep] = '\0';
	*out = cw_buf_detach(&value);
	return 0;
}

static void push_part(dn_reader *r, char *attr, char *value, int joined)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->parts = cw_xrealloc(r->parts, r->cap * sizeof(*r->parts));
	}
	r->parts[r->n++] = (cw_dn_part){ attr, value, joined };
}

static int read_parts(dn_reader *r)
{
	int joined = 0;
	for (;;) {
		char *attr = NULL, *value = NULL;
		if (read_attr(r, &attr) != 0)
			return -1;
		if (read_value(r, &value) != 0) {
			free(attr);
			return -1;
		}
		push_part(r, attr, value, joined);
		if (!*r->p)
			return 0;
		joined = *r->p == '+';
		r->p++;
		skip_spaces(r);
		if (!*r->p)
			return dn_fail(r, "ends with a separator");
	}
}

/* The slash form lists RDNs most significant first (as OpenSSL's -subj does): reverse
 * the RDNs, keeping the attributes of a multi-valued RDN in their written order. */
static void reverse_rdns(cw_dn_part *parts, size_t n)
{
	cw_dn_part *out = cw_xmalloc(n * sizeof(*out));
	size_t o = 0, end = n;
	while (end > 0) {
		size_t start = end - 1;
		while (start > 0 && parts[start].joined)
			start--;
		for (size_t i = start; i < end; i++) {
			out[o] = parts[i];
			out[o].joined = i > start;
			o++;
		}
		end = start;
	}
	memcpy(parts, out, n * sizeof(*out));
	free(out);
}

int cw_dn_split(const char *text, cw_dn_part **parts, size_t *n, cw_error *err)
{
	dn_reader r = { .text = text ? text : "", .err = err, .sep = ',' };
	*parts = NULL;
	*n = 0;
	r.p = r.text;
	skip_spaces(&r);
	if (!*r.p)
		return 0; /* the empty DN */
	if (*r.p == '/') {
		r.sep = '/';
		r.p++;
	}
	if (read_parts(&r) != 0) {
		cw_dn_parts_free(r.parts, r.n);
		return -1;
	}
	if (r.sep == '/')
		reverse_rdns(r.parts, r.n);
	*parts = r.parts;
	*n = r.n;
	return 0;
}

/* The attributes an inventory may use, spelled as OpenSSL prints them. */
static const struct {
	const char *name;
	int nid;
} dn_attrs[] = {
	{ "CN", NID_commonName },
	{ "O", NID_organizationName },
	{ "OU", NID_organizationalUnitName },
	{ "C", NID_countryName },
	{ "ST", NID_stateOrProvinceName },
	{ "L", NID_localityName },
	{ "emailAddress", NID_pkcs9_emailAddress },
	{ "serialNumber", NID_serialNumber },
	{ "DC", NID_domainComponent },
	{ "UID", NID_userId },
};
#define N_DN_ATTRS (sizeof(dn_attrs) / sizeof(dn_attrs[0]))

static int dn_attr_nid(const char *name)
{
	for (size_t i = 0; i < N_DN_ATTRS; i++)
		if (!strcasecmp(dn_attrs[i].name, name))
			return dn_attrs[i].nid;
	return NID_undef;
}

static int unknown_attr(const char *text, const char *attr, cw_error *err)
{
	const char *names[N_DN_ATTRS];
	for (size_t i = 0; i < N_DN_ATTRS; i++)
		names[i] = dn_attrs[i].name;
	const char *hint = cw_did_you_mean(attr, names, N_DN_ATTRS);
	if (hint)
		return cw_error_set(err, CW_EINVAL,
				    "subject '%s': unknown attribute '%s' (did you mean '%s'?)", text,
				    attr, hint);
	return cw_error_set(err, CW_EINVAL,
			    "subject '%s': unknown attribute '%s' (allowed: CN, O, OU, C, ST, L, "
			    "emailAddress, serialNumber, DC, UID)",
			    text, attr);
}

static int check_dn_value(const char *text, const cw_dn_part *part, int nid, cw_error *err)
{
	const char *v = part->value;
	if (!*v)
		return cw_error_set(err, CW_EINVAL, "subject '%s': empty value for '%s'", text,
				    part->attr);
	if (nid == NID_countryName &&
	    (strlen(v) != 2 || !isalpha((unsigned char)v[0]) || !isalpha((unsigned char)v[1])))
		return cw_error_set(err, CW_EINVAL,
				    "subject '%s': country '%s' is not a two-letter code", text, v);
	return 0;
}

static int add_dn_part(X509_NAME *name, const char *text, const cw_dn_part *part, int joined,
		       cw_error *err)
{
	int nid = dn_attr_nid(part->attr);
	if (nid == NID_undef)
		return unknown_attr(text, part->attr, err);
	if (check_dn_value(text, part, nid, err) != 0)
		return -1;
	/* OpenSSL picks the string type per attribute (PrintableString for C, IA5String for
	 * emailAddress and DC, UTF8String otherwise) and enforces the X.520 length limits */
	if (!X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (const unsigned char *)part->value,
					-1, -1, joined ? -1 : 0))
		return cw_error_openssl(err, "subject '%s': bad value for '%s'", text, part->attr);
	return 0;
}

int cw_dn_parse(const char *text, X509_NAME **out, cw_error *err)
{
	cw_dn_part *parts;
	size_t n;
	*out = NULL;
	if (cw_dn_split(text, &parts, &n, err) != 0)
		return -1;
	X509_NAME *name = X509_NAME_new();
	int rc = 0;
	/* DER lists RDNs most significant first: the reverse of the text's order */
	size_t end = n;
	while (rc == 0 && end > 0) {
		size_t start = end - 1;
		while (start > 0 && parts[start].joined)
			start--;
		for (size_t i = start; rc == 0 && i < end; i++)
			rc = add_dn_part(name, text, &parts[i], i > start, err);
		end = start;
	}
	cw_dn_parts_free(parts, n);
	if (rc != 0) {
		X509_NAME_free(name);
		return -1;
	}
	*out = name;
	return 0;
}

/* ------------------------------------------------------------------ DER */

int cw_x509_to_der(X509 *cert, unsigned char **der, size_t *len, cw_error *err)
{
	*der = NULL;
	*len = 0;
	int n = i2d_X509(cert, NULL);
	if (n <= 0)
		return cw_error_openssl(err, "certificate: cannot encode as DER");
	unsigned char *buf = cw_xmalloc((size_t)n);
	unsigned char *p = buf;
	if (i2d_X509(cert, &p) != n) {
		free(buf);
		return cw_error_openssl(err, "certificate: cannot encode as DER");
	}
	*der = buf;
	*len = (size_t)n;
	return 0;
}

int cw_x509_from_der(X509 **out, const unsigned char *der, size_t len, cw_error *err)
{
	*out = NULL;
	if (!der || len == 0)
		return cw_error_set(err, CW_EINVAL, "certificate: empty input");
	if (len > LONG_MAX)
		return cw_error_set(err, CW_EINVAL, "certificate: %zu bytes is too large", len);
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	if (!x)
		return cw_error_openssl(err, "certificate: not a DER X.509 certificate");
	size_t used = (size_t)(p - der);
	if (used != len) {
		X509_free(x);
		/* a fingerprint over bytes that are not the certificate would never match */
		return cw_error_set(err, CW_EINVAL,
				    "certificate: %zu bytes of trailing data after the DER certificate",
				    len - used);
	}
	*out = x;
	return 0;
}

/* ------------------------------------------------------------------ signing */

/* What messages call the certificate being made: its subject, or its first SAN. */
static const char *spec_label(const cw_cert_spec *spec)
{
	if (spec->subject && *spec->subject)
		return spec->subject;
	if (spec->nsans > 0 && spec->sans[0].value)
		return spec->sans[0].value;
	return "(no subject)";
}

static int asn1_time_to_time_t(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!ASN1_TIME_to_tm(t, &tm))
		return -1;
	*out = timegm(&tm);
	return 0;
}

static void issuer_label(X509 *issuer, char *buf, size_t size)
{
	/* only for messages: OpenSSL's one-line form is good enough here */
	X509_NAME_oneline(X509_get_subject_name(issuer), buf, (int)size);
}

static int check_issuer(const cw_cert_spec *spec, X509 *issuer, EVP_PKEY *issuer_key,
			time_t not_after, cw_error *err)
{
	const char *what = spec_label(spec);
	char iname[256];
	issuer_label(issuer, iname, sizeof(iname));
	uint32_t flags = X509_get_extension_flags(issuer);
	if (flags & EXFLAG_INVALID)
		return cw_error_set(err, CW_EINVAL, "issuer '%s': certificate has invalid extensions",
				    iname);
	if (!(flags & EXFLAG_CA) || !(X509_get_key_usage(issuer) & KU_KEY_CERT_SIGN))
		return cw_error_set(err, CW_EINVAL, "issuer '%s': not a CA certificate", iname);
	if (spec->is_ca && X509_get_pathlen(issuer) == 0)
		return cw_error_set(err, CW_EINVAL,
				    "certificate '%s': issuer '%s' allows no CA below it (pathlen 0)",
				    what, iname);
	if (EVP_PKEY_eq(X509_get0_pubkey(issuer), issuer_key) != 1) {
		ERR_clear_error();
		return cw_error_set(err, CW_EINVAL,
				    "issuer '%s': private key does not match the certificate", iname);
	}
	time_t issuer_end;
	if (asn1_time_to_time_t(X509_get0_notAfter(issuer), &issuer_end) != 0)
		return cw_error_set(err, CW_EINVAL, "issuer '%s': unreadable notAfter", iname);
	if (not_after > issuer_end) {
		char want[32], have[32];
		cw_format_time(not_after, want);
		cw_format_time(issuer_end, have);
		return cw_error_set(err, CW_EINVAL,
				    "certificate '%s' would outlive its issuer '%s' (%s > %s)", what,
				    iname, want, have);
	}
	return 0;
}

static int check_sign_args(const cw_cert_spec *spec, EVP_PKEY *key, X509 *issuer,
			   EVP_PKEY *issuer_key, time_t now, cw_error *err)
{
	const char *what = spec_label(spec);
	if (!key)
		return cw_error_set(err, CW_EINVAL, "certificate '%s': no key to certify", what);
	if (!issuer != !issuer_key)
		return cw_error_set(err, CW_EINVAL,
				    "certificate '%s': issuer certificate and key go together", what);
	if (!issuer && !spec->is_ca)
		return cw_error_set(err, CW_EINVAL, "certificate '%s': only a CA can be self-signed",
				    what);
	if (!spec->is_ca && (spec->usage & (CW_KU_KEY_CERT_SIGN | CW_KU_CRL_SIGN)))
		return cw_error_set(err, CW_EINVAL,
				    "certificate '%s': key-cert-sign and crl-sign need a CA", what);
	if (spec->lifetime <= 0 || spec->lifetime > LATEST_NOT_AFTER - (int64_t)now)
		return cw_error_set(err, CW_EINVAL,
				    "certificate '%s': lifetime %lld s is out of range", what,
				    (long long)spec->lifetime);
	if (!issuer && (!spec->subject || !*spec->subject))
		return cw_error_set(err, CW_EINVAL, "certificate '%s': a root needs a subject", what);
	return 0;
}

/* 127 random bits: positive (top bit clear) and always 16 bytes long, so serials have
 * one length in file names; forcing a zero first byte to 1 costs < 1/128 bit. */
static int set_serial(X509 *x, cw_error *err)
{
	unsigned char bytes[SERIAL_BYTES];
	if (RAND_bytes(bytes, sizeof(bytes)) != 1)
		return cw_error_openssl(err, "certificate: no random serial");
	bytes[0] &= 0x7f;
	if (bytes[0] == 0)
		bytes[0] = 1;
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	int ok = serial && ASN1_STRING_set(serial, bytes, sizeof(bytes)) &&
		 X509_set_serialNumber(x, serial);
	ASN1_INTEGER_free(serial);
	return ok ? 0 : cw_error_openssl(err, "certificate: cannot set serial");
}

static int set_names(X509 *x, const cw_cert_spec *spec, X509 *issuer, cw_error *err)
{
	X509_NAME *subject;
	if (cw_dn_parse(spec->subject, &subject, err) != 0)
		return -1;
	int ok = X509_set_subject_name(x, subject) &&
		 X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject);
	X509_NAME_free(subject);
	return ok ? 0 : cw_error_openssl(err, "certificate '%s': cannot set names", spec_label(spec));
}

static int set_validity(X509 *x, const cw_cert_spec *spec, time_t now, cw_error *err)
{
	/* ASN1_TIME_set picks UTCTime before 2050 and GeneralizedTime after, as RFC 5280 wants */
	if (!ASN1_TIME_set(X509_getm_notBefore(x), now - CW_CA_BACKDATE) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(now - CW_CA_BACKDATE + spec->lifetime)))
		return cw_error_openssl(err, "certificate '%s': cannot set validity", spec_label(spec));
	return 0;
}

static int add_ext(X509 *x, int nid, void *value, int critical, const cw_cert_spec *spec,
		   cw_error *err)
{
	if (X509_add1_ext_i2d(x, nid, value, critical, X509V3_ADD_DEFAULT) != 1)
		return cw_error_openssl(err, "certificate '%s': cannot add extension %s",
					spec_label(spec), OBJ_nid2sn(nid));
	return 0;
}

static int add_basic_constraints(X509 *x, const cw_cert_spec *spec, cw_error *err)
{
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	bc->ca = spec->is_ca ? 0xff : 0;
	if (spec->is_ca && spec->path_len >= 0) {
		bc->pathlen = ASN1_INTEGER_new();
		ASN1_INTEGER_set(bc->pathlen, spec->path_len);
	}
	int rc = add_ext(x, NID_basic_constraints, bc, 1, spec, err);
	BASIC_CONSTRAINTS_free(bc);
	return rc;
}

static int add_key_usage(X509 *x, const cw_cert_spec *spec, cw_error *err)
{
	uint32_t ku = spec->usage & CW_KU_MASK;
	if (spec->is_ca)
		ku |= CW_KU_KEY_CERT_SIGN | CW_KU_CRL_SIGN | CW_KU_DIGITAL_SIGNATURE;
	if (!ku)
		return 0; /* RFC 5280: a keyUsage extension must assert at least one bit */
	ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
	/* our KU bit i is the keyUsage BIT STRING's bit i (digitalSignature = 0 ...) */
	for (int i = 0; i < 8; i++)
		if (ku & (1u << i))
			ASN1_BIT_STRING_set_bit(bits, i, 1);
	int rc = add_ext(x, NID_key_usage, bits, 1, spec, err);
	ASN1_BIT_STRING_free(bits);
	return rc;
}

/* Extended key usages by bit; NID_undef = an OID OpenSSL has no name for. */
static const struct {
	uint32_t bit;
	int nid;
	const char *oid;
} eku_oids[] = {
	{ CW_EKU_SERVER_AUTH, NID_server_auth, NULL },
	{ CW_EKU_CLIENT_AUTH, NID_client_auth, NULL },
	{ CW_EKU_CODE_SIGNING, NID_code_sign, NULL },
	{ CW_EKU_EMAIL_PROTECTION, NID_email_protect, NULL },
	{ CW_EKU_TIME_STAMPING, NID_time_stamp, NULL },
	{ CW_EKU_OCSP_SIGNING, NID_OCSP_sign, NULL },
	{ CW_EKU_IPSEC_IKE, NID_ipsec_IKE, NULL },
	{ CW_EKU_IKE_INTERMEDIATE, NID_undef, "1.3.6.1.5.5.8.2.2" },
};

static int add_ext_key_usage(X509 *x, const cw_cert_spec *spec, cw_error *err)
{
	if (!(spec->usage & CW_EKU_MASK))
		return 0;
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
	for (size_t i = 0; i < sizeof(eku_oids) / sizeof(eku_oids[0]); i++) {
		if (!(spec->usage & eku_oids[i].bit))
			continue;
		ASN1_OBJECT *obj = eku_oids[i].nid != NID_undef ? OBJ_nid2obj(eku_oids[i].nid)
							      : OBJ_txt2obj(eku_oids[i].oid, 1);
		if (obj)
			sk_ASN1_OBJECT_push(eku, obj);
	}
	int rc = add_ext(x, NID_ext_key_usage, eku, 0, spec, err);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return rc;
}

static GENERAL_NAME *ia5_name(int type, const char *value)
{
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	if (!s || !ASN1_STRING_set(s, value, -1)) {
		ASN1_IA5STRING_free(s);
		return NULL;
	}
	GENERAL_NAME *gn = GENERAL_NAME_new();
	GENERAL_NAME_set0_value(gn, type, s);
	return gn;
}

static int is_ascii_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static GENERAL_NAME *san_to_general_name(const cw_san *san, const cw_cert_spec *spec,
					 cw_error *err)
{
	const char *what = spec_label(spec);
	const char *v = san->value ? san->value : "";
	if (san->type == CW_SAN_IP) {
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(v);
		if (!ip) {
			ERR_clear_error();
			cw_error_set(err, CW_EINVAL, "certificate '%s': SAN 'IP:%s' is not an IP address",
				     what, v);
			return NULL;
		}
		GENERAL_NAME *gn = GENERAL_NAME_new();
		GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
		return gn;
	}
	/* IA5String: DNS names, mail addresses and URIs are ASCII (IDNs go in as A-labels) */
	if (!*v || !is_ascii_printable(v)) {
		cw_error_set(err, CW_EINVAL,
			     "certificate '%s': SAN '%s:%s' must be non-empty printable ASCII", what,
			     cw_san_type_name(san->type), v);
		return NULL;
	}
	int type = san->type == CW_SAN_DNS ? GEN_DNS : san->type == CW_SAN_EMAIL ? GEN_EMAIL : GEN_URI;
	GENERAL_NAME *gn = ia5_name(type, v);
	if (!gn)
		cw_error_openssl(err, "certificate '%s': cannot encode SAN '%s'", what, v);
	return gn;
}

static int add_subject_alt_names(X509 *x, const cw_cert_spec *spec, cw_error *err)
{
	int empty_subject = X509_NAME_entry_count(X509_get_subject_name(x)) == 0;
	if (spec->nsans == 0) {
		if (empty_subject)
			return cw_error_set(err, CW_EINVAL,
					    "certificate '%s': an empty subject needs at least one SAN",
					    spec_label(spec));
		return 0;
	}
	GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < spec->nsans; i++) {
		GENERAL_NAME *gn = san_to_general_name(&spec->sans[i], spec, err);
		if (gn)
			sk_GENERAL_NAME_push(names, gn);
		else
			rc = -1;
	}
	/* RFC 5280 4.2.1.6: with an empty subject the SAN carries the identity, so critical */
	if (rc == 0)
		rc = add_ext(x, NID_subject_alt_name, names, empty_subject, spec, err);
	GENERAL_NAMES_free(names);
	return rc;
}

/* spec->crl_url is where the ISSUER publishes its CRL (the engine puts the issuer's URL
 * there), so leaves and intermediates carry it; a root cannot be revoked by a CRL it
 * signs itself, so it never does. */
static int add_crl_distribution_point(X509 *x, const cw_cert_spec *spec, X509 *issuer,
				      cw_error *err)
{
	if (!issuer || !spec->crl_url || !*spec->crl_url)
		return 0;
	cw_san uri = { CW_SAN_URI, spec->crl_url };
	GENERAL_NAME *gn = san_to_general_name(&uri, spec, err);
	if (!gn)
		return -1;
	DIST_POINT *dp = DIST_POINT_new();
	dp->distpoint = DIST_POINT_NAME_new();
	dp->distpoint->type = 0; /* fullName */
	dp->distpoint->name.fullname = sk_GENERAL_NAME_new_null();
	sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gn);
	CRL_DIST_POINTS *dps = sk_DIST_POINT_new_null();
	sk_DIST_POINT_push(dps, dp);
	int rc = add_ext(x, NID_crl_distribution_points, dps, 0, spec, err);
	CRL_DIST_POINTS_free(dps);
	return rc;
}

/* RFC 5280 4.2.1.2 method 1: SHA-1 over the subjectPublicKey BIT STRING. */
static int add_key_identifiers(X509 *x, const cw_cert_spec *spec, X509 *issuer, cw_error *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!X509_pubkey_digest(x, EVP_sha1(), md, &mdlen))
		return cw_error_openssl(err, "certificate '%s': cannot hash the public key",
					spec_label(spec));
	ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
	ASN1_OCTET_STRING_set(ski, md, (int)mdlen);
	int rc = add_ext(x, NID_subject_key_identifier, ski, 0, spec, err);
	ASN1_OCTET_STRING_free(ski);
	if (rc != 0 || !issuer)
		return rc; /* a root has no AKI: its key identifier is its SKI */

	AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
	const ASN1_OCTET_STRING *issuer_ski = X509_get0_subject_key_id(issuer);
	if (issuer_ski) {
		akid->keyid = ASN1_OCTET_STRING_dup(issuer_ski);
	} else if (X509_pubkey_digest(issuer, EVP_sha1(), md, &mdlen)) {
		/* an imported issuer without SKI: use the same method 1 identifier */
		akid->keyid = ASN1_OCTET_STRING_new();
		ASN1_OCTET_STRING_set(akid->keyid, md, (int)mdlen);
	}
	rc = akid->keyid ? add_ext(x, NID_authority_key_identifier, akid, 0, spec, err)
			 : cw_error_openssl(err, "certificate '%s': no issuer key identifier",
					    spec_label(spec));
	AUTHORITY_KEYID_free(akid);
	return rc;
}

static int add_extensions(X509 *x, const cw_cert_spec *spec, X509 *issuer, cw_error *err)
{
	if (add_basic_constraints(x, spec, err) != 0 || add_key_usage(x, spec, err) != 0 ||
	    add_ext_key_usage(x, spec, err) != 0 ||
	    add_key_identifiers(x, spec, issuer, err) != 0 ||
	    add_subject_alt_names(x, spec, err) != 0 ||
	    add_crl_distribution_point(x, spec, issuer, err) != 0)
		return -1;
	return 0;
}

/* The digest goes with the signing key: SHA-384 for P-384 keeps the strength matched. */
static const EVP_MD *digest_for(EVP_PKEY *signer)
{
	switch (cw_key_type_of(signer, NULL)) {
	case CW_KEY_EC_P384:
		return EVP_sha384();
	case CW_KEY_ED25519:
		return NULL; /* pure EdDSA: no separate digest */
	default:
		if (EVP_PKEY_is_a(signer, "EC") && EVP_PKEY_get_bits(signer) > 384)
			return EVP_sha512();
		return EVP_sha256();
	}
}

int cw_ca_sign(X509 **out, const cw_cert_spec *spec, EVP_PKEY *key, X509 *issuer_cert,
	       EVP_PKEY *issuer_key, time_t now, cw_error *err)
{
	*out = NULL;
	if (check_sign_args(spec, key, issuer_cert, issuer_key, now, err) != 0)
		return -1;
	/* the validity span is exactly the lifetime asked for (Apple's 825-day rule counts
	 * from notBefore), so the backdated start moves the end back as well */
	time_t not_after = (time_t)(now - CW_CA_BACKDATE + spec->lifetime);
	if (issuer_cert && check_issuer(spec, issuer_cert, issuer_key, not_after, err) != 0)
		return -1;

	X509 *x = X509_new();
	if (!x)
		return cw_error_openssl(err, "certificate '%s': out of memory", spec_label(spec));
	EVP_PKEY *signer = issuer_key ? issuer_key : key;
	int rc = -1;
	if (!X509_set_version(x, X509_VERSION_3) || !X509_set_pubkey(x, key))
		cw_error_openssl(err, "certificate '%s': cannot set the key", spec_label(spec));
	else if (set_serial(x, err) == 0 && set_names(x, spec, issuer_cert, err) == 0 &&
		 set_validity(x, spec, now, err) == 0 && add_extensions(x, spec, issuer_cert, err) == 0)
		rc = X509_sign(x, signer, digest_for(signer)) > 0
			     ? 0
			     : cw_error_openssl(err, "certificate '%s': signing failed",
						spec_label(spec));
	if (rc != 0) {
		X509_free(x);
		return -1;
	}
	*out = x;
	return 0;
}

/* ---- ASN.1 helpers for the parsers ---- */

char *cw_asn1_serial_hex(const ASN1_INTEGER *serial)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	BN_free(bn);
	if (!hex) {
		ERR_clear_error();
		return NULL;
	}
	/* BN_bn2hex prints whole bytes ("0F"); the contract is no leading zeros */
	const char *digits = hex[0] == '-' ? hex + 1 : hex;
	while (digits[0] == '0' && digits[1])
		digits++;
	char *out = cw_xasprintf("%s%s", hex[0] == '-' ? "-" : "", digits);
	OPENSSL_free(hex);
	return out;
}

int cw_asn1_time(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!t || !ASN1_TIME_to_tm(t, &tm)) {
		ERR_clear_error();
		return -1;
	}
	*out = timegm(&tm);
	return 0;
}
