#!/usr/bin/env bash
# Runtime throughput: gen_source → passthrough → passthrough → null_sink,
# 64 B and 1 MiB tensors; GStreamer's equivalent pipeline
# (fakesrc ! queue ! identity ! queue ! fakesink) beside it when
# gst-launch-1.0 is installed. Figures are printed, never asserted.
#   bench/runtime.sh [BUILD_DIR] [RUNS]        (default: build, 3)
#
# Like with like: both sides are timed the same way, as the wall time of the
# whole process (start, plugin loading, init, run, exit) measured by this
# script around the command; the same message counts (1,000,000 x 64 B,
# 20,000 x 1 MiB); RUNS runs each, alternating, and the median is printed.
# Threads: myelin runs one thread per stage (4); GStreamer runs fakesrc's
# streaming thread plus one per queue (3); neither is limited further.
# Payloads: fakesrc allocates each buffer without filling it (filltype
# nothing); myelin's "shared" rows send one message over and over (no
# allocation), its "fresh" rows allocate and write every payload.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
runs=${2:-3}
myelin=$build/bin/myelin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

yaml() { # file count bytes reuse
  cat > "$1" <<YAML
name: bench
stages:
  - {id: gen, plugin: gen_source, params: {count: $2, bytes: $3, reuse: $4}}
  - {id: p1, plugin: passthrough, inputs: [gen]}
  - {id: p2, plugin: passthrough, inputs: [p1]}
  - {id: sink, plugin: null_sink, inputs: [p2]}
YAML
}

now() { date +%s%N; }
wall() { # file cmd...: appends the command's wall seconds to file
  local f=$1; shift
  local t0 t1; t0=$(now); "$@" > /dev/null; t1=$(now)
  echo "$t0 $t1" | awk '{ printf "%.4f\n", ($2 - $1) / 1e9 }' >> "$f"
}
median() { sort -n "$1" | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
report() { # label file count bytes
  awk -v l="$1" -v t="$(median "$2")" -v n="$3" -v b="$4" \
    'BEGIN { printf "  %-34s %8d msgs in %7.3f s = %9.0f msgs/s = %6.2f GB/s\n", l, n, t, n / t, n * b / t / 1e9 }'
}

gst=""
if command -v gst-launch-1.0 >/dev/null 2>&1; then gst=gst-launch-1.0; fi
gstpipe() { # count bytes
  "$gst" -q fakesrc num-buffers="$1" sizetype=fixed sizemax="$2" ! queue ! identity ! queue ! fakesink sync=false
}

yaml "$tmp/small.yaml" 1000000 64 false
yaml "$tmp/big_shared.yaml" 20000 1048576 true
yaml "$tmp/big_fresh.yaml" 20000 1048576 false
for _ in $(seq "$runs"); do
  wall "$tmp/t.small" "$myelin" run "$tmp/small.yaml" --quiet
  wall "$tmp/t.big_shared" "$myelin" run "$tmp/big_shared.yaml" --quiet
  wall "$tmp/t.big_fresh" "$myelin" run "$tmp/big_fresh.yaml" --quiet
  if [ -n "$gst" ]; then
    wall "$tmp/t.gst_small" gstpipe 1000000 64
    wall "$tmp/t.gst_big" gstpipe 20000 1048576
  fi
done

echo "whole-process wall time, median of $runs alternating runs; $(nproc) cores shared; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== myelin: gen_source -> passthrough -> passthrough -> null_sink (4 threads)"
report "64 B tensors" "$tmp/t.small" 1000000 64
report "1 MiB, shared (no allocation)" "$tmp/t.big_shared" 20000 1048576
report "1 MiB, fresh (allocated + written)" "$tmp/t.big_fresh" 20000 1048576
if [ -n "$gst" ]; then
  echo "== GStreamer $("$gst" --version | awk 'NR==1{print $NF}'): fakesrc ! queue ! identity ! queue ! fakesink (3 threads)"
  report "64 B buffers" "$tmp/t.gst_small" 1000000 64
  report "1 MiB buffers (allocated, not filled)" "$tmp/t.gst_big" 20000 1048576
  awk -v a="$(median "$tmp/t.gst_small")" -v b="$(median "$tmp/t.small")" 'BEGIN { printf "  64 B: myelin %.1fx GStreamer\n", a / b }'
else
  echo "(gst-launch-1.0 not installed: apt-get install gstreamer1.0-tools for the peer run)"
fi
