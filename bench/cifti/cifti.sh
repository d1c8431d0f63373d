#!/bin/sh
# bench/cifti/cifti.sh — CIFTI-2 dense time series decoding: myelin's cifti.c
# vs nibabel, on the same file, in one script.
#
# Writes an HCP-shaped .dtseries.nii (91282 grayordinates: 29696 + 29716
# cortical vertices + 31870 voxels, float32) of T TRs with nibabel
# (cifti_peer.py make), then decodes it REPEATS times into a float32 [T, V]
# matrix in C order with plugins/fmri_source/cifti.c (cifti_load.c) and with
# nibabel's nb.load(f).get_fdata(dtype=float32) (which leaves the matrix in
# the file's column-major order) and that plus np.ascontiguousarray (the C
# order myelin emits). Best of REPEATS, file in the page cache. Checks that
# myelin's matrix equals nibabel's bit for bit. Target: at least as fast as
# nibabel. Figures on a loaded machine are noisy: rerun on an idle one.
# Usage: bench/cifti/cifti.sh [T] [REPEATS]   (Debian's /usr/bin/python3 + nibabel)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
py=${MYELIN_PYTHON:-/usr/bin/python3}
T=${1:-300}
reps=${2:-5}
work=$(mktemp -d /tmp/myelin-bench-cifti.XXXXXX)
trap 'rm -rf "$work"' EXIT
fs=$src/plugins/fmri_source
# shellcheck disable=SC2046
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -I"$fs" $(pkg-config --cflags libxml-2.0) "$here/cifti_load.c" "$fs/cifti.c" \
  "$fs/gifti.c" "$fs/xml_util.c" "$fs/nifti.c" -o "$work/cifti_load" $(pkg-config --libs libxml-2.0 libarchive zlib) -lm
"$py" "$here/cifti_peer.py" make "$work/run.dtseries.nii" "$T"
mb=$(echo "$(stat -c %s "$work/run.dtseries.nii") / 1000000" | bc -l)
cat "$work/run.dtseries.nii" >/dev/null
set -- $("$work/cifti_load" "$work/run.dtseries.nii" "$reps" "$work/ours.f32")
ours=$1 rows=$2 cols=$3
set -- $("$py" "$here/cifti_peer.py" time "$work/run.dtseries.nii" "$reps" "$work/ours.f32")
nibf=$1 nibc=$2 same=$3
printf 'file: %s x %s float32 .dtseries.nii, %.1f MB\n' "$rows" "$cols" "$mb"
printf '%-44s %8.3f s  %7.0f MB/s\n' "myelin cifti.c -> [T, V] C order" "$ours" "$(echo "$mb / $ours" | bc -l)"
printf '%-44s %8.3f s  %7.0f MB/s\n' "nibabel get_fdata(float32) (F order)" "$nibf" "$(echo "$mb / $nibf" | bc -l)"
printf '%-44s %8.3f s  %7.0f MB/s\n' "nibabel get_fdata + ascontiguousarray" "$nibc" "$(echo "$mb / $nibc" | bc -l)"
printf 'speed-up vs nibabel get_fdata: %.2fx; vs C order: %.2fx; bit-exact: %s\n' \
  "$(echo "$nibf / $ours" | bc -l)" "$(echo "$nibc / $ours" | bc -l)" "$([ "$same" = 1 ] && echo yes || echo NO)"
[ "$same" = 1 ]
