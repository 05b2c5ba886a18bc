/* test_x509 — parsing certificates made by the openssl CLI, so the parser is checked
 * against an independent producer, not against our own CA. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "common/util.h"
#include "reconcile/x509.h"

typedef struct {
	char *dir;
} fixture;

static char *path_in(const fixture *f, const char *name)
{
	return cw_path_join(f->dir, name);
}

static void run_openssl(const char *const *argv)
{
	char *out = NULL;
	int rc = tu_run(argv, &out);
	if (rc != 0)
		fail_msg("%s failed (%d): %s", argv[1], rc, out);
	free(out);
}

static const char ext_conf[] =
	"[req]\n"
	"distinguished_name = dn\n"
	"[dn]\n"
	"[ca]\n"
	"basicConstraints = critical, CA:TRUE, pathlen:1\n"
	"keyUsage = critical, keyCertSign, cRLSign\n"
	"subjectKeyIdentifier = hash\n"
	"[leaf]\n"
	"basicConstraints = critical, CA:FALSE\n"
	"keyUsage = critical, digitalSignature, keyEncipherment\n"
	"extendedKeyUsage = serverAuth, clientAuth, 1.3.6.1.5.5.7.3.17, 1.3.6.1.5.5.8.2.2\n"
	"subjectAltName = DNS:vpn.example.net, DNS:*.example.net, IP:192.0.2.7, "
	"IP:2001:db8::1, email:ops@example.net, URI:https://example.net/id\n"
	"crlDistributionPoints = URI:http://crl.example.net/root.crl\n"
	"subjectKeyIdentifier = hash\n"
	"authorityKeyIdentifier = keyid\n"
	"[device]\n"
	"basicConstraints = critical, CA:FALSE\n"
	"keyUsage = critical, digitalSignature\n"
	"subjectAltName = DNS:router.lan\n"
	"[self]\n"
	"basicConstraints = critical, CA:TRUE\n"
	"keyUsage = critical, digitalSignature, keyCertSign\n"
	"subjectKeyIdentifier = hash\n";

/* ca.pem (RSA-2048, pathlen 1), leaf.pem (P-256, signed by ca), ed.pem (Ed25519,
 * self-signed), p384.pem (P-384, self-signed), device.pem (self-signed non-CA leaf). */
static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tempdir();
	char *conf = path_in(f, "ext.cnf"), *ca_key = path_in(f, "ca.key"),
	     *ca = path_in(f, "ca.pem"), *leaf_key = path_in(f, "leaf.key"),
	     *csr = path_in(f, "leaf.csr"), *leaf = path_in(f, "leaf.pem"),
	     *ed_key = path_in(f, "ed.key"), *ed = path_in(f, "ed.pem"),
	     *p384_key = path_in(f, "p384.key"), *p384 = path_in(f, "p384.pem");
	tu_write(conf, ext_conf);
	run_openssl((const char *[]){ "openssl", "req", "-x509", "-new", "-newkey", "rsa:2048",
				     "-nodes", "-keyout", ca_key, "-out", ca, "-config", conf,
				     "-extensions", "ca", "-subj",
				     "/C=JP/O=Example\\, Inc./CN=Test Root", "-days", "30",
				     "-sha256", NULL });
	run_openssl((const char *[]){ "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
				     "ec_paramgen_curve:P-256", "-nodes", "-keyout", leaf_key,
				     "-out", csr, "-config", conf, "-subj",
				     "/C=JP/O=Example/CN=vpn.example.net", NULL });
	run_openssl((const char *[]){ "openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey",
				     ca_key, "-set_serial", "0x0F1234", "-days", "10", "-sha256",
				     "-extfile", conf, "-extensions", "leaf", "-out", leaf, NULL });
	run_openssl((const char *[]){ "openssl", "req", "-x509", "-new", "-newkey", "ed25519",
				     "-nodes", "-keyout", ed_key, "-out", ed, "-config", conf,
				     "-extensions", "self", "-subj", "/CN=ed-root", "-days", "1",
				     NULL });
	run_openssl((const char *[]){ "openssl", "req", "-x509", "-new", "-newkey", "ec",
				     "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes", "-keyout",
				     p384_key, "-out", p384, "-config", conf, "-extensions", "self",
				     "-subj", "/CN=p384-root", "-days", "2", "-sha384", NULL });
	/* what a router makes for itself: self-signed, but not a CA */
	char *dev_key = path_in(f, "device.key"), *dev = path_in(f, "device.pem");
	run_openssl((const char *[]){ "openssl", "req", "-x509", "-new", "-newkey", "ec",
				     "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
				     dev_key, "-out", dev, "-config", conf, "-extensions", "device",
				     "-subj", "/CN=router.lan", "-days", "3", NULL });
	free(dev_key), free(dev);
	free(conf), free(ca_key), free(ca), free(leaf_key), free(csr), free(leaf);
	free(ed_key), free(ed), free(p384_key), free(p384);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* DER of a PEM file in the fixture, converted by the openssl CLI. */
