/*
 * target — the one interface every device type implements (files, softether,
 * routeros, expressway). A type is a const table of operations with a version
 * and capability bits; optional operations are NULL and the engine checks
 * before calling.
 *
 * Promises an adapter keeps:
 *  - it never parses X.509 and never sees a CA key: it moves opaque DER/PEM
 *    bytes and reports what it finds as raw DER;
 *  - every network or process call has a timeout (cw_target_env.timeout_ms);
 *  - open() does no I/O on the device: it only checks and copies settings;
 *  - one handle is used by one thread at a time (the engine serialises calls
 *    per target and runs different targets in parallel).
 * Slots: a certificate deployed to a target lands in a slot named after the
 * certificate (the inventory name). A device with a single slot (SoftEther's one
 * server certificate) says so with CW_TARGET_SINGLE_SLOT.
 */
#ifndef CW_TARGET_H
#define CW_TARGET_H

#include <stddef.h>
#include "common/node.h"
#include "common/pki.h"
#include "common/util.h"

#define CW_TARGET_API_VERSION 1

enum {
	CW_TARGET_SINGLE_SLOT = 1u << 0,  /* one certificate per target */
	CW_TARGET_CAN_BIND    = 1u << 1,  /* bind() points services at a certificate */
	CW_TARGET_NEEDS_ACTIVATE = 1u << 2,/* a restart/reload makes an upload live */
	CW_TARGET_TAKES_KEY   = 1u << 3,  /* the private key travels with the certificate */
	CW_TARGET_TAKES_CRL   = 1u << 4,  /* can publish a CRL (issue 3) */
};

typedef struct {
	unsigned char *data;
	size_t len;
} cw_blob;

/* What the engine hands to deploy(). All buffers belong to the engine. */
typedef struct {
	const char *slot;                 /* certificate name */
	const char *serial_hex;           /* for device-side names (RouterOS) */
	const char *fingerprint;          /* SHA-256 of cert DER, lower hex */
	cw_blob cert;                     /* leaf DER */
	const cw_blob *chain;             /* intermediates, leaf's issuer first (DER) */
	size_t nchain;
	cw_blob root;                     /* the trust anchor (DER) */
	const char *key_pem;              /* UNENCRYPTED PKCS#8 PEM, NUL-terminated; wiped after */
	size_t key_pem_len;
	const char *const *bind;          /* services from the inventory's deploy entry */
	size_t nbind;
	const char *previous_fingerprint; /* what the slot held before, or NULL */
} cw_bundle;

/* What observe() found in one slot. */
typedef struct {
	int present;                      /* a certificate is installed */
	cw_blob cert;                     /* leaf DER (owned; freed by cw_observation_release) */
	cw_blob *chain;                   /* what the device serves after the leaf, if known */
	size_t nchain;
	char **bound;                     /* services currently pointing at this certificate */
	size_t nbound;
	int key_present;                  /* -1 unknown, 0 no, 1 the key is installed too */
	char *note;                       /* free text for the plan ("key file missing") */
	/* Adapter-defined digest (lower-hex SHA-256) of EVERYTHING the slot holds besides the
	 * leaf: key, chain and CA files with their modes, for example. The engine records it
	 * after a verified deploy and plans a redeploy ("drift:files") when it changes, so a
	 * deleted key or a chmod is repaired like a replaced certificate. NULL = cannot tell. */
	char *digest;
} cw_observation;

void cw_observation_release(cw_observation *o);

/* Facts about the device, from observe_device(). */
typedef struct {
	char *version;                    /* device software version, or NULL */
	unsigned accepted_keys;           /* bit (1u << cw_key_type) per key type it takes; 0 = any */
	int chain_mode;                   /* 0 unknown, 1 leaf only, 2 serves a bundle */
	char *note;
} cw_device_facts;

void cw_device_facts_release(cw_device_facts *f);

/* What the engine gives every adapter. */
typedef struct {
	int timeout_ms;                   /* per external call */
	const char *work_dir;             /* private 0700 scratch folder for this target's run */
	void (*log)(void *ud, int level, const char *target, const char *msg);
	void *log_ud;
} cw_target_env;

typedef struct cw_target_ops {
	int api_version;                  /* CW_TARGET_API_VERSION */
	const char *type;                 /* "files" */
	unsigned caps;
	const cw_field *schema;           /* settings, NULL-name-terminated; checked by the inventory */

	/* Static checks of one deployment against this type, at validate time (no I/O):
	 * names a device cannot carry, key types it never accepts, unknown bind names.
	 * Adds diagnostics; never fails the call itself. Optional. */
	void (*check_deployment)(const cw_node *config, const char *cert_name, cw_key_type key,
				 const char *const *bind, size_t nbind, const cw_srcpos *pos,
				 cw_diags *diags);

	int (*open)(void **handle, const char *name, const cw_node *config, const cw_target_env *env,
		    cw_error *err);
	/* Read-only. Optional (NULL = nothing to learn). */
	int (*observe_device)(void *h, cw_device_facts *facts, cw_error *err);
	/* Read-only: what is in the slot now. A missing certificate is present=0, not an error. */
	int (*observe)(void *h, const char *slot, cw_observation *obs, cw_error *err);
	/* Install certificate, chain and key into the slot (or next to it, under a new name). */
	int (*deploy)(void *h, const cw_bundle *b, cw_error *err);
	/* Point services at the newly deployed certificate. Optional. */
	int (*bind)(void *h, const cw_bundle *b, cw_error *err);
	/* Make the upload live (restart, reload). Optional. */
	int (*activate)(void *h, cw_error *err);
	/* Confirm from outside what clients now get; fills obs like observe(). Optional:
	 * the engine re-observes when NULL. The engine compares fingerprints. */
	int (*verify)(void *h, const char *slot, cw_observation *obs, cw_error *err);
	/* Remove what a previous rotation left (old entry, old files) — or, with
	 * previous_fingerprint NULL, empty the slot entirely. Optional. */
	int (*remove)(void *h, const char *slot, const char *previous_fingerprint, cw_error *err);
	void (*close)(void *h);

	/* 1 when THIS configuration holds one certificate only (a files target whose names
	 * have no {name}); types that always do set CW_TARGET_SINGLE_SLOT instead. Optional. */
	int (*single_slot)(const cw_node *config);

	/* CRLs (issue 3). takes_crl: this configuration publishes CRLs (static, no I/O).
	 * deploy_crl: write the authority's CRL (DER) where the device reads it; the engine
	 * calls activate() afterwards. Both optional. */
	int (*takes_crl)(const cw_node *config);
	int (*deploy_crl)(void *h, const char *authority, const cw_blob *der, cw_error *err);
} cw_target_ops;

/* Formats a message and hands it to env->log with the target's name (levels CW_LOG_*);
 * nothing without a log. The one logging path of every adapter. */
void cw_target_log(const cw_target_env *env, const char *target, int level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Registry of target types (targets/registry.c). Tests may register fakes at run time. */
const cw_target_ops *cw_target_type(const char *type);
int cw_target_register(const cw_target_ops *ops);
/* NULL-terminated list of known type names, for "did you mean". */
const char *const *cw_target_type_names(void);

#endif
