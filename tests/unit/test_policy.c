/* test_policy — one table row per rule (and per boundary): a tweak of a clean server
 * spec, the profile, and whether the rule id must appear and with which severity. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "common/util.h"
#include "issuers/localca.h"
#include "reconcile/policy.h"
#include "reconcile/x509.h"

#define DAY 86400

typedef struct {
	const char *profile;     /* NULL: no profile */
	cw_key_type key;         /* CW_KEY_NONE: keep ecdsa-p256 */
	int lifetime_days;       /* 0: keep 90 */
	uint32_t usage;          /* 0: keep digital-signature,key-encipherment,server-auth; U(x): x */
	const char *subject;     /* NULL: keep "CN=vpn.example.net" */
	const char *sans;        /* NULL: keep "DNS:vpn.example.net"; "": none */
	int is_ca;
	const char *issued_at;   /* NULL: 2025-06-01 */
	const char *rule;
	int present;
	cw_severity sev;
} policy_case;

static const uint32_t base_usage =
	CW_KU_DIGITAL_SIGNATURE | CW_KU_KEY_ENCIPHERMENT | CW_EKU_SERVER_AUTH;
#define U(x) ((x) | 0x80000000u) /* an explicit usage set in the table (bit 31 marks it) */

static const policy_case cases[] = {
	/* global */
	{ NULL, CW_KEY_RSA1024, 0, 0, NULL, NULL, 0, NULL, "key.rsa-1024-weak", 1, CW_SEV_WARNING },
	{ "expressway", CW_KEY_RSA1024, 0, 0, NULL, NULL, 0, NULL, "key.rsa-1024-weak", 1, CW_SEV_ERROR },
	{ NULL, CW_KEY_RSA2048, 0, 0, NULL, NULL, 0, NULL, "key.rsa-1024-weak", 0, 0 },
	/* ios */
	{ "ios", CW_KEY_RSA1024, 0, 0, NULL, NULL, 0, NULL, "ios.rsa-min-2048", 1, CW_SEV_ERROR },
	{ "ios", CW_KEY_RSA1024, 0, 0, NULL, NULL, 0, NULL, "key.rsa-1024-weak", 1, CW_SEV_ERROR },
	{ "ios", CW_KEY_RSA2048, 0, 0, NULL, NULL, 0, NULL, "ios.rsa-min-2048", 0, 0 },
	{ "ios", CW_KEY_ED25519, 0, 0, NULL, NULL, 0, NULL, "ios.key-type", 1, CW_SEV_WARNING },
	{ "ios", 0, 0, 0, NULL, "", 0, NULL, "ios.san-dns-required", 1, CW_SEV_ERROR },
	{ "ios", 0, 0, 0, NULL, "IP:192.0.2.1", 0, NULL, "ios.san-dns-required", 1, CW_SEV_ERROR },
	{ "ios", 0, 0, 0, NULL, "DNS:other.example.net", 0, NULL, "ios.san-dns-required", 1, CW_SEV_ERROR },
	{ "ios", 0, 0, 0, NULL, "DNS:*.example.net", 0, NULL, "ios.san-dns-required", 0, 0 },
	{ "ios", 0, 0, 0, "CN=Home VPN,O=Example", "DNS:vpn.example.net", 0, NULL, "ios.san-dns-required", 0, 0 },
	{ "ios", 0, 0, 0, "CN=Home Root", "", 1, NULL, "ios.san-dns-required", 0, 0 },
	{ "ios", 0, 0, U(CW_KU_DIGITAL_SIGNATURE), NULL, NULL, 0, NULL, "ios.eku-server-auth", 1, CW_SEV_ERROR },
	{ "ios", 0, 0, 0, NULL, NULL, 0, NULL, "ios.eku-server-auth", 0, 0 },
	{ "ios", 0, 825, 0, NULL, NULL, 0, NULL, "ios.max-825d", 0, 0 },
	{ "ios", 0, 826, 0, NULL, NULL, 0, NULL, "ios.max-825d", 1, CW_SEV_ERROR },
	{ "ios", 0, 3650, 0, "CN=Home Root", "", 1, NULL, "ios.max-825d", 0, 0 },
	/* public-tls: 398 days until 2026-03-15, then 200, 100, 47 */
	{ "public-tls", 0, 398, 0, NULL, NULL, 0, "2026-03-14T23:59:59Z", "public-tls.max-validity", 0, 0 },
	{ "public-tls", 0, 399, 0, NULL, NULL, 0, "2026-03-14T23:59:59Z", "public-tls.max-validity", 1, CW_SEV_ERROR },
	{ "public-tls", 0, 201, 0, NULL, NULL, 0, "2026-03-14", "public-tls.max-validity", 0, 0 },
	{ "public-tls", 0, 201, 0, NULL, NULL, 0, "2026-03-15", "public-tls.max-validity", 1, CW_SEV_ERROR },
	{ "public-tls", 0, 200, 0, NULL, NULL, 0, "2026-03-15", "public-tls.max-validity", 0, 0 },
	{ "public-tls", 0, 101, 0, NULL, NULL, 0, "2027-03-14", "public-tls.max-validity", 0, 0 },
	{ "public-tls", 0, 101, 0, NULL, NULL, 0, "2027-03-15", "public-tls.max-validity", 1, CW_SEV_ERROR },
	{ "public-tls", 0, 100, 0, NULL, NULL, 0, "2027-03-15", "public-tls.max-validity", 0, 0 },
	{ "public-tls", 0, 48, 0, NULL, NULL, 0, "2029-03-14", "public-tls.max-validity", 0, 0 },
	{ "public-tls", 0, 48, 0, NULL, NULL, 0, "2029-03-15", "public-tls.max-validity", 1, CW_SEV_ERROR },
	{ "public-tls", 0, 47, 0, NULL, NULL, 0, "2029-03-15", "public-tls.max-validity", 0, 0 },
	{ "public-tls", 0, 0, 0, NULL, "", 0, NULL, "public-tls.san-required", 1, CW_SEV_ERROR },
	{ "public-tls", 0, 0, 0, NULL, "DNS:www.example.net", 0, NULL, "public-tls.cn-in-san", 1, CW_SEV_ERROR },
	{ "public-tls", 0, 0, 0, "CN=192.0.2.9", "IP:192.0.2.9", 0, NULL, "public-tls.cn-in-san", 0, 0 },
	{ "public-tls", 0, 0, U(CW_KU_DIGITAL_SIGNATURE | CW_EKU_CLIENT_AUTH), NULL, NULL, 0, NULL, "public-tls.eku-server-auth", 1, CW_SEV_ERROR },
	{ "public-tls", CW_KEY_ED25519, 0, 0, NULL, NULL, 0, NULL, "public-tls.key-type", 1, CW_SEV_ERROR },
	{ "public-tls", CW_KEY_EC_P384, 0, 0, NULL, NULL, 0, NULL, "public-tls.key-type", 0, 0 },
	/* private-ca */
	{ "private-ca", 0, 825, 0, NULL, NULL, 0, NULL, "private-ca.max-825d", 0, 0 },
	{ "private-ca", 0, 826, 0, NULL, NULL, 0, NULL, "private-ca.max-825d", 1, CW_SEV_ERROR },
	{ "private-ca", 0, 0, 0, NULL, "", 0, NULL, "private-ca.san-required", 1, CW_SEV_ERROR },
	{ "private-ca", 0, 0, 0, "CN=user1", "email:user1@example.net", 0, NULL, "private-ca.san-required", 0, 0 },
	{ "private-ca", CW_KEY_RSA1024, 3650, 0, "CN=Home Root", "", 1, NULL, "private-ca.ca-key-strength", 1, CW_SEV_ERROR },
	{ "private-ca", CW_KEY_RSA2048, 3650, 0, "CN=Home Root", "", 1, NULL, "private-ca.ca-key-strength", 0, 0 },
	{ "private-ca", CW_KEY_ED25519, 3650, 0, "CN=Home Root", "", 1, NULL, "private-ca.ca-key-type", 1, CW_SEV_WARNING },
	{ "private-ca", 0, 3650, 0, "CN=vpn.example.net", "", 1, NULL, "private-ca.ca-name-not-host", 1, CW_SEV_WARNING },
	{ "private-ca", 0, 3650, 0, "CN=Home VPN Root CA,C=JP", "", 1, NULL, "private-ca.ca-name-not-host", 0, 0 },
	{ "private-ca", 0, 3650, U(0), "CN=Home Root", "", 1, NULL, "private-ca.ca-key-cert-sign", 0, 0 },
	{ "private-ca", 0, 3650, 0, "CN=Home Root", "", 1, NULL, "private-ca.max-825d", 0, 0 },
	/* expressway */
	{ "expressway", 0, 0, 0, NULL, "DNS:vpn.example.net,DNS:*.example.net", 0, NULL, "expressway.no-wildcard", 1, CW_SEV_ERROR },
	{ "expressway", 0, 0, 0, "CN=*.example.net", "DNS:vpn.example.net", 0, NULL, "expressway.no-wildcard", 1, CW_SEV_ERROR },
	{ "expressway", 0, 0, 0, NULL, NULL, 0, NULL, "expressway.no-wildcard", 0, 0 },
	{ "expressway", 0, 0, 0, NULL, "DNS:vpn.example.net,IP:192.0.2.1", 0, NULL, "expressway.ip-san", 1, CW_SEV_WARNING },
	{ "expressway", CW_KEY_RSA3072, 0, 0, NULL, NULL, 0, NULL, "expressway.key-type", 1, CW_SEV_WARNING },
	{ "expressway", CW_KEY_RSA1024, 0, 0, NULL, NULL, 0, NULL, "expressway.key-type", 1, CW_SEV_ERROR },
	{ "expressway", CW_KEY_ED25519, 0, 0, NULL, NULL, 0, NULL, "expressway.key-type", 1, CW_SEV_ERROR },
	{ "expressway", CW_KEY_RSA4096, 0, 0, NULL, NULL, 0, NULL, "expressway.key-type", 0, 0 },
	{ "expressway", CW_KEY_EC_P384, 0, 0, NULL, NULL, 0, NULL, "expressway.key-type", 0, 0 },
	{ "expressway", 0, 0, U(CW_KU_DIGITAL_SIGNATURE | CW_EKU_CLIENT_AUTH), NULL, NULL, 0, NULL, "expressway.eku-server-auth", 1, CW_SEV_ERROR },
	/* routeros-ipsec */
	{ "routeros-ipsec", 0, 0, 0, NULL, "email:vpn@example.net", 0, NULL, "routeros-ipsec.server-san-dns", 1, CW_SEV_ERROR },
	{ "routeros-ipsec", 0, 0, 0, NULL, NULL, 0, NULL, "routeros-ipsec.server-san-dns", 0, 0 },
	{ "routeros-ipsec", 0, 0, U(CW_KU_DIGITAL_SIGNATURE | CW_EKU_SERVER_AUTH), NULL, NULL, 0, NULL, "routeros-ipsec.server-key-usage", 1, CW_SEV_ERROR },
	{ "routeros-ipsec", 0, 0, U(CW_KU_KEY_ENCIPHERMENT | CW_EKU_SERVER_AUTH), NULL, NULL, 0, NULL, "routeros-ipsec.server-key-usage", 1, CW_SEV_ERROR },
	{ "routeros-ipsec", 0, 0, U(CW_KU_DIGITAL_SIGNATURE | CW_EKU_CLIENT_AUTH), "CN=user1", "DNS:user1.example.net", 0, NULL, "routeros-ipsec.client-san-email", 1, CW_SEV_ERROR },
	{ "routeros-ipsec", 0, 0, U(CW_KU_DIGITAL_SIGNATURE | CW_EKU_CLIENT_AUTH), "CN=user1", "email:user1@example.net", 0, NULL, "routeros-ipsec.client-san-email", 0, 0 },
	{ "routeros-ipsec", 0, 0, U(CW_KU_DIGITAL_SIGNATURE | CW_EKU_CLIENT_AUTH), "CN=user1", "email:user1@example.net", 0, NULL, "routeros-ipsec.server-san-dns", 0, 0 },
	{ "routeros-ipsec", 0, 3650, U(0), "CN=Home Root", "", 1, NULL, "routeros-ipsec.ca-key-cert-sign", 0, 0 },
};

