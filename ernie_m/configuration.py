"""ERNIE-M configuration: PaddleNLP's fields, our additions, presets and validation.

A `config.json` written by PaddleNLP's `ErnieMConfig` loads here unchanged, and ours loads there: the extra
fields (`num_languages`, `legacy_attention_mask`, `layer_norm_eps`) are plain attributes that PaddleNLP ignores.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

from paddlenlp.transformers.configuration_utils import PretrainedConfig

__all__ = ["ErnieMConfig", "PRESETS", "RELEASED_CONFIGS", "RELEASED_MODELS", "ACTIVATIONS", "POSITION_OFFSET",
           "fit_max_length"]

# Position ids given to the model start at 0; the embedding table reserves rows 0 and 1 (fairseq's padding
# convention, kept by the released weights), so the model adds this offset, and an input holds
# max_position_embeddings - POSITION_OFFSET tokens at most.
POSITION_OFFSET = 2
_CAPS_SAID: set = set()

# Activations accepted in `hidden_act`: each is the `paddle.nn.functional` function of the same name, which is what
# PaddleNLP's ErnieM (through `paddle.nn.TransformerEncoderLayer`) applies, so both give the same numbers.
ACTIVATIONS = ("gelu", "relu", "silu", "swish", "tanh", "sigmoid", "mish")

_SHARED = dict(
    hidden_act="gelu",
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    initializer_range=0.02,
    max_position_embeddings=514,
    vocab_size=250002,
    pad_token_id=1,
)

# The names PaddleNLP publishes weights for (DESIGN §3). `from_pretrained(name)` downloads them through PaddleNLP.
RELEASED_CONFIGS: Dict[str, dict] = {
    "ernie-m-base": dict(_SHARED, hidden_size=768, num_hidden_layers=12, num_attention_heads=12),
    "ernie-m-large": dict(_SHARED, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16),
    "uie-m-base": dict(_SHARED, hidden_size=768, num_hidden_layers=12, num_attention_heads=12),
    "uie-m-large": dict(_SHARED, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16),
}
RELEASED_MODELS = tuple(RELEASED_CONFIGS)

# Shapes with no released weights, for CPU work and tests: `ErnieMConfig.from_preset(name, vocab_size=...)`.
PRESETS: Dict[str, dict] = dict(
    RELEASED_CONFIGS,
    **{
        "ernie-m-tiny": dict(_SHARED, hidden_size=64, num_hidden_layers=2, num_attention_heads=2),
        "ernie-m-mini": dict(_SHARED, hidden_size=128, num_hidden_layers=4, num_attention_heads=2),
        "ernie-m-small": dict(_SHARED, hidden_size=256, num_hidden_layers=4, num_attention_heads=4),
    },
)

# Sizes past these are refused before anything is allocated (a hostile or mistyped config.json).
_MAX_VOCAB = 10_000_000
_MAX_HIDDEN = 65_536
_MAX_LAYERS = 1_024
_MAX_POSITIONS = 1_048_576
_MAX_LANGUAGES = 10_000  # language codes, not tokens
_MAX_PARAMETERS = 200_000_000_000


def available_memory() -> Optional[int]:
    """Bytes the kernel reports as available for new allocations (Linux's MemAvailable), or None elsewhere."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class ErnieMConfig(PretrainedConfig):
    """Configuration of an ERNIE-M encoder (XLM-R shape, post-LN, FFN = 4 x hidden).

    Args beyond PaddleNLP's:
        num_languages: size of the optional language embedding added to the input (0 = none, the released
            checkpoints' layout). Initialised at zero so turning it on over a checkpoint changes no output.
        legacy_attention_mask: build the default mask as PaddleNLP 2.8.1 does, hiding tokens with id 0 (`[CLS]`)
            instead of padding. Only UIE-M checkpoints, which were trained with it, should turn it on.
        layer_norm_eps: epsilon of every LayerNorm (Paddle's default, 1e-5).
        recompute: in training, recompute each layer's activations in the backward pass instead of keeping them
            (less memory, about a third more compute).

    `intermediate_size` is kept for file compatibility, but the feed-forward width is always 4 x `hidden_size`, as
    in the paper and in PaddleNLP's implementation (which ignores the field too).
    """

    model_type = "ernie_m"
    attribute_map: Dict[str, str] = {"dropout": "classifier_dropout", "num_classes": "num_labels"}
    pretrained_init_configuration = RELEASED_CONFIGS

    def __init__(
        self,
        vocab_size: int = 250002,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int | None = None,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 514,
        type_vocab_size: int = 16,
        initializer_range: float = 0.02,
        pad_token_id: int = 1,
        num_languages: int = 0,
        legacy_attention_mask: bool = False,
        layer_norm_eps: float = 1e-5,
        recompute: bool = False,
        **kwargs,
    ):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.num_languages = num_languages
        self.legacy_attention_mask = legacy_attention_mask
        self.layer_norm_eps = layer_norm_eps
        self.recompute = recompute
        self.validate()
        # The true width; a different value in a PaddleNLP config.json (it always writes 3072) is not used by
        # either implementation, so it is overwritten rather than rejected.
        self.intermediate_size = 4 * hidden_size

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "ErnieMConfig":
        """A config from a named shape (`ernie-m-base`, `ernie-m-tiny`, ...), with fields overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown ERNIE-M preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
        return cls(**dict(PRESETS[name], **overrides))

    def validate(self) -> None:
        """Raise ValueError naming the field when the configuration cannot build a model."""

        def positive_int(field, value, upper):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"ErnieMConfig.{field} must be an integer, got {value!r}")
            if not 0 < value <= upper:
                raise ValueError(f"ErnieMConfig.{field} must be in [1, {upper}], got {value}")

        positive_int("vocab_size", self.vocab_size, _MAX_VOCAB)
        positive_int("hidden_size", self.hidden_size, _MAX_HIDDEN)
        positive_int("num_hidden_layers", self.num_hidden_layers, _MAX_LAYERS)
        positive_int("num_attention_heads", self.num_attention_heads, _MAX_HIDDEN)
        positive_int("max_position_embeddings", self.max_position_embeddings, _MAX_POSITIONS)
        if self.max_position_embeddings < 3:
            raise ValueError("ErnieMConfig.max_position_embeddings must be at least 3 (positions start at 2)")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"ErnieMConfig.hidden_size ({self.hidden_size}) must be divisible by "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"ErnieMConfig.hidden_act {self.hidden_act!r} is not one of {', '.join(ACTIVATIONS)}")
        for field in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"ErnieMConfig.{field} must be a number in [0, 1), got {value!r}")
        for field in ("initializer_range", "layer_norm_eps"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"ErnieMConfig.{field} must be positive and finite, got {value!r}")
        if isinstance(self.num_languages, bool) or not isinstance(self.num_languages, int) or \
                not 0 <= self.num_languages <= _MAX_LANGUAGES:
            raise ValueError(f"ErnieMConfig.num_languages must be an integer >= 0 and at most {_MAX_LANGUAGES}, got "
                             f"{self.num_languages!r}")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(
                f"ErnieMConfig.pad_token_id ({self.pad_token_id}) must be a token id below vocab_size "
                f"({self.vocab_size})"
            )
        if self.num_parameters() > _MAX_PARAMETERS:
            raise ValueError(
                f"ErnieMConfig describes {self.num_parameters():,} parameters, more than the {_MAX_PARAMETERS:,} "
                "this project accepts; check hidden_size, num_hidden_layers and vocab_size"
            )
        needed, free = self.num_parameters() * 4, available_memory()
        if free is not None and needed > free:  # refused before any allocation, not after swapping the machine out
            raise ValueError(
                f"ErnieMConfig describes {self.num_parameters():,} parameters: their float32 weights alone need "
                f"{needed / 2 ** 30:.1f} GiB and this machine has {free / 2 ** 30:.1f} GiB free; check hidden_size, "
                f"num_hidden_layers and vocab_size"
            )

    def num_parameters(self) -> int:
        """Parameters of the encoder with pooler (no task head), computed from the sizes alone."""
        h, layers = self.hidden_size, self.num_hidden_layers
        embeddings = (self.vocab_size + self.max_position_embeddings + self.num_languages) * h + 2 * h
        per_layer = 4 * (h * h + h) + (h * 4 * h + 4 * h) + (4 * h * h + h) + 4 * h
        return embeddings + layers * per_layer + h * h + h


def fit_max_length(config, requested: int) -> int:
    """`requested`, or the most tokens the model's positions hold when that is fewer; the first time a limit cuts a
    request, one line on stderr says so (a longer input would fail inside the position embedding)."""
    import sys

    limit = config.max_position_embeddings - POSITION_OFFSET
    if requested <= limit:
        return requested
    if (requested, limit) not in _CAPS_SAID:
        _CAPS_SAID.add((requested, limit))
        print(f"max_length {requested} is more than this model's {config.max_position_embeddings} positions hold; "
              f"inputs are cut at {limit} tokens", file=sys.stderr)
    return limit
