/*
 * cancel — see cancel.h.
 *
 * A C11 atomic rather than volatile sig_atomic_t: sig_atomic_t is only safe between
 * a handler and the thread it interrupted, while here other threads (cw_exec in a
 * target worker) read the flag at the same time. A lock-free atomic is both
 * async-signal-safe and race-free; the static assertion keeps it that way.
 */
#include "cancel.h"

#include <stdatomic.h>

_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
	       "cancel: the flag must be a lock-free atomic to be set from a signal handler");

static atomic_int cancel_signal;

void cw_cancel_request(int signo)
{
	if (signo <= 0)
		return;
	int none = 0;
	atomic_compare_exchange_strong(&cancel_signal, &none, signo);
}

int cw_cancel_requested(void)
{
	return atomic_load(&cancel_signal);
}

void cw_cancel_reset(void)
{
	atomic_store(&cancel_signal, 0);
}
