/* test_exec — cw_exec: status, capture, caps, timeouts, process groups, stdin, fd hygiene,
 * stop requests (cancel.h). */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cancel.h"
#include "common/exec.h"

static cw_exec_opts opts_for(const char *const *argv, int timeout_ms)
{
	cw_exec_opts o;
	memset(&o, 0, sizeof(o));
	o.argv = argv;
	o.timeout_ms = timeout_ms;
	return o;
}

static double monotonic_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 1 when pid has died: gone, or a zombie waiting for init (which may be slow to reap). */
static int process_dead(pid_t pid)
{
	char path[64], stat[512] = "";
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT;
	size_t n = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[n] = '\0';
	const char *paren = strrchr(stat, ')');   /* "pid (comm) S ..." */
	return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

/* Waits up to a second for pid to die. */
static int process_gone(pid_t pid)
{
	for (int i = 0; i < 100; i++) {
		if (process_dead(pid))
			return 1;
		usleep(10000);
	}
	return 0;
}

static void test_exit_status(void **state)
{
	const char *argv[] = { "sh", "-c", "exit 3", NULL };
	cw_exec_opts o = opts_for(argv, 5000);
	cw_exec_result res;
	cw_error err = { 0 };
	assert_int_equal(cw_exec(&o, &res, &err), 0);
	assert_int_equal(err.code, CW_OK);
	assert_int_equal(res.exited, 1);
	assert_int_equal(res.status, 3);
	assert_int_equal(res.signaled, 0);
	assert_int_equal(res.timed_out, 0);
	assert_string_equal(res.out.buf, "");
	cw_exec_result_release(&res);
}

static void test_capture_stdout_and_stderr(void **state)
{
	const char *argv[] = { "sh", "-c", "echo to-out; echo to-err >&2; echo more-out", NULL };
	cw_exec_opts o = opts_for(argv, 5000);
	cw_exec_result res;
	cw_error err = { 0 };
	assert_int_equal(cw_exec(&o, &res, &err), 0);
	assert_string_equal(res.out.buf, "to-out\nmore-out\n");
	assert_string_equal(res.errout.buf, "to-err\n");
	assert_int_equal(res.truncated, 0);
	assert_int_equal(res.status, 0);
	cw_exec_result_release(&res);
}

/* Past the cap the output is dropped, but still read: the writer must not block or die
 * of SIGPIPE, so head exits 0 after writing all 300000 bytes. */
static void test_cap_truncates_and_keeps_draining(void **state)
{
	const char *argv[] = { "head", "-c", "300000", "/dev/zero", NULL };
	cw_exec_opts o = opts_for(argv, 10000);
	o.cap = 1000;
	cw_exec_result res;
	cw_error err = { 0 };
	assert_int_equal(cw_exec(&o, &res, &err), 0);
	assert_int_equal(res.out.len, 1000);
	assert_int_equal(res.truncated, 1);
	assert_int_equal(res.exited, 1);
	assert_int_equal(res.status, 0);
	cw_exec_result_release(&res);
}

static void test_timeout_kills_sleep(void **state)
{
	const char *argv[] = { "sleep", "30", NULL };
	cw_exec_opts o = opts_for(argv, 300);
	cw_exec_result res;
	cw_error err = { 0 };
	double t0 = monotonic_seconds();
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	double took = monotonic_seconds() - t0;
	assert_int_equal(err.code, CW_ETIMEOUT);
	assert_string_equal(err.msg, "sleep: timed out after 300 ms");
	assert_int_equal(res.timed_out, 1);
	assert_int_equal(res.exited, 0);
	assert_int_equal(res.signaled, SIGTERM);
	assert_true(took >= 0.29);
	assert_true(took < 0.3 + 1.5);
	cw_exec_result_release(&res);
}

/* A program that writes without pause still meets its deadline. */
static void test_timeout_with_endless_output(void **state)
{
	const char *argv[] = { "yes", NULL };
	cw_exec_opts o = opts_for(argv, 300);
	o.cap = 1000;
	cw_exec_result res;
	cw_error err = { 0 };
	double t0 = monotonic_seconds();
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	assert_true(monotonic_seconds() - t0 < 0.3 + 1.5);
	assert_int_equal(err.code, CW_ETIMEOUT);
	assert_int_equal(res.out.len, 1000);
	assert_int_equal(res.truncated, 1);
	cw_exec_result_release(&res);
}

/* A shell that started a background job holding stdout: killing only the shell would
 * leave the pipe open forever. The whole group goes, within the deadline + grace. */
static void test_timeout_kills_grandchild(void **state)
{
	const char *argv[] = { "sh", "-c", "sleep 30 & echo $!; wait", NULL };
	cw_exec_opts o = opts_for(argv, 400);
	cw_exec_result res;
	cw_error err = { 0 };
	double t0 = monotonic_seconds();
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	double took = monotonic_seconds() - t0;
	assert_int_equal(err.code, CW_ETIMEOUT);
	assert_true(took < 0.4 + 1.5);
	pid_t grandchild = (pid_t)atol(res.out.buf);
	assert_true(grandchild > 1);
	assert_true(process_gone(grandchild));
	cw_exec_result_release(&res);
}

/* A program that ignores SIGTERM gets SIGKILL after the one-second grace. */
static void test_timeout_escalates_to_sigkill(void **state)
{
	const char *argv[] = { "sh", "-c", "trap '' TERM; sleep 30", NULL };
	cw_exec_opts o = opts_for(argv, 200);
	cw_exec_result res;
	cw_error err = { 0 };
	double t0 = monotonic_seconds();
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	double took = monotonic_seconds() - t0;
	assert_int_equal(err.code, CW_ETIMEOUT);
	assert_int_equal(res.signaled, SIGKILL);
	assert_true(took >= 1.1);
	assert_true(took < 0.2 + 1.5);
	cw_exec_result_release(&res);
}

/* A program that exits is done, even if a daemon it started still holds the pipe:
 * waiting for that pipe would turn every "service x start" into a timeout. */
static void test_exit_does_not_wait_for_background_job(void **state)
{
	const char *argv[] = { "sh", "-c", "sleep 30 & echo $!", NULL };
	cw_exec_opts o = opts_for(argv, 5000);
	cw_exec_result res;
	cw_error err = { 0 };
	double t0 = monotonic_seconds();
	assert_int_equal(cw_exec(&o, &res, &err), 0);
	assert_true(monotonic_seconds() - t0 < 2.0);
	assert_int_equal(res.exited, 1);
	assert_int_equal(res.timed_out, 0);
	pid_t job = (pid_t)atol(res.out.buf);
	assert_true(job > 1);
	kill(job, SIGKILL);
	cw_exec_result_release(&res);
}

static void test_missing_program_in_path(void **state)
{
	const char *argv[] = { "certwright-no-such-program", NULL };
	cw_exec_opts o = opts_for(argv, 1000);
	cw_exec_result res;
	cw_error err = { 0 };
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	assert_int_equal(err.code, CW_EIO);
	assert_string_equal(err.msg,
			    "certwright-no-such-program: cannot execute: No such file or directory");
	assert_int_equal(res.exited, 0);
	cw_exec_result_release(&res);
}

/* execve() failures travel back from the child through the status pipe. */
static void test_exec_failure_reported_from_child(void **state)
{
	char *dir = tu_tempdir();
	char path[4096];
	snprintf(path, sizeof(path), "%s/not-executable", dir);
	tu_write(path, "#!/bin/sh\nexit 0\n");
	assert_int_equal(chmod(path, 0644), 0);
	const char *argv[] = { path, NULL };
	cw_exec_opts o = opts_for(argv, 1000);
	cw_exec_result res;
	cw_error err = { 0 };
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	assert_int_equal(err.code, CW_EIO);
	char want[4200];
	snprintf(want, sizeof(want), "%s: cannot execute: Permission denied", path);
	assert_string_equal(err.msg, want);
	cw_exec_result_release(&res);

	const char *missing[] = { "/nonexistent/certwright/prog", NULL };
	o.argv = missing;
	cw_error_clear(&err);
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	assert_string_equal(err.msg,
			    "/nonexistent/certwright/prog: cannot execute: No such file or directory");
	cw_exec_result_release(&res);
	tu_rmtree(dir);
	free(dir);
}

static void test_cwd_and_bad_cwd(void **state)
{
	char *dir = tu_tempdir();
	const char *argv[] = { "pwd", "-P", NULL };
	cw_exec_opts o = opts_for(argv, 5000);
	o.cwd = dir;
	cw_exec_result res;
	cw_error err = { 0 };
	assert_int_equal(cw_exec(&o, &res, &err), 0);
	char resolved[4096];
	assert_non_null(realpath(dir, resolved));
	strcat(resolved, "\n");
	assert_string_equal(res.out.buf, resolved);
	cw_exec_result_release(&res);

	o.cwd = "/nonexistent/certwright";
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	assert_string_equal(err.msg,
			    "pwd: cannot change to folder /nonexistent/certwright: No such file or directory");
	cw_exec_result_release(&res);
	tu_rmtree(dir);
	free(dir);
}

static void test_input_fed_to_stdin(void **state)
{
	const char *argv[] = { "cat", NULL };
	cw_exec_opts o = opts_for(argv, 5000);
	o.input = "line one\nline two\n";
	o.input_len = strlen(o.input);
	cw_exec_result res;
	cw_error err = { 0 };
	assert_int_equal(cw_exec(&o, &res, &err), 0);
	assert_string_equal(res.out.buf, "line one\nline two\n");
	cw_exec_result_release(&res);
}

/* More input than a socket buffer holds, echoed back at the same time: only works
 * when writing stdin and reading stdout are interleaved. */
static void test_large_input_round_trip(void **state)
{
	size_t len = 3u << 20;
	char *big = malloc(len);
	assert_non_null(big);
	for (size_t i = 0; i < len; i++)
		big[i] = (char)('a' + i % 26);
	const char *argv[] = { "cat", NULL };
	cw_exec_opts o = opts_for(argv, 20000);
	o.input = big;
	o.input_len = len;
	o.cap = 4u << 20;
	cw_exec_result res;
	cw_error err = { 0 };
	assert_int_equal(cw_exec(&o, &res, &err), 0);
	assert_int_equal(res.out.len, len);
	assert_memory_equal(res.out.buf, big, len);
	cw_exec_result_release(&res);
	free(big);
}

/* A program that never reads its stdin must not take us down with SIGPIPE. */
static void test_unread_input_is_harmless(void **state)
{
	size_t len = 1u << 20;
	char *big = calloc(1, len);
	assert_non_null(big);
	const char *argv[] = { "true", NULL };
	cw_exec_opts o = opts_for(argv, 5000);
	o.input = big;
	o.input_len = len;
	cw_exec_result res;
	cw_error err = { 0 };
	assert_int_equal(cw_exec(&o, &res, &err), 0);
	assert_int_equal(res.exited, 1);
	assert_int_equal(res.status, 0);
	cw_exec_result_release(&res);
	free(big);
}

static void test_no_fd_leak(void **state)
{
	int fd = open("/dev/null", O_RDONLY);   /* deliberately without O_CLOEXEC */
	assert_true(fd >= 0);
	assert_int_equal(dup2(fd, 57), 57);
	close(fd);
	const char *argv[] = { "ls", "/proc/self/fd", NULL };
	cw_exec_opts o = opts_for(argv, 5000);
	cw_exec_result res;
	cw_error err = { 0 };
	assert_int_equal(cw_exec(&o, &res, &err), 0);
	/* 0, 1, 2 and the one ls opened to read the folder */
	assert_string_equal(res.out.buf, "0\n1\n2\n3\n");
	cw_exec_result_release(&res);
	close(57);
}

static void test_env_add_overrides(void **state)
{
	setenv("CW_EXEC_TEST_VAR", "inherited", 1);
	const char *argv[] = { "sh", "-c", "env | grep -c '^CW_EXEC_TEST_VAR='; echo $CW_EXEC_TEST_VAR", NULL };
	const char *add[] = { "CW_EXEC_TEST_VAR=added", NULL };
	cw_exec_opts o = opts_for(argv, 5000);
	o.env_add = add;
	cw_exec_result res;
	cw_error err = { 0 };
	assert_int_equal(cw_exec(&o, &res, &err), 0);
	assert_string_equal(res.out.buf, "1\nadded\n");
	cw_exec_result_release(&res);
	unsetenv("CW_EXEC_TEST_VAR");
}

/* A caller thread that blocks SIGTERM must not pass that on: the timeout would fail. */
static void test_blocked_signals_not_inherited(void **state)
{
	sigset_t term, old;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &term, &old), 0);
	const char *argv[] = { "sleep", "30", NULL };
	cw_exec_opts o = opts_for(argv, 200);
	cw_exec_result res;
	cw_error err = { 0 };
	double t0 = monotonic_seconds();
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	assert_true(monotonic_seconds() - t0 < 1.0);
	assert_int_equal(res.signaled, SIGTERM);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	cw_exec_result_release(&res);
}

