/* state — the issuance index and the deployment records in the keystore. See state.h. */
#include "reconcile/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#define INDEX_FORMAT "certwright-index"
#define DEPLOY_FORMAT "certwright-deployments"
#define INDEX_DIR "index"
#define SNAPSHOT_NAME "deployments.json"
#define JOURNAL_NAME "journal.jsonl"
#define STATE_FILE_CAP ((size_t)512 << 20)

/* ---- hash indexes ----
 * Open addressing over indices into st->issued / st->deploys. A slot holds the key's hash
 * and index + 1 (0 = empty); keys are compared through the arrays, so nothing is copied. */

typedef struct {
	uint64_t hash;
	size_t ref;  /* index + 1; 0 = empty */
} idx_slot;

typedef struct {
	idx_slot *slots;
	size_t cap, n;
} idx_map;

typedef int (*idx_match)(const void *key, size_t index);

struct cw_state_lookup {
	idx_map by_serial;   /* (issuer, serial) -> issued */
	idx_map by_name;     /* name -> the current (newest non-revoked) issued entry */
	idx_map by_deploy;   /* (target, certificate) -> deploys */
	size_t nissued, ndeploys;  /* what the maps cover: anything else means "scan" */
	off_t journal_good;  /* bytes of complete, valid journal lines; beyond it is torn */
};

static uint64_t hash_mix(uint64_t h)
{
	/* splitmix64 finaliser: FNV's low bits are weak and the table masks with them */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

static uint64_t hash_pair(const char *a, const char *b)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	h = (h ^ 0xff) * 0x100000001b3ull;  /* separator: ("ab","c") != ("a","bc") */
	for (const unsigned char *p = (const unsigned char *)(b ? b : ""); *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return hash_mix(h);
}

static idx_slot *idx_probe(const idx_map *m, uint64_t hash, idx_match match, const void *key)
{
	size_t mask = m->cap - 1;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		idx_slot *s = &m->slots[i];
		if (!s->ref || (s->hash == hash && match(key, s->ref - 1)))
			return s;
	}
}

static void idx_grow(idx_map *m)
{
	idx_map bigger = { cw_xcalloc(m->cap ? m->cap * 2 : 64, sizeof(idx_slot)),
			   m->cap ? m->cap * 2 : 64, m->n };
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].ref)
			continue;
		size_t j = m->slots[i].hash & (bigger.cap - 1);
		while (bigger.slots[j].ref)
			j = (j + 1) & (bigger.cap - 1);
		bigger.slots[j] = m->slots[i];
	}
	free(m->slots);
	*m = bigger;
}

/* The slot for key: filled when present, empty (ready to fill) when not. */
static idx_slot *idx_slot_for(idx_map *m, uint64_t hash, idx_match match, const void *key)
{
	if ((m->n + 1) * 2 > m->cap)
		idx_grow(m);
	return idx_probe(m, hash, match, key);
}

static void idx_fill(idx_map *m, idx_slot *s, uint64_t hash, size_t index)
{
	if (!s->ref)
		m->n++;
	s->hash = hash;
	s->ref = index + 1;
}

static long idx_get(const idx_map *m, uint64_t hash, idx_match match, const void *key)
{
	if (!m->cap)
		return -1;
	const idx_slot *s = idx_probe(m, hash, match, key);
	return s->ref ? (long)(s->ref - 1) : -1;
}

