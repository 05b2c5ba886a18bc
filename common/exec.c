/*
 * exec — see exec.h.
 *
 * How a run goes: everything that allocates (program lookup in PATH, the
 * environment array, pipes) happens before fork(), so the child only makes
 * async-signal-safe calls between fork() and execve() — required because the
 * engine runs targets in threads. The child reports a failed chdir()/execve()
 * through a close-on-exec pipe: EOF on that pipe means execve() succeeded.
 * The parent then pumps stdin/stdout/stderr with poll() until the program
 * exits or the deadline passes; past the deadline the whole process group gets
 * SIGTERM, a short grace, then SIGKILL, and the child is always reaped.
 *
 * A stop request (cancel.h: SIGTERM/SIGINT to certwright) is treated like a
 * deadline that arrives early: the group is stopped the same way and the run fails
 * with "PROGRAM: interrupted (signal N)". No program is started once a stop was
 * requested. The poll loop wakes at least every EXEC_CANCEL_SLICE_MS to look at the
 * flag rather than relying on EINTR or a self-pipe: the signal may be delivered to
 * any thread, and a self-pipe would need setting up before the handler is installed
 * and draining by every waiter. A few wakeups a second cost nothing next to the
 * program we wait for.
 */
#include "exec.h"
#include "cancel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

#define EXEC_DEFAULT_CAP ((size_t)1 << 20)
#define EXEC_KILL_GRACE_MS 1000
/* Without a pidfd, how often we look whether the child has exited. */
#define EXEC_REAP_SLICE_MS 20
/* The longest we wait in poll() before looking at the stop request again. */
#define EXEC_CANCEL_SLICE_MS 50
#define EXEC_CHUNK 65536
/* The largest pipe buffer Linux allows by default (fs.pipe-max-size): after the
 * child exits, this much is all it can have left behind in a pipe. */
#define EXEC_FINAL_DRAIN_MAX ((size_t)1 << 20)
#define EXEC_DRAIN_ROUND_MAX ((size_t)1 << 20)

enum { CHILD_STAGE_CHDIR = 1, CHILD_STAGE_EXEC = 2 };

/* What the child writes to the status pipe when it fails before execve(). */
typedef struct {
	int stage;
	int err;
} child_failure;

/* One run: prepared in full before fork(). Parent ends are non-blocking. */
typedef struct {
	const cw_exec_opts *opts;
	const char *name;        /* argv[0], for messages */
	char *path;              /* the program file execve() gets */
	char **envp;             /* array owned; strings borrowed */
	size_t cap;
	int child_in, child_out, child_err, status_w;
	int in_fd, out_fd, err_fd, status_r;
	size_t in_off;
	pid_t pid;
	int pidfd;               /* -1 when the kernel has no pidfd_open */
	int reaped;
	int wstatus;
} exec_run;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static const char *errtext(int e, char *buf, size_t len)
{
	return strerror_r(e, buf, len);   /* GNU variant: thread-safe, returns the text */
}

/* ---- before fork ---- */

static int is_executable_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The PATH lookup execvp() would do, done in the parent: execvp() may allocate, which a
 * child of a threaded process must not. Empty PATH entries (the current folder) are
 * skipped on purpose: a reload command must never be picked up from wherever we run. */