/* "DNS:a,IP:b" into SANs (values point into a copy the caller frees). */
static size_t parse_sans(const char *text, char **copy, cw_san *out, size_t cap)
{
	*copy = cw_xstrdup(text);
	size_t n = 0;
	for (char *tok = strtok(*copy, ","); tok && n < cap; tok = strtok(NULL, ",")) {
		char *colon = strchr(tok, ':');
		assert_non_null(colon);
		*colon = '\0';
		out[n].type = !strcmp(tok, "DNS") ? CW_SAN_DNS : !strcmp(tok, "IP") ? CW_SAN_IP
								: !strcmp(tok, "email") ? CW_SAN_EMAIL
								: CW_SAN_URI;
		out[n++].value = colon + 1;
	}
	return n;
}

static const cw_diag *find_rule(const cw_diags *d, const char *rule)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->items[i].code, rule))
			return &d->items[i];
	return NULL;
}

static time_t at(const char *text)
{
	time_t t;
	assert_int_equal(cw_parse_time(text, 0, &t), 0);
	return t;
}

static void run_case(const policy_case *c, cw_diags *diags)
{
	cw_san sans[8];
	char *copy;
	cw_cert_spec spec;
	memset(&spec, 0, sizeof(spec));
	spec.subject = (char *)(c->subject ? c->subject : "CN=vpn.example.net");
	spec.nsans = parse_sans(c->sans ? c->sans : "DNS:vpn.example.net", &copy, sans, 8);
	spec.sans = sans;
	spec.usage = c->usage & 0x80000000u ? c->usage & ~0x80000000u : base_usage;
	spec.key = c->key != CW_KEY_NONE ? c->key : CW_KEY_EC_P256;
	spec.lifetime = (int64_t)(c->lifetime_days ? c->lifetime_days : 90) * DAY;
	spec.is_ca = c->is_ca;
	spec.path_len = -1;
	const char *profiles[1] = { c->profile };
	cw_srcpos pos = { "inventory/certs.yaml", 12, 5 };
	cw_policy_check_spec(profiles, c->profile ? 1 : 0, &spec, "vpn", &pos,
			     at(c->issued_at ? c->issued_at : "2025-06-01"), diags);
	free(copy);
}

