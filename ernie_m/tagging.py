"""Word-level tagging of raw text with a token-classification model: words, windows, tags, entity segments.

Shared by Taskflow's `ner` mode "ernie-m" (ernie_m.taskflow, on Paddle Inference) and `ernie-m predict` on a
token-classification checkpoint (dynamic graph, `tag_texts`). Words are whitespace-separated, and a word's tag is
read from its first sub-token, as fine-tuning trains it (finetune/ner.py). A text longer than the model's window
runs as several windows, cut between words.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

_WORD = re.compile(r"\S+")


@dataclass
class Window:
    """One model input: the sub-token ids of consecutive words of one text (no special tokens yet)."""

    text: int
    ids: List[int] = field(default_factory=list)
    word_starts: List[int] = field(default_factory=list)  # position of each word's first sub-token, after [CLS]
    words: List[int] = field(default_factory=list)  # the words' indices in their text
    label_ids: List[int] = field(default_factory=list)  # filled by the model


def split_words(text: str) -> List[Tuple[int, int]]:
    return [(match.start(), match.end()) for match in _WORD.finditer(text)]


def make_windows(tokenizer, texts: Sequence[str], max_length: int) -> Tuple[List[List[Tuple[int, int]]], List[Window]]:
    """(word spans per text, windows of at most `max_length` tokens with [CLS] and [SEP])."""
    if max_length < 3:
        raise ValueError(f"max_length must be at least 3 ([CLS] word [SEP]), got {max_length}")
    words = [split_words(text) for text in texts]
    pieces = iter(tokenizer.encode_batch_ids([text[s:e] for text, spans in zip(texts, words) for s, e in spans]))
    room = max_length - 2
    windows: List[Window] = []
    for text_index, spans in enumerate(words):
        window = Window(text_index)
        for word_index in range(len(spans)):
            ids = (next(pieces) or [tokenizer.unk_token_id])[:room]  # a word that normalises to nothing keeps a slot
            if len(window.ids) + len(ids) > room:
                windows.append(window)
                window = Window(text_index)
            window.word_starts.append(len(window.ids) + 1)
            window.words.append(word_index)
            window.ids.extend(ids)
        windows.append(window)
    return words, windows


def input_ids(tokenizer, windows: Sequence[Window]) -> np.ndarray:
    """[CLS] ids [SEP], padded with the pad id (the model's default mask hides it)."""
    rows = [[tokenizer.cls_token_id] + w.ids + [tokenizer.sep_token_id] for w in windows]
    batch = np.full((len(rows), max(map(len, rows))), tokenizer.pad_token_id, dtype=np.int64)
    for row, ids in enumerate(rows):
        batch[row, :len(ids)] = ids
    return batch


def read_labels(windows: Sequence[Window], logits: np.ndarray) -> None:
    for row, window in enumerate(windows):
        window.label_ids = logits[row, window.word_starts].argmax(-1).tolist() if window.words else []


def entity_spans(labels: Sequence[str]) -> List[Tuple[int, int, str]]:
    """(first word, last word + 1, type) of each entity in a word-label sequence: BIO, IOB1, IOBES or bare types.

    An `I-`/`E-` label whose type differs from the open entity starts a new one (conlleval's reading).
    """
    spans: List[Tuple[int, int, str]] = []
    start, kind = None, None
    for index, label in enumerate(list(labels) + ["O"]):  # the sentinel closes the last entity
        if label == "O":
            prefix, name = "O", None
        elif "-" in label:
            prefix, name = label.split("-", 1)
        else:
            prefix, name = "I", label
        if start is not None and (prefix in ("O", "B", "S") or name != kind):
            spans.append((start, index, kind))
            start, kind = None, None
        if prefix != "O" and start is None:
            start, kind = index, name
        if prefix in ("E", "S"):
            spans.append((start, index + 1, kind))
            start, kind = None, None
    return spans


def segments(texts: Sequence[str], words, windows: Sequence[Window], id2label: Dict[int, str],
             entities_only: bool = False) -> List[List[Tuple[str, str]]]:
    """Per text, `(segment, label)` tuples covering it in order: entities carry their type, the rest "O"."""
    labels = [["O"] * len(spans) for spans in words]
    for window in windows:
        for word_index, label_id in zip(window.words, window.label_ids):
            labels[window.text][word_index] = id2label.get(label_id, str(label_id))
    results = []
    for text, spans, text_labels in zip(texts, words, labels):
        out, cursor = [], 0
        for first, last, kind in entity_spans(text_labels):
            start, end = spans[first][0], spans[last - 1][1]
            if start > cursor and not entities_only:
                out.append((text[cursor:start], "O"))
            out.append((text[start:end], kind))
            cursor = end
        if cursor < len(text) and not entities_only:
            out.append((text[cursor:], "O"))
        results.append(out)
    return results


def language_ids(tokenizer, windows: Sequence[Window], languages: Union[str, Sequence[str]], width: int) -> np.ndarray:
    """`[len(windows), width]`: each window's row filled with its text's language id (`languages`: one code for
    all texts, or one per text), padding included, as the tokenizer fills a single text's row."""
    per_text = [languages] * (max(w.text for w in windows) + 1) if isinstance(languages, str) else languages
    ids = [tokenizer.language_id(per_text[window.text]) for window in windows]
    return np.repeat(np.asarray(ids, dtype=np.int64)[:, None], width, axis=1)


def tag_texts(model, tokenizer, texts: Sequence[str], max_length: int = 512, batch_size: int = 16,
              entities_only: bool = False, languages: Union[str, Sequence[str], None] = None
              ) -> List[List[Tuple[str, str]]]:
    """`segments` of each text from a dynamic-graph `ErnieMForTokenClassification`. A model with a language
    embedding needs `languages`: one code for every text, or one per text."""
    import paddle

    if model.config.num_languages > 0 and languages is None:
        raise ValueError("this model has a language embedding: give the texts' language")
    words, windows = make_windows(tokenizer, texts, max_length)
    model.eval()
    with paddle.no_grad():
        for start in range(0, len(windows), batch_size):
            chunk = windows[start:start + batch_size]
            ids = input_ids(tokenizer, chunk)
            extra = {}
            if model.config.num_languages > 0:
                extra["language_ids"] = paddle.to_tensor(language_ids(tokenizer, chunk, languages, ids.shape[1]))
            logits = model(paddle.to_tensor(ids), return_dict=True, **extra).logits
            read_labels(chunk, logits.numpy())
    id2label = {int(k): v for k, v in (getattr(model.config, "id2label", None) or {}).items()}
    return segments(texts, words, windows, id2label, entities_only)
