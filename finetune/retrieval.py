"""Sentence retrieval without fine-tuning: Tatoeba (accuracy) and BUCC (F1 at the best threshold).

    python -m finetune.retrieval --task tatoeba --data_dir tatoeba/ --languages deu fra --model ernie-m-base
    python -m finetune.retrieval --task bucc --data_dir bucc2018/ --languages de fr --split test --model ...

Sentence embeddings: the mean of one layer's hidden states over the real tokens (XTREME uses layer 8 of 12; the
default here is two thirds of the way up). Tatoeba: each non-English sentence's nearest English sentence by cosine
(or `--scoring margin`), accuracy per language. BUCC: every sentence's best partner by ratio margin in both
directions; the pairs above a threshold are the mined pairs; F1 against the gold pairs at the best threshold.

Layouts (XTREME's): Tatoeba `tatoeba.<xx>-eng.<xx>` and `tatoeba.<xx>-eng.eng`, aligned line by line; BUCC
`<xx>-en.<split>.<xx>` and `<xx>-en.<split>.en` ('id<TAB>sentence'), `<xx>-en.<split>.gold` ('xx_id<TAB>en_id').
"""
from __future__ import annotations

if __name__ == "__main__":  # run as a program: its process-wide settings come before Paddle loads
    from ernie_m.cpu import configure_process

    configure_process()

import argparse  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple  # noqa: E402

import numpy as np  # noqa: E402

from ernie_m.argtypes import ArgumentParser, integer_from  # noqa: E402
from ernie_m.embeddings import default_layer, sentence_embeddings  # noqa: E402

from .metrics import best_threshold_f1, margin_scores, retrieval_accuracy, with_average  # noqa: E402
from .command import save_results, task_main  # noqa: E402
from .readers import BenchmarkDataError, known_languages, require_file, text_lines  # noqa: E402
from .tasks import Task, register  # noqa: E402
from .trainer import load_model  # noqa: E402


