"""Pretraining objectives (DESIGN §4): each a batch builder; `masked_lm_loss` is the loss they share."""
from .base import Objective
from .batch import AUXILIARY, MAIN, PretrainingBatch, SpecialIds
from .btmlm import BTMLM
from .camlm import CAMLM
from .criterion import masked_lm_loss, model_inputs
from .examples import Monolingual, Parallel
from .masking import MaskingConfig, mask_tokens
from .mmlm import MMLM
from .tlm import TLM

# The objectives a pretraining stage can name; each class declares its `name` and its `data_kind`.
REGISTRY = {objective.name: objective for objective in (MMLM, TLM, CAMLM, BTMLM)}

__all__ = [
    "REGISTRY",
    "Objective", "MMLM", "TLM", "CAMLM", "BTMLM", "PretrainingBatch", "SpecialIds", "Monolingual", "Parallel",
    "MaskingConfig", "mask_tokens", "masked_lm_loss", "model_inputs", "MAIN", "AUXILIARY",
]
