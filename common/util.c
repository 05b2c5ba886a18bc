/* util — see util.h. */
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cw_error_set(cw_error *err, cw_errcode code, const char *fmt, ...)
{
	if (!err || err->code != CW_OK)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->code = code == CW_OK ? CW_EINTERNAL : code;
	return -1;
}

int cw_error_openssl(cw_error *err, const char *fmt, ...)
{
	char head[CW_ERRMSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);

	unsigned long e = ERR_get_error();
	char detail[256] = "";
	if (e)
		ERR_error_string_n(e, detail, sizeof(detail));
	ERR_clear_error();
	if (*detail)
		return cw_error_set(err, CW_ECRYPTO, "%s: %s", head, detail);
	return cw_error_set(err, CW_ECRYPTO, "%s", head);
}

void cw_error_clear(cw_error *err)
{
	err->code = CW_OK;
	err->msg[0] = '\0';
}

static void out_of_memory(void)
{
	static const char msg[] = "certwright: out of memory\n";
	ssize_t ignored = write(2, msg, sizeof(msg) - 1);
	(void)ignored;
	abort();
}

void *cw_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		out_of_memory();
	return p;
}

void *cw_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		out_of_memory();
	return p;
}

void *cw_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		out_of_memory();
	return q;
}

char *cw_xstrdup(const char *s)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		out_of_memory();
	return d;
}

char *cw_xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	if (!d)
		out_of_memory();
	return d;
}

char *cw_xasprintf(const char *fmt, ...)
{
	cw_buf b = CW_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cw_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	return cw_buf_detach(&b);
}

/* ---- buffers ---- */

void cw_buf_init(cw_buf *b)
{
	b->buf = NULL;
	b->len = b->cap = 0;
}

static void buf_grow(cw_buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1)
		cap *= 2;
	b->buf = cw_xrealloc(b->buf, cap);
	b->cap = cap;
}

void cw_buf_add(cw_buf *b, const void *data, size_t len)
{
	buf_grow(b, len);
	if (len)
		memcpy(b->buf + b->len, data, len);
	b->len += len;
	b->buf[b->len] = '\0';
}

void cw_buf_adds(cw_buf *b, const char *s)
{
	cw_buf_add(b, s, strlen(s));
}

void cw_buf_vaddf(cw_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	buf_grow(b, (size_t)n);
	vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void cw_buf_addf(cw_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cw_buf_vaddf(b, fmt, ap);
	va_end(ap);
}

char *cw_buf_detach(cw_buf *b)
{
	char *s = b->buf ? b->buf : cw_xstrdup("");
	cw_buf_init(b);
	return s;
}

void cw_buf_release(cw_buf *b)
{
	free(b->buf);
	cw_buf_init(b);
}

void cw_memzero(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

void cw_buf_release_secret(cw_buf *b)
{
	cw_memzero(b->buf, b->cap);
	cw_buf_release(b);
}

/* ---- diagnostics ---- */

void cw_diags_init(cw_diags *d)
{
	d->items = NULL;
	d->n = d->cap = 0;
}

void cw_diags_release(cw_diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		cw_diag *x = &d->items[i];
		free(x->file);
		free(x->code);
		free(x->message);
		free(x->hint);
		free(x->certificate);
		free(x->target);
	}
	free(d->items);
	cw_diags_init(d);
}

cw_diag *cw_diag_add(cw_diags *d, cw_severity sev, const cw_srcpos *pos, const char *code,
		     const char *hint, const char *fmt, ...)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->items = cw_xrealloc(d->items, d->cap * sizeof(*d->items));
	}
	cw_diag *x = &d->items[d->n++];
	memset(x, 0, sizeof(*x));
	x->severity = sev;
	if (pos && pos->file) {
		x->file = cw_xstrdup(pos->file);
		x->line = pos->line;
		x->col = pos->col;
	}
	x->code = cw_xstrdup(code ? code : "error");
	x->hint = cw_xstrdup(hint);
	cw_buf b = CW_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cw_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	x->message = cw_buf_detach(&b);
	return x;
}

