/*
 * x509 — certificate parsing, the one place. Certificates come from devices and
 * foreign CAs as well as from our own CA, so everything here treats its input as
 * hostile: lengths are checked, names with NUL bytes are refused rather than
 * truncated, and a malformed extension is an error instead of a silent default.
 */
#include "reconcile/x509.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "issuers/localca.h"

/* 1.3.6.1.5.5.8.2.2 (iKEIntermediate) has no OpenSSL NID: compare its DER body. */
static const unsigned char oid_ike_intermediate[] = { 0x2b, 0x06, 0x01, 0x05, 0x05,
						      0x08, 0x02, 0x02 };

/* ------------------------------------------------------------------ names */

static int needs_escape(const unsigned char *v, size_t len, size_t i)
{
	unsigned char c = v[i];
	if (c && strchr(",+\"\\<>;", c))
		return 1;
	if (i == 0 && (c == '#' || c == ' '))
		return 1;
	return i == len - 1 && c == ' ';
}

/* RFC 4514 escaping; control bytes as \XX so a name can never break a line of output. */
static void add_escaped_value(cw_buf *out, const unsigned char *v, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (v[i] < 0x20 || v[i] == 0x7f)
			cw_buf_addf(out, "\\%02X", v[i]);
		else {
			if (needs_escape(v, len, i))
				cw_buf_adds(out, "\\");
			cw_buf_add(out, &v[i], 1);
		}
	}
}

static void add_attr_name(cw_buf *out, const ASN1_OBJECT *obj)
{
	int nid = OBJ_obj2nid(obj);
	const char *sn = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
	if (sn) {
		cw_buf_adds(out, sn);
		return;
	}
	char oid[128];
	OBJ_obj2txt(oid, sizeof(oid), obj, 1);
	cw_buf_adds(out, oid);
}

static void add_entry(cw_buf *out, const X509_NAME_ENTRY *e)
{
	add_attr_name(out, X509_NAME_ENTRY_get_object(e));
	cw_buf_adds(out, "=");
	const ASN1_STRING *data = X509_NAME_ENTRY_get_data(e);
	unsigned char *utf8 = NULL;
	int n = ASN1_STRING_to_UTF8(&utf8, data);
	if (n >= 0) {
		add_escaped_value(out, utf8, (size_t)n);
		OPENSSL_free(utf8);
		return;
	}
	ERR_clear_error();
	/* not a string type: RFC 4514 hex form of the raw bytes */
	cw_buf_adds(out, "#");
	const unsigned char *raw = ASN1_STRING_get0_data(data);
	for (int i = 0; i < ASN1_STRING_length(data); i++)
		cw_buf_addf(out, "%02X", raw[i]);
}

/* RFC 4514: the last RDN of the DER comes first, which gives the inventory's
 * "CN=vpn.example.net,O=Example,C=JP" for a name the CA built from that text. */
static char *name_to_text(const X509_NAME *name)
{
	cw_buf out = CW_BUF_INIT;
	int end = X509_NAME_entry_count(name);
	while (end > 0) {
		int start = end - 1;
		int set = X509_NAME_ENTRY_set(X509_NAME_get_entry(name, start));
		while (start > 0 && X509_NAME_ENTRY_set(X509_NAME_get_entry(name, start - 1)) == set)
			start--;
		if (out.len)
			cw_buf_adds(&out, ",");
		for (int i = start; i < end; i++) {
			if (i > start)
				cw_buf_adds(&out, "+");
			add_entry(&out, X509_NAME_get_entry(name, i));
		}
		end = start;
	}
	return cw_buf_detach(&out);
}

/* ------------------------------------------------------------------ scalar fields */



static char *signature_name(const X509 *x)
{
	const X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *obj = NULL;
	X509_get0_signature(NULL, &alg, x);
	X509_ALGOR_get0(&obj, NULL, NULL, alg);
	char name[128];
	/* long names: "sha256WithRSAEncryption", "ecdsa-with-SHA256", "ED25519" */
	if (!obj || OBJ_obj2txt(name, sizeof(name), obj, 0) <= 0)
		return cw_xstrdup("unknown");
	return cw_xstrdup(name);
}

