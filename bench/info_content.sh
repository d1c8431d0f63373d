#!/bin/sh
# bench/info_content.sh — information content stage vs its peers.
#
#   bench/info_content.sh [N] [M] [TREF] [K_STATES] [P_PARCELS]
#
# Defaults are the issue's sizes: N = 400 parcels, M = 10,000 states,
# TREF = 2,400 reference TRs. Peers (Debian /usr/bin/python3):
#   - numpy closed form of the paper's energy (same maths, numpy/LAPACK);
#   - the paper's per-state method (scipy expm of the 2N Hamiltonian +
#     1000-step simulation per state, as min_cont_nrj.m), timed on K_STATES
#     states (default 3) and extrapolated to M;
#   - sklearn KernelDensity (the paper's tool), timed on P_PARCELS parcels
#     (default 8) and extrapolated to N.
# Everything runs single-threaded (OPENBLAS_NUM_THREADS=1) on the shared box.
# With MYELIN_BIN (or `myelin` on PATH) the whole pipeline
# pipelines/info_content.yaml also runs on the same data (rest = the
# reference series, one task run = the states; null: 10 permutations).
set -e
N=${1:-400}; M=${2:-10000}; TREF=${3:-2400}; K=${4:-3}; P=${5:-8}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
PY=${MYELIN_PYTHON:-/usr/bin/python3}
W=$(mktemp -d /tmp/ic-bench-XXXXXX)
trap 'rm -rf "$W"' EXIT
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

cc -std=c11 -D_GNU_SOURCE -O3 -ffp-contract=fast $(pkg-config --cflags openblas lapacke) \
   -I"$SRC/plugins/info_content" "$HERE/info_content_driver.c" "$SRC/plugins/info_content/ic_kernels.c" \
   -o "$W/driver" $(pkg-config --libs openblas lapacke) -lm

echo "info_content bench: N=$N parcels, M=$M states, TREF=$TREF reference TRs ($(getconf _NPROCESSORS_ONLN) cores shared, 1 thread)"
"$PY" "$HERE/info_content_peer.py" gen "$W" "$N" "$M" "$TREF"
"$W/driver" "$W" "$N" "$M" "$TREF" > "$W/ours.txt"
"$PY" "$HERE/info_content_peer.py" energy "$W" "$N" "$M" "$K" > "$W/energy.txt"
"$PY" "$HERE/info_content_peer.py" kde "$W" "$N" "$M" "$TREF" "$P" > "$W/kde.txt"

v() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
dec=$(v energy_decompose "$W/ours.txt"); sts=$(v energy_states "$W/ours.txt"); kde=$(v kde "$W/ours.txt")
ours_e=$(echo "$dec $sts" | awk '{ printf "%.4f", $1 + $2 }')
np_e=$(v numpy_closed_form "$W/energy.txt"); pap=$(v paper_per_state_extrapolated "$W/energy.txt")
sk=$(v sklearn_kde_extrapolated "$W/kde.txt")
echo
echo "minimum control energy, $M states (paper convention: c = 0.001, T = 10, mean u^2 over 1001 x N)"
printf "  %-44s %10s s   (decompose %s s, states %s s)\n" "myelin (dsyevr + one GEMM)" "$ours_e" "$dec" "$sts"
printf "  %-44s %10s s   speed-up %sx, max rel diff %s\n" "numpy closed form" "$np_e" \
  "$(echo "$np_e $ours_e" | awk '{ printf "%.1f", $1 / $2 }')" "$(v diff_closed_form "$W/energy.txt")"
printf "  %-44s %10s s   speed-up %sx, max rel diff %s (on %s states)\n" \
  "paper per-state expm (extrapolated from $K)" "$pap" \
  "$(echo "$pap $ours_e" | awk '{ printf "%.0f", $1 / $2 }')" "$(v diff_paper_method "$W/energy.txt")" "$K"
echo
echo "KDE information content, $N parcels x $TREF reference x $M states"
printf "  %-44s %10s s\n" "myelin (sorted window, vectorised exp)" "$kde"
printf "  %-44s %10s s   speed-up %sx, max rel diff %s (on %s parcels, %s s)\n" \
  "sklearn KernelDensity (extrapolated from $P)" "$sk" \
  "$(echo "$sk $kde" | awk '{ printf "%.1f", $1 / $2 }')" "$(v diff_sklearn "$W/kde.txt")" "$P" \
  "$(v sklearn_kde_subset "$W/kde.txt")"

BIN=${MYELIN_BIN:-$(command -v myelin || true)}
if [ -n "$BIN" ]; then
  "$PY" "$HERE/info_content_peer.py" mpk "$W" "$N" "$M" "$TREF"
  t0=$(date +%s.%N)
  DEMO="$W" "$BIN" run "$SRC/pipelines/info_content.yaml" --quiet
  t1=$(date +%s.%N)
  echo
  echo "pipeline (file_source -> info_content -> file_sink, + dataset connectome, null: 10)"
  printf "  %-44s %10s s   (rest %s TRs + task %s TRs, %s parcels)\n" "myelin run pipelines/info_content.yaml" \
    "$(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')" "$TREF" "$M" "$N"
  t0=$(date +%s.%N)
  DEMO="$W" "$BIN" run "$SRC/pipelines/info_content.yaml" --quiet --set info.threads=2
  t1=$(date +%s.%N)
  printf "  %-44s %10s s\n" "  the same with --set info.threads=2" "$(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')"
else
  echo
  echo "pipeline: skipped (set MYELIN_BIN to the myelin CLI of a build)"
fi
