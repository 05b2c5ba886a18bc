/*
 * files — see files.h. A slot is the set of files one certificate lands in: the file
 * name templates with "{name}" replaced by the certificate name.
 *
 * Like every adapter, this one never parses X.509: it moves DER bytes in and out of
 * PEM armour (PEM_bytes_read_bio / PEM_write_bio work on opaque bytes) and reports
 * what it finds as raw DER for reconcile/x509 to judge.
 */
#include "targets/files.h"

#include <errno.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/exec.h"
#include "common/secret.h"

/* The engine's log levels (reconcile/engine.h: CW_LOG_*); targets sit below reconcile
 * and must not include it. */

#define FILES_READ_CAP ((size_t)1 << 20)       /* certificate files are a few KiB */
#define FILES_RELOAD_OUTPUT_CAP ((size_t)64 << 10)
#define FILES_DEFAULT_RELOAD_TIMEOUT 30        /* seconds */
#define FILES_NAME_PLACEHOLDER "{name}"

typedef enum { FILE_CERT, FILE_KEY, FILE_CHAIN, FILE_FULLCHAIN, FILE_CA, FILE_KINDS } file_kind;

static const struct {
	const char *setting;   /* key under files: */
	const char *fallback;  /* NULL: not written unless configured */
} file_kinds[FILE_KINDS] = {
	[FILE_CERT] = { "cert", "{name}.crt" },
	[FILE_KEY] = { "key", "{name}.key" },
	[FILE_CHAIN] = { "chain", NULL },
	[FILE_FULLCHAIN] = { "fullchain", NULL },
	[FILE_CA] = { "ca", NULL },
};

/* Key first, certificate last: a reader that sees the new certificate finds its key. */
static const file_kind write_order[] = { FILE_KEY, FILE_CHAIN, FILE_FULLCHAIN, FILE_CA, FILE_CERT };

static const cw_field files_name_fields[] = {
	{ "cert", CW_FIELD_STRING, 0, NULL,
	  "leaf certificate file, relative to path; {name} becomes the certificate name (default {name}.crt)" },
	{ "key", CW_FIELD_STRING, 0, NULL,
	  "private key file, unencrypted PKCS#8 PEM (default {name}.key); \"\" writes no key" },
	{ "chain", CW_FIELD_STRING, 0, NULL, "optional: the intermediate certificates only, PEM" },
	{ "fullchain", CW_FIELD_STRING, 0, NULL, "optional: the leaf followed by the intermediates, PEM" },
	{ "ca", CW_FIELD_STRING, 0, NULL, "optional: the root CA certificate" },
	{ NULL, 0, 0, NULL, NULL },
};

static const cw_field files_fields[] = {
	{ "path", CW_FIELD_PATH, 1, NULL,
	  "folder the files go to; created with dir_mode when missing" },
	{ "files", CW_FIELD_MAP, 0, files_name_fields,
	  "file names inside path (cert, key, chain, fullchain, ca)" },
	{ "format", CW_FIELD_STRING, 0, NULL,
	  "pem or der, for cert and ca (default pem); a name ending in .der or .cer is always DER" },
	{ "cert_mode", CW_FIELD_MODE, 0, NULL,
	  "mode of the certificate, chain, fullchain and ca files (default 0644)" },
	{ "key_mode", CW_FIELD_MODE, 0, NULL, "mode of the key file (default 0600)" },
	{ "dir_mode", CW_FIELD_MODE, 0, NULL, "mode of folders created for the files (default 0755)" },
	{ "reload", CW_FIELD_STRING_LIST, 0, NULL,
	  "optional command run after a deploy or remove, as an argv list (never a shell string)" },
	{ "reload_timeout", CW_FIELD_DURATION, 0, NULL,
	  "how long reload may run before it is killed (default 30s)" },
	{ "crl", CW_FIELD_STRING, 0, NULL,
	  "optional: where CRLs go, relative to path; {authority} becomes the authority name "
	  "(PEM; DER when the name ends in .der)" },
	{ NULL, 0, 0, NULL, NULL },
};

typedef struct {
	char *name;                    /* the target's inventory name */
	char *dir;                     /* absolute */
	char *tmpl[FILE_KINDS];        /* NULL: this file is not written */
	int der;                       /* format: der */
	mode_t cert_mode, key_mode, dir_mode;
	char **reload;                 /* NULL-terminated argv, or NULL */
	int reload_timeout_ms;
	char *crl_tmpl;                /* NULL: takes no CRLs */
	cw_target_env env;
} files_target;

/* ---- settings, shared by the static check and open() ---- */

/* The template configured for kind: the fallback when absent, NULL when not written. */
static const char *file_template(const cw_node *config, file_kind k)
{
	const char *t = cw_node_str(cw_node_get(config, "files"), file_kinds[k].setting,
				    file_kinds[k].fallback);
	return t && *t ? t : NULL;
}

static const cw_node *template_node(const cw_node *config, file_kind k)
{
	return cw_node_get(cw_node_get(config, "files"), file_kinds[k].setting);
}

static int uses_name(const char *tmpl)
{
	return tmpl && strstr(tmpl, FILES_NAME_PLACEHOLDER) != NULL;
}

