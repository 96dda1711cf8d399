"""Checkpoint converters: HF transformers' ErnieM layout both ways (`hf`), the original static-graph release
(`static`, `ernie-m convert from-static`). The `ernie-m convert` command calls these."""
