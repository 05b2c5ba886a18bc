#!/usr/bin/env bash
# The reconcile loop end to end on files targets: first apply issues and deploys, what it
# issued passes independent verifiers, a second run does nothing, a SAN change reissues,
# --now past the renewal time renews, the report in git never holds a private key.
source "$(dirname "$0")/lib.sh"
new_repo "$CW_TEST_DATA/e2e/basic.yaml"
L="$OUT/local"

cw validate;                      expect_rc 0 "validate accepts the inventory"
cw plan;                          expect_rc 2 "first plan has changes"
check "plan names create-ca, issue and deploy" \
  bash -c "grep -q 'create-ca' '$T/last.out' && grep -q 'issue' '$T/last.out' && grep -q 'deploy' '$T/last.out'"
cw apply;                         expect_rc 0 "first apply converges"
check "cert, chain, fullchain, key and ca files exist" \
  test -s "$L/web.crt" -a -s "$L/web.chain.pem" -a -s "$L/web.fullchain.pem" -a -s "$L/web.key" -a -s "$L/root.pem"
check "key is mode 0600" test "$(stat -c %a "$L/web.key")" = 600
check "MailRoot ca.der is DER" openssl x509 -inform DER -in "$OUT/MailRoot/ca.der" -noout
check "openssl verify -x509_strict accepts web" \
  openssl verify -x509_strict -CAfile "$L/root.pem" -untrusted "$L/web.chain.pem" "$L/web.crt"
check "openssl verify -x509_strict accepts mail" bash -c \
  "openssl x509 -inform DER -in '$OUT/MailRoot/ca.der' -out '$T/mailroot-ca.pem' &&
   openssl verify -x509_strict -CAfile '$T/mailroot-ca.pem' -untrusted '$L/web.chain.pem' '$OUT/MailRoot/server.cert'"
cat "$L/web.crt" "$L/web.chain.pem" "$L/root.pem" >"$T/chain.pem"
check "certtool --verify-chain accepts web" bash -c "certtool --verify-chain --infile '$T/chain.pem' >'$T/certtool.out' 2>&1"
check "key matches certificate" bash -c \
  "[ \"\$(openssl pkey -in '$L/web.key' -pubout)\" = \"\$(openssl x509 -in '$L/web.crt' -noout -pubkey)\" ]"
check "web SANs as declared" bash -c \
  "openssl x509 -in '$L/web.crt' -noout -ext subjectAltName | grep -q 'DNS:web.example.test, DNS:www.example.test'"
