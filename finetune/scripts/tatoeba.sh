#!/usr/bin/env bash
# Tatoeba retrieval (no fine-tuning): accuracy per language, XTREME's 36 languages by default.
# Usage: finetune/scripts/tatoeba.sh MODEL TATOEBA_DIR OUTPUT_DIR [language ...]
source "$(dirname "$0")/common.sh"
MODEL=${1:?model}; D=${2:?tatoeba dir}; OUT=${3:?output dir}; shift 3
LANGS=("$@"); [ ${#LANGS[@]} -gt 0 ] || LANGS=(afr ara ben bul cmn deu ell est eus fin fra heb hin hun ind ita jav jpn \
    kat kaz kor mal mar nld pes por rus spa swh tam tel tgl tha tur urd vie)
NPROC=1 run_task retrieval --task tatoeba --model "$MODEL" --data_dir "$D" --output_dir "$OUT" --languages "${LANGS[@]}"
