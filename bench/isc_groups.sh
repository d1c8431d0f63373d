#!/bin/sh
# bench/isc_groups.sh — the two-sample ISC permutation test (isc `groups`):
# myelin's isc_permutation_groups vs a numpy implementation of BrainIAK's
# permutation_isc(iscs, group_assignment=...) (Debian /usr/bin/python3), on
# the same ISC values and BrainIAK's own Monte Carlo label shuffles, so p
# must agree value for value.
#
#   bench/isc_groups.sh [S] [V] [N] [THREADS] [RUNS]
#
# Defaults: 20 subjects (10 + 10), 50,000 voxels, 1000 permutations;
# leave-one-out with the Fisher mean and with the median, then pairwise
# (190 pair rows) with the mean on V/5 voxels. Like with like: both sides
# time the same phase (the test alone, inputs loaded, each program's clock
# around it), on the same ISCs and draws, in separate processes, RUNS times
# each (default 3, alternating), median printed. THREADS defaults to 1, as
# numpy is single-threaded here (THREADS=2 gives myelin's multi-threaded
# figure, labelled as such).
set -e
S=${1:-20}; V=${2:-50000}; N=${3:-1000}; THREADS=${4:-1}; RUNS=${5:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
PY=${MYELIN_PYTHON:-/usr/bin/python3}
W=$(mktemp -d /tmp/isc-groups-bench-XXXXXX)
trap 'rm -rf "$W"' EXIT
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

cc -std=c11 -D_GNU_SOURCE -O3 $(pkg-config --cflags openblas) -I"$SRC/plugins/isc" \
   "$HERE/isc_groups_driver.c" "$SRC/plugins/isc/isc_kernels.c" -o "$W/driver" \
   $(pkg-config --libs openblas) -lpthread -lm

v() { awk -v k="$1" '$1 == k { print $2 }' "$2" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
one() { # label pairwise V kind side
  "$PY" "$HERE/isc_groups_peer.py" gen "$W" "$S" "$3" "$N" "$2"
  : > "$W/ours.txt"; : > "$W/numpy.txt"
  r=0
  while [ $r -lt "$RUNS" ]; do
    "$W/driver" "$W" "$4" "$5" "$THREADS" 1 >> "$W/ours.txt"
    "$PY" "$HERE/isc_groups_peer.py" run "$W" "$4" "$5" >> "$W/numpy.txt"
    r=$((r + 1))
  done
  "$PY" "$HERE/isc_groups_peer.py" diff "$W" > "$W/diff.txt"
  ours=$(v ours_seconds "$W/ours.txt"); np=$(v numpy_seconds "$W/numpy.txt")
  echo "$1, V=$3, $4, $5"
  printf "  %-34s %8s s\n" "myelin isc_permutation_groups" "$ours" "numpy brainiak semantics" "$np"
  echo "  speed-up $(echo "$np $ours" | awk '{ printf "%.1f", $1 / $2 }')x; p identical at $(v p_equal_fraction "$W/diff.txt") of voxels; max |observed diff| $(v max_abs_obs "$W/diff.txt"); p <= 0.01 at $(v significant_fraction "$W/diff.txt") of voxels"
}
echo "two-sample ISC permutation test: S=$S subjects (two groups), N=$N label shuffles (BrainIAK's draws), $THREADS thread(s) for myelin, 1 for numpy, median of $RUNS, $(getconf _NPROCESSORS_ONLN) cores shared"
one "leave-one-out" 0 "$V" mean two-sided
one "leave-one-out" 0 "$V" median right
one "pairwise" 1 $((V / 5)) mean two-sided
