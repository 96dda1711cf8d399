"""ERNIE-M: the encoder, its task heads and the pretraining head, in one file.

Parameter names and shapes follow PaddleNLP 2.8.1's ErnieM (DESIGN §3), so checkpoints move both ways. What differs
from PaddleNLP, on purpose:
- the default attention mask hides padding (`pad_token_id`), not token id 0; `legacy_attention_mask` restores the
  old behaviour for UIE-M checkpoints;
- attention accepts per-example 3-D/4-D masks (pretraining objectives need arbitrary patterns) and runs through
  `kernels.attention`: Paddle's fused kernel where the device has one, a faster explicit path on a CPU;
- an optional language embedding (`num_languages`), initialised at zero;
- `ErnieMForPretraining` with an LM head tied to the word embeddings, evaluated only at the positions it is given.
"""
from __future__ import annotations

import sys
from typing import Optional, Tuple

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle import Tensor
from paddle.distributed.fleet.utils import recompute
from paddlenlp.transformers.ernie_m.configuration import ERNIE_M_PRETRAINED_RESOURCE_FILES_MAP
from paddlenlp.transformers.model_outputs import (
    BaseModelOutputWithPoolingAndCrossAttentions,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
    tuple_output,
)
from paddlenlp.transformers.model_utils import PretrainedModel, register_base_model

from . import kernels
from .configuration import POSITION_OFFSET, RELEASED_CONFIGS, ErnieMConfig
from .weights import pdparams_read_safely_by_paddlenlp

__all__ = [
    "ErnieMPretrainedModel",
    "ErnieMModel",
    "ErnieMForSequenceClassification",
    "ErnieMForTokenClassification",
    "ErnieMForQuestionAnswering",
    "ErnieMForMultipleChoice",
    "UIEM",
    "ErnieMForPretraining",
    "build_attention_bias",
]


def _masked_value(dtype) -> float:
    # Large enough that exp() underflows to exactly 0, small enough to stay finite in half precision.
    return -1e4 if dtype == paddle.float16 else -1e9


def build_attention_bias(
    attention_mask: Optional[Tensor],
    input_ids: Optional[Tensor],
    config: ErnieMConfig,
    dtype=paddle.float32,
) -> Optional[Tensor]:
    """Turn any accepted mask into an additive bias broadcastable to [batch, heads, query, key].

    - None: built from `input_ids`, hiding `pad_token_id` (or id 0 with `legacy_attention_mask`, as PaddleNLP does).
    - [batch, key]: 1 = attend, 0 = padding, whatever the dtype (PaddleNLP's and HF's convention).
    - [batch, query, key] or [batch, 1 or heads, query, key]: bool or integer masks are 1 = attend; float masks
      are already additive (0 = attend, large negative = hidden), as in `paddle.nn.MultiHeadAttention`.
    """
    if attention_mask is None:
        if input_ids is None:
            return None
        hidden_id = 0 if config.legacy_attention_mask else config.pad_token_id
        hidden = input_ids == hidden_id
        if kernels.nothing_hidden(hidden):
            return None
        hidden = hidden.astype(dtype)
        bias = hidden.unsqueeze([1, 2]) * (-1e4)
    elif attention_mask.ndim == 2:
        bias = (1.0 - attention_mask.astype(dtype)).unsqueeze([1, 2]) * (-1e4)
    elif attention_mask.ndim in (3, 4):
        mask = attention_mask.unsqueeze(1) if attention_mask.ndim == 3 else attention_mask
        if mask.dtype == paddle.bool or "int" in str(mask.dtype):
            bias = (mask.astype(dtype) - 1.0) * (-_masked_value(dtype))
        else:
            bias = mask.astype(dtype)
    else:
        raise ValueError(
            f"attention_mask must have 2, 3 or 4 dimensions ([batch, key], [batch, query, key] or "
            f"[batch, heads, query, key]); got shape {list(attention_mask.shape)}"
        )
    bias.stop_gradient = True
    return bias


