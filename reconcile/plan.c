/* plan — the action list and its renderings. See plan.h. */
#include "reconcile/plan.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = { "create-ca", "renew-ca", "issue", "deploy", "remove",
					  "revoke", "publish-crl", "deploy-crl", "export" };
#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

const char *cw_action_kind_name(cw_action_kind k)
{
	return (unsigned)k < N_KINDS ? kind_names[k] : "?";
}

int cw_action_kind_parse(const char *s, cw_action_kind *out)
{
	for (size_t i = 0; i < N_KINDS; i++)
		if (!strcmp(kind_names[i], s)) {
			*out = (cw_action_kind)i;
			return 0;
		}
	return -1;
}

void cw_plan_init(cw_plan *p)
{
	memset(p, 0, sizeof(*p));
	cw_diags_init(&p->diags);
}

static void action_release(cw_action *a)
{
	free(a->name);
	free(a->target);
	free(a->reason);
	free(a->detail);
	free(a->current_serial);
	free(a->current_fingerprint);
	free(a->live_fingerprint);
	free(a->deps);
	for (size_t i = 0; i < a->nsteps; i++)
		free(a->steps[i]);
	free(a->steps);
}

void cw_plan_release(cw_plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		action_release(&p->actions[i]);
	free(p->actions);
	cw_diags_release(&p->diags);
	cw_plan_init(p);
}

size_t cw_plan_add(cw_plan *p, cw_action_kind kind, const char *name, const char *target,
		   const char *reason, const char *detail)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->actions = cw_xrealloc(p->actions, p->cap * sizeof(*p->actions));
	}
	cw_action *a = &p->actions[p->n];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->name = cw_xstrdup(name);
	a->target = cw_xstrdup(target);
	a->reason = cw_xstrdup(reason);
	a->detail = cw_xstrdup(detail);
	return p->n++;
}

void cw_plan_add_dep(cw_plan *p, size_t action, size_t depends_on)
{
	cw_action *a = &p->actions[action];
	for (size_t i = 0; i < a->ndeps; i++)
		if (a->deps[i] == depends_on)
			return;
	a->deps = cw_xrealloc(a->deps, (a->ndeps + 1) * sizeof(*a->deps));
	a->deps[a->ndeps++] = depends_on;
}

void cw_plan_add_step(cw_plan *p, size_t action, const char *step)
{
	cw_action *a = &p->actions[action];
	a->steps = cw_xrealloc(a->steps, (a->nsteps + 1) * sizeof(*a->steps));
	a->steps[a->nsteps++] = cw_xstrdup(step);
}

size_t cw_plan_count(const cw_plan *p, int kind)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		if (kind < 0 || (int)p->actions[i].kind == kind)
			n++;
	return n;
}

size_t cw_plan_blocking_errors(const cw_plan *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->diags.n; i++)
		if (p->diags.items[i].severity == CW_SEV_ERROR &&
		    strncmp(p->diags.items[i].code, "target.", 7) &&
		    strncmp(p->diags.items[i].code, "export.", 7))
			n++;
	return n;
}

int cw_plan_same_actions(const cw_plan *a, const cw_plan *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		const cw_action *x = &a->actions[i], *y = &b->actions[i];
		if (x->kind != y->kind || strcmp(x->name, y->name) ||
		    strcmp(x->target ? x->target : "", y->target ? y->target : ""))
			return 0;
	}
	return 1;
}

/* ---- shared pieces of the renderings ---- */

static void summary_line(const cw_plan *p, cw_buf *out)
{
	int first = 1;
	for (size_t k = 0; k < N_KINDS; k++) {
		size_t n = cw_plan_count(p, (int)k);
		if (!n)
			continue;
		cw_buf_addf(out, "%s%zu %s", first ? "" : ", ", n, kind_names[k]);
		first = 0;
	}
}

/* "vpn-server -> home-softether" or "vpn-server" */
static void object_text(const cw_action *a, cw_buf *out)
{
	cw_buf_adds(out, a->name);
	if (a->target)
		cw_buf_addf(out, a->kind == CW_ACT_REMOVE ? " from %s" : " -> %s", a->target);
}

static const char *kind_mark(cw_action_kind k)
{
	switch (k) {
	case CW_ACT_CREATE_CA: return "+";
	case CW_ACT_RENEW_CA: return "~";
	case CW_ACT_ISSUE: return "+";
	case CW_ACT_DEPLOY: return ">";
	case CW_ACT_REMOVE: return "-";
	case CW_ACT_REVOKE: return "x";
	case CW_ACT_PUBLISH_CRL: return "+";
	case CW_ACT_DEPLOY_CRL: return ">";
	case CW_ACT_EXPORT: return ">";
	}
	return "?";
}

