/* test_crl — CRLs signed by the local CA, judged by independent readers and verifiers
 * (openssl crl / openssl verify -crl_check, gnutls certtool --crl-info / --verify-crl)
 * and by reading them back with cw_crl_parse. */
#include <ctype.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "common/util.h"
#include "issuers/crl.h"
#include "issuers/localca.h"
#include "reconcile/x509.h"

#define DAY 86400
#define WEEK (7 * DAY)

typedef struct {
	X509 *cert;
	EVP_PKEY *key;
	char *serial;   /* as cw_x509_info.serial */
	char *ski;      /* lower hex, or NULL */
} issued;

static void issued_release(issued *c)
{
	X509_free(c->cert);
	EVP_PKEY_free(c->key);
	free(c->serial);
	free(c->ski);
	memset(c, 0, sizeof(*c));
}

static void read_back(issued *c)
{
	unsigned char *der;
	size_t len;
	cw_error err = { 0 };
	cw_x509_info info;
	assert_int_equal(cw_x509_to_der(c->cert, &der, &len, &err), 0);
	if (cw_x509_parse(der, len, &info, &err) != 0)
		fail_msg("parse: %s", err.msg);
	free(der);
	c->serial = cw_xstrdup(info.serial);
	c->ski = cw_xstrdup(info.ski);
	cw_x509_info_release(&info);
}

/* A CA (issuer NULL: a root) or a leaf of the given key type; fails the test on error. */
static issued make(const char *subject, cw_key_type type, int is_ca, const issued *issuer,
		   time_t now)
{
	cw_cert_spec spec;
	memset(&spec, 0, sizeof(spec));
	spec.subject = (char *)subject;
	spec.key = type;
	spec.is_ca = is_ca;
	spec.path_len = -1;
	spec.lifetime = is_ca ? 3650 * (int64_t)DAY - DAY * (issuer ? 1 : 0) : 90 * (int64_t)DAY;
	spec.usage = is_ca ? 0 : CW_KU_DIGITAL_SIGNATURE | CW_EKU_CLIENT_AUTH;

	issued c;
	memset(&c, 0, sizeof(c));
	cw_error err = { 0 };
	if (cw_key_generate(&c.key, type, &err) != 0)
		fail_msg("key: %s", err.msg);
	if (cw_ca_sign(&c.cert, &spec, c.key, issuer ? issuer->cert : NULL,
		       issuer ? issuer->key : NULL, now, &err) != 0)
		fail_msg("sign '%s': %s", subject, err.msg);
	read_back(&c);
	return c;
}

/* ------------------------------------------------------------------ files and tools */

static char *path_in(const char *dir, const char *name)
{
	return cw_xasprintf("%s/%s", dir, name);
}

static void write_bytes(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static unsigned char *read_bytes(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	cw_buf b = CW_BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		cw_buf_add(&b, chunk, n);
	fclose(f);
	*len = b.len;
	return (unsigned char *)cw_buf_detach(&b);
}

static void write_cert(const char *dir, const char *name, X509 *const *certs, size_t n)
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
	char *path = path_in(dir, name);
	tu_write(path, pem.buf);
	free(path);
	cw_buf_release(&pem);
}

/* Writes <name>.pem and <name>.der. */
static void write_crl(const char *dir, const char *name, const unsigned char *der, size_t len)
{
	cw_buf pem = CW_BUF_INIT;
	cw_crl_to_pem(der, len, &pem);
	char *file = cw_xasprintf("%s/%s.pem", dir, name);
	tu_write(file, pem.buf);
	free(file);
	file = cw_xasprintf("%s/%s.der", dir, name);
	write_bytes(file, der, len);
	free(file);
	cw_buf_release(&pem);
}

/* Runs a tool in dir under a 60 s timeout; returns its exit status, output in *out. */
static int run_in(const char *dir, char **out, const char *const *argv)
{
	size_t n = 0;
	while (argv[n])
		n++;
	const char **full = cw_xcalloc(n + 6, sizeof(*full));
	full[0] = "env";
	full[1] = "-C";
	full[2] = dir;
	full[3] = "timeout";
	full[4] = "60";
	memcpy(full + 5, argv, n * sizeof(*argv));
	int rc = tu_run(full, out);
	free(full);
	return rc;
}