static char *find_in_path(const char *name)
{
	const char *env_path = getenv("PATH");
	char *dirs = cw_xstrdup(env_path && *env_path ? env_path : "/usr/local/bin:/usr/bin:/bin");
	char *found = NULL;
	char *save = NULL;
	for (char *dir = strtok_r(dirs, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
		char *candidate = cw_path_join(dir, name);
		if (*dir == '/' && is_executable_file(candidate))
			found = candidate;
		else
			free(candidate);
	}
	free(dirs);
	return found;
}

static size_t env_name_len(const char *entry)
{
	const char *eq = strchr(entry, '=');
	return eq ? (size_t)(eq - entry) : strlen(entry);
}

static int env_overridden(const char *entry, const char *const *add)
{
	size_t n = env_name_len(entry);
	for (size_t i = 0; add[i]; i++)
		if (env_name_len(add[i]) == n && !strncmp(entry, add[i], n))
			return 1;
	return 0;
}

/* What a child may inherit. certwright's own environment carries secrets — the keystore
 * passphrase, every `env:` reference of the inventory, git credentials — and a reload
 * script is often third-party code that logs or forwards its environment. So children
 * get only what programs need to run (and their locale and time zone), plus env_add. */
static int env_inheritable(const char *entry)
{
	static const char *const allowed[] = { "PATH=", "HOME=", "USER=", "LOGNAME=", "LANG=",
					       "LANGUAGE=", "TZ=", "TMPDIR=", "TERM=", NULL };
	if (!strncmp(entry, "LC_", 3))
		return 1;
	for (size_t i = 0; allowed[i]; i++)
		if (!strncmp(entry, allowed[i], strlen(allowed[i])))
			return 1;
	return 0;
}

/* The allowed part of environ with env_add on top; an added NAME replaces an inherited one. */
static char **build_env(const char *const *add)
{
	size_t ninherit = 0, nadd = 0;
	while (environ && environ[ninherit])
		ninherit++;
	while (add && add[nadd])
		nadd++;
	char **envp = cw_xcalloc(ninherit + nadd + 1, sizeof(*envp));
	size_t k = 0;
	for (size_t i = 0; i < ninherit; i++)
		if (env_inheritable(environ[i]) && (!add || !env_overridden(environ[i], add)))
			envp[k++] = environ[i];
	for (size_t i = 0; i < nadd; i++)
		envp[k++] = (char *)add[i];
	return envp;
}

static int set_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* stdin is a socket pair when there is input, so the parent can write with
 * MSG_NOSIGNAL: a child that stops reading early must not SIGPIPE the whole process,
 * and changing the signal disposition is not ours to do in a library. */
static int open_stdin(exec_run *r)
{
	if (!r->opts->input) {
		r->child_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return r->child_in < 0 ? -1 : 0;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	r->in_fd = sv[0];
	r->child_in = sv[1];
	return set_nonblocking(r->in_fd);
}

static int open_pipe(int *parent_end, int *child_end, int parent_reads)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	*parent_end = parent_reads ? p[0] : p[1];
	*child_end = parent_reads ? p[1] : p[0];
	return set_nonblocking(*parent_end);
}

static int open_channels(exec_run *r, cw_error *err)
{
	int st[2] = { -1, -1 };
	if (open_stdin(r) != 0 || open_pipe(&r->out_fd, &r->child_out, 1) != 0 ||
	    open_pipe(&r->err_fd, &r->child_err, 1) != 0 || pipe2(st, O_CLOEXEC) != 0) {
		char eb[128];
		return cw_error_set(err, CW_EIO, "%s: cannot set up pipes: %s", r->name,
				    errtext(errno, eb, sizeof(eb)));
	}
	r->status_r = st[0];
	r->status_w = st[1];
	return 0;
}

static int prepare(exec_run *r, const cw_exec_opts *opts, cw_error *err)
{
	memset(r, 0, sizeof(*r));
	r->opts = opts;
	r->child_in = r->child_out = r->child_err = r->status_w = -1;
	r->in_fd = r->out_fd = r->err_fd = r->status_r = r->pidfd = -1;
	r->cap = opts->cap ? opts->cap : EXEC_DEFAULT_CAP;
	if (!opts->argv || !opts->argv[0] || !*opts->argv[0])
		return cw_error_set(err, CW_EINVAL, "exec: no program given");
	r->name = opts->argv[0];
	if (opts->timeout_ms <= 0)
		return cw_error_set(err, CW_EINVAL, "%s: timeout must be positive", r->name);
	r->path = strchr(r->name, '/') ? cw_xstrdup(r->name) : find_in_path(r->name);
	if (!r->path) {
		char eb[128];
		return cw_error_set(err, CW_EIO, "%s: cannot execute: %s", r->name,
				    errtext(ENOENT, eb, sizeof(eb)));
	}
	r->envp = build_env(opts->env_add);
	return open_channels(r, err);
}

static void release_run(exec_run *r)
{
	close_fd(&r->child_in);
	close_fd(&r->child_out);
	close_fd(&r->child_err);
	close_fd(&r->status_w);
	close_fd(&r->in_fd);
	close_fd(&r->out_fd);
	close_fd(&r->err_fd);
	close_fd(&r->status_r);
	close_fd(&r->pidfd);
	free(r->path);
	free(r->envp);
}

/* ---- in the child: async-signal-safe calls only ---- */

static void __attribute__((noreturn)) child_fail(int status_fd, int stage)
{
	child_failure f = { stage, errno };
	if (write(status_fd, &f, sizeof(f)) < 0) {
		/* nothing left to tell anyone: the parent sees exit status 127 */
	}
	_exit(127);
}

/* Ignored signals and the signal mask survive execve(): a program started from a
 * thread that blocks SIGTERM could otherwise never be stopped. */
static void child_reset_signals(void)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL);   /* fails harmlessly for SIGKILL, SIGSTOP, libc's own */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Nothing but 0, 1 and 2 may reach the program: not a key file we hold open, not
 * another target's socket. The status pipe only needs to live until execve(). */
