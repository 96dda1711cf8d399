"""Fine-tuning pipelines for the cross-lingual benchmarks (one module per task), over the heads in `ernie_m`."""

# The tasks run as programs (`python -m finetune.<task>`, finetune/run.py): this is the first code they run, so the
# process-wide settings are made here, before any task module imports Paddle.
from ernie_m.cpu import configure_process

configure_process()
