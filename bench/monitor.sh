#!/usr/bin/env bash
# The cost of the live monitor: the same pipelines with and without
# `--monitor`, and with a client on the page's WebSocket (watching the spikes
# raster) and reading /api/stats and /metrics four times a second. Figures
# are printed, never asserted; the target is at most 5 % slower with the
# monitor.
#   bench/monitor.sh [BUILD_DIR] [ROUNDS]        (default: build, 7; at least 5)
#
# Pipelines: (a) gen_source -> passthrough -> null_sink, 2,000,000 x 64 B
# tensors at full speed: the runtime's own cost per message (no port of it
# carries metrics, map or spikes: nothing is tapped, the monitor thread and
# its sampling are all there is); (b) gen_source -> spike_encoder (rate, 32
# steps) -> null_sink, 40,000 x 784 B images into ~200 KB `spikes` messages:
# every message passes the monitor's tap, and the client's raster makes the
# tap copy a few of them a second; (c) the same with 800,000 x 16 B inputs
# and 4 steps: ~400,000 small `spikes` messages a second through the tap,
# where a per-message cost of the tap would show most.
#
# Each round runs every variant once, in a rotating order (off/on/client,
# on/client/off, ...), so that a change of the machine's load hits all of
# them alike. Per round the overhead is variant/off - 1 of
#   run:  the stages' wall time (--stats "wall time": throughput, without
#         process start and plugin loading), also shown as messages/s;
#   cpu:  user + sys time of the whole process (every thread: the
#         monitor's included; not the client's).
# Printed: the median over the rounds and the spread (min .. max). On a
# machine shared with other work the wall times are noisy (a stage waits for
# a core): there the CPU time is the steadier figure.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
rounds=${2:-7}
[ "$rounds" -ge 5 ] || { echo "ROUNDS must be at least 5 (medians of fewer pairs say little)"; exit 1; }
myelin=$build/bin/myelin
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! "$myelin" run --help | grep -q -- --monitor; then
  echo "this myelin has no --monitor"; exit 1
fi
cat > "$tmp/pass.yaml" <<YAML
name: bench-pass
stages:
  - {id: gen, plugin: gen_source, params: {count: 2000000, bytes: 64}}
  - {id: pass, plugin: passthrough, inputs: [gen]}
  - {id: sink, plugin: null_sink, inputs: [pass]}
YAML
cat > "$tmp/enc.yaml" <<YAML
name: bench-encode
stages:
  - {id: gen, plugin: gen_source, params: {count: 40000, bytes: 784, fill: true}}
  - {id: enc, plugin: spike_encoder, inputs: [gen], params: {method: rate, steps: 32}}
  - {id: sink, plugin: null_sink, inputs: [enc]}
YAML
cat > "$tmp/small.yaml" <<YAML
name: bench-small-spikes
stages:
  - {id: gen, plugin: gen_source, params: {count: 800000, bytes: 16, fill: true}}
  - {id: enc, plugin: spike_encoder, inputs: [gen], params: {method: rate, steps: 4}}
  - {id: sink, plugin: null_sink, inputs: [enc]}
YAML
# A client while the run lasts (started once the URL is printed): the page's
# WebSocket (which watches the first spikes edge, as the page does) and the
# two HTTP endpoints four times a second. Python's standard library only.
cat > "$tmp/poll.py" <<'PY'
import base64, os, re, socket, sys, time, urllib.request
err = sys.argv[1]
url = None
for _ in range(400):
    m = re.search(r"monitor: http://([^/\s]+)/", open(err).read())
    if m:
        url = m.group(1)
        break
    time.sleep(0.01)
if not url:
    sys.exit(0)
host, port = url.rsplit(":", 1)
try:
    ws = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    ws.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (url, key)).encode())
    ws.setblocking(False)
except OSError:
    ws = None
while True:
    try:
        for p in ("api/stats", "metrics"):
            urllib.request.urlopen("http://%s/%s" % (url, p), timeout=5).read()
    except OSError:
        break
    try:  # read (and drop) the pushes
        while ws:
            got = ws.recv(1 << 20)
            if not got:
                break
            if os.environ.get("POLL_DEBUG"):
                sys.stderr.write("ws %d bytes, spikes %d\n" % (len(got), got.count(b'"type":"spikes"')))
    except (BlockingIOError, OSError):
        pass
    time.sleep(0.25)
PY

TIMEFORMAT='%R %U %S'
run() { # pipeline variant: appends "run_wall cpu" seconds to $tmp/t.<pipeline>.<variant>
  local f=$1 v=$2
  { time run_one "$tmp/$f.yaml" "$v"; } 2>"$tmp/time"
  local wall
  wall=$(awk '/^wall time:/ { print $3 }' "$tmp/err")
  [ -n "$wall" ] || { echo "no --stats from the $f/$v run:"; cat "$tmp/err"; exit 1; }
  tail -n 1 "$tmp/time" | awk -v w="$wall" '{ printf "%s %.4f\n", w, $2 + $3 }' >> "$tmp/t.$f.$v"
}
run_one() {
  local f=$1 v=$2
  case $v in
    off) "$myelin" run "$f" --quiet --stats 2>"$tmp/err" ;;
    on) "$myelin" run "$f" --quiet --stats --monitor 0 2>"$tmp/err" ;;
    client)
      : > "$tmp/err"
      "$myelin" run "$f" --quiet --stats --monitor 0 2>"$tmp/err" &
      local pid=$!
      "$py" "$tmp/poll.py" "$tmp/err" &
      local poller=$!
      wait "$pid"
      kill "$poller" 2>/dev/null || true
      wait "$poller" 2>/dev/null || true ;;
  esac
}
stats() { # values...: "median min max"
  printf '%s\n' "$@" | sort -g |
    awk '{ a[NR] = $1 } END { printf "%.2f %.2f %.2f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2, a[1], a[NR] }'
}

