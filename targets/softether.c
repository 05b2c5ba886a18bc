/*
 * softether — see softether.h. Four vpncmd commands do all the work:
 * ServerInfoGet (version, hence accepted key types and chain handling),
 * ServerCertGet (the installed certificate), ServerCertSet (install) and, in
 * tests only, ServerPasswordSet. verify() adds an in-process TLS handshake.
 *
 * Like every adapter this one never parses X.509: certificates move as opaque
 * DER inside PEM armour (PEM_bytes_read_bio / PEM_write_bio), and what the TLS
 * peer sent is re-encoded with i2d_X509 for reconcile/x509 to judge. The only
 * thing it looks into is the private key it is about to hand over, to refuse
 * an encrypted one (vpncmd would hang on its passphrase prompt) and an RSA key
 * under 2048 bits (it bricks the server's TLS).
 */
#include "targets/softether.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/exec.h"
#include "common/secret.h"

/* The engine's log levels (reconcile/engine.h: CW_LOG_*); targets sit below reconcile
 * and must not include it. */

#define SE_DEFAULT_PORT "443"
#define SE_DEFAULT_TIMEOUT_MS 30000
#define SE_MAX_TIMEOUT_S 3600
#define SE_OUTPUT_CAP ((size_t)256 << 10)
#define SE_CERT_FILE_CAP ((size_t)1 << 20)
#define SE_DETAIL_MAX 240
#define SE_MIN_RSA_BITS 2048
/* Names inside the private folders; ServerCertGet gets a relative name because an
 * absolute path starting with '/' is taken for an unknown option (error 38). */
#define SE_GET_FILE "server-cert.pem"
#define SE_SET_CERT_FILE "cert.pem"
#define SE_SET_KEY_FILE "key.pem"
#define SE_CHAIN_PREFIX "certwright-chain-"
#define SE_CHAIN_SUFFIX ".cer"

static const cw_field softether_fields[] = {
	{ "address", CW_FIELD_ADDRESS, 1, NULL,
	  "host:port of any listener of the VPN server (port default 443); admin sessions use it too" },
	{ "password", CW_FIELD_SECRET, 1, NULL,
	  "server administrator password, as a reference: env:NAME or file:PATH (never a literal)" },
	{ "vpncmd", CW_FIELD_PATH, 0, NULL, "path of vpncmd (default: vpncmd from PATH)" },
	{ "timeout", CW_FIELD_DURATION, 0, NULL,
	  "time allowed for each vpncmd call and TLS handshake (default: the run's timeout)" },
	{ "chain_certs", CW_FIELD_PATH, 0, NULL,
	  "local servers only: the server's chain_certs folder, where intermediates go for builds "
	  "that serve the leaf only (4.x, Debian's 5.01)" },
	{ "tls_verify_host", CW_FIELD_STRING, 0, NULL,
	  "host name sent (SNI) in verify's TLS handshake (default: the address's host name)" },
	{ NULL, 0, 0, NULL, NULL },
};

/* What ServerInfoGet told us; decides key types and how a chain is served. */
typedef struct {
	int known;
	int major, minor, build;
} se_build;

typedef struct {
	char *name;              /* the target's inventory name */
	char *address;           /* host:port as vpncmd takes it */
	char *host;              /* for the TLS probe, without brackets */
	char *port;
	char *password_ref;      /* for messages: the reference, never the value */
	cw_buf password;         /* wiped on close */
	char *vpncmd;
	char *chain_certs;       /* NULL: not managed */
	char *sni;               /* NULL: no SNI */
	int timeout_ms;
	char *work_dir;
	cw_target_env env;        /* the engine's log callback and timeout */
	se_build build;          /* cached after the first ServerInfoGet */
} se_target;

/* ---- small helpers ---- */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void format_timeout(int ms, char out[32])
{
	if (ms % 1000 == 0)
		snprintf(out, 32, "%d s", ms / 1000);
	else
		snprintf(out, 32, "%.1f s", ms / 1000.0);
}

static void blob_take_openssl(cw_blob *b, unsigned char *data, long len)
{
	b->data = cw_xmalloc(len > 0 ? (size_t)len : 1);
	memcpy(b->data, data, (size_t)len);
	b->len = (size_t)len;
	OPENSSL_free(data);
}

/* ---- settings ---- */

static int port_is_valid(const char *p)
{
	if (!*p || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p))
		return 0;
	long v = strtol(p, NULL, 10);
	return v >= 1 && v <= 65535;
}

/* "host", "host:port", "[v6]", "[v6]:port". A host starting with '/' or '-' would
 * reach vpncmd as an option, so it is refused like any other malformed address. */
static const char *split_address(const char *addr, char **host, char **port)
{
	const char *colon = NULL;
	*host = *port = NULL;
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || close == addr + 1)
			return "has an unclosed or empty [ ]";
		if (close[1] && close[1] != ':')
			return "has text after ]";
		*host = cw_xstrndup(addr + 1, (size_t)(close - addr - 1));
		colon = close[1] ? close + 1 : NULL;
	} else {
		colon = strchr(addr, ':');
		if (colon && strchr(colon + 1, ':'))
			return "has several ':' (write an IPv6 address as [addr]:port)";
		*host = colon ? cw_xstrndup(addr, (size_t)(colon - addr)) : cw_xstrdup(addr);
	}
	*port = cw_xstrdup(colon ? colon + 1 : SE_DEFAULT_PORT);
	if (!**host || (*host)[0] == '/' || (*host)[0] == '-' || strpbrk(*host, " \t\r\n"))
		return "has no usable host name";
	if (!port_is_valid(*port))
		return "has a port that is not a number from 1 to 65535";
	return NULL;
}

