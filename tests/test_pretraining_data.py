"""ernie_m.pretraining.data: language sampling, example streams, token budgets and bucketing, reader workers."""
import json

import numpy as np
import pytest

from ernie_m import ErnieMTokenizer
from ernie_m.pretraining import CorpusError, ExampleStream, find_parallel_files, sampling_probabilities


def test_language_sampling_exponent():
    probabilities = sampling_probabilities([900, 100], alpha=1.0)
    assert np.allclose(probabilities, [0.9, 0.1])
    assert np.allclose(sampling_probabilities([900, 100], alpha=0.0), [0.5, 0.5])
    smoothed = sampling_probabilities([900, 100], alpha=0.3)
    assert 0.1 < smoothed[1] < 0.5  # the small language gains share


def test_example_stream_rejects_unknown_languages_and_resumes(tmp_path, tokenizer_dir):
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    (tmp_path / "en-xx.tsv").write_text("hello\tworld\n")
    with pytest.raises(CorpusError, match="language 'xx' is not among the configured languages"):
        ExampleStream(find_parallel_files(str(tmp_path)), tokenizer, {"en": 0, "de": 1}, 0.3, seed=0)
    (tmp_path / "en-xx.tsv").unlink()
    (tmp_path / "en-de.tsv").write_text("".join(f"sentence {i}\tSatz {i} und mehr\n" for i in range(30)))
    stream = ExampleStream(find_parallel_files(str(tmp_path)), tokenizer, {"en": 0, "de": 1}, 0.3, seed=0,
                           pool_size=12)
    stream.next_batch(4)
    state = stream.state()
    expected = [stream.next_batch(4) for _ in range(5)]
    restored = ExampleStream(find_parallel_files(str(tmp_path)), tokenizer, {"en": 0, "de": 1}, 0.3, seed=99,
                             pool_size=12)
    restored.load_state(state)
    for want, got in zip(expected, [restored.next_batch(4) for _ in range(5)]):
        assert [list(e.source) for e in want] == [list(e.source) for e in got]
        assert all(e.source_language == 0 and e.target_language == 1 for e in got)


def test_token_budget_batches_and_bucketing(tmp_path, tokenizer_dir):
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    lines = [" ".join(["word"] * n) for n in (1, 2, 3, 5, 8, 13, 21, 34)]
    (tmp_path / "en.txt").write_text("\n".join(lines * 4) + "\n")
    from ernie_m.pretraining import find_monolingual_files

    stream = ExampleStream(find_monolingual_files(str(tmp_path)), tokenizer, {"en": 0}, 1.0, seed=0,
                           pool_size=16)
    seen = 0
    for _ in range(12):
        batch = stream.next_batch(8, max_tokens=64)
        lengths = [len(example.tokens) + 2 for example in batch]
        assert 1 <= len(batch) <= 8
        assert len(batch) == 1 or max(lengths) * len(batch) <= 64
        seen += len(batch)
    assert seen > 12  # short sentences share batches
    # Any 16 consecutive lines hold each of the 8 lengths twice; bucketed by count, each batch of 4 holds two
    # neighbouring lengths ("word" is 3 tokens here), not a random mix of the whole range.
    word = len(tokenizer.encode_batch_ids(["word"])[0])
    spreads = []
    for _ in range(4):
        by_count = stream.next_batch(4)
        assert len(by_count) == 4
        spreads.append(max(len(e.tokens) for e in by_count) - min(len(e.tokens) for e in by_count))
    assert sorted(spreads) == [word * 1, word * 2, word * 5, word * 13]


def _parallel_stream(directory, tokenizer, **kwargs):
    return ExampleStream(find_parallel_files(str(directory)), tokenizer, {"en": 0, "de": 1}, 0.3, seed=3,
                         pool_size=6, **kwargs)


def _sources(batches):
    return [[e.source.tolist() for e in batch] for batch in batches]


