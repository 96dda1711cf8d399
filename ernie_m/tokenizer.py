"""ERNIE-M tokenizer: sentencepiece BPE, ERNIE-M's piece splitting, and `vocab.txt` ids.

Ids equal PaddleNLP's `ErnieMTokenizer` for the same files. The pipeline, as in the released model:
1. sentencepiece cuts the text into pieces (its own NFKC normalisation included);
2. each piece is cut again around CJK ideographs, a fixed set of punctuation, and digit/non-digit boundaries;
3. every resulting token is looked up in `vocab.txt` (id = line number), `[UNK]` if absent.

Step 2 depends on the piece alone, so its result is cached per sentencepiece id and batches are encoded by
sentencepiece's threaded C++ encoder; only texts with pieces sentencepiece does not know take the per-piece path.

Differences from PaddleNLP's class, on purpose: `vocab_size` and `len()` are the size of `vocab.txt` (PaddleNLP
returns the sentencepiece size); offsets come from sentencepiece's alignment and never raise; the attention mask is
returned by default; `language=` adds `language_ids`; missing files raise instead of loading an empty model.
"""
from __future__ import annotations

import contextlib
import gc
import io
import os
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import sentencepiece as spm
from paddlenlp.data import Vocab
from paddlenlp.transformers import ErnieMTokenizer as _PaddleNLPErnieMTokenizer
from paddlenlp.transformers.tokenizer_utils import PretrainedTokenizer
from paddlenlp.transformers.tokenizer_utils_base import BatchEncoding

from .atomic import atomic_file

# "en", a pair's ("en", "de"), or a list with one of those per text of a batch.
LanguageSpec = Union[str, Tuple[str, str], List[Union[str, Tuple[str, str]]], None]

__all__ = ["ErnieMTokenizer", "split_piece", "SPIECE_UNDERLINE"]

SPIECE_UNDERLINE = "\u2581"
_SURROGATE = re.compile("[\ud800-\udfff]")
_PUNCTUATION = frozenset(",;:.?!~，；：。？！《》【】")

# Released names resolve to PaddleNLP's download locations (used only when the user asks for them).
_RELEASED_FILES = _PaddleNLPErnieMTokenizer.pretrained_resource_files_map


_ANY, _UNKNOWN = object(), object()  # markers for ErnieMTokenizer._DIRECT_OPTIONS


