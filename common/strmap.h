/*
 * strmap — a string -> size_t hash map (open addressing, FNV-1a). Lookups by name
 * happen per certificate per target; at 10,000 certificates a linear scan would make
 * a plan quadratic. Keys are copied.
 */
#ifndef CW_STRMAP_H
#define CW_STRMAP_H

#include <stddef.h>

typedef struct {
	char **keys;
	size_t *values;
	size_t cap, n;
} cw_strmap;

void cw_strmap_init(cw_strmap *m);
void cw_strmap_release(cw_strmap *m);
/* Inserts or replaces. */
void cw_strmap_put(cw_strmap *m, const char *key, size_t value);
/* 1 and *value when found, else 0. */
int cw_strmap_get(const cw_strmap *m, const char *key, size_t *value);

#endif