static int open_address(se_target *t, const cw_node *config, cw_error *err)
{
	const char *addr = cw_node_str(config, "address", NULL);
	if (!addr || !*addr)
		return cw_error_set(err, CW_EINVAL, "target '%s': address is required", t->name);
	const char *problem = split_address(addr, &t->host, &t->port);
	if (problem)
		return cw_error_set(err, CW_EINVAL, "target '%s': address '%s' %s", t->name, addr,
				    problem);
	if (strchr(t->host, ':'))
		t->address = cw_xasprintf("[%s]:%s", t->host, t->port);
	else
		t->address = cw_xasprintf("%s:%s", t->host, t->port);
	return 0;
}

static int open_password(se_target *t, const cw_node *config, cw_error *err)
{
	const char *ref = cw_node_str(config, "password", NULL);
	if (!ref || !*ref)
		return cw_error_set(err, CW_EINVAL, "target '%s': password is required (env:NAME or file:PATH)",
				    t->name);
	if (!cw_secret_is_ref(ref))
		return cw_error_set(err, CW_EINVAL,
				    "target '%s': password must be a reference (env:NAME or file:PATH), not a literal",
				    t->name);
	t->password_ref = cw_xstrdup(ref);
	cw_error e = { 0 };
	if (cw_secret_resolve(ref, &t->password, &e) != 0)
		return cw_error_set(err, e.code, "target '%s': password: %s", t->name, e.msg);
	/* The value travels as one C string in argv: a NUL would silently cut it. */
	if (t->password.len && strlen(t->password.buf) != t->password.len)
		return cw_error_set(err, CW_EINVAL, "target '%s': password %s contains a NUL byte",
				    t->name, ref);
	return 0;
}

static int open_timeout(se_target *t, const cw_node *config, const cw_target_env *env,
			cw_error *err)
{
	int64_t s = cw_node_duration(config, "timeout", 0);
	if ((cw_node_get(config, "timeout") && s <= 0) || s < 0 || s > SE_MAX_TIMEOUT_S)
		return cw_error_set(err, CW_EINVAL, "target '%s': timeout must be between 1s and 1h",
				    t->name);
	if (s > 0)
		t->timeout_ms = (int)s * 1000;
	else if (env && env->timeout_ms > 0)
		t->timeout_ms = env->timeout_ms;
	else
		t->timeout_ms = SE_DEFAULT_TIMEOUT_MS;
	return 0;
}

static int open_paths(se_target *t, const cw_node *config, const cw_target_env *env,
		      cw_error *err)
{
	const char *vpncmd = cw_node_str(config, "vpncmd", "vpncmd");
	if (!*vpncmd)
		return cw_error_set(err, CW_EINVAL, "target '%s': vpncmd must name a program", t->name);
	t->vpncmd = cw_expand_home(vpncmd);
	const char *chain = cw_node_str(config, "chain_certs", NULL);
	if (chain && *chain) {
		t->chain_certs = cw_expand_home(chain);
		if (t->chain_certs[0] != '/')
			return cw_error_set(err, CW_EINVAL,
					    "target '%s': chain_certs '%s' must be an absolute path",
					    t->name, chain);
	}
	const char *work = env && env->work_dir ? env->work_dir : getenv("TMPDIR");
	t->work_dir = cw_xstrdup(work && *work ? work : "/tmp");
	return 0;
}

static int host_is_numeric(const char *host)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST;
	int numeric = getaddrinfo(host, NULL, &hints, &res) == 0;
	if (res)
		freeaddrinfo(res);
	return numeric;
}

static void softether_close(void *h)
{
	se_target *t = h;
	if (!t)
		return;
	cw_buf_release_secret(&t->password);
	free(t->name);
	free(t->address);
	free(t->host);
	free(t->port);
	free(t->password_ref);
	free(t->vpncmd);
	free(t->chain_certs);
	free(t->sni);
	free(t->work_dir);
	free(t);
}

static int softether_open(void **handle, const char *name, const cw_node *config,
			  const cw_target_env *env, cw_error *err)
{
	*handle = NULL;
	se_target *t = cw_xcalloc(1, sizeof(*t));
	cw_buf_init(&t->password);
	t->name = cw_xstrdup(name ? name : "softether");
	if (env)
		t->env = *env;
	t->env.work_dir = NULL; /* borrowed for open() only: work_dir above is our copy */
	if (open_address(t, config, err) != 0 || open_timeout(t, config, env, err) != 0 ||
	    open_paths(t, config, env, err) != 0 || open_password(t, config, err) != 0) {
		softether_close(t);
		return -1;
	}
	const char *sni = cw_node_str(config, "tls_verify_host", NULL);
	if (sni && *sni)
		t->sni = cw_xstrdup(sni);
	else if (!host_is_numeric(t->host))
		t->sni = cw_xstrdup(t->host);   /* an IP literal is not a valid SNI name */
	*handle = t;
	return 0;
}

/* ---- check_deployment (static, no I/O) ---- */

