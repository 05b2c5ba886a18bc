/*
 * test_report — the public state report: which files, what they say, in what order,
 * byte-identical when nothing changed, and never a key. The state goes through the
 * real keystore and state modules; the CA certificate is made by the openssl CLI and
 * the published PEM is checked with openssl and certtool.
 */
#include <jansson.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

#include "reconcile/keystore.h"
#include "reconcile/model.h"
#include "reconcile/report.h"
#include "reconcile/state.h"
#include "reconcile/x509.h"

#define T_2026_06_01 ((time_t)1780272000)   /* 2026-06-01T00:00:00Z */
#define T_2027_01_01 ((time_t)1798761600)   /* 2027-01-01T00:00:00Z */
#define DAY 86400

typedef struct {
	char *dir;           /* temp root */
	char *ksdir;
	cw_keystore *ks;
	cw_state st;
	cw_x509_info ca;     /* the CA certificate made with openssl */
	cw_buf ca_der;
	/* the inventory, built by hand */
	cw_authority auth[1];
	cw_certificate certs[3];
	cw_deployment vpn_deploy[2], mail_deploy[1];
	cw_san vpn_san[1];
	char *vpn_profiles[1];
	cw_inventory inv;
} fixture;

static void run_ok(const char *const *argv)
{
	char *out = NULL;
	int rc = tu_run(argv, &out);
	if (rc != 0)
		fprintf(stderr, "%s failed: %s\n", argv[0], out);
	free(out);
	assert_int_equal(rc, 0);
}

static void make_ca(fixture *f)
{
	char *key = cw_path_join(f->dir, "ca.key");
	char *der = cw_path_join(f->dir, "ca.der");
	const char *argv[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
			       "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj",
			       "/CN=Home Root CA/C=JP", "-days", "3650", "-outform", "DER", "-out",
			       der, NULL };
	run_ok(argv);
	cw_error err = { 0 };
	assert_int_equal(cw_read_file(der, 0, &f->ca_der, &err), 0);
	assert_int_equal(cw_x509_parse((const unsigned char *)f->ca_der.buf, f->ca_der.len, &f->ca,
				       &err), 0);
	free(key);
	free(der);
}

static cw_issued issued(const char *name, const char *issuer, const char *serial, time_t nb,
			time_t na, cw_key_type key)
{
	cw_issued e;
	memset(&e, 0, sizeof(e));
	e.name = (char *)name;
	e.issuer = (char *)issuer;
	e.serial = (char *)serial;
	e.not_before = nb;
	e.not_after = na;
	e.issued_at = nb;
	e.spec.key = key;
	cw_sha256_hex(serial, strlen(serial), e.fingerprint);   /* any stable hex will do */
	return e;
}

static void record_state(fixture *f)
{
	cw_error err = { 0 };
	cw_issued root = issued("home-root", "home-root", f->ca.serial, f->ca.not_before,
				f->ca.not_after, CW_KEY_EC_P256);
	memcpy(root.fingerprint, f->ca.fingerprint, sizeof(root.fingerprint));
	root.subject = f->ca.subject;
	root.is_ca = 1;
	assert_int_equal(cw_keystore_put_cert(f->ks, "home-root", f->ca.serial,
					      (const unsigned char *)f->ca_der.buf, f->ca_der.len, 1, &err), 0);

	cw_issued e[5];
	e[0] = root;
	e[1] = issued("vpn-server", "home-root", "0A", T_2026_06_01 - 400 * DAY, T_2026_06_01 - 30 * DAY,
		      CW_KEY_RSA2048);
	e[2] = issued("vpn-server", "home-root", "0B", T_2027_01_01 - 365 * DAY, T_2027_01_01,
		      CW_KEY_RSA2048);
	e[2].subject = "CN=vpn.example.net";
	e[2].spec.sans = f->vpn_san;
	e[2].spec.nsans = 1;
	e[3] = issued("mail", "home-root", "0C", T_2026_06_01 - 90 * DAY, T_2026_06_01, CW_KEY_EC_P256);
	e[3].subject = "CN=mail.example.net,O=Example|Corp";
	e[4] = issued("gone", "home-root", "0D", T_2026_06_01 - 90 * DAY, T_2026_06_01, CW_KEY_EC_P256);
	assert_int_equal(cw_state_record_issued(&f->st, f->ks, e, 5, &err), 0);

	char *bound[] = { "www-ssl", "sstp-server" };
	cw_deploy_record ok = { .target = "edge-router", .certificate = "vpn-server",
				.status = CW_DEPLOY_OK, .serial = "0B", .bound = bound, .nbound = 2,
				.updated = T_2026_06_01 };
	memcpy(ok.fingerprint, e[2].fingerprint, sizeof(ok.fingerprint));
	cw_deploy_record bad = { .target = "home-softether", .certificate = "vpn-server",
				 .status = CW_DEPLOY_FAILED, .serial = "0B", .attempts = 3,
				 .last_error = "connection refused | port 5555", .updated = T_2026_06_01 };
	assert_int_equal(cw_state_record_deploy(&f->st, f->ks, &ok, &err), 0);
	assert_int_equal(cw_state_record_deploy(&f->st, f->ks, &bad, &err), 0);
}