static char *lower(const char *s)
{
	char *out = cw_xstrdup(s);
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

/* "ab01cd" -> "AB:01:CD", the way openssl prints key identifiers. */
static char *colon_hex(const char *hex)
{
	cw_buf b = CW_BUF_INIT;
	for (size_t i = 0; hex[i] && hex[i + 1]; i += 2) {
		if (i)
			cw_buf_adds(&b, ":");
		cw_buf_addf(&b, "%c%c", toupper((unsigned char)hex[i]),
			    toupper((unsigned char)hex[i + 1]));
	}
	return cw_buf_detach(&b);
}

/* The first word after label in text (skipping spaces and newlines), or fails. */
static void assert_value_after(const char *text, const char *label, const char *want)
{
	const char *p = strstr(text, label);
	if (!p)
		fail_msg("'%s' not in:\n%s", label, text);
	p += strlen(label);
	while (*p == ' ' || *p == '\n' || *p == '\t')
		p++;
	size_t wlen = strlen(want);
	if (strncmp(p, want, wlen) != 0 || (p[wlen] && !isspace((unsigned char)p[wlen])))
		fail_msg("after '%s' expected '%s' in:\n%s", label, want, text);
}

static void assert_contains(const char *text, const char *what, const char *tool)
{
	if (!strstr(text, what))
		fail_msg("%s: '%s' not in output:\n%s", tool, what, text);
}

static unsigned char *sign_or_fail(const issued *ca, const cw_crl_entry *entries, size_t n,
				   uint64_t number, time_t now, int64_t lifetime, size_t *len)
{
	unsigned char *der = NULL;
	cw_error err = { 0 };
	if (cw_crl_sign(&der, len, ca->cert, ca->key, entries, n, number, now, lifetime, &err) != 0)
		fail_msg("crl: %s", err.msg);
	assert_non_null(der);
	assert_true(*len > 0);
	return der;
}

/* openssl verify with CRL checking; returns its exit status and output. */
static int verify_with_crl(const char *dir, const char *mode, const char *untrusted,
			   const char *crls, const char *leaf, char **out)
{
	if (untrusted)
		return run_in(dir, out,
			      (const char *[]){ "openssl", "verify", "-x509_strict", mode,
						"-CAfile", "root.pem", "-untrusted", untrusted,
						"-CRLfile", crls, leaf, NULL });
	return run_in(dir, out,
		      (const char *[]){ "openssl", "verify", "-x509_strict", mode, "-CAfile",
					"root.pem", "-CRLfile", crls, leaf, NULL });
}

static void assert_verify_ok(const char *dir, const char *mode, const char *untrusted,
			     const char *crls, const char *leaf)
{
	char *out = NULL;
	int rc = verify_with_crl(dir, mode, untrusted, crls, leaf, &out);
	if (rc != 0 || !strstr(out, ": OK"))
		fail_msg("openssl verify %s %s (%d), expected OK:\n%s", mode, leaf, rc, out);
	free(out);
}

static void assert_verify_fails(const char *dir, const char *mode, const char *untrusted,
				const char *crls, const char *leaf, const char *why)
{
	char *out = NULL;
	int rc = verify_with_crl(dir, mode, untrusted, crls, leaf, &out);
	if (rc == 0 || !strstr(out, why))
		fail_msg("openssl verify %s %s (%d), expected '%s':\n%s", mode, leaf, rc, why, out);
	free(out);
}

/* gnutls parses the CRL and checks its signature against ca_pem. */
static void assert_certtool_accepts(const char *dir, const char *crl_pem, const char *ca_pem,
				    const char *serial)
{
	char *out = NULL;
	int rc = run_in(dir, &out,
			(const char *[]){ "certtool", "--crl-info", "--infile", crl_pem, NULL });
	if (rc != 0)
		fail_msg("certtool --crl-info %s (%d):\n%s", crl_pem, rc, out);
	if (serial) {
		char *lo = lower(serial);
		assert_contains(out, lo, "certtool --crl-info");
		free(lo);
	}
	free(out);
	rc = run_in(dir, &out,
		    (const char *[]){ "certtool", "--verify-crl", "--load-ca-certificate", ca_pem,
				      "--infile", crl_pem, NULL });
	if (rc != 0 || !strstr(out, "Verification output: Verified"))
		fail_msg("certtool --verify-crl %s with %s (%d):\n%s", crl_pem, ca_pem, rc, out);
	free(out);
}

/* SHA-256 fingerprint of crl.der as openssl computes it: lower hex, no colons. */
static void openssl_fingerprint(const char *dir, const char *der_file, char out[65])
{
	char *text = NULL;
	int rc = run_in(dir, &text,
			(const char *[]){ "openssl", "crl", "-inform", "DER", "-in", der_file,
					  "-noout", "-fingerprint", "-sha256", NULL });
	const char *eq = text ? strchr(text, '=') : NULL;
	if (rc != 0 || !eq)
		fail_msg("openssl crl -fingerprint (%d): %s", rc, text);
	size_t o = 0;
	for (const char *p = eq + 1; *p && *p != '\n' && o < 64; p++)
		if (*p != ':')
			out[o++] = (char)tolower((unsigned char)*p);
	out[o] = '\0';
	free(text);
	assert_int_equal(o, 64);
}

/* ------------------------------------------------------------------ reasons */

static void test_reason_names(void **state)
{
	(void)state;
	size_t n = 0;
	for (; cw_revoke_reason_names[n]; n++) {
		cw_revoke_reason r;
		assert_int_equal(cw_revoke_reason_parse(cw_revoke_reason_names[n], &r), 0);
		assert_string_equal(cw_revoke_reason_name(r), cw_revoke_reason_names[n]);
	}
	assert_int_equal(n, 8);
	cw_revoke_reason r = CW_REASON_UNSPECIFIED;
	assert_int_equal(cw_revoke_reason_parse("key-compromise", &r), 0);
	assert_int_equal(r, CW_REASON_KEY_COMPROMISE);
	assert_int_equal(cw_revoke_reason_parse("privilege-withdrawn", &r), 0);
	assert_int_equal(r, 9);
	assert_int_equal(cw_revoke_reason_parse("aa-compromise", &r), 0);
	assert_int_equal(r, 10);
	/* a revocation is final: no hold, and no name guessing */
	assert_int_equal(cw_revoke_reason_parse("certificate-hold", &r), -1);
	assert_int_equal(cw_revoke_reason_parse("Key-Compromise", &r), -1);
	assert_int_equal(cw_revoke_reason_parse("", &r), -1);
	assert_int_equal(cw_revoke_reason_parse(NULL, &r), -1);
	assert_null(cw_revoke_reason_name((cw_revoke_reason)6));
}

/* ------------------------------------------------------------------ one CA per key type */

static const char *sig_alg_for(cw_key_type type)
{
	switch (type) {
	case CW_KEY_EC_P256: return "ecdsa-with-SHA256";
	case CW_KEY_EC_P384: return "ecdsa-with-SHA384";
	case CW_KEY_ED25519: return "ED25519";
	default: return "sha256WithRSAEncryption";
	}
}

static void check_openssl_text(const char *dir, const issued *root, const issued *revoked,
			       cw_key_type type)
{
	char *out = NULL;
	int rc = run_in(dir, &out,
			(const char *[]){ "openssl", "crl", "-in", "crl.pem", "-noout", "-text",
					  NULL });
	if (rc != 0)
		fail_msg("openssl crl -text (%d):\n%s", rc, out);
	assert_contains(out, "Version 2 (0x1)", "openssl crl");
	assert_contains(out, revoked->serial, "openssl crl");
	assert_contains(out, "Key Compromise", "openssl crl");
	assert_value_after(out, "X509v3 CRL Number:", "7");
	assert_value_after(out, "Signature Algorithm:", sig_alg_for(type));
	char *aki = colon_hex(root->ski);
	const char *at = strstr(out, "X509v3 Authority Key Identifier:");
	if (!at || !strstr(at, aki))
		fail_msg("openssl crl: authority key id %s missing:\n%s", aki, out);
	free(aki);
	free(out);
}

static void check_parsed(const char *dir, const unsigned char *der, size_t len,
			 const issued *revoked, time_t now)
{
	cw_crl_info info;
	cw_error err = { 0 };
	if (cw_crl_parse(der, len, &info, &err) != 0)
		fail_msg("parse: %s", err.msg);
	assert_int_equal(info.number, 7);
	assert_int_equal(info.this_update, now - CW_CA_BACKDATE);
	assert_int_equal(info.next_update, now + WEEK);
	assert_int_equal(info.nrevoked, 1);
	assert_string_equal(info.serials[0], revoked->serial);
	char fp[65];
	openssl_fingerprint(dir, "crl.der", fp);
	assert_string_equal(info.fingerprint, fp);
	cw_crl_info_release(&info);
}

static void check_ca_of_type(cw_key_type type)
{
	char *dir = tu_tempdir();
	time_t now = time(NULL);
	issued root = make("CN=CRL Test Root,O=certwright", type, 1, NULL, now);
	issued revoked = make("CN=revoked.example.net", type, 0, &root, now);
	issued good = make("CN=good.example.net", type, 0, &root, now);
	cw_crl_entry entry = { revoked.serial, now - 60, CW_REASON_KEY_COMPROMISE };
	size_t len;
	unsigned char *der = sign_or_fail(&root, &entry, 1, 7, now, WEEK, &len);

	write_cert(dir, "root.pem", &root.cert, 1);
	write_cert(dir, "revoked.pem", &revoked.cert, 1);
	write_cert(dir, "good.pem", &good.cert, 1);
	write_crl(dir, "crl", der, len);

	check_openssl_text(dir, &root, &revoked, type);
	assert_verify_fails(dir, "-crl_check", NULL, "crl.pem", "revoked.pem",
			    "certificate revoked");
	assert_verify_ok(dir, "-crl_check", NULL, "crl.pem", "good.pem");
	assert_certtool_accepts(dir, "crl.pem", "root.pem", revoked.serial);
	check_parsed(dir, der, len, &revoked, now);

	free(der);
	issued_release(&root);
	issued_release(&revoked);
	issued_release(&good);
	tu_rmtree(dir);
	free(dir);
}

static void test_crl_rsa2048(void **state) { (void)state; check_ca_of_type(CW_KEY_RSA2048); }
static void test_crl_p256(void **state) { (void)state; check_ca_of_type(CW_KEY_EC_P256); }
static void test_crl_p384(void **state) { (void)state; check_ca_of_type(CW_KEY_EC_P384); }
static void test_crl_ed25519(void **state) { (void)state; check_ca_of_type(CW_KEY_ED25519); }

/* ------------------------------------------------------------------ chains */

static void concat_crls(const char *dir, const char *name, const unsigned char *a, size_t alen,
			const unsigned char *b, size_t blen)
{
	cw_buf pem = CW_BUF_INIT;
	cw_crl_to_pem(a, alen, &pem);
	cw_crl_to_pem(b, blen, &pem);
	char *path = path_in(dir, name);
	tu_write(path, pem.buf);
	free(path);
	cw_buf_release(&pem);
}

/* -crl_check_all wants a current CRL from every CA in the chain; each CA's CRL speaks
 * only for the certificates that CA signed. */
static void test_crl_intermediate_chain(void **state)
{
	(void)state;
	char *dir = tu_tempdir();
	time_t now = time(NULL);
	issued root = make("CN=Chain Root,O=certwright", CW_KEY_EC_P384, 1, NULL, now);
	issued inter = make("CN=Chain Intermediate,O=certwright", CW_KEY_EC_P256, 1, &root, now);
	issued revoked = make("CN=lost-laptop", CW_KEY_EC_P256, 0, &inter, now);
	issued good = make("CN=phone", CW_KEY_EC_P256, 0, &inter, now);
	write_cert(dir, "root.pem", &root.cert, 1);
	write_cert(dir, "inter.pem", &inter.cert, 1);
	write_cert(dir, "revoked.pem", &revoked.cert, 1);
	write_cert(dir, "good.pem", &good.cert, 1);

	size_t root_len, inter_len, root2_len;
	unsigned char *root_crl = sign_or_fail(&root, NULL, 0, 1, now, WEEK, &root_len);
	cw_crl_entry leaf_entry = { revoked.serial, now - 10, CW_REASON_SUPERSEDED };
	unsigned char *inter_crl = sign_or_fail(&inter, &leaf_entry, 1, 2, now, WEEK, &inter_len);
	concat_crls(dir, "crls.pem", root_crl, root_len, inter_crl, inter_len);
	write_crl(dir, "inter-crl", inter_crl, inter_len);

	assert_verify_ok(dir, "-crl_check_all", "inter.pem", "crls.pem", "good.pem");
	assert_verify_fails(dir, "-crl_check_all", "inter.pem", "crls.pem", "revoked.pem",
			    "certificate revoked");
	/* without the root's CRL the intermediate's status is unknown */
	assert_verify_fails(dir, "-crl_check_all", "inter.pem", "inter-crl.pem", "good.pem",
			    "unable to get certificate CRL");
	assert_certtool_accepts(dir, "inter-crl.pem", "inter.pem", revoked.serial);

	/* the intermediate's CRL is not the root's: gnutls must not accept the root as signer */
	char *out = NULL;
	int rc = run_in(dir, &out,
			(const char *[]){ "certtool", "--verify-crl", "--load-ca-certificate",
					  "root.pem", "--infile", "inter-crl.pem", NULL });
	if (rc == 0 && strstr(out, "Verification output: Verified"))
		fail_msg("certtool verified the intermediate's crl with the root:\n%s", out);
	free(out);

	/* revoking the intermediate takes the whole branch down under -crl_check_all only */
	cw_crl_entry inter_entry = { inter.serial, now - 5, CW_REASON_CA_COMPROMISE };
	unsigned char *root_crl2 = sign_or_fail(&root, &inter_entry, 1, 2, now, WEEK, &root2_len);
	concat_crls(dir, "crls2.pem", root_crl2, root2_len, inter_crl, inter_len);
	assert_verify_fails(dir, "-crl_check_all", "inter.pem", "crls2.pem", "good.pem",
			    "certificate revoked");
	assert_verify_ok(dir, "-crl_check", "inter.pem", "crls2.pem", "good.pem");

	free(root_crl);
	free(inter_crl);
	free(root_crl2);
	issued_release(&root);
	issued_release(&inter);
	issued_release(&revoked);
	issued_release(&good);
	tu_rmtree(dir);
	free(dir);
}

/* ------------------------------------------------------------------ contents */

static void test_crl_empty(void **state)
{
	(void)state;
	char *dir = tu_tempdir();
	time_t now = time(NULL);
	issued root = make("CN=Empty Root", CW_KEY_EC_P256, 1, NULL, now);
	issued good = make("CN=good", CW_KEY_EC_P256, 0, &root, now);
	size_t len;
	unsigned char *der = sign_or_fail(&root, NULL, 0, 1, now, DAY, &len);
	write_cert(dir, "root.pem", &root.cert, 1);
	write_cert(dir, "good.pem", &good.cert, 1);
	write_crl(dir, "crl", der, len);

	char *out = NULL;
	int rc = run_in(dir, &out,
			(const char *[]){ "openssl", "crl", "-in", "crl.pem", "-noout", "-text",
					  NULL });
	if (rc != 0)
		fail_msg("openssl crl -text (%d):\n%s", rc, out);
	assert_contains(out, "No Revoked Certificates", "openssl crl");
	assert_value_after(out, "X509v3 CRL Number:", "1");
	free(out);
	assert_verify_ok(dir, "-crl_check", NULL, "crl.pem", "good.pem");
	assert_certtool_accepts(dir, "crl.pem", "root.pem", NULL);

	cw_crl_info info;
	cw_error err = { 0 };
	assert_int_equal(cw_crl_parse(der, len, &info, &err), 0);
	assert_int_equal(info.number, 1);
	assert_int_equal(info.nrevoked, 0);
	assert_int_equal(info.next_update, now + DAY);
	cw_crl_info_release(&info);

	free(der);
	issued_release(&root);
	issued_release(&good);
	tu_rmtree(dir);
	free(dir);
}

static long reason_code_of(const X509_REVOKED *rev)
{
	int crit = 0;
	ASN1_ENUMERATED *code = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, NULL);
	if (!code)
		return crit == -1 ? -1 : -2;   /* -1 absent, -2 unreadable */
	long value = ASN1_ENUMERATED_get(code);
	ASN1_ENUMERATED_free(code);
	return value;
}

