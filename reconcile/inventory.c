/*
 * inventory — YAML files -> validated model. See inventory.h.
 *
 * Three passes, each reporting every problem it finds before the next runs:
 *   1. parse each file into a node tree (common/node.c: syntax, duplicate keys) and
 *      collect the top-level sections, checking names and their uniqueness across files;
 *   2. type each entry (defaults first, since entries fall back on them);
 *   3. cross-entry checks: references, authority chains, deployments against their
 *      target types, policy profiles.
 * Loading goes on after an error so one run shows them all; the return value says
 * whether there were any, and an inventory with errors must never be acted on.
 *
 * ---- Schema (every key; the README is written from this block) ----
 *
 * version: 1                 required in at least one file; only 1 is known
 * report:                    at most one file
 *   path: certwright-state   folder in the repository for the state report; relative,
 *                            no "..", ".", ".git" or empty parts (the report owns it)
 * defaults:                  at most one file; apply to certificates, while authorities
 *                            take only key and renew_before from here
 *   issuer: NAME             default issuer of certificates
 *   key: ecdsa-p256          default ecdsa-p256
 *   lifetime: 90d            default 90d
 *   renew_before: 33%        "NN%" (1..99: share of the lifetime left) or a duration
 *   profile: [ios]           string or list; default none
 *   usage: [...]             default: digital-signature, server-auth (+ key-encipherment
 *                            for RSA keys)
 * authorities:               map NAME -> settings
 *   NAME:
 *     type: local            "local" (default); "acme" is not supported yet
 *     subject: "CN=..,C=JP"  required
 *     parent: NAME           issuing authority: makes this an intermediate
 *     key: rsa-2048          default defaults.key, else ecdsa-p256
 *     lifetime: 3650d        default 3650d for a root, 1825d for an intermediate
 *     renew_before: 33%      default defaults.renew_before, else 33%
 *     path_len: 0            optional integer >= 0
 *     profile: private-ca    string or list
 *     crl:                   optional: the authority publishes a CRL ("crl: {}" or an
 *                            empty crl: takes the defaults)
 *       lifetime: 7d         default 7d
 *       url: http://..       optional http(s):// or ldap:// URL, written into the
 *                            certificates this authority issues
 *       renew_before: 33%    reissue the CRL this long before its nextUpdate (default 33%)
 *     on_remove: revoke      revoke (default) | forget: what happens to the certificates
 *                            of an entry that leaves the inventory
 *     revoke_superseded: false  default for its certificates (see below)
 *     expiry_warning: 180d   the plan warns this long before the authority expires
 * certificates:              map NAME -> settings
 *   NAME:
 *     issuer: NAME           an authority; required unless defaults.issuer
 *     subject: "CN=.."       default "CN=<first DNS SAN>", else "CN=<first email SAN>"
 *     sans: ["DNS:a.example", "IP:192.0.2.1", "email:u@example.net", "URI:https://x"]
 *                            type prefix in any case; DNS = LDH labels (a leading "*."
 *                            allowed), IP = IPv4/IPv6, email = local@domain, URI = scheme:..
 *     usage: [...]           digital-signature, non-repudiation, key-encipherment,
 *                            data-encipherment, key-agreement, key-cert-sign, crl-sign,
 *                            server-auth, client-auth, code-signing, email-protection,
 *                            time-stamping, ocsp-signing, ipsec-ike, ike-intermediate
 *     key: rsa-2048          rsa-1024 (warned: too weak), rsa-2048, rsa-3072, rsa-4096,
 *                            ecdsa-p256, ecdsa-p384, ed25519
 *     lifetime: 730d         durations: 90d, 12h, 30m, 45s, 2w, combined 1d12h
 *     renew_before: 30d
 *     profile: ios           string or list of policy profiles
 *     deploy:                list of maps
 *       - target: NAME       required, a target
 *         bind: [www-ssl]    optional list of device services (types that can bind)
 *     revoked: {reason: key-compromise}   declarative, final revocation (RFC 5280
 *                            reason names; "revoked:" alone = unspecified)
 *     revoke_superseded: true   revoke what a renewal replaced once the new one is live
 *                            (default: the authority's revoke_superseded, else false)
 *     export: {path: /srv/bundles, pkcs12: {passphrase: env:X, legacy: false, chain: true}}
 * targets:                   map NAME -> settings
 *   NAME:
 *     type: files            required, a registered target type
 *     ...                    every other key is checked against the type's schema
 *                            (cw_field): unknown keys, required keys, kinds; a SECRET
 *                            must be "env:NAME" or "file:PATH", never the secret itself
 * Names (authorities, certificates, targets) match [A-Za-z0-9][A-Za-z0-9._-]* with at
 * most 64 characters: they become file names. Authorities and certificates share one
 * set of names (both are issued and stored by name); targets have their own.
 *
 * ---- Diagnostic codes ----
 *   inventory.yaml               YAML syntax; anchors/aliases, unknown tags, a second
 *                                document, nesting deeper than 64 (common/node.c)
 *   inventory.duplicate-key      a key twice in one map (common/node.c)
 *   inventory.no-files           no files to read
 *   inventory.unknown-key        with "did you mean" or the list of known keys
 *   inventory.missing-key        a required key is absent
 *   inventory.type               a list where a map belongs, an empty value, ...
 *   inventory.value              a scalar of the right kind but a bad value (integer,
 *                                boolean, file mode, on_remove)
 *   inventory.version            missing or unknown version
 *   inventory.duplicate-section  defaults or report in two files
 *   inventory.duplicate-name     a name defined twice (across files, or shared by an
 *                                authority and a certificate)
 *   inventory.name               a name that cannot be a file name
 *   inventory.duration           not a duration, or a lifetime beyond 100 years
 *   inventory.renew-before       a percentage out of 1..99, or not shorter than lifetime
 *   inventory.key-type           unknown key type (error); rsa-1024 (warning)
 *   inventory.usage              unknown or empty usage
 *   inventory.san                SAN without/with unknown type, or malformed
 *   inventory.subject            subject not in "TYPE=value,..." form
 *   inventory.profile            unknown policy profile
 *   inventory.authority-type     unknown or unsupported authority type
 *   inventory.path-len           bad path_len, or a chain deeper than an ancestor allows
 *   inventory.url                CRL URL not http(s)/ldap
 *   inventory.dangling-issuer    issuer or parent that is not an authority
 *   inventory.dangling-target    deploy target that is not a target
 *   inventory.ca-cycle           authority parents forming a cycle (a -> b -> a)
 *   inventory.target-type        unknown target type
 *   inventory.literal-secret     a secret field holding something other than a reference
 *   inventory.address            malformed host[:port]
 *   inventory.bind               bind: on a target type that has no bind step
 *   inventory.duplicate-deploy   one certificate deployed to one target twice
 *   inventory.single-slot        several certificates on a one-certificate target
 *   inventory.report-path        report path outside the repository or unsafe
 * Target types and policy profiles add their own codes (e.g. "ios.validity").
 */
#include "reconcile/inventory.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/node.h"
#include "common/secret.h"
#include "common/strmap.h"
#include "issuers/crl.h"
#include "reconcile/policy.h"
#include "targets/target.h"

#define CODE_NO_FILES "inventory.no-files"
#define CODE_UNKNOWN_KEY "inventory.unknown-key"
#define CODE_MISSING_KEY "inventory.missing-key"
#define CODE_TYPE "inventory.type"
#define CODE_VALUE "inventory.value"
#define CODE_VERSION "inventory.version"
#define CODE_DUPLICATE_SECTION "inventory.duplicate-section"
#define CODE_DUPLICATE_NAME "inventory.duplicate-name"
#define CODE_NAME "inventory.name"
#define CODE_DURATION "inventory.duration"
#define CODE_RENEW "inventory.renew-before"
#define CODE_KEY_TYPE "inventory.key-type"
#define CODE_USAGE "inventory.usage"
#define CODE_SAN "inventory.san"
#define CODE_SUBJECT "inventory.subject"
#define CODE_PROFILE "inventory.profile"
#define CODE_AUTHORITY_TYPE "inventory.authority-type"
#define CODE_PATH_LEN "inventory.path-len"
#define CODE_URL "inventory.url"
#define CODE_DANGLING_ISSUER "inventory.dangling-issuer"
#define CODE_DANGLING_TARGET "inventory.dangling-target"
#define CODE_CA_CYCLE "inventory.ca-cycle"
#define CODE_TARGET_TYPE "inventory.target-type"
#define CODE_LITERAL_SECRET "inventory.literal-secret"
#define CODE_ADDRESS "inventory.address"
#define CODE_BIND "inventory.bind"
#define CODE_DUPLICATE_DEPLOY "inventory.duplicate-deploy"
#define CODE_SINGLE_SLOT "inventory.single-slot"
#define CODE_REPORT_PATH "inventory.report-path"

#define NAME_MAX_LEN 64
#define INVENTORY_FILE_MAX (4u << 20)   /* far beyond any real inventory; bounds a mistake */
#define DAY INT64_C(86400)
#define DEFAULT_LEAF_LIFETIME (90 * DAY)
#define DEFAULT_ROOT_LIFETIME (3650 * DAY)
#define DEFAULT_INTERMEDIATE_LIFETIME (1825 * DAY)
#define DEFAULT_CRL_LIFETIME (7 * DAY)
#define DEFAULT_RENEW_PERCENT 33
#define MAX_LIFETIME (36525 * DAY)      /* 100 years: later date arithmetic stays sane */
#define DEFAULT_REPORT_DIR "certwright-state"
#define DEFAULT_EXPIRY_WARNING (180 * DAY)
#define HINT_LIST_MAX 16

typedef enum { ENTRY_AUTHORITY, ENTRY_CERTIFICATE, ENTRY_TARGET, ENTRY_KINDS } entry_kind;

static const char *const entry_kind_names[ENTRY_KINDS] = { "authority", "certificate", "target" };
static const char *const section_names[ENTRY_KINDS] = { "authorities", "certificates", "targets" };

static const char *const top_keys[] = { "version", "report", "defaults", "authorities",
					"certificates", "targets", NULL };
static const char *const report_keys[] = { "path", NULL };
static const char *const defaults_keys[] = { "issuer", "key", "lifetime", "renew_before",
					     "profile", "usage", NULL };
static const char *const authority_keys[] = { "type", "subject", "parent", "key", "lifetime",
					      "renew_before", "path_len", "profile", "crl",
					      "on_remove", "revoke_superseded", "expiry_warning",
					      NULL };
