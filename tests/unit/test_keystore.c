/* Tests for reconcile/keystore: encryption at rest, modes, lock, refusal inside git. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "reconcile/keystore.h"

#define PASS "correct horse battery staple"

typedef struct {
	char *dir;     /* temp root, removed after the test */
	char *ksdir;   /* the keystore inside it (not created yet) */
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tempdir();
	f->ksdir = cw_path_join(f->dir, "store");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	tu_rmtree(f->dir);
	free(f->dir);
	free(f->ksdir);
	free(f);
	return 0;
}

static cw_keystore *open_unlocked(const char *dir, const char *pass)
{
	cw_keystore *ks = NULL;
	cw_error err = { 0 };
	assert_int_equal(cw_keystore_open(&ks, dir, 1, &err), 0);
	assert_int_equal(cw_keystore_unlock(ks, pass, strlen(pass), &err), 0);
	return ks;
}

static EVP_PKEY *make_key(const char *kind)
{
	EVP_PKEY *k = NULL;
	if (!strcmp(kind, "rsa"))
		k = EVP_RSA_gen(2048);
	else if (!strcmp(kind, "ec"))
		k = EVP_EC_gen("P-256");
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(k);
	return k;
}

static char *key_file(const char *ksdir, const char *name, const char *serial)
{
	return cw_xasprintf("%s/keys/%s/%s.key", ksdir, name, serial);
}

static char *file_sha(const char *path)
{
	cw_buf b = CW_BUF_INIT;
	cw_error err = { 0 };
	assert_int_equal(cw_read_file(path, 0, &b, &err), 0);
	char *hex = cw_xcalloc(1, 65);
	cw_sha256_hex(b.buf, b.len, hex);
	cw_buf_release(&b);
	return hex;
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* The key-encryption secret as an operator would get it: `openssl kdf` on the passphrase
 * and the salt from keystore.json, colons dropped, lower case. Independent of our code. */
static void kek_hex_via_openssl(const char *ksdir, const char *pass, char out[65])
{
	char *cfg = cw_path_join(ksdir, "keystore.json");
	json_error_t jerr;
	json_t *root = json_load_file(cfg, 0, &jerr);
	assert_non_null(root);
	json_t *kdf = json_object_get(root, "kdf");
	char *passopt = cw_xasprintf("pass:%s", pass);
	char *saltopt = cw_xasprintf("hexsalt:%s", json_string_value(json_object_get(kdf, "salt")));
	char *nopt = cw_xasprintf("n:%lld", (long long)json_integer_value(json_object_get(kdf, "N")));
	const char *argv[] = { "openssl", "kdf", "-keylen", "32", "-kdfopt", passopt,
			       "-kdfopt", saltopt, "-kdfopt", nopt, "-kdfopt", "r:8",
			       "-kdfopt", "p:1", "SCRYPT", NULL };
	char *text = NULL;
	assert_int_equal(tu_run(argv, &text), 0);
	size_t n = 0;
	for (const char *c = text; *c && n < 64; c++)
		if (*c != ':' && *c != '\n')
			out[n++] = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
	out[n] = '\0';
	assert_int_equal(n, 64);
	free(text);
	free(passopt);
	free(saltopt);
	free(nopt);
	free(cfg);
	json_decref(root);
}

static EVP_PKEY *parse_plain_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	return k;
}

/* ---- tests ---- */

static void test_round_trip_all_key_types(void **state)
{
	fixture *f = *state;
	const char *kinds[] = { "rsa", "ec", "ed25519" };
	EVP_PKEY *keys[3];
	cw_error err = { 0 };
	cw_keystore *ks = open_unlocked(f->ksdir, PASS);
	for (int i = 0; i < 3; i++) {
		keys[i] = make_key(kinds[i]);
		assert_int_equal(cw_keystore_put_key(ks, kinds[i], "0A1B2C", keys[i], 1, &err), 0);
	}
	cw_keystore_close(ks);

	/* a later run: new handle, verifier path, same keys back */
	ks = open_unlocked(f->ksdir, PASS);
	for (int i = 0; i < 3; i++) {
		EVP_PKEY *back = NULL;
		assert_int_equal(cw_keystore_get_key(ks, kinds[i], "0A1B2C", &back, &err), 0);
		assert_int_equal(EVP_PKEY_eq(keys[i], back), 1);
		EVP_PKEY_free(back);
		EVP_PKEY_free(keys[i]);
	}
	cw_keystore_close(ks);
}