static void child_close_inherited(int keep)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
#endif
	struct rlimit rl;
	long max = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)max)
		max = (long)rl.rlim_cur;
	for (long fd = 3; fd < max; fd++)
		if (fd != keep)
			close((int)fd);
}

static void __attribute__((noreturn)) child_main(const exec_run *r)
{
	/* a process group of its own, so a timeout reaches everything the program started */
	setpgid(0, 0);
	child_reset_signals();
	/* Lift every fd we hand over above 2 first: if the caller runs with 0/1/2 closed,
	 * a pipe may sit on one of them and a plain dup2() sequence would clobber it. */
	int st = fcntl(r->status_w, F_DUPFD_CLOEXEC, 3);
	int in = fcntl(r->child_in, F_DUPFD_CLOEXEC, 3);
	int out = fcntl(r->child_out, F_DUPFD_CLOEXEC, 3);
	int errfd = fcntl(r->child_err, F_DUPFD_CLOEXEC, 3);
	if (st < 0)
		_exit(127);
	if (in < 0 || out < 0 || errfd < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
	    dup2(errfd, 2) < 0)
		child_fail(st, CHILD_STAGE_EXEC);
	child_close_inherited(st);
	if (r->opts->cwd && chdir(r->opts->cwd) != 0)
		child_fail(st, CHILD_STAGE_CHDIR);
	execve(r->path, (char *const *)r->opts->argv, r->envp);
	child_fail(st, CHILD_STAGE_EXEC);
}

/* ---- in the parent ---- */

static int spawn(exec_run *r, cw_error *err)
{
	r->pid = fork();
	if (r->pid < 0) {
		char eb[128];
		return cw_error_set(err, CW_EIO, "%s: cannot start: %s", r->name,
				    errtext(errno, eb, sizeof(eb)));
	}
	if (r->pid == 0)
		child_main(r);
	/* also here, so the group exists whichever of us runs first */
	setpgid(r->pid, r->pid);
	close_fd(&r->child_in);
	close_fd(&r->child_out);
	close_fd(&r->child_err);
	close_fd(&r->status_w);
#ifdef SYS_pidfd_open
	r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
#endif
	return 0;
}

static void reap_blocking(exec_run *r)
{
	while (!r->reaped) {
		if (waitpid(r->pid, &r->wstatus, 0) == r->pid || errno != EINTR)
			r->reaped = 1;
	}
}

