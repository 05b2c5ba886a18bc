/*
 * keystore — private keys and the record of everything issued, outside the git
 * work tree (default ~/.local/share/certwright/<repo-id>; never inside a work tree).
 *
 * Layout (all files written atomically: temp, fsync, rename, fsync dir):
 *   keystore.json                 format version, KDF salt and parameters, verifier
 *   lock                          flock()ed by apply (pid inside, for the message)
 *   keys/<name>/<serial>.key      PKCS#8 EncryptedPrivateKeyInfo, PEM, mode 0600
 *   certs/<name>/<serial>.pem     issued certificate (public)
 *   index/<authority>.json        what that authority issued: the commit point of issuance
 *   deployments.json + journal.jsonl   per-target deployment records (see state.h)
 *
 * Encryption at rest: the passphrase (CERTWRIGHT_PASSPHRASE or --passphrase-file) goes
 * through scrypt ONCE per run (N=2^15, r=8, p=1, 32-byte salt from keystore.json) into a
 * 256-bit key-encryption secret. Each key file is standard PKCS#8 PBES2 (AES-256-CBC,
 * PBKDF2-HMAC-SHA256 with a fresh salt and 1 iteration — the password is already a
 * uniformly random 256-bit value, so stretching per file would only cost time). So
 * `openssl pkcs8` can read any key given that secret, and issuance stays fast.
 * A wrong passphrase fails on the verifier before anything is written.
 *
 * The password of every key file is the 64-character lower-case hex of that secret, so
 * an operator can recover a key with standard tools alone (salt from keystore.json):
 *   openssl kdf -keylen 32 -kdfopt pass:PASSPHRASE -kdfopt hexsalt:SALT -kdfopt n:32768 \
 *     -kdfopt r:8 -kdfopt p:1 SCRYPT          (prints the secret as AB:CD:..; drop the
 *                                               colons and lower-case it: HEX)
 *   openssl pkcs8 -in keys/NAME/SERIAL.key -passin pass:HEX
 *
 * Thread safety: after unlock, the put/get calls may run from several threads at once.
 */
#ifndef CW_KEYSTORE_H
#define CW_KEYSTORE_H

#include <openssl/evp.h>
#include "common/util.h"

typedef struct cw_keystore cw_keystore;

/* Opens dir; with create=1 makes it (0700) when missing. No passphrase needed. */
int cw_keystore_open(cw_keystore **out, const char *dir, int create, cw_error *err);
void cw_keystore_close(cw_keystore *ks);
const char *cw_keystore_dir(const cw_keystore *ks);

/* 1 when the keystore was already initialised with a passphrase (keystore.json exists). */
int cw_keystore_initialised(const cw_keystore *ks);
/* Derives the key-encryption secret. The first unlock of a new keystore records the salt
 * and verifier; later ones check the verifier (CW_EPASS on mismatch, nothing written). */
int cw_keystore_unlock(cw_keystore *ks, const char *passphrase, size_t len, cw_error *err);

/* Exclusive non-blocking flock on <dir>/lock for the life of ks (CW_ELOCKED, naming the pid). */
int cw_keystore_lock(cw_keystore *ks, cw_error *err);

/* Keys (needs unlock). sync=0 skips fsync: the caller calls cw_keystore_sync() before
 * recording the issuance, which keeps batch issuance fast and still crash-safe. */
int cw_keystore_put_key(cw_keystore *ks, const char *name, const char *serial, EVP_PKEY *key,
			int sync, cw_error *err);
int cw_keystore_get_key(cw_keystore *ks, const char *name, const char *serial, EVP_PKEY **out,
			cw_error *err);
/* Certificates (public, no unlock needed). */
int cw_keystore_put_cert(cw_keystore *ks, const char *name, const char *serial,
			 const unsigned char *der, size_t len, int sync, cw_error *err);
int cw_keystore_get_cert(cw_keystore *ks, const char *name, const char *serial, cw_buf *der,
			 cw_error *err);
/* Makes every earlier write durable (syncfs on the keystore's file system). */
int cw_keystore_sync(cw_keystore *ks, cw_error *err);

/* 0 when name can be one path component of the keystore (a certificate or authority
 * name, a serial): not empty, no '/', not starting with '.', at most 200 bytes. Else
 * CW_EINVAL naming `what` ("certificate", "serial", ...). Shared with state.c. */
int cw_keystore_check_name(const char *what, const char *name, cw_error *err);

/* The default location for a repository: $XDG_DATA_HOME (or ~/.local/share)/certwright/
 * <basename>-<first 12 hex of SHA-256 of the repository's real path>. Caller frees. */
char *cw_keystore_default_dir(const char *repo_dir);

#endif
