"""Helpers several test modules share that are not fixtures: benchmark files written in the official layouts, and
the pretraining entry run as a subprocess."""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRETRAIN_SCRIPT = os.path.join(ROOT, "pretrain", "run_pretrain.py")
SMOKE_CONFIG = os.path.join(ROOT, "pretrain", "configs", "smoke.yaml")

XNLI_HEADER = ("language\tgold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
               "sentence2_parse\tsentence1\tsentence2\tpromptID\tpairID\tgenre\tlabel1\tlabel2\tlabel3\tlabel4\t"
               "label5\tsentence1_tokenized\tsentence2_tokenized\tmatch")


def xnli_row(language, label, first, second):
    return "\t".join([language, label, "", "", "", "", first, second, "1", "1", "fiction", label, label, label,
                      label, label, first, second, "True"])


def write_xnli(directory):
    english = [("A man eats bread.", "A person eats.", "entailment"),
               ("A man eats bread.", "Nobody eats.", "contradiction"),
               ("A woman sings.", "A woman sings loudly.", "neutral")]
    german = [("Ein Mann isst Brot.", "Eine Person isst.", "entailment"),
              ("Ein Mann isst Brot.", "Niemand isst.", "contradiction")]
    rows = [xnli_row("en", label, a, b) for a, b, label in english] + \
           [xnli_row("de", label, a, b) for a, b, label in german]
    for split in ("dev", "test"):
        (directory / f"xnli.{split}.tsv").write_text(XNLI_HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    header = "gold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\t" \
             "sentence1\tsentence2\tpromptID\tpairID\tgenre"
    train = [f"{label}\t\t\t\t\t{a}\t{b}\t1\t1\tgov" for a, b, label in english * 6]
    (directory / "multinli_1.0_train.txt").write_text(header + "\n" + "\n".join(train) + "\n", encoding="utf-8")
    (directory / "XNLI-Translated").mkdir()
    (directory / "XNLI-Translated" / "en-de-translated.tsv").write_text(
        "".join(f"{a}\t{b}\t{'contradictory' if label == 'contradiction' else label}\n" for a, b, label in german))


def read_log(output_dir, rank=0):
    """step -> record, the last record of each step (a resumed run rewrites the steps after its checkpoint);
    "final" -> the closing record with the parameter digest."""
    records = {}
    with open(os.path.join(output_dir, f"log_rank{rank}.jsonl")) as handle:
        for line in handle:
            record = json.loads(line)
            records[record.get("step", "final")] = record
    return records


def save_language_model(model_class, tokenizer, directory, seed: int, sharpen=(), **config_fields):
    """A tiny `model_class` with a three-language embedding whose rows are far apart (a trained one's are; the
    initial zeros would make every language give the same output), saved with `tokenizer` into `directory`.
    `sharpen` names output layers scaled up, so that decisions depend on the input."""
    import paddle

    from ernie_m import ErnieMConfig

    paddle.seed(seed)
    model = model_class(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=len(tokenizer), num_languages=3,
                                                 **config_fields))
    embedding = model.base_model.embeddings.language_embeddings.weight
    embedding.set_value(paddle.randn(embedding.shape) * 2.0)
    for name in sharpen:
        weight = getattr(model, name).weight
        weight.set_value(weight * 40.0)
    model.eval()
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return model


def one_line_exit(capsys, main, argv, status=2) -> str:
    """Run a command's main, which must stop with `status` and one line on stderr (after what earlier calls left
    there); that line."""
    import pytest

    capsys.readouterr()
    with pytest.raises(SystemExit) as caught:
        main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert caught.value.code == status and len(lines) == 1, (caught.value.code, lines)
    return lines[0]