static char *hex_of(const ASN1_OCTET_STRING *s)
{
	if (!s)
		return NULL;
	size_t len = (size_t)ASN1_STRING_length(s);
	char *out = cw_xmalloc(2 * len + 1);
	cw_hex(ASN1_STRING_get0_data(s), len, out);
	return out;
}

/* ------------------------------------------------------------------ extensions */

/* X509_get_ext_d2i, telling "absent" (0) from "present but broken or repeated" (-1). */
static int get_ext(X509 *x, int nid, void **out, cw_error *err)
{
	int crit = 0;
	*out = X509_get_ext_d2i(x, nid, &crit, NULL);
	if (*out)
		return 1;
	ERR_clear_error();
	if (crit == -1)
		return 0;
	return cw_error_set(err, CW_EINVAL, "certificate: %s extension is %s", OBJ_nid2sn(nid),
			    crit == -2 ? "repeated" : "malformed");
}

static int copy_ia5(const ASN1_IA5STRING *s, const char *kind, char **out, cw_error *err)
{
	const unsigned char *data = ASN1_STRING_get0_data(s);
	int len = ASN1_STRING_length(s);
	/* "good.example\0.evil.example" must not become "good.example" */
	if (len < 0 || memchr(data, 0, (size_t)len))
		return cw_error_set(err, CW_EINVAL, "certificate: %s SAN contains a NUL byte", kind);
	*out = cw_xstrndup((const char *)data, (size_t)len);
	return 0;
}

static int copy_ip(const ASN1_OCTET_STRING *s, char **out, cw_error *err)
{
	char text[INET6_ADDRSTRLEN];
	int len = ASN1_STRING_length(s);
	int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
	if (!family || !inet_ntop(family, ASN1_STRING_get0_data(s), text, sizeof(text)))
		return cw_error_set(err, CW_EINVAL, "certificate: IP SAN of %d bytes", len);
	*out = cw_xstrdup(text);
	return 0;
}

/* 1 = one of ours (value set), 0 = a kind we do not track (otherName, dirName...). */
static int general_name_to_san(const GENERAL_NAME *gn, cw_san *san, cw_error *err)
{
	int type;
	void *v = GENERAL_NAME_get0_value(gn, &type);
	switch (type) {
	case GEN_DNS:
		san->type = CW_SAN_DNS;
		return copy_ia5(v, "DNS", &san->value, err) == 0 ? 1 : -1;
	case GEN_EMAIL:
		san->type = CW_SAN_EMAIL;
		return copy_ia5(v, "email", &san->value, err) == 0 ? 1 : -1;
	case GEN_URI:
		san->type = CW_SAN_URI;
		return copy_ia5(v, "URI", &san->value, err) == 0 ? 1 : -1;
	case GEN_IPADD:
		san->type = CW_SAN_IP;
		return copy_ip(v, &san->value, err) == 0 ? 1 : -1;
	default:
		return 0;
	}
}

static int read_sans(X509 *x, cw_x509_info *info, cw_error *err)
{
	GENERAL_NAMES *names;
	int rc = get_ext(x, NID_subject_alt_name, (void **)&names, err);
	if (rc <= 0)
		return rc;
	int n = sk_GENERAL_NAME_num(names);
	info->sans = cw_xcalloc((size_t)n, sizeof(cw_san));
	rc = 0;
	for (int i = 0; rc == 0 && i < n; i++) {
		int got = general_name_to_san(sk_GENERAL_NAME_value(names, i), &info->sans[info->nsans],
					      err);
		if (got < 0)
			rc = -1;
		else
			info->nsans += (size_t)got;
	}
	GENERAL_NAMES_free(names);
	return rc;
}

static int read_key_usage(X509 *x, cw_x509_info *info, cw_error *err)
{
	ASN1_BIT_STRING *ku;
	int rc = get_ext(x, NID_key_usage, (void **)&ku, err);
	if (rc <= 0)
		return rc;
	/* keyUsage bit i (digitalSignature = 0 .. cRLSign = 6) is our KU bit i */
	for (int i = 0; i < 7; i++)
		if (ASN1_BIT_STRING_get_bit(ku, i))
			info->usage |= 1u << i;
	ASN1_BIT_STRING_free(ku);
	return 0;
}