/* ---- text ---- */

#define C_RESET "\033[0m"
#define C_GREEN "\033[32m"
#define C_YELLOW "\033[33m"
#define C_RED "\033[31m"
#define C_CYAN "\033[36m"
#define C_BOLD "\033[1m"

static const char *kind_colour(cw_action_kind k)
{
	switch (k) {
	case CW_ACT_CREATE_CA:
	case CW_ACT_ISSUE: return C_GREEN;
	case CW_ACT_RENEW_CA: return C_YELLOW;
	case CW_ACT_DEPLOY: return C_CYAN;
	case CW_ACT_REMOVE:
	case CW_ACT_REVOKE: return C_RED;
	case CW_ACT_PUBLISH_CRL: return C_GREEN;
	case CW_ACT_DEPLOY_CRL:
	case CW_ACT_EXPORT: return C_CYAN;
	}
	return "";
}

void cw_plan_render_text(const cw_plan *p, int color, cw_buf *out)
{
	char now[32];
	cw_format_time(p->now, now);
	cw_buf_addf(out, "certwright plan at %s (inventory %.12s)\n\n", now, p->inventory_digest);
	for (size_t i = 0; i < p->n; i++) {
		const cw_action *a = &p->actions[i];
		cw_buf obj = CW_BUF_INIT;
		object_text(a, &obj);
		cw_buf_addf(out, "  %s%s %-11s%s %-40s %s\n", color ? kind_colour(a->kind) : "",
			    kind_mark(a->kind), cw_action_kind_name(a->kind), color ? C_RESET : "",
			    obj.buf, a->reason);
		cw_buf_release(&obj);
		if (a->detail)
			cw_buf_addf(out, "      %s\n", a->detail);
		if (a->kind == CW_ACT_ISSUE && a->current_serial) {
			char na[32];
			cw_format_time(a->current_not_after, na);
			cw_buf_addf(out, "      replaces serial %s (expires %s)\n", a->current_serial, na);
		}
		if (a->nsteps) {
			cw_buf_adds(out, "      steps:");
			for (size_t s = 0; s < a->nsteps; s++)
				cw_buf_addf(out, "%s %s", s ? "," : "", a->steps[s]);
			cw_buf_adds(out, "\n");
		}
	}
	if (p->n)
		cw_buf_adds(out, "\n");
	for (size_t i = 0; i < p->diags.n; i++) {
		const cw_diag *d = &p->diags.items[i];
		if (color)
			cw_buf_adds(out, d->severity == CW_SEV_ERROR ? C_RED : C_YELLOW);
		cw_diag_format(d, out);
		if (color)
			cw_buf_adds(out, C_RESET);
		cw_buf_adds(out, "\n");
	}
	if (p->diags.n)
		cw_buf_adds(out, "\n");
	if (!p->n && cw_plan_blocking_errors(p)) {
		cw_buf_adds(out, "No plan: fix the errors above first.\n");
	} else if (!p->n) {
		cw_buf_addf(out, "%sNo changes.%s The targets match the inventory.\n",
			    color ? C_BOLD : "", color ? C_RESET : "");
	} else {
		cw_buf_addf(out, "%sPlan:%s ", color ? C_BOLD : "", color ? C_RESET : "");
		summary_line(p, out);
		cw_buf_adds(out, ".\n");
	}
	size_t blocking = cw_plan_blocking_errors(p);
	size_t errors = cw_diags_count(&p->diags, CW_SEV_ERROR);
	if (blocking)
		cw_buf_addf(out, "%zu error(s): apply will refuse this plan until they are fixed.\n",
			    blocking);
	else if (errors)
		cw_buf_addf(out, "%zu target error(s): apply will skip the work they concern.\n",
			    errors);
}

/* ---- JSON ---- */

static json_t *json_str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *action_to_json(const cw_action *a, size_t id)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer((json_int_t)id + 1));
	json_object_set_new(o, "kind", json_string(cw_action_kind_name(a->kind)));
	json_object_set_new(o, "name", json_string(a->name));
	json_object_set_new(o, "target", json_str_or_null(a->target));
	json_object_set_new(o, "reason", json_string(a->reason));
	json_object_set_new(o, "detail", json_str_or_null(a->detail));
	json_object_set_new(o, "current_serial", json_str_or_null(a->current_serial));
	json_object_set_new(o, "current_fingerprint", json_str_or_null(a->current_fingerprint));
	if (a->current_not_after) {
		char t[32];
		cw_format_time(a->current_not_after, t);
		json_object_set_new(o, "current_not_after", json_string(t));
	} else {
		json_object_set_new(o, "current_not_after", json_null());
	}
	json_object_set_new(o, "live_fingerprint", json_str_or_null(a->live_fingerprint));
	json_t *deps = json_array();
	for (size_t i = 0; i < a->ndeps; i++)
		json_array_append_new(deps, json_integer((json_int_t)a->deps[i] + 1));
	json_object_set_new(o, "depends_on", deps);
	json_t *steps = json_array();
	for (size_t i = 0; i < a->nsteps; i++)
		json_array_append_new(steps, json_string(a->steps[i]));
	json_object_set_new(o, "steps", steps);
	return o;
}

