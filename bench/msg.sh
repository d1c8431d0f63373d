#!/bin/sh
# bench/msg.sh — message core rates beside peers (printed, never asserted).
#
#   ours:  bench/msg_bench.c (build+unref, measure, decode, decode+read)
#   peers: msgpack-c's own packer/unpacker (same binary), and Python's
#          msgpack (C extension) packing/unpacking the same message.
#   io:    myelin_read_file on a gzip file beside Python's gzip.open().read()
#          (GZ=path, default: Fashion-MNIST training images, 26 MB -> 47 MB).
#
# All figures are CPU time of the timing thread (CLOCK_THREAD_CPUTIME_ID in C,
# time.process_time() in Python), so a busy shared machine distorts them less.
#
# Usage: bench/msg.sh [BUILD_DIR] [ITERATIONS]
# Builds msg_bench against BUILD_DIR's libmyelin when it exists, otherwise
# compiles the message core sources directly.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${1:-}
n=${2:-2000000}
gz=${GZ:-/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz}
[ -r "$gz" ] || gz=""
out=$(mktemp -d /tmp/myelin-msgbench-XXXXXX)
trap 'rm -rf "$out"' EXIT
cflags="-std=c11 -D_GNU_SOURCE -O2 -I$src/runtime/include $(pkg-config --cflags msgpack)"
if [ -n "$build" ] && [ -e "$build/lib/libmyelin.so" ]; then
  cc $cflags "$here/msg_bench.c" -o "$out/msg_bench" -L"$build/lib" -Wl,-rpath,"$build/lib" \
     -lmyelin $(pkg-config --libs msgpack)
else
  cc $cflags "$here/msg_bench.c" "$src/runtime/src/msg.c" "$src/runtime/src/error.c" \
     "$src/runtime/src/io.c" -o "$out/msg_bench" $(pkg-config --libs msgpack zlib) -lpthread
fi
echo "== myelin message core ($n iterations; 64-byte |u1 tensor + kind, seq, t) =="
"$out/msg_bench" "$n" $gz

py=${MYELIN_PYTHON:-/usr/bin/python3}
if "$py" -c 'import msgpack' 2>/dev/null; then
  echo "== peer: Python msgpack $("$py" -c 'import msgpack; print(".".join(map(str, msgpack.version)))') (C extension) =="
  "$py" - "$n" <<'PY'
import sys, time, msgpack
n = max(int(sys.argv[1]) // 4, 1000)
payload = bytes(range(64))
def build(i):
    return msgpack.packb({"kind": "tensor", "seq": i, "t": i * 1e-3,
                          "data": {"dtype": "|u1", "shape": [64], "data": payload}})
t0 = time.process_time()
for i in range(n):
    build(i)
dt = time.process_time() - t0
print("%-28s %8.1f ns/msg  %7.2f M msg/s" % ("python packb (dict->bytes)", 1e9 * dt / n, n / dt / 1e6))
b = build(12345)
t0 = time.process_time()
for i in range(n):
    m = msgpack.unpackb(b)
    m["seq"]; m["data"]["data"]
dt = time.process_time() - t0
print("%-28s %8.1f ns/msg  %7.2f M msg/s" % ("python unpackb + read", 1e9 * dt / n, n / dt / 1e6))
PY
  if [ -n "$gz" ]; then
    "$py" - "$gz" <<'PY'
import gzip, sys, time
for r in range(3):
    t0 = time.process_time()
    d = gzip.open(sys.argv[1], "rb").read()
    dt = time.process_time() - t0
    print("python gzip.open().read(): %d bytes in %.1f ms (%.0f MB/s inflated)" % (len(d), 1e3 * dt, len(d) / dt / 1e6))
PY
  fi
else
  echo "(peer skipped: $py has no msgpack module)"
fi
