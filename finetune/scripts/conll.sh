#!/usr/bin/env bash
# CoNLL-2002/2003 NER with the released recipe (DESIGN §6): English only (transfer) or all languages.
# Usage: finetune/scripts/conll.sh english|all MODEL CONLL_DIR OUTPUT_DIR [base|large]
#   CONLL_DIR holds the official files: eng.{train,testa,testb}, deu.{train,testa,testb} (CoNLL-2003),
#   esp.{train,testa,testb}, ned.{train,testa,testb} (CoNLL-2002).
source "$(dirname "$0")/common.sh"
MODE=${1:?mode}; MODEL=${2:?model}; D=${3:?conll dir}; OUT=${4:?output dir}
SIZE=$(size_of "${5:-base}")
TEST=(en:"$D/eng.testb" de:"$D/deu.testb" es:"$D/esp.testb" nl:"$D/ned.testb")
case "$MODE" in
    english) LR=4e-4; DECAY=0.8; TRAIN=(en:"$D/eng.train"); DEV=(en:"$D/eng.testa") ;;
    all) LR=$([ "$SIZE" = large ] && echo 2e-4 || echo 3e-4); DECAY=$([ "$SIZE" = large ] && echo 0.9 || echo 0.8)
         TRAIN=(en:"$D/eng.train" de:"$D/deu.train" es:"$D/esp.train" nl:"$D/ned.train")
         DEV=(en:"$D/eng.testa" de:"$D/deu.testa" es:"$D/esp.testa" nl:"$D/ned.testa") ;;
    *) echo "mode must be english or all" >&2; exit 2 ;;
esac
PER_RANK=$(per_rank 8)  # its own statement: under set -e a bad split stops the script here
run_task ner --model "$MODEL" --output_dir "$OUT" --train "${TRAIN[@]}" --dev "${DEV[@]}" --test "${TEST[@]}" \
    --learning_rate "$LR" --layer_decay "$DECAY" --weight_decay 0.01 --warmup 0.1 --epochs 10 \
    --batch_size "$PER_RANK" --max_length 512 "${@:6}"
