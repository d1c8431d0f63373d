#!/bin/sh
# bench/loihi.sh — loihi_sim throughput: samples/s on the lava-dl netx MNIST
# fixture (784-128-64-10 CUBA, 8-bit weights), 32 steps per sample + 3 flush
# steps, bit-accurate.
#
# MNIST itself is not on the machine: the inputs are Fashion-MNIST test
# images (/usr/share/datasets/fashion-mnist, Debian dataset-fashion-mnist),
# encoded with the netx tutorial's deterministic encoder (v += x/255, spike
# when v > 1, then v = 0; spike_encoder method: regular). They are denser
# than MNIST digits (~4800 input events per sample vs ~3000), so this is a
# harder load than the tutorial's. Accuracy printed is that of an MNIST net on
# Fashion images (meaningless, ~0.1); it is there to show both sides agree.
#
# Ours: loihi_sim_sample() from plugins/loihi_common (driver
# bench/loihi_run.c), encoding excluded, on 1 thread and on 2 threads (one
# simulator per thread, as two loihi_sim stages would run). Peer: the same
# Lava bit-accurate arithmetic in numpy, batched over all samples
# (bench/loihi_peer.py, Debian's /usr/bin/python3); it must produce the same
# predictions (agree=1.0000). Lava itself cannot be installed here.
# With MYELIN_BUILD set to a build folder that has the dataset and
# spike_encoder plugins, also runs the whole pipeline through `myelin run`.
# Target: >= 5,000 samples/s on 2 cores.
# Usage: bench/loihi.sh [N]   (default 2000 samples)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
py=${MYELIN_PYTHON:-/usr/bin/python3}
N=${1:-2000}
net=$src/tests/data/netx/trained_mnist_network.net   # lava-dl's; tests/data/README.md
data=/usr/share/datasets/fashion-mnist
work=$(mktemp -d /tmp/myelin-bench-loihi.XXXXXX)
trap 'rm -rf "$work"' EXIT

c="$src/plugins/loihi_common"
# shellcheck disable=SC2046
${CC:-cc} -std=c11 -D_GNU_SOURCE -O3 -I"$c" -I"$src/runtime/include" "$here/loihi_run.c" \
  "$c/loihi_sim_core.c" "$c/loihi_quant.c" "$c/loihi_hdf5.c" -o "$work/loihi_run" \
  $(pkg-config --cflags --libs hdf5) -lz -lpthread -lm

echo "data: $N Fashion-MNIST test images, 32 steps + 3 flush, net 784-128-64-10 ($(basename "$net"))"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (shared machine)"
ours=$("$work/loihi_run" "$net" "$data/t10k-images-idx3-ubyte.gz" "$data/t10k-labels-idx1-ubyte.gz" \
  "$N" 32 2 "$work/pred.bin")
peer=$("$py" "$here/loihi_peer.py" "$net" "$data/t10k-images-idx3-ubyte.gz" \
  "$data/t10k-labels-idx1-ubyte.gz" "$N" 32 "$work/pred.bin")
get() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
printf '%-52s %9s samples/s\n' "myelin loihi_sim kernel, 1 thread" "$(get "$ours" rate_1)"
printf '%-52s %9s samples/s\n' "myelin loihi_sim kernel, 2 threads" "$(get "$ours" rate_2)"
printf '%-52s %9s samples/s\n' "  (CPU-time rate per core, load-independent)" "$(get "$ours" cpu_rate_per_core)"
printf '%-52s %9s samples/s\n' "numpy batched Lava bit-accurate arithmetic (peer)" "$(get "$peer" rate)"
printf 'per sample: %s input events, %s spikes, %s synaptic ops\n' \
  "$(get "$ours" input_events_per_sample)" "$(get "$ours" spikes_per_sample)" "$(get "$ours" synops_per_sample)"
printf 'predictions equal to the peer: %s; accuracy (MNIST net on Fashion) ours %s, peer %s\n' \
  "$(get "$peer" agree)" "$(get "$ours" accuracy)" "$(get "$peer" accuracy)"
echo "(target: >= 5000 samples/s on 2 cores)"

if [ -n "${MYELIN_BUILD:-}" ] && [ -e "$MYELIN_BUILD/lib/myelin/plugins/spike_encoder.so" ] &&
  [ -e "$MYELIN_BUILD/lib/myelin/plugins/dataset.so" ]; then
  cat >"$work/p.yaml" <<YAML
name: loihi-bench
stages:
  - id: test
    plugin: dataset
    params: {format: idx, path: $data/t10k-images-idx3-ubyte.gz, labels: $data/t10k-labels-idx1-ubyte.gz,
             split: test, limit: $N, scale: 0.00392156862745098}
  - {id: enc, plugin: spike_encoder, inputs: [test], params: {method: regular, steps: 32}}
  - {id: sim, plugin: loihi_sim, inputs: {spikes: [enc]}, params: {net: $net}}
  - {id: sink, plugin: file_sink, inputs: [sim.metrics], params: {path: $work/metrics.mpk}}
YAML
  t0=$(date +%s.%N)
  "$MYELIN_BUILD/bin/myelin" run "$work/p.yaml" --quiet
  t1=$(date +%s.%N)
  "$MYELIN_BUILD/bin/myelin" cat "$work/metrics.mpk" --json
  printf 'whole pipeline (dataset -> spike_encoder -> loihi_sim): %.0f samples/s wall\n' \
    "$(echo "$N / ($t1 - $t0)" | bc -l)"
fi
