"""One `Predictor` over every export format, built from its export manifest.

Importing this module, and serving an `onnx` or `onnx-int8` export, needs numpy, PIL, pydantic, onnxruntime and
`tokenizers`, never torch (tests/har_core/test_architecture.py checks it with torch blocked).
TorchScript, PyTorch and TensorRT backends import torch lazily.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from har_core.runtime.confidence import (
    Calibration,
    OodScoreName,
    OodStatistics,
    Verdict,
    margins,
    ood_scores,
    softmax,
    verdicts,
)
from har_core.runtime.device import DeviceName
from har_core.runtime.labels import validate_labels
from har_core.runtime.manifest import (
    CLASS_EMBEDDINGS_ROLE,
    MODEL_ROLE,
    OOD_STATISTICS_ROLE,
    REFERENCE_ROLE,
    TEXT_MODEL_ROLE,
    TOKENIZER_ROLE,
    ExportError,
    ExportManifest,
    ExportRejectedError,
)
from har_core.runtime.preprocess import preprocess_batch
from har_core.runtime.reference import MonitoringReference
from har_core.runtime.text_encoder import OnnxTextEncoder

logger = logging.getLogger(__name__)


class Prediction(BaseModel):
    """One label and its probability (softmax over the whole label set, so all of a row's scores sum to 1)."""

    model_config = ConfigDict(frozen=True)

    label: str
    score: float


class Classification(BaseModel):
    """One image's answer: its ranked labels (calibrated probabilities) and the verdict on them (abstained or not,
    how unlike the training images it is)."""

    model_config = ConfigDict(frozen=True)

    predictions: list[Prediction]
    verdict: Verdict
    margin: float | None = Field(None, description="Calibrated top-1 minus top-2 probability over all the labels.")
    # What the answer was judged from, for the Bento's records (bento/records.py); not part of an answer.
    embedding: list[float] | None = Field(None, exclude=True, repr=False)

    @property
    def abstained(self) -> bool:
        return self.verdict.abstained


class Backend(Protocol):
    """pixels (batch, 3, H, W) float32 -> (normalised image embeddings (batch, dim), logits (batch, labels))."""

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class Predictor:
    """Predictions from one exported format; the label set can be replaced per call when the text tower is there."""

    def __init__(self, manifest: ExportManifest, directory: Path, backend: Backend, threads: int | None) -> None:
        self.manifest = manifest
        self.directory = directory
        self.backend = backend
        self._threads = threads
        self._text_encoder: OnnxTextEncoder | None = None
        self._exported_class_embeddings = _load_class_embeddings(manifest.path(directory, CLASS_EMBEDDINGS_ROLE))
        self._ood_statistics = (
            OodStatistics.load(manifest.path(directory, OOD_STATISTICS_ROLE))
            if OOD_STATISTICS_ROLE in manifest.files
            else None
        )

    @classmethod
    def from_export(
        cls,
        directory: str | Path,
        device: DeviceName = "auto",
        threads: int | None = None,
        require_parity: bool = True,
    ) -> Predictor:
        """Load one format's export directory: files are checked against their sha256, and an export that did not
        pass its parity gate is refused (`require_parity=False` is for the gate itself and for diagnosis)."""
        directory = Path(directory)
        manifest = ExportManifest.load(directory)
        manifest.verify_files(directory)
        model_path = manifest.path(directory, MODEL_ROLE)
        if require_parity and not manifest.deployable:
            reason = "it was never gated" if manifest.parity is None else "; ".join(manifest.parity.failures)
            raise ExportRejectedError(
                f"The {manifest.format} export in {str(directory)!r} failed its parity gate: {reason}."
            )
        backend = _build_backend(manifest, model_path, device, threads)
        return cls(manifest, directory, backend, threads)

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

    @property
    def format(self) -> str:
        return self.manifest.format

    @property
    def supports_custom_labels(self) -> bool:
        return self.manifest.text_tower is not None

    @property
    def reference(self) -> MonitoringReference | None:
        """The validation answers monitoring compares served ones with; None for an export made before it."""
        if REFERENCE_ROLE not in self.manifest.files:
            return None
        return MonitoringReference.load(self.manifest.path(self.directory, REFERENCE_ROLE))

    @property
    def calibration(self) -> Calibration | None:
        """The export's fitted temperatures and thresholds; None for an export made before calibration existed."""
        return self.manifest.model_card.calibration

    def predict(
        self, images: Sequence[Image.Image], top_k: int = 5, labels: Sequence[str] | None = None
    ) -> list[list[Prediction]]:
        """The `top_k` most probable labels per image (best first); the images are not modified."""
        return [answer.predictions for answer in self.classify(images, top_k, labels)]

    def predict_pixels(
        self, pixels: np.ndarray, top_k: int = 5, labels: Sequence[str] | None = None
    ) -> list[list[Prediction]]:
        """Like `predict` for pre-processed pixels (batch, 3, crop, crop) float32."""
        return [answer.predictions for answer in self.classify_pixels(pixels, top_k, labels)]

    def classify(
        self, images: Sequence[Image.Image], top_k: int = 5, labels: Sequence[str] | None = None
    ) -> list[Classification]:
        """Ranked labels plus the verdict (abstained, out-of-distribution score) per image."""
        return self.classify_pixels(preprocess_batch(images, self.manifest.preprocess), top_k, labels)

    def classify_pixels(
        self, pixels: np.ndarray, top_k: int = 5, labels: Sequence[str] | None = None
    ) -> list[Classification]:
        """Like `classify` for pre-processed pixels (batch, 3, crop, crop) float32."""
        return self.classify_outputs(*self.run(pixels), top_k, labels)

    def classify_outputs(
        self, embeddings: np.ndarray, logits: np.ndarray, top_k: int = 5, labels: Sequence[str] | None = None
    ) -> list[Classification]:
        """Answers from raw outputs (`run`, or the Bento's batched `raw_outputs`): calibrated probabilities, verdicts
        and margins, each answer holding its image's embedding."""
        names, probabilities = self.calibrated(embeddings, logits, labels)
        judged = self.verdicts(probabilities, self.ood_scores(embeddings, logits), custom_labels=names != self.labels)
        return [
            Classification(predictions=rank(names, row, top_k), verdict=verdict, margin=float(gap), embedding=image)
            for row, verdict, gap, image in zip(
                probabilities, judged, margins(probabilities), np.asarray(embeddings).tolist(), strict=True
            )
        ]

    def probabilities(self, pixels: np.ndarray, labels: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        """(label names, calibrated softmax probabilities (batch, labels))."""
        return self.calibrated(*self.run(pixels), labels)

    def calibrated(
        self, embeddings: np.ndarray, logits: np.ndarray, labels: Sequence[str] | None = None
    ) -> tuple[list[str], np.ndarray]:
        """(label names, probabilities) from raw outputs: the model's own logits at the fitted temperature, or custom
        labels' logits (`labels`, through the text tower) at the zero-shot temperature."""
        custom = labels is not None and list(labels) != self.labels
        if custom:
            logits = self.manifest.logit_scale * embeddings @ self.class_embeddings(labels).T
        calibration = self.calibration
        temperature = calibration.temperature_for(custom) if calibration else 1.0
        return (list(labels) if custom else self.labels), softmax(logits, temperature)

    def ood_scores(
        self, embeddings: np.ndarray, logits: np.ndarray, name: OodScoreName | None = None
    ) -> np.ndarray | None:
        """Each image's out-of-distribution score from the raw outputs (`run`) over the model's own labels, whatever
        labels were asked for: the calibration's score, or `name`; None without a calibration."""
        calibration = self.calibration
        if calibration is None:
            return None
        return ood_scores(
            logits, self.manifest.logit_scale, name or calibration.ood_score, calibration.temperature, embeddings,
            self._ood_statistics,
        )  # fmt: skip

    def verdicts(self, probabilities: np.ndarray, scores: np.ndarray | None, custom_labels: bool) -> list[Verdict]:
        """Abstention (by the threshold of the label kind) and out-of-distribution flags for calibrated
        `probabilities` and their images' `ood_scores`."""
        return verdicts(self.calibration, probabilities, scores, custom_labels)

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw outputs (image embeddings, logits over the exported labels), batched to the export's limit."""
        pixels = self._check_pixels(pixels)
        limit = self.manifest.max_batch_size or len(pixels)
        parts = [self.backend.run(pixels[start : start + limit]) for start in range(0, len(pixels), limit)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def class_embeddings(self, labels: Sequence[str]) -> np.ndarray:
        """(labels, dim) normalised class embeddings from the text tower (cached per label tuple)."""
        validate_labels(labels)
        if list(labels) == self.labels:
            return self._exported_class_embeddings
        if not self.supports_custom_labels:
            raise ValueError(
                f"The {self.format} export has no text tower, so it only predicts its own labels {self.labels}."
            )
        return self._cached_class_embeddings(tuple(labels))

    @lru_cache(maxsize=32)  # noqa: B019 (one Predictor per process; the cache lives as long as it does)
    def _cached_class_embeddings(self, labels: tuple[str, ...]) -> np.ndarray:
        return self._text().class_embeddings(labels, self.manifest.templates)

    def _text(self) -> OnnxTextEncoder:
        if self._text_encoder is None:
            spec = self.manifest.text_tower
            self._text_encoder = OnnxTextEncoder(
                self.manifest.path(self.directory, TEXT_MODEL_ROLE),
                self.manifest.path(self.directory, TOKENIZER_ROLE),
                spec.max_length,
                spec.pad_token_id,
                _session_options(self._threads),
            )
        return self._text_encoder

    def _check_pixels(self, pixels: np.ndarray) -> np.ndarray:
        crop = self.manifest.preprocess.crop_size
        if not isinstance(pixels, np.ndarray) or pixels.ndim != 4 or pixels.shape[1:] != (3, crop, crop):
            shape = getattr(pixels, "shape", type(pixels).__name__)
            raise ValueError(f"pixels must be a float32 array of shape (batch, 3, {crop}, {crop}), got {shape}.")
        if len(pixels) == 0:
            raise ValueError("pixels holds no images.")
        return np.ascontiguousarray(pixels, dtype=np.float32)


def rank(names: Sequence[str], probabilities: np.ndarray, top_k: int) -> list[Prediction]:
    """The `top_k` labels of one row, most probable first (ties keep label order)."""
    top_k = max(1, min(top_k, len(names)))
    order = np.argsort(-probabilities, kind="stable")[:top_k]
    return [Prediction(label=names[i], score=float(probabilities[i])) for i in order]


def _load_class_embeddings(path: Path) -> np.ndarray:
    from safetensors.numpy import load_file

    return load_file(str(path))["class_embeddings"].astype(np.float32)


def _session_options(threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def onnx_providers(device: DeviceName) -> list[str]:
    """CUDA when asked for or (auto) when onnxruntime has it; CPU otherwise. Asking for CUDA without it is an error."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not has_cuda:
        raise RuntimeError(
            "device: cuda was requested but onnxruntime has no CUDAExecutionProvider (install the `gpu` extra "
            f"instead of `cpu`); available: {available}."
        )
    return (
        ["CUDAExecutionProvider", "CPUExecutionProvider"] if has_cuda and device != "cpu" else ["CPUExecutionProvider"]
    )


class OnnxBackend:
    def __init__(self, path: Path, device: DeviceName, threads: int | None) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), _session_options(threads), providers=onnx_providers(device))
        self.input_name = self.session.get_inputs()[0].name

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        embeddings, logits = self.session.run(None, {self.input_name: pixels})
        return embeddings, logits


def load_onnx_backend(manifest: ExportManifest, model_path: Path, device: DeviceName, threads: int | None) -> Backend:
    return OnnxBackend(model_path, device, threads)


# How each format is loaded: "module:function" taking (manifest, model path, device, threads), imported only when
# that format is served. The PyTorch format needs the model code (transformers), so its loader lives in
# `har_core.model`, which a Bento of that format ships; every other format runs on this package alone.
BACKEND_LOADERS: dict[str, str] = {
    "onnx": "har_core.runtime.predictor:load_onnx_backend",
    "onnx-int8": "har_core.runtime.predictor:load_onnx_backend",
    "torchscript": "har_core.runtime.torch_backend:load_torchscript_backend",
    "tensorrt": "har_core.runtime.tensorrt_engine:load_tensorrt_backend",
    "pytorch": "har_core.model.serving_graph:load_pytorch_backend",
}


def _build_backend(manifest: ExportManifest, model_path: Path, device: DeviceName, threads: int | None) -> Backend:
    """The format's loader from `BACKEND_LOADERS`, imported only when its format is loaded."""
    if manifest.format not in BACKEND_LOADERS:
        raise ExportError(f"Unknown export format {manifest.format!r}.")
    module_name, _, function = BACKEND_LOADERS[manifest.format].partition(":")
    loader = getattr(importlib.import_module(module_name), function)
    return loader(manifest, model_path, device, threads)


def default_threads() -> int:
    """A sensible thread count for CPU serving: the CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
