#!/usr/bin/env bash
# Launch pretrain/run_pretrain.py on GPUs with paddle.distributed.launch (used by pretrain_ernie_m_*.sh).
#
#   launch_gpu.sh CONFIG OUTPUT_DIR TOKENIZER_DIR PARALLEL_DIR MONOLINGUAL_DIR [overrides | --resume | --max_steps N]
#
# One node: GPUS selects devices (default 0,1,2,3,4,5,6,7).
# Several nodes, either form, the same command on every node (docs/pretraining.md):
#   IPS=10.0.0.1,10.0.0.2 (or HOSTFILE=hosts.txt, one address a line): Paddle finds this node's rank by its address.
#   NNODES=2 MASTER=10.0.0.1:8090 [NODE_RANK=0]: rendezvous at the first node's address and a free port.
# DRY_RUN=1 prints the command instead of running it.
set -euo pipefail
CONFIG=${1:?CONFIG}; OUT=${2:?OUTPUT_DIR}; TOKENIZER=${3:?TOKENIZER_DIR}; PARALLEL=${4:?PARALLEL_DIR}
MONO=${5:?MONOLINGUAL_DIR}
shift 5
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAUNCH=(--devices "${GPUS:-0,1,2,3,4,5,6,7}" --log_dir "$OUT/launch_logs")
if [ -n "${HOSTFILE:-}" ]; then
    [ -f "$HOSTFILE" ] || { echo "HOSTFILE=$HOSTFILE: no such file" >&2; exit 2; }
    IPS=$(grep -v '^[[:space:]]*\(#\|$\)' "$HOSTFILE" | awk '{print $1}' | paste -sd, -)
    [ -n "$IPS" ] || { echo "HOSTFILE=$HOSTFILE lists no address" >&2; exit 2; }
fi
if [ -n "${IPS:-}" ]; then
    LAUNCH+=(--ips "$IPS")
elif [ -n "${NNODES:-}" ]; then
    LAUNCH+=(--nnodes "$NNODES" --master "${MASTER:?set MASTER=host:port}")
    if [ -n "${NODE_RANK:-}" ]; then LAUNCH+=(--rank "$NODE_RANK"); fi
fi
COMMAND=("${PYTHON:-python}" -m paddle.distributed.launch "${LAUNCH[@]}" "$ROOT/pretrain/run_pretrain.py"
    --config "$CONFIG" --output_dir "$OUT"
    tokenizer="$TOKENIZER" data.parallel_dir="$PARALLEL" data.monolingual_dir="$MONO" "$@")
if [ -n "${DRY_RUN:-}" ]; then echo "${COMMAND[*]}"; else exec "${COMMAND[@]}"; fi