static void build_inventory(fixture *f)
{
	f->vpn_san[0] = (cw_san){ CW_SAN_DNS, "vpn.example.net" };
	f->vpn_profiles[0] = "ios";
	f->auth[0].name = "home-root";
	f->auth[0].type = "local";
	f->auth[0].spec.renew = (cw_renew){ 1, 33, 0 };

	f->vpn_deploy[0] = (cw_deployment){ .target = "home-softether" };
	f->vpn_deploy[1] = (cw_deployment){ .target = "edge-router" };
	f->mail_deploy[0] = (cw_deployment){ .target = "mailroot" };
	f->certs[0] = (cw_certificate){ .name = "vpn-server", .issuer = "home-root",
					.profiles = f->vpn_profiles, .nprofiles = 1,
					.deploy = f->vpn_deploy, .ndeploy = 2 };
	f->certs[0].spec.renew = (cw_renew){ 0, 0, 30 * DAY };
	f->certs[1] = (cw_certificate){ .name = "user1", .issuer = "home-root" };
	f->certs[2] = (cw_certificate){ .name = "mail", .issuer = "home-root",
					.deploy = f->mail_deploy, .ndeploy = 1 };
	f->certs[2].spec.renew = (cw_renew){ 1, 50, 0 };

	f->inv.version = 1;
	f->inv.authorities = f->auth;
	f->inv.nauthorities = 1;
	f->inv.certificates = f->certs;
	f->inv.ncertificates = 3;
	f->inv.report_dir = "certwright-state";
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	cw_error err = { 0 };
	f->dir = tu_tempdir();
	f->ksdir = cw_path_join(f->dir, "keystore");
	assert_int_equal(cw_keystore_open(&f->ks, f->ksdir, 1, &err), 0);
	assert_int_equal(cw_state_load(&f->st, f->ks, &err), 0);
	build_inventory(f);
	make_ca(f);
	record_state(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	cw_state_release(&f->st);
	cw_keystore_close(f->ks);
	cw_x509_info_release(&f->ca);
	cw_buf_release(&f->ca_der);
	tu_rmtree(f->dir);
	free(f->ksdir);
	free(f->dir);
	free(f);
	return 0;
}

static const cw_report_file *file_of(const cw_report *r, const char *path)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->files[i].path, path))
			return &r->files[i];
	return NULL;
}

static json_t *json_of(const cw_report *r, const char *path)
{
	const cw_report_file *f = file_of(r, path);
	assert_non_null(f);
	/* pretty-printed, one trailing newline */
	assert_true(f->content.len > 2 && f->content.buf[f->content.len - 1] == '\n');
	assert_true(f->content.buf[f->content.len - 2] != '\n');
	json_error_t jerr;
	json_t *doc = json_loadb(f->content.buf, f->content.len, 0, &jerr);
	assert_non_null(doc);
	return doc;
}

static const char *jget(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	assert_non_null(v);
	return json_string_value(v);
}

static void build(fixture *f, cw_report *rep)
{
	cw_error err = { 0 };
	int rc = cw_report_build(rep, &f->inv, &f->st, f->ks, &err);
	if (rc != 0)
		fprintf(stderr, "report: %s\n", err.msg);
	assert_int_equal(rc, 0);
}

/* Exactly the expected files, sorted by path: nothing for a certificate that was never
 * issued (user1) or is no longer in the inventory (gone). */
static void test_file_list(void **state)
{
	fixture *f = *state;
	cw_report rep;
	build(f, &rep);
	const char *expected[] = { "README.md", "authorities/home-root.der",
				   "authorities/home-root.json", "authorities/home-root.pem",
				   "certificates/mail.json", "certificates/vpn-server.json" };
	assert_int_equal(rep.n, sizeof(expected) / sizeof(*expected));
	for (size_t i = 0; i < rep.n; i++)
		assert_string_equal(rep.files[i].path, expected[i]);
	cw_report_release(&rep);
	assert_int_equal(rep.n, 0);
	assert_null(rep.files);
}