class ErnieMEmbeddings(nn.Layer):
    """Word + position (+ optional language) embeddings, then LayerNorm and dropout."""

    def __init__(self, config: ErnieMConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.language_embeddings = (
            nn.Embedding(
                config.num_languages,
                config.hidden_size,
                weight_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(0.0)),
            )
            if config.num_languages > 0
            else None
        )
        self.layer_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.dropout = kernels.Dropout(config.hidden_dropout_prob)
        self.config = config

    def forward(self, input_ids=None, position_ids=None, language_ids=None, inputs_embeds=None, past_length: int = 0):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        if position_ids is None:  # the tokens after a cache of `past_length` continue its positions
            seq_len = inputs_embeds.shape[1]
            position_ids = paddle.arange(past_length, past_length + seq_len, dtype="int64").unsqueeze(0)
        embeddings = inputs_embeds + self.position_embeddings(position_ids + POSITION_OFFSET)
        if language_ids is not None:
            if self.language_embeddings is None:
                raise ValueError("language_ids were given but the model has no language embedding (num_languages=0)")
            embeddings = embeddings + self.language_embeddings(language_ids)
        elif self.language_embeddings is not None and not getattr(self.config, "allow_missing_language_ids", False):
            # Trained with a language row added to every token, the model without one gives other outputs.
            raise ValueError(f"this model has a language embedding ({self.config.num_languages} languages): pass "
                             f"language_ids (the tokenizer gives them: tokenizer(text, language='en')), or set "
                             f"model.config.allow_missing_language_ids = True to run without them")
        return self.dropout(kernels.layer_norm(self.layer_norm, embeddings))


class ErnieMSelfAttention(nn.Layer):
    """Multi-head self-attention; parameter names match `paddle.nn.MultiHeadAttention`."""

    def __init__(self, config: ErnieMConfig):
        super().__init__()
        hidden = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = hidden // self.num_heads
        self.dropout = config.attention_probs_dropout_prob
        self.q_proj = nn.Linear(hidden, hidden)
        self.k_proj = nn.Linear(hidden, hidden)
        self.v_proj = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, hidden)

    def _split_heads(self, x):
        batch, seq_len = x.shape[0], x.shape[1]
        return x.reshape([batch, seq_len, self.num_heads, self.head_dim])

    def forward(self, hidden_states, attention_bias=None, output_attentions=False, past_key_value=None,
                use_cache=False):
        """(output, attention probabilities or None, this layer's cache or None). A cache is PaddleNLP's: (keys,
        values), each [batch, heads, length, head_dim]; `past_key_value` holds earlier tokens', which the queries
        attend to before their own."""
        q = self._split_heads(kernels.linear(self.q_proj, hidden_states))
        k = self._split_heads(kernels.linear(self.k_proj, hidden_states))
        v = self._split_heads(kernels.linear(self.v_proj, hidden_states))
        if past_key_value is not None:
            past_k, past_v = (x.transpose([0, 2, 1, 3]).astype(k.dtype) for x in past_key_value)
            k, v = paddle.concat([past_k, k], axis=1), paddle.concat([past_v, v], axis=1)
        present = (k.transpose([0, 2, 1, 3]), v.transpose([0, 2, 1, 3])) if use_cache else None
        if attention_bias is not None:
            if q.dtype == paddle.float16:  # a float32 -1e9 would become -inf in half precision
                attention_bias = attention_bias.clip(min=-6e4)
            attention_bias = attention_bias.astype(q.dtype)
        if past_key_value is None:
            context, probs = kernels.attention(q, k, v, attention_bias, self.dropout, self.training,
                                               output_attentions)
        else:  # more keys than queries: the written-out path (the fast ones are square)
            context, probs = kernels.reference_attention(q, k, v, attention_bias, self.dropout, self.training)
        batch, seq_len = context.shape[0], context.shape[1]
        return kernels.linear(self.out_proj, context.reshape([batch, seq_len, -1])), probs, present