static time_t revocation_date_of(const X509_REVOKED *rev)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	assert_int_equal(ASN1_TIME_to_tm(X509_REVOKED_get0_revocationDate(rev), &tm), 1);
	return timegm(&tm);
}

/* Entries come out in serial order whatever the input order, with their own dates and
 * reasons; an unspecified reason is left out (RFC 5280 5.3.1). */
static void test_crl_entries_sorted_with_reasons(void **state)
{
	(void)state;
	time_t now = time(NULL);
	issued root = make("CN=Sorting Root", CW_KEY_ED25519, 1, NULL, now);
	const cw_crl_entry entries[] = {
		{ "FF", now - 400, CW_REASON_CESSATION_OF_OPERATION },
		{ "10000000000000000000000000000000", now - 100, CW_REASON_AA_COMPROMISE },
		{ "0A", now - 300, CW_REASON_UNSPECIFIED },
		{ "1", now - 200, CW_REASON_PRIVILEGE_WITHDRAWN },
		{ "7b", now - 500, CW_REASON_AFFILIATION_CHANGED },
	};
	/* in serial order: 1, 0A, 7b, FF, 1000... */
	const size_t order[] = { 3, 2, 4, 0, 1 };
	const char *const want_serials[] = { "1", "A", "7B", "FF",
					     "10000000000000000000000000000000" };
	size_t len;
	unsigned char *der = sign_or_fail(&root, entries, 5, 42, now, WEEK, &len);

	cw_crl_info info;
	cw_error err = { 0 };
	assert_int_equal(cw_crl_parse(der, len, &info, &err), 0);
	assert_int_equal(info.nrevoked, 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(info.serials[i], want_serials[i]);
	assert_int_equal(info.number, 42);
	cw_crl_info_release(&info);

	/* the entries' own fields, read with OpenSSL directly */
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
	assert_non_null(crl);
	STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
	assert_int_equal(sk_X509_REVOKED_num(revoked), 5);
	for (int i = 0; i < 5; i++) {
		const X509_REVOKED *rev = sk_X509_REVOKED_value(revoked, i);
		const cw_crl_entry *e = &entries[order[i]];
		assert_int_equal(revocation_date_of(rev), e->revoked_at);
		long want = e->reason == CW_REASON_UNSPECIFIED ? -1 : (long)e->reason;
		assert_int_equal(reason_code_of(rev), want);
	}
	X509_CRL_free(crl);
	free(der);
	issued_release(&root);
}

/* Same inputs, same bytes, for signatures that are deterministic (Ed25519, RSA PKCS#1
 * v1.5): the input order of the entries does not matter. ECDSA signatures are randomised,
 * so there only the content is compared. */
static void check_deterministic(cw_key_type type, int same_bytes)
{
	time_t now = time(NULL);
	issued root = make("CN=Deterministic Root", type, 1, NULL, now);
	const cw_crl_entry forward[] = {
		{ "3F00", now - 60, CW_REASON_SUPERSEDED },
		{ "12AB", now - 30, CW_REASON_KEY_COMPROMISE },
	};
	const cw_crl_entry backward[] = { forward[1], forward[0] };
	size_t alen, blen;
	unsigned char *a = sign_or_fail(&root, forward, 2, 3, now, WEEK, &alen);
	unsigned char *b = sign_or_fail(&root, backward, 2, 3, now, WEEK, &blen);
	if (same_bytes) {
		assert_int_equal(alen, blen);
		assert_memory_equal(a, b, alen);
	}
	cw_crl_info ia, ib;
	cw_error err = { 0 };
	assert_int_equal(cw_crl_parse(a, alen, &ia, &err), 0);
	assert_int_equal(cw_crl_parse(b, blen, &ib, &err), 0);
	assert_int_equal(ia.number, ib.number);
	assert_int_equal(ia.this_update, ib.this_update);
	assert_int_equal(ia.next_update, ib.next_update);
	assert_int_equal(ia.nrevoked, 2);
	assert_int_equal(ib.nrevoked, 2);
	assert_string_equal(ia.serials[0], "12AB");
	assert_string_equal(ib.serials[0], "12AB");
	assert_string_equal(ia.serials[1], "3F00");
	assert_string_equal(ib.serials[1], "3F00");
	if (same_bytes)
		assert_string_equal(ia.fingerprint, ib.fingerprint);
	cw_crl_info_release(&ia);
	cw_crl_info_release(&ib);
	free(a);
	free(b);
	issued_release(&root);
}

static void test_crl_deterministic(void **state)
{
	(void)state;
	check_deterministic(CW_KEY_ED25519, 1);
	check_deterministic(CW_KEY_RSA2048, 1);
	check_deterministic(CW_KEY_EC_P256, 0);
}

static void test_crl_pem_is_the_der(void **state)
{
	(void)state;
	char *dir = tu_tempdir();
	time_t now = time(NULL);
	issued root = make("CN=PEM Root", CW_KEY_EC_P256, 1, NULL, now);
	cw_crl_entry entry = { "ABCDEF", now, CW_REASON_KEY_COMPROMISE };
	size_t len;
	unsigned char *der = sign_or_fail(&root, &entry, 1, 9, now, WEEK, &len);

	cw_buf pem = CW_BUF_INIT;
	cw_buf_adds(&pem, "# kept\n");
	cw_crl_to_pem(der, len, &pem);
	assert_true(!strncmp(pem.buf, "# kept\n-----BEGIN X509 CRL-----\n", 32));
	assert_non_null(strstr(pem.buf, "\n-----END X509 CRL-----\n"));
	for (const char *line = pem.buf; *line;) {
		const char *nl = strchr(line, '\n');
		assert_non_null(nl);
		assert_true(nl - line <= 64);
		line = nl + 1;
	}
	char *path = path_in(dir, "crl.pem");
	tu_write(path, pem.buf + strlen("# kept\n"));
	free(path);
	char *out = NULL;
	int rc = run_in(dir, &out,
			(const char *[]){ "openssl", "crl", "-in", "crl.pem", "-outform", "DER",
					  "-out", "back.der", NULL });
	if (rc != 0)
		fail_msg("openssl crl -outform DER (%d): %s", rc, out);
	free(out);
	path = path_in(dir, "back.der");
	size_t blen;
	unsigned char *back = read_bytes(path, &blen);
	assert_int_equal(blen, len);
	assert_memory_equal(back, der, len);
	free(back);
	free(path);
	cw_buf_release(&pem);
	free(der);
	issued_release(&root);
	tu_rmtree(dir);
	free(dir);
}

/* ------------------------------------------------------------------ refusals */

/* cw_crl_sign must fail, hand back nothing, and say why naming the CRL's CA first. */
static void assert_refused(X509 *cert, EVP_PKEY *key, const cw_crl_entry *entries, size_t n,
			   uint64_t number, int64_t lifetime, const char *label, const char *why)
{
	unsigned char *der = (unsigned char *)"untouched";
	size_t len = 99;
	cw_error err = { 0 };
	int rc = cw_crl_sign(&der, &len, cert, key, entries, n, number, time(NULL), lifetime, &err);
	if (rc != -1)
		fail_msg("expected a refusal for '%s'", why);
	assert_null(der);
	assert_int_equal(len, 0);
	char *prefix = cw_xasprintf("crl for '%s': ", label);
	if (strncmp(err.msg, prefix, strlen(prefix)) != 0 || !strstr(err.msg, why))
		fail_msg("message '%s' should start with \"%s\" and say '%s'", err.msg, prefix,
			 why);
	free(prefix);
}

/* A CA certificate with the given keyUsage (OpenSSL config syntax), made by openssl req. */
static void make_ca_with_usage(const char *dir, const char *cn, const char *usage, X509 **cert,
			       EVP_PKEY **key)
{
	char *cfg = path_in(dir, "ca.cnf");
	char *text = cw_xasprintf("[req]\ndistinguished_name = dn\nx509_extensions = ext\n"
				  "prompt = no\n[dn]\nCN = %s\n"
				  "[ext]\nbasicConstraints = critical,CA:TRUE\n"
				  "keyUsage = critical,%s\nsubjectKeyIdentifier = hash\n",
				  cn, usage);
	tu_write(cfg, text);
	free(text);
	char *out = NULL;
	int rc = run_in(dir, &out,
			(const char *[]){ "openssl", "req", "-x509", "-config", "ca.cnf",
					  "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
					  "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
					  "-days", "2", NULL });
	if (rc != 0)
		fail_msg("openssl req (%d): %s", rc, out);
	free(out);
	free(cfg);
	char *path = path_in(dir, "ca.pem");
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	*cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	free(path);
	path = path_in(dir, "ca.key");
	f = fopen(path, "r");
	assert_non_null(f);
	*key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	free(path);
	assert_non_null(*cert);
	assert_non_null(*key);
}

static void test_crl_refusals(void **state)
{
	(void)state;
	char *dir = tu_tempdir();
	time_t now = time(NULL);
	issued root = make("CN=Refusal Root,O=certwright", CW_KEY_EC_P256, 1, NULL, now);
	issued leaf = make("CN=leaf.example.net", CW_KEY_EC_P256, 0, &root, now);
	const char *ca = "CN=Refusal Root,O=certwright";
	cw_crl_entry ok = { leaf.serial, now, CW_REASON_KEY_COMPROMISE };

	assert_refused(root.cert, root.key, &ok, 1, 0, WEEK, ca, "crl number must be at least 1");
	assert_refused(root.cert, root.key, &ok, 1, 1, 0, ca, "lifetime 0 s is out of range");
	assert_refused(root.cert, root.key, &ok, 1, 1, -DAY, ca, "out of range");
	assert_refused(root.cert, root.key, &ok, 1, 1, INT64_MAX, ca, "out of range");

	const char *bad_serials[] = { "XYZ", "12 34", "-1", "0x12", "+1", "12G" };
	for (size_t i = 0; i < sizeof(bad_serials) / sizeof(bad_serials[0]); i++) {
		cw_crl_entry bad = { bad_serials[i], now, CW_REASON_KEY_COMPROMISE };
		char *why = cw_xasprintf("serial '%s' is not hexadecimal", bad_serials[i]);
		assert_refused(root.cert, root.key, &bad, 1, 1, WEEK, ca, why);
		free(why);
	}
	cw_crl_entry empty = { "", now, CW_REASON_KEY_COMPROMISE };
	assert_refused(root.cert, root.key, &empty, 1, 1, WEEK, ca, "empty serial");
	cw_crl_entry none = { NULL, now, CW_REASON_KEY_COMPROMISE };
	assert_refused(root.cert, root.key, &none, 1, 1, WEEK, ca, "empty serial");
	cw_crl_entry huge = { "123456789012345678901234567890123456789012", now,
			      CW_REASON_UNSPECIFIED };
	assert_refused(root.cert, root.key, &huge, 1, 1, WEEK, ca, "longer than 20 octets");
	const cw_crl_entry twice[] = { { "00AB", now, CW_REASON_SUPERSEDED },
				       { "ab", now, CW_REASON_KEY_COMPROMISE } };
	assert_refused(root.cert, root.key, twice, 2, 1, WEEK, ca, "is listed twice");
	cw_crl_entry hold = { "AB", now, (cw_revoke_reason)6 };
	assert_refused(root.cert, root.key, &hold, 1, 1, WEEK, ca, "unknown reason code 6");

	assert_refused(leaf.cert, leaf.key, &ok, 1, 1, WEEK, "CN=leaf.example.net",
		       "certificate is not a ca");
	assert_refused(root.cert, leaf.key, &ok, 1, 1, WEEK, ca,
		       "private key does not match the ca certificate");

	X509 *cert;
	EVP_PKEY *key;
	make_ca_with_usage(dir, "No CRL Sign CA", "keyCertSign", &cert, &key);
	assert_refused(cert, key, NULL, 0, 1, WEEK, "CN=No CRL Sign CA",
		       "ca certificate does not allow crl-sign");
	X509_free(cert);
	EVP_PKEY_free(key);
	make_ca_with_usage(dir, "CRL Only CA", "cRLSign", &cert, &key);
	assert_refused(cert, key, NULL, 0, 1, WEEK, "CN=CRL Only CA",
		       "ca certificate does not allow key-cert-sign");
	X509_free(cert);
	EVP_PKEY_free(key);
	/* the same route with both bits gives a CRL: the refusals above are about the bits */
	make_ca_with_usage(dir, "Both Bits CA", "keyCertSign,cRLSign", &cert, &key);
	unsigned char *der = NULL;
	size_t len = 0;
	cw_error err = { 0 };
	if (cw_crl_sign(&der, &len, cert, key, NULL, 0, 1, now, WEEK, &err) != 0)
		fail_msg("crl with an openssl-made ca: %s", err.msg);
	free(der);
	X509_free(cert);
	EVP_PKEY_free(key);

	issued_release(&root);
	issued_release(&leaf);
	tu_rmtree(dir);
	free(dir);
}

static void assert_parse_refused(const unsigned char *der, size_t len, const char *why)
{
	cw_crl_info info;
	cw_error err = { 0 };
	assert_int_equal(cw_crl_parse(der, len, &info, &err), -1);
	assert_int_equal(info.nrevoked, 0);
	assert_null(info.serials);
	if (strncmp(err.msg, "crl: ", 5) != 0 || !strstr(err.msg, why))
		fail_msg("parse message '%s' should say '%s'", err.msg, why);
}

static void test_crl_parse_rejects(void **state)
{
	(void)state;
	time_t now = time(NULL);
	issued root = make("CN=Parse Root", CW_KEY_ED25519, 1, NULL, now);
	cw_crl_entry entry = { root.serial, now, CW_REASON_CA_COMPROMISE };
	size_t len;
	unsigned char *der = sign_or_fail(&root, &entry, 1, 5, now, WEEK, &len);

	assert_parse_refused(NULL, 0, "empty input");
	assert_parse_refused((const unsigned char *)"garbage!", 8, "not a DER");
	assert_parse_refused(der, len - 1, "not a DER");
	unsigned char *longer = cw_xmalloc(len + 2);
	memcpy(longer, der, len);
	longer[len] = 0;
	longer[len + 1] = 0;
	assert_parse_refused(longer, len + 2, "2 bytes of trailing data");
	free(longer);
	unsigned char *cert_der;
	size_t cert_len;
	cw_error err = { 0 };
	assert_int_equal(cw_x509_to_der(root.cert, &cert_der, &cert_len, &err), 0);
	assert_parse_refused(cert_der, cert_len, "not a DER");
	free(cert_der);

	/* and the intact one still reads */
	cw_crl_info info;
	assert_int_equal(cw_crl_parse(der, len, &info, &err), 0);
	assert_int_equal(info.number, 5);
	assert_string_equal(info.serials[0], root.serial);
	cw_crl_info_release(&info);
	free(der);
	issued_release(&root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_crl_rsa2048),
		cmocka_unit_test(test_crl_p256),
		cmocka_unit_test(test_crl_p384),
		cmocka_unit_test(test_crl_ed25519),
		cmocka_unit_test(test_crl_intermediate_chain),
		cmocka_unit_test(test_crl_empty),
		cmocka_unit_test(test_crl_entries_sorted_with_reasons),
		cmocka_unit_test(test_crl_deterministic),
		cmocka_unit_test(test_crl_pem_is_the_der),
		cmocka_unit_test(test_crl_refusals),
		cmocka_unit_test(test_crl_parse_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
