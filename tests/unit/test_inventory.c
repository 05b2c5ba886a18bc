/*
 * test_inventory — YAML -> node trees -> validated model (reconcile/inventory.c,
 * reconcile/model.c, common/node.c).
 *
 * Every error class has a test that pins the diagnostic's code, file, line, column and
 * hint, because those are what a reviewer reading CI output relies on. Target types
 * are fakes registered here, so these tests do not depend on any real adapter.
 */
#include "testutil.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/node.h"
#include "reconcile/inventory.h"
#include "reconcile/model.h"
#include "targets/target.h"

#define NOW ((time_t)1767225600) /* 2026-01-01T00:00:00Z */
#define DAY INT64_C(86400)

/* ---- fake target types ---- */

static const cw_field fake_files_fields[] = {
	{ "cert", CW_FIELD_PATH, 1, NULL, "certificate file name" },
	{ "key", CW_FIELD_PATH, 0, NULL, "key file name" },
	{ NULL, 0, 0, NULL, NULL },
};

static const cw_field fake_schema[] = {
	{ "address", CW_FIELD_ADDRESS, 1, NULL, "host:port of the device" },
	{ "password", CW_FIELD_SECRET, 0, NULL, "admin password" },
	{ "retries", CW_FIELD_INT, 0, NULL, "attempts" },
	{ "verify", CW_FIELD_BOOL, 0, NULL, "check after deploy" },
	{ "timeout", CW_FIELD_DURATION, 0, NULL, "per call" },
	{ "mode", CW_FIELD_MODE, 0, NULL, "file mode" },
	{ "files", CW_FIELD_MAP, 0, fake_files_fields, "file names" },
	{ "reload", CW_FIELD_STRING_LIST, 0, NULL, "argv" },
	{ "comment", CW_FIELD_STRING, 0, NULL, "free text" },
	{ NULL, 0, 0, NULL, NULL },
};

static const cw_field fake_single_schema[] = {
	{ "address", CW_FIELD_ADDRESS, 1, NULL, "host:port" },
	{ NULL, 0, 0, NULL, NULL },
};

/* A device that cannot carry spaces in service names and refuses ed25519. */
static void fake_check_deployment(const cw_node *config, const char *cert_name, cw_key_type key,
				  const char *const *bind, size_t nbind, const cw_srcpos *pos,
				  cw_diags *diags)
{
	for (size_t i = 0; i < nbind; i++)
		if (strchr(bind[i], ' '))
			cw_diag_add(diags, CW_SEV_ERROR, pos, "fake.bind-name", NULL,
				    "certificate '%s': bind name '%s' has a space", cert_name, bind[i]);
	if (key == CW_KEY_ED25519)
		cw_diag_add(diags, CW_SEV_ERROR, pos, "fake.key-type", NULL,
			    "certificate '%s': the device refuses ed25519", cert_name);
}

static const cw_target_ops fake_ops = {
	.api_version = CW_TARGET_API_VERSION,
	.type = "fake",
	.caps = CW_TARGET_CAN_BIND,
	.schema = fake_schema,
	.check_deployment = fake_check_deployment,
};

static const cw_target_ops fake_single_ops = {
	.api_version = CW_TARGET_API_VERSION,
	.type = "fake-single",
	.caps = CW_TARGET_SINGLE_SLOT,
	.schema = fake_single_schema,
};

static int register_fakes(void **state)
{
	(void)state;
	if (cw_target_register(&fake_ops) != 0 || cw_target_register(&fake_single_ops) != 0)
		return -1;
	return 0;
}

/* ---- helpers ---- */

typedef struct {
	cw_inventory inv;
	cw_diags diags;
	int rc;
} loaded;

/* Loads (name, text) pairs, NULL-terminated. */
static void load_texts(loaded *l, ...)
{
	cw_inventory_file files[8];
	size_t n = 0;
	va_list ap;
	va_start(ap, l);
	for (const char *name; (name = va_arg(ap, const char *));) {
		assert_true(n < 8);
		files[n].name = name;
		files[n].data = va_arg(ap, const char *);
		files[n].len = strlen(files[n].data);
		n++;
	}
	va_end(ap);
	cw_diags_init(&l->diags);
	l->rc = cw_inventory_load_files(&l->inv, files, n, NOW, &l->diags);
}

static void load_text(loaded *l, const char *yaml)
{
	load_texts(l, "inv.yaml", yaml, NULL);
}

static void loaded_release(loaded *l)
{
	cw_inventory_release(&l->inv);
	cw_diags_release(&l->diags);
}

static void dump_diags(const cw_diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		cw_buf b = CW_BUF_INIT;
		cw_diag_format(&d->items[i], &b);
		fprintf(stderr, "  diag: %s\n", b.buf);
		cw_buf_release(&b);
	}
}

static size_t count_code(const loaded *l, const char *code)
{
	size_t n = 0;
	for (size_t i = 0; i < l->diags.n; i++)
		if (!strcmp(l->diags.items[i].code, code))
			n++;
	return n;
}

static size_t count_prefix(const loaded *l, const char *prefix)
{
	size_t n = 0;
	for (size_t i = 0; i < l->diags.n; i++)
		if (!strncmp(l->diags.items[i].code, prefix, strlen(prefix)))
			n++;
	return n;
}

/* The diagnostic with this code at this place; fails the test (listing all) if none. */
static const cw_diag *expect_diag(const loaded *l, const char *code, const char *file, int line,
				  int col)
{
	for (size_t i = 0; i < l->diags.n; i++) {
		const cw_diag *d = &l->diags.items[i];
		if (!strcmp(d->code, code) && d->file && !strcmp(d->file, file) && d->line == line &&
		    d->col == col)
			return d;
	}
	dump_diags(&l->diags);
	fail_msg("no %s at %s:%d:%d", code, file, line, col);
	return NULL;
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!haystack || !strstr(haystack, needle))
		fail_msg("'%s' does not contain '%s'", haystack ? haystack : "(null)", needle);
}

/* A load that must fail with exactly the one finding expected (plus nothing else). */
static const cw_diag *expect_only(const loaded *l, const char *code, int line, int col)
{
	if (l->rc != -1 || l->diags.n != 1)
		dump_diags(&l->diags);
	assert_int_equal(l->rc, -1);
	assert_int_equal(l->diags.n, 1);
	return expect_diag(l, code, "inv.yaml", line, col);
}

/* Four lines every snippet below starts with: a version and one root authority. */
#define BASE "version: 1\n"             \
	     "authorities:\n"           \
	     "  root:\n"                \
	     "    subject: \"CN=Root CA\"\n"

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = calloc(1, 1 << 16);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static char *data_path(const char *rel)
{
	const char *root = getenv("CW_TEST_DATA");
	assert_non_null(root);
	return cw_path_join(root, rel);
}

/* ---- the valid inventory ---- */

static void assert_digest(const cw_inventory *inv, const char *dir)
{
	static const char *const names[] = { "00-base.yaml", "10-authorities.yaml",
					     "20-certificates.yaml", "30-targets.yml" };
	cw_buf all = CW_BUF_INIT;
	for (size_t i = 0; i < 4; i++) {
		char *shown = cw_xasprintf("inventory/%s", names[i]);
		char *path = cw_path_join(dir, names[i]);
		char *text = read_text(path);
		cw_buf_add(&all, shown, strlen(shown) + 1);
		cw_buf_add(&all, text, strlen(text) + 1);
		free(shown);
		free(path);
		free(text);
	}
	char want[65];
	cw_sha256_hex(all.buf, all.len, want);
	assert_string_equal(inv->digest, want);
	cw_buf_release(&all);
}

