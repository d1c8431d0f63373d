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

v() { awk -v k="$1" -v c="${3:-2}" '$1 == k { print $c }' "$2"; }   # column 2 wall, 3 cpu
ratio() { echo "$1 $2" | awk '{ printf "%.1f", $1 / $2 }'; }
add() { echo "$1 $2" | awk '{ printf "%.4f", $1 + $2 }'; }
O="$W/ours.txt"; E="$W/energy.txt"; K_="$W/kde.txt"
ow=$(add "$(v energy_decompose "$O")" "$(v energy_states "$O")")
oc=$(add "$(v energy_decompose "$O" 3)" "$(v energy_states "$O" 3)")
kw=$(v kde "$O"); kc=$(v kde "$O" 3)
row() { printf "  %-46s %10s %10s   %s\n" "$1" "$2" "$3" "$4"; }
echo
echo "Times in seconds, wall and process CPU (the box is shared: CPU time is the"
echo "steadier figure; speed-ups are CPU / CPU)."
echo
echo "minimum control energy, $M states (paper convention: c = 0.001, T = 10, mean u^2 over 1001 x N)"
row "" "wall" "cpu" ""
row "myelin (dsyevr + one GEMM)" "$ow" "$oc" "(decompose $(v energy_decompose "$O" 3) + states $(v energy_states "$O" 3) cpu)"
row "numpy closed form" "$(v numpy_closed_form "$E")" "$(v numpy_closed_form "$E" 3)" \
  "speed-up $(ratio "$(v numpy_closed_form "$E" 3)" "$oc")x, max rel diff $(v diff_closed_form "$E")"
row "paper per-state expm (extrapolated from $K)" "$(v paper_per_state_extrapolated "$E")" \
  "$(v paper_per_state_extrapolated "$E" 3)" \
  "speed-up $(ratio "$(v paper_per_state_extrapolated "$E" 3)" "$oc")x, max rel diff $(v diff_paper_method "$E") (on $K states)"
echo
echo "KDE information content, $N parcels x $TREF reference x $M states"
row "myelin (sorted window, vectorised exp)" "$kw" "$kc" ""
row "sklearn KernelDensity (extrapolated from $P)" "$(v sklearn_kde_extrapolated "$K_")" \
  "$(v sklearn_kde_extrapolated "$K_" 3)" \
  "speed-up $(ratio "$(v sklearn_kde_extrapolated "$K_" 3)" "$kc")x, max rel diff $(v diff_sklearn "$K_") (on $P parcels)"

BIN=${MYELIN_BIN:-$(command -v myelin || true)}
if [ -n "$BIN" ]; then
  "$PY" "$HERE/info_content_peer.py" mpk "$W" "$N" "$M" "$TREF"
  echo
  echo "pipeline (file_source -> info_content -> file_sink, + dataset connectome, null: 10;"
  echo "rest $TREF TRs + task $M TRs, $N parcels)"
  for th in 1 2; do
    if [ -x /usr/bin/time ]; then
      DATA="$W" OUT="$W" /usr/bin/time -f "%e %U %S" -o "$W/time.txt" "$BIN" run "$SRC/pipelines/info_content.yaml" \
        --quiet --set info.threads=$th
      row "myelin run (threads: $th)" "$(awk '{ print $1 }' "$W/time.txt")" \
        "$(awk '{ printf "%.2f", $2 + $3 }' "$W/time.txt")" ""
    else
      t0=$(date +%s.%N)
      DATA="$W" OUT="$W" "$BIN" run "$SRC/pipelines/info_content.yaml" --quiet --set info.threads=$th
      t1=$(date +%s.%N)
      row "myelin run (threads: $th)" "$(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')" "-" ""
    fi
  done
else
  echo
  echo "pipeline: skipped (set MYELIN_BIN to the myelin CLI of a build)"
fi