def unit(vectors: np.ndarray, center: bool = False) -> np.ndarray:
    """Unit rows; `center` first removes the set's mean (it encodes the language more than the meaning)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if center:
        vectors = vectors - vectors.mean(0, keepdims=True)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _lines(path: str, layout: str) -> List[str]:
    require_file(path, layout)
    return [line.rstrip("\r\n") for _, line in text_lines(path)]  # invalid UTF-8: named by file and line


TATOEBA_LAYOUT = "XTREME's tatoeba.<xx>-eng.<xx> and tatoeba.<xx>-eng.eng, one sentence a line, aligned"
BUCC_LAYOUT = "BUCC's <xx>-en.<split>.<xx> / .en ('id<TAB>sentence') and .gold ('xx_id<TAB>en_id')"


def read_tatoeba(directory: str, language: str) -> Tuple[List[str], List[str]]:
    stem = os.path.join(directory, f"tatoeba.{language}-eng")
    other, english = _lines(f"{stem}.{language}", TATOEBA_LAYOUT), _lines(f"{stem}.eng", TATOEBA_LAYOUT)
    if len(other) != len(english):
        raise BenchmarkDataError(f"{stem}.{language}: {len(other)} lines but {stem}.eng has {len(english)} "
                                 f"(expected {TATOEBA_LAYOUT})")
    return other, english


def _id_sentences(path: str) -> Tuple[List[str], List[str]]:
    ids, sentences = [], []
    for number, line in enumerate(_lines(path, BUCC_LAYOUT), 1):
        fields = line.split("\t")
        if len(fields) != 2:
            raise BenchmarkDataError(f"{path}:{number}: {len(fields)} field(s) (expected {BUCC_LAYOUT})")
        ids.append(fields[0])
        sentences.append(fields[1])
    return ids, sentences


def read_bucc(directory: str, language: str, split: str):
    stem = os.path.join(directory, f"{language}-en.{split}")
    source_ids, source = _id_sentences(f"{stem}.{language}")
    target_ids, target = _id_sentences(f"{stem}.en")
    gold = set()
    for number, line in enumerate(_lines(f"{stem}.gold", BUCC_LAYOUT), 1):
        fields = line.split("\t")
        if len(fields) != 2:
            raise BenchmarkDataError(f"{stem}.gold:{number}: {len(fields)} field(s) (expected {BUCC_LAYOUT})")
        gold.add((fields[0], fields[1]))
    return source_ids, source, target_ids, target, gold


# XTREME's Tatoeba files are named by three-letter codes; a model's language embedding by two-letter ones.
TATOEBA_TO_MODEL = {
    "afr": "af", "ara": "ar", "aze": "az", "ben": "bn", "bul": "bg", "cmn": "zh", "deu": "de", "ell": "el",
    "est": "et", "eus": "eu", "fin": "fi", "fra": "fr", "heb": "he", "hin": "hi", "hun": "hu", "ind": "id",
    "ita": "it", "jav": "jv", "jpn": "ja", "kat": "ka", "kaz": "kk", "kor": "ko", "lit": "lt", "mal": "ml",
    "mar": "mr", "nld": "nl", "pes": "fa", "pol": "pl", "por": "pt", "ron": "ro", "rus": "ru", "spa": "es",
    "swh": "sw", "tam": "ta", "tel": "te", "tgl": "tl", "tha": "th", "tur": "tr", "ukr": "uk", "urd": "ur",
    "vie": "vi", "eng": "en",
}


def data_languages(directory: str, task: str, split: str) -> List[str]:
    """The language codes `directory` has files for, as the task names them."""
    pattern = re.compile(r"^tatoeba\.(\w+)-eng\.\1$" if task == "tatoeba" else rf"^(\w+)-en\.{re.escape(split)}\.\1$")
    names = os.listdir(directory) if os.path.isdir(directory) else []
    found = sorted({match.group(1) for match in map(pattern.match, names) if match})
    if not found:
        layout = TATOEBA_LAYOUT if task == "tatoeba" else BUCC_LAYOUT
        raise BenchmarkDataError(f"{directory}: no {task} files (expected {layout})")
    return found


def model_language(code: str, tokenizer, with_language_ids: bool) -> Optional[str]:
    """The code the model's language embedding knows for a data code (deu -> de), or None without one."""
    if not with_language_ids:
        return None
    mapped = TATOEBA_TO_MODEL.get(code, code)
    if mapped not in tokenizer.languages:
        raise BenchmarkDataError(f"--languages: the model has no language {mapped!r} (for {code!r}); its codes are "
                                 f"{' '.join(tokenizer.languages)}")
    return mapped


def tatoeba_accuracy(source: np.ndarray, english: np.ndarray, scoring: str = "cosine", k: int = 4) -> float:
    scores = margin_scores(source, english, k) if scoring == "margin" else unit(source) @ unit(english).T
    return retrieval_accuracy(scores)


def mine_pairs(source: np.ndarray, target: np.ndarray, k: int = 4) -> Dict[Tuple[int, int], float]:
    """Each sentence's best partner by ratio margin, in both directions; a pair found twice keeps its score."""
    scores = margin_scores(source, target, k)
    pairs = {(i, int(j)): float(scores[i, j]) for i, j in enumerate(scores.argmax(1))}
    pairs.update({(int(i), j): float(scores[i, j]) for j, i in enumerate(scores.argmax(0))})
    return pairs


def bucc_f1(source_ids, source: np.ndarray, target_ids, target: np.ndarray, gold: set, k: int = 4) -> dict:
    pairs = mine_pairs(source, target, k)
    candidates = [(score, (source_ids[i], target_ids[j]) in gold) for (i, j), score in pairs.items()]
    return best_threshold_f1(candidates, num_gold=len(gold))


