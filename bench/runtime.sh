#!/usr/bin/env bash
# Runtime throughput: gen_source → passthrough → passthrough → null_sink,
# four threads, 64 B and 1 MiB tensors; GStreamer's equivalent pipeline
# (fakesrc ! queue ! identity ! queue ! fakesink) beside it when
# gst-launch-1.0 is installed. Figures are printed, never asserted.
#   bench/runtime.sh [BUILD_DIR]        (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
myelin=$build/bin/myelin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pipe() { # count bytes reuse
  cat > "$tmp/p.yaml" <<YAML
name: bench
stages:
  - {id: gen, plugin: gen_source, params: {count: $1, bytes: $2, reuse: $3}}
  - {id: p1, plugin: passthrough, inputs: [gen]}
  - {id: p2, plugin: passthrough, inputs: [p1]}
  - {id: sink, plugin: null_sink, inputs: [p2]}
YAML
  "$myelin" run "$tmp/p.yaml" --stats --quiet 2>&1 | awk '/^wall time/ {print $3}'
}

best() { # runs the pipeline 3 times, prints the best wall time
  local b=""
  for _ in 1 2 3; do
    local t; t=$(pipe "$@")
    if [ -z "$b" ] || awk -v a="$t" -v b="$b" 'BEGIN{exit !(a<b)}'; then b=$t; fi
  done
  echo "$b"
}

echo "== myelin: gen_source -> passthrough -> passthrough -> null_sink ($(nproc) cores)"
n=4000000
t=$(best $n 64 false)
awk -v n=$n -v t="$t" 'BEGIN{printf "64 B tensors      : %d msgs in %.3f s = %.0f msgs/s\n", n, t, n/t}'
n=20000
t=$(best $n 1048576 true)
awk -v n=$n -v t="$t" 'BEGIN{printf "1 MiB, shared     : %d msgs in %.3f s = %.0f msgs/s = %.1f GB/s effective (transport alone)\n", n, t, n/t, n*1048576/t/1e9}'
n=5000
t=$(best $n 1048576 false)
awk -v n=$n -v t="$t" 'BEGIN{printf "1 MiB, fresh each : %d msgs in %.3f s = %.0f msgs/s = %.1f GB/s (allocating and filling every payload)\n", n, t, n/t, n*1048576/t/1e9}'

if command -v gst-launch-1.0 >/dev/null 2>&1; then
  echo "== GStreamer $(gst-launch-1.0 --version | awk 'NR==1{print $NF}'): fakesrc ! queue ! identity ! queue ! fakesink"
  n=1000000
  s=$(date +%s.%N)
  gst-launch-1.0 -q fakesrc num-buffers=$n sizetype=fixed sizemax=64 ! queue ! identity ! queue ! fakesink sync=false >/dev/null
  e=$(date +%s.%N)
  awk -v n=$n -v s="$s" -v e="$e" 'BEGIN{printf "64 B buffers      : %d buffers in %.3f s = %.0f buffers/s\n", n, e-s, n/(e-s)}'
  n=20000
  s=$(date +%s.%N)
  gst-launch-1.0 -q fakesrc num-buffers=$n sizetype=fixed sizemax=1048576 ! queue ! identity ! queue ! fakesink sync=false >/dev/null
  e=$(date +%s.%N)
  awk -v n=$n -v s="$s" -v e="$e" 'BEGIN{printf "1 MiB buffers     : %d buffers in %.3f s = %.0f buffers/s = %.1f GB/s\n", n, e-s, n/(e-s), n*1048576/(e-s)/1e9}'
else
  echo "(gst-launch-1.0 not installed: apt-get install gstreamer1.0-tools for the peer run)"
fi
