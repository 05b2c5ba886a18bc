/* keystore — encrypted private keys and public certificates outside the work tree. See keystore.h. */
#include "reconcile/keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#define KEK_LEN 32
#define SALT_LEN 32
#define KEYFILE_SALT_LEN 16
#define CONFIG_NAME "keystore.json"
#define CONFIG_FORMAT "certwright-keystore"
#define CONFIG_CAP (64 * 1024)
#define KEYFILE_CAP (1024 * 1024)
#define NAME_MAX_BYTES 200
#define VERIFIER_TEXT "certwright keystore verifier"

/* Costs for new keystores: about 0.1 s and 32 MiB once per run. */
#define SCRYPT_N 32768
#define SCRYPT_R 8
#define SCRYPT_P 1

struct cw_keystore {
	char *dir;                 /* absolute, symlinks resolved */
	int lock_fd;               /* -1 until cw_keystore_lock() */
	int unlocked;
	unsigned char kek[KEK_LEN];
	char password[2 * KEK_LEN + 1];  /* lower hex of kek: every key file's PKCS#8 password */
};

typedef struct {
	uint64_t n;
	uint32_t r, p;
	unsigned char salt[SALT_LEN];
} kdf_params;

/* ---- names and paths ---- */

int cw_keystore_check_name(const char *what, const char *name, cw_error *err)
{
	const char *why = NULL;
	if (!name || !*name)
		why = "empty";
	else if (strchr(name, '/'))
		why = "contains '/'";
	else if (name[0] == '.')
		why = "starts with '.'";
	else if (strlen(name) > NAME_MAX_BYTES)
		why = "longer than 200 bytes";
	for (const unsigned char *c = (const unsigned char *)name; !why && *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			why = "contains a control character";
	if (!why)
		return 0;
	return cw_error_set(err, CW_EINVAL, "%s '%s': not usable as a keystore file name (%s)", what,
			    name ? name : "", why);
}

static int check_name_serial(const char *name, const char *serial, cw_error *err)
{
	if (cw_keystore_check_name("certificate", name, err) != 0)
		return -1;
	return cw_keystore_check_name("serial", serial, err);
}

/* <dir>/<kind>/<name>/<serial><ext>; the folder part goes to *folder when non-NULL. */
static char *item_path(const cw_keystore *ks, const char *kind, const char *name,
		       const char *serial, const char *ext, char **folder)
{
	char *dir = cw_xasprintf("%s/%s/%s", ks->dir, kind, name);
	char *path = cw_xasprintf("%s/%s%s", dir, serial, ext);
	if (folder)
		*folder = dir;
	else
		free(dir);
	return path;
}

static char *absolute_path(const char *dir)
{
	if (dir[0] == '/')
		return cw_xstrdup(dir);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return cw_xstrdup(dir);
	return cw_path_join(cwd, dir);
}

static int refuse_inside_worktree(const char *dir, cw_error *err)
{
	char *worktree = cw_git_worktree_of(dir);
	if (!worktree)
		return 0;
	cw_error_set(err, CW_EINVAL,
		     "keystore %s is inside the git work tree %s: private keys must live outside "
		     "the repository; choose another folder with --keystore DIR or "
		     "CERTWRIGHT_KEYSTORE",
		     dir, worktree);
	free(worktree);
	return -1;
}

/* ---- open / close ---- */

static int ensure_folder(const char *dir, int create, cw_error *err)
{
	struct stat st;
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return cw_error_set(err, CW_EIO, "keystore %s: not a folder", dir);
		return 0;
	}
	if (errno != ENOENT || !create)
		return cw_error_set(err, CW_EIO, "keystore %s: %s", dir, strerror(errno));
	return cw_mkdirs(dir, 0700, err);
}