serial1=$(serial_of "$L/web.crt")
check "serial has at least 64 bits" test ${#serial1} -ge 16
check "report committed" test -f "$REPO/certwright-state/certificates/web.json"
check "CA published as PEM and DER in the report" \
  test -f "$REPO/certwright-state/authorities/test-root.pem" -a -f "$REPO/certwright-state/authorities/test-root.der"
n1=$(commits)

cw plan;                          expect_rc 0 "second plan is empty"
check "second plan says no changes" out_has "No changes"
cw apply;                         expect_rc 0 "second apply succeeds"
check "second apply made no commit" test "$(commits)" = "$n1"
check "second apply left the certificate alone" test "$(serial_of "$L/web.crt")" = "$serial1"

# a SAN change reissues web and only web
mail_serial=$(serial_of "$OUT/MailRoot/server.cert")
sed -i 's/"DNS:web.example.test", "DNS:www.example.test"/"DNS:web.example.test", "DNS:www.example.test", "DNS:api.example.test"/' "$REPO/inventory/basic.yaml"
git -C "$REPO" commit -qam "add api SAN"
cw plan;                          expect_rc 2 "plan after SAN change has changes"
check "reason is spec-changed:sans" out_has "spec-changed:sans"
cw apply;                         expect_rc 0 "apply after SAN change"
check "web reissued with new SAN" bash -c \
  "openssl x509 -in '$L/web.crt' -noout -ext subjectAltName | grep -q 'DNS:api.example.test'"
check "web has a new serial" test "$(serial_of "$L/web.crt")" != "$serial1"
check "mail untouched by web's change" test "$(serial_of "$OUT/MailRoot/server.cert")" = "$mail_serial"

# renewal: 70 days on, web (90d, renew at 33% left = day 60) is due, mail (825d) is not
serial2=$(serial_of "$L/web.crt")
cw --now +70d plan;               expect_rc 2 "plan 70 days later has changes"
check "reason is renewal-due" out_has "renewal-due"
cw --now +70d apply --allow-now;              expect_rc 0 "apply 70 days later renews"
check "web renewed" test "$(serial_of "$L/web.crt")" != "$serial2"
check "mail not renewed" test "$(serial_of "$OUT/MailRoot/server.cert")" = "$mail_serial"
cw --now +70d plan;               expect_rc 0 "after renewal nothing is due"

# drift: someone replaces the certificate on the target by hand
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=intruder \
  -keyout "$T/intruder.key" -out "$L/web.crt" -days 1 2>/dev/null
cw --now +70d plan;               expect_rc 2 "plan notices a replaced certificate"
check "reason is drift:fingerprint" out_has "drift:fingerprint"
cw --now +70d apply --allow-now;              expect_rc 0 "apply repairs drift"
check "repaired certificate is ours again" bash -c \
  "openssl x509 -in '$L/web.crt' -noout -issuer | grep -q 'E2E Issuing CA'"

# status shows every certificate with its deployment
cw status;                        expect_rc 0 "status runs"
check "status lists web deployed to local" out_has "local:ok"
cw status --format json;          expect_rc 0 "status json"
check "status json parses" python3 -c "import json,sys; d=json.load(open('$T/last.out')); assert any(e['name']=='web' and e['issued'] for e in d['entries'])"

# nothing secret ever reaches git
check "no private key anywhere in git history" bash -c \
  "! git -C '$REPO' log -p --all | grep -q 'PRIVATE KEY'"
check "no private key in the keystore unencrypted" bash -c \
  "! grep -rl -- '-----BEGIN PRIVATE KEY' '$CERTWRIGHT_KEYSTORE' && ! grep -rl -- 'BEGIN RSA PRIVATE KEY' '$CERTWRIGHT_KEYSTORE'"

# drift in the rest of the slot: a deleted or chmod'ed key is repaired like a replaced cert
rm "$L/web.key"
cw --now +70d plan;               expect_rc 2 "plan notices a deleted key"
check "reason is drift:files" out_has "drift:files"
cw --now +70d apply --allow-now;  expect_rc 0 "apply restores the key"
check "key is back, 0600, and matches" bash -c \
  "[ \"\$(stat -c %a '$L/web.key')\" = 600 ] && [ \"\$(openssl pkey -in '$L/web.key' -pubout)\" = \"\$(openssl x509 -in '$L/web.crt' -noout -pubkey)\" ]"
chmod 644 "$L/web.key"
cw --now +70d plan;               expect_rc 2 "plan notices a world-readable key"
cw --now +70d apply --allow-now;  expect_rc 0 "apply repairs the mode"
check "key is 0600 again" test "$(stat -c %a "$L/web.key")" = 600

# certificates issued under a pretend future are not valid now: a plan at the real time says so
cw plan;                          expect_rc 2 "at the real time the renewed certificate is not yet valid"
check "reason is not-yet-valid" out_has "not-yet-valid"

# apply with --now must be asked for explicitly
cw --now +70d apply;              expect_rc 64 "apply --now without --allow-now is refused"
check "message points to plan --now and --allow-now" out_has "allow-now"

# filters that name nothing are errors, not "no changes"
cw plan --target no-such-target;  expect_rc 1 "plan --target with an unknown name"
check "message names the filter" out_has "--target no-such-target"

# the wrong keystore never builds a second PKI
before=$(tree_digest "$REPO" "$OUT")
CERTWRIGHT_KEYSTORE="$T/another-keystore" cw plan
expect_rc 1 "plan with a keystore that does not know the committed CAs"
check "error says wrong keystore and names the report" bash -c "grep -q 'keystore.mismatch' '$T/last.out' && grep -q 'certwright-state/authorities/test-root.json' '$T/last.out'"
CERTWRIGHT_KEYSTORE="$T/another-keystore" cw apply
expect_rc 1 "apply with the wrong keystore refuses"
check "nothing changed on targets or in the repository" test "$(tree_digest "$REPO" "$OUT")" = "$before"
check "no CA was created in the wrong keystore" test ! -d "$T/another-keystore/index"
