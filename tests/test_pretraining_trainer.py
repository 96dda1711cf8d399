"""The pretraining run driven in process: steps, resume, what a resume refuses, the language map it saves."""
import json
import os

import pytest

from ernie_m.pretraining.config import PretrainingConfig, load_config
from ernie_m.objectives import SpecialIds
from ernie_m.pretraining.trainer import Pretraining, RunError, build_objective

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "pretrain", "configs", "smoke.yaml")


def smoke_config(corpus, tokenizer_dir, *overrides):
    return load_config(SMOKE, [f"tokenizer={tokenizer_dir}", f"data.parallel_dir={corpus / 'parallel'}",
                               f"data.monolingual_dir={corpus / 'mono'}", "data.num_workers=0", *overrides])


def learning_rates(output_dir):
    with open(os.path.join(output_dir, "log_rank0.jsonl")) as handle:
        records = [json.loads(line) for line in handle]
    return {r["step"]: r["lr"] for r in records if "step" in r}


def test_btmlm_translates_by_default_into_the_languages_of_the_parallel_data(tmp_path):
    (tmp_path / "en-de.tsv").write_text("a\tb\n")

    def config(**btmlm):
        return PretrainingConfig.from_dict({"tokenizer": "t", "data": {"parallel_dir": str(tmp_path)},
                                            "btmlm": btmlm, "stages": [{"name": "s", "steps": 1,
                                                                        "objectives": {"btmlm": 1}}]})

    ids = {"en": 0, "de": 1, "it": 2}

    def btmlm_target_languages(config, ids):
        return build_objective("btmlm", config, SpecialIds(mask=9), 10, 32, ids).target_languages

    assert btmlm_target_languages(config(), ids) == [0, 1]  # never Italian: no pairs
    no_pairs = config()
    no_pairs.data.parallel_dir = None
    assert btmlm_target_languages(no_pairs, ids) == [0, 1, 2]
    assert btmlm_target_languages(config(target_languages=["it", "en"]), ids) == [0, 2]
    with pytest.raises(RunError, match=r"btmlm.target_languages: \['xx'\] not among"):
        btmlm_target_languages(config(target_languages=["xx"]), ids)


def test_a_step_in_process_and_a_resume_that_keeps_the_schedule(corpus, tokenizer_dir, tmp_path):
    whole = Pretraining(smoke_config(corpus, tokenizer_dir), str(tmp_path / "whole"))
    name, metrics = whole.train_step(0)
    assert name in ("camlm", "mmlm") and metrics["tokens"] > 0 and metrics[f"{name}_loss"] > 0
    whole.close()
    whole = Pretraining(smoke_config(corpus, tokenizer_dir), str(tmp_path / "whole"))
    whole.train()
    # Stopped at step 4 with --max_steps, then resumed: the schedule is the stages' 12 steps both times, so the
    # learning rate of every step equals the uninterrupted run's (it used to be a 4-step schedule, then a jump).
    Pretraining(smoke_config(corpus, tokenizer_dir), str(tmp_path / "split"), stop_at=4).train()
    assert "pretraining_config.json" in os.listdir(tmp_path / "split" / "checkpoint-4")
    Pretraining(smoke_config(corpus, tokenizer_dir), str(tmp_path / "split"), resume=True).train()
    assert learning_rates(tmp_path / "split") == learning_rates(tmp_path / "whole")
    assert max(learning_rates(tmp_path / "whole")) == 12


