"""Fine-tuning pipelines for the cross-lingual benchmarks (one module per task), over the heads in `ernie_m`.

Importing it changes nothing in the process: the task modules, run as programs, make their process-wide settings
themselves (`ernie_m.cpu.configure_process`) before Paddle loads."""