/* EOF on the status pipe means execve() succeeded; a record means it did not. */
static int await_exec(exec_run *r, cw_error *err)
{
	child_failure f;
	ssize_t n;
	do
		n = read(r->status_r, &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	close_fd(&r->status_r);
	if (n != (ssize_t)sizeof(f))
		return 0;
	reap_blocking(r);
	char eb[128];
	if (f.stage == CHILD_STAGE_CHDIR)
		return cw_error_set(err, CW_EIO, "%s: cannot change to folder %s: %s", r->name,
				    r->opts->cwd, errtext(f.err, eb, sizeof(eb)));
	return cw_error_set(err, CW_EIO, "%s: cannot execute: %s", r->name,
			    errtext(f.err, eb, sizeof(eb)));
}

static void keep_capped(cw_buf *b, const char *data, size_t len, size_t cap, int *truncated)
{
	size_t room = b->len < cap ? cap - b->len : 0;
	if (len > room) {
		*truncated = 1;
		len = room;
	}
	if (len)
		cw_buf_add(b, data, len);
}

/* Reads what is there now. Past the cap we keep reading and drop the bytes, so a
 * chatty program never blocks on a full pipe. Closes the fd at EOF. */
static void drain(int *fd, cw_buf *b, size_t cap, int *truncated, size_t limit)
{
	char chunk[EXEC_CHUNK];
	size_t total = 0;
	while (*fd >= 0 && total < limit) {
		ssize_t n = read(*fd, chunk, sizeof(chunk));
		if (n > 0) {
			keep_capped(b, chunk, (size_t)n, cap, truncated);
			total += (size_t)n;
		} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			close_fd(fd);
		} else if (errno == EAGAIN) {
			return;
		}
	}
}

static void drain_outputs(exec_run *r, cw_exec_result *res, size_t limit)
{
	drain(&r->out_fd, &res->out, r->cap, &res->truncated, limit);
	drain(&r->err_fd, &res->errout, r->cap, &res->truncated, limit);
}

static void feed_input(exec_run *r)
{
	const cw_exec_opts *o = r->opts;
	while (r->in_fd >= 0 && r->in_off < o->input_len) {
		ssize_t n = send(r->in_fd, o->input + r->in_off, o->input_len - r->in_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0)
			r->in_off += (size_t)n;
		else if (n < 0 && errno == EAGAIN)
			return;
		else if (n < 0 && errno != EINTR)
			close_fd(&r->in_fd);   /* the program closed its stdin: it wants no more */
	}
	close_fd(&r->in_fd);   /* all sent: EOF tells the program so */
}

static int try_reap(exec_run *r)
{
	if (!r->reaped && waitpid(r->pid, &r->wstatus, WNOHANG) == r->pid)
		r->reaped = 1;
	return r->reaped;
}

/* Exited but not reaped: the zombie keeps its pid, and so the process group id, ours
 * to signal without any risk of hitting a recycled pid. */
static int leader_exited(const exec_run *r)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	return waitid(P_PID, (id_t)r->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == r->pid;
}

/* One poll() round over stdin, stdout, stderr and (while it runs) the child. */
static void poll_once(exec_run *r, cw_exec_result *res, int watch_child, int wait_ms)
{
	struct pollfd p[4];
	nfds_t n = 0;
	if (r->in_fd >= 0)
		p[n++] = (struct pollfd){ .fd = r->in_fd, .events = POLLOUT };
	if (r->out_fd >= 0)
		p[n++] = (struct pollfd){ .fd = r->out_fd, .events = POLLIN };
	if (r->err_fd >= 0)
		p[n++] = (struct pollfd){ .fd = r->err_fd, .events = POLLIN };
	if (watch_child && r->pidfd >= 0)
		p[n++] = (struct pollfd){ .fd = r->pidfd, .events = POLLIN };
	if ((watch_child && r->pidfd < 0) && wait_ms > EXEC_REAP_SLICE_MS)
		wait_ms = EXEC_REAP_SLICE_MS;
	if (poll(p, n, wait_ms) <= 0)
		return;   /* timeout or EINTR: the caller looks at the clock and the child */
	feed_input(r);
	/* bounded, so a program that writes without pause cannot keep us from the clock */
	drain_outputs(r, res, EXEC_DRAIN_ROUND_MAX);
}

typedef enum { RUN_EXITED, RUN_TIMED_OUT, RUN_INTERRUPTED } run_end;