static void test_rule_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const policy_case *c = &cases[i];
		cw_diags diags;
		cw_diags_init(&diags);
		run_case(c, &diags);
		const cw_diag *d = find_rule(&diags, c->rule);
		if (c->present && !d)
			fail_msg("row %zu: %s missing under %s", i, c->rule, c->profile);
		if (!c->present && d)
			fail_msg("row %zu: unexpected %s: %s", i, c->rule, d->message);
		if (d) {
			assert_int_equal(d->severity, c->sev);
			assert_string_equal(d->certificate, "vpn");
			assert_string_equal(d->file, "inventory/certs.yaml");
			assert_int_equal(d->line, 12);
			/* the message names the object first and ends with the rule id */
			const char *lead = c->is_ca ? "authority 'vpn': " : "certificate 'vpn': ";
			assert_int_equal(strncmp(d->message, lead, strlen(lead)), 0);
			char tail[80];
			snprintf(tail, sizeof(tail), "(%s)", c->rule);
			size_t ml = strlen(d->message), tl = strlen(tail);
			assert_true(ml > tl && !strcmp(d->message + ml - tl, tail));
		}
		cw_diags_release(&diags);
	}
}

/* The clean server spec passes every profile: rules only fire on real problems. */
static void test_clean_spec_passes_every_profile(void **state)
{
	(void)state;
	for (size_t p = 0; cw_profile_names[p]; p++) {
		policy_case c = { cw_profile_names[p], 0, 0, 0, NULL, NULL, 0, NULL, "", 0, 0 };
		cw_diags diags;
		cw_diags_init(&diags);
		run_case(&c, &diags);
		if (diags.n)
			fail_msg("%s: %s", cw_profile_names[p], diags.items[0].message);
		cw_diags_release(&diags);
	}
	assert_true(cw_profile_known("routeros-ipsec"));
	assert_false(cw_profile_known("ios2"));
	assert_false(cw_profile_known(NULL));
}