static void softether_check_deployment(const cw_node *config, const char *cert_name,
				       cw_key_type key, const char *const *bind, size_t nbind,
				       const cw_srcpos *pos, cw_diags *diags)
{
	cw_diag *d = NULL;
	if (key == CW_KEY_RSA1024)
		d = cw_diag_add(diags, CW_SEV_ERROR, pos, "softether.rsa-min-2048", "use rsa-2048 or larger",
				"certificate '%s': an RSA key under 2048 bits bricks SoftEther's TLS "
				"(the server takes it, then every handshake fails, admin included)",
				cert_name);
	else if (key == CW_KEY_ED25519)
		d = cw_diag_add(diags, CW_SEV_ERROR, pos, "softether.key-type",
				"use rsa-2048 (every build) or ec-p256 (5.02.5181 and later)",
				"certificate '%s': SoftEther does not accept %s keys", cert_name,
				cw_key_type_name(key));
	if (d)
		d->certificate = cw_xstrdup(cert_name);
	if (nbind) {
		d = cw_diag_add(diags, CW_SEV_ERROR, pos, "softether.bind", "remove bind",
				"certificate '%s': a softether target has no services to bind ('%s'): "
				"its one certificate serves every protocol",
				cert_name, bind[0]);
		d->certificate = cw_xstrdup(cert_name);
	}
}

/* ---- private folders for the files vpncmd reads or writes ---- */

static char *private_dir_create(const se_target *t, cw_error *err)
{
	cw_error e = { 0 };
	if (cw_mkdirs(t->work_dir, 0700, &e) != 0) {
		cw_error_set(err, e.code, "target '%s': work folder: %s", t->name, e.msg);
		return NULL;
	}
	char *dir = cw_xasprintf("%s/softether-XXXXXX", t->work_dir);
	if (!mkdtemp(dir)) {   /* mkdtemp makes it 0700 */
		cw_error_set(err, CW_EIO, "target '%s': cannot create a private folder in %s: %s",
			     t->name, t->work_dir, strerror(errno));
		free(dir);
		return NULL;
	}
	return dir;
}

/* The folder holds only files we or vpncmd put there: remove them all, then it. */
static void private_dir_remove(const se_target *t, const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (unlinkat(dirfd(d), e->d_name, 0) != 0)
				unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
		}
		closedir(d);
	}
	if (rmdir(dir) != 0 && errno != ENOENT)
		cw_target_log(&t->env, t->name, CW_LOG_WARN, "cannot remove private folder %s: %s", dir, strerror(errno));
}

static int write_private_file(const se_target *t, const char *path, const void *data, size_t len,
			      cw_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return cw_error_set(err, CW_EIO, "target '%s': cannot create %s: %s", t->name, path,
				    strerror(errno));
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			return cw_error_set(err, CW_EIO, "target '%s': cannot write %s: %s", t->name,
					    path, strerror(e));
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) != 0)
		return cw_error_set(err, CW_EIO, "target '%s': cannot write %s: %s", t->name, path,
				    strerror(errno));
	return 0;
}

/* ---- running vpncmd ---- */

/* Copies the first non-blank line at or after from into detail. */
static void first_text_line(const char *from, char *detail, size_t len)
{
	for (const char *line = from; *line;) {
		line += strspn(line, "\r\n \t");
		size_t n = strcspn(line, "\r\n");
		while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;
		if (n) {
			snprintf(detail, len, "%.*s", (int)(n < len ? n : len - 1), line);
			return;
		}
		line += strcspn(line, "\n");
	}
}

static const char *after_line_of(const char *p)
{
	return p + strcspn(p, "\n");
}

/* vpncmd's own words for a failure (a missing file names the file): the line after
 * "Error occurred (code)", else the line after the echo of the command ("ServerCertSet
 * command - ...", the last such line: the banner has one too). Withheld entirely if it
 * somehow contains the password. */
static void failure_detail(const se_target *t, const char *out, char *detail, size_t len)
{
	detail[0] = '\0';
	const char *from = strstr(out, "Error occurred");
	if (from) {
		from = after_line_of(from);
	} else {
		from = out;
		for (const char *p = strstr(out, " command - "); p; p = strstr(p + 1, " command - "))
			from = after_line_of(p);
	}
	first_text_line(from, detail, len);
	if (t->password.len && strstr(detail, t->password.buf))
		snprintf(detail, len, "(output withheld: it contained the password)");
}

/* vpncmd exits with the SoftEther error code of the command: make it a sentence. */
static int vpncmd_failed(const se_target *t, const char *cmd, int status, const char *out,
			 cw_error *err)
{
	char detail[SE_DETAIL_MAX];
	failure_detail(t, out, detail, sizeof(detail));
	char why[SE_DETAIL_MAX + 96];
	snprintf(why, sizeof(why), "(%s, vpncmd error %d%s%s)", cmd, status, *detail ? ": " : "",
		 detail);
	const char *n = t->name, *a = t->address;
	switch (status) {
	case 1:
		return cw_error_set(err, CW_ETARGET,
				    "target '%s': cannot connect to softether server %s: is vpnserver "
				    "running and listening there? %s", n, a, why);
	case 4:
		return cw_error_set(err, CW_ETARGET,
				    "target '%s': protocol error talking to softether server %s: is it a "
				    "softether listener? %s", n, a, why);
	case 12:
		return cw_error_set(err, CW_ETARGET,
				    "target '%s': wrong admin password for softether server %s (password %s) %s",
				    n, a, t->password_ref, why);
	case 23:
		return cw_error_set(err, CW_ETARGET,
				    "target '%s': softether server %s rejected the certificate or key: a file "
				    "could not be read or the key does not match the certificate %s", n, a, why);
	case 38:
		return cw_error_set(err, CW_ETARGET,
				    "target '%s': softether server %s: invalid parameter for %s %s", n, a,
				    cmd, why);
	case 52:
		return cw_error_set(err, CW_ETARGET,
				    "target '%s': not enough rights on softether server %s: the password must "
				    "be the server administrator's, not a hub's %s", n, a, why);
	case 77:
		return cw_error_set(err, CW_ETARGET,
				    "target '%s': softether server %s refused the key type: this server "
				    "accepts RSA keys only %s", n, a, why);
	case 117:
		return cw_error_set(err, CW_ETARGET,
				    "target '%s': vpncmd or softether server %s does not know the command %s %s",
				    n, a, cmd, why);
	default:
		return cw_error_set(err, CW_ETARGET, "target '%s': softether server %s: %s failed %s",
				    n, a, cmd, why);
	}
}

