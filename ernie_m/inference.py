"""Static-graph export, a Paddle Inference predictor and ONNX Runtime for any ERNIE-M model or head.

    export(model, "out/static")                # out/static/model.json + model.pdiparams + export.json
    predictor = StaticPredictor("out/static")  # Paddle Inference, CPU or GPU
    sequence_output, pooled_output = predictor(input_ids, attention_mask)
    export_onnx("out/static")                  # out/static/model.onnx, through paddle2onnx
    OnnxPredictor("out/static")(input_ids)     # the same call on ONNX Runtime

The exported program takes `input_ids`, `attention_mask` (1 = a real token) and `position_ids` (from 0; the model
adds its offset of 2), all int64 `[batch, sequence]` (and `language_ids` for a model with a language embedding),
and returns what the model returns with `return_dict=False`: `(sequence_output, pooled_output)` for `ErnieMModel`,
`(logits,)` for the classification heads, `(start_logits, end_logits)` for QA. Paddle 3 writes the program as
`model.json` (PIR).
"""
from __future__ import annotations

import json
import os
import sys
from typing import List, Optional

import numpy as np
import paddle

from .atomic import atomic_outputs

INPUT_NAMES = ("input_ids", "attention_mask", "position_ids")
EXPORT_INFO = "export.json"


class _ExportedForward(paddle.nn.Layer):
    """Fixes the exported signature: (input_ids, attention_mask, position_ids) -> a tuple of tensors."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids, language_ids=None):
        outputs = self.model(input_ids, position_ids=position_ids, attention_mask=attention_mask,
                             language_ids=language_ids, return_dict=False)
        return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)


def export(model, output_dir: str, tokenizer=None) -> str:
    """Write `model` as a static graph into `output_dir` (with `tokenizer` beside it, as `ernie-m export` does: a
    serving directory needs both); returns the path prefix (`output_dir/model`)."""
    model.eval()
    with atomic_outputs(output_dir) as staging:  # a failed export leaves the directory as it was
        _export_into(staging, model, tokenizer)
    return os.path.join(output_dir, "model")


def _export_into(output_dir: str, model, tokenizer) -> None:
    from paddle.static import InputSpec

    # A model with a language embedding (num_languages > 0) also takes language ids; released checkpoints have none.
    names = INPUT_NAMES + (("language_ids",) if model.config.num_languages else ())
    spec = [InputSpec([None, None], "int64", name) for name in names]
    static = paddle.jit.to_static(_ExportedForward(model), input_spec=spec, full_graph=True)
    prefix = os.path.join(output_dir, "model")
    paddle.jit.save(static, prefix)
    info = {"architecture": type(model).__name__, "inputs": list(names),
            "pad_token_id": int(model.config.pad_token_id),
            "sep_token_id": int(tokenizer.sep_token_id) if tokenizer is not None else None,
            "paddle_version": paddle.__version__,
            "config": model.config.to_dict()}
    with open(os.path.join(output_dir, EXPORT_INFO), "w") as handle:
        json.dump(info, handle, indent=2, default=str)
    if tokenizer is not None:
        tokenizer.save_pretrained(output_dir)


def program_file(directory: str) -> str:
    """The exported program in `directory`: Paddle 3's `model.json`, or an older `model.pdmodel`."""
    for name in ("model.json", "model.pdmodel"):
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    raise FileNotFoundError(f"{directory}: no exported model (model.json or model.pdmodel); export one with "
                            f"`ernie-m export`")


