"""Tokenizer throughput on real multilingual text: ours against PaddleNLP's ErnieMTokenizer and HF's fast XLM-R
tokenizer, all over one sentencepiece model trained here.

Text: the translated messages of Plone's gettext catalogs (PyPI `plone.app.locales`, pinned and cached by the
demo's fetcher) in 16 languages and 10 scripts, English included. A sentencepiece model is trained on them
(`ernie-m train-tokenizer`), so the benchmark needs no hub download. Each tokenizer encodes the same lines in
batches with its ordinary call (`tokenizer(list_of_texts)`, special tokens added, no padding); ours and PaddleNLP's
must give identical ids. HF's fast tokenizer maps the same pieces to fairseq-shifted ids, so only its speed is
compared.
"""
from __future__ import annotations

import os
import random
from typing import Dict, List

from .common import median_seconds

LANGUAGES = ["de", "fr", "es", "ru", "uk", "el", "ar", "fa", "he", "hi", "th", "ja", "zh_CN", "ko", "vi", "tr"]


def multilingual_lines(cache_dir: str, max_lines: int, seed: int = 0) -> List[str]:
    from tools.demo.corpus import clean_message
    from tools.demo.sources import cached_wheel, fetch_packages, read_catalog_pairs

    wheel = cached_wheel(cache_dir, "plone.app.locales") or fetch_packages(cache_dir)["plone.app.locales"]
    lines = set()
    for _, source, translation in read_catalog_pairs(wheel, LANGUAGES):
        for text in (clean_message(source), clean_message(translation)):
            if text:
                lines.add(text)
    lines = sorted(lines)
    random.Random(seed).shuffle(lines)
    return lines[:max_lines]


def run(work_dir: str, cache_dir: str, max_lines: int, batch_size: int, repeats: int, vocab_size: int
        ) -> Dict[str, object]:
    from paddlenlp.transformers import ErnieMTokenizer as PaddleNLPTokenizer
    from transformers import XLMRobertaTokenizerFast

    from ernie_m import ErnieMTokenizer
    from ernie_m.tokenizer_training import train_tokenizer

    lines = multilingual_lines(cache_dir, max_lines)
    text_file = os.path.join(work_dir, "tokenizer_text.txt")
    with open(text_file, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    model_dir = os.path.join(work_dir, "tokenizer")
    train_tokenizer([text_file], model_dir, vocab_size=vocab_size)

    ours = ErnieMTokenizer.from_pretrained(model_dir)
    theirs = PaddleNLPTokenizer.from_pretrained(model_dir)
    fast = XLMRobertaTokenizerFast(vocab_file=os.path.join(model_dir, "sentencepiece.bpe.model"))
    batches = [lines[i:i + batch_size] for i in range(0, len(lines), batch_size)]

    def encode_all(tokenizer):
        return [ids for batch in batches for ids in tokenizer(batch)["input_ids"]]

    identical = sum(a == b for a, b in zip(encode_all(ours), encode_all(theirs)))
    results = {}
    for name, tokenizer in (("ours", ours), ("paddlenlp", theirs), ("hf_fast_xlmr", fast)):
        figures = median_seconds(lambda: encode_all(tokenizer), repeats)
        figures["sentences_per_s"] = len(lines) / figures["median_s"]
        results[name] = figures
    return {
        "lines": len(lines),
        "characters": sum(map(len, lines)),
        "languages": ["en"] + LANGUAGES,
        "vocab_size": len(ours),
        "identical_ids_with_paddlenlp": f"{identical}/{len(lines)}",
        "results": results,
        "ratios": {
            "ours_over_paddlenlp": results["ours"]["sentences_per_s"] / results["paddlenlp"]["sentences_per_s"],
            "ours_over_hf_fast": results["ours"]["sentences_per_s"] / results["hf_fast_xlmr"]["sentences_per_s"],
        },
    }
