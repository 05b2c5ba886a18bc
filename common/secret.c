/* secret — resolving env:/file: references. See secret.h. */
#include "secret.h"

#include <stdlib.h>
#include <string.h>

int cw_secret_is_ref(const char *s)
{
	if (!s)
		return 0;
	if (!strncmp(s, "env:", 4))
		return s[4] != '\0';
	if (!strncmp(s, "file:", 5))
		return s[5] != '\0';
	return 0;
}

char *cw_expand_home(const char *path)
{
	if (path && path[0] == '~' && path[1] == '/') {
		const char *home = getenv("HOME");
		if (home && *home)
			return cw_xasprintf("%s%s", home, path + 1);
	}
	return cw_xstrdup(path);
}

int cw_secret_resolve(const char *ref, cw_buf *out, cw_error *err)
{
	if (!cw_secret_is_ref(ref))
		return cw_error_set(err, CW_EINVAL,
				    "secret reference must be env:NAME or file:PATH");
	if (!strncmp(ref, "env:", 4)) {
		const char *v = getenv(ref + 4);
		if (!v)
			return cw_error_set(err, CW_EINVAL, "secret %s: environment variable is not set",
					    ref);
		cw_buf_adds(out, v);
		return 0;
	}
	char *path = cw_expand_home(ref + 5);
	cw_buf tmp = CW_BUF_INIT;
	cw_error e = { 0 };
	int r = cw_read_file(path, 64 * 1024, &tmp, &e);
	free(path);
	if (r != 0) {
		cw_buf_release_secret(&tmp);
		return cw_error_set(err, CW_EINVAL, "secret %s: %s", ref, e.msg);
	}
	size_t len = tmp.len;
	if (len && tmp.buf[len - 1] == '\n')
		len--;
	if (len && tmp.buf[len - 1] == '\r')
		len--;
	cw_buf_add(out, tmp.buf, len);
	cw_buf_release_secret(&tmp);
	return 0;
}
