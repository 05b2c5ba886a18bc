/*
 * policy — the rules of each profile (../shared/design/policies.md), written once
 * against a neutral view of a certificate so that the spec (before issuance) and an
 * issued certificate (what a CA really returned) are judged by the same code.
 *
 * Each rule reports "<profile>.<rule>" as its code and ends its message with that
 * id, so a reader can search the docs for it.
 */
#include "reconcile/policy.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "issuers/localca.h"

#define DAY 86400

const char *const cw_profile_names[] = {
	"ios", "public-tls", "private-ca", "expressway", "routeros-ipsec", NULL,
};

int cw_profile_known(const char *name)
{
	for (size_t i = 0; cw_profile_names[i]; i++)
		if (name && !strcmp(cw_profile_names[i], name))
			return 1;
	return 0;
}

/* The certificate as the rules see it. */
typedef struct {
	const char *name;
	const cw_srcpos *pos;
	cw_diags *diags;
	const char *profile;     /* of the rules running now */
	int issued;              /* 1: an issued certificate, 0: a spec */
	int is_ca;
	const char *subject;
	const cw_san *sans;
	size_t nsans;
	uint32_t usage;
	cw_key_type key;
	int key_bits;
	int64_t validity;        /* seconds the certificate is (or will be) valid */
	time_t issued_at;
	const char *sig_alg;     /* NULL for a spec: our CA never signs with a weak hash */
} cert_view;

