/* test_localca — the private CA, judged by independent verifiers (openssl verify
 * -x509_strict, gnutls certtool) and by reading the certificates back. */
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "common/util.h"
#include "issuers/localca.h"
#include "reconcile/x509.h"

#define DAY 86400

typedef struct {
	X509 *cert;
	EVP_PKEY *key;
} issued;

static void issued_release(issued *c)
{
	X509_free(c->cert);
	EVP_PKEY_free(c->key);
	memset(c, 0, sizeof(*c));
}

static cw_cert_spec spec_of(const char *subject, cw_key_type key, int64_t lifetime, int is_ca,
			    int path_len, uint32_t usage)
{
	cw_cert_spec s;
	memset(&s, 0, sizeof(s));
	s.subject = (char *)subject;
	s.key = key;
	s.lifetime = lifetime;
	s.is_ca = is_ca;
	s.path_len = path_len;
	s.usage = usage;
	return s;
}

static EVP_PKEY *new_key(cw_key_type type)
{
	EVP_PKEY *key = NULL;
	cw_error err = { 0 };
	if (cw_key_generate(&key, type, &err) != 0)
		fail_msg("%s", err.msg);
	return key;
}

/* Makes a key of spec->key and signs it; fails the test on error. */
static issued make(const cw_cert_spec *spec, const issued *issuer, time_t now)
{
	issued c = { NULL, new_key(spec->key) };
	cw_error err = { 0 };
	if (cw_ca_sign(&c.cert, spec, c.key, issuer ? issuer->cert : NULL,
		       issuer ? issuer->key : NULL, now, &err) != 0)
		fail_msg("sign '%s': %s", spec->subject, err.msg);
	return c;
}

static void parse(X509 *cert, cw_x509_info *info)
{
	unsigned char *der;
	size_t len;
	cw_error err = { 0 };
	assert_int_equal(cw_x509_to_der(cert, &der, &len, &err), 0);
	if (cw_x509_parse(der, len, info, &err) != 0)
		fail_msg("parse: %s", err.msg);
	free(der);
}

static void write_pem(const char *path, X509 *const *certs, size_t n)
{
	cw_buf pem = CW_BUF_INIT;
	cw_error err = { 0 };
	for (size_t i = 0; i < n; i++) {
		unsigned char *der;
		size_t len;
		assert_int_equal(cw_x509_to_der(certs[i], &der, &len, &err), 0);
		cw_der_to_pem(der, len, &pem);
		free(der);
	}
	tu_write(path, pem.buf);
	cw_buf_release(&pem);
}

/* openssl verify -x509_strict and certtool --verify-chain must both accept leaf. */
static void verify_chain(const char *dir, const char *tag, X509 *root, X509 *inter, X509 *leaf)
{
	char *root_pem = cw_xasprintf("%s/%s-root.pem", dir, tag);
	char *inter_pem = cw_xasprintf("%s/%s-inter.pem", dir, tag);
	char *leaf_pem = cw_xasprintf("%s/%s-leaf.pem", dir, tag);
	char *chain_pem = cw_xasprintf("%s/%s-chain.pem", dir, tag);
	write_pem(root_pem, &root, 1);
	write_pem(inter_pem, &inter, 1);
	write_pem(leaf_pem, &leaf, 1);
	write_pem(chain_pem, (X509 *[]){ leaf, inter, root }, 3);

	char *out = NULL;
	int rc = tu_run((const char *[]){ "openssl", "verify", "-x509_strict", "-CAfile", root_pem,
					  "-untrusted", inter_pem, leaf_pem, NULL },
			&out);
	if (rc != 0 || !strstr(out, ": OK"))
		fail_msg("%s: openssl verify (%d): %s", tag, rc, out);
	free(out);
	rc = tu_run((const char *[]){ "certtool", "--verify-chain", "--verify-profile", "medium",
				      "--infile", chain_pem, NULL },
		    &out);
	if (rc != 0 || !strstr(out, "Chain verification output: Verified"))
		fail_msg("%s: certtool --verify-chain (%d): %s", tag, rc, out);
	free(out);
	free(root_pem), free(inter_pem), free(leaf_pem), free(chain_pem);
}

static const uint32_t server_usage =
	CW_KU_DIGITAL_SIGNATURE | CW_EKU_SERVER_AUTH | CW_EKU_CLIENT_AUTH;

