/*
 * secret — resolving secret references. The inventory holds only references:
 * "env:NAME" (an environment variable) or "file:PATH" (a file's content, one
 * trailing newline removed; "~/" expands to $HOME). A resolved value lives in a
 * cw_buf that the caller wipes with cw_buf_release_secret(). Messages name the
 * reference, never the value.
 */
#ifndef CW_SECRET_H
#define CW_SECRET_H

#include "util.h"

/* 1 when s has the form of a reference (env:X / file:X), else 0. */
int cw_secret_is_ref(const char *s);
int cw_secret_resolve(const char *ref, cw_buf *out, cw_error *err);
/* "~/x" -> "$HOME/x"; other paths copied. Caller frees. */
char *cw_expand_home(const char *path);

#endif