static const char *const certificate_keys[] = { "issuer", "subject", "sans", "usage", "key",
						"lifetime", "renew_before", "profile", "deploy",
						"revoked", "export", "revoke_superseded", NULL };
static const char *const deploy_keys[] = { "target", "bind", NULL };
static const char *const crl_keys[] = { "lifetime", "url", "renew_before", NULL };
static const char *const revoked_keys[] = { "reason", NULL };
static const char *const export_keys[] = { "path", "pkcs12", NULL };
static const char *const pkcs12_keys[] = { "passphrase", "legacy", "chain", NULL };
static const char *const authority_types[] = { "local", "acme", NULL };
static const char *const on_remove_values[] = { "revoke", "forget", NULL };
static const char *const san_type_names[] = { "DNS", "IP", "email", "URI", NULL };
static const char *const key_type_names[] = { "rsa-1024", "rsa-2048", "rsa-3072", "rsa-4096",
					      "ecdsa-p256", "ecdsa-p384", "ed25519", NULL };

/* One named entry of a section, before typing. */
typedef struct {
	const char *name;      /* the key in the section map (owned by the file's tree) */
	cw_srcpos pos;         /* where the name is written */
	cw_node **body;        /* the slot in the section map: a target takes its node */
} entry;

typedef struct {
	entry *v;
	size_t n, cap;
} entry_list;

/* defaults:, typed. Unset values are zero / NULL. */
typedef struct {
	const char *issuer;    /* points into the defaults node */
	cw_srcpos issuer_pos;
	cw_key_type key;
	int64_t lifetime;
	int has_renew;
	cw_renew renew;
	char **profiles;
	size_t nprofiles;
	int has_usage;
	uint32_t usage;
	int issuer_reported;   /* a dangling default issuer is reported once, not per certificate */
} inv_defaults;

/* What typing learnt about an authority or certificate that the model does not keep. */
typedef struct {
	cw_srcpos ref_pos;     /* where the issuer / parent name is written */
	int ref_from_defaults;
	int clean;             /* typed without errors: worth a policy check */
} entry_aux;

typedef struct {
	cw_inventory *inv;
	cw_diags *diags;
	time_t now;
	cw_node **roots;                 /* per file; NULL when empty or unusable */
	size_t nroots;
	int parse_failed;                /* names may be missing: do not call references dangling */
	size_t nerrors;                  /* errors reported through this loader */
	const char *cur_entry;           /* authority/certificate named in diagnostics */
	const char *cur_target;
	entry_list entries[ENTRY_KINDS];
	const cw_node *defaults;
	const cw_node *report;
	cw_srcpos defaults_pos, report_pos;
	int version_seen;
	inv_defaults def;
	entry_aux *aux[2];               /* [ENTRY_AUTHORITY], [ENTRY_CERTIFICATE] */
} loader;

/* ---- diagnostics ---- */

static void vreport(loader *ld, cw_severity sev, const cw_srcpos *pos, const char *code,
		    const char *hint, const char *fmt, va_list ap)
{
	cw_buf msg = CW_BUF_INIT;
	cw_buf_vaddf(&msg, fmt, ap);
	cw_diag *d = cw_diag_add(ld->diags, sev, pos, code, hint, "%s", msg.buf ? msg.buf : "");
	cw_buf_release(&msg);
	d->certificate = cw_xstrdup(ld->cur_entry);
	d->target = cw_xstrdup(ld->cur_target);
	if (sev == CW_SEV_ERROR)
		ld->nerrors++;
}

__attribute__((format(printf, 5, 6)))
static void ld_error(loader *ld, const cw_srcpos *pos, const char *code, const char *hint,
		     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(ld, CW_SEV_ERROR, pos, code, hint, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 5, 6)))
static void ld_warn(loader *ld, const cw_srcpos *pos, const char *code, const char *hint,
		    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(ld, CW_SEV_WARNING, pos, code, hint, fmt, ap);
	va_end(ap);
}

/* "<label>: a, b, c", or NULL when there is nothing to offer; long lists (hundreds of
 * targets) are cut, since a hint is read at a glance. Caller frees. */
static char *list_hint(const char *const *candidates, const char *label)
{
	if (!candidates || !candidates[0])
		return NULL;
	cw_buf b = CW_BUF_INIT;
	cw_buf_addf(&b, "%s: ", label);
	size_t i;
	for (i = 0; candidates[i] && i < HINT_LIST_MAX; i++)
		cw_buf_addf(&b, "%s%s", i ? ", " : "", candidates[i]);
	size_t more = 0;
	while (candidates[i + more])
		more++;
	if (more)
		cw_buf_addf(&b, " and %zu more", more);
	return cw_buf_detach(&b);
}

/* "did you mean 'x'?" when a candidate is close, else the whole list. Caller frees. */
static char *choice_hint(const char *word, const char *const *candidates, const char *label)
{
	const char *best = candidates ? cw_did_you_mean(word, candidates, SIZE_MAX) : NULL;
	if (best)
		return cw_xasprintf("did you mean '%s'?", best);
	return list_hint(candidates, label);
}

static int in_list(const char *word, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (!strcmp(word, list[i]))
			return 1;
	return 0;
}

/* ---- node shapes ---- */

/* YAML's null: an empty value, "~" or "null" unquoted. */
static int is_null(const cw_node *n)
{
	return n && n->kind == CW_NODE_SCALAR && !n->quoted &&
	       (!n->value[0] || !strcmp(n->value, "~") || !strcasecmp(n->value, "null"));
}

static const char *shape_name(const cw_node *n)
{
	if (is_null(n))
		return "an empty value";
	switch (n->kind) {
	case CW_NODE_SCALAR: return "a string";
	case CW_NODE_SEQ: return "a list";
	case CW_NODE_MAP: return "a map";
	}
	return "something else";
}

static void type_error(loader *ld, const cw_node *n, const char *what, const char *key,
		       const char *expected)
{
	ld_error(ld, &n->pos, CODE_TYPE, NULL, "%s: '%s' must be %s, got %s", what, key, expected,
		 shape_name(n));
}

static void missing_key(loader *ld, const cw_srcpos *pos, const char *what, const char *key,
			const char *hint)
{
	ld_error(ld, pos, CODE_MISSING_KEY, hint, "%s: missing key '%s'", what, key);
}

static void check_keys(loader *ld, const cw_node *map, const char *what,
		       const char *const *allowed)
{
	for (size_t i = 0; i < map->n; i++) {
		if (in_list(map->keys[i], allowed))
			continue;
		char *hint = choice_hint(map->keys[i], allowed, "known keys");
		ld_error(ld, &map->key_pos[i], CODE_UNKNOWN_KEY, hint, "%s: unknown key '%s'", what,
			 map->keys[i]);
		free(hint);
	}
}

/* Readers below return 1 when the key holds a usable value (stored in *out), 0 when it
 * is absent (or null where that means "not set"), -1 when it was wrong (reported). */

static int get_scalar(loader *ld, const cw_node *map, const char *key, const char *what,
		      const char **out, const cw_node **node)
{
	const cw_node *n = cw_node_get(map, key);
	if (node)
		*node = n;
	if (!n)
		return 0;
	if (n->kind != CW_NODE_SCALAR || is_null(n) || !n->value[0]) {
		type_error(ld, n, what, key, "a string");
		return -1;
	}
	*out = n->value;
	return 1;
}

static int get_kind(loader *ld, const cw_node *map, const char *key, const char *what,
		    cw_node_kind kind, const cw_node **out)
{
	const cw_node *n = cw_node_get(map, key);
	if (!n || is_null(n))
		return 0;
	if (n->kind != kind) {
		type_error(ld, n, what, key, kind == CW_NODE_MAP ? "a map" : "a list");
		return -1;
	}
	*out = n;
	return 1;
}

/* A list of non-empty strings; with single_ok a lone string counts as a list of one. */
static int get_string_list(loader *ld, const cw_node *map, const char *key, const char *what,
			   int single_ok, char ***out, size_t *nout)
{
	const cw_node *n = cw_node_get(map, key);
	*out = NULL;
	*nout = 0;
	if (!n || is_null(n))
		return 0;
	if (single_ok && n->kind == CW_NODE_SCALAR) {
		*out = cw_xcalloc(1, sizeof(char *));
		(*out)[(*nout)++] = cw_xstrdup(n->value);
		return 1;
	}
	if (n->kind != CW_NODE_SEQ) {
		type_error(ld, n, what, key, single_ok ? "a string or a list" : "a list");
		return -1;
	}
	int rc = 1;
	*out = cw_xcalloc(n->n ? n->n : 1, sizeof(char *));
	for (size_t i = 0; i < n->n; i++) {
		const cw_node *item = n->items[i];
		if (item->kind != CW_NODE_SCALAR || is_null(item) || !item->value[0]) {
			ld_error(ld, &item->pos, CODE_TYPE, NULL,
				 "%s: '%s' entries must be strings, got %s", what, key,
				 shape_name(item));
			rc = -1;
			continue;
		}
		(*out)[(*nout)++] = cw_xstrdup(item->value);
	}
	return rc;
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- value checks ---- */

static int is_ascii_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Names become file names and keystore entries. */
static int name_ok(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > NAME_MAX_LEN || !is_ascii_alnum((unsigned char)s[0]))
		return 0;
	for (size_t i = 1; i < len; i++)
		if (!is_ascii_alnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return 0;
	return 1;
}

/* LDH labels; a whole "*" first label when wildcards are allowed. */
static int dns_name_ok(const char *s, int allow_wildcard)
{
	size_t total = strlen(s);
	if (total == 0 || total > 253)
		return 0;
	for (int first = 1;; first = 0) {
		const char *dot = strchr(s, '.');
		size_t len = dot ? (size_t)(dot - s) : strlen(s);
		if (first && allow_wildcard && len == 1 && s[0] == '*') {
			if (!dot)
				return 0; /* "*" alone names nothing */
		} else {
			if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
				return 0;
			for (size_t i = 0; i < len; i++)
				if (!is_ascii_alnum((unsigned char)s[i]) && s[i] != '-')
					return 0;
		}
		if (!dot)
			return 1;
		s = dot + 1;
	}
}

static int ip_ok(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int printable_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

static int email_ok(const char *s)
{
	const char *at = strchr(s, '@');
	if (!at || at == s || strchr(at + 1, '@') || !printable_ascii(s))
		return 0;
	return dns_name_ok(at + 1, 0);
}

/* RFC 3986 scheme ":" and something after it. */
static int uri_ok(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
		return 0;
	const char *p = s + 1;
	while (is_ascii_alnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	return *p == ':' && p[1] && printable_ascii(p + 1);
}

/* http(s) or ldap URL with a host: what a CRL distribution point may name. */
static int crl_url_ok(const char *s)
{
	static const char *const schemes[] = { "http://", "https://", "ldap://" };
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(schemes[i]);
		if (!strncasecmp(s, schemes[i], n))
			return s[n] && s[n] != '/' && printable_ascii(s + n);
	}
	return 0;
}

/* RDNs "TYPE=value" joined by ',' (or '+' inside one RDN); '\' escapes a character.
 * Only the shape is checked here; the CA module encodes it. */
static int subject_ok(const char *s)
{
	const char *p = s;
	for (;;) {
		const char *type = p;
		while (is_ascii_alnum((unsigned char)*p) || *p == '.' || *p == '-')
			p++;
		if (p == type || *p != '=')
			return 0;
		const char *value = ++p;
		while (*p && *p != ',' && *p != '+') {
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return 0;
			if (*p == '\\' && !*++p)
				return 0;
			p++;
		}
		if (p == value)
			return 0;
		if (!*p)
			return 1;
		p++;
		while (*p == ' ')
			p++;
	}
}

static int port_ok(const char *s)
{
	long v;
	return s[0] != '+' && s[0] != '-' && cw_node_parse_int(s, &v) == 0 && v >= 1 && v <= 65535;
}

/* host, host:port, [v6], [v6]:port, or a bare IPv6 address. */
static int address_ok(const char *s)
{
	char host[256];
	const char *port = NULL;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || (size_t)(end - s - 1) >= sizeof(host))
			return 0;
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
		unsigned char buf[16];
		if (inet_pton(AF_INET6, host, buf) != 1 || (end[1] && end[1] != ':'))
			return 0;
		return !end[1] || port_ok(end + 2);
	}
	const char *colon = strchr(s, ':');
	if (colon && strchr(colon + 1, ':')) {
		unsigned char buf[16];
		return inet_pton(AF_INET6, s, buf) == 1;
	}
	size_t len = colon ? (size_t)(colon - s) : strlen(s);
	if (len == 0 || len >= sizeof(host))
		return 0;
	memcpy(host, s, len);
	host[len] = '\0';
	port = colon ? colon + 1 : NULL;
	for (size_t i = 0; i < len; i++)
		if (!is_ascii_alnum((unsigned char)host[i]) && !strchr(".-_", host[i]))
			return 0;
	return !port || port_ok(port);
}

