#!/usr/bin/env bash
# The SoftEther VPN Server target end to end, against a REAL vpnserver (Debian's
# softether-vpnserver) started from a seeded loopback-only config: issue + deploy +
# verify, idempotence, drift repair, renewal, a wrong password next to a healthy files
# target, a stopped server, key types the server refuses (plan time, server untouched),
# a server killed during apply, and no key file left in any temporary folder.
source "$(dirname "$0")/lib.sh"
LAB="$CW_SOURCE_DIR/tests/lab/softether.sh"
if ! bash "$LAB" check; then
  if [ -n "${CI:-}" ]; then fail "softether-vpnserver/vpncmd are not installed (CI must install them)"; exit 1; fi
  echo "skipping: softether-vpnserver/vpncmd not installed"; exit 0
fi
export SOFTETHER_ADMIN_PASSWORD='e2e "admin" pass'
PORT=$((16000 + $$ % 2000))
SRV="$T/server"
export TMPDIR="$T/tmp"; mkdir -p "$TMPDIR"     # every temporary folder certwright makes lands here
start_server() { bash "$LAB" start "$SRV" "$PORT" >"$T/lab.log" 2>&1 || { cat "$T/lab.log" >&2; return 1; }; }
stop_server() { bash "$LAB" stop "$SRV" >/dev/null 2>&1 || true; }
trap 'stop_server; cleanup' EXIT
vpncmd_as_admin() { timeout 10 vpncmd "127.0.0.1:$PORT" /SERVER "/PASSWORD:$SOFTETHER_ADMIN_PASSWORD" /PROGRAMMING /CMD "$@" </dev/null; }
live_fp() { # the leaf a TLS client sees on the listener
  openssl s_client -connect "127.0.0.1:$PORT" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 \
    | cut -d= -f2 | tr -d : | tr A-F a-f
}
issued_fp() { python3 -c "import json; print(json.load(open('$REPO/certwright-state/certificates/vpn.json'))['fingerprint'])"; }
issued_count() {
  python3 -c "
import glob, json
print(sum(1 for f in glob.glob('$CERTWRIGHT_KEYSTORE/index/*.json') for e in json.load(open(f))['entries'] if e['name'] == 'vpn'))"
}
no_key_left() { ! grep -rlE 'PRIVATE KEY' "$TMPDIR" 2>/dev/null | grep -q .; }

mkdir -p "$T/data"
sed "s|@PORT@|$PORT|" "$CW_TEST_DATA/e2e/softether.yaml" >"$T/data/softether.yaml"
new_repo "$T/data/softether.yaml"
check "lab server starts" start_server

cw plan;                         expect_rc 2 "plan shows issue + deploy"
check "plan deploys vpn to softether" bash -c "grep -q 'vpn -> softether' '$T/last.out'"
cw apply;                        expect_rc 0 "apply installs the certificate"
check "TLS handshake shows the issued certificate" test "$(live_fp)" = "$(issued_fp)"
(cd "$T" && vpncmd_as_admin ServerCertGet got.pem >/dev/null)
check "ServerCertGet shows the issued certificate" \
  test "$(openssl x509 -in "$T/got.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)" = "$(issued_fp)"
cw plan;                         expect_rc 0 "second plan is empty"
check "no key file left in temporary folders" no_key_left

# someone installs another certificate by hand
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=by-hand -keyout "$T/hand.key" -out "$T/hand.pem" -days 2 2>/dev/null
vpncmd_as_admin ServerCertSet "/LOADCERT:$T/hand.pem" "/LOADKEY:$T/hand.key" >/dev/null
cw plan;                         expect_rc 2 "plan notices the hand-installed certificate"
check "reason is drift:fingerprint" out_has "drift:fingerprint"
cw apply;                        expect_rc 0 "apply repairs the drift"
check "server serves ours again" test "$(live_fp)" = "$(issued_fp)"

# renewal
before=$(issued_fp)
cw --now +70d plan;              expect_rc 2 "plan 70 days on renews"
check "reason is renewal-due" out_has "renewal-due"
cw --now +70d apply --allow-now;             expect_rc 0 "apply renews, deploys, verifies"
check "a new certificate is live" bash -c "[ '$(live_fp)' = \"\$(python3 -c \"import json; print(json.load(open('$REPO/certwright-state/certificates/vpn.json'))['fingerprint'])\")\" ] && [ \"\$(python3 -c \"import json; print(json.load(open('$REPO/certwright-state/certificates/vpn.json'))['fingerprint'])\")\" != '$before' ]"

