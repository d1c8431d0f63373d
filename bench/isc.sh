#!/bin/sh
# bench/isc.sh — leave-one-out ISC + Fisher-z mean: myelin's kernels vs numpy
# (Debian /usr/bin/python3).
#
#   bench/isc.sh [S] [T] [V] [THREADS] [RUNS] [NV]
#
# Defaults are the issue's sizes: 20 subjects x 300 TRs x 50,000 voxels,
# float32 (1.2 GB of input). Like with like: both sides are timed over the
# same phase (compute only: the input is loaded, the clock runs around ISC
# + summary), in separate processes, RUNS times each (default 3, alternating)
# with the median printed; THREADS defaults to 1 because numpy's nanmean and
# arithmetic are single-threaded (THREADS=2 prints a multi-threaded myelin
# figure, labelled as such).
# The peers (bench/isc_peer.py):
#   numpy vectorized  a vectorized TRANSCRIPTION of brainiak.isc.isc (same
#                     maths, np.delete + nanmean over the whole array): far
#                     faster than BrainIAK itself, the speed-up is against it.
#                     Its memory is its own, not BrainIAK's.
#   brainiak loop     BrainIAK's own algorithm (masked copy, then a Python
#                     loop over voxels with scipy's pearsonr), run on the
#                     first NV voxels (default 1000): its measured extra
#                     memory is BrainIAK's memory figure; its time is
#                     extrapolated to V (an estimate, printed as one).
# Memory: peak above the loaded input (VmHWM reset through
# /proc/self/clear_refs). Target (issue 8): >= 5x numpy's speed, extra
# memory <= 1.2x the input. Needs ~6 GB free for numpy's copies.
set -e
S=${1:-20}; T=${2:-300}; V=${3:-50000}; THREADS=${4:-1}; RUNS=${5:-3}; NV=${6:-1000}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
PY=${MYELIN_PYTHON:-/usr/bin/python3}
W=$(mktemp -d /tmp/isc-bench-XXXXXX)
trap 'rm -rf "$W"' EXIT
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

cc -std=c11 -D_GNU_SOURCE -O3 $(pkg-config --cflags openblas) -I"$SRC/plugins/isc" \
   "$HERE/isc_driver.c" "$SRC/plugins/isc/isc_kernels.c" -o "$W/driver" \
   $(pkg-config --libs openblas) -lpthread -lm

echo "isc bench: S=$S subjects, T=$T TRs, V=$V voxels, float32 ($(getconf _NPROCESSORS_ONLN) cores shared; $THREADS thread(s) for myelin, 1 for numpy; median of $RUNS)"
"$PY" "$HERE/isc_peer.py" gen "$W" "$S" "$T" "$V"
r=0
while [ $r -lt "$RUNS" ]; do
  "$W/driver" "$W" "$S" "$T" "$V" "$THREADS" 1 > "$W/ours.txt"
  "$PY" "$HERE/isc_peer.py" run "$W" "$S" "$T" "$V" > "$W/numpy.txt"
  "$PY" "$HERE/isc_peer.py" loop "$W" "$S" "$T" "$V" "$NV" > "$W/loop.txt"
  cat "$W/ours.txt" >> "$W/ours.all"; cat "$W/numpy.txt" >> "$W/numpy.all"; cat "$W/loop.txt" >> "$W/loop.all"
  r=$((r + 1))
done
"$PY" "$HERE/isc_peer.py" diff "$W" "$V" > "$W/diff.txt"

v() { awk -v k="$1" '$1 == k { print $2 }' "$2" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ours=$(v ours_seconds "$W/ours.all"); np=$(v numpy_seconds "$W/numpy.all")
oe=$(v ours_extra_bytes "$W/ours.all"); ne=$(v numpy_extra_bytes "$W/numpy.all"); inb=$(v input_bytes "$W/numpy.all")
lt=$(v loop_seconds_extrapolated "$W/loop.all"); le=$(v loop_extra_bytes "$W/loop.all")
mb() { echo "$1" | awk '{ printf "%.1f MB", $1 / 1e6 }'; }
ratio() { echo "$1 $2" | awk '{ printf "%.3f", $1 / $2 }'; }
echo
echo "leave-one-out ISC + Fisher-z mean, input $(mb "$inb")"
printf "  %-40s %9s s   extra memory %s (%sx input)\n" "myelin isc_loo + isc_summarize" "$ours" "$(mb "$oe")" "$(ratio "$oe" "$inb")"
printf "  %-40s %9s s   extra memory %s (%sx input; its own)\n" "numpy, vectorized transcription" "$np" "$(mb "$ne")" "$(ratio "$ne" "$inb")"
printf "  %-40s %9s s   extra memory %s (%sx input)\n" "brainiak.isc loop (time est. from $NV vox)" "$lt" "$(mb "$le")" "$(ratio "$le" "$inb")"
echo "  speed-up vs the vectorized transcription $(echo "$np $ours" | awk '{ printf "%.1f", $1 / $2 }')x (target >= 5x), vs BrainIAK's loop (estimate) $(echo "$lt $ours" | awk '{ printf "%.0f", $1 / $2 }')x; extra memory target <= 1.2x input"
echo "  max |myelin - numpy| of the Fisher mean map: $(v max_abs_diff "$W/diff.txt") (numpy works in float32)"
echo "  planted voxels mean ISC $(v planted_mean "$W/diff.txt"), noise voxels $(v noise_mean "$W/diff.txt")"
echo
echo "streaming leave-one-out (volume input): $(v stream_ms_per_tr "$W/ours.txt") ms per complete TR of $S subjects x $V voxels"
echo "  (TR budget of a scanner: ~1000-2000 ms); a map: $(v stream_result_ms "$W/ours.txt") ms"