static void test_modes_and_format(void **state)
{
	fixture *f = *state;
	cw_error err = { 0 };
	cw_keystore *ks = open_unlocked(f->ksdir, PASS);
	EVP_PKEY *k = make_key("ec");
	assert_int_equal(cw_keystore_put_key(ks, "vpn", "01", k, 1, &err), 0);
	char *path = key_file(f->ksdir, "vpn", "01");
	char *keys = cw_path_join(f->ksdir, "keys");
	char *named = cw_path_join(keys, "vpn");
	char *cfg = cw_path_join(f->ksdir, "keystore.json");
	assert_int_equal(mode_of(f->ksdir), 0700);
	assert_int_equal(mode_of(keys), 0700);
	assert_int_equal(mode_of(named), 0700);
	assert_int_equal(mode_of(path), 0600);
	assert_int_equal(mode_of(cfg), 0600);

	/* keystore.json has the documented shape */
	json_error_t jerr;
	json_t *root = json_load_file(cfg, 0, &jerr);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "format")), "certwright-keystore");
	json_t *kdf = json_object_get(root, "kdf");
	assert_string_equal(json_string_value(json_object_get(kdf, "name")), "scrypt");
	assert_int_equal(json_integer_value(json_object_get(kdf, "N")), 32768);
	assert_int_equal(strlen(json_string_value(json_object_get(kdf, "salt"))), 64);
	assert_int_equal(strlen(json_string_value(json_object_get(root, "verifier"))), 64);
	json_decref(root);

	/* PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC with one iteration, per asn1parse */
	const char *argv[] = { "openssl", "asn1parse", "-in", path, "-i", NULL };
	char *out = NULL;
	assert_int_equal(tu_run(argv, &out), 0);
	assert_non_null(strstr(out, "PBES2"));
	assert_non_null(strstr(out, "PBKDF2"));
	assert_non_null(strstr(out, "hmacWithSHA256"));
	assert_non_null(strstr(out, "aes-256-cbc"));
	assert_non_null(strstr(out, "INTEGER           :01"));  /* the iteration count */
	free(out);
	EVP_PKEY_free(k);
	cw_keystore_close(ks);
	free(path);
	free(keys);
	free(named);
	free(cfg);
}

static void test_openssl_reads_key_files(void **state)
{
	fixture *f = *state;
	cw_error err = { 0 };
	cw_keystore *ks = open_unlocked(f->ksdir, PASS);
	const char *kinds[] = { "rsa", "ec", "ed25519" };
	char kek[65];
	kek_hex_via_openssl(f->ksdir, PASS, kek);
	char *passin = cw_xasprintf("pass:%s", kek);
	for (int i = 0; i < 3; i++) {
		EVP_PKEY *k = make_key(kinds[i]);
		assert_int_equal(cw_keystore_put_key(ks, kinds[i], "FF01", k, 1, &err), 0);
		char *path = key_file(f->ksdir, kinds[i], "FF01");
		const char *argv[] = { "openssl", "pkcs8", "-in", path, "-passin", passin, NULL };
		char *out = NULL;
		assert_int_equal(tu_run(argv, &out), 0);
		EVP_PKEY *plain = parse_plain_pem(out);
		assert_non_null(plain);
		assert_int_equal(EVP_PKEY_eq(k, plain), 1);
		EVP_PKEY_free(plain);
		free(out);

		/* and not with any other secret */
		const char *bad[] = { "openssl", "pkcs8", "-in", path, "-passin", "pass:0000", NULL };
		assert_int_not_equal(tu_run(bad, NULL), 0);

		/* a second implementation: GnuTLS reads it too */
		if (access("/usr/bin/certtool", X_OK) == 0) {
			const char *gnutls[] = { "certtool", "-k", "--infile", path, "--password", kek,
						 NULL };
			assert_int_equal(tu_run(gnutls, NULL), 0);
		}
		free(path);
		EVP_PKEY_free(k);
	}
	free(passin);
	cw_keystore_close(ks);
}

