#!/usr/bin/env bash
# Live streams over loopback: latency (p50/p99 from producer send until the
# message is back out of the relay) at 1,000 msg/s, and throughput for 64 B
# and 1 MiB messages. The relay is a myelin pipeline tcp_source → tcp_sink;
# the peer is GStreamer's tcpserversrc ! tcpclientsink moving the same bytes
# (when gst-launch-1.0 is installed). Figures printed, never asserted.
#
# The relay needs four busy threads (probe sender and receiver, tcp_source,
# tcp_sink), so on 2 cores it measures scheduling as much as the sink. The
# last section measures tcp_sink alone: gen_source -> tcp_sink -> a reader
# draining 1 MiB per read (python3, stdlib only), beside GStreamer's
# fakesrc ! tcpclientsink writing the same number of 192 B buffers.
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
  "$tmp/probe" "$1" "$2" "$3" "$4" "$5" "$6" | tee -a "$tmp/lines" || true
  wait $pid || true
}

gst_relay() { # the probe listens first: tcpclientsink connects when it starts
  "$tmp/probe" "$1" "$2" "$3" "$4" "$5" "$6" | tee -a "$tmp/lines" &
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
medians() { # message size: the median (min .. max) msgs/s of each label's throughput lines
  echo "-- over the $repeat rounds: median (min .. max) msgs/s"
  for label in $(awk -v b="$1" '$5 == "B:" && $4 == b { print $1 }' "$tmp/lines" | sort -u); do
    awk -v l="$label" -v b="$1" '$1 == l && $5 == "B:" && $4 == b { print $6 }' "$tmp/lines" | sort -n |
      awk -v l="$label" '{ a[NR] = $1 }
        END { printf "%-10s median %9.0f  (%.0f .. %.0f, %d runs)\n", l, a[int((NR + 1) / 2)], a[1], a[NR], NR }'
  done
}
medians 64
cat > "$tmp/drain.py" <<'PY'
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
c, _ = s.accept()
n, t0, buf = 0, time.monotonic(), bytearray(1 << 20)
while True:
    k = c.recv_into(buf)
    if not k:
        break
    n += k
dt = time.monotonic() - t0
msg = int(sys.argv[2])
line = "%-10s %8d x %8d B: %9.0f msgs/s %8.3f GB/s%s" % (sys.argv[3], n // msg, msg, n / msg / dt, n / dt / 1e9,
       "" if n == msg * int(sys.argv[4]) else "  (INCOMPLETE)")
print(line)
with open(sys.argv[5], "a") as f:
    f.write(line + "\n")
PY
py=/usr/bin/python3
[ -x $py ] || py=python3
sink_alone() { # port label [extra tcp_sink params] [build dir]; 1,000,000 messages of 192 B
  cat > "$tmp/send.yaml" <<YAML
name: send
stages:
  - {id: gen, plugin: gen_source, params: {count: 1000000, bytes: 64, reuse: true}}
  - {id: out, plugin: tcp_sink, inputs: [gen], params: {connect: "127.0.0.1:$1"${3:-}}}
YAML
  $py "$tmp/drain.py" "$1" 192 "$2" 1000000 "$tmp/lines" &
  local d=$!
  sleep 0.3
  if ! "${4:-$build}/bin/myelin" run "$tmp/send.yaml" --quiet; then
    echo "$2: the pipeline failed (a build without gen_source?)"
    kill $d 2>/dev/null || true
  fi
  wait $d 2>/dev/null || true
}
gst_sink_alone() { # port
  $py "$tmp/drain.py" "$1" 192 gstreamer 1000000 "$tmp/lines" &
  local d=$!
  sleep 0.3
  gst-launch-1.0 -q fakesrc num-buffers=1000000 sizetype=fixed sizemax=192 filltype=zero ! \
    tcpclientsink host=127.0.0.1 port="$1" sync=false >/dev/null 2>&1 || true
  wait $d || true
}
echo "-- tcp_sink alone: 1,000,000 x 192 B messages (64 B payload) into a draining reader"
for _ in $(seq "$repeat"); do
  sink_alone $p "myelin"; next
  sink_alone $p "myelin-b0" ", batch_bytes: 0"; next
  [ -n "$before" ] && { sink_alone $p "myelin-old" "" "$before"; next; }
  [ $gst = 1 ] && { gst_sink_alone $p; next; }
done
medians 192
echo "-- 1 MiB as fast as possible (sent directly, never copied into the batch)"
myelin_relay $p $((p+1)) 3000 1048576 0 "myelin"; next
[ -n "$before" ] && { myelin_relay $p $((p+1)) 3000 1048576 0 "myelin-old" "" "$before"; next; }
[ $gst = 1 ] && { gst_relay $p $((p+1)) 3000 1048576 0 "gstreamer"; next; }
[ $gst = 1 ] || echo "(gst-launch-1.0 not installed: apt-get install gstreamer1.0-tools for the peer run)"
true
