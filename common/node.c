/*
 * node — YAML text to position-carrying node trees, and the typed getters target code
 * reads its settings with. See node.h.
 *
 * The tree is built from libyaml's event API with bounded recursion (NODE_MAX_DEPTH),
 * so hostile input can cost memory proportional to its size but never the stack.
 * libyaml accepts things the inventory must not: duplicate keys (YAML says they are an
 * error, libyaml does not check), anchors and aliases (a value that changes in one place
 * and silently elsewhere, and the "billion laughs" expansion), and custom tags.
 */
#include "common/node.h"
#include "common/strmap.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define NODE_MAX_DEPTH 64
#define CODE_YAML "inventory.yaml"
#define CODE_DUPLICATE_KEY "inventory.duplicate-key"

/* ---- lookups and getters ---- */

const cw_node *cw_node_get(const cw_node *map, const char *key)
{
	if (!map || map->kind != CW_NODE_MAP || !key)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (map->keys[i] && !strcmp(map->keys[i], key))
			return map->items[i];
	return NULL;
}

void cw_node_free(cw_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		if (n->keys)
			free(n->keys[i]);
		cw_node_free(n->items[i]);
	}
	free(n->keys);
	free(n->key_pos);
	free(n->items);
	free(n->value);
	free(n);
}

/* The scalar under key, or NULL when absent or not a scalar. */
static const char *scalar_at(const cw_node *map, const char *key)
{
	const cw_node *n = cw_node_get(map, key);
	return n && n->kind == CW_NODE_SCALAR ? n->value : NULL;
}

int cw_node_parse_bool(const char *s, int *out)
{
	if (!s)
		return -1;
	if (!strcasecmp(s, "true") || !strcasecmp(s, "yes")) {
		*out = 1;
		return 0;
	}
	if (!strcasecmp(s, "false") || !strcasecmp(s, "no")) {
		*out = 0;
		return 0;
	}
	return -1;
}

int cw_node_parse_int(const char *s, long *out)
{
	if (!s)
		return -1;
	const char *digits = (*s == '-' || *s == '+') ? s + 1 : s;
	if (!isdigit((unsigned char)*digits))
		return -1;
	if (digits[0] == '0' && digits[1] != '\0')
		return -1;
	errno = 0;
	char *end = NULL;
	long v = strtol(s, &end, 10);
	if (errno || !end || *end)
		return -1;
	*out = v;
	return 0;
}

int cw_node_parse_mode(const char *s, unsigned *out)
{
	if (!s)
		return -1;
	if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
		s += 2;
	size_t len = strlen(s);
	if (len < 3 || len > 4)
		return -1;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '7')
			return -1;
		v = v * 8 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return 0;
}

const char *cw_node_str(const cw_node *map, const char *key, const char *def)
{
	const char *s = scalar_at(map, key);
	return s ? s : def;
}

int cw_node_bool(const cw_node *map, const char *key, int def)
{
	int v;
	return cw_node_parse_bool(scalar_at(map, key), &v) == 0 ? v : def;
}

long cw_node_int(const cw_node *map, const char *key, long def)
{
	long v;
	return cw_node_parse_int(scalar_at(map, key), &v) == 0 ? v : def;
}

int64_t cw_node_duration(const cw_node *map, const char *key, int64_t def)
{
	int64_t v;
	const char *s = scalar_at(map, key);
	return s && cw_parse_duration(s, &v) == 0 ? v : def;
}

unsigned cw_node_mode(const cw_node *map, const char *key, unsigned def)
{
	unsigned v;
	return cw_node_parse_mode(scalar_at(map, key), &v) == 0 ? v : def;
}

/* ---- YAML to nodes ---- */

typedef struct {
	yaml_parser_t parser;
	const char *file;
	const unsigned char *data;
	size_t len;
	cw_diags *diags;
	int unusable;   /* an alias or a NUL byte: the tree would not mean what the text says */
} yaml_reader;

static cw_srcpos mark_pos(const yaml_reader *r, yaml_mark_t m)
{
	cw_srcpos pos = { r->file, (int)m.line + 1, (int)m.column + 1 };
	return pos;
}

/* Line and column (in characters) of a byte offset: libyaml's reader errors (bad UTF-8,
 * control characters) only say where in bytes. */
