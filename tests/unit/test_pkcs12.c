/* test_pkcs12 — client bundles, opened by independent readers: openssl pkcs12 (algorithms,
 * MAC, certificates, key) and gnutls certtool --p12-info. */
#include <openssl/provider.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "common/util.h"
#include "issuers/localca.h"
#include "issuers/pkcs12.h"
#include "reconcile/x509.h"

#define DAY 86400
#define PASS "correct horse battery"

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

static issued make(const char *subject, cw_key_type type, int is_ca, const issued *issuer,
		   int64_t lifetime)
{
	cw_cert_spec spec;
	memset(&spec, 0, sizeof(spec));
	spec.subject = (char *)subject;
	spec.key = type;
	spec.is_ca = is_ca;
	spec.path_len = -1;
	spec.lifetime = lifetime;
	spec.usage = is_ca ? 0 : CW_KU_DIGITAL_SIGNATURE | CW_EKU_CLIENT_AUTH;
	issued c;
	memset(&c, 0, sizeof(c));
	cw_error err = { 0 };
	if (cw_key_generate(&c.key, type, &err) != 0)
		fail_msg("key: %s", err.msg);
	if (cw_ca_sign(&c.cert, &spec, c.key, issuer ? issuer->cert : NULL,
		       issuer ? issuer->key : NULL, time(NULL), &err) != 0)
		fail_msg("sign '%s': %s", subject, err.msg);
	return c;
}

/* root -> intermediate -> client leaf of leaf_type */
typedef struct {
	issued root, inter, leaf;
	char *dir;
} pki;

static void pki_make(pki *p, cw_key_type leaf_type)
{
	p->root = make("CN=Bundle Root,O=certwright", CW_KEY_EC_P384, 1, NULL, 3650 * (int64_t)DAY);
	p->inter = make("CN=Bundle Intermediate,O=certwright", CW_KEY_EC_P256, 1, &p->root,
			1000 * (int64_t)DAY);
	p->leaf = make("CN=alice@example.net", leaf_type, 0, &p->inter, 90 * (int64_t)DAY);
	p->dir = tu_tempdir();
}

static void pki_release(pki *p)
{
	issued_release(&p->root);
	issued_release(&p->inter);
	issued_release(&p->leaf);
	tu_rmtree(p->dir);
	free(p->dir);
}

/* ------------------------------------------------------------------ files and tools */

static void write_bytes(const char *dir, const char *name, const void *data, size_t len)
{
	char *path = cw_xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	free(path);
}

static char *read_text(const char *dir, const char *name)
{
	char *path = cw_xasprintf("%s/%s", dir, name);
	cw_buf b = CW_BUF_INIT;
	cw_error err = { 0 };
	if (cw_read_file(path, 1 << 20, &b, &err) != 0)
		fail_msg("%s", err.msg);
	free(path);
	cw_buf_add(&b, "", 0);
	return cw_buf_detach(&b);
}