static uint32_t eku_bit(const ASN1_OBJECT *obj)
{
	switch (OBJ_obj2nid(obj)) {
	case NID_server_auth: return CW_EKU_SERVER_AUTH;
	case NID_client_auth: return CW_EKU_CLIENT_AUTH;
	case NID_code_sign: return CW_EKU_CODE_SIGNING;
	case NID_email_protect: return CW_EKU_EMAIL_PROTECTION;
	case NID_time_stamp: return CW_EKU_TIME_STAMPING;
	case NID_OCSP_sign: return CW_EKU_OCSP_SIGNING;
	case NID_ipsec_IKE: return CW_EKU_IPSEC_IKE;
	default: break;
	}
	if (OBJ_length(obj) == sizeof(oid_ike_intermediate) &&
	    !memcmp(OBJ_get0_data(obj), oid_ike_intermediate, sizeof(oid_ike_intermediate)))
		return CW_EKU_IKE_INTERMEDIATE;
	return 0;
}

static int read_ext_key_usage(X509 *x, cw_x509_info *info, cw_error *err)
{
	EXTENDED_KEY_USAGE *eku;
	int rc = get_ext(x, NID_ext_key_usage, (void **)&eku, err);
	if (rc <= 0)
		return rc;
	for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++)
		info->usage |= eku_bit(sk_ASN1_OBJECT_value(eku, i));
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return 0;
}

static int read_basic_constraints(X509 *x, cw_x509_info *info, cw_error *err)
{
	BASIC_CONSTRAINTS *bc;
	info->path_len = -1;
	int rc = get_ext(x, NID_basic_constraints, (void **)&bc, err);
	if (rc <= 0)
		return rc;
	info->is_ca = bc->ca != 0;
	if (info->is_ca && bc->pathlen) {
		long v = ASN1_INTEGER_get(bc->pathlen);
		if (v < 0 || v > INT_MAX)
			rc = cw_error_set(err, CW_EINVAL, "certificate: pathlen constraint out of range");
		else
			info->path_len = (int)v;
	}
	BASIC_CONSTRAINTS_free(bc);
	return rc < 0 ? -1 : 0;
}

static const ASN1_IA5STRING *first_uri(const GENERAL_NAMES *names)
{
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		int type;
		const ASN1_IA5STRING *uri =
			GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(names, i), &type);
		if (type == GEN_URI)
			return uri;
	}
	return NULL;
}

static int read_crl_url(X509 *x, cw_x509_info *info, cw_error *err)
{
	CRL_DIST_POINTS *dps;
	int rc = get_ext(x, NID_crl_distribution_points, (void **)&dps, err);
	if (rc <= 0)
		return rc;
	rc = 0;
	for (int i = 0; !info->crl_url && rc == 0 && i < sk_DIST_POINT_num(dps); i++) {
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
		if (!dp->distpoint || dp->distpoint->type != 0)
			continue; /* relative names locate nothing on their own */
		const ASN1_IA5STRING *uri = first_uri(dp->distpoint->name.fullname);
		if (uri)
			rc = copy_ia5(uri, "CRL distribution point", &info->crl_url, err);
	}
	CRL_DIST_POINTS_free(dps);
	return rc;
}

static int read_extensions(X509 *x, cw_x509_info *info, cw_error *err)
{
	/* caching the extensions flags duplicates and undecodable known extensions */
	if (X509_get_extension_flags(x) & EXFLAG_INVALID) {
		ERR_clear_error();
		return cw_error_set(err, CW_EINVAL, "certificate: invalid or repeated extensions");
	}
	if (read_sans(x, info, err) != 0 || read_key_usage(x, info, err) != 0 ||
	    read_ext_key_usage(x, info, err) != 0 || read_basic_constraints(x, info, err) != 0 ||
	    read_crl_url(x, info, err) != 0)
		return -1;
	info->ski = hex_of(X509_get0_subject_key_id(x));
	info->aki = hex_of(X509_get0_authority_key_id(x));
	return 0;
}

/* ------------------------------------------------------------------ parse */

static void read_key(X509 *x, cw_x509_info *info)
{
	EVP_PKEY *key = X509_get0_pubkey(x);
	if (!key) {
		ERR_clear_error(); /* an algorithm OpenSSL cannot load: we just do not know it */
		info->key = CW_KEY_NONE;
		return;
	}
	info->key = cw_key_type_of(key, &info->key_bits);
}

