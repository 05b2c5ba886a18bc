/* test_files_target — the files target (deploy, observe, reload, remove, static checks)
 * and the target registry. Certificates are real ones made with the openssl CLI, and
 * what lands on disk is checked with openssl and certtool, not only with our own code. */
#include "testutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/node.h"
#include "common/util.h"
#include "targets/files.h"
#include "targets/target.h"

/* A root -> intermediate -> two leaves, made once for the whole program. */
typedef struct {
	char *dir;
	cw_buf root, inter, leaf, leaf2;   /* DER */
	cw_buf leaf_key;                   /* PKCS#8 PEM */
	char leaf_fp[65];
} pki_fixture;

static pki_fixture pki;

static const char pki_script[] =
	"set -e\n"
	"cd \"$1\"\n"
	"cat > cnf <<'EOF'\n"
	"[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n"
	"[root]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
	"subjectKeyIdentifier = hash\n"
	"[inter]\nbasicConstraints = critical,CA:TRUE,pathlen:0\nkeyUsage = critical,keyCertSign,cRLSign\n"
	"subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
	"[leaf]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
	"extendedKeyUsage = serverAuth\nsubjectAltName = DNS:mail.example.net\n"
	"subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
	"EOF\n"
	"for k in root inter leaf leaf2; do\n"
	"  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $k.key 2>/dev/null\n"
	"done\n"
	"openssl req -x509 -new -config cnf -extensions root -key root.key -subj '/CN=Test Root' -days 30 -out root.pem\n"
	"openssl req -new -config cnf -key inter.key -subj '/CN=Test Intermediate' -out inter.csr\n"
	"openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -days 30 "
	"  -extfile cnf -extensions inter -out inter.pem 2>/dev/null\n"
	"for l in leaf leaf2; do\n"
	"  openssl req -new -config cnf -key $l.key -subj '/CN=mail.example.net' -out $l.csr\n"
	"  openssl x509 -req -in $l.csr -CA inter.pem -CAkey inter.key -CAcreateserial -days 30 "
	"    -extfile cnf -extensions leaf -out $l.pem 2>/dev/null\n"
	"done\n"
	"for c in root inter leaf leaf2; do openssl x509 -in $c.pem -outform DER -out $c.der; done\n";

static char *path_in(const char *dir, const char *name)
{
	return cw_path_join(dir, name);
}

static void read_into(const char *dir, const char *name, cw_buf *out)
{
	char *p = path_in(dir, name);
	cw_error err = { 0 };
	assert_int_equal(cw_read_file(p, 0, out, &err), 0);
	free(p);
}

static int make_pki(void **state)
{
	pki.dir = tu_tempdir();
	char *script = path_in(pki.dir, "make-pki.sh");
	tu_write(script, pki_script);
	const char *argv[] = { "sh", script, pki.dir, NULL };
	char *out = NULL;
	int rc = tu_run(argv, &out);
	if (rc != 0)
		fprintf(stderr, "make-pki.sh failed:\n%s\n", out);
	free(out);
	free(script);
	if (rc != 0)
		return -1;
	read_into(pki.dir, "root.der", &pki.root);
	read_into(pki.dir, "inter.der", &pki.inter);
	read_into(pki.dir, "leaf.der", &pki.leaf);
	read_into(pki.dir, "leaf2.der", &pki.leaf2);
	read_into(pki.dir, "leaf.key", &pki.leaf_key);
	cw_sha256_hex(pki.leaf.buf, pki.leaf.len, pki.leaf_fp);
	return 0;
}

static int drop_pki(void **state)
{
	cw_buf_release(&pki.root);
	cw_buf_release(&pki.inter);
	cw_buf_release(&pki.leaf);
	cw_buf_release(&pki.leaf2);
	cw_buf_release_secret(&pki.leaf_key);
	tu_rmtree(pki.dir);
	free(pki.dir);
	return 0;
}

/* ---- per-test helpers ---- */

typedef struct {
	cw_buf lines;
} log_capture;

static void capture_log(void *ud, int level, const char *target, const char *msg)
{
	log_capture *c = ud;
	cw_buf_addf(&c->lines, "%d %s: %s\n", level, target, msg);
}

typedef struct {
	char *dir;          /* scratch folder of the test */
	cw_node *config;
	void *h;
	cw_target_env env;
	log_capture log;
	cw_blob chain[1];
	cw_bundle bundle;
} fixture;

static cw_node *parse_config(const char *yaml)
{
	cw_node *root = NULL;
	cw_diags diags;
	cw_diags_init(&diags);
	assert_int_equal(cw_node_parse_yaml(&root, "target.yaml", yaml, strlen(yaml), &diags), 0);
	assert_int_equal(diags.n, 0);
	cw_diags_release(&diags);
	assert_non_null(root);
	return root;
}

static void blob_of(cw_blob *b, const cw_buf *buf)
{
	b->data = (unsigned char *)buf->buf;
	b->len = buf->len;
}

static void fixture_bundle(fixture *f, const char *slot, const cw_buf *leaf)
{
	memset(&f->bundle, 0, sizeof(f->bundle));
	f->bundle.slot = slot;
	blob_of(&f->bundle.cert, leaf);
	blob_of(&f->chain[0], &pki.inter);
	f->bundle.chain = f->chain;
	f->bundle.nchain = 1;
	blob_of(&f->bundle.root, &pki.root);
	f->bundle.key_pem = pki.leaf_key.buf;
	f->bundle.key_pem_len = pki.leaf_key.len;
	f->bundle.fingerprint = pki.leaf_fp;
}

/* Opens a files target on the YAML settings; "@DIR@" in the text becomes the scratch
 * folder. */
static void fixture_open(fixture *f, const char *yaml_with_dir)
{
	cw_buf yaml = CW_BUF_INIT;
	const char *p = yaml_with_dir;
	for (const char *hit; (hit = strstr(p, "@DIR@")); p = hit + 5) {
		cw_buf_add(&yaml, p, (size_t)(hit - p));
		cw_buf_adds(&yaml, f->dir);
	}
	cw_buf_adds(&yaml, p);
	f->config = parse_config(yaml.buf);
	cw_buf_release(&yaml);
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.open(&f->h, "mailroot", f->config, &f->env, &err), 0);
	assert_non_null(f->h);
}

