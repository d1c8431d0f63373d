#!/bin/sh
# bench/biograd.sh — BioGrad on Fashion-MNIST, beside its yardstick (exact
# backprop on the rate-equivalent network of the same architecture, same
# neuron, loss, learning rates and sample order) and a peer (sklearn's
# MLPClassifier, same hidden sizes, SGD, 1 sample per step as far as it goes).
#
#   bench/biograd.sh                 # 20000 train images x 3 epochs (a few minutes)
#   LIMIT=0 EPOCHS=10 bench/biograd.sh   # the full run
#   ARCHS="500 500,500" THREADS=2 bench/biograd.sh
#
# Prints one line per epoch and a summary. Numbers are written, never asserted.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
data=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
LIMIT=${LIMIT:-20000}
EPOCHS=${EPOCHS:-3}
THREADS=${THREADS:-1}
ARCHS=${ARCHS:-"500"}
LR=${LR:-0.002}
LR_OUT=${LR_OUT:-0.0001}
LR_DECAY=${LR_DECAY:-0.9}
export LR_DECAY
PY=${MYELIN_PYTHON:-/usr/bin/python3}
[ -f "$data/train-images-idx3-ubyte.gz" ] || { echo "no Fashion-MNIST in $data (apt install dataset-fashion-mnist)"; exit 0; }

work=$(mktemp -d /tmp/biograd-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O3 -std=c11 -D_GNU_SOURCE -I"$here/plugins/biograd" $(pkg-config --cflags openblas) \
  "$here/bench/biograd_fmnist.c" "$here/plugins/biograd/biograd_kernels.c" \
  -o "$work/fmnist" $(pkg-config --libs openblas) -lz -lm -lpthread

echo "# machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) (shared machine: other jobs compete)"
echo "# Fashion-MNIST, train limit ${LIMIT} (0 = 60000), ${EPOCHS} epochs, test 10000, 32 steps, lr ${LR}/${LR_OUT} x ${LR_DECAY} per epoch"

echo "## training throughput, 784-500-10, 10000 samples, 32 steps"
for t in 1 2; do
  "$work/fmnist" biograd "$data" 500 1 10000 "$LR" "$LR_OUT" "$t" 32 | sed "s/^/threads=$t  /"
done

for arch in $ARCHS; do
  echo "## 784-$(echo "$arch" | tr , -)-10"
  "$work/fmnist" biograd "$data" "$arch" "$EPOCHS" "$LIMIT" "$LR" "$LR_OUT" "$THREADS" 32 | tee "$work/bg.$arch"
  "$work/fmnist" backprop "$data" "$arch" "$EPOCHS" "$LIMIT" "$LR" "$LR_OUT" 1 | tee "$work/bp.$arch"
  if "$PY" -c 'import sklearn, numpy' 2>/dev/null; then
    "$PY" "$here/bench/biograd_peer.py" "$data" "$arch" "$EPOCHS" "$LIMIT" | tee "$work/sk.$arch"
  else
    echo "peer skipped: $PY lacks sklearn/numpy"
  fi
done

echo "## summary (last epoch)"
printf '%-16s %-10s %9s %12s %9s\n' arch learner test_acc samples/s wall_s
for arch in $ARCHS; do
  for f in bg bp sk; do
    [ -f "$work/$f.$arch" ] || continue
    tail -n 1 "$work/$f.$arch" | awk -v a="784-$arch-10" '{
      for (i = 1; i <= NF; i++) { if ($i == "test_acc") acc = $(i+1); if ($i == "samples_per_s") sps = $(i+1); if ($i == "wall_s") w = $(i+1) }
      printf "%-16s %-10s %9s %12s %9s\n", a, $1, acc, sps, w }'
  done
done