@contextlib.contextmanager
def _collection_paused():
    """Python's cyclic garbage collector off for one batch call. A batch allocates tens of thousands of small,
    acyclic lists, which set off collections that walk every object of the process (Paddle's included), a large
    share of the call's time (docs/benchmarks.md). Nothing here forms a cycle, and the previous state comes back afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _is_cjk(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff"


def split_piece(piece: str) -> List[Tuple[int, int]]:
    """Spans [start, end) of the tokens one sentencepiece piece becomes (ERNIE-M's rule, DESIGN §3).

    CJK ideographs and the punctuation above stand alone; a run of digits is cut from what precedes and follows
    it; a bare "▁" is dropped. Boundaries fall exactly where PaddleNLP's `_tokenize` puts them.
    """
    if piece == SPIECE_UNDERLINE:
        return []
    spans = []
    start = 0
    for i, char in enumerate(piece):
        if char == SPIECE_UNDERLINE:
            continue
        if _is_cjk(char) or char in _PUNCTUATION:
            if i > start and piece[start:i] != SPIECE_UNDERLINE:
                spans.append((start, i))
            spans.append((i, i + 1))
            start = i + 1
        elif i > 0 and char.isdigit() != piece[i - 1].isdigit():
            if i > start and piece[start:i] != SPIECE_UNDERLINE:
                spans.append((start, i))
            start = i
    if len(piece) > start:
        spans.append((start, len(piece)))
    return spans


def _append_missing(token_to_id: Dict[str, int], special_tokens: Sequence[str], vocab_file: str) -> List[str]:
    """Give each special token the vocabulary has no line for an id after its last line (every line keeps its id),
    saying so in one line; the tokens appended. A plain sentencepiece vocabulary has none of ERNIE-M's."""
    missing = [token for token in dict.fromkeys(special_tokens) if token not in token_to_id]
    if not missing:
        return []
    first = max(token_to_id.values(), default=-1) + 1
    for offset, token in enumerate(missing):
        token_to_id[token] = first + offset
    print(f"ERNIE-M tokenizer: {vocab_file} has no line for {', '.join(missing)}; given ids {first}-"
          f"{first + len(missing) - 1} after its last line (saving the tokenizer writes them into vocab.txt)",
          file=sys.stderr)
    return missing


def _read_vocab(path: str) -> Dict[str, int]:
    """token -> line number, read line by line as PaddleNLP reads it (a repeated line keeps its last number)."""
    token_to_id: Dict[str, int] = {}
    with io.open(path, "r", encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            token_to_id[line.rstrip("\n")] = index
    return token_to_id


class ErnieMTokenizer(PretrainedTokenizer):
    """ERNIE-M tokenizer over `sentencepiece.bpe.model` + `vocab.txt`.

    Args:
        vocab_file: `vocab.txt`, one token a line, id = line number.
        sentencepiece_model_file: `sentencepiece.bpe.model`.
        do_lower_case: lowercase text (not special tokens) before tokenizing. The released models use False.
        languages: language codes, in id order, for `language_ids` (`tokenizer(text, language="de")`).
        num_threads: sentencepiece threads for batch encoding (default: all cores).
    """

    resource_files_names = {"sentencepiece_model_file": "sentencepiece.bpe.model", "vocab_file": "vocab.txt"}
    pretrained_resource_files_map = _RELEASED_FILES
    pretrained_init_configuration = {name: {"do_lower_case": False} for name in _RELEASED_FILES["vocab_file"]}
    max_model_input_sizes = {name: 512 for name in _RELEASED_FILES["vocab_file"]}
    model_input_names: List[str] = ["input_ids", "attention_mask"]
    padding_side = "right"

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """PaddleNLP's `from_pretrained`; a local directory without the tokenizer's files is an OSError naming
        them (PaddleNLP stops on an assertion about where the files are)."""
        directory = str(pretrained_model_name_or_path)
        if os.path.isdir(directory):
            missing = [name for name in cls.resource_files_names.values()
                       if not os.path.isfile(os.path.join(directory, name))]
            if missing:
                raise OSError(f"{directory} has no tokenizer: {' and '.join(missing)} not found")
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def __init__(
        self,
        vocab_file: str,
        sentencepiece_model_file: str,
        do_lower_case: bool = False,
        encoding: str = "utf8",
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        languages: Optional[Sequence[str]] = None,
        num_threads: int = -1,
        **kwargs,
    ):
        for path, what in ((vocab_file, "vocabulary (vocab.txt)"), (sentencepiece_model_file, "sentencepiece model")):
            if not path or not os.path.isfile(path):
                raise FileNotFoundError(f"ERNIE-M tokenizer: {what} not found at {path!r}")
        self.do_lower_case = do_lower_case
        self.encoding = encoding
        self.vocab_file = vocab_file
        self.sentencepiece_model_file = sentencepiece_model_file
        self.num_threads = num_threads
        self.languages = list(languages) if languages else []
        self.replaced_surrogates = 0  # lone surrogates met in input text, each encoded as U+FFFD

        self.sp_model = spm.SentencePieceProcessor()
        try:
            self.sp_model.Load(sentencepiece_model_file)
        except (OSError, RuntimeError) as error:
            raise ValueError(
                f"ERNIE-M tokenizer: {sentencepiece_model_file} is not a sentencepiece model ({error})"
            ) from error
        self.token_to_id = _read_vocab(vocab_file)
        if not self.token_to_id:
            raise ValueError(f"ERNIE-M tokenizer: {vocab_file} is empty (one token a line, the id is the line number)")
        self.appended_special_tokens = _append_missing(
            self.token_to_id, (cls_token, pad_token, sep_token, unk_token, mask_token), vocab_file)
        self.vocab = Vocab.from_dict(self.token_to_id, unk_token=unk_token, pad_token=pad_token)
        self._unk_vocab_id = self.token_to_id[unk_token]
        # sentencepiece id -> vocab ids of the tokens its piece becomes; filled on first use.
        self._vocab_ids_of_sp_id: List[Optional[Tuple[int, ...]]] = [None] * self.sp_model.get_piece_size()
        super().__init__(
            unk_token=unk_token, sep_token=sep_token, pad_token=pad_token, cls_token=cls_token,
            mask_token=mask_token, do_lower_case=do_lower_case, languages=self.languages, **kwargs,
        )

    def save_resources(self, save_directory):
        """The sentencepiece model and vocab.txt; a vocabulary given special tokens at load is written with them,
        one token a line in id order, so that the saved directory loads with the same ids everywhere."""
        super().save_resources(save_directory)
        if self.appended_special_tokens:
            with io.open(self.vocab_file, "r", encoding="utf-8") as handle:
                lines = [line.rstrip("\n") for line in handle]
            # The file the tokenizer was read from had none of them; it has them once saved into its own directory.
            present = set(lines)
            lines += [token for token in self.appended_special_tokens if token not in present]
            # Written beside and renamed: the target may be the very file the tokenizer was read from.
            with atomic_file(os.path.join(save_directory, self.resource_files_names["vocab_file"])) as staged:
                with io.open(staged, "w", encoding="utf-8") as handle:
                    handle.write("".join(line + "\n" for line in lines))

    # ---- vocabulary -------------------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of lines of `vocab.txt`: the size the model's embedding must have."""
        return len(self.vocab)

    def __len__(self) -> int:
        extra = [token for token in self.added_tokens_encoder if token not in self.token_to_id]
        return len(self.vocab) + len(extra)

    def get_vocab(self) -> Dict[str, int]:
        return dict(self.token_to_id, **self.added_tokens_encoder)

    def _convert_token_to_id(self, token: str) -> int:
        return self.token_to_id.get(token, self._unk_vocab_id)

    def word_starts(self):
        """A bool per vocabulary id: does this token begin a word? For whole-word masking.

        A word starts at a token beginning with "▁"; CJK ideographs and the split-off punctuation stand alone, so
        each is a word of its own.
        """
        starts = np.zeros(len(self.vocab), dtype=bool)
        for token, index in self.token_to_id.items():
            starts[index] = token.startswith(SPIECE_UNDERLINE) or (
                len(token) == 1 and (_is_cjk(token) or token in _PUNCTUATION)
            )
        return starts

    # ---- tokenization -----------------------------------------------------------------------------------------
    def _tokens_of_piece(self, piece: str) -> List[str]:
        return [piece[start:end] for start, end in split_piece(piece)]

    def _vocab_ids_of(self, sp_id: int) -> Tuple[int, ...]:
        cached = self._vocab_ids_of_sp_id[sp_id]
        if cached is None:
            tokens = self._tokens_of_piece(self.sp_model.IdToPiece(sp_id))
            cached = tuple(self.token_to_id.get(t, self._unk_vocab_id) for t in tokens)
            self._vocab_ids_of_sp_id[sp_id] = cached
        return cached

    def _valid_text(self, text: str) -> str:
        """`text` with lone surrogates (which no UTF-8 text can hold, so sentencepiece cannot take them) replaced by
        U+FFFD, one character for one so that offsets stay aligned; counted in `replaced_surrogates`."""
        if text.isascii():
            return text
        cleaned, count = _SURROGATE.subn("\ufffd", text)
        self.replaced_surrogates += count
        return cleaned

    def _tokenize(self, text: str, **kwargs) -> List[str]:
        tokens: List[str] = []
        for piece in self.sp_model.EncodeAsPieces(self._valid_text(text)):
            tokens.extend(self._tokens_of_piece(piece))
        return tokens

    def _plain_text_to_ids(self, texts: List[str]) -> List[List[int]]:
        """Ids of texts holding no special-token strings: sentencepiece's threaded encoder + the per-id cache."""
        texts = [self._valid_text(text) for text in texts]
        if self.do_lower_case:
            texts = [text.lower() for text in texts]
        unk = self.sp_model.unk_id()
        results = []
        for text, sp_ids in zip(texts, self.sp_model.encode(texts, out_type=int, num_threads=self.num_threads)):
            if unk in sp_ids:
                # An unknown piece keeps its own text, which may still be a vocab.txt line: look it up by string.
                results.append([self._convert_token_to_id(t) for t in self._tokenize(text)])
                continue
            ids: List[int] = []
            for sp_id in sp_ids:
                ids.extend(self._vocab_ids_of(sp_id))
            results.append(ids)
        return results

    def _has_special_text(self, text: str) -> bool:
        return any(token in text for token in self.unique_no_split_tokens)

    def _batch_encode_plus(self, batch_text_or_text_pairs, *args, **kwargs):
        with _collection_paused():
            return self._encode_batch(batch_text_or_text_pairs, *args, **kwargs)

    def _encode_batch(self, batch_text_or_text_pairs, *args, **kwargs):
        # Encode every plain string of the batch in one threaded sentencepiece call, then assemble the common
        # outputs directly or let PaddleNLP's machinery work on the ids. Offsets and word lists need the text.
        needs_text = kwargs.get("return_offsets_mapping") or kwargs.get("is_split_into_words") or (
            kwargs.get("stride", 0) > 0
        )
        if needs_text:
            return super()._batch_encode_plus(batch_text_or_text_pairs, *args, **kwargs)
        plain = sorted(
            {
                text
                for item in batch_text_or_text_pairs
                for text in (item if isinstance(item, (list, tuple)) else (item,))
                if isinstance(text, str) and text and not self._has_special_text(text)
            }
        )
        ids_of = dict(zip(plain, self._plain_text_to_ids(plain)))

        def as_ids(text):
            ids = ids_of.get(text) if isinstance(text, str) else None
            return ids if ids else text  # empty results stay text: PaddleNLP rejects an empty id list

        # Always (first, second): a bare id list would read as a pair to PaddleNLP.
        converted = [
            tuple(as_ids(t) for t in item) if isinstance(item, (list, tuple)) else (as_ids(item), None)
            for item in batch_text_or_text_pairs
        ]
        if not args:
            encoded = self._assemble_directly(converted, kwargs)
            if encoded is not None:
                return encoded
        return super()._batch_encode_plus(converted, *args, **kwargs)

    # The options `_assemble_directly` handles: the value each must have, or _ANY (then it checks the value itself).
    _DIRECT_OPTIONS = {
        "add_special_tokens": True, "stride": 0, "is_split_into_words": False, "pad_to_multiple_of": None,
        "return_overflowing_tokens": False, "return_special_tokens_mask": False, "return_dict": True,
        "return_offsets_mapping": False, "return_length": False, "return_position_ids": _ANY,
        "return_token_type_ids": _ANY, "padding_strategy": _ANY, "truncation_strategy": _ANY, "max_length": _ANY,
        "return_tensors": _ANY, "return_attention_mask": _ANY, "verbose": _ANY,
    }

    def _assemble_directly(self, pairs, options) -> Optional[BatchEncoding]:
        """The common call (special tokens, optional truncation of single texts, optional right padding, input ids
        and attention mask) assembled here in one pass: PaddleNLP's per-example `prepare_for_model` and `pad` cost
        twice the sentencepiece work. Anything else returns None and goes through PaddleNLP; tests check both give
        the same output as PaddleNLP's own ErnieMTokenizer."""
        from paddlenlp.transformers.tokenizer_utils_base import PaddingStrategy, TruncationStrategy

        for key, value in options.items():
            wanted = self._DIRECT_OPTIONS.get(key, _UNKNOWN)
            if wanted is _UNKNOWN or (wanted is not _ANY and value != wanted):
                return None
        if options.get("return_position_ids") or options.get("return_token_type_ids"):
            return None
        if any(not isinstance(first, list) or (second is not None and not isinstance(second, list))
               for first, second in pairs):
            return None  # an empty text stays text: PaddleNLP's error path
        padding = options.get("padding_strategy", PaddingStrategy.DO_NOT_PAD)
        truncation = options.get("truncation_strategy", TruncationStrategy.DO_NOT_TRUNCATE)
        max_length = options.get("max_length")
        has_pairs = any(second is not None for _, second in pairs)
        if padding not in (PaddingStrategy.DO_NOT_PAD, PaddingStrategy.LONGEST, PaddingStrategy.MAX_LENGTH):
            return None
        if self.padding_side != "right" or (padding == PaddingStrategy.MAX_LENGTH and max_length is None):
            return None
        if truncation != TruncationStrategy.DO_NOT_TRUNCATE and (has_pairs or max_length is None or truncation not in (
                TruncationStrategy.LONGEST_FIRST, TruncationStrategy.ONLY_FIRST)):
            return None
        if options.get("return_tensors") is not None and padding == PaddingStrategy.DO_NOT_PAD:
            return None
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        keep = max_length - 2 if truncation != TruncationStrategy.DO_NOT_TRUNCATE else None
        rows = [cls + first[:keep] + sep if second is None else cls + first + sep + sep + second + sep
                for first, second in pairs]
        if any(len(row) > self.model_max_length for row in rows):
            return None  # PaddleNLP warns about these: let it
        with_mask = options.get("return_attention_mask")
        with_mask = "attention_mask" in self.model_input_names if with_mask is None else with_mask
        if padding == PaddingStrategy.DO_NOT_PAD:
            data = {"input_ids": rows}
            if with_mask:
                data["attention_mask"] = [[1] * len(row) for row in rows]
        else:
            width = max_length if padding == PaddingStrategy.MAX_LENGTH else max(map(len, rows))
            # A row already longer than `max_length` (no truncation asked) stays as it is, as in PaddleNLP's `pad`.
            data = {"input_ids": [row + [self.pad_token_id] * max(0, width - len(row)) for row in rows]}
            if with_mask:
                data["attention_mask"] = [[1] * len(row) + [0] * max(0, width - len(row)) for row in rows]
        return BatchEncoding(data, tensor_type=options.get("return_tensors"))

    def encode_batch_ids(self, texts: Sequence[str]) -> List[List[int]]:
        """Token ids (no special tokens) of many texts, the fastest path; equal to `tokenize` + lookup."""
        plain = [text for text in texts if not self._has_special_text(text)]
        ids_of = dict(zip(plain, self._plain_text_to_ids(plain)))
        return [
            ids_of[text] if text in ids_of else self.convert_tokens_to_ids(self.tokenize(text)) for text in texts
        ]

    # ---- offsets ----------------------------------------------------------------------------------------------
    def get_offset_mapping(self, text: str) -> Optional[List[Tuple[int, int]]]:
        """(start, end) character offsets in `text` of each token `tokenize(text)` returns; never raises.

        Offsets come from sentencepiece's own alignment to the original text, so normalisation (full-width forms,
        NFKC) cannot break them. A piece cut into several tokens maps character by character when normalisation
        kept its length, otherwise every part gets the span of the whole piece.
        """
        if text is None:
            return None
        offsets: List[Tuple[int, int]] = []
        position = 0
        special = set(self.unique_no_split_tokens)
        for chunk in self.tokens_trie.split(text):
            if chunk in special:
                offsets.append((position, position + len(chunk)))
            else:
                offsets.extend(self._chunk_offsets(chunk, position))
            position += len(chunk)
        return offsets

    def _chunk_offsets(self, chunk: str, base: int) -> List[Tuple[int, int]]:
        if not chunk.strip():
            return []
        chunk = self._valid_text(chunk)
        lowered = chunk.lower() if self.do_lower_case else chunk
        same_length = len(lowered) == len(chunk)
        mapping = self.sp_model.encode_as_offset_mapping(lowered)
        offsets = []
        for piece, (start, end) in zip(mapping["pieces"], mapping["offsets"]):
            if not same_length:  # lowercasing moved characters: clamp into the chunk
                start, end = min(start, len(chunk)), min(end, len(chunk))
            surface = chunk[start:end]
            core_start = start + (len(surface) - len(surface.lstrip()))
            if core_start == end and piece.strip(SPIECE_UNDERLINE) and end < len(chunk):
                # NFKC expanded one character into several pieces ("™" -> "T" "M", "½" -> "1⁄2"); sentencepiece
                # gives all but the last an empty span. Point them at the character they came from.
                end += 1
            lead = len(piece) - len(piece.lstrip(SPIECE_UNDERLINE))
            exact = len(piece) - lead == end - core_start
            for span_start, span_end in split_piece(piece):
                if exact:
                    token_start = core_start + max(span_start - lead, 0)
                    token_end = core_start + max(span_end - lead, 0)
                else:
                    token_start, token_end = core_start, end
                offsets.append((base + token_start, base + max(token_end, token_start)))
        return offsets

    # ---- special tokens and templates -------------------------------------------------------------------------
    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        """`[CLS] A [SEP]` or `[CLS] A [SEP] [SEP] B [SEP]`."""
        if token_ids_1 is None:
            return [self.cls_token_id] + token_ids_0 + [self.sep_token_id]
        return [self.cls_token_id] + token_ids_0 + [self.sep_token_id, self.sep_token_id] + token_ids_1 + [
            self.sep_token_id
        ]

    def build_offset_mapping_with_special_tokens(self, offset_mapping_0, offset_mapping_1=None):
        if offset_mapping_1 is None:
            return [(0, 0)] + offset_mapping_0 + [(0, 0)]
        return [(0, 0)] + offset_mapping_0 + [(0, 0), (0, 0)] + offset_mapping_1 + [(0, 0)]

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("token_ids_1 must be None when the ids already hold special tokens")
            special = {self.cls_token_id, self.sep_token_id}
            return [1 if token in special else 0 for token in token_ids_0]
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1, 1] + [0] * len(token_ids_1) + [1]

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None):
        # ERNIE-M has no segment embedding; kept for API completeness, same values as PaddleNLP.
        if token_ids_1 is None:
            return [0] * (len(token_ids_0) + 2)
        return [0] * (len(token_ids_0) + 1) + [1] * (len(token_ids_1) + 3)

    def convert_tokens_to_string(self, tokens: List[str]) -> str:
        return "".join(tokens).replace(SPIECE_UNDERLINE, " ").strip()

    # ---- language ids -----------------------------------------------------------------------------------------
    def set_languages(self, languages: Sequence[str]) -> None:
        """Use `languages` (codes in id order) for `language_ids`, and save them with the tokenizer: a model trained
        with these ids is fine-tuned and served with the same ones."""
        self.languages = list(languages)
        self.init_kwargs["languages"] = list(languages)

    def language_id(self, language: str) -> int:
        if language not in self.languages:
            raise ValueError(
                f"unknown language {language!r}; this tokenizer knows {self.languages or 'no languages'} "
                "(pass languages=[...] when creating it)"
            )
        return self.languages.index(language)

    def __call__(self, text, text_pair=None, *args, language: LanguageSpec = None, **kwargs):
        """PaddleNLP's `__call__`; with `language`, also `language_ids`.

        `language` is a code ("en"), a pair's two codes (("en", "de")), or, for a batch, a list with one of those per
        text (["en", "de"] for two texts). In a pair, `[CLS] A [SEP]` takes the first language and `[SEP] B [SEP]`
        the second; padding takes the first. A `max_length` that truncation would have to cut into the special tokens
        is refused, and so is a strided pair whose first text leaves no room for the second.
        """
        self._check_max_length(text_pair is not None, kwargs.get("max_length"), kwargs.get("truncation"))
        if text_pair is not None and kwargs.get("stride") and kwargs.get("max_length"):
            self._check_room_for_windows(text, kwargs["max_length"])
        if language is None:
            return super().__call__(text, text_pair, *args, **kwargs)
        per_text = self._languages_per_text(text, language)
        return_tensors = kwargs.pop("return_tensors", None)
        encoded = super().__call__(text, text_pair, *args, **kwargs)
        batched = bool(encoded["input_ids"]) and isinstance(encoded["input_ids"][0], list)
        rows = encoded["input_ids"] if batched else [encoded["input_ids"]]
        # With overflowing windows a text gives several rows; PaddleNLP says which text each came from.
        sources = encoded.get("overflow_to_sample") or list(range(len(rows)))
        encoded["language_ids"] = [self._language_row(row, *per_text[source]) for row, source in zip(rows, sources)]
        if not batched:
            encoded["language_ids"] = encoded["language_ids"][0]
        if return_tensors is not None:
            encoded = BatchEncoding(dict(encoded), tensor_type=return_tensors, prepend_batch_axis=not batched)
        return encoded

    def _languages_per_text(self, text, language: LanguageSpec) -> List[Tuple[int, int]]:
        """(first, second) language ids for each text of the call."""
        texts = text if isinstance(text, (list, tuple)) else [text]
        if isinstance(language, list):
            if not isinstance(text, (list, tuple)) or len(language) != len(texts):
                raise ValueError(f"language: a list gives one language per text; got {len(language)} for "
                                 f"{len(texts) if isinstance(text, (list, tuple)) else 'a single'} text(s)")
            return [self._language_pair(item) for item in language]
        return [self._language_pair(language)] * len(texts)

    def _language_pair(self, language) -> Tuple[int, int]:
        if isinstance(language, str):
            return self.language_id(language), self.language_id(language)
        if isinstance(language, tuple) and len(language) == 2:
            return self.language_id(language[0]), self.language_id(language[1])
        raise ValueError(f"language: expected a code such as 'en' or a pair's two codes ('en', 'de'), got "
                         f"{language!r}")

    def _pad(self, encoded_inputs, *args, **kwargs) -> dict:
        """PaddleNLP's padding, and `language_ids` padded too (with the row's first language, as the batch calls
        do): `pad()` and PaddleNLP's collators then take rows of different lengths."""
        languages = encoded_inputs.get("language_ids") if hasattr(encoded_inputs, "get") else None
        padded = super()._pad(encoded_inputs, *args, **kwargs)
        if languages is not None and len(languages) < len(padded["input_ids"]):
            extra = [languages[0] if len(languages) else 0] * (len(padded["input_ids"]) - len(languages))
            padded["language_ids"] = (list(languages) + extra if self.padding_side == "right"
                                      else extra + list(languages))
        return padded

    @staticmethod
    def _check_max_length(pairs: bool, max_length, truncation) -> None:
        if max_length is None or truncation in (False, "do_not_truncate"):
            return
        specials = 4 if pairs else 2  # [CLS] a [SEP] [SEP] b [SEP] / [CLS] a [SEP]
        needed = specials + (2 if pairs else 1)  # at least one token of each text
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < needed:
            raise ValueError(f"max_length={max_length!r} leaves no room for text: the special tokens of "
                             f"{'a pair' if pairs else 'a text'} take {specials} and each text needs one; use "
                             f"max_length >= {needed}")

    def _check_room_for_windows(self, text, max_length: int) -> None:
        """PaddleNLP cuts a strided pair's second text into windows of what the first text leaves; with no room left
        its loop never advances (measured: a call that never returned). Refuse such a pair instead."""
        firsts = text if isinstance(text, (list, tuple)) else [text]
        specials = self.num_special_tokens_to_add(pair=True)
        for index, ids in enumerate(self.encode_batch_ids([str(first) for first in firsts])):
            if len(ids) + specials >= max_length:
                raise ValueError(f"text {index}: the first text takes {len(ids)} tokens, which with {specials} special "
                                 f"tokens leaves no room for the second within max_length={max_length}; shorten it "
                                 f"or raise max_length")

    def _language_row(self, ids: List[int], first_id: int, second_id: int) -> List[int]:
        sep = self.sep_token_id
        for i in range(len(ids) - 1):
            if ids[i] == sep and ids[i + 1] == sep:  # the pair boundary "[SEP] [SEP]"
                return [first_id] * (i + 1) + [second_id] * (len(ids) - i - 1)
        return [first_id] * len(ids)
