#!/usr/bin/env bash
# XNLI with the released recipe (DESIGN §6).
# Usage: finetune/scripts/xnli.sh transfer|translate-train-all MODEL XNLI_DIR MNLI_TRAIN_FILE OUTPUT_DIR [base|large]
#   XNLI_DIR holds xnli.{dev,test}.tsv (and XNLI-Translated/en-<lang>-translated.tsv for translate-train-all);
#   MNLI_TRAIN_FILE is MultiNLI's multinli_1.0_train.txt; MODEL a released name (ernie-m-base) or a directory.
source "$(dirname "$0")/common.sh"
MODE=${1:?mode}; MODEL=${2:?model}; DATA=${3:?xnli dir}; TRAIN=${4:?multinli train file}; OUT=${5:?output dir}
SIZE=$(size_of "${6:-base}")
case "$MODE" in
    transfer) BATCH=32; EPOCHS=5 ;;
    translate-train-all) BATCH=128; EPOCHS=$([ "$SIZE" = large ] && echo 1 || echo 2) ;;
    *) echo "mode must be transfer or translate-train-all" >&2; exit 2 ;;
esac
PER_RANK=$(per_rank $BATCH)  # its own statement: under set -e a bad split stops the script here
run_task classification --task xnli --mode "$MODE" --model "$MODEL" --data_dir "$DATA" --train_file "$TRAIN" \
    --output_dir "$OUT" --learning_rate 5e-5 --layer_decay 0.8 --weight_decay 0 --warmup 0.1 \
    --epochs "$EPOCHS" --batch_size "$PER_RANK" --max_length 256 "${@:7}"