static void write_cert(const char *dir, const char *name, X509 *cert)
{
	unsigned char *der;
	size_t len;
	cw_error err = { 0 };
	assert_int_equal(cw_x509_to_der(cert, &der, &len, &err), 0);
	cw_buf pem = CW_BUF_INIT;
	cw_der_to_pem(der, len, &pem);
	char *path = cw_xasprintf("%s/%s", dir, name);
	tu_write(path, pem.buf);
	free(path);
	cw_buf_release(&pem);
	free(der);
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

static char *run_ok(const char *dir, const char *const *argv)
{
	char *out = NULL;
	int rc = run_in(dir, &out, argv);
	if (rc != 0)
		fail_msg("%s %s (%d):\n%s", argv[0], argv[1], rc, out);
	return out;
}

static void assert_contains(const char *text, const char *what, const char *tool)
{
	if (!strstr(text, what))
		fail_msg("%s: '%s' not in output:\n%s", tool, what, text);
}

static size_t count_of(const char *text, const char *what)
{
	size_t n = 0;
	for (const char *p = strstr(text, what); p; p = strstr(p + 1, what))
		n++;
	return n;
}

static unsigned char *build_or_fail(const pki *p, const char *name, int legacy,
				    int include_chain, const char *pass, size_t *len)
{
	X509 *chain[] = { p->inter.cert, p->root.cert };
	cw_pkcs12_opts opts = { name, legacy, include_chain };
	unsigned char *der = NULL;
	cw_error err = { 0 };
	if (cw_pkcs12_build(&der, len, p->leaf.key, p->leaf.cert, chain, 2, pass, &opts, &err) != 0)
		fail_msg("bundle: %s", err.msg);
	assert_non_null(der);
	return der;
}

/* ------------------------------------------------------------------ checks */

static void check_algorithms(const char *dir, int legacy)
{
	char *out = run_ok(dir, (const char *[]){ "openssl", "pkcs12", "-in", "b.p12", "-info",
						  "-noout", "-passin", "pass:" PASS, NULL });
	const char *pbe = legacy ? "pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048"
				 : "PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256";
	char *cert_bags = cw_xasprintf("PKCS7 Encrypted data: %s", pbe);
	char *key_bag = cw_xasprintf("Shrouded Keybag: %s", pbe);
	assert_contains(out, legacy ? "MAC: sha1, Iteration 2048" : "MAC: sha256, Iteration 2048",
			"openssl pkcs12 -info");
	assert_contains(out, cert_bags, "openssl pkcs12 -info");
	assert_contains(out, key_bag, "openssl pkcs12 -info");
	/* nothing else: one profile for every bag */
	assert_int_equal(count_of(out, "PBES2"), legacy ? 0 : 2);
	assert_int_equal(count_of(out, "TripleDES"), legacy ? 2 : 0);
	free(cert_bags);
	free(key_bag);
	free(out);
}

/* The certificates in the bundle are exactly want (as DER), in any order. */
static void check_certificates(const char *dir, X509 *const *want, size_t nwant,
			       const char *friendly_name)
{
	free(run_ok(dir, (const char *[]){ "openssl", "pkcs12", "-in", "b.p12", "-nokeys",
					   "-passin", "pass:" PASS, "-out", "certs.pem", NULL }));
	char *pem = read_text(dir, "certs.pem");
	unsigned char **ders;
	size_t *lens, n;
	cw_error err = { 0 };
	assert_int_equal(cw_pem_to_der_list(pem, strlen(pem), &ders, &lens, &n, &err), 0);
	assert_int_equal(n, nwant);
	for (size_t i = 0; i < nwant; i++) {
		unsigned char *der;
		size_t len;
		assert_int_equal(cw_x509_to_der(want[i], &der, &len, &err), 0);
		int found = 0;
		for (size_t j = 0; j < n; j++)
			found += lens[j] == len && !memcmp(ders[j], der, len);
		assert_int_equal(found, 1);
		free(der);
	}
	if (friendly_name) {
		char *attr = cw_xasprintf("friendlyName: %s", friendly_name);
		/* on the client certificate only */
		assert_int_equal(count_of(pem, attr), 1);
		free(attr);
	} else {
		assert_null(strstr(pem, "friendlyName"));
	}
	for (size_t j = 0; j < n; j++)
		free(ders[j]);
	free(ders);
	free(lens);
	free(pem);
}

/* The key in the bundle is the certificate's key: same public key. */
static void check_key(const char *dir)
{
	free(run_ok(dir, (const char *[]){ "openssl", "pkcs12", "-in", "b.p12", "-nocerts",
					   "-nodes", "-passin", "pass:" PASS, "-out", "key.pem",
					   NULL }));
	char *from_key = run_ok(dir, (const char *[]){ "openssl", "pkey", "-in", "key.pem",
						       "-pubout", NULL });
	char *from_cert = run_ok(dir, (const char *[]){ "openssl", "x509", "-in", "leaf.pem",
							"-noout", "-pubkey", NULL });
	assert_contains(from_key, "-----BEGIN PUBLIC KEY-----", "openssl pkey");
	assert_string_equal(from_key, from_cert);
	free(from_key);
	free(from_cert);
}

static void check_wrong_passphrase(const char *dir)
{
	char *out = NULL;
	int rc = run_in(dir, &out,
			(const char *[]){ "openssl", "pkcs12", "-in", "b.p12", "-noout",
					  "-passin", "pass:" PASS "x", NULL });
	if (rc == 0 || !strstr(out, "Mac verify error"))
		fail_msg("openssl opened the bundle with a wrong passphrase (%d):\n%s", rc, out);
	free(out);
	rc = run_in(dir, &out,
		    (const char *[]){ "certtool", "--p12-info", "--inder", "--infile", "b.p12",
				      "--password", "wrong", NULL });
	if (rc == 0)
		fail_msg("certtool opened the bundle with a wrong passphrase:\n%s", out);
	free(out);
}

static void check_certtool(const char *dir, int legacy, size_t ncerts, const char *name)
{
	char *out = run_ok(dir, (const char *[]){ "certtool", "--p12-info", "--inder", "--infile",
						  "b.p12", "--password", PASS, NULL });
	assert_contains(out, legacy ? "MAC: SHA1" : "MAC: SHA256", "certtool --p12-info");
	/* one encrypted certificate bag and one shrouded key */
	const char *schema = legacy ? "Schema: PKCS12-3DES-SHA1" : "Schema: PBES2-AES256-CBC";
	assert_int_equal(count_of(out, schema), 2);
	assert_int_equal(count_of(out, "Type: Certificate"), ncerts);
	assert_int_equal(count_of(out, "Type: PKCS #8 Encrypted key"), 1);
	if (name) {
		char *attr = cw_xasprintf("Friendly name: %s", name);
		assert_int_equal(count_of(out, attr), 2);   /* the client certificate and the key */
		free(attr);
	}
	free(out);
}

static void check_bundle(cw_key_type leaf_type, int legacy)
{
	pki p;
	pki_make(&p, leaf_type);
	size_t len;
	unsigned char *der = build_or_fail(&p, "alice vpn", legacy, 1, PASS, &len);
	write_bytes(p.dir, "b.p12", der, len);
	write_cert(p.dir, "leaf.pem", p.leaf.cert);

	check_algorithms(p.dir, legacy);
	check_certificates(p.dir, (X509 *[]){ p.leaf.cert, p.inter.cert, p.root.cert }, 3,
			   "alice vpn");
	check_key(p.dir);
	check_wrong_passphrase(p.dir);
	check_certtool(p.dir, legacy, 3, "alice vpn");
	free(der);
	pki_release(&p);
}

/* ------------------------------------------------------------------ tests */

static void test_p12_modern_p256(void **state)
{
	(void)state;
	check_bundle(CW_KEY_EC_P256, 0);
}

static void test_p12_modern_rsa(void **state)
{
	(void)state;
	check_bundle(CW_KEY_RSA2048, 0);
}

static void test_p12_legacy_rsa(void **state)
{
	(void)state;
	check_bundle(CW_KEY_RSA2048, 1);
}

/* 3DES and the PKCS#12 KDF are in the default provider: legacy bundles must not need
 * OpenSSL's "legacy" provider, in this process or anywhere. */
static void test_p12_legacy_p256_without_legacy_provider(void **state)
{
	(void)state;
	check_bundle(CW_KEY_EC_P256, 1);
	assert_int_equal(OSSL_PROVIDER_available(NULL, "legacy"), 0);
}

static void test_p12_without_chain_or_name(void **state)
{
	(void)state;
	pki p;
	pki_make(&p, CW_KEY_EC_P256);
	size_t len;
	unsigned char *der = build_or_fail(&p, NULL, 0, 0, PASS, &len);
	write_bytes(p.dir, "b.p12", der, len);
	write_cert(p.dir, "leaf.pem", p.leaf.cert);
	check_certificates(p.dir, &p.leaf.cert, 1, NULL);
	check_key(p.dir);
	check_certtool(p.dir, 0, 1, NULL);
	free(der);
	pki_release(&p);
}

/* PKCS#12 passwords are BMPStrings: a UTF-8 passphrase must mean the same to other readers. */
static void test_p12_utf8_passphrase(void **state)
{
	(void)state;
	pki p;
	pki_make(&p, CW_KEY_EC_P256);
	const char *pass = "p\xc3\xa4ssw\xc3\xb6rd \xe6\x97\xa5\xe6\x9c\xac";
	size_t len;
	unsigned char *der = build_or_fail(&p, "utf8", 0, 1, pass, &len);
	write_bytes(p.dir, "b.p12", der, len);
	char *arg = cw_xasprintf("pass:%s", pass);
	free(run_ok(p.dir, (const char *[]){ "openssl", "pkcs12", "-in", "b.p12", "-noout",
					     "-passin", arg, NULL }));
	free(run_ok(p.dir, (const char *[]){ "certtool", "--p12-info", "--inder", "--infile",
					     "b.p12", "--password", pass, NULL }));
	free(arg);
	free(der);
	pki_release(&p);
}

static void assert_refused(const pki *p, EVP_PKEY *key, X509 *cert, X509 *const *chain,
			   size_t nchain, const char *pass, cw_errcode code, const char *why)
{
	cw_pkcs12_opts opts = { "bob phone", 0, 1 };
	unsigned char *der = (unsigned char *)"untouched";
	size_t len = 99;
	cw_error err = { 0 };
	assert_int_equal(cw_pkcs12_build(&der, &len, key, cert, chain, nchain, pass, &opts, &err),
			 -1);
	assert_null(der);
	assert_int_equal(len, 0);
	assert_int_equal(err.code, code);
	char *want = cw_xasprintf("bundle 'bob phone': %s", why);
	assert_string_equal(err.msg, want);
	free(want);
}

static void test_p12_refusals(void **state)
{
	(void)state;
	pki p;
	pki_make(&p, CW_KEY_EC_P256);
	X509 *chain[] = { p.inter.cert, p.root.cert };
	X509 *holey[] = { p.inter.cert, NULL };
	assert_refused(&p, p.leaf.key, p.leaf.cert, chain, 2, "", CW_EPASS,
		       "the passphrase must not be empty");
	assert_refused(&p, p.leaf.key, p.leaf.cert, chain, 2, NULL, CW_EPASS,
		       "the passphrase must not be empty");
	assert_refused(&p, p.inter.key, p.leaf.cert, chain, 2, PASS, CW_EINVAL,
		       "private key does not match the certificate");
	assert_refused(&p, p.leaf.key, NULL, chain, 2, PASS, CW_EINVAL,
		       "needs a certificate and its key");
	assert_refused(&p, NULL, p.leaf.cert, chain, 2, PASS, CW_EINVAL,
		       "needs a certificate and its key");
	assert_refused(&p, p.leaf.key, p.leaf.cert, holey, 2, PASS, CW_EINVAL,
		       "chain certificate 2 is missing");
	pki_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_p12_modern_p256),
		cmocka_unit_test(test_p12_modern_rsa),
		cmocka_unit_test(test_p12_legacy_rsa),
		cmocka_unit_test(test_p12_legacy_p256_without_legacy_provider),
		cmocka_unit_test(test_p12_without_chain_or_name),
		cmocka_unit_test(test_p12_utf8_passphrase),
		cmocka_unit_test(test_p12_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