/* Runs "vpncmd ADDRESS /SERVER /PASSWORD:.. /PROGRAMMING [/CSV] /CMD cmd args..." in
 * cwd. Returns 0 only when it ran and exited 0; res holds the output either way. */
static int vpncmd_run(const se_target *t, int csv, const char *cwd, const char *cmd,
		      const char *const *args, cw_exec_result *res, cw_error *err)
{
	char *password_arg = cw_xasprintf("/PASSWORD:%s", t->password.buf ? t->password.buf : "");
	const char *argv[16];
	size_t n = 0;
	argv[n++] = t->vpncmd;
	argv[n++] = t->address;
	argv[n++] = "/SERVER";
	argv[n++] = password_arg;
	argv[n++] = "/PROGRAMMING";   /* never a prompt: a wrong password would spin forever */
	if (csv)
		argv[n++] = "/CSV";
	argv[n++] = "/CMD";           /* must come last: the rest is the command line */
	argv[n++] = cmd;
	for (size_t i = 0; args && args[i] && n < sizeof(argv) / sizeof(argv[0]) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	cw_exec_opts opts = { .argv = argv, .cwd = cwd, .timeout_ms = t->timeout_ms,
			      .cap = SE_OUTPUT_CAP };
	cw_error xerr = { 0 };
	int rc = cw_exec(&opts, res, &xerr);
	cw_memzero(password_arg, strlen(password_arg));
	free(password_arg);
	cw_target_log(&t->env, t->name, CW_LOG_DEBUG, "vpncmd %s on %s: %.2f s, exit %d", cmd, t->address, res->seconds,
	       res->exited ? res->status : -1);
	if (rc != 0 && res->timed_out) {
		char limit[32];
		format_timeout(t->timeout_ms, limit);
		return cw_error_set(err, CW_ETIMEOUT,
				    "target '%s': softether server %s: vpncmd %s did not finish within %s "
				    "and was stopped", t->name, t->address, cmd, limit);
	}
	if (rc != 0)
		return cw_error_set(err, xerr.code, "target '%s': cannot run vpncmd: %s", t->name,
				    xerr.msg);
	if (!res->exited)
		return cw_error_set(err, CW_ETARGET, "target '%s': vpncmd %s was killed by signal %d",
				    t->name, cmd, res->signaled);
	if (res->status != 0)
		return vpncmd_failed(t, cmd, res->status, res->out.buf, err);
	return 0;
}

/* ---- observe_device ---- */

/* "Version 5.01 Build 9674   (English)" in ServerInfoGet's CSV output. */
static int parse_build(const char *out, se_build *b)
{
	for (const char *p = strcasestr(out, "version "); p; p = strcasestr(p + 1, "version ")) {
		int major, minor, build;
		if (sscanf(p + 8, "%d.%d Build %d", &major, &minor, &build) == 3 && major > 0 &&
		    minor >= 0 && build > 0) {
			*b = (se_build){ 1, major, minor, build };
			return 0;
		}
	}
	return -1;
}

/* 5.02.5181 is the first build that takes ECDSA keys and serves a PEM bundle's chain. */
static int build_is_modern(const se_build *b)
{
	if (!b->known)
		return 0;
	if (b->major != 5)
		return b->major > 5;
	if (b->minor != 2)
		return b->minor > 2;
	return b->build >= 5181;
}

static int learn_build(se_target *t, cw_error *err)
{
	if (t->build.known)
		return 0;
	cw_exec_result res;
	int rc = vpncmd_run(t, 1, NULL, "ServerInfoGet", NULL, &res, err);
	if (rc == 0 && parse_build(res.out.buf, &t->build) != 0)
		cw_target_log(&t->env, t->name, CW_LOG_WARN, "no version in ServerInfoGet's output: assuming RSA keys only "
		       "and a leaf-only server");
	cw_exec_result_release(&res);
	return rc;
}

static int softether_observe_device(void *h, cw_device_facts *facts, cw_error *err)
{
	se_target *t = h;
	memset(facts, 0, sizeof(*facts));
	if (learn_build(t, err) != 0)
		return -1;
	const se_build *b = &t->build;
	if (b->known)
		facts->version = cw_xasprintf("%d.%02d.%d", b->major, b->minor, b->build);
	/* RSA-1024 is left out on purpose: the server takes it and then fails every handshake. */
	facts->accepted_keys = (1u << CW_KEY_RSA2048) | (1u << CW_KEY_RSA3072) | (1u << CW_KEY_RSA4096);
	if (build_is_modern(b)) {
		facts->accepted_keys |= (1u << CW_KEY_EC_P256) | (1u << CW_KEY_EC_P384);
		facts->chain_mode = 2;
	} else {
		facts->chain_mode = 1;
		facts->note = cw_xstrdup(t->chain_certs
			? "serves the leaf only; intermediates go to chain_certs"
			: "serves the leaf only; set chain_certs (local server) to serve intermediates");
	}
	if (!b->known) {   /* deploy still plays safe: leaf only, and the server refuses ECDSA */
		facts->chain_mode = 0;
		free(facts->note);
		facts->note = cw_xstrdup("version not recognised: assuming RSA keys only, leaf only");
	}
	return 0;
}

/* ---- observe ---- */

static int pem_to_der(const se_target *t, const cw_buf *pem, const char *what, cw_blob *der,
		      cw_error *err)
{
	BIO *bio = BIO_new_mem_buf(pem->buf, (int)pem->len);
	unsigned char *data = NULL;
	long len = 0;
	char *name = NULL;
	int ok = bio && PEM_bytes_read_bio(&data, &len, &name, PEM_STRING_X509, bio, NULL, NULL) == 1;
	BIO_free(bio);
	OPENSSL_free(name);
	ERR_clear_error();
	if (!ok || len <= 0) {
		OPENSSL_free(data);
		return cw_error_set(err, CW_ETARGET, "target '%s': %s holds no PEM certificate",
				    t->name, what);
	}
	blob_take_openssl(der, data, len);
	return 0;
}

/* ServerCertGet into a private folder; exit 0 does not mean the file was written. */
static int fetch_server_cert(const se_target *t, cw_blob *der, cw_error *err)
{
	char *dir = private_dir_create(t, err);
	if (!dir)
		return -1;
	const char *args[] = { SE_GET_FILE, NULL };
	cw_exec_result res;
	int rc = vpncmd_run(t, 1, dir, "ServerCertGet", args, &res, err);
	cw_exec_result_release(&res);
	if (rc == 0) {
		char *path = cw_path_join(dir, SE_GET_FILE);
		cw_buf pem = CW_BUF_INIT;
		cw_error rerr = { 0 };
		if (!cw_path_exists(path))
			rc = cw_error_set(err, CW_ETARGET,
					  "target '%s': softether server %s: ServerCertGet reported success "
					  "but wrote no file", t->name, t->address);
		else if (cw_read_file(path, SE_CERT_FILE_CAP, &pem, &rerr) != 0)
			rc = cw_error_set(err, rerr.code, "target '%s': %s", t->name, rerr.msg);
		else
			rc = pem_to_der(t, &pem, "the file ServerCertGet wrote", der, err);
		cw_buf_release(&pem);
		free(path);
	}
	private_dir_remove(t, dir);
	free(dir);
	return rc;
}

static int softether_observe(void *h, const char *slot, cw_observation *obs, cw_error *err)
{
	se_target *t = h;
	memset(obs, 0, sizeof(*obs));
	if (fetch_server_cert(t, &obs->cert, err) != 0)
		return -1;
	/* The server always has a certificate, and ServerCertSet refuses one without its key. */
	obs->present = 1;
	obs->key_present = 1;
	return 0;
}

/* ---- deploy ---- */

static int refuse_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

/* The key is the one thing we look into: an encrypted key makes vpncmd prompt and hang,
 * and RSA under 2048 bits leaves the server unreachable until its config is edited. */
static int check_key(const se_target *t, const cw_bundle *b, cw_error *err)
{
	if (!b->key_pem || !b->key_pem_len)
		return cw_error_set(err, CW_EINVAL, "target '%s': no private key for '%s'", t->name,
				    b->slot);
	if (memmem(b->key_pem, b->key_pem_len, "ENCRYPTED", 9))
		return cw_error_set(err, CW_EINVAL,
				    "target '%s': the key for '%s' is encrypted; vpncmd needs it unencrypted",
				    t->name, b->slot);
	BIO *bio = BIO_new_mem_buf(b->key_pem, (int)b->key_pem_len);
	EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, refuse_passphrase, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	if (!key)
		return cw_error_set(err, CW_EINVAL, "target '%s': the key for '%s' is not a PEM private key",
				    t->name, b->slot);
	int rsa_bits = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? EVP_PKEY_get_bits(key) : 0;
	EVP_PKEY_free(key);
	if (rsa_bits && rsa_bits < SE_MIN_RSA_BITS)
		return cw_error_set(err, CW_EINVAL,
				    "target '%s': refusing '%s': an RSA key under 2048 bits (%d) bricks "
				    "SoftEther's TLS (softether.rsa-min-2048)", t->name, b->slot, rsa_bits);
	return 0;
}

static int pem_append(cw_buf *out, const cw_blob *der)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int ok = bio && PEM_write_bio(bio, PEM_STRING_X509, "", der->data, (long)der->len) > 0;
	if (ok) {
		char *p;
		long n = BIO_get_mem_data(bio, &p);
		cw_buf_add(out, p, (size_t)n);
	}
	BIO_free(bio);
	return ok ? 0 : -1;
}

