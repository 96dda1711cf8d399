"""The main job: real multilingual text -> tokenizer -> ERNIE-M and baselines pretrained -> alignment measured.

    python -m tools.demo.run --output_dir outputs/demo        (what `make demo` runs; about 15 minutes on 2 cores)

1. builds the corpus from pinned registry packages (tools/demo/corpus.py);
2. trains a sentencepiece tokenizer on its monolingual text;
3. pretrains, with the same steps and batch budget each: ERNIE-M in two stages (CAMLM + MMLM, then + BTMLM), an
   MMLM-only baseline and an MMLM + TLM baseline (pretrain/run_pretrain.py with pretrain/configs/demo.yaml);
4. evaluates every model (and ERNIE-M after stage 1, to isolate BTMLM) on retrieval and zero-shot transfer;
5. writes results.json, report.md and scores.png. Seeds are fixed: a rerun gives the same table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tools.demo.corpus import MONOLINGUAL_ONLY_LANGUAGES, PARALLEL_LANGUAGES, DemoDataError, build_corpus  # noqa: E402
from tools.demo.report import TASKS, averages, write_report  # noqa: E402

CONFIG = os.path.join(ROOT, "pretrain", "configs", "demo.yaml")
STAGE_ONE = {"camlm": 0.5, "mmlm": 0.5}
STAGE_TWO = {"camlm": 0.35, "mmlm": 0.35, "btmlm": 0.3}
# name -> (objectives of stage 1, of stage 2): every other setting is shared.
MODELS = {
    "ernie-m": (STAGE_ONE, STAGE_TWO),
    "mmlm": ({"mmlm": 1.0}, {"mmlm": 1.0}),
    "mmlm-tlm": ({"mmlm": 0.5, "tlm": 0.5}, {"mmlm": 0.5, "tlm": 0.5}),
}
STAGE_ONE_MODEL = "ernie-m-stage1"


def _objectives_text(stage_one: dict, stage_two: dict) -> str:
    one, two = "+".join(sorted(stage_one)), "+".join(sorted(stage_two))
    return one if one == two else f"{one}, then {two}"


def pretrain(name: str, stages: tuple, args, corpus: str, tokenizer: str, output_dir: str) -> dict:
    run_dir = os.path.join(output_dir, "runs", name)
    if os.path.isdir(run_dir):
        shutil.rmtree(run_dir)  # a rerun starts over, so the table is reproducible
    overrides = [f"tokenizer={tokenizer}", f"data.parallel_dir={os.path.join(corpus, 'parallel')}",
                 f"data.monolingual_dir={os.path.join(corpus, 'monolingual')}", f"model.preset={args.preset}",
                 f"train.save_steps={args.steps_per_stage}", "train.keep_checkpoints=2"]
    for index, objectives in enumerate(stages):
        overrides += [f"stages.{index}.steps={args.steps_per_stage}",
                      f"stages.{index}.objectives={json.dumps(objectives)}"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, os.path.join(ROOT, "pretrain", "run_pretrain.py"), "--config", CONFIG,
                             "--output_dir", run_dir, *overrides], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL if args.quiet else None)
    if result.returncode != 0:
        raise SystemExit(f"demo: pretraining {name} failed (exit {result.returncode}); its log is in {run_dir}")
    seconds = time.perf_counter() - started
    return {"run_dir": run_dir, "steps": 2 * args.steps_per_stage, "tokens": _tokens_logged(run_dir),
            "seconds": seconds, "objectives": _objectives_text(*stages)}


def export(checkpoint: str, destination: str) -> str:
    """The checkpoint as a from_pretrained directory (weights, config, tokenizer), without the optimizer."""
    if os.path.isdir(destination):
        shutil.rmtree(destination)
    os.makedirs(destination)
    for name in os.listdir(checkpoint):
        if not name.startswith("optimizer") and name != "trainer_state.json":
            shutil.copy2(os.path.join(checkpoint, name), destination)
    return destination


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default=os.path.join("outputs", "demo"))
    parser.add_argument("--cache_dir", default=os.path.join("outputs", "package_cache"),
                        help="where the registry packages are downloaded once")
    parser.add_argument("--parallel_languages", nargs="+", default=PARALLEL_LANGUAGES)
    parser.add_argument("--monolingual_languages", nargs="+", default=MONOLINGUAL_ONLY_LANGUAGES)
    parser.add_argument("--preset", default="ernie-m-mini", help="model shape (ernie_m.configuration.PRESETS)")
    parser.add_argument("--steps_per_stage", type=int, default=400)
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--retrieval_layer", type=int, default=None,
                        help="hidden layer for sentence embeddings (0 = embeddings; default: two thirds up)")
    parser.add_argument("--transfer_epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if "ernie-m" not in args.models or "mmlm" not in args.models:
        parser.error("--models must include ernie-m and its mmlm baseline")

    from paddlenlp.utils.log import logger

    logger.set_level("ERROR")  # PaddleNLP's notes about unused LM-head weights are expected here
    out = os.path.abspath(args.output_dir)
    os.makedirs(out, exist_ok=True)
    started = time.perf_counter()

    print("[1/5] corpus from registry packages")
    corpus = os.path.join(out, "corpus")
    try:
        manifest = build_corpus(corpus, args.cache_dir, args.parallel_languages, args.monolingual_languages,
                                seed=args.seed)
    except DemoDataError as error:
        raise SystemExit(f"demo: {error}")
    languages = manifest["parallel_languages"] + manifest["monolingual_only_languages"]

    print("[2/5] tokenizer")
    from tools.train_tokenizer import train_tokenizer

    tokenizer = train_tokenizer([os.path.join(corpus, "monolingual", f"{lang}.txt") for lang in ["en", *languages]],
                                os.path.join(out, "tokenizer"), vocab_size=args.vocab_size,
                                languages=["en", *languages])

    print(f"[3/5] pretraining {', '.join(args.models)}")
    runs, model_dirs = {}, {}
    for name in args.models:
        runs[name] = pretrain(name, MODELS[name], args, corpus, tokenizer, out)
        final = os.path.join(runs[name]["run_dir"], f"checkpoint-{runs[name]['steps']}")
        model_dirs[name] = export(final, os.path.join(out, "models", name))
    stage_one = os.path.join(runs["ernie-m"]["run_dir"], f"checkpoint-{args.steps_per_stage}")
    model_dirs = {STAGE_ONE_MODEL: export(stage_one, os.path.join(out, "models", STAGE_ONE_MODEL)), **model_dirs}

    print("[4/5] evaluation: retrieval and zero-shot transfer")
    from tools.demo.evaluate import evaluate_model

    results = {"parallel_languages": manifest["parallel_languages"],
               "monolingual_only_languages": manifest["monolingual_only_languages"],
               "main_model": "ernie-m", "baseline_model": "mmlm", "stage_one_model": STAGE_ONE_MODEL,
               "corpus_summary": _corpus_summary(manifest), "models": {}, "pretraining": {}}
    for name, directory in model_dirs.items():
        print(f"  {name}")
        scores = evaluate_model(directory, corpus, manifest, os.path.join(out, "transfer", name),
                                layer=args.retrieval_layer, seed=args.seed, transfer_epochs=args.transfer_epochs,
                                progress=not args.quiet)
        for task in TASKS:
            scores[task].update(averages(scores[task], manifest["parallel_languages"],
                                         manifest["monolingual_only_languages"]))
        results["models"][name] = scores
    for name, run in runs.items():
        results["pretraining"][name] = {key: run[key] for key in ("objectives", "steps", "tokens", "seconds")}
    results["pretraining"][STAGE_ONE_MODEL] = {
        "objectives": "+".join(sorted(STAGE_ONE)), "steps": args.steps_per_stage,
        "tokens": _tokens_logged(runs["ernie-m"]["run_dir"], args.steps_per_stage), "seconds": None}

    print("[5/5] report")
    with open(os.path.join(out, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    write_report(results, out)
    print(f"done in {(time.perf_counter() - started) / 60:.1f} min: {os.path.join(out, 'report.md')}")


def _tokens_logged(run_dir: str, until_step: float = float("inf")) -> int:
    """Real tokens trained on (all ranks) in the steps up to `until_step`, from the run's step log."""
    total = 0
    with open(os.path.join(run_dir, "log_rank0.jsonl")) as handle:
        for line in handle:
            record = json.loads(line)
            if "step" in record and record["step"] <= until_step:
                total += record.get("tokens", 0)
    return total


def _corpus_summary(manifest: dict) -> str:
    counts = manifest["counts"]
    pairs = sum(counts[lang].get("parallel", 0) for lang in manifest["parallel_languages"])
    lines = sum(counts[lang]["monolingual"] for lang in counts)
    sources = ", ".join(f"{name}=={version}" for name, version in manifest["sources"].items())
    return (f"{pairs:,} English-aligned pairs and {lines:,} monolingual lines from {sources}; retrieval on "
            f"{manifest['retrieval_source']}; {len(manifest['topics'])} topics for transfer.")


if __name__ == "__main__":
    main()
