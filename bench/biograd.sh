#!/bin/sh
# bench/biograd.sh — BioGrad on Fashion-MNIST (Debian's dataset-fashion-mnist),
# for 784-500-10, 784-500-100-10 and 784-100-10 (the paper's Loihi case),
# each learner at the same budget (images x epochs, the test split scored
# after every epoch):
#
#   myelin    the biograd plugin, variant myelin (the default), through
#             pipelines/fashion_mnist_biograd.yaml (32 steps)
#   paper     the biograd plugin, variant paper (the authors' algorithm:
#             20 steps, batches of PAPER_BATCH, their hyper-parameters)
#   backprop  the yardstick: exact backprop on the rate-equivalent network of
#             the same size, per-sample SGD (bench/biograd/fmnist.c)
#   authors   the authors' own PyTorch code (bench/biograd/authors_run.py)
#             from a checkout of github.com/j0sh162/FederatedLearning-SNN:
#             AUTHORS_DIR, or cloned here when git can reach GitHub
#   sklearn   sklearn's MLPClassifier (Adam, minibatches of 32), when present
#
# Prints one line per learner, shape and epoch (test_acc, samples/s, and for
# the plugin its activity: spikes per neuron per step, synaptic ops per
# sample, spikes per neuron per step with no input), then a summary of the
# last epochs. Numbers are written, never asserted.
#
#   bench/biograd.sh                                   # full: 60000 x 3 epochs per learner and shape (hours on 2 cores)
#   EPOCHS=1 LEARNERS=paper bench/biograd.sh           # what plugins/biograd/README.md reports (one epoch of 60000)
#   LIMIT=5000 TEST_LIMIT=2000 EPOCHS=2 bench/biograd.sh   # a quick check
#   SHAPES="100" LEARNERS="myelin paper" bench/biograd.sh
#
# The authors' code is slow (~1-25 samples/s on 2 cores: per-synapse traces
# as [128 x out x in] tensors): AUTHORS_LIMIT / AUTHORS_TEST_LIMIT (default
# LIMIT / TEST_LIMIT) bound its budget; its samples/s is what the speed
# comparison needs.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA:-/usr/share/datasets/fashion-mnist}  # DATA, as the pipelines name it
LIMIT=${LIMIT:-0}
TEST_LIMIT=${TEST_LIMIT:-0}
EPOCHS=${EPOCHS:-3}
THREADS=${THREADS:-1}
SHAPES=${SHAPES:-"500 500,100 100"}
LEARNERS=${LEARNERS:-"myelin paper backprop authors sklearn"}
PAPER_BATCH=${PAPER_BATCH:-128}
PAPER_LR=${PAPER_LR:-0.001}
AUTHORS_LIMIT=${AUTHORS_LIMIT:-$LIMIT}
AUTHORS_TEST_LIMIT=${AUTHORS_TEST_LIMIT:-$TEST_LIMIT}
PY=${MYELIN_PYTHON:-/usr/bin/python3}
# OpenBLAS threads spin on a shared machine: one per learner unless told
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-$THREADS}
BIN=${MYELIN_BIN:-$here/build/bin/myelin}
export MYELIN_PLUGIN_PATH=${MYELIN_PLUGIN_PATH:-$here/build/lib/myelin/plugins}
[ -f "$data/train-images-idx3-ubyte.gz" ] || { echo "no Fashion-MNIST in $data (apt install dataset-fashion-mnist)"; exit 0; }
[ -x "$BIN" ] || { echo "build myelin first (cmake --build build): no $BIN"; exit 1; }

