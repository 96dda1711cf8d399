"""Fine-tuning pipelines for the cross-lingual benchmarks (one module per task), over the heads in `ernie_m`."""