int cw_files_single_slot(const cw_node *config)
{
	for (int k = 0; k < FILE_KINDS; k++)
		if (uses_name(file_template(config, (file_kind)k)))
			return 0;
	return 1;
}

static int is_dot_component(const char *s, size_t n)
{
	return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

/* Why a file name template is unusable, or NULL. It must name a file below path, so
 * nothing in the inventory can make us write outside the folder it states. */
static const char *template_problem(const char *tmpl)
{
	if (tmpl[0] == '/')
		return "must be relative to path";
	for (const char *p = strchr(tmpl, '{'); p; p = strchr(p + 1, '{'))
		if (strncmp(p, FILES_NAME_PLACEHOLDER, strlen(FILES_NAME_PLACEHOLDER)))
			return "has a placeholder other than {name}";
	const char *last = tmpl;
	for (const char *s = tmpl;; ) {
		size_t n = strcspn(s, "/");
		if (n == 2 && !strncmp(s, "..", 2))
			return "must stay inside path (no '..')";
		last = s;
		if (!s[n])
			break;
		s += n + 1;
	}
	if (!*last || is_dot_component(last, strlen(last)))
		return "does not name a file";
	return NULL;
}

/* A certificate name that goes into a file name: no path tricks, no option look-alike,
 * nothing a shell or a reload script could trip over. */
static int name_is_file_safe(const char *name)
{
	if (!name || !*name || name[0] == '-' || is_dot_component(name, strlen(name)))
		return 0;
	for (const char *p = name; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-", *p))
			return 0;
	return 1;
}

static int format_is_der(const char *format, int *der)
{
	if (!format || !strcmp(format, "pem"))
		*der = 0;
	else if (!strcmp(format, "der"))
		*der = 1;
	else
		return -1;
	return 0;
}

static int has_der_suffix(const char *file)
{
	size_t n = strlen(file);
	return n >= 4 && (!strcasecmp(file + n - 4, ".der") || !strcasecmp(file + n - 4, ".cer"));
}

/* ---- check_deployment (static, no I/O) ---- */

static const cw_srcpos *pos_of(const cw_node *n, const cw_srcpos *fallback)
{
	return n && n->pos.file ? &n->pos : fallback;
}

/* A finding about the target's settings. check_deployment runs once per certificate
 * deployed to the target, so the same finding is added only once. */
static void config_diag(cw_diags *diags, cw_severity sev, const cw_srcpos *pos, const char *code,
			const char *hint, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void config_diag(cw_diags *diags, cw_severity sev, const cw_srcpos *pos, const char *code,
			const char *hint, const char *fmt, ...)
{
	cw_buf msg = CW_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cw_buf_vaddf(&msg, fmt, ap);
	va_end(ap);
	const char *file = pos && pos->file ? pos->file : "";
	int line = pos && pos->file ? pos->line : 0;
	for (size_t i = 0; i < diags->n; i++) {
		const cw_diag *d = &diags->items[i];
		if (!strcmp(d->code, code) && !strcmp(d->message, msg.buf) && d->line == line &&
		    !strcmp(d->file ? d->file : "", file)) {
			cw_buf_release(&msg);
			return;
		}
	}
	cw_diag_add(diags, sev, pos, code, hint, "%s", msg.buf);
	cw_buf_release(&msg);
}

static void check_format(const cw_node *config, const cw_srcpos *pos, cw_diags *diags)
{
	const char *format = cw_node_str(config, "format", NULL);
	int der;
	if (format_is_der(format, &der) == 0)
		return;
	static const char *const formats[] = { "pem", "der" };
	const char *close = cw_did_you_mean(format, formats, 2);
	char hint[64] = "";
	if (close)
		snprintf(hint, sizeof(hint), "did you mean '%s'?", close);
	config_diag(diags, CW_SEV_ERROR, pos_of(cw_node_get(config, "format"), pos), "files.format",
		    close ? hint : NULL, "files target: format '%s' is not pem or der", format);
}

static void check_templates(const cw_node *config, const cw_srcpos *pos, cw_diags *diags)
{
	const cw_node *cert_node = template_node(config, FILE_CERT);
	if (cert_node && cert_node->value && !*cert_node->value)
		config_diag(diags, CW_SEV_ERROR, pos_of(cert_node, pos), "files.template", NULL,
			    "files target: files.cert must name a file");
	for (int k = 0; k < FILE_KINDS; k++) {
		const char *tmpl = file_template(config, (file_kind)k);
		const char *problem = tmpl ? template_problem(tmpl) : NULL;
		if (problem)
			config_diag(diags, CW_SEV_ERROR, pos_of(template_node(config, (file_kind)k), pos),
				    "files.template", NULL, "files target: files.%s '%s' %s",
				    file_kinds[k].setting, tmpl, problem);
	}
}

/* Per-certificate and shared files must not be mixed up: a shared key or certificate
 * file would be overwritten by every certificate deployed to the folder. */
static void check_sharing(const cw_node *config, const cw_srcpos *pos, cw_diags *diags)
{
	int cert_per_slot = uses_name(file_template(config, FILE_CERT));
	const char *key = file_template(config, FILE_KEY);
	if (key && cert_per_slot != uses_name(key))
		config_diag(diags, CW_SEV_ERROR, pos_of(cw_node_get(config, "files"), pos),
			    "files.shared-file", "put {name} in both files.cert and files.key, or in neither",
			    "files target: files.%s has no {name}, so every certificate deployed here "
			    "overwrites the same file", cert_per_slot ? "key" : "cert");
	for (file_kind k = FILE_CHAIN; k <= FILE_FULLCHAIN; k++) {
		const char *tmpl = file_template(config, k);
		if (cert_per_slot && tmpl && !uses_name(tmpl))
			config_diag(diags, CW_SEV_WARNING, pos_of(template_node(config, k), pos),
				    "files.shared-file", NULL,
				    "files target: files.%s has no {name}: certificates deployed here share it, "
				    "and the last one deployed wins", file_kinds[k].setting);
	}
}

static void check_name(const cw_node *config, const char *cert_name, const cw_srcpos *pos,
		       cw_diags *diags)
{
	if (cw_files_single_slot(config) || name_is_file_safe(cert_name))
		return;
	cw_diag *d = cw_diag_add(diags, CW_SEV_ERROR, pos, "files.unsafe-name",
				 "letters, digits, '.', '_', '@' and '-' (not first); not '.' or '..'",
				 "certificate '%s': name cannot be used in a file name", cert_name);
	d->certificate = cw_xstrdup(cert_name);
}

static void check_modes(const cw_node *config, const cw_srcpos *pos, cw_diags *diags)
{
	unsigned key_mode = cw_node_mode(config, "key_mode", 0600);
	if (file_template(config, FILE_KEY) && (key_mode & 0007))
		config_diag(diags, CW_SEV_WARNING, pos_of(cw_node_get(config, "key_mode"), pos),
			    "files.key-mode", NULL,
			    "files target: key_mode %04o lets every user on the machine read the private key",
			    key_mode);
}

static void check_path(const cw_node *config, const cw_srcpos *pos, cw_diags *diags)
{
	const char *path = cw_node_str(config, "path", NULL);
	if (path && *path && path[0] != '/' && strncmp(path, "~/", 2))
		config_diag(diags, CW_SEV_WARNING, pos_of(cw_node_get(config, "path"), pos),
			    "files.relative-path", "write an absolute path or one starting with ~/",
			    "files target: path '%s' is relative: it depends on the folder certwright runs in",
			    path);
}

static void files_check_deployment(const cw_node *config, const char *cert_name, cw_key_type key,
				   const char *const *bind, size_t nbind, const cw_srcpos *pos,
				   cw_diags *diags)
{
	check_path(config, pos, diags);
	check_format(config, pos, diags);
	check_templates(config, pos, diags);
	check_sharing(config, pos, diags);
	check_name(config, cert_name, pos, diags);
	check_modes(config, pos, diags);
	/* bind: the inventory refuses it already for every type without CW_TARGET_CAN_BIND */
}

/* ---- open / close ---- */

static void files_close(void *h)
{
	files_target *t = h;
	if (!t)
		return;
	free(t->name);
	free(t->dir);
	for (int k = 0; k < FILE_KINDS; k++)
		free(t->tmpl[k]);
	for (size_t i = 0; t->reload && t->reload[i]; i++)
		free(t->reload[i]);
	free(t->reload);
	free(t->crl_tmpl);
	free(t);
}

/* "~/" is resolved here; a relative path is made absolute now, so the git work tree
 * check later sees every folder above it. */
static int open_dir(files_target *t, const cw_node *config, cw_error *err)
{
	const char *path = cw_node_str(config, "path", NULL);
	if (!path || !*path)
		return cw_error_set(err, CW_EINVAL, "target '%s': path is required", t->name);
	char *expanded = cw_expand_home(path);
	if (expanded[0] == '/') {
		t->dir = expanded;
		return 0;
	}
	char *cwd = getcwd(NULL, 0);
	if (!cwd) {
		free(expanded);
		return cw_error_set(err, CW_EIO, "target '%s': cannot resolve relative path '%s': %s",
				    t->name, path, strerror(errno));
	}
	t->dir = cw_path_join(cwd, expanded);
	free(cwd);
	free(expanded);
	return 0;
}

static int open_templates(files_target *t, const cw_node *config, cw_error *err)
{
	for (int k = 0; k < FILE_KINDS; k++) {
		const char *tmpl = file_template(config, (file_kind)k);
		const char *problem = tmpl ? template_problem(tmpl) : NULL;
		if (problem)
			return cw_error_set(err, CW_EINVAL, "target '%s': files.%s '%s' %s", t->name,
					    file_kinds[k].setting, tmpl, problem);
		t->tmpl[k] = cw_xstrdup(tmpl);
	}
	if (!t->tmpl[FILE_CERT])
		return cw_error_set(err, CW_EINVAL, "target '%s': files.cert must name a file", t->name);
	return 0;
}

static int open_reload(files_target *t, const cw_node *config, cw_error *err)
{
	int64_t secs = cw_node_duration(config, "reload_timeout", FILES_DEFAULT_RELOAD_TIMEOUT);
	if (secs <= 0 || secs > INT_MAX / 1000)
		return cw_error_set(err, CW_EINVAL, "target '%s': reload_timeout must be between 1s and 24d",
				    t->name);
	t->reload_timeout_ms = (int)(secs * 1000);
	const cw_node *reload = cw_node_get(config, "reload");
	if (!reload)
		return 0;
	if (reload->kind != CW_NODE_SEQ || reload->n == 0)
		return cw_error_set(err, CW_EINVAL,
				    "target '%s': reload must be a non-empty list (argv), not a shell string",
				    t->name);
	t->reload = cw_xcalloc(reload->n + 1, sizeof(*t->reload));
	for (size_t i = 0; i < reload->n; i++) {
		const cw_node *arg = reload->items[i];
		if (arg->kind != CW_NODE_SCALAR || !arg->value)
			return cw_error_set(err, CW_EINVAL, "target '%s': reload[%zu] must be a string",
					    t->name, i);
		t->reload[i] = cw_xstrdup(arg->value);
	}
	if (!*t->reload[0])
		return cw_error_set(err, CW_EINVAL, "target '%s': reload[0] must name a program", t->name);
	return 0;
}

#define FILES_AUTHORITY_PLACEHOLDER "{authority}"

/* A CRL file name stays inside path, like every other file of the target. */
static int open_crl(files_target *t, const cw_node *config, cw_error *err)
{
	const char *tmpl = cw_node_str(config, "crl", NULL);
	if (!tmpl || !*tmpl)
		return 0;
	if (tmpl[0] == '/' || !strcmp(tmpl, "..") || !strncmp(tmpl, "../", 3) ||
	    strstr(tmpl, "/../") || (strlen(tmpl) >= 3 && !strcmp(tmpl + strlen(tmpl) - 3, "/..")))
		return cw_error_set(err, CW_EINVAL, "target '%s': crl '%s' must stay inside path",
				    t->name, tmpl);
	t->crl_tmpl = cw_xstrdup(tmpl);
	return 0;
}

static int files_open(void **handle, const char *name, const cw_node *config,
		      const cw_target_env *env, cw_error *err)
{
	*handle = NULL;
	files_target *t = cw_xcalloc(1, sizeof(*t));
	t->name = cw_xstrdup(name ? name : "files");
	if (env)
		t->env = *env;
	t->env.work_dir = NULL; /* the engine's string lives for open() only; not needed here */
	t->cert_mode = cw_node_mode(config, "cert_mode", 0644);
	t->key_mode = cw_node_mode(config, "key_mode", 0600);
	t->dir_mode = cw_node_mode(config, "dir_mode", 0755);
	const char *format = cw_node_str(config, "format", NULL);
	int rc = open_dir(t, config, err);
	if (rc == 0 && format_is_der(format, &t->der) != 0)
		rc = cw_error_set(err, CW_EINVAL, "target '%s': format '%s' is not pem or der", t->name,
				  format);
	if (rc == 0)
		rc = open_templates(t, config, err);
	if (rc == 0)
		rc = open_reload(t, config, err);
	if (rc == 0)
		rc = open_crl(t, config, err);
	if (rc != 0) {
		files_close(t);
		return -1;
	}
	*handle = t;
	return 0;
}

/* ---- helpers for the slot's files ---- */

/* The engine passes inventory names, checked at validate time; checked again here
 * because this is where a bad name would turn into a path. */
static int check_slot(const files_target *t, const char *slot, cw_error *err)
{
	int per_slot = 0;
	for (int k = 0; k < FILE_KINDS; k++)
		per_slot |= uses_name(t->tmpl[k]);
	if (per_slot && !name_is_file_safe(slot))
		return cw_error_set(err, CW_EINVAL, "target '%s': certificate name '%s' cannot be used in a file name",
				    t->name, slot ? slot : "");
	return 0;
}

static char *expand_template(const char *tmpl, const char *slot)
{
	cw_buf b = CW_BUF_INIT;
	size_t plen = strlen(FILES_NAME_PLACEHOLDER);
	for (const char *p = tmpl; *p; ) {
		const char *hit = strstr(p, FILES_NAME_PLACEHOLDER);
		if (!hit) {
			cw_buf_adds(&b, p);
			break;
		}
		cw_buf_add(&b, p, (size_t)(hit - p));
		cw_buf_adds(&b, slot);
		p = hit + plen;
	}
	return cw_buf_detach(&b);
}

/* Full path of one of the slot's files, or NULL when that file is not written. */
static char *slot_path(const files_target *t, file_kind k, const char *slot)
{
	if (!t->tmpl[k])
		return NULL;
	char *rel = expand_template(t->tmpl[k], slot);
	char *path = cw_path_join(t->dir, rel);
	free(rel);
	return path;
}

static char *parent_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash && slash != path ? cw_xstrndup(path, (size_t)(slash - path)) : cw_xstrdup("/");
}

static int writes_der(const files_target *t, file_kind k)
{
	return (k == FILE_CERT || k == FILE_CA) && (t->der || has_der_suffix(t->tmpl[k]));
}

/* ---- observe ---- */

/* Reads what fd holds, up to cap bytes. */
static int read_fd(const files_target *t, int fd, const char *path, cw_buf *out, cw_error *err)
{
	char chunk[16384];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cw_error_set(err, CW_EIO, "target '%s': cannot read %s: %s", t->name, path,
					    strerror(errno));
		if (n == 0)
			return 0;
		if (out->len + (size_t)n > FILES_READ_CAP)
			return cw_error_set(err, CW_EIO, "target '%s': %s is larger than %zu bytes",
					    t->name, path, FILES_READ_CAP);
		cw_buf_add(out, chunk, (size_t)n);
	}
}

/* Reads path whole, and its permission bits into *mode when mode is not NULL. A missing
 * file is *exists = 0, not an error; anything else that stops us reading is, naming the
 * path. O_NONBLOCK keeps a FIFO from hanging us, and reading the descriptor we checked
 * leaves no window for a swap. */
static int read_if_exists(const files_target *t, const char *path, cw_buf *out, int *exists,
			  mode_t *mode, cw_error *err)
{
	*exists = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return cw_error_set(err, CW_EIO, "target '%s': cannot read %s: %s", t->name, path,
				    strerror(errno));
	struct stat st;
	int rc;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		rc = cw_error_set(err, CW_EIO, "target '%s': %s is not a regular file", t->name, path);
	else
		rc = read_fd(t, fd, path, out, err);
	if (rc == 0 && mode)
		*mode = st.st_mode & 07777;
	close(fd);
	*exists = rc == 0;
	return rc;
}

static void blob_set(cw_blob *b, const void *data, size_t len)
{
	b->data = cw_xmalloc(len ? len : 1);
	memcpy(b->data, data, len);
	b->len = len;
}

static int looks_like_pem(const cw_buf *raw)
{
	return raw->len && memmem(raw->buf, raw->len, "-----BEGIN ", 11) != NULL;
}

/* Appends the DER inside every CERTIFICATE block of a PEM text (other blocks skipped). */
static void pem_certificates(const cw_buf *raw, cw_blob **blobs, size_t *n)
{
	BIO *bio = BIO_new_mem_buf(raw->buf, (int)raw->len);
	unsigned char *der = NULL;
	long len = 0;
	while (bio && PEM_bytes_read_bio(&der, &len, NULL, PEM_STRING_X509, bio, NULL, NULL) == 1) {
		*blobs = cw_xrealloc(*blobs, (*n + 1) * sizeof(**blobs));
		blob_set(&(*blobs)[(*n)++], der, (size_t)len);
		OPENSSL_free(der);
		der = NULL;
	}
	ERR_clear_error();   /* "no start line" at the end is how the loop ends */
	BIO_free(bio);
}

static void add_note(cw_observation *obs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_note(cw_observation *obs, const char *fmt, ...)
{
	cw_buf b = CW_BUF_INIT;
	if (obs->note) {
		cw_buf_adds(&b, obs->note);
		cw_buf_adds(&b, "; ");
		free(obs->note);
	}
	va_list ap;
	va_start(ap, fmt);
	cw_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	obs->note = cw_buf_detach(&b);
}

/* The leaf as DER: the first CERTIFICATE block of a PEM file, or the file itself.
 * What is neither is still handed over raw: reconcile/x509 judges it (as drift). */
static void observe_leaf(const cw_buf *raw, const char *path, cw_observation *obs)
{
	obs->present = 1;
	if (looks_like_pem(raw)) {
		cw_blob *blobs = NULL;
		size_t n = 0;
		pem_certificates(raw, &blobs, &n);
		if (n) {
			obs->cert = blobs[0];
			for (size_t i = 1; i < n; i++)
				free(blobs[i].data);
			free(blobs);
			return;
		}
		add_note(obs, "%s holds no PEM certificate", path);
	} else if ((unsigned char)raw->buf[0] != 0x30) {
		add_note(obs, "%s holds neither a PEM nor a DER certificate", path);
	}
	blob_set(&obs->cert, raw->buf, raw->len);
}

static int observe_cert(const files_target *t, const char *slot, cw_observation *obs, cw_error *err)
{
	char *path = slot_path(t, FILE_CERT, slot);
	cw_buf raw = CW_BUF_INIT;
	int exists;
	int rc = read_if_exists(t, path, &raw, &exists, NULL, err);
	if (rc == 0 && exists && raw.len == 0)
		add_note(obs, "%s is empty", path);
	else if (rc == 0 && exists)
		observe_leaf(&raw, path, obs);
	cw_buf_release(&raw);
	free(path);
	return rc;
}

/* Intermediates from the chain file, or else from the fullchain file after its leaf. */
static int observe_chain(const files_target *t, const char *slot, cw_observation *obs, cw_error *err)
{
	file_kind k = t->tmpl[FILE_CHAIN] ? FILE_CHAIN : FILE_FULLCHAIN;
	char *path = slot_path(t, k, slot);
	if (!path)
		return 0;
	cw_buf raw = CW_BUF_INIT;
	int exists;
	int rc = read_if_exists(t, path, &raw, &exists, NULL, err);
	if (rc == 0 && exists)
		pem_certificates(&raw, &obs->chain, &obs->nchain);
	if (k == FILE_FULLCHAIN && obs->nchain) {
		free(obs->chain[0].data);
		memmove(obs->chain, obs->chain + 1, --obs->nchain * sizeof(*obs->chain));
	}
	cw_buf_release(&raw);
	free(path);
	return rc;
}

static void observe_key(const files_target *t, const char *slot, cw_observation *obs)
{
	char *path = slot_path(t, FILE_KEY, slot);
	if (!path)
		return;   /* key_present stays -1: we do not manage the key here */
	struct stat st;
	if (stat(path, &st) == 0)
		obs->key_present = 1;
	else if (errno == ENOENT || errno == ENOTDIR)
		obs->key_present = 0;
	if (obs->present && obs->key_present == 0)
		add_note(obs, "key file %s is missing", path);
	free(path);
}

/* The files of the slot besides the certificate, in the order they enter the digest.
 * The CRL file is not among them: it belongs to an authority, not to a slot. */
static const file_kind digest_order[] = { FILE_KEY, FILE_CHAIN, FILE_FULLCHAIN, FILE_CA };

/* One line of the digest listing: "<kind> unmanaged" (this configuration writes no such
 * file), "<kind> absent", or "<kind> <mode> <sha256 of the content>". The mode is in on
 * purpose: a key made world-readable is drift, like a key deleted. */
static int digest_line(const files_target *t, file_kind k, const char *slot, cw_buf *listing,
		       cw_error *err)
{
	const char *kind = file_kinds[k].setting;
	char *path = slot_path(t, k, slot);
	if (!path) {
		cw_buf_addf(listing, "%s unmanaged\n", kind);
		return 0;
	}
	cw_buf raw = CW_BUF_INIT;
	int exists;
	mode_t mode = 0;
	int rc = read_if_exists(t, path, &raw, &exists, &mode, err);
	if (rc == 0 && !exists) {
		cw_buf_addf(listing, "%s absent\n", kind);
	} else if (rc == 0) {
		char sha[65];
		cw_sha256_hex(raw.buf ? raw.buf : "", raw.len, sha);
		cw_buf_addf(listing, "%s %04o %s\n", kind, (unsigned)mode, sha);
	}
	cw_buf_release_secret(&raw);   /* it may have held the private key */
	free(path);
	return rc;
}

/* obs->digest: SHA-256 of a canonical listing of what this configuration wants (modes,
 * format) and what the slot's other files hold. The wanted part comes first so that
 * changing key_mode, cert_mode or format in the inventory changes the digest, and the
 * engine redeploys to apply it. Nothing in it depends on the slot name or the folder:
 * the same files under the same settings give the same digest. */
static int observe_digest(const files_target *t, const char *slot, cw_observation *obs,
			  cw_error *err)
{
	cw_buf listing = CW_BUF_INIT;
	cw_buf_addf(&listing, "certwright files slot 1\nwant cert_mode %04o key_mode %04o format %s\n",
		    (unsigned)(t->cert_mode & 07777), (unsigned)(t->key_mode & 07777),
		    t->der ? "der" : "pem");
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < sizeof(digest_order) / sizeof(digest_order[0]); i++)
		rc = digest_line(t, digest_order[i], slot, &listing, err);
	if (rc == 0) {
		obs->digest = cw_xmalloc(65);
		cw_sha256_hex(listing.buf, listing.len, obs->digest);
	}
	cw_buf_release(&listing);
	return rc;
}

static int files_observe(void *h, const char *slot, cw_observation *obs, cw_error *err)
{
	files_target *t = h;
	memset(obs, 0, sizeof(*obs));
	obs->key_present = -1;
	if (check_slot(t, slot, err) != 0 || observe_cert(t, slot, obs, err) != 0 ||
	    observe_chain(t, slot, obs, err) != 0)
		goto fail;
	observe_key(t, slot, obs);
	/* Without a certificate there is nothing deployed to compare with: digest stays NULL. */
	if (obs->present && observe_digest(t, slot, obs, err) != 0)
		goto fail;
	return 0;
fail:
	cw_observation_release(obs);
	obs->key_present = -1;
	return -1;
}

static int files_verify(void *h, const char *slot, cw_observation *obs, cw_error *err)
{
	/* Nothing to ask from outside: what is on disk is what the service loads. */
	return files_observe(h, slot, obs, err);
}

/* ---- deploy ---- */

static int pem_encode(const files_target *t, cw_buf *out, const char *label, const cw_blob *der,
		      cw_error *err)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio || PEM_write_bio(bio, label, "", der->data, (long)der->len) <= 0) {
		BIO_free(bio);
		return cw_error_openssl(err, "target '%s': cannot PEM-encode a %s", t->name, label);
	}
	char *p = NULL;
	long n = BIO_get_mem_data(bio, &p);
	cw_buf_add(out, p, (size_t)n);
	BIO_free(bio);
	return 0;
}