int cw_keystore_open(cw_keystore **out, const char *dir, int create, cw_error *err)
{
	*out = NULL;
	if (!dir || !*dir)
		return cw_error_set(err, CW_EINVAL, "keystore: no folder given");
	char *abs = absolute_path(dir);
	/* checked before creating anything, so a refused keystore leaves no trace in the repo */
	if (refuse_inside_worktree(abs, err) != 0 || ensure_folder(abs, create, err) != 0) {
		free(abs);
		return -1;
	}
	char real[PATH_MAX];
	if (!realpath(abs, real)) {
		cw_error_set(err, CW_EIO, "keystore %s: %s", abs, strerror(errno));
		free(abs);
		return -1;
	}
	free(abs);
	cw_keystore *ks = cw_xcalloc(1, sizeof(*ks));
	ks->dir = cw_xstrdup(real);
	ks->lock_fd = -1;
	*out = ks;
	return 0;
}

void cw_keystore_close(cw_keystore *ks)
{
	if (!ks)
		return;
	if (ks->lock_fd >= 0)
		close(ks->lock_fd);  /* releases the flock */
	cw_memzero(ks->kek, sizeof(ks->kek));
	cw_memzero(ks->password, sizeof(ks->password));
	free(ks->dir);
	free(ks);
}

const char *cw_keystore_dir(const cw_keystore *ks)
{
	return ks->dir;
}

int cw_keystore_initialised(const cw_keystore *ks)
{
	char *path = cw_path_join(ks->dir, CONFIG_NAME);
	int exists = cw_path_exists(path);
	free(path);
	return exists;
}

/* ---- key derivation ---- */

static int hex_decode(const char *hex, unsigned char *out, size_t n)
{
	if (!hex || strlen(hex) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = OPENSSL_hexchar2int((unsigned char)hex[2 * i]);
		int w = OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]);
		if (v < 0 || w < 0)
			return -1;
		out[i] = (unsigned char)(v << 4 | w);
	}
	return 0;
}

static int derive_kek(const cw_keystore *ks, const kdf_params *kp, const char *pass, size_t len,
		      unsigned char kek[KEK_LEN], cw_error *err)
{
	/* scrypt needs about 128*r*(N+p+2) bytes; leave headroom, never below 64 MiB */
	uint64_t need = 128ull * kp->r * (kp->n + kp->p + 2) + (1u << 20);
	uint64_t maxmem = need > (64ull << 20) ? need : (64ull << 20);
	uint64_t n = kp->n;
	uint32_t r = kp->r, p = kp->p;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pass, len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)kp->salt, SALT_LEN),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
		OSSL_PARAM_construct_end(),
	};
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	int ok = ctx && EVP_KDF_derive(ctx, kek, KEK_LEN, params) == 1;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	if (!ok)
		return cw_error_openssl(err, "keystore %s: scrypt key derivation failed", ks->dir);
	return 0;
}

static int compute_verifier(const unsigned char kek[KEK_LEN], unsigned char out[32])
{
	unsigned int len = 0;
	if (!HMAC(EVP_sha256(), kek, KEK_LEN, (const unsigned char *)VERIFIER_TEXT,
		  strlen(VERIFIER_TEXT), out, &len) || len != 32)
		return -1;
	return 0;
}

/* ---- keystore.json ---- */

static int config_invalid(const cw_keystore *ks, const char *why, cw_error *err)
{
	return cw_error_set(err, CW_EINVAL, "keystore %s: %s: %s", ks->dir, CONFIG_NAME, why);
}

static int check_kdf_costs(const cw_keystore *ks, const kdf_params *kp, cw_error *err)
{
	/* bounds keep a tampered file from asking for gigabytes or hours */
	if (kp->n < 1024 || kp->n > (1u << 20) || (kp->n & (kp->n - 1)))
		return config_invalid(ks, "kdf N must be a power of two from 1024 to 1048576", err);
	if (kp->r < 1 || kp->r > 32 || kp->p < 1 || kp->p > 16)
		return config_invalid(ks, "kdf r must be 1..32 and p 1..16", err);
	if (128ull * kp->r * kp->n > (1ull << 30))
		return config_invalid(ks, "kdf parameters need more than 1 GiB of memory", err);
	return 0;
}