static void idx_clear(idx_map *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

typedef struct {
	const cw_state *st;
	const char *a, *b;
} pair_key;

static int match_serial(const void *key, size_t i)
{
	const pair_key *k = key;
	const cw_issued *e = &k->st->issued[i];
	return !strcmp(e->serial, k->b) && !strcmp(e->issuer, k->a);
}

static int match_name(const void *key, size_t i)
{
	const pair_key *k = key;
	return !strcmp(k->st->issued[i].name, k->a);
}

static int match_deploy(const void *key, size_t i)
{
	const pair_key *k = key;
	const cw_deploy_record *r = &k->st->deploys[i];
	return !strcmp(r->certificate, k->b) && !strcmp(r->target, k->a);
}

/* ---- lookups ---- */

static int issued_indexed(const cw_state *st)
{
	return st->lookup && st->lookup->nissued == st->nissued;
}

static int deploys_indexed(const cw_state *st)
{
	return st->lookup && st->lookup->ndeploys == st->ndeploys;
}

static long find_issued(const cw_state *st, const char *issuer, const char *serial)
{
	pair_key k = { st, issuer, serial };
	if (issued_indexed(st))
		return idx_get(&st->lookup->by_serial, hash_pair(issuer, serial), match_serial, &k);
	for (size_t i = 0; i < st->nissued; i++)
		if (match_serial(&k, i))
			return (long)i;
	return -1;
}

static long find_deploy(const cw_state *st, const char *target, const char *certificate)
{
	pair_key k = { st, target, certificate };
	if (deploys_indexed(st))
		return idx_get(&st->lookup->by_deploy, hash_pair(target, certificate), match_deploy, &k);
	for (size_t i = 0; i < st->ndeploys; i++)
		if (match_deploy(&k, i))
			return (long)i;
	return -1;
}

const cw_issued *cw_state_current(const cw_state *st, const char *name)
{
	if (issued_indexed(st)) {
		pair_key k = { st, name, NULL };
		long i = idx_get(&st->lookup->by_name, hash_pair(name, NULL), match_name, &k);
		return i < 0 ? NULL : &st->issued[i];
	}
	const cw_issued *best = NULL;
	for (size_t i = 0; i < st->nissued; i++) {
		const cw_issued *e = &st->issued[i];
		if (!e->revoked && !strcmp(e->name, name) && (!best || e->seq > best->seq))
			best = e;
	}
	return best;
}

const cw_issued *cw_state_find(const cw_state *st, const char *issuer, const char *serial)
{
	long i = find_issued(st, issuer, serial);
	return i < 0 ? NULL : &st->issued[i];
}

const cw_deploy_record *cw_state_deploy_record(const cw_state *st, const char *target,
					       const char *certificate)
{
	/* deploys grow under the lock while targets run in parallel */
	pthread_mutex_t *lock = (pthread_mutex_t *)&st->lock;
	pthread_mutex_lock(lock);
	long i = find_deploy(st, target, certificate);
	pthread_mutex_unlock(lock);
	return i < 0 ? NULL : &st->deploys[i];
}

/* Makes entry i known to the maps; a revoked or older entry leaves "current" alone. */
static int index_issued(cw_state *st, size_t i)
{
	struct cw_state_lookup *lk = st->lookup;
	const cw_issued *e = &st->issued[i];
	pair_key k = { st, e->issuer, e->serial };
	uint64_t h = hash_pair(e->issuer, e->serial);
	idx_slot *s = idx_slot_for(&lk->by_serial, h, match_serial, &k);
	if (s->ref)
		return -1;  /* (issuer, serial) recorded twice */
	idx_fill(&lk->by_serial, s, h, i);
	if (!e->revoked) {
		pair_key nk = { st, e->name, NULL };
		h = hash_pair(e->name, NULL);
		s = idx_slot_for(&lk->by_name, h, match_name, &nk);
		if (!s->ref || st->issued[s->ref - 1].seq < e->seq)
			idx_fill(&lk->by_name, s, h, i);
	}
	lk->nissued = i + 1;
	return 0;
}

/* Rebuilds the issued maps; returns the index of a duplicate (issuer, serial) or -1. */
static long reindex_issued(cw_state *st)
{
	idx_clear(&st->lookup->by_serial);
	idx_clear(&st->lookup->by_name);
	for (size_t i = 0; i < st->nissued; i++)
		if (index_issued(st, i) != 0)
			return (long)i;
	st->lookup->nissued = st->nissued;
	return -1;
}

static void index_deploy(cw_state *st, size_t i)
{
	const cw_deploy_record *r = &st->deploys[i];
	pair_key k = { st, r->target, r->certificate };
	uint64_t h = hash_pair(r->target, r->certificate);
	idx_fill(&st->lookup->by_deploy,
		 idx_slot_for(&st->lookup->by_deploy, h, match_deploy, &k), h, i);
	st->lookup->ndeploys = i + 1;
}

/* ---- record lifecycles ---- */

void cw_issued_release(cw_issued *e)
{
	if (!e)
		return;
	free(e->name);
	free(e->issuer);
	free(e->serial);
	free(e->subject);
	cw_cert_spec_release(&e->spec);
	free(e->issuer_key_id);
	free(e->key_id);
	free(e->revoke_reason);
	memset(e, 0, sizeof(*e));
}

static void issued_copy(cw_issued *dst, const cw_issued *src)
{
	*dst = *src;
	dst->name = cw_xstrdup(src->name);
	dst->issuer = cw_xstrdup(src->issuer);
	dst->serial = cw_xstrdup(src->serial);
	dst->subject = cw_xstrdup(src->subject);
	cw_cert_spec_copy(&dst->spec, &src->spec);
	dst->issuer_key_id = cw_xstrdup(src->issuer_key_id);
	dst->key_id = cw_xstrdup(src->key_id);
	dst->revoke_reason = cw_xstrdup(src->revoke_reason);
}

void cw_deploy_record_release(cw_deploy_record *r)
{
	if (!r)
		return;
	free(r->target);
	free(r->certificate);
	free(r->serial);
	free(r->last_error);
	for (size_t i = 0; i < r->nbound; i++)
		free(r->bound[i]);
	free(r->bound);
	memset(r, 0, sizeof(*r));
}

static void deploy_copy(cw_deploy_record *dst, const cw_deploy_record *src)
{
	*dst = *src;
	dst->target = cw_xstrdup(src->target);
	dst->certificate = cw_xstrdup(src->certificate);
	dst->serial = cw_xstrdup(src->serial);
	dst->last_error = cw_xstrdup(src->last_error);
	dst->bound = src->nbound ? cw_xcalloc(src->nbound, sizeof(char *)) : NULL;
	for (size_t i = 0; i < src->nbound; i++)
		dst->bound[i] = cw_xstrdup(src->bound[i]);
}

static cw_issued *push_issued(cw_state *st)
{
	if (st->nissued == st->cap_issued) {
		st->cap_issued = st->cap_issued ? st->cap_issued * 2 : 64;
		st->issued = cw_xrealloc(st->issued, st->cap_issued * sizeof(cw_issued));
	}
	cw_issued *e = &st->issued[st->nissued++];
	memset(e, 0, sizeof(*e));
	return e;
}

/* Replaces the record for (target, certificate) or adds it: later wins. Takes ownership. */
static void upsert_deploy(cw_state *st, cw_deploy_record *rec)
{
	long i = find_deploy(st, rec->target, rec->certificate);
	if (i >= 0) {
		cw_deploy_record_release(&st->deploys[i]);
		st->deploys[i] = *rec;
		return;
	}
	if (st->ndeploys == st->cap_deploys) {
		st->cap_deploys = st->cap_deploys ? st->cap_deploys * 2 : 64;
		st->deploys = cw_xrealloc(st->deploys, st->cap_deploys * sizeof(cw_deploy_record));
	}
	st->deploys[st->ndeploys++] = *rec;
	if (st->lookup && st->lookup->ndeploys == st->ndeploys - 1)
		index_deploy(st, st->ndeploys - 1);
}

const char *cw_deploy_status_name(cw_deploy_status s)
{
	switch (s) {
	case CW_DEPLOY_STARTED: return "started";
	case CW_DEPLOY_OK: return "ok";
	case CW_DEPLOY_FAILED: return "failed";
	case CW_DEPLOY_REMOVED: return "removed";
	}
	return "unknown";
}

static int deploy_status_parse(const char *s, cw_deploy_status *out)
{
	for (cw_deploy_status st = CW_DEPLOY_STARTED; st <= CW_DEPLOY_REMOVED; st++)
		if (s && !strcmp(cw_deploy_status_name(st), s)) {
			*out = st;
			return 0;
		}
	return -1;
}

/* ---- rendering to JSON ----
 * Identifiers that are not valid UTF-8 make rendering fail (they could not be read back
 * and matched); free text such as a device's error message is made printable instead. */

typedef struct {
	json_t *obj;
	const char *bad;  /* the first field that could not be rendered */
} jwriter;

static void jw_id(jwriter *w, const char *key, const char *value)
{
	json_t *v = value ? json_string(value) : json_null();
	if (!v && !w->bad)
		w->bad = key;
	json_object_set_new(w->obj, key, v ? v : json_null());
}

static void jw_text(jwriter *w, const char *key, const char *value)
{
	json_t *v = value ? json_string(value) : json_null();
	if (!v) {
		char *clean = cw_xstrdup(value);
		for (char *c = clean; *c; c++)
			if ((unsigned char)*c >= 0x80)
				*c = '?';
		v = json_string(clean);
		free(clean);
	}
	json_object_set_new(w->obj, key, v);
}

static void jw_time(jwriter *w, const char *key, time_t t)
{
	char text[32];
	cw_format_time(t, text);
	json_object_set_new(w->obj, key, json_string(text));
}

static void jw_int(jwriter *w, const char *key, long long v)
{
	json_object_set_new(w->obj, key, json_integer((json_int_t)v));
}

static void jw_bool(jwriter *w, const char *key, int v)
{
	json_object_set_new(w->obj, key, json_boolean(v));
}

static json_t *sans_to_json(const cw_cert_spec *spec, jwriter *w)
{
	json_t *a = json_array();
	for (size_t i = 0; i < spec->nsans; i++) {
		char *text = cw_xasprintf("%s:%s", cw_san_type_name(spec->sans[i].type),
					  spec->sans[i].value ? spec->sans[i].value : "");
		json_t *v = json_string(text);
		free(text);
		if (!v && !w->bad)
			w->bad = "spec.sans";
		if (v)
			json_array_append_new(a, v);
	}
	return a;
}

static json_t *usage_to_json(uint32_t usage)
{
	json_t *a = json_array();
	for (unsigned bit = 0; bit < 16; bit++) {
		const char *name = cw_usage_name(1u << bit);
		if ((usage & (1u << bit)) && name)
			json_array_append_new(a, json_string(name));
	}
	return a;
}

static json_t *spec_to_json(const cw_cert_spec *spec, jwriter *outer)
{
	jwriter w = { json_object(), NULL };
	jw_id(&w, "subject", spec->subject);
	json_object_set_new(w.obj, "sans", sans_to_json(spec, &w));
	jw_id(&w, "key", spec->key == CW_KEY_NONE ? NULL : cw_key_type_name(spec->key));
	json_object_set_new(w.obj, "usage", usage_to_json(spec->usage));
	jw_int(&w, "lifetime", spec->lifetime);
	json_object_set_new(w.obj, "renew",
			    spec->renew.is_percent
				    ? json_pack("{s:i}", "percent", spec->renew.percent)
				    : json_pack("{s:I}", "seconds", (json_int_t)spec->renew.seconds));
	jw_bool(&w, "is_ca", spec->is_ca);
	jw_int(&w, "path_len", spec->path_len);
	jw_id(&w, "crl_url", spec->crl_url);
	if (w.bad && !outer->bad)
		outer->bad = "spec";
	return w.obj;
}

/* NULL when a field cannot be rendered; *bad names it. */
static json_t *issued_to_json(const cw_issued *e, const char **bad)
{
	jwriter w = { json_object(), NULL };
	jw_id(&w, "name", e->name);
	jw_id(&w, "issuer", e->issuer);
	jw_id(&w, "serial", e->serial);
	jw_id(&w, "fingerprint", e->fingerprint[0] ? e->fingerprint : NULL);
	jw_id(&w, "subject", e->subject);
	jw_time(&w, "not_before", e->not_before);
	jw_time(&w, "not_after", e->not_after);
	jw_time(&w, "issued_at", e->issued_at);
	json_object_set_new(w.obj, "spec", spec_to_json(&e->spec, &w));
	jw_id(&w, "issuer_key_id", e->issuer_key_id);
	jw_id(&w, "key_id", e->key_id);
	jw_bool(&w, "is_ca", e->is_ca);
	jw_bool(&w, "revoked", e->revoked);
	if (e->revoked_at)
		jw_time(&w, "revoked_at", e->revoked_at);
	else
		json_object_set_new(w.obj, "revoked_at", json_null());
	jw_text(&w, "revoke_reason", e->revoke_reason);
	jw_int(&w, "seq", (long long)e->seq);
	*bad = w.bad;
	if (w.bad) {
		json_decref(w.obj);
		return NULL;
	}
	return w.obj;
}

static json_t *deploy_to_json(const cw_deploy_record *r, const char **bad)
{
	jwriter w = { json_object(), NULL };
	jw_id(&w, "target", r->target);
	jw_id(&w, "certificate", r->certificate);
	jw_id(&w, "status", cw_deploy_status_name(r->status));
	jw_id(&w, "serial", r->serial);
	jw_id(&w, "fingerprint", r->fingerprint[0] ? r->fingerprint : NULL);
	if (r->slot_digest[0])
		jw_id(&w, "slot_digest", r->slot_digest);
	if (r->chain_digest[0])
		jw_id(&w, "chain_digest", r->chain_digest);
	jw_int(&w, "attempts", r->attempts);
	jw_text(&w, "last_error", r->last_error);
	jw_time(&w, "updated", r->updated);
	json_t *bound = json_array();
	for (size_t i = 0; i < r->nbound; i++) {
		json_t *v = r->bound[i] ? json_string(r->bound[i]) : NULL;
		if (!v && !w.bad)
			w.bad = "bound";
		if (v)
			json_array_append_new(bound, v);
	}
	json_object_set_new(w.obj, "bound", bound);
	*bad = w.bad;
	if (w.bad) {
		json_decref(w.obj);
		return NULL;
	}
	return w.obj;
}

/* Appends obj compactly (keys in the documented order) and frees it. */
static void add_json(cw_buf *out, json_t *obj, size_t flags)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY | flags) : NULL;
	cw_buf_adds(out, text ? text : "null");
	free(text);
	json_decref(obj);
}

