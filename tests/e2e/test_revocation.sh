#!/usr/bin/env bash
# Revocation, CRLs and client bundles end to end on files targets: a declared revocation
# removes the certificate from its targets and lands in a signed CRL that openssl honours;
# a revocation is final; certificates leaving the inventory follow on_remove; superseded
# certificates are revoked only once their replacement is live; CRLs renew before their
# nextUpdate; a kill in the middle of a revocation converges with one CRL entry; PKCS#12
# bundles are exported outside git.
source "$(dirname "$0")/lib.sh"
export USER1_P12="bundle pass phrase"
reload_script() { printf '#!/bin/sh\n%s\n' "$1" >"$T/reload.sh"; chmod +x "$T/reload.sh"; }
reload_script 'exit 0'
mkdir -p "$T/data"
sed "s|@RELOAD@|$T/reload.sh|" "$CW_TEST_DATA/e2e/revocation.yaml" >"$T/data/revocation.yaml"
new_repo "$T/data/revocation.yaml"
INV="$REPO/inventory/revocation.yaml"
CRL="$OUT/router/vpn-ca.crl.pem"
CA="$REPO/certwright-state/authorities/vpn-ca.pem"
crl_text() { openssl crl -in "$1" -noout -text; }
crl_number() { crl_text "$1" | awk '/X509v3 CRL Number/ {getline; gsub(/ /, ""); print; exit}'; }
verify_crl() { openssl verify -crl_check -CAfile "$CA" -CRLfile "$REPO/certwright-state/authorities/vpn-ca.crl.pem" "$1"; }
commit_inv() { git -C "$REPO" commit -qam "$1"; }

# 1. first apply: an empty CRL, published in the report and on the router; a bundle
cw apply;                                       expect_rc 0 "first apply"
check "CRL in the report (PEM and DER)" test -s "$REPO/certwright-state/authorities/vpn-ca.crl.pem" -a -s "$REPO/certwright-state/authorities/vpn-ca.crl"
check "CRL on the router" test -s "$CRL"
check "CRL on the clients target too (a second target of the same CRL)" \
  cmp -s <(openssl crl -in "$OUT/clients/crl/vpn-ca.crl" -outform DER) <(openssl crl -in "$CRL" -outform DER)
check "CRL is signed by the CA" openssl crl -in "$CRL" -noout -CAfile "$CA"
check "CRL number 1, no entries" bash -c "[ \"\$(openssl crl -in '$CRL' -noout -text | awk '/CRL Number/ {getline; gsub(/ /,\"\"); print; exit}')\" = 1 ] && openssl crl -in '$CRL' -noout -text | grep -q 'No Revoked Certificates'"
check "leaves carry the CRL distribution point" bash -c "openssl x509 -in '$OUT/clients/user1.crt' -noout -ext crlDistributionPoints | grep -q 'http://pki.example.test/vpn-ca.crl'"
check "PKCS#12 bundle opens with its passphrase" openssl pkcs12 -in "$OUT/bundles/user1.p12" -noout -passin env:USER1_P12
check "bundle holds user1's certificate and the CA" bash -c \
  "openssl pkcs12 -in '$OUT/bundles/user1.p12' -nokeys -passin env:USER1_P12 | grep -c 'BEGIN CERTIFICATE' | grep -qx 2"
check "bundle is mode 0600" test "$(stat -c %a "$OUT/bundles/user1.p12")" = 600
check "CA exported as PEM and DER for iOS" bash -c "openssl x509 -in '$OUT/bundles/user1.ca.pem' -noout && openssl x509 -inform DER -in '$OUT/bundles/user1.ca.der' -noout"
check "good certificate passes -crl_check" verify_crl "$OUT/clients/user2.crt"
cw plan;                                        expect_rc 0 "converged"
rm "$OUT/bundles/user1.p12"
cw plan;                                        expect_rc 2 "a deleted bundle is noticed"
check "reason not-exported" out_has "not-exported"
cw apply;                                       expect_rc 0 "bundle written again"
check "bundle back" test -s "$OUT/bundles/user1.p12"