static void test_bad_options(void **state)
{
	cw_exec_result res;
	cw_error err = { 0 };
	const char *empty[] = { NULL };
	cw_exec_opts o = opts_for(empty, 1000);
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	assert_int_equal(err.code, CW_EINVAL);
	assert_string_equal(err.msg, "exec: no program given");
	cw_exec_result_release(&res);

	const char *argv[] = { "true", NULL };
	o = opts_for(argv, 0);
	cw_error_clear(&err);
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	assert_string_equal(err.msg, "true: timeout must be positive");
	cw_exec_result_release(&res);
}

typedef struct {
	char word[16];
	int ok;
} thread_job;

static void *run_echo(void *arg)
{
	thread_job *job = arg;
	const char *argv[] = { "sh", "-c", "sleep 0.1; echo \"$0\"", job->word, NULL };
	cw_exec_opts o = opts_for(argv, 5000);
	cw_exec_result res;
	cw_error err = { 0 };
	char want[32];
	snprintf(want, sizeof(want), "%s\n", job->word);
	job->ok = cw_exec(&o, &res, &err) == 0 && !strcmp(res.out.buf, want);
	cw_exec_result_release(&res);
	return NULL;
}

static void test_parallel_threads_keep_their_output(void **state)
{
	enum { N = 6 };
	pthread_t th[N];
	thread_job jobs[N];
	for (int i = 0; i < N; i++) {
		snprintf(jobs[i].word, sizeof(jobs[i].word), "job-%d", i);
		jobs[i].ok = 0;
		assert_int_equal(pthread_create(&th[i], NULL, run_echo, &jobs[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(jobs[i].ok, 1);
	}
}

/* ---- stop requests (cancel.h) ---- */

static int reset_cancel(void **state)
{
	cw_cancel_reset();
	return 0;
}

/* What cmd's SIGTERM handler does, from another thread after a delay. */
typedef struct {
	int delay_ms;
	double requested_at;
	pthread_t thread;
} canceller;

static void *cancel_after_delay(void *arg)
{
	canceller *c = arg;
	usleep((useconds_t)c->delay_ms * 1000);
	c->requested_at = monotonic_seconds();
	cw_cancel_request(SIGTERM);
	return NULL;
}

static void start_canceller(canceller *c, int delay_ms)
{
	c->delay_ms = delay_ms;
	c->requested_at = 0;
	assert_int_equal(pthread_create(&c->thread, NULL, cancel_after_delay, c), 0);
}

static void expect_interrupted(const cw_error *err, const char *program, int signo)
{
	char want[128];
	snprintf(want, sizeof(want), "%s: interrupted (signal %d)", program, signo);
	assert_int_equal(err->code, CW_ETARGET);
	assert_string_equal(err->msg, want);
}

/* The reported bug: SIGTERM during a reload command left the command running.
 * Far from its own timeout, the program is stopped soon after the request. */
static void test_cancel_stops_running_program(void **state)
{
	const char *argv[] = { "sleep", "30", NULL };
	cw_exec_opts o = opts_for(argv, 60000);
	cw_exec_result res;
	cw_error err = { 0 };
	canceller c;
	double t0 = monotonic_seconds();
	start_canceller(&c, 200);
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	double done = monotonic_seconds();
	assert_int_equal(pthread_join(c.thread, NULL), 0);
	expect_interrupted(&err, "sleep", SIGTERM);
	assert_true(done - t0 < 1.5);
	/* noticed within a poll slice, plus the moment sleep takes to die of SIGTERM */
	assert_true(done - c.requested_at < 0.5);
	assert_int_equal(res.timed_out, 0);
	assert_int_equal(res.exited, 0);
	assert_int_equal(res.signaled, SIGTERM);
	cw_exec_result_release(&res);
}

/* Like a timeout, a stop reaches the whole process group, not only the shell. */
static void test_cancel_kills_grandchild(void **state)
{
	const char *argv[] = { "sh", "-c", "sleep 30 & echo $!; wait", NULL };
	cw_exec_opts o = opts_for(argv, 60000);
	cw_exec_result res;
	cw_error err = { 0 };
	canceller c;
	double t0 = monotonic_seconds();
	start_canceller(&c, 300);
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	double took = monotonic_seconds() - t0;
	assert_int_equal(pthread_join(c.thread, NULL), 0);
	assert_non_null(strstr(err.msg, "interrupted"));
	assert_true(took < 0.3 + 1.5);
	pid_t grandchild = (pid_t)atol(res.out.buf);
	assert_true(grandchild > 1);
	assert_true(process_gone(grandchild));
	cw_exec_result_release(&res);
}

/* A program that ignores SIGTERM gets SIGKILL after the same one-second grace. */
static void test_cancel_escalates_to_sigkill(void **state)
{
	const char *argv[] = { "sh", "-c", "trap '' TERM; sleep 30", NULL };
	cw_exec_opts o = opts_for(argv, 60000);
	cw_exec_result res;
	cw_error err = { 0 };
	canceller c;
	start_canceller(&c, 200);
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	double done = monotonic_seconds();
	assert_int_equal(pthread_join(c.thread, NULL), 0);
	expect_interrupted(&err, "sh", SIGTERM);
	assert_int_equal(res.signaled, SIGKILL);
	assert_true(done - c.requested_at >= 1.0);
	assert_true(done - c.requested_at < 1.5);
	cw_exec_result_release(&res);
}

/* Once a stop was requested nothing new starts. Two witnesses: cw_exec reaps every
 * child it forks, so a started program, even one stopped at once, would show up in
 * exited or signaled; and a program that got past its first line (it ignores SIGTERM
 * from there on) would have left the marker. The second run, after the reset, shows
 * that the program does create it. */
static void test_cancel_before_start_refuses(void **state)
{
	char *dir = tu_tempdir();
	char marker[4096];
	snprintf(marker, sizeof(marker), "%s/started", dir);
	const char *argv[] = { "sh", "-c", "trap '' TERM; touch \"$0\"", marker, NULL };
	cw_exec_opts o = opts_for(argv, 5000);
	cw_exec_result res;
	cw_error err = { 0 };
	cw_cancel_request(SIGINT);
	assert_int_equal(cw_exec(&o, &res, &err), -1);
	expect_interrupted(&err, "sh", SIGINT);
	assert_int_equal(res.exited, 0);     /* nothing was reaped: nothing was forked */
	assert_int_equal(res.signaled, 0);
	assert_true(res.seconds < 0.5);      /* no kill grace: there was nothing to kill */
	assert_int_equal(access(marker, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	cw_exec_result_release(&res);

	cw_cancel_reset();
	cw_error_clear(&err);
	assert_int_equal(cw_exec(&o, &res, &err), 0);
	assert_int_equal(res.status, 0);
	assert_int_equal(access(marker, F_OK), 0);
	cw_exec_result_release(&res);
	tu_rmtree(dir);
	free(dir);
}

typedef struct {
	pthread_t thread;
	int rc;
	cw_error err;
	double done;
} sleeper;

static void *run_sleeper(void *arg)
{
	sleeper *s = arg;
	const char *argv[] = { "sleep", "30", NULL };
	cw_exec_opts o = opts_for(argv, 60000);
	cw_exec_result res;
	s->rc = cw_exec(&o, &res, &s->err);
	s->done = monotonic_seconds();
	cw_exec_result_release(&res);
	return NULL;
}

/* Target workers run programs side by side: one request stops them all. */
static void test_cancel_stops_parallel_runs(void **state)
{
	enum { N = 4 };
	sleeper s[N];
	memset(s, 0, sizeof(s));
	for (int i = 0; i < N; i++)
		assert_int_equal(pthread_create(&s[i].thread, NULL, run_sleeper, &s[i]), 0);
	usleep(300000);
	double requested = monotonic_seconds();
	cw_cancel_request(SIGTERM);
	for (int i = 0; i < N; i++) {
		assert_int_equal(pthread_join(s[i].thread, NULL), 0);
		assert_int_equal(s[i].rc, -1);
		expect_interrupted(&s[i].err, "sleep", SIGTERM);
		assert_true(s[i].done - requested < 1.0);
	}
}

/* certwright's environment carries secrets (the keystore passphrase, env: references):
 * a child sees only what programs need to run. */
static void test_child_environment_holds_no_secrets(void **state)
{
	(void)state;
	setenv("CERTWRIGHT_PASSPHRASE", "keystore-secret", 1);
	setenv("SOFTETHER_ADMIN_PASSWORD", "admin-secret", 1);
	const char *argv[] = { "env", NULL };
	cw_exec_opts opts;
	memset(&opts, 0, sizeof(opts));
	opts.argv = argv;
	opts.timeout_ms = 5000;
	cw_exec_result res;
	cw_error err = { 0 };
	assert_int_equal(cw_exec(&opts, &res, &err), 0);
	assert_null(strstr(res.out.buf, "keystore-secret"));
	assert_null(strstr(res.out.buf, "admin-secret"));
	assert_non_null(strstr(res.out.buf, "PATH="));
	cw_exec_result_release(&res);
	unsetenv("CERTWRIGHT_PASSPHRASE");
	unsetenv("SOFTETHER_ADMIN_PASSWORD");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_child_environment_holds_no_secrets),
		cmocka_unit_test(test_exit_status),
		cmocka_unit_test(test_capture_stdout_and_stderr),
		cmocka_unit_test(test_cap_truncates_and_keeps_draining),
		cmocka_unit_test(test_timeout_kills_sleep),
		cmocka_unit_test(test_timeout_with_endless_output),
		cmocka_unit_test(test_timeout_kills_grandchild),
		cmocka_unit_test(test_timeout_escalates_to_sigkill),
		cmocka_unit_test(test_exit_does_not_wait_for_background_job),
		cmocka_unit_test(test_missing_program_in_path),
		cmocka_unit_test(test_exec_failure_reported_from_child),
		cmocka_unit_test(test_cwd_and_bad_cwd),
		cmocka_unit_test(test_input_fed_to_stdin),
		cmocka_unit_test(test_large_input_round_trip),
		cmocka_unit_test(test_unread_input_is_harmless),
		cmocka_unit_test(test_no_fd_leak),
		cmocka_unit_test(test_env_add_overrides),
		cmocka_unit_test(test_blocked_signals_not_inherited),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_parallel_threads_keep_their_output),
		cmocka_unit_test_setup_teardown(test_cancel_stops_running_program, reset_cancel, reset_cancel),
		cmocka_unit_test_setup_teardown(test_cancel_kills_grandchild, reset_cancel, reset_cancel),
		cmocka_unit_test_setup_teardown(test_cancel_escalates_to_sigkill, reset_cancel, reset_cancel),
		cmocka_unit_test_setup_teardown(test_cancel_before_start_refuses, reset_cancel, reset_cancel),
		cmocka_unit_test_setup_teardown(test_cancel_stops_parallel_runs, reset_cancel, reset_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
