"""ernie_m.tagging: words cut into model windows, labels read at each word's first sub-token, entity segments."""
import numpy as np
import pytest

from ernie_m import ErnieMTokenizer
from ernie_m.tagging import entity_spans, input_ids, make_windows, read_labels, segments

TEXT = "Der schnelle braune Fuchs springt über den faulen Hund am Flussufer."


@pytest.mark.parametrize("labels, spans", [
    (["B-PER", "I-PER", "O", "B-LOC"], [(0, 2, "PER"), (3, 4, "LOC")]),
    (["I-PER", "I-LOC", "B-LOC", "I-LOC"], [(0, 1, "PER"), (1, 2, "LOC"), (2, 4, "LOC")]),  # conlleval reading
    (["B-ORG", "E-ORG", "S-PER", "O"], [(0, 2, "ORG"), (2, 3, "PER")]),  # IOBES
    (["PER", "PER", "O", "LOC"], [(0, 2, "PER"), (3, 4, "LOC")]),  # bare types (IO)
    (["O", "O"], []),
])
def test_entity_spans(labels, spans):
    assert entity_spans(labels) == spans


def test_windows_cut_between_words_and_point_at_first_sub_tokens(tokenizer_dir):
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    words, windows = make_windows(tokenizer, [TEXT, "kurz"], max_length=10)
    assert [len(spans) for spans in words] == [len(TEXT.split()), 1]
    first_text = [w for w in windows if w.text == 0]
    assert len(first_text) > 1  # too long for one window of 10
    assert [i for w in first_text for i in w.words] == list(range(len(TEXT.split())))  # every word once, in order
    for window in windows:
        assert len(window.ids) + 2 <= 10
        for position, word in zip(window.word_starts, window.words):
            start, end = words[window.text][word]
            assert window.ids[position - 1] == tokenizer.encode_batch_ids(
                [([TEXT, "kurz"][window.text])[start:end]])[0][0]
    batch = input_ids(tokenizer, windows)
    assert batch.shape[1] <= 10 and (batch[:, 0] == tokenizer.cls_token_id).all()
    with pytest.raises(ValueError, match="max_length must be at least 3"):
        make_windows(tokenizer, [TEXT], 2)


def test_segments_cover_the_text_and_carry_the_entity_types(tokenizer_dir):
    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    words, windows = make_windows(tokenizer, [TEXT], max_length=10)
    id2label = {0: "O", 1: "B-ANIMAL", 2: "I-ANIMAL"}
    for window in windows:  # label "Fuchs" (word 3) B-ANIMAL, everything else O
        width = max(window.word_starts) + 1
        logits = np.zeros([1, width, 3], np.float32)
        logits[0, :, 0] = 1.0
        for position, word in zip(window.word_starts, window.words):
            if word == 3:
                logits[0, position] = [0.0, 5.0, 0.0]
        read_labels([window], logits)
    result = segments([TEXT], words, windows, id2label)[0]
    assert "".join(segment for segment, _ in result) == TEXT
    assert [s for s in result if s[1] != "O"] == [("Fuchs", "ANIMAL")]
    assert segments([TEXT], words, windows, id2label, entities_only=True)[0] == [("Fuchs", "ANIMAL")]