static void assert_authorities(const cw_inventory *inv)
{
	assert_int_equal(inv->nauthorities, 2);
	const cw_authority *root = cw_inventory_authority(inv, "home-root");
	const cw_authority *sub = cw_inventory_authority(inv, "home-int");
	assert_ptr_equal(root, &inv->authorities[0]);
	assert_ptr_equal(sub, &inv->authorities[1]);
	assert_string_equal(root->pos.file, "inventory/10-authorities.yaml");
	assert_int_equal(root->pos.line, 2);
	assert_int_equal(root->pos.col, 3);
	assert_string_equal(root->type, "local");
	assert_null(root->parent);
	assert_null(root->parent_ref);
	assert_string_equal(root->spec.subject, "CN=Home Root CA,O=Example,C=JP");
	assert_int_equal(root->spec.key, CW_KEY_EC_P384);
	assert_true(root->spec.is_ca);
	assert_int_equal(root->spec.usage, CW_KU_KEY_CERT_SIGN | CW_KU_CRL_SIGN);
	assert_int_equal(root->spec.lifetime, 3650 * DAY);         /* root default */
	assert_false(root->spec.renew.is_percent);                 /* defaults: 30d */
	assert_int_equal(root->spec.renew.seconds, 30 * DAY);
	assert_int_equal(root->spec.path_len, 1);
	assert_int_equal(root->nprofiles, 1);
	assert_string_equal(root->profiles[0], "private-ca");
	assert_int_equal(root->crl_lifetime, 14 * DAY);
	assert_string_equal(root->spec.crl_url, "http://pki.example.net/crl/home-root.crl");
	assert_string_equal(root->on_remove, "revoke");

	assert_string_equal(sub->parent, "home-root");
	assert_ptr_equal(sub->parent_ref, root);
	assert_int_equal(sub->spec.key, CW_KEY_EC_P256);            /* defaults.key */
	assert_int_equal(sub->spec.lifetime, 1825 * DAY);          /* intermediate default */
	assert_int_equal(sub->spec.renew.seconds, 60 * DAY);
	assert_int_equal(sub->spec.path_len, -1);
	assert_int_equal(sub->crl_lifetime, 7 * DAY);               /* crl: {} */
	assert_null(sub->spec.crl_url);
	assert_null(sub->on_remove);
	assert_int_equal(sub->nprofiles, 0);                        /* defaults.profile is for leaves */
}

static void assert_vpn_server(const cw_inventory *inv)
{
	const cw_certificate *c = cw_inventory_certificate(inv, "vpn-server");
	assert_non_null(c);
	assert_string_equal(c->issuer, "home-int");                 /* defaults.issuer */
	assert_ptr_equal(c->issuer_ref, cw_inventory_authority(inv, "home-int"));
	assert_string_equal(c->spec.subject, "CN=vpn.example.net"); /* first DNS SAN */
	assert_int_equal(c->spec.nsans, 3);
	assert_int_equal(c->spec.sans[0].type, CW_SAN_DNS);
	assert_string_equal(c->spec.sans[0].value, "vpn.example.net");
	assert_int_equal(c->spec.sans[1].type, CW_SAN_IP);           /* "ip:" any case */
	assert_string_equal(c->spec.sans[1].value, "192.0.2.1");
	assert_int_equal(c->spec.sans[2].type, CW_SAN_IP);
	assert_string_equal(c->spec.sans[2].value, "2001:db8::1");
	assert_int_equal(c->spec.key, CW_KEY_RSA2048);
	/* default usage, plus key-encipherment because the key is RSA */
	assert_int_equal(c->spec.usage,
			 CW_KU_DIGITAL_SIGNATURE | CW_KU_KEY_ENCIPHERMENT | CW_EKU_SERVER_AUTH);
	assert_false(c->spec.is_ca);
	assert_int_equal(c->spec.lifetime, 397 * DAY);
	assert_int_equal(c->spec.renew.seconds, 30 * DAY);
	assert_int_equal(c->nprofiles, 1);
	assert_string_equal(c->profiles[0], "ios");
	assert_int_equal(c->ndeploy, 2);
	assert_string_equal(c->deploy[0].target, "edge");
	assert_ptr_equal(c->deploy[0].target_ref, cw_inventory_target(inv, "edge"));
	assert_int_equal(c->deploy[0].nbind, 2);
	assert_string_equal(c->deploy[0].bind[0], "www-ssl");
	assert_string_equal(c->deploy[0].bind[1], "sstp-server");
	assert_int_equal(c->deploy[0].pos.line, 6);
	assert_int_equal(c->deploy[0].pos.col, 9);
	assert_ptr_equal(c->deploy[1].target_ref, cw_inventory_target(inv, "box"));
	assert_int_equal(c->deploy[1].nbind, 0);
}

static void assert_other_certificates(const cw_inventory *inv)
{
	const cw_certificate *u = cw_inventory_certificate(inv, "user1");
	assert_non_null(u);
	assert_ptr_equal(u->issuer_ref, cw_inventory_authority(inv, "home-root"));
	assert_string_equal(u->spec.subject, "CN=user1@vpn.example.net");
	assert_int_equal(u->spec.sans[0].type, CW_SAN_EMAIL);
	assert_int_equal(u->spec.sans[1].type, CW_SAN_URI);
	assert_string_equal(u->spec.sans[1].value, "urn:example:user1");
	assert_int_equal(u->spec.usage, CW_KU_DIGITAL_SIGNATURE | CW_EKU_CLIENT_AUTH);
	assert_int_equal(u->spec.lifetime, 730 * DAY);
	assert_true(u->spec.renew.is_percent);
	assert_int_equal(u->spec.renew.percent, 25);
	assert_int_equal(u->nprofiles, 0);                          /* profile: [] overrides */
	assert_int_equal(u->ndeploy, 0);
	assert_true(u->revoked);                                    /* revoked: {reason: ...} */
	assert_string_equal(u->revoke_reason, "key-compromise");
	assert_int_equal(u->revoked_pos.line, 17);
	assert_true(u->export.enabled);                             /* export: {path, pkcs12} */
	assert_string_equal(u->export.path, "/srv/certwright/bundles");
	assert_string_equal(u->export.passphrase, "env:USER1_P12_PASSPHRASE");
	assert_false(u->export.legacy);
	assert_true(u->export.chain);

	const cw_certificate *w = cw_inventory_certificate(inv, "wild");
	assert_ptr_equal(w, &inv->certificates[2]);
	assert_string_equal(w->spec.subject, "CN=*.example.net");
	assert_int_equal(w->spec.key, CW_KEY_EC_P256);
	assert_int_equal(w->spec.usage, CW_KU_DIGITAL_SIGNATURE | CW_EKU_SERVER_AUTH);
	assert_null(cw_inventory_certificate(inv, "home-root")); /* an authority, not a certificate */
	assert_null(cw_inventory_certificate(inv, "nope"));
}

