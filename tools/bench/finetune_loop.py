"""Fine-tuning's loop against PaddleNLP's Trainer: the same model, data, batch, optimizer and steps, one checkpoint
at the end, each arm in a fresh process; then what each leaves when a checkpoint write is cut short.

    OMP_NUM_THREADS=2 python -m tools.bench.finetune_loop --output outputs/bench/finetune_loop.json

The numbers decide whether `finetune` should run on Trainer (docs/design.md, "Fine-tuning's loop").
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from typing import Dict, List

from .common import in_fresh_process, median_seconds

ROWS = [("We cook pasta with tomatoes.", 0), ("They play football on Sunday.", 1),
        ("Wir kochen Nudeln mit Tomaten.", 0), ("Sie spielen am Sonntag Fußball.", 1)]


def _tokenizer_dir(work: str) -> str:
    from ernie_m.tokenizer_training import train_tokenizer

    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as handle:
        handle.write("\n".join(text for text, _ in ROWS * 50) + "\n")
    directory = os.path.join(work, "tokenizer")
    train_tokenizer([corpus], directory, vocab_size=120, languages=["en", "de"])
    return directory


def _model_and_data(tokenizer_dir: str, preset: str, rows: int, length: int):
    import paddle

    from ernie_m import ErnieMConfig, ErnieMForSequenceClassification, ErnieMTokenizer

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    paddle.seed(0)
    model = ErnieMForSequenceClassification(ErnieMConfig.from_preset(preset, vocab_size=len(tokenizer), num_labels=2))
    features = []
    for index in range(rows):
        text, label = ROWS[index % len(ROWS)]
        ids = tokenizer(" ".join([text] * 20), max_length=length, truncation=True)["input_ids"]
        features.append({"input_ids": ids, "labels": label})
    return model, tokenizer, features


def _ours(tokenizer_dir: str, preset: str, steps: int, batch: int, length: int, repeats: int,
          gradient_check: bool = True) -> Dict[str, object]:
    import finetune.trainer
    from finetune.arguments import FineTuningArguments
    from finetune.classification import make_collate
    from finetune.trainer import FineTuning

    if not gradient_check:  # attribution only: the loop as it would be without its per-step gradient check
        checked = finetune.trainer.step_finite
        finetune.trainer.step_finite = lambda loss, parameters, world, check_gradients=True: checked(
            loss, parameters, world, check_gradients=False)

    def one_run():
        model, tokenizer, features = _model_and_data(tokenizer_dir, preset, steps * batch, length)
        output = tempfile.mkdtemp()
        arguments = FineTuningArguments(output_dir=output, learning_rate=1e-4, per_device_train_batch_size=batch,
                                        max_steps=steps, eval_steps=steps, progress=False, logging_steps=steps)
        with FineTuning(arguments) as run:
            run.setup(model, tokenizer, features, make_collate(tokenizer.pad_token_id), lambda m: {"en": 0.0})
            run.train()
        shutil.rmtree(output)

    return median_seconds(one_run, repeats)


def _trainer(tokenizer_dir: str, preset: str, steps: int, batch: int, length: int, repeats: int) -> Dict[str, object]:
    from paddlenlp.data import DataCollatorWithPadding
    from paddlenlp.trainer import Trainer, TrainingArguments

    from ernie_m.training import build_optimizer

    def one_run():
        model, tokenizer, features = _model_and_data(tokenizer_dir, preset, steps * batch, length)
        output = tempfile.mkdtemp()
        arguments = TrainingArguments(output_dir=output, per_device_train_batch_size=batch, max_steps=steps,
                                      learning_rate=1e-4, save_strategy="steps", save_steps=steps, device="cpu",
                                      disable_tqdm=True, logging_steps=steps, seed=0, report_to=[])
        optimizer, schedule = build_optimizer(model, 1e-4, steps, 0.1, 0.0, layer_decay=0.8)
        Trainer(model=model, args=arguments, train_dataset=features, data_collator=DataCollatorWithPadding(tokenizer),
                optimizers=(optimizer, schedule)).train()
        shutil.rmtree(output)

    return median_seconds(one_run, repeats)


def _cut_checkpoint() -> Dict[str, str]:
    """A checkpoint whose write was cut short (its optimizer file missing, as a kill between the two writes
    leaves it): which checkpoint each loop resumes from."""
    from paddlenlp.trainer.trainer_utils import get_last_checkpoint

    from ernie_m.training.checkpoints import CheckpointManager

    output = tempfile.mkdtemp()
    for step in (2, 4):
        os.makedirs(os.path.join(output, f"checkpoint-{step}"))
        with open(os.path.join(output, f"checkpoint-{step}", "trainer_state.json"), "w") as handle:
            json.dump({"step": step}, handle)
    os.makedirs(os.path.join(output, "checkpoint-6"))  # the interrupted write: model files only
    open(os.path.join(output, "checkpoint-6", "model_state.pdparams"), "wb").close()
    found = {"paddlenlp_get_last_checkpoint": os.path.basename(get_last_checkpoint(output)),
             "ours_latest": os.path.basename(CheckpointManager(output).latest())}
    shutil.rmtree(output)
    return found


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["ernie-m-tiny", "ernie-m-small"])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default="outputs/bench/finetune_loop.json")
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp()
    tokenizer_dir = _tokenizer_dir(work)
    report = {"threads": os.environ.get("OMP_NUM_THREADS"), "steps": args.steps, "batch": args.batch,
              "length": args.length, "repeats": args.repeats, "runs": {}}
    for preset in args.presets:
        ours = in_fresh_process(_ours, (tokenizer_dir, preset, args.steps, args.batch, args.length, args.repeats),
                                True)
        trainer = in_fresh_process(_trainer, (tokenizer_dir, preset, args.steps, args.batch, args.length,
                                              args.repeats), True)
        unchecked = in_fresh_process(_ours, (tokenizer_dir, preset, args.steps, args.batch, args.length,
                                             args.repeats, False), True)
        report["runs"][preset] = {"ours": ours, "paddlenlp_trainer": trainer, "ours_loss_check_only": unchecked,
                                  "trainer_over_ours": trainer["median_s"] / ours["median_s"]}
        print(f"{preset}: ours {ours['median_s']:.2f} s, Trainer {trainer['median_s']:.2f} s, ours checking the "
              f"loss only {unchecked['median_s']:.2f} s for {args.steps} steps (Trainer / ours = "
              f"{trainer['median_s'] / ours['median_s']:.2f})")
    report["cut_checkpoint"] = in_fresh_process(_cut_checkpoint, (), False)
    print(f"resume after a cut write: {report['cut_checkpoint']}")
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(report, handle, indent=2)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