class ErnieMEncoderLayer(nn.Layer):
    """Post-LN Transformer block; names match `paddle.nn.TransformerEncoderLayer` (linear1/2, norm1/2)."""

    def __init__(self, config: ErnieMConfig):
        super().__init__()
        hidden = config.hidden_size
        self.self_attn = ErnieMSelfAttention(config)
        self.linear1 = nn.Linear(hidden, config.intermediate_size)
        self.linear2 = nn.Linear(config.intermediate_size, hidden)
        self.norm1 = nn.LayerNorm(hidden, epsilon=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(hidden, epsilon=config.layer_norm_eps)
        self.dropout1 = kernels.Dropout(config.hidden_dropout_prob)
        self.dropout2 = kernels.Dropout(config.hidden_dropout_prob)
        self.activation = kernels.activation(config.hidden_act)

    def forward(self, hidden_states, attention_bias=None, output_attentions=False, past_key_value=None,
                use_cache=False):
        attended, probs, present = self.self_attn(hidden_states, attention_bias, output_attentions, past_key_value,
                                                  use_cache)
        hidden_states = kernels.layer_norm(self.norm1, hidden_states, self.dropout1(attended))
        transformed = kernels.linear(self.linear2, self.activation(kernels.linear(self.linear1, hidden_states)))
        hidden_states = kernels.layer_norm(self.norm2, hidden_states, self.dropout2(transformed))
        return hidden_states, probs, present


class ErnieMEncoder(nn.Layer):
    def __init__(self, config: ErnieMConfig):
        super().__init__()
        self.config = config
        self.layers = nn.LayerList([ErnieMEncoderLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states, attention_bias=None, output_hidden_states=False, output_attentions=False,
                past_key_values=None, use_cache=False):
        all_hidden = [hidden_states] if output_hidden_states else None
        all_probs = [] if output_attentions else None
        caches = [] if use_cache else None
        # Recompute trades a second forward pass per layer for not keeping its activations (config.recompute).
        recompute_layers = (self.config.recompute and self.training and not output_attentions
                            and past_key_values is None and not use_cache)
        for index, layer in enumerate(self.layers):
            if recompute_layers:
                hidden_states = recompute(_layer_output, layer, hidden_states, attention_bias)
                probs = None
            else:
                past = None if past_key_values is None else past_key_values[index]
                hidden_states, probs, present = layer(hidden_states, attention_bias, output_attentions, past,
                                                      use_cache)
                if use_cache:
                    caches.append(present)
            if output_hidden_states:
                all_hidden.append(hidden_states)
            if output_attentions:
                all_probs.append(probs)
        return hidden_states, all_hidden, all_probs, caches


def _layer_output(layer, hidden_states, attention_bias):
    return layer(hidden_states, attention_bias)[0]


class ErnieMPooler(nn.Layer):
    """tanh(dense(first token))."""

    def __init__(self, config: ErnieMConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states):
        return self.activation(self.dense(hidden_states[:, 0]))


# Heads that read only the token states: a checkpoint without the pooler (HF's classes have none) is complete.
_POOLER_UNUSED = [r"(^|\.)pooler\."]

# Absent from a checkpoint by design: language rows start at zero, so adding them leaves the outputs unchanged.
_NEW_BY_DESIGN = ("language_embeddings.",)


def _check_weights_loaded(model, source, allow_missing: bool, allow_new_head: bool) -> None:
    """Refuse (ValueError, one line) a checkpoint that left weights of `model` at their random start, except a
    task head to be fine-tuned, which is named on stderr."""
    prefix = model.base_model_prefix + "."
    own = model.state_dict()
    # PaddleNLP strips the prefix when an encoder's checkpoint loads into a head: name keys as the model does.
    missing = sorted(key if key in own or prefix + key not in own else prefix + key
                     for key in getattr(model, "_weights_not_loaded", ()))
    if not missing:
        return
    head_keys = {key for key in own if not key.startswith(prefix)} if hasattr(
        model, model.base_model_prefix) else set()
    head = [key for key in missing if key in head_keys]
    encoder = [key for key in missing if key not in head_keys and not any(part in key for part in _NEW_BY_DESIGN)]
    refused = encoder + ([] if allow_new_head else head)
    if refused and not allow_missing:
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        what = ("its task head is not in the checkpoint; fine-tune it first" if not encoder else
                "it would start from random weights")
        where = getattr(model, "_weights_file", None) or source
        raise ValueError(f"{where}: no weight {refused[0]!r}{more} for {type(model).__name__}: {what} "
                         f"(allow_missing_weights=True loads it anyway)")
    print(f"{type(model).__name__}: newly initialised, not in {source}: {', '.join(missing)}", file=sys.stderr)


class ErnieMPretrainedModel(PretrainedModel):
    """Base class: PaddleNLP's loading and saving contract, weight init, and safe `.pdparams` loading."""

    config_class = ErnieMConfig
    base_model_prefix = "ernie_m"
    resource_files_names = {"model_state": "model_state.pdparams"}
    pretrained_init_configuration = RELEASED_CONFIGS
    pretrained_resource_files_map = ERNIE_M_PRETRAINED_RESOURCE_FILES_MAP
    # Old PaddleNLP checkpoints may carry this buffer; it is not a weight.
    _keys_to_ignore_on_load_unexpected = [r"position_ids"]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, allow_missing_weights: bool = False,
                        allow_new_head: bool = True, **kwargs):
        """PaddleNLP's `from_pretrained` (local directory or released name), with `.pdparams` read safely.

        A weight whose shape differs from the model's raises, naming the key, unless
        `ignore_mismatched_sizes=True` (then it is newly initialised, e.g. a classifier with other labels).
        A weight of the encoder missing from the checkpoint raises, naming it, unless `allow_missing_weights=True`
        (PaddleNLP's behaviour: it starts random). A missing task head (an encoder checkpoint loaded to be
        fine-tuned) is initialised and named in one line, or refused with `allow_new_head=False`, as inference
        does.
        """
        with pdparams_read_safely_by_paddlenlp():
            model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        _check_weights_loaded(model, pretrained_model_name_or_path, allow_missing_weights, allow_new_head)
        return model

    @classmethod
    def _load_pretrained_model(cls, *args, **kwargs):
        loaded = super()._load_pretrained_model(*args, **kwargs)
        model, missing = loaded[0], loaded[1]
        model._weights_not_loaded = list(missing)  # read by from_pretrained, with the file they were missing from
        archive = kwargs.get("resolved_archive_file")
        model._weights_file = archive[0] if isinstance(archive, (list, tuple)) and archive else archive
        return loaded

    def _init_weights(self, layer):
        std = self.config.initializer_range
        if isinstance(layer, (nn.Linear, nn.Embedding)):
            layer.weight.set_value(paddle.normal(mean=0.0, std=std, shape=layer.weight.shape))
            if isinstance(layer, nn.Linear) and layer.bias is not None:
                layer.bias.set_value(paddle.zeros_like(layer.bias))
        elif isinstance(layer, nn.LayerNorm):
            layer.weight.set_value(paddle.ones_like(layer.weight))
            layer.bias.set_value(paddle.zeros_like(layer.bias))
        if isinstance(layer, ErnieMEmbeddings) and layer.language_embeddings is not None:
            # Zero, so that adding languages to a trained checkpoint leaves its outputs unchanged.
            layer.language_embeddings.weight.set_value(paddle.zeros_like(layer.language_embeddings.weight))
        if isinstance(layer, ErnieMLMHead):
            layer.bias.set_value(paddle.zeros_like(layer.bias))


def _check_input_shape(input_ids, inputs_embeds, config: ErnieMConfig, past_length: int = 0):
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("give exactly one of input_ids and inputs_embeds")
    shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:-1]
    if len(shape) != 2:
        raise ValueError(f"input_ids must be [batch, sequence]; got shape {list(shape)}")
    max_len = config.max_position_embeddings - POSITION_OFFSET
    # In a static graph (export) the length is symbolic; the check is for eager calls.
    if paddle.in_dynamic_mode() and shape[1] + past_length > max_len:
        cached = f" after {past_length} cached tokens" if past_length else ""
        raise ValueError(
            f"sequence length {shape[1]}{cached} exceeds the model's {max_len} positions "
            f"(max_position_embeddings={config.max_position_embeddings}); truncate the input"
        )


