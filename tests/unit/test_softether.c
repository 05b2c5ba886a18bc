/*
 * test_softether — the softether target against a REAL vpnserver (Debian's
 * softether-vpnserver), started on loopback from the seeded config by
 * tests/lab/softether.sh, plus a fake vpncmd (a shell script) for what a real
 * server cannot be made to do on demand: hang, print odd exit codes, claim
 * another version, exit 0 without writing a file.
 *
 * Certificates are made with the openssl CLI and checked with it too (DER,
 * fingerprints, the chain a TLS client receives), never with the code under test.
 * Needs root (private mount namespace for vpnserver). When vpnserver/vpncmd are
 * missing the tests are skipped, unless CI is set: then that is a failure.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/node.h"
#include "common/util.h"
#include "targets/softether.h"
#include "testutil.h"

#define PASSWORD_ENV "CW_TEST_SE_PASSWORD"

typedef struct {
	char *root;      /* everything below is inside */
	char *lab;       /* the server's state (tests/lab/softether.sh start DIR) */
	char *certs;     /* openssl-made keys and certificates */
	char *work;      /* the adapter's work folder */
	char *fake;      /* the fake vpncmd's control and record folder */
	char *script;    /* tests/lab/softether.sh */
	int port;
	char password[64];
	int skip;        /* vpnserver not installed and not in CI */
	int running;
	cw_buf log;      /* everything the adapter logged */
} lab_state;

static lab_state L;

/* ---- helpers ---- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *path_in(const char *dir, const char *name)
{
	return cw_path_join(dir, name);
}

static int sh(const char *cmd, char **out)
{
	const char *argv[] = { "sh", "-c", cmd, NULL };
	return tu_run(argv, out);
}

static void sh_ok(const char *cmd)
{
	char *out = NULL;
	int rc = sh(cmd, &out);
	if (rc != 0)
		print_error("command failed (%d): %s\n%s\n", rc, cmd, out ? out : "");
	free(out);
	assert_int_equal(rc, 0);
}

static char *read_text(const char *path)
{
	cw_buf b = CW_BUF_INIT;
	cw_error e = { 0 };
	if (cw_read_file(path, 1 << 20, &b, &e) != 0) {
		cw_buf_release(&b);
		return NULL;
	}
	cw_buf_add(&b, "", 0);
	return cw_buf_detach(&b);
}

/* A certificate's DER as openssl converts it: the reference to compare against. */
static void der_of(const char *pem_path, cw_blob *out)
{
	char *cmd = cw_xasprintf("openssl x509 -in '%s' -outform DER -out '%s.der'", pem_path,
				 pem_path);
	sh_ok(cmd);
	free(cmd);
	char *der_path = cw_xasprintf("%s.der", pem_path);
	cw_buf b = CW_BUF_INIT;
	cw_error e = { 0 };
	assert_int_equal(cw_read_file(der_path, 1 << 20, &b, &e), 0);
	free(der_path);
	out->data = (unsigned char *)b.buf;
	out->len = b.len;
}

/* openssl's SHA-256 fingerprint, lower hex without colons. */
static void openssl_fingerprint(const char *pem_path, char out[65])
{
	char *cmd = cw_xasprintf("openssl x509 -in '%s' -noout -fingerprint -sha256", pem_path);
	char *text = NULL;
	assert_int_equal(sh(cmd, &text), 0);
	free(cmd);
	const char *p = strchr(text, '=');
	assert_non_null(p);
	size_t n = 0;
	for (p++; *p && *p != '\n' && n < 64; p++)
		if (*p != ':')
			out[n++] = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
	out[n] = '\0';
	free(text);
	assert_int_equal(n, 64);
}

/* What a TLS client sees on the listener, by openssl s_client. */
static void served_fingerprint(char out[65])
{
	char *pem = path_in(L.root, "served.pem");
	char *cmd = cw_xasprintf("timeout 10 openssl s_client -connect 127.0.0.1:%d </dev/null "
				 "2>/dev/null | openssl x509 -out '%s'", L.port, pem);
	sh_ok(cmd);
	openssl_fingerprint(pem, out);
	free(cmd);
	free(pem);
}

