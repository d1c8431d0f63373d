#!/usr/bin/env bash
# The main job: installs what is missing, builds myelin, and runs the BioGrad
# pipeline on Debian's Fashion-MNIST with a short default budget
# (pipelines/fashion_mnist_biograd.yaml: 5,000 training images x 16 epochs,
# the whole test split evaluated after each; about 90 s), then exports the network for
# Loihi. Results land in out/: the netx (.net) and NIR (.nir) files, a .tar.gz
# bundle with a manifest, and the per-epoch metrics (.metrics.mpk).
# Extra arguments go to `myelin run`; the full run is one --set away:
#   bash pipelines/main.sh --set train.limit=0
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/.ci/deps.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMYELIN_BUILD_TESTS=OFF -DMYELIN_ONLY= >/dev/null
cmake --build "$root/build" -j"$(nproc)" >/dev/null
cd "$root"
build/bin/myelin run pipelines/fashion_mnist_biograd.yaml --stats "$@"
echo
echo "== per-epoch metrics (out/fashion_mnist_biograd.metrics.mpk)"
build/bin/myelin cat out/fashion_mnist_biograd.metrics.mpk --json |
  sed -E 's/.*"epoch": ([0-9]+).*"train_acc": ([0-9.]+).*"test_acc": ([0-9.]+).*/\1 \2 \3/' |
  awk '{printf "epoch %d: train accuracy %.4f, test accuracy %.4f\n", $1, $2, $3}'
echo "== Loihi export: float vs quantized test accuracy (manifest.json in the bundle)"
tar xzf out/fashion_mnist_biograd.tar.gz -O manifest.json | grep '"test"'
ls -l out/fashion_mnist_biograd.*
