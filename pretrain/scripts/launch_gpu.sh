#!/usr/bin/env bash
# Launch pretrain/run_pretrain.py on GPUs with paddle.distributed.launch (used by pretrain_ernie_m_*.sh).
#
#   launch_gpu.sh CONFIG OUTPUT_DIR TOKENIZER_DIR PARALLEL_DIR MONOLINGUAL_DIR [overrides | --resume | --max_steps N]
#
# One node: GPUS selects devices (default 0,1,2,3,4,5,6,7).
# Several nodes: run the same command on every node with NNODES=4 MASTER=10.0.0.1:8090 (the first node's address
# and a free port, the same on all nodes).
set -euo pipefail
CONFIG=${1:?CONFIG}; OUT=${2:?OUTPUT_DIR}; TOKENIZER=${3:?TOKENIZER_DIR}; PARALLEL=${4:?PARALLEL_DIR}
MONO=${5:?MONOLINGUAL_DIR}
shift 5
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAUNCH=(--devices "${GPUS:-0,1,2,3,4,5,6,7}" --log_dir "$OUT/launch_logs")
if [ -n "${NNODES:-}" ]; then LAUNCH+=(--nnodes "$NNODES" --master "${MASTER:?set MASTER=host:port}"); fi
python -m paddle.distributed.launch "${LAUNCH[@]}" "$ROOT/pretrain/run_pretrain.py" \
    --config "$CONFIG" --output_dir "$OUT" \
    tokenizer="$TOKENIZER" data.parallel_dir="$PARALLEL" data.monolingual_dir="$MONO" "$@"