/* Leaf only for builds that keep only the first certificate; leaf and intermediates for
 * builds that split a bundle. */
static int cert_file_content(const se_target *t, const cw_bundle *b, int with_chain, cw_buf *out,
			     cw_error *err)
{
	if (pem_append(out, &b->cert) != 0)
		return cw_error_openssl(err, "target '%s': cannot PEM-encode '%s'", t->name, b->slot);
	for (size_t i = 0; with_chain && i < b->nchain; i++)
		if (pem_append(out, &b->chain[i]) != 0)
			return cw_error_openssl(err, "target '%s': cannot PEM-encode the chain of '%s'",
						t->name, b->slot);
	return 0;
}

static int set_server_cert(const se_target *t, const cw_bundle *b, const cw_buf *cert_pem,
			   cw_error *err)
{
	char *dir = private_dir_create(t, err);
	if (!dir)
		return -1;
	char *cert_path = cw_path_join(dir, SE_SET_CERT_FILE);
	char *key_path = cw_path_join(dir, SE_SET_KEY_FILE);
	int rc = write_private_file(t, key_path, b->key_pem, b->key_pem_len, err);
	if (rc == 0)
		rc = write_private_file(t, cert_path, cert_pem->buf, cert_pem->len, err);
	if (rc == 0) {
		char *load_cert = cw_xasprintf("/LOADCERT:%s", cert_path);
		char *load_key = cw_xasprintf("/LOADKEY:%s", key_path);
		const char *args[] = { load_cert, load_key, NULL };
		cw_exec_result res;
		/* Without /CSV: the "sub-certificate ... chain_certs" notice shows, exit 0 still. */
		rc = vpncmd_run(t, 0, dir, "ServerCertSet", args, &res, err);
		int chain_served = t->chain_certs || build_is_modern(&t->build);
		if (rc == 0 && strstr(res.out.buf, "sub-certificate"))
			cw_target_log(&t->env, t->name, chain_served ? CW_LOG_DEBUG : CW_LOG_INFO,
			       "server notes that '%s' is CA-signed: clients need its intermediates%s",
			       b->slot, chain_served ? "" : " (set chain_certs to serve them)");
		cw_exec_result_release(&res);
		free(load_cert);
		free(load_key);
	}
	private_dir_remove(t, dir);
	free(cert_path);
	free(key_path);
	free(dir);
	return rc;
}