static void test_certificate_json(void **state)
{
	fixture *f = *state;
	cw_report rep;
	build(f, &rep);
	json_t *doc = json_of(&rep, "certificates/vpn-server.json");
	assert_string_equal(jget(doc, "name"), "vpn-server");
	assert_string_equal(jget(doc, "issuer"), "home-root");
	assert_string_equal(jget(doc, "serial"), "0B");
	assert_string_equal(jget(doc, "subject"), "CN=vpn.example.net");
	assert_string_equal(jget(doc, "key"), "rsa-2048");
	assert_string_equal(jget(doc, "not_after"), "2027-01-01T00:00:00Z");
	/* the inventory's renew_before 30d applied to the issued dates */
	assert_string_equal(jget(doc, "renew_at"), "2026-12-02T00:00:00Z");
	assert_int_equal(strlen(jget(doc, "fingerprint")), 64);
	json_t *sans = json_object_get(doc, "sans");
	assert_int_equal(json_array_size(sans), 1);
	assert_string_equal(json_string_value(json_array_get(sans, 0)), "DNS:vpn.example.net");
	assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "profiles"), 0)), "ios");

	/* targets sorted by name, facts from the deployment records */
	json_t *targets = json_object_get(doc, "targets");
	assert_int_equal(json_array_size(targets), 2);
	json_t *t0 = json_array_get(targets, 0), *t1 = json_array_get(targets, 1);
	assert_string_equal(jget(t0, "target"), "edge-router");
	assert_string_equal(jget(t0, "status"), "ok");
	assert_true(json_is_null(json_object_get(t0, "last_error")));
	assert_int_equal(json_array_size(json_object_get(t0, "bound")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(t0, "bound"), 1)),
			    "sstp-server");
	assert_string_equal(jget(t1, "target"), "home-softether");
	assert_string_equal(jget(t1, "status"), "failed");
	assert_int_equal(json_integer_value(json_object_get(t1, "attempts")), 3);
	assert_string_equal(jget(t1, "last_error"), "connection refused | port 5555");

	/* the older issuance, not the current one */
	json_t *hist = json_object_get(doc, "history");
	assert_int_equal(json_array_size(hist), 1);
	assert_string_equal(jget(json_array_get(hist, 0), "serial"), "0A");
	assert_true(json_is_false(json_object_get(json_array_get(hist, 0), "revoked")));
	json_decref(doc);

	doc = json_of(&rep, "certificates/mail.json");
	targets = json_object_get(doc, "targets");
	assert_int_equal(json_array_size(targets), 1);
	assert_string_equal(jget(json_array_get(targets, 0), "status"), "not-deployed");
	assert_string_equal(jget(doc, "renew_at"), "2026-04-17T00:00:00Z");   /* 50% of 90d */
	json_decref(doc);
	cw_report_release(&rep);
}

/* The authority's JSON and its certificate for clients, checked with other tools. */
static void test_authority_files(void **state)
{
	fixture *f = *state;
	cw_report rep;
	build(f, &rep);
	json_t *doc = json_of(&rep, "authorities/home-root.json");
	assert_string_equal(jget(doc, "serial"), f->ca.serial);
	assert_string_equal(jget(doc, "fingerprint"), f->ca.fingerprint);
	assert_true(json_is_null(json_object_get(doc, "parent")));
	json_decref(doc);

	const cw_report_file *der = file_of(&rep, "authorities/home-root.der");
	assert_int_equal(der->content.len, f->ca_der.len);
	assert_memory_equal(der->content.buf, f->ca_der.buf, f->ca_der.len);

	const cw_report_file *pem = file_of(&rep, "authorities/home-root.pem");
	char *pem_path = cw_path_join(f->dir, "published.pem");
	cw_error err = { 0 };
	assert_int_equal(cw_write_file_atomic(pem_path, pem->content.buf, pem->content.len, 0644, &err), 0);
	const char *verify[] = { "openssl", "verify", "-x509_strict", "-CAfile", pem_path, pem_path, NULL };
	run_ok(verify);
	const char *certtool[] = { "certtool", "--verify", "--load-ca-certificate", pem_path,
				   "--infile", pem_path, NULL };
	run_ok(certtool);
	const char *fp[] = { "openssl", "x509", "-in", pem_path, "-noout", "-fingerprint", "-sha256", NULL };
	char *out = NULL;
	assert_int_equal(tu_run(fp, &out), 0);
	/* "sha256 Fingerprint=AB:CD:..." -> "abcd..." */
	char hex[65] = "";
	size_t n = 0;
	for (const char *p = strchr(out, '=') + 1; *p && n < 64; p++)
		if (*p != ':' && *p != '\n')
			hex[n++] = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
	hex[n] = '\0';
	assert_string_equal(hex, f->ca.fingerprint);
	free(out);
	free(pem_path);
	cw_report_release(&rep);
}