static int parse_config(const cw_keystore *ks, json_t *root, kdf_params *kp,
			unsigned char verifier[32], cw_error *err)
{
	const char *format = json_string_value(json_object_get(root, "format"));
	json_t *version = json_object_get(root, "version");
	if (!format || strcmp(format, CONFIG_FORMAT) != 0)
		return config_invalid(ks, "not a certwright keystore (format)", err);
	if (!json_is_integer(version) || json_integer_value(version) != 1)
		return config_invalid(ks, "unsupported version (this certwright reads version 1)", err);
	json_t *kdf = json_object_get(root, "kdf");
	const char *name = json_string_value(json_object_get(kdf, "name"));
	json_t *n = json_object_get(kdf, "N"), *r = json_object_get(kdf, "r"),
	       *p = json_object_get(kdf, "p");
	if (!name || strcmp(name, "scrypt") != 0)
		return config_invalid(ks, "kdf name must be \"scrypt\"", err);
	if (!json_is_integer(n) || !json_is_integer(r) || !json_is_integer(p) ||
	    json_integer_value(n) <= 0 || json_integer_value(r) <= 0 || json_integer_value(p) <= 0 ||
	    json_integer_value(r) > 1024 || json_integer_value(p) > 1024)
		return config_invalid(ks, "kdf N, r and p must be positive integers", err);
	kp->n = (uint64_t)json_integer_value(n);
	kp->r = (uint32_t)json_integer_value(r);
	kp->p = (uint32_t)json_integer_value(p);
	if (check_kdf_costs(ks, kp, err) != 0)
		return -1;
	if (hex_decode(json_string_value(json_object_get(kdf, "salt")), kp->salt, SALT_LEN) != 0)
		return config_invalid(ks, "kdf salt must be 64 hex digits", err);
	if (hex_decode(json_string_value(json_object_get(root, "verifier")), verifier, 32) != 0)
		return config_invalid(ks, "verifier must be 64 hex digits", err);
	return 0;
}

static int read_config(const cw_keystore *ks, kdf_params *kp, unsigned char verifier[32],
		       cw_error *err)
{
	char *path = cw_path_join(ks->dir, CONFIG_NAME);
	cw_buf text = CW_BUF_INIT;
	int rc = cw_read_file(path, CONFIG_CAP, &text, err);
	free(path);
	if (rc != 0) {
		cw_buf_release(&text);
		return -1;
	}
	json_error_t jerr;
	json_t *root = json_loadb(text.buf, text.len, 0, &jerr);
	cw_buf_release(&text);
	if (!root)
		return cw_error_set(err, CW_EINVAL, "keystore %s: %s:%d: %s", ks->dir, CONFIG_NAME,
				    jerr.line, jerr.text);
	rc = parse_config(ks, root, kp, verifier, err);
	json_decref(root);
	return rc;
}

static char *render_config(const kdf_params *kp, const unsigned char verifier[32])
{
	char salt_hex[2 * SALT_LEN + 1], verifier_hex[65];
	cw_hex(kp->salt, SALT_LEN, salt_hex);
	cw_hex(verifier, 32, verifier_hex);
	json_t *root = json_pack("{s:s, s:i, s:{s:s, s:I, s:i, s:i, s:s}, s:s}", "format",
				 CONFIG_FORMAT, "version", 1, "kdf", "name", "scrypt", "N",
				 (json_int_t)kp->n, "r", (int)kp->r, "p", (int)kp->p, "salt",
				 salt_hex, "verifier", verifier_hex);
	char *text = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	char *copy = cw_xasprintf("%s\n", text);
	free(text);
	return copy;
}


/* Publishes keystore.json with link(), which fails when the file exists: two first runs
 * racing cannot end up with keys under different salts. Returns 1 when another run won. */