/* ---- reading JSON ---- */

typedef struct {
	json_t *obj;
	const char *bad;  /* the first field missing or of the wrong type */
} jreader;

static void jr_fail(jreader *r, const char *key)
{
	if (!r->bad)
		r->bad = key;
}

static char *jr_str(jreader *r, const char *key, int required)
{
	json_t *v = json_object_get(r->obj, key);
	if (json_is_string(v))
		return cw_xstrdup(json_string_value(v));
	if ((v && !json_is_null(v)) || required)
		jr_fail(r, key);
	return NULL;
}

static long long jr_int(jreader *r, const char *key)
{
	json_t *v = json_object_get(r->obj, key);
	if (!json_is_integer(v)) {
		jr_fail(r, key);
		return 0;
	}
	return (long long)json_integer_value(v);
}

static int jr_bool(jreader *r, const char *key)
{
	json_t *v = json_object_get(r->obj, key);
	if (!json_is_boolean(v)) {
		jr_fail(r, key);
		return 0;
	}
	return json_is_true(v);
}

/* Absolute RFC 3339 only; null reads as 0 when optional. */
static time_t jr_time(jreader *r, const char *key, int required)
{
	json_t *v = json_object_get(r->obj, key);
	const char *s = json_string_value(v);
	time_t t = 0;
	if (!s) {
		if (required || (v && !json_is_null(v)))
			jr_fail(r, key);
		return 0;
	}
	if (s[0] < '0' || s[0] > '9' || cw_parse_time(s, 0, &t) != 0)
		jr_fail(r, key);
	return t;
}

static void jr_fingerprint(jreader *r, const char *key, char out[65])
{
	char *fp = jr_str(r, key, 0);
	out[0] = '\0';
	if (fp && strlen(fp) > 64)
		jr_fail(r, key);
	else if (fp)
		strcpy(out, fp);
	free(fp);
}

static int san_parse(const char *text, cw_san *out)
{
	static const cw_san_type types[] = { CW_SAN_DNS, CW_SAN_IP, CW_SAN_EMAIL, CW_SAN_URI };
	const char *colon = strchr(text, ':');
	if (!colon)
		return -1;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		const char *name = cw_san_type_name(types[i]);
		if (strlen(name) == (size_t)(colon - text) && !strncmp(name, text, strlen(name))) {
			out->type = types[i];
			out->value = cw_xstrdup(colon + 1);
			return 0;
		}
	}
	return -1;
}

static void jr_sans(jreader *r, cw_cert_spec *spec)
{
	json_t *a = json_object_get(r->obj, "sans");
	if (!json_is_array(a)) {
		jr_fail(r, "spec.sans");
		return;
	}
	spec->sans = json_array_size(a) ? cw_xcalloc(json_array_size(a), sizeof(cw_san)) : NULL;
	for (size_t i = 0; i < json_array_size(a); i++) {
		const char *text = json_string_value(json_array_get(a, i));
		if (!text || san_parse(text, &spec->sans[spec->nsans]) != 0) {
			jr_fail(r, "spec.sans");
			return;
		}
		spec->nsans++;
	}
}

static void jr_usage(jreader *r, cw_cert_spec *spec)
{
	json_t *a = json_object_get(r->obj, "usage");
	if (!json_is_array(a)) {
		jr_fail(r, "spec.usage");
		return;
	}
	for (size_t i = 0; i < json_array_size(a); i++) {
		const char *name = json_string_value(json_array_get(a, i));
		uint32_t bit = name ? cw_usage_parse(name) : 0;
		if (!bit)
			jr_fail(r, "spec.usage");
		spec->usage |= bit;
	}
}

static void jr_renew(jreader *r, cw_renew *renew)
{
	jreader rr = { json_object_get(r->obj, "renew"), NULL };
	if (json_object_get(rr.obj, "percent")) {
		renew->is_percent = 1;
		renew->percent = (int)jr_int(&rr, "percent");
	} else {
		renew->seconds = jr_int(&rr, "seconds");
	}
	if (rr.bad)
		jr_fail(r, "spec.renew");
}

static void jr_spec(jreader *outer, cw_cert_spec *spec)
{
	jreader r = { json_object_get(outer->obj, "spec"), NULL };
	if (!json_is_object(r.obj)) {
		jr_fail(outer, "spec");
		return;
	}
	spec->subject = jr_str(&r, "subject", 0);
	jr_sans(&r, spec);
	char *key = jr_str(&r, "key", 0);
	if (key && strcmp(key, "none") != 0 && cw_key_type_parse(key, &spec->key) != 0)
		jr_fail(&r, "spec.key");
	free(key);
	jr_usage(&r, spec);
	spec->lifetime = jr_int(&r, "lifetime");
	jr_renew(&r, &spec->renew);
	spec->is_ca = jr_bool(&r, "is_ca");
	spec->path_len = (int)jr_int(&r, "path_len");
	spec->crl_url = jr_str(&r, "crl_url", 0);
	if (r.bad)
		jr_fail(outer, r.bad);
}

/* Fills e from one index entry; returns the first bad field or NULL. */
static const char *issued_from_json(json_t *obj, cw_issued *e)
{
	jreader r = { obj, NULL };
	if (!json_is_object(obj))
		return "entry is not an object";
	e->name = jr_str(&r, "name", 1);
	e->issuer = jr_str(&r, "issuer", 1);
	e->serial = jr_str(&r, "serial", 1);
	jr_fingerprint(&r, "fingerprint", e->fingerprint);
	e->subject = jr_str(&r, "subject", 0);
	e->not_before = jr_time(&r, "not_before", 1);
	e->not_after = jr_time(&r, "not_after", 1);
	e->issued_at = jr_time(&r, "issued_at", 1);
	jr_spec(&r, &e->spec);
	e->issuer_key_id = jr_str(&r, "issuer_key_id", 0);
	e->key_id = jr_str(&r, "key_id", 0);
	e->is_ca = jr_bool(&r, "is_ca");
	e->revoked = jr_bool(&r, "revoked");
	e->revoked_at = jr_time(&r, "revoked_at", 0);
	e->revoke_reason = jr_str(&r, "revoke_reason", 0);
	long long seq = jr_int(&r, "seq");
	if (seq <= 0)
		jr_fail(&r, "seq");
	e->seq = (unsigned long long)seq;
	return r.bad;
}

