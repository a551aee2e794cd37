"""The parity gate: an export's outputs against the PyTorch model's on the same held-out images (torch-free)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from har_core.config import ParityThresholds
from har_core.export_manifest import ExportManifest, ParityResult


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
    from har_core.predictor import Predictor

    predictor = Predictor.from_export(directory, device=device, require_parity=False)
    result = compare_outputs(reference, predictor.run(pixels), thresholds)
    manifest = ExportManifest.load(directory)
    manifest.model_copy(update={"parity": result}).save(directory)
    return result
