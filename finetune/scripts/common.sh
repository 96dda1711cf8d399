# Sourced by the benchmark scripts. NPROC=8 runs on 8 GPUs through paddle.distributed.launch (the recipe's batch is
# global and is divided among them); NPROC=1 (default) runs one process. DRY_RUN=1 prints the command instead.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
NPROC=${NPROC:-1}
[[ "$NPROC" =~ ^[1-9][0-9]*$ ]] || { echo "NPROC must be a positive integer, got '$NPROC'" >&2; exit 2; }

per_rank() {  # global batch -> per-rank batch; call it as its own statement (PER_RANK=$(per_rank 32)) so that a
    # failure stops the script (inside another command's arguments, set -e would not see it)
    if (( $1 % NPROC )); then echo "batch $1 does not divide over NPROC=$NPROC" >&2; exit 2; fi
    echo $(( $1 / NPROC ))
}

run_task() {  # run_task TASK ARGS...
    local cmd
    if (( NPROC > 1 )); then
        cmd=("$PY" -m paddle.distributed.launch --nproc_per_node "$NPROC" "$ROOT/finetune/run.py" "$@")
    else
        cmd=("$PY" "$ROOT/finetune/run.py" "$@")
    fi
    if [ "${DRY_RUN:-0}" = 1 ]; then echo "${cmd[*]}"; else "${cmd[@]}"; fi
}

size_of() {  # base or large
    case "${1:-base}" in base|large) echo "${1:-base}" ;; *) echo "size must be base or large, got $1" >&2; exit 2 ;; esac
}