def test_dataloader_workers_shard_the_corpus_and_resume_exactly(tmp_path, tokenizer_dir):
    """Two DataLoader workers: pools arrive in worker order, each worker reads its own lines, and a stream restored
    from a mid-run state (including batches bucketed but not yet handed out) continues with the same batches."""
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    (tmp_path / "en-de.tsv").write_text("".join(f"sentence {i}\tSatz {i} " + "und " * (i % 5) + "\n"
                                                for i in range(40)))
    stream = _parallel_stream(tmp_path, tokenizer, num_workers=2)
    first = [stream.next_batch(4) for _ in range(5)]
    state = json.loads(json.dumps(stream.state()))  # what a checkpoint holds
    assert state["next_role"] in (0, 1) and all(role is not None for role in state["roles"])
    assert state["pending"], "the test should cut the run mid-pool"
    expected = [stream.next_batch(4) for _ in range(9)]
    stream.close()

    restored = _parallel_stream(tmp_path, tokenizer, num_workers=2)
    restored.load_state(state)
    assert _sources([restored.next_batch(4) for _ in range(9)]) == _sources(expected)
    restored.close()

    # The two workers read disjoint halves of the lines (worker w keeps lines with number % 2 == w).
    assert {len(batch) for batch in first} == {4, 2}  # pools of 6 cut into batches of at most 4
    pools = [restored._make_source(role).next_pool() for role in (0, 1)]
    lines = [{tuple(e.source.tolist()) for e in pool} for pool in pools]
    assert not lines[0] & lines[1]

    # In-process tokenization gives other shards, and a state saved with workers does not load there.
    in_process = _parallel_stream(tmp_path, tokenizer, num_workers=0)
    with pytest.raises(CorpusError, match="data.num_workers=2; this run has 1 rank"):
        in_process.load_state(state)


def test_token_budget_counts_every_token_of_each_objectives_rows(tmp_path, tokenizer_dir):
    """BTMLM's rows carry the sentence and as many placeholders: under one budget it must get half the sentences,
    so that a BTMLM step trains on as many tokens as an MMLM step (it once got 1.9x)."""
    from ernie_m.objectives import BTMLM, MMLM, SpecialIds
    from ernie_m.pretraining import find_monolingual_files

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    lines = [" ".join(["word"] * n) for n in (2, 3, 5, 8, 9, 11)]
    (tmp_path / "en.txt").write_text("\n".join(lines * 8) + "\n")
    (tmp_path / "de.txt").write_text("\n".join(lines * 8) + "\n")
    stream = ExampleStream(find_monolingual_files(str(tmp_path)), tokenizer, {"en": 0, "de": 1}, 1.0, seed=0,
                           pool_size=48)
    special = SpecialIds.from_tokenizer(tokenizer)
    common = dict(special=special, vocab_size=len(tokenizer), max_length=128)
    mmlm = MMLM(**common)
    btmlm = BTMLM(**common, target_languages=[0, 1])
    assert btmlm.length_factor == 2.0 and mmlm.length_factor == 1.0

    import paddle

    from ernie_m import ErnieMConfig, ErnieMForPretraining

    paddle.seed(0)  # BTMLM's generation pass needs a model; what is measured here is the layout
    model = ErnieMForPretraining(ErnieMConfig.from_preset("ernie-m-tiny", vocab_size=len(tokenizer), num_languages=2,
                                                          max_position_embeddings=130))
    budget = 256
    padded = {"mmlm": [], "btmlm": []}
    for step in range(24):  # the two objectives alternate on one stream, as in a run
        objective = mmlm if step % 2 == 0 else btmlm
        examples = stream.next_batch(512, budget, objective.length_factor)
        batch = objective(examples, np.random.default_rng(step), model=model)
        rows = batch.input_ids.shape[0]
        longest = int((batch.input_ids != special.pad).sum(1).max())
        assert rows == 1 or rows * longest <= budget, (objective.name, rows, longest)
        padded[objective.name].append(rows * longest)
    # Both fill the same budget: mean padded tokens a step within 15% of each other (they were 2x apart).
    ratio = np.mean(padded["btmlm"]) / np.mean(padded["mmlm"])
    assert 0.85 < ratio < 1.15, ratio
    # Counting the rows' real tokens instead (`budget: real`), each batch holds at most the budget and the two
    # objectives' batches hold as many tokens to within 5% (pools of many batches, so that a pool's last, partial
    # batch weighs little).
    stream = ExampleStream(find_monolingual_files(str(tmp_path)), tokenizer, {"en": 0, "de": 1}, 1.0, seed=0,
                           pool_size=1000)
    real = {"mmlm": [], "btmlm": []}
    for step in range(24):
        objective = mmlm if step % 2 == 0 else btmlm
        examples = stream.next_batch(512, 4 * budget, objective.length_factor, real_tokens=True, max_row_length=128)
        batch = objective(examples, np.random.default_rng(step), model=model)
        assert len(examples) == 1 or batch.real_tokens <= 4 * budget, (objective.name, batch.real_tokens)
        real[objective.name].append(batch.real_tokens)
    ratio = np.mean(real["btmlm"]) / np.mean(real["mmlm"])
    assert 0.95 < ratio < 1.05, ratio