static void assert_targets(const cw_inventory *inv)
{
	assert_int_equal(inv->ntargets, 2);
	const cw_target *edge = cw_inventory_target(inv, "edge");
	assert_non_null(edge);
	assert_string_equal(edge->type, "fake");
	assert_string_equal(edge->pos.file, "inventory/30-targets.yml");
	const cw_node *cfg = edge->config;
	assert_non_null(cfg);
	assert_string_equal(cw_node_str(cfg, "address", NULL), "192.0.2.1:22");
	assert_string_equal(cw_node_str(cfg, "password", NULL), "env:EDGE_PASSWORD");
	assert_int_equal(cw_node_int(cfg, "retries", 0), 3);
	assert_int_equal(cw_node_bool(cfg, "verify", 0), 1);
	assert_int_equal(cw_node_duration(cfg, "timeout", 0), 30);
	assert_int_equal(cw_node_mode(cfg, "mode", 0), 0640);
	const cw_node *files = cw_node_get(cfg, "files");
	assert_non_null(files);
	assert_string_equal(cw_node_str(files, "cert", NULL), "server.pem");
	/* positions in kept nodes point at the inventory's own copy of the file name */
	assert_ptr_equal(files->pos.file, inv->files[3]);
	assert_int_equal(cw_node_get(cfg, "reload")->n, 3);
	assert_string_equal(cw_inventory_target(inv, "box")->type, "fake-single");
}

static void test_valid_multi_file_dir(void **state)
{
	(void)state;
	char *dir = data_path("inventory/valid");
	cw_inventory inv;
	cw_diags diags;
	cw_error err = { 0 };
	cw_diags_init(&diags);
	int rc = cw_inventory_load_dir(&inv, dir, "inventory", NOW, &diags, &err);
	if (rc != 0 || cw_diags_count(&diags, CW_SEV_ERROR))
		dump_diags(&diags);
	assert_int_equal(rc, 0);
	assert_int_equal(cw_diags_count(&diags, CW_SEV_ERROR), 0);
	assert_int_equal(inv.nfiles, 4); /* .hidden.yaml and notes.txt are not inventory */
	assert_string_equal(inv.files[0], "inventory/00-base.yaml");
	assert_string_equal(inv.files[3], "inventory/30-targets.yml");
	assert_int_equal(inv.version, 1);
	assert_string_equal(inv.report_dir, "state/certs");
	assert_int_equal(inv.ncertificates, 3);
	assert_authorities(&inv);
	assert_vpn_server(&inv);
	assert_other_certificates(&inv);
	assert_targets(&inv);
	assert_digest(&inv, dir);
	cw_inventory_release(&inv);
	cw_diags_release(&diags);
	free(dir);
}

static void test_digest_depends_on_names_and_content(void **state)
{
	(void)state;
	loaded a, b, c;
	load_texts(&a, "x.yaml", "version: 1\n", NULL);
	load_texts(&b, "y.yaml", "version: 1\n", NULL);
	load_texts(&c, "x.yaml", "version: 1 \n", NULL);
	assert_int_equal(a.rc, 0);
	assert_string_not_equal(a.inv.digest, b.inv.digest);
	assert_string_not_equal(a.inv.digest, c.inv.digest);
	assert_int_equal(strlen(a.inv.digest), 64);
	assert_string_equal(a.inv.report_dir, "certwright-state"); /* default */
	loaded_release(&a);
	loaded_release(&b);
	loaded_release(&c);
}

static void test_empty_files_are_fine(void **state)
{
	(void)state;
	loaded l;
	load_texts(&l, "a.yaml", "", "b.yaml", "# nothing yet\n", "c.yaml",
		   "version: 1\ncertificates:\ntargets: ~\n", NULL);
	if (l.rc)
		dump_diags(&l.diags);
	assert_int_equal(l.rc, 0);
	assert_int_equal(l.diags.n, 0);
	assert_int_equal(l.inv.ncertificates, 0);
	loaded_release(&l);
}

/* ---- one test per error class ---- */

static void test_yaml_syntax_error(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, "version: 1\n"
		      "certificates:\n"
		      "  vpn: {issuer: root\n"
		      "  mail: {}\n");
	assert_int_equal(l.rc, -1);
	assert_int_equal(l.diags.n, 1);
	const cw_diag *d = &l.diags.items[0];
	assert_string_equal(d->code, "inventory.yaml");
	assert_string_equal(d->file, "inv.yaml");
	assert_int_equal(d->line, 4);
	assert_contains(d->message, "yaml:");
	assert_contains(d->hint, "line 3"); /* where the unclosed flow map started */
	loaded_release(&l);

	load_text(&l, "version: 1\ncertificates:\n\tvpn: {}\n");
	const cw_diag *tab = expect_diag(&l, "inventory.yaml", "inv.yaml", 3, 1);
	assert_contains(tab->hint, "tabs");
	loaded_release(&l);

	load_text(&l, "version: 1\nauthorities:\n  root:\n    subject: \"CN=x\n");
	assert_int_equal(l.rc, -1);
	assert_int_equal(count_code(&l, "inventory.yaml"), 1);
	assert_contains(l.diags.items[0].hint, "quoted scalar at line 4, column 14");
	loaded_release(&l);
}

static void test_yaml_features_refused(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, "version: 1\n"
		      "defaults: &d\n"
		      "  key: rsa-2048\n"
		      "report: *d\n");
	assert_int_equal(l.rc, -1);
	assert_contains(expect_diag(&l, "inventory.yaml", "inv.yaml", 2, 11)->message, "anchor '&d'");
	assert_contains(expect_diag(&l, "inventory.yaml", "inv.yaml", 4, 9)->message, "alias '*d'");
	loaded_release(&l);

	load_text(&l, "version: 1\n---\nversion: 1\n");
	assert_contains(expect_diag(&l, "inventory.yaml", "inv.yaml", 2, 1)->message,
			"second document");
	loaded_release(&l);

	load_text(&l, "version: !vault 1\n");
	assert_contains(expect_diag(&l, "inventory.yaml", "inv.yaml", 1, 10)->message, "tag '!vault'");
	loaded_release(&l);
}

static void test_unknown_key(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:vpn.example.net\"]\n"
			   "    subjet: \"CN=vpn\"\n");
	const cw_diag *d = expect_only(&l, "inventory.unknown-key", 9, 5);
	assert_string_equal(d->hint, "did you mean 'subject'?");
	assert_string_equal(d->message, "certificate 'vpn': unknown key 'subjet'");
	assert_string_equal(d->certificate, "vpn");
	loaded_release(&l);

	load_text(&l, BASE "certficates: {}\n");
	d = expect_only(&l, "inventory.unknown-key", 5, 1);
	assert_string_equal(d->hint, "did you mean 'certificates'?");
	loaded_release(&l);

	/* nothing close: the hint lists what is known */
	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:vpn.example.net\"]\n"
			   "    deploy: [{target: t, zzzzzz: 1}]\n"
			   "targets:\n  t: {type: fake, address: h}\n");
	d = expect_only(&l, "inventory.unknown-key", 9, 26);
	assert_string_equal(d->hint, "known keys: target, bind");
	loaded_release(&l);
}

static void test_duplicate_key(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:a.example.net\"]\n"
			   "    issuer: root\n");
	const cw_diag *d = expect_only(&l, "inventory.duplicate-key", 9, 5);
	assert_contains(d->message, "key 'issuer' appears twice");
	assert_contains(d->message, "first at line 7, column 5");
	loaded_release(&l);
}

