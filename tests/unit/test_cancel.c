/* test_cancel — the process-wide stop flag: values, first-wins, reset, signal handlers, threads. */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "common/cancel.h"

static int reset_flag(void **state)
{
	cw_cancel_reset();
	return 0;
}

static void test_not_requested_at_start(void **state)
{
	assert_int_equal(cw_cancel_requested(), 0);
}

static void test_request_reports_the_signal(void **state)
{
	cw_cancel_request(SIGTERM);
	assert_int_equal(cw_cancel_requested(), SIGTERM);
}

/* A second Ctrl-C after systemd's SIGTERM must not change what the messages say. */
static void test_first_request_wins(void **state)
{
	cw_cancel_request(SIGINT);
	cw_cancel_request(SIGTERM);
	assert_int_equal(cw_cancel_requested(), SIGINT);
}

static void test_reset_clears_and_allows_a_new_request(void **state)
{
	cw_cancel_request(SIGINT);
	cw_cancel_reset();
	assert_int_equal(cw_cancel_requested(), 0);
	cw_cancel_request(SIGTERM);
	assert_int_equal(cw_cancel_requested(), SIGTERM);
}

/* Not a signal: a handler cannot report the mistake, so the call does nothing. */
static void test_non_positive_signal_ignored(void **state)
{
	cw_cancel_request(0);
	cw_cancel_request(-SIGTERM);
	assert_int_equal(cw_cancel_requested(), 0);
}

static void on_signal(int signo)
{
	cw_cancel_request(signo);
}

static void install_handler(int signo, struct sigaction *old)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(signo, &sa, old), 0);
}

/* The way cmd uses it: set from inside a real signal handler. */
static void test_set_from_signal_handler(void **state)
{
	struct sigaction old;
	install_handler(SIGUSR1, &old);
	assert_int_equal(raise(SIGUSR1), 0);   /* delivered before raise() returns */
	assert_int_equal(cw_cancel_requested(), SIGUSR1);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

static void *wait_for_request(void *arg)
{
	int *seen = arg;
	struct timespec tick = { 0, 1000000 };
	for (int i = 0; i < 5000 && !*seen; i++) {
		*seen = cw_cancel_requested();
		if (!*seen)
			nanosleep(&tick, NULL);
	}
	return NULL;
}

/* A signal handled on one thread is seen by a worker polling on another. */
static void test_request_visible_in_other_thread(void **state)
{
	struct sigaction old;
	install_handler(SIGUSR2, &old);
	int seen = 0;
	pthread_t worker;
	assert_int_equal(pthread_create(&worker, NULL, wait_for_request, &seen), 0);
	assert_int_equal(raise(SIGUSR2), 0);
	assert_int_equal(pthread_join(worker, NULL), 0);
	assert_int_equal(seen, SIGUSR2);
	assert_int_equal(sigaction(SIGUSR2, &old, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* first and without a reset: the flag a process starts with */
		cmocka_unit_test(test_not_requested_at_start),
		cmocka_unit_test_setup(test_request_reports_the_signal, reset_flag),
		cmocka_unit_test_setup(test_first_request_wins, reset_flag),
		cmocka_unit_test_setup(test_reset_clears_and_allows_a_new_request, reset_flag),
		cmocka_unit_test_setup(test_non_positive_signal_ignored, reset_flag),
		cmocka_unit_test_setup(test_set_from_signal_handler, reset_flag),
		cmocka_unit_test_setup(test_request_visible_in_other_thread, reset_flag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
