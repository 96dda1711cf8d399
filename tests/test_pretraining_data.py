"""ernie_m.pretraining.data: language sampling, example streams, token budgets and bucketing, reader workers."""
import json
import os

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
    """Two DataLoader workers over four shards: pools arrive in worker order, each worker reads its own shards, and
    a stream restored from a mid-run state (including batches bucketed but not yet handed out) continues with the
    same batches."""
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    (tmp_path / "en-de.tsv").write_text("".join(f"sentence {i}\tSatz {i} " + "und " * (i % 5) + "\n"
                                                for i in range(40)))
    stream = _parallel_stream(tmp_path, tokenizer, num_workers=2, shards=4)
    first = [stream.next_batch(4) for _ in range(5)]
    state = json.loads(json.dumps(stream.state()))  # what a checkpoint holds
    assert state["next_role"] in (0, 1) and len(state["positions"]) >= 2
    assert state["pending"], "the test should cut the run mid-pool"
    expected = [stream.next_batch(4) for _ in range(9)]
    stream.close()

    restored = _parallel_stream(tmp_path, tokenizer, num_workers=2, shards=4)
    restored.load_state(state)
    assert _sources([restored.next_batch(4) for _ in range(9)]) == _sources(expected)
    restored.close()

    # The workers own disjoint shards (worker w: shards w and w + 2), which read disjoint lines.
    assert {len(batch) for batch in first} == {4, 2}  # pools of 6 cut into batches of at most 4
    assert [restored._make_shard.owned(role) for role in (0, 1)] == [[0, 2], [1, 3]]
    pools = [restored._make_shard(shard).next_pool() for shard in range(4)]
    lines = [{tuple(e.source.tolist()) for e in pool} for pool in pools]
    assert all(not lines[a] & lines[b] for a in range(4) for b in range(a + 1, 4))

    with pytest.raises(CorpusError, match="data.shards=4; this run has data.shards=8"):
        _parallel_stream(tmp_path, tokenizer, num_workers=2, shards=8).load_state(state)
    with pytest.raises(CorpusError, match="data.shards=1 is fewer than the readers"):
        _parallel_stream(tmp_path, tokenizer, num_workers=2, shards=1)


class LineIds:
    """A tokenizer stand-in: "x 17" -> [17], so that every example says which line it came from."""

    num_threads = 1

    @staticmethod
    def encode_batch_ids(texts):
        return [[int(text.split()[-1])] for text in texts]


def _write_numbered(directory, counts):
    """<lang>.txt files of numbered lines ("en 17"), numbers unique over the files, of several lengths."""
    first = 0
    for language, count in counts.items():
        (directory / f"{language}.txt").write_text(
            "".join(f"{language} " + "w " * (i % 4) + f"{first + i}\n" for i in range(count)))
        first += count


def _mono_stream(directory, rank, ranks, **kwargs):
    from ernie_m.pretraining import find_monolingual_files

    return ExampleStream(find_monolingual_files(str(directory)), LineIds(), {"en": 0, "de": 1, "sw": 2},
                         alpha=kwargs.pop("alpha", 1.0), seed=5, shard=rank, num_shards=ranks,
                         **{"pool_size": 8, "shards": 6, "min_piece_bytes": 64, **kwargs})


def _take(stream, batches):
    return [int(e.tokens[0]) for _ in range(batches) for e in stream.next_batch(4)]


def _pending(stream):
    return [int(e.tokens[0]) for batches in stream.pending.values() for batch in batches for e in batch]


def _shard_lines(directory, shards, min_piece_bytes):
    """What each (shard, source) reads in one pass, in order: the standard a resumed run is held to."""
    from ernie_m.pretraining import find_monolingual_files
    from ernie_m.pretraining.corpus import LineReader, shard_pieces
    from ernie_m.pretraining.data import sources_of

    order = {}
    for source in sources_of(find_monolingual_files(str(directory)), shards, min_piece_bytes):
        for shard in range(shards):
            reader, lines = LineReader(shard_pieces(source.pieces, shard, shards), 1), []
            for _, fields in reader:
                if reader.epoch:
                    break
                lines.append(int(fields[0].split()[-1]))
            order[(shard, source.name)] = lines
    return order