static int pem_append(const files_target *t, cw_buf *out, const cw_blob *der, cw_error *err)
{
	return pem_encode(t, out, PEM_STRING_X509, der, err);
}

static int cert_content(const files_target *t, file_kind k, const cw_blob *der, cw_buf *out,
			cw_error *err)
{
	if (!writes_der(t, k))
		return pem_append(t, out, der, err);
	cw_buf_add(out, der->data, der->len);
	return 0;
}

/* What goes into a non-key file of the slot. */
static int file_content(const files_target *t, file_kind k, const cw_bundle *b, cw_buf *out,
			cw_error *err)
{
	int rc = 0;
	switch (k) {
	case FILE_CERT:
		return cert_content(t, k, &b->cert, out, err);
	case FILE_CA:
		return cert_content(t, k, &b->root, out, err);
	case FILE_FULLCHAIN:
		rc = pem_append(t, out, &b->cert, err);
		/* fall through */
	case FILE_CHAIN:
		for (size_t i = 0; rc == 0 && i < b->nchain; i++)
			rc = pem_append(t, out, &b->chain[i], err);
		return rc;
	default:   /* the key is written from the bundle as it is (write_one) */
		return cw_error_set(err, CW_EINTERNAL, "target '%s': no content for file kind %d",
				    t->name, (int)k);
	}
}

