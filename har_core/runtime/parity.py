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
    reference: tuple[np.ndarray, np.ndarray], candidate: tuple[np.ndarray, np.ndarray], thresholds: ParityThresholds
) -> ParityResult:
    """Top-1 agreement, max |logit difference| and embedding cosine, judged against `thresholds`."""
    ref_embeddings, ref_logits = (np.asarray(a, dtype=np.float64) for a in reference)
    embeddings, logits = (np.asarray(a, dtype=np.float64) for a in candidate)
    if ref_logits.shape != logits.shape or ref_embeddings.shape != embeddings.shape:
        raise ValueError(f"Output shapes differ: reference {ref_logits.shape}, export {logits.shape}.")
    agreement = float((ref_logits.argmax(axis=1) == logits.argmax(axis=1)).mean())
    max_diff = float(np.abs(ref_logits - logits).max())
    norms = np.linalg.norm(ref_embeddings, axis=1) * np.linalg.norm(embeddings, axis=1)
    cosines = (ref_embeddings * embeddings).sum(axis=1) / np.maximum(norms, 1e-12)
    failures = []
    if agreement < thresholds.min_top1_agreement:
        failures.append(f"top-1 agreement {agreement:.4f} < {thresholds.min_top1_agreement}")
    if thresholds.max_abs_logit_diff is not None and max_diff > thresholds.max_abs_logit_diff:
        failures.append(f"max |logit diff| {max_diff:.4g} > {thresholds.max_abs_logit_diff}")
    if float(cosines.min()) < thresholds.min_embedding_cosine:
        failures.append(f"min embedding cosine {float(cosines.min()):.6f} < {thresholds.min_embedding_cosine}")
    return ParityResult(
        passed=not failures,
        num_images=len(logits),
        top1_agreement=agreement,
        max_abs_logit_diff=max_diff,
        min_embedding_cosine=float(cosines.min()),
        mean_embedding_cosine=float(cosines.mean()),
        thresholds=thresholds,
        failures=tuple(failures),
    )


def run_parity_gate(
    directory: str | Path,
    pixels: np.ndarray,
    reference: tuple[np.ndarray, np.ndarray],
    thresholds: ParityThresholds,
    device: str = "auto",
) -> ParityResult:
    """Run the export in `directory` on `pixels`, compare with `reference`, and record the result in its manifest."""
    from har_core.runtime.predictor import Predictor

    predictor = Predictor.from_export(directory, device=device, require_parity=False)
    result = compare_outputs(reference, predictor.run(pixels), thresholds)
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
    """The export's own gate (same thresholds) re-run here on the parity set it carries; None when it has none."""
    manifest = predictor.manifest
    if PARITY_SET_ROLE not in manifest.files or manifest.parity is None:
        return None
    pixels, reference = load_parity_set(manifest.path(predictor.directory, PARITY_SET_ROLE))
    return compare_outputs(reference, predictor.run(pixels), manifest.parity.thresholds)