static int fixture_setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tempdir();
	f->env.timeout_ms = 5000;
	f->env.log = capture_log;
	f->env.log_ud = &f->log;
	fixture_bundle(f, "mail", &pki.leaf);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	fixture *f = *state;
	if (f->h)
		cw_files_target.close(f->h);
	cw_node_free(f->config);
	cw_buf_release(&f->log.lines);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static unsigned mode_of(const char *dir, const char *name)
{
	char *p = path_in(dir, name);
	struct stat st;
	int rc = stat(p, &st);
	free(p);
	return rc == 0 ? (unsigned)(st.st_mode & 07777) : 0xffffffffu;
}

static int exists_in(const char *dir, const char *name)
{
	char *p = path_in(dir, name);
	int e = cw_path_exists(p);
	free(p);
	return e;
}

static void assert_file_bytes(const char *dir, const char *name, const void *data, size_t len)
{
	cw_buf b = CW_BUF_INIT;
	read_into(dir, name, &b);
	assert_int_equal(b.len, len);
	assert_memory_equal(b.buf, data, len);
	cw_buf_release(&b);
}

/* The SHA-256 fingerprint openssl reports for a certificate file, as lower hex. */
static void openssl_fingerprint(const char *file, const char *inform, char out[65])
{
	const char *argv[] = { "openssl", "x509", "-noout", "-fingerprint", "-sha256", "-inform",
			       inform, "-in", file, NULL };
	char *text = NULL;
	assert_int_equal(tu_run(argv, &text), 0);
	const char *eq = strchr(text, '=');
	assert_non_null(eq);
	size_t n = 0;
	for (const char *p = eq + 1; *p && *p != '\n' && n < 64; p++)
		if (*p != ':')
			out[n++] = (char)tolower((unsigned char)*p);
	out[n] = '\0';
	free(text);
}

/* ---- deploy ---- */

static const char full_config[] =
	"type: files\n"
	"path: @DIR@/mailroot\n"
	"files:\n"
	"  cert: \"{name}.crt\"\n"
	"  key: \"{name}.key\"\n"
	"  chain: \"{name}.chain.pem\"\n"
	"  fullchain: \"{name}.fullchain.pem\"\n"
	"  ca: ca.der\n"
	"cert_mode: \"0640\"\n"
	"key_mode: \"0600\"\n";

static void test_deploy_writes_files_with_modes(void **state)
{
	fixture *f = *state;
	fixture_open(f, full_config);
	cw_error err = { 0 };
	mode_t old = umask(0);   /* modes must not depend on the umask */
	int rc = cw_files_target.deploy(f->h, &f->bundle, &err);
	umask(old);
	assert_int_equal(rc, 0);
	char *root = path_in(f->dir, "mailroot");
	assert_int_equal(mode_of(root, "mail.crt"), 0640);
	assert_int_equal(mode_of(root, "mail.key"), 0600);
	assert_int_equal(mode_of(root, "mail.chain.pem"), 0640);
	assert_int_equal(mode_of(root, "mail.fullchain.pem"), 0640);
	assert_int_equal(mode_of(root, "ca.der"), 0640);
	assert_file_bytes(root, "mail.key", pki.leaf_key.buf, pki.leaf_key.len);
	assert_file_bytes(root, "ca.der", pki.root.buf, pki.root.len);   /* .der: DER whatever format */

	char *crt = path_in(root, "mail.crt");
	char fp[65];
	openssl_fingerprint(crt, "PEM", fp);
	assert_string_equal(fp, pki.leaf_fp);
	free(crt);
	/* no temp files left behind */
	const char *ls[] = { "ls", "-A", root, NULL };
	char *listing = NULL;
	assert_int_equal(tu_run(ls, &listing), 0);
	assert_string_equal(listing, "ca.der\nmail.chain.pem\nmail.crt\nmail.fullchain.pem\nmail.key\n");
	free(listing);
	free(root);
	/* the log tells what happened and never carries the key */
	assert_non_null(strstr(f->log.lines.buf, pki.leaf_fp));
	assert_null(strstr(f->log.lines.buf, "PRIVATE KEY"));
}

/* What was written is a valid chain for independent verifiers. */
static void test_deploy_chain_verifies_with_openssl_and_certtool(void **state)
{
	fixture *f = *state;
	fixture_open(f, full_config);
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), 0);
	char *root = path_in(f->dir, "mailroot");
	char *crt = path_in(root, "mail.crt");
	char *chain = path_in(root, "mail.chain.pem");
	char *full = path_in(root, "mail.fullchain.pem");
	char *ca_der = path_in(root, "ca.der");
	char *ca_pem = path_in(f->dir, "ca.pem");
	const char *conv[] = { "openssl", "x509", "-inform", "DER", "-in", ca_der, "-out", ca_pem, NULL };
	assert_int_equal(tu_run(conv, NULL), 0);

	const char *verify[] = { "openssl", "verify", "-x509_strict", "-CAfile", ca_pem,
				 "-untrusted", chain, crt, NULL };
	char *out = NULL;
	assert_int_equal(tu_run(verify, &out), 0);
	assert_non_null(strstr(out, ": OK"));
	free(out);

	/* fullchain + root in one file: certtool walks the whole chain */
	cw_buf bundle = CW_BUF_INIT;
	read_into(root, "mail.fullchain.pem", &bundle);
	read_into(f->dir, "ca.pem", &bundle);
	char *all = path_in(f->dir, "all.pem");
	tu_write(all, bundle.buf);
	const char *certtool[] = { "certtool", "--verify-chain", "--infile", all, NULL };
	assert_int_equal(tu_run(certtool, &out), 0);
	assert_non_null(strstr(out, "Chain verification output: Verified."));
	free(out);
	cw_buf_release(&bundle);
	free(all);
	free(crt);
	free(chain);
	free(full);
	free(ca_der);
	free(ca_pem);
	free(root);
}

