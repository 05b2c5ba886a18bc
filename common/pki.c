/* pki — names of key types, usages and SAN kinds; renewal arithmetic. See pki.h. */
#include "pki.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	cw_key_type type;
	const char *name;
	int bits;
} key_types[] = {
	{ CW_KEY_RSA1024, "rsa-1024", 1024 },
	{ CW_KEY_RSA2048, "rsa-2048", 2048 },
	{ CW_KEY_RSA3072, "rsa-3072", 3072 },
	{ CW_KEY_RSA4096, "rsa-4096", 4096 },
	{ CW_KEY_EC_P256, "ecdsa-p256", 256 },
	{ CW_KEY_EC_P384, "ecdsa-p384", 384 },
	{ CW_KEY_ED25519, "ed25519", 255 },
};
#define N_KEY_TYPES (sizeof(key_types) / sizeof(key_types[0]))

const char *cw_key_type_name(cw_key_type k)
{
	for (size_t i = 0; i < N_KEY_TYPES; i++)
		if (key_types[i].type == k)
			return key_types[i].name;
	return "none";
}

int cw_key_type_parse(const char *s, cw_key_type *out)
{
	for (size_t i = 0; i < N_KEY_TYPES; i++)
		if (!strcmp(key_types[i].name, s)) {
			*out = key_types[i].type;
			return 0;
		}
	return -1;
}

int cw_key_type_is_rsa(cw_key_type k)
{
	return k == CW_KEY_RSA1024 || k == CW_KEY_RSA2048 || k == CW_KEY_RSA3072 ||
	       k == CW_KEY_RSA4096;
}

int cw_key_type_bits(cw_key_type k)
{
	for (size_t i = 0; i < N_KEY_TYPES; i++)
		if (key_types[i].type == k)
			return key_types[i].bits;
	return 0;
}

/* Index i of this table is bit i of the usage set (gaps are NULL). */
static const char *const usage_by_bit[16] = {
	"digital-signature", "non-repudiation", "key-encipherment", "data-encipherment",
	"key-agreement", "key-cert-sign", "crl-sign", NULL,
	"server-auth", "client-auth", "code-signing", "email-protection",
	"time-stamping", "ocsp-signing", "ipsec-ike", "ike-intermediate",
};

const char *const cw_usage_names[] = {
	"digital-signature", "non-repudiation", "key-encipherment", "data-encipherment",
	"key-agreement", "key-cert-sign", "crl-sign", "server-auth", "client-auth",
	"code-signing", "email-protection", "time-stamping", "ocsp-signing", "ipsec-ike",
	"ike-intermediate", NULL,
};

uint32_t cw_usage_parse(const char *name)
{
	for (unsigned i = 0; i < 16; i++)
		if (usage_by_bit[i] && !strcmp(usage_by_bit[i], name))
			return 1u << i;
	return 0;
}

const char *cw_usage_name(uint32_t bit)
{
	for (unsigned i = 0; i < 16; i++)
		if (bit == (1u << i))
			return usage_by_bit[i];
	return NULL;
}

void cw_usage_format(uint32_t usage, cw_buf *out)
{
	int first = 1;
	for (unsigned i = 0; i < 16; i++) {
		if (!(usage & (1u << i)) || !usage_by_bit[i])
			continue;
		if (!first)
			cw_buf_adds(out, ",");
		cw_buf_adds(out, usage_by_bit[i]);
		first = 0;
	}
	if (!out->buf)
		cw_buf_adds(out, "");
}

const char *cw_san_type_name(cw_san_type t)
{
	switch (t) {
	case CW_SAN_DNS: return "DNS";
	case CW_SAN_IP: return "IP";
	case CW_SAN_EMAIL: return "email";
	case CW_SAN_URI: return "URI";
	}
	return "?";
}

time_t cw_renew_at(const cw_renew *r, time_t not_before, time_t not_after)
{
	if (r->is_percent) {
		/* renew when `percent` of the lifetime is left */
		int64_t life = (int64_t)not_after - (int64_t)not_before;
		return (time_t)((int64_t)not_after - life * r->percent / 100);
	}
	return (time_t)((int64_t)not_after - r->seconds);
}

void cw_cert_spec_copy(cw_cert_spec *dst, const cw_cert_spec *src)
{
	*dst = *src;
	dst->subject = cw_xstrdup(src->subject);
	dst->crl_url = cw_xstrdup(src->crl_url);
	dst->sans = src->nsans ? cw_xcalloc(src->nsans, sizeof(cw_san)) : NULL;
	for (size_t i = 0; i < src->nsans; i++) {
		dst->sans[i].type = src->sans[i].type;
		dst->sans[i].value = cw_xstrdup(src->sans[i].value);
	}
}

void cw_cert_spec_release(cw_cert_spec *s)
{
	free(s->subject);
	free(s->crl_url);
	for (size_t i = 0; i < s->nsans; i++)
		free(s->sans[i].value);
	free(s->sans);
	memset(s, 0, sizeof(*s));
}