static void test_duplicate_name(void **state)
{
	(void)state;
	loaded l;
	load_texts(&l, "a.yaml", BASE, "b.yaml",
		   "authorities:\n"
		   "  root:\n"
		   "    subject: \"CN=Other\"\n", NULL);
	assert_int_equal(l.rc, -1);
	assert_int_equal(l.diags.n, 1);
	const cw_diag *d = expect_diag(&l, "inventory.duplicate-name", "b.yaml", 2, 3);
	assert_string_equal(d->message, "authority 'root': defined twice (first at a.yaml:3:3)");
	assert_string_equal(d->hint, "names must be unique across all inventory files");
	assert_string_equal(d->certificate, "root");
	assert_int_equal(l.inv.nauthorities, 1);
	assert_string_equal(l.inv.authorities[0].spec.subject, "CN=Root CA"); /* the first stands */
	loaded_release(&l);

	/* an authority and a certificate are both stored by name: one namespace */
	load_texts(&l, "a.yaml", BASE, "b.yaml",
		   "certificates:\n"
		   "  root:\n"
		   "    issuer: root\n"
		   "    sans: [\"DNS:root.example.net\"]\n", NULL);
	d = expect_diag(&l, "inventory.duplicate-name", "b.yaml", 2, 3);
	assert_contains(d->message, "already used by authority 'root' at a.yaml:3:3");
	loaded_release(&l);

	/* targets have names of their own */
	load_text(&l, BASE "targets:\n  root: {type: fake, address: h}\n");
	assert_int_equal(l.rc, 0);
	loaded_release(&l);
}

static void test_duplicate_section(void **state)
{
	(void)state;
	loaded l;
	load_texts(&l, "a.yaml", BASE "defaults:\n  key: rsa-2048\n", "b.yaml",
		   "defaults:\n  key: rsa-3072\nreport:\n  path: x\n", "c.yaml", "report: {path: y}\n",
		   NULL);
	assert_int_equal(l.rc, -1);
	const cw_diag *d = expect_diag(&l, "inventory.duplicate-section", "b.yaml", 1, 1);
	assert_string_equal(d->message, "defaults: already set at a.yaml:5:1");
	assert_string_equal(d->hint, "only one inventory file may hold 'defaults:'");
	expect_diag(&l, "inventory.duplicate-section", "c.yaml", 1, 1);
	assert_int_equal(l.diags.n, 2);
	assert_int_equal(l.inv.authorities[0].spec.key, CW_KEY_RSA2048); /* the first one counts */
	loaded_release(&l);
}

static void test_type_errors(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    sans: \"DNS:vpn.example.net\"\n"
			   "    deploy: {target: x}\n");
	assert_int_equal(l.rc, -1);
	const cw_diag *d = expect_diag(&l, "inventory.type", "inv.yaml", 8, 11);
	assert_string_equal(d->message, "certificate 'vpn': 'sans' must be a list, got a string");
	d = expect_diag(&l, "inventory.type", "inv.yaml", 9, 13);
	assert_string_equal(d->message, "certificate 'vpn': 'deploy' must be a list, got a map");
	loaded_release(&l);

	load_text(&l, BASE "certificates: [a, b]\n");
	d = expect_only(&l, "inventory.type", 5, 15);
	assert_contains(d->message, "'certificates' must be a map of name: settings, got a list");
	loaded_release(&l);

	load_text(&l, BASE "certificates:\n  vpn: [1]\n");
	d = expect_only(&l, "inventory.type", 6, 8);
	assert_string_equal(d->message, "certificate 'vpn': settings must be a map, got a list");
	loaded_release(&l);

	load_text(&l, "- version: 1\n");
	expect_only(&l, "inventory.type", 1, 1);
	loaded_release(&l);

	/* revoked: and export: are maps */
	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:vpn.example.net\"]\n"
			   "    revoked: yes\n");
	d = expect_only(&l, "inventory.type", 9, 14);
	assert_string_equal(d->message, "certificate 'vpn': 'revoked' must be a map, got a string");
	loaded_release(&l);
}

static void test_revocation_and_export_settings(void **state)
{
	(void)state;
	loaded l;
	const cw_diag *d;
	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:vpn.example.net\"]\n"
			   "    revoked: {reason: key-compromize}\n");
	d = expect_only(&l, "inventory.value", 9, 23);
	assert_string_equal(d->hint, "did you mean 'key-compromise'?");
	loaded_release(&l);

	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:vpn.example.net\"]\n"
			   "    revoked: {reason: certificate-hold}\n");
	d = expect_only(&l, "inventory.value", 9, 23);
	assert_non_null(strstr(d->hint, "final"));
	loaded_release(&l);

	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    sans: [\"email:u@example.net\"]\n"
			   "    export: {path: /srv/b, pkcs12: {passphrase: hunter2}}\n");
	d = expect_only(&l, "inventory.literal-secret", 9, 49);
	assert_null(strstr(d->message, "hunter2"));
	loaded_release(&l);

	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    sans: [\"email:u@example.net\"]\n"
			   "    export: {path: relative/dir, pkcs12: {passphrase: \"env:P\"}}\n");
	d = expect_only(&l, "inventory.value", 9, 20);
	assert_non_null(strstr(d->message, "not absolute"));
	loaded_release(&l);
}

static void test_missing_keys(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, "version: 1\n"
		      "authorities:\n"
		      "  root: {}\n"
		      "certificates:\n"
		      "  vpn:\n"
		      "    sans: [\"IP:192.0.2.1\"]\n");
	assert_int_equal(l.rc, -1);
	assert_contains(expect_diag(&l, "inventory.missing-key", "inv.yaml", 3, 3)->message,
			"authority 'root': missing key 'subject'");
	assert_contains(expect_diag(&l, "inventory.missing-key", "inv.yaml", 5, 3)->message,
			"missing key 'issuer'");
	const cw_diag *d = NULL;
	for (size_t i = 0; i < l.diags.n; i++)
		if (strstr(l.diags.items[i].message, "'subject'") && l.diags.items[i].line == 5)
			d = &l.diags.items[i];
	assert_non_null(d); /* an IP SAN alone cannot name the certificate */
	assert_contains(d->hint, "DNS or email SAN");
	assert_int_equal(l.diags.n, 3);
	loaded_release(&l);
}

static void test_bad_duration(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:vpn.example.net\"]\n"
			   "    lifetime: 90days\n");
	const cw_diag *d = expect_only(&l, "inventory.duration", 9, 15);
	assert_string_equal(d->message, "certificate 'vpn': lifetime '90days' is not a duration");
	assert_contains(d->hint, "90d");
	loaded_release(&l);

	load_text(&l, BASE "defaults:\n  lifetime: 200y\n");
	expect_only(&l, "inventory.duration", 6, 13);
	loaded_release(&l);
}

static void test_renew_before(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "certificates:\n"
			   "  a:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:a.example.net\"]\n"
			   "    renew_before: 100%\n"
			   "  b:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:b.example.net\"]\n"
			   "    lifetime: 30d\n"
			   "    renew_before: 30d\n");
	assert_int_equal(l.rc, -1);
	assert_int_equal(l.diags.n, 2);
	const cw_diag *d = expect_diag(&l, "inventory.renew-before", "inv.yaml", 9, 19);
	assert_contains(d->message, "'100%' is not a percentage from 1 to 99");
	d = expect_diag(&l, "inventory.renew-before", "inv.yaml", 14, 19);
	assert_string_equal(d->message,
			    "certificate 'b': renew_before 30d is not shorter than the lifetime 30d");
	loaded_release(&l);

	/* inherited from defaults: reported at the certificate's own lifetime */
	load_text(&l, BASE "defaults:\n  renew_before: 10d\n"
			   "certificates:\n"
			   "  a:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:a.example.net\"]\n"
			   "    lifetime: 7d\n");
	d = expect_only(&l, "inventory.renew-before", 11, 15);
	assert_contains(d->message, "renew_before 10d (from defaults)");
	loaded_release(&l);
}