static cw_srcpos offset_pos(const yaml_reader *r, size_t offset)
{
	cw_srcpos pos = { r->file, 1, 1 };
	for (size_t i = 0; i < offset && i < r->len; i++) {
		if (r->data[i] == '\n') {
			pos.line++;
			pos.col = 1;
		} else if ((r->data[i] & 0xc0) != 0x80) {
			pos.col++;
		}
	}
	return pos;
}

/* The byte at a 1-based line and character column, or -1 past the end. */
static int byte_at(const yaml_reader *r, int line, int col)
{
	size_t i = 0;
	for (int l = 1; l < line && i < r->len; i++)
		if (r->data[i] == '\n')
			l++;
	for (int c = 1; i < r->len; i++) {
		if ((r->data[i] & 0xc0) == 0x80)
			continue;
		if (c++ == col)
			return r->data[i];
		if (r->data[i] == '\n')
			break;
	}
	return -1;
}

static void report_syntax(yaml_reader *r)
{
	const yaml_parser_t *p = &r->parser;
	const char *problem = p->problem ? p->problem : "cannot parse";
	if (p->error == YAML_READER_ERROR) {
		cw_srcpos pos = offset_pos(r, p->problem_offset);
		cw_diag_add(r->diags, CW_SEV_ERROR, &pos, CODE_YAML, "inventory files are UTF-8 text",
			    "yaml: %s", problem);
		return;
	}
	if (p->error == YAML_MEMORY_ERROR) {
		cw_diag_add(r->diags, CW_SEV_ERROR, NULL, CODE_YAML, NULL, "%s: yaml: out of memory",
			    r->file);
		return;
	}
	cw_srcpos pos = mark_pos(r, p->problem_mark);
	char *hint = NULL;
	if (byte_at(r, pos.line, pos.col) == '\t')
		hint = cw_xstrdup("indent with spaces: YAML does not allow tabs there");
	else if (p->context)
		hint = cw_xasprintf("%s at line %d, column %d", p->context,
				    (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
	cw_diag_add(r->diags, CW_SEV_ERROR, &pos, CODE_YAML, hint, "yaml: %s", problem);
	free(hint);
}

static int reader_next(yaml_reader *r, yaml_event_t *ev)
{
	if (yaml_parser_parse(&r->parser, ev))
		return 0;
	report_syntax(r);
	return -1;
}

static cw_node *node_new(cw_node_kind kind, cw_srcpos pos)
{
	cw_node *n = cw_xcalloc(1, sizeof(*n));
	n->kind = kind;
	n->pos = pos;
	return n;
}

/* Room for one more entry; capacity doubles at powers of two, so no extra field is needed. */
static void node_reserve(cw_node *n)
{
	if (n->n != 0 && (n->n & (n->n - 1)) != 0)
		return;
	size_t cap = n->n ? n->n * 2 : 4;
	n->items = cw_xrealloc(n->items, cap * sizeof(*n->items));
	if (n->kind == CW_NODE_MAP) {
		n->keys = cw_xrealloc(n->keys, cap * sizeof(*n->keys));
		n->key_pos = cw_xrealloc(n->key_pos, cap * sizeof(*n->key_pos));
	}
}

/* Anchors and tags on a node. Anchors are refused (see the top of this file); of the
 * tags only the YAML core ones are known, and !!str makes a plain scalar a string. */
static void check_properties(yaml_reader *r, const yaml_char_t *anchor, const yaml_char_t *tag,
			     cw_srcpos pos, int *force_string)
{
	if (anchor)
		cw_diag_add(r->diags, CW_SEV_ERROR, &pos, CODE_YAML,
			    "write the value out; shared settings belong in defaults:",
			    "yaml: anchor '&%s': anchors and aliases are not supported",
			    (const char *)anchor);
	if (!tag || !strcmp((const char *)tag, "!"))
		return;
	static const char core[] = "tag:yaml.org,2002:";
	if (!strncmp((const char *)tag, core, sizeof(core) - 1)) {
		if (force_string && !strcmp((const char *)tag + sizeof(core) - 1, "str"))
			*force_string = 1;
		return;
	}
	cw_diag_add(r->diags, CW_SEV_ERROR, &pos, CODE_YAML, NULL, "yaml: tag '%s' is not supported",
		    (const char *)tag);
}

static int parse_node(yaml_reader *r, yaml_event_t *ev, int depth, cw_node **out);

static int parse_scalar(yaml_reader *r, yaml_event_t *ev, cw_node **out)
{
	cw_srcpos pos = mark_pos(r, ev->start_mark);
	const char *value = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	int force_string = 0;
	check_properties(r, ev->data.scalar.anchor, ev->data.scalar.tag, pos, &force_string);
	if (memchr(value, '\0', len)) {
		/* a C string would silently end there: refuse rather than truncate */
		cw_diag_add(r->diags, CW_SEV_ERROR, &pos, CODE_YAML, NULL,
			    "yaml: value contains a NUL character");
		r->unusable = 1;
	}
	cw_node *n = node_new(CW_NODE_SCALAR, pos);
	n->value = cw_xstrndup(value, len);
	n->quoted = force_string || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
	*out = n;
	yaml_event_delete(ev);
	return 0;
}

static int parse_sequence(yaml_reader *r, yaml_event_t *ev, int depth, cw_node **out)
{
	cw_srcpos pos = mark_pos(r, ev->start_mark);
	check_properties(r, ev->data.sequence_start.anchor, ev->data.sequence_start.tag, pos, NULL);
	yaml_event_delete(ev);
	cw_node *seq = node_new(CW_NODE_SEQ, pos);
	for (;;) {
		yaml_event_t item_ev;
		if (reader_next(r, &item_ev) != 0)
			goto fail;
		if (item_ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&item_ev);
			break;
		}
		cw_node *item;
		if (parse_node(r, &item_ev, depth + 1, &item) != 0)
			goto fail;
		node_reserve(seq);
		seq->items[seq->n++] = item;
	}
	*out = seq;
	return 0;
fail:
	cw_node_free(seq);
	return -1;
}

/* Adds key: value to map, refusing non-scalar and duplicate keys (the later value is
 * dropped, so lookups stay unambiguous). Takes ownership of key and value. */
static void map_add(yaml_reader *r, cw_node *map, cw_strmap *seen, cw_node *key, cw_srcpos key_pos,
		    cw_node *value)
{
	if (key->kind != CW_NODE_SCALAR) {
		cw_diag_add(r->diags, CW_SEV_ERROR, &key_pos, CODE_YAML, NULL,
			    "yaml: map keys must be plain strings, not %s",
			    key->kind == CW_NODE_MAP ? "maps" : "lists");
		goto drop;
	}
	/* a hash of the keys seen so far: an inventory map holds thousands of certificates */
	size_t i;
	if (cw_strmap_get(seen, key->value, &i)) {
		cw_diag_add(r->diags, CW_SEV_ERROR, &key_pos, CODE_DUPLICATE_KEY, NULL,
			    "key '%s' appears twice in the same map (first at line %d, column %d)",
			    key->value, map->key_pos[i].line, map->key_pos[i].col);
		goto drop;
	}
	cw_strmap_put(seen, key->value, map->n);
	node_reserve(map);
	map->keys[map->n] = key->value;
	map->key_pos[map->n] = key_pos;
	map->items[map->n] = value;
	map->n++;
	key->value = NULL;
	cw_node_free(key);
	return;
drop:
	cw_node_free(key);
	cw_node_free(value);
}

static int parse_mapping(yaml_reader *r, yaml_event_t *ev, int depth, cw_node **out)
{
	cw_srcpos pos = mark_pos(r, ev->start_mark);
	check_properties(r, ev->data.mapping_start.anchor, ev->data.mapping_start.tag, pos, NULL);
	yaml_event_delete(ev);
	cw_node *map = node_new(CW_NODE_MAP, pos);
	cw_strmap seen;
	cw_strmap_init(&seen);
	for (;;) {
		yaml_event_t key_ev, value_ev;
		if (reader_next(r, &key_ev) != 0)
			goto fail;
		if (key_ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&key_ev);
			break;
		}
		cw_srcpos key_pos = mark_pos(r, key_ev.start_mark);
		cw_node *key, *value;
		if (parse_node(r, &key_ev, depth + 1, &key) != 0)
			goto fail;
		if (reader_next(r, &value_ev) != 0 ||
		    parse_node(r, &value_ev, depth + 1, &value) != 0) {
			cw_node_free(key);
			goto fail;
		}
		map_add(r, map, &seen, key, key_pos, value);
	}
	cw_strmap_release(&seen);
	*out = map;
	return 0;
fail:
	cw_strmap_release(&seen);
	cw_node_free(map);
	return -1;
}