# 2. declare user1 revoked
cp "$OUT/clients/user1.crt" "$T/user1.crt"
sed -i '/^  user1:/a\    revoked: { reason: key-compromise }' "$INV"; commit_inv "revoke user1"
cw plan;                                        expect_rc 2 "plan shows the revocation"
check "plan: remove user1 from clients (revoked)" bash -c "grep -q 'user1 from clients' '$T/last.out' && grep -q 'revoked' '$T/last.out'"
check "plan: revoke user1 (revoke-requested)" out_has "revoke-requested"
check "plan: publish-crl (revocation-changed)" out_has "revocation-changed"
check "plan: deploy the CRL to the router" bash -c "grep -q 'deploy-crl' '$T/last.out'"
cw apply;                                       expect_rc 0 "apply revokes"
check "user1's files are gone from clients" test ! -e "$OUT/clients/user1.crt" -a ! -e "$OUT/clients/user1.key"
check "user2 still deployed" test -s "$OUT/clients/user2.crt"
check "CRL lists user1 with Key Compromise" bash -c "crl=\$(openssl crl -in '$CRL' -noout -text); echo \"\$crl\" | grep -q \"\$(openssl x509 -in '$T/user1.crt' -noout -serial | cut -d= -f2)\" && echo \"\$crl\" | grep -q 'Key Compromise'"
check "CRL number went up to 2" test "$(crl_number "$CRL")" = 2
check "openssl -crl_check rejects user1" bash -c "! verify_crl '$T/user1.crt' >/dev/null 2>&1 && openssl verify -crl_check -CAfile '$CA' -CRLfile '$CRL' '$T/user1.crt' 2>&1 | grep -q 'certificate revoked'"
check "openssl -crl_check accepts user2" verify_crl "$OUT/clients/user2.crt"
check "report records the revocation" grep -q '"revoked": true' "$REPO/certwright-state/certificates/user1.json"
cw status;                                      expect_rc 0 "status"
check "status shows user1 revoked and the CRL" bash -c "grep -q 'revoked: key-compromise' '$T/last.out' && grep -q 'CRL vpn-ca: number 2, 1 revoked' '$T/last.out'"
cw plan;                                        expect_rc 0 "converged after revocation"

# 3. a revocation is final
sed -i '/revoked: { reason: key-compromise }/d' "$INV"; commit_inv "try to unrevoke user1"
cw plan;                                        expect_rc 1 "unrevoke refused"
check "message: a revocation is final" out_has "revocation is final"
git -C "$REPO" revert --no-edit HEAD >/dev/null

# 4. on_remove: revoke (the default), then forget
cp "$OUT/clients/user3.crt" "$T/user3.crt"
sed -i '/^  user3:/,/^targets:/{/^targets:/!d}' "$INV"; commit_inv "user3 leaves"
cw plan;                                        expect_rc 2 "plan for a removed certificate"
check "plan: revoke user3 removed-from-inventory" bash -c "grep -q 'revoke' '$T/last.out' && grep -q 'removed-from-inventory' '$T/last.out'"
cw apply;                                       expect_rc 0 "apply on_remove: revoke"
check "user3 is in the CRL as cessation of operation" bash -c "openssl crl -in '$CRL' -noout -text | grep -q 'Cessation Of Operation'"
check "user3 removed from clients" test ! -e "$OUT/clients/user3.crt"
sed -i '/^  vpn-ca:/a\    on_remove: forget' "$INV"
sed -i '/^  user2:/,/^targets:/{/^targets:/!d}' "$INV"; commit_inv "user2 leaves, authority forgets"
cw plan;                                        expect_rc 2 "plan with on_remove: forget"
check "plan warns that user2 stays valid" out_has "revocation.forget"
check "plan does not revoke user2" bash -c "! grep -q 'revoke    user2' '$T/last.out'"
cw apply;                                       expect_rc 0 "apply on_remove: forget"
check "user2 removed from clients but not revoked" bash -c "[ ! -e '$OUT/clients/user2.crt' ] && [ \"\$(openssl crl -in '$CRL' -noout -text | grep -c 'Serial Number')\" = 2 ]"