size_t cw_diags_count(const cw_diags *d, cw_severity sev)
{
	size_t n = 0;
	for (size_t i = 0; i < d->n; i++)
		if (d->items[i].severity == sev)
			n++;
	return n;
}

void cw_diag_format(const cw_diag *d, cw_buf *out)
{
	if (d->file) {
		cw_buf_adds(out, d->file);
		if (d->line > 0)
			cw_buf_addf(out, ":%d:%d", d->line, d->col > 0 ? d->col : 1);
		cw_buf_adds(out, ": ");
	}
	cw_buf_adds(out, d->severity == CW_SEV_ERROR ? "error: " : "warning: ");
	cw_buf_adds(out, d->message);
	if (d->code && !strstr(d->message, d->code)) /* policy messages name their rule */
		cw_buf_addf(out, " [%s]", d->code);
	if (d->hint)
		cw_buf_addf(out, " (%s)", d->hint);
}

static int diag_cmp(const cw_diag *a, const cw_diag *b)
{
	int c = strcmp(a->file ? a->file : "", b->file ? b->file : "");
	if (c)
		return c;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return 0;
}

void cw_diags_sort(cw_diags *d)
{
	/* insertion sort: stable, and diagnostics lists are short */
	for (size_t i = 1; i < d->n; i++) {
		cw_diag tmp = d->items[i];
		size_t j = i;
		while (j > 0 && diag_cmp(&d->items[j - 1], &tmp) > 0) {
			d->items[j] = d->items[j - 1];
			j--;
		}
		d->items[j] = tmp;
	}
}

/* ---- durations and times ---- */

static int64_t unit_seconds(char u)
{
	switch (u) {
	case 's': return 1;
	case 'm': return 60;
	case 'h': return 3600;
	case 'd': return 86400;
	case 'w': return 7 * 86400;
	default: return 0;
	}
}

int cw_parse_duration(const char *s, int64_t *seconds_out)
{
	if (!s || !*s)
		return -1;
	int64_t total = 0;
	const char *p = s;
	while (*p) {
		if (!isdigit((unsigned char)*p))
			return -1;
		int64_t v = 0;
		while (isdigit((unsigned char)*p)) {
			if (v > (INT64_MAX / 10) - 10)
				return -1;
			v = v * 10 + (*p - '0');
			p++;
		}
		int64_t unit = unit_seconds(*p);
		if (!unit)
			return -1;
		p++;
		if (v > INT64_MAX / unit / 2 || total > INT64_MAX / 2)
			return -1;
		total += v * unit;
	}
	if (total <= 0)
		return -1;
	*seconds_out = total;
	return 0;
}

void cw_format_duration(int64_t seconds, char out[32])
{
	static const struct { int64_t n; char u; } units[] = {
		{ 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };
	size_t len = 0;
	out[0] = '\0';
	if (seconds <= 0) {
		snprintf(out, 32, "0s");
		return;
	}
	for (size_t i = 0; i < 4 && seconds > 0; i++) {
		if (seconds >= units[i].n) {
			int64_t v = seconds / units[i].n;
			seconds -= v * units[i].n;
			len += (size_t)snprintf(out + len, 32 - len, "%lld%c", (long long)v, units[i].u);
		}
	}
}

void cw_format_time(time_t t, char out[32])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int cw_parse_time(const char *s, time_t now, time_t *out)
{
	if (!s || !*s)
		return -1;
	if (*s == '+' || *s == '-') {
		int64_t d;
		if (cw_parse_duration(s + 1, &d) != 0)
			return -1;
		*out = *s == '+' ? now + d : now - d;
		return 0;
	}
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
		if (!end || *end)
			return -1;
	} else if (*end == 'Z') {
		end++;
	}
	if (*end)
		return -1;
	*out = timegm(&tm);
	return 0;
}

/* ---- hashing ---- */

void cw_hex(const unsigned char *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 15];
	}
	out[2 * len] = '\0';
}

void cw_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	cw_hex(md, 32, out);
}

/* ---- files ---- */

