#!/bin/sh
# bench/stream_files.sh — stream files (.mpk) at memory speed (issue 16 item
# 10): file_source and file_sink beside `cat` and Python's msgpack
# (Debian /usr/bin/python3, msgpack's C extension), then the whole ISC
# pipeline from the file beside numpy.
#
#   bench/stream_files.sh [BUILD_DIR] [S] [T] [V] [RUNS]
#
# Data: S `run` messages of float32 [T, V] (default 20 x 300 x 10,000: twenty
# 12 MB messages, 240 MB), laid out as file_sink writes them (payloads on
# multiples of 64 bytes of the file). The file is page-cached (read once
# before timing). Written files go to OUT_DIR (default: a fresh folder in
# /tmp, the same file system for every contender).
#
# Timing, the same for every contender: wall time of the whole process
# (start, load, work, exit), measured by this script around the command;
# the contenders alternate within each round, RUNS rounds (default 7), and
# the median is printed. MB/s = file size / that time.
#   read:  cat FILE > /dev/null | python: every message through
#          msgpack.Unpacker (each payload copied into a bytes object) |
#          myelin: file_source -> null_sink (messages delivered, payloads
#          mapped in place and not touched by null_sink: the stage that
#          uses them touches them, see the pipeline line)
#   copy:  cat FILE > OUT | python: Unpacker -> Packer -> write | myelin:
#          file_source -> file_sink (read, write by writev, atomic rename)
#   isc:   file -> leave-one-out ISC + Fisher-z mean -> .npy, one thread
#          each (isc threads: 1; OPENBLAS_NUM_THREADS=1 for numpy). The numpy
#          side reads with msgpack.Unpacker and runs bench/isc_peer.py's
#          isc_loo, a *vectorized transcription* of brainiak.isc.isc (the
#          real one loops over voxels in Python and is far slower).
# Figures are printed, never asserted. Targets: >= 3 GB/s read and write of
# large messages, >= 5x Python msgpack, and the ISC pipeline >= 5x numpy.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
BUILD=${1:-$SRC/build}
S=${2:-20}; T=${3:-300}; V=${4:-10000}; RUNS=${5:-7}
PY=${MYELIN_PYTHON:-/usr/bin/python3}
MYELIN=$BUILD/bin/myelin
W=$(mktemp -d /tmp/myelin-stream-bench-XXXXXX)
OUT=${OUT_DIR:-$W/out}
mkdir -p "$OUT"
trap 'rm -rf "$W" "$OUT/copy.mpk" "$OUT/copy-py.mpk" "$OUT/copy-cat.mpk"' EXIT
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

F=$W/runs.mpk
"$PY" "$HERE/stream_files_peer.py" gen "$F" "$S" "$T" "$V"
cat "$F" > /dev/null
SIZE=$(wc -c < "$F")

cat > "$W/read.yaml" <<EOF
name: read
stages:
  - {id: src, plugin: file_source, params: {path: $F}}
  - {id: sink, plugin: null_sink, inputs: [src]}
EOF
cat > "$W/copy.yaml" <<EOF
name: copy
stages:
  - {id: src, plugin: file_source, params: {path: $F}}
  - {id: sink, plugin: file_sink, inputs: [src], params: {path: $OUT/copy.mpk}}
EOF
cat > "$W/isc.yaml" <<EOF
name: isc
stages:
  - {id: src, plugin: file_source, params: {path: $F}}
  - {id: isc, plugin: isc, inputs: [src], params: {summary: mean, threads: 1}}
  - {id: out, plugin: npy_sink, inputs: [isc], params: {path: $W/ours.npy, field: summary}}
EOF

now() { date +%s%N; }
# time_cmd FILE CMD...: appends the command's wall seconds to FILE
time_cmd() {
  f=$1; shift
  t0=$(now); "$@"; t1=$(now)
  echo "$t0 $t1" | awk '{ printf "%.4f\n", ($2 - $1) / 1e9 }' >> "$f"
}
median() { sort -n "$1" | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

r=0
while [ $r -lt "$RUNS" ]; do
  time_cmd "$W/t.read.cat" sh -c "cat '$F' > /dev/null"
  time_cmd "$W/t.read.py" "$PY" "$HERE/stream_files_peer.py" read "$F"
  time_cmd "$W/t.read.my" "$MYELIN" run "$W/read.yaml" --quiet
  rm -f "$OUT/copy-cat.mpk" "$OUT/copy-py.mpk" "$OUT/copy.mpk"
  time_cmd "$W/t.copy.cat" sh -c "cat '$F' > '$OUT/copy-cat.mpk'"
  time_cmd "$W/t.copy.py" "$PY" "$HERE/stream_files_peer.py" copy "$F" "$OUT/copy-py.mpk"
  time_cmd "$W/t.copy.my" "$MYELIN" run "$W/copy.yaml" --quiet
  time_cmd "$W/t.isc.py" "$PY" "$HERE/stream_files_peer.py" isc "$F" "$W/numpy.npy"
  time_cmd "$W/t.isc.my" "$MYELIN" run "$W/isc.yaml" --quiet
  r=$((r + 1))
done

row() { # label timefile
  m=$(median "$2")
  printf "  %-44s %8.3f s  %7.0f MB/s\n" "$1" "$m" "$(echo "$SIZE $m" | awk '{ print $1 / $2 / 1e6 }')"
}
ratio() { echo "$(median "$1") $(median "$2")" | awk '{ printf "%.1f", $1 / $2 }'; }
echo "stream files: $S run messages of float32 [$T, $V] ($(echo "$SIZE" | awk '{ printf "%.1f MB", $1 / 1e6 }'), page-cached);"
echo "whole-process wall time, median of $RUNS alternating rounds; $(getconf _NPROCESSORS_ONLN) cores shared; written to $OUT"
echo "read (file -> nothing)"
row "cat > /dev/null" "$W/t.read.cat"
row "python msgpack.Unpacker" "$W/t.read.py"
row "myelin file_source -> null_sink" "$W/t.read.my"
echo "  myelin vs python: $(ratio "$W/t.read.py" "$W/t.read.my")x"
echo "copy (file -> file)"
row "cat > OUT" "$W/t.copy.cat"
row "python Unpacker -> Packer -> write" "$W/t.copy.py"
row "myelin file_source -> file_sink" "$W/t.copy.my"
echo "  myelin vs python: $(ratio "$W/t.copy.py" "$W/t.copy.my")x; myelin's copy byte-identical to the input: $(cmp -s "$F" "$OUT/copy.mpk" && echo yes || echo NO)"
echo "ISC pipeline (file -> leave-one-out ISC + Fisher-z mean -> .npy, 1 thread each)"
row "numpy (vectorized brainiak.isc transcription)" "$W/t.isc.py"
row "myelin file_source -> isc -> npy_sink" "$W/t.isc.my"
echo "  myelin vs numpy: $(ratio "$W/t.isc.py" "$W/t.isc.my")x; max |myelin - numpy| of the mean map: $("$PY" "$HERE/stream_files_peer.py" diff "$W/ours.npy" "$W/numpy.npy")"