static void test_dangling_issuer(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: rot\n"
			   "    sans: [\"DNS:vpn.example.net\"]\n"
			   "  other:\n"
			   "    issuer: vpn\n"
			   "    sans: [\"DNS:other.example.net\"]\n");
	assert_int_equal(l.rc, -1);
	assert_int_equal(l.diags.n, 2);
	const cw_diag *d = expect_diag(&l, "inventory.dangling-issuer", "inv.yaml", 7, 13);
	assert_string_equal(d->message, "certificate 'vpn': issuer 'rot' is not an authority");
	assert_string_equal(d->hint, "did you mean 'root'?");
	d = expect_diag(&l, "inventory.dangling-issuer", "inv.yaml", 10, 13);
	assert_string_equal(d->hint, "'vpn' is a certificate; only authorities issue");
	loaded_release(&l);

	/* a bad default issuer is one mistake, reported once where it is written */
	load_text(&l, BASE "defaults:\n  issuer: nobody\n"
			   "certificates:\n"
			   "  a: {sans: [\"DNS:a.example.net\"]}\n"
			   "  b: {sans: [\"DNS:b.example.net\"]}\n");
	d = expect_only(&l, "inventory.dangling-issuer", 6, 11);
	assert_string_equal(d->message, "defaults: issuer 'nobody' is not an authority");
	loaded_release(&l);

	load_text(&l, BASE "  sub:\n    subject: \"CN=Sub\"\n    parent: rooot\n");
	d = expect_only(&l, "inventory.dangling-issuer", 7, 13);
	assert_string_equal(d->message, "authority 'sub': parent 'rooot' is not an authority");
	loaded_release(&l);
}

static void test_dangling_target(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:vpn.example.net\"]\n"
			   "    deploy:\n"
			   "      - target: edg\n"
			   "targets:\n"
			   "  edge: {type: fake, address: \"192.0.2.1\"}\n");
	const cw_diag *d = expect_only(&l, "inventory.dangling-target", 10, 9);
	assert_string_equal(d->message, "certificate 'vpn': target 'edg' is not defined");
	assert_string_equal(d->hint, "did you mean 'edge'?");
	loaded_release(&l);

	/* nothing close among many: the hint lists some, not hundreds */
	cw_buf yaml = CW_BUF_INIT;
	cw_buf_adds(&yaml, BASE "certificates:\n  vpn: {issuer: root, sans: [\"DNS:v.example.net\"], "
			   "deploy: [{target: zzzzzz}]}\ntargets:\n");
	for (int i = 0; i < 20; i++)
		cw_buf_addf(&yaml, "  t%02d: {type: fake, address: h}\n", i);
	load_text(&l, yaml.buf);
	d = expect_only(&l, "inventory.dangling-target", 6, 61);
	assert_string_equal(d->hint, "targets: t00, t01, t02, t03, t04, t05, t06, t07, t08, t09, "
				     "t10, t11, t12, t13, t14, t15 and 4 more");
	loaded_release(&l);
	cw_buf_release(&yaml);
}

static void test_ca_cycle(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, "version: 1\n"
		      "authorities:\n"
		      "  a: {subject: \"CN=A\", parent: b}\n"
		      "  b: {subject: \"CN=B\", parent: a}\n"
		      "  c: {subject: \"CN=C\", parent: a}\n"
		      "  d: {subject: \"CN=D\", parent: d}\n");
	assert_int_equal(l.rc, -1);
	assert_int_equal(count_code(&l, "inventory.ca-cycle"), 2); /* once per cycle */
	const cw_diag *d = expect_diag(&l, "inventory.ca-cycle", "inv.yaml", 3, 32);
	assert_string_equal(d->message, "authority 'a': parent cycle a -> b -> a");
	assert_non_null(d->hint);
	d = expect_diag(&l, "inventory.ca-cycle", "inv.yaml", 6, 32);
	assert_string_equal(d->message, "authority 'd': parent cycle d -> d");
	assert_int_equal(l.diags.n, 2);
	loaded_release(&l);
}

static void test_path_len(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, "version: 1\n"
		      "authorities:\n"
		      "  root: {subject: \"CN=R\", path_len: 0}\n"
		      "  sub: {subject: \"CN=S\", parent: root}\n"
		      "  bad: {subject: \"CN=B\", path_len: -1}\n");
	assert_int_equal(l.rc, -1);
	const cw_diag *d = expect_diag(&l, "inventory.path-len", "inv.yaml", 4, 34);
	assert_string_equal(d->message, "authority 'sub': is 1 level below 'root', whose path_len is 0");
	assert_string_equal(d->hint, "raise path_len on 'root' to at least 1");
	expect_diag(&l, "inventory.path-len", "inv.yaml", 5, 36);
	assert_int_equal(l.diags.n, 2);
	loaded_release(&l);
}

static void test_literal_secret(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "targets:\n"
			   "  edge:\n"
			   "    type: fake\n"
			   "    address: 192.0.2.1\n"
			   "    password: \"hunter2\"\n");
	const cw_diag *d = expect_only(&l, "inventory.literal-secret", 9, 15);
	assert_contains(d->message, "literal secret not allowed");
	assert_contains(d->hint, "use env:NAME or file:PATH");
	assert_contains(d->message, "target 'edge'");
	assert_string_equal(d->target, "edge");
	/* the secret itself appears nowhere */
	cw_buf all = CW_BUF_INIT;
	cw_diag_format(d, &all);
	assert_null(strstr(all.buf, "hunter2"));
	cw_buf_release(&all);
	loaded_release(&l);

	load_text(&l, BASE "targets:\n  edge: {type: fake, address: h, password: [\"hunter2\"]}\n");
	d = expect_only(&l, "inventory.type", 6, 44);
	assert_null(strstr(d->message, "hunter2"));
	loaded_release(&l);

	/* a reference that names nothing is not a literal secret: say what is wrong */
	load_text(&l, BASE "targets:\n  edge: {type: fake, address: h, password: \"env:\"}\n");
	d = expect_only(&l, "inventory.value", 6, 44);
	assert_contains(d->message, "names nothing");
	loaded_release(&l);
}

static void test_bad_names(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "  \"bad name\": {subject: \"CN=x\"}\n"
			   "  -lead: {subject: \"CN=y\"}\n"
			   "  aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: {subject: \"CN=z\"}\n"
			   "  ok.name_1-2: {subject: \"CN=w\"}\n");
	assert_int_equal(l.rc, -1);
	assert_int_equal(l.diags.n, 3);
	const cw_diag *d = expect_diag(&l, "inventory.name", "inv.yaml", 5, 3);
	assert_string_equal(d->message, "authority 'bad name': invalid name");
	assert_contains(d->hint, "at most 64 characters");
	expect_diag(&l, "inventory.name", "inv.yaml", 6, 3);
	expect_diag(&l, "inventory.name", "inv.yaml", 7, 3); /* 65 characters */
	loaded_release(&l);
}

static void test_version(void **state)
{
	(void)state;
	loaded l;
	load_texts(&l, "a.yaml", "authorities: {}\n", "b.yaml", "targets: {}\n", NULL);
	assert_int_equal(l.rc, -1);
	assert_int_equal(l.diags.n, 1);
	const cw_diag *d = expect_diag(&l, "inventory.version", "a.yaml", 1, 1);
	assert_string_equal(d->message, "inventory: no file sets 'version'");
	assert_string_equal(d->hint, "add 'version: 1' to one inventory file");
	loaded_release(&l);

	load_texts(&l, "a.yaml", "version: 1\n", "b.yaml", "version: 2\n", NULL);
	assert_int_equal(l.diags.n, 1);
	d = expect_diag(&l, "inventory.version", "b.yaml", 1, 10);
	assert_string_equal(d->message, "inventory: version '2' is not supported");
	assert_string_equal(d->hint, "this certwright reads version 1");
	loaded_release(&l);

	load_text(&l, "version: [1]\n");
	expect_only(&l, "inventory.version", 1, 10);
	loaded_release(&l);
}

