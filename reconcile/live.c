/*
 * live — observing targets. Each target is opened read-only and observed by one
 * worker; up to opts->parallel workers run at once, so one slow or dead host costs
 * at most its own timeouts, never the others'.
 */
#include "reconcile/live.h"


#include <stdlib.h>
#include <string.h>

#include "common/parallel.h"

/* ---- the handle wrapper ---- */

int cw_target_handle_open(cw_target_handle *th, const cw_target *t, const cw_target_env *env,
			  int readonly, cw_error *err)
{
	memset(th, 0, sizeof(*th));
	th->name = t->name;
	th->readonly = readonly;
	th->ops = cw_target_type(t->type);
	if (!th->ops)
		return cw_error_set(err, CW_EINVAL, "target '%s': unknown type '%s'", t->name, t->type);
	if (th->ops->api_version != CW_TARGET_API_VERSION)
		return cw_error_set(err, CW_EINTERNAL, "target type '%s': interface version %d, expected %d",
				    t->type, th->ops->api_version, CW_TARGET_API_VERSION);
	if (th->ops->open(&th->h, t->name, t->config, env, err) != 0) {
		th->ops = NULL;
		return -1;
	}
	return 0;
}

void cw_target_handle_close(cw_target_handle *th)
{
	if (th->ops && th->ops->close && th->h)
		th->ops->close(th->h);
	th->h = NULL;
	th->ops = NULL;
}

static int refuse_if_readonly(cw_target_handle *th, const char *what, cw_error *err)
{
	if (!th->readonly)
		return 0;
	return cw_error_set(err, CW_EREADONLY, "target '%s': %s refused: opened read-only for a plan",
			    th->name, what);
}

int cw_th_deploy(cw_target_handle *th, const cw_bundle *b, cw_error *err)
{
	if (refuse_if_readonly(th, "deploy", err))
		return -1;
	if (!th->ops->deploy)
		return cw_error_set(err, CW_ETARGET, "target '%s': type cannot deploy", th->name);
	return th->ops->deploy(th->h, b, err);
}

int cw_th_bind(cw_target_handle *th, const cw_bundle *b, cw_error *err)
{
	if (refuse_if_readonly(th, "bind", err))
		return -1;
	return th->ops->bind ? th->ops->bind(th->h, b, err) : 0;
}

int cw_th_activate(cw_target_handle *th, cw_error *err)
{
	if (refuse_if_readonly(th, "activate", err))
		return -1;
	return th->ops->activate ? th->ops->activate(th->h, err) : 0;
}

int cw_th_remove(cw_target_handle *th, const char *slot, const char *previous_fp, cw_error *err)
{
	if (refuse_if_readonly(th, "remove", err))
		return -1;
	return th->ops->remove ? th->ops->remove(th->h, slot, previous_fp, err) : 0;
}

int cw_th_verify(cw_target_handle *th, const char *slot, cw_observation *obs, cw_error *err)
{
	if (th->ops->verify)
		return th->ops->verify(th->h, slot, obs, err);
	return th->ops->observe(th->h, slot, obs, err);
}

/* ---- observation ---- */

typedef struct {
	const cw_inventory *inv;
	const cw_deploy_record *records;
	size_t nrecords;
	const cw_observe_opts *opts;
	cw_live *live;
	size_t *slot_first;      /* per target: index of its first slot in live->slots */
	size_t *slot_count;
} observe_job;

static char *slot_key(const char *target, const char *slot)
{
	return cw_xasprintf("%s\n%s", target, slot);
}

/* Lays out the slots per target before the workers start, so workers never reallocate. */
static void plan_slots(observe_job *job)
{
	const cw_inventory *inv = job->inv;
	cw_live *l = job->live;
	size_t cap = 16;
	l->slots = cw_xcalloc(cap, sizeof(*l->slots));
	for (size_t t = 0; t < inv->ntargets; t++) {
		const char *tname = inv->targets[t].name;
		job->slot_first[t] = l->nslots;
		for (size_t pass = 0; pass < 2; pass++) {
			size_t n = pass ? job->nrecords : inv->ncertificates;
			for (size_t i = 0; i < n; i++) {
				const char *slot = NULL;
				if (pass) {
					if (!strcmp(job->records[i].target, tname))
						slot = job->records[i].certificate;
				} else {
					const cw_certificate *c = &inv->certificates[i];
					for (size_t d = 0; d < c->ndeploy && !slot; d++)
						if (!strcmp(c->deploy[d].target, tname))
							slot = c->name;
				}
				if (!slot)
					continue;
				char *key = slot_key(tname, slot);
				size_t ignored;
				int known = cw_strmap_get(&l->slot_index, key, &ignored);
				if (!known)
					cw_strmap_put(&l->slot_index, key, l->nslots);
				free(key);
				if (known)
					continue;
				if (l->nslots == cap) {
					cap *= 2;
					l->slots = cw_xrealloc(l->slots, cap * sizeof(*l->slots));
				}
				cw_live_slot *s = &l->slots[l->nslots++];
				memset(s, 0, sizeof(*s));
				s->target = cw_xstrdup(tname);
				s->slot = cw_xstrdup(slot);
			}
		}
		job->slot_count[t] = l->nslots - job->slot_first[t];
	}
}

static int target_selected(const cw_observe_opts *o, const char *name)
{
	if (!o->nonly_targets)
		return 1;
	for (size_t i = 0; i < o->nonly_targets; i++)
		if (!strcmp(o->only_targets[i], name))
			return 1;
	return 0;
}