static void test_wrong_passphrase_writes_nothing(void **state)
{
	fixture *f = *state;
	cw_error err = { 0 };
	cw_keystore *ks = open_unlocked(f->ksdir, PASS);
	cw_keystore_close(ks);
	char *cfg = cw_path_join(f->ksdir, "keystore.json");
	char *before = file_sha(cfg);

	assert_int_equal(cw_keystore_open(&ks, f->ksdir, 0, &err), 0);
	assert_int_equal(cw_keystore_initialised(ks), 1);
	assert_int_equal(cw_keystore_unlock(ks, "wrong", 5, &err), -1);
	assert_int_equal(err.code, CW_EPASS);
	assert_non_null(strstr(err.msg, "wrong passphrase"));
	assert_non_null(strstr(err.msg, f->ksdir));

	/* still locked: keys cannot be written */
	EVP_PKEY *k = make_key("ec");
	cw_error_clear(&err);
	assert_int_equal(cw_keystore_put_key(ks, "vpn", "01", k, 1, &err), -1);
	assert_int_equal(err.code, CW_EPASS);
	char *after = file_sha(cfg);
	assert_string_equal(before, after);
	char *keys = cw_path_join(f->ksdir, "keys");
	assert_int_equal(cw_path_exists(keys), 0);

	/* an empty passphrase is refused outright */
	cw_error_clear(&err);
	assert_int_equal(cw_keystore_unlock(ks, "", 0, &err), -1);
	assert_int_equal(err.code, CW_EPASS);
	EVP_PKEY_free(k);
	cw_keystore_close(ks);
	free(keys);
	free(before);
	free(after);
	free(cfg);
}

static void test_empty_passphrase_does_not_initialise(void **state)
{
	fixture *f = *state;
	cw_error err = { 0 };
	cw_keystore *ks = NULL;
	assert_int_equal(cw_keystore_open(&ks, f->ksdir, 1, &err), 0);
	assert_int_equal(cw_keystore_initialised(ks), 0);
	assert_int_equal(cw_keystore_unlock(ks, "", 0, &err), -1);
	assert_int_equal(err.code, CW_EPASS);
	assert_int_equal(cw_keystore_initialised(ks), 0);
	cw_keystore_close(ks);
}

static void test_refused_inside_git_work_tree(void **state)
{
	fixture *f = *state;
	char *repo = cw_path_join(f->dir, "repo");
	const char *argv[] = { "git", "init", "-q", repo, NULL };
	assert_int_equal(tu_run(argv, NULL), 0);

	char *inside = cw_path_join(repo, "secrets/keystore");
	cw_keystore *ks = NULL;
	cw_error err = { 0 };
	assert_int_equal(cw_keystore_open(&ks, inside, 1, &err), -1);
	assert_null(ks);
	assert_int_equal(err.code, CW_EINVAL);
	assert_non_null(strstr(err.msg, "outside the repository"));
	assert_non_null(strstr(err.msg, "--keystore"));
	/* refused before anything was created in the repository */
	char *secrets = cw_path_join(repo, "secrets");
	assert_int_equal(cw_path_exists(secrets), 0);

	/* a relative path is resolved against the working directory first */
	char cwd[4096];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(repo), 0);
	cw_error_clear(&err);
	int rc = cw_keystore_open(&ks, "ks", 1, &err);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(rc, -1);
	assert_int_equal(err.code, CW_EINVAL);

	/* next to the repository is fine */
	cw_error_clear(&err);
	assert_int_equal(cw_keystore_open(&ks, f->ksdir, 1, &err), 0);
	cw_keystore_close(ks);
	free(secrets);
	free(inside);
	free(repo);
}