static const char *line_with(const char *text, const char *needle)
{
	const char *p = strstr(text, needle);
	assert_non_null(p);
	return p;
}

static void test_readme(void **state)
{
	fixture *f = *state;
	cw_report rep;
	build(f, &rep);
	const char *md = file_of(&rep, "README.md")->content.buf;
	/* sorted by expiry: mail (2026-06), vpn-server (2027-01), the root (10 years), then
	 * the certificate never issued */
	const char *mail = line_with(md, "| mail | certificate |");
	const char *vpn = line_with(md, "| vpn-server | certificate |");
	const char *root = line_with(md, "| home-root | authority |");
	const char *user1 = line_with(md, "| user1 | certificate |");
	assert_true(mail < vpn && vpn < root && root < user1);
	assert_non_null(strstr(user1, "not issued"));
	/* a '|' from the outside world must not break the table */
	assert_non_null(strstr(mail, "CN=mail.example.net,O=Example\\|Corp"));
	assert_non_null(strstr(vpn, "| 2027-01-01T00:00:00Z | 2026-12-02T00:00:00Z | "
				    "edge-router (ok), home-softether (failed) |"));
	assert_non_null(strstr(md, "3 certificates (1 not issued), 1 authority; deployments: "
				   "1 ok, 1 failed, 1 pending."));
	assert_non_null(strstr(md, "## Failed deployments\n\n- vpn-server on home-softether "
				   "(3 attempts): connection refused \\| port 5555\n"));
	assert_null(strstr(md, "gone"));
	cw_report_release(&rep);
}

static int reports_equal(const cw_report *a, const cw_report *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->files[i].path, b->files[i].path) ||
		    a->files[i].content.len != b->files[i].content.len ||
		    memcmp(a->files[i].content.buf, b->files[i].content.buf, a->files[i].content.len))
			return 0;
	return 1;
}

/* Same state, same bytes: also after reloading the state from disk (other load order,
 * journal replay), which is what the next run sees. A real change shows. */
static void test_deterministic(void **state)
{
	fixture *f = *state;
	cw_report a, b, c;
	build(f, &a);
	build(f, &b);
	assert_true(reports_equal(&a, &b));

	cw_state reloaded;
	cw_error err = { 0 };
	assert_int_equal(cw_state_load(&reloaded, f->ks, &err), 0);
	assert_int_equal(cw_report_build(&c, &f->inv, &reloaded, f->ks, &err), 0);
	assert_true(reports_equal(&a, &c));
	cw_report_release(&c);

	cw_deploy_record fixed = { .target = "home-softether", .certificate = "vpn-server",
				   .status = CW_DEPLOY_OK, .serial = "0B", .updated = T_2026_06_01 };
	assert_int_equal(cw_state_record_deploy(&reloaded, f->ks, &fixed, &err), 0);
	assert_int_equal(cw_report_build(&c, &f->inv, &reloaded, f->ks, &err), 0);
	assert_false(reports_equal(&a, &c));
	assert_non_null(strstr(file_of(&c, "README.md")->content.buf, "## Failed deployments\n\nNone.\n"));
	cw_report_release(&c);
	cw_state_release(&reloaded);
	cw_report_release(&a);
	cw_report_release(&b);
}

/* The keystore holds an encrypted private key next to the CA certificate: none of it
 * may reach the report. */
