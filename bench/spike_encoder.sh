#!/bin/sh
# Rate-encode Fashion-MNIST training images at 32 steps and report images/s
# (target: >= 50,000 images/s on 2 cores), beside numpy doing the same work
# (bench/spike_encoder_peer.py).
#
#   [DATA=/usr/share/datasets/fashion-mnist] bench/spike_encoder.sh [BUILD_DIR] [N] [RUNS]
#
# Like with like: the kernel and numpy encode the same first N images
# (default 60,000, all of them) with ONE thread each, and both are timed over
# the same phase: encoding only, the images already loaded and scaled to
# [0, 1] (each program's own clock around that loop). Each runs RUNS times
# (default 3, alternating) and the median is printed; the ratio compares the
# medians. Also printed, as myelin-only figures (no numpy counterpart):
#   kernel   encode.c with 2 threads (same N, same phase)
#   pipeline `myelin run`: dataset (limit N) -> spike_encoder -> null_sink,
#            once as one whole-array tensor split into rows by 2 encoder
#            threads (batch: true) and once as N sample messages; the
#            scheduler's wall time (init to end of stream) includes reading
#            and gunzipping the IDX file and building every spikes message
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
BUILD=$(cd "${1:-$SRC/build}" && pwd)
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
N=${2:-60000}
RUNS=${3:-3}
IMAGES=$DATA/train-images-idx3-ubyte.gz
LABELS=$DATA/train-labels-idx1-ubyte.gz
PY=${MYELIN_PYTHON:-/usr/bin/python3}
STEPS=32
[ -r "$IMAGES" ] || { echo "missing $IMAGES (apt install dataset-fashion-mnist)"; exit 1; }

WORK=$(mktemp -d /tmp/myelin-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM

echo "# spike_encoder rate coding, the first $N Fashion-MNIST training images (784 px), $STEPS steps, $(nproc) cores"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine inflates wall time)"
cc -O2 -std=c11 -D_GNU_SOURCE -I"$SRC/plugins/spike_encoder" "$SRC/bench/spike_encoder_kernel.c" \
   "$SRC/plugins/spike_encoder/encode.c" -lz -lm -lpthread -o "$WORK/kernel"
"$WORK/kernel" "$IMAGES" $STEPS 2 "$N"

run_pipeline() { # $1 label, $2 dataset params, $3 encoder params; env MALLOC_* passes through
  cat > "$WORK/p.yaml" <<YAML
name: bench
stages:
  - {id: data, plugin: dataset, params: {path: $IMAGES, labels: $LABELS, limit: $N, scale: 0.00392156862745098$2}}
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
  : > "$WORK/k1.txt"; : > "$WORK/np.txt"
  r=0
  while [ $r -lt "$RUNS" ]; do
    "$WORK/kernel" "$IMAGES" $STEPS 1 "$N" | tee -a "$WORK/k1.txt"
    "$PY" "$SRC/bench/spike_encoder_peer.py" "$IMAGES" $STEPS "$N" | tee -a "$WORK/np.txt"
    r=$((r + 1))
  done
  med() { sed -n 's/.* seconds=\([0-9.]*\) .*/\1/p' "$1" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
  k=$(med "$WORK/k1.txt"); p=$(med "$WORK/np.txt")
  awk -v n="$N" -v k="$k" -v p="$p" -v r="$RUNS" 'BEGIN {
    printf "like with like (1 thread each, encoding phase, %d images, median of %d): kernel %.3f s (%.0f images/s), numpy %.3f s (%.0f images/s): %.1fx\n",
           n, r, k, n / k, p, n / p, p / k }'
else
  echo "numpy peer skipped: $PY has no numpy"
fi
