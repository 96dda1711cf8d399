"""Checkpoint converters: HF transformers' ErnieM layout both ways (`hf`), the original static-graph release
(`original`). The `ernie-m convert` command and tools/convert_*.py call these."""