/* The report folder is owned by the report writer, which deletes what it did not
 * write: it must be a real subfolder of the repository and never .git. NULL if unsafe. */
static char *report_path_clean(const char *path)
{
	char *p = cw_xstrdup(path);
	size_t len = strlen(p);
	while (len > 1 && p[len - 1] == '/')
		p[--len] = '\0';
	int ok = len > 0 && p[0] != '/' && !strchr(p, '\\');
	for (size_t i = 0; ok && i < len; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			ok = 0;
	for (const char *part = p; ok && part;) {
		const char *slash = strchr(part, '/');
		size_t n = slash ? (size_t)(slash - part) : strlen(part);
		if (n == 0 || (n == 1 && part[0] == '.') || (n == 2 && !strncmp(part, "..", 2)) ||
		    (n == 4 && !strncasecmp(part, ".git", 4)))
			ok = 0;
		part = slash ? slash + 1 : NULL;
	}
	if (!ok) {
		free(p);
		return NULL;
	}
	return p;
}

/* ---- typed readers ---- */

static int read_key_type(loader *ld, const cw_node *map, const char *what, cw_key_type *out)
{
	const char *s;
	const cw_node *n;
	int rc = get_scalar(ld, map, "key", what, &s, &n);
	if (rc <= 0)
		return rc;
	if (cw_key_type_parse(s, out) != 0) {
		char *hint = choice_hint(s, key_type_names, "key types");
		ld_error(ld, &n->pos, CODE_KEY_TYPE, hint, "%s: unknown key type '%s'", what, s);
		free(hint);
		return -1;
	}
	if (*out == CW_KEY_RSA1024)
		ld_warn(ld, &n->pos, CODE_KEY_TYPE,
			"use rsa-2048 or stronger; policies and most devices refuse it",
			"%s: rsa-1024 is too weak", what);
	return 1;
}

static int read_duration(loader *ld, const cw_node *map, const char *key, const char *what,
			 int64_t *out, cw_srcpos *pos)
{
	const char *s;
	const cw_node *n;
	int rc = get_scalar(ld, map, key, what, &s, &n);
	if (rc <= 0)
		return rc;
	int64_t v;
	if (cw_parse_duration(s, &v) != 0) {
		ld_error(ld, &n->pos, CODE_DURATION, "write a positive duration such as 90d, 12h, 30m or 1d12h",
			 "%s: %s '%s' is not a duration", what, key, s);
		return -1;
	}
	if (v > MAX_LIFETIME) {
		ld_error(ld, &n->pos, CODE_DURATION, NULL, "%s: %s '%s' is longer than 100 years",
			 what, key, s);
		return -1;
	}
	*out = v;
	if (pos)
		*pos = n->pos;
	return 1;
}

static int read_renew(loader *ld, const cw_node *map, const char *what, cw_renew *out,
		      cw_srcpos *pos)
{
	const char *s;
	const cw_node *n;
	int rc = get_scalar(ld, map, "renew_before", what, &s, &n);
	if (rc <= 0)
		return rc;
	*pos = n->pos;
	size_t len = strlen(s);
	memset(out, 0, sizeof(*out));
	if (s[len - 1] == '%') {
		char *digits = cw_xstrndup(s, len - 1);
		long pct;
		int ok = cw_node_parse_int(digits, &pct) == 0 && digits[0] != '+' && digits[0] != '-';
		free(digits);
		if (!ok || pct < 1 || pct > 99) {
			ld_error(ld, &n->pos, CODE_RENEW, "a share of the lifetime left, 1% to 99%",
				 "%s: renew_before '%s' is not a percentage from 1 to 99", what, s);
			return -1;
		}
		out->is_percent = 1;
		out->percent = (int)pct;
		return 1;
	}
	if (cw_parse_duration(s, &out->seconds) != 0) {
		ld_error(ld, &n->pos, CODE_DURATION, "write a duration such as 30d, or a share such as 33%",
			 "%s: renew_before '%s' is neither a duration nor a percentage", what, s);
		return -1;
	}
	return 1;
}

/* An absolute renewal margin must leave part of the lifetime, or every run renews. */
static void check_renew(loader *ld, const char *what, const cw_renew *r, int64_t lifetime,
			const cw_srcpos *pos, const char *origin)
{
	if (r->is_percent || r->seconds < lifetime)
		return;
	char rs[32], ls[32];
	cw_format_duration(r->seconds, rs);
	cw_format_duration(lifetime, ls);
	ld_error(ld, pos, CODE_RENEW, "renew_before must be shorter than the lifetime",
		 "%s: renew_before %s%s is not shorter than the lifetime %s", what, rs, origin, ls);
}

static int read_usage(loader *ld, const cw_node *map, const char *what, uint32_t *out)
{
	const cw_node *seq;
	int rc = get_kind(ld, map, "usage", what, CW_NODE_SEQ, &seq);
	if (rc <= 0)
		return rc;
	*out = 0;
	for (size_t i = 0; i < seq->n; i++) {
		const cw_node *item = seq->items[i];
		uint32_t bit = item->kind == CW_NODE_SCALAR ? cw_usage_parse(item->value) : 0;
		if (!bit) {
			char *hint = item->kind == CW_NODE_SCALAR
					     ? choice_hint(item->value, cw_usage_names, "usages")
					     : NULL;
			if (item->kind == CW_NODE_SCALAR)
				ld_error(ld, &item->pos, CODE_USAGE, hint, "%s: unknown usage '%s'", what,
					 item->value);
			else
				ld_error(ld, &item->pos, CODE_TYPE, NULL,
					 "%s: 'usage' entries must be strings, got %s", what,
					 shape_name(item));
			free(hint);
			rc = -1;
		}
		*out |= bit;
	}
	if (rc > 0 && !*out) {
		ld_error(ld, &seq->pos, CODE_USAGE, "leave usage out for the default", "%s: usage is empty",
			 what);
		rc = -1;
	}
	return rc;
}

static int read_profiles(loader *ld, const cw_node *map, const char *what, char ***out,
			 size_t *nout)
{
	char **names;
	size_t n;
	int rc = get_string_list(ld, map, "profile", what, 1, &names, &n);
	if (rc == 0)
		return 0;
	const cw_node *node = cw_node_get(map, "profile");
	*out = cw_xcalloc(n ? n : 1, sizeof(char *));
	*nout = 0;
	for (size_t i = 0; i < n; i++) {
		if (cw_profile_known(names[i])) {
			(*out)[(*nout)++] = names[i];
			continue;
		}
		/* a list item's own position when there is one */
		const cw_srcpos *pos = &node->pos;
		for (size_t j = 0; node->kind == CW_NODE_SEQ && j < node->n; j++)
			if (node->items[j]->kind == CW_NODE_SCALAR &&
			    !strcmp(node->items[j]->value, names[i]))
				pos = &node->items[j]->pos;
		char *hint = choice_hint(names[i], cw_profile_names, "profiles");
		ld_error(ld, pos, CODE_PROFILE, hint, "%s: unknown profile '%s'", what, names[i]);
		free(hint);
		free(names[i]);
		rc = -1;
	}
	free(names);
	return rc;
}

/* ---- SANs ---- */

static const char *san_problem(cw_san_type type, const char *value, char **hint)
{
	switch (type) {
	case CW_SAN_DNS:
		if (ip_ok(value)) {
			*hint = cw_xasprintf("write 'IP:%s'", value);
			return "is an IP address, not a DNS name";
		}
		if (!dns_name_ok(value, 1)) {
			*hint = cw_xstrdup("letters, digits and '-' in dot-separated labels; a leading '*.' is allowed");
			return "is not a valid DNS name";
		}
		return NULL;
	case CW_SAN_IP:
		return ip_ok(value) ? NULL : "is not an IPv4 or IPv6 address";
	case CW_SAN_EMAIL:
		if (email_ok(value))
			return NULL;
		*hint = cw_xstrdup("write it as local-part@domain");
		return "is not a valid email address";
	case CW_SAN_URI:
		if (uri_ok(value))
			return NULL;
		*hint = cw_xstrdup("a URI starts with its scheme, e.g. https://host/path");
		return "is not a valid URI";
	}
	return "has an unknown type";
}

static int parse_san(loader *ld, const cw_node *item, const char *what, cw_san *out)
{
	const char *text = item->value;
	const char *colon = strchr(text, ':');
	char *hint = NULL;
	if (!colon) {
		if (dns_name_ok(text, 1) && !ip_ok(text))
			hint = cw_xasprintf("write it as 'DNS:%s'", text);
		else if (ip_ok(text))
			hint = cw_xasprintf("write it as 'IP:%s'", text);
		else
			hint = cw_xstrdup("prefix it with DNS:, IP:, email: or URI:");
		ld_error(ld, &item->pos, CODE_SAN, hint, "%s: SAN '%s' has no type", what, text);
		free(hint);
		return -1;
	}
	size_t plen = (size_t)(colon - text);
	int type = -1;
	for (int t = 0; san_type_names[t]; t++)
		if (strlen(san_type_names[t]) == plen && !strncasecmp(text, san_type_names[t], plen))
			type = t;
	if (type < 0) {
		char *prefix = cw_xstrndup(text, plen);
		hint = choice_hint(prefix, san_type_names, "SAN types");
		ld_error(ld, &item->pos, CODE_SAN, hint, "%s: SAN '%s' has unknown type '%s'", what,
			 text, prefix);
		free(prefix);
		free(hint);
		return -1;
	}
	const char *problem = san_problem((cw_san_type)type, colon + 1, &hint);
	if (problem) {
		ld_error(ld, &item->pos, CODE_SAN, hint, "%s: SAN '%s' %s", what, text, problem);
		free(hint);
		return -1;
	}
	out->type = (cw_san_type)type;
	out->value = cw_xstrdup(colon + 1);
	return 0;
}

static int read_sans(loader *ld, const cw_node *map, const char *what, cw_cert_spec *spec)
{
	const cw_node *seq;
	int rc = get_kind(ld, map, "sans", what, CW_NODE_SEQ, &seq);
	if (rc <= 0)
		return rc;
	spec->sans = cw_xcalloc(seq->n ? seq->n : 1, sizeof(cw_san));
	for (size_t i = 0; i < seq->n; i++) {
		const cw_node *item = seq->items[i];
		if (item->kind != CW_NODE_SCALAR || is_null(item)) {
			ld_error(ld, &item->pos, CODE_TYPE, NULL,
				 "%s: 'sans' entries must be strings like 'DNS:host', got %s", what,
				 shape_name(item));
			rc = -1;
			continue;
		}
		cw_san san;
		if (parse_san(ld, item, what, &san) != 0) {
			rc = -1;
			continue;
		}
		int dup = 0;
		for (size_t j = 0; j < spec->nsans; j++)
			dup |= spec->sans[j].type == san.type && !strcasecmp(spec->sans[j].value, san.value);
		if (dup) {
			ld_warn(ld, &item->pos, CODE_SAN, NULL, "%s: SAN '%s' is listed twice", what,
				item->value);
			free(san.value);
			continue;
		}
		spec->sans[spec->nsans++] = san;
	}
	return rc;
}

/* ---- top level and sections ---- */

static const entry *find_entry(loader *ld, entry_kind kind, const char *name, entry_kind *found)
{
	const cw_inventory *inv = ld->inv;
	size_t i;
	if (kind == ENTRY_TARGET) {
		*found = ENTRY_TARGET;
		return cw_strmap_get(&inv->target_index, name, &i) ? &ld->entries[ENTRY_TARGET].v[i]
								   : NULL;
	}
	for (int k = ENTRY_AUTHORITY; k <= ENTRY_CERTIFICATE; k++) {
		const cw_strmap *index = k == ENTRY_AUTHORITY ? &inv->authority_index
							      : &inv->certificate_index;
		if (cw_strmap_get(index, name, &i)) {
			*found = (entry_kind)k;
			return &ld->entries[k].v[i];
		}
	}
	return NULL;
}

static cw_strmap *index_of(cw_inventory *inv, entry_kind kind)
{
	return kind == ENTRY_AUTHORITY ? &inv->authority_index
	       : kind == ENTRY_CERTIFICATE ? &inv->certificate_index
					   : &inv->target_index;
}

static void add_entry(loader *ld, entry_kind kind, const char *name, const cw_srcpos *pos,
		      cw_node **body)
{
	const char *kname = entry_kind_names[kind];
	if (kind == ENTRY_TARGET)
		ld->cur_target = name;
	else
		ld->cur_entry = name;
	if (!name_ok(name))
		ld_error(ld, pos, CODE_NAME,
			 "names become file names: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters",
			 "%s '%s': invalid name", kname, name);
	entry_kind other;
	const entry *prev = find_entry(ld, kind, name, &other);
	if (prev && other == kind)
		ld_error(ld, pos, CODE_DUPLICATE_NAME, "names must be unique across all inventory files",
			 "%s '%s': defined twice (first at %s:%d:%d)", kname, name, prev->pos.file,
			 prev->pos.line, prev->pos.col);
	else if (prev)
		ld_error(ld, pos, CODE_DUPLICATE_NAME,
			 "authorities and certificates share one set of names: both are issued and stored by name",
			 "%s '%s': the name is already used by %s '%s' at %s:%d:%d", kname, name,
			 entry_kind_names[other], name, prev->pos.file, prev->pos.line, prev->pos.col);
	ld->cur_entry = ld->cur_target = NULL;
	if (prev)
		return; /* the first definition stands; the second is not typed */
	entry_list *list = &ld->entries[kind];
	if (list->n == list->cap) {
		list->cap = list->cap ? list->cap * 2 : 16;
		list->v = cw_xrealloc(list->v, list->cap * sizeof(*list->v));
	}
	list->v[list->n] = (entry){ name, *pos, body };
	cw_strmap_put(index_of(ld->inv, kind), name, list->n);
	list->n++;
}

static void collect_section(loader *ld, entry_kind kind, cw_node *section)
{
	if (is_null(section))
		return;
	if (section->kind != CW_NODE_MAP) {
		type_error(ld, section, "inventory", section_names[kind], "a map of name: settings");
		return;
	}
	for (size_t i = 0; i < section->n; i++)
		add_entry(ld, kind, section->keys[i], &section->key_pos[i], &section->items[i]);
}

static void take_version(loader *ld, const cw_node *n)
{
	long v;
	ld->version_seen = 1;
	if (n->kind != CW_NODE_SCALAR || is_null(n)) {
		ld_error(ld, &n->pos, CODE_VERSION, "write 'version: 1'",
			 "inventory: 'version' must be the number 1, got %s", shape_name(n));
		return;
	}
	if (cw_node_parse_int(n->value, &v) != 0 || v != 1) {
		ld_error(ld, &n->pos, CODE_VERSION, "this certwright reads version 1",
			 "inventory: version '%s' is not supported", n->value);
		return;
	}
	ld->inv->version = 1;
}

/* defaults and report: one file holds each, so nobody has to merge them in their head. */
static void take_once(loader *ld, const char *key, const cw_node *n, const cw_srcpos *pos,
		      const cw_node **slot, cw_srcpos *slot_pos)
{
	if (*slot) {
		char *hint = cw_xasprintf("only one inventory file may hold '%s:'", key);
		ld_error(ld, pos, CODE_DUPLICATE_SECTION, hint, "%s: already set at %s:%d:%d", key,
			 slot_pos->file, slot_pos->line, slot_pos->col);
		free(hint);
		return;
	}
	*slot = n;
	*slot_pos = *pos;
}

static void load_top_level(loader *ld, cw_node *root)
{
	if (!root || is_null(root))
		return;
	if (root->kind != CW_NODE_MAP) {
		ld_error(ld, &root->pos, CODE_TYPE, "an inventory file is a map: version:, defaults:, authorities:, certificates:, targets:",
			 "inventory: the file must be a map of sections, got %s", shape_name(root));
		/* like a syntax error: whatever it meant to define is unknown */
		ld->parse_failed = 1;
		return;
	}
	check_keys(ld, root, "inventory", top_keys);
	for (size_t i = 0; i < root->n; i++) {
		const char *key = root->keys[i];
		if (!strcmp(key, "version"))
			take_version(ld, root->items[i]);
		else if (!strcmp(key, "defaults"))
			take_once(ld, key, root->items[i], &root->key_pos[i], &ld->defaults,
				  &ld->defaults_pos);
		else if (!strcmp(key, "report"))
			take_once(ld, key, root->items[i], &root->key_pos[i], &ld->report,
				  &ld->report_pos);
		for (int k = 0; k < ENTRY_KINDS; k++)
			if (!strcmp(key, section_names[k]))
				collect_section(ld, (entry_kind)k, root->items[i]);
	}
}

static void parse_files(loader *ld, const cw_inventory_file *files, size_t n)
{
	cw_inventory *inv = ld->inv;
	inv->files = cw_xcalloc(n ? n : 1, sizeof(char *));
	inv->nfiles = n;
	ld->roots = cw_xcalloc(n ? n : 1, sizeof(cw_node *));
	ld->nroots = n;
	for (size_t i = 0; i < n; i++) {
		inv->files[i] = cw_xstrdup(files[i].name ? files[i].name : "(unnamed)");
		const char *data = files[i].data ? files[i].data : "";
		size_t len = files[i].data ? files[i].len : 0;
		if (cw_node_parse_yaml(&ld->roots[i], inv->files[i], data, len, ld->diags) != 0) {
			ld->parse_failed = 1;
			continue;
		}
		load_top_level(ld, ld->roots[i]);
	}
	if (n == 0) {
		ld_error(ld, NULL, CODE_NO_FILES, NULL, "inventory: no inventory files");
		return;
	}
	if (!ld->version_seen && !ld->parse_failed) {
		cw_srcpos pos = { inv->files[0], 1, 1 };
		ld_error(ld, &pos, CODE_VERSION, "add 'version: 1' to one inventory file",
			 "inventory: no file sets 'version'");
	}
}

/* ---- defaults and report ---- */

static void load_defaults(loader *ld)
{
	const cw_node *d = ld->defaults;
	inv_defaults *def = &ld->def;
	const char *what = "defaults";
	if (!d || is_null(d))
		return;
	if (d->kind != CW_NODE_MAP) {
		type_error(ld, d, "inventory", "defaults", "a map");
		return;
	}
	check_keys(ld, d, what, defaults_keys);
	const cw_node *n;
	if (get_scalar(ld, d, "issuer", what, &def->issuer, &n) > 0)
		def->issuer_pos = n->pos;
	read_key_type(ld, d, what, &def->key);
	cw_srcpos lifetime_pos, renew_pos;
	int lifetime_rc = read_duration(ld, d, "lifetime", what, &def->lifetime, &lifetime_pos);
	def->has_renew = read_renew(ld, d, what, &def->renew, &renew_pos) > 0;
	read_profiles(ld, d, what, &def->profiles, &def->nprofiles);
	def->has_usage = read_usage(ld, d, what, &def->usage) > 0;
	/* checked once here, so certificates that inherit both are not reported one by one */
	if (def->has_renew && lifetime_rc >= 0)
		check_renew(ld, what, &def->renew,
			    def->lifetime ? def->lifetime : DEFAULT_LEAF_LIFETIME, &renew_pos, "");
}

static void load_report(loader *ld)
{
	const cw_node *r = ld->report;
	ld->inv->report_dir = cw_xstrdup(DEFAULT_REPORT_DIR);
	if (!r || is_null(r))
		return;
	if (r->kind != CW_NODE_MAP) {
		type_error(ld, r, "inventory", "report", "a map");
		return;
	}
	check_keys(ld, r, "report", report_keys);
	const char *path;
	const cw_node *n;
	if (get_scalar(ld, r, "path", "report", &path, &n) <= 0)
		return;
	char *clean = report_path_clean(path);
	if (!clean) {
		ld_error(ld, &n->pos, CODE_REPORT_PATH,
			 "a relative folder without '..', '.' or '.git' parts, e.g. certwright-state",
			 "report: path '%s' is not a folder inside the repository", path);
		return;
	}
	free(ld->inv->report_dir);
	ld->inv->report_dir = clean;
}

/* ---- entries ---- */

/* 0 with *body (NULL for an empty entry), or -1 when the entry is not a map (reported). */
static int entry_body(loader *ld, const entry *e, const char *what, const cw_node **body)
{
	const cw_node *n = *e->body;
	*body = NULL;
	if (is_null(n))
		return 0;
	if (n->kind != CW_NODE_MAP) {
		ld_error(ld, &n->pos, CODE_TYPE, NULL, "%s: settings must be a map, got %s", what,
			 shape_name(n));
		return -1;
	}
	*body = n;
	return 0;
}

static void read_subject(loader *ld, const cw_node *body, const char *what, cw_cert_spec *spec)
{
	const char *s;
	const cw_node *n;
	if (get_scalar(ld, body, "subject", what, &s, &n) <= 0)
		return;
	if (!subject_ok(s)) {
		char *hint = dns_name_ok(s, 1) || strchr(s, '@')
				     ? cw_xasprintf("write it as 'CN=%s'", s)
				     : cw_xstrdup("TYPE=value pairs separated by commas, e.g. CN=vpn.example.net,O=Example,C=JP");
		ld_error(ld, &n->pos, CODE_SUBJECT, hint, "%s: subject '%s' is not a distinguished name",
			 what, s);
		free(hint);
		return;
	}
	spec->subject = cw_xstrdup(s);
}

/* A leaf named by its first DNS SAN, else its first email SAN. */
static char *subject_from_sans(const cw_cert_spec *spec)
{
	for (int pass = 0; pass < 2; pass++) {
		cw_san_type want = pass == 0 ? CW_SAN_DNS : CW_SAN_EMAIL;
		for (size_t i = 0; i < spec->nsans; i++)
			if (spec->sans[i].type == want)
				return cw_xasprintf("CN=%s", spec->sans[i].value);
	}
	return NULL;
}

static void read_issuer(loader *ld, const entry *e, const cw_node *body, const char *what,
			cw_certificate *c, entry_aux *aux)
{
	const char *s;
	const cw_node *n;
	int rc = get_scalar(ld, body, "issuer", what, &s, &n);
	if (rc > 0) {
		c->issuer = cw_xstrdup(s);
		aux->ref_pos = n->pos;
	} else if (rc == 0 && ld->def.issuer) {
		c->issuer = cw_xstrdup(ld->def.issuer);
		aux->ref_pos = ld->def.issuer_pos;
		aux->ref_from_defaults = 1;
	} else if (rc == 0) {
		missing_key(ld, &e->pos, what, "issuer", "name an authority here or in defaults: issuer:");
	}
}

/* lifetime and renew_before of an entry, each falling back to its default, and the check
 * that they fit together. With inherited_checked, a pair that is entirely inherited was
 * already checked once in defaults: and is not reported again per entry. */
static void read_validity(loader *ld, const cw_node *body, const char *what,
			  const cw_srcpos *entry_pos, int64_t default_lifetime, int inherited_checked,
			  cw_cert_spec *spec)
{
	cw_srcpos lifetime_pos = *entry_pos, renew_pos;
	int lifetime_rc = read_duration(ld, body, "lifetime", what, &spec->lifetime, &lifetime_pos);
	if (lifetime_rc <= 0)
		spec->lifetime = default_lifetime;
	int renew_rc = read_renew(ld, body, what, &spec->renew, &renew_pos);
	if (renew_rc == 0 && ld->def.has_renew)
		spec->renew = ld->def.renew;
	else if (renew_rc <= 0)
		spec->renew = (cw_renew){ .is_percent = 1, .percent = DEFAULT_RENEW_PERCENT };
	if (lifetime_rc < 0 || renew_rc < 0)
		return; /* already reported; comparing a fallback would only add noise */
	if (inherited_checked && lifetime_rc == 0 && renew_rc == 0)
		return;
	check_renew(ld, what, &spec->renew, spec->lifetime,
		    renew_rc > 0 ? &renew_pos : &lifetime_pos, renew_rc > 0 ? "" : " (from defaults)");
}

static void load_deployments(loader *ld, const cw_node *body, const char *what, cw_certificate *c)
{
	const cw_node *seq;
	if (get_kind(ld, body, "deploy", what, CW_NODE_SEQ, &seq) <= 0)
		return;
	c->deploy = cw_xcalloc(seq->n ? seq->n : 1, sizeof(cw_deployment));
	for (size_t i = 0; i < seq->n; i++) {
		const cw_node *item = seq->items[i];
		char *dwhat = cw_xasprintf("%s deploy #%zu", what, i + 1);
		const char *target;
		const cw_node *tn;
		int rc = -1;
		if (item->kind != CW_NODE_MAP)
			ld_error(ld, &item->pos, CODE_TYPE, "write '- target: NAME'",
				 "%s: must be a map, got %s", dwhat, shape_name(item));
		else {
			check_keys(ld, item, dwhat, deploy_keys);
			rc = get_scalar(ld, item, "target", dwhat, &target, &tn);
			if (rc == 0)
				missing_key(ld, &item->pos, dwhat, "target", NULL);
		}
		for (size_t j = 0; rc > 0 && j < c->ndeploy; j++) {
			if (strcmp(c->deploy[j].target, target) != 0)
				continue;
			ld_error(ld, &tn->pos, CODE_DUPLICATE_DEPLOY,
				 "one entry per target; list every service under its bind:",
				 "%s: deploys to target '%s' a second time", dwhat, target);
			rc = -1;
		}
		if (rc > 0) {
			cw_deployment *d = &c->deploy[c->ndeploy++];
			d->target = cw_xstrdup(target);
			d->pos = item->pos;
			get_string_list(ld, item, "bind", dwhat, 0, &d->bind, &d->nbind);
		}
		free(dwhat);
	}
}

/* A yes/no setting; *out is left alone when the key is absent. */
static void read_bool(loader *ld, const cw_node *map, const char *key, const char *what, int *out)
{
	const char *s;
	const cw_node *n;
	if (get_scalar(ld, map, key, what, &s, &n) <= 0)
		return;
	if (cw_node_parse_bool(s, out) != 0)
		ld_error(ld, &n->pos, CODE_VALUE, "true or false", "%s: %s '%s' is not true or false",
			 what, key, s);
}

/* revoked: {reason: key-compromise} — declarative, and final. */
static void read_revoked(loader *ld, const cw_node *body, const char *what, cw_certificate *c)
{
	const cw_node *r;
	int rc = get_kind(ld, body, "revoked", what, CW_NODE_MAP, &r);
	if (rc < 0)
		return;
	if (rc == 0) {
		const cw_node *n = cw_node_get(body, "revoked");
		if (!n || !is_null(n))
			return;
		r = NULL; /* "revoked:" alone: reason unspecified */
	}
	const cw_node *n = cw_node_get(body, "revoked");
	c->revoked = 1;
	c->revoked_pos = n->pos;
	c->revoke_reason = cw_xstrdup("unspecified");
	if (!r)
		return;
	char *rwhat = cw_xasprintf("%s revoked", what);
	check_keys(ld, r, rwhat, revoked_keys);
	const char *reason;
	const cw_node *rn;
	if (get_scalar(ld, r, "reason", rwhat, &reason, &rn) > 0) {
		cw_revoke_reason code;
		if (cw_revoke_reason_parse(reason, &code) == 0) {
			free(c->revoke_reason);
			c->revoke_reason = cw_xstrdup(reason);
		} else {
			char *hint = !strcmp(reason, "certificate-hold")
					     ? cw_xstrdup("a revocation in certwright is final: there is no hold")
					     : choice_hint(reason, cw_revoke_reason_names, "reasons");
			ld_error(ld, &rn->pos, CODE_VALUE, hint, "%s: reason '%s' is not an RFC 5280 "
				 "revocation reason", rwhat, reason);
			free(hint);
		}
	}
	free(rwhat);
}

/* export: {path: DIR, pkcs12: {passphrase: env:X, legacy: false, chain: true}} */
static void read_export(loader *ld, const cw_node *body, const char *what, cw_certificate *c)
{
	const cw_node *x;
	if (get_kind(ld, body, "export", what, CW_NODE_MAP, &x) <= 0)
		return;
	char *xwhat = cw_xasprintf("%s export", what);
	check_keys(ld, x, xwhat, export_keys);
	c->export.enabled = 1;
	c->export.pos = cw_node_get(body, "export")->pos;
	c->export.chain = 1;
	const char *path;
	const cw_node *pn;
	if (get_scalar(ld, x, "path", xwhat, &path, &pn) > 0) {
		c->export.path = cw_expand_home(path);
		if (c->export.path[0] != '/')
			ld_error(ld, &pn->pos, CODE_VALUE, "an absolute folder outside the repository, "
				 "e.g. /srv/certwright/bundles", "%s: path '%s' is not absolute", xwhat, path);
	} else {
		missing_key(ld, &c->export.pos, xwhat, "path", "the folder the bundle is written to");
	}
	const cw_node *p12;
	if (get_kind(ld, x, "pkcs12", xwhat, CW_NODE_MAP, &p12) > 0) {
		char *pwhat = cw_xasprintf("%s pkcs12", xwhat);
		check_keys(ld, p12, pwhat, pkcs12_keys);
		const char *pass;
		const cw_node *passn;
		if (get_scalar(ld, p12, "passphrase", pwhat, &pass, &passn) > 0) {
			if (cw_secret_is_ref(pass))
				c->export.passphrase = cw_xstrdup(pass);
			else
				ld_error(ld, &passn->pos, CODE_LITERAL_SECRET,
					 "keep the secret out of git: use env:NAME or file:PATH",
					 "%s: literal secret not allowed for passphrase", pwhat);
		} else {
			missing_key(ld, &p12->pos, pwhat, "passphrase",
				    "a PKCS#12 bundle needs a passphrase: env:NAME or file:PATH");
		}
		read_bool(ld, p12, "legacy", pwhat, &c->export.legacy);
		read_bool(ld, p12, "chain", pwhat, &c->export.chain);
		free(pwhat);
	} else {
		missing_key(ld, &c->export.pos, xwhat, "pkcs12",
			    "pkcs12: {passphrase: env:NAME} — the bundle format");
	}
	free(xwhat);
}

static void load_certificate(loader *ld, const entry *e, cw_certificate *c, entry_aux *aux)
{
	const inv_defaults *def = &ld->def;
	size_t errors = ld->nerrors;
	c->name = cw_xstrdup(e->name);
	c->pos = e->pos;
	c->spec.path_len = -1;
	ld->cur_entry = c->name;
	char *what = cw_xasprintf("certificate '%s'", e->name);
	const cw_node *body;
	if (entry_body(ld, e, what, &body) != 0)
		goto out;
	if (body)
		check_keys(ld, body, what, certificate_keys);

	read_issuer(ld, e, body, what, c, aux);
	if (read_key_type(ld, body, what, &c->spec.key) <= 0)
		c->spec.key = def->key ? def->key : CW_KEY_EC_P256;
	read_sans(ld, body, what, &c->spec);
	if (!cw_node_get(body, "subject")) {
		c->spec.subject = subject_from_sans(&c->spec);
		if (!c->spec.subject)
			missing_key(ld, &e->pos, what, "subject",
				    "set subject:, or list a DNS or email SAN to name the certificate by");
	}
	read_subject(ld, body, what, &c->spec);
	if (read_usage(ld, body, what, &c->spec.usage) <= 0)
		c->spec.usage = def->has_usage ? def->usage
			      : CW_KU_DIGITAL_SIGNATURE | CW_EKU_SERVER_AUTH |
					(cw_key_type_is_rsa(c->spec.key) ? CW_KU_KEY_ENCIPHERMENT : 0);

	read_validity(ld, body, what, &e->pos,
		      def->lifetime ? def->lifetime : DEFAULT_LEAF_LIFETIME, 1, &c->spec);

	if (read_profiles(ld, body, what, &c->profiles, &c->nprofiles) == 0 && def->nprofiles) {
		c->profiles = cw_xcalloc(def->nprofiles, sizeof(char *));
		for (size_t i = 0; i < def->nprofiles; i++)
			c->profiles[c->nprofiles++] = cw_xstrdup(def->profiles[i]);
	}
	load_deployments(ld, body, what, c);
	read_revoked(ld, body, what, c);
	read_export(ld, body, what, c);
	c->revoke_superseded = -1; /* inherit the authority's unless set here */
	read_bool(ld, body, "revoke_superseded", what, &c->revoke_superseded);
out:
	free(what);
	aux->clean = ld->nerrors == errors;
	ld->cur_entry = NULL;
}

static void read_authority_type(loader *ld, const cw_node *body, const char *what, cw_authority *a)
{
	const char *s;
	const cw_node *n;
	int rc = get_scalar(ld, body, "type", what, &s, &n);
	a->type = cw_xstrdup(rc > 0 ? s : "local");
	if (rc <= 0 || !strcmp(s, "local"))
		return;
	if (!strcmp(s, "acme")) {
		ld_error(ld, &n->pos, CODE_AUTHORITY_TYPE, "only type: local works in this version",
			 "%s: type 'acme' is not supported yet", what);
		return;
	}
	char *hint = choice_hint(s, authority_types, "authority types");
	ld_error(ld, &n->pos, CODE_AUTHORITY_TYPE, hint, "%s: unknown type '%s'", what, s);
	free(hint);
}

static void read_path_len(loader *ld, const cw_node *body, const char *what, cw_authority *a)
{
	const char *s;
	const cw_node *n;
	long v;
	a->spec.path_len = -1;
	if (get_scalar(ld, body, "path_len", what, &s, &n) <= 0)
		return;
	if (cw_node_parse_int(s, &v) != 0 || v < 0 || v > INT_MAX) {
		ld_error(ld, &n->pos, CODE_PATH_LEN, "the number of intermediate authorities allowed below, 0 or more",
			 "%s: path_len '%s' is not an integer >= 0", what, s);
		return;
	}
	a->spec.path_len = (int)v;
}

static void read_crl(loader *ld, const cw_node *body, const char *what, cw_authority *a)
{
	const cw_node *crl;
	int rc = get_kind(ld, body, "crl", what, CW_NODE_MAP, &crl);
	if (rc < 0)
		return;
	if (rc == 0) {
		/* crl: {} or crl: with nothing means "publish one with the defaults" */
		const cw_node *n = cw_node_get(body, "crl");
		if (n && is_null(n))
			a->crl_lifetime = DEFAULT_CRL_LIFETIME;
		return;
	}
	char *cwhat = cw_xasprintf("%s crl", what);
	check_keys(ld, crl, cwhat, crl_keys);
	if (read_duration(ld, crl, "lifetime", cwhat, &a->crl_lifetime, NULL) <= 0)
		a->crl_lifetime = DEFAULT_CRL_LIFETIME;
	cw_srcpos rpos;
	if (read_renew(ld, crl, cwhat, &a->crl_renew, &rpos) > 0)
		check_renew(ld, cwhat, &a->crl_renew, a->crl_lifetime, &rpos, "");
	const char *url;
	const cw_node *n;
	if (get_scalar(ld, crl, "url", cwhat, &url, &n) > 0) {
		if (crl_url_ok(url))
			a->spec.crl_url = cw_xstrdup(url);
		else
			ld_error(ld, &n->pos, CODE_URL, "an http://, https:// or ldap:// URL with a host",
				 "%s: url '%s' is not a CRL distribution point", cwhat, url);
	}
	free(cwhat);
}

static void read_on_remove(loader *ld, const cw_node *body, const char *what, cw_authority *a)
{
	const char *s;
	const cw_node *n;
	if (get_scalar(ld, body, "on_remove", what, &s, &n) <= 0)
		return;
	if (in_list(s, on_remove_values)) {
		a->on_remove = cw_xstrdup(s);
		return;
	}
	char *hint = choice_hint(s, on_remove_values, "values");
	ld_error(ld, &n->pos, CODE_VALUE, hint, "%s: on_remove '%s' is not revoke or forget", what, s);
	free(hint);
}

static void load_authority(loader *ld, const entry *e, cw_authority *a, entry_aux *aux)
{
	size_t errors = ld->nerrors;
	a->name = cw_xstrdup(e->name);
	a->pos = e->pos;
	a->spec.is_ca = 1;
	a->spec.path_len = -1;
	a->spec.usage = CW_KU_KEY_CERT_SIGN | CW_KU_CRL_SIGN;
	ld->cur_entry = a->name;
	char *what = cw_xasprintf("authority '%s'", e->name);
	const cw_node *body;
	if (entry_body(ld, e, what, &body) != 0)
		goto out;
	if (body)
		check_keys(ld, body, what, authority_keys);

	read_authority_type(ld, body, what, a);
	if (!cw_node_get(body, "subject"))
		missing_key(ld, &e->pos, what, "subject", "e.g. subject: \"CN=Home VPN Root CA,C=JP\"");
	read_subject(ld, body, what, &a->spec);
	const char *parent;
	const cw_node *pn;
	if (get_scalar(ld, body, "parent", what, &parent, &pn) > 0) {
		a->parent = cw_xstrdup(parent);
		aux->ref_pos = pn->pos;
	}
	if (read_key_type(ld, body, what, &a->spec.key) <= 0)
		a->spec.key = ld->def.key ? ld->def.key : CW_KEY_EC_P256;

	/* defaults: checked renew_before against a leaf's lifetime, not an authority's */
	read_validity(ld, body, what, &e->pos,
		      a->parent ? DEFAULT_INTERMEDIATE_LIFETIME : DEFAULT_ROOT_LIFETIME, 0, &a->spec);

	read_path_len(ld, body, what, a);
	read_profiles(ld, body, what, &a->profiles, &a->nprofiles);
	a->crl_renew.is_percent = 1;
	a->crl_renew.percent = DEFAULT_RENEW_PERCENT;
	read_crl(ld, body, what, a);
	read_on_remove(ld, body, what, a);
	a->on_remove_revoke = !a->on_remove || !strcmp(a->on_remove, "revoke");
	read_bool(ld, body, "revoke_superseded", what, &a->revoke_superseded);
	if (read_duration(ld, body, "expiry_warning", what, &a->expiry_warning, NULL) <= 0)
		a->expiry_warning = DEFAULT_EXPIRY_WARNING;
out:
	free(what);
	aux->clean = ld->nerrors == errors;
	ld->cur_entry = NULL;
}

/* ---- targets ---- */

static void check_fields(loader *ld, const cw_node *map, const cw_field *schema, const char *what,
			 const char *extra_key, const cw_srcpos *owner_pos);

static const char *field_kind_expectation(cw_field_kind kind)
{
	switch (kind) {
	case CW_FIELD_INT: return "an integer";
	case CW_FIELD_BOOL: return "true or false";
	case CW_FIELD_DURATION: return "a duration such as 30s or 5m";
	case CW_FIELD_MODE: return "an octal file mode such as \"0640\"";
	case CW_FIELD_ADDRESS: return "host or host:port";
	case CW_FIELD_SECRET: return "a reference: env:NAME or file:PATH";
	case CW_FIELD_STRING_LIST: return "a list of strings";
	case CW_FIELD_MAP: return "a map";
	default: return "a string";
	}
}

/* A scalar value of the field's kind. Secrets never appear in a message. */
static void check_scalar_field(loader *ld, const cw_node *n, const cw_field *f, const char *what)
{
	const char *s = n->value;
	long iv;
	int bv;
	int64_t dv;
	unsigned mv;
	switch (f->kind) {
	case CW_FIELD_INT:
		if (cw_node_parse_int(s, &iv) != 0)
			ld_error(ld, &n->pos, CODE_VALUE, NULL, "%s: '%s' must be an integer, got '%s'",
				 what, f->name, s);
		break;
	case CW_FIELD_BOOL:
		if (cw_node_parse_bool(s, &bv) != 0)
			ld_error(ld, &n->pos, CODE_VALUE, "true, false, yes or no",
				 "%s: '%s' must be true or false, got '%s'", what, f->name, s);
		break;
	case CW_FIELD_DURATION:
		if (cw_parse_duration(s, &dv) != 0)
			ld_error(ld, &n->pos, CODE_DURATION, "write a duration such as 30s, 5m or 1h",
				 "%s: %s '%s' is not a duration", what, f->name, s);
		break;
	case CW_FIELD_MODE:
		if (cw_node_parse_mode(s, &mv) != 0)
			ld_error(ld, &n->pos, CODE_VALUE, "octal digits, e.g. \"0640\"",
				 "%s: '%s' must be a file mode, got '%s'", what, f->name, s);
		break;
	case CW_FIELD_ADDRESS:
		if (!address_ok(s))
			ld_error(ld, &n->pos, CODE_ADDRESS, "host, host:port or [IPv6]:port",
				 "%s: '%s' is not an address: '%s'", what, f->name, s);
		break;
	case CW_FIELD_SECRET:
		if (!strcmp(s, "env:") || !strcmp(s, "file:"))
			ld_error(ld, &n->pos, CODE_VALUE, "env:NAME or file:PATH",
				 "%s: '%s': the reference '%s' names nothing", what, f->name, s);
		else if (!cw_secret_is_ref(s))
			ld_error(ld, &n->pos, CODE_LITERAL_SECRET,
				 "keep the secret out of git: use env:NAME or file:PATH",
				 "%s: '%s': literal secret not allowed", what, f->name);
		break;
	default:
		break;
	}
}

static void check_field(loader *ld, const cw_node *n, const cw_field *f, const char *what,
			const cw_srcpos *key_pos)
{
	if (f->kind == CW_FIELD_MAP) {
		if (n->kind != CW_NODE_MAP) {
			type_error(ld, n, what, f->name, "a map");
			return;
		}
		if (f->sub) {
			char *sub_what = cw_xasprintf("%s %s", what, f->name);
			check_fields(ld, n, f->sub, sub_what, NULL, key_pos);
			free(sub_what);
		}
		return;
	}
	if (f->kind == CW_FIELD_STRING_LIST) {
		int ok = n->kind == CW_NODE_SEQ;
		for (size_t i = 0; ok && i < n->n; i++)
			ok = n->items[i]->kind == CW_NODE_SCALAR && !is_null(n->items[i]);
		if (!ok)
			type_error(ld, n, what, f->name, "a list of strings");
		return;
	}
	/* a quoted "" is a legitimate string; nothing else may be empty */
	if (n->kind != CW_NODE_SCALAR || is_null(n) ||
	    (!n->value[0] && f->kind != CW_FIELD_STRING)) {
		type_error(ld, n, what, f->name, field_kind_expectation(f->kind));
		return;
	}
	check_scalar_field(ld, n, f, what);
}

static void check_fields(loader *ld, const cw_node *map, const cw_field *schema, const char *what,
			 const char *extra_key, const cw_srcpos *owner_pos)
{
	size_t nfields = 0;
	while (schema && schema[nfields].name)
		nfields++;
	const char **allowed = cw_xcalloc(nfields + 2, sizeof(char *));
	for (size_t i = 0; i < nfields; i++)
		allowed[i] = schema[i].name;
	allowed[nfields] = extra_key;
	check_keys(ld, map, what, allowed);
	free(allowed);
	for (size_t i = 0; i < nfields; i++) {
		const cw_field *f = &schema[i];
		const cw_node *n = cw_node_get(map, f->name);
		if (!n) {
			if (f->required)
				missing_key(ld, owner_pos, what, f->name, f->doc);
			continue;
		}
		const cw_srcpos *key_pos = owner_pos;
		for (size_t k = 0; k < map->n; k++)
			if (map->items[k] == n)
				key_pos = &map->key_pos[k];
		check_field(ld, n, f, what, key_pos);
	}
}

static void load_target(loader *ld, const entry *e, cw_target *t)
{
	t->name = cw_xstrdup(e->name);
	t->pos = e->pos;
	ld->cur_target = t->name;
	char *what = cw_xasprintf("target '%s'", e->name);
	const cw_node *body;
	if (entry_body(ld, e, what, &body) != 0)
		goto out;
	const char *type;
	const cw_node *tn;
	int rc = get_scalar(ld, body, "type", what, &type, &tn);
	const char *const *names = cw_target_type_names();
	if (rc == 0) {
		char *hint = list_hint(names, "types");
		missing_key(ld, &e->pos, what, "type", hint);
		free(hint);
	}
	const cw_target_ops *ops = rc > 0 ? cw_target_type(type) : NULL;
	if (rc > 0) {
		t->type = cw_xstrdup(type);
		if (!ops) {
			char *hint = choice_hint(type, names, "known types");
			ld_error(ld, &tn->pos, CODE_TARGET_TYPE, hint, "%s: unknown type '%s'", what, type);
			free(hint);
		}
	}
	if (ops)
		check_fields(ld, body, ops->schema, what, "type", &e->pos);
	if (body) {
		/* the target type reads its own settings later: the model keeps the node */
		t->config = *e->body;
		*e->body = NULL;
	}
out:
	free(what);
	ld->cur_target = NULL;
}

/* ---- cross-entry checks ---- */

static const char **authority_name_list(const cw_inventory *inv)
{
	const char **names = cw_xcalloc(inv->nauthorities + 1, sizeof(char *));
	for (size_t i = 0; i < inv->nauthorities; i++)
		names[i] = inv->authorities[i].name;
	return names;
}

static void dangling_issuer(loader *ld, const char *what, const char *field, const char *name,
			    const cw_srcpos *pos, const char *const *authority_names)
{
	char *hint;
	if (cw_inventory_certificate(ld->inv, name))
		hint = cw_xasprintf("'%s' is a certificate; only authorities issue", name);
	else if (!authority_names[0])
		hint = cw_xstrdup("no authorities are defined");
	else
		hint = choice_hint(name, authority_names, "authorities");
	ld_error(ld, pos, CODE_DANGLING_ISSUER, hint, "%s: %s '%s' is not an authority", what, field,
		 name);
	free(hint);
}

static void resolve_certificate(loader *ld, cw_certificate *c, const entry_aux *aux,
				const char *const *authority_names, const char *const *target_names)
{
	cw_inventory *inv = ld->inv;
	ld->cur_entry = c->name;
	if (c->issuer)
		c->issuer_ref = cw_inventory_authority(inv, c->issuer);
	if (c->issuer && !c->issuer_ref && !ld->parse_failed) {
		if (!aux->ref_from_defaults) {
			char *what = cw_xasprintf("certificate '%s'", c->name);
			dangling_issuer(ld, what, "issuer", c->issuer, &aux->ref_pos, authority_names);
			free(what);
		} else if (!ld->def.issuer_reported) {
			/* the mistake is in defaults: say so once, not per certificate */
			ld->cur_entry = NULL;
			ld->def.issuer_reported = 1;
			dangling_issuer(ld, "defaults", "issuer", c->issuer, &aux->ref_pos,
					authority_names);
			ld->cur_entry = c->name;
		}
	}
	if (c->revoke_superseded < 0)
		c->revoke_superseded = c->issuer_ref ? c->issuer_ref->revoke_superseded : 0;
	for (size_t j = 0; j < c->ndeploy; j++) {
		cw_deployment *d = &c->deploy[j];
		d->target_ref = cw_inventory_target(inv, d->target);
		if (d->target_ref || ld->parse_failed)
			continue;
		char *hint = target_names[0] ? choice_hint(d->target, target_names, "targets")
					     : cw_xstrdup("no targets are defined");
		ld_error(ld, &d->pos, CODE_DANGLING_TARGET, hint,
			 "certificate '%s': target '%s' is not defined", c->name, d->target);
		free(hint);
	}
	ld->cur_entry = NULL;
}

static void resolve_references(loader *ld)
{
	cw_inventory *inv = ld->inv;
	const char **authority_names = authority_name_list(inv);
	const char **target_names = cw_xcalloc(inv->ntargets + 1, sizeof(char *));
	for (size_t i = 0; i < inv->ntargets; i++)
		target_names[i] = inv->targets[i].name;
	for (size_t i = 0; i < inv->nauthorities; i++) {
		cw_authority *a = &inv->authorities[i];
		if (!a->parent)
			continue;
		a->parent_ref = cw_inventory_authority(inv, a->parent);
		if (a->parent_ref || ld->parse_failed)
			continue;
		ld->cur_entry = a->name;
		char *what = cw_xasprintf("authority '%s'", a->name);
		dangling_issuer(ld, what, "parent", a->parent, &ld->aux[ENTRY_AUTHORITY][i].ref_pos,
				authority_names);
		free(what);
		ld->cur_entry = NULL;
	}
	for (size_t i = 0; i < inv->ncertificates; i++)
		resolve_certificate(ld, &inv->certificates[i], &ld->aux[ENTRY_CERTIFICATE][i],
				    authority_names, target_names);
	free(authority_names);
	free(target_names);
}

static void report_cycle(loader *ld, size_t start, char *in_cycle)
{
	cw_inventory *inv = ld->inv;
	cw_authority *a = &inv->authorities[start];
	cw_buf path = CW_BUF_INIT;
	cw_buf_adds(&path, a->name);
	for (cw_authority *p = a->parent_ref;; p = p->parent_ref) {
		in_cycle[p - inv->authorities] = 1;
		cw_buf_addf(&path, " -> %s", p->name);
		if (p == a)
			break;
	}
	ld->cur_entry = a->name;
	ld_error(ld, &ld->aux[ENTRY_AUTHORITY][start].ref_pos, CODE_CA_CYCLE,
		 "a chain of authorities must end in a root, one without parent:",
		 "authority '%s': parent cycle %s", a->name, path.buf);
	ld->cur_entry = NULL;
	cw_buf_release(&path);
}

/* An ancestor's path_len bounds how many authorities may stand between it and a leaf. */
static void check_path_len(loader *ld, size_t i)
{
	const cw_authority *a = &ld->inv->authorities[i];
	int depth = 1;
	for (const cw_authority *p = a->parent_ref; p; p = p->parent_ref, depth++) {
		if (p->spec.path_len < 0 || depth <= p->spec.path_len)
			continue;
		ld->cur_entry = a->name;
		char *hint = cw_xasprintf("raise path_len on '%s' to at least %d", p->name, depth);
		ld_error(ld, &ld->aux[ENTRY_AUTHORITY][i].ref_pos, CODE_PATH_LEN, hint,
			 "authority '%s': is %d level%s below '%s', whose path_len is %d", a->name,
			 depth, depth == 1 ? "" : "s", p->name, p->spec.path_len);
		free(hint);
		ld->cur_entry = NULL;
		return;
	}
}

static void check_authority_chains(loader *ld)
{
	cw_inventory *inv = ld->inv;
	size_t n = inv->nauthorities;
	char *in_cycle = cw_xcalloc(n ? n : 1, 1);
	for (size_t i = 0; i < n; i++) {
		cw_authority *a = &inv->authorities[i];
		const cw_authority *p = a->parent_ref;
		for (size_t steps = 0; p && p != a && steps <= n; steps++)
			p = p->parent_ref;
		if (p == a && !in_cycle[i])
			report_cycle(ld, i, in_cycle);
		else if (!p)
			check_path_len(ld, i);
		/* else: a leads into a cycle that one of its members reports */
	}
	free(in_cycle);
}

static void check_single_slot(loader *ld, const cw_target *t, const cw_target_ops *ops)
{
	const cw_inventory *inv = ld->inv;
	cw_buf names = CW_BUF_INIT;
	size_t count = 0;
	for (size_t i = 0; i < inv->ncertificates; i++)
		for (size_t j = 0; j < inv->certificates[i].ndeploy; j++)
			if (inv->certificates[i].deploy[j].target_ref == t) {
				cw_buf_addf(&names, "%s'%s'", count ? ", " : "",
					    inv->certificates[i].name);
				count++;
			}
	if (count > 1) {
		ld->cur_target = t->name;
		ld_error(ld, &t->pos, CODE_SINGLE_SLOT,
			 "the device holds one certificate: give each certificate its own target or combine the names into one",
			 "target '%s': type %s holds one certificate, but %s deploy to it", t->name,
			 ops->type, names.buf);
		ld->cur_target = NULL;
	}
	cw_buf_release(&names);
}

static void check_deployments(loader *ld)
{
	cw_inventory *inv = ld->inv;
	for (size_t i = 0; i < inv->ncertificates; i++) {
		const cw_certificate *c = &inv->certificates[i];
		for (size_t j = 0; j < c->ndeploy; j++) {
			const cw_deployment *d = &c->deploy[j];
			const cw_target *t = d->target_ref;
			const cw_target_ops *ops = t ? cw_target_type(t->type) : NULL;
			if (!ops)
				continue;
			if (d->nbind && !(ops->caps & CW_TARGET_CAN_BIND)) {
				ld->cur_entry = c->name;
				ld->cur_target = t->name;
				ld_error(ld, &d->pos, CODE_BIND, "remove bind: from this deployment",
					 "certificate '%s': target '%s' (type %s) has no services to bind",
					 c->name, t->name, ops->type);
				ld->cur_entry = ld->cur_target = NULL;
			}
			if (ops->check_deployment)
				ops->check_deployment(t->config, c->name, c->spec.key,
						      (const char *const *)d->bind, d->nbind, &d->pos,
						      ld->diags);
		}
	}
	for (size_t i = 0; i < inv->ntargets; i++) {
		const cw_target_ops *ops = cw_target_type(inv->targets[i].type);
		if (ops && ((ops->caps & CW_TARGET_SINGLE_SLOT) ||
			    (ops->single_slot && ops->single_slot(inv->targets[i].config))))
			check_single_slot(ld, &inv->targets[i], ops);
	}
}

/* Only entries that typed cleanly: a half-read spec would produce noise, not findings. */
static void check_policies(loader *ld)
{
	cw_inventory *inv = ld->inv;
	for (size_t i = 0; i < inv->nauthorities; i++) {
		const cw_authority *a = &inv->authorities[i];
		if (ld->aux[ENTRY_AUTHORITY][i].clean)
			cw_policy_check_spec((const char *const *)a->profiles, a->nprofiles, &a->spec,
					     a->name, &a->pos, ld->now, ld->diags);
	}
	for (size_t i = 0; i < inv->ncertificates; i++) {
		const cw_certificate *c = &inv->certificates[i];
		if (ld->aux[ENTRY_CERTIFICATE][i].clean)
			cw_policy_check_spec((const char *const *)c->profiles, c->nprofiles, &c->spec,
					     c->name, &c->pos, ld->now, ld->diags);
	}
}

/* ---- putting it together ---- */

static void load_entries(loader *ld)
{
	cw_inventory *inv = ld->inv;
	size_t na = ld->entries[ENTRY_AUTHORITY].n, nc = ld->entries[ENTRY_CERTIFICATE].n,
	       nt = ld->entries[ENTRY_TARGET].n;
	inv->authorities = cw_xcalloc(na ? na : 1, sizeof(cw_authority));
	inv->certificates = cw_xcalloc(nc ? nc : 1, sizeof(cw_certificate));
	inv->targets = cw_xcalloc(nt ? nt : 1, sizeof(cw_target));
	ld->aux[ENTRY_AUTHORITY] = cw_xcalloc(na ? na : 1, sizeof(entry_aux));
	ld->aux[ENTRY_CERTIFICATE] = cw_xcalloc(nc ? nc : 1, sizeof(entry_aux));
	/* counts follow each step, so the model is always consistent for release */
	for (size_t i = 0; i < na; i++, inv->nauthorities++)
		load_authority(ld, &ld->entries[ENTRY_AUTHORITY].v[i], &inv->authorities[i],
			       &ld->aux[ENTRY_AUTHORITY][i]);
	for (size_t i = 0; i < nc; i++, inv->ncertificates++)
		load_certificate(ld, &ld->entries[ENTRY_CERTIFICATE].v[i], &inv->certificates[i],
				 &ld->aux[ENTRY_CERTIFICATE][i]);
	for (size_t i = 0; i < nt; i++, inv->ntargets++)
		load_target(ld, &ld->entries[ENTRY_TARGET].v[i], &inv->targets[i]);
}

static void compute_digest(cw_inventory *inv, const cw_inventory_file *files, size_t n)
{
	cw_buf all = CW_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		const char *name = files[i].name ? files[i].name : "(unnamed)";
		cw_buf_add(&all, name, strlen(name) + 1);
		if (files[i].data)
			cw_buf_add(&all, files[i].data, files[i].len);
		cw_buf_add(&all, "", 1);
	}
	cw_sha256_hex(all.buf ? all.buf : "", all.len, inv->digest);
	cw_buf_release(&all);
}

