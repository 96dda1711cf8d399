"""Fine-tuning pipelines for the cross-lingual benchmarks (one module per task), over the heads in `ernie_m`."""

import ernie_m  # noqa: E402,F401  (before any task module imports Paddle: see ernie_m/cpu.py)