/* Everything the bundle must carry, checked before the first byte is written. */
static int check_bundle(const files_target *t, const cw_bundle *b, cw_error *err)
{
	if (!b->cert.data || !b->cert.len)
		return cw_error_set(err, CW_EINVAL, "target '%s': no certificate to deploy for '%s'",
				    t->name, b->slot);
	if (t->tmpl[FILE_KEY] && (!b->key_pem || !b->key_pem_len))
		return cw_error_set(err, CW_EINVAL, "target '%s': no private key for '%s' (files.key is set)",
				    t->name, b->slot);
	if (t->tmpl[FILE_CA] && (!b->root.data || !b->root.len))
		return cw_error_set(err, CW_EINVAL, "target '%s': no root certificate for '%s' (files.ca is set)",
				    t->name, b->slot);
	return 0;
}

/* A private key in a git work tree is one `git add -A` away from a commit. */
static int refuse_key_in_git(const files_target *t, const char *key_path, cw_error *err)
{
	char *dir = parent_dir(key_path);
	char *root = cw_git_worktree_of(dir);
	free(dir);
	if (!root)
		return 0;
	cw_error_set(err, CW_EINVAL,
		     "target '%s': refusing to write an unencrypted private key inside the git work tree at %s",
		     t->name, root);
	free(root);
	return -1;
}