static int publish_config(const cw_keystore *ks, const kdf_params *kp,
			  const unsigned char verifier[32], cw_error *err)
{
	unsigned char nonce[8];
	char nonce_hex[17];
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return cw_error_openssl(err, "keystore %s: no random bytes", ks->dir);
	cw_hex(nonce, sizeof(nonce), nonce_hex);
	char *path = cw_path_join(ks->dir, CONFIG_NAME);
	char *tmp = cw_xasprintf("%s.new.%s", path, nonce_hex);
	char *text = render_config(kp, verifier);
	int rc = cw_write_file_atomic(tmp, text, strlen(text), 0600, err);
	free(text);
	if (rc == 0 && link(tmp, path) != 0) {
		rc = errno == EEXIST ? 1 : cw_error_set(err, CW_EIO, "keystore %s: cannot create %s: %s",
							ks->dir, CONFIG_NAME, strerror(errno));
	}
	unlink(tmp);
	if (rc == 0 && cw_fsync_dir(ks->dir) != 0)
		rc = cw_error_set(err, CW_EIO, "keystore %s: cannot sync folder: %s", ks->dir,
				  strerror(errno));
	free(tmp);
	free(path);
	return rc;
}

static void set_kek(cw_keystore *ks, const unsigned char kek[KEK_LEN])
{
	memcpy(ks->kek, kek, KEK_LEN);
	cw_hex(kek, KEK_LEN, ks->password);
	ks->unlocked = 1;
}

/* First unlock: fresh salt, record salt and verifier. 1 = another run initialised first. */
static int initialise(cw_keystore *ks, const char *pass, size_t len, cw_error *err)
{
	kdf_params kp = { .n = SCRYPT_N, .r = SCRYPT_R, .p = SCRYPT_P };
	unsigned char kek[KEK_LEN], verifier[32];
	if (RAND_bytes(kp.salt, SALT_LEN) != 1)
		return cw_error_openssl(err, "keystore %s: no random bytes", ks->dir);
	int rc = derive_kek(ks, &kp, pass, len, kek, err);
	if (rc == 0 && compute_verifier(kek, verifier) != 0)
		rc = cw_error_openssl(err, "keystore %s: hmac failed", ks->dir);
	if (rc == 0)
		rc = publish_config(ks, &kp, verifier, err);
	if (rc == 0)
		set_kek(ks, kek);
	cw_memzero(kek, sizeof(kek));
	return rc;
}

static int unlock_existing(cw_keystore *ks, const char *pass, size_t len, cw_error *err)
{
	kdf_params kp;
	unsigned char kek[KEK_LEN], expected[32], actual[32];
	if (read_config(ks, &kp, expected, err) != 0)
		return -1;
	int rc = derive_kek(ks, &kp, pass, len, kek, err);
	if (rc == 0 && compute_verifier(kek, actual) != 0)
		rc = cw_error_openssl(err, "keystore %s: hmac failed", ks->dir);
	if (rc == 0 && CRYPTO_memcmp(expected, actual, 32) != 0)
		rc = cw_error_set(err, CW_EPASS, "keystore %s: wrong passphrase", ks->dir);
	if (rc == 0)
		set_kek(ks, kek);
	cw_memzero(kek, sizeof(kek));
	return rc;
}

int cw_keystore_unlock(cw_keystore *ks, const char *passphrase, size_t len, cw_error *err)
{
	if (!passphrase || len == 0)
		return cw_error_set(err, CW_EPASS,
				    "keystore %s: empty passphrase (set CERTWRIGHT_PASSPHRASE or "
				    "use --passphrase-file)",
				    ks->dir);
	if (!cw_keystore_initialised(ks)) {
		int rc = initialise(ks, passphrase, len, err);
		if (rc <= 0)
			return rc;
		/* rc == 1: a concurrent run created keystore.json first; check against it */
	}
	return unlock_existing(ks, passphrase, len, err);
}

/* ---- lock ---- */

