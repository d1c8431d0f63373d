#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds (-Werror), runs every
# Check suite with ctest; then the same under ASan+UBSan.
#   bash tests/run.sh            both builds
#   MYELIN_SANITIZE_RUN=0 bash tests/run.sh   normal build only
#   MYELIN_FUZZ_RUN=0 bash tests/run.sh       without the fuzz step
# The ASan build also has fault injection (tests/hardening walks it).
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
  MYELIN_SANITIZED=1 run "$root/build-asan" -DMYELIN_SANITIZE=ON -DMYELIN_FAULT_INJECTION=ON
fi
# libFuzzer targets (issue 12): each runs 30 s on its corpus; a crash, leak or
# timeout fails CI (findings in build-fuzz/fuzz-artifacts/). Needs clang.
if [ "${MYELIN_FUZZ_RUN:-1}" = 1 ] && command -v clang >/dev/null; then
  echo "== libFuzzer targets, 30 s each"
  cmake -S "$root" -B "$root/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMYELIN_FUZZ=ON \
    -DCMAKE_C_COMPILER=clang -DMYELIN_ONLY= >/dev/null
  FUZZ_NICE=0 bash "$root/bench/fuzz.sh" 30 "$root/build-fuzz"
fi