static int write_one(const files_target *t, file_kind k, const char *path, const cw_bundle *b,
		     cw_error *err)
{
	char *dir = parent_dir(path);
	int rc = cw_mkdirs(dir, t->dir_mode, err);
	free(dir);
	if (rc != 0)
		return -1;
	if (k == FILE_KEY)
		return cw_write_file_atomic(path, b->key_pem, b->key_pem_len, t->key_mode, err);
	cw_buf content = CW_BUF_INIT;
	rc = file_content(t, k, b, &content, err);
	if (rc == 0)
		rc = cw_write_file_atomic(path, content.buf, content.len, t->cert_mode, err);
	cw_buf_release(&content);
	return rc;
}

static int files_deploy(void *h, const cw_bundle *b, cw_error *err)
{
	files_target *t = h;
	if (check_slot(t, b->slot, err) != 0 || check_bundle(t, b, err) != 0)
		return -1;
	char *paths[FILE_KINDS] = { NULL };
	for (int k = 0; k < FILE_KINDS; k++)
		paths[k] = slot_path(t, (file_kind)k, b->slot);
	int rc = paths[FILE_KEY] ? refuse_key_in_git(t, paths[FILE_KEY], err) : 0;
	cw_error werr = { 0 };
	for (size_t i = 0; rc == 0 && i < sizeof(write_order) / sizeof(write_order[0]); i++) {
		file_kind k = write_order[i];
		if (paths[k])
			rc = write_one(t, k, paths[k], b, &werr);
	}
	if (werr.code != CW_OK)
		cw_error_set(err, werr.code, "target '%s': %s", t->name, werr.msg);
	if (rc == 0)
		cw_target_log(&t->env, t->name, CW_LOG_INFO, "wrote '%s' (sha256 %s) to %s", b->slot,
			  b->fingerprint ? b->fingerprint : "?", t->dir);
	for (int k = 0; k < FILE_KINDS; k++)
		free(paths[k]);
	return rc;
}

