#!/usr/bin/env bash
# The main job: installs what is missing, builds myelin, and runs the BioGrad
# pipeline on Debian's Fashion-MNIST with a short default budget
# (pipelines/fashion_mnist_biograd.yaml). Results land in out/.
# The full run is one --set away, e.g.:
#   build/bin/myelin run pipelines/fashion_mnist_biograd.yaml --set train.limit=0 --set learn.epochs=10
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/.ci/deps.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMYELIN_BUILD_TESTS=OFF >/dev/null
cmake --build "$root/build" -j"$(nproc)"
cd "$root"
exec build/bin/myelin run pipelines/fashion_mnist_biograd.yaml --stats "$@"
