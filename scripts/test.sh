#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: install what is missing (as root),
# build with AddressSanitizer and UBSan, and run unit tests and end-to-end tests,
# including the integration tests against a real SoftEther VPN Server.
# When run as root the suite runs in its own network namespace (loopback only), so
# no test server can reach or be reached from anything but this machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/deps.sh" test
"$root/scripts/build.sh" "$root/build-asan" -DCW_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$root/build-asan"
run=(ctest --output-on-failure --timeout 900 -j2 "$@")
if [ "$(id -u)" -eq 0 ] && unshare --net true 2>/dev/null; then
  exec unshare --net -- bash -c 'ip link set lo up && exec "$@"' ctest-in-netns "${run[@]}"
fi
exec "${run[@]}"
