#!/usr/bin/env bash
# When things go wrong: a failing target does not stop the others and is retried next run
# without a second issuance; a run killed in the middle converges on the next run; a saved
# plan is refused once reality moved; two applies never run at once; a wrong passphrase
# changes nothing.
source "$(dirname "$0")/lib.sh"

reload_script() { # reload_script BODY : the broken target's reload command
  printf '#!/bin/sh\n%s\n' "$1" >"$T/reload.sh"; chmod +x "$T/reload.sh"
}
issued_count() { # how many certificates named $1 the keystore's index records
  python3 -c "
import glob, json, sys
n = 0
for f in glob.glob('$CERTWRIGHT_KEYSTORE/index/*.json'):
    n += sum(1 for e in json.load(open(f))['entries'] if e['name'] == sys.argv[1])
print(n)" "$1"
}

mkdir -p "$T/data"
sed "s|@RELOAD@|$T/reload.sh|" "$CW_TEST_DATA/e2e/failing.yaml" >"$T/data/failing.yaml"
new_repo "$T/data/failing.yaml"

# 1. one target fails, the other converges, the report records both
reload_script 'echo "reload: service refused the new certificate" >&2; exit 3'
cw apply;                          expect_rc 1 "apply with a failing target exits 1"
check "error names the target and the reload's message" out_has "service refused the new certificate"
check "healthy target converged anyway" test -s "$OUT/healthy/good.crt"
check "report records the failure" bash -c \
  "grep -q '\"status\": \"failed\"' '$REPO/certwright-state/certificates/flaky.json'"
check "report records the success" bash -c \
  "grep -q '\"status\": \"ok\"' '$REPO/certwright-state/certificates/good.json'"
check "flaky was issued once" test "$(issued_count flaky)" = 1
serial=$(serial_of "$OUT/broken/flaky.crt")

cw plan;                           expect_rc 2 "plan retries the failed deploy"
check "reason is deploy-failed" out_has "deploy-failed"
reload_script 'exit 0'
cw apply;                          expect_rc 0 "apply converges once the target works"
check "retry deployed the same certificate (no reissue)" test "$(serial_of "$OUT/broken/flaky.crt")" = "$serial"
check "still issued once" test "$(issued_count flaky)" = 1
cw plan;                           expect_rc 0 "nothing left to do"

# 2. killed in the middle of a deploy: the next run converges without issuing again
sed -i 's/"DNS:flaky.example.test"/"DNS:flaky.example.test", "DNS:flaky2.example.test"/' "$REPO/inventory/failing.yaml"
git -C "$REPO" commit -qam "flaky gets a second name"
reload_script "echo \$\$ >'$T/reload.pid'; touch '$T/reload-started'; exec sleep 60"
rm -f "$T/reload-started"
"$CERTWRIGHT" -C "$REPO" apply >"$T/killed.out" 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -e "$T/reload-started" ] && break; sleep 0.1; done
check "apply reached the reload" test -e "$T/reload-started"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
kill "$(cat "$T/reload.pid")" 2>/dev/null || true   # SIGKILL leaves the reload behind
check "flaky issued twice in all (original + the SAN change)" test "$(issued_count flaky)" = 2
check "the killed run left its work folder" bash -c "ls -d '$TMPDIR'/certwright.* >/dev/null 2>&1"
reload_script 'exit 0'
cw plan;                           expect_rc 2 "plan after the kill has work left"
check "reason is deploy-interrupted" out_has "deploy-interrupted"
cw apply;                          expect_rc 0 "apply after the kill converges"
check "the next run swept the dead run's work folder" bash -c "! ls -d '$TMPDIR'/certwright.* >/dev/null 2>&1"
check "no third issuance" test "$(issued_count flaky)" = 2
check "target holds the new certificate" bash -c \
  "openssl x509 -in '$OUT/broken/flaky.crt' -noout -ext subjectAltName | grep -q flaky2"
cw plan;                           expect_rc 0 "converged"

# 3. a saved plan is refused once reality moved, accepted while it has not
cw --now +70d plan --format json --out "$T/plan.json"; expect_rc 2 "saved plan written"
check "saved plan file exists" test -s "$T/plan.json"
cp "$OUT/healthy/good.crt" "$T/good.crt.bak"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=intruder \
  -keyout "$T/intruder.key" -out "$OUT/healthy/good.crt" -days 1 2>/dev/null
