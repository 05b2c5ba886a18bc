/* model — lookups by name and the release of a loaded inventory. See model.h. */
#include "reconcile/model.h"

#include <stdlib.h>
#include <string.h>

/* The index when the loader built one for all n entries, else a scan (an inventory
 * assembled by hand in a test has no index). */
static size_t find_index(const cw_strmap *index, size_t n, const void *base, size_t stride,
			 size_t name_offset, const char *name)
{
	if (!name)
		return n;
	size_t i;
	if (index->n == n && n > 0)
		return cw_strmap_get(index, name, &i) ? i : n;
	for (i = 0; i < n; i++) {
		const char *const *entry_name =
			(const char *const *)((const char *)base + i * stride + name_offset);
		if (*entry_name && !strcmp(*entry_name, name))
			return i;
	}
	return n;
}

cw_authority *cw_inventory_authority(const cw_inventory *inv, const char *name)
{
	size_t i = find_index(&inv->authority_index, inv->nauthorities, inv->authorities,
			      sizeof(cw_authority), offsetof(cw_authority, name), name);
	return i < inv->nauthorities ? &inv->authorities[i] : NULL;
}

cw_certificate *cw_inventory_certificate(const cw_inventory *inv, const char *name)
{
	size_t i = find_index(&inv->certificate_index, inv->ncertificates, inv->certificates,
			      sizeof(cw_certificate), offsetof(cw_certificate, name), name);
	return i < inv->ncertificates ? &inv->certificates[i] : NULL;
}

cw_target *cw_inventory_target(const cw_inventory *inv, const char *name)
{
	size_t i = find_index(&inv->target_index, inv->ntargets, inv->targets, sizeof(cw_target),
			      offsetof(cw_target, name), name);
	return i < inv->ntargets ? &inv->targets[i] : NULL;
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void authority_release(cw_authority *a)
{
	free(a->name);
	free(a->type);
	free(a->parent);
	free(a->on_remove);
	free_strings(a->profiles, a->nprofiles);
	cw_cert_spec_release(&a->spec);
}

static void certificate_release(cw_certificate *c)
{
	free(c->name);
	free(c->issuer);
	free_strings(c->profiles, c->nprofiles);
	cw_cert_spec_release(&c->spec);
	for (size_t i = 0; i < c->ndeploy; i++) {
		free(c->deploy[i].target);
		free_strings(c->deploy[i].bind, c->deploy[i].nbind);
	}
	free(c->deploy);
	free(c->revoke_reason);
	free(c->export.path);
	free(c->export.passphrase);
}

static void target_release(cw_target *t)
{
	free(t->name);
	free(t->type);
	cw_node_free(t->config);
}

void cw_inventory_release(cw_inventory *inv)
{
	if (!inv)
		return;
	for (size_t i = 0; i < inv->nauthorities; i++)
		authority_release(&inv->authorities[i]);
	free(inv->authorities);
	for (size_t i = 0; i < inv->ncertificates; i++)
		certificate_release(&inv->certificates[i]);
	free(inv->certificates);
	for (size_t i = 0; i < inv->ntargets; i++)
		target_release(&inv->targets[i]);
	free(inv->targets);
	/* positions in diagnostics were copied; positions in the model die with the files */
	free_strings(inv->files, inv->nfiles);
	free(inv->report_dir);
	cw_strmap_release(&inv->authority_index);
	cw_strmap_release(&inv->certificate_index);
	cw_strmap_release(&inv->target_index);
	memset(inv, 0, sizeof(*inv));
}
