#!/usr/bin/env bash
# The main job: installs what is missing, builds myelin, installs it into
# PREFIX (default /usr/local: `myelin`, its plugins, headers, schemas and
# myelin.pc), and runs the BioGrad pipeline on Debian's Fashion-MNIST with a
# short default budget (pipelines/fashion_mnist_biograd.yaml: 5,000 training
# images x 16 epochs, the whole test split scored for each at the end; about 3 minutes on 2 cores),
# then exports the network for Loihi. Results land in ${OUT:-out}/: the netx
# (.net) and NIR (.nir) files, a .tar.gz bundle with a manifest, and the
# per-epoch metrics (.metrics.mpk).
# Extra arguments go to `myelin run`; the full run is one --set away:
#   bash pipelines/main.sh --set train.limit=0
# Without root: PREFIX=$HOME/.local bash pipelines/main.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${PREFIX:-/usr/local}
build=${BUILD:-$root/build}
out=${OUT:-out}
bash "$root/.ci/deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMYELIN_BUILD_TESTS=OFF -DMYELIN_ONLY= >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
cmake --install "$build" --prefix "$prefix" >/dev/null
if [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi
echo "== installed into $prefix: $prefix/bin/myelin, plugins in $prefix/lib/myelin/plugins"
case ":$PATH:" in
*":$prefix/bin:"*) ;;
*) echo "   (add $prefix/bin to PATH, and $prefix/lib/pkgconfig to PKG_CONFIG_PATH for plugins)"
   export PATH="$prefix/bin:$PATH" ;;
esac
cd "$root"
myelin run pipelines/fashion_mnist_biograd.yaml --stats "$@"
echo
echo "== per-epoch metrics ($out/fashion_mnist_biograd.metrics.mpk)"
myelin cat "$out/fashion_mnist_biograd.metrics.mpk" --json |
  sed -E 's/.*"epoch": ([0-9]+).*"train_acc": ([0-9.]+).*"test_acc": ([0-9.]+).*/\1 \2 \3/' |
  awk '{printf "epoch %d: train accuracy %.4f, test accuracy %.4f\n", $1, $2, $3}'
echo "== Loihi export: float vs quantized test accuracy (manifest.json in the bundle)"
tar xzf "$out/fashion_mnist_biograd.tar.gz" -O manifest.json | grep '"test"'
ls -l "$out"/fashion_mnist_biograd.*