static void read_der(const fixture *f, const char *pem_name, cw_buf *der)
{
	char *pem = path_in(f, pem_name);
	char *out = cw_xasprintf("%s.der", pem);
	run_openssl((const char *[]){ "openssl", "x509", "-in", pem, "-outform", "DER", "-out",
				     out, NULL });
	cw_error err = { 0 };
	assert_int_equal(cw_read_file(out, 0, der, &err), 0);
	free(pem);
	free(out);
}

static void parse_file(const fixture *f, const char *pem_name, cw_x509_info *info)
{
	cw_buf der = CW_BUF_INIT;
	read_der(f, pem_name, &der);
	cw_error err = { 0 };
	int rc = cw_x509_parse((unsigned char *)der.buf, der.len, info, &err);
	if (rc != 0)
		fail_msg("parse %s: %s", pem_name, err.msg);
	cw_buf_release(&der);
}

/* What `openssl x509 -noout <option>` prints after '=', trimmed. */
static char *openssl_field(const fixture *f, const char *pem_name, const char *option)
{
	char *pem = path_in(f, pem_name);
	char *out = NULL;
	int rc = tu_run((const char *[]){ "openssl", "x509", "-in", pem, "-noout", option, NULL },
			&out);
	assert_int_equal(rc, 0);
	free(pem);
	char *eq = strchr(out, '=');
	assert_non_null(eq);
	char *value = cw_xstrdup(eq + 1);
	value[strcspn(value, "\n")] = '\0';
	free(out);
	return value;
}

static time_t openssl_date(const fixture *f, const char *pem_name, const char *option)
{
	char *text = openssl_field(f, pem_name, option); /* "Nov 23 05:00:00 2026 GMT" */
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(text, "%b %d %H:%M:%S %Y GMT", &tm));
	free(text);
	return timegm(&tm);
}

static void strip_colons_lower(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++)
		if (*r != ':')
			*w++ = (char)(*r >= 'A' && *r <= 'F' ? *r + 32 : *r);
	*w = '\0';
}

static char *openssl_sha256_fingerprint(const fixture *f, const char *pem_name)
{
	char *pem = path_in(f, pem_name), *out = NULL;
	assert_int_equal(tu_run((const char *[]){ "openssl", "x509", "-in", pem, "-noout",
						  "-fingerprint", "-sha256", NULL },
				&out),
			 0);
	char *eq = strchr(out, '=');
	assert_non_null(eq);
	char *fp = cw_xstrdup(eq + 1);
	fp[strcspn(fp, "\n")] = '\0';
	strip_colons_lower(fp);
	free(out);
	free(pem);
	return fp;
}