static json_t *diag_to_json(const cw_diag *d)
{
	json_t *o = json_object();
	json_object_set_new(o, "severity", json_string(d->severity == CW_SEV_ERROR ? "error" : "warning"));
	json_object_set_new(o, "code", json_string(d->code));
	json_object_set_new(o, "message", json_string(d->message));
	json_object_set_new(o, "hint", json_str_or_null(d->hint));
	json_object_set_new(o, "file", json_str_or_null(d->file));
	json_object_set_new(o, "line", d->line ? json_integer(d->line) : json_null());
	json_object_set_new(o, "column", d->col ? json_integer(d->col) : json_null());
	json_object_set_new(o, "certificate", json_str_or_null(d->certificate));
	json_object_set_new(o, "target", json_str_or_null(d->target));
	return o;
}

void cw_plan_render_json(const cw_plan *p, cw_buf *out)
{
	json_t *root = json_object();
	char now[32];
	cw_format_time(p->now, now);
	json_object_set_new(root, "format", json_string("certwright-plan"));
	json_object_set_new(root, "version", json_integer(1));
	json_object_set_new(root, "now", json_string(now));
	json_object_set_new(root, "inventory_digest", json_string(p->inventory_digest));
	json_object_set_new(root, "state_digest", json_string(p->state_digest));
	json_object_set_new(root, "live_digest", json_string(p->live_digest));
	json_t *summary = json_object();
	for (size_t k = 0; k < N_KINDS; k++)
		json_object_set_new(summary, kind_names[k], json_integer((json_int_t)cw_plan_count(p, (int)k)));
	json_object_set_new(summary, "total", json_integer((json_int_t)p->n));
	json_object_set_new(summary, "errors", json_integer((json_int_t)cw_diags_count(&p->diags, CW_SEV_ERROR)));
	json_object_set_new(summary, "warnings", json_integer((json_int_t)cw_diags_count(&p->diags, CW_SEV_WARNING)));
	json_object_set_new(root, "summary", summary);
	json_t *actions = json_array();
	for (size_t i = 0; i < p->n; i++)
		json_array_append_new(actions, action_to_json(&p->actions[i], i));
	json_object_set_new(root, "actions", actions);
	json_t *diags = json_array();
	for (size_t i = 0; i < p->diags.n; i++)
		json_array_append_new(diags, diag_to_json(&p->diags.items[i]));
	json_object_set_new(root, "diagnostics", diags);
	char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	cw_buf_adds(out, s);
	cw_buf_adds(out, "\n");
	free(s);
	json_decref(root);
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int parse_action(cw_plan *p, json_t *o, size_t idx, cw_error *err)
{
	cw_action_kind kind;
	const char *k = jstr(o, "kind"), *name = jstr(o, "name"), *reason = jstr(o, "reason");
	if (!k || cw_action_kind_parse(k, &kind) != 0 || !name || !reason)
		return cw_error_set(err, CW_EINVAL, "plan: action %zu: missing or unknown kind, name or reason",
				    idx + 1);
	size_t i = cw_plan_add(p, kind, name, jstr(o, "target"), reason, jstr(o, "detail"));
	cw_action *a = &p->actions[i];
	a->current_serial = cw_xstrdup(jstr(o, "current_serial"));
	a->current_fingerprint = cw_xstrdup(jstr(o, "current_fingerprint"));
	a->live_fingerprint = cw_xstrdup(jstr(o, "live_fingerprint"));
	const char *na = jstr(o, "current_not_after");
	if (na)
		cw_parse_time(na, 0, &a->current_not_after);
	size_t j;
	json_t *v;
	json_array_foreach(json_object_get(o, "depends_on"), j, v) {
		json_int_t d = json_integer_value(v);
		if (d < 1 || (size_t)d > idx)
			return cw_error_set(err, CW_EINVAL, "plan: action %zu depends on unknown action %lld",
					    idx + 1, (long long)d);
		cw_plan_add_dep(p, i, (size_t)d - 1);
	}
	json_array_foreach(json_object_get(o, "steps"), j, v)
		if (json_is_string(v))
			cw_plan_add_step(p, i, json_string_value(v));
	return 0;
}

int cw_plan_parse_json(cw_plan *p, const char *text, size_t len, cw_error *err)
{
	json_error_t je;
	json_t *root = json_loadb(text, len, 0, &je);
	if (!root)
		return cw_error_set(err, CW_EINVAL, "plan: not valid JSON (line %d: %s)", je.line, je.text);
	int rc = -1;
	const char *fmt = jstr(root, "format");
	if (!fmt || strcmp(fmt, "certwright-plan") || json_integer_value(json_object_get(root, "version")) != 1) {
		cw_error_set(err, CW_EINVAL, "plan: not a certwright plan (format certwright-plan, version 1)");
		goto out;
	}
	const char *now = jstr(root, "now");
	const char *dig[3] = { jstr(root, "inventory_digest"), jstr(root, "state_digest"),
			       jstr(root, "live_digest") };
	if (!now || cw_parse_time(now, 0, &p->now) != 0 || !dig[0] || !dig[1] || !dig[2]) {
		cw_error_set(err, CW_EINVAL, "plan: missing time or digests");
		goto out;
	}
	snprintf(p->inventory_digest, sizeof(p->inventory_digest), "%s", dig[0]);
	snprintf(p->state_digest, sizeof(p->state_digest), "%s", dig[1]);
	snprintf(p->live_digest, sizeof(p->live_digest), "%s", dig[2]);
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(root, "actions"), i, a)
		if (parse_action(p, a, i, err) != 0)
			goto out;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* ---- Markdown (a pull-request comment) ---- */

static void md_cell(cw_buf *out, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '|')
			cw_buf_adds(out, "\\|");
		else if (*s == '\n')
			cw_buf_adds(out, " ");
		else
			cw_buf_add(out, s, 1);
	}
}