static void test_lock_names_holder(void **state)
{
	fixture *f = *state;
	cw_error err = { 0 };
	cw_keystore *a = NULL, *b = NULL;
	assert_int_equal(cw_keystore_open(&a, f->ksdir, 1, &err), 0);
	assert_int_equal(cw_keystore_open(&b, f->ksdir, 0, &err), 0);
	assert_int_equal(cw_keystore_lock(a, &err), 0);
	assert_int_equal(cw_keystore_lock(b, &err), -1);
	assert_int_equal(err.code, CW_ELOCKED);
	char pid[64];
	snprintf(pid, sizeof(pid), "(pid %ld)", (long)getpid());
	assert_non_null(strstr(err.msg, pid));
	assert_non_null(strstr(err.msg, "locked by another certwright run"));
	char *lock = cw_path_join(f->ksdir, "lock");
	assert_int_equal(mode_of(lock), 0600);

	/* closing releases it */
	cw_keystore_close(a);
	cw_error_clear(&err);
	assert_int_equal(cw_keystore_lock(b, &err), 0);
	cw_keystore_close(b);
	free(lock);
}

static int contains(const char *hay, size_t len, const char *needle)
{
	return memmem(hay, len, needle, strlen(needle)) != NULL;
}

/* Counts files under dir with an unencrypted private key header, and encrypted key files. */
static void scan_for_keys(const char *dir, int *plain, int *encrypted)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *p = cw_path_join(dir, e->d_name);
		struct stat st;
		assert_int_equal(lstat(p, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			scan_for_keys(p, plain, encrypted);
		} else {
			cw_buf b = CW_BUF_INIT;
			cw_error err = { 0 };
			assert_int_equal(cw_read_file(p, 0, &b, &err), 0);
			*plain += contains(b.buf, b.len, "BEGIN PRIVATE KEY") ||
				  contains(b.buf, b.len, "BEGIN RSA PRIVATE KEY") ||
				  contains(b.buf, b.len, "BEGIN EC PRIVATE KEY");
			*encrypted += contains(b.buf, b.len, "BEGIN ENCRYPTED PRIVATE KEY");
			cw_buf_release(&b);
		}
		free(p);
	}
	closedir(d);
}

static void test_no_plaintext_key_on_disk(void **state)
{
	fixture *f = *state;
	cw_error err = { 0 };
	cw_keystore *ks = open_unlocked(f->ksdir, PASS);
	assert_int_equal(cw_keystore_lock(ks, &err), 0);
	const char *kinds[] = { "rsa", "ec", "ed25519" };
	for (int i = 0; i < 3; i++) {
		EVP_PKEY *k = make_key(kinds[i]);
		assert_int_equal(cw_keystore_put_key(ks, kinds[i], "0C", k, i % 2, &err), 0);
		EVP_PKEY_free(k);
	}
	const unsigned char der[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };
	assert_int_equal(cw_keystore_put_cert(ks, "ec", "0C", der, sizeof(der), 1, &err), 0);
	assert_int_equal(cw_keystore_sync(ks, &err), 0);
	int plain = 0, encrypted = 0;
	scan_for_keys(f->ksdir, &plain, &encrypted);
	assert_int_equal(plain, 0);
	assert_int_equal(encrypted, 3);
	cw_keystore_close(ks);
}