static void test_parse_rsa_ca(void **state)
{
	fixture *f = *state;
	cw_x509_info info;
	parse_file(f, "ca.pem", &info);
	assert_string_equal(info.subject, "CN=Test Root,O=Example\\, Inc.,C=JP");
	assert_string_equal(info.issuer, info.subject);
	assert_int_equal(info.key, CW_KEY_RSA2048);
	assert_int_equal(info.key_bits, 2048);
	assert_string_equal(info.sig_alg, "sha256WithRSAEncryption");
	assert_true(info.is_ca);
	assert_int_equal(info.path_len, 1);
	assert_int_equal(info.usage, CW_KU_KEY_CERT_SIGN | CW_KU_CRL_SIGN);
	assert_true(info.self_signed);
	assert_int_equal(info.nsans, 0);
	assert_null(info.crl_url);
	assert_non_null(info.ski);
	assert_int_equal(strlen(info.ski), 40);

	char *fp = openssl_sha256_fingerprint(f, "ca.pem");
	assert_string_equal(info.fingerprint, fp);
	free(fp);

	assert_int_equal(info.not_before, openssl_date(f, "ca.pem", "-startdate"));
	assert_int_equal(info.not_after, openssl_date(f, "ca.pem", "-enddate"));
	assert_int_equal(info.not_after - info.not_before, 30 * 86400);
	cw_x509_info_release(&info);
}

static void test_parse_ec_leaf_all_fields(void **state)
{
	fixture *f = *state;
	cw_x509_info ca, leaf;
	parse_file(f, "ca.pem", &ca);
	parse_file(f, "leaf.pem", &leaf);
	assert_string_equal(leaf.serial, "F1234"); /* 0x0F1234: no leading zero */
	assert_string_equal(leaf.subject, "CN=vpn.example.net,O=Example,C=JP");
	assert_string_equal(leaf.issuer, ca.subject);
	assert_int_equal(leaf.key, CW_KEY_EC_P256);
	assert_int_equal(leaf.key_bits, 256);
	assert_string_equal(leaf.sig_alg, "sha256WithRSAEncryption");
	assert_false(leaf.is_ca);
	assert_int_equal(leaf.path_len, -1);
	assert_false(leaf.self_signed);
	assert_int_equal(leaf.usage, CW_KU_DIGITAL_SIGNATURE | CW_KU_KEY_ENCIPHERMENT |
					     CW_EKU_SERVER_AUTH | CW_EKU_CLIENT_AUTH |
					     CW_EKU_IPSEC_IKE | CW_EKU_IKE_INTERMEDIATE);
	static const struct {
		cw_san_type type;
		const char *value;
	} want[] = {
		{ CW_SAN_DNS, "vpn.example.net" },	{ CW_SAN_DNS, "*.example.net" },
		{ CW_SAN_IP, "192.0.2.7" },		{ CW_SAN_IP, "2001:db8::1" },
		{ CW_SAN_EMAIL, "ops@example.net" }, { CW_SAN_URI, "https://example.net/id" },
	};
	assert_int_equal(leaf.nsans, 6);
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(leaf.sans[i].type, want[i].type);
		assert_string_equal(leaf.sans[i].value, want[i].value);
	}
	assert_string_equal(leaf.crl_url, "http://crl.example.net/root.crl");
	assert_non_null(leaf.aki);
	assert_string_equal(leaf.aki, ca.ski);
	assert_string_not_equal(leaf.ski, ca.ski);
	assert_int_equal(leaf.not_after - leaf.not_before, 10 * 86400);
	cw_x509_info_release(&leaf);
	cw_x509_info_release(&ca);
}

static void test_parse_ed25519_p384_and_device(void **state)
{
	fixture *f = *state;
	cw_x509_info ed, p384;
	parse_file(f, "ed.pem", &ed);
	assert_int_equal(ed.key, CW_KEY_ED25519);
	assert_string_equal(ed.sig_alg, "ED25519");
	assert_string_equal(ed.subject, "CN=ed-root");
	assert_true(ed.self_signed);
	assert_true(ed.is_ca);
	assert_int_equal(ed.path_len, -1);
	assert_int_equal(ed.usage, CW_KU_DIGITAL_SIGNATURE | CW_KU_KEY_CERT_SIGN);
	parse_file(f, "p384.pem", &p384);
	assert_int_equal(p384.key, CW_KEY_EC_P384);
	assert_int_equal(p384.key_bits, 384);
	assert_string_equal(p384.sig_alg, "ecdsa-with-SHA384");
	cw_x509_info_release(&ed);
	cw_x509_info_release(&p384);

	cw_x509_info dev;
	parse_file(f, "device.pem", &dev);
	assert_true(dev.self_signed);
	assert_false(dev.is_ca);
	assert_int_equal(dev.usage, CW_KU_DIGITAL_SIGNATURE);
	assert_null(dev.aki);
	cw_x509_info_release(&dev);
}