@pytest.mark.parametrize("new_ranks", [1, 3])
def test_a_run_resumes_on_another_number_of_ranks_without_repeating_or_skipping_a_line(tmp_path, new_ranks):
    """Two ranks read for a while and save; the run resumes on `new_ranks`. Over both parts, every line is handed
    out at most once, and each shard's lines form a prefix of what the shard reads in a pass (the batches cut but
    not yet handed out at the end count as taken: they come next)."""
    from ernie_m.pretraining.data import merge_positions

    _write_numbered(tmp_path, {"en": 700, "de": 500, "sw": 300})
    before = [_mono_stream(tmp_path, rank, 2) for rank in range(2)]
    taken = [line for stream in before for line in _take(stream, 25)]
    saved = json.loads(json.dumps([stream.state() for stream in before]))
    after = []
    for rank in range(new_ranks):
        stream = _mono_stream(tmp_path, rank, new_ranks)
        stream.load_state(merge_positions(saved, rank, new_ranks, 0))
        after.append(stream)
    taken += [line for stream in after for line in _take(stream, 60 // new_ranks)]
    taken += [line for stream in after for line in _pending(stream)]

    assert len(taken) == len(set(taken)), "a line was handed out twice"
    for (shard, source), lines in _shard_lines(tmp_path, 6, 64).items():
        mine = [line for line in lines if line in set(taken)]
        assert mine == lines[:len(mine)], f"shard {shard} skipped a line of {source}"
    assert len(taken) > 400  # enough to cross several pools on every shard


def test_language_shares_follow_the_sampling_exponent_across_shards(tmp_path):
    """Sources of 1 : 4 : 16 bytes sampled with alpha = 0.3 over two ranks and six shards: the shares of the drawn
    examples match p_i ∝ q_i^0.3 within 4 standard deviations."""
    (tmp_path / "sw.txt").write_text("".join(f"sw {i}\n" for i in range(100)))
    (tmp_path / "de.txt").write_text("".join(f"de {1000 + i}\n" for i in range(400)))
    (tmp_path / "en.txt").write_text("".join(f"en {10000 + i}\n" for i in range(1600)))
    streams = [_mono_stream(tmp_path, rank, 2, alpha=0.3, pool_size=64) for rank in range(2)]
    drawn = np.array([line for stream in streams for line in _take(stream, 600)])
    shares = np.array([(drawn >= 10000).mean(), ((drawn >= 1000) & (drawn < 10000)).mean(), (drawn < 1000).mean()])
    sizes = [os.path.getsize(tmp_path / f"{code}.txt") for code in ("en", "de", "sw")]
    expected = sampling_probabilities(sizes, 0.3)
    sigma = np.sqrt(expected * (1 - expected) / len(drawn))
    assert (np.abs(shares - expected) < 4 * sigma).all(), (shares, expected)
    assert expected[2] > 1.5 * sizes[2] / sum(sizes)  # the small language is upsampled


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


def test_a_line_longer_than_a_piece_is_skipped_not_a_refusal(tmp_path, monkeypatch):
    """A line spanning several pieces leaves some shards with no line of their own: they read the whole source
    instead of refusing the run, and the over-long line is counted as too_long, never handed out."""
    from ernie_m.pretraining.corpus import LineReader

    monkeypatch.setattr(LineReader, "max_line_bytes", 500)
    short = [f"en {i}\n" for i in range(40)]
    (tmp_path / "en.txt").write_text("".join(short[:20]) + "en " + "x " * 1500 + "99999\n" + "".join(short[20:]))
    stream = _mono_stream(tmp_path, 0, 1)
    stream.check_files()
    taken = _take(stream, 40)
    assert set(taken) == set(range(40))  # every short line, the long one never
    assert stream.bad_lines()["too_long"] >= 1
    whole = [reader for position in stream.positions.values() for reader in position["readers"]
             if reader["whole_source"]]
    assert whole, "no shard fell back to the whole source: the test no longer covers the case"


def test_a_source_with_no_usable_line_anywhere_is_still_refused(tmp_path):
    (tmp_path / "en.txt").write_text("\n" * 50 + "   \n" * 50)
    with pytest.raises(CorpusError, match="en.txt: no usable line in any shard .*empty_line"):
        _mono_stream(tmp_path, 0, 1).check_files()
