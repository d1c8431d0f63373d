#!/bin/sh
# bench/mpi.sh — strong scaling of ISC and encoding over MPI ranks, and a
# model of a 345-subject Narratives run from the measured per-subject costs.
#
#   bench/mpi.sh [S] [T] [NX NY NZ] [RANKS]
#
# Defaults are issue 23's sizes: 40 subjects x 300 TRs x 50,000 voxels
# (50 x 50 x 20), float32 (2.4 GB of NIfTI, written once by bench/mpi_make.py
# into $MPI_BENCH_DATA, default /tmp/myelin-mpi-bench), on RANKS="1 2 4"
# ranks. Needs an MPI build (-DMYELIN_MPI=ON): MYELIN (default build/bin/myelin)
# and its plugins. Both pipelines are the laptop ones plus `shard: subject`:
#   isc       fmri_source -> isc (leave-one-out, Fisher-z mean) -> npy_sink (rank 0: the group map)
#   encoding  file_source (word features) + fmri_source -> encoding -> npy_sink (one r map per subject)
# STAGES="isc" (or "encoding") runs one of the two; the model needs both.
# Printed per rank count: wall time, speed-up over 1 rank, the largest
# resident set of any rank (/usr/bin/time) next to the ISC target
# (own subjects + 2)·T·V·4 bytes, and whether the outputs equal the 1-rank
# outputs (bit for bit, or the largest difference).
#
# The machine (2 cores) is shared: ranks compete with everything else
# running, so speed-ups measured here are noisy, and runs of more ranks than
# cores (4) are oversubscribed: they show overhead, not speed-up.
#
# Measured once while writing this (S=8 subjects x 300 TRs x 50,000 voxels,
# ranks 1 and 2, isc/encoding from the branch that made them rank-aware, a
# loaded machine): isc 5.0 s -> 1.5 s (page cache and load make that 3.3x
# meaningless beyond "it scales"), max RSS per rank 563 -> 322 MB under the
# bound 600 -> 360 MB; encoding 151 s -> 76 s (1.99x), 403 -> 343 MB;
# outputs identical to 1 rank for both. Model from those: per subject of a
# 1,000 x 80,000 story ISC 3.4 s, encoding 101 s; at 16/64/256 ranks
# 7.9/2.8/1.5 GB per rank and 0.32/0.35/0.46 node-hours per story (ISC +
# encoding). The model assumes every cost linear in T·V (encoding's
# per-fold solves grow faster in T), one story with all 345 subjects, and the
# network figures it prints; rerun on a quiet machine before quoting it.
# ISC at the default size (STAGES=isc, 40 x 300 x 50,000, from main): 1/2/4
# ranks 22.9/8.7/12.2 s (2.6x at 2 ranks; 4 ranks on 2 cores oversubscribed),
# max RSS per rank 2490/1286/684 MB under the bound 2520/1320/720 MB, the
# group map identical to 1 rank's each time.
set -e
S=${1:-40}; T=${2:-300}; NX=${3:-50}; NY=${4:-50}; NZ=${5:-20}; RANKS=${6:-"1 2 4"}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
PY=${MYELIN_PYTHON:-/usr/bin/python3}
MYELIN=${MYELIN:-$SRC/build/bin/myelin}
V=$((NX * NY * NZ))
DATA=${MPI_BENCH_DATA:-/tmp/myelin-mpi-bench}/s$S-t$T-v$V
W=$(mktemp -d /tmp/mpi-bench-XXXXXX)
trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
[ -x "$MYELIN" ] || { echo "bench/mpi.sh: no myelin at $MYELIN (build with -DMYELIN_MPI=ON, or set MYELIN)"; exit 2; }
command -v mpirun >/dev/null || { echo "bench/mpi.sh: mpirun not found"; exit 2; }

