#!/usr/bin/env bash
# ERNIE-M base pretraining on GPUs with paddle.distributed.launch.
#
# One node, 8 GPUs:
#   pretrain/scripts/pretrain_ernie_m_base.sh OUTPUT_DIR TOKENIZER_DIR PARALLEL_DIR MONOLINGUAL_DIR
# Several nodes: run the same command on every node with
#   NNODES=4 MASTER=10.0.0.1:8090 (the first node's address and a free port; same on all nodes)
# Extra arguments after the four paths are config overrides (optimizer.lr=1e-4) or --resume / --max_steps N.
# GPUS selects devices (default 0,1,2,3,4,5,6,7).
set -euo pipefail
OUT=${1:?OUTPUT_DIR}; TOKENIZER=${2:?TOKENIZER_DIR}; PARALLEL=${3:?PARALLEL_DIR}; MONO=${4:?MONOLINGUAL_DIR}
shift 4
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAUNCH=(--devices "${GPUS:-0,1,2,3,4,5,6,7}" --log_dir "$OUT/launch_logs")
if [ -n "${NNODES:-}" ]; then LAUNCH+=(--nnodes "$NNODES" --master "${MASTER:?set MASTER=host:port}"); fi
python -m paddle.distributed.launch "${LAUNCH[@]}" "$ROOT/pretrain/run_pretrain.py" \
    --config "$ROOT/pretrain/configs/ernie_m_base.yaml" --output_dir "$OUT" \
    tokenizer="$TOKENIZER" data.parallel_dir="$PARALLEL" data.monolingual_dir="$MONO" "$@"