static void test_message_wording(void **state)
{
	(void)state;
	policy_case c = { "ios", 0, 900, 0, NULL, NULL, 0, NULL, "", 0, 0 };
	cw_diags diags;
	cw_diags_init(&diags);
	run_case(&c, &diags);
	const cw_diag *d = find_rule(&diags, "ios.max-825d");
	assert_non_null(d);
	assert_string_equal(d->message, "certificate 'vpn': validity 900d exceeds 825 days (ios.max-825d)");
	cw_diags_release(&diags);

	policy_case t = { "public-tls", 0, 250, 0, NULL, NULL, 0, "2026-04-01", "", 0, 0 };
	cw_diags_init(&diags);
	run_case(&t, &diags);
	d = find_rule(&diags, "public-tls.max-validity");
	assert_non_null(d);
	assert_string_equal(d->message,
			    "certificate 'vpn': validity 250d exceeds 200 days for certificates "
			    "issued from 2026-03-15 (public-tls.max-validity)");
	cw_diags_release(&diags);
}

/* ------------------------------------------------------------------ issued */

static cw_x509_info issued_info(const char *sig_alg, int64_t validity, const char *not_before)
{
	static cw_san san = { CW_SAN_DNS, "vpn.example.net" };
	cw_x509_info info;
	memset(&info, 0, sizeof(info));
	info.subject = "CN=vpn.example.net";
	info.sans = &san;
	info.nsans = 1;
	info.usage = base_usage;
	info.key = CW_KEY_EC_P256;
	info.key_bits = 256;
	info.sig_alg = (char *)sig_alg;
	info.not_before = at(not_before ? not_before : "2025-06-01");
	info.not_after = info.not_before + (time_t)validity;
	info.path_len = -1;
	return info;
}