/* Takes ownership of ev (always deleted). */
static int parse_node(yaml_reader *r, yaml_event_t *ev, int depth, cw_node **out)
{
	*out = NULL;
	cw_srcpos pos = mark_pos(r, ev->start_mark);
	if (depth > NODE_MAX_DEPTH) {
		cw_diag_add(r->diags, CW_SEV_ERROR, &pos, CODE_YAML, NULL,
			    "yaml: nested deeper than %d levels", NODE_MAX_DEPTH);
		yaml_event_delete(ev);
		return -1;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return parse_scalar(r, ev, out);
	case YAML_SEQUENCE_START_EVENT:
		return parse_sequence(r, ev, depth, out);
	case YAML_MAPPING_START_EVENT:
		return parse_mapping(r, ev, depth, out);
	case YAML_ALIAS_EVENT:
		cw_diag_add(r->diags, CW_SEV_ERROR, &pos, CODE_YAML,
			    "write the value out; shared settings belong in defaults:",
			    "yaml: alias '*%s': anchors and aliases are not supported",
			    (const char *)ev->data.alias.anchor);
		r->unusable = 1;
		yaml_event_delete(ev);
		/* a placeholder keeps the parse going so every problem is reported */
		*out = node_new(CW_NODE_SCALAR, pos);
		(*out)->value = cw_xstrdup("");
		return 0;
	default:
		cw_diag_add(r->diags, CW_SEV_ERROR, &pos, CODE_YAML, NULL,
			    "yaml: unexpected event %d", (int)ev->type);
		yaml_event_delete(ev);
		return -1;
	}
}