@pytest.fixture(scope="module")
def stopped_at_4(tmp_path_factory, corpus, tokenizer_dir):
    """A run stopped at step 4 (checkpoint-4), made once; tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("stopped") / "out"
    Pretraining(smoke_config(corpus, tokenizer_dir), str(out), stop_at=4).train()
    return out


def _copy_of(run, tmp_path):
    import shutil

    destination = tmp_path / "out"
    shutil.copytree(run, destination)
    return destination


@pytest.mark.parametrize("override, message", [
    ("stages.1.steps=20", "schedule length (the sum of stages.*.steps) was 12 in the saved run and is 26 now"),
    ("languages=[ru, de, en]", "languages was ['en', 'de', 'ru'] in the saved run and is ['ru', 'de', 'en'] now"),
    ("model.overrides.intermediate_size=32", "model was "),
    ("train.seed=7", "train.seed was 42 in the saved run and is 7 now"),
    ("camlm.mask_prob=0.3", "camlm.mask_prob was 0.15 in the saved run and is 0.3 now"),
])
def test_a_resume_refuses_what_must_not_change_in_one_line(corpus, tokenizer_dir, tmp_path, stopped_at_4, override,
                                                           message):
    out = str(_copy_of(stopped_at_4, tmp_path))
    with pytest.raises(RunError) as caught:
        Pretraining(smoke_config(corpus, tokenizer_dir, override), out, resume=True)
    text = str(caught.value)
    assert text.startswith(f"cannot resume from {out}/checkpoint-4: {message}") and "\n" not in text
    assert text.endswith("or start a new --output_dir")
    with pytest.raises(RunError, match=r"--max_steps 13 is outside the schedule \(1-12 steps"):
        Pretraining(smoke_config(corpus, tokenizer_dir), out, resume=True, stop_at=13)


def test_a_resume_names_what_it_accepts_and_refuses_a_stop_before_its_step(corpus, tokenizer_dir, tmp_path,
                                                                          stopped_at_4, capsys):
    """A resume names each change it accepts and refuses the others (a changed seed or masking rate is another run);
    `--resume --max_steps 2` over checkpoint-4 is refused rather than doing nothing."""
    out = str(_copy_of(stopped_at_4, tmp_path))
    run = Pretraining(smoke_config(corpus, tokenizer_dir, "train.save_steps=2"), out, resume=True)
    run.close()
    assert "resume: train.save_steps was 4 in the saved run and is 2 now" in capsys.readouterr().out
    with pytest.raises(RunError, match=r"checkpoint-4 is at step 4, past --max_steps 2: nothing to train"):
        Pretraining(smoke_config(corpus, tokenizer_dir), out, resume=True, stop_at=2)


def test_the_checkpoint_tokenizer_carries_the_training_language_ids_into_fine_tuning(corpus, tokenizer_dir,
                                                                                     tmp_path):
    """Trained with languages [ru, de, en] (the tokenizer's own order is en, de, ru): the checkpoint's tokenizer
    gives Russian id 0, so a fine-tuning pipeline reading the checkpoint uses the ids the model was trained with."""
    from ernie_m import ErnieMTokenizer
    from finetune.classification import encode
    from finetune.readers import PairExample

    assert ErnieMTokenizer.from_pretrained(tokenizer_dir).languages == ["en", "de", "ru"]
    out = tmp_path / "out"
    Pretraining(smoke_config(corpus, tokenizer_dir, "languages=[ru, de, en]"), str(out), stop_at=2).train()
    tokenizer = ErnieMTokenizer.from_pretrained(str(out / "checkpoint-2"))
    assert tokenizer.languages == ["ru", "de", "en"]
    examples = [PairExample("Мы изучаем модели.", None, "0", "ru"), PairExample("A fox.", None, "0", "en")]
    russian, english = encode(tokenizer, examples, 32, with_language_ids=True)
    assert set(russian["language_ids"]) == {0} and set(english["language_ids"]) == {2}


def test_a_run_owns_its_output_directory(corpus, tokenizer_dir, tmp_path):
    """A fresh run refuses a directory holding an earlier run's checkpoints (they would outrank its own in rotation)
    unless --overwrite, and a second run cannot write into a directory in use."""
    out = tmp_path / "out"
    Pretraining(smoke_config(corpus, tokenizer_dir, "train.save_steps=2", "train.keep_checkpoints=3"), str(out),
                stop_at=12).train()
    with pytest.raises(RunError, match=r"holds an earlier run \(checkpoint-8, checkpoint-10, "
                                       r"checkpoint-12\): --resume to continue it, --overwrite"):
        Pretraining(smoke_config(corpus, tokenizer_dir), str(out))
    holder = Pretraining(smoke_config(corpus, tokenizer_dir), str(out), resume=True)
    try:
        with pytest.raises(RunError, match=rf"{out} is in use by another run \(pid {os.getpid()}\)"):
            Pretraining(smoke_config(corpus, tokenizer_dir), str(out), resume=True)
    finally:
        holder.close()
    # --overwrite starts over: the new run's checkpoints are the only ones, its log starts at step 1.
    Pretraining(smoke_config(corpus, tokenizer_dir, "train.save_steps=2"), str(out), stop_at=4, overwrite=True).train()
    assert sorted(name for name in os.listdir(out) if name.startswith("checkpoint-")) == ["checkpoint-2",
                                                                                         "checkpoint-4"]
    assert sorted(learning_rates(out)) == [1, 2, 3, 4]


def test_resume_logs_each_step_once_and_cleans_what_a_kill_left(corpus, tokenizer_dir, tmp_path):
    out = tmp_path / "out"
    Pretraining(smoke_config(corpus, tokenizer_dir), str(out), stop_at=6).train()  # checkpoints at 4 and 6
    # A kill after step 6's checkpoint and a few more logged steps, in the middle of deleting a rotated checkpoint
    # and of writing the next one:
    with open(out / "log_rank0.jsonl", "a") as handle:
        handle.write('{"step": 7, "lr": 1.0}\n{"step": 8, "lr": 1.0}\n{"step": 9, "l')
    (out / ".deleting-checkpoint-2").mkdir()
    (out / ".tmp-checkpoint-8").mkdir()
    Pretraining(smoke_config(corpus, tokenizer_dir), str(out), resume=True).train()
    with open(out / "log_rank0.jsonl") as handle:
        steps = [json.loads(line).get("step") for line in handle]
    assert [s for s in steps if s is not None] == list(range(1, 13))  # every step once, in order
    assert not any(name.startswith(".") and name != ".run.lock" for name in os.listdir(out))


def _corrupt(checkpoint, kind):
    """Change a checkpoint as `kind` says. Except for "flipped byte", the trainer state's digests are rewritten to
    match (a crafted or pre-digest checkpoint), so that the loading checks behind them are what is tested."""
    import json

    from ernie_m.training.checkpoints import file_digests

    _change(checkpoint, kind)
    if kind != "flipped byte" and kind != "state is a list":
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        state["file_sha256"] = file_digests(str(checkpoint))
        (checkpoint / "trainer_state.json").write_text(json.dumps(state))


def _change(checkpoint, kind):
    from ernie_m.weights import load_state_dict, save_state_dict

    if kind == "flipped byte":
        path = checkpoint / "optimizer.safetensors"
        data = bytearray(path.read_bytes())
        data[-10] ^= 0x01
        path.write_bytes(bytes(data))
    elif kind in ("empty weights", "missing layer", "wrong shape"):
        path = checkpoint / "model_state.pdparams"
        state = load_state_dict(str(path))
        if kind == "empty weights":
            state = {}
        elif kind == "missing layer":
            state = {k: v for k, v in state.items() if ".layers.1." not in k}
        else:
            key = next(k for k in state if k.endswith("linear1.weight"))
            state[key] = state[key][:, :-1]
        save_state_dict(state, str(path))
    elif kind == "state is a list":
        (checkpoint / "trainer_state.json").write_text("[1, 2]")
    elif kind == "data of the wrong kind":
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        state["data"] = [{"elsewhere": {}}]
        (checkpoint / "trainer_state.json").write_text(json.dumps(state))
    elif kind == "moments missing":
        from ernie_m.weights import load_state_dict, save_state_dict

        path = checkpoint / "optimizer.safetensors"
        state = load_state_dict(str(path))
        save_state_dict({k: v for k, v in state.items() if not k.endswith("linear2.weight_moment2_0")}, str(path))


@pytest.mark.parametrize("kind, message", [
    ("empty weights", "model_state.pdparams: missing key "),
    ("missing layer", "model_state.pdparams: missing key 'ernie_m.encoder.layers.1."),
    ("wrong shape", "linear1.weight' has shape "),
    ("state is a list", "trainer_state.json: expected a JSON object, found list"),
    ("data of the wrong kind", "trainer_state.json has no entry 'parallel' for this run's data"),
    ("moments missing", "optimizer.safetensors: optimizer state lacks ernie_m.encoder.layers.0.linear2.weight_moment2_0"),
    ("flipped byte", "optimizer.safetensors: its SHA-256 differs from the one written with the checkpoint"),
])
def test_resume_is_strict_about_what_it_loads(corpus, tokenizer_dir, tmp_path, stopped_at_4, kind, message):
    """An incomplete weight file, trainer-state JSON of the wrong structure and missing optimizer moments are each
    refused in one line naming the checkpoint; none resumes from random weights."""
    out = _copy_of(stopped_at_4, tmp_path)
    _corrupt(out / "checkpoint-4", kind)
    with pytest.raises(RunError) as caught:
        Pretraining(smoke_config(corpus, tokenizer_dir), str(out), resume=True)
    text = str(caught.value)
    assert text.startswith(f"cannot resume from {out}/checkpoint-4: ") and message in text and "\n" not in text


def test_resume_refuses_another_tokenizer(corpus, tokenizer_dir, tmp_path, stopped_at_4):
    import shutil

    out = _copy_of(stopped_at_4, tmp_path)
    other = tmp_path / "other_tokenizer"
    shutil.copytree(tokenizer_dir, other)
    with open(other / "vocab.txt", "a") as handle:
        handle.write("extra_token\n")
    with pytest.raises(RunError, match="the tokenizer's files .* differ from the ones the run was trained with"):
        Pretraining(smoke_config(corpus, other), str(out), resume=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 3.5 MB tmpfs: room for one smoke checkpoint (about 2.2 MB) and its logs, not two."""
    import subprocess

    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3500k", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not permitted'})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_a_really_full_disk_stops_with_one_line_and_the_last_checkpoint_intact(corpus, tokenizer_dir, small_disk):
    """A full disk while writing (safetensors reports it as `SafetensorError ... os error 28`, not an OSError) stops
    the run in one line, with the last checkpoint intact."""
    from ernie_m import ErnieMModel

    out = small_disk / "out"
    with pytest.raises(RunError) as caught:
        Pretraining(smoke_config(corpus, tokenizer_dir, "train.save_steps=4"), str(out)).train()
    text = str(caught.value)
    assert text.startswith(f"could not write checkpoint-8 in {out} (") and "\n" not in text
    assert ("os error 28" in text or "No space left" in text) and f"is {out}/checkpoint-4; free space" in text
    assert sorted(name for name in os.listdir(out) if "checkpoint" in name) == ["checkpoint-4"]
    assert ErnieMModel.from_pretrained(str(out / "checkpoint-4")) is not None


@pytest.mark.parametrize("workers", [0, 1])
def test_a_corpus_file_with_no_usable_line_is_named_before_training(corpus, tokenizer_dir, tmp_path, workers):
    """A corpus file with no usable line is named before training, with reader workers or without."""
    import shutil

    data = tmp_path / "corpus"
    shutil.copytree(corpus, data)
    (data / "mono" / "de.txt").write_bytes(b"\r\r\r")  # CR-only line endings: one line, empty
    with pytest.raises(RunError, match=rf"{data}/mono/de.txt: no usable line in any shard"):
        Pretraining(smoke_config(data, tokenizer_dir, f"data.num_workers={workers}"), str(tmp_path / "out"))
    assert not (tmp_path / "out" / "log_rank0.jsonl").exists()


def test_without_a_language_embedding_the_checkpoint_is_the_released_architecture(corpus, tokenizer_dir, tmp_path):
    """`model.language_embedding=false`: the run's checkpoint has PaddleNLP's key set, and PaddleNLP's ErnieMModel
    runs it as our model does (the default, with an embedding, it would run without the language rows)."""
    import numpy as np
    import paddle
    from paddlenlp.transformers import ErnieMModel as PaddleNLPErnieMModel

    from ernie_m import ErnieMModel, ErnieMTokenizer

    run = Pretraining(smoke_config(corpus, tokenizer_dir, "model.language_embedding=false"), str(tmp_path / "out"),
                      stop_at=2)
    run.train()
    checkpoint = str(tmp_path / "out" / "checkpoint-2")
    assert json.load(open(os.path.join(checkpoint, "config.json")))["num_languages"] == 0
    ours, theirs = ErnieMModel.from_pretrained(checkpoint), PaddleNLPErnieMModel.from_pretrained(checkpoint)
    assert set(ours.state_dict()) == set(theirs.state_dict())
    batch = ErnieMTokenizer.from_pretrained(checkpoint)(["a short text", "ein etwas längerer Text hier"],
                                                        padding=True, return_tensors="pd")
    ours.eval(), theirs.eval()
    with paddle.no_grad():
        mask = batch["attention_mask"]
        gap = np.abs(ours(batch["input_ids"], attention_mask=mask)[0].numpy() -
                     theirs(batch["input_ids"], attention_mask=mask.unsqueeze([1, 2]).astype("float32").
                            subtract(paddle.to_tensor(1.0)).multiply(paddle.to_tensor(1e4)))[0].numpy()).max()
    assert gap <= 1e-5


def test_a_closed_btmlm_shares_its_weight_over_the_open_objectives_in_proportion(corpus, tokenizer_dir, tmp_path):
    """Stage 2 of the smoke config draws camlm 0.4, mmlm 0.2, btmlm 0.4. Until the gate opens the step is drawn
    once among camlm and mmlm (2:1); drawing with BTMLM first and again without it on a BTMLM draw made every such
    step CAMLM (4:1)."""
    config = smoke_config(corpus, tokenizer_dir, f"data.eval_parallel_dir={corpus / 'parallel'}",
                          "train.eval_steps=1000", "btmlm.min_distinct_share=0.5")
    run = Pretraining(config, str(tmp_path / "out"))
    try:
        assert run.ready_at["btmlm"] is None
        steps = range(6, 6 + 6000)  # past the schedule, stage 2 continues
        closed = [run.objective_name(step) for step in steps]
        assert "btmlm" not in closed
        assert abs(closed.count("camlm") / len(closed) - 2 / 3) < 0.02
        run.ready_at["btmlm"] = 6
        opened = [run.objective_name(step) for step in steps]
        assert abs(opened.count("btmlm") / len(opened) - 0.4) < 0.02
        assert abs(opened.count("camlm") / len(opened) - 0.4) < 0.02
    finally:
        run.close()


def test_a_branch_continues_another_runs_checkpoint_with_only_the_stages_not_yet_begun_changed(
        corpus, tokenizer_dir, tmp_path, stopped_at_4):
    """Branching checkpoint-4 with the same configuration is the resume, digest for digest; with stage 2's
    objectives changed it trains those from step 7 in its own directory; a change to stage 1, which trained the
    checkpoint, is refused in one line."""
    checkpoint = str(stopped_at_4 / "checkpoint-4")
    resumed = _copy_of(stopped_at_4, tmp_path)
    Pretraining(smoke_config(corpus, tokenizer_dir), str(resumed), resume=True).train()
    same = tmp_path / "same"
    Pretraining(smoke_config(corpus, tokenizer_dir), str(same), branch_from=checkpoint).train()

    def records(out):
        with open(os.path.join(out, "log_rank0.jsonl")) as handle:
            return [json.loads(line) for line in handle]

    digest = [r["final_parameter_sha256"] for r in records(resumed) if "final_parameter_sha256" in r][-1]
    assert [r["final_parameter_sha256"] for r in records(same) if "final_parameter_sha256" in r] == [digest]
    assert [r["step"] for r in records(same) if "step" in r] == list(range(5, 13))

    control = tmp_path / "control"
    Pretraining(smoke_config(corpus, tokenizer_dir, 'stages.1.objectives={camlm: 1.0}'), str(control),
                branch_from=checkpoint).train()
    assert {r["objective"] for r in records(control) if r.get("step", 0) > 6} == {"camlm"}  # stage 2: steps 7-12
    assert os.listdir(stopped_at_4) == os.listdir(_copy_of(stopped_at_4, tmp_path / "again"))  # source untouched

    with pytest.raises(RunError) as caught:
        Pretraining(smoke_config(corpus, tokenizer_dir, 'stages.0.objectives={camlm: 1.0}'), str(tmp_path / "bad"),
                    branch_from=checkpoint)
    assert str(caught.value).startswith(f"cannot branch from {checkpoint}: stage 0 ('align') had begun by step 4")
    assert "\n" not in str(caught.value)
    with pytest.raises(RunError, match=r"cannot branch from .*: optimizer.lr was 0.0005 in the saved run and is "
                                       r"0.001 now"):
        Pretraining(smoke_config(corpus, tokenizer_dir, "optimizer.lr=1e-3"), str(tmp_path / "bad"),
                    branch_from=checkpoint)


def test_a_resume_on_fewer_ranks_cuts_the_missing_ranks_logs_to_its_step(corpus, tokenizer_dir, tmp_path,
                                                                         stopped_at_4):
    """After a 2 -> 1 rank resume, `log_rank1.jsonl` is cut to the checkpoint's step like rank 0's, so no log keeps
    steps or a closing digest from the run that was abandoned."""
    import json

    out = _copy_of(stopped_at_4, tmp_path)
    records = [{"step": step, "mmlm_loss": 1.0} for step in range(1, 13)] + [{"final_parameter_sha256": "old"}]
    (out / "log_rank1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    Pretraining(smoke_config(corpus, tokenizer_dir), str(out), resume=True).close()
    kept = [json.loads(line) for line in (out / "log_rank1.jsonl").read_text().splitlines()]
    assert [r.get("step") for r in kept] == [1, 2, 3, 4]


@pytest.mark.parametrize("change, message", [
    ("prepend", r"en-de.tsv changed since the checkpoint: its size was \d+ bytes and is \d+"),
    ("same size", "en-de.tsv changed since the checkpoint: its content differs"),
    ("added", "en-de.more.tsv is in the corpus now and was not at the checkpoint"),
    ("removed", "en-ru.tsv was in the corpus at the checkpoint and is not now"),
])
def test_a_resume_refuses_a_corpus_changed_under_the_same_names(corpus, tokenizer_dir, tmp_path, change, message):
    """A line prepended to a corpus file, or another corpus under the same file names, is named on resume: the saved
    data positions would land mid-line or on other text."""
    import shutil

    mine = tmp_path / "corpus"
    shutil.copytree(corpus, mine)
    Pretraining(smoke_config(mine, tokenizer_dir), str(tmp_path / "out"), stop_at=2).train()
    pairs = mine / "parallel" / "en-de.tsv"
    if change == "prepend":
        pairs.write_bytes(b"One more line.\tNoch eine Zeile.\n" + pairs.read_bytes())
    elif change == "same size":
        pairs.write_bytes(pairs.read_bytes().replace(b"a", b"e"))
    elif change == "added":
        (mine / "parallel" / "en-de.more.tsv").write_text("A line.\tEine Zeile.\n")
    else:
        (mine / "parallel" / "en-ru.tsv").unlink()
    with pytest.raises(RunError, match=f"cannot resume from .*checkpoint-2: {message}") as caught:
        Pretraining(smoke_config(mine, tokenizer_dir), str(tmp_path / "out"), resume=True)
    assert "\n" not in str(caught.value)