static void test_bad_names_refused(void **state)
{
	fixture *f = *state;
	cw_keystore *ks = open_unlocked(f->ksdir, PASS);
	EVP_PKEY *k = make_key("ec");
	const char *names[][2] = { { "../escape", "01" }, { ".hidden", "01" }, { "a/b", "01" },
				   { "vpn", ".." },       { "vpn", "x/y" },   { "", "01" },
				   { "vpn", "" },         { "new\nline", "01" } };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		cw_error err = { 0 };
		assert_int_equal(cw_keystore_put_key(ks, names[i][0], names[i][1], k, 1, &err), -1);
		assert_int_equal(err.code, CW_EINVAL);
		assert_non_null(strstr(err.msg, "not usable as a keystore file name"));
	}
	char *keys = cw_path_join(f->ksdir, "keys");
	char *escaped = cw_path_join(f->dir, "escape");
	assert_int_equal(cw_path_exists(keys), 0);
	assert_int_equal(cw_path_exists(escaped), 0);
	EVP_PKEY_free(k);
	cw_keystore_close(ks);
	free(keys);
	free(escaped);
}

static void test_missing_items_and_overwrite(void **state)
{
	fixture *f = *state;
	cw_error err = { 0 };
	cw_keystore *ks = open_unlocked(f->ksdir, PASS);
	EVP_PKEY *k = make_key("ec"), *back = NULL;
	assert_int_equal(cw_keystore_get_key(ks, "vpn", "ABCD", &back, &err), -1);
	assert_null(back);
	assert_int_equal(err.code, CW_EIO);
	assert_non_null(strstr(err.msg, "certificate vpn serial ABCD"));

	cw_buf der = CW_BUF_INIT;
	cw_error_clear(&err);
	assert_int_equal(cw_keystore_get_cert(ks, "vpn", "ABCD", &der, &err), -1);
	assert_int_equal(err.code, CW_EIO);
	assert_non_null(strstr(err.msg, "certificate vpn serial ABCD"));

	/* a serial names one key for ever */
	cw_error_clear(&err);
	assert_int_equal(cw_keystore_put_key(ks, "vpn", "ABCD", k, 1, &err), 0);
	char *path = key_file(f->ksdir, "vpn", "ABCD");
	char *before = file_sha(path);
	assert_int_equal(cw_keystore_put_key(ks, "vpn", "ABCD", k, 1, &err), -1);
	assert_int_equal(err.code, CW_EINVAL);
	char *after = file_sha(path);
	assert_string_equal(before, after);
	EVP_PKEY_free(k);
	cw_keystore_close(ks);
	free(path);
	free(before);
	free(after);
}

static void test_cert_round_trip_without_unlock(void **state)
{
	fixture *f = *state;
	cw_error err = { 0 };
	cw_keystore *ks = NULL;
	assert_int_equal(cw_keystore_open(&ks, f->ksdir, 1, &err), 0);
	unsigned char der[300];
	for (size_t i = 0; i < sizeof(der); i++)
		der[i] = (unsigned char)(i * 7);
	assert_int_equal(cw_keystore_put_cert(ks, "web", "0F", der, sizeof(der), 0, &err), 0);
	assert_int_equal(cw_keystore_sync(ks, &err), 0);
	cw_buf back = CW_BUF_INIT;
	assert_int_equal(cw_keystore_get_cert(ks, "web", "0F", &back, &err), 0);
	assert_int_equal(back.len, sizeof(der));
	assert_memory_equal(back.buf, der, sizeof(der));
	char *path = cw_xasprintf("%s/certs/web/0F.pem", f->ksdir);
	cw_buf pem = CW_BUF_INIT;
	assert_int_equal(cw_read_file(path, 0, &pem, &err), 0);
	assert_int_equal(strncmp(pem.buf, "-----BEGIN CERTIFICATE-----\n", 28), 0);
	cw_buf_release(&pem);
	cw_buf_release(&back);
	free(path);
	cw_keystore_close(ks);
}

static void test_open_without_create(void **state)
{
	fixture *f = *state;
	cw_error err = { 0 };
	cw_keystore *ks = NULL;
	assert_int_equal(cw_keystore_open(&ks, f->ksdir, 0, &err), -1);
	assert_int_equal(err.code, CW_EIO);
	assert_non_null(strstr(err.msg, f->ksdir));
	assert_int_equal(cw_path_exists(f->ksdir), 0);
}

