/*
 * registry — the table of target types (see target.h).
 *
 * Built-in types are one line each in builtin_types[]. Tests add fakes with
 * cw_target_register(); that is the only mutable state, kept behind a mutex and
 * append-only, so a name list handed out earlier stays valid and NULL-terminated.
 */
#include "targets/target.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "targets/files.h"
#include "targets/softether.h"

#define REGISTRY_EXTRA_MAX 16

static const cw_target_ops *const builtin_types[] = {
	&cw_files_target,
	&cw_softether_target,
};

#define NBUILTIN (sizeof(builtin_types) / sizeof(builtin_types[0]))

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static const cw_target_ops *extra_types[REGISTRY_EXTRA_MAX];
static size_t nextra;
/* Built-in names first, then registered ones; always NULL-terminated (zero-filled). */
static const char *type_names[NBUILTIN + REGISTRY_EXTRA_MAX + 1];
static int names_ready;

static void fill_builtin_names_locked(void)
{
	if (names_ready)
		return;
	for (size_t i = 0; i < NBUILTIN; i++)
		type_names[i] = builtin_types[i]->type;
	names_ready = 1;
}

static const cw_target_ops *find_locked(const char *type)
{
	for (size_t i = 0; i < NBUILTIN; i++)
		if (!strcmp(builtin_types[i]->type, type))
			return builtin_types[i];
	for (size_t i = 0; i < nextra; i++)
		if (!strcmp(extra_types[i]->type, type))
			return extra_types[i];
	return NULL;
}

const cw_target_ops *cw_target_type(const char *type)
{
	if (!type)
		return NULL;
	pthread_mutex_lock(&registry_lock);
	const cw_target_ops *ops = find_locked(type);
	pthread_mutex_unlock(&registry_lock);
	return ops;
}

/* Registering the same table twice is fine (several tests in one program); another
 * table under a taken name, a wrong API version or a full table is refused. */
int cw_target_register(const cw_target_ops *ops)
{
	if (!ops || !ops->type || !*ops->type || ops->api_version != CW_TARGET_API_VERSION)
		return -1;
	int rc = 0;
	pthread_mutex_lock(&registry_lock);
	fill_builtin_names_locked();
	const cw_target_ops *known = find_locked(ops->type);
	if (known)
		rc = known == ops ? 0 : -1;
	else if (nextra == REGISTRY_EXTRA_MAX)
		rc = -1;
	else {
		type_names[NBUILTIN + nextra] = ops->type;
		extra_types[nextra++] = ops;
	}
	pthread_mutex_unlock(&registry_lock);
	return rc;
}

const char *const *cw_target_type_names(void)
{
	pthread_mutex_lock(&registry_lock);
	fill_builtin_names_locked();
	pthread_mutex_unlock(&registry_lock);
	return type_names;
}

void cw_target_log(const cw_target_env *env, const char *target, int level, const char *fmt, ...)
{
	if (!env || !env->log)
		return;
	cw_buf b = CW_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cw_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	env->log(env->log_ud, level, target, b.buf);
	cw_buf_release(&b);
}

void cw_observation_release(cw_observation *o)
{
	if (!o)
		return;
	free(o->cert.data);
	for (size_t i = 0; i < o->nchain; i++)
		free(o->chain[i].data);
	free(o->chain);
	for (size_t i = 0; i < o->nbound; i++)
		free(o->bound[i]);
	free(o->bound);
	free(o->note);
	free(o->digest);
	memset(o, 0, sizeof(*o));
}

void cw_device_facts_release(cw_device_facts *f)
{
	if (!f)
		return;
	free(f->version);
	free(f->note);
	memset(f, 0, sizeof(*f));
}
