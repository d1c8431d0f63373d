#!/bin/sh
# bench/encoding.sh — ridge encoding models: plugins/encoding/ridge.c vs sklearn.
#
# The workload of issue 9: T samples, F features x 5 FIR delays, V voxels,
# 10 alphas (logspace(-1, 8, 10)), 5 contiguous outer folds; per fold z-score
# X on the training rows, pick one alpha per voxel by exact leave-one-out
# (sklearn RidgeCV(alpha_per_target=True), cv=None), predict the held-out
# rows, Pearson r. Ours: ridge_encode() (driver bench/encoding_run.c). Peer:
# StandardScaler + RidgeCV per fold with Debian's /usr/bin/python3
# (bench/encoding_sklearn.py).
#
# Like for like: both sides run in the same process layout (one process per
# run, data loaded first and excluded), are timed on the same phase — the
# whole fit/score loop over the 5 folds, data in memory — with the same
# OpenBLAS library and threads (OPENBLAS_NUM_THREADS, default 2 here), the
# runs interleaved (ours, peer, ours, peer, ...) and the median of the same
# number of runs (RUNS, default 3) reported for each.
#
# Two shapes by default, 4 training rows per 5 samples (n = 1600):
#   T > features: T 2000, F 300 x 5 = 1500, V 5000 (tall: n > p)
#   T < features: T 2000, F 768 x 5 = 3840, V 5000 (wide: n < p)
# or one shape given as arguments.
#
# GEMM peak: bench/gemm_peak.c, square 3000 x 3000 cblas_dgemm and
# cblas_sgemm on the same OpenBLAS and threads, median of 5 (C, not numpy).
# For ours it also prints the per-alpha phase (ridge_stats: after each
# fold's decomposition, the leave-one-out errors of the alphas and the
# held-out predictions) — its wall time, its BLAS flops, and GFLOP/s as a
# share of the DGEMM peak (the phase is float64; see the README for why no
# float32). In the tall shape, ours also runs with every alpha of every
# voxel computed (path "direct": the batched GEMMs sklearn's svd mode
# also does), the phase the >= 70 % of peak target is about.
#
# Usage: bench/encoding.sh [T F V]     (RUNS=3 OPENBLAS_NUM_THREADS=2)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
py=${MYELIN_PYTHON:-/usr/bin/python3}
RUNS=${RUNS:-3}
OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
export OPENBLAS_NUM_THREADS
work=$(mktemp -d /tmp/myelin-bench-encoding.XXXXXX)
trap 'rm -rf "$work"' EXIT

# shellcheck disable=SC2046
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -I"$src/plugins/encoding" "$here/encoding_run.c" \
  "$src/plugins/encoding/ridge.c" -o "$work/encoding_run" \
  $(pkg-config --cflags --libs openblas lapacke) -lm
# shellcheck disable=SC2046
${CC:-cc} -std=c11 -O2 "$here/gemm_peak.c" -o "$work/gemm_peak" \
  $(pkg-config --cflags --libs openblas)

calc() { awk "BEGIN {print $1}"; }
# median of the numbers on stdin, one per line
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# column $1 of file $2, median
med() { awk -v c="$1" '{print $c}' "$2" | median; }

args="$*"
# shellcheck disable=SC2046
set -- $("$work/gemm_peak" 3000 5)
dpeak=$1 speak=$2 core=$4
printf 'peak (gemm_peak, 3000^3, median of 5): DGEMM %.1f GFLOP/s, SGEMM %.1f GFLOP/s; OpenBLAS %s kernel, %s threads\n' \
  "$dpeak" "$speak" "$core" "$OPENBLAS_NUM_THREADS"

shape() { # T F V
  T=$1 F=$2 V=$3 P=$(($2 * 5))
  d="$work/$T-$F-$V"
  mkdir -p "$d"
  "$py" "$here/encoding_make.py" "$d" "$T" "$F" "$V"
  n=$((T - (T + 4) / 5))
  kind=wide paths=auto
  [ "$n" -gt "$P" ] && kind=tall paths="auto direct"
  : >"$d/peer.txt"
  for p in $paths; do : >"$d/ours-$p.txt"; done
  i=0
  while [ "$i" -lt "$RUNS" ]; do
    for p in $paths; do
      "$work/encoding_run" "$d" "$T" "$P" "$V" 2048 "$p" >>"$d/ours-$p.txt"
      cp "$d/r_ours.f8" "$d/r_$p.f8" && cp "$d/alpha_ours.i4" "$d/alpha_$p.i4"
    done
    "$py" "$here/encoding_sklearn.py" "$d" "$T" "$P" "$V" >>"$d/peer.txt"
    i=$((i + 1))
  done
  printf '\n%s: T=%s (n=%s training rows), F=%s x 5 delays = %s, V=%s, 10 alphas, 5 folds; median of %s runs; load %s\n' \
    "$kind" "$T" "$n" "$F" "$P" "$V" "$RUNS" "$(cut -d' ' -f1-3 /proc/loadavg)"
  peer=$(med 1 "$d/peer.txt") peer_cpu=$(med 2 "$d/peer.txt")
  for p in $paths; do
    f="$d/ours-$p.txt"
    w=$(med 1 "$f") c=$(med 2 "$f") ps=$(med 3 "$f") fl=$(med 4 "$f")
    printf '%-44s %8.2f s wall %8.2f s cpu  %.2fx sklearn wall, %.2fx cpu\n' "myelin ridge_encode ($p)" \
      "$w" "$c" "$(calc "$peer/$w")" "$(calc "$peer_cpu/$c")"
    printf '  per-alpha phase: %.2f s, %.1f GFLOP, %.1f GFLOP/s = %.0f%% of DGEMM peak\n' "$ps" \
      "$(calc "$fl/1e9")" "$(calc "$fl/$ps/1e9")" "$(calc "100*$fl/$ps/1e9/$dpeak")"
  done
  printf '%-44s %8.2f s wall %8.2f s cpu\n' "sklearn StandardScaler + RidgeCV per fold" "$peer" "$peer_cpu"
  for p in $paths; do
    cp "$d/r_$p.f8" "$d/r_ours.f8" && cp "$d/alpha_$p.i4" "$d/alpha_ours.i4"
    printf '%s vs sklearn: ' "$p"
    "$py" "$here/encoding_compare.py" "$d" "$V"
  done
}

if [ -n "$args" ]; then
  # shellcheck disable=SC2086
  shape $args
else
  shape 2000 300 5000
  shape 2000 768 5000
fi
echo "(targets: r maps equal to 1e-5, alphas equal; >= 3x sklearn; direct phase >= 70% of DGEMM peak)"