/* Our own intermediates in chain_certs, named by position, so the next rotation
 * replaces them and a shorter chain drops the rest. Files of others are left alone. */
static void remove_stale_chain_files(const se_target *t, size_t keep)
{
	DIR *d = opendir(t->chain_certs);
	if (!d)
		return;
	struct dirent *e;
	size_t plen = strlen(SE_CHAIN_PREFIX);
	while ((e = readdir(d))) {
		const char *nm = e->d_name;
		if (strncmp(nm, SE_CHAIN_PREFIX, plen))
			continue;
		char *end = NULL;
		unsigned long idx = strtoul(nm + plen, &end, 10);
		if (end == nm + plen || strcmp(end, SE_CHAIN_SUFFIX) || idx < keep)
			continue;
		if (unlinkat(dirfd(d), nm, 0) != 0)
			cw_target_log(&t->env, t->name, CW_LOG_WARN, "cannot remove stale %s/%s: %s", t->chain_certs, nm,
			       strerror(errno));
	}
	closedir(d);
}

static int write_chain_certs(const se_target *t, const cw_bundle *b, cw_error *err)
{
	struct stat st;
	if (stat(t->chain_certs, &st) != 0 || !S_ISDIR(st.st_mode))
		return cw_error_set(err, CW_EIO,
				    "target '%s': chain_certs folder %s does not exist (vpnserver creates it "
				    "beside its config at start: is this the server's folder?)",
				    t->name, t->chain_certs);
	for (size_t i = 0; i < b->nchain; i++) {
		cw_buf pem = CW_BUF_INIT;
		char *file = cw_xasprintf("%s/%s%zu%s", t->chain_certs, SE_CHAIN_PREFIX, i,
					  SE_CHAIN_SUFFIX);
		cw_error e = { 0 };
		int rc = 0;
		if (pem_append(&pem, &b->chain[i]) != 0)
			rc = cw_error_openssl(err, "target '%s': cannot PEM-encode the chain of '%s'",
					      t->name, b->slot);
		else if (cw_write_file_atomic(file, pem.buf, pem.len, 0644, &e) != 0)
			rc = cw_error_set(err, e.code, "target '%s': chain_certs: %s", t->name, e.msg);
		free(file);
		cw_buf_release(&pem);
		if (rc != 0)
			return -1;
	}
	remove_stale_chain_files(t, b->nchain);
	return 0;
}

static int softether_deploy(void *h, const cw_bundle *b, cw_error *err)
{
	se_target *t = h;
	if (!b->cert.data || !b->cert.len)
		return cw_error_set(err, CW_EINVAL, "target '%s': no certificate to deploy for '%s'",
				    t->name, b->slot);
	if (check_key(t, b, err) != 0 || learn_build(t, err) != 0)
		return -1;
	int modern = build_is_modern(&t->build);
	cw_buf cert_pem = CW_BUF_INIT;
	int rc = cert_file_content(t, b, modern, &cert_pem, err);
	if (rc == 0)
		rc = set_server_cert(t, b, &cert_pem, err);
	cw_buf_release(&cert_pem);
	if (rc != 0)
		return -1;
	cw_target_log(&t->env, t->name, CW_LOG_INFO, "installed '%s' (sha256 %s) on %s", b->slot,
	       b->fingerprint ? b->fingerprint : "?", t->address);
	if (modern || !b->nchain)
		return 0;
	if (t->chain_certs)
		return write_chain_certs(t, b, err);
	cw_target_log(&t->env, t->name, CW_LOG_WARN, "'%s' has %zu intermediate(s) this server cannot serve: set chain_certs",
	       b->slot, b->nchain);
	return 0;
}