/* After STREAM-START: an empty stream, or one document and the end of the stream. */
static int parse_stream_body(yaml_reader *r, cw_node **root)
{
	yaml_event_t ev;
	if (reader_next(r, &ev) != 0)
		return -1;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		return 0;
	}
	yaml_event_delete(&ev); /* DOCUMENT-START */
	if (reader_next(r, &ev) != 0 || parse_node(r, &ev, 1, root) != 0)
		return -1;
	if (reader_next(r, &ev) != 0) /* DOCUMENT-END */
		return -1;
	yaml_event_delete(&ev);
	if (reader_next(r, &ev) != 0)
		return -1;
	int more = ev.type == YAML_DOCUMENT_START_EVENT;
	if (more) {
		cw_srcpos pos = mark_pos(r, ev.start_mark);
		cw_diag_add(r->diags, CW_SEV_ERROR, &pos, CODE_YAML,
			    "put each document in a file of its own",
			    "yaml: a second document in one file is not supported");
	}
	yaml_event_delete(&ev);
	return more ? -1 : 0;
}

int cw_node_parse_yaml(cw_node **root, const char *file, const char *data, size_t len,
		       cw_diags *diags)
{
	*root = NULL;
	yaml_reader r;
	memset(&r, 0, sizeof(r));
	r.file = file;
	r.data = (const unsigned char *)data;
	r.len = len;
	r.diags = diags;
	if (!yaml_parser_initialize(&r.parser)) {
		cw_diag_add(diags, CW_SEV_ERROR, NULL, CODE_YAML, NULL, "%s: yaml: out of memory", file);
		return -1;
	}
	yaml_parser_set_input_string(&r.parser, r.data, len);
	yaml_event_t ev;
	int rc = reader_next(&r, &ev);
	if (rc == 0) {
		yaml_event_delete(&ev); /* STREAM-START */
		rc = parse_stream_body(&r, root);
	}
	yaml_parser_delete(&r.parser);
	if (rc != 0 || r.unusable) {
		cw_node_free(*root);
		*root = NULL;
		return -1;
	}
	return 0;
}
