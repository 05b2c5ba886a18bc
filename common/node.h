/*
 * node — a parsed YAML value with its source position. The inventory keeps target
 * settings as nodes: each target type declares a schema (cw_field) that the inventory
 * checks generically (unknown keys with hints, types), then reads values itself.
 */
#ifndef CW_NODE_H
#define CW_NODE_H

#include <stddef.h>
#include "util.h"

/* A YAML node with its position: kept for target settings, which each target type
 * interprets itself (after the inventory checked them against the type's schema). */
typedef enum { CW_NODE_SCALAR, CW_NODE_SEQ, CW_NODE_MAP } cw_node_kind;

typedef struct cw_node {
	cw_node_kind kind;
	cw_srcpos pos;
	char *value;            /* scalar text */
	int quoted;             /* scalar was quoted: "yes" stays a string */
	size_t n;
	char **keys;            /* map keys (n of them) */
	cw_srcpos *key_pos;     /* map key positions */
	struct cw_node **items; /* map values or sequence items */
} cw_node;

const cw_node *cw_node_get(const cw_node *map, const char *key);
void cw_node_free(cw_node *n);

/* Schema of a target type's settings, checked by the inventory before any target opens. */
typedef enum {
	CW_FIELD_STRING,       /* any scalar */
	CW_FIELD_INT,
	CW_FIELD_BOOL,         /* true/false/yes/no */
	CW_FIELD_DURATION,     /* "30s", "5m" */
	CW_FIELD_SECRET,       /* "env:NAME" or "file:PATH"; a literal is an error */
	CW_FIELD_STRING_LIST,  /* sequence of scalars (argv, for example) */
	CW_FIELD_MAP,          /* nested map checked against sub */
	CW_FIELD_MODE,         /* octal file mode "0640" */
	CW_FIELD_ADDRESS,      /* "host:port" or "host" */
	CW_FIELD_PATH,         /* a file system path; "~/" expands to $HOME */
} cw_field_kind;

typedef struct cw_field {
	const char *name;
	cw_field_kind kind;
	int required;
	const struct cw_field *sub;   /* CW_FIELD_MAP: NULL-name-terminated */
	const char *doc;              /* one line for the README and --help */
} cw_field;

/* Typed getters for target code; each returns def when the key is absent. */
const char *cw_node_str(const cw_node *map, const char *key, const char *def);
int cw_node_bool(const cw_node *map, const char *key, int def);
long cw_node_int(const cw_node *map, const char *key, long def);
int64_t cw_node_duration(const cw_node *map, const char *key, int64_t def);
unsigned cw_node_mode(const cw_node *map, const char *key, unsigned def);

/* Scalar readers shared by the inventory's schema check and the getters above, so a
 * value that validates is read the same way. Each returns 0 on success, -1 otherwise.
 * bool: true/false/yes/no (any case). int: decimal, optional sign, no leading zeros
 * (YAML 1.1 would read "010" as octal). mode: 3-4 octal digits ("640", "0640", "0o640"). */
int cw_node_parse_bool(const char *s, int *out);
int cw_node_parse_int(const char *s, long *out);
int cw_node_parse_mode(const char *s, unsigned *out);

/* Parses one YAML document (libyaml) into a node tree. file names the source in
 * positions and must outlive the tree. Problems become diagnostics: "inventory.yaml"
 * (syntax, anchors/aliases, unknown tags, several documents, nesting deeper than 64)
 * and "inventory.duplicate-key" (the later value is dropped). Returns 0 with *root set
 * (NULL for an empty file) or -1 when the text cannot be used; *root is then NULL. */
int cw_node_parse_yaml(cw_node **root, const char *file, const char *data, size_t len,
		       cw_diags *diags);

#endif