static void blob_free(cw_blob *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

static int blob_equal(const cw_blob *a, const cw_blob *b)
{
	return a->len == b->len && a->len && !memcmp(a->data, b->data, a->len);
}

static size_t entries_in(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void assert_work_empty(void)
{
	assert_int_equal(entries_in(L.work), 0);
}

static void test_log(void *ud, int level, const char *target, const char *msg)
{
	cw_buf *b = ud;
	cw_buf_addf(b, "%d %s: %s\n", level, target, msg);
}

static void assert_no_password_in(const char *text)
{
	assert_null(strstr(text, L.password));
}

/* Opens the target with the lab's address and password plus extra YAML lines. */
static void *open_with(const char *address, const char *extra, int timeout_ms, cw_error *err)
{
	char *yaml = cw_xasprintf("address: \"%s\"\npassword: \"env:%s\"\n%s", address, PASSWORD_ENV,
				  extra ? extra : "");
	cw_node *root = NULL;
	cw_diags diags;
	cw_diags_init(&diags);
	assert_int_equal(cw_node_parse_yaml(&root, "test.yaml", yaml, strlen(yaml), &diags), 0);
	assert_non_null(root);
	cw_target_env env = { timeout_ms, L.work, test_log, &L.log };
	void *h = NULL;
	int rc = cw_softether_target.open(&h, "vpn", root, &env, err);
	/* settings are copied: the node tree may go now */
	cw_node_free(root);
	cw_diags_release(&diags);
	free(yaml);
	assert_true(rc == 0 ? h != NULL : h == NULL);
	return h;
}

static void *open_lab(const char *extra, int timeout_ms)
{
	char address[64];
	snprintf(address, sizeof(address), "127.0.0.1:%d", L.port);
	cw_error err = { 0 };
	void *h = open_with(address, extra, timeout_ms, &err);
	if (!h)
		print_error("open: %s\n", err.msg);
	assert_non_null(h);
	return h;
}

static void *open_fake(const char *extra, int timeout_ms)
{
	char *fake_bin = path_in(L.fake, "vpncmd");
	char *more = cw_xasprintf("vpncmd: \"%s\"\n%s", fake_bin, extra ? extra : "");
	cw_error err = { 0 };
	void *h = open_with("127.0.0.1:1", more, timeout_ms, &err);
	assert_non_null(h);
	free(more);
	free(fake_bin);
	return h;
}

static void fake_set(const char *name, const char *value)
{
	char *p = path_in(L.fake, name);
	if (value)
		tu_write(p, value);
	else
		unlink(p);
	free(p);
}

static char *fake_get(const char *name)
{
	char *p = path_in(L.fake, name);
	char *text = read_text(p);
	free(p);
	return text;
}

static void require_lab(void)
{
	if (L.skip)
		skip();
	assert_true(L.running);
}

/* Keys and certificates for the whole program, made once with the openssl CLI. */
static void make_certificates(void)
{
	char *cmd = cw_xasprintf(
		"set -e; cd '%s'\n"
		"self() { openssl req -x509 -newkey \"$2\" $3 -nodes -keyout \"$1.key\" -out \"$1.pem\" "
		"-days 30 -subj \"/CN=$1.test\" -addext \"subjectAltName=DNS:$1.test\" 2>/dev/null; }\n"
		"self rsa2048a rsa:2048\n"
		"self rsa2048b rsa:2048\n"
		"self rsa3072 rsa:3072\n"
		"self rsa1024 rsa:1024\n"
		"self ecdsa ec '-pkeyopt ec_paramgen_curve:P-256'\n"
		"openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 30 "
		"-subj /CN=Test-Root -addext basicConstraints=critical,CA:TRUE "
		"-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null\n"
		"openssl req -newkey rsa:2048 -nodes -keyout inter.key -out inter.csr -subj /CN=Test-Inter 2>/dev/null\n"
		"printf 'basicConstraints=critical,CA:TRUE,pathlen:0\\nkeyUsage=critical,keyCertSign,cRLSign\\n"
		"subjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid\\n' > inter.ext\n"
		"openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial "
		"-out inter.pem -days 20 -extfile inter.ext 2>/dev/null\n"
		"openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj /CN=leaf.test 2>/dev/null\n"
		"printf 'subjectAltName=DNS:leaf.test\\nextendedKeyUsage=serverAuth\\n"
		"keyUsage=critical,digitalSignature,keyEncipherment\\n"
		"subjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid\\n' > leaf.ext\n"
		"openssl x509 -req -in leaf.csr -CA inter.pem -CAkey inter.key -CAcreateserial "
		"-out leaf.pem -days 10 -extfile leaf.ext 2>/dev/null\n"
		"openssl pkcs8 -topk8 -in rsa2048a.key -out encrypted.key -passout pass:x 2>/dev/null\n",
		L.certs);
	sh_ok(cmd);
	free(cmd);
}

static char *cert_path(const char *name, const char *ext)
{
	char *file = cw_xasprintf("%s.%s", name, ext);
	char *p = path_in(L.certs, file);
	free(file);
	return p;
}

typedef struct {
	cw_bundle b;
	cw_blob chain[2];
	char *key;
	char fingerprint[65];
} test_bundle;

/* Certificate cert_name with the key of key_name and the intermediates listed. */
static void bundle_make(test_bundle *tb, const char *cert_name, const char *key_name,
			const char *const *chain_names, size_t nchain)
{
	memset(tb, 0, sizeof(*tb));
	char *pem = cert_path(cert_name, "pem");
	char *key = cert_path(key_name, "key");
	der_of(pem, &tb->b.cert);
	openssl_fingerprint(pem, tb->fingerprint);
	tb->key = read_text(key);
	assert_non_null(tb->key);
	for (size_t i = 0; i < nchain; i++) {
		char *c = cert_path(chain_names[i], "pem");
		der_of(c, &tb->chain[i]);
		free(c);
	}
	tb->b.slot = "vpn-cert";
	tb->b.fingerprint = tb->fingerprint;
	tb->b.chain = tb->chain;
	tb->b.nchain = nchain;
	tb->b.key_pem = tb->key;
	tb->b.key_pem_len = strlen(tb->key);
	free(pem);
	free(key);
}

static void bundle_release(test_bundle *tb)
{
	blob_free(&tb->b.cert);
	for (size_t i = 0; i < 2; i++)
		blob_free(&tb->chain[i]);
	free(tb->key);
}

/* The installed certificate, through the adapter. */
static void observe_now(void *h, cw_blob *out)
{
	cw_observation obs;
	cw_error err = { 0 };
	int rc = cw_softether_target.observe(h, "vpn-cert", &obs, &err);
	if (rc != 0)
		print_error("observe: %s\n", err.msg);
	assert_int_equal(rc, 0);
	assert_int_equal(obs.present, 1);
	*out = obs.cert;
	obs.cert.data = NULL;
	obs.cert.len = 0;
	cw_observation_release(&obs);
}

static void sha256_of(const cw_blob *b, char out[65])
{
	cw_sha256_hex(b->data, b->len, out);
}

/* ---- lab set-up ---- */

static int port_is_free(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static char *source_dir(void)
{
	const char *env = getenv("CW_SOURCE_DIR");
	if (env && *env)
		return cw_xstrdup(env);
	/* __FILE__ is .../tests/unit/test_softether.c */
	const char *cut = strstr(__FILE__, "tests/unit/");
	if (__FILE__[0] == '/' && cut)
		return cw_xstrndup(__FILE__, (size_t)(cut - __FILE__ - 1));
	return cw_xstrdup(".");
}

static const char fake_vpncmd[] =
	"#!/bin/sh\n"
	"# fake vpncmd: records how it was called, then acts as told by files in its folder\n"
	"d=\"$(dirname \"$0\")\"\n"
	"printf '%s\\n' \"$@\" > \"$d/args.txt\"\n"
	"pwd > \"$d/cwd.txt\"\n"
	"stat -c %a . > \"$d/cwdmode.txt\"\n"
	"if IFS= read -r line; then echo data > \"$d/stdin.txt\"; else echo eof > \"$d/stdin.txt\"; fi\n"
	"for a in \"$@\"; do\n"
	"  case \"$a\" in\n"
	"  /LOADCERT:*) f=\"${a#/LOADCERT:}\"; cp \"$f\" \"$d/loaded-cert.pem\" ;;\n"
	"  /LOADKEY:*) f=\"${a#/LOADKEY:}\"; stat -c %a \"$f\" > \"$d/keymode.txt\";"
	" stat -c %a \"$(dirname \"$f\")\" > \"$d/keydirmode.txt\" ;;\n"
	"  esac\n"
	"done\n"
	"if [ -f \"$d/sleep\" ]; then echo $$ > \"$d/sleep.pid\"; exec sleep \"$(cat \"$d/sleep\")\"; fi\n"
	"case \"$*\" in *ServerInfoGet*) echo 'Item,Value'; echo \"Version,$(cat \"$d/version\")\" ;; esac\n"
	"code=$(cat \"$d/code\" 2>/dev/null || echo 0)\n"
	"if [ \"$code\" != 0 ]; then echo \"Error occurred. (Error code: $code)\"; echo \"fake failure $code\"; fi\n"
	"exit \"$code\"\n";

static void make_fake_vpncmd(void)
{
	char *bin = path_in(L.fake, "vpncmd");
	tu_write(bin, fake_vpncmd);
	assert_int_equal(chmod(bin, 0755), 0);
	free(bin);
	fake_set("version", "Version 4.38 Build 9760   (English)\n");
}

static int start_lab(void)
{
	char *out = NULL;
	char port[16];
	snprintf(port, sizeof(port), "%d", L.port);
	const char *argv[] = { "bash", L.script, "start", L.lab, port, NULL };
	double t0 = now_s();
	int rc = tu_run(argv, &out);
	if (rc != 0) {
		print_error("softether lab failed to start (exit %d) — it needs root, unshare and the "
			    "softether packages:\n%s\n", rc, out ? out : "");
		free(out);
		return -1;
	}
	print_message("lab: %s  (start took %.2f s)\n", out ? strtok(out, "\n") : "", now_s() - t0);
	free(out);
	L.running = 1;
	return 0;
}

static void stop_lab(void)
{
	if (!L.running)
		return;
	const char *argv[] = { "bash", L.script, "stop", L.lab, NULL };
	char *out = NULL;
	if (tu_run(argv, &out) != 0)
		print_error("softether lab did not stop: %s\n", out ? out : "");
	free(out);
	L.running = 0;
}

/* A set-up that cannot run the server fails the whole group, loudly. */
static int setup_failed(void)
{
	tu_rmtree(L.root);
	return -1;
}

static int group_setup(void **state)
{
	memset(&L, 0, sizeof(L));
	cw_buf_init(&L.log);
	char *src = source_dir();
	L.script = cw_xasprintf("%s/tests/lab/softether.sh", src);
	free(src);
	L.root = tu_tempdir();
	L.lab = path_in(L.root, "lab");
	L.certs = path_in(L.root, "certs");
	L.work = path_in(L.root, "work");
	L.fake = path_in(L.root, "fake");
	mkdir(L.certs, 0700);
	mkdir(L.work, 0700);
	mkdir(L.fake, 0700);
	/* a space and quotes: vpncmd rebuilds its command line, the password must survive */
	snprintf(L.password, sizeof(L.password), "cw pw \"%d\" x", (int)getpid());
	setenv(PASSWORD_ENV, L.password, 1);
	setenv("SOFTETHER_ADMIN_PASSWORD", L.password, 1);
	make_certificates();
	make_fake_vpncmd();

	const char *check[] = { "bash", L.script, "check", NULL };
	int rc = tu_run(check, NULL);
	if (rc == 77) {
		const char *ci = getenv("CI");
		if (ci && *ci) {
			print_error("vpnserver/vpncmd are not installed, and CI is set: this must run here\n");
			return setup_failed();
		}
		print_message("vpnserver/vpncmd not installed: server tests are skipped\n");
		L.skip = 1;
		return 0;
	}
	if (rc != 0) {
		print_error("%s check failed (%d)\n", L.script, rc);
		return setup_failed();
	}
	L.port = 15555 + (int)(getpid() % 1000);
	for (int i = 0; i < 100 && !port_is_free(L.port); i++)
		L.port = 15555 + (L.port - 15555 + 7) % 1000;
	return start_lab() == 0 ? 0 : setup_failed();
}

static int group_teardown(void **state)
{
	stop_lab();
	/* nothing the adapter logged may carry the password */
	assert_no_password_in(L.log.buf ? L.log.buf : "");
	tu_rmtree(L.root);
	free(L.root);
	free(L.lab);
	free(L.certs);
	free(L.work);
	free(L.fake);
	free(L.script);
	cw_buf_release(&L.log);
	return 0;
}

/* Each test starts with the fake in its default state and ends with an empty work folder. */
static int test_setup(void **state)
{
	fake_set("code", NULL);
	fake_set("sleep", NULL);
	fake_set("version", "Version 4.38 Build 9760   (English)\n");
	return 0;
}

static int test_teardown(void **state)
{
	return entries_in(L.work) == 0 ? 0 : -1;
}

/* ---- static checks and settings (no server) ---- */

static void test_check_deployment(void **state)
{
	cw_diags d;
	cw_diags_init(&d);
	cw_softether_target.check_deployment(NULL, "vpn", CW_KEY_RSA2048, NULL, 0, NULL, &d);
	cw_softether_target.check_deployment(NULL, "vpn", CW_KEY_EC_P256, NULL, 0, NULL, &d);
	assert_int_equal(d.n, 0);   /* ECDSA depends on the build: the planner decides */

	cw_softether_target.check_deployment(NULL, "vpn", CW_KEY_RSA1024, NULL, 0, NULL, &d);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.items[0].code, "softether.rsa-min-2048");
	assert_int_equal(d.items[0].severity, CW_SEV_ERROR);
	assert_non_null(strstr(d.items[0].message, "bricks SoftEther's TLS"));
	assert_string_equal(d.items[0].certificate, "vpn");

	const char *bind[] = { "sstp" };
	cw_softether_target.check_deployment(NULL, "vpn", CW_KEY_RSA2048, bind, 1, NULL, &d);
	assert_int_equal(d.n, 2);
	assert_string_equal(d.items[1].code, "softether.bind");
	assert_non_null(strstr(d.items[1].message, "sstp"));

	cw_softether_target.check_deployment(NULL, "vpn", CW_KEY_ED25519, NULL, 0, NULL, &d);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.items[2].code, "softether.key-type");
	cw_diags_release(&d);

	assert_int_equal(cw_softether_target.caps, CW_TARGET_SINGLE_SLOT | CW_TARGET_TAKES_KEY);
	assert_string_equal(cw_softether_target.type, "softether");
}

static void test_open_errors(void **state)
{
	cw_error err = { 0 };
	unsetenv("CW_TEST_SE_UNSET");
	const char *yaml_unset = "address: \"127.0.0.1:5555\"\npassword: \"env:CW_TEST_SE_UNSET\"\n";
	cw_node *root = NULL;
	cw_diags diags;
	cw_diags_init(&diags);
	assert_int_equal(cw_node_parse_yaml(&root, "t.yaml", yaml_unset, strlen(yaml_unset), &diags), 0);
	cw_target_env env = { 5000, L.work, NULL, NULL };
	void *h = (void *)1;
	assert_int_equal(cw_softether_target.open(&h, "vpn", root, &env, &err), -1);
	assert_null(h);
	assert_non_null(strstr(err.msg, "target 'vpn'"));
	assert_non_null(strstr(err.msg, "env:CW_TEST_SE_UNSET"));
	cw_node_free(root);

	const char *bad[] = { "", "-oops:5555", "/tmp/x", "host:0", "host:99999", "host:port",
			      "a:b:c", "[::1", "[::1]x", "host:", NULL };
	for (size_t i = 0; bad[i]; i++) {
		cw_error_clear(&err);
		assert_null(open_with(bad[i], NULL, 5000, &err));
		assert_non_null(strstr(err.msg, "target 'vpn': address"));
	}
	/* a timeout of zero is no timeout: refused */
	cw_error_clear(&err);
	assert_null(open_with("127.0.0.1", "timeout: 0s\n", 5000, &err));
	assert_non_null(strstr(err.msg, "timeout"));
	/* a literal password is refused, and the literal is not repeated */
	const char *yaml_literal = "address: \"127.0.0.1\"\npassword: \"hunter2\"\n";
	assert_int_equal(cw_node_parse_yaml(&root, "t.yaml", yaml_literal, strlen(yaml_literal), &diags), 0);
	cw_error_clear(&err);
	assert_int_equal(cw_softether_target.open(&h, "vpn", root, &env, &err), -1);
	assert_null(strstr(err.msg, "hunter2"));
	assert_non_null(strstr(err.msg, "reference"));
	cw_node_free(root);
	cw_diags_release(&diags);
}

/* ---- against the fake vpncmd ---- */

static void test_argv_stdin_and_private_cwd(void **state)
{
	void *h = open_fake(NULL, 5000);
	cw_observation obs;
	cw_error err = { 0 };
	/* the fake exits 0 without writing the file: that is an error, not "no certificate" */
	assert_int_equal(cw_softether_target.observe(h, "vpn-cert", &obs, &err), -1);
	assert_non_null(strstr(err.msg, "wrote no file"));
	assert_int_equal(err.code, CW_ETARGET);

	char *args = fake_get("args.txt");
	char *expect = cw_xasprintf("127.0.0.1:1\n/SERVER\n/PASSWORD:%s\n/PROGRAMMING\n/CSV\n/CMD\n"
				    "ServerCertGet\nserver-cert.pem\n", L.password);
	assert_string_equal(args, expect);
	free(expect);
	free(args);
	char *stdin_seen = fake_get("stdin.txt");
	assert_string_equal(stdin_seen, "eof\n");   /* /dev/null, never a terminal or pipe */
	free(stdin_seen);
	char *cwd = fake_get("cwd.txt");
	char *mode = fake_get("cwdmode.txt");
	assert_int_equal(strncmp(cwd, L.work, strlen(L.work)), 0);   /* under the work folder */
	assert_true(strlen(cwd) > strlen(L.work) + 2);               /* ... in its own subfolder */
	assert_string_equal(mode, "700\n");
	free(cwd);
	free(mode);
	assert_work_empty();
	cw_softether_target.close(h);

	/* port 443 when the address has none */
	cw_error_clear(&err);
	char *fake_bin = path_in(L.fake, "vpncmd");
	char *extra = cw_xasprintf("vpncmd: \"%s\"\n", fake_bin);
	h = open_with("vpn.example.net", extra, 5000, &err);
	assert_non_null(h);
	cw_device_facts f;
	assert_int_equal(cw_softether_target.observe_device(h, &f, &err), 0);
	args = fake_get("args.txt");
	assert_int_equal(strncmp(args, "vpn.example.net:443\n", 20), 0);
	free(args);
	cw_device_facts_release(&f);
	cw_softether_target.close(h);
	free(extra);
	free(fake_bin);
}

static void test_versions_decide_keys_and_chain(void **state)
{
	const unsigned rsa = (1u << CW_KEY_RSA2048) | (1u << CW_KEY_RSA3072) | (1u << CW_KEY_RSA4096);
	const unsigned ec = (1u << CW_KEY_EC_P256) | (1u << CW_KEY_EC_P384);
	static const struct {
		const char *line, *version;
		unsigned keys;
		int chain_mode;
	} cases[] = {
		{ "Version 4.38 Build 9760   (English)", "4.38.9760", 0, 1 },
		{ "Version 5.01 Build 9674   (English)", "5.01.9674", 0, 1 },
		{ "Version 5.02 Build 5180   (English)", "5.02.5180", 0, 1 },
		{ "Version 5.02 Build 5181   (English)", "5.02.5181", 1, 2 },
		{ "Version 5.02 Build 5185   (Japanese)", "5.02.5185", 1, 2 },
		{ "Version 6.00 Build 1   (English)", "6.00.1", 1, 2 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *line = cw_xasprintf("%s\n", cases[i].line);
		fake_set("version", line);
		free(line);
		void *h = open_fake(NULL, 5000);
		cw_device_facts f;
		cw_error err = { 0 };
		assert_int_equal(cw_softether_target.observe_device(h, &f, &err), 0);
		assert_string_equal(f.version, cases[i].version);
		assert_int_equal(f.accepted_keys, cases[i].keys ? rsa | ec : rsa);
		assert_int_equal(f.chain_mode, cases[i].chain_mode);
		cw_device_facts_release(&f);
		cw_softether_target.close(h);
	}
	/* unreadable version: the safe assumptions */
	fake_set("version", "something else\n");
	void *h = open_fake(NULL, 5000);
	cw_device_facts f;
	cw_error err = { 0 };
	assert_int_equal(cw_softether_target.observe_device(h, &f, &err), 0);
	assert_null(f.version);
	assert_int_equal(f.accepted_keys, rsa);
	assert_int_equal(f.chain_mode, 0);
	assert_non_null(strstr(f.note, "not recognised"));
	cw_device_facts_release(&f);
	cw_softether_target.close(h);
}

static void test_exit_codes_become_messages(void **state)
{
	static const struct {
		const char *code, *text;
	} cases[] = {
		{ "1", "cannot connect to softether server 127.0.0.1:1" },
		{ "4", "protocol error" },
		{ "12", "wrong admin password for softether server 127.0.0.1:1" },
		{ "23", "rejected the certificate or key" },
		{ "38", "invalid parameter for ServerInfoGet" },
		{ "52", "not enough rights" },
		{ "77", "this server accepts RSA keys only" },
		{ "117", "does not know the command ServerInfoGet" },
		{ "99", "ServerInfoGet failed" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_set("code", cases[i].code);
		void *h = open_fake(NULL, 5000);
		cw_device_facts f;
		cw_error err = { 0 };
		assert_int_equal(cw_softether_target.observe_device(h, &f, &err), -1);
		if (!strstr(err.msg, cases[i].text))
			print_error("code %s: %s\n", cases[i].code, err.msg);
		assert_non_null(strstr(err.msg, cases[i].text));
		assert_int_equal(strncmp(err.msg, "target 'vpn': ", 14), 0);
		char *fake_words = cw_xasprintf("vpncmd error %s: fake failure %s", cases[i].code,
						cases[i].code);
		assert_non_null(strstr(err.msg, fake_words));   /* vpncmd's own words are kept */
		free(fake_words);
		assert_int_equal(err.code, CW_ETARGET);
		assert_no_password_in(err.msg);
		cw_device_facts_release(&f);
		cw_softether_target.close(h);
	}
}

static void test_hanging_vpncmd_times_out(void **state)
{
	fake_set("sleep", "30");
	void *h = open_fake("timeout: 2s\n", 60000);   /* the setting beats the run's timeout */
	cw_device_facts f;
	cw_error err = { 0 };
	double t0 = now_s();
	assert_int_equal(cw_softether_target.observe_device(h, &f, &err), -1);
	double took = now_s() - t0;
	print_message("hanging vpncmd: error after %.2f s (timeout 2 s)\n", took);
	assert_int_equal(err.code, CW_ETIMEOUT);
	assert_non_null(strstr(err.msg, "127.0.0.1:1"));
	assert_non_null(strstr(err.msg, "2 s"));
	assert_true(took >= 1.9 && took < 4.0);
	/* the hung process is gone, not left behind */
	char *pid = fake_get("sleep.pid");
	assert_non_null(pid);
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/%d", atoi(pid));
	assert_int_equal(access(proc, F_OK), -1);
	free(pid);

	/* ServerCertGet hanging: same, and its private folder is removed */
	cw_observation obs;
	cw_error_clear(&err);
	assert_int_equal(cw_softether_target.observe(h, "vpn-cert", &obs, &err), -1);
	assert_int_equal(err.code, CW_ETIMEOUT);
	assert_work_empty();
	cw_device_facts_release(&f);
	cw_softether_target.close(h);
}

/* Deploy on a bundle-capable build (faked: Debian has none): leaf + intermediates in one
 * file; the key 0600 in a 0700 folder; nothing left afterwards. */
static void test_deploy_files_handed_to_vpncmd(void **state)
{
	fake_set("version", "Version 5.02 Build 5185   (English)\n");
	void *h = open_fake(NULL, 5000);
	test_bundle tb;
	const char *chain[] = { "inter" };
	bundle_make(&tb, "leaf", "leaf", chain, 1);
	cw_error err = { 0 };
	assert_int_equal(cw_softether_target.deploy(h, &tb.b, &err), 0);
	char *keymode = fake_get("keymode.txt"), *dirmode = fake_get("keydirmode.txt");
	assert_string_equal(keymode, "600\n");
	assert_string_equal(dirmode, "700\n");
	free(keymode);
	free(dirmode);
	/* two certificates in the file, leaf first (checked with openssl) */
	char *loaded = path_in(L.fake, "loaded-cert.pem");
	char *cmd = cw_xasprintf("test \"$(grep -c 'BEGIN CERTIFICATE' '%s')\" = 2 && "
				 "openssl x509 -in '%s' -noout -subject | grep -q leaf.test", loaded, loaded);
	sh_ok(cmd);
	free(cmd);
	char *args = fake_get("args.txt");
	assert_non_null(strstr(args, "\n/CMD\nServerCertSet\n/LOADCERT:/"));
	assert_non_null(strstr(args, "\n/LOADKEY:/"));
	assert_null(strstr(args, "/CSV"));   /* ServerCertSet runs without it: see the notice */
	free(args);
	assert_work_empty();
	cw_softether_target.close(h);

	/* a leaf-only build gets the leaf alone */
	fake_set("version", "Version 4.38 Build 9760   (English)\n");
	h = open_fake(NULL, 5000);
	assert_int_equal(cw_softether_target.deploy(h, &tb.b, &err), 0);
	cmd = cw_xasprintf("test \"$(grep -c 'BEGIN CERTIFICATE' '%s')\" = 1", loaded);
	sh_ok(cmd);
	free(cmd);
	free(loaded);
	assert_work_empty();
	cw_softether_target.close(h);
	bundle_release(&tb);
}

/* A listener that accepts TCP but never speaks TLS: verify must give up at the timeout. */
static void test_tls_probe_times_out(void **state)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	socklen_t len = sizeof(a);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	char address[64];
	snprintf(address, sizeof(address), "127.0.0.1:%d", ntohs(a.sin_port));
	cw_error err = { 0 };
	void *h = open_with(address, "timeout: 2s\n", 60000, &err);
	assert_non_null(h);
	cw_observation obs;
	double t0 = now_s();
	assert_int_equal(cw_softether_target.verify(h, "vpn-cert", &obs, &err), -1);
	double took = now_s() - t0;
	print_message("silent TLS listener: error after %.2f s (timeout 2 s)\n", took);
	assert_int_equal(err.code, CW_ETIMEOUT);
	assert_non_null(strstr(err.msg, address));
	assert_true(took >= 1.9 && took < 3.0);
	assert_null(obs.cert.data);
	cw_softether_target.close(h);
	close(fd);
}

/* ---- against the real vpnserver ---- */

static void test_observe_device_real(void **state)
{
	require_lab();
	void *h = open_lab(NULL, 10000);
	cw_device_facts f;
	cw_error err = { 0 };
	double t0 = now_s();
	int rc = cw_softether_target.observe_device(h, &f, &err);
	print_message("ServerInfoGet: %.2f s\n", now_s() - t0);
	if (rc != 0)
		print_error("%s\n", err.msg);
	assert_int_equal(rc, 0);
	assert_non_null(f.version);
	print_message("server version %s\n", f.version);
	/* what the package says it is, independently */
	char *pkg = NULL;
	assert_int_equal(sh("dpkg-query -W -f '${Version}' softether-vpnserver", &pkg), 0);
	if (!strncmp(pkg, "5.01.9674", 9)) {
		assert_string_equal(f.version, "5.01.9674");
		assert_int_equal(f.accepted_keys,
				 (1u << CW_KEY_RSA2048) | (1u << CW_KEY_RSA3072) | (1u << CW_KEY_RSA4096));
		assert_int_equal(f.chain_mode, 1);
	}
	free(pkg);
	assert_false(f.accepted_keys & (1u << CW_KEY_RSA1024));
	cw_device_facts_release(&f);
	cw_softether_target.close(h);
}

static void test_deploy_observe_verify_real(void **state)
{
	require_lab();
	void *h = open_lab(NULL, 10000);
	test_bundle tb;
	bundle_make(&tb, "rsa2048a", "rsa2048a", NULL, 0);
	cw_error err = { 0 };
	double t0 = now_s();
	int rc = cw_softether_target.deploy(h, &tb.b, &err);
	double deploy_s = now_s() - t0;
	if (rc != 0)
		print_error("%s\n", err.msg);
	assert_int_equal(rc, 0);
	assert_work_empty();

	cw_blob seen;
	t0 = now_s();
	observe_now(h, &seen);
	double observe_s = now_s() - t0;
	assert_true(blob_equal(&seen, &tb.b.cert));   /* exactly the DER we deployed */
	blob_free(&seen);
	assert_work_empty();

	cw_observation obs;
	t0 = now_s();
	rc = cw_softether_target.verify(h, "vpn-cert", &obs, &err);
	double verify_s = now_s() - t0;
	if (rc != 0)
		print_error("%s\n", err.msg);
	assert_int_equal(rc, 0);
	char fp[65];
	sha256_of(&obs.cert, fp);
	assert_string_equal(fp, tb.fingerprint);   /* the handshake shows the new certificate */
	assert_int_equal(obs.nchain, 0);
	cw_observation_release(&obs);
	char served[65];
	served_fingerprint(served);                /* and so does openssl s_client */
	assert_string_equal(served, tb.fingerprint);
	/* by host name: the resolver thread, SNI, and ::1 refused before 127.0.0.1 answers */
	char localhost[64];
	snprintf(localhost, sizeof(localhost), "localhost:%d", L.port);
	void *hl = open_with(localhost, NULL, 10000, &err);
	assert_non_null(hl);
	rc = cw_softether_target.verify(hl, "vpn-cert", &obs, &err);
	if (rc != 0)
		print_error("%s\n", err.msg);
	assert_int_equal(rc, 0);
	sha256_of(&obs.cert, fp);
	assert_string_equal(fp, tb.fingerprint);
	cw_observation_release(&obs);
	cw_softether_target.close(hl);
	print_message("deploy (ServerInfoGet + ServerCertSet) %.2f s, observe (ServerCertGet) "
		      "%.2f s, verify (TLS + ServerCertGet) %.2f s\n", deploy_s, observe_s, verify_s);
	assert_work_empty();
	bundle_release(&tb);

	/* RSA 3072 is accepted too, despite the server's "1024 or 2048" text */
	bundle_make(&tb, "rsa3072", "rsa3072", NULL, 0);
	assert_int_equal(cw_softether_target.deploy(h, &tb.b, &err), 0);
	served_fingerprint(served);
	assert_string_equal(served, tb.fingerprint);
	bundle_release(&tb);
	cw_softether_target.close(h);
}

/* Someone installs another certificate by hand: observe shows it (drift). */
static void test_manual_replace_is_seen(void **state)
{
	require_lab();
	char *pem = cert_path("rsa2048b", "pem"), *key = cert_path("rsa2048b", "key");
	char *port = cw_xasprintf("127.0.0.1:%d", L.port);
	char *pw = cw_xasprintf("/PASSWORD:%s", L.password);
	char *lc = cw_xasprintf("/LOADCERT:%s", pem), *lk = cw_xasprintf("/LOADKEY:%s", key);
	const char *argv[] = { "timeout", "20", "vpncmd", port, "/SERVER", pw, "/PROGRAMMING", "/CMD",
			       "ServerCertSet", lc, lk, NULL };
	double t0 = now_s();
	assert_int_equal(tu_run(argv, NULL), 0);
	print_message("ServerCertSet by hand: %.2f s\n", now_s() - t0);

	void *h = open_lab(NULL, 10000);
	cw_blob seen, expect;
	observe_now(h, &seen);
	der_of(pem, &expect);
	assert_true(blob_equal(&seen, &expect));
	blob_free(&seen);
	blob_free(&expect);
	cw_softether_target.close(h);
	free(pem);
	free(key);
	free(port);
	free(pw);
	free(lc);
	free(lk);
}

/* A CA-signed leaf: the server's "sub-certificate" notice is not a failure; with
 * chain_certs set to the server's folder, TLS clients get the intermediate too and the
 * chain verifies with openssl against the root. */
static void test_ca_signed_with_chain_certs(void **state)
{
	require_lab();
	char *chain_dir = cw_xasprintf("%s/var-lib/softether/chain_certs", L.lab);
	char *extra = cw_xasprintf("chain_certs: \"%s\"\n", chain_dir);
	void *h = open_lab(extra, 10000);
	/* a stale file of ours from an earlier, longer chain must go; others' files stay */
	char *stale = cw_xasprintf("%s/certwright-chain-5.cer", chain_dir);
	char *theirs = cw_xasprintf("%s/their-own.txt", chain_dir);
	tu_write(stale, "old");
	tu_write(theirs, "keep");
	test_bundle tb;
	const char *chain[] = { "inter" };
	bundle_make(&tb, "leaf", "leaf", chain, 1);
	size_t log_before = L.log.len;
	cw_error err = { 0 };
	int rc = cw_softether_target.deploy(h, &tb.b, &err);
	if (rc != 0)
		print_error("%s\n", err.msg);
	assert_int_equal(rc, 0);
	assert_work_empty();
	assert_non_null(strstr(L.log.buf + log_before, "CA-signed"));   /* the notice was seen */
	assert_int_equal(access(stale, F_OK), -1);
	assert_int_equal(access(theirs, F_OK), 0);
	char *ours = cw_xasprintf("%s/certwright-chain-0.cer", chain_dir);
	struct stat st;
	assert_int_equal(stat(ours, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	unlink(theirs);

	cw_observation obs;
	assert_int_equal(cw_softether_target.verify(h, "vpn-cert", &obs, &err), 0);
	assert_true(blob_equal(&obs.cert, &tb.b.cert));
	assert_int_equal(obs.nchain, 1);
	assert_true(blob_equal(&obs.chain[0], &tb.chain[0]));
	cw_observation_release(&obs);

	/* independently: what s_client receives verifies strictly up to the root */
	char *root = cert_path("root", "pem");
	char *cmd = cw_xasprintf(
		"set -e; cd '%s'; timeout 10 openssl s_client -connect 127.0.0.1:%d -showcerts "
		"</dev/null 2>/dev/null > served.txt\n"
		"awk '/BEGIN CERT/{n++} n==1' served.txt | sed '/END CERT/q' > served-leaf.pem\n"
		"awk '/BEGIN CERT/{n++} n>=2' served.txt | sed -n '/BEGIN/,/END/p' > served-chain.pem\n"
		"openssl verify -x509_strict -CAfile '%s' -untrusted served-chain.pem served-leaf.pem",
		L.root, L.port, root);
	sh_ok(cmd);
	free(cmd);
	free(root);
	bundle_release(&tb);
	cw_softether_target.close(h);
	free(chain_dir);
	free(extra);
	free(stale);
	free(theirs);
	free(ours);
}

static void assert_deploy_refused(void *h, test_bundle *tb, const char *text, cw_errcode code)
{
	cw_blob before, after;
	observe_now(h, &before);
	cw_error err = { 0 };
	assert_int_equal(cw_softether_target.deploy(h, &tb->b, &err), -1);
	if (!strstr(err.msg, text))
		print_error("%s\n", err.msg);
	assert_non_null(strstr(err.msg, text));
	assert_int_equal(err.code, code);
	assert_no_password_in(err.msg);
	assert_work_empty();   /* the key file is gone after a failure too */
	observe_now(h, &after);
	assert_true(blob_equal(&before, &after));   /* the server kept its certificate */
	blob_free(&before);
	blob_free(&after);
}

static void test_ecdsa_refused_by_server(void **state)
{
	require_lab();
	void *h = open_lab(NULL, 10000);
	test_bundle tb;
	bundle_make(&tb, "ecdsa", "ecdsa", NULL, 0);
	assert_deploy_refused(h, &tb, "this server accepts RSA keys only", CW_ETARGET);
	bundle_release(&tb);
	cw_softether_target.close(h);
}

static void test_key_mismatch_refused(void **state)
{
	require_lab();
	void *h = open_lab(NULL, 10000);
	test_bundle tb;
	bundle_make(&tb, "rsa2048a", "rsa2048b", NULL, 0);
	assert_deploy_refused(h, &tb, "rejected the certificate or key", CW_ETARGET);
	bundle_release(&tb);
	cw_softether_target.close(h);
}

/* RSA-1024 would brick the server: it must never reach it. */
static void test_rsa1024_never_reaches_server(void **state)
{
	require_lab();
	void *h = open_lab(NULL, 10000);
	test_bundle tb;
	bundle_make(&tb, "rsa1024", "rsa1024", NULL, 0);
	assert_deploy_refused(h, &tb, "softether.rsa-min-2048", CW_EINVAL);
	bundle_release(&tb);

	/* an encrypted key would hang vpncmd on a passphrase prompt */
	bundle_make(&tb, "rsa2048a", "encrypted", NULL, 0);
	assert_deploy_refused(h, &tb, "encrypted", CW_EINVAL);
	bundle_release(&tb);
	cw_softether_target.close(h);
	/* and the server still answers TLS */
	char served[65];
	served_fingerprint(served);
}

static void test_wrong_password(void **state)
{
	require_lab();
	char address[64];
	snprintf(address, sizeof(address), "127.0.0.1:%d", L.port);
	const char *wrong = "not-the-password-42";
	setenv(PASSWORD_ENV, wrong, 1);
	cw_error err = { 0 };
	void *h = open_with(address, NULL, 10000, &err);
	setenv(PASSWORD_ENV, L.password, 1);
	assert_non_null(h);
	cw_device_facts f;
	assert_int_equal(cw_softether_target.observe_device(h, &f, &err), -1);
	print_message("wrong password: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "wrong admin password"));
	assert_non_null(strstr(err.msg, address));
	assert_non_null(strstr(err.msg, "env:" PASSWORD_ENV));   /* names the reference */
	assert_null(strstr(err.msg, wrong));
	assert_no_password_in(err.msg);
	assert_int_equal(err.code, CW_ETARGET);

	cw_observation obs;
	cw_error_clear(&err);
	assert_int_equal(cw_softether_target.observe(h, "vpn-cert", &obs, &err), -1);
	assert_non_null(strstr(err.msg, "wrong admin password"));
	assert_work_empty();
	cw_softether_target.close(h);
}

static pid_t lab_pid(void)
{
	char *p = path_in(L.lab, "pid");
	char *text = read_text(p);
	free(p);
	assert_non_null(text);
	pid_t pid = (pid_t)atoi(text);
	free(text);
	assert_true(pid > 1);
	return pid;
}

/* A frozen server (SIGSTOP) still completes TCP handshakes in the kernel but never
 * answers: vpncmd would wait for ever, and so would a TLS client. Both are cut at the
 * timeout, and the server is usable again afterwards. */
static void test_frozen_server_times_out(void **state)
{
	require_lab();
	void *h = open_lab("timeout: 3s\n", 60000);
	pid_t pid = lab_pid();
	assert_int_equal(kill(pid, SIGSTOP), 0);
	cw_device_facts f;
	cw_error err1 = { 0 }, err2 = { 0 };
	double t0 = now_s();
	int rc1 = cw_softether_target.observe_device(h, &f, &err1);
	double took1 = now_s() - t0;
	cw_observation obs;
	t0 = now_s();
	int rc2 = cw_softether_target.verify(h, "vpn-cert", &obs, &err2);
	double took2 = now_s() - t0;
	assert_int_equal(kill(pid, SIGCONT), 0);
	print_message("frozen server: ServerInfoGet error after %.2f s, verify after %.2f s "
		      "(timeout 3 s)\n", took1, took2);
	assert_int_equal(rc1, -1);
	assert_int_equal(err1.code, CW_ETIMEOUT);
	assert_non_null(strstr(err1.msg, "did not finish within 3 s"));
	assert_true(took1 >= 2.9 && took1 < 3.0 + 2.0);
	assert_int_equal(rc2, -1);
	assert_int_equal(err2.code, CW_ETIMEOUT);
	assert_non_null(strstr(err2.msg, "no TLS handshake"));
	assert_true(took2 >= 2.9 && took2 < 3.0 + 2.0);
	assert_work_empty();
	/* thawed, it answers again */
	cw_error err = { 0 };
	assert_int_equal(cw_softether_target.observe_device(h, &f, &err), 0);
	cw_device_facts_release(&f);
	cw_softether_target.close(h);
}

/* Last: stops the server. Every call fails within the timeout, with a clear message. */
static void test_stopped_server(void **state)
{
	require_lab();
	stop_lab();
	void *h = open_lab("timeout: 3s\n", 60000);
	cw_device_facts f;
	cw_error err = { 0 };
	double t0 = now_s();
	assert_int_equal(cw_softether_target.observe_device(h, &f, &err), -1);
	double took = now_s() - t0;
	print_message("stopped server: ServerInfoGet error after %.2f s: %s\n", took, err.msg);
	assert_true(took < 3.0 + 2.0);
	assert_non_null(strstr(err.msg, "cannot connect to softether server"));

	cw_observation obs;
	cw_error_clear(&err);
	t0 = now_s();
	assert_int_equal(cw_softether_target.verify(h, "vpn-cert", &obs, &err), -1);
	took = now_s() - t0;
	print_message("stopped server: verify error after %.2f s: %s\n", took, err.msg);
	assert_true(took < 3.0 + 2.0);
	assert_non_null(strstr(err.msg, "cannot connect"));
	assert_work_empty();
	cw_softether_target.close(h);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_check_deployment),
		T(test_open_errors),
		T(test_argv_stdin_and_private_cwd),
		T(test_versions_decide_keys_and_chain),
		T(test_exit_codes_become_messages),
		T(test_hanging_vpncmd_times_out),
		T(test_deploy_files_handed_to_vpncmd),
		T(test_tls_probe_times_out),
		T(test_observe_device_real),
		T(test_deploy_observe_verify_real),
		T(test_manual_replace_is_seen),
		T(test_ca_signed_with_chain_certs),
		T(test_ecdsa_refused_by_server),
		T(test_key_mismatch_refused),
		T(test_rsa1024_never_reaches_server),
		T(test_wrong_password),
		T(test_frozen_server_times_out),
		T(test_stopped_server),
	};
	return cmocka_run_group_tests_name("softether", tests, group_setup, group_teardown);
}