static void test_no_private_key(void **state)
{
	fixture *f = *state;
	cw_error err = { 0 };
	char *key_path = cw_path_join(f->dir, "ca.key");
	cw_buf pem = CW_BUF_INIT;
	assert_int_equal(cw_read_file(key_path, 0, &pem, &err), 0);
	assert_non_null(strstr(pem.buf, "PRIVATE KEY"));
	assert_int_equal(cw_keystore_unlock(f->ks, "test passphrase", 15, &err), 0);
	FILE *fp = fopen(key_path, "r");
	assert_non_null(fp);
	EVP_PKEY *key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(key);
	assert_int_equal(cw_keystore_put_key(f->ks, "home-root", f->ca.serial, key, 1, &err), 0);
	EVP_PKEY_free(key);

	cw_report rep;
	build(f, &rep);
	for (size_t i = 0; i < rep.n; i++) {
		const cw_buf *b = &rep.files[i].content;
		assert_null(memmem(b->buf, b->len, "PRIVATE KEY", 11));
		assert_null(memmem(b->buf, b->len, "ENCRYPTED", 9));
		/* nor the key's PEM body */
		const char *body = strchr(pem.buf, '\n') + 1;
		assert_null(memmem(b->buf, b->len, body, 40));
	}
	cw_report_release(&rep);
	cw_buf_release(&pem);
	free(key_path);
}

/* A CA certificate in the keystore that is not the one recorded is never published. */
static void test_authority_mismatch_refused(void **state)
{
	fixture *f = *state;
	cw_error err = { 0 };
	char *other = cw_path_join(f->dir, "other.der");
	char *key = cw_path_join(f->dir, "other.key");
	const char *argv[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
			       "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj",
			       "/CN=Impostor", "-days", "30", "-outform", "DER", "-out", other, NULL };
	run_ok(argv);
	cw_buf der = CW_BUF_INIT;
	assert_int_equal(cw_read_file(other, 0, &der, &err), 0);
	assert_int_equal(cw_keystore_put_cert(f->ks, "home-root", f->ca.serial,
					      (const unsigned char *)der.buf, der.len, 1, &err), 0);
	cw_report rep;
	assert_int_equal(cw_report_build(&rep, &f->inv, &f->st, f->ks, &err), -1);
	assert_int_equal(err.code, CW_EINVAL);
	assert_non_null(strstr(err.msg, "authority 'home-root'"));
	assert_non_null(strstr(err.msg, "does not match the recorded fingerprint"));
	assert_int_equal(rep.n, 0);
	cw_buf_release(&der);
	free(other);
	free(key);
}

/* History: newest first, capped at 20; revoked entries are marked. */
static void test_history_capped(void **state)
{
	fixture *f = *state;
	cw_error err = { 0 };
	cw_issued e[25];
	char serials[25][8];
	for (int i = 0; i < 25; i++) {
		snprintf(serials[i], sizeof(serials[i]), "%X", 0x100 + i);
		e[i] = issued("mail", "home-root", serials[i], T_2026_06_01 + i * DAY,
			      T_2026_06_01 + (i + 90) * DAY, CW_KEY_EC_P256);
		e[i].revoked = i == 24;   /* the newest is revoked: 0x117 stays current */
	}
	assert_int_equal(cw_state_record_issued(&f->st, f->ks, e, 25, &err), 0);
	cw_report rep;
	build(f, &rep);
	json_t *doc = json_of(&rep, "certificates/mail.json");
	assert_string_equal(jget(doc, "serial"), "117");
	json_t *hist = json_object_get(doc, "history");
	assert_int_equal(json_array_size(hist), 20);
	assert_string_equal(jget(json_array_get(hist, 0), "serial"), "118");
	assert_true(json_is_true(json_object_get(json_array_get(hist, 0), "revoked")));
	assert_string_equal(jget(json_array_get(hist, 1), "serial"), "116");
	assert_string_equal(jget(json_array_get(hist, 19), "serial"), "104");
	json_decref(doc);
	cw_report_release(&rep);
}

/* A name that would leave the report folder is refused (state built by hand: the state
 * module would refuse such a name itself). */
static void test_bad_name_refused(void **state)
{
	fixture *f = *state;
	cw_state st;
	memset(&st, 0, sizeof(st));
	pthread_mutex_init(&st.lock, NULL);
	cw_issued e = issued("../escape", "home-root", "01", T_2026_06_01, T_2027_01_01, CW_KEY_EC_P256);
	st.issued = &e;
	st.nissued = 1;
	cw_certificate c = { .name = "../escape", .issuer = "home-root" };
	cw_inventory inv;
	memset(&inv, 0, sizeof(inv));
	inv.certificates = &c;
	inv.ncertificates = 1;
	cw_report rep;
	cw_error err = { 0 };
	assert_int_equal(cw_report_build(&rep, &inv, &st, f->ks, &err), -1);
	assert_int_equal(err.code, CW_EINVAL);
	assert_string_equal(err.msg, "certificate '../escape': name cannot be used as a report file name");
	assert_int_equal(rep.n, 0);
	pthread_mutex_destroy(&st.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_certificate_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authority_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readme, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_private_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authority_mismatch_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_name_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