# 5. superseded: only after the replacement is verified on every target
old_server=$(openssl x509 -in "$OUT/router/server.crt" -noout -serial | cut -d= -f2)
reload_script 'echo "router refused" >&2; exit 1'
cw --now +70d apply --allow-now;                            expect_rc 1 "renewal whose deploy fails"
check "old server certificate NOT revoked while its replacement is not live" bash -c "! openssl crl -in '$REPO/certwright-state/authorities/vpn-ca.crl.pem' -noout -text | grep -q '$old_server'"
reload_script 'exit 0'
cw --now +70d plan;                             expect_rc 2 "plan retries and then revokes"
check "plan: revoke superseded after the deploy" out_has "superseded"
cw --now +70d apply --allow-now;                            expect_rc 0 "apply: deploy verified, then superseded revoked"
check "old server certificate now in the CRL as superseded" bash -c "crl=\$(openssl crl -in '$CRL' -noout -text); echo \"\$crl\" | grep -q '$old_server' && echo \"\$crl\" | grep -q 'Superseded'"
# issued under --now +70d: verify at that time
check "new server certificate passes -crl_check" \
  openssl verify -attime "$(date -d '+71 days' +%s)" -crl_check -CAfile "$CA" -CRLfile "$CRL" "$OUT/router/server.crt"

# 6. CRL renewal: 7d lifetime, renewed when a third is left
n=$(crl_number "$CRL")
cw --now +70d plan;                             expect_rc 0 "nothing due right after"
cw --now +75d plan;                             expect_rc 2 "five days on the CRL is due"
check "reason crl-due" out_has "crl-due"
cw --now +75d apply --allow-now;                            expect_rc 0 "CRL renewed"
check "CRL number increased" test "$(crl_number "$CRL")" -gt "$n"
check "nextUpdate is 7 days after the new thisUpdate" bash -c \
  "t=\$(openssl crl -in '$CRL' -noout -lastupdate | cut -d= -f2); u=\$(openssl crl -in '$CRL' -noout -nextupdate | cut -d= -f2); [ \$(( \$(date -d \"\$u\" +%s) - \$(date -d \"\$t\" +%s) )) -eq \$((7*86400 + 300)) ]"

# 7. killed in the middle of a revocation: converges with exactly one CRL entry
sed -i '/^  server:/a\    revoked: { reason: affiliation-changed }' "$INV"; commit_inv "revoke server"
reload_script "echo \$\$ >'$T/reload.pid'; touch '$T/reload-started'; exec sleep 60"
rm -f "$T/reload-started"
"$CERTWRIGHT" -C "$REPO" --now +75d apply --allow-now >"$T/killed.out" 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -e "$T/reload-started" ] && break; sleep 0.1; done
check "apply reached the router's reload" test -e "$T/reload-started"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
kill "$(cat "$T/reload.pid")" 2>/dev/null || true
reload_script 'exit 0'
cw --now +75d apply --allow-now;                            expect_rc 0 "the next run converges"
cw --now +75d plan;                             expect_rc 0 "and nothing is left"
cur=$(python3 -c "import json; d=json.load(open('$REPO/certwright-state/certificates/server.json')); print([r['serial'] for r in d['revocations'] if r['reason'] == 'affiliation-changed'][0])")
# openssl pads an odd number of hex digits with a leading 0
check "the revoked server certificate is listed exactly once" \
  test "$(openssl crl -in "$CRL" -noout -text | grep -c -E "Serial Number: 0?$cur\$")" = 1
check "no private key anywhere in git history" bash -c "! git -C '$REPO' log -p --all | grep -q 'PRIVATE KEY'"
