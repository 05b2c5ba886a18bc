/*
 * inventory — reading and validating the YAML inventory into the model.
 *
 * YAML (libyaml) -> node trees with positions -> typed model. Every problem is a
 * diagnostic with file:line:column and, where it helps, a hint; loading goes on after
 * an error so one run shows them all. An inventory with any error never reaches a CA
 * or a host: callers check the return value.
 *
 * Rejected: unknown keys ("did you mean"), duplicate keys, a name defined twice across
 * files, wrong types, bad durations/key types/usages/SANs, dangling issuer and target
 * references, authority parent cycles, literal secrets where a reference belongs,
 * characters a target cannot carry (asked of the target type), and profile violations.
 */
#ifndef CW_INVENTORY_H
#define CW_INVENTORY_H

#include <time.h>
#include "common/util.h"
#include "reconcile/model.h"

typedef struct {
	const char *name;         /* shown in diagnostics, e.g. "inventory/pki.yaml" */
	const char *data;
	size_t len;
} cw_inventory_file;

/* Parses the given files in order. now is used for date-dependent policy rules.
 * Returns 0 when there are no errors (warnings allowed), -1 otherwise; inv is filled as
 * far as possible either way and must be released. */
int cw_inventory_load_files(cw_inventory *inv, const cw_inventory_file *files, size_t n,
			    time_t now, cw_diags *diags);
/* Every *.yaml and *.yml directly in dir, sorted by name. err is set only when the
 * folder cannot be read (no files is an error too). */
int cw_inventory_load_dir(cw_inventory *inv, const char *dir, const char *display_prefix,
			  time_t now, cw_diags *diags, cw_error *err);

#endif