/* ---- verify: what a TLS client sees ---- */

/* getaddrinfo() has no timeout of its own: a host name is resolved on a detached thread
 * that we stop waiting for at the deadline. The job is freed by whoever leaves last. */
typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs, done, rc;
	char *host, *port;
	struct addrinfo *res;
} resolve_job;

static void resolve_job_unref(resolve_job *j)
{
	pthread_mutex_lock(&j->mu);
	int left = --j->refs;
	pthread_mutex_unlock(&j->mu);
	if (left)
		return;
	if (j->res)
		freeaddrinfo(j->res);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j->host);
	free(j->port);
	free(j);
}

static void *resolve_thread(void *arg)
{
	resolve_job *j = arg;
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	int rc = getaddrinfo(j->host, j->port, &hints, &res);
	pthread_mutex_lock(&j->mu);
	j->rc = rc;
	j->res = res;
	j->done = 1;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	resolve_job_unref(j);
	return NULL;
}

static resolve_job *resolve_job_new(const se_target *t)
{
	resolve_job *j = cw_xcalloc(1, sizeof(*j));
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&j->mu, NULL);
	j->refs = 2;
	j->host = cw_xstrdup(t->host);
	j->port = cw_xstrdup(t->port);
	return j;
}

static int resolve(const se_target *t, int64_t deadline, struct addrinfo **out, cw_error *err)
{
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	*out = NULL;
	if (getaddrinfo(t->host, t->port, &hints, out) == 0)
		return 0;
	resolve_job *j = resolve_job_new(t);
	pthread_t th;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int started = pthread_create(&th, &attr, resolve_thread, j) == 0;
	pthread_attr_destroy(&attr);
	if (!started) {
		j->refs = 1;
		resolve_job_unref(j);
		return cw_error_set(err, CW_EINTERNAL, "target '%s': cannot start a resolver thread",
				    t->name);
	}
	struct timespec until = { (time_t)(deadline / 1000), (long)(deadline % 1000) * 1000000 };
	pthread_mutex_lock(&j->mu);
	while (!j->done && pthread_cond_timedwait(&j->cv, &j->mu, &until) == 0)
		;
	int done = j->done, rc = j->rc;
	if (done) {
		*out = j->res;
		j->res = NULL;
	}
	pthread_mutex_unlock(&j->mu);
	resolve_job_unref(j);
	if (!done) {
		char limit[32];
		format_timeout(t->timeout_ms, limit);
		return cw_error_set(err, CW_ETIMEOUT, "target '%s': cannot resolve %s within %s",
				    t->name, t->host, limit);
	}
	if (rc != 0)
		return cw_error_set(err, CW_ETARGET, "target '%s': cannot resolve %s: %s", t->name,
				    t->host, gai_strerror(rc));
	return 0;
}

static int tls_timeout(const se_target *t, const char *stage, cw_error *err)
{
	char limit[32];
	format_timeout(t->timeout_ms, limit);
	return cw_error_set(err, CW_ETIMEOUT, "target '%s': no TLS handshake with %s within %s (%s)",
			    t->name, t->address, limit, stage);
}

/* Waits for events on fd until the deadline: 1 ready, 0 timed out. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 1;   /* let the next socket call report the error */
	}
}

static int connect_one(const struct addrinfo *ai, int64_t deadline, int *fd_out, int *timed_out)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return errno;
	int e = 0;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		e = errno;
		if (e == EINPROGRESS) {
			socklen_t len = sizeof(e);
			if (!wait_fd(fd, POLLOUT, deadline)) {
				*timed_out = 1;
				e = ETIMEDOUT;
			} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0) {
				e = errno;
			}
		}
	}
	if (e) {
		close(fd);
		return e;
	}
	*fd_out = fd;
	return 0;
}

static int tls_connect_tcp(const se_target *t, int64_t deadline, int *fd, cw_error *err)
{
	struct addrinfo *list = NULL;
	if (resolve(t, deadline, &list, err) != 0)
		return -1;
	int e = ECONNREFUSED, timed_out = 0;
	*fd = -1;
	for (const struct addrinfo *ai = list; ai && *fd < 0 && !timed_out; ai = ai->ai_next)
		e = connect_one(ai, deadline, fd, &timed_out);
	freeaddrinfo(list);
	if (*fd >= 0)
		return 0;
	if (timed_out)
		return tls_timeout(t, "tcp connect", err);
	return cw_error_set(err, CW_ETARGET, "target '%s': cannot connect to %s for a TLS handshake: %s",
			    t->name, t->address, strerror(e));
}

static int tls_handshake(const se_target *t, SSL *ssl, int fd, int64_t deadline, cw_error *err)
{
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(ssl);
		if (r == 1)
			return 0;
		int e = SSL_get_error(ssl, r);
		short events = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
		if (!events) {
			unsigned long code = ERR_peek_error();
			char detail[256] = "connection closed";
			if (code)
				ERR_error_string_n(code, detail, sizeof(detail));
			else if (e == SSL_ERROR_SYSCALL && errno)
				snprintf(detail, sizeof(detail), "%s", strerror(errno));
			ERR_clear_error();
			return cw_error_set(err, CW_ETARGET, "target '%s': TLS handshake with %s failed: %s",
					    t->name, t->address, detail);
		}
		if (!wait_fd(fd, events, deadline))
			return tls_timeout(t, "handshake", err);
	}
}