static const char *deploy_from_json(json_t *obj, cw_deploy_record *d)
{
	jreader r = { obj, NULL };
	if (!json_is_object(obj))
		return "record is not an object";
	d->target = jr_str(&r, "target", 1);
	d->certificate = jr_str(&r, "certificate", 1);
	char *status = jr_str(&r, "status", 1);
	if (status && deploy_status_parse(status, &d->status) != 0)
		jr_fail(&r, "status");
	free(status);
	d->serial = jr_str(&r, "serial", 0);
	jr_fingerprint(&r, "fingerprint", d->fingerprint);
	const char *sd = json_string_value(json_object_get(obj, "slot_digest"));
	if (sd && strlen(sd) == 64)
		memcpy(d->slot_digest, sd, 65);
	const char *cd = json_string_value(json_object_get(obj, "chain_digest"));
	if (cd && strlen(cd) == 64)
		memcpy(d->chain_digest, cd, 65);
	d->attempts = (int)jr_int(&r, "attempts");
	d->last_error = jr_str(&r, "last_error", 0);
	d->updated = jr_time(&r, "updated", 1);
	json_t *bound = json_object_get(obj, "bound");
	if (!json_is_array(bound))
		jr_fail(&r, "bound");
	d->bound = json_array_size(bound) ? cw_xcalloc(json_array_size(bound), sizeof(char *)) : NULL;
	for (size_t i = 0; i < json_array_size(bound); i++) {
		const char *s = json_string_value(json_array_get(bound, i));
		if (!s) {
			jr_fail(&r, "bound");
			break;
		}
		d->bound[d->nbound++] = cw_xstrdup(s);
	}
	return r.bad;
}

/* ---- files ---- */

static int load_json_file(const char *path, json_t **out, cw_error *err)
{
	cw_buf text = CW_BUF_INIT;
	*out = NULL;
	if (cw_read_file(path, STATE_FILE_CAP, &text, err) != 0) {
		cw_buf_release(&text);
		return -1;
	}
	json_error_t jerr;
	*out = json_loadb(text.buf, text.len, 0, &jerr);
	cw_buf_release(&text);
	if (!*out)
		return cw_error_set(err, CW_EINVAL, "%s:%d:%d: %s", path, jerr.line, jerr.column,
				    jerr.text);
	return 0;
}

/* Checks "format" and "version" and returns the array under `list`, or NULL. */
static json_t *json_payload(json_t *root, const char *path, const char *format, const char *list,
			    cw_error *err)
{
	const char *f = json_string_value(json_object_get(root, "format"));
	json_t *version = json_object_get(root, "version");
	json_t *items = json_object_get(root, list);
	if (!f || strcmp(f, format) != 0)
		cw_error_set(err, CW_EINVAL, "%s: not a %s file", path, format);
	else if (!json_is_integer(version) || json_integer_value(version) != 1)
		cw_error_set(err, CW_EINVAL, "%s: unsupported version (this certwright reads 1)", path);
	else if (!json_is_array(items))
		cw_error_set(err, CW_EINVAL, "%s: '%s' must be a list", path, list);
	else
		return items;
	return NULL;
}

static int load_index_file(cw_state *st, const char *path, const char *authority, cw_error *err)
{
	json_t *root;
	if (load_json_file(path, &root, err) != 0)
		return -1;
	json_t *entries = json_payload(root, path, INDEX_FORMAT, "entries", err);
	const char *recorded = json_string_value(json_object_get(root, "authority"));
	int rc = entries ? 0 : -1;
	if (rc == 0 && (!recorded || strcmp(recorded, authority) != 0))
		rc = cw_error_set(err, CW_EINVAL, "%s: authority must be '%s' (the file's name)", path,
				  authority);
	for (size_t i = 0; rc == 0 && i < json_array_size(entries); i++) {
		cw_issued *e = push_issued(st);
		const char *bad = issued_from_json(json_array_get(entries, i), e);
		if (!bad && strcmp(e->issuer, authority) != 0)
			bad = "issuer (must be the file's authority)";
		if (bad)
			rc = cw_error_set(err, CW_EINVAL, "%s: entry %zu: bad or missing field '%s'", path,
					  i + 1, bad);
	}
	json_decref(root);
	return rc;
}

static int has_json_suffix(const char *name, size_t *stem)
{
	size_t len = strlen(name);
	*stem = len > 5 ? len - 5 : 0;
	return len > 5 && !strcmp(name + len - 5, ".json");
}

static int load_indexes(cw_state *st, const char *ksdir, cw_error *err)
{
	char *dir = cw_path_join(ksdir, INDEX_DIR);
	DIR *d = opendir(dir);
	if (!d) {
		int e = errno;
		free(dir);
		return e == ENOENT ? 0 : cw_error_set(err, CW_EIO, "%s/%s: cannot open: %s", ksdir,
						      INDEX_DIR, strerror(e));
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		size_t stem;
		/* temp files of an interrupted write end in .tmp.XXXXXX and are skipped */
		if (de->d_name[0] == '.' || !has_json_suffix(de->d_name, &stem))
			continue;
		char *authority = cw_xstrndup(de->d_name, stem);
		char *path = cw_path_join(dir, de->d_name);
		rc = load_index_file(st, path, authority, err);
		free(path);
		free(authority);
	}
	closedir(d);
	free(dir);
	return rc;
}

static int load_snapshot(cw_state *st, const char *ksdir, cw_error *err)
{
	char *path = cw_path_join(ksdir, SNAPSHOT_NAME);
	json_t *root = NULL;
	int rc = 0;
	if (cw_path_exists(path))
		rc = load_json_file(path, &root, err);
	json_t *records = root ? json_payload(root, path, DEPLOY_FORMAT, "records", err) : NULL;
	if (root && !records)
		rc = -1;
	for (size_t i = 0; rc == 0 && i < json_array_size(records); i++) {
		cw_deploy_record d = { 0 };
		const char *bad = deploy_from_json(json_array_get(records, i), &d);
		if (bad) {
			cw_deploy_record_release(&d);
			rc = cw_error_set(err, CW_EINVAL, "%s: record %zu: bad or missing field '%s'",
					  path, i + 1, bad);
		} else {
			upsert_deploy(st, &d);
		}
	}
	json_decref(root);
	free(path);
	return rc;
}

/* One journal line into st. -1 with *bad set when the line is not a valid record. */
static int replay_line(cw_state *st, const char *line, size_t len, const char **bad)
{
	json_error_t jerr;
	json_t *obj = json_loadb(line, len, 0, &jerr);
	if (!obj) {
		*bad = NULL;  /* not JSON at all */
		return -1;
	}
	cw_deploy_record d = { 0 };
	const char *field = deploy_from_json(obj, &d);
	json_decref(obj);
	if (field) {
		cw_deploy_record_release(&d);
		*bad = field;
		return -1;
	}
	upsert_deploy(st, &d);
	return 0;
}

/* Replays journal.jsonl. A crash can only tear the LAST line (each record is one write of a
 * whole line), so a bad last line is dropped; a bad line before it means damage. */
