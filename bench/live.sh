#!/usr/bin/env bash
# Live streams over loopback: latency (p50/p99 from producer send until the
# message is back out of the relay) at 1,000 msg/s, and throughput for 64 B
# and 1 MiB messages. The relay is a myelin pipeline tcp_source → tcp_sink;
# the peer is GStreamer's tcpserversrc ! tcpclientsink moving the same bytes
# (when gst-launch-1.0 is installed). Figures printed, never asserted.
#
# tcp_sink batches small messages while more input is queued (host->pending,
# ABI 1.1). "before" is the same relay with batch_bytes: 0, every message
# sent on its own as tcp_sink 1.0 did; given BEFORE_BUILD_DIR (a build of an
# older commit, e.g. from `git worktree add /tmp/wt <commit>`), that build's
# binaries run too, labelled "myelin-old". Throughput runs REPEAT times
# (default 3): the machine is shared, look at the best and the spread.
#   bench/live.sh [BUILD_DIR] [BEFORE_BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
before=${2:-}
repeat=${REPEAT:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; kill $(jobs -p) 2>/dev/null || true' EXIT
cc -std=c11 -D_GNU_SOURCE -O2 -I"$here/runtime/include" "$here/bench/live_probe.c" -o "$tmp/probe" \
   -L"$build/lib" -Wl,-rpath,"$build/lib" -lmyelin -lpthread

myelin_relay() { # in out n bytes rate label [extra tcp_sink params] [build dir]
  cat > "$tmp/relay.yaml" <<YAML
name: relay
stages:
  - {id: in, plugin: tcp_source, params: {listen: "127.0.0.1:$1", eos_on_disconnect: true}}
  - {id: out, plugin: tcp_sink, inputs: [in], params: {connect: "127.0.0.1:$2"${7:-}}}
YAML
  "${8:-$build}/bin/myelin" run "$tmp/relay.yaml" --quiet &
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
echo "   myelin = tcp_sink batching (default batch_bytes 256 KiB); myelin-b0 = batch_bytes: 0 (1.0 behaviour)"
p=$((30000 + RANDOM % 10000))
next() { p=$((p + 2)); }
gst=0
command -v gst-launch-1.0 >/dev/null 2>&1 && gst=1
echo "-- 64 B at 1,000 msg/s (target p99 < 1 ms)"
myelin_relay $p $((p+1)) 5000 64 1000 "myelin"; next
myelin_relay $p $((p+1)) 5000 64 1000 "myelin-b0" ", batch_bytes: 0"; next
[ -n "$before" ] && { myelin_relay $p $((p+1)) 5000 64 1000 "myelin-old" "" "$before"; next; }
[ $gst = 1 ] && { gst_relay $p $((p+1)) 5000 64 1000 "gstreamer"; next; }
echo "-- 64 B as fast as possible (throughput)"
for _ in $(seq "$repeat"); do
  myelin_relay $p $((p+1)) 200000 64 0 "myelin"; next
  myelin_relay $p $((p+1)) 200000 64 0 "myelin-b0" ", batch_bytes: 0"; next
  [ -n "$before" ] && { myelin_relay $p $((p+1)) 200000 64 0 "myelin-old" "" "$before"; next; }
  [ $gst = 1 ] && { gst_relay $p $((p+1)) 200000 64 0 "gstreamer"; next; }
done
echo "-- 1 MiB as fast as possible (sent directly, never copied into the batch)"
myelin_relay $p $((p+1)) 3000 1048576 0 "myelin"; next
[ -n "$before" ] && { myelin_relay $p $((p+1)) 3000 1048576 0 "myelin-old" "" "$before"; next; }
[ $gst = 1 ] && { gst_relay $p $((p+1)) 3000 1048576 0 "gstreamer"; next; }
[ $gst = 1 ] || echo "(gst-launch-1.0 not installed: apt-get install gstreamer1.0-tools for the peer run)"
true
