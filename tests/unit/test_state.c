/* Tests for reconcile/state: the issuance index, the deployment journal, the digest. */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "reconcile/state.h"

#define T0 ((time_t)1767225600)  /* 2026-01-01T00:00:00Z */

typedef struct {
	char *dir;
	cw_keystore *ks;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tempdir();
	cw_error err = { 0 };
	assert_int_equal(cw_keystore_open(&f->ks, f->dir, 0, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	cw_keystore_close(f->ks);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static char *path_in(const fixture *f, const char *rel)
{
	return cw_path_join(f->dir, rel);
}

static void load_ok(fixture *f, cw_state *st)
{
	cw_error err = { 0 };
	int rc = cw_state_load(st, f->ks, &err);
	if (rc != 0)
		fail_msg("load: %s", err.msg);
}

/* An entry with every field set, varied by i, so a lost or mixed-up field shows. */
static void make_entry(cw_issued *e, const char *name, const char *issuer, const char *serial,
		       int i)
{
	memset(e, 0, sizeof(*e));
	e->name = cw_xstrdup(name);
	e->issuer = cw_xstrdup(issuer);
	e->serial = cw_xstrdup(serial);
	snprintf(e->fingerprint, sizeof(e->fingerprint), "%064x", i + 1);
	e->subject = cw_xasprintf("CN=%s,O=Example Ünïcode,C=JP", name);
	e->not_before = T0 - 300 + i;
	e->not_after = T0 + 90 * 86400 + i;
	e->issued_at = T0 + i;
	e->spec.subject = cw_xasprintf("CN=%s", name);
	e->spec.nsans = 4;
	e->spec.sans = cw_xcalloc(4, sizeof(cw_san));
	e->spec.sans[0] = (cw_san){ CW_SAN_DNS, cw_xasprintf("%s.example.net", name) };
	e->spec.sans[1] = (cw_san){ CW_SAN_IP, cw_xstrdup("2001:db8::1") };
	e->spec.sans[2] = (cw_san){ CW_SAN_EMAIL, cw_xstrdup("noc@example.net") };
	e->spec.sans[3] = (cw_san){ CW_SAN_URI, cw_xstrdup("https://example.net/x") };
	e->spec.usage = CW_KU_DIGITAL_SIGNATURE | CW_KU_KEY_ENCIPHERMENT | CW_EKU_SERVER_AUTH |
			(i % 2 ? CW_EKU_IKE_INTERMEDIATE : CW_EKU_CLIENT_AUTH);
	e->spec.key = i % 3 == 0 ? CW_KEY_EC_P256 : i % 3 == 1 ? CW_KEY_RSA3072 : CW_KEY_ED25519;
	e->spec.lifetime = 90 * 86400 + i;
	if (i % 2) {
		e->spec.renew.is_percent = 1;
		e->spec.renew.percent = 33;
	} else {
		e->spec.renew.seconds = 30 * 86400;
	}
	e->spec.is_ca = !strcmp(name, issuer);
	e->spec.path_len = e->spec.is_ca ? 1 : -1;
	e->spec.crl_url = i % 2 ? cw_xstrdup("http://example.net/crl/root.crl") : NULL;
	e->issuer_key_id = cw_xasprintf("AA:%02X", i & 0xff);
	e->key_id = cw_xasprintf("BB:%02X", i & 0xff);
	e->is_ca = e->spec.is_ca;
}

/* Equal strings, where NULL equals only NULL. */
static void assert_opt_equal(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_issued_equal(const cw_issued *a, const cw_issued *b)
{
	assert_string_equal(a->name, b->name);
	assert_string_equal(a->issuer, b->issuer);
	assert_string_equal(a->serial, b->serial);
	assert_string_equal(a->fingerprint, b->fingerprint);
	assert_opt_equal(a->subject, b->subject);
	assert_int_equal(a->not_before, b->not_before);
	assert_int_equal(a->not_after, b->not_after);
	assert_int_equal(a->issued_at, b->issued_at);
	assert_string_equal(a->spec.subject, b->spec.subject);
	assert_int_equal(a->spec.nsans, b->spec.nsans);
	for (size_t i = 0; i < a->spec.nsans; i++) {
		assert_int_equal(a->spec.sans[i].type, b->spec.sans[i].type);
		assert_string_equal(a->spec.sans[i].value, b->spec.sans[i].value);
	}
	assert_int_equal(a->spec.usage, b->spec.usage);
	assert_int_equal(a->spec.key, b->spec.key);
	assert_int_equal(a->spec.lifetime, b->spec.lifetime);
	assert_int_equal(a->spec.renew.is_percent, b->spec.renew.is_percent);
	assert_int_equal(a->spec.renew.percent, b->spec.renew.percent);
	assert_int_equal(a->spec.renew.seconds, b->spec.renew.seconds);
	assert_int_equal(a->spec.is_ca, b->spec.is_ca);
	assert_int_equal(a->spec.path_len, b->spec.path_len);
	assert_opt_equal(a->spec.crl_url, b->spec.crl_url);
	assert_string_equal(a->issuer_key_id, b->issuer_key_id);
	assert_string_equal(a->key_id, b->key_id);
	assert_int_equal(a->is_ca, b->is_ca);
	assert_int_equal(a->revoked, b->revoked);
	assert_int_equal(a->revoked_at, b->revoked_at);
	assert_opt_equal(a->revoke_reason, b->revoke_reason);
	assert_int_equal(a->seq, b->seq);
}

static void release_entries(cw_issued *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cw_issued_release(&e[i]);
}

static void record_ok(fixture *f, cw_state *st, const cw_issued *e, size_t n)
{
	cw_error err = { 0 };
	int rc = cw_state_record_issued(st, f->ks, e, n, &err);
	if (rc != 0)
		fail_msg("record: %s", err.msg);
}

static char *file_sha(const char *path)
{
	cw_buf b = CW_BUF_INIT;
	cw_error err = { 0 };
	assert_int_equal(cw_read_file(path, 0, &b, &err), 0);
	char *hex = cw_xcalloc(1, 65);
	cw_sha256_hex(b.buf, b.len, hex);
	cw_buf_release(&b);
	return hex;
}

/* ---- issuance ---- */

static void test_issued_round_trip(void **state)
{
	fixture *f = *state;
	cw_state st, again;
	load_ok(f, &st);
	assert_int_equal(st.nissued, 0);
	assert_int_equal(st.next_seq, 1);

	cw_issued batch[5];
	make_entry(&batch[0], "root", "root", "01", 0);
	make_entry(&batch[1], "inter", "root", "02", 1);
	make_entry(&batch[2], "vpn", "inter", "0A", 2);
	make_entry(&batch[3], "web", "inter", "0B", 3);
	make_entry(&batch[4], "lab", "lab-root", "0C", 4);
	batch[4].subject = (free(batch[4].subject), NULL);           /* nulls survive too */
	batch[4].spec.key = CW_KEY_NONE;
	record_ok(f, &st, batch, 5);
	assert_int_equal(st.nissued, 5);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(cw_state_find(&st, batch[i].issuer, batch[i].serial)->seq, i + 1);
	assert_int_equal(st.next_seq, 6);

	/* one file per authority, private, in seq order, readable by any JSON parser */
	const char *files[] = { "index/root.json", "index/inter.json", "index/lab-root.json" };
	const int counts[] = { 2, 2, 1 };
	for (int i = 0; i < 3; i++) {
		char *p = path_in(f, files[i]);
		struct stat sb;
		assert_int_equal(stat(p, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
		json_error_t jerr;
		json_t *root = json_load_file(p, 0, &jerr);
		assert_non_null(root);
		assert_string_equal(json_string_value(json_object_get(root, "format")),
				    "certwright-index");
		json_t *entries = json_object_get(root, "entries");
		assert_int_equal(json_array_size(entries), counts[i]);
		long long prev = 0;
		for (size_t j = 0; j < json_array_size(entries); j++) {
			long long seq = json_integer_value(json_object_get(json_array_get(entries, j), "seq"));
			assert_true(seq > prev);
			prev = seq;
		}
		json_decref(root);
		free(p);
	}

	load_ok(f, &again);
	assert_int_equal(again.nissued, 5);
	assert_int_equal(again.next_seq, 6);
	for (size_t i = 0; i < 5; i++) {
		batch[i].seq = i + 1;
		const cw_issued *e = cw_state_find(&again, batch[i].issuer, batch[i].serial);
		assert_non_null(e);
		assert_issued_equal(&batch[i], e);
	}
	assert_null(cw_state_find(&again, "root", "0A"));  /* serials are per authority */
	release_entries(batch, 5);
	cw_state_release(&st);
	cw_state_release(&again);
}

static void test_current_and_revocation(void **state)
{
	fixture *f = *state;
	cw_state st, again;
	cw_error err = { 0 };
	load_ok(f, &st);
	cw_issued e[3];
	make_entry(&e[0], "vpn", "root", "01", 0);
	make_entry(&e[1], "vpn", "root", "02", 1);
	record_ok(f, &st, e, 2);
	make_entry(&e[2], "vpn", "root", "03", 2);
	record_ok(f, &st, &e[2], 1);
	assert_string_equal(cw_state_current(&st, "vpn")->serial, "03");
	assert_null(cw_state_current(&st, "web"));

	/* recording the same (issuer, serial) again replaces it: that is how revocation lands */
	e[2].revoked = 1;
	e[2].revoked_at = T0 + 5000;
	e[2].revoke_reason = cw_xstrdup("key-compromise");
	record_ok(f, &st, &e[2], 1);
	assert_int_equal(st.nissued, 3);
	assert_string_equal(cw_state_current(&st, "vpn")->serial, "02");
	assert_int_equal(cw_state_find(&st, "root", "03")->seq, 3);
	assert_int_equal(st.next_seq, 4);

	load_ok(f, &again);
	assert_int_equal(again.nissued, 3);
	assert_string_equal(cw_state_current(&again, "vpn")->serial, "02");
	e[2].seq = 3;
	assert_issued_equal(&e[2], cw_state_find(&again, "root", "03"));

	/* the same serial twice in one batch is refused before anything is written */
	char *index = path_in(f, "index/root.json");
	char *before = file_sha(index);
	cw_issued dup[2];
	make_entry(&dup[0], "web", "root", "10", 7);
	make_entry(&dup[1], "web", "root", "10", 8);
	assert_int_equal(cw_state_record_issued(&again, f->ks, dup, 2, &err), -1);
	assert_int_equal(err.code, CW_EINVAL);
	assert_non_null(strstr(err.msg, "serial 10"));
	char *after = file_sha(index);
	assert_string_equal(before, after);
	assert_int_equal(again.nissued, 3);

	/* so is a name that cannot be a file name */
	cw_error_clear(&err);
	free(dup[0].issuer);
	dup[0].issuer = cw_xstrdup("../evil");
	assert_int_equal(cw_state_record_issued(&again, f->ks, dup, 1, &err), -1);
	assert_int_equal(err.code, CW_EINVAL);

	release_entries(dup, 2);
	release_entries(e, 3);
	free(index);
	free(before);
	free(after);
	cw_state_release(&st);
	cw_state_release(&again);
}

static void test_failed_write_keeps_memory_and_disk_equal(void **state)
{
	fixture *f = *state;
	cw_state st, again;
	cw_error err = { 0 };
	load_ok(f, &st);
	/* a folder where the second authority's index should go makes its rename fail */
	char *index = path_in(f, "index");
	char *blocker = path_in(f, "index/broken.json");
	assert_int_equal(mkdir(index, 0700), 0);
	assert_int_equal(mkdir(blocker, 0700), 0);
	cw_issued e[3];
	make_entry(&e[0], "vpn", "root", "01", 0);
	make_entry(&e[1], "lab", "broken", "02", 1);
	make_entry(&e[2], "web", "root", "03", 2);
	assert_int_equal(cw_state_record_issued(&st, f->ks, e, 3, &err), -1);
	assert_int_equal(err.code, CW_EIO);
	assert_non_null(strstr(err.msg, "broken.json"));

	/* root's index was written before the failure: both of its entries count */
	assert_int_equal(st.nissued, 2);
	assert_non_null(cw_state_find(&st, "root", "03"));
	assert_null(cw_state_find(&st, "broken", "02"));
	assert_int_equal(rmdir(blocker), 0);
	load_ok(f, &again);
	assert_int_equal(again.nissued, 2);
	for (size_t i = 0; i < 2; i++)
		assert_issued_equal(&st.issued[i], cw_state_find(&again, st.issued[i].issuer,
								 st.issued[i].serial));
	release_entries(e, 3);
	cw_state_release(&st);
	cw_state_release(&again);
	free(index);
	free(blocker);
}

static void test_state_built_by_hand(void **state)
{
	(void)state;
	cw_state zero;
	memset(&zero, 0, sizeof(zero));
	cw_state_release(&zero);  /* must be safe */

	/* other modules' tests fill issued[] directly: lookups must still work */
	cw_issued e[3];
	make_entry(&e[0], "vpn", "root", "01", 0);
	make_entry(&e[1], "vpn", "root", "02", 1);
	make_entry(&e[2], "vpn", "root", "03", 2);
	e[0].seq = 1;
	e[1].seq = 5;
	e[2].seq = 9;
	e[2].revoked = 1;
	cw_state st;
	memset(&st, 0, sizeof(st));
	st.issued = e;
	st.nissued = 3;
	assert_string_equal(cw_state_current(&st, "vpn")->serial, "02");
	assert_non_null(cw_state_find(&st, "root", "03"));
	assert_null(cw_state_deploy_record(&st, "fw", "vpn"));
	release_entries(e, 3);
	assert_string_equal(cw_deploy_status_name(CW_DEPLOY_STARTED), "started");
	assert_string_equal(cw_deploy_status_name(CW_DEPLOY_OK), "ok");
	assert_string_equal(cw_deploy_status_name(CW_DEPLOY_FAILED), "failed");
	assert_string_equal(cw_deploy_status_name(CW_DEPLOY_REMOVED), "removed");
}

static void test_bad_index_named(void **state)
{
	fixture *f = *state;
	cw_state st;
	cw_error err = { 0 };
	char *dir = path_in(f, "index");
	char *file = path_in(f, "index/root.json");
	assert_int_equal(mkdir(dir, 0700), 0);
	tu_write(file, "{\"format\":\"certwright-index\",\"version\":1,\"authority\":\"root\","
		       "\"entries\":[{\"name\":\"vpn\",\"issuer\":\"root\"}]}\n");
	assert_int_equal(cw_state_load(&st, f->ks, &err), -1);
	assert_int_equal(err.code, CW_EINVAL);
	assert_non_null(strstr(err.msg, "index/root.json: entry 1"));
	assert_non_null(strstr(err.msg, "serial"));
	assert_int_equal(st.nissued, 0);  /* released on failure */

	cw_error_clear(&err);
	tu_write(file, "{\"format\":\"certwright-index\",\"version\":1,\"authority\":\"other\","
		       "\"entries\":[]}\n");
	assert_int_equal(cw_state_load(&st, f->ks, &err), -1);
	assert_non_null(strstr(err.msg, "authority"));

	/* leftovers of an interrupted atomic write are not indexes */
	unlink(file);
	char *tmp = path_in(f, "index/root.json.tmp.AbC123");
	tu_write(tmp, "{garbage");
	load_ok(f, &st);
	assert_int_equal(st.nissued, 0);
	cw_state_release(&st);
	free(tmp);
	free(dir);
	free(file);
}

/* ---- deployments ---- */

static void make_deploy(cw_deploy_record *r, const char *target, const char *cert,
			cw_deploy_status status, int attempts, const char *error)
{
	memset(r, 0, sizeof(*r));
	r->target = cw_xstrdup(target);
	r->certificate = cw_xstrdup(cert);
	r->status = status;
	r->serial = cw_xstrdup("0A1B");
	snprintf(r->fingerprint, sizeof(r->fingerprint), "%064d", attempts);
	r->attempts = attempts;
	r->last_error = cw_xstrdup(error);
	r->updated = T0 + attempts;
	if (status == CW_DEPLOY_OK) {
		r->nbound = 2;
		r->bound = cw_xcalloc(2, sizeof(char *));
		r->bound[0] = cw_xstrdup("ike");
		r->bound[1] = cw_xstrdup("sstp");
	}
}

static void record_deploy_ok(fixture *f, cw_state *st, cw_deploy_record *r)
{
	cw_error err = { 0 };
	int rc = cw_state_record_deploy(st, f->ks, r, &err);
	cw_deploy_record_release(r);
	if (rc != 0)
		fail_msg("record deploy: %s", err.msg);
}

static void assert_deploy(const cw_state *st, const char *target, const char *cert,
			  cw_deploy_status status, int attempts, const char *error, size_t nbound)
{
	const cw_deploy_record *r = cw_state_deploy_record(st, target, cert);
	assert_non_null(r);
	assert_int_equal(r->status, status);
	assert_int_equal(r->attempts, attempts);
	assert_string_equal(r->serial, "0A1B");
	assert_int_equal(r->updated, T0 + attempts);
	assert_int_equal(strlen(r->fingerprint), 64);
	if (error)
		assert_string_equal(r->last_error, error);
	else
		assert_null(r->last_error);
	assert_int_equal(r->nbound, nbound);
	if (nbound)
		assert_string_equal(r->bound[1], "sstp");
}

static size_t file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (size_t)sb.st_size : (size_t)-1;
}

static void assert_three_deploys(const cw_state *st)
{
	assert_int_equal(st->ndeploys, 2);
	assert_deploy(st, "fw1", "vpn", CW_DEPLOY_OK, 0, NULL, 2);
	assert_deploy(st, "fw2", "vpn", CW_DEPLOY_FAILED, 2, "fw2: ssh: connection refused", 0);
}

static void test_deploys_journal_and_compact(void **state)
{
	fixture *f = *state;
	cw_state st, again;
	cw_deploy_record r;
	cw_error err = { 0 };
	load_ok(f, &st);
	make_deploy(&r, "fw1", "vpn", CW_DEPLOY_STARTED, 0, NULL);
	record_deploy_ok(f, &st, &r);
	make_deploy(&r, "fw1", "vpn", CW_DEPLOY_OK, 0, NULL);
	record_deploy_ok(f, &st, &r);
	make_deploy(&r, "fw2", "vpn", CW_DEPLOY_FAILED, 2, "fw2: ssh: connection refused");
	record_deploy_ok(f, &st, &r);
	assert_three_deploys(&st);

	/* reload from the journal alone: three lines, later wins */
	char *journal = path_in(f, "journal.jsonl");
	char *snapshot = path_in(f, "deployments.json");
	assert_int_equal(cw_path_exists(snapshot), 0);
	cw_buf text = CW_BUF_INIT;
	assert_int_equal(cw_read_file(journal, 0, &text, &err), 0);
	size_t lines = 0;
	for (size_t i = 0; i < text.len; i++)
		lines += text.buf[i] == '\n';
	assert_int_equal(lines, 3);
	cw_buf_release(&text);
	load_ok(f, &again);
	assert_three_deploys(&again);
	cw_state_release(&again);

	/* compact: snapshot written, journal emptied, same records */
	assert_int_equal(cw_state_compact(&st, f->ks, &err), 0);
	assert_int_equal(file_size(journal), 0);
	assert_true(file_size(snapshot) > 0 && file_size(snapshot) != (size_t)-1);
	load_ok(f, &again);
	assert_three_deploys(&again);

	/* snapshot + journal together */
	make_deploy(&r, "fw2", "vpn", CW_DEPLOY_OK, 0, NULL);
	record_deploy_ok(f, &again, &r);
	cw_state_release(&again);
	load_ok(f, &again);
	assert_int_equal(again.ndeploys, 2);
	assert_deploy(&again, "fw2", "vpn", CW_DEPLOY_OK, 0, NULL, 2);
	cw_state_release(&again);
	cw_state_release(&st);
	free(journal);
	free(snapshot);
}

static void append_raw(const char *path, const char *text)
{
	FILE *fp = fopen(path, "a");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void test_torn_last_line_tolerated(void **state)
{
	fixture *f = *state;
	cw_state st;
	cw_deploy_record r;
	load_ok(f, &st);
	make_deploy(&r, "fw1", "vpn", CW_DEPLOY_OK, 0, NULL);
	record_deploy_ok(f, &st, &r);
	cw_state_release(&st);
	char *journal = path_in(f, "journal.jsonl");
	size_t good = file_size(journal);

	/* a crash mid-write: no newline */
	append_raw(journal, "{\"target\":\"fw3\",\"certif");
	load_ok(f, &st);
	assert_int_equal(st.ndeploys, 1);
	assert_null(cw_state_deploy_record(&st, "fw3", "vpn"));

	/* the next record cuts the torn tail off instead of burying it mid-file */
	make_deploy(&r, "fw2", "vpn", CW_DEPLOY_FAILED, 1, "timeout");
	record_deploy_ok(f, &st, &r);
	cw_state_release(&st);
	load_ok(f, &st);
	assert_int_equal(st.ndeploys, 2);
	assert_deploy(&st, "fw2", "vpn", CW_DEPLOY_FAILED, 1, "timeout", 0);
	cw_state_release(&st);
	assert_true(file_size(journal) > good);

	/* a last line that ends in a newline but is not JSON is treated as torn too */
	append_raw(journal, "{\"target\":\n");
	load_ok(f, &st);
	assert_int_equal(st.ndeploys, 2);
	cw_state_release(&st);
	free(journal);
}

static void test_bad_middle_line_is_an_error(void **state)
{
	fixture *f = *state;
	cw_state st;
	cw_deploy_record r;
	cw_error err = { 0 };
	load_ok(f, &st);
	make_deploy(&r, "fw1", "vpn", CW_DEPLOY_OK, 0, NULL);
	record_deploy_ok(f, &st, &r);
	cw_state_release(&st);
	char *journal = path_in(f, "journal.jsonl");
	append_raw(journal, "{not json\n");
	append_raw(journal, "{\"target\":\"fw2\"}\n");  /* valid JSON, but not a record */
	append_raw(journal, "{\"target\":\"fw2\"}\n");
	assert_int_equal(cw_state_load(&st, f->ks, &err), -1);
	assert_int_equal(err.code, CW_EINVAL);
	assert_non_null(strstr(err.msg, "journal.jsonl:2:"));

	/* a JSON object missing a field is named by field */
	tu_write(journal, "{\"target\":\"fw2\",\"status\":\"ok\"}\n\n");
	cw_error_clear(&err);
	assert_int_equal(cw_state_load(&st, f->ks, &err), -1);
	assert_non_null(strstr(err.msg, "journal.jsonl:1:"));
	assert_non_null(strstr(err.msg, "certificate"));
	free(journal);
}

typedef struct {
	fixture *f;
	cw_state *st;
	int id;
	int failures;
} worker;

static void *deploy_worker(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < 50; i++) {
		char target[32], cert[32];
		snprintf(target, sizeof(target), "fw%d", w->id);
		snprintf(cert, sizeof(cert), "cert%d", i);
		cw_deploy_record r;
		cw_error err = { 0 };
		make_deploy(&r, target, cert, CW_DEPLOY_OK, 0, NULL);
		w->failures += cw_state_record_deploy(w->st, w->f->ks, &r, &err) != 0;
		w->failures += cw_state_deploy_record(w->st, target, cert) == NULL;
		cw_deploy_record_release(&r);
	}
	return NULL;
}

static void test_parallel_deploy_records(void **state)
{
	fixture *f = *state;
	cw_state st;
	load_ok(f, &st);
	pthread_t th[8];
	worker w[8];
	for (int i = 0; i < 8; i++) {
		w[i] = (worker){ f, &st, i, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, deploy_worker, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	assert_int_equal(st.ndeploys, 400);
	cw_state again;
	load_ok(f, &again);
	assert_int_equal(again.ndeploys, 400);
	assert_non_null(cw_state_deploy_record(&again, "fw7", "cert49"));
	cw_state_release(&again);
	cw_state_release(&st);
}

/* ---- digest ---- */

static void test_digest(void **state)
{
	fixture *f = *state;
	cw_state a, b;
	cw_error err = { 0 };
	load_ok(f, &a);
	load_ok(f, &b);
	assert_int_equal(strlen(a.digest), 64);
	assert_string_equal(a.digest, b.digest);
	char empty[65];
	strcpy(empty, a.digest);
	cw_state_release(&b);

	/* no keystore at all (a plan before the first apply) reads as the empty state */
	assert_int_equal(cw_state_load(&b, NULL, &err), 0);
	assert_int_equal(b.nissued, 0);
	assert_string_equal(b.digest, empty);
	cw_state_release(&b);

	cw_issued e[2];
	make_entry(&e[0], "root", "root", "01", 0);
	make_entry(&e[1], "vpn", "root", "02", 1);
	record_ok(f, &a, e, 2);
	load_ok(f, &b);
	char issued[65];
	strcpy(issued, b.digest);
	assert_string_not_equal(issued, empty);
	cw_state_release(&b);
	load_ok(f, &b);
	assert_string_equal(b.digest, issued);  /* stable across loads */
	cw_state_release(&b);

	cw_deploy_record r;
	make_deploy(&r, "fw1", "vpn", CW_DEPLOY_OK, 0, NULL);
	record_deploy_ok(f, &a, &r);
	load_ok(f, &b);
	char deployed[65];
	strcpy(deployed, b.digest);
	assert_string_not_equal(deployed, issued);
	cw_state_release(&b);

	/* compaction moves records between files without changing them */
	assert_int_equal(cw_state_compact(&a, f->ks, &err), 0);
	load_ok(f, &b);
	assert_string_equal(b.digest, deployed);
	cw_state_release(&b);

	/* a one-field change (the revoked flag alone) changes it */
	e[1].revoked = 1;
	record_ok(f, &a, &e[1], 1);
	load_ok(f, &b);
	assert_string_not_equal(b.digest, deployed);
	cw_state_release(&b);
	release_entries(e, 2);
	cw_state_release(&a);
}

/* ---- scale ---- */

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_ten_thousand(void **state)
{
	fixture *f = *state;
	enum { N = 10000 };
	const char *authorities[] = { "root", "inter-a", "inter-b", "lab" };
	cw_issued *batch = cw_xcalloc(N, sizeof(cw_issued));
	for (int i = 0; i < N; i++) {
		char name[32], serial[48];
		snprintf(name, sizeof(name), "device-%05d", i);
		snprintf(serial, sizeof(serial), "%032X", i * 2654435761u);
		make_entry(&batch[i], name, authorities[i % 4], serial, i);
	}
	cw_state st, again;
	struct timespec t0;
	load_ok(f, &st);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	record_ok(f, &st, batch, N);
	double record = seconds_since(&t0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	load_ok(f, &again);
	double load = seconds_since(&t0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	size_t found = 0;
	for (int i = 0; i < N; i++) {
		const cw_issued *cur = cw_state_current(&again, batch[i].name);
		found += cur && cw_state_find(&again, cur->issuer, cur->serial) == cur;
	}
	double lookups = seconds_since(&t0);

	char *root = path_in(f, "index/root.json");
	printf("state: record 10000 issued in one batch %.3f s; load %.3f s; 20000 lookups %.4f s; "
	       "index/root.json %zu bytes\n",
	       record, load, lookups, file_size(root));
	assert_int_equal(again.nissued, N);
	assert_int_equal(found, N);
	assert_int_equal(again.next_seq, N + 1);
	batch[4242].seq = 4243;
	assert_issued_equal(&batch[4242], cw_state_current(&again, "device-04242"));

	/* a second, small batch rewrites only its authority */
	char *lab = path_in(f, "index/lab.json");
	char *lab_before = file_sha(lab);
	cw_issued extra;
	make_entry(&extra, "device-00001", "root", "FFFF", 1);
	record_ok(f, &again, &extra, 1);
	char *lab_after = file_sha(lab);
	assert_string_equal(lab_before, lab_after);
	assert_string_equal(cw_state_current(&again, "device-00001")->serial, "FFFF");
	cw_issued_release(&extra);

	release_entries(batch, N);
	free(batch);
	free(root);
	free(lab);
	free(lab_before);
	free(lab_after);
	cw_state_release(&st);
	cw_state_release(&again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_issued_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_current_and_revocation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_keeps_memory_and_disk_equal, setup,
						teardown),
		cmocka_unit_test(test_state_built_by_hand),
		cmocka_unit_test_setup_teardown(test_bad_index_named, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deploys_journal_and_compact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_last_line_tolerated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_middle_line_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parallel_deploy_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ten_thousand, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
