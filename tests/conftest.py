"""Shared fixtures: a tokenizer trained here on a small multilingual text, tiny configs, seeds."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

from ernie_m.cpu import configure_process  # noqa: E402

configure_process()  # the suite's process is ours: settings made before Paddle loads

import numpy as np  # noqa: E402
import paddle  # noqa: E402
import pytest  # noqa: E402

# Sentences written for these tests, one script or trap per line (no external data).
MULTILINGUAL_SAMPLE = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Machine translation systems learn from parallel sentences in many languages.",
    "Der schnelle braune Fuchs springt über den faulen Hund am Flussufer.",
    "Le renard brun rapide saute par-dessus le chien paresseux, près de la rivière.",
    "El zorro marrón salta sobre el perro perezoso; ¿dónde está el río?",
    "Быстрая коричневая лиса прыгает через ленивую собаку у реки.",
    "Мы изучаем многоязычные модели и машинный перевод.",
    "Η γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο.",
    "Τα γλωσσικά μοντέλα μαθαίνουν από κείμενα σε πολλές γλώσσες.",
    "الثعلب البني السريع يقفز فوق الكلب الكسول بالقرب من النهر.",
    "نحن نتعلم الترجمة الآلية من الجمل المتوازية.",
    "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है।",
    "हम कई भाषाओं में मशीन अनुवाद सीखते हैं।",
    "สุนัขจิ้งจอกสีน้ำตาลกระโดดข้ามสุนัขขี้เกียจ",
    "เราเรียนรู้การแปลภาษาด้วยเครื่องจากประโยคคู่ขนาน",
    "敏捷的棕色狐狸跳过了懒惰的狗。我们学习多语言模型！",
    "機械翻訳は多くの言語の並列文から学びます。",
    "빠른 갈색 여우가 게으른 개를 뛰어넘습니다.",
    "Version 3.14 was released on 2025-06-01, costing $1,299.99 (or 1299€).",
    "Call +49 30 1234567 or mail info@example.org before 10:30am!",
    "ＦＵＬＬ－ＷＩＤＴＨ ｆｏｒｍｓ：ＡＢＣ１２３，ｄｅｆ４５６。",
    "Emoji 😀🎉👍🏽 and symbols ©®™ ½ ² ³ ∑ ∞ ≠ ≤ mixed in text.",
    "Mixed12digits34and56letters abc123def 99bottles 7th 21st 3.5kg",
    "Ünïcödé àccents: naïve café façade coöperate São Paulo Zürich Kraków",
]


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "multilingual.txt"
    path.write_text("\n".join(MULTILINGUAL_SAMPLE * 3) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, corpus_file):
    """A directory with sentencepiece.bpe.model + vocab.txt trained by `ernie-m train-tokenizer`."""
    from ernie_m.tokenizer_training import train_tokenizer

    out = str(tmp_path_factory.mktemp("tokenizer"))
    train_tokenizer([corpus_file], out, vocab_size=400, languages=["en", "de", "ru"])
    return out


@pytest.fixture(autouse=True)
def _seed():
    paddle.seed(1234)
    np.random.seed(1234)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer_dir):
    """A tiny ERNIE-M with the test tokenizer, saved like a released checkpoint (no language embedding)."""
    from ernie_m import ErnieMConfig, ErnieMModel, ErnieMTokenizer

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    out = str(tmp_path_factory.mktemp("tiny_model"))
    paddle.seed(7)
    ErnieMModel(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=len(tokenizer))).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, tokenizer_dir):
    """Parallel en-de / en-ru pairs and monolingual en, de, ru text made from the shared sample."""
    root = tmp_path_factory.mktemp("pretrain_corpus")
    (root / "parallel").mkdir()
    (root / "mono").mkdir()
    english, german, russian = MULTILINGUAL_SAMPLE[0:2], MULTILINGUAL_SAMPLE[2:4], MULTILINGUAL_SAMPLE[5:7]
    # Bad lines first, so that the first pass over each file meets them.
    (root / "parallel" / "en-de.tsv").write_text(
        "only one column\n\tempty source\n"
        + "".join(f"{e}\t{g}\n" for e, g in zip(english * 10, german * 10)), encoding="utf-8")
    (root / "parallel" / "en-ru.tsv").write_bytes(
        b"bad \xff utf8\tx\n" + "".join(f"{e}\t{r}\n" for e, r in zip(english * 10, russian * 10)).encode())
    for code, lines in (("en", english), ("de", german), ("ru", russian)):
        (root / "mono" / f"{code}.txt").write_text("\n" + "\n".join(lines * 10) + "\n", encoding="utf-8")
    return root
