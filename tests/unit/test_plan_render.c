/*
 * test_plan_render — the three renderings of a plan against golden files in
 * tests/data/golden/, and the JSON round trip apply --plan relies on.
 * To accept an intended change of output: CW_UPDATE_GOLDEN=1 ./test_plan_render
 * (then review the diff of the golden files like any other change).
 */
#include <stdlib.h>
#include <string.h>

#include "reconcile/plan.h"
#include "testutil.h"

#define NOW ((time_t)1795000000) /* 2026-11-18T06:13:20Z */

static void sample_plan(cw_plan *p)
{
	cw_plan_init(p);
	p->now = NOW;
	memset(p->inventory_digest, 'a', 64);
	memset(p->state_digest, 'b', 64);
	memset(p->live_digest, 'c', 64);
	size_t ca = cw_plan_add(p, CW_ACT_CREATE_CA, "office-root", NULL, "missing", NULL);
	size_t renew = cw_plan_add(p, CW_ACT_RENEW_CA, "office-issuing", NULL, "renewal-due",
				   "current certificate expires 2027-01-02T00:00:00Z");
	cw_plan_add_dep(p, renew, ca);
	size_t issue = cw_plan_add(p, CW_ACT_ISSUE, "vpn", NULL, "spec-changed:sans", NULL);
	p->actions[issue].current_serial = strdup("4F1A2B3C4D5E6F70");
	p->actions[issue].current_fingerprint = strdup("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	p->actions[issue].current_not_after = NOW + 30 * 86400;
	cw_plan_add_dep(p, issue, renew);
	size_t dep = cw_plan_add(p, CW_ACT_DEPLOY, "vpn", "edge|router", "new-certificate", NULL);
	cw_plan_add_dep(p, dep, issue);
	cw_plan_add_step(p, dep, "upload");
	cw_plan_add_step(p, dep, "bind www-ssl");
	cw_plan_add_step(p, dep, "verify");
	p->actions[dep].live_fingerprint = strdup("fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210");
	cw_plan_add(p, CW_ACT_REMOVE, "old-client", "mailroot", "removed-from-inventory", NULL);
	cw_srcpos pos = { "inventory/certs.yaml", 12, 5 };
	cw_diag *w = cw_diag_add(&p->diags, CW_SEV_WARNING, &pos, "expressway.ip-san", NULL,
				 "certificate 'vpn': IP SANs are not advised on Expressway");
	w->certificate = strdup("vpn");
	cw_diag *e = cw_diag_add(&p->diags, CW_SEV_ERROR, NULL, "target.unreachable", NULL,
				 "target 'edge|router': connection refused");
	e->target = strdup("edge|router");
}

static void compare_golden(const char *name, const cw_buf *got)
{
	char *path = cw_xasprintf("%s/golden/%s", getenv("CW_TEST_DATA"), name);
	if (getenv("CW_UPDATE_GOLDEN")) {
		tu_write(path, got->buf);
		free(path);
		return;
	}
	cw_buf want = CW_BUF_INIT;
	cw_error err = { 0 };
	if (cw_read_file(path, 0, &want, &err) != 0)
		fail_msg("%s (set CW_UPDATE_GOLDEN=1 to create it)", err.msg);
	if (strcmp(want.buf, got->buf))
		fail_msg("%s differs from its golden file\n--- want\n%s--- got\n%s", name, want.buf,
			 got->buf);
	cw_buf_release(&want);
	free(path);
}

static void test_text(void **state)
{
	cw_plan p;
	sample_plan(&p);
	cw_buf b = CW_BUF_INIT;
	cw_plan_render_text(&p, 0, &b);
	compare_golden("plan.txt", &b);
	assert_null(strchr(b.buf, '\033')); /* no colour unless asked */
	cw_buf_release(&b);
	cw_plan_render_text(&p, 1, &b);
	assert_non_null(strstr(b.buf, "\033[32m"));
	cw_buf_release(&b);
	cw_plan_release(&p);
}

static void test_json(void **state)
{
	cw_plan p;
	sample_plan(&p);
	cw_buf b = CW_BUF_INIT;
	cw_plan_render_json(&p, &b);
	compare_golden("plan.json", &b);
	cw_buf_release(&b);
	cw_plan_release(&p);
}

static void test_markdown(void **state)
{
	cw_plan p;
	sample_plan(&p);
	cw_buf b = CW_BUF_INIT;
	cw_plan_render_markdown(&p, &b);
	compare_golden("plan.md", &b);
	assert_non_null(strstr(b.buf, "edge\\|router")); /* a pipe cannot break the table */
	cw_buf_release(&b);
	cw_plan_release(&p);
}

static void test_empty_plan(void **state)
{
	cw_plan p;
	cw_plan_init(&p);
	p.now = NOW;
	cw_buf b = CW_BUF_INIT;
	cw_plan_render_text(&p, 0, &b);
	compare_golden("plan-empty.txt", &b);
	cw_buf_release(&b);
	cw_plan_render_markdown(&p, &b);
	assert_non_null(strstr(b.buf, "No changes"));
	cw_buf_release(&b);
	cw_plan_release(&p);
}

static void test_json_round_trip(void **state)
{
	cw_plan p, q;
	sample_plan(&p);
	cw_buf a = CW_BUF_INIT, b = CW_BUF_INIT;
	cw_plan_render_json(&p, &a);
	cw_plan_init(&q);
	cw_error err = { 0 };
	assert_int_equal(cw_plan_parse_json(&q, a.buf, a.len, &err), 0);
	assert_true(cw_plan_same_actions(&p, &q));
	assert_string_equal(q.state_digest, p.state_digest);
	assert_int_equal(q.actions[3].ndeps, 1);
	assert_int_equal(q.actions[3].deps[0], 2);
	/* diagnostics are not carried back: a plan is re-validated when it is applied */
	q.diags = p.diags;
	cw_plan_render_json(&q, &b);
	cw_diags_init(&q.diags);
	assert_string_equal(a.buf, b.buf);
	cw_buf_release(&a);
	cw_buf_release(&b);
	cw_plan_release(&p);
	cw_plan_release(&q);
}

static void test_json_rejects_bad_plans(void **state)
{
	static const char *bad[] = {
		"not json",
		"{\"format\":\"something-else\",\"version\":1}",
		"{\"format\":\"certwright-plan\",\"version\":2}",
		"{\"format\":\"certwright-plan\",\"version\":1,\"now\":\"2026-11-18T06:13:20Z\","
		"\"inventory_digest\":\"a\",\"state_digest\":\"b\",\"live_digest\":\"c\","
		"\"actions\":[{\"kind\":\"explode\",\"name\":\"x\",\"reason\":\"y\"}]}",
		"{\"format\":\"certwright-plan\",\"version\":1,\"now\":\"2026-11-18T06:13:20Z\","
		"\"inventory_digest\":\"a\",\"state_digest\":\"b\",\"live_digest\":\"c\","
		"\"actions\":[{\"kind\":\"issue\",\"name\":\"x\",\"reason\":\"y\",\"depends_on\":[5]}]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cw_plan p;
		cw_plan_init(&p);
		cw_error err = { 0 };
		assert_int_equal(cw_plan_parse_json(&p, bad[i], strlen(bad[i]), &err), -1);
		assert_true(strncmp(err.msg, "plan:", 5) == 0);
		cw_plan_release(&p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_markdown),
		cmocka_unit_test(test_empty_plan),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_json_rejects_bad_plans),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