# a wrong password: clear error, exit 1, the files target still converges, the report says both
sed -i 's/"DNS:web.example.test"/"DNS:web.example.test", "DNS:www.example.test"/' "$REPO/inventory/softether.yaml"
git -C "$REPO" commit -qam "web: second name"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=by-hand-2 -keyout "$T/hand.key" -out "$T/hand.pem" -days 2 2>/dev/null
vpncmd_as_admin ServerCertSet "/LOADCERT:$T/hand.pem" "/LOADKEY:$T/hand.key" >/dev/null
SOFTETHER_ADMIN_PASSWORD=wrong-password cw --now +70d apply --allow-now
expect_rc 1 "apply with a wrong admin password exits 1"
check "error says wrong admin password" out_has "wrong admin password"
check "the password never appears in the output" bash -c "! grep -q 'wrong-password' '$T/last.out' '$T/last.err'"
check "files target converged in the same run" bash -c \
  "openssl x509 -in '$OUT/files/web.crt' -noout -ext subjectAltName | grep -q www.example.test"
check "report records the softether failure" bash -c \
  "grep -q '\"status\": \"failed\"' '$REPO/certwright-state/certificates/vpn.json' || grep -q 'wrong admin password' '$REPO/certwright-state/certificates/vpn.json'"
check "report records the files success" grep -q '"status": "ok"' "$REPO/certwright-state/certificates/web.json"
cw --now +70d apply --allow-now;             expect_rc 0 "with the right password it converges"

# an ECDSA or RSA-1024 certificate aimed at it: refused at plan time, server untouched
served=$(live_fp)
sed -i '/^  vpn:/,/^  web:/ s/key: rsa-2048/key: ecdsa-p256/' "$REPO/inventory/softether.yaml"
cw --now +70d plan;              expect_rc 1 "plan refuses an ECDSA certificate for this server"
check "error names certificate, target and rule" bash -c \
  "grep -q \"certificate 'vpn'\" '$T/last.err' '$T/last.out' && grep -q \"softether\" '$T/last.err' '$T/last.out' && grep -q 'target.key-type' '$T/last.err' '$T/last.out'"
cw --now +70d apply --allow-now;             expect_rc 1 "apply does not deploy it either"
check "server untouched" test "$(live_fp)" = "$served"
sed -i '/^  vpn:/,/^  web:/ s/key: ecdsa-p256/key: rsa-1024/' "$REPO/inventory/softether.yaml"
cw --now +70d plan;              expect_rc 1 "plan refuses RSA-1024 for SoftEther"
check "rule softether.rsa-min-2048 named" out_has "softether.rsa-min-2048"
check "server still untouched" test "$(live_fp)" = "$served"
git -C "$REPO" checkout -q -- inventory

# server stopped: a clear error within the configured timeout, no hang
stop_server
SECONDS=0
cw --now +70d plan
elapsed=$SECONDS
expect_rc 1 "plan with the server stopped exits 1"
check "error names the target" out_has "softether"
check "no hang: answered within the timeout (${elapsed}s)" test "$elapsed" -le 15

# killed during apply: the server dies while apply talks to it; the next run converges
# without issuing again
start_server
n_before=$(issued_count)
cw --now +140d plan >/dev/null;  expect_rc 2 "140 days on: renewal due"
kill -STOP "$(cat "$SRV/pid")"    # the server hangs: apply is stuck in vpncmd...
"$CERTWRIGHT" -C "$REPO" --now +140d apply --allow-now >"$T/killed.out" 2>&1 &
apid=$!
sleep 2
kill -9 "$(cat "$SRV/pid")"       # ...and then it dies
wait "$apid" && RC=0 || RC=$?
expect_rc 1 "apply whose server died exits 1"
check "renewal issued exactly once" test "$(issued_count)" = "$((n_before + 1))"
stop_server; start_server          # a fresh server: it lost everything
cw --now +140d apply --allow-now;            expect_rc 0 "next run converges"
check "no second issuance" test "$(issued_count)" = "$((n_before + 1))"
check "server serves the renewed certificate" test "$(live_fp)" = "$(issued_fp)"
cw --now +140d plan;             expect_rc 0 "converged"
check "no key file left in temporary folders after all of it" no_key_left