static void loader_release(loader *ld)
{
	for (size_t i = 0; i < ld->nroots; i++)
		cw_node_free(ld->roots[i]);
	free(ld->roots);
	for (int k = 0; k < ENTRY_KINDS; k++)
		free(ld->entries[k].v);
	free_strings(ld->def.profiles, ld->def.nprofiles);
	free(ld->aux[ENTRY_AUTHORITY]);
	free(ld->aux[ENTRY_CERTIFICATE]);
}

int cw_inventory_load_files(cw_inventory *inv, const cw_inventory_file *files, size_t n,
			    time_t now, cw_diags *diags)
{
	memset(inv, 0, sizeof(*inv));
	size_t errors_before = cw_diags_count(diags, CW_SEV_ERROR);
	loader ld;
	memset(&ld, 0, sizeof(ld));
	ld.inv = inv;
	ld.diags = diags;
	ld.now = now;

	compute_digest(inv, files, n);
	parse_files(&ld, files, n);
	load_defaults(&ld);
	load_report(&ld);
	load_entries(&ld);
	resolve_references(&ld);
	check_authority_chains(&ld);
	check_deployments(&ld);
	check_policies(&ld);
	loader_release(&ld);
	return cw_diags_count(diags, CW_SEV_ERROR) > errors_before ? -1 : 0;
}