static void test_deploy_der_format(void **state)
{
	fixture *f = *state;
	fixture_open(f, "path: @DIR@\nformat: der\nfiles: { cert: \"{name}.cert\", ca: ca.pem }\n");
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), 0);
	assert_file_bytes(f->dir, "mail.cert", pki.leaf.buf, pki.leaf.len);
	assert_file_bytes(f->dir, "ca.pem", pki.root.buf, pki.root.len);   /* format: der wins */
	assert_int_equal(mode_of(f->dir, "mail.cert"), 0644);
	assert_int_equal(mode_of(f->dir, "mail.key"), 0600);
	char *crt = path_in(f->dir, "mail.cert");
	char fp[65];
	openssl_fingerprint(crt, "DER", fp);
	assert_string_equal(fp, pki.leaf_fp);
	free(crt);
}

/* A missing folder is created, subfolders of file names too. */
static void test_deploy_creates_folders(void **state)
{
	fixture *f = *state;
	fixture_open(f, "path: @DIR@/a/b\nfiles: { cert: \"certs/{name}.pem\", key: \"private/{name}.pem\" }\n");
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), 0);
	assert_true(exists_in(f->dir, "a/b/certs/mail.pem"));
	assert_true(exists_in(f->dir, "a/b/private/mail.pem"));
}

static void test_deploy_refuses_key_in_git_work_tree(void **state)
{
	fixture *f = *state;
	const char *init[] = { "git", "init", "-q", f->dir, NULL };
	assert_int_equal(tu_run(init, NULL), 0);
	fixture_open(f, "path: @DIR@/deploy/tls\n");
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), -1);
	assert_int_equal(err.code, CW_EINVAL);
	char real[4096], want[4400];
	assert_non_null(realpath(f->dir, real));
	snprintf(want, sizeof(want),
		 "target 'mailroot': refusing to write an unencrypted private key inside the git work tree at %s",
		 real);
	assert_string_equal(err.msg, want);
	assert_false(exists_in(f->dir, "deploy"));   /* nothing written, not even the folder */

	/* without a key file, certificates are public and may go anywhere */
	cw_files_target.close(f->h);
	f->h = NULL;
	cw_node_free(f->config);
	fixture_open(f, "path: @DIR@/deploy/tls\nfiles: { key: \"\" }\n");
	cw_error_clear(&err);
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), 0);
	assert_true(exists_in(f->dir, "deploy/tls/mail.crt"));
	assert_false(exists_in(f->dir, "deploy/tls/mail.key"));
}

static void test_deploy_needs_key_and_root(void **state)
{
	fixture *f = *state;
	fixture_open(f, "path: @DIR@\nfiles: { ca: ca.der }\n");
	cw_error err = { 0 };
	f->bundle.key_pem = NULL;
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), -1);
	assert_string_equal(err.msg, "target 'mailroot': no private key for 'mail' (files.key is set)");
	fixture_bundle(f, "mail", &pki.leaf);
	f->bundle.root.len = 0;
	cw_error_clear(&err);
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), -1);
	assert_string_equal(err.msg, "target 'mailroot': no root certificate for 'mail' (files.ca is set)");
	assert_false(exists_in(f->dir, "mail.key"));
}

/* The key goes first and the certificate last: when the key cannot be written, no new
 * certificate appears (a service restarted then would load a cert without its key). */
static void test_deploy_writes_key_before_cert(void **state)
{
	fixture *f = *state;
	fixture_open(f, "path: @DIR@\nfiles: { chain: \"{name}.chain\" }\n");
	char *key = path_in(f->dir, "mail.key");
	assert_int_equal(mkdir(key, 0755), 0);   /* rename() cannot replace a folder */
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), -1);
	assert_int_equal(err.code, CW_EIO);
	assert_non_null(strstr(err.msg, "target 'mailroot': "));
	assert_non_null(strstr(err.msg, key));
	assert_false(exists_in(f->dir, "mail.crt"));
	assert_false(exists_in(f->dir, "mail.chain"));
	assert_int_equal(rmdir(key), 0);
	free(key);
}

/* ---- observe ---- */

static void test_observe_returns_deployed_der(void **state)
{
	fixture *f = *state;
	fixture_open(f, full_config);
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), 0);
	cw_observation obs;
	assert_int_equal(cw_files_target.observe(f->h, "mail", &obs, &err), 0);
	assert_int_equal(obs.present, 1);
	assert_int_equal(obs.cert.len, pki.leaf.len);
	assert_memory_equal(obs.cert.data, pki.leaf.buf, pki.leaf.len);
	assert_int_equal(obs.nchain, 1);
	assert_memory_equal(obs.chain[0].data, pki.inter.buf, pki.inter.len);
	assert_int_equal(obs.key_present, 1);
	assert_null(obs.note);
	cw_observation_release(&obs);

	/* verify() looks again, the same way */
	assert_int_equal(cw_files_target.verify(f->h, "mail", &obs, &err), 0);
	assert_memory_equal(obs.cert.data, pki.leaf.buf, pki.leaf.len);
	cw_observation_release(&obs);
}

static void test_observe_empty_slot(void **state)
{
	fixture *f = *state;
	fixture_open(f, full_config);   /* folder does not even exist */
	cw_observation obs;
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.observe(f->h, "mail", &obs, &err), 0);
	assert_int_equal(obs.present, 0);
	assert_null(obs.cert.data);
	assert_int_equal(obs.nchain, 0);
	assert_int_equal(obs.key_present, 0);
	cw_observation_release(&obs);
}

/* Someone replaced the certificate by hand (and in the other encoding): that is what
 * observe reports, so the diff sees the drift. */
