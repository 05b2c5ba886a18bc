# Shared helpers for the end-to-end tests: each test drives the real certwright binary
# in a fresh temporary git repository, with its own keystore and target folders.
# Sourced by tests/e2e/test_*.sh; $CERTWRIGHT is the binary under test.
set -euo pipefail

: "${CERTWRIGHT:?set CERTWRIGHT to the binary under test}"
: "${CW_SOURCE_DIR:?set CW_SOURCE_DIR to the source tree}"

T=$(mktemp -d "${TMPDIR:-/tmp}/cw-e2e.XXXXXX")
REPO="$T/repo"
OUT="$T/out"                # where targets write (outside the repository)
export CERTWRIGHT_KEYSTORE="$T/keystore"
export TMPDIR="$T/tmp"            # certwright's private work folders land here, checked below
mkdir -p "$TMPDIR"
export CERTWRIGHT_PASSPHRASE="e2e-test-passphrase"
export GIT_AUTHOR_NAME=e2e GIT_AUTHOR_EMAIL=e2e@localhost
export GIT_COMMITTER_NAME=e2e GIT_COMMITTER_EMAIL=e2e@localhost
FAILS=0
PASSES=0
trap 'cleanup' EXIT

cleanup() {
  local rc=$?
  if [ "$FAILS" -eq 0 ] && [ "$rc" -eq 0 ]; then rm -rf "$T"; else echo "kept $T for inspection"; fi
  echo "$PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ] && [ "$rc" -eq 0 ]
}

pass() { PASSES=$((PASSES + 1)); echo "ok - $*"; }
fail() { FAILS=$((FAILS + 1)); echo "not ok - $*" >&2; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

# cw ARGS... : runs certwright in the repo; output in $T/last.out/.err, status in $RC.
cw() {
  set +e
  "$CERTWRIGHT" -C "$REPO" "$@" >"$T/last.out" 2>"$T/last.err"
  RC=$?
  set -e
  return 0
}
expect_rc() { # expect_rc WANT WHAT
  if [ "$RC" -eq "$1" ]; then pass "$2 (exit $RC)"; else
    fail "$2: expected exit $1, got $RC"; sed 's/^/  | /' "$T/last.out" "$T/last.err" >&2; fi
}
out_has() { grep -q -- "$1" "$T/last.out" "$T/last.err"; }

# new_repo INVENTORY_YAML... : a repo whose inventory/ holds the given files ($OUT expanded).
new_repo() {
  rm -rf "$REPO" "$OUT"
  mkdir -p "$REPO/inventory" "$OUT"
  git -C "$REPO" init -q -b main
  for f in "$@"; do
    sed "s|@OUT@|$OUT|g" "$f" >"$REPO/inventory/$(basename "$f")"
  done
  git -C "$REPO" add inventory
  git -C "$REPO" commit -qm "inventory"
}

# write_inventory NAME <<'YAML' : replaces inventory/NAME (with @OUT@ expanded) and commits.
write_inventory() {
  sed "s|@OUT@|$OUT|g" >"$REPO/inventory/$1"
  git -C "$REPO" add inventory
  git -C "$REPO" commit -qm "inventory: $1" || true
}

fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
commits() { git -C "$REPO" rev-list --count HEAD; }

# A digest of every file (name, mode, content) under the given folders. Lock files
# (which hold the pid of the last run that took them) and git's index stat cache are
# bookkeeping, not data, and are left out.
tree_digest() {
  local d
  for d in "$@"; do
    [ -e "$d" ] || { echo "absent $d"; continue; }
    find "$d" \( -path '*/.git/index' -o -name lock -o -name certwright.lock \) -prune -o -type f -printf '%p %m\n' | sort
    find "$d" \( -path '*/.git/index' -o -name lock -o -name certwright.lock \) -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum
  done | sha256sum | cut -d' ' -f1
}