static int replay_journal(cw_state *st, const char *ksdir, cw_error *err)
{
	char *path = cw_path_join(ksdir, JOURNAL_NAME);
	cw_buf text = CW_BUF_INIT;
	int rc = cw_path_exists(path) ? cw_read_file(path, STATE_FILE_CAP, &text, err) : 0;
	const char *p = text.buf, *end = p ? p + text.len : NULL;
	int line = 0;
	while (rc == 0 && p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *bad = NULL;
		line++;
		if (!nl)
			break;  /* no newline: the write was cut short */
		if (replay_line(st, p, (size_t)(nl - p), &bad) != 0) {
			if (nl + 1 == end)
				break;
			rc = bad ? cw_error_set(err, CW_EINVAL,
						"%s:%d: deployment record: bad or missing field '%s'",
						path, line, bad)
				 : cw_error_set(err, CW_EINVAL, "%s:%d: not a JSON deployment record",
						path, line);
		}
		p = nl + 1;
	}
	st->lookup->journal_good = p ? (off_t)(p - text.buf) : 0;
	cw_buf_release(&text);
	free(path);
	return rc;
}

/* ---- digest ---- */

static int cmp_issued_ptr(const void *a, const void *b)
{
	const cw_issued *x = *(const cw_issued *const *)a, *y = *(const cw_issued *const *)b;
	int c = strcmp(x->issuer, y->issuer);
	return c ? c : strcmp(x->serial, y->serial);
}

static int cmp_deploy_ptr(const void *a, const void *b)
{
	const cw_deploy_record *x = *(const cw_deploy_record *const *)a;
	const cw_deploy_record *y = *(const cw_deploy_record *const *)b;
	int c = strcmp(x->target, y->target);
	return c ? c : strcmp(x->certificate, y->certificate);
}

/* The canonical form is binary and fixed-order: each integer as 8 big-endian bytes, each
 * string as a presence byte, an 8-byte length and its bytes. Unambiguous, independent of
 * JSON formatting, and about ten times cheaper than rendering JSON for 10,000 records. */
static void canon_u64(cw_buf *b, uint64_t v)
{
	unsigned char be[8];
	for (int i = 0; i < 8; i++)
		be[i] = (unsigned char)(v >> (56 - 8 * i));
	cw_buf_add(b, be, 8);
}

static void canon_str(cw_buf *b, const char *s)
{
	cw_buf_add(b, s ? "\1" : "\0", 1);
	if (!s)
		return;
	size_t len = strlen(s);
	canon_u64(b, len);
	cw_buf_add(b, s, len);
}

static void canon_spec(cw_buf *b, const cw_cert_spec *spec)
{
	canon_str(b, spec->subject);
	canon_u64(b, spec->nsans);
	for (size_t i = 0; i < spec->nsans; i++) {
		canon_u64(b, (uint64_t)spec->sans[i].type);
		canon_str(b, spec->sans[i].value);
	}
	canon_u64(b, (uint64_t)spec->key);
	canon_u64(b, spec->usage);
	canon_u64(b, (uint64_t)spec->lifetime);
	canon_u64(b, (uint64_t)spec->renew.is_percent);
	canon_u64(b, (uint64_t)(spec->renew.is_percent ? spec->renew.percent : spec->renew.seconds));
	canon_u64(b, (uint64_t)spec->is_ca);
	canon_u64(b, (uint64_t)(int64_t)spec->path_len);
	canon_str(b, spec->crl_url);
}

static void canon_issued(cw_buf *b, const cw_issued *e)
{
	canon_str(b, e->name);
	canon_str(b, e->issuer);
	canon_str(b, e->serial);
	canon_str(b, e->fingerprint);
	canon_str(b, e->subject);
	canon_u64(b, (uint64_t)e->not_before);
	canon_u64(b, (uint64_t)e->not_after);
	canon_u64(b, (uint64_t)e->issued_at);
	canon_spec(b, &e->spec);
	canon_str(b, e->issuer_key_id);
	canon_str(b, e->key_id);
	canon_u64(b, (uint64_t)e->is_ca);
	canon_u64(b, (uint64_t)e->revoked);
	canon_u64(b, (uint64_t)e->revoked_at);
	canon_str(b, e->revoke_reason);
	canon_u64(b, e->seq);
}

static void canon_deploy(cw_buf *b, const cw_deploy_record *r)
{
	canon_str(b, r->target);
	canon_str(b, r->certificate);
	canon_u64(b, (uint64_t)r->status);
	canon_str(b, r->serial);
	canon_str(b, r->fingerprint);
	if (r->slot_digest[0])  /* only when set: digests of older records stay as they were */
		canon_str(b, r->slot_digest);
	if (r->chain_digest[0])
		canon_str(b, r->chain_digest);
	canon_u64(b, (uint64_t)(int64_t)r->attempts);
	canon_str(b, r->last_error);
	canon_u64(b, (uint64_t)r->updated);
	canon_u64(b, r->nbound);
	for (size_t i = 0; i < r->nbound; i++)
		canon_str(b, r->bound[i]);
}

/* SHA-256 over every record in canonical form, issued sorted by (issuer, serial) and
 * deployments by (target, certificate), so it depends on content, not on file layout. */
static int load_crls(cw_state *st, const char *ksdir, cw_error *err);
static void crl_record_free(cw_crl_record *r);

static void compute_digest(cw_state *st)
{
	const cw_issued **issued = cw_xcalloc(st->nissued, sizeof(*issued));
	const cw_deploy_record **deploys = cw_xcalloc(st->ndeploys, sizeof(*deploys));
	for (size_t i = 0; i < st->nissued; i++)
		issued[i] = &st->issued[i];
	for (size_t i = 0; i < st->ndeploys; i++)
		deploys[i] = &st->deploys[i];
	if (st->nissued)
		qsort(issued, st->nissued, sizeof(*issued), cmp_issued_ptr);
	if (st->ndeploys)
		qsort(deploys, st->ndeploys, sizeof(*deploys), cmp_deploy_ptr);
	cw_buf b = CW_BUF_INIT;
	cw_buf_adds(&b, "certwright-state-digest 1");
	canon_u64(&b, st->nissued);
	for (size_t i = 0; i < st->nissued; i++)
		canon_issued(&b, issued[i]);
	canon_u64(&b, st->ndeploys);
	for (size_t i = 0; i < st->ndeploys; i++)
		canon_deploy(&b, deploys[i]);
	/* CRLs (issue 3): only when there are any, so older digests stay what they were */
	for (size_t i = 0; i < st->ncrls; i++) {
		canon_str(&b, st->crls[i].authority);
		canon_str(&b, st->crls[i].fingerprint);
		for (size_t j = 0; j < st->crls[i].ndeployed; j++)
			canon_str(&b, st->crls[i].deployed[j]);
	}
	cw_sha256_hex(b.buf, b.len, st->digest);
	cw_buf_release(&b);
	free(issued);
	free(deploys);
}

/* ---- load / release ---- */

static int cmp_issued_seq(const void *a, const void *b)
{
	const cw_issued *x = *(const cw_issued *const *)a, *y = *(const cw_issued *const *)b;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return cmp_issued_ptr(a, b);
}

/* Puts st->issued in seq order: sorts pointers, then moves each record once (qsort on the
 * records themselves would copy 10,000 large structs log n times). */
static void sort_issued_by_seq(cw_state *st)
{
	if (st->nissued < 2)
		return;
	const cw_issued **order = cw_xcalloc(st->nissued, sizeof(*order));
	for (size_t i = 0; i < st->nissued; i++)
		order[i] = &st->issued[i];
	qsort(order, st->nissued, sizeof(*order), cmp_issued_seq);
	cw_issued *sorted = cw_xcalloc(st->cap_issued, sizeof(cw_issued));
	for (size_t i = 0; i < st->nissued; i++)
		sorted[i] = *order[i];
	free(order);
	free(st->issued);
	st->issued = sorted;
}

static int finish_issued(cw_state *st, const char *ksdir, cw_error *err)
{
	sort_issued_by_seq(st);
	for (size_t i = 0; i < st->nissued; i++)
		if (st->issued[i].seq >= st->next_seq)
			st->next_seq = st->issued[i].seq + 1;
	long dup = reindex_issued(st);
	if (dup < 0)
		return 0;
	return cw_error_set(err, CW_EINVAL, "%s/%s/%s.json: serial %s is recorded twice", ksdir,
			    INDEX_DIR, st->issued[dup].issuer, st->issued[dup].serial);
}

