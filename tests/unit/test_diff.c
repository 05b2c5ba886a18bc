/*
 * test_diff — the diff as a table: each case sets up recorded state and live
 * observations against one inventory and checks the exact actions and reasons.
 * The inventory is parsed by the real loader; recorded state goes through the real
 * state module into a temporary keystore; live observations are built by hand.
 */
#include <stdlib.h>
#include <string.h>

#include "reconcile/diff.h"
#include "reconcile/inventory.h"
#include "reconcile/keystore.h"
#include "reconcile/state.h"
#include "testutil.h"

static const char *INVENTORY =
	"version: 1\n"
	"defaults: {issuer: issuing, key: ecdsa-p256, lifetime: 90d}\n"
	"authorities:\n"
	"  root: {subject: \"CN=Root\", lifetime: 3650d}\n"
	"  issuing: {parent: root, subject: \"CN=Issuing\", lifetime: 1825d, path_len: 0}\n"
	"certificates:\n"
	"  web:\n"
	"    sans: [\"DNS:web.test\"]\n"
	"    deploy: [{target: t1}, {target: t2}]\n"
	"  mail:\n"
	"    sans: [\"DNS:mail.test\"]\n"
	"    key: rsa-2048\n"
	"    lifetime: 825d\n"
	"    deploy: [{target: t1}]\n"
	"targets:\n"
	"  t1: {type: files, path: /tmp/cw-diff-t1, files: {cert: \"{name}.crt\"}}\n"
	"  t2: {type: files, path: /tmp/cw-diff-t2, files: {cert: \"{name}.crt\"}}\n";

#define T0 ((time_t)1790000000) /* 2026-09-21: issuance time of everything recorded */
#define DAY 86400

typedef struct {
	char *dir;
	cw_inventory inv;
	cw_keystore *ks;
	cw_state st;
	cw_live live;
	cw_plan plan;
} fixture;

