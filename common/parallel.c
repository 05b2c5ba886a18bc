/* parallel — see parallel.h. */
#include "parallel.h"

#include <pthread.h>
#include <stdlib.h>

#include "util.h"

typedef struct {
	void (*fn)(void *ctx, size_t i);
	void *ctx;
	size_t n;
	size_t next;
	pthread_mutex_t mu;
} pool;

static void *worker(void *arg)
{
	pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		size_t i = p->next++;
		pthread_mutex_unlock(&p->mu);
		if (i >= p->n)
			return NULL;
		p->fn(p->ctx, i);
	}
}

void cw_parallel_for(size_t n, size_t workers, void (*fn)(void *ctx, size_t i), void *ctx)
{
	pool p = { fn, ctx, n, 0, PTHREAD_MUTEX_INITIALIZER };
	if (workers > n)
		workers = n;
	if (workers == 0)
		workers = 1;
	pthread_t *threads = cw_xcalloc(workers, sizeof(pthread_t));
	size_t started = 0;
	while (started < workers && pthread_create(&threads[started], NULL, worker, &p) == 0)
		started++;
	if (!started)
		worker(&p);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	pthread_mutex_destroy(&p.mu);
}