int cw_state_load(cw_state *st, cw_keystore *ks, cw_error *err)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_init(&st->lock, NULL);
	st->next_seq = 1;
	st->lookup = cw_xcalloc(1, sizeof(*st->lookup));  /* also says "mutex initialised" */
	if (!ks) { /* no keystore yet (a plan before the first apply): nothing recorded */
		compute_digest(st);
		return 0;
	}
	const char *dir = cw_keystore_dir(ks);
	if (load_indexes(st, dir, err) != 0 || finish_issued(st, dir, err) != 0 ||
	    load_snapshot(st, dir, err) != 0 || replay_journal(st, dir, err) != 0 ||
	    load_crls(st, dir, err) != 0) {
		cw_state_release(st);
		return -1;
	}
	compute_digest(st);
	return 0;
}

void cw_state_release(cw_state *st)
{
	for (size_t i = 0; i < st->nissued; i++)
		cw_issued_release(&st->issued[i]);
	free(st->issued);
	for (size_t i = 0; i < st->ndeploys; i++)
		cw_deploy_record_release(&st->deploys[i]);
	free(st->deploys);
	for (size_t i = 0; i < st->ncrls; i++)
		crl_record_free(&st->crls[i]);
	free(st->crls);
	if (st->lookup) {
		idx_clear(&st->lookup->by_serial);
		idx_clear(&st->lookup->by_name);
		idx_clear(&st->lookup->by_deploy);
		free(st->lookup);
		pthread_mutex_destroy(&st->lock);
	}
	memset(st, 0, sizeof(*st));
}

/* ---- recording issuance ---- */

typedef struct {
	const char *name;
	cw_buf text;          /* the rendered entries of its new index file */
	int written;
} authority_out;

typedef struct {
	const cw_issued *entries;
	size_t n;
	long *existing;       /* per entry: the st->issued index it replaces, or -1 */
	unsigned long long *seq;
	size_t *authority;    /* per entry: index into out */
	size_t *replaced_by;  /* per st->issued: 1 + the batch index replacing it, or 0 */
	authority_out *out;
	size_t nout;
	idx_map by_authority; /* issuer -> index into out */
	int replaces;
} issue_batch;

typedef struct {
	const void *base;
	const char *a, *b;
} batch_key;

static int match_batch_serial(const void *key, size_t i)
{
	const batch_key *k = key;
	const cw_issued *e = &((const cw_issued *)k->base)[i];
	return !strcmp(e->serial, k->b) && !strcmp(e->issuer, k->a);
}

static int match_authority(const void *key, size_t i)
{
	const batch_key *k = key;
	return !strcmp(((const authority_out *)k->base)[i].name, k->a);
}

static long batch_authority_find(const issue_batch *b, const char *name)
{
	batch_key k = { b->out, name, NULL };
	return idx_get(&b->by_authority, hash_pair(name, NULL), match_authority, &k);
}

static size_t batch_authority_add(issue_batch *b, const char *name)
{
	batch_key k = { b->out, name, NULL };
	uint64_t h = hash_pair(name, NULL);
	idx_slot *s = idx_slot_for(&b->by_authority, h, match_authority, &k);
	if (s->ref)
		return s->ref - 1;
	b->out = cw_xrealloc(b->out, (b->nout + 1) * sizeof(authority_out));
	b->out[b->nout] = (authority_out){ name, CW_BUF_INIT, 0 };
	idx_fill(&b->by_authority, s, h, b->nout);
	return b->nout++;
}

static void batch_release(issue_batch *b)
{
	for (size_t i = 0; i < b->nout; i++)
		cw_buf_release(&b->out[i].text);
	free(b->out);
	free(b->existing);
	free(b->seq);
	free(b->authority);
	free(b->replaced_by);
	idx_clear(&b->by_authority);
}

static int check_issued_entry(const cw_issued *e, cw_error *err)
{
	if (cw_keystore_check_name("authority", e->issuer, err) != 0 ||
	    cw_keystore_check_name("certificate", e->name, err) != 0 ||
	    cw_keystore_check_name("serial", e->serial, err) != 0)
		return -1;
	const char *bad;
	json_t *obj = issued_to_json(e, &bad);
	if (!obj)
		return cw_error_set(err, CW_EINVAL,
				    "certificate %s serial %s: field '%s' is not valid UTF-8", e->name,
				    e->serial, bad);
	json_decref(obj);
	return 0;
}

/* Rejects bad entries and a serial twice in the batch; finds replacements and authorities. */
static int check_batch(const cw_state *st, issue_batch *b, cw_error *err)
{
	idx_map seen = { 0 };
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < b->n; i++) {
		const cw_issued *e = &b->entries[i];
		if (check_issued_entry(e, err) != 0) {
			rc = -1;
			break;
		}
		batch_key k = { b->entries, e->issuer, e->serial };
		uint64_t h = hash_pair(e->issuer, e->serial);
		idx_slot *s = idx_slot_for(&seen, h, match_batch_serial, &k);
		if (s->ref) {
			rc = cw_error_set(err, CW_EINVAL,
					  "authority %s serial %s: appears twice in one issuance batch",
					  e->issuer, e->serial);
			break;
		}
		idx_fill(&seen, s, h, i);
		b->existing[i] = find_issued(st, e->issuer, e->serial);
		b->authority[i] = batch_authority_add(b, e->issuer);
	}
	idx_clear(&seen);
	return rc;
}

/* seq in batch order; a replacement keeps the seq of the record it replaces. */
static void assign_seq(cw_state *st, issue_batch *b)
{
	if (st->next_seq == 0)
		st->next_seq = 1;  /* a state built by hand: seq 0 would read as invalid */
	for (size_t i = 0; i < b->n; i++) {
		long old = b->existing[i];
		if (old >= 0) {
			b->seq[i] = st->issued[old].seq;
			b->replaced_by[old] = i + 1;
			b->replaces = 1;
		} else {
			b->seq[i] = st->next_seq++;
		}
	}
}

static void add_entry(cw_buf *text, const cw_issued *e, unsigned long long seq)
{
	cw_issued shown = *e;  /* shallow: only to render with the assigned seq */
	const char *bad;
	shown.seq = seq;
	if (text->len)
		cw_buf_add(text, ",\n", 2);
	add_json(text, issued_to_json(&shown, &bad), 0);
}

/* The full new content of each affected index: kept records (replaced where the batch says
 * so) in seq order, then the new ones. One pass over st, one over the batch. */
static void render_batch(const cw_state *st, issue_batch *b)
{
	for (size_t j = 0; j < st->nissued; j++) {
		long a = batch_authority_find(b, st->issued[j].issuer);
		if (a < 0)
			continue;
		const cw_issued *src =
			b->replaced_by[j] ? &b->entries[b->replaced_by[j] - 1] : &st->issued[j];
		add_entry(&b->out[a].text, src, st->issued[j].seq);
	}
	for (size_t i = 0; i < b->n; i++)
		if (b->existing[i] < 0)
			add_entry(&b->out[b->authority[i]].text, &b->entries[i], b->seq[i]);
}

static int write_index(const char *ksdir, const authority_out *a, cw_error *err)
{
	cw_buf file = CW_BUF_INIT;
	cw_buf_adds(&file, "{\"format\":\"" INDEX_FORMAT "\",\"version\":1,\"authority\":");
	add_json(&file, json_string(a->name), 0);
	cw_buf_adds(&file, ",\"entries\":[\n");
	cw_buf_add(&file, a->text.buf, a->text.len);
	cw_buf_adds(&file, "\n]}\n");
	char *path = cw_xasprintf("%s/%s/%s.json", ksdir, INDEX_DIR, a->name);
	int rc = cw_write_file_atomic(path, file.buf, file.len, 0600, err);
	free(path);
	cw_buf_release(&file);
	return rc;
}