static void read_holder_pid(int fd, char out[32])
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	long pid = 0;
	if (n > 0) {
		buf[n] = '\0';
		pid = strtol(buf, NULL, 10);
	}
	if (pid > 0)
		snprintf(out, 32, "%ld", pid);
	else
		snprintf(out, 32, "unknown");
}

int cw_keystore_lock(cw_keystore *ks, cw_error *err)
{
	if (ks->lock_fd >= 0)
		return 0;
	char *path = cw_path_join(ks->dir, "lock");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	free(path);
	if (fd < 0)
		return cw_error_set(err, CW_EIO, "keystore %s: cannot open lock file: %s", ks->dir,
				    strerror(errno));
	int rc;
	while ((rc = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
		;
	if (rc != 0) {
		int e = errno;
		char pid[32];
		read_holder_pid(fd, pid);
		close(fd);
		if (e == EWOULDBLOCK)
			return cw_error_set(err, CW_ELOCKED,
					    "keystore %s is locked by another certwright run (pid %s)",
					    ks->dir, pid);
		return cw_error_set(err, CW_EIO, "keystore %s: cannot lock: %s", ks->dir, strerror(e));
	}
	/* the pid is only for the message a second run prints; the flock is the lock */
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		int e = errno;
		close(fd);
		return cw_error_set(err, CW_EIO, "keystore %s: cannot write lock file: %s", ks->dir,
				    strerror(e));
	}
	ks->lock_fd = fd;
	return 0;
}

/* ---- private keys ---- */

static int need_unlocked(const cw_keystore *ks, const char *name, const char *serial,
			 cw_error *err)
{
	if (ks->unlocked)
		return 0;
	return cw_error_set(err, CW_EPASS,
			    "certificate %s serial %s: keystore %s is not unlocked (a passphrase is "
			    "needed for private keys)",
			    name, serial, ks->dir);
}

/* PKCS#8 PBES2 with 1 PBKDF2 iteration: the password is a random 256-bit secret already. */
static X509_SIG *encrypt_pkcs8(const cw_keystore *ks, EVP_PKEY *key)
{
	unsigned char salt[KEYFILE_SALT_LEN];
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return NULL;
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
	if (!p8)
		return NULL;
	X509_ALGOR *pbe = PKCS5_pbe2_set_iv_ex(EVP_aes_256_cbc(), 1, salt, sizeof(salt), NULL,
					       NID_hmacWithSHA256, NULL);
	X509_SIG *sig = NULL;
	if (pbe) {
		sig = PKCS8_set0_pbe_ex(ks->password, 2 * KEK_LEN, p8, pbe, NULL, NULL);
		if (!sig)
			X509_ALGOR_free(pbe);  /* on success the X509_SIG owns it */
	}
	PKCS8_PRIV_KEY_INFO_free(p8);  /* clears the plaintext key */
	return sig;
}

static int key_to_pem(const cw_keystore *ks, EVP_PKEY *key, cw_buf *pem)
{
	X509_SIG *sig = encrypt_pkcs8(ks, key);
	BIO *mem = sig ? BIO_new(BIO_s_mem()) : NULL;
	int ok = mem && PEM_write_bio_PKCS8(mem, sig) == 1;
	if (ok) {
		char *data = NULL;
		long len = BIO_get_mem_data(mem, &data);
		cw_buf_add(pem, data, (size_t)len);
	}
	BIO_free(mem);
	X509_SIG_free(sig);
	return ok ? 0 : -1;
}

/* keys/<name>/ or certs/<name>/. When it is new and the caller wants durability, the
 * folders above it are synced too: a file in a folder whose entry was lost is lost. */
static int make_item_folder(const cw_keystore *ks, const char *kind, const char *folder,
			    int sync, cw_error *err)
{
	if (cw_path_exists(folder))
		return 0;
	cw_error local = { 0 };
	if (cw_mkdirs(folder, 0700, &local) != 0)
		return cw_error_set(err, local.code, "keystore %s: %s", ks->dir, local.msg);
	char *parent = cw_path_join(ks->dir, kind);
	int rc = sync && (cw_fsync_dir(parent) != 0 || cw_fsync_dir(ks->dir) != 0);
	free(parent);
	if (rc)
		return cw_error_set(err, CW_EIO, "keystore %s: cannot sync folder: %s", ks->dir,
				    strerror(errno));
	return 0;
}

int cw_keystore_put_key(cw_keystore *ks, const char *name, const char *serial, EVP_PKEY *key,
			int sync, cw_error *err)
{
	if (check_name_serial(name, serial, err) != 0 || need_unlocked(ks, name, serial, err) != 0)
		return -1;
	char *folder;
	char *path = item_path(ks, "keys", name, serial, ".key", &folder);
	int rc = make_item_folder(ks, "keys", folder, sync, err);
	/* a serial names one key for ever: overwriting it would orphan an issued certificate */
	if (rc == 0 && cw_path_exists(path))
		rc = cw_error_set(err, CW_EINVAL,
				  "certificate %s serial %s: a private key is already stored (%s); "
				  "refusing to overwrite it",
				  name, serial, path);
	cw_buf pem = CW_BUF_INIT;
	if (rc == 0 && key_to_pem(ks, key, &pem) != 0)
		rc = cw_error_openssl(err, "certificate %s serial %s: cannot encrypt private key",
				      name, serial);
	if (rc == 0)
		rc = sync ? cw_write_file_atomic(path, pem.buf, pem.len, 0600, err)
			  : cw_write_file_atomic_nosync(path, pem.buf, pem.len, 0600, err);
	cw_buf_release(&pem);
	free(folder);
	free(path);
	return rc;
}

static int password_cb(char *buf, int size, int rwflag, void *u)
{
	const cw_keystore *ks = u;
	int len = 2 * KEK_LEN;
	if (size < len)
		return -1;
	memcpy(buf, ks->password, (size_t)len);
	return len;
}

/* Reads a keystore file; a missing one is reported as missing `what` for the certificate. */
static int read_item(const char *path, const char *what, const char *name, const char *serial,
		     cw_buf *out, cw_error *err)
{
	struct stat st;
	if (stat(path, &st) != 0 && errno == ENOENT)
		return cw_error_set(err, CW_EIO, "certificate %s serial %s: no %s in the keystore (%s)",
				    name, serial, what, path);
	cw_error local = { 0 };
	if (cw_read_file(path, KEYFILE_CAP, out, &local) == 0)
		return 0;
	return cw_error_set(err, local.code, "certificate %s serial %s: %s", name, serial, local.msg);
}

int cw_keystore_get_key(cw_keystore *ks, const char *name, const char *serial, EVP_PKEY **out,
			cw_error *err)
{
	*out = NULL;
	if (check_name_serial(name, serial, err) != 0 || need_unlocked(ks, name, serial, err) != 0)
		return -1;
	char *path = item_path(ks, "keys", name, serial, ".key", NULL);
	cw_buf pem = CW_BUF_INIT;
	int rc = read_item(path, "private key", name, serial, &pem, err);
	if (rc == 0) {
		BIO *mem = BIO_new_mem_buf(pem.buf, (int)pem.len);
		*out = mem ? PEM_read_bio_PrivateKey(mem, NULL, password_cb, ks) : NULL;
		BIO_free(mem);
		if (!*out)
			rc = cw_error_openssl(err,
					      "certificate %s serial %s: cannot decrypt private key %s",
					      name, serial, path);
	}
	cw_buf_release(&pem);
	free(path);
	return rc;
}

/* ---- certificates ---- */

int cw_keystore_put_cert(cw_keystore *ks, const char *name, const char *serial,
			 const unsigned char *der, size_t len, int sync, cw_error *err)
{
	if (check_name_serial(name, serial, err) != 0)
		return -1;
	if (!der || len == 0 || len > KEYFILE_CAP / 2)
		return cw_error_set(err, CW_EINVAL, "certificate %s serial %s: empty or oversized DER",
				    name, serial);
	char *folder;
	char *path = item_path(ks, "certs", name, serial, ".pem", &folder);
	int rc = make_item_folder(ks, "certs", folder, sync, err);
	BIO *mem = rc == 0 ? BIO_new(BIO_s_mem()) : NULL;
	if (rc == 0 && (!mem || PEM_write_bio(mem, PEM_STRING_X509, "", der, (long)len) <= 0))
		rc = cw_error_openssl(err, "certificate %s serial %s: cannot encode PEM", name, serial);
	if (rc == 0) {
		char *data = NULL;
		long n = BIO_get_mem_data(mem, &data);
		rc = sync ? cw_write_file_atomic(path, data, (size_t)n, 0644, err)
			  : cw_write_file_atomic_nosync(path, data, (size_t)n, 0644, err);
	}
	BIO_free(mem);
	free(folder);
	free(path);
	return rc;
}

static int pem_to_der(const cw_buf *pem, cw_buf *der)
{
	BIO *mem = BIO_new_mem_buf(pem->buf, (int)pem->len);
	char *type = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len = 0;
	int ok = mem && PEM_read_bio(mem, &type, &header, &data, &len) == 1 &&
		 strcmp(type, PEM_STRING_X509) == 0 && len > 0;
	if (ok)
		cw_buf_add(der, data, (size_t)len);
	OPENSSL_free(type);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(mem);
	return ok ? 0 : -1;
}

int cw_keystore_get_cert(cw_keystore *ks, const char *name, const char *serial, cw_buf *der,
			 cw_error *err)
{
	if (check_name_serial(name, serial, err) != 0)
		return -1;
	char *path = item_path(ks, "certs", name, serial, ".pem", NULL);
	cw_buf pem = CW_BUF_INIT;
	int rc = read_item(path, "certificate", name, serial, &pem, err);
	if (rc == 0 && pem_to_der(&pem, der) != 0)
		rc = cw_error_openssl(err, "certificate %s serial %s: %s is not a PEM certificate",
				      name, serial, path);
	cw_buf_release(&pem);
	free(path);
	return rc;
}

int cw_keystore_sync(cw_keystore *ks, cw_error *err)
{
	int fd = open(ks->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return cw_error_set(err, CW_EIO, "keystore %s: cannot open: %s", ks->dir,
				    strerror(errno));
	int rc = syncfs(fd);
	int e = errno;
	close(fd);
	if (rc != 0)
		return cw_error_set(err, CW_EIO, "keystore %s: cannot sync: %s", ks->dir, strerror(e));
	return 0;
}

/* ---- default location ---- */

static char *data_home(void)
{
	const char *xdg = getenv("XDG_DATA_HOME");
	if (xdg && xdg[0] == '/')  /* the XDG spec says relative values are to be ignored */
		return cw_xstrdup(xdg);
	const char *home = getenv("HOME");
	if (home && home[0] == '/')
		return cw_path_join(home, ".local/share");
	struct passwd pw, *found = NULL;
	char buf[4096];
	if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &found) == 0 && found &&
	    found->pw_dir[0] == '/')
		return cw_path_join(found->pw_dir, ".local/share");
	return NULL;
}

char *cw_keystore_default_dir(const char *repo_dir)
{
	char real[PATH_MAX];
	char *repo = realpath(repo_dir, real) ? cw_xstrdup(real) : absolute_path(repo_dir);
	char *base = data_home();
	if (!base) {
		free(repo);
		return NULL;
	}
	size_t len = strlen(repo);
	while (len > 1 && repo[len - 1] == '/')
		repo[--len] = '\0';
	char hash[65];
	cw_sha256_hex(repo, len, hash);
	const char *slash = strrchr(repo, '/');
	const char *name = slash && slash[1] ? slash + 1 : "root";
	char *dir = cw_xasprintf("%s/certwright/%s-%.12s", base, name, hash);
	free(base);
	free(repo);
	return dir;
}
