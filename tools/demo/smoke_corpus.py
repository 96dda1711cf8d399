"""Write a tiny multilingual corpus (DESIGN §5 layout) for smoke runs: parallel en-de / en-fr / en-ru TSVs and
monolingual en, de, fr, ru files, from sentences written for this project.

Usage: python -m tools.demo.smoke_corpus OUTPUT_DIR   (creates OUTPUT_DIR/parallel and OUTPUT_DIR/monolingual)
"""
from __future__ import annotations

import os
import sys

PARALLEL = {
    "de": [
        ("The weather is nice today.", "Das Wetter ist heute schön."),
        ("I am reading a book.", "Ich lese ein Buch."),
        ("Where is the train station?", "Wo ist der Bahnhof?"),
        ("We learn many languages.", "Wir lernen viele Sprachen."),
        ("The children play in the garden.", "Die Kinder spielen im Garten."),
        ("My brother drinks coffee every morning.", "Mein Bruder trinkt jeden Morgen Kaffee."),
        ("This house is very old.", "Dieses Haus ist sehr alt."),
        ("She writes a long letter.", "Sie schreibt einen langen Brief."),
    ],
    "fr": [
        ("The weather is nice today.", "Il fait beau aujourd'hui."),
        ("I am reading a book.", "Je lis un livre."),
        ("Where is the train station?", "Où est la gare ?"),
        ("We learn many languages.", "Nous apprenons beaucoup de langues."),
        ("The children play in the garden.", "Les enfants jouent dans le jardin."),
        ("My brother drinks coffee every morning.", "Mon frère boit du café chaque matin."),
        ("This house is very old.", "Cette maison est très vieille."),
        ("She writes a long letter.", "Elle écrit une longue lettre."),
    ],
    "ru": [
        ("The weather is nice today.", "Сегодня хорошая погода."),
        ("I am reading a book.", "Я читаю книгу."),
        ("Where is the train station?", "Где вокзал?"),
        ("We learn many languages.", "Мы изучаем много языков."),
        ("The children play in the garden.", "Дети играют в саду."),
        ("My brother drinks coffee every morning.", "Мой брат пьёт кофе каждое утро."),
        ("This house is very old.", "Этот дом очень старый."),
        ("She writes a long letter.", "Она пишет длинное письмо."),
    ],
}


def write_corpus(output_dir: str, repeat: int = 8) -> dict:
    """Write the corpus; returns the paths of its two directories."""
    parallel_dir = os.path.join(output_dir, "parallel")
    mono_dir = os.path.join(output_dir, "monolingual")
    os.makedirs(parallel_dir, exist_ok=True)
    os.makedirs(mono_dir, exist_ok=True)
    monolingual = {"en": []}
    for language, pairs in PARALLEL.items():
        with open(os.path.join(parallel_dir, f"en-{language}.tsv"), "w", encoding="utf-8") as handle:
            for english, other in pairs * repeat:
                handle.write(f"{english}\t{other}\n")
        monolingual[language] = [other for _, other in pairs]
        monolingual["en"] = [english for english, _ in pairs]
    for language, lines in monolingual.items():
        with open(os.path.join(mono_dir, f"{language}.txt"), "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines * repeat) + "\n")
    return {"parallel": parallel_dir, "monolingual": mono_dir}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(write_corpus(sys.argv[1]))