static void test_garbage_and_truncation_fail_cleanly(void **state)
{
	fixture *f = *state;
	cw_buf der = CW_BUF_INIT;
	read_der(f, "leaf.pem", &der);
	cw_x509_info info;
	/* every strict prefix of a valid certificate is an error, never a crash */
	for (size_t n = 0; n < der.len; n++) {
		cw_error err = { 0 };
		assert_int_equal(cw_x509_parse((unsigned char *)der.buf, n, &info, &err), -1);
		assert_int_not_equal(err.code, CW_OK);
		assert_non_null(strstr(err.msg, "certificate"));
	}
	/* a trailing byte would make the fingerprint disagree with the certificate */
	cw_buf_add(&der, "x", 1);
	cw_error err = { 0 };
	assert_int_equal(cw_x509_parse((unsigned char *)der.buf, der.len, &info, &err), -1);
	assert_non_null(strstr(err.msg, "trailing"));
	/* random bytes, and bytes flipped inside a valid certificate */
	srand(7);
	for (int round = 0; round < 200; round++) {
		unsigned char junk[600];
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (unsigned char)rand();
		junk[0] = 0x30; /* look like a SEQUENCE to get past the first check */
		cw_error e2 = { 0 };
		assert_int_equal(cw_x509_parse(junk, sizeof(junk), &info, &e2), -1);
		cw_buf copy = CW_BUF_INIT;
		cw_buf_add(&copy, der.buf, der.len - 1);
		copy.buf[(size_t)rand() % copy.len] ^= (char)(1 + rand() % 255);
		cw_error e3 = { 0 };
		if (cw_x509_parse((unsigned char *)copy.buf, copy.len, &info, &e3) == 0)
			cw_x509_info_release(&info); /* a flip in a value may still parse */
		else
			assert_int_not_equal(e3.code, CW_OK);
		cw_buf_release(&copy);
	}
	cw_buf_release(&der);
}

static void test_pem_bundle_and_round_trip(void **state)
{
	fixture *f = *state;
	cw_buf bundle = CW_BUF_INIT, leaf_der = CW_BUF_INIT, ca_der = CW_BUF_INIT;
	const char *files[] = { "leaf.pem", "leaf.key", "ca.pem" };
	cw_error err = { 0 };
	for (size_t i = 0; i < 3; i++) {
		char *p = path_in(f, files[i]);
		assert_int_equal(cw_read_file(p, 0, &bundle, &err), 0);
		free(p);
	}
	unsigned char **ders;
	size_t *lens, n;
	assert_int_equal(cw_pem_to_der_list(bundle.buf, bundle.len, &ders, &lens, &n, &err), 0);
	assert_int_equal(n, 2); /* the key block in the middle is skipped */
	read_der(f, "leaf.pem", &leaf_der);
	read_der(f, "ca.pem", &ca_der);
	assert_int_equal(lens[0], leaf_der.len);
	assert_memory_equal(ders[0], leaf_der.buf, leaf_der.len);
	assert_int_equal(lens[1], ca_der.len);
	assert_memory_equal(ders[1], ca_der.buf, ca_der.len);

	/* our PEM reads back to the same bytes, and openssl accepts it */
	cw_buf pem = CW_BUF_INIT;
	cw_der_to_pem(ders[0], lens[0], &pem);
	char *p = path_in(f, "again.pem");
	tu_write(p, pem.buf);
	run_openssl((const char *[]){ "openssl", "x509", "-in", p, "-noout", NULL });
	free(p);
	unsigned char **again;
	size_t *again_lens, again_n;
	assert_int_equal(cw_pem_to_der_list(pem.buf, pem.len, &again, &again_lens, &again_n, &err),
			 0);
	assert_int_equal(again_n, 1);
	assert_memory_equal(again[0], leaf_der.buf, leaf_der.len);

	/* parse_any sniffs PEM and DER alike */
	cw_x509_info a, b;
	assert_int_equal(cw_x509_parse_any((unsigned char *)bundle.buf, bundle.len, &a, &err), 0);
	assert_int_equal(cw_x509_parse_any((unsigned char *)leaf_der.buf, leaf_der.len, &b, &err),
			 0);
	assert_string_equal(a.fingerprint, b.fingerprint);
	assert_string_equal(a.subject, "CN=vpn.example.net,O=Example,C=JP");
	cw_x509_info_release(&a);
	cw_x509_info_release(&b);

	for (size_t i = 0; i < n; i++)
		free(ders[i]);
	free(ders);
	free(lens);
	free(again[0]);
	free(again);
	free(again_lens);
	cw_buf_release(&pem);
	cw_buf_release(&bundle);
	cw_buf_release(&leaf_der);
	cw_buf_release(&ca_der);
}