/* Brings st in line with the index files that were written, in batch order. */
static void apply_batch(cw_state *st, const issue_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		if (!b->out[b->authority[i]].written)
			continue;
		cw_issued *e;
		if (b->existing[i] >= 0) {
			e = &st->issued[b->existing[i]];
			cw_issued_release(e);
		} else {
			e = push_issued(st);
		}
		issued_copy(e, &b->entries[i]);
		e->seq = b->seq[i];
		if (!b->replaces && st->lookup && st->lookup->nissued == st->nissued - 1)
			index_issued(st, st->nissued - 1);
	}
	if (b->replaces && st->lookup)
		reindex_issued(st);  /* a revocation can change which entry is current */
}


/* index/ itself must be durable before the first index file counts as written. */
static int make_index_folder(const char *dir, const char *ksdir, cw_error *err)
{
	if (cw_path_exists(dir))
		return 0;
	if (cw_mkdirs(dir, 0700, err) != 0)
		return -1;
	if (cw_fsync_dir(ksdir) != 0)
		return cw_error_set(err, CW_EIO, "%s: cannot sync folder: %s", ksdir, strerror(errno));
	return 0;
}

int cw_state_record_issued(cw_state *st, cw_keystore *ks, const cw_issued *entries, size_t n,
			   cw_error *err)
{
	if (n == 0)
		return 0;
	const char *ksdir = cw_keystore_dir(ks);
	issue_batch b = { .entries = entries, .n = n };
	b.existing = cw_xcalloc(n, sizeof(long));
	b.seq = cw_xcalloc(n, sizeof(unsigned long long));
	b.authority = cw_xcalloc(n, sizeof(size_t));
	b.replaced_by = cw_xcalloc(st->nissued, sizeof(size_t));
	char *dir = cw_path_join(ksdir, INDEX_DIR);
	int rc = check_batch(st, &b, err);
	if (rc == 0)
		rc = make_index_folder(dir, ksdir, err);
	if (rc == 0) {
		assign_seq(st, &b);
		render_batch(st, &b);
		for (size_t a = 0; rc == 0 && a < b.nout; a++) {
			rc = write_index(ksdir, &b.out[a], err);
			b.out[a].written = rc == 0;
		}
		apply_batch(st, &b);
	}
	free(dir);
	batch_release(&b);
	return rc;
}

/* ---- recording deployments ---- */

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Where the last complete line ends: for a state built without load, which does not know. */
static off_t last_newline_end(int fd, off_t size)
{
	char chunk[4096];
	while (size > 0) {
		off_t from = size > (off_t)sizeof(chunk) ? size - (off_t)sizeof(chunk) : 0;
		ssize_t r = pread(fd, chunk, (size_t)(size - from), from);
		if (r <= 0)
			return size;
		for (ssize_t i = r - 1; i >= 0; i--)
			if (chunk[i] == '\n')
				return from + i + 1;
		size = from;
	}
	return 0;
}

static int open_journal(const char *path, int *created)
{
	*created = 0;
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	*created = fd >= 0;
	return fd;
}

/* Appends one line durably. A torn tail left by a crash is cut off first, so it never
 * ends up in the middle of the journal, where loading would (rightly) refuse it. */