static void test_key_generate_types(void **state)
{
	(void)state;
	static const cw_key_type types[] = { CW_KEY_RSA2048, CW_KEY_EC_P256, CW_KEY_EC_P384,
					     CW_KEY_ED25519 };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		EVP_PKEY *key = new_key(types[i]);
		int bits = 0;
		assert_int_equal(cw_key_type_of(key, &bits), types[i]);
		if (cw_key_type_is_rsa(types[i]))
			assert_int_equal(bits, cw_key_type_bits(types[i]));
		EVP_PKEY_free(key);
	}
	EVP_PKEY *key = NULL;
	cw_error err = { 0 };
	assert_int_equal(cw_key_generate(&key, CW_KEY_NONE, &err), -1);
	assert_null(key);
}

/* root (RSA-2048) -> intermediate (P-384, pathlen 0) -> a leaf of every key type. */
static void test_chain_every_leaf_key_type(void **state)
{
	(void)state;
	char *dir = tu_tempdir();
	time_t now = time(NULL);
	cw_cert_spec rs = spec_of("CN=Home VPN Root CA,O=Example\\, Inc.,C=JP", CW_KEY_RSA2048,
				  3650L * DAY, 1, 1, 0);
	cw_cert_spec is = spec_of("CN=Home VPN Issuing CA,C=JP", CW_KEY_EC_P384, 1825L * DAY, 1, 0, 0);
	issued root = make(&rs, NULL, now);
	issued inter = make(&is, &root, now);

	cw_x509_info ri, ii;
	parse(root.cert, &ri);
	parse(inter.cert, &ii);
	assert_string_equal(ri.subject, rs.subject); /* the inventory's text comes back */
	assert_true(ri.self_signed);
	assert_null(ri.aki);
	assert_int_equal(ri.path_len, 1);
	assert_int_equal(ri.usage, CW_KU_KEY_CERT_SIGN | CW_KU_CRL_SIGN | CW_KU_DIGITAL_SIGNATURE);
	assert_string_equal(ri.sig_alg, "sha256WithRSAEncryption");
	assert_true(ii.is_ca);
	assert_int_equal(ii.path_len, 0);
	assert_string_equal(ii.aki, ri.ski);
	assert_string_equal(ii.issuer, ri.subject);

	static const cw_key_type leaf_types[] = { CW_KEY_RSA2048, CW_KEY_RSA3072, CW_KEY_RSA4096,
						  CW_KEY_EC_P256, CW_KEY_EC_P384, CW_KEY_ED25519 };
	cw_san san = { CW_SAN_DNS, "vpn.example.net" };
	for (size_t i = 0; i < sizeof(leaf_types) / sizeof(leaf_types[0]); i++) {
		cw_cert_spec ls = spec_of("CN=vpn.example.net", leaf_types[i], 90L * DAY, 0, -1,
					  server_usage | CW_KU_KEY_ENCIPHERMENT);
		ls.sans = &san;
		ls.nsans = 1;
		issued leaf = make(&ls, &inter, now);
		verify_chain(dir, cw_key_type_name(leaf_types[i]), root.cert, inter.cert, leaf.cert);
		cw_x509_info li;
		parse(leaf.cert, &li);
		assert_int_equal(li.key, leaf_types[i]);
		assert_string_equal(li.aki, ii.ski);
		assert_string_equal(li.sig_alg, "ecdsa-with-SHA384"); /* the P-384 issuer's digest */
		assert_int_equal(li.usage, ls.usage);
		assert_false(li.is_ca);
		assert_int_equal(li.not_before, now - CW_CA_BACKDATE);
		assert_int_equal(li.not_after, now - CW_CA_BACKDATE + 90L * DAY);
		cw_x509_info_release(&li);
		issued_release(&leaf);
	}
	cw_x509_info_release(&ri);
	cw_x509_info_release(&ii);
	issued_release(&inter);
	issued_release(&root);
	tu_rmtree(dir);
	free(dir);
}