static void test_key_type(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "    key: rsa-2049\n");
	const cw_diag *d = expect_only(&l, "inventory.key-type", 5, 10);
	assert_string_equal(d->message, "authority 'root': unknown key type 'rsa-2049'");
	assert_string_equal(d->hint, "did you mean 'rsa-2048'?");
	loaded_release(&l);

	load_text(&l, BASE "    key: rsa-1024\n");
	d = expect_diag(&l, "inventory.key-type", "inv.yaml", 5, 10);
	assert_int_equal(d->severity, CW_SEV_WARNING);
	assert_string_equal(d->message, "authority 'root': rsa-1024 is too weak");
	assert_int_equal(l.inv.authorities[0].spec.key, CW_KEY_RSA1024);
	loaded_release(&l);
}

static void test_usage(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:vpn.example.net\"]\n"
			   "    usage: [digital-signature, server-auht]\n");
	const cw_diag *d = expect_only(&l, "inventory.usage", 9, 32);
	assert_string_equal(d->message, "certificate 'vpn': unknown usage 'server-auht'");
	assert_string_equal(d->hint, "did you mean 'server-auth'?");
	loaded_release(&l);

	load_text(&l, BASE "defaults:\n  usage: []\n");
	expect_only(&l, "inventory.usage", 6, 10);
	loaded_release(&l);
}

static void test_sans(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    sans:\n"
			   "      - vpn.example.net\n"     /* 9 */
			   "      - \"dsn:x.example.net\"\n" /* 10 */
			   "      - DNS:bad_name.example\n" /* 11 */
			   "      - DNS:192.0.2.1\n"        /* 12 */
			   "      - IP:300.1.1.1\n"         /* 13 */
			   "      - email:nobody\n"         /* 14 */
			   "      - URI:no-scheme\n"        /* 15 */
			   "      - dns:ok.example.net\n"   /* 16: any case is fine */
			   "      - DNS:OK.example.net\n"); /* 17: same name twice */
	assert_int_equal(l.rc, -1);
	const cw_diag *d = expect_diag(&l, "inventory.san", "inv.yaml", 9, 9);
	assert_string_equal(d->message, "certificate 'vpn': SAN 'vpn.example.net' has no type");
	assert_string_equal(d->hint, "write it as 'DNS:vpn.example.net'");
	d = expect_diag(&l, "inventory.san", "inv.yaml", 10, 9);
	assert_string_equal(d->hint, "did you mean 'DNS'?");
	d = expect_diag(&l, "inventory.san", "inv.yaml", 11, 9);
	assert_contains(d->message, "is not a valid DNS name");
	d = expect_diag(&l, "inventory.san", "inv.yaml", 12, 9);
	assert_string_equal(d->hint, "write 'IP:192.0.2.1'");
	assert_contains(expect_diag(&l, "inventory.san", "inv.yaml", 13, 9)->message,
			"not an IPv4 or IPv6 address");
	assert_contains(expect_diag(&l, "inventory.san", "inv.yaml", 14, 9)->message,
			"not a valid email address");
	assert_contains(expect_diag(&l, "inventory.san", "inv.yaml", 15, 9)->message,
			"not a valid URI");
	d = expect_diag(&l, "inventory.san", "inv.yaml", 17, 9);
	assert_int_equal(d->severity, CW_SEV_WARNING);
	assert_int_equal(count_code(&l, "inventory.san"), 8);
	loaded_release(&l);
}

static void test_subject(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    subject: vpn.example.net\n");
	const cw_diag *d = expect_only(&l, "inventory.subject", 8, 14);
	assert_string_equal(d->hint, "write it as 'CN=vpn.example.net'");
	loaded_release(&l);

	load_text(&l, BASE "  two:\n    subject: 'CN=a, O=b\\, Inc.+OU=c'\n");
	assert_int_equal(l.rc, 0);
	loaded_release(&l);
}

static void test_profile(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:vpn.example.net\"]\n"
			   "    profile: [iso]\n");
	const cw_diag *d = expect_only(&l, "inventory.profile", 9, 15);
	assert_string_equal(d->message, "certificate 'vpn': unknown profile 'iso'");
	assert_string_equal(d->hint, "did you mean 'ios'?");
	loaded_release(&l);
}

static void test_authority_settings(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, "version: 1\n"
		      "authorities:\n"
		      "  a: {subject: \"CN=A\", type: acme}\n"
		      "  b: {subject: \"CN=B\", type: lokal}\n"
		      "  c: {subject: \"CN=C\", crl: {url: \"ftp://x/c.crl\"}}\n"
		      "  d: {subject: \"CN=D\", on_remove: delete}\n");
	assert_int_equal(l.rc, -1);
	assert_int_equal(l.diags.n, 4);
	assert_contains(expect_diag(&l, "inventory.authority-type", "inv.yaml", 3, 30)->message,
			"type 'acme' is not supported yet");
	assert_string_equal(expect_diag(&l, "inventory.authority-type", "inv.yaml", 4, 30)->hint,
			    "did you mean 'local'?");
	assert_contains(expect_diag(&l, "inventory.url", "inv.yaml", 5, 35)->message,
			"url 'ftp://x/c.crl' is not a CRL distribution point");
	expect_diag(&l, "inventory.value", "inv.yaml", 6, 35);
	loaded_release(&l);
}

static void test_target_type(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "targets:\n  edge:\n    type: faek\n    anything: goes\n");
	const cw_diag *d = expect_only(&l, "inventory.target-type", 7, 11);
	assert_string_equal(d->message, "target 'edge': unknown type 'faek'");
	assert_string_equal(d->hint, "did you mean 'fake'?");
	loaded_release(&l);

	load_text(&l, BASE "targets:\n  edge: {address: h}\n");
	d = expect_only(&l, "inventory.missing-key", 6, 3);
	assert_contains(d->hint, "fake");
	loaded_release(&l);
}

static void test_target_schema(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "targets:\n"
			   "  edge:\n"                          /* 6 */
			   "    type: fake\n"
			   "    retries: three\n"                /* 8 */
			   "    verify: maybe\n"                 /* 9 */
			   "    timeout: 5\n"                    /* 10 */
			   "    mode: \"0999\"\n"                /* 11 */
			   "    files: {crt: a.pem}\n"           /* 12 */
			   "    reload: \"service x reload\"\n"  /* 13 */
			   "    comment: \"\"\n"                 /* 14: an empty string is a string */
			   "  box:\n"                            /* 15 */
			   "    type: fake\n"
			   "    address: \"host:99999\"\n");     /* 17 */
	assert_int_equal(l.rc, -1);
	assert_contains(expect_diag(&l, "inventory.value", "inv.yaml", 8, 14)->message,
			"'retries' must be an integer, got 'three'");
	assert_contains(expect_diag(&l, "inventory.value", "inv.yaml", 9, 13)->message,
			"'verify' must be true or false");
	expect_diag(&l, "inventory.duration", "inv.yaml", 10, 14);
	expect_diag(&l, "inventory.value", "inv.yaml", 11, 11);
	const cw_diag *d = expect_diag(&l, "inventory.unknown-key", "inv.yaml", 12, 13);
	assert_string_equal(d->message, "target 'edge' files: unknown key 'crt'");
	assert_string_equal(d->hint, "did you mean 'cert'?");
	d = expect_diag(&l, "inventory.missing-key", "inv.yaml", 12, 5);
	assert_string_equal(d->message, "target 'edge' files: missing key 'cert'");
	assert_string_equal(d->hint, "certificate file name"); /* the field's doc line */
	expect_diag(&l, "inventory.type", "inv.yaml", 13, 13);
	assert_contains(expect_diag(&l, "inventory.missing-key", "inv.yaml", 6, 3)->message,
			"target 'edge': missing key 'address'");
	expect_diag(&l, "inventory.address", "inv.yaml", 17, 14);
	assert_int_equal(l.diags.n, 9);
	loaded_release(&l);
}

