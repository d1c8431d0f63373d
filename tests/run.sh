#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds (-Werror), runs every
# Check suite with ctest; then the same under ASan+UBSan.
#   bash tests/run.sh            both builds
#   MYELIN_SANITIZE_RUN=0 bash tests/run.sh   normal build only
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/.ci/deps.sh"
jobs=$(nproc)
run() { # build-dir extra-cmake-args...
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMYELIN_BUILD_TESTS=ON -DMYELIN_ONLY= "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 900)
}
echo "== normal build"
run "$root/build"
if [ "${MYELIN_SANITIZE_RUN:-1}" = 1 ]; then
  echo "== ASan + UBSan build"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  MYELIN_SANITIZED=1 run "$root/build-asan" -DMYELIN_SANITIZE=ON
fi
