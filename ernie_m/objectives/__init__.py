"""Pretraining objectives (DESIGN §4): each a batch builder in its own module, registered under its name;
`masked_lm_loss` is the loss they share."""
from .base import REGISTRY, Objective, ObjectiveContext, ObjectiveOptions, register
from .batch import AUXILIARY, MAIN, PretrainingBatch, SpecialIds
from .btmlm import BTMLM, BTMLMOptions
from .camlm import CAMLM, CAMLMOptions
from .criterion import masked_lm_loss, masked_token_accuracy, model_inputs
from .examples import Monolingual, Parallel
from .masking import MaskingConfig, mask_tokens
from .mmlm import MMLM
from .tlm import TLM

__all__ = [
    "REGISTRY", "register", "Objective", "ObjectiveOptions", "ObjectiveContext",
    "MMLM", "TLM", "CAMLM", "CAMLMOptions", "BTMLM", "BTMLMOptions", "PretrainingBatch", "SpecialIds",
    "Monolingual", "Parallel", "MaskingConfig", "mask_tokens", "masked_lm_loss", "masked_token_accuracy",
    "model_inputs", "MAIN", "AUXILIARY",
]
