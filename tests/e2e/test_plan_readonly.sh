#!/usr/bin/env bash
# `plan` changes NOTHING — keystore, work tree (and git objects) and targets are the same
# byte for byte before and after, in every output format, on a fresh setup and on one
# with pending changes.
source "$(dirname "$0")/lib.sh"
new_repo "$CW_TEST_DATA/e2e/basic.yaml"

before=$(tree_digest "$CERTWRIGHT_KEYSTORE" "$REPO" "$OUT")
for fmt in text json markdown; do
  cw plan --format "$fmt";        expect_rc 2 "plan --format $fmt on a fresh setup"
done
check "fresh plan created no keystore" test ! -e "$CERTWRIGHT_KEYSTORE"
check "fresh plan changed nothing" test "$(tree_digest "$CERTWRIGHT_KEYSTORE" "$REPO" "$OUT")" = "$before"

cw apply;                         expect_rc 0 "apply"
# make changes pending: a renewal, a drifted file, an inventory edit in the work tree
echo "garbage" >"$OUT/local/web.crt"
sed -i 's/lifetime: 825d/lifetime: 800d/' "$REPO/inventory/basic.yaml"
before=$(tree_digest "$CERTWRIGHT_KEYSTORE" "$REPO" "$OUT")
for fmt in text json markdown; do
  cw --now +80d plan --format "$fmt"
  # garbage in a target file is an observation error for that target: exit 1 or 2
  check "plan --format $fmt ran (exit $RC)" test "$RC" -eq 1 -o "$RC" -eq 2
done
check "plan with pending changes changed nothing" \
  test "$(tree_digest "$CERTWRIGHT_KEYSTORE" "$REPO" "$OUT")" = "$before"

# the formats carry the same plan
git -C "$REPO" checkout -q -- inventory
"$CERTWRIGHT" -C "$REPO" --now +80d plan --format json >"$T/plan.json" || true
check "json plan is valid and has the schema" python3 - "$T/plan.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
assert p["format"] == "certwright-plan" and p["version"] == 1
assert p["summary"]["total"] == len(p["actions"]) > 0
for a in p["actions"]:
    assert a["kind"] in ("create-ca", "renew-ca", "issue", "deploy", "remove")
    assert a["reason"] and a["name"]
    for d in a["depends_on"]:
        assert 1 <= d < a["id"]
PY
"$CERTWRIGHT" -C "$REPO" --now +80d plan --format markdown >"$T/plan.md" || true
check "markdown plan is a table" grep -q '^| # | action |' "$T/plan.md"