static void load_inventory_text(cw_inventory *inv, const char *text)
{
	cw_inventory_file f = { "inventory/test.yaml", text, strlen(text) };
	cw_diags d;
	cw_diags_init(&d);
	int rc = cw_inventory_load_files(inv, &f, 1, T0, &d);
	for (size_t i = 0; i < d.n; i++)
		fprintf(stderr, "diag: %s\n", d.items[i].message);
	assert_int_equal(rc, 0);
	cw_diags_release(&d);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tempdir();
	load_inventory_text(&f->inv, INVENTORY);
	char *ksdir = cw_path_join(f->dir, "ks");
	cw_error err = { 0 };
	assert_int_equal(cw_keystore_open(&f->ks, ksdir, 1, &err), 0);
	free(ksdir);
	assert_int_equal(cw_state_load(&f->st, f->ks, &err), 0);
	cw_plan_init(&f->plan);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	cw_plan_release(&f->plan);
	cw_live_release(&f->live);
	cw_state_release(&f->st);
	cw_keystore_close(f->ks);
	cw_inventory_release(&f->inv);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* ---- building recorded state ---- */

static void fp_for(const char *name, const char *serial, char out[65])
{
	char *s = cw_xasprintf("%s/%s", name, serial);
	cw_sha256_hex(s, strlen(s), out);
	free(s);
}

/* Records an issuance of `name` exactly as the inventory asks (spec copied from it). */
static void issue(fixture *f, const char *name, const char *serial, time_t at, const char *key_id,
		  const char *issuer_key_id)
{
	const cw_authority *ca = cw_inventory_authority(&f->inv, name);
	const cw_certificate *c = cw_inventory_certificate(&f->inv, name);
	cw_issued e;
	memset(&e, 0, sizeof(e));
	e.name = (char *)name;
	e.serial = (char *)serial;
	fp_for(name, serial, e.fingerprint);
	e.subject = (char *)"CN=x";
	e.not_before = at - 300;
	e.issued_at = at;
	const cw_cert_spec *spec = ca ? &ca->spec : &c->spec;
	cw_cert_spec_copy(&e.spec, spec);
	free(e.spec.crl_url);
	e.spec.crl_url = NULL;
	e.not_after = at + spec->lifetime;
	e.issuer = (char *)(ca ? (ca->parent ? ca->parent : ca->name) : c->issuer);
	e.key_id = (char *)key_id;
	e.issuer_key_id = (char *)issuer_key_id;
	e.is_ca = ca != NULL;
	cw_error err = { 0 };
	assert_int_equal(cw_state_record_issued(&f->st, f->ks, &e, 1, &err), 0);
	cw_cert_spec_release(&e.spec);
}

static void issue_all(fixture *f)
{
	issue(f, "root", "01", T0, "k-root", "k-root");
	issue(f, "issuing", "02", T0, "k-issuing", "k-root");
	issue(f, "web", "03", T0, "k-web", "k-issuing");
	issue(f, "mail", "04", T0, "k-mail", "k-issuing");
}

static void deployed(fixture *f, const char *target, const char *cert, const char *serial,
		     cw_deploy_status status)
{
	cw_deploy_record r;
	memset(&r, 0, sizeof(r));
	r.target = (char *)target;
	r.certificate = (char *)cert;
	r.status = status;
	r.serial = (char *)serial;
	fp_for(cert, serial, r.fingerprint);
	r.attempts = status == CW_DEPLOY_FAILED ? 2 : 0;
	r.last_error = status == CW_DEPLOY_FAILED ? (char *)"reload failed" : NULL;
	r.updated = T0;
	cw_error err = { 0 };
	assert_int_equal(cw_state_record_deploy(&f->st, f->ks, &r, &err), 0);
}

/* ---- building live state ---- */

static void live_target(fixture *f, const char *name, int ok)
{
	cw_live *l = &f->live;
	l->targets = realloc(l->targets, (l->ntargets + 1) * sizeof(*l->targets));
	cw_live_target *t = &l->targets[l->ntargets++];
	memset(t, 0, sizeof(*t));
	t->name = strdup(name);
	t->ok = ok;
	if (!ok)
		t->error = strdup("connection refused");
}

/* serial NULL: the slot is empty; "other": a certificate we never issued. */
static void live_slot(fixture *f, const char *target, const char *cert, const char *serial)
{
	cw_live *l = &f->live;
	l->slots = realloc(l->slots, (l->nslots + 1) * sizeof(*l->slots));
	cw_live_slot *s = &l->slots[l->nslots];
	memset(s, 0, sizeof(*s));
	s->target = strdup(target);
	s->slot = strdup(cert);
	s->ok = 1;
	if (serial) {
		s->obs.present = 1;
		fp_for(strcmp(serial, "other") ? cert : "intruder", serial, s->fingerprint);
	}
	char *key = cw_xasprintf("%s\n%s", target, cert);
	cw_strmap_put(&l->slot_index, key, l->nslots++);
	free(key);
}

/* Everything issued, recorded and live as recorded: the converged state. */
static void converged(fixture *f)
{
	issue_all(f);
	deployed(f, "t1", "web", "03", CW_DEPLOY_OK);
	deployed(f, "t2", "web", "03", CW_DEPLOY_OK);
	deployed(f, "t1", "mail", "04", CW_DEPLOY_OK);
	live_target(f, "t1", 1);
	live_target(f, "t2", 1);
	live_slot(f, "t1", "web", "03");
	live_slot(f, "t2", "web", "03");
	live_slot(f, "t1", "mail", "04");
}

static void run_diff(fixture *f, time_t now, const cw_diff_filter *filter)
{
	cw_plan_release(&f->plan);
	cw_plan_init(&f->plan);
	assert_int_equal(cw_diff(&f->plan, &f->inv, &f->st, &f->live, now, filter), 0);
}

/* Asserts the plan is exactly these "kind name[>target] reason" lines, in order. */
static void expect_plan(fixture *f, const char *const *want)
{
	size_t n = 0;
	while (want[n])
		n++;
	cw_buf got = CW_BUF_INIT;
	for (size_t i = 0; i < f->plan.n; i++) {
		const cw_action *a = &f->plan.actions[i];
		cw_buf_addf(&got, "%s %s%s%s %s\n", cw_action_kind_name(a->kind), a->name,
			    a->target ? ">" : "", a->target ? a->target : "", a->reason);
	}
	cw_buf exp = CW_BUF_INIT;
	for (size_t i = 0; i < n; i++)
		cw_buf_addf(&exp, "%s\n", want[i]);
	if (strcmp(got.buf ? got.buf : "", exp.buf ? exp.buf : ""))
		fail_msg("plan differs\n--- want\n%s--- got\n%s", exp.buf ? exp.buf : "",
			 got.buf ? got.buf : "");
	cw_buf_release(&got);
	cw_buf_release(&exp);
}

static const cw_action *find_action(fixture *f, const char *kind, const char *name, const char *target)
{
	for (size_t i = 0; i < f->plan.n; i++) {
		const cw_action *a = &f->plan.actions[i];
		if (!strcmp(cw_action_kind_name(a->kind), kind) && !strcmp(a->name, name) &&
		    (!target || (a->target && !strcmp(a->target, target))))
			return a;
	}
	fail_msg("no action %s %s", kind, name);
	return NULL;
}

/* ---- the cases ---- */

static void test_fresh_setup_plans_everything_in_order(void **state)
{
	fixture *f = *state;
	live_target(f, "t1", 1);
	live_target(f, "t2", 1);
	live_slot(f, "t1", "web", NULL);
	live_slot(f, "t2", "web", NULL);
	live_slot(f, "t1", "mail", NULL);
	run_diff(f, T0, NULL);
	const char *want[] = { "create-ca root missing", "create-ca issuing missing",
			       "issue web missing", "issue mail missing",
			       "deploy web>t1 new-certificate", "deploy web>t2 new-certificate",
			       "deploy mail>t1 new-certificate", NULL };
	expect_plan(f, want);
	/* dependencies: issuing after root, web after issuing (and root), deploy after issue */
	const cw_action *inter = find_action(f, "create-ca", "issuing", NULL);
	assert_int_equal(inter->ndeps, 1);
	assert_int_equal(inter->deps[0], 0);
	const cw_action *dep = find_action(f, "deploy", "web", "t2");
	int after_issue = 0;
	for (size_t i = 0; i < dep->ndeps; i++)
		after_issue |= dep->deps[i] == 2;
	assert_true(after_issue);
	assert_true(dep->nsteps >= 2);
	assert_string_equal(dep->steps[0], "upload");
}

static void test_converged_state_plans_nothing(void **state)
{
	fixture *f = *state;
	converged(f);
	run_diff(f, T0 + 10 * DAY, NULL);
	const char *want[] = { NULL };
	expect_plan(f, want);
	assert_int_equal(f->plan.diags.n, 0);
}

static void test_renewal_due_follows_issued_dates(void **state)
{
	fixture *f = *state;
	converged(f);
	/* web: 90d, renew with 33% left -> due at day 60.3; mail: 825d -> day 552 */
	run_diff(f, T0 + 60 * DAY, NULL);
	const char *none[] = { NULL };
	expect_plan(f, none);
	run_diff(f, T0 + 61 * DAY, NULL);
	const char *want[] = { "issue web renewal-due", "deploy web>t1 new-certificate",
			       "deploy web>t2 new-certificate", NULL };
	expect_plan(f, want);
	const cw_action *a = find_action(f, "issue", "web", NULL);
	assert_string_equal(a->current_serial, "03");
	assert_non_null(strstr(a->detail, "expires"));
}

static void test_expired_wins_over_renewal(void **state)
{
	fixture *f = *state;
	converged(f);
	run_diff(f, T0 + 91 * DAY, NULL);
	find_action(f, "issue", "web", NULL);
	assert_string_equal(find_action(f, "issue", "web", NULL)->reason, "expired");
}

static void test_spec_changes_name_the_field(void **state)
{
	static const struct { const char *from, *to, *reason; } cases[] = {
		{ "\"DNS:web.test\"]", "\"DNS:web.test\", \"DNS:www.test\"]", "spec-changed:sans" },
		{ "key: rsa-2048", "key: rsa-3072", "spec-changed:key" },
		{ "lifetime: 825d", "lifetime: 398d", "spec-changed:lifetime" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fixture *f = *state;
		converged(f);
		cw_inventory changed;
		memset(&changed, 0, sizeof(changed));
		char *text = strdup(INVENTORY);
		char *at = strstr(text, cases[i].from);
		assert_non_null(at);
		char *edited = cw_xasprintf("%.*s%s%s", (int)(at - text), text, cases[i].to,
					    at + strlen(cases[i].from));
		load_inventory_text(&changed, edited);
		cw_plan_release(&f->plan);
		cw_plan_init(&f->plan);
		assert_int_equal(cw_diff(&f->plan, &changed, &f->st, &f->live, T0 + DAY, NULL), 0);
		assert_true(f->plan.n >= 1);
		assert_string_equal(f->plan.actions[0].kind == CW_ACT_ISSUE ? f->plan.actions[0].reason : "",
				    cases[i].reason);
		cw_inventory_release(&changed);
		free(text);
		free(edited);
		teardown(state);
		setup(state);
	}
}

static void test_ca_rotation_reissues_everything_below(void **state)
{
	fixture *f = *state;
	converged(f);
	cw_inventory changed;
	memset(&changed, 0, sizeof(changed));
	char *text = strdup(INVENTORY);
	char *at = strstr(text, "CN=Issuing");
	char *edited = cw_xasprintf("%.*sCN=Issuing G2%s", (int)(at - text), text, at + strlen("CN=Issuing"));
	load_inventory_text(&changed, edited);
	assert_int_equal(cw_diff(&f->plan, &changed, &f->st, &f->live, T0 + DAY, NULL), 0);
	const cw_action *ca = NULL;
	for (size_t i = 0; i < f->plan.n; i++)
		if (f->plan.actions[i].kind == CW_ACT_CREATE_CA)
			ca = &f->plan.actions[i];
	assert_non_null(ca);
	assert_string_equal(ca->name, "issuing");
	assert_string_equal(ca->reason, "spec-changed:subject");
	assert_non_null(strstr(ca->detail, "rotation"));
	size_t reissued = 0;
	for (size_t i = 0; i < f->plan.n; i++)
		if (f->plan.actions[i].kind == CW_ACT_ISSUE) {
			assert_string_equal(f->plan.actions[i].reason, "issuer-changed");
			reissued++;
		}
	assert_int_equal(reissued, 2);
	cw_inventory_release(&changed);
	free(text);
	free(edited);
}

static void test_deployment_checks(void **state)
{
	fixture *f = *state;
	issue_all(f);
	issue(f, "web", "05", T0 + DAY, "k-web2", "k-issuing"); /* web renewed: 05 is current */
	deployed(f, "t1", "web", "05", CW_DEPLOY_FAILED);        /* last deploy failed */
	deployed(f, "t2", "web", "05", CW_DEPLOY_STARTED);       /* killed mid-deploy */
	live_target(f, "t1", 1);
	live_target(f, "t2", 1);
	live_slot(f, "t1", "web", "03");                         /* old one of ours */
	live_slot(f, "t2", "web", "05");
	live_slot(f, "t1", "mail", "other");                     /* someone replaced it */
	run_diff(f, T0 + 2 * DAY, NULL);
	const char *want[] = { "deploy web>t1 deploy-failed", "deploy web>t2 deploy-interrupted",
			       "deploy mail>t1 drift:fingerprint", NULL };
	expect_plan(f, want);
	assert_non_null(strstr(find_action(f, "deploy", "web", "t1")->detail, "reload failed"));
}

static void test_outdated_and_not_deployed(void **state)
{
	fixture *f = *state;
	issue_all(f);
	issue(f, "web", "05", T0 + DAY, "k-web2", "k-issuing");
	live_target(f, "t1", 1);
	live_target(f, "t2", 1);
	live_slot(f, "t1", "web", "03");
	live_slot(f, "t2", "web", NULL);
	live_slot(f, "t1", "mail", "04");
	run_diff(f, T0 + 2 * DAY, NULL);
	const char *want[] = { "deploy web>t1 outdated", "deploy web>t2 not-deployed", NULL };
	expect_plan(f, want);
}

static void test_unreachable_target_is_a_target_error(void **state)
{
	fixture *f = *state;
	issue_all(f);
	deployed(f, "t1", "web", "03", CW_DEPLOY_OK);
	deployed(f, "t1", "mail", "04", CW_DEPLOY_OK);
	live_target(f, "t1", 0);   /* t1 down, t2 fine but empty */
	live_target(f, "t2", 1);
	live_slot(f, "t2", "web", NULL);
	run_diff(f, T0 + DAY, NULL);
	/* t1's recorded deployments are trusted; t2 still gets its deploy */
	const char *want[] = { "deploy web>t2 not-deployed", NULL };
	expect_plan(f, want);
	assert_int_equal(f->plan.diags.n, 1);
	assert_string_equal(f->plan.diags.items[0].code, "target.unreachable");
	assert_string_equal(f->plan.diags.items[0].target, "t1");
	assert_int_equal(cw_plan_blocking_errors(&f->plan), 0);
}

static void test_removals(void **state)
{
	fixture *f = *state;
	converged(f);
	deployed(f, "t2", "mail", "04", CW_DEPLOY_OK);        /* mail no longer goes to t2 */
	deployed(f, "t1", "gone", "09", CW_DEPLOY_OK);        /* certificate left the inventory */
	deployed(f, "t1", "older", "0A", CW_DEPLOY_REMOVED);  /* already removed: nothing */
	live_slot(f, "t2", "mail", "04");
	run_diff(f, T0 + DAY, NULL);
	const char *want[] = { "remove mail>t2 undeployed", "remove gone>t1 removed-from-inventory", NULL };
	expect_plan(f, want);
}

static void test_filters(void **state)
{
	fixture *f = *state;
	live_target(f, "t1", 1);
	live_target(f, "t2", 1);
	const char *targets[] = { "t2" };
	cw_diff_filter by_target = { targets, 1, NULL, 0 };
	run_diff(f, T0, &by_target);
	const char *want[] = { "create-ca root missing", "create-ca issuing missing",
			       "issue web missing", "deploy web>t2 new-certificate", NULL };
	expect_plan(f, want);
	const char *certs[] = { "mail" };
	cw_diff_filter by_cert = { NULL, 0, certs, 1 };
	run_diff(f, T0, &by_cert);
	const char *want2[] = { "create-ca root missing", "create-ca issuing missing",
				"issue mail missing", "deploy mail>t1 new-certificate", NULL };
	expect_plan(f, want2);
}

static void test_refused_key_type_is_a_plan_error_for_that_target(void **state)
{
	fixture *f = *state;
	live_target(f, "t1", 1);
	live_target(f, "t2", 1);
	f->live.targets[1].facts.accepted_keys = 1u << CW_KEY_RSA2048; /* t2 takes RSA only */
	f->live.targets[1].facts.version = strdup("5.01.9674");
	run_diff(f, T0, NULL);
	for (size_t i = 0; i < f->plan.n; i++)
		assert_false(f->plan.actions[i].target && !strcmp(f->plan.actions[i].target, "t2"));
	assert_int_equal(f->plan.diags.n, 1);
	assert_string_equal(f->plan.diags.items[0].code, "target.key-type");
	assert_string_equal(f->plan.diags.items[0].certificate, "web");
	assert_non_null(strstr(f->plan.diags.items[0].message, "ecdsa-p256"));
}

static void test_same_inputs_same_plan(void **state)
{
	fixture *f = *state;
	converged(f);
	run_diff(f, T0 + 61 * DAY, NULL);
	cw_buf a = CW_BUF_INIT, b = CW_BUF_INIT;
	cw_plan_render_json(&f->plan, &a);
	run_diff(f, T0 + 61 * DAY, NULL);
	cw_plan_render_json(&f->plan, &b);
	assert_string_equal(a.buf, b.buf);
	cw_buf_release(&a);
	cw_buf_release(&b);
}

/* Inventory text with one substitution (for cases that need a variant). */
static void load_variant(cw_inventory *inv, const char *from, const char *to)
{
	const char *at = strstr(INVENTORY, from);
	assert_non_null(at);
	char *text = cw_xasprintf("%.*s%s%s", (int)(at - INVENTORY), INVENTORY, to, at + strlen(from));
	memset(inv, 0, sizeof(*inv));
	load_inventory_text(inv, text);
	free(text);
}

/* A CA renewed in an earlier run (killed before its deploys, or applied with --target):
 * the chain recorded with each deployment says which targets still carry the old one. */
static void test_chain_change_survives_the_run_that_renewed_the_ca(void **state)
{
	fixture *f = *state;
	converged(f);
	cw_deploy_record r;
	memset(&r, 0, sizeof(r));
	r.target = (char *)"t1";
	r.certificate = (char *)"web";
	r.status = CW_DEPLOY_OK;
	r.serial = (char *)"03";
	fp_for("web", "03", r.fingerprint);
	r.updated = T0;
	cw_chain_digest(&f->st, cw_inventory_certificate(&f->inv, "web")->issuer_ref, r.chain_digest);
	cw_error err = { 0 };
	assert_int_equal(cw_state_record_deploy(&f->st, f->ks, &r, &err), 0);
	run_diff(f, T0 + DAY, NULL);
	const char *none[] = { NULL };
	expect_plan(f, none);
	/* the issuing CA gets a new certificate (same key) in a run that dies before deploying */
	issue(f, "issuing", "0B", T0 + DAY, "k-issuing", "k-root");
	run_diff(f, T0 + 2 * DAY, NULL);
	const char *want[] = { "deploy web>t1 chain-changed", NULL };
	expect_plan(f, want);
}

/* revoke_superseded waits until every deployment holds the replacement: a deployment
 * outside --target, or refused by its device, keeps the old certificate valid. */
static void test_superseded_waits_for_every_deployment(void **state)
{
	fixture *f = *state;
	cw_inventory inv;
	load_variant(&inv, "    deploy: [{target: t1}, {target: t2}]\n",
		     "    deploy: [{target: t1}, {target: t2}]\n    revoke_superseded: true\n");
	converged(f);
	cw_plan_release(&f->plan);
	cw_plan_init(&f->plan);
	/* renewal due: everything in scope -> the old serial is revoked after both deploys */
	assert_int_equal(cw_diff(&f->plan, &inv, &f->st, &f->live, T0 + 61 * DAY, NULL), 0);
	const cw_action *rv = find_action(f, "revoke", "web", NULL);
	assert_string_equal(rv->reason, "superseded");
	assert_string_equal(rv->current_serial, "03");
	assert_int_equal(rv->ndeps, 3); /* issue + two deploys */
	/* only t1 in scope: t2 would keep serving the old one, so no revocation yet */
	const char *targets[] = { "t1" };
	cw_diff_filter only_t1 = { targets, 1, NULL, 0 };
	cw_plan_release(&f->plan);
	cw_plan_init(&f->plan);
	assert_int_equal(cw_diff(&f->plan, &inv, &f->st, &f->live, T0 + 61 * DAY, &only_t1), 0);
	for (size_t i = 0; i < f->plan.n; i++)
		assert_int_not_equal(f->plan.actions[i].kind, CW_ACT_REVOKE);
	/* t2 refuses the key type: same */
	f->live.targets[1].facts.accepted_keys = 1u << CW_KEY_RSA2048;
	cw_plan_release(&f->plan);
	cw_plan_init(&f->plan);
	assert_int_equal(cw_diff(&f->plan, &inv, &f->st, &f->live, T0 + 61 * DAY, NULL), 0);
	for (size_t i = 0; i < f->plan.n; i++)
		assert_int_not_equal(f->plan.actions[i].kind, CW_ACT_REVOKE);
	cw_inventory_release(&inv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fresh_setup_plans_everything_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_converged_state_plans_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_renewal_due_follows_issued_dates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_wins_over_renewal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spec_changes_name_the_field, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ca_rotation_reissues_everything_below, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deployment_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outdated_and_not_deployed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable_target_is_a_target_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_key_type_is_a_plan_error_for_that_target, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_inputs_same_plan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_change_survives_the_run_that_renewed_the_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_superseded_waits_for_every_deployment, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
