/*
 * cancel — a process-wide "please stop" flag, set from a SIGTERM/SIGINT handler.
 *
 * Why a flag and not exit(): systemd sends SIGTERM when a run takes too long, and an
 * operator presses Ctrl-C. Dying on the spot leaves a reload command running in its
 * own process group and our private work folder (which can hold an unencrypted key
 * copy for a SoftEther target) behind. Every step of a run is journaled, so stopping
 * BETWEEN steps is always safe; the next run picks up from the journal. The flag lets
 * the caller decide where those points are: the engine checks it between steps, and
 * cw_exec() checks it while a program runs (it then stops the program's process
 * group the way a timeout does) and before starting one.
 *
 * This is the one mutable global in the library, on purpose: a signal handler has
 * no other way to reach the threads doing the work. It is a lock-free atomic, so it
 * may be set from a signal handler and read from any thread at the same time.
 */
#ifndef CW_CANCEL_H
#define CW_CANCEL_H

/* Asks everything to stop. Async-signal-safe: call it from the handler itself.
 * signo (> 0) is the reason reported back; the FIRST request wins, so a second
 * Ctrl-C does not change which signal the messages name. signo <= 0 is ignored
 * (a signal handler has no way to report a bad argument). */
void cw_cancel_request(int signo);

/* 0 while no stop was asked for, else the signal number given to cw_cancel_request(). */
int cw_cancel_requested(void);

/* Back to "not requested". For tests; a real run never un-cancels. */
void cw_cancel_reset(void);

#endif