static int read_fields(X509 *x, cw_x509_info *info, cw_error *err)
{
	info->serial = cw_asn1_serial_hex(X509_get0_serialNumber(x));
	if (!info->serial)
		return cw_error_set(err, CW_EINVAL, "certificate: unreadable serial number");
	info->subject = name_to_text(X509_get_subject_name(x));
	info->issuer = name_to_text(X509_get_issuer_name(x));
	if (cw_asn1_time(X509_get0_notBefore(x), &info->not_before) != 0 ||
	    cw_asn1_time(X509_get0_notAfter(x), &info->not_after) != 0)
		return cw_error_set(err, CW_EINVAL, "certificate %s: unreadable validity dates",
				    info->serial);
	read_key(x, info);
	info->sig_alg = signature_name(x);
	if (read_extensions(x, info, err) != 0)
		return -1;
	/* with the signature checked: a re-keyed CA that kept its name is not self-signed */
	info->self_signed = X509_self_signed(x, 1) == 1;
	ERR_clear_error();
	return 0;
}

int cw_x509_parse(const unsigned char *der, size_t len, cw_x509_info *out, cw_error *err)
{
	memset(out, 0, sizeof(*out));
	out->path_len = -1;
	X509 *x;
	if (cw_x509_from_der(&x, der, len, err) != 0)
		return -1;
	cw_sha256_hex(der, len, out->fingerprint);
	int rc = read_fields(x, out, err);
	X509_free(x);
	if (rc != 0)
		cw_x509_info_release(out);
	return rc;
}

void cw_x509_info_release(cw_x509_info *info)
{
	if (!info)
		return;
	free(info->serial);
	free(info->subject);
	free(info->issuer);
	free(info->sig_alg);
	for (size_t i = 0; i < info->nsans; i++)
		free(info->sans[i].value);
	free(info->sans);
	free(info->ski);
	free(info->aki);
	free(info->crl_url);
	memset(info, 0, sizeof(*info));
	info->path_len = -1;
}

/* ------------------------------------------------------------------ PEM */

static int is_cert_block(const char *name)
{
	return !strcmp(name, PEM_STRING_X509) || !strcmp(name, PEM_STRING_X509_OLD);
}

/* Next certificate block's DER: 1 found, 0 end of text, -1 broken PEM. Other blocks
 * (keys, CRLs) are skipped: a bundle file may hold them next to the chain. */
static int pem_next_cert(BIO *bio, unsigned char **der, size_t *len, cw_error *err)
{
	for (;;) {
		char *name = NULL, *header = NULL;
		unsigned char *data = NULL;
		long n = 0;
		if (!PEM_read_bio(bio, &name, &header, &data, &n)) {
			unsigned long e = ERR_peek_last_error();
			if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				return 0;
			}
			return cw_error_openssl(err, "pem: unreadable block");
		}
		int take = is_cert_block(name);
		if (take) {
			*der = cw_xmalloc((size_t)n);
			memcpy(*der, data, (size_t)n);
			*len = (size_t)n;
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_clear_free(data, (size_t)n); /* a skipped block may have been a key */
		if (take)
			return 1;
	}
}

static BIO *pem_bio(const char *pem, size_t len, cw_error *err)
{
	if (len > INT_MAX) {
		cw_error_set(err, CW_EINVAL, "pem: %zu bytes is too large", len);
		return NULL;
	}
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		cw_error_openssl(err, "pem: out of memory");
	return bio;
}

static void free_der_list(unsigned char **ders, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ders[i]);
	free(ders);
}

static int check_der(const unsigned char *der, size_t len, size_t index, cw_error *err)
{
	X509 *x;
	cw_error inner = { CW_OK, "" };
	if (cw_x509_from_der(&x, der, len, &inner) != 0)
		return cw_error_set(err, CW_EINVAL, "pem: certificate %zu: %s", index + 1, inner.msg);
	X509_free(x);
	return 0;
}