/* Every key type also as the CA key: the digest follows the signing key. */
static void test_chain_every_ca_key_type(void **state)
{
	(void)state;
	char *dir = tu_tempdir();
	time_t now = time(NULL);
	static const struct {
		cw_key_type type;
		const char *sig_alg;
	} cas[] = {
		{ CW_KEY_EC_P256, "ecdsa-with-SHA256" },
		{ CW_KEY_EC_P384, "ecdsa-with-SHA384" },
		{ CW_KEY_ED25519, "ED25519" },
		{ CW_KEY_RSA3072, "sha256WithRSAEncryption" },
	};
	for (size_t i = 0; i < sizeof(cas) / sizeof(cas[0]); i++) {
		cw_cert_spec rs = spec_of("CN=Root", cas[i].type, 3650L * DAY, 1, -1, 0);
		cw_cert_spec is = spec_of("CN=Issuing", cas[i].type, 1000L * DAY, 1, 0, 0);
		cw_cert_spec ls = spec_of("CN=user1@vpn.example.net", CW_KEY_EC_P256, 30L * DAY, 0,
					  -1, CW_KU_DIGITAL_SIGNATURE | CW_EKU_CLIENT_AUTH);
		cw_san mail = { CW_SAN_EMAIL, "user1@vpn.example.net" };
		ls.sans = &mail;
		ls.nsans = 1;
		issued root = make(&rs, NULL, now), inter = make(&is, &root, now),
		       leaf = make(&ls, &inter, now);
		verify_chain(dir, cw_key_type_name(cas[i].type), root.cert, inter.cert, leaf.cert);
		cw_x509_info ri, li;
		parse(root.cert, &ri);
		parse(leaf.cert, &li);
		assert_string_equal(ri.sig_alg, cas[i].sig_alg);
		assert_string_equal(li.sig_alg, cas[i].sig_alg);
		assert_int_equal(ri.path_len, -1);
		assert_int_equal(li.nsans, 1);
		assert_int_equal(li.sans[0].type, CW_SAN_EMAIL);
		cw_x509_info_release(&ri);
		cw_x509_info_release(&li);
		issued_release(&leaf);
		issued_release(&inter);
		issued_release(&root);
	}
	tu_rmtree(dir);
	free(dir);
}

static int ext_critical(X509 *cert, int nid)
{
	int idx = X509_get_ext_by_NID(cert, nid, -1);
	assert_true(idx >= 0);
	return X509_EXTENSION_get_critical(X509_get_ext(cert, idx));
}

static void test_extensions_as_specified(void **state)
{
	(void)state;
	char *dir = tu_tempdir();
	time_t now = time(NULL);
	cw_cert_spec rs = spec_of("CN=Root", CW_KEY_EC_P256, 3650L * DAY, 1, -1, 0);
	rs.crl_url = "http://vpn.example.net/crl/root.crl"; /* a root never carries one */
	issued root = make(&rs, NULL, now);
	cw_cert_spec is = spec_of("CN=Issuing", CW_KEY_EC_P256, 1000L * DAY, 1, 0, 0);
	is.crl_url = "http://vpn.example.net/crl/root.crl"; /* the root's CRL: in its cert */
	issued inter = make(&is, &root, now);

	cw_san sans[] = { { CW_SAN_DNS, "vpn.example.net" },
			  { CW_SAN_IP, "192.0.2.1" },
			  { CW_SAN_IP, "2001:db8::7" },
			  { CW_SAN_URI, "https://vpn.example.net/" } };
	cw_cert_spec ls = spec_of("", CW_KEY_EC_P256, 200L * DAY, 0, -1,
				  CW_KU_DIGITAL_SIGNATURE | CW_EKU_SERVER_AUTH | CW_EKU_IPSEC_IKE |
					  CW_EKU_IKE_INTERMEDIATE);
	ls.sans = sans;
	ls.nsans = 4;
	ls.crl_url = "http://vpn.example.net/crl/issuing.crl";
	issued leaf = make(&ls, &inter, now);
	verify_chain(dir, "empty-subject", root.cert, inter.cert, leaf.cert);

	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(leaf.cert)), 0);
	assert_true(ext_critical(leaf.cert, NID_subject_alt_name));
	assert_true(ext_critical(leaf.cert, NID_key_usage));
	assert_true(ext_critical(leaf.cert, NID_basic_constraints));
	assert_false(ext_critical(leaf.cert, NID_ext_key_usage));
	assert_int_equal(X509_get_version(leaf.cert), X509_VERSION_3);

	cw_x509_info li, ri, ii;
	parse(leaf.cert, &li);
	parse(root.cert, &ri);
	parse(inter.cert, &ii);
	assert_string_equal(ii.crl_url, is.crl_url);
	cw_x509_info_release(&ii);
	assert_int_equal(li.usage, ls.usage);
	assert_int_equal(li.nsans, 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(li.sans[i].value, sans[i].value);
	assert_string_equal(li.crl_url, ls.crl_url);
	assert_null(ri.crl_url);
	assert_int_equal(li.not_after - li.not_before, 200L * DAY);
	cw_x509_info_release(&li);
	cw_x509_info_release(&ri);

	/* a named leaf: SAN not critical; no usage at all: no keyUsage extension */
	cw_cert_spec named = spec_of("CN=mail.example.net", CW_KEY_EC_P256, 30L * DAY, 0, -1, 0);
	named.sans = sans;
	named.nsans = 1;
	issued plain = make(&named, &inter, now);
	assert_false(ext_critical(plain.cert, NID_subject_alt_name));
	assert_int_equal(X509_get_ext_by_NID(plain.cert, NID_key_usage, -1), -1);
	assert_int_equal(X509_get_ext_by_NID(plain.cert, NID_ext_key_usage, -1), -1);
	assert_int_equal(X509_get_ext_by_NID(plain.cert, NID_crl_distribution_points, -1), -1);
	issued_release(&plain);

	issued_release(&leaf);
	issued_release(&inter);
	issued_release(&root);
	tu_rmtree(dir);
	free(dir);
}