static void test_observe_sees_hand_replaced_cert(void **state)
{
	fixture *f = *state;
	fixture_open(f, "path: @DIR@\nformat: der\n");
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), 0);
	char *crt = path_in(f->dir, "mail.crt");
	char *other = path_in(pki.dir, "leaf2.pem");
	const char *cp[] = { "cp", other, crt, NULL };
	assert_int_equal(tu_run(cp, NULL), 0);
	cw_observation obs;
	assert_int_equal(cw_files_target.observe(f->h, "mail", &obs, &err), 0);
	assert_int_equal(obs.present, 1);
	assert_int_equal(obs.cert.len, pki.leaf2.len);
	assert_memory_equal(obs.cert.data, pki.leaf2.buf, pki.leaf2.len);
	cw_observation_release(&obs);

	/* and garbage is handed over raw with a note, for reconcile/x509 to reject */
	tu_write(crt, "not a certificate\n");
	assert_int_equal(cw_files_target.observe(f->h, "mail", &obs, &err), 0);
	assert_int_equal(obs.present, 1);
	assert_int_equal(obs.cert.len, strlen("not a certificate\n"));
	assert_non_null(obs.note);
	assert_non_null(strstr(obs.note, "neither a PEM nor a DER certificate"));
	cw_observation_release(&obs);
	free(crt);
	free(other);
}

static void test_observe_notes_missing_key(void **state)
{
	fixture *f = *state;
	fixture_open(f, "path: @DIR@\n");
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), 0);
	char *key = path_in(f->dir, "mail.key");
	assert_int_equal(unlink(key), 0);
	cw_observation obs;
	assert_int_equal(cw_files_target.observe(f->h, "mail", &obs, &err), 0);
	assert_int_equal(obs.present, 1);
	assert_int_equal(obs.key_present, 0);
	char want[4200];
	snprintf(want, sizeof(want), "key file %s is missing", key);
	assert_string_equal(obs.note, want);
	cw_observation_release(&obs);
	free(key);
}

static void test_observe_unreadable_is_an_error(void **state)
{
	fixture *f = *state;
	fixture_open(f, "path: @DIR@\n");
	char *crt = path_in(f->dir, "mail.crt");
	assert_int_equal(mkdir(crt, 0755), 0);   /* a folder where the certificate should be */
	cw_observation obs;
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.observe(f->h, "mail", &obs, &err), -1);
	assert_int_equal(err.code, CW_EIO);
	char want[4200];
	snprintf(want, sizeof(want), "target 'mailroot': %s is not a regular file", crt);
	assert_string_equal(err.msg, want);
	assert_int_equal(obs.present, 0);
	assert_int_equal(rmdir(crt), 0);

	if (geteuid() != 0) {   /* root reads anything: EACCES only shows for other users */
		tu_write(crt, "x");
		assert_int_equal(chmod(crt, 0), 0);
		cw_error_clear(&err);
		assert_int_equal(cw_files_target.observe(f->h, "mail", &obs, &err), -1);
		assert_non_null(strstr(err.msg, crt));
		assert_non_null(strstr(err.msg, "Permission denied"));
	}
	free(crt);
}

/* ---- the slot's digest: everything besides the leaf ---- */

/* What observe() reports as the slot's digest right now (caller frees), or NULL. */
static char *observed_digest(fixture *f, const char *slot)
{
	cw_observation obs;
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.observe(f->h, slot, &obs, &err), 0);
	char *digest = obs.digest ? strdup(obs.digest) : NULL;
	cw_observation_release(&obs);
	return digest;
}

static void assert_digest_shape(const char *digest)
{
	assert_non_null(digest);
	assert_int_equal(strlen(digest), 64);
	assert_int_equal(strspn(digest, "0123456789abcdef"), 64);
}

/* The slot's digest now differs from before (and is well formed). */
static void assert_digest_changed(fixture *f, const char *before)
{
	char *now = observed_digest(f, "mail");
	assert_digest_shape(now);
	assert_string_not_equal(now, before);
	free(now);
}

static void assert_digest_same(fixture *f, const char *slot, const char *before)
{
	char *now = observed_digest(f, slot);
	assert_non_null(now);
	assert_string_equal(now, before);
	free(now);
}

static void deploy_ok(fixture *f)
{
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), 0);
}

/* Closes the handle and opens the same folder with other settings. */
static void fixture_reopen(fixture *f, const char *yaml_with_dir)
{
	cw_files_target.close(f->h);
	f->h = NULL;
	cw_node_free(f->config);
	f->config = NULL;
	fixture_open(f, yaml_with_dir);
}

static void rewrite_in(const char *dir, const char *name, const char *content)
{
	char *p = path_in(dir, name);
	tu_write(p, content);
	free(p);
}

static void unlink_in(const char *dir, const char *name)
{
	char *p = path_in(dir, name);
	assert_int_equal(unlink(p), 0);
	free(p);
}

static void chmod_in(const char *dir, const char *name, mode_t mode)
{
	char *p = path_in(dir, name);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

/* Right after a deploy the digest is what every later look sees, verify() included. */
static void test_digest_stable_after_deploy(void **state)
{
	fixture *f = *state;
	fixture_open(f, full_config);
	deploy_ok(f);
	char *first = observed_digest(f, "mail");
	assert_digest_shape(first);
	assert_digest_same(f, "mail", first);
	cw_observation obs;
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.verify(f->h, "mail", &obs, &err), 0);
	assert_string_equal(obs.digest, first);
	cw_observation_release(&obs);
	/* deploying the same bundle again rewrites identical files */
	deploy_ok(f);
	assert_digest_same(f, "mail", first);
	free(first);
}

/* The user's report: a deleted, replaced or chmod'ed key was "No changes". */
static void test_digest_tracks_key_file(void **state)
{
	fixture *f = *state;
	fixture_open(f, full_config);
	deploy_ok(f);
	char *root = path_in(f->dir, "mailroot");
	char *base = observed_digest(f, "mail");

	chmod_in(root, "mail.key", 0644);
	assert_digest_changed(f, base);
	chmod_in(root, "mail.key", 0600);
	assert_digest_same(f, "mail", base);   /* the mode alone made the difference */

	cw_buf key2 = CW_BUF_INIT;
	read_into(pki.dir, "leaf2.key", &key2);
	rewrite_in(root, "mail.key", key2.buf);
	chmod_in(root, "mail.key", 0600);
	assert_digest_changed(f, base);
	cw_buf_release_secret(&key2);

	unlink_in(root, "mail.key");
	assert_digest_changed(f, base);

	deploy_ok(f);   /* what the engine does about it repairs it */
	assert_digest_same(f, "mail", base);
	free(base);
	free(root);
}

