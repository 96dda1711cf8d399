#!/usr/bin/env bash
# ERNIE-M large pretraining on GPUs (pretrain/configs/ernie_m_large.yaml); launch options: see launch_gpu.sh.
#   pretrain_ernie_m_large.sh OUTPUT_DIR TOKENIZER_DIR PARALLEL_DIR MONOLINGUAL_DIR [overrides | --resume]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
exec "$HERE/launch_gpu.sh" "$HERE/../configs/ernie_m_large.yaml" "$@"