/* ---- activate ---- */

/* The first non-empty line of the program's complaint, for a one-line error. */
static void first_line(const cw_exec_result *res, char *out, size_t outlen)
{
	const char *text = res->errout.len ? res->errout.buf : res->out.buf;
	text = text ? text : "";
	text += strspn(text, "\r\n \t");
	size_t n = strcspn(text, "\r\n");
	snprintf(out, outlen, "%.*s", (int)n, text);
}

static int files_activate(void *h, cw_error *err)
{
	files_target *t = h;
	if (!t->reload)
		return 0;
	cw_exec_opts opts;
	memset(&opts, 0, sizeof(opts));
	opts.argv = (const char *const *)t->reload;
	opts.timeout_ms = t->reload_timeout_ms;
	opts.cap = FILES_RELOAD_OUTPUT_CAP;
	cw_exec_result res;
	cw_error e = { 0 };
	int rc = cw_exec(&opts, &res, &e);
	char line[256];
	first_line(&res, line, sizeof(line));
	if (rc != 0)
		cw_error_set(err, e.code, "target '%s': reload: %s", t->name, e.msg);
	else if (!res.exited)
		rc = cw_error_set(err, CW_ETARGET, "target '%s': reload %s killed by signal %d%s%s",
				  t->name, t->reload[0], res.signaled, *line ? ": " : "", line);
	else if (res.status != 0)
		rc = cw_error_set(err, CW_ETARGET, "target '%s': reload %s exited with status %d%s%s",
				  t->name, t->reload[0], res.status, *line ? ": " : "", line);
	else
		cw_target_log(&t->env, t->name, CW_LOG_INFO, "reloaded with %s in %.1fs", t->reload[0], res.seconds);
	cw_exec_result_release(&res);
	return rc;
}