static void test_digest_tracks_chain_fullchain_ca(void **state)
{
	static const char *const files[] = { "mail.chain.pem", "mail.fullchain.pem", "ca.der" };
	fixture *f = *state;
	fixture_open(f, full_config);
	deploy_ok(f);
	char *root = path_in(f->dir, "mailroot");
	char *base = observed_digest(f, "mail");
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		rewrite_in(root, files[i], "tampered\n");
		chmod_in(root, files[i], 0640);
		assert_digest_changed(f, base);
		unlink_in(root, files[i]);
		assert_digest_changed(f, base);
		deploy_ok(f);
		assert_digest_same(f, "mail", base);

		chmod_in(root, files[i], 0600);   /* same content, other mode */
		assert_digest_changed(f, base);
		deploy_ok(f);
		assert_digest_same(f, "mail", base);
	}
	free(base);
	free(root);
}

/* Other files in the folder are not this slot's business — except a CA file shared by
 * every slot, which this slot serves too. The CRL file belongs to an authority. */
static void test_digest_ignores_other_files_and_slots(void **state)
{
	fixture *f = *state;
	fixture_open(f, "path: @DIR@\ncrl: \"{authority}.crl\"\n"
			"files: { chain: \"{name}.chain\", ca: ca.pem }\n");
	deploy_ok(f);
	char *base = observed_digest(f, "mail");
	assert_digest_shape(base);

	rewrite_in(f->dir, "notes.txt", "unrelated\n");
	rewrite_in(f->dir, "mail.crt.bak", "an old copy\n");
	assert_digest_same(f, "mail", base);

	cw_error err = { 0 };
	cw_blob crl = { (unsigned char *)"\x30\x03\x02\x01\x01", 5 };
	assert_int_equal(cw_files_target.deploy_crl(f->h, "ops", &crl, &err), 0);
	assert_true(exists_in(f->dir, "ops.crl"));
	assert_digest_same(f, "mail", base);

	/* another slot: its own files come and go, the shared CA stays the same */
	fixture_bundle(f, "www", &pki.leaf2);
	deploy_ok(f);
	assert_digest_same(f, "mail", base);
	/* the two slots hold the same key, chain and CA under the same settings: the digest
	 * describes that situation, not the slot's name or its leaf */
	char *www = observed_digest(f, "www");
	assert_string_equal(www, base);
	free(www);
	unlink_in(f->dir, "www.key");
	rewrite_in(f->dir, "www.chain", "tampered\n");
	assert_digest_same(f, "mail", base);

	/* the CA file is shared: when it changes, every slot serving it has drifted */
	rewrite_in(f->dir, "ca.pem", "another root\n");
	assert_digest_changed(f, base);
	free(base);
}

/* key_mode, cert_mode and format changed in the inventory: the files on disk are what
 * they were, but not what the configuration wants, so the digest moves and the engine
 * redeploys; after that the digest is stable again. */
static void test_digest_follows_settings(void **state)
{
	fixture *f = *state;
	static const char base_cfg[] = "path: @DIR@\nkey_mode: \"0600\"\nfiles: { ca: ca.der }\n";
	fixture_open(f, base_cfg);
	deploy_ok(f);
	char *base = observed_digest(f, "mail");

	fixture_reopen(f, base_cfg);   /* the very same situation */
	assert_digest_same(f, "mail", base);
	fixture_reopen(f, "path: @DIR@\nformat: pem\nfiles: { ca: ca.der }\n");   /* the default, spelled out */
	assert_digest_same(f, "mail", base);
	fixture_reopen(f, "path: @DIR@\ncert_mode: \"0640\"\nfiles: { ca: ca.der }\n");
	assert_digest_changed(f, base);
	fixture_reopen(f, "path: @DIR@\nformat: der\nfiles: { ca: ca.der }\n");
	assert_digest_changed(f, base);

	fixture_reopen(f, "path: @DIR@\nkey_mode: \"0640\"\nfiles: { ca: ca.der }\n");
	assert_digest_changed(f, base);
	deploy_ok(f);
	assert_int_equal(mode_of(f->dir, "mail.key"), 0640);
	char *after = observed_digest(f, "mail");
	assert_string_not_equal(after, base);
	assert_digest_same(f, "mail", after);

	/* a file added to the configuration is missing until the next deploy writes it */
	fixture_reopen(f, "path: @DIR@\nkey_mode: \"0640\"\nfiles: { ca: ca.der, chain: \"{name}.chain\" }\n");
	assert_digest_changed(f, after);
	deploy_ok(f);
	assert_true(exists_in(f->dir, "mail.chain"));
	free(after);
	free(base);
}

static void test_digest_null_without_certificate(void **state)
{
	fixture *f = *state;
	fixture_open(f, full_config);
	char *digest = observed_digest(f, "mail");
	assert_null(digest);
	deploy_ok(f);
	char *root = path_in(f->dir, "mailroot");
	unlink_in(root, "mail.crt");
	digest = observed_digest(f, "mail");
	assert_null(digest);   /* the key and chain are still there, but nothing is deployed */
	free(root);
}

/* A slot file that is there but cannot be read is an error, not a guess; and a huge
 * file is not read whole. */
