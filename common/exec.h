/*
 * exec — running an external program (vpncmd, a reload command) safely: argv
 * only (never a shell), an environment of PATH, HOME, USER, LOGNAME, LANG, the LC_ variables, TZ, TMPDIR and TERM
 * only (certwright's own carries secrets), stdin from /dev/null unless input is given, stdout and
 * stderr captured up to a cap, and a hard timeout after which the whole process
 * group is killed. Safe to call from several threads.
 */
#ifndef CW_EXEC_H
#define CW_EXEC_H

#include "util.h"

typedef struct {
	int exited;          /* 1 when the program exited by itself */
	int status;          /* its exit status when exited */
	int signaled;        /* signal number when killed by a signal */
	int timed_out;       /* 1 when we killed it for running past the timeout */
	cw_buf out;          /* stdout, at most cap bytes */
	cw_buf errout;       /* stderr, at most cap bytes */
	int truncated;       /* output was cut at cap */
	double seconds;      /* wall time */
} cw_exec_result;

typedef struct {
	const char *const *argv;   /* argv[0] is the program: absolute, or looked up in PATH */
	const char *cwd;           /* NULL = inherit */
	const char *const *env_add;/* NULL-terminated "NAME=value" added to the environment */
	const char *input;         /* written to stdin, or NULL for /dev/null */
	size_t input_len;
	int timeout_ms;            /* > 0 */
	size_t cap;                /* per stream; 0 = 1 MiB */
} cw_exec_opts;

/* Returns 0 when the program ran (whatever its status: check res), -1 when it could not be
 * started, timed out (CW_ETIMEOUT) or was interrupted by a stop request from
 * common/cancel.h (CW_ETARGET, "PROGRAM: interrupted (signal N)"; its process group is
 * stopped like on a timeout). err names argv[0]. res is always initialised. */
int cw_exec(const cw_exec_opts *opts, cw_exec_result *res, cw_error *err);
void cw_exec_result_release(cw_exec_result *res);

#endif
