/*
 * parallel — run fn(ctx, i) for every i in [0, n) on up to `workers` threads. Each thread
 * takes the next index until none is left, so one slow item (a dead host waiting out
 * its timeout) holds up only the thread working on it. When no thread can be started
 * the calling thread does all the work: slower, never wrong. Returns when all are done.
 */
#ifndef CW_PARALLEL_H
#define CW_PARALLEL_H

#include <stddef.h>

void cw_parallel_for(size_t n, size_t workers, void (*fn)(void *ctx, size_t i), void *ctx);

#endif