static void test_digest_unreadable_file_is_an_error(void **state)
{
	fixture *f = *state;
	fixture_open(f, "path: @DIR@\n");
	deploy_ok(f);
	char *key = path_in(f->dir, "mail.key");
	assert_int_equal(unlink(key), 0);
	assert_int_equal(mkdir(key, 0700), 0);
	cw_observation obs;
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.observe(f->h, "mail", &obs, &err), -1);
	assert_int_equal(err.code, CW_EIO);
	char want[4200];
	snprintf(want, sizeof(want), "target 'mailroot': %s is not a regular file", key);
	assert_string_equal(err.msg, want);
	assert_int_equal(obs.present, 0);
	assert_null(obs.digest);
	assert_int_equal(rmdir(key), 0);

	FILE *big = fopen(key, "w");
	assert_non_null(big);
	for (int i = 0; i < 1100; i++)
		for (int j = 0; j < 1024; j++)
			fputc('k', big);
	assert_int_equal(fclose(big), 0);
	cw_error_clear(&err);
	assert_int_equal(cw_files_target.observe(f->h, "mail", &obs, &err), -1);
	snprintf(want, sizeof(want), "target 'mailroot': %s is larger than 1048576 bytes", key);
	assert_string_equal(err.msg, want);
	assert_null(obs.digest);

	if (geteuid() != 0) {   /* root reads anything */
		deploy_ok(f);
		assert_int_equal(chmod(key, 0), 0);
		cw_error_clear(&err);
		assert_int_equal(cw_files_target.observe(f->h, "mail", &obs, &err), -1);
		assert_non_null(strstr(err.msg, key));
		assert_non_null(strstr(err.msg, "Permission denied"));
	}
	free(key);
}

/* ---- activate ---- */

static char *write_script(const char *dir, const char *name, const char *body)
{
	char *p = path_in(dir, name);
	tu_write(p, body);
	assert_int_equal(chmod(p, 0755), 0);
	return p;
}

static void open_with_reload(fixture *f, const char *script, const char *extra)
{
	cw_buf yaml = CW_BUF_INIT;
	cw_buf_addf(&yaml, "path: @DIR@\nreload: [\"%s\", \"@DIR@/marker\"]\n%s", script, extra);
	fixture_open(f, yaml.buf);
	cw_buf_release(&yaml);
}

static void test_activate_runs_reload(void **state)
{
	fixture *f = *state;
	char *script = write_script(f->dir, "reload.sh", "#!/bin/sh\necho reloaded > \"$1\"\n");
	open_with_reload(f, script, "");
	cw_error err = { 0 };
	assert_false(exists_in(f->dir, "marker"));
	assert_int_equal(cw_files_target.activate(f->h, &err), 0);
	assert_file_bytes(f->dir, "marker", "reloaded\n", 9);
	free(script);
}

static void test_activate_without_reload_is_noop(void **state)
{
	fixture *f = *state;
	fixture_open(f, "path: @DIR@\n");
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.activate(f->h, &err), 0);
	assert_int_equal(err.code, CW_OK);
}

static void test_activate_reports_reload_failure(void **state)
{
	fixture *f = *state;
	char *script = write_script(f->dir, "reload.sh",
				    "#!/bin/sh\necho progress\necho 'xmail: bad config line 3' >&2\n"
				    "echo 'second line' >&2\nexit 3\n");
	open_with_reload(f, script, "");
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.activate(f->h, &err), -1);
	assert_int_equal(err.code, CW_ETARGET);
	char want[4400];
	snprintf(want, sizeof(want),
		 "target 'mailroot': reload %s exited with status 3: xmail: bad config line 3", script);
	assert_string_equal(err.msg, want);
	free(script);
}

static void test_activate_reload_timeout(void **state)
{
	fixture *f = *state;
	char *script = write_script(f->dir, "reload.sh", "#!/bin/sh\nsleep 30\n");
	open_with_reload(f, script, "reload_timeout: 1s\n");
	cw_error err = { 0 };
	time_t t0 = time(NULL);
	assert_int_equal(cw_files_target.activate(f->h, &err), -1);
	assert_true(time(NULL) - t0 <= 4);
	assert_int_equal(err.code, CW_ETIMEOUT);
	char want[4400];
	snprintf(want, sizeof(want), "target 'mailroot': reload: %s: timed out after 1000 ms", script);
	assert_string_equal(err.msg, want);
	free(script);
}

/* ---- remove ---- */

static void test_remove_slot_keeps_shared_ca(void **state)
{
	fixture *f = *state;
	fixture_open(f, "path: @DIR@\nfiles: { chain: \"{name}.chain\", ca: ca.der }\n");
	cw_error err = { 0 };
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), 0);
	fixture_bundle(f, "www", &pki.leaf2);
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), 0);

	/* a rotation leaves nothing behind: the files were replaced in place */
	assert_int_equal(cw_files_target.remove(f->h, "mail", pki.leaf_fp, &err), 0);
	assert_true(exists_in(f->dir, "mail.crt"));

	assert_int_equal(cw_files_target.remove(f->h, "mail", NULL, &err), 0);
	assert_false(exists_in(f->dir, "mail.crt"));
	assert_false(exists_in(f->dir, "mail.key"));
	assert_false(exists_in(f->dir, "mail.chain"));
	assert_true(exists_in(f->dir, "ca.der"));
	assert_true(exists_in(f->dir, "www.crt"));
	assert_true(exists_in(f->dir, "www.key"));
	assert_true(exists_in(f->dir, "www.chain"));
	/* removing an empty slot again is fine */
	assert_int_equal(cw_files_target.remove(f->h, "mail", NULL, &err), 0);
	assert_int_equal(err.code, CW_OK);
}

/* XMail's MailRoot: fixed names, one certificate. Removing it takes cert and key, and
 * leaves the CA file that clients may still fetch. */
static void test_single_slot_fixed_names(void **state)
{
	fixture *f = *state;
	fixture_open(f, "path: @DIR@\nfiles: { cert: server.cert, key: server.key, ca: ca.der }\n");
	assert_int_equal(cw_files_single_slot(f->config), 1);
	cw_error err = { 0 };
	fixture_bundle(f, "any/name", &pki.leaf);   /* the name never reaches a file name */
	assert_int_equal(cw_files_target.deploy(f->h, &f->bundle, &err), 0);
	assert_true(exists_in(f->dir, "server.cert"));
	cw_observation obs;
	assert_int_equal(cw_files_target.observe(f->h, "any/name", &obs, &err), 0);
	assert_memory_equal(obs.cert.data, pki.leaf.buf, pki.leaf.len);
	cw_observation_release(&obs);
	assert_int_equal(cw_files_target.remove(f->h, "any/name", NULL, &err), 0);
	assert_false(exists_in(f->dir, "server.cert"));
	assert_false(exists_in(f->dir, "server.key"));
	assert_true(exists_in(f->dir, "ca.der"));
}

