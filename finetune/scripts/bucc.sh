#!/usr/bin/env bash
# BUCC 2018 mining (no fine-tuning): F1 at the best threshold per language.
# Usage: finetune/scripts/bucc.sh MODEL BUCC_DIR OUTPUT_DIR [split: sample|training|test]
source "$(dirname "$0")/common.sh"
MODEL=${1:?model}; D=${2:?bucc dir}; OUT=${3:?output dir}; SPLIT=${4:-test}
NPROC=1 run_task retrieval --task bucc --model "$MODEL" --data_dir "$D" --output_dir "$OUT" --split "$SPLIT" \
    --languages de fr ru zh