static void test_serials_random_and_backdated(void **state)
{
	(void)state;
	time_t now = 1790000000; /* 2026-09-21: any fixed issuance time */
	cw_cert_spec rs = spec_of("CN=Root", CW_KEY_EC_P256, 3650L * DAY, 1, -1, 0);
	issued root = make(&rs, NULL, now);
	cw_cert_spec ls = spec_of("CN=leaf", CW_KEY_EC_P256, 10L * DAY, 0, -1,
				  CW_KU_DIGITAL_SIGNATURE);
	char *serials[20];
	for (int i = 0; i < 20; i++) {
		issued leaf = make(&ls, &root, now);
		cw_x509_info li;
		parse(leaf.cert, &li);
		/* 127 random bits: 31 or 32 hex digits, positive */
		assert_true(strlen(li.serial) >= 31);
		assert_true(strlen(li.serial) <= 32);
		assert_true(li.serial[0] != '-' && li.serial[0] != '0');
		assert_int_equal(li.not_before, now - 300);
		assert_int_equal(li.not_after, now - 300 + 10L * DAY);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(serials[j], li.serial);
		serials[i] = cw_xstrdup(li.serial);
		cw_x509_info_release(&li);
		issued_release(&leaf);
	}
	/* the serials do not share a prefix: no counter hides in them */
	int same_first_byte = 0;
	for (int i = 1; i < 20; i++)
		same_first_byte += !strncmp(serials[0], serials[i], 4);
	assert_true(same_first_byte < 3);
	for (int i = 0; i < 20; i++)
		free(serials[i]);
	issued_release(&root);
}

static void expect_sign_error(const cw_cert_spec *spec, const issued *issuer, time_t now,
			      const char *needle)
{
	EVP_PKEY *key = new_key(CW_KEY_EC_P256);
	X509 *cert = NULL;
	cw_error err = { 0 };
	assert_int_equal(cw_ca_sign(&cert, spec, key, issuer ? issuer->cert : NULL,
				    issuer ? issuer->key : NULL, now, &err),
			 -1);
	assert_null(cert);
	assert_int_equal(err.code, CW_EINVAL);
	if (!strstr(err.msg, needle))
		fail_msg("expected '%s' in: %s", needle, err.msg);
	EVP_PKEY_free(key);
}