/* ---- static checks and open ---- */

typedef struct {
	cw_diags diags;
	cw_node *config;
} checked;

static void run_check(checked *c, const char *yaml, const char *cert_name, const char *const *bind,
		      size_t nbind)
{
	cw_diags_init(&c->diags);
	c->config = parse_config(yaml);
	cw_srcpos pos = { "certs.yaml", 7, 5 };
	cw_files_target.check_deployment(c->config, cert_name, CW_KEY_EC_P256, bind, nbind, &pos,
					 &c->diags);
}

static void checked_release(checked *c)
{
	cw_diags_release(&c->diags);
	cw_node_free(c->config);
}

static const cw_diag *find_code(const checked *c, const char *code)
{
	for (size_t i = 0; i < c->diags.n; i++)
		if (!strcmp(c->diags.items[i].code, code))
			return &c->diags.items[i];
	return NULL;
}

static void test_check_clean_config(void **state)
{
	checked c;
	run_check(&c, "path: /srv/tls\nfiles: { chain: \"{name}.chain\", ca: ca.der }\n", "mail@x", NULL, 0);
	assert_int_equal(c.diags.n, 0);
	assert_int_equal(cw_files_single_slot(c.config), 0);
	checked_release(&c);
}

static void test_check_template_escaping_path(void **state)
{
	checked c;
	run_check(&c, "path: /srv/tls\nfiles:\n  cert: \"../{name}.crt\"\n  key: \"/etc/{name}.key\"\n",
		  "mail", NULL, 0);
	assert_int_equal(cw_diags_count(&c.diags, CW_SEV_ERROR), 2);
	const cw_diag *d = find_code(&c, "files.template");
	assert_non_null(d);
	assert_string_equal(d->message, "files target: files.cert '../{name}.crt' must stay inside path (no '..')");
	assert_string_equal(d->file, "target.yaml");   /* points at the setting itself */
	assert_int_equal(d->line, 3);
	assert_string_equal(c.diags.items[1].message,
			    "files target: files.key '/etc/{name}.key' must be relative to path");
	checked_release(&c);

	run_check(&c, "path: /srv/tls\nfiles: { cert: \"{serial}.crt\" }\n", "mail", NULL, 0);
	d = find_code(&c, "files.template");
	assert_non_null(d);
	assert_non_null(strstr(d->message, "placeholder other than {name}"));
	checked_release(&c);
}

static void test_check_unsafe_certificate_names(void **state)
{
	const char *bad[] = { "a/b", "..", ".", "-rf", "sp ace", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		checked c;
		run_check(&c, "path: /srv/tls\n", bad[i], NULL, 0);
		const cw_diag *d = find_code(&c, "files.unsafe-name");
		assert_non_null(d);
		assert_int_equal(d->line, 7);
		assert_string_equal(d->certificate, bad[i]);
		checked_release(&c);
	}
	/* fixed names: the certificate name never becomes a file name */
	checked c;
	run_check(&c, "path: /srv/tls\nfiles: { cert: server.cert, key: server.key }\n", "a/b", NULL, 0);
	assert_int_equal(c.diags.n, 0);
	assert_int_equal(cw_files_single_slot(c.config), 1);
	checked_release(&c);
}

static void test_check_format_bind_modes_sharing(void **state)
{
	checked c;
	run_check(&c, "path: /srv/tls\nformat: pme\n", "mail", NULL, 0);
	const cw_diag *d = find_code(&c, "files.format");
	assert_non_null(d);
	assert_string_equal(d->message, "files target: format 'pme' is not pem or der");
	assert_string_equal(d->hint, "did you mean 'pem'?");
	checked_release(&c);

	run_check(&c, "path: srv/tls\n", "mail", NULL, 0);
	d = find_code(&c, "files.relative-path");
	assert_non_null(d);
	assert_int_equal(d->severity, CW_SEV_WARNING);
	checked_release(&c);

	run_check(&c, "path: /srv/tls\nkey_mode: \"0644\"\n", "mail", NULL, 0);
	d = find_code(&c, "files.key-mode");
	assert_non_null(d);
	assert_int_equal(d->severity, CW_SEV_WARNING);
	checked_release(&c);

	run_check(&c, "path: /srv/tls\nfiles: { key: server.key }\n", "mail", NULL, 0);
	d = find_code(&c, "files.shared-file");
	assert_non_null(d);
	assert_int_equal(d->severity, CW_SEV_ERROR);
	checked_release(&c);
}

/* Two certificates deployed to one badly configured target: the settings' problem is
 * reported once, each certificate's own problem once per certificate. */
static void test_check_reports_settings_once(void **state)
{
	checked c;
	run_check(&c, "path: /srv/tls\nfiles: { cert: \"../{name}\" }\n", "a/b", NULL, 0);
	cw_srcpos pos = { "certs.yaml", 19, 5 };
	cw_files_target.check_deployment(c.config, "c/d", CW_KEY_EC_P256, NULL, 0, &pos, &c.diags);
	size_t templates = 0, names = 0;
	for (size_t i = 0; i < c.diags.n; i++) {
		templates += !strcmp(c.diags.items[i].code, "files.template");
		names += !strcmp(c.diags.items[i].code, "files.unsafe-name");
	}
	assert_int_equal(templates, 1);
	assert_int_equal(names, 2);
	checked_release(&c);
}

