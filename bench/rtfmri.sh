#!/bin/sh
# bench/rtfmri.sh — real-time fMRI: plugins/realign's rigid-body estimator
# beside dipy's rigid registration on the same pairs.
#
# bench/rtfmri/realign_driver.c moves a real EPI volume (nibabel's
# example4d, volume 0: 128x96x24, tests/data/realign/) by N random rigid
# motions of up to 3 mm / 3 deg (tricubic), then times estimate + resample
# per volume from the identity (the plugin starts from the previous volume's
# estimate, which is faster online) and reports p50/p99 and the worst
# parameter error; bench/../tests/realign/realign_peer.py runs dipy (mutual
# information, translation then rigid) on 3 of the pairs. Target: >= 20x
# faster than the Python peer at equal or better accuracy.
# Not measured here (not done yet): the file-complete -> feedback-sent
# latency of pipelines/rtfmri.yaml over 300 volumes.
# Usage: bench/rtfmri.sh [N]   (needs Debian's /usr/bin/python3 + dipy)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
py=${MYELIN_PYTHON:-/usr/bin/python3}
n=${1:-50}
work=$(mktemp -d /tmp/myelin-bench-rtfmri.XXXXXX)
trap 'rm -rf "$work"' EXIT
defl=""
if pkg-config --exists libdeflate; then defl="-DNIFTI_HAVE_LIBDEFLATE $(pkg-config --cflags --libs libdeflate)"; fi
# shellcheck disable=SC2086
${CC:-cc} -std=c11 -D_GNU_SOURCE -O3 -I"$src/plugins/fmri_source" -I"$src/plugins/realign" \
  "$here/rtfmri/realign_driver.c" "$src/plugins/realign/realign_kernels.c" "$src/plugins/fmri_source/nifti.c" \
  -o "$work/driver" -lz -lm $defl
set -- $("$work/driver" "$src/tests/data/realign/example4d_vol0.nii.gz" "$work" "$n")
printf 'myelin realign: %s volumes 128x96x24, estimate+resample p50 %s ms, p99 %s ms, worst error %s mm/deg\n' \
  "$n" "$1" "$2" "$3"
ours=$1
"$py" "$src/tests/realign/realign_peer.py" "$work/ref.nii" "$work/m0.nii" "$work/m1.nii" "$work/m2.nii" \
  2>/dev/null > "$work/peer.txt"
paste "$work/peer.txt" "$work/truth.txt" | awk -v ours="$ours" '
  { e = 0; for (i = 1; i <= 6; i++) { d = $i - $(i + 7); if (d < 0) d = -d; if (d > e) e = d }
    if (e > worst) worst = e; t += $7; n++ }
  END { printf "dipy rigid (MI): %d pairs, mean %.1f s per pair, worst error %.4f mm/deg; speed ratio %.0fx\n",
        n, t / n, worst, (t / n) * 1000 / ours }'
