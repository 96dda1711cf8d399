#!/usr/bin/env bash
# MLQA (cross-lingual transfer from SQuAD v1.1) with the released recipe (DESIGN §6); XQuAD with the same model.
# Usage: finetune/scripts/mlqa.sh MODEL SQUAD_TRAIN_FILE MLQA_DIR OUTPUT_DIR [base|large]
#   MLQA_DIR is MLQA_V1/ with dev/dev-context-<l>-question-<l>.json and test/test-context-<l>-question-<l>.json.
source "$(dirname "$0")/common.sh"
MODEL=${1:?model}; TRAIN=${2:?squad train}; D=${3:?mlqa dir}; OUT=${4:?output dir}
SIZE=$(size_of "${5:-base}")
LR=$([ "$SIZE" = large ] && echo 8e-5 || echo 3e-4); DECAY=$([ "$SIZE" = large ] && echo 0.9 || echo 0.8)
TEST=(); for l in en es de ar hi vi zh; do TEST+=("$l:$D/test/test-context-$l-question-$l.json"); done
PER_RANK=$(per_rank 32)  # its own statement: under set -e a bad split stops the script here
run_task qa --model "$MODEL" --output_dir "$OUT" --train_file "$TRAIN" \
    --dev en:"$D/dev/dev-context-en-question-en.json" --test "${TEST[@]}" \
    --learning_rate "$LR" --layer_decay "$DECAY" --weight_decay 0 --warmup 0.1 --epochs 2 \
    --batch_size "$PER_RANK" --max_length 384 --doc_stride 128 "${@:6}"