static int fires(const char *profile, const cw_x509_info *info, const char *rule)
{
	cw_diags diags;
	cw_diags_init(&diags);
	const char *profiles[1] = { profile };
	cw_policy_check_issued(profiles, 1, info, "vpn", NULL, &diags);
	int hit = find_rule(&diags, rule) != NULL;
	cw_diags_release(&diags);
	return hit;
}

static void test_issued_signature_and_dates(void **state)
{
	(void)state;
	static const struct {
		const char *alg;
		int weak;
	} algs[] = {
		{ "sha1WithRSAEncryption", 1 }, { "ecdsa-with-SHA1", 1 },  { "md5WithRSAEncryption", 1 },
		{ "ecdsa-with-SHA224", 1 },	{ "sha256WithRSAEncryption", 0 },
		{ "ecdsa-with-SHA384", 0 },	{ "ED25519", 0 },	   { "rsassaPss", 0 },
	};
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		cw_x509_info info = issued_info(algs[i].alg, 90L * DAY, NULL);
		if (fires("ios", &info, "ios.sha256") != algs[i].weak)
			fail_msg("%s: ios.sha256 expected %d", algs[i].alg, algs[i].weak);
	}
	/* the whole span counts, as Apple counts it: 825 days pass, one more second fails */
	cw_x509_info ok = issued_info("ecdsa-with-SHA256", 825L * DAY, NULL);
	assert_false(fires("ios", &ok, "ios.max-825d"));
	cw_x509_info over = issued_info("ecdsa-with-SHA256", 825L * DAY + 1, NULL);
	assert_true(fires("ios", &over, "ios.max-825d"));
	/* public-tls uses notBefore as the issuance date */
	cw_x509_info before = issued_info("ecdsa-with-SHA256", 201L * DAY, "2026-03-14T23:59:59Z");
	assert_false(fires("public-tls", &before, "public-tls.max-validity"));
	cw_x509_info after = issued_info("ecdsa-with-SHA256", 201L * DAY, "2026-03-15T00:00:00Z");
	assert_true(fires("public-tls", &after, "public-tls.max-validity"));
	/* expressway: RSA-8192 is not one of our key types, but the rule still sees its size */
	cw_x509_info big = issued_info("sha256WithRSAEncryption", 90L * DAY, NULL);
	big.key = CW_KEY_NONE;
	big.key_bits = 8192;
	assert_true(fires("expressway", &big, "expressway.key-type"));
	big.key_bits = 521; /* P-521 is accepted by the box */
	assert_false(fires("expressway", &big, "expressway.key-type"));
}

