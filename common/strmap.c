/* strmap — see strmap.h. */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

void cw_strmap_init(cw_strmap *m)
{
	memset(m, 0, sizeof(*m));
}

void cw_strmap_release(cw_strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->values);
	cw_strmap_init(m);
}

static size_t slot_for(const cw_strmap *m, const char *key)
{
	size_t i = (size_t)hash(key) & (m->cap - 1);
	while (m->keys[i] && strcmp(m->keys[i], key))
		i = (i + 1) & (m->cap - 1);
	return i;
}

static void grow(cw_strmap *m)
{
	cw_strmap bigger = { cw_xcalloc(m->cap ? m->cap * 2 : 16, sizeof(char *)),
			     cw_xcalloc(m->cap ? m->cap * 2 : 16, sizeof(size_t)),
			     m->cap ? m->cap * 2 : 16, 0 };
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->keys[i])
			continue;
		size_t j = slot_for(&bigger, m->keys[i]);
		bigger.keys[j] = m->keys[i];
		bigger.values[j] = m->values[i];
		bigger.n++;
	}
	free(m->keys);
	free(m->values);
	*m = bigger;
}

void cw_strmap_put(cw_strmap *m, const char *key, size_t value)
{
	if ((m->n + 1) * 4 >= m->cap * 3)
		grow(m);
	size_t i = slot_for(m, key);
	if (!m->keys[i]) {
		m->keys[i] = cw_xstrdup(key);
		m->n++;
	}
	m->values[i] = value;
}

int cw_strmap_get(const cw_strmap *m, const char *key, size_t *value)
{
	if (!m->cap)
		return 0;
	size_t i = slot_for(m, key);
	if (!m->keys[i])
		return 0;
	*value = m->values[i];
	return 1;
}
