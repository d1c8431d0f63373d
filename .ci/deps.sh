#!/usr/bin/env bash
# Installs what myelin needs on Debian 12, only what is missing.
# Build: compiler, cmake, libraries. Tests and demos: Check, Debian's data
# packages, and /usr/bin/python3 with numpy/scipy/sklearn/nibabel/h5py/msgpack
# for reference checks. Bench peers: gstreamer1.0-tools.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libuv1-dev libmsgpack-dev libarchive-dev libyaml-dev zlib1g-dev libdeflate-dev
      libopenblas-dev liblapacke-dev libhdf5-dev check libsubunit-dev
      dataset-fashion-mnist python3 python3-numpy python3-scipy python3-sklearn
      python3-nibabel python3-h5py python3-msgpack)
if [ "${MYELIN_BENCH_DEPS:-0}" = 1 ]; then pkgs+=(gstreamer1.0-tools gstreamer1.0-plugins-base); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
