#!/usr/bin/env bash
# Live streams over loopback: latency (p50/p99 from producer send until the
# message is back out of the relay) at 1,000 msg/s, and throughput for 64 B
# and 1 MiB messages. The relay is a myelin pipeline tcp_source → tcp_sink;
# the peer is GStreamer's tcpserversrc ! tcpclientsink moving the same bytes
# (when gst-launch-1.0 is installed). Figures printed, never asserted.
#   bench/live.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; kill $(jobs -p) 2>/dev/null || true' EXIT
cc -std=c11 -D_GNU_SOURCE -O2 -I"$here/runtime/include" "$here/bench/live_probe.c" -o "$tmp/probe" \
   -L"$build/lib" -Wl,-rpath,"$build/lib" -lmyelin -lpthread

myelin_relay() { # in out n bytes rate label
  cat > "$tmp/relay.yaml" <<YAML
name: relay
stages:
  - {id: in, plugin: tcp_source, params: {listen: "127.0.0.1:$1", eos_on_disconnect: true}}
  - {id: out, plugin: tcp_sink, inputs: [in], params: {connect: "127.0.0.1:$2"}}
YAML
  "$build/bin/myelin" run "$tmp/relay.yaml" --quiet &
  local pid=$!
  "$tmp/probe" "$1" "$2" "$3" "$4" "$5" "$6" || true
  wait $pid || true
}

gst_relay() { # the probe listens first: tcpclientsink connects when it starts
  "$tmp/probe" "$1" "$2" "$3" "$4" "$5" "$6" &
  local probe=$!
  sleep 0.3
  gst-launch-1.0 -q tcpserversrc host=127.0.0.1 port="$1" ! tcpclientsink host=127.0.0.1 port="$2" sync=false >/dev/null 2>&1 &
  local pid=$!
  wait $probe || true
  kill $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
}

echo "== loopback relay, $(nproc) cores (latency = producer send -> back out of the relay)"
p=$((30000 + RANDOM % 20000))
myelin_relay $p $((p+1)) 5000 64 1000 "myelin"
myelin_relay $((p+2)) $((p+3)) 200000 64 0 "myelin"
myelin_relay $((p+4)) $((p+5)) 3000 1048576 0 "myelin"
if command -v gst-launch-1.0 >/dev/null 2>&1; then
  gst_relay $((p+6)) $((p+7)) 5000 64 1000 "gstreamer"
  gst_relay $((p+8)) $((p+9)) 200000 64 0 "gstreamer"
  gst_relay $((p+10)) $((p+11)) 3000 1048576 0 "gstreamer"
else
  echo "(gst-launch-1.0 not installed: apt-get install gstreamer1.0-tools for the peer run)"
fi