variants=(off on client)
for r in $(seq "$rounds"); do
  for f in pass enc small; do
    for k in 0 1 2; do run "$f" "${variants[$(((r + k) % 3))]}"; done
  done
done

echo "monitor overhead: $rounds rounds, each variant once per round in a rotating order"
echo "$(nproc) cores; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "per-round overhead vs. off, median [min .. max] in %; run = the stages' wall time, cpu = user+sys"
for f in pass enc small; do
  case $f in
    pass) n=2000000 label="gen_source -> passthrough -> null_sink, 64 B tensors" ;;
    enc) n=40000 label="gen_source -> spike_encoder -> null_sink, ~200 KB spikes" ;;
    small) n=800000 label="gen_source -> spike_encoder -> null_sink, ~600 B spikes" ;;
  esac
  echo "== $label ($n messages)"
  for v in off on client; do
    name=$([ $v = off ] && echo "without --monitor" || { [ $v = on ] && echo "--monitor, no client" || echo "--monitor + client"; })
    read -r wmed wmin wmax <<< "$(stats $(awk '{ print $1 }' "$tmp/t.$f.$v"))"
    read -r cmed _ _ <<< "$(stats $(awk '{ print $2 }' "$tmp/t.$f.$v"))"
    if [ $v = off ]; then
      printf '  %-22s run %6.3f s = %9.0f msgs/s [%.3f .. %.3f s]   cpu %6.3f s\n' "$name" "$wmed" \
        "$(awk -v n=$n -v t="$wmed" 'BEGIN { print n / t }')" "$wmin" "$wmax" "$cmed"
      continue
    fi
    read -r owmed owmin owmax <<< "$(stats $(paste -d' ' "$tmp/t.$f.$v" "$tmp/t.$f.off" | awk '{ print 100 * ($1 / $3 - 1) }'))"
    read -r ocmed ocmin ocmax <<< "$(stats $(paste -d' ' "$tmp/t.$f.$v" "$tmp/t.$f.off" | awk '{ print 100 * ($2 / $4 - 1) }'))"
    printf '  %-22s run %6.3f s = %9.0f msgs/s   overhead run %+6.1f %% [%+.1f .. %+.1f]   cpu %+6.1f %% [%+.1f .. %+.1f]\n' \
      "$name" "$wmed" "$(awk -v n=$n -v t="$wmed" 'BEGIN { print n / t }')" "$owmed" "$owmin" "$owmax" \
      "$ocmed" "$ocmin" "$ocmax"
  done
done

# What the monitor itself costs, independent of the machine's load: one run
# per pipeline and variant under `perf record` (call graphs), the share of
# the process's CPU samples taken by the monitor's thread (myelin-monitor:
# sampling, rendering, serving) and by the taps on the stages' threads
# (msg_tap_put and what it calls: the spikes previews' copies). What this
# does not see: the monitor's effect on the stages' own work (caches, the
# allocator), which the timings above bound.
if ! perf record -q -o "$tmp/probe.data" -- true >/dev/null 2>&1; then
  echo "(perf is not available or not permitted: no CPU attribution)"
  exit 0
fi
echo "share of the process's CPU samples attributable to the monitor (perf, one run each)"
for f in pass enc small; do
  for v in on client; do
    : > "$tmp/err"
    perf record -q -F 1999 --call-graph dwarf,4096 -o "$tmp/perf.data" -- \
      "$myelin" run "$tmp/$f.yaml" --quiet --monitor 0 2>"$tmp/err" &
    pid=$!
    poller=
    if [ $v = client ]; then "$py" "$tmp/poll.py" "$tmp/err" & poller=$!; fi
    wait "$pid"
    [ -z "$poller" ] || { kill "$poller" 2>/dev/null || true; wait "$poller" 2>/dev/null || true; }
    thread=$(perf report -i "$tmp/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null |
      awk '$2 == "myelin-monitor" { sub("%", "", $1); s += $1 } END { print s + 0 }')
    tap=$(perf report -i "$tmp/perf.data" --children --sort sym --stdio -g none 2>/dev/null |
      awk '$NF == "msg_tap_put" { sub("%", "", $1); s += $1 } END { print s + 0 }')
    printf '  %-6s %-22s %5.2f %% (monitor thread %.2f %%, taps %.2f %%)\n' "$f" \
      "$([ $v = on ] && echo "--monitor, no client" || echo "--monitor + client")" \
      "$(awk -v a="${thread:-0}" -v b="${tap:-0}" 'BEGIN { print a + b }')" "${thread:-0}" "${tap:-0}"
  done
done
