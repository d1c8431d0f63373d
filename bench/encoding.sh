#!/bin/sh
# bench/encoding.sh — ridge encoding models: plugins/encoding/ridge.c vs sklearn.
#
# The workload of issue 9: T samples, F features x 5 FIR delays, V voxels,
# 10 alphas (logspace(-1, 8, 10)), 5 contiguous outer folds; per fold z-score
# X on the training rows, pick one alpha per voxel by exact leave-one-out
# (sklearn RidgeCV(alpha_per_target=True), cv=None), predict the held-out
# rows, Pearson r. Ours: ridge_encode() (driver bench/encoding_run.c). Peer:
# StandardScaler + RidgeCV per fold with Debian's /usr/bin/python3
# (bench/encoding_sklearn.py). Both are timed on the fit/score loop only,
# data in memory. Targets: the same r maps to 1e-5 and >= 3x faster.
# Usage: bench/encoding.sh [T F V]   (default 2000 768 20000)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
py=${MYELIN_PYTHON:-/usr/bin/python3}
T=${1:-2000}
F=${2:-768}
V=${3:-20000}
P=$((F * 5))
work=$(mktemp -d /tmp/myelin-bench-encoding.XXXXXX)
trap 'rm -rf "$work"' EXIT

# shellcheck disable=SC2046
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -I"$src/plugins/encoding" "$here/encoding_run.c" \
  "$src/plugins/encoding/ridge.c" -o "$work/encoding_run" \
  $(pkg-config --cflags --libs openblas lapacke) -lm

"$py" "$here/encoding_make.py" "$work" "$T" "$F" "$V"
# shellcheck disable=SC2046
set -- $("$work/encoding_run" "$work" "$T" "$P" "$V")
ours=$1 ours_cpu=$2
set -- $("$py" "$here/encoding_sklearn.py" "$work" "$T" "$P" "$V")
peer=$1 peer_cpu=$2
printf 'data: T=%s, F=%s x 5 delays = %s, V=%s, 10 alphas, 5 folds; %s BLAS threads; load %s\n' \
  "$T" "$((P / 5))" "$P" "$V" "${OPENBLAS_NUM_THREADS:-all}" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-44s %9.2f s wall %9.2f s cpu\n' "myelin ridge_encode" "$ours" "$ours_cpu"
printf '%-44s %9.2f s wall %9.2f s cpu\n' "sklearn StandardScaler + RidgeCV per fold" "$peer" "$peer_cpu"
printf 'speed-up: %.2fx wall, %.2fx cpu (target >= 3x)\n' "$(echo "$peer/$ours" | bc -l)" \
  "$(echo "$peer_cpu/$ours_cpu" | bc -l)"
"$py" "$here/encoding_compare.py" "$work" "$V"
echo "(target: r maps equal to 1e-5)"
