#!/usr/bin/env bash
# The main job, end to end on a fresh Debian machine: install what is missing, build,
# and reconcile examples/inventory in a temporary git repository — plan, apply, then
# plan again, which shows nothing to do. Leaves the demo repository for you to look at.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh" build
"$root/scripts/build.sh" "$root/build" -DCW_TESTS=OFF
cw="$root/build/certwright"

demo=$(mktemp -d /tmp/certwright-demo-repo.XXXXXX)
rm -rf /tmp/certwright-demo            # the example targets write under here
export CERTWRIGHT_KEYSTORE="$demo.keystore"   # outside the work tree, as keys must be
export CERTWRIGHT_PASSPHRASE=${CERTWRIGHT_PASSPHRASE:-demo-passphrase-change-me}
export ALICE_P12_PASSPHRASE=${ALICE_P12_PASSPHRASE:-demo-bundle-passphrase}

git -C "$demo" init -q -b main
git -C "$demo" config user.name "certwright demo"
git -C "$demo" config user.email "demo@localhost"
cp -r "$root/examples/inventory" "$demo/inventory"
git -C "$demo" add inventory && git -C "$demo" commit -qm "inventory: example office PKI"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "certwright validate"
"$cw" -C "$demo" validate
step "certwright plan   (exit 2: changes pending)"
rc=0; "$cw" -C "$demo" plan || rc=$?
[ "$rc" -eq 2 ] || { echo "demo: expected plan to exit 2, got $rc" >&2; exit 1; }
step "certwright apply"
"$cw" -C "$demo" apply
step "certwright plan   (exit 0: nothing to do)"
"$cw" -C "$demo" plan
step "certwright status"
"$cw" -C "$demo" status
step "what was installed"
find /tmp/certwright-demo -type f -printf '%m %p\n' | sort
openssl verify -CAfile /tmp/certwright-demo/nginx/office-root.pem \
  -untrusted /tmp/certwright-demo/nginx/intranet.fullchain.pem /tmp/certwright-demo/nginx/intranet.crt
step "the state report committed to git"
git -C "$demo" log --stat --format='%h %s' -n 1 | head -20
echo
echo "demo repository: $demo   keystore: $CERTWRIGHT_KEYSTORE"