static void test_tampered_kdf_cost_refused(void **state)
{
	fixture *f = *state;
	cw_keystore *ks = open_unlocked(f->ksdir, PASS);
	cw_keystore_close(ks);
	char *cfg = cw_path_join(f->ksdir, "keystore.json");
	json_error_t jerr;
	json_t *root = json_load_file(cfg, 0, &jerr);
	json_object_set_new(json_object_get(root, "kdf"), "N", json_integer(1ll << 30));
	assert_int_equal(json_dump_file(root, cfg, 0), 0);
	json_decref(root);
	cw_error err = { 0 };
	assert_int_equal(cw_keystore_open(&ks, f->ksdir, 0, &err), 0);
	assert_int_equal(cw_keystore_unlock(ks, PASS, strlen(PASS), &err), -1);
	assert_int_equal(err.code, CW_EINVAL);
	assert_non_null(strstr(err.msg, "keystore.json"));
	cw_keystore_close(ks);
	free(cfg);
}

static void test_default_dir(void **state)
{
	(void)state;
	char *old_xdg = cw_xstrdup(getenv("XDG_DATA_HOME"));
	char *old_home = cw_xstrdup(getenv("HOME"));
	char hash[65], expect[512];
	cw_sha256_hex("/nonexistent/net-repo", strlen("/nonexistent/net-repo"), hash);

	setenv("XDG_DATA_HOME", "/xdg/data", 1);
	char *dir = cw_keystore_default_dir("/nonexistent/net-repo/");
	snprintf(expect, sizeof(expect), "/xdg/data/certwright/net-repo-%.12s", hash);
	assert_string_equal(dir, expect);
	free(dir);

	unsetenv("XDG_DATA_HOME");
	setenv("HOME", "/home/op", 1);
	dir = cw_keystore_default_dir("/nonexistent/net-repo");
	snprintf(expect, sizeof(expect), "/home/op/.local/share/certwright/net-repo-%.12s", hash);
	assert_string_equal(dir, expect);
	free(dir);

	if (old_xdg)
		setenv("XDG_DATA_HOME", old_xdg, 1);
	if (old_home)
		setenv("HOME", old_home, 1);
	free(old_xdg);
	free(old_home);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_bulk_put_then_sync(void **state)
{
	fixture *f = *state;
	cw_error err = { 0 };
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cw_keystore *ks = open_unlocked(f->ksdir, PASS);
	double unlock = seconds_since(&t0);
	EVP_PKEY *keys[1000];
	for (int i = 0; i < 1000; i++)
		keys[i] = make_key("ec");
	char serial[32];
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 1000; i++) {
		snprintf(serial, sizeof(serial), "%04X", i);
		assert_int_equal(cw_keystore_put_key(ks, "bulk", serial, keys[i], 0, &err), 0);
	}
	double put = seconds_since(&t0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(cw_keystore_sync(ks, &err), 0);
	double sync = seconds_since(&t0);
	printf("keystore: unlock (scrypt N=32768) %.3f s; 1000 EC key puts %.3f s; syncfs %.3f s\n",
	       unlock, put, sync);

	EVP_PKEY *back = NULL;
	assert_int_equal(cw_keystore_get_key(ks, "bulk", "03E7", &back, &err), 0);
	assert_int_equal(EVP_PKEY_eq(keys[999], back), 1);
	EVP_PKEY_free(back);
	for (int i = 0; i < 1000; i++)
		EVP_PKEY_free(keys[i]);
	cw_keystore_close(ks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_all_key_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modes_and_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_openssl_reads_key_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_passphrase_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_passphrase_does_not_initialise, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_refused_inside_git_work_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_names_holder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_plaintext_key_on_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_items_and_overwrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_round_trip_without_unlock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_without_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered_kdf_cost_refused, setup, teardown),
		cmocka_unit_test(test_default_dir),
		cmocka_unit_test_setup_teardown(test_bulk_put_then_sync, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