/* ---- remove ---- */

/* Which files belong to one slot alone: those named after it — and, in a single-slot
 * folder, all but the CA, which stays a shared trust anchor unless named after it. */
static int slot_owns(const files_target *t, file_kind k, int single_slot)
{
	if (!t->tmpl[k])
		return 0;
	if (uses_name(t->tmpl[k]))
		return 1;
	return single_slot && k != FILE_CA;
}

static int files_remove(void *h, const char *slot, const char *previous_fingerprint, cw_error *err)
{
	files_target *t = h;
	if (previous_fingerprint)
		return 0;   /* files are replaced in place: no older rotation lingers */
	if (check_slot(t, slot, err) != 0)
		return -1;
	int single = 1, rc = 0;
	for (int k = 0; k < FILE_KINDS; k++)
		single &= !uses_name(t->tmpl[k]);
	for (int k = 0; k < FILE_KINDS; k++) {
		if (!slot_owns(t, (file_kind)k, single))
			continue;
		char *path = slot_path(t, (file_kind)k, slot);
		if (unlink(path) != 0 && errno != ENOENT)
			rc = cw_error_set(err, CW_EIO, "target '%s': cannot remove %s: %s", t->name, path,
					  strerror(errno));
		free(path);
	}
	if (rc == 0)
		cw_target_log(&t->env, t->name, CW_LOG_INFO, "removed the files of '%s' from %s", slot, t->dir);
	return rc;
}

