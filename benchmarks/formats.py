"""Throughput of each export format on the ViT-B/16 architecture (random init, nothing downloaded).

    python benchmarks/formats.py                 # batch 8, all CPU threads
    python benchmarks/formats.py --batch-size 8 --iterations 5 --threads 2

Builds CLIP ViT-B/16 at its real sizes (224 px, patch 16, width 768, 12 layers, 12 heads, projection 512) through
the tiny-backbone path, exports it like the pipeline does, and prints img/s per format, the ratio to torch eager,
the machine's measured fp32 matmul GFLOP/s and each format's share of it (a ViT-B/16 image is ~35 GFLOP).
Goals: ONNX fp32 >= 1.2x eager; int8 >= 1.3x ONNX fp32 with its parity gate passing (on a random-init model only
the embedding cosine means anything: its logits are near-tied).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from har_core.config import ClassifierConfig, ExportConfig, TinyBackboneConfig  # noqa: E402
from har_core.export.benchmark import time_calls  # noqa: E402
from har_core.export.bundle import export_bundle  # noqa: E402
from har_core.model.classifier import build_classifier  # noqa: E402
from har_core.model.serving_graph import ImageModel  # noqa: E402
from har_core.runtime.labels import HAR_LABELS  # noqa: E402
from har_core.runtime.manifest import ModelSource  # noqa: E402
from har_core.runtime.predictor import Predictor, default_threads  # noqa: E402
from har_core.runtime.settings import ParityThresholds

VIT_B16 = TinyBackboneConfig(
    image_size=224, patch_size=16, hidden_size=768, num_layers=12, num_heads=12, projection_dim=512, seed=0
)
GFLOP_PER_IMAGE = 35.0  # ViT-B/16 at 224 px: ~17.5 GMAC forward
FORMATS = ("torchscript", "onnx", "onnx-int8")


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best fp32 matmul rate torch reaches here (2*n^3 FLOP per product)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((args.batch_size, 3, 224, 224), dtype=np.float32)

    with tempfile.TemporaryDirectory(prefix="har-clip-formats-") as workdir:
        classifier = build_classifier(
            ClassifierConfig(tiny_backbone=VIT_B16, cache_dir=Path(workdir) / "backbones"), HAR_LABELS
        )
        gates = dict(ExportConfig().gates)
        gates["onnx-int8"] = ParityThresholds(
            min_top1_agreement=0.0, max_abs_logit_diff=None, min_embedding_cosine=0.99
        )
        config = ExportConfig(formats=FORMATS, text_tower=False, gates=gates, device="cpu")
        start = time.perf_counter()
        bundle = export_bundle(classifier, pixels, Path(workdir) / "exports", config, ModelSource(backbone="ViT-B/16"))
        export_s = time.perf_counter() - start

        eager = ImageModel(classifier).eval()

        def run_eager(batch: np.ndarray) -> None:
            with torch.inference_mode():
                eager(torch.from_numpy(batch))

        results = {"torch eager": _throughput(run_eager, pixels, args)}
        notes = {"torch eager": "reference"}
        for name in FORMATS:
            status = bundle.formats[name]
            if not status.deployable:
                results[name], notes[name] = None, status.message
                continue
            predictor = Predictor.from_export(bundle.directory(name), device="cpu", threads=args.threads)
            results[name] = _throughput(predictor.run, pixels, args)
            parity = predictor.manifest.parity
            notes[name] = (
                f"gate passed; cosine min {parity.min_embedding_cosine:.5f}, top-1 {parity.top1_agreement:.3f}"
            )
    gflops = matmul_gflops()
    _print_table(results, notes, gflops, args, export_s)


def _throughput(call, pixels: np.ndarray, args) -> float:
    timings = time_calls(call, pixels, args.warmup, args.iterations)
    return len(pixels) * len(timings) / timings.sum()


def _print_table(results: dict, notes: dict, gflops: float, args, export_s: float) -> None:
    eager = results["torch eager"]
    onnx = results.get("onnx")
    print(
        f"\nViT-B/16 (random init), batch {args.batch_size}, {args.threads} threads, {args.iterations} timed iterations"
    )
    print(f"fp32 matmul: {gflops:.1f} GFLOP/s; {GFLOP_PER_IMAGE:.0f} GFLOP per image; export took {export_s:.0f} s\n")
    print("| format | img/s | × eager | × onnx fp32 | share of matmul GFLOP/s | parity |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, value in results.items():
        if value is None:
            print(f"| {name} | — | — | — | — | {notes[name]} |")
            continue
        versus_onnx = f"{value / onnx:.2f}" if onnx else "—"
        share = value * GFLOP_PER_IMAGE / gflops
        print(f"| {name} | {value:.2f} | {value / eager:.2f} | {versus_onnx} | {share:.0%} | {notes[name]} |")


if __name__ == "__main__":
    main()