void cw_plan_render_markdown(const cw_plan *p, cw_buf *out)
{
	char now[32];
	cw_format_time(p->now, now);
	cw_buf_adds(out, "### certwright plan\n\n");
	size_t errors = cw_diags_count(&p->diags, CW_SEV_ERROR);
	if (!p->n && cw_plan_blocking_errors(p)) {
		cw_buf_adds(out, "**No plan:** the inventory has errors (below).\n");
	} else if (!p->n) {
		cw_buf_adds(out, "**No changes.** The targets match the inventory.\n");
	} else {
		cw_buf_adds(out, "**Plan:** ");
		summary_line(p, out);
		cw_buf_adds(out, ".\n\n| # | action | certificate / authority | target | reason | detail |\n");
		cw_buf_adds(out, "|---|---|---|---|---|---|\n");
		for (size_t i = 0; i < p->n; i++) {
			const cw_action *a = &p->actions[i];
			cw_buf_addf(out, "| %zu | `%s` | `", i + 1, cw_action_kind_name(a->kind));
			md_cell(out, a->name);
			cw_buf_adds(out, "` | ");
			if (a->target) {
				cw_buf_adds(out, "`");
				md_cell(out, a->target);
				cw_buf_adds(out, "`");
			}
			cw_buf_adds(out, " | `");
			md_cell(out, a->reason);
			cw_buf_adds(out, "` | ");
			md_cell(out, a->detail);
			if (a->kind == CW_ACT_ISSUE && a->current_serial)
				cw_buf_addf(out, "%sreplaces serial `%s`", a->detail ? " — " : "",
					    a->current_serial);
			if (a->nsteps) {
				cw_buf_adds(out, a->detail ? " — steps: " : "steps: ");
				for (size_t s = 0; s < a->nsteps; s++) {
					cw_buf_adds(out, s ? ", " : "");
					md_cell(out, a->steps[s]);
				}
			}
			cw_buf_adds(out, " |\n");
		}
	}
	if (p->diags.n) {
		cw_buf_addf(out, "\n#### Findings (%zu error(s), %zu warning(s))\n\n", errors,
			    cw_diags_count(&p->diags, CW_SEV_WARNING));
		for (size_t i = 0; i < p->diags.n; i++) {
			const cw_diag *d = &p->diags.items[i];
			cw_buf_addf(out, "- **%s**", d->severity == CW_SEV_ERROR ? "error" : "warning");
			if (d->file)
				cw_buf_addf(out, " `%s:%d:%d`", d->file, d->line, d->col);
			cw_buf_adds(out, " ");
			md_cell(out, d->message);
			cw_buf_addf(out, " (`%s`)", d->code);
			if (d->hint) {
				cw_buf_adds(out, " — ");
				md_cell(out, d->hint);
			}
			cw_buf_adds(out, "\n");
		}
	}
	if (cw_plan_blocking_errors(p))
		cw_buf_adds(out, "\n:x: `apply` will refuse this plan until the errors are fixed.\n");
	cw_buf_addf(out, "\n<sub>planned at %s · inventory `%.12s`</sub>\n", now, p->inventory_digest);
}