@register_base_model
class ErnieMModel(ErnieMPretrainedModel):
    """The bare encoder: returns (sequence_output, pooled_output), or a ModelOutput with `return_dict=True`."""

    def __init__(self, config: ErnieMConfig):
        super().__init__(config)
        self.embeddings = ErnieMEmbeddings(config)
        self.encoder = ErnieMEncoder(config)
        self.pooler = ErnieMPooler(config)

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: Optional[Tensor] = None,
        position_ids: Optional[Tensor] = None,
        attention_mask: Optional[Tensor] = None,
        inputs_embeds: Optional[Tensor] = None,
        past_key_values: Optional[Tuple[Tuple[Tensor, Tensor], ...]] = None,
        use_cache: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        output_attentions: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        language_ids: Optional[Tensor] = None,
    ):
        """PaddleNLP's parameters in PaddleNLP's order, then this project's.

        Args:
            input_ids: [batch, seq] token ids.
            position_ids: [batch, seq], starting at 0 (the model adds 2). Default 0..seq-1, after the cached tokens.
            attention_mask: see `build_attention_bias`; default hides `pad_token_id`. With `past_key_values`, a
                mask over the new tokens only leaves the cached ones visible.
            past_key_values: one (keys, values) per layer, each [batch, heads, cached, head_dim], as `use_cache`
                returns them: the new tokens attend to the cached ones before their own.
            use_cache: also return each layer's keys and values (the cached ones, then the new tokens').
            language_ids: [batch, seq] language of each token, for models with `num_languages > 0`.
        """
        past_length = 0 if past_key_values is None else int(past_key_values[0][0].shape[2])
        _check_input_shape(input_ids, inputs_embeds, self.config, past_length)
        output_hidden_states = bool(output_hidden_states)
        output_attentions = bool(output_attentions)
        use_cache = bool(use_cache)
        embeddings = self.embeddings(input_ids, position_ids, language_ids, inputs_embeds, past_length)
        bias = build_attention_bias(attention_mask, input_ids, self.config, dtype=embeddings.dtype)
        if past_length and bias is not None and bias.shape[-1] == embeddings.shape[1]:
            visible = paddle.zeros(list(bias.shape[:-1]) + [past_length], dtype=bias.dtype)
            bias = paddle.concat([visible, bias], axis=-1)
        sequence_output, hidden_states, attentions, caches = self.encoder(
            embeddings, bias, output_hidden_states, output_attentions, past_key_values, use_cache
        )
        pooled_output = self.pooler(sequence_output)
        caches = tuple(caches) if caches is not None else None
        if not return_dict:
            extras = tuple(x for x in (caches, hidden_states, attentions) if x is not None)
            return (sequence_output, pooled_output) + extras
        return BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=sequence_output,
            pooler_output=pooled_output,
            past_key_values=caches,
            hidden_states=hidden_states,
            attentions=attentions,
        )