cw --now +70d apply --allow-now --plan "$T/plan.json"; expect_rc 1 "stale plan (target changed) refused"
check "message says stale" out_has "stale"
cp "$T/good.crt.bak" "$OUT/healthy/good.crt"
sed -i 's/lifetime: 3650d/lifetime: 3600d/' "$REPO/inventory/failing.yaml"
cw --now +70d apply --allow-now --plan "$T/plan.json"; expect_rc 1 "stale plan (inventory changed) refused"
check "message names the inventory" out_has "inventory changed"
git -C "$REPO" checkout -q -- inventory
cw --now +70d apply --allow-now --plan "$T/plan.json"; expect_rc 0 "fresh saved plan applies"

# 4. two applies never run at once
flock "$CERTWRIGHT_KEYSTORE/lock" sleep 5 &
lockpid=$!
sleep 0.5
cw --now +140d apply --allow-now;              expect_rc 1 "apply refused while another holds the lock"
check "message says locked" out_has "lock"
wait "$lockpid" || true

# 5. a wrong passphrase changes nothing
before=$(tree_digest "$CERTWRIGHT_KEYSTORE" "$OUT")
CERTWRIGHT_PASSPHRASE=wrong cw --now +140d apply --allow-now; expect_rc 1 "wrong passphrase refused"
check "message says passphrase" out_has "passphrase"
check "wrong passphrase changed nothing" test "$(tree_digest "$CERTWRIGHT_KEYSTORE" "$OUT")" = "$before"
env -u CERTWRIGHT_PASSPHRASE "$CERTWRIGHT" -C "$REPO" --now +140d apply --allow-now >"$T/last.out" 2>&1 && RC=0 || RC=$?
expect_rc 1 "missing passphrase refused"
check "message tells how to give it" out_has "CERTWRIGHT_PASSPHRASE"

# 6. SIGTERM (what systemd sends on a timeout): the reload is stopped, the step recorded,
# the work folder removed, and the next run finishes the job without issuing again
sed -i 's/"DNS:flaky.example.test", "DNS:flaky2.example.test"/"DNS:flaky.example.test", "DNS:flaky3.example.test"/' "$REPO/inventory/failing.yaml"
git -C "$REPO" commit -qam "flaky: third name"
reload_script "echo \$\$ >'$T/reload.pid'; touch '$T/reload-started'; exec sleep 60"
rm -f "$T/reload-started"
n=$(issued_count flaky)
"$CERTWRIGHT" -C "$REPO" apply >"$T/last.out" 2>"$T/last.err" &
pid=$!
for _ in $(seq 1 200); do [ -e "$T/reload-started" ] && break; sleep 0.1; done
SECONDS=0
kill -TERM "$pid"
wait "$pid" && RC=0 || RC=$?
expect_rc 1 "apply stopped by SIGTERM exits 1"
check "it stopped within 5 s (${SECONDS}s)" test "$SECONDS" -le 5
check "message says interrupted" out_has "interrupted"
check "the reload it was running is gone" bash -c "! kill -0 \$(cat '$T/reload.pid') 2>/dev/null"
check "no work folder left behind" bash -c "! ls -d '$TMPDIR'/certwright.* >/dev/null 2>&1"
reload_script 'exit 0'
cw apply;                          expect_rc 0 "the next run finishes the job"
check "issued once for this change" test "$(issued_count flaky)" = "$((n + 1))"
check "target has the third name" bash -c "openssl x509 -in '$OUT/broken/flaky.crt' -noout -ext subjectAltName | grep -q flaky3"

# 7. two repositories sharing one keystore: the second apply is refused while the first
# runs, instead of both rewriting the keystore's records from their own copy
git clone -q "$REPO" "$T/repo2"
reload_script "echo \$\$ >'$T/reload.pid'; touch '$T/reload-started'; exec sleep 60"
rm -f "$T/reload-started"
sed -i 's/"DNS:flaky.example.test", "DNS:flaky3.example.test"/"DNS:flaky.example.test", "DNS:flaky4.example.test"/' "$REPO/inventory/failing.yaml"
git -C "$REPO" commit -qam "flaky: fourth name"
"$CERTWRIGHT" -C "$REPO" apply >"$T/first.out" 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -e "$T/reload-started" ] && break; sleep 0.1; done
"$CERTWRIGHT" -C "$T/repo2" apply >"$T/last.out" 2>"$T/last.err" && RC=0 || RC=$?
expect_rc 1 "an apply in another repository on the same keystore is refused meanwhile"
check "message says the keystore is locked" out_has "locked"
kill "$(cat "$T/reload.pid")" 2>/dev/null || true
wait "$pid" || true
reload_script 'exit 0'
cw apply;                          expect_rc 0 "the first repository converges"