int cw_read_file(const char *path, size_t cap, cw_buf *out, cw_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cw_error_set(err, CW_EIO, "%s: cannot open: %s", path, strerror(errno));
	char chunk[65536];
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			return cw_error_set(err, CW_EIO, "%s: cannot read: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		if (cap && out->len + (size_t)r > cap) {
			close(fd);
			return cw_error_set(err, CW_EIO, "%s: larger than %zu bytes", path, cap);
		}
		cw_buf_add(out, chunk, (size_t)r);
	}
	close(fd);
	if (!out->buf)
		cw_buf_add(out, "", 0);
	return 0;
}

int cw_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	close(fd);
	return r;
}

static int fsync_dir_of(const char *path)
{
	char *dir = cw_xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	int r = cw_fsync_dir(dir);
	free(dir);
	return r;
}

void cw_remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char *child = cw_path_join(path, e->d_name);
			cw_remove_tree(child);
			free(child);
		}
		closedir(d);
	}
	rmdir(path);
}

static int write_atomic(const char *path, const void *data, size_t len, mode_t mode, int sync,
			cw_error *err)
{
	char *tmp = cw_xasprintf("%s.tmp.XXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		free(tmp);
		return cw_error_set(err, CW_EIO, "%s: cannot create: %s", path, strerror(e));
	}
	/* fchmod before any byte lands, so a key is never readable by others, whatever the umask */
	const char *p = data;
	size_t left = len;
	int e = 0;
	if (fchmod(fd, mode) != 0)
		e = errno;
	while (!e && left) {
		ssize_t w = write(fd, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			e = errno;
			break;
		}
		p += w;
		left -= (size_t)w;
	}
	if (!e && sync && fsync(fd) != 0)
		e = errno;
	if (close(fd) != 0 && !e)
		e = errno;
	if (!e && rename(tmp, path) != 0)
		e = errno;
	if (e) {
		unlink(tmp);
		free(tmp);
		return cw_error_set(err, CW_EIO, "%s: cannot write: %s", path, strerror(e));
	}
	free(tmp);
	if (sync && fsync_dir_of(path) != 0)
		return cw_error_set(err, CW_EIO, "%s: cannot sync folder: %s", path, strerror(errno));
	return 0;
}

int cw_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, cw_error *err)
{
	return write_atomic(path, data, len, mode, 1, err);
}

int cw_write_file_atomic_nosync(const char *path, const void *data, size_t len, mode_t mode,
				cw_error *err)
{
	return write_atomic(path, data, len, mode, 0, err);
}

int cw_mkdirs(const char *path, mode_t mode, cw_error *err)
{
	char *p = cw_xstrdup(path);
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, mode) != 0 && errno != EEXIST) {
				int e = errno;
				cw_error_set(err, CW_EIO, "%s: cannot create folder: %s", p, strerror(e));
				free(p);
				return -1;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	struct stat st;
	int ok = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
	if (!ok)
		cw_error_set(err, CW_EIO, "%s: not a folder", p);
	free(p);
	return ok ? 0 : -1;
}

int cw_path_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

char *cw_path_join(const char *a, const char *b)
{
	if (!a || !*a)
		return cw_xstrdup(b);
	if (*b == '/')
		return cw_xstrdup(b);
	size_t la = strlen(a);
	while (la > 1 && a[la - 1] == '/')
		la--;
	return cw_xasprintf("%.*s/%s", (int)la, a, b);
}

char *cw_git_worktree_of(const char *path)
{
	char resolved[PATH_MAX];
	char *cur;
	if (realpath(path, resolved))
		cur = cw_xstrdup(resolved);
	else
		cur = cw_xstrdup(path); /* may not exist yet: walk up what does */
	for (;;) {
		char *dotgit = cw_path_join(cur, ".git");
		int found = cw_path_exists(dotgit);
		free(dotgit);
		if (found)
			return cur;
		char *slash = strrchr(cur, '/');
		if (!slash || slash == cur) {
			if (slash == cur && cur[1]) {
				cur[1] = '\0';
				continue;
			}
			free(cur);
			return NULL;
		}
		*slash = '\0';
	}
}

/* ---- suggestions ---- */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 99;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j];
			size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
			size_t best = prev + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

const char *cw_did_you_mean(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	size_t best_d = 3;
	for (size_t i = 0; i < n && candidates[i]; i++) {
		size_t d = edit_distance(word, candidates[i]);
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	return best;
}