def _classifier_dropout(config: ErnieMConfig) -> nn.Dropout:
    rate = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
    return kernels.Dropout(rate)


def _encode(model: ErnieMPretrainedModel, input_ids, position_ids, attention_mask, language_ids, inputs_embeds,
            output_hidden_states, output_attentions):
    """Run the shared encoder for a head; always returns a ModelOutput."""
    return model.ernie_m(
        input_ids,
        position_ids=position_ids,
        attention_mask=attention_mask,
        language_ids=language_ids,
        inputs_embeds=inputs_embeds,
        output_hidden_states=output_hidden_states,
        output_attentions=output_attentions,
        return_dict=True,
    )


def _extras(outputs):
    return tuple(x for x in (outputs.hidden_states, outputs.attentions) if x is not None)


class ErnieMForSequenceClassification(ErnieMPretrainedModel):
    """Pooled output -> dropout -> linear. Cross-entropy, MSE (one label) or BCE (multi-label float labels)."""

    def __init__(self, config: ErnieMConfig):
        super().__init__(config)
        self.ernie_m = ErnieMModel(config)
        self.num_labels = config.num_labels
        self.dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, labels=None, inputs_embeds=None,
                output_hidden_states=None, output_attentions=None, return_dict=None, language_ids=None):
        outputs = _encode(self, input_ids, position_ids, attention_mask, language_ids, inputs_embeds,
                          output_hidden_states, output_attentions)
        logits = self.classifier(self.dropout(outputs.pooler_output))
        loss = None if labels is None else self._loss(logits, labels)
        if not return_dict:
            return tuple_output((logits,) + _extras(outputs), loss)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )

    def _loss(self, logits, labels):
        if self.num_labels == 1:
            return F.mse_loss(logits.reshape([-1]), labels.reshape([-1]).astype(logits.dtype))
        if labels.dtype in (paddle.int32, paddle.int64):
            return F.cross_entropy(logits.reshape([-1, self.num_labels]), labels.reshape([-1]))
        return F.binary_cross_entropy_with_logits(logits, labels.astype(logits.dtype))