if [ ! -f "$DATA/features.mpk" ]; then
  "$PY" "$HERE/mpi_make.py" "$DATA" --subjects "$S" --trs "$T" --grid "$NX" "$NY" "$NZ"
fi

cat > "$W/isc.yaml" <<EOF
name: bench-isc
stages:
  - {id: bold, plugin: fmri_source, params: {path: "$DATA/bids", shard: subject}}
  - {id: isc, plugin: isc, inputs: [bold], params: {summary: mean}}
  - {id: save, plugin: npy_sink, inputs: [isc.map], params: {path: "\${OUT}/isc.npy", field: summary}}
EOF
cat > "$W/encoding.yaml" <<EOF
name: bench-encoding
stages:
  - {id: words, plugin: file_source, params: {path: "$DATA/features.mpk"}}
  - {id: brain, plugin: fmri_source, params: {path: "$DATA/bids", shard: subject}}
  - id: encode
    plugin: encoding
    inputs: {features: [words], brain: [brain]}
    params: {delays: [0, 1, 2, 3, 4], pad: zero, folds: 5, alphas: [0.1, 10, 1000, 100000, 10000000], scale_y: zscore}
  - {id: save, plugin: npy_sink, inputs: [encode], params: {path: "\${OUT}/r_{subject}.npy"}}
EOF

# run NAME N: wall seconds into $W/NAME.N.wall, each rank's max RSS (kB) into $W/NAME.N.rss
run() {
  out="$W/$1.$2"; mkdir -p "$out"
  t0=$(date +%s.%N)
  OUT=$out mpirun --oversubscribe --bind-to none -x OUT -n "$2" sh -c \
    "exec /usr/bin/time -f 'rss %M' -o $out/rss.\$OMPI_COMM_WORLD_RANK $MYELIN run $W/$1.yaml --quiet" > "$out.log" 2>&1 ||
    { echo "bench/mpi.sh: $1 on $2 ranks failed:"; cat "$out.log"; exit 1; }
  echo "$(date +%s.%N) $t0" | awk '{ printf "%.2f\n", $1 - $2 }' > "$out.wall"
  cat "$out"/rss.* | awk '$1 == "rss" { if ($2 > m) m = $2 } END { print m }' > "$out.rss"
  rm -f "$out"/rss.*
}

# same DIR1 DIR2: "identical" or the largest absolute difference over the .npy files
same() {
  "$PY" - "$1" "$2" <<'EOF'
import glob, os, sys
import numpy as np
a, b = sys.argv[1], sys.argv[2]
names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(a, "*.npy")))
if not names or names != sorted(os.path.basename(p) for p in glob.glob(os.path.join(b, "*.npy"))):
    print("DIFFERENT FILES"); sys.exit()
worst, equal = 0.0, True
for n in names:
    x, y = np.load(os.path.join(a, n)), np.load(os.path.join(b, n))
    if x.shape != y.shape: print("DIFFERENT SHAPES", n); sys.exit()
    if x.tobytes() != y.tobytes():
        equal = False
        d = np.abs(x.astype(np.float64) - y.astype(np.float64))
        worst = max(worst, float(np.nanmax(d)) if np.isfinite(d).any() else float("nan"))
print("identical" if equal else "max |diff| %.3g" % worst)
EOF
}

echo "MPI bench: S=$S subjects x T=$T TRs x V=$V voxels, float32; ranks: $RANKS; $(getconf _NPROCESSORS_ONLN) cores, shared with other work (noisy)"
STAGES=${STAGES:-"isc encoding"}
for stage in $STAGES; do
  echo
  echo "$stage"
  printf "  %5s %9s %8s %16s %22s  %s\n" ranks "wall s" speedup "max RSS/rank" "ISC bound (own+2)TV4" "outputs vs 1 rank"
  for n in $RANKS; do
    run $stage "$n"
    wall=$(cat "$W/$stage.$n.wall"); rss=$(cat "$W/$stage.$n.rss")
    [ "$n" = "$(echo $RANKS | cut -d' ' -f1)" ] && base=$wall && basedir="$W/$stage.$n"
    own=$(( (S + n - 1) / n ))
    bound=$(echo "$own $T $V" | awk '{ printf "%.0f MB", ($1 + 2) * $2 * $3 * 4 / 1e6 }')
    [ $stage = isc ] || bound="-"
    printf "  %5s %9s %8s %13.0f MB %22s  %s\n" "$n" "$wall" "$(echo "$base $wall" | awk '{ printf "%.2fx", $1 / $2 }')" \
      "$(echo "$rss" | awk '{ print $1 * 1024 / 1e6 }')" "$bound" "$(same "$basedir" "$W/$stage.$n")"
  done