static int append_journal(cw_state *st, const char *ksdir, const char *line, size_t len,
			  cw_error *err)
{
	char *path = cw_path_join(ksdir, JOURNAL_NAME);
	int created;
	int fd = open_journal(path, &created);
	struct stat sb;
	int rc = fd >= 0 && fstat(fd, &sb) == 0 ? 0 : -1;
	off_t good = 0;
	if (rc == 0) {
		good = st->lookup ? st->lookup->journal_good : last_newline_end(fd, sb.st_size);
		if (good > sb.st_size)
			good = sb.st_size;
		if (good < sb.st_size && ftruncate(fd, good) != 0)
			rc = -1;
	}
	if (rc == 0 && write_all(fd, line, len) != 0) {
		int e = errno;
		if (ftruncate(fd, good) != 0)  /* keep a half-written line out of the journal */
			e = errno;
		errno = e;
		rc = -1;
	}
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -1;
	if (rc == 0 && created && cw_fsync_dir(ksdir) != 0)
		rc = -1;
	if (rc != 0)
		cw_error_set(err, CW_EIO, "%s: cannot append: %s", path, strerror(errno));
	else if (st->lookup)
		st->lookup->journal_good = good + (off_t)len;
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

static int check_deploy_record(const cw_deploy_record *rec, cw_error *err)
{
	if (!rec->target || !*rec->target || !rec->certificate || !*rec->certificate)
		return cw_error_set(err, CW_EINVAL,
				    "deployment record: target and certificate must be named");
	if (rec->status < CW_DEPLOY_STARTED || rec->status > CW_DEPLOY_REMOVED)
		return cw_error_set(err, CW_EINVAL, "target %s certificate %s: unknown deploy status %d",
				    rec->target, rec->certificate, (int)rec->status);
	return 0;
}

int cw_state_record_deploy(cw_state *st, cw_keystore *ks, const cw_deploy_record *rec,
			   cw_error *err)
{
	if (check_deploy_record(rec, err) != 0)
		return -1;
	const char *bad;
	json_t *obj = deploy_to_json(rec, &bad);
	if (!obj)
		return cw_error_set(err, CW_EINVAL,
				    "target %s certificate %s: field '%s' is not valid UTF-8",
				    rec->target, rec->certificate, bad);
	cw_buf line = CW_BUF_INIT;
	add_json(&line, obj, 0);
	cw_buf_add(&line, "\n", 1);
	pthread_mutex_lock(&st->lock);
	int rc = append_journal(st, cw_keystore_dir(ks), line.buf, line.len, err);
	if (rc == 0) {
		cw_deploy_record copy;
		deploy_copy(&copy, rec);
		upsert_deploy(st, &copy);
	}
	pthread_mutex_unlock(&st->lock);
	cw_buf_release(&line);
	return rc;
}

static int truncate_journal(cw_state *st, const char *ksdir, cw_error *err)
{
	char *path = cw_path_join(ksdir, JOURNAL_NAME);
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	int rc = 0;
	if (fd < 0 && errno != ENOENT)
		rc = -1;
	if (fd >= 0 && (ftruncate(fd, 0) != 0 || fsync(fd) != 0))
		rc = -1;
	if (rc != 0)
		cw_error_set(err, CW_EIO, "%s: cannot empty: %s", path, strerror(errno));
	else if (st->lookup)
		st->lookup->journal_good = 0;
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

int cw_state_compact(cw_state *st, cw_keystore *ks, cw_error *err)
{
	const char *ksdir = cw_keystore_dir(ks);
	pthread_mutex_lock(&st->lock);
	cw_buf file = CW_BUF_INIT;
	cw_buf_adds(&file, "{\"format\":\"" DEPLOY_FORMAT "\",\"version\":1,\"records\":[");
	for (size_t i = 0; i < st->ndeploys; i++) {
		const char *bad;
		cw_buf_adds(&file, i ? ",\n" : "\n");
		add_json(&file, deploy_to_json(&st->deploys[i], &bad), 0);
	}
	cw_buf_adds(&file, "\n]}\n");
	char *path = cw_path_join(ksdir, SNAPSHOT_NAME);
	/* snapshot first: a crash before the journal is emptied only replays records twice */
	int rc = cw_write_file_atomic(path, file.buf, file.len, 0600, err);
	if (rc == 0)
		rc = truncate_journal(st, ksdir, err);
	pthread_mutex_unlock(&st->lock);
	free(path);
	cw_buf_release(&file);
	return rc;
}

/* ---- CRLs ---- */

#define CRL_FORMAT "certwright-crl"

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void cw_crl_serials_digest(char **serials, size_t n, char out[65])
{
	char **sorted = cw_xcalloc(n ? n : 1, sizeof(char *));
	if (n)
		memcpy(sorted, serials, n * sizeof(char *));
	qsort(sorted, n, sizeof(char *), cmp_str_ptr);
	cw_buf b = CW_BUF_INIT;
	for (size_t i = 0; i < n; i++)
		cw_buf_addf(&b, "%s\n", sorted[i]);
	cw_sha256_hex(b.buf ? b.buf : "", b.len, out);
	cw_buf_release(&b);
	free(sorted);
}

const cw_crl_record *cw_state_crl(const cw_state *st, const char *authority)
{
	for (size_t i = 0; i < st->ncrls; i++)
		if (!strcmp(st->crls[i].authority, authority))
			return &st->crls[i];
	return NULL;
}

static void crl_record_free(cw_crl_record *r)
{
	free(r->authority);
	for (size_t i = 0; i < r->ndeployed; i++)
		free(r->deployed[i]);
	free(r->deployed);
}

static void crl_record_set(cw_state *st, const cw_crl_record *rec)
{
	cw_crl_record *slot = (cw_crl_record *)cw_state_crl(st, rec->authority);
	if (!slot) {
		st->crls = cw_xrealloc(st->crls, (st->ncrls + 1) * sizeof(*st->crls));
		slot = &st->crls[st->ncrls++];
	} else {
		crl_record_free(slot);
	}
	*slot = *rec;
	slot->authority = cw_xstrdup(rec->authority);
	slot->deployed = rec->ndeployed ? cw_xcalloc(rec->ndeployed, sizeof(char *)) : NULL;
	for (size_t i = 0; i < rec->ndeployed; i++)
		slot->deployed[i] = cw_xstrdup(rec->deployed[i]);
}

int cw_crl_record_on(const cw_crl_record *rec, const char *target)
{
	for (size_t i = 0; rec && i < rec->ndeployed; i++)
		if (!strcmp(rec->deployed[i], target))
			return 1;
	return 0;
}

static char *crl_path(const char *ksdir, const char *authority, const char *ext)
{
	return cw_xasprintf("%s/crls/%s.%s", ksdir, authority, ext);
}

int cw_state_record_crl(cw_state *st, cw_keystore *ks, const cw_crl_record *rec,
			const unsigned char *der, size_t len, cw_error *err)
{
	if (cw_keystore_check_name("authority", rec->authority, err) != 0)
		return -1;
	const char *ksdir = cw_keystore_dir(ks);
	char *dir = cw_path_join(ksdir, "crls");
	char *der_path = crl_path(ksdir, rec->authority, "der");
	char *json_path = crl_path(ksdir, rec->authority, "json");
	json_t *o = json_object();
	char t1[32], t2[32];
	cw_format_time(rec->this_update, t1);
	cw_format_time(rec->next_update, t2);
	json_object_set_new(o, "format", json_string(CRL_FORMAT));
	json_object_set_new(o, "version", json_integer(1));
	json_object_set_new(o, "authority", json_string(rec->authority));
	json_object_set_new(o, "number", json_integer((json_int_t)rec->number));
	json_object_set_new(o, "this_update", json_string(t1));
	json_object_set_new(o, "next_update", json_string(t2));
	json_object_set_new(o, "fingerprint", json_string(rec->fingerprint));
	json_object_set_new(o, "revoked_digest", json_string(rec->revoked_digest));
	if (rec->ca_fingerprint[0])
		json_object_set_new(o, "ca_fingerprint", json_string(rec->ca_fingerprint));
	json_object_set_new(o, "revoked", json_integer((json_int_t)rec->nrevoked));
	json_t *targets = json_array();
	for (size_t i = 0; i < rec->ndeployed; i++)
		json_array_append_new(targets, json_string(rec->deployed[i]));
	json_object_set_new(o, "deployed", targets);
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	int rc = cw_mkdirs(dir, 0700, err);
	if (rc == 0 && der)
		rc = cw_write_file_atomic(der_path, der, len, 0644, err);
	if (rc == 0)
		rc = cw_write_file_atomic(json_path, text, strlen(text), 0600, err);
	if (rc == 0)
		crl_record_set(st, rec);
	free(text);
	free(dir);
	free(der_path);
	free(json_path);
	return rc;
}

int cw_state_crl_deployed(cw_state *st, cw_keystore *ks, const char *authority,
			  const char *target, cw_error *err)
{
	const cw_crl_record *cur = cw_state_crl(st, authority);
	if (!cur)
		return cw_error_set(err, CW_EINTERNAL, "authority '%s' has no CRL", authority);
	if (cw_crl_record_on(cur, target))
		return 0;
	/* own copies: recording replaces (and frees) the record cur points into */
	cw_crl_record rec = *cur;
	rec.deployed = cw_xcalloc(cur->ndeployed + 1, sizeof(char *));
	for (size_t i = 0; i < cur->ndeployed; i++)
		rec.deployed[i] = cw_xstrdup(cur->deployed[i]);
	rec.deployed[rec.ndeployed++] = cw_xstrdup(target);
	rec.authority = cw_xstrdup(cur->authority);
	/* facts only: the DER on disk is already this CRL */
	int rc = cw_state_record_crl(st, ks, &rec, NULL, 0, err);
	for (size_t i = 0; i < rec.ndeployed; i++)
		free(rec.deployed[i]);
	free(rec.deployed);
	free(rec.authority);
	return rc;
}

int cw_state_crl_der(cw_keystore *ks, const char *authority, cw_buf *der, cw_error *err)
{
	char *path = crl_path(cw_keystore_dir(ks), authority, "der");
	int rc = cw_read_file(path, STATE_FILE_CAP, der, err);
	free(path);
	return rc;
}

static int load_crl_file(cw_state *st, const char *path, cw_error *err)
{
	json_t *root;
	if (load_json_file(path, &root, err) != 0)
		return -1;
	const char *f = json_string_value(json_object_get(root, "format"));
	cw_crl_record rec;
	memset(&rec, 0, sizeof(rec));
	const char *auth = json_string_value(json_object_get(root, "authority"));
	const char *fp = json_string_value(json_object_get(root, "fingerprint"));
	const char *rd = json_string_value(json_object_get(root, "revoked_digest"));
	const char *t1 = json_string_value(json_object_get(root, "this_update"));
	const char *t2 = json_string_value(json_object_get(root, "next_update"));
	int rc = -1;
	if (!f || strcmp(f, CRL_FORMAT) || !auth || !fp || strlen(fp) != 64 || !rd ||
	    strlen(rd) != 64 || !t1 || !t2 || cw_parse_time(t1, 0, &rec.this_update) != 0 ||
	    cw_parse_time(t2, 0, &rec.next_update) != 0) {
		cw_error_set(err, CW_EINVAL, "%s: not a valid %s file", path, CRL_FORMAT);
		goto out;
	}
	rec.authority = (char *)auth;
	rec.number = (unsigned long long)json_integer_value(json_object_get(root, "number"));
	rec.nrevoked = (size_t)json_integer_value(json_object_get(root, "revoked"));
	memcpy(rec.fingerprint, fp, 65);
	memcpy(rec.revoked_digest, rd, 65);
	const char *caf = json_string_value(json_object_get(root, "ca_fingerprint"));
	if (caf && strlen(caf) == 64)
		memcpy(rec.ca_fingerprint, caf, 65);
	json_t *targets = json_object_get(root, "deployed");
	size_t i;
	json_t *v;
	rec.deployed = cw_xcalloc(json_array_size(targets) + 1, sizeof(char *));
	json_array_foreach(targets, i, v)
		if (json_is_string(v))
			rec.deployed[rec.ndeployed++] = (char *)json_string_value(v);
	crl_record_set(st, &rec);
	free(rec.deployed);
	rc = 0;
out:
	json_decref(root);
	return rc;
}

static int load_crls(cw_state *st, const char *ksdir, cw_error *err)
{
	char *dir = cw_path_join(ksdir, "crls");
	DIR *d = opendir(dir);
	if (!d) {
		free(dir);
		return 0; /* no CRL signed yet */
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 6 || e->d_name[0] == '.' || strcmp(e->d_name + len - 5, ".json"))
			continue;
		char *path = cw_path_join(dir, e->d_name);
		rc = load_crl_file(st, path, err);
		free(path);
	}
	closedir(d);
	free(dir);
	return rc;
}
