#!/bin/sh
# Rate-encode Fashion-MNIST's 60,000 training images at 32 steps and report
# images/s (target: >= 50,000 images/s on 2 cores), beside numpy doing the
# same work (bench/spike_encoder_peer.py).
#
#   bench/spike_encoder.sh [BUILD_DIR]      (default: build)
#
# Figures:
#   kernel   encode.c alone (bench/spike_encoder_kernel.c), 1 and 2 threads
#   pipeline `myelin run`: dataset -> spike_encoder -> null_sink, both as one
#            whole-array tensor split into rows by 2 encoder threads
#            (batch: true) and as 60,000 sample messages (one encoder thread,
#            dataset on another); wall time includes reading and gunzipping
#            the IDX file and building every spikes message
#   numpy    Bernoulli draws + per-image event lists, vectorized in blocks
#            of 256 images (on the first 10,000 images; it is much slower)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
BUILD=$(cd "${1:-$SRC/build}" && pwd)
DATA=${FMNIST:-/usr/share/datasets/fashion-mnist}
IMAGES=$DATA/train-images-idx3-ubyte.gz
LABELS=$DATA/train-labels-idx1-ubyte.gz
PY=${MYELIN_PYTHON:-/usr/bin/python3}
STEPS=32
[ -r "$IMAGES" ] || { echo "missing $IMAGES (apt install dataset-fashion-mnist)"; exit 1; }

WORK=$(mktemp -d /tmp/myelin-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM

echo "# spike_encoder rate coding, Fashion-MNIST train (60,000 x 784 px), $STEPS steps, $(nproc) cores"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine inflates wall time)"
cc -O2 -std=c11 -D_GNU_SOURCE -I"$SRC/plugins/spike_encoder" "$SRC/bench/spike_encoder_kernel.c" \
   "$SRC/plugins/spike_encoder/encode.c" -lz -lm -lpthread -o "$WORK/kernel"
"$WORK/kernel" "$IMAGES" $STEPS 1
"$WORK/kernel" "$IMAGES" $STEPS 2

run_pipeline() { # $1 label, $2 dataset params, $3 encoder params; env MALLOC_* passes through
  cat > "$WORK/p.yaml" <<YAML
name: bench
stages:
  - {id: data, plugin: dataset, params: {path: $IMAGES, labels: $LABELS, scale: 0.00392156862745098$2}}
  - {id: enc, plugin: spike_encoder, inputs: [data], params: {method: rate, steps: $STEPS$3}}
  - {id: sink, plugin: null_sink, inputs: [enc]}
YAML
  /usr/bin/time -f "cpu %U %S" -o "$WORK/cpu.txt" "$BUILD/bin/myelin" run "$WORK/p.yaml" --stats \
    > "$WORK/stats.txt" 2>&1
  wall=$(sed -n 's/^wall time: \([0-9.]*\) s.*/\1/p' "$WORK/stats.txt")
  n=$(awk '$1 == "sink" {print $3}' "$WORK/stats.txt")
  cpu=$(awk '$1 == "cpu" {print $2 + $3}' "$WORK/cpu.txt")
  awk -v l="$1" -v w="$wall" -v n="$n" -v c="$cpu" \
    'BEGIN {printf "pipeline %s images=%d seconds=%.3f images_per_s=%.0f cpu_seconds=%.2f images_per_cpu_s=%.0f\n",
            l, n, w, n / w, c, n / c}'
}
if [ -x "$BUILD/bin/myelin" ]; then
  run_pipeline "batch(2 threads)" ", whole: true" ", batch: true, threads: 2"
  run_pipeline "samples" "" ""
  # The same runs with glibc told not to return freed heap to the kernel at
  # once: 57 KB spikes messages freed on the sink thread otherwise make the
  # heap shrink and regrow (page faults: most of the samples run's sys time).
  export MALLOC_TRIM_THRESHOLD_=268435456 MALLOC_MMAP_THRESHOLD_=4194304
  run_pipeline "batch(2 threads),malloc-tuned" ", whole: true" ", batch: true, threads: 2"
  run_pipeline "samples,malloc-tuned" "" ""
  unset MALLOC_TRIM_THRESHOLD_ MALLOC_MMAP_THRESHOLD_
else
  echo "pipeline skipped: $BUILD/bin/myelin not built"
fi

if "$PY" -c 'import numpy' 2>/dev/null; then
  "$PY" "$SRC/bench/spike_encoder_peer.py" "$IMAGES" $STEPS 10000
else
  echo "numpy peer skipped: $PY has no numpy"
fi