static void test_open_rejects_bad_settings(void **state)
{
	static const struct {
		const char *yaml;
		const char *msg;
	} cases[] = {
		{ "files: { cert: x.crt }\n", "target 't': path is required" },
		{ "path: /srv\nformat: pkcs12\n", "target 't': format 'pkcs12' is not pem or der" },
		{ "path: /srv\nfiles: { cert: \"../x\" }\n",
		  "target 't': files.cert '../x' must stay inside path (no '..')" },
		{ "path: /srv\nfiles: { cert: \"\" }\n", "target 't': files.cert must name a file" },
		{ "path: /srv\nreload: \"service xmail reload\"\n",
		  "target 't': reload must be a non-empty list (argv), not a shell string" },
		{ "path: /srv\nreload: []\n",
		  "target 't': reload must be a non-empty list (argv), not a shell string" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cw_node *config = parse_config(cases[i].yaml);
		void *h = (void *)1;
		cw_error err = { 0 };
		assert_int_equal(cw_files_target.open(&h, "t", config, NULL, &err), -1);
		assert_null(h);
		assert_int_equal(err.code, CW_EINVAL);
		assert_string_equal(err.msg, cases[i].msg);
		cw_node_free(config);
	}
}

/* "~/" is the admin's home, from $HOME. */
static void test_open_expands_home(void **state)
{
	fixture *f = *state;
	const char *old = getenv("HOME");
	char *saved = old ? strdup(old) : NULL;
	setenv("HOME", f->dir, 1);
	fixture_open(f, "path: ~/tls\nfiles: { key: \"\" }\n");
	cw_error err = { 0 };
	int rc = cw_files_target.deploy(f->h, &f->bundle, &err);
	if (saved)
		setenv("HOME", saved, 1);
	free(saved);
	assert_int_equal(rc, 0);
	assert_true(exists_in(f->dir, "tls/mail.crt"));
}

/* ---- registry ---- */

static int fake_open(void **h, const char *name, const cw_node *config, const cw_target_env *env,
		     cw_error *err)
{
	*h = NULL;
	return 0;
}

static const cw_target_ops fake_ops = {
	.api_version = CW_TARGET_API_VERSION,
	.type = "fake-device",
	.open = fake_open,
};

static const cw_target_ops impostor_ops = {
	.api_version = CW_TARGET_API_VERSION,
	.type = "files",
	.open = fake_open,
};

static const cw_target_ops future_ops = {
	.api_version = CW_TARGET_API_VERSION + 1,
	.type = "future-device",
	.open = fake_open,
};

static int has_name(const char *name)
{
	for (const char *const *n = cw_target_type_names(); *n; n++)
		if (!strcmp(*n, name))
			return 1;
	return 0;
}

static void test_registry(void **state)
{
	assert_ptr_equal(cw_target_type("files"), &cw_files_target);
	assert_null(cw_target_type("fake-device"));
	assert_null(cw_target_type(NULL));
	assert_true(has_name("files"));
	assert_false(has_name("fake-device"));

	assert_int_equal(cw_target_register(&fake_ops), 0);
	assert_ptr_equal(cw_target_type("fake-device"), &fake_ops);
	assert_true(has_name("fake-device"));
	assert_int_equal(cw_target_register(&fake_ops), 0);         /* same table again: fine */
	assert_int_equal(cw_target_register(&impostor_ops), -1);    /* a taken name */
	assert_ptr_equal(cw_target_type("files"), &cw_files_target);
	assert_int_equal(cw_target_register(&future_ops), -1);      /* another API version */
	assert_null(cw_target_type("future-device"));
	assert_int_equal(cw_target_register(NULL), -1);

	/* the table is bounded: 16 extra types at most */
	static cw_target_ops extra[20];
	static char names[20][16];
	int accepted = 0;
	for (int i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "extra-%d", i);
		extra[i] = fake_ops;
		extra[i].type = names[i];
		accepted += cw_target_register(&extra[i]) == 0;
	}
	assert_int_equal(accepted, 15);   /* fake-device took one of the 16 */
	assert_ptr_equal(cw_target_type("extra-14"), &extra[14]);
	assert_null(cw_target_type("extra-15"));
}

static void test_observation_release(void **state)
{
	cw_observation o;
	memset(&o, 0, sizeof(o));
	o.present = 1;
	o.cert.data = malloc(4);
	o.cert.len = 4;
	o.chain = calloc(2, sizeof(*o.chain));
	o.chain[0].data = malloc(3);
	o.chain[1].data = malloc(3);
	o.nchain = 2;
	o.bound = calloc(1, sizeof(*o.bound));
	o.bound[0] = strdup("www-ssl");
	o.nbound = 1;
	o.note = strdup("note");
	cw_observation_release(&o);   /* LeakSanitizer checks the freeing */
	assert_null(o.cert.data);
	assert_int_equal(o.nchain, 0);
	assert_null(o.note);

	cw_device_facts facts = { strdup("7.15"), 0, 1, strdup("n") };
	cw_device_facts_release(&facts);
	assert_null(facts.version);
	assert_null(facts.note);
}

#define FT(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		FT(test_deploy_writes_files_with_modes),
		FT(test_deploy_chain_verifies_with_openssl_and_certtool),
		FT(test_deploy_der_format),
		FT(test_deploy_creates_folders),
		FT(test_deploy_refuses_key_in_git_work_tree),
		FT(test_deploy_needs_key_and_root),
		FT(test_deploy_writes_key_before_cert),
		FT(test_observe_returns_deployed_der),
		FT(test_observe_empty_slot),
		FT(test_observe_sees_hand_replaced_cert),
		FT(test_observe_notes_missing_key),
		FT(test_observe_unreadable_is_an_error),
		FT(test_digest_stable_after_deploy),
		FT(test_digest_tracks_key_file),
		FT(test_digest_tracks_chain_fullchain_ca),
		FT(test_digest_ignores_other_files_and_slots),
		FT(test_digest_follows_settings),
		FT(test_digest_null_without_certificate),
		FT(test_digest_unreadable_file_is_an_error),
		FT(test_activate_runs_reload),
		FT(test_activate_without_reload_is_noop),
		FT(test_activate_reports_reload_failure),
		FT(test_activate_reload_timeout),
		FT(test_remove_slot_keeps_shared_ca),
		FT(test_single_slot_fixed_names),
		cmocka_unit_test(test_check_clean_config),
		cmocka_unit_test(test_check_template_escaping_path),
		cmocka_unit_test(test_check_unsafe_certificate_names),
		cmocka_unit_test(test_check_format_bind_modes_sharing),
		cmocka_unit_test(test_check_reports_settings_once),
		cmocka_unit_test(test_open_rejects_bad_settings),
		FT(test_open_expands_home),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_observation_release),
	};
	return cmocka_run_group_tests(tests, make_pki, drop_pki);
}