static void test_issued_ca_usage(void **state)
{
	(void)state;
	cw_x509_info ca = issued_info("ecdsa-with-SHA256", 3650L * DAY, NULL);
	ca.subject = "CN=Home Root";
	ca.nsans = 0;
	ca.is_ca = 1;
	ca.usage = CW_KU_KEY_CERT_SIGN; /* no crl-sign: a foreign CA's certificate */
	assert_true(fires("private-ca", &ca, "private-ca.ca-key-cert-sign"));
	assert_true(fires("routeros-ipsec", &ca, "routeros-ipsec.ca-key-cert-sign"));
	ca.usage = CW_KU_KEY_CERT_SIGN | CW_KU_CRL_SIGN;
	assert_false(fires("private-ca", &ca, "private-ca.ca-key-cert-sign"));
	assert_false(fires("routeros-ipsec", &ca, "routeros-ipsec.ca-key-cert-sign"));
}

/* A certificate from our own CA, read back by the parser, passes the profile its
 * spec passed: spec and issued checks agree. */
static void test_issued_by_localca_agrees_with_spec(void **state)
{
	(void)state;
	time_t now = at("2026-06-01");
	cw_error err = { 0 };
	EVP_PKEY *ca_key = NULL, *key = NULL;
	assert_int_equal(cw_key_generate(&ca_key, CW_KEY_EC_P256, &err), 0);
	assert_int_equal(cw_key_generate(&key, CW_KEY_RSA2048, &err), 0);
	cw_cert_spec ca_spec = { .subject = "CN=Home VPN Root CA,C=JP", .key = CW_KEY_EC_P256,
				 .lifetime = 3650L * DAY, .is_ca = 1, .path_len = -1 };
	X509 *ca = NULL, *leaf = NULL;
	assert_int_equal(cw_ca_sign(&ca, &ca_spec, ca_key, NULL, NULL, now, &err), 0);
	cw_san san = { CW_SAN_DNS, "vpn.example.net" };
	cw_cert_spec spec = { .subject = "CN=vpn.example.net", .sans = &san, .nsans = 1,
			      .usage = base_usage | CW_EKU_IKE_INTERMEDIATE, .key = CW_KEY_RSA2048,
			      .lifetime = 825L * DAY, .path_len = -1 };
	assert_int_equal(cw_ca_sign(&leaf, &spec, key, ca, ca_key, now, &err), 0);
	unsigned char *der;
	size_t len;
	assert_int_equal(cw_x509_to_der(leaf, &der, &len, &err), 0);
	cw_x509_info info;
	assert_int_equal(cw_x509_parse(der, len, &info, &err), 0);

	const char *profiles[] = { "ios", "private-ca", "routeros-ipsec" };
	cw_diags a, b;
	cw_diags_init(&a);
	cw_diags_init(&b);
	cw_policy_check_spec(profiles, 3, &spec, "vpn", NULL, now, &a);
	cw_policy_check_issued(profiles, 3, &info, "vpn", NULL, &b);
	assert_int_equal(a.n, 0);
	assert_int_equal(b.n, 0);
	/* and a public-tls lint of the same certificate trips the 200-day limit both ways */
	const char *pub[] = { "public-tls" };
	cw_policy_check_spec(pub, 1, &spec, "vpn", NULL, now, &a);
	cw_policy_check_issued(pub, 1, &info, "vpn", NULL, &b);
	assert_non_null(find_rule(&a, "public-tls.max-validity"));
	assert_non_null(find_rule(&b, "public-tls.max-validity"));
	cw_diags_release(&a);
	cw_diags_release(&b);
	cw_x509_info_release(&info);
	free(der);
	X509_free(leaf);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_table),
		cmocka_unit_test(test_clean_spec_passes_every_profile),
		cmocka_unit_test(test_message_wording),
		cmocka_unit_test(test_issued_signature_and_dates),
		cmocka_unit_test(test_issued_ca_usage),
		cmocka_unit_test(test_issued_by_localca_agrees_with_spec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