int cw_pem_to_der_list(const char *pem, size_t len, unsigned char ***ders, size_t **lens, size_t *n,
		       cw_error *err)
{
	*ders = NULL;
	*lens = NULL;
	*n = 0;
	BIO *bio = pem_bio(pem, len, err);
	if (!bio)
		return -1;
	unsigned char **list = NULL;
	size_t *sizes = NULL, count = 0;
	unsigned char *der;
	size_t dlen;
	int rc;
	while ((rc = pem_next_cert(bio, &der, &dlen, err)) == 1) {
		list = cw_xrealloc(list, (count + 1) * sizeof(*list));
		sizes = cw_xrealloc(sizes, (count + 1) * sizeof(*sizes));
		list[count] = der;
		sizes[count] = dlen;
		if (check_der(der, dlen, count++, err) != 0) {
			rc = -1;
			break;
		}
	}
	BIO_free(bio);
	if (rc == 0 && count == 0)
		rc = cw_error_set(err, CW_EINVAL, "pem: no certificate found");
	if (rc != 0) {
		free_der_list(list, count);
		free(sizes);
		return -1;
	}
	*ders = list;
	*lens = sizes;
	*n = count;
	return 0;
}

static int looks_like_pem(const unsigned char *data, size_t len)
{
	size_t i = 0;
	while (i < len && isspace(data[i]))
		i++;
	return len - i >= 10 && !memcmp(data + i, "-----BEGIN", 10);
}

int cw_x509_parse_any(const unsigned char *data, size_t len, cw_x509_info *out, cw_error *err)
{
	if (!looks_like_pem(data, len))
		return cw_x509_parse(data, len, out, err);
	memset(out, 0, sizeof(*out));
	BIO *bio = pem_bio((const char *)data, len, err);
	if (!bio)
		return -1;
	unsigned char *der = NULL;
	size_t dlen = 0;
	int found = pem_next_cert(bio, &der, &dlen, err);
	BIO_free(bio);
	if (found == 0)
		return cw_error_set(err, CW_EINVAL, "pem: no certificate found");
	if (found < 0)
		return -1;
	int rc = cw_x509_parse(der, dlen, out, err);
	free(der);
	return rc;
}

void cw_der_to_pem(const unsigned char *der, size_t len, cw_buf *out)
{
	cw_buf_adds(out, "-----BEGIN CERTIFICATE-----\n");
	unsigned char line[65];
	/* 48 input bytes are one 64-character line, as RFC 7468 asks */
	for (size_t off = 0; off < len; off += 48) {
		size_t chunk = len - off < 48 ? len - off : 48;
		int n = EVP_EncodeBlock(line, der + off, (int)chunk);
		cw_buf_add(out, line, (size_t)n);
		cw_buf_adds(out, "\n");
	}
	cw_buf_adds(out, "-----END CERTIFICATE-----\n");
}

/* ------------------------------------------------------------------ DN comparison */

static int same_part(const cw_dn_part *a, const cw_dn_part *b)
{
	return !strcasecmp(a->attr, b->attr) && !strcmp(a->value, b->value);
}

static size_t rdn_end(const cw_dn_part *p, size_t n, size_t start)
{
	size_t end = start + 1;
	while (end < n && p[end].joined)
		end++;
	return end;
}

/* Attributes of one multi-valued RDN are a set: DER sorts them, people do not. */
static int same_rdn(const cw_dn_part *a, size_t na, const cw_dn_part *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++) {
		size_t j = 0;
		while (j < nb && !same_part(&a[i], &b[j]))
			j++;
		if (j == nb)
			return 0;
	}
	return 1;
}

static int same_parts(const cw_dn_part *a, size_t na, const cw_dn_part *b, size_t nb)
{
	size_t i = 0, j = 0;
	while (i < na && j < nb) {
		size_t ei = rdn_end(a, na, i), ej = rdn_end(b, nb, j);
		if (!same_rdn(a + i, ei - i, b + j, ej - j))
			return 0;
		i = ei;
		j = ej;
	}
	return i == na && j == nb;
}

int cw_dn_equal(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	cw_dn_part *pa = NULL, *pb = NULL;
	size_t na = 0, nb = 0;
	int equal;
	if (cw_dn_split(a, &pa, &na, NULL) != 0 || cw_dn_split(b, &pb, &nb, NULL) != 0)
		equal = !strcmp(a, b); /* not DN text: only the very same text is equal */
	else
		equal = same_parts(pa, na, pb, nb);
	cw_dn_parts_free(pa, na);
	cw_dn_parts_free(pb, nb);
	return equal;
}
