/* test_parallel — cw_parallel_for visits every index exactly once, whatever the number of
 * workers, and really runs them side by side. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "common/parallel.h"
#include "testutil.h"

typedef struct {
	atomic_int seen[1000];
	atomic_int running, max_running;
	int sleep_us;
} visit_ctx;

static void visit(void *ctx, size_t i)
{
	visit_ctx *v = ctx;
	int now = atomic_fetch_add(&v->running, 1) + 1;
	int max = atomic_load(&v->max_running);
	while (now > max && !atomic_compare_exchange_weak(&v->max_running, &max, now))
		;
	if (v->sleep_us)
		usleep((useconds_t)v->sleep_us);
	atomic_fetch_add(&v->seen[i], 1);
	atomic_fetch_sub(&v->running, 1);
}

static void expect_each_once(size_t n, size_t workers)
{
	static visit_ctx v;
	memset(&v, 0, sizeof(v));
	cw_parallel_for(n, workers, visit, &v);
	for (size_t i = 0; i < 1000; i++)
		assert_int_equal(atomic_load(&v.seen[i]), i < n ? 1 : 0);
	assert_true(atomic_load(&v.max_running) <= (int)(workers ? workers : 1));
}

static void test_every_index_once(void **state)
{
	(void)state;
	expect_each_once(1000, 4);
	expect_each_once(3, 8);   /* more workers than items */
	expect_each_once(1, 0);   /* 0 workers means the caller's thread */
	expect_each_once(0, 4);   /* nothing to do */
}

static void test_runs_side_by_side(void **state)
{
	(void)state;
	static visit_ctx v;
	memset(&v, 0, sizeof(v));
	v.sleep_us = 20000;
	cw_parallel_for(8, 4, visit, &v);
	assert_int_equal(atomic_load(&v.max_running), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_index_once),
		cmocka_unit_test(test_runs_side_by_side),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
