#!/bin/sh
# bench/biograd/trajectory.sh — the biograd plugin's `variant: paper` against
# an independent numpy transcription of the authors' per-sample update
# (bench/biograd/paper_ref.py): same initial weights, same input spikes, same
# sleep noise; every parameter is compared after every update and every sleep
# phase. Prints one line per configuration. Needs a built tree (MYELIN_BIN,
# MYELIN_PLUGIN_PATH) and /usr/bin/python3 with numpy and msgpack.
#
#   bench/biograd/trajectory.sh
#   SAMPLES=1000 bench/biograd/trajectory.sh
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
PY=${MYELIN_PYTHON:-/usr/bin/python3}
BIN=${MYELIN_BIN:-$here/build/bin/myelin}
export MYELIN_PLUGIN_PATH=${MYELIN_PLUGIN_PATH:-$here/build/lib/myelin/plugins}
SAMPLES=${SAMPLES:-300}
"$PY" -c 'import numpy, msgpack' 2>/dev/null || { echo "skipped: $PY lacks numpy/msgpack"; exit 0; }
work=$(mktemp -d /tmp/biograd-traj-XXXXXX)
trap 'rm -rf "$work"' EXIT
run() {
  name=$1
  d="$work/$1"
  shift
  "$PY" "$here/bench/biograd/paper_ref.py" gen "$d" "$@"
  t0=$(date +%s.%N)
  "$BIN" run "$d/pipeline.yaml" --quiet
  t1=$(date +%s.%N)
  printf '%-10s %s\n' "$name" "$*"
  printf '%-10s ' ""
  "$PY" "$here/bench/biograd/paper_ref.py" check "$d"
  printf '%-10s myelin run: %.2f s\n' "" "$(echo "$t1 - $t0" | bc)"
}
run online --sizes 64,24,16,10 --samples "$SAMPLES" --batch 1 --lr 0.05
run batch4 --sizes 50,30,20,12,10 --samples "$SAMPLES" --batch 4 --steps 16 --soft-start 5 --lr 0.1 --sleep-lr 0.002
run mnistlike --sizes 196,100,10 --samples "$SAMPLES" --batch 16 --steps 20 --soft-start 5 --lr 0.02 \
  --sleep-steps 50 --sleep-batch 16 --sleep-lr 0.001
