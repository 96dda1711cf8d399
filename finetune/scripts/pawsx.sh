#!/usr/bin/env bash
# PAWS-X. The released scripts list no PAWS-X recipe; we use XNLI's (DESIGN §6), which the paper's setup follows.
# Usage: finetune/scripts/pawsx.sh transfer|translate-train-all MODEL X_FINAL_DIR OUTPUT_DIR [base|large]
source "$(dirname "$0")/common.sh"
MODE=${1:?mode}; MODEL=${2:?model}; DATA=${3:?x-final dir}; OUT=${4:?output dir}
SIZE=$(size_of "${5:-base}")
case "$MODE" in
    transfer) BATCH=32; EPOCHS=5 ;;
    translate-train-all) BATCH=128; EPOCHS=$([ "$SIZE" = large ] && echo 1 || echo 2) ;;
    *) echo "mode must be transfer or translate-train-all" >&2; exit 2 ;;
esac
PER_RANK=$(per_rank $BATCH)  # its own statement: under set -e a bad split stops the script here
run_task classification --task pawsx --mode "$MODE" --model "$MODEL" --data_dir "$DATA" --output_dir "$OUT" \
    --learning_rate 5e-5 --layer_decay 0.8 --weight_decay 0 --warmup 0.1 --epochs "$EPOCHS" \
    --batch_size "$PER_RANK" --max_length 256 "${@:6}"
