#!/usr/bin/env bash
# bench/soak.sh [SECONDS] [BUILD_DIR] — live TCP soak (issue 12; not CI).
#
# tcp_source (listen) → file_sink for SECONDS (default 600) at SOAK_RATE
# messages/s (default 10000) from SOAK_GOOD steady producers (default 2),
# while a chaos producer keeps connecting, sending garbage or half messages
# and disconnecting (bench/soak_producer.py). The runtime's RSS is sampled
# every 5 s. At the end the pipeline is stopped with SIGINT (clean drain,
# exit 130) and bench/soak_check.py checks that every message of every
# steady producer is in the sink, in order, and prints the RSS summary.
set -uo pipefail
secs=${1:-600}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${2:-$root/build}
rate=${SOAK_RATE:-10000}
good=${SOAK_GOOD:-2}
py=${MYELIN_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$tmp/soak.yaml" <<YAML
name: soak
stages:
  - {id: in, plugin: tcp_source, params: {listen: "127.0.0.1:$port", max_message_bytes: 65536}}
  - {id: sink, plugin: file_sink, inputs: [in], params: {path: "$tmp/sink.mpk"}}
YAML
"$build/bin/myelin" run "$tmp/soak.yaml" --quiet --stats 2>"$tmp/myelin.err" &
pid=$!
sleep 1
: >"$tmp/rss.txt"
( t0=$(date +%s); while kill -0 $pid 2>/dev/null; do
    r=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null) && [ -n "$r" ] && echo "$(( $(date +%s) - t0 )) $r" >>"$tmp/rss.txt"
    sleep 5; done ) &
sampler=$!
echo "soak: ${secs}s at $rate msg/s from $good steady producers + chaos, port $port, pid $pid"
$py "$root/bench/soak_producer.py" "$port" "$secs" "$rate" "$good" "$tmp/report.json"
sleep 2
kill -INT $pid
wait $pid
rc=$?
kill $sampler 2>/dev/null; wait $sampler 2>/dev/null
echo "myelin exit code: $rc (130 = interrupted after a clean drain)"
grep -v "closing that connection\|middle of a message" "$tmp/myelin.err" | tail -15
echo "rejected-connection log lines: $(grep -c 'closing that connection' "$tmp/myelin.err")"
ls -l "$tmp/sink.mpk"
$py "$root/bench/soak_check.py" "$tmp/sink.mpk" "$tmp/report.json" "$tmp/rss.txt"
v=$?
[ "$rc" = 130 ] && exit $v || exit 1
