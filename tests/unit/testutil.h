/* testutil — helpers shared by the cmocka unit tests. */
#ifndef CW_TESTUTIL_H
#define CW_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* A fresh private temporary directory (0700) under $TMPDIR; caller frees the string. */
char *tu_tempdir(void);
/* rm -rf without a shell. */
void tu_rmtree(const char *path);
/* Runs argv, returns the exit status (or -1); output goes to *out if non-NULL (caller frees). */
int tu_run(const char *const *argv, char **out);
/* Writes a file with content; aborts the test on failure. */
void tu_write(const char *path, const char *content);

#endif