static void test_check_deployment_and_bind(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "certificates:\n"
			   "  vpn:\n"
			   "    issuer: root\n"
			   "    key: ed25519\n"
			   "    sans: [\"DNS:vpn.example.net\"]\n"
			   "    deploy:\n"
			   "      - target: edge\n"              /* 11 */
			   "        bind: [\"www ssl\"]\n"
			   "      - target: box\n"               /* 13 */
			   "        bind: [x]\n"
			   "      - target: edge\n"              /* 15 */
			   "targets:\n"
			   "  edge: {type: fake, address: h}\n"
			   "  box: {type: fake-single, address: h}\n");
	assert_int_equal(l.rc, -1);
	/* the target type's own checks ran with the deployment's position */
	expect_diag(&l, "fake.bind-name", "inv.yaml", 11, 9);
	expect_diag(&l, "fake.key-type", "inv.yaml", 11, 9);
	const cw_diag *d = expect_diag(&l, "inventory.bind", "inv.yaml", 13, 9);
	assert_contains(d->message, "target 'box' (type fake-single) has no services to bind");
	d = expect_diag(&l, "inventory.duplicate-deploy", "inv.yaml", 15, 17);
	assert_contains(d->message, "deploys to target 'edge' a second time");
	assert_int_equal(l.diags.n, 4);
	loaded_release(&l);
}

static void test_single_slot(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "certificates:\n"
			   "  a: {issuer: root, sans: [\"DNS:a.example.net\"], deploy: [{target: box}]}\n"
			   "  b: {issuer: root, sans: [\"DNS:b.example.net\"], deploy: [{target: box}]}\n"
			   "targets:\n"
			   "  box: {type: fake-single, address: \"[::1]:5555\"}\n");
	const cw_diag *d = expect_only(&l, "inventory.single-slot", 9, 3);
	assert_string_equal(d->message,
			    "target 'box': type fake-single holds one certificate, but 'a', 'b' deploy to it");
	assert_string_equal(d->target, "box");
	loaded_release(&l);
}

static void test_report_path(void **state)
{
	(void)state;
	static const char *const bad[] = { "../x", "a/../b", "/abs", ".", ".git/x", "a//b", "A/.GIT" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *yaml = cw_xasprintf("version: 1\nreport:\n  path: \"%s\"\n", bad[i]);
		loaded l;
		load_text(&l, yaml);
		const cw_diag *d = expect_only(&l, "inventory.report-path", 3, 9);
		assert_contains(d->message, bad[i]);
		loaded_release(&l);
		free(yaml);
	}
}

static void test_policy_profiles_are_checked(void **state)
{
	(void)state;
	loaded l;
	load_text(&l, BASE "certificates:\n"
			   "  long:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:long.example.net\"]\n"
			   "    lifetime: 1000d\n"
			   "    profile: ios\n");
	assert_int_equal(l.rc, -1);
	assert_true(count_prefix(&l, "ios.") >= 1);
	for (size_t i = 0; i < l.diags.n; i++) {
		const cw_diag *d = &l.diags.items[i];
		if (strncmp(d->code, "ios.", 4))
			continue;
		assert_string_equal(d->file, "inv.yaml"); /* at the entry */
		assert_int_equal(d->line, 6);
	}
	loaded_release(&l);

	/* an entry with its own errors is not policy-checked: the spec is half read */
	load_text(&l, BASE "certificates:\n"
			   "  long:\n"
			   "    issuer: root\n"
			   "    sans: [\"DNS:long.example.net\"]\n"
			   "    lifetime: 1000d\n"
			   "    profile: ios\n"
			   "    colour: blue\n");
	assert_int_equal(count_prefix(&l, "ios."), 0);
	assert_int_equal(count_code(&l, "inventory.unknown-key"), 1);
	loaded_release(&l);
}

/* ---- robustness ---- */

static void load_bytes(const char *data, size_t len)
{
	cw_inventory inv;
	cw_diags diags;
	cw_diags_init(&diags);
	cw_inventory_file f = { "nasty.yaml", data, len };
	int rc = cw_inventory_load_files(&inv, &f, 1, NOW, &diags);
	/* the one promise: failure and error diagnostics go together */
	assert_int_equal(rc == -1, cw_diags_count(&diags, CW_SEV_ERROR) > 0);
	cw_inventory_release(&inv);
	cw_diags_release(&diags);
}

static void test_nasty_yaml(void **state)
{
	(void)state;
	static const char *const snippets[] = {
		"\t\tversion: 1\n",
		"version: \"1\nauthorities: {",
		"version: 1\nauthorities:\n  root: {subject: 'CN=x",
		"? [a, b]\n: c\n",
		"version: 1\ncertificates:\n  x: {deploy: [[[[]]]], sans: [{}], usage: [[]]}\n",
		"version: 1\ntargets:\n  t: {type: fake, files: [1], reload: [{}], address: [], mode: {}}\n",
		"version: 1\nauthorities: {a: {crl: [], path_len: {}, profile: {}, parent: []}}\n",
		"%YAML 1.1\n%TAG ! tag:x,2000:\n--- !x\nversion: 1\n",
		"version: 1\ncertificates:\n  \"\\0nul\": {}\n",
		"\xef\xbb\xbfversion: 1\n",
		"\xff\xfe\x00\x01garbage\x80\x81",
		"&a [*a]",
		"version: 1\ncertificates:\n  x: {sans: [\"DNS:\", \"IP:\", \"email:@\", \"URI::\", \":\"]}\n",
		"version: 1\ntargets:\n  t: {type: fake, address: \"[::1\", password: \"env:\"}\n",
	};
	for (size_t i = 0; i < sizeof(snippets) / sizeof(snippets[0]); i++)
		load_bytes(snippets[i], strlen(snippets[i]));

	static const char binary[] = "version: 1\n\0\x01\x02\x03 key: \x7f\n";
	load_bytes(binary, sizeof(binary) - 1);

	/* nesting far beyond the limit must not eat the stack */
	size_t depth = 100000;
	char *deep = malloc(2 * depth + 1);
	memset(deep, '[', depth);
	memset(deep + depth, ']', depth);
	deep[2 * depth] = '\0';
	cw_diags diags;
	cw_diags_init(&diags);
	cw_inventory inv;
	cw_inventory_file f = { "deep.yaml", deep, 2 * depth };
	assert_int_equal(cw_inventory_load_files(&inv, &f, 1, NOW, &diags), -1);
	assert_string_equal(diags.items[0].code, "inventory.yaml");
	assert_contains(diags.items[0].message, "nested deeper than 64 levels");
	cw_inventory_release(&inv);
	cw_diags_release(&diags);
	free(deep);
}

