#!/usr/bin/env bash
# XQuAD: train on SQuAD v1.1 with MLQA's recipe (DESIGN §6), select on SQuAD's English dev set (XQuAD has none),
# test on the 11 XQuAD languages.
# Usage: finetune/scripts/xquad.sh MODEL SQUAD_TRAIN_FILE SQUAD_DEV_FILE XQUAD_DIR OUTPUT_DIR [base|large]
#   XQUAD_DIR holds xquad.<lang>.json.
source "$(dirname "$0")/common.sh"
MODEL=${1:?model}; TRAIN=${2:?squad train}; DEV=${3:?squad dev}; D=${4:?xquad dir}; OUT=${5:?output dir}
SIZE=$(size_of "${6:-base}")
LR=$([ "$SIZE" = large ] && echo 8e-5 || echo 3e-4); DECAY=$([ "$SIZE" = large ] && echo 0.9 || echo 0.8)
TEST=(); for l in en es de el ru tr ar vi th zh hi; do TEST+=("$l:$D/xquad.$l.json"); done
PER_RANK=$(per_rank 32)  # its own statement: under set -e a bad split stops the script here
run_task qa --model "$MODEL" --output_dir "$OUT" --train_file "$TRAIN" --dev en:"$DEV" --test "${TEST[@]}" \
    --learning_rate "$LR" --layer_decay "$DECAY" --weight_decay 0 --warmup 0.1 --epochs 2 \
    --batch_size "$PER_RANK" --max_length 384 --doc_stride 128 "${@:7}"