class _Predictor:
    """Fills the default mask (from the pad id) and positions (0..n-1), then runs `_run` on int64 arrays."""

    def __init__(self, directory: str):
        from .configuration import POSITION_OFFSET

        info_path = os.path.join(directory, EXPORT_INFO)
        self.info = json.load(open(info_path)) if os.path.isfile(info_path) else {}
        self.pad_token_id = int(self.info.get("pad_token_id", 1))
        self.sep_token_id = self.info.get("sep_token_id")
        positions = (self.info.get("config") or {}).get("max_position_embeddings")
        self.max_length = int(positions) - POSITION_OFFSET if positions else None  # unknown for older exports
        self._cut_said = False

    def _fit_length(self, values: dict) -> dict:
        """Columns past what the model's positions hold are cut, with one line on stderr the first time; a row cut
        short ends in [SEP], as the tokenizer's truncation leaves it (a longer input would fail in the position
        embedding)."""
        width, limit = values["input_ids"].shape[1], self.max_length
        if limit is None or width <= limit:
            return values
        if not self._cut_said:
            self._cut_said = True
            print(f"inputs of {width} tokens are more than this model's {limit + 2} positions hold; they are cut at "
                  f"{limit} tokens", file=sys.stderr)
        longer = np.asarray(values["attention_mask"])[:, limit:].any(axis=1)
        cut = {name: (None if value is None else np.array(np.asarray(value)[:, :limit])) for name, value in
               values.items()}
        if self.sep_token_id is not None:
            cut["input_ids"][longer, limit - 1] = int(self.sep_token_id)
        return cut

    def __call__(self, input_ids, attention_mask=None, position_ids=None, language_ids=None) -> List[np.ndarray]:
        input_ids = np.asarray(input_ids, dtype=np.int64)
        names = self.input_names()
        if "language_ids" in names and language_ids is None:
            raise ValueError("this exported model has a language embedding: pass language_ids")
        if attention_mask is None:
            attention_mask = (input_ids != self.pad_token_id).astype(np.int64)
        if position_ids is None:
            position_ids = np.broadcast_to(np.arange(input_ids.shape[1], dtype=np.int64), input_ids.shape)
        values = self._fit_length({"input_ids": input_ids, "attention_mask": attention_mask,
                                   "position_ids": position_ids, "language_ids": language_ids})
        return self._run({name: np.ascontiguousarray(values[name], dtype=np.int64) for name in names})


class StaticPredictor(_Predictor):
    """Paddle Inference over an exported directory. `onednn=False` keeps CPU results equal to the dynamic graph's
    (oneDNN's fused kernels round differently); turn it on for speed."""

    def __init__(self, directory: str, device: str = "cpu", onednn: bool = False, threads: Optional[int] = None):
        from paddle import inference

        config = inference.Config(program_file(directory), os.path.join(directory, "model.pdiparams"))
        if device.startswith("gpu"):
            config.enable_use_gpu(256, int(device.split(":")[1]) if ":" in device else 0)
        else:
            config.disable_gpu()
            if onednn:
                config.enable_mkldnn()
            else:
                config.disable_mkldnn()
            if threads:
                config.set_cpu_math_library_num_threads(threads)
        self._predictor = inference.create_predictor(config)
        super().__init__(directory)

    def input_names(self) -> List[str]:
        return self._predictor.get_input_names()

    def _run(self, feeds) -> List[np.ndarray]:
        for name, value in feeds.items():
            self._predictor.get_input_handle(name).copy_from_cpu(value)
        self._predictor.run()
        return [self._predictor.get_output_handle(name).copy_to_cpu() for name in self._predictor.get_output_names()]


def export_onnx(directory: str, opset: int = 14) -> str:
    """Convert the exported program in `directory` to `directory/model.onnx` with paddle2onnx; returns its path."""
    import paddle2onnx

    path = os.path.join(directory, "model.onnx")
    paddle2onnx.export(program_file(directory), os.path.join(directory, "model.pdiparams"), path,
                       opset_version=opset)
    _name_outputs(path, _output_names(directory))
    return path


def _output_names(directory: str) -> tuple:
    """The model's own names for the exported outputs (`logits`, `last_hidden_state`, ...), from the registry."""
    from .architectures import ARCHITECTURES

    info_path = os.path.join(directory, EXPORT_INFO)
    architecture = json.load(open(info_path)).get("architecture") if os.path.isfile(info_path) else None
    return ARCHITECTURES[architecture].outputs if architecture in ARCHITECTURES else ()


def _name_outputs(path: str, names) -> None:
    """Rename the ONNX graph's outputs (paddle2onnx calls them `fetch_name_0`, ...) to `names`, in order."""
    import onnx

    model = onnx.load(path)
    if not names or len(names) != len(model.graph.output):
        return
    renames = {output.name: name for output, name in zip(model.graph.output, names)}
    for node in model.graph.node:
        node.output[:] = [renames.get(name, name) for name in node.output]
        node.input[:] = [renames.get(name, name) for name in node.input]
    for output in model.graph.output:
        output.name = renames[output.name]
    onnx.save(model, path)


class OnnxPredictor(_Predictor):
    """ONNX Runtime over `directory/model.onnx` (from `export_onnx`), called like `StaticPredictor`."""

    def __init__(self, directory: str, threads: Optional[int] = None):
        import onnxruntime

        path = os.path.join(directory, "model.onnx")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{directory}: no model.onnx; convert an export with export_onnx()")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        super().__init__(directory)

    def input_names(self) -> List[str]:
        return [item.name for item in self._session.get_inputs()]

    def _run(self, feeds) -> List[np.ndarray]:
        return self._session.run(None, feeds)