class ErnieMForTokenClassification(ErnieMPretrainedModel):
    """Per-token dropout -> linear. Labels equal to -100 are ignored by the loss."""

    _keys_to_ignore_on_load_missing = _POOLER_UNUSED

    def __init__(self, config: ErnieMConfig):
        super().__init__(config)
        self.ernie_m = ErnieMModel(config)
        self.num_labels = config.num_labels
        self.dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, labels=None, inputs_embeds=None,
                output_hidden_states=None, output_attentions=None, return_dict=None, language_ids=None):
        outputs = _encode(self, input_ids, position_ids, attention_mask, language_ids, inputs_embeds,
                          output_hidden_states, output_attentions)
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits.reshape([-1, self.num_labels]), labels.reshape([-1]).astype("int64"), ignore_index=-100
            )
        if not return_dict:
            return tuple_output((logits,) + _extras(outputs), loss)
        return TokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class ErnieMForQuestionAnswering(ErnieMPretrainedModel):
    """Span extraction: `classifier` [hidden, 2] gives start and end logits."""

    _keys_to_ignore_on_load_missing = _POOLER_UNUSED

    def __init__(self, config: ErnieMConfig):
        super().__init__(config)
        self.ernie_m = ErnieMModel(config)
        self.classifier = nn.Linear(config.hidden_size, 2)

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, start_positions=None,
                end_positions=None, inputs_embeds=None, output_hidden_states=None, output_attentions=None,
                return_dict=None, language_ids=None):
        outputs = _encode(self, input_ids, position_ids, attention_mask, language_ids, inputs_embeds,
                          output_hidden_states, output_attentions)
        logits = self.classifier(outputs.last_hidden_state)
        start_logits, end_logits = logits[:, :, 0], logits[:, :, 1]
        loss = None
        if start_positions is not None and end_positions is not None:
            # Positions outside the sequence (e.g. an answer cut by the stride) are ignored.
            seq_len = start_logits.shape[1]
            start = start_positions.reshape([-1]).astype("int64").clip(0, seq_len)
            end = end_positions.reshape([-1]).astype("int64").clip(0, seq_len)
            loss = (
                F.cross_entropy(start_logits, start, ignore_index=seq_len)
                + F.cross_entropy(end_logits, end, ignore_index=seq_len)
            ) / 2
        if not return_dict:
            return tuple_output((start_logits, end_logits) + _extras(outputs), loss)
        return QuestionAnsweringModelOutput(
            loss=loss, start_logits=start_logits, end_logits=end_logits,
            hidden_states=outputs.hidden_states, attentions=outputs.attentions,
        )


class ErnieMForMultipleChoice(ErnieMPretrainedModel):
    """Inputs [batch, choices, seq]; one score per choice from the pooled output."""

    def __init__(self, config: ErnieMConfig):
        super().__init__(config)
        self.ernie_m = ErnieMModel(config)
        self.dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, 1)

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, labels=None, inputs_embeds=None,
                output_hidden_states=None, output_attentions=None, return_dict=None, language_ids=None):
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference is None or reference.ndim < 3:
            raise ValueError("ErnieMForMultipleChoice expects inputs shaped [batch, choices, seq]")
        num_choices = reference.shape[1]

        def flat(x):
            if x is None:
                return None
            return x.reshape([-1] + list(x.shape[2:]))

        outputs = _encode(self, flat(input_ids), flat(position_ids), flat(attention_mask), flat(language_ids),
                          flat(inputs_embeds), output_hidden_states, output_attentions)
        logits = self.classifier(self.dropout(outputs.pooler_output)).reshape([-1, num_choices])
        loss = None if labels is None else F.cross_entropy(logits, labels.reshape([-1]).astype("int64"))
        if not return_dict:
            return tuple_output((logits,) + _extras(outputs), loss)
        return MultipleChoiceModelOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class UIEM(ErnieMPretrainedModel):
    """Universal Information Extraction head: start and end probabilities per token.

    UIE-M checkpoints were trained with PaddleNLP's default mask; pass an explicit mask or set
    `legacy_attention_mask=True` to reproduce them exactly.
    """

    _keys_to_ignore_on_load_missing = _POOLER_UNUSED

    def __init__(self, config: ErnieMConfig):
        super().__init__(config)
        self.ernie_m = ErnieMModel(config)
        self.linear_start = nn.Linear(config.hidden_size, 1)
        self.linear_end = nn.Linear(config.hidden_size, 1)

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, language_ids=None):
        sequence_output = self.ernie_m(
            input_ids, position_ids=position_ids, attention_mask=attention_mask, language_ids=language_ids
        )[0]
        start_prob = F.sigmoid(self.linear_start(sequence_output).squeeze(-1))
        end_prob = F.sigmoid(self.linear_end(sequence_output).squeeze(-1))
        return start_prob, end_prob


