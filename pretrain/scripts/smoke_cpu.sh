#!/usr/bin/env bash
# Pretrain a tiny ERNIE-M on 2 CPU ranks over a corpus this script writes, alternating CAMLM, MMLM and BTMLM.
# Usage: pretrain/scripts/smoke_cpu.sh OUTPUT_DIR [key.path=value ...]   (uses .venv/bin/python when present)
set -euo pipefail
OUT=${1:?usage: smoke_cpu.sh OUTPUT_DIR [overrides]}
shift
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
export OMP_NUM_THREADS=1   # one core per rank on a 2-core machine
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
(cd "$ROOT" && "$PY" -m tools.demo.smoke_corpus "$OUT/corpus") > /dev/null
"$PY" -m ernie_m.cli train-tokenizer --input "$OUT"/corpus/monolingual/*.txt --vocab_size 300 \
    --languages en de fr ru --output_dir "$OUT/tokenizer" > /dev/null
timeout 600 "$PY" -m paddle.distributed.launch --nproc_per_node 2 --log_dir "$OUT/launch_logs" \
    "$ROOT/pretrain/run_pretrain.py" --config "$ROOT/pretrain/configs/smoke.yaml" --output_dir "$OUT/model" \
    tokenizer="$OUT/tokenizer" data.parallel_dir="$OUT/corpus/parallel" \
    data.monolingual_dir="$OUT/corpus/monolingual" stages.0.steps=20 "$@"
echo "checkpoints in $OUT/model:"; ls "$OUT/model"