done

# ---- the model: 345 subjects of Narratives ------------------------------------
# Per-subject cost from the 1-rank runs (wall / S, which includes reading
# the runs from the page cache), scaled linearly in T·V to a story of
# 1,000 TRs x 80,000 voxels (both stages are linear in T·V at a fixed
# feature count); per-subject memory T·V·4 bytes; the reduction moves the
# [T, V] float64 sum along the chain and back (2·T·V·8 bytes per rank at
# BW bytes/s) plus one 1 MiB piece per rank of latency. Nodes: 64 cores and
# 256 GB each; a rank gets one core per busy stage (2).
b1=$(echo $RANKS | cut -d' ' -f1)
[ -f "$W/isc.$b1.wall" ] && [ -f "$W/encoding.$b1.wall" ] || exit 0
echo
echo "model: Narratives, 345 subjects hearing one story of 1,000 TRs x 80,000 voxels (from the $b1-rank runs above; noisy)"
awk -v S="$S" -v T="$T" -v V="$V" -v isc="$(cat "$W/isc.$b1.wall")" -v enc="$(cat "$W/encoding.$b1.wall")" \
    -v iscrss="$(cat "$W/isc.$b1.rss")" -v b1="$b1" 'BEGIN {
  NS = 345; NT = 1000; NV = 80000; k = (NT * NV) / (T * V); BW = 5e9; piece = 2e-4
  cores_node = 64; mem_node = 256e9; cores_rank = 2
  ti = isc * b1 / S * k; te = enc * b1 / S * k; subj = NT * NV * 4
  base = iscrss * 1024 - (S + 2) * T * V * 4; if (base < 2e8) base = 2e8   # runtime, queues, libraries
  printf "  per subject: ISC %.2f s, encoding %.2f s (scaled x%.2f from the measured %.2f s and %.2f s); %.0f MB of BOLD\n", ti, te, k, isc * b1 / S, enc * b1 / S, subj / 1e6
  printf "  %6s %8s %16s %14s %14s %12s %12s\n", "ranks", "subj/rank", "ISC mem/rank", "ISC wall", "encoding wall", "ranks/node", "node-hours"
  n = split("16 64 256", R, " ")
  for (i = 1; i <= n; i++) {
    r = R[i]; own = int((NS + r - 1) / r)
    mem = (own + 2) * subj + base
    red = 2 * NT * NV * 8 / BW + r * piece
    wi = own * ti + red; we = own * te + red
    per = int(cores_node / cores_rank); m = int(mem_node / mem); if (m < per) per = m; if (per < 1) per = 1
    nh = (r / per) * (wi + we) / 3600
    printf "  %6d %8d %13.1f GB %12.0f s %12.0f s %12d %12.2f\n", r, own, mem / 1e9, wi, we, per, nh
  }
  printf "  (assumed: %.0f GB/s between nodes, %.1f ms per 1 MiB piece, nodes of %d cores and %.0f GB, %d cores per rank;\n", BW / 1e9, piece * 1e3, cores_node, mem_node / 1e9, cores_rank
  printf "   node-hours cover ISC + encoding of one story; one process-wide base of %.0f MB per rank)\n", base / 1e6
}'
