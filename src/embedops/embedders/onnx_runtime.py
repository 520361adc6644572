"""The ONNX Runtime backend: the fast CPU path for local models.

The transformer is exported to ONNX once (this needs torch, a few seconds) and cached by
weight digest; after that, loading needs only onnxruntime and tokenizers, so a cold start
to the first embedding takes about a second instead of the ~10 s of importing torch.

Precisions:
- ``fp32``: the exported graph as is; vectors match PyTorch's to ~1e-6, so it shares the
  PyTorch fingerprint.
- ``int8``: dynamic quantization, per-channel weights with ``reduce_range`` (plain
  per-tensor int8 loses too much: mean cosine ~0.96). Vectors differ, so its fingerprint
  differs too. On CPUs with VNNI it is ~2x faster than fp32; see docs/benchmarks.md.
  Dynamic quantization scales activations per call, so a vector would depend on which
  other texts shared its batch; int8 therefore runs one text per call, which keeps every
  vector a function of its own text (idempotent re-embedding) and wastes no padding.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from filelock import FileLock

from embedops.embedders.base import BaseEmbedder
from embedops.embedders.local import LocalModel
from embedops.errors import ModelNotFound

Precision = Literal["fp32", "int8"]
OPSET = 17
_log = logging.getLogger("embedops.prepare")


def onnx_path(model: LocalModel, precision: Precision) -> Path:
    """Where the exported graph of ``model`` at ``precision`` lives in the cache."""
    folder = model.cache_dir / "onnx" / f"{model.name.replace('/', '_')}-{model.digest[:16]}"
    return folder / f"model-{precision}-opset{OPSET}.onnx"


def ensure_onnx(model: LocalModel, precision: Precision) -> Path:
    """Export (and quantize) once; concurrent callers wait on a file lock."""
    target = onnx_path(model, precision)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / ".export.lock")):
        if target.is_file():
            return target
        _log.info("preparing %s for the CPU (%s, once; kept in %s)…", model.name, precision,
                  target.parent)
        fp32 = onnx_path(model, "fp32")
        with _quiet_third_party():
            if not fp32.is_file():
                _export_fp32(model, fp32)
            if precision == "int8":
                _quantize_int8(fp32, target)
        _log.info("%s is ready for the CPU (%s)", model.name, precision)
    return target


@contextlib.contextmanager
def _quiet_third_party() -> Iterator[None]:
    """The exporter's tracer warnings and the quantizer's root-logger messages say
    nothing a user can act on: silence them while a graph is prepared."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _export_fp32(model: LocalModel, target: Path) -> None:
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    hf_model = AutoModel.from_pretrained(str(model.directory), attn_implementation="eager")
    hf_model.eval()
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in inspect.signature(hf_model.forward).parameters:
        names.append("token_type_ids")

    class _LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = hf_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    dummy = tuple(torch.ones(2, 8, dtype=torch.long) for _ in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    tmp = target.with_suffix(".tmp")
    with torch.no_grad():
        torch.onnx.export(
            _LastHiddenState(), dummy, str(tmp), input_names=names,
            output_names=["last_hidden_state"], dynamic_axes=axes,
            opset_version=OPSET, dynamo=False,
        )
    os.replace(tmp, target)


def _quantize_int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_suffix(".tmp")
    quantize_dynamic(
        str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True
    )
    os.replace(tmp, target)


class OnnxEmbedder(BaseEmbedder):
    """Tokenize with the model's fast tokenizer, run the ONNX graph, pool in numpy."""

    def __init__(
        self, model: LocalModel, precision: Precision = "int8", batch_size: int = 32,
        threads: int | None = None, spinning: bool = True,
    ) -> None:
        super().__init__(1 if precision == "int8" else batch_size)
        import onnxruntime as ort

        self._model, self._precision = model, precision
        path = ensure_onnx(model, precision)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        if not spinning:  # idle worker threads sleep instead of burning a core
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped Fail errors
            raise ModelNotFound(f"cannot load ONNX graph {path}: {exc}") from exc
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._pooling = model.pooling
        self.tokenizer = model.tokenizer()
        self.info = model.info(backend=f"onnx-{precision}", precision=precision)

    def with_threads(self, threads: int) -> OnnxEmbedder:
        """Another session of the same graph (same vectors) running ``threads`` threads;
        with 1, it runs in the calling thread."""
        return OnnxEmbedder(self._model, self._precision, self.batch_size, threads,
                            spinning=False)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        feed = self.tokenizer.model_inputs(texts)
        hidden = self._session.run(None, {name: feed[name] for name in self._inputs})[0]
        if self._pooling == "cls":
            return np.asarray(hidden[:, 0], dtype=np.float32)
        mask = feed["attention_mask"][..., None].astype(np.float32)
        summed = (hidden * mask).sum(axis=1)
        return (summed / np.maximum(mask.sum(axis=1), 1e-9)).astype(np.float32)
