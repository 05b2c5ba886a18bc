/*
 * pkcs12 — client bundles. See pkcs12.h for the two profiles and who needs which.
 *
 * Both profiles work with OpenSSL 3's default provider: AES-256-CBC, PBKDF2 and
 * HMAC-SHA256 obviously, and also the legacy profile's pbeWithSHA1And3-KeyTripleDES-CBC
 * (3DES and the PKCS#12 key derivation are default-provider algorithms; only RC2 and
 * RC4 moved to the "legacy" provider). So no provider is loaded here.
 */
#include "issuers/pkcs12.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <stdlib.h>
#include <string.h>

/* What OpenSSL 3 writes by default (PKCS12_DEFAULT_ITER); importers on phones and old
 * Windows take noticeably long with much higher counts. */
#define BUNDLE_ITERATIONS 2048

typedef struct {
	int key_pbe;          /* NID of the cipher (PBES2) or of the PKCS#12 PBE algorithm */
	int cert_pbe;
	const char *mac_md;   /* digest of the integrity MAC */
} bundle_profile;

/* Modern: a cipher NID makes OpenSSL use PBES2 with PBKDF2, whose PRF defaults to
 * HMAC-SHA256 in OpenSSL 3. Legacy: what Windows before 10 1709 and old iOS import. */
static const bundle_profile modern_profile = { NID_aes_256_cbc, NID_aes_256_cbc, "SHA256" };
static const bundle_profile legacy_profile = { NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
					       NID_pbe_WithSHA1And3_Key_TripleDES_CBC, "SHA1" };

/* What messages call the bundle: its friendly name, else the certificate's subject. */
static void bundle_label(X509 *cert, const cw_pkcs12_opts *opts, char *buf, size_t size)
{
	if (opts && opts->friendly_name && *opts->friendly_name) {
		snprintf(buf, size, "%s", opts->friendly_name);
		return;
	}
	snprintf(buf, size, "(no certificate)");
	if (cert)
		X509_NAME_oneline(X509_get_subject_name(cert), buf, (int)size);
}

static int check_args(const char *label, EVP_PKEY *key, X509 *cert, X509 *const *chain,
		      size_t nchain, const char *passphrase, cw_error *err)
{
	if (!key || !cert)
		return cw_error_set(err, CW_EINVAL, "bundle '%s': needs a certificate and its key",
				    label);
	/* importers accept an empty password, but the bundle holds a private key: an empty
	 * one is the same as none */
	if (!passphrase || !*passphrase)
		return cw_error_set(err, CW_EPASS, "bundle '%s': the passphrase must not be empty",
				    label);
	if (nchain > 0 && !chain)
		return cw_error_set(err, CW_EINVAL,
				    "bundle '%s': %zu chain certificates but no list", label,
				    nchain);
	for (size_t i = 0; i < nchain; i++)
		if (!chain[i])
			return cw_error_set(err, CW_EINVAL,
					    "bundle '%s': chain certificate %zu is missing", label,
					    i + 1);
	if (EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
		ERR_clear_error();
		return cw_error_set(err, CW_EINVAL,
				    "bundle '%s': private key does not match the certificate",
				    label);
	}
	return 0;
}

static int p12_to_der(PKCS12 *p12, const char *label, unsigned char **der, size_t *len,
		      cw_error *err)
{
	int n = i2d_PKCS12(p12, NULL);
	if (n <= 0)
		return cw_error_openssl(err, "bundle '%s': cannot encode as DER", label);
	/* our own buffer, so the caller frees with free() and not OPENSSL_free() */
	unsigned char *buf = cw_xmalloc((size_t)n);
	unsigned char *p = buf;
	if (i2d_PKCS12(p12, &p) != n) {
		free(buf);
		return cw_error_openssl(err, "bundle '%s': cannot encode as DER", label);
	}
	*der = buf;
	*len = (size_t)n;
	return 0;
}

/* PKCS12_create's own MAC uses the library's default digest (SHA-256 since OpenSSL 3.0,
 * SHA-1 before), which is wrong for the legacy profile: it is skipped there (mac_iter -1)
 * and set here with the profile's digest, so both profiles are pinned. */
static int seal(PKCS12 *p12, const char *label, const char *passphrase,
		const bundle_profile *profile, cw_error *err)
{
	EVP_MD *md = EVP_MD_fetch(NULL, profile->mac_md, NULL);
	int ok = md && PKCS12_set_mac(p12, passphrase, -1, NULL, 0, BUNDLE_ITERATIONS, md) == 1;
	EVP_MD_free(md);
	return ok ? 0 : cw_error_openssl(err, "bundle '%s': cannot add the integrity mac", label);
}

int cw_pkcs12_build(unsigned char **der, size_t *len, EVP_PKEY *key, X509 *cert,
		    X509 *const *chain, size_t nchain, const char *passphrase,
		    const cw_pkcs12_opts *opts, cw_error *err)
{
	*der = NULL;
	*len = 0;
	char label[256];
	bundle_label(cert, opts, label, sizeof(label));
	if (check_args(label, key, cert, chain, nchain, passphrase, err) != 0)
		return -1;
	const bundle_profile *profile = opts && opts->legacy ? &legacy_profile : &modern_profile;
	const char *name = opts && opts->friendly_name && *opts->friendly_name
				   ? opts->friendly_name : NULL;

	/* the stack only lends the certificates to PKCS12_create, which encodes copies */
	STACK_OF(X509) *cas = NULL;
	if (opts && opts->include_chain && nchain > 0) {
		cas = sk_X509_new_null();
		for (size_t i = 0; cas && i < nchain; i++)
			if (!sk_X509_push(cas, chain[i])) {
				sk_X509_free(cas);
				return cw_error_openssl(err, "bundle '%s': out of memory", label);
			}
		if (!cas)
			return cw_error_openssl(err, "bundle '%s': out of memory", label);
	}
	PKCS12 *p12 = PKCS12_create_ex(passphrase, name, key, cert, cas, profile->key_pbe,
				       profile->cert_pbe, BUNDLE_ITERATIONS, -1, 0, NULL, NULL);
	sk_X509_free(cas);
	if (!p12)
		return cw_error_openssl(err, "bundle '%s': cannot build the pkcs#12", label);
	int rc = seal(p12, label, passphrase, profile, err);
	if (rc == 0)
		rc = p12_to_der(p12, label, der, len, err);
	PKCS12_free(p12);
	return rc;
}