static void test_pem_errors(void **state)
{
	(void)state;
	unsigned char **ders;
	size_t *lens, n;
	cw_error err = { 0 };
	const char *none = "hello, this is not PEM\n";
	assert_int_equal(cw_pem_to_der_list(none, strlen(none), &ders, &lens, &n, &err), -1);
	assert_string_equal(err.msg, "pem: no certificate found");
	cw_error_clear(&err);
	const char *bad = "-----BEGIN CERTIFICATE-----\nMIIB!!!notbase64\n-----END CERTIFICATE-----\n";
	assert_int_equal(cw_pem_to_der_list(bad, strlen(bad), &ders, &lens, &n, &err), -1);
	assert_int_not_equal(err.code, CW_OK);
	cw_error_clear(&err);
	const char *notcert = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
	assert_int_equal(cw_pem_to_der_list(notcert, strlen(notcert), &ders, &lens, &n, &err), -1);
	assert_non_null(strstr(err.msg, "pem: certificate 1:"));
	assert_null(ders);
	assert_int_equal(n, 0);
}

static void test_dn_equal(void **state)
{
	(void)state;
	assert_true(cw_dn_equal("CN=a,O=b,C=JP", "CN=a, O=b, C=JP"));
	assert_true(cw_dn_equal("cn=a,o=b", "CN=a,O=b"));
	assert_true(cw_dn_equal("/C=JP/O=b/CN=a", "CN=a,O=b,C=JP"));
	assert_true(cw_dn_equal("CN=a\\,b", "CN=a\\2Cb"));
	assert_true(cw_dn_equal("CN=a+UID=x,O=b", "UID=x+CN=a,O=b"));
	assert_true(cw_dn_equal("", "  "));
	assert_false(cw_dn_equal("CN=a,O=b", "CN=a,O=c"));
	assert_false(cw_dn_equal("CN=a,O=b", "O=b,CN=a"));   /* order is part of the name */
	assert_false(cw_dn_equal("CN=VPN", "CN=vpn"));       /* values are not case-folded */
	assert_false(cw_dn_equal("CN=a", "CN=a,O=b"));
	assert_false(cw_dn_equal("CN=a+UID=x", "CN=a,UID=x"));
	assert_false(cw_dn_equal("garbage", "CN=a"));
	assert_true(cw_dn_equal("garbage", "garbage"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rsa_ca),
		cmocka_unit_test(test_parse_ec_leaf_all_fields),
		cmocka_unit_test(test_parse_ed25519_p384_and_device),
		cmocka_unit_test(test_garbage_and_truncation_fail_cleanly),
		cmocka_unit_test(test_pem_bundle_and_round_trip),
		cmocka_unit_test(test_pem_errors),
		cmocka_unit_test(test_dn_equal),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