static void report(const cert_view *v, cw_severity sev, const char *rule, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void report(const cert_view *v, cw_severity sev, const char *rule, const char *fmt, ...)
{
	char code[64];
	snprintf(code, sizeof(code), "%s.%s", v->profile, rule);
	cw_buf text = CW_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cw_buf_vaddf(&text, fmt, ap);
	va_end(ap);
	cw_diag *d = cw_diag_add(v->diags, sev, v->pos, code, NULL, "%s '%s': %s (%s)",
				 v->is_ca ? "authority" : "certificate", v->name, text.buf, code);
	d->certificate = cw_xstrdup(v->name);
	cw_buf_release(&text);
}

/* ------------------------------------------------------------------ helpers */

static int has_usage(const cert_view *v, uint32_t bits)
{
	return (v->usage & bits) == bits;
}

static int has_san(const cert_view *v, cw_san_type type)
{
	for (size_t i = 0; i < v->nsans; i++)
		if (v->sans[i].type == type)
			return 1;
	return 0;
}

static int is_ipv4_text(const char *s)
{
	return *s && strspn(s, "0123456789.") == strlen(s);
}

/* A CN a client would connect to: dotted LDH labels, not an address or a person. */
static int looks_like_host_name(const char *s)
{
	if (!strchr(s, '.') || *s == '.' || s[strlen(s) - 1] == '.' || strstr(s, "..") ||
	    is_ipv4_text(s))
		return 0;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-.*_", *p))
			return 0;
	return 1;
}

/* "*.example.net" covers "vpn.example.net", not "a.vpn.example.net" (RFC 6125 6.4.3). */
static int dns_covers(const char *san, const char *host)
{
	if (!strcasecmp(san, host))
		return 1;
	if (strncmp(san, "*.", 2) != 0)
		return 0;
	const char *dot = strchr(host, '.');
	return dot && dot != host && !strcasecmp(san + 1, dot);
}

static int dns_sans_cover(const cert_view *v, const char *host)
{
	for (size_t i = 0; i < v->nsans; i++)
		if (v->sans[i].type == CW_SAN_DNS && dns_covers(v->sans[i].value, host))
			return 1;
	return 0;
}

/* Calls fn for every CN of the subject; the inventory checks the DN syntax itself. */
static void for_each_cn(const cert_view *v, void (*fn)(const cert_view *, const char *, void *),
			void *ctx)
{
	cw_dn_part *parts;
	size_t n;
	if (!v->subject || cw_dn_split(v->subject, &parts, &n, NULL) != 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp(parts[i].attr, "CN"))
			fn(v, parts[i].value, ctx);
	cw_dn_parts_free(parts, n);
}

/* The whole notBefore..notAfter span counts (Apple's rule does); our CA keeps that span
 * equal to the lifetime asked for, backdating included. */
static int64_t counted_validity(const cert_view *v)
{
	return v->validity;
}

static void check_max_days(const cert_view *v, const char *rule, int days, const char *why)
{
	if (counted_validity(v) <= (int64_t)days * DAY)
		return;
	char have[32];
	cw_format_duration(v->validity, have);
	report(v, CW_SEV_ERROR, rule, "validity %s exceeds %d days%s", have, days, why);
}

/* Weak hashes by name: anything else (SHA-2, SHA-3, EdDSA, PSS) is strong enough. */
static int weak_signature(const char *sig_alg)
{
	static const char *const weak[] = { "md2", "md4", "md5", "sha1", "sha224", "ripemd",
					    "mdc2" };
	char lower[128];
	size_t i;
	for (i = 0; sig_alg[i] && i < sizeof(lower) - 1; i++)
		lower[i] = (char)tolower((unsigned char)sig_alg[i]);
	lower[i] = '\0';
	for (size_t w = 0; w < sizeof(weak) / sizeof(weak[0]); w++) {
		const char *hit = strstr(lower, weak[w]);
		/* "sha1" must not match inside a longer number such as "sha1024" */
		if (hit && !isdigit((unsigned char)hit[strlen(weak[w])]))
			return 1;
	}
	return 0;
}

static const char *key_name(const cert_view *v)
{
	return v->key != CW_KEY_NONE ? cw_key_type_name(v->key) : "an unknown key type";
}

/* ------------------------------------------------------------------ shared rules */

static void rule_rsa_min_2048(const cert_view *v, const char *rule)
{
	if (cw_key_type_is_rsa(v->key) && cw_key_type_bits(v->key) < 2048)
		report(v, CW_SEV_ERROR, rule, "%s is below the minimum rsa-2048", key_name(v));
}

static void rule_eku_server_auth(const cert_view *v, const char *rule)
{
	if (!v->is_ca && !has_usage(v, CW_EKU_SERVER_AUTH))
		report(v, CW_SEV_ERROR, rule, "usage lacks server-auth");
}

/* A CA must be able to sign certificates and CRLs. Our CA adds both bits to every
 * CA certificate, so for a spec they are implied; an issued one must show them. */
static void rule_ca_key_cert_sign(const cert_view *v, const char *rule)
{
	uint32_t usage = v->usage;
	if (!v->issued)
		usage |= CW_KU_KEY_CERT_SIGN | CW_KU_CRL_SIGN;
	if ((usage & (CW_KU_KEY_CERT_SIGN | CW_KU_CRL_SIGN)) != (CW_KU_KEY_CERT_SIGN | CW_KU_CRL_SIGN))
		report(v, CW_SEV_ERROR, rule, "a CA needs key usages key-cert-sign and crl-sign");
}

/* ------------------------------------------------------------------ ios */

static void cn_in_dns_sans(const cert_view *v, const char *cn, void *rule)
{
	if (looks_like_host_name(cn) && !dns_sans_cover(v, cn))
		report(v, CW_SEV_ERROR, rule, "host name '%s' in the CN is not among the DNS SANs",
		       cn);
}

static void check_ios(const cert_view *v)
{
	rule_rsa_min_2048(v, "rsa-min-2048");
	if (v->key == CW_KEY_ED25519)
		report(v, CW_SEV_WARNING, "key-type",
		       "apple devices do not accept ed25519 certificates for tls");
	if (v->sig_alg && weak_signature(v->sig_alg))
		report(v, CW_SEV_ERROR, "sha256", "signature %s is weaker than sha-256", v->sig_alg);
	if (v->is_ca)
		return; /* Apple's host name, EKU and lifetime rules are about the server's own */
	if (!has_san(v, CW_SAN_DNS))
		report(v, CW_SEV_ERROR, "san-dns-required",
		       "no DNS SAN: apple clients ignore the CN for host names");
	else
		for_each_cn(v, cn_in_dns_sans, "san-dns-required");
	rule_eku_server_auth(v, "eku-server-auth");
	check_max_days(v, "max-825d", 825, "");
}

/* ------------------------------------------------------------------ public-tls */

static time_t utc_midnight(int year, int month, int day)
{
	struct tm tm = { .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day };
	return timegm(&tm);
}

/* CA/Browser Forum ballot SC-081: the limit depends on when the certificate is issued. */
static void public_tls_limit(time_t issued_at, int *days, const char **since)
{
	static const struct {
		int y, m, d, days;
		const char *text;
	} steps[] = {
		{ 2029, 3, 15, 47, " for certificates issued from 2029-03-15" },
		{ 2027, 3, 15, 100, " for certificates issued from 2027-03-15" },
		{ 2026, 3, 15, 200, " for certificates issued from 2026-03-15" },
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (issued_at >= utc_midnight(steps[i].y, steps[i].m, steps[i].d)) {
			*days = steps[i].days;
			*since = steps[i].text;
			return;
		}
	}
	*days = 398; /* the limit since 2020-09-01 */
	*since = "";
}

static void cn_in_any_san(const cert_view *v, const char *cn, void *rule)
{
	for (size_t i = 0; i < v->nsans; i++) {
		const cw_san *s = &v->sans[i];
		if ((s->type == CW_SAN_DNS && dns_covers(s->value, cn)) ||
		    (s->type == CW_SAN_IP && !strcasecmp(s->value, cn)))
			return;
	}
	report(v, CW_SEV_ERROR, rule, "CN '%s' is not among the SANs", cn);
}

static void check_public_tls(const cert_view *v)
{
	if (cw_key_type_is_rsa(v->key) && cw_key_type_bits(v->key) < 2048)
		report(v, CW_SEV_ERROR, "key-type", "%s is below the minimum rsa-2048", key_name(v));
	if (v->key == CW_KEY_ED25519)
		report(v, CW_SEV_ERROR, "key-type", "publicly trusted CAs do not issue for ed25519");
	if (v->is_ca)
		return;
	int days;
	const char *since;
	public_tls_limit(v->issued_at, &days, &since);
	check_max_days(v, "max-validity", days, since);
	if (!has_san(v, CW_SAN_DNS) && !has_san(v, CW_SAN_IP))
		report(v, CW_SEV_ERROR, "san-required", "no DNS or IP SAN");
	else
		for_each_cn(v, cn_in_any_san, "cn-in-san");
	rule_eku_server_auth(v, "eku-server-auth");
}

/* ------------------------------------------------------------------ private-ca */

static void ca_name_not_host(const cert_view *v, const char *cn, void *rule)
{
	if (looks_like_host_name(cn))
		report(v, CW_SEV_WARNING, rule,
		       "CN '%s' looks like a server host name; a CA's name should say it is a CA",
		       cn);
}

static void check_private_ca(const cert_view *v)
{
	if (v->is_ca) {
		rule_ca_key_cert_sign(v, "ca-key-cert-sign");
		rule_rsa_min_2048(v, "ca-key-strength");
		if (v->key == CW_KEY_ED25519)
			report(v, CW_SEV_WARNING, "ca-key-type",
			       "many clients (windows, apple) cannot validate an ed25519 CA; use "
			       "rsa-2048+ or ecdsa");
		for_each_cn(v, ca_name_not_host, "ca-name-not-host");
		return;
	}
	check_max_days(v, "max-825d", 825, "");
	if (v->nsans == 0)
		report(v, CW_SEV_ERROR, "san-required", "no SAN: clients match names against SANs");
}

/* ------------------------------------------------------------------ expressway */

static int has_wildcard(const cert_view *v)
{
	for (size_t i = 0; i < v->nsans; i++)
		if (v->sans[i].type == CW_SAN_DNS && strchr(v->sans[i].value, '*'))
			return 1;
	return v->subject && strchr(v->subject, '*') != NULL;
}

static void expressway_key_type(const cert_view *v)
{
	switch (v->key) {
	case CW_KEY_RSA2048:
	case CW_KEY_RSA4096:
	case CW_KEY_EC_P256:
	case CW_KEY_EC_P384:
		return;
	case CW_KEY_RSA3072:
		report(v, CW_SEV_WARNING, "key-type",
		       "rsa-3072 is not among the sizes cisco lists (rsa-2048, rsa-4096)");
		return;
	case CW_KEY_NONE:
		/* e.g. P-521, which Expressway accepts but we do not name; the guide rules out
		 * 8192-bit RSA explicitly */
		if (v->issued && v->key_bits <= 4096)
			return;
		if (v->issued) {
			report(v, CW_SEV_ERROR, "key-type", "a %d-bit key is not accepted",
			       v->key_bits);
			return;
		}
		/* fall through */
	default:
		report(v, CW_SEV_ERROR, "key-type",
		       "%s is not accepted (rsa-2048, rsa-4096, ecdsa-p256, ecdsa-p384)",
		       key_name(v));
	}
}

static void check_expressway(const cert_view *v)
{
	if (v->is_ca)
		return;
	if (has_wildcard(v))
		report(v, CW_SEV_ERROR, "no-wildcard", "wildcard names are not accepted");
	if (has_san(v, CW_SAN_IP))
		report(v, CW_SEV_WARNING, "ip-san", "IP SANs are advised against by cisco");
	expressway_key_type(v);
	rule_eku_server_auth(v, "eku-server-auth");
}

/* ------------------------------------------------------------------ routeros-ipsec */

static void check_routeros_ipsec(const cert_view *v)
{
	if (v->is_ca) {
		rule_ca_key_cert_sign(v, "ca-key-cert-sign");
		return;
	}
	if (has_usage(v, CW_EKU_SERVER_AUTH)) {
		if (!has_san(v, CW_SAN_DNS))
			report(v, CW_SEV_ERROR, "server-san-dns",
			       "an IKEv2 server certificate needs a DNS SAN with the router's name");
		if (!has_usage(v, CW_KU_DIGITAL_SIGNATURE | CW_KU_KEY_ENCIPHERMENT))
			report(v, CW_SEV_ERROR, "server-key-usage",
			       "an IKEv2 server certificate needs digital-signature and "
			       "key-encipherment");
	}
	if (has_usage(v, CW_EKU_CLIENT_AUTH) && !has_san(v, CW_SAN_EMAIL))
		report(v, CW_SEV_ERROR, "client-san-email",
		       "an IKEv2 client certificate needs an email SAN with the user's identity");
}

/* ------------------------------------------------------------------ driver */

static const struct {
	const char *name;
	void (*check)(const cert_view *);
} profiles[] = {
	{ "ios", check_ios },
	{ "public-tls", check_public_tls },
	{ "private-ca", check_private_ca },
	{ "expressway", check_expressway },
	{ "routeros-ipsec", check_routeros_ipsec },
};

/* RSA-1024 is weak whatever the profile: an error once a profile is chosen, and a
 * warning without one (a lab may still need it for an old device). */
static void check_global(cert_view *v, size_t nprofiles)
{
	v->profile = "key";
	if (v->key == CW_KEY_RSA1024)
		report(v, nprofiles ? CW_SEV_ERROR : CW_SEV_WARNING, "rsa-1024-weak",
		       "rsa-1024 keys are breakable; use rsa-2048 or ecdsa");
}

static void run_profiles(cert_view *v, const char *const *names, size_t n)
{
	check_global(v, n);
	for (size_t i = 0; i < n; i++) {
		for (size_t p = 0; p < sizeof(profiles) / sizeof(profiles[0]); p++) {
			if (names[i] && !strcmp(names[i], profiles[p].name)) {
				v->profile = profiles[p].name;
				profiles[p].check(v);
			}
		}
	}
}

void cw_policy_check_spec(const char *const *profile_list, size_t nprofiles, const cw_cert_spec *spec,
			  const char *name, const cw_srcpos *pos, time_t issued_at, cw_diags *diags)
{
	cert_view v = {
		.name = name, .pos = pos, .diags = diags, .issued = 0, .is_ca = spec->is_ca,
		.subject = spec->subject, .sans = spec->sans, .nsans = spec->nsans,
		.usage = spec->usage, .key = spec->key, .key_bits = cw_key_type_bits(spec->key),
		.validity = spec->lifetime, .issued_at = issued_at, .sig_alg = NULL,
	};
	if (spec->is_ca) /* what our CA adds to every CA certificate */
		v.usage |= CW_KU_KEY_CERT_SIGN | CW_KU_CRL_SIGN | CW_KU_DIGITAL_SIGNATURE;
	run_profiles(&v, profile_list, nprofiles);
}

void cw_policy_check_issued(const char *const *profile_list, size_t nprofiles,
			    const cw_x509_info *info, const char *name, const cw_srcpos *pos,
			    cw_diags *diags)
{
	cert_view v = {
		.name = name, .pos = pos, .diags = diags, .issued = 1, .is_ca = info->is_ca,
		.subject = info->subject, .sans = info->sans, .nsans = info->nsans,
		.usage = info->usage, .key = info->key, .key_bits = info->key_bits,
		.validity = (int64_t)info->not_after - (int64_t)info->not_before,
		.issued_at = info->not_before, .sig_alg = info->sig_alg,
	};
	run_profiles(&v, profile_list, nprofiles);
}