/* *stop_signal is set when the run ends RUN_INTERRUPTED. */
static run_end pump_until_exit(exec_run *r, cw_exec_result *res, int64_t deadline,
			       int *stop_signal)
{
	feed_input(r);
	while (!try_reap(r)) {
		*stop_signal = cw_cancel_requested();
		if (*stop_signal)
			return RUN_INTERRUPTED;
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return RUN_TIMED_OUT;
		poll_once(r, res, 1, left > EXEC_CANCEL_SLICE_MS ? EXEC_CANCEL_SLICE_MS : (int)left);
	}
	/* What a daemon the program started writes later is not the program's output:
	 * take what the program itself left in the pipes and stop there. */
	drain_outputs(r, res, EXEC_FINAL_DRAIN_MAX);
	return RUN_EXITED;
}

/* SIGTERM to the group, a grace period while anything still holds our pipes or the
 * leader lives, then SIGKILL to the group; the leader is reaped only after that. */
static void kill_group(exec_run *r, cw_exec_result *res)
{
	kill(-r->pid, SIGTERM);
	close_fd(&r->in_fd);
	int64_t grace_end = now_ms() + EXEC_KILL_GRACE_MS;
	int exited = leader_exited(r);
	while (!(exited && r->out_fd < 0 && r->err_fd < 0)) {
		int64_t left = grace_end - now_ms();
		if (left <= 0)
			break;
		poll_once(r, res, !exited, (int)left);
		exited = exited || leader_exited(r);
	}
	kill(-r->pid, SIGKILL);
	reap_blocking(r);
	drain_outputs(r, res, EXEC_FINAL_DRAIN_MAX);
}

static void fill_status(const exec_run *r, cw_exec_result *res)
{
	if (WIFEXITED(r->wstatus)) {
		res->exited = 1;
		res->status = WEXITSTATUS(r->wstatus);
	} else if (WIFSIGNALED(r->wstatus)) {
		res->signaled = WTERMSIG(r->wstatus);
	}
}

static void result_init(cw_exec_result *res)
{
	memset(res, 0, sizeof(*res));
	cw_buf_init(&res->out);
	cw_buf_init(&res->errout);
}

/* Callers may treat out/errout as C strings even when the program printed nothing. */
static void result_finish(cw_exec_result *res, int64_t started)
{
	cw_buf_add(&res->out, "", 0);
	cw_buf_add(&res->errout, "", 0);
	res->seconds = (double)(now_ms() - started) / 1000.0;
}

static int interrupted(const exec_run *r, int signo, cw_error *err)
{
	return cw_error_set(err, CW_ETARGET, "%s: interrupted (signal %d)", r->name, signo);
}

/* Checked after prepare() so the message can name the program. A stop requested
 * between here and fork() is caught by the poll loop within one slice. */
static int refuse_if_cancelled(const exec_run *r, cw_error *err)
{
	int signo = cw_cancel_requested();
	return signo ? interrupted(r, signo, err) : 0;
}

/* Runs the started program to its end; stops its group on timeout or stop request. */
static int supervise(exec_run *r, cw_exec_result *res, int64_t started, cw_error *err)
{
	int stop_signal = 0;
	run_end end = pump_until_exit(r, res, started + r->opts->timeout_ms, &stop_signal);
	if (end == RUN_EXITED)
		return 0;
	kill_group(r, res);
	if (end == RUN_INTERRUPTED)
		return interrupted(r, stop_signal, err);
	res->timed_out = 1;
	return cw_error_set(err, CW_ETIMEOUT, "%s: timed out after %d ms", r->name,
			    r->opts->timeout_ms);
}

int cw_exec(const cw_exec_opts *opts, cw_exec_result *res, cw_error *err)
{
	int64_t started = now_ms();
	result_init(res);
	exec_run r;
	int rc = prepare(&r, opts, err);
	if (rc == 0)
		rc = refuse_if_cancelled(&r, err);
	if (rc == 0)
		rc = spawn(&r, err);
	if (rc == 0)
		rc = await_exec(&r, err);
	if (rc == 0)
		rc = supervise(&r, res, started, err);
	if (r.reaped)
		fill_status(&r, res);
	release_run(&r);
	result_finish(res, started);
	return rc;
}

void cw_exec_result_release(cw_exec_result *res)
{
	if (!res)
		return;
	cw_buf_release(&res->out);
	cw_buf_release(&res->errout);
	memset(res, 0, sizeof(*res));
}