/* Thousands of random byte edits of a real inventory: nothing may crash or leak
 * (ASan/LSan watch), and the return value always matches the diagnostics. */
static void test_mutated_inventories(void **state)
{
	(void)state;
	char *dir = data_path("inventory/valid");
	char *path = cw_path_join(dir, "20-certificates.yaml");
	char *orig = read_text(path);
	size_t len = strlen(orig);
	static const char alphabet[] = " \t\n:-[]{}\"',#&*!|>%@`?0a9";
	uint32_t seed = 12345;
	for (int round = 0; round < 3000; round++) {
		char *buf = cw_xstrdup(orig);
		for (int k = 0; k < 1 + round % 4; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = (seed >> 8) % len;
			seed = seed * 1103515245u + 12345u;
			buf[at] = alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
		}
		char *text = cw_xasprintf("version: 1\n%s", buf);
		load_bytes(text, strlen(text));
		free(text);
		free(buf);
	}
	free(orig);
	free(path);
	free(dir);
}

/* ---- folders ---- */

static void test_load_dir_errors(void **state)
{
	(void)state;
	cw_inventory inv;
	cw_diags diags;
	cw_error err = { 0 };
	cw_diags_init(&diags);
	assert_int_equal(cw_inventory_load_dir(&inv, "/nonexistent/inventory", NULL, NOW, &diags, &err),
			 -1);
	assert_int_equal(err.code, CW_EIO);
	assert_contains(err.msg, "/nonexistent/inventory");
	cw_inventory_release(&inv);

	char *empty = data_path("inventory/empty");
	cw_error_clear(&err);
	assert_int_equal(cw_inventory_load_dir(&inv, empty, "inv", NOW, &diags, &err), -1);
	assert_int_equal(err.code, CW_OK);
	assert_int_equal(diags.n, 1);
	assert_string_equal(diags.items[0].code, "inventory.no-files");
	assert_string_equal(diags.items[0].message, "no inventory files in inv");
	cw_inventory_release(&inv);
	cw_diags_release(&diags);
	free(empty);
}

static void test_load_dir_sorts_and_names(void **state)
{
	(void)state;
	char *dir = tu_tempdir();
	char *b = cw_path_join(dir, "b.yml");
	char *a = cw_path_join(dir, "a.yaml");
	char *sub = cw_path_join(dir, "sub.yaml"); /* a folder with a yaml name is skipped */
	tu_write(b, "certificates:\n  vpn: {issuer: nope, sans: [\"DNS:v.example.net\"]}\n");
	tu_write(a, "version: 1\n");
	assert_int_equal(mkdir(sub, 0700), 0);
	cw_inventory inv;
	cw_diags diags;
	cw_error err = { 0 };
	cw_diags_init(&diags);
	assert_int_equal(cw_inventory_load_dir(&inv, dir, NULL, NOW, &diags, &err), -1);
	assert_int_equal(inv.nfiles, 2);
	char *shown_b = cw_xasprintf("%s/b.yml", dir);
	assert_string_equal(inv.files[1], shown_b);
	/* display_prefix NULL: diagnostics name the folder as given */
	assert_int_equal(diags.n, 1);
	assert_string_equal(diags.items[0].file, shown_b);
	assert_int_equal(diags.items[0].line, 2);
	cw_inventory_release(&inv);
	cw_diags_release(&diags);
	free(shown_b);
	free(a);
	free(b);
	free(sub);
	tu_rmtree(dir);
	free(dir);
}

/* ---- nodes ---- */

static void test_node_getters(void **state)
{
	(void)state;
	cw_diags diags;
	cw_diags_init(&diags);
	cw_node *root;
	const char *yaml = "s: text\n"
			   "q: \"yes\"\n"
			   "b1: Yes\n"
			   "b2: off\n"
			   "i: -42\n"
			   "z: 010\n"
			   "d: 1d12h\n"
			   "m1: 0640\n"
			   "m2: \"0o755\"\n"
			   "m3: 0800\n"
			   "l: [a]\n";
	assert_int_equal(cw_node_parse_yaml(&root, "n.yaml", yaml, strlen(yaml), &diags), 0);
	assert_int_equal(diags.n, 0);
	assert_string_equal(cw_node_str(root, "s", NULL), "text");
	assert_string_equal(cw_node_str(root, "absent", "dflt"), "dflt");
	assert_string_equal(cw_node_str(root, "l", "dflt"), "dflt"); /* not a scalar */
	assert_true(cw_node_get(root, "q")->quoted);
	assert_false(cw_node_get(root, "s")->quoted);
	assert_int_equal(cw_node_bool(root, "b1", 0), 1);
	assert_int_equal(cw_node_bool(root, "b2", 7), 7); /* only true/false/yes/no */
	assert_int_equal(cw_node_int(root, "i", 0), -42);
	assert_int_equal(cw_node_int(root, "z", 5), 5);   /* leading zero: ambiguous */
	assert_int_equal(cw_node_duration(root, "d", 0), 36 * 3600);
	assert_int_equal(cw_node_mode(root, "m1", 0), 0640);
	assert_int_equal(cw_node_mode(root, "m2", 0), 0755);
	assert_int_equal(cw_node_mode(root, "m3", 01), 01);
	assert_int_equal(cw_node_get(root, "i")->pos.line, 5);
	assert_int_equal(cw_node_get(root, "i")->pos.col, 4);
	assert_int_equal(root->key_pos[4].line, 5);
	assert_int_equal(root->key_pos[4].col, 1);
	assert_null(cw_node_get(cw_node_get(root, "s"), "x")); /* a scalar has no keys */
	cw_node_free(root);

	assert_int_equal(cw_node_parse_yaml(&root, "e.yaml", "", 0, &diags), 0);
	assert_null(root);
	cw_diags_release(&diags);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_multi_file_dir),
		cmocka_unit_test(test_digest_depends_on_names_and_content),
		cmocka_unit_test(test_empty_files_are_fine),
		cmocka_unit_test(test_yaml_syntax_error),
		cmocka_unit_test(test_yaml_features_refused),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_duplicate_name),
		cmocka_unit_test(test_duplicate_section),
		cmocka_unit_test(test_type_errors),
		cmocka_unit_test(test_missing_keys),
		cmocka_unit_test(test_revocation_and_export_settings),
		cmocka_unit_test(test_bad_duration),
		cmocka_unit_test(test_renew_before),
		cmocka_unit_test(test_dangling_issuer),
		cmocka_unit_test(test_dangling_target),
		cmocka_unit_test(test_ca_cycle),
		cmocka_unit_test(test_path_len),
		cmocka_unit_test(test_literal_secret),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_key_type),
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_sans),
		cmocka_unit_test(test_subject),
		cmocka_unit_test(test_profile),
		cmocka_unit_test(test_authority_settings),
		cmocka_unit_test(test_target_type),
		cmocka_unit_test(test_target_schema),
		cmocka_unit_test(test_check_deployment_and_bind),
		cmocka_unit_test(test_single_slot),
		cmocka_unit_test(test_report_path),
		cmocka_unit_test(test_policy_profiles_are_checked),
		cmocka_unit_test(test_nasty_yaml),
		cmocka_unit_test(test_mutated_inventories),
		cmocka_unit_test(test_load_dir_errors),
		cmocka_unit_test(test_load_dir_sorts_and_names),
		cmocka_unit_test(test_node_getters),
	};
	return cmocka_run_group_tests(tests, register_fakes, NULL);
}