static void x509_to_blob(X509 *x, cw_blob *b)
{
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);
	if (len <= 0) {
		b->data = NULL;
		b->len = 0;
		return;
	}
	blob_take_openssl(b, der, len);
}

/* The peer's chain as sent: leaf first. */
static int take_peer_chain(const se_target *t, SSL *ssl, cw_observation *obs, cw_error *err)
{
	STACK_OF(X509) *sk = SSL_get_peer_cert_chain(ssl);
	int n = sk ? sk_X509_num(sk) : 0;
	if (n <= 0)
		return cw_error_set(err, CW_ETARGET, "target '%s': %s sent no certificate", t->name,
				    t->address);
	x509_to_blob(sk_X509_value(sk, 0), &obs->cert);
	if (n > 1) {
		obs->chain = cw_xcalloc((size_t)n - 1, sizeof(*obs->chain));
		for (int i = 1; i < n; i++)
			x509_to_blob(sk_X509_value(sk, i), &obs->chain[obs->nchain++]);
	}
	if (!obs->cert.len)
		return cw_error_set(err, CW_ETARGET, "target '%s': cannot encode %s's certificate",
				    t->name, t->address);
	return 0;
}

/* OpenSSL writes to the socket with write(): a peer that hangs up mid-handshake would
 * raise SIGPIPE, which kills the process by default. A library must not change the
 * process's signal dispositions, so SIGPIPE is blocked in this thread only while we talk
 * TLS, and one we caused is consumed before the old mask comes back. */
typedef struct {
	sigset_t old_mask;
	int was_pending;
} sigpipe_guard;

static void sigpipe_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGPIPE);
}

static void sigpipe_block(sigpipe_guard *g)
{
	sigset_t pipe_set, pending;
	sigpipe_set(&pipe_set);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old_mask);
}

static void sigpipe_restore(const sigpipe_guard *g)
{
	sigset_t pipe_set, pending;
	sigpipe_set(&pipe_set);
	sigpending(&pending);
	if (!g->was_pending && sigismember(&pending, SIGPIPE)) {
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &g->old_mask, NULL);
}

/* One fresh handshake, no chain validation (we only compare fingerprints; reconcile/x509
 * judges the certificate). Security level 0 so a weak certificate is still SEEN: we send
 * nothing over this connection. */
static int tls_probe(const se_target *t, cw_observation *obs, cw_error *err)
{
	int64_t deadline = mono_ms() + t->timeout_ms;
	int fd = -1;
	if (tls_connect_tcp(t, deadline, &fd, err) != 0)
		return -1;
	sigpipe_guard guard;
	sigpipe_block(&guard);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	int rc;
	if (!ssl) {
		rc = cw_error_openssl(err, "target '%s': cannot set up TLS", t->name);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		SSL_set_security_level(ssl, 0);
		SSL_set_fd(ssl, fd);
		if (t->sni)
			SSL_set_tlsext_host_name(ssl, t->sni);
		rc = tls_handshake(t, ssl, fd, deadline, err);
		if (rc == 0)
			rc = take_peer_chain(t, ssl, obs, err);
		if (rc == 0)
			SSL_shutdown(ssl);   /* best effort, non-blocking */
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	close(fd);
	sigpipe_restore(&guard);
	return rc;
}

static int softether_verify(void *h, const char *slot, cw_observation *obs, cw_error *err)
{
	se_target *t = h;
	memset(obs, 0, sizeof(*obs));
	int64_t started = mono_ms();
	cw_blob admin = { NULL, 0 };
	int rc = tls_probe(t, obs, err);
	if (rc == 0)
		rc = fetch_server_cert(t, &admin, err);
	if (rc == 0 && (admin.len != obs->cert.len || memcmp(admin.data, obs->cert.data, admin.len))) {
		char tls_fp[65], admin_fp[65];
		cw_sha256_hex(obs->cert.data, obs->cert.len, tls_fp);
		cw_sha256_hex(admin.data, admin.len, admin_fp);
		rc = cw_error_set(err, CW_ETARGET,
				  "target '%s': the listener %s serves sha256 %s but ServerCertGet reports "
				  "sha256 %s", t->name, t->address, tls_fp, admin_fp);
	}
	free(admin.data);
	if (rc != 0) {
		cw_observation_release(obs);
		return -1;
	}
	obs->present = 1;
	obs->key_present = 1;
	cw_target_log(&t->env, t->name, CW_LOG_DEBUG, "verify on %s: %.2f s, %zu certificate(s) served", t->address,
	       (double)(mono_ms() - started) / 1000.0, obs->nchain + 1);
	return 0;
}

const cw_target_ops cw_softether_target = {
	.api_version = CW_TARGET_API_VERSION,
	.type = "softether",
	.caps = CW_TARGET_SINGLE_SLOT | CW_TARGET_TAKES_KEY,
	.schema = softether_fields,
	.check_deployment = softether_check_deployment,
	.open = softether_open,
	.observe_device = softether_observe_device,
	.observe = softether_observe,
	.deploy = softether_deploy,
	.bind = NULL,
	.activate = NULL,
	.verify = softether_verify,
	.remove = NULL,
	.close = softether_close,
};
