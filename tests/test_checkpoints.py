"""ernie_m.training.checkpoints: complete checkpoints only, the last K kept, optimizer state that resumes in any
process, refusals that name the file."""
import json
import os

import numpy as np
import paddle
import pytest

from ernie_m import ErnieMConfig, ErnieMForPretraining
from ernie_m.training.checkpoints import CheckpointManager

NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # steps comparable across models


def _model_and_optimizer():
    model = ErnieMForPretraining(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=40, **NO_DROPOUT))
    optimizer = paddle.optimizer.AdamW(learning_rate=1e-3, parameters=model.parameters())
    ids = paddle.to_tensor(np.arange(2, 18).reshape([2, 8]))
    model.ernie_m(ids)[0].mean().backward()
    optimizer.step()
    optimizer.clear_grad()
    return model, optimizer


def test_latest_is_the_newest_complete_checkpoint_and_only_k_are_kept(tmp_path):
    model, optimizer = _model_and_optimizer()
    manager = CheckpointManager(str(tmp_path), keep=2)
    for step in (2, 4, 6):
        manager.save(step, model, optimizer, None, {"data": [{}]})
    assert [step for step, _ in manager.checkpoints()] == [4, 6]
    os.makedirs(tmp_path / "checkpoint-8")  # a directory without trainer_state.json is not a checkpoint
    (tmp_path / ".tmp-checkpoint-10").mkdir()
    assert manager.latest() == str(tmp_path / "checkpoint-6")
    assert json.loads((tmp_path / "checkpoint-6" / "trainer_state.json").read_text())["step"] == 6
    with pytest.raises(ValueError, match="keep must be at least 1"):
        CheckpointManager(str(tmp_path), keep=0)


def _step(model, optimizer):
    ids = paddle.to_tensor(np.arange(5, 21).reshape([2, 8]))
    model.ernie_m(ids)[0].square().mean().backward()
    optimizer.step()
    optimizer.clear_grad()
    return {name: p.numpy().copy() for name, p in model.named_parameters()}


def test_optimizer_state_resumes_in_a_process_whose_parameter_names_differ(tmp_path):
    model, optimizer = _model_and_optimizer()
    CheckpointManager(str(tmp_path)).save(1, model, optimizer, None, {"data": [{}]})
    saved = json.loads((tmp_path / "checkpoint-1" / "optimizer.json").read_text())
    assert saved["parameter_keys"] == "structured"
    weights = {name: value.numpy().copy() for name, value in model.state_dict().items()}

    def restored(load: bool):
        paddle.nn.Linear(3, 3)  # shifts Paddle's automatic parameter names in this process
        other = ErnieMForPretraining(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=40, **NO_DROPOUT))
        assert other.parameters()[0].name != model.parameters()[0].name
        other.set_state_dict(weights)
        other_optimizer = paddle.optimizer.AdamW(learning_rate=1e-3, parameters=other.parameters())
        if load:
            CheckpointManager.load_optimizer(str(tmp_path / "checkpoint-1"), other_optimizer, model=other)
        return _step(other, other_optimizer)

    expected = _step(model, optimizer)  # the next step with the optimizer's real state
    resumed, fresh = restored(load=True), restored(load=False)
    assert all(np.array_equal(expected[name], resumed[name]) for name in expected)
    assert not all(np.array_equal(expected[name], fresh[name]) for name in expected)  # the state matters


def test_a_sharded_optimizer_needs_the_same_number_of_ranks(tmp_path):
    model, optimizer = _model_and_optimizer()
    CheckpointManager(str(tmp_path)).save(1, model, optimizer, None, {"data": [{}, {}]}, world_size=2,
                                          sharded_optimizer=True)
    with pytest.raises(ValueError, match="sharded over 2 ranks; resume with the same number of ranks"):
        CheckpointManager.load_optimizer(str(tmp_path / "checkpoint-1"), optimizer, rank=0, world_size=4, model=model)
    (tmp_path / "checkpoint-1" / "trainer_state.json").write_text("{not json")
    with pytest.raises(ValueError, match="trainer_state.json: not a readable trainer state"):
        CheckpointManager.load_trainer_state(str(tmp_path / "checkpoint-1"))


@pytest.mark.parametrize("name", ["model_state.pdparams", "optimizer.safetensors", "config.json"])
def test_a_flipped_byte_in_any_checkpoint_file_is_named_on_resume_and_on_strict_loading(tmp_path, name):
    """One flipped byte in model_state.pdparams or optimizer.safetensors no longer matches the SHA-256 the trainer state
    records: resume and strict loading name the file instead of continuing with other weights."""
    from ernie_m.training.loading import from_pretrained_for_training

    model, optimizer = _model_and_optimizer()
    path = CheckpointManager(str(tmp_path)).save(2, model, optimizer, None, {"data": [{}]})
    assert CheckpointManager.load_trainer_state(path)["step"] == 2  # intact: reads
    target = os.path.join(path, name)
    data = bytearray(open(target, "rb").read())
    data[len(data) // 2] ^= 0x01
    open(target, "wb").write(bytes(data))
    message = f"{target}: its SHA-256 differs from the one written with the checkpoint"
    with pytest.raises(ValueError, match=message):
        CheckpointManager.load_trainer_state(path)
    if name != "config.json":  # a flipped byte there may not parse as a config at all
        with pytest.raises(ValueError, match=message):
            from_pretrained_for_training(ErnieMForPretraining, path)
