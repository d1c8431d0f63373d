#!/bin/sh
# bench/fmri.sh — fMRI loading speed: fmri_source's NIfTI reader vs nibabel.
#
# Writes a 64x64x40x400 int16 .nii.gz (bench/fmri_make.py), then loads it
# into a float32 [T, V] matrix with plugins/fmri_source/nifti.c (driver
# bench/fmri_load.c, V in C order as fmri_source emits it) and with nibabel's
# get_fdata(dtype=float32) (bench/fmri_nibabel.py). MB/s counts the raw
# int16 image (64*64*40*400*2 bytes). Target: >= 1.5x nibabel.
# Usage: [MYELIN_BIN=build/bin/myelin] bench/fmri.sh [REPEATS]
#   (needs Debian's /usr/bin/python3 + nibabel; with MYELIN_BIN it also
#   times the whole fmri_source stage through `myelin run`)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
py=${MYELIN_PYTHON:-/usr/bin/python3}
reps=${1:-5}
work=$(mktemp -d /tmp/myelin-bench-fmri.XXXXXX)
trap 'rm -rf "$work"' EXIT

defl=""
if pkg-config --exists libdeflate; then defl="-DNIFTI_HAVE_LIBDEFLATE $(pkg-config --cflags --libs libdeflate)"; fi
# shellcheck disable=SC2086
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -I"$src/plugins/fmri_source" "$here/fmri_load.c" \
  "$src/plugins/fmri_source/nifti.c" -o "$work/fmri_load" -lz -lm $defl

"$py" "$here/fmri_make.py" "$work/run.nii.gz"
mb=$(echo "64*64*40*400*2/1000000" | bc -l)
# Alternate the contenders (one run each per round, best of REPEATS rounds)
# so a busy machine slows both alike.
best() { if [ -z "$1" ]; then echo "$2"; else echo "if ($2 < $1) $2 else $1" | bc -l; fi; }
ours="" streamed="" peer=""
i=0
while [ $i -lt "$reps" ]; do
  set -- $("$work/fmri_load" "$work/run.nii.gz" 1); ours=$(best "$ours" "$1")
  set -- $("$py" "$here/fmri_nibabel.py" "$work/run.nii.gz" 1); peer=$(best "$peer" "$1")
  set -- $("$work/fmri_load" "$work/run.nii.gz" 1 stream); streamed=$(best "$streamed" "$1")
  i=$((i + 1))
done
printf 'file: 64x64x40x400 int16 .nii.gz, %s MB raw, %s bytes compressed\n' \
  "$(printf '%.1f' "$mb")" "$(stat -c %s "$work/run.nii.gz")"
printf '%-34s %8.3f s %9.1f MB/s\n' "myelin nifti.c -> [T,V] f4" "$ours" "$(echo "$mb/$ours" | bc -l)"
printf '%-34s %8.3f s %9.1f MB/s\n' "myelin nifti.c, zlib streamed" "$streamed" "$(echo "$mb/$streamed" | bc -l)"
printf '%-34s %8.3f s %9.1f MB/s\n' "nibabel get_fdata(float32)" "$peer" "$(echo "$mb/$peer" | bc -l)"
printf 'speed-up: %.2fx one-shot, %.2fx streamed (target >= 1.5x)\n' "$(echo "$peer/$ours" | bc -l)" \
  "$(echo "$peer/$streamed" | bc -l)"

# The whole stage, when a build is given: myelin run fmri_source -> null_sink
# (includes building the run message; wall time of the CLI, best of REPEATS).
if [ -n "${MYELIN_BIN:-}" ] && [ -x "$MYELIN_BIN" ]; then
  cat >"$work/p.yaml" <<YAML
name: fmri-bench
stages:
  - {id: src, plugin: fmri_source, params: {path: $work/run.nii.gz}}
  - {id: sink, plugin: null_sink, inputs: [src]}
YAML
  best=1000
  i=0
  while [ $i -lt "$reps" ]; do
    t0=$(date +%s.%N)
    "$MYELIN_BIN" run --quiet "$work/p.yaml" >/dev/null
    t1=$(date +%s.%N)
    best=$(echo "t=$t1-$t0; if (t<$best) t else $best" | bc -l)
    i=$((i + 1))
  done
  printf '%-34s %8.3f s %9.1f MB/s\n' "myelin run fmri_source->null_sink" "$best" "$(echo "$mb/$best" | bc -l)"
fi