/* ---- reading a folder ---- */

static int has_yaml_suffix(const char *name)
{
	size_t n = strlen(name);
	return (n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml"));
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular *.yaml / *.yml files directly in dir, sorted; hidden files (editor swap files,
 * ".#x.yaml" locks) are not inventory. */
static int list_yaml_files(const char *dir, char ***out, size_t *nout, cw_error *err)
{
	*out = NULL;
	*nout = 0;
	DIR *d = opendir(dir);
	if (!d)
		return cw_error_set(err, CW_EIO, "inventory folder %s: cannot open: %s", dir,
				    strerror(errno));
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !has_yaml_suffix(de->d_name))
			continue;
		char *path = cw_path_join(dir, de->d_name);
		struct stat st;
		int regular = stat(path, &st) == 0 && S_ISREG(st.st_mode);
		free(path);
		if (!regular)
			continue;
		if (*nout == cap) {
			cap = cap ? cap * 2 : 8;
			*out = cw_xrealloc(*out, cap * sizeof(char *));
		}
		(*out)[(*nout)++] = cw_xstrdup(de->d_name);
	}
	closedir(d);
	if (*nout)
		qsort(*out, *nout, sizeof(char *), cmp_names);
	return 0;
}

int cw_inventory_load_dir(cw_inventory *inv, const char *dir, const char *display_prefix,
			  time_t now, cw_diags *diags, cw_error *err)
{
	memset(inv, 0, sizeof(*inv));
	char **names;
	size_t n;
	if (list_yaml_files(dir, &names, &n, err) != 0)
		return -1;
	const char *shown = display_prefix ? display_prefix : dir;
	if (n == 0) {
		cw_diag_add(diags, CW_SEV_ERROR, NULL, CODE_NO_FILES,
			    "inventory files end in .yaml or .yml", "no inventory files in %s", shown);
		free(names);
		return -1;
	}
	cw_inventory_file *files = cw_xcalloc(n, sizeof(*files));
	cw_buf *contents = cw_xcalloc(n, sizeof(*contents));
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char *path = cw_path_join(dir, names[i]);
		rc = cw_read_file(path, INVENTORY_FILE_MAX, &contents[i], err);
		free(path);
		files[i].name = *shown ? cw_xasprintf("%s/%s", shown, names[i]) : cw_xstrdup(names[i]);
		files[i].data = contents[i].buf;
		files[i].len = contents[i].len;
	}
	if (rc == 0)
		rc = cw_inventory_load_files(inv, files, n, now, diags);
	for (size_t i = 0; i < n; i++) {
		free((char *)files[i].name);
		cw_buf_release(&contents[i]);
		free(names[i]);
	}
	free(files);
	free(contents);
	free(names);
	return rc;
}