/* ---- CRLs ---- */

static int files_takes_crl(const cw_node *config)
{
	const char *tmpl = cw_node_str(config, "crl", NULL);
	return tmpl && *tmpl;
}

static int files_deploy_crl(void *h, const char *authority, const cw_blob *der, cw_error *err)
{
	files_target *t = h;
	if (!t->crl_tmpl)
		return cw_error_set(err, CW_EINVAL, "target '%s': no crl file configured", t->name);
	if (!name_is_file_safe(authority))
		return cw_error_set(err, CW_EINVAL, "target '%s': authority name '%s' cannot be used "
				    "in a file name", t->name, authority);
	cw_buf rel = CW_BUF_INIT;
	const char *p = t->crl_tmpl, *hit;
	while ((hit = strstr(p, FILES_AUTHORITY_PLACEHOLDER))) {
		cw_buf_add(&rel, p, (size_t)(hit - p));
		cw_buf_adds(&rel, authority);
		p = hit + strlen(FILES_AUTHORITY_PLACEHOLDER);
	}
	cw_buf_adds(&rel, p);
	char *path = cw_path_join(t->dir, rel.buf);
	char *dir = parent_dir(path);
	cw_buf content = CW_BUF_INIT;
	int rc = 0;
	if (has_der_suffix(rel.buf))
		cw_buf_add(&content, der->data, der->len);
	else
		rc = pem_encode(t, &content, PEM_STRING_X509_CRL, der, err);
	if (rc == 0)
		rc = cw_mkdirs(dir, t->dir_mode, err);
	if (rc == 0)
		rc = cw_write_file_atomic(path, content.buf, content.len, t->cert_mode, err);
	if (rc == 0)
		cw_target_log(&t->env, t->name, CW_LOG_INFO, "wrote the CRL of '%s' to %s", authority, path);
	cw_buf_release(&content);
	cw_buf_release(&rel);
	free(dir);
	free(path);
	return rc;
}

const cw_target_ops cw_files_target = {
	.api_version = CW_TARGET_API_VERSION,
	.type = "files",
	.caps = CW_TARGET_TAKES_KEY,
	.schema = files_fields,
	.check_deployment = files_check_deployment,
	.open = files_open,
	.observe_device = NULL,
	.observe = files_observe,
	.deploy = files_deploy,
	.bind = NULL,
	.activate = files_activate,
	.verify = files_verify,
	.remove = files_remove,
	.close = files_close,
	.single_slot = cw_files_single_slot,
	.takes_crl = files_takes_crl,
	.deploy_crl = files_deploy_crl,
};