class ErnieMLMHead(nn.Layer):
    """dense -> activation -> LayerNorm -> tied projection onto the vocabulary (+ bias)."""

    def __init__(self, config: ErnieMConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = kernels.activation(config.hidden_act)
        self.layer_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.bias = self.create_parameter(
            [config.vocab_size], is_bias=True, default_initializer=nn.initializer.Constant(0.0)
        )

    def transform(self, hidden_states):
        return kernels.layer_norm(self.layer_norm, self.activation(kernels.linear(self.dense, hidden_states)))

    def forward(self, hidden_states, word_embeddings):
        return kernels.tied_projection(self.transform(hidden_states), word_embeddings, self.bias)


class ErnieMForPretraining(ErnieMPretrainedModel):
    """Encoder + masked-LM head tied to the word embeddings.

    `masked_positions` ([n], int64) are flat indices into the [batch * seq] tokens; the vocabulary projection runs
    only there, which is most of the saving on a 250k vocabulary. Without them, logits cover every token.
    `masked_labels` ([n]) gives the mean cross-entropy as the loss.
    """

    def __init__(self, config: ErnieMConfig):
        super().__init__(config)
        self.ernie_m = ErnieMModel(config)
        self.lm_head = ErnieMLMHead(config)

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, language_ids=None,
                masked_positions=None, masked_labels=None, inputs_embeds=None, output_hidden_states=None,
                output_attentions=None, return_dict=None):
        outputs = _encode(self, input_ids, position_ids, attention_mask, language_ids, inputs_embeds,
                          output_hidden_states, output_attentions)
        sequence_output = _at_positions(outputs.last_hidden_state, masked_positions)
        logits = self.lm_head(sequence_output, self.ernie_m.embeddings.word_embeddings.weight)
        loss = None
        if masked_labels is not None:
            loss = F.cross_entropy(
                logits.reshape([-1, logits.shape[-1]]), masked_labels.reshape([-1]).astype("int64"),
                ignore_index=-100,
            )
        if not return_dict:
            return tuple_output((logits,) + _extras(outputs), loss)
        return MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )

    @paddle.no_grad()
    def most_likely_tokens(self, input_ids, masked_positions, excluded_ids=(), position_ids=None,
                           attention_mask=None, language_ids=None) -> Tensor:
        """The highest-scoring vocabulary id at each of `masked_positions` (greedy decoding of the LM head: the
        argmax of `forward`'s logits), never one of `excluded_ids`; no gradient. On a CPU the logits are reduced to
        their argmax tile by tile instead of being materialised."""
        outputs = _encode(self, input_ids, position_ids, attention_mask, language_ids, None, False, False)
        hidden = self.lm_head.transform(_at_positions(outputs.last_hidden_state, masked_positions))
        penalty = np.zeros(self.config.vocab_size, dtype=np.float32)
        excluded = np.asarray(excluded_ids, dtype=np.int64)
        penalty[excluded[(excluded >= 0) & (excluded < len(penalty))]] = -np.inf
        return kernels.greedy_ids(hidden.astype("float32"), self.ernie_m.embeddings.word_embeddings.weight,
                                  self.lm_head.bias, paddle.to_tensor(penalty))


def _at_positions(sequence_output: Tensor, positions: Optional[Tensor]) -> Tensor:
    """The rows at flat `positions` of [batch, seq, hidden] (all of them when None)."""
    if positions is None:
        return sequence_output
    flat = sequence_output.reshape([-1, sequence_output.shape[-1]])
    return paddle.gather(flat, positions.reshape([-1]).astype("int64"))