static void test_sign_refusals(void **state)
{
	(void)state;
	time_t now = time(NULL);
	cw_cert_spec rs = spec_of("CN=Root", CW_KEY_EC_P256, 365L * DAY, 1, -1, 0);
	issued root = make(&rs, NULL, now);
	cw_cert_spec is = spec_of("CN=Issuing", CW_KEY_EC_P256, 100L * DAY, 1, 0, 0);
	issued inter = make(&is, &root, now);

	cw_cert_spec too_long = spec_of("CN=vpn", CW_KEY_EC_P256, 101L * DAY, 0, -1, 0);
	expect_sign_error(&too_long, &inter, now,
			  "certificate 'CN=vpn' would outlive its issuer '/CN=Issuing'");
	cw_cert_spec sub_ca = spec_of("CN=Sub", CW_KEY_EC_P256, 10L * DAY, 1, -1, 0);
	expect_sign_error(&sub_ca, &inter, now, "allows no CA below it (pathlen 0)");
	cw_cert_spec self_leaf = spec_of("CN=vpn", CW_KEY_EC_P256, 10L * DAY, 0, -1, 0);
	expect_sign_error(&self_leaf, NULL, now, "only a CA can be self-signed");
	cw_cert_spec bad_dn = spec_of("CN=vpn,XX=1", CW_KEY_EC_P256, 10L * DAY, 0, -1, 0);
	expect_sign_error(&bad_dn, &inter, now, "unknown attribute 'XX'");
	cw_cert_spec no_id = spec_of("", CW_KEY_EC_P256, 10L * DAY, 0, -1, 0);
	expect_sign_error(&no_id, &inter, now, "an empty subject needs at least one SAN");
	cw_san bad_ip = { CW_SAN_IP, "192.0.2.300" };
	cw_cert_spec ip = spec_of("CN=vpn", CW_KEY_EC_P256, 10L * DAY, 0, -1, 0);
	ip.sans = &bad_ip;
	ip.nsans = 1;
	expect_sign_error(&ip, &inter, now, "SAN 'IP:192.0.2.300' is not an IP address");
	cw_cert_spec leaf_ca_usage = spec_of("CN=vpn", CW_KEY_EC_P256, 10L * DAY, 0, -1,
					     CW_KU_KEY_CERT_SIGN);
	expect_sign_error(&leaf_ca_usage, &inter, now, "need a CA");
	cw_cert_spec zero = spec_of("CN=vpn", CW_KEY_EC_P256, 0, 0, -1, 0);
	expect_sign_error(&zero, &inter, now, "lifetime 0 s is out of range");

	/* the issuer's key must be the issuer certificate's */
	issued wrong = { inter.cert, root.key };
	cw_cert_spec ok = spec_of("CN=vpn", CW_KEY_EC_P256, 10L * DAY, 0, -1, 0);
	expect_sign_error(&ok, &wrong, now, "private key does not match");
	/* a leaf cannot issue */
	issued leaf = make(&ok, &inter, now);
	expect_sign_error(&ok, &leaf, now, "not a CA certificate");
	issued_release(&leaf);
	issued_release(&inter);
	issued_release(&root);
}

static void expect_dn_error(const char *text, const char *needle)
{
	X509_NAME *name = NULL;
	cw_error err = { 0 };
	assert_int_equal(cw_dn_parse(text, &name, &err), -1);
	assert_null(name);
	if (!strstr(err.msg, needle))
		fail_msg("'%s': expected '%s' in: %s", text, needle, err.msg);
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "subject '%s': ", text);
	assert_int_equal(strncmp(err.msg, prefix, strlen(prefix)), 0);
}

static char *rfc2253(X509_NAME *name)
{
	BIO *bio = BIO_new(BIO_s_mem());
	X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	char *s = cw_xstrndup(data, (size_t)n);
	BIO_free(bio);
	return s;
}

