"""The parity gate: an export's outputs against the PyTorch model's on the same held-out images (torch-free).

The gate runs twice: at export, where training ran, and again when a service starts, on the parity set the export
carries (`parity_set.safetensors`: a few dozen preprocessed held-out images and PyTorch's outputs on them), because
a gate passed on one CPU says nothing about another (int8 kernels differ between AVX2 and VNNI hosts).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from safetensors.numpy import load_file, save_file

from har_core.runtime.manifest import PARITY_SET_ROLE, ExportManifest, ParityResult
from har_core.runtime.settings import ParityThresholds

if TYPE_CHECKING:
    from har_core.runtime.predictor import Predictor

PARITY_SET_FILE = "parity_set.safetensors"
_PARITY_SET_KEYS = ("pixels", "image_embeddings", "logits")


def compare_outputs(
    reference: tuple[np.ndarray, np.ndarray],
    candidate: tuple[np.ndarray, np.ndarray],
    thresholds: ParityThresholds,
    labels: np.ndarray | None = None,
    temperature: float = 1.0,
) -> ParityResult:
    """Top-1 agreement where the reference is sure, accuracy lost on `labels`, max |logit difference| and embedding
    cosine, judged against `thresholds` (see `ParityThresholds`).

    The logit difference is measured on calibrated logits (divided by the model's `temperature`), the ones its
    served probabilities come from; the margin that picks the images top-1 agreement counts stays on the raw logits,
    so a temperature changes no image's vote, only how far apart two formats' probabilities may be."""
    ref_embeddings, ref_logits = (np.asarray(a, dtype=np.float64) for a in reference)
    embeddings, logits = (np.asarray(a, dtype=np.float64) for a in candidate)
    if ref_logits.shape != logits.shape or ref_embeddings.shape != embeddings.shape:
        raise ValueError(f"Output shapes differ: reference {ref_logits.shape}, export {logits.shape}.")
    agrees = ref_logits.argmax(axis=1) == logits.argmax(axis=1)
    clear = reference_margins(ref_logits) >= thresholds.min_margin
    # No image PyTorch is sure of (an unsure model): nothing to disagree on; accuracy lost and cosine still judge it
    agreement = float(agrees[clear].mean()) if clear.any() else 1.0
    max_diff = float(np.abs(ref_logits - logits).max()) / temperature
    norms = np.linalg.norm(ref_embeddings, axis=1) * np.linalg.norm(embeddings, axis=1)
    cosines = (ref_embeddings * embeddings).sum(axis=1) / np.maximum(norms, 1e-12)
    accuracy = _accuracy_lost(ref_logits, logits, labels)
    failures = []
    if agreement < thresholds.min_top1_agreement:
        where = f" (margin >= {thresholds.min_margin}, {int(clear.sum())} images)" if thresholds.min_margin else ""
        failures.append(f"top-1 agreement{where} {agreement:.4f} < {thresholds.min_top1_agreement}")
    if thresholds.max_accuracy_drop is not None:
        if accuracy is None:
            failures.append("accuracy lost not judged: the parity images carry no labels")
        elif accuracy[2] > thresholds.max_accuracy_drop:
            failures.append(
                f"accuracy {accuracy[1]:.4f} against PyTorch's {accuracy[0]:.4f}: "
                f"relative drop {accuracy[2]:.4f} > {thresholds.max_accuracy_drop}"
            )
    if thresholds.max_abs_logit_diff is not None and max_diff > thresholds.max_abs_logit_diff:
        failures.append(f"max |logit diff| {max_diff:.4g} > {thresholds.max_abs_logit_diff}")
    if float(cosines.min()) < thresholds.min_embedding_cosine:
        failures.append(f"min embedding cosine {float(cosines.min()):.6f} < {thresholds.min_embedding_cosine}")
    reference_accuracy, candidate_accuracy, drop = accuracy if accuracy is not None else (None, None, None)
    return ParityResult(
        passed=not failures,
        num_images=len(logits),
        top1_agreement=agreement,
        max_abs_logit_diff=max_diff,
        min_embedding_cosine=float(cosines.min()),
        mean_embedding_cosine=float(cosines.mean()),
        thresholds=thresholds,
        failures=tuple(failures),
        clear_images=int(clear.sum()),
        top1_agreement_all=float(agrees.mean()),
        reference_accuracy=reference_accuracy,
        accuracy=candidate_accuracy,
        accuracy_drop=drop,
        temperature=temperature,
    )


def describe_parity(result: ParityResult) -> str:
    """One line of what the gate measured, each figure beside the threshold it was judged against."""
    thresholds = result.thresholds
    images = f"{result.num_images} images"
    if thresholds.min_margin:
        images = f"{result.clear_images} of {result.num_images} images with a margin >= {thresholds.min_margin}"
    parts = [f"top-1 agreement {result.top1_agreement:.4f} on {images} (>= {thresholds.min_top1_agreement})"]
    if result.accuracy is not None:
        limit = f" (<= {thresholds.max_accuracy_drop})" if thresholds.max_accuracy_drop is not None else ""
        parts.insert(
            0,
            f"accuracy {result.accuracy:.4f} against PyTorch's {result.reference_accuracy:.4f}, "
            f"relative drop {result.accuracy_drop:.4f}{limit}",
        )
    if thresholds.max_abs_logit_diff is not None:
        calibrated = "calibrated " if (result.temperature or 1.0) != 1.0 else ""
        parts.append(
            f"max |{calibrated}logit diff| {result.max_abs_logit_diff:.3g} (<= {thresholds.max_abs_logit_diff})"
        )
    parts.append(f"embedding cosine min {result.min_embedding_cosine:.5f} (>= {thresholds.min_embedding_cosine})")
    return "; ".join(parts)


def reference_margins(logits: np.ndarray) -> np.ndarray:
    """How far each row's top-1 logit leads its second (inf with a single class)."""
    if logits.shape[1] < 2:
        return np.full(len(logits), np.inf)
    top2 = np.sort(logits, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def _accuracy_lost(
    ref_logits: np.ndarray, logits: np.ndarray, labels: np.ndarray | None
) -> tuple[float, float, float] | None:
    """(reference accuracy, candidate accuracy, relative drop); None without labels. A drop is never negative."""
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.shape != (len(logits),):
        raise ValueError(f"{len(logits)} parity images but labels of shape {labels.shape}.")
    reference = float((ref_logits.argmax(axis=1) == labels).mean())
    candidate = float((logits.argmax(axis=1) == labels).mean())
    drop = max(reference - candidate, 0.0) / reference if reference > 0 else 0.0
    return reference, candidate, drop


def run_parity_gate(
    directory: str | Path,
    pixels: np.ndarray,
    reference: tuple[np.ndarray, np.ndarray],
    thresholds: ParityThresholds,
    device: str = "auto",
    labels: np.ndarray | None = None,
) -> ParityResult:
    """Run the export in `directory` on `pixels`, compare with `reference` (and `labels`: the true class index of
    each image, for the accuracy criterion), and record the result in its manifest."""
    from har_core.runtime.predictor import Predictor

    predictor = Predictor.from_export(directory, device=device, require_parity=False)
    result = compare_outputs(reference, predictor.run(pixels), thresholds, labels, served_temperature(predictor))
    manifest = ExportManifest.load(directory)
    manifest.model_copy(update={"parity": result}).save(directory)
    return result


def save_parity_set(path: str | Path, pixels: np.ndarray, reference: tuple[np.ndarray, np.ndarray]) -> Path:
    """Held-out pixels and the PyTorch outputs on them, as plain float32 tensors (safetensors: no pickle)."""
    tensors = dict(zip(_PARITY_SET_KEYS, (pixels, *reference), strict=True))
    save_file({key: np.ascontiguousarray(value, np.float32) for key, value in tensors.items()}, str(path))
    return Path(path)


def load_parity_set(path: str | Path) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """(pixels, (reference embeddings, reference logits)); a file missing a tensor is a `ValueError`."""
    tensors = load_file(str(path))
    missing = [key for key in _PARITY_SET_KEYS if key not in tensors]
    if missing:
        raise ValueError(f"{path} is not a parity set: it lacks {missing}.")
    return tensors["pixels"], (tensors["image_embeddings"], tensors["logits"])


def recheck_parity(predictor: Predictor) -> ParityResult | None:
    """The export's own gate re-run here on the parity set it carries; None when it has none.

    The same thresholds, except accuracy lost: it was judged at export on every labelled parity image, and the few
    images the set carries (32 by default, one image = 3 %) cannot measure it. What can differ between hosts is the
    kernels, which agreement where the reference is sure, logit difference and embedding cosine catch.
    """
    manifest = predictor.manifest
    if PARITY_SET_ROLE not in manifest.files or manifest.parity is None:
        return None
    pixels, reference = load_parity_set(manifest.path(predictor.directory, PARITY_SET_ROLE))
    thresholds = manifest.parity.thresholds.model_copy(update={"max_accuracy_drop": None})
    return compare_outputs(reference, predictor.run(pixels), thresholds, temperature=served_temperature(predictor))


def served_temperature(predictor: Predictor) -> float:
    """The temperature the export's own-label probabilities are served at (1 without a calibration)."""
    return predictor.calibration.temperature if predictor.calibration else 1.0
