#!/usr/bin/env bash
# The whole test suite. Every stage runs, even after one fails; a summary at
# the end gives each stage's result, and the exit status is 1 if any failed.
#   1. hygiene    no project file refers to a path outside the repository
#   2. normal     build (-Werror) and every Check suite with ctest; an MPI
#                 build (-DMYELIN_MPI=ON) when mpicc is there (.ci/deps.sh
#                 installs OpenMPI), so tests/mpi and tests/shard run under
#                 mpirun --oversubscribe -n 1/2/4
#   3. warnings   compile only, -Werror: gcc and clang at -O0 (Debug), -O2
#                 (RelWithDebInfo) and -O3 (Release) — every build a README
#                 names (the normal stage is gcc -O2); MPI as in stage 2
#   4. asan       ASan+UBSan build with fault injection, every suite again
#                 (tests/hardening walks the injected faults); without MPI
#                 (OpenMPI's own allocations at init and finalize are leaks
#                 to LeakSanitizer), so this stage also checks that the
#                 default single-rank build passes every suite
#   5. fuzz       each libFuzzer target for 30 s on its corpus (clang)
#
#   bash tests/run.sh                          all stages
#   MYELIN_SANITIZE_RUN=0 bash tests/run.sh    without the ASan stage
#   MYELIN_FUZZ_RUN=0 bash tests/run.sh        without the fuzz stage
#   MYELIN_WARNINGS_RUN=0 bash tests/run.sh    without the warnings stage
#
# A check that cannot run (a data package or Python module is missing)
# prints `SKIP: suite:test: reason`; the summary counts them. With CI=true or
# MYELIN_REQUIRE_ALL=1 (.ci/run sets it: CI installs every dependency) a
# skip fails its suite.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
results=()
failed=0
skip_lines=""

stage() { # name command...: runs one stage, records PASS/FAIL and its time
  local name=$1 t0=$SECONDS rc
  shift
  echo "== $name"
  "$@"
  rc=$?
  local dt=$((SECONDS - t0)) extra=${stage_note:-}
  stage_note=""
  if [ $rc = 0 ]; then
    results+=("PASS  $name (${dt} s)${extra}")
  else
    results+=("FAIL  $name (${dt} s, exit $rc)${extra}")
    failed=1
  fi
}

# The MPI build when OpenMPI is there, and always in CI (MYELIN_REQUIRE_ALL=1:
# .ci/deps.sh installs it, so a missing one fails the configure).
mpi=OFF
if { command -v mpicc && command -v mpirun; } >/dev/null || [ "${MYELIN_REQUIRE_ALL:-0}" = 1 ]; then mpi=ON; fi

configure() { # build-dir extra-cmake-args...
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMYELIN_BUILD_TESTS=ON -DMYELIN_WERROR=ON \
    -DMYELIN_ONLY= "$@" >/dev/null
}

hygiene() {
  # Nothing may point outside the clone: a sibling "shared" folder, this machine's folders.
  local hits
  hits=$(cd "$root" && grep -rnIE --exclude=.git --exclude-dir=.git --exclude-dir='build*' '\.\./shared\b|/wor[k]/' . || true)
  if [ -n "$hits" ]; then
    echo "files that refer to paths outside the repository:"
    echo "$hits"
    return 1
  fi
}

suites() { # build-dir extra-cmake-args...: configure, build, ctest; counts skips
  local dir=$1 rc
  configure "$@" || return 1
  cmake --build "$dir" -j"$jobs" || return 1
  rm -f "$dir/test-skips.txt"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 900)
  rc=$?
  local n=0
  if [ -s "$dir/test-skips.txt" ]; then
    n=$(wc -l <"$dir/test-skips.txt")
    skip_lines+=$(sed "s|^|  $(basename "$dir"): |" "$dir/test-skips.txt")$'\n'
  fi
  stage_note=", $n skipped checks"
  return $rc
}

warnings() { # compile only, -Werror, each compiler x optimization level
  local cc bt rc=0 bad=""
  for cc in gcc clang; do
    command -v $cc >/dev/null || { echo "$cc not installed"; bad+=" $cc"; rc=1; continue; }
    for bt in Debug RelWithDebInfo Release; do
      [ $cc = gcc ] && [ $bt = RelWithDebInfo ] && continue # the normal stage
      local dir="$root/build-warn/$cc-$bt" t0=$SECONDS
      local cxx=g++; [ $cc = clang ] && cxx=clang++ # the DCMTK shim is C++
      if ! configure "$dir" -DCMAKE_C_COMPILER=$cc -DCMAKE_CXX_COMPILER=$cxx -DCMAKE_BUILD_TYPE=$bt -DMYELIN_MPI=$mpi ||
        ! cmake --build "$dir" -j"$jobs" >"$dir.log" 2>&1; then
        grep -E 'error|warning' "$dir.log" | head -40
        bad+=" $cc-$bt"
        rc=1
      fi
      echo "-- $cc $bt: $((SECONDS - t0)) s"
    done
  done
  [ -n "$bad" ] && stage_note=", failed:$bad"
  return $rc
}

fuzz() {
  cmake -S "$root" -B "$root/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMYELIN_FUZZ=ON -DMYELIN_WERROR=ON \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DMYELIN_ONLY= >/dev/null || return 1
  FUZZ_NICE=0 bash "$root/bench/fuzz.sh" 30 "$root/build-fuzz"
}

stage "dependencies (.ci/deps.sh)" bash "$root/.ci/deps.sh"
stage "hygiene: no path outside the repository" hygiene
stage "normal build + suites (MYELIN_MPI=$mpi)" suites "$root/build" -DMYELIN_MPI=$mpi
if [ "${MYELIN_WARNINGS_RUN:-1}" = 1 ]; then
  stage "warnings: gcc/clang x -O0/-O2/-O3, -Werror, compile only" warnings
fi
if [ "${MYELIN_SANITIZE_RUN:-1}" = 1 ]; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    MYELIN_SANITIZED=1 stage "ASan + UBSan + fault injection build + suites" \
    suites "$root/build-asan" -DMYELIN_SANITIZE=ON -DMYELIN_FAULT_INJECTION=ON -DMYELIN_MPI=OFF
fi
# libFuzzer targets (issue 12): each runs 30 s on its corpus; a crash, leak or
# timeout fails CI (findings in build-fuzz/fuzz-artifacts/). Needs clang.
if [ "${MYELIN_FUZZ_RUN:-1}" = 1 ]; then
  if command -v clang >/dev/null; then
    stage "libFuzzer targets, 30 s each" fuzz
  else
    results+=("FAIL  libFuzzer targets: clang is not installed")
    failed=1
  fi
fi

echo
echo "== summary (tests/run.sh, $SECONDS s)"
printf '%s\n' "${results[@]}"
if [ -n "$skip_lines" ]; then
  echo "skipped checks:"
  printf '%s' "$skip_lines"
fi
exit $failed
