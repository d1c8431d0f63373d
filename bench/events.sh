#!/bin/sh
# bench/events.sh — event-camera decoding and binning: plugins/event_common
# (what event_source and to_frames run) vs numpy peers on the same files.
#
# bench/events/events_peer.py writes 5M-event N-MNIST .bin and EVT 2.0 .raw
# files, an 18M-event EVT 3.0 .raw (vectors, time-base loops), a 5M-record
# AEDAT 2.0 DAVIS346 file (APS samples and triggers among the events) and
# 5M-event AEDAT 4.0 files in 4096-event packets, uncompressed, LZ4 and Zstd
# (the peer needs python3-lz4 and python3-zstandard); each side
# decodes each file (best of 3, file in memory) and prints a checksum: the
# script says whether both decoded the same events. The numpy N-MNIST reader
# transcribes tonic.io.read_mnist_file's rules; tonic has no EVT reader of
# its own (it calls expelliarmus, not in Debian), so the EVT peers are
# vectorized numpy decoders written from Prophesee's format pages. Frames:
# N-MNIST recordings of 4000 events into 60 bins with ToFrame's rules (numpy:
# tonic's np.add.at per bin). Targets: >= 50 M events/s for N-MNIST and
# EVT 3.0 on one core; >= 20x the numpy peer. Figures are printed, never
# asserted. Usage: bench/events.sh [BUILD_DIR]   (default build/; needs
# /usr/bin/python3 with numpy)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
py=${MYELIN_PYTHON:-/usr/bin/python3}
work=$(mktemp -d /tmp/myelin-bench-events.XXXXXX)
trap 'rm -rf "$work"' EXIT

ec="$src/plugins/event_common"
build=${1:-$src/build}
[ -e "$build/lib/libmyelin.so" ] || { echo "bench/events.sh: no $build/lib/libmyelin.so (build first, or pass BUILD_DIR)" >&2; exit 1; }
[ -e "$build/lib/libevent_aedat4.a" ] || { echo "bench/events.sh: no $build/lib/libevent_aedat4.a (build event_source first)" >&2; exit 1; }
${CC:-cc} -std=c11 -D_GNU_SOURCE -O3 -I"$ec" -I"$src/runtime/include" "$here/events/events_decode.c" \
  "$ec/evdecode.c" "$ec/evtransform.c" "$build/lib/libevent_aedat4.a" -o "$work/events_decode" -L"$build/lib" \
  -Wl,-rpath,"$build/lib" -lmyelin -llz4 -lzstd -lxml2 -lstdc++ -lm

"$py" "$here/events/events_peer.py" make "$work"
printf '%-8s %12s %14s %14s %9s  %s\n' format events "myelin Mev/s" "numpy Mev/s" speed-up "same events"
for f in nmnist:nmnist.bin evt2:evt2.raw evt3:evt3.raw aedat2:aedat2.aedat aedat4:aedat4.aedat4 \
  aedat4:aedat4_lz4.aedat4 aedat4:aedat4_zstd.aedat4; do
  fmt=${f%%:*} file=$work/${f#*:}
  set -- $("$work/events_decode" decode "$fmt" "$file"); ot=$1 on=$2 oc=$3
  set -- $("$py" "$here/events/events_peer.py" decode "$fmt" "$file"); pt=$1 pn=$2 pc=$3
  same=no; [ "$on" = "$pn" ] && [ "$oc" = "$pc" ] && same=yes
  label=$fmt; case $f in *_lz4*) label=aedat4lz;; *_zstd*) label=aedat4zs;; esac
  printf '%-8s %12s %14.1f %14.1f %8.1fx  %s\n' "$label" "$on" "$(echo "$on/$ot/1000000" | bc -l)" \
    "$(echo "$pn/$pt/1000000" | bc -l)" "$(echo "$pt/$ot" | bc -l)" "$same"
done
set -- $("$work/events_decode" frames "$work/nmnist.bin" 60); ot=$1 on=$2
set -- $("$py" "$here/events/events_peer.py" frames "$work/nmnist.bin" 60); pt=$1 pn=$2
printf '%-8s %12s %14.1f %14.1f %8.1fx\n' "frames" "$on" "$(echo "$on/$ot/1000000" | bc -l)" \
  "$(echo "$pn/$pt/1000000" | bc -l)" "$(echo "$pt/$ot" | bc -l)"
