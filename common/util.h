/*
 * util — the small shared vocabulary of certwright: the error slot, growable
 * buffers, diagnostics with source positions, atomic file writes, durations and
 * timestamps. Everything here is safe to call from several threads at once as
 * long as each thread uses its own objects.
 *
 * Conventions (used across the code base):
 *  - functions return 0 on success and -1 on failure, with the reason in a
 *    cw_error; the FIRST error set wins, so the root cause reaches the user;
 *  - error messages are lower case and name the object first
 *    ("inventory/certs.yaml:12:5: certificate 'vpn': unknown key 'sna'");
 *  - whatever a function hands back through an out-parameter belongs to the
 *    caller, who frees it with the matching _release/_free.
 *  - allocation failure aborts (cw_xmalloc & co.): a half-built plan is worse
 *    than a clean crash, and nothing here holds state that a crash could lose.
 */
#ifndef CW_UTIL_H
#define CW_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define CW_ERRMSG_MAX 1024

/* Error codes: a coarse class, so callers can react (cmd maps them to exit codes). */
typedef enum {
	CW_OK = 0,
	CW_EINVAL,     /* bad input: inventory, option, file content */
	CW_EIO,        /* file system */
	CW_ECRYPTO,    /* OpenSSL said no */
	CW_EPASS,      /* wrong or missing passphrase */
	CW_ELOCKED,    /* another run holds the lock */
	CW_ETARGET,    /* a target (device) failed */
	CW_ETIMEOUT,   /* an external call ran out of time */
	CW_ESTALE,     /* a saved plan no longer matches reality */
	CW_EGIT,       /* libgit2 said no */
	CW_EREADONLY,  /* a mutating call on a read-only (plan) target */
	CW_EINTERNAL,
} cw_errcode;

typedef struct {
	cw_errcode code;
	char msg[CW_ERRMSG_MAX];
} cw_error;

/* Sets the error if none is set yet (first error wins). Always returns -1. */
int cw_error_set(cw_error *err, cw_errcode code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Appends OpenSSL's error queue (and clears it) to the message. Returns -1. */
int cw_error_openssl(cw_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cw_error_clear(cw_error *err);

/* Log levels, shared by the engine and the target adapters. */
enum { CW_LOG_ERROR = 0, CW_LOG_WARN, CW_LOG_INFO, CW_LOG_DEBUG };

/* Allocation that aborts on exhaustion. */
void *cw_xmalloc(size_t n);
void *cw_xcalloc(size_t n, size_t size);
void *cw_xrealloc(void *p, size_t n);
char *cw_xstrdup(const char *s);        /* NULL in, NULL out */
char *cw_xstrndup(const char *s, size_t n);
char *cw_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Growable byte buffer, always NUL-terminated. */
typedef struct {
	char *buf;
	size_t len;
	size_t cap;
} cw_buf;

#define CW_BUF_INIT { NULL, 0, 0 }
void cw_buf_init(cw_buf *b);
void cw_buf_add(cw_buf *b, const void *data, size_t len);
void cw_buf_adds(cw_buf *b, const char *s);
void cw_buf_addf(cw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cw_buf_vaddf(cw_buf *b, const char *fmt, va_list ap);
char *cw_buf_detach(cw_buf *b);          /* caller frees; b is reset */
void cw_buf_release(cw_buf *b);
/* Overwrites the bytes before freeing: for buffers that held key material. */
void cw_buf_release_secret(cw_buf *b);

/* Where something came from in the inventory. file points into storage owned by the inventory. */
typedef struct {
	const char *file;
	int line;   /* 1-based; 0 = unknown */
	int col;    /* 1-based */
} cw_srcpos;

typedef enum { CW_SEV_ERROR = 0, CW_SEV_WARNING = 1 } cw_severity;

/* One finding about the inventory or the plan: always tied to a place or an object. */
typedef struct {
	cw_severity severity;
	char *file;         /* may be NULL */
	int line, col;
	char *code;         /* stable id: "inventory.unknown-key", "ios.san-required", ... */
	char *message;      /* full sentence, lower case, names the object */
	char *hint;         /* may be NULL: "did you mean 'sans'?" */
	char *certificate;  /* may be NULL: the inventory entry concerned */
	char *target;       /* may be NULL */
} cw_diag;

typedef struct {
	cw_diag *items;
	size_t n, cap;
} cw_diags;

void cw_diags_init(cw_diags *d);
void cw_diags_release(cw_diags *d);
/* Adds a finding; pos may be NULL. Returns the new item so callers can set certificate/target. */
cw_diag *cw_diag_add(cw_diags *d, cw_severity sev, const cw_srcpos *pos, const char *code,
		     const char *hint, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
size_t cw_diags_count(const cw_diags *d, cw_severity sev);
/* "file:line:col: error: message (hint)" — the one human rendering of a diag. */
void cw_diag_format(const cw_diag *d, cw_buf *out);
/* Sorts by file, line, column, keeping insertion order for ties. */
void cw_diags_sort(cw_diags *d);

/* "90d", "12h", "30m", "45s", "2w" (combinations like "1d12h" allowed). */
int cw_parse_duration(const char *s, int64_t *seconds_out);
/* Shortest exact rendering: 7776000 -> "90d". */
void cw_format_duration(int64_t seconds, char out[32]);
/* RFC 3339 UTC: "2026-11-23T04:55:00Z". Accepts also "2026-11-23" and "+30d"/"-2h" relative to now. */
int cw_parse_time(const char *s, time_t now, time_t *out);
void cw_format_time(time_t t, char out[32]);

/* Lower-case hex of SHA-256. */
void cw_sha256_hex(const void *data, size_t len, char out[65]);
void cw_hex(const unsigned char *data, size_t len, char *out /* 2*len+1 */);

/* Files. All paths are plain strings; no shell is involved anywhere. */
int cw_read_file(const char *path, size_t cap, cw_buf *out, cw_error *err);
/* temp file in the same directory, write, fsync (unless nosync), chmod, rename, fsync dir. */
int cw_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, cw_error *err);
int cw_write_file_atomic_nosync(const char *path, const void *data, size_t len, mode_t mode,
				cw_error *err);
int cw_mkdirs(const char *path, mode_t mode, cw_error *err);
/* fsync a folder, so a rename or a new entry in it survives a crash. */
int cw_fsync_dir(const char *dir);
/* rm -rf without a shell; does not follow symbolic links. */
void cw_remove_tree(const char *path);
int cw_path_exists(const char *path);
/* The root of the git work tree that contains path (walking up to a ".git" entry), or NULL.
 * Works for paths that do not exist yet. Caller frees. Used to refuse keys inside a repo. */
char *cw_git_worktree_of(const char *path);
/* Joins with exactly one '/': caller frees. */
char *cw_path_join(const char *a, const char *b);
/* Wipes memory the compiler may not optimise away. */
void cw_memzero(void *p, size_t n);

/* Levenshtein-based suggestion: the closest of candidates within distance 2, or NULL. */
const char *cw_did_you_mean(const char *word, const char *const *candidates, size_t n);

#endif
