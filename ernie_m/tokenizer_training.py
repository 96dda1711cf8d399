"""Training an ERNIE-M tokenizer from plain text files (`ernie-m train-tokenizer`).

Writes `sentencepiece.bpe.model` and `vocab.txt` in the released layout, plus `tokenizer_config.json`, so the
output directory loads with `ErnieMTokenizer.from_pretrained(DIR)` here and in PaddleNLP:

    vocab.txt line 0..3: [CLS] [PAD] [SEP] [UNK]; then sentencepiece pieces 3..N-1 (so piece id i is line i+1);
    last line: [MASK]
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence

import sentencepiece as spm

from .atomic import atomic_outputs

__all__ = ["train_tokenizer", "write_vocab"]

SPECIAL_HEAD = ["[CLS]", "[PAD]", "[SEP]", "[UNK]"]
MASK_TOKEN = "[MASK]"
# sentencepiece's own <unk>, <s>, </s> occupy ids 0-2; ERNIE-M's specials replace them in vocab.txt.
_SP_RESERVED = 3


def write_vocab(sp_model_file: str, vocab_file: str) -> int:
    """Write vocab.txt for a sentencepiece model in the released ERNIE-M layout; returns its size."""
    processor = spm.SentencePieceProcessor(model_file=sp_model_file)
    pieces = [processor.IdToPiece(i) for i in range(_SP_RESERVED, processor.GetPieceSize())]
    lines = SPECIAL_HEAD + pieces + [MASK_TOKEN]
    with open(vocab_file, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return len(lines)


def train_tokenizer(
    inputs: Sequence[str],
    output_dir: str,
    vocab_size: int = 8000,
    character_coverage: float = 0.9995,
    input_sentence_size: int = 2_000_000,
    hard_vocab_limit: bool = False,
    seed_sentencepiece_size: int = 1_000_000,
    languages: Optional[List[str]] = None,
) -> str:
    """Train `sentencepiece.bpe.model`, write `vocab.txt` and the tokenizer config into `output_dir`."""
    missing = [path for path in inputs if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(f"training text not found: {', '.join(missing)}")
    empty = [path for path in inputs if os.path.getsize(path) == 0]
    if len(empty) == len(inputs):
        raise ValueError(f"all training text files are empty: {', '.join(empty)}")
    from .tokenizer import ErnieMTokenizer

    os.makedirs(output_dir, exist_ok=True)  # a directory that cannot be made is named as given
    # Staged beside the output and moved in file by file: an interrupted run leaves an earlier tokenizer whole.
    with atomic_outputs(output_dir) as staged:
        prefix = os.path.join(staged, "sp")
        try:
            spm.SentencePieceTrainer.train(
                input=list(inputs),
                model_prefix=prefix,
                vocab_size=vocab_size,
                model_type="bpe",
                character_coverage=character_coverage,
                input_sentence_size=input_sentence_size,
                shuffle_input_sentence=True,
                hard_vocab_limit=hard_vocab_limit,
                seed_sentencepiece_size=seed_sentencepiece_size,
                num_threads=os.cpu_count() or 1,
                minloglevel=2,
            )
        except RuntimeError as error:
            raise ValueError(f"sentencepiece could not train on {list(inputs)}: {error}") from error
        model_file = os.path.join(staged, "sentencepiece.bpe.model")
        os.replace(prefix + ".model", model_file)
        os.remove(prefix + ".vocab")
        vocab_file = os.path.join(staged, "vocab.txt")
        write_vocab(model_file, vocab_file)
        ErnieMTokenizer(vocab_file, model_file, languages=languages).save_pretrained(staged)
    return output_dir
