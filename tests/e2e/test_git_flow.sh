#!/usr/bin/env bash
# git as the interface: plan reads the inventory at any revision without checking it out
# (pull-request review), apply commits only the report folder and pushes it, and when the
# remote moved meanwhile the report is re-committed on top and pushed again.
source "$(dirname "$0")/lib.sh"
new_repo "$CW_TEST_DATA/e2e/basic.yaml"

# --ref: a change that exists only in a commit on another branch, not in the work tree
git -C "$REPO" checkout -q -b change
sed -i 's/"DNS:mail.example.test"/"DNS:mail.example.test", "DNS:smtp.example.test"/' "$REPO/inventory/basic.yaml"
git -C "$REPO" commit -qam "mail: add smtp name"
git -C "$REPO" checkout -q main
cw apply;                                expect_rc 0 "apply main"
cw --ref change plan --format markdown;  expect_rc 2 "plan at the change's revision sees changes"
check "markdown names spec-changed:sans for mail" bash -c "grep -q 'mail' '$T/last.out' && grep -q 'spec-changed:sans' '$T/last.out'"
check "work tree still on main's inventory" bash -c "! grep -q smtp '$REPO/inventory/basic.yaml'"
cw --ref main plan;                      expect_rc 0 "plan at main: nothing to do"
cw --ref no-such-rev plan;               expect_rc 1 "plan at a bad revision fails"
check "error names the revision" out_has "no-such-rev"

# the report commit touches nothing but the report folder, even with other local edits
echo "# local notes" >"$REPO/NOTES.md"
echo "# unrelated" >>"$REPO/inventory/basic.yaml"
git -C "$REPO" stash -q -- inventory/basic.yaml 2>/dev/null || git -C "$REPO" checkout -q -- inventory/basic.yaml
cw --now +70d apply --allow-now;                     expect_rc 0 "renewal apply"
check "last commit touches only the report folder" bash -c \
  "git -C '$REPO' show --name-only --format= HEAD | grep -v '^certwright-state/' | grep -q . && exit 1 || exit 0"
check "untracked local file left alone" bash -c "git -C '$REPO' status --porcelain | grep -q '?? NOTES.md'"
check "commit message lists the actions" bash -c "git -C '$REPO' log -1 --format=%B | grep -q 'issue web'"

# --push to a bare remote; then the remote moves and the push is re-done on top
git init -q --bare -b main "$T/remote.git"
git -C "$REPO" remote add origin "$T/remote.git"
git -C "$REPO" push -q -u origin main
cw --now +140d apply --allow-now --push;             expect_rc 0 "apply --push"
check "remote has the report commit" test "$(git -C "$T/remote.git" rev-parse main)" = "$(git -C "$REPO" rev-parse HEAD)"

git clone -q "$T/remote.git" "$T/other"
echo "# a colleague's change" >"$T/other/CHANGELOG.md"
git -C "$T/other" add CHANGELOG.md && git -C "$T/other" commit -qm "colleague: changelog"
git -C "$T/other" push -q origin main
cw --now +210d apply --allow-now --push;             expect_rc 0 "apply --push after the remote moved"
check "colleague's commit is kept on the remote" bash -c "git -C '$T/remote.git' log --format=%s main | grep -q 'colleague: changelog'"
check "report commit is on top of it" bash -c "git -C '$T/remote.git' log -1 --format=%s main | grep -q '^certwright'"
check "local branch matches the remote" test "$(git -C "$T/remote.git" rev-parse main)" = "$(git -C "$REPO" rev-parse HEAD)"
check "colleague's file is in the work tree" test -f "$REPO/CHANGELOG.md"
check "no private key anywhere in the remote's history" bash -c \
  "! git -C '$T/remote.git' log -p --all | grep -q 'PRIVATE KEY'"