static void observe_slot(cw_target_handle *th, cw_live_slot *s)
{
	cw_error err = { 0 };
	if (th->ops->observe(th->h, s->slot, &s->obs, &err) != 0) {
		s->ok = 0;
		s->obs.note = s->obs.note ? s->obs.note : cw_xstrdup(err.msg);
		return;
	}
	s->ok = 1;
	if (!s->obs.present)
		return;
	/* the fingerprint is all the diff needs; parsing 10,000 certificates would cost more
	 * than reading them. Whoever needs the fields parses that one certificate. */
	cw_sha256_hex(s->obs.cert.data, s->obs.cert.len, s->fingerprint);
}

static void observe_target(observe_job *job, size_t t)
{
	const cw_target *target = &job->inv->targets[t];
	cw_live_target *lt = &job->live->targets[t];
	lt->name = cw_xstrdup(target->name);
	if (!target_selected(job->opts, target->name)) {
		lt->ok = 1; /* out of scope: not observed, not an error */
		return;
	}
	char *work = cw_path_join(job->opts->work_dir, target->name);
	cw_error err = { 0 };
	cw_target_env env = { job->opts->timeout_ms, work, job->opts->log, job->opts->log_ud };
	cw_target_handle th;
	if (cw_mkdirs(work, 0700, &err) != 0 || cw_target_handle_open(&th, target, &env, 1, &err) != 0) {
		lt->error = cw_xstrdup(err.msg);
		free(work);
		return;
	}
	if (th.ops->observe_device && th.ops->observe_device(th.h, &lt->facts, &err) != 0) {
		lt->error = cw_xstrdup(err.msg);
		cw_target_handle_close(&th);
		free(work);
		return;
	}
	lt->ok = 1;
	for (size_t i = 0; i < job->slot_count[t]; i++) {
		cw_live_slot *s = &job->live->slots[job->slot_first[t] + i];
		observe_slot(&th, s);
		if (!s->ok && !lt->error)
			lt->error = cw_xasprintf("slot '%s': %s", s->slot, s->obs.note);
	}
	/* a target whose slots cannot be read is as good as unreachable for planning */
	if (lt->error)
		lt->ok = 0;
	cw_target_handle_close(&th);
	free(work);
}

static void observe_at(void *ctx, size_t t)
{
	observe_target(ctx, t);
}

static void live_digest(cw_live *l)
{
	cw_buf b = CW_BUF_INIT;
	for (size_t t = 0; t < l->ntargets; t++)
		cw_buf_addf(&b, "T %s %d\n", l->targets[t].name, l->targets[t].ok);
	for (size_t i = 0; i < l->nslots; i++) {
		const cw_live_slot *s = &l->slots[i];
		cw_buf_addf(&b, "S %s %s %d %s %s", s->target, s->slot, s->ok, s->fingerprint,
			    s->obs.digest ? s->obs.digest : "-");
		for (size_t j = 0; j < s->obs.nbound; j++)
			cw_buf_addf(&b, " %s", s->obs.bound[j]);
		cw_buf_adds(&b, "\n");
	}
	cw_sha256_hex(b.buf ? b.buf : "", b.len, l->digest);
	cw_buf_release(&b);
}

int cw_observe(cw_live *out, const cw_inventory *inv, const cw_deploy_record *records,
	       size_t nrecords, const cw_observe_opts *opts, cw_error *err)
{
	memset(out, 0, sizeof(*out));
	observe_job job = { inv, records, nrecords, opts, out, NULL, NULL };
	out->ntargets = inv->ntargets;
	out->targets = cw_xcalloc(inv->ntargets, sizeof(*out->targets));
	job.slot_first = cw_xcalloc(inv->ntargets, sizeof(size_t));
	job.slot_count = cw_xcalloc(inv->ntargets, sizeof(size_t));
	plan_slots(&job);

	cw_parallel_for(inv->ntargets, opts->parallel > 0 ? (size_t)opts->parallel : 1, observe_at,
			&job);
	free(job.slot_first);
	free(job.slot_count);
	live_digest(out);
	(void)err;
	return 0;
}

void cw_live_add_local(cw_live *l, const char *target, const char *slot, int present)
{
	l->slots = cw_xrealloc(l->slots, (l->nslots + 1) * sizeof(*l->slots));
	cw_live_slot *s = &l->slots[l->nslots];
	memset(s, 0, sizeof(*s));
	s->target = cw_xstrdup(target);
	s->slot = cw_xstrdup(slot);
	s->ok = 1;
	s->obs.present = present;
	char *key = slot_key(target, slot);
	cw_strmap_put(&l->slot_index, key, l->nslots++);
	free(key);
}

const cw_live_target *cw_live_target_find(const cw_live *l, const char *target)
{
	for (size_t i = 0; i < l->ntargets; i++)
		if (!strcmp(l->targets[i].name, target))
			return &l->targets[i];
	return NULL;
}

const cw_live_slot *cw_live_slot_find(const cw_live *l, const char *target, const char *slot)
{
	char *key = slot_key(target, slot);
	size_t i;
	int found = cw_strmap_get(&l->slot_index, key, &i);
	free(key);
	return found ? &l->slots[i] : NULL;
}

void cw_live_release(cw_live *l)
{
	for (size_t i = 0; i < l->ntargets; i++) {
		free(l->targets[i].name);
		free(l->targets[i].error);
		cw_device_facts_release(&l->targets[i].facts);
	}
	for (size_t i = 0; i < l->nslots; i++) {
		free(l->slots[i].target);
		free(l->slots[i].slot);
		cw_observation_release(&l->slots[i].obs);
	}
	free(l->targets);
	free(l->slots);
	cw_strmap_release(&l->slot_index);
	memset(l, 0, sizeof(*l));
}