work=$(mktemp -d /tmp/biograd-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O3 -std=c11 -D_GNU_SOURCE -I"$here/plugins/biograd" $(pkg-config --cflags openblas) \
  "$here/bench/biograd/fmnist.c" "$here/plugins/biograd/biograd_kernels.c" \
  -o "$work/fmnist" $(pkg-config --libs openblas) -lz -lm -lpthread

echo "# machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: rates are what we got)"
echo "# Fashion-MNIST, train limit $LIMIT (0 = 60000), test limit $TEST_LIMIT (0 = 10000), $EPOCHS epochs, threads $THREADS"

# biograd through the shipped pipeline; one line per epoch from its metrics
plugin() { # name shape steps extra-sets...
  name=$1 shape=$2 steps=$3
  shift 3
  out="$work/$name.$shape"
  # shellcheck disable=SC2086
  "$BIN" run "$here/pipelines/fashion_mnist_biograd.yaml" --quiet \
    --set train.limit="$LIMIT" --set test.limit="$TEST_LIMIT" --set train.epochs="$EPOCHS" \
    --set enc_train.steps="$steps" --set enc_test.steps="$steps" --set "learn.hidden=[$shape]" \
    --set learn.threads="$THREADS" --set export.path="$out/net" --set metrics.path="$out.metrics.mpk" "$@" \
    >"$out.log" 2>&1 || { echo "$name $shape: myelin run failed:"; tail -3 "$out.log"; return 0; }
  "$BIN" cat "$out.metrics.mpk" --json | "$PY" -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line); v = m["values"]
    print("%s %s epoch %d train_acc %.4f test_acc %.4f samples_per_s %.0f spikes_per_neuron_step %.4f "
          "synops_per_sample %.0f silent_spikes_per_neuron_step %.4f" % (sys.argv[1], sys.argv[2], m["epoch"] + 1,
          v["train_acc"], v["test_acc"], v["samples_per_s"], v["spikes_per_neuron_step"], v["synops_per_sample"],
          v["silent_spikes_per_neuron_step"]))' "$name" "$shape" | tee "$work/$name.$shape.txt"
  grep -h "quantized (Loihi)" "$out.log" | sed "s/^.*test accuracy: /$name $shape loihi_export: /" || true
}

authors_dir=${AUTHORS_DIR:-}
case " $LEARNERS " in *" authors "*)
  if [ -z "$authors_dir" ] && command -v git >/dev/null &&
    git clone -q --depth 1 https://github.com/j0sh162/FederatedLearning-SNN "$work/authors" 2>/dev/null; then
    authors_dir="$work/authors"
  fi ;;
esac

for shape in $SHAPES; do
  echo "## 784-$(echo "$shape" | tr , -)-10"
  for l in $LEARNERS; do
    case $l in
    myelin) plugin myelin "$shape" 32 ;;
    paper)
      plugin paper "$shape" 20 --set learn.variant=paper --set learn.batch="$PAPER_BATCH" --set learn.lr="$PAPER_LR" ;;
    backprop)
      "$work/fmnist" backprop "$data" "$shape" "$EPOCHS" "$LIMIT" 0.002 0.0001 1 | tee "$work/backprop.$shape.txt" ;;
    authors)
      if [ -n "$authors_dir" ] && [ -f "$authors_dir/biograd/network_w_biograd.py" ] && "$PY" -c 'import torch' 2>/dev/null; then
        "$PY" "$here/bench/biograd/authors_run.py" "$authors_dir" "$data" "$shape" "$EPOCHS" "$AUTHORS_LIMIT" \
          "$AUTHORS_TEST_LIMIT" 20 "$THREADS" | tee "$work/authors.$shape.txt"
      else
        echo "authors skipped: set AUTHORS_DIR to a checkout of j0sh162/FederatedLearning-SNN (and install python3-torch)"
      fi ;;
    sklearn)
      if "$PY" -c 'import sklearn, numpy' 2>/dev/null; then
        "$PY" "$here/bench/biograd/peer.py" "$data" "$shape" "$EPOCHS" "$LIMIT" | tee "$work/sklearn.$shape.txt"
      else
        echo "sklearn skipped: $PY lacks sklearn"
      fi ;;
    esac
  done
done

echo "## summary (last epoch)"
printf '%-14s %-9s %9s %12s %10s %10s\n' shape learner test_acc samples/s spk/neur/st silent
for shape in $SHAPES; do
  for l in $LEARNERS; do
    [ -s "$work/$l.$shape.txt" ] || continue
    tail -n 1 "$work/$l.$shape.txt" | awk -v a="784-$(echo "$shape" | tr , -)-10" -v n="$l" '{
      acc = sps = spk = sil = "-"
      for (i = 1; i < NF; i++) {
        if ($i == "test_acc") acc = $(i+1); if ($i == "samples_per_s") sps = $(i+1)
        if ($i == "spikes_per_neuron_step") spk = $(i+1); if ($i == "silent_spikes_per_neuron_step") sil = $(i+1)
      }
      printf "%-14s %-9s %9s %12s %10s %10s\n", a, n, acc, sps, spk, sil }'
  done
done