class PerLanguage(Mapping):
    """{language: its data}, each language's files read when it is looked up, so that scoring the languages one
    after another holds one language's sentences at a time."""

    def __init__(self, languages: Sequence[str], read: Callable[[str], tuple]):
        self.languages, self.read = list(languages), read

    def __getitem__(self, language: str) -> tuple:
        if language not in self.languages:
            raise KeyError(language)
        return self.read(language)

    def __iter__(self) -> Iterator[str]:
        return iter(self.languages)

    def __len__(self) -> int:
        return len(self.languages)


def read_data(args) -> PerLanguage:
    """{language: its Tatoeba sentences and their English translations, or its BUCC sentences, the English ones and
    the gold pairs}, for the asked languages (default: every language with files in --data_dir)."""
    languages = known_languages(args.languages, data_languages(args.data_dir, args.task, args.split), args.task)
    if args.task == "tatoeba":
        return PerLanguage(languages, lambda language: read_tatoeba(args.data_dir, language))
    return PerLanguage(languages, lambda language: read_bucc(args.data_dir, language, args.split))


def language_score(args, data: tuple, vectors, language: str) -> Tuple[float, Optional[dict]]:
    """One language's score with `vectors(texts, language)`: Tatoeba's accuracy of finding each sentence's English
    translation, or BUCC's F1 of the mined pairs at the best threshold (with its details)."""
    if args.task == "tatoeba":
        other, english = data
        return tatoeba_accuracy(vectors(other, language), vectors(english, "en"), args.scoring, args.k), None
    source_ids, source, target_ids, target, gold = data
    details = bucc_f1(source_ids, vectors(source, language), target_ids, vectors(target, "en"), gold, args.k)
    return details["f1"], details


def run(args) -> dict:
    from ernie_m import ErnieMTokenizer

    tokenizer = ErnieMTokenizer.from_pretrained(args.model)
    model = load_model(TASK.head_class(), args.model)
    layers = model.config.num_hidden_layers
    layer = default_layer(layers) if args.layer is None else args.layer
    if not 0 <= layer <= layers:
        raise BenchmarkDataError(f"--layer {layer}: this model has layers 0 (the embeddings) to {layers}")

    data = TASK.read(args)
    with_language_ids = model.config.num_languages > 0
    model_codes = {code: model_language(code, tokenizer, with_language_ids) for code in [*data, "en"]}

    def vectors(texts, language):
        return sentence_embeddings(model, tokenizer, texts, layer, model_codes[language], args.max_length)

    scores: Dict[str, float] = {}
    details: Dict[str, dict] = {}
    for language, texts in data.items():
        scores[language], detail = TASK.metric(args, texts, vectors, language)
        if detail is not None:
            details[language] = detail
    summary = {"task": args.task, "model": args.model, "layer": layer, "scores": with_average(scores),
               "details": details}
    return save_results(args.output_dir, summary) if args.output_dir else summary


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=["tatoeba", "bucc"])
    p.add_argument("--data_dir", required=True)
    p.add_argument("--languages", nargs="+", help="Tatoeba: deu fra ...; BUCC: de fr ru zh (default: every language "
                                                  "with files in --data_dir)")
    p.add_argument("--model", required=True)
    p.add_argument("--output_dir")
    p.add_argument("--split", default="test", help="BUCC: sample, training or test")
    p.add_argument("--layer", type=int, help="hidden layer (0 = embeddings; default: two thirds up)")
    p.add_argument("--scoring", default="cosine", choices=["cosine", "margin"], help="Tatoeba nearest neighbour")
    p.add_argument("--k", type=int, default=4, help="neighbours in the margin's density terms")
    p.add_argument("--max_length", type=integer_from(3), default=128)
    return p


def main(argv: Optional[Sequence[str]] = None) -> None:
    task_main(parser, run, lambda summary: summary["scores"], argv)


TASK = register(Task("retrieval", "encoder", read=read_data, metric=language_score, main=main))


if __name__ == "__main__":
    main()