static void test_dn_parse(void **state)
{
	(void)state;
	cw_error err = { 0 };
	X509_NAME *a, *b, *c;
	assert_int_equal(cw_dn_parse("CN=vpn.example.net, O=Example\\, Inc. ,C=JP", &a, &err), 0);
	/* OpenSSL's own RFC 2253 printer agrees on order and escaping */
	char *text = rfc2253(a);
	assert_string_equal(text, "CN=vpn.example.net,O=Example\\, Inc.,C=JP");
	free(text);
	/* DER is most significant first: C, then O, then CN */
	assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(a, 0))),
			 NID_countryName);
	assert_int_equal(cw_dn_parse("/C=JP/O=Example, Inc./CN=vpn.example.net", &b, &err), 0);
	assert_int_equal(X509_NAME_cmp(a, b), 0);
	const char *all = "cn=a+uid=u1,dc=example,dc=net,emailAddress=x@example.net,"
			  "serialNumber=42,L=Tokyo,ST=Tokyo,OU=IT";
	assert_int_equal(cw_dn_parse(all, &c, &err), 0);
	assert_int_equal(X509_NAME_entry_count(c), 9);
	text = rfc2253(c); /* "UID=u1+CN=a,DC=example,...": one RDN holds CN and UID */
	assert_true(cw_dn_equal(text, all));
	assert_false(cw_dn_equal(text, "cn=a,uid=u1,dc=example,dc=net,emailAddress=x@example.net,"
				       "serialNumber=42,L=Tokyo,ST=Tokyo,OU=IT"));
	free(text);
	X509_NAME_free(a);
	X509_NAME_free(b);
	X509_NAME_free(c);

	expect_dn_error("CN=a,XX=b", "unknown attribute 'XX'");
	expect_dn_error("CM=a", "unknown attribute 'CM' (did you mean 'CN'?)");
	expect_dn_error("CN=a,,O=b", "empty attribute");
	expect_dn_error("CN=a,O", "'O' is not of the form attribute=value");
	expect_dn_error("CN=a,", "ends with a separator");
	expect_dn_error("CN=a\\q", "bad escape '\\q'");
	expect_dn_error("CN=a,C=Japan", "country 'Japan' is not a two-letter code");
	expect_dn_error("CN=,O=b", "empty value for 'CN'");
	expect_dn_error("=x", "missing attribute name");
	expect_dn_error("CN=a\\00b", "escaped NUL byte");
}

static void test_der_round_trip(void **state)
{
	(void)state;
	cw_cert_spec rs = spec_of("CN=Root", CW_KEY_ED25519, 10L * DAY, 1, -1, 0);
	issued root = make(&rs, NULL, time(NULL));
	unsigned char *der;
	size_t len;
	cw_error err = { 0 };
	assert_int_equal(cw_x509_to_der(root.cert, &der, &len, &err), 0);
	X509 *back = NULL;
	assert_int_equal(cw_x509_from_der(&back, der, len, &err), 0);
	assert_int_equal(X509_cmp(back, root.cert), 0);
	X509_free(back);
	unsigned char *longer = cw_xmalloc(len + 2);
	memcpy(longer, der, len);
	longer[len] = longer[len + 1] = 0;
	assert_int_equal(cw_x509_from_der(&back, longer, len + 2, &err), -1);
	assert_string_equal(err.msg, "certificate: 2 bytes of trailing data after the DER certificate");
	assert_null(back);
	free(longer);
	free(der);
	issued_release(&root);
}

/* Not a pass/fail check: the number goes to the lead's performance notes. */
static void test_timing_ecdsa_leaves(void **state)
{
	(void)state;
	time_t now = time(NULL);
	cw_cert_spec rs = spec_of("CN=Root", CW_KEY_EC_P256, 3650L * DAY, 1, -1, 0);
	issued root = make(&rs, NULL, now);
	cw_san san = { CW_SAN_DNS, "host.example.net" };
	cw_cert_spec ls = spec_of("CN=host.example.net,O=Example,C=JP", CW_KEY_EC_P256, 90L * DAY,
				  0, -1, server_usage);
	ls.sans = &san;
	ls.nsans = 1;
	ls.crl_url = "http://crl.example.net/root.crl";
	EVP_PKEY *key = new_key(CW_KEY_EC_P256);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cw_error err = { 0 };
	for (int i = 0; i < 1000; i++) {
		X509 *cert = NULL;
		assert_int_equal(cw_ca_sign(&cert, &ls, key, root.cert, root.key, now, &err), 0);
		X509_free(cert);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("1000 ECDSA P-256 leaf signatures: %.3f s (%.0f/s on one core)\n", s,
		      1000.0 / s);
	EVP_PKEY_free(key);
	issued_release(&root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_generate_types),
		cmocka_unit_test(test_chain_every_leaf_key_type),
		cmocka_unit_test(test_chain_every_ca_key_type),
		cmocka_unit_test(test_extensions_as_specified),
		cmocka_unit_test(test_serials_random_and_backdated),
		cmocka_unit_test(test_sign_refusals),
		cmocka_unit_test(test_dn_parse),
		cmocka_unit_test(test_der_round_trip),
		cmocka_unit_test(test_timing_ecdsa_leaves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
