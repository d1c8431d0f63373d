#!/usr/bin/env bash
# The cost of the live monitor: the same pipelines with and without
# `--monitor`, and with a client reading /api/stats and /metrics four times a
# second while they run. Figures are printed, never asserted; the target is
# at most 5 % slower with the monitor.
#   bench/monitor.sh [BUILD_DIR] [RUNS]        (default: build, 5)
#
# Pipelines: (a) gen_source -> passthrough -> null_sink, 1,000,000 x 64 B
# tensors at full speed: the runtime's own cost per message, where a monitor
# in the data path would show most; (b) gen_source -> spike_encoder (rate,
# 32 steps) -> null_sink, 20,000 x 784 B images: a heavier stage whose
# `spikes` output the monitor taps (each message passes through the tap).
# Timed as the wall time of the whole process and its CPU time (user + sys,
# every thread: the monitor's included; not the polling client's), RUNS runs
# of each variant, interleaved, medians printed. On a machine shared with
# other work the wall times are noisy (a stage waits for a core): there the
# CPU time is the steadier figure of what the monitor costs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
runs=${2:-5}
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
  - {id: gen, plugin: gen_source, params: {count: 1000000, bytes: 64}}
  - {id: pass, plugin: passthrough, inputs: [gen]}
  - {id: sink, plugin: null_sink, inputs: [pass]}
YAML
cat > "$tmp/enc.yaml" <<YAML
name: bench-encode
stages:
  - {id: gen, plugin: gen_source, params: {count: 20000, bytes: 784, fill: true}}
  - {id: enc, plugin: spike_encoder, inputs: [gen], params: {method: rate, steps: 32}}
  - {id: sink, plugin: null_sink, inputs: [enc]}
YAML
# A client polling the monitor while the run lasts (started once the URL is printed).
cat > "$tmp/poll.py" <<'PY'
import re, sys, time, urllib.request
err = sys.argv[1]
url = None
for _ in range(400):
    m = re.search(r"monitor: (http://\S+)", open(err).read())
    if m:
        url = m.group(1)
        break
    time.sleep(0.01)
while url:
    try:
        for p in ("api/stats", "metrics"):
            urllib.request.urlopen(url + p, timeout=5).read()
    except OSError:
        break
    time.sleep(0.25)
PY

TIMEFORMAT='%R %U %S'
run() { # file variant: appends "wall cpu" seconds to $tmp/t.<name>.<variant>
  local f=$1 v=$2 name
  name=$(basename "$f" .yaml)
  { time run_one "$f" "$v" 2>/dev/null; } 2>"$tmp/time"
  tail -n 1 "$tmp/time" | awk '{ printf "%.4f %.4f\n", $1, $2 + $3 }' >> "$tmp/t.$name.$v"
}
run_one() {
  local f=$1 v=$2
  case $v in
    off) "$myelin" run "$f" --quiet ;;
    on) "$myelin" run "$f" --quiet --monitor 0 2>/dev/null ;;
    client)
      : > "$tmp/err"
      "$myelin" run "$f" --quiet --monitor 0 2>"$tmp/err" &
      local pid=$!
      "$py" "$tmp/poll.py" "$tmp/err" &
      local poller=$!
      wait "$pid"
      kill "$poller" 2>/dev/null || true
      wait "$poller" 2>/dev/null || true ;;
  esac
}
median() { # file column
  awk -v c="$2" '{ print $c }' "$1" | sort -n |
    awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

for _ in $(seq "$runs"); do
  for f in pass enc; do
    for v in off on client; do run "$tmp/$f.yaml" $v; done
  done
done

echo "whole process, medians of $runs interleaved runs; $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for f in pass enc; do
  n=$([ $f = pass ] && echo 1000000 || echo 20000)
  label=$([ $f = pass ] && echo "gen_source -> passthrough -> null_sink, 64 B" || echo "gen_source -> spike_encoder -> null_sink")
  echo "== $label ($n messages)"
  off=$(median "$tmp/t.$f.off" 1)
  offc=$(median "$tmp/t.$f.off" 2)
  for v in off on client; do
    t=$(median "$tmp/t.$f.$v" 1)
    c=$(median "$tmp/t.$f.$v" 2)
    awk -v v="$v" -v t="$t" -v c="$c" -v n="$n" -v o="$off" -v oc="$offc" 'BEGIN {
      name = v == "off" ? "without --monitor" : v == "on" ? "--monitor, no client" : "--monitor + client 4/s"
      printf "  %-24s wall %7.3f s = %9.0f msgs/s %+6.1f %%   cpu %7.3f s %+6.1f %%\n", name, t, n / t,
             100 * (t / o - 1), c, 100 * (c / oc - 1) }'
  done
done
