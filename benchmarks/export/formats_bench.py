"""Each export format of ViT-B/16 as a share of this host's limit for its arithmetic (random init, nothing downloaded).

    python -m benchmarks.export.formats_bench                                   # batch 8, all CPU threads, 5 rounds
    python -m benchmarks.export.formats_bench --batch-size 8 --rounds 7 --threads 2 --static-int8

Builds CLIP ViT-B/16 at its real sizes (224 px, patch 16, width 768, 12 layers, 12 heads, projection 512) through
the tiny-backbone path and exports it as the pipeline does: the shipped fused ONNX graphs, and beside them the
standard graphs they replace (before), the fused graph with onnxscript's SkipLayerNormalization fusion kept (the
shipped graph reverts it), the other fusion route (TorchScript-based exporter + onnxruntime's transformer
optimiser), int8's reduce-range setting and, with --static-int8, static QDQ int8. Peak memory ~7 GB.
The limits are measured in the same run: the fp32 GEMM rate (the better of onnxruntime's MatMul and torch's matmul)
and the int8 GEMM rate per int8 weight setting (the same MatMul graph quantised by the export's own quantiser),
both at ViT-B/16's linear-layer shapes and batch (benchmarks/export/gemm_peak.py). A format's share is its img/s x GFLOP
per image over the limit measured in the same round: the rounds are interleaved (every limit and every format once
per round), so load on a shared host hits all alike; img/s and shares are reported as min / median / max. Shares
are taken on the CPU time the process received (other jobs on a shared host stretch the wall clock, not that), and
also shown on the wall clock. The shipped ONNX graphs' time per operator (onnxruntime's profiler) says where the rest
goes.
Goals: ONNX fp32 >= 95% of the fp32 limit; ONNX int8 >= 85% of the int8 limit with its parity gate held (on a
random-init model only the embedding cosine means anything: its logits are near-tied).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmarks.export.alternative_graphs import legacy_exporter_fused, static_int8
from benchmarks.export.gemm_peak import GemmPeaks, gflop_per_image
from benchmarks.export.op_profile import operator_time_shares, summary
from har_core.config import ClassifierConfig, ExportConfig, TinyBackboneConfig
from har_core.export.bundle import export_bundle
from har_core.export.fusion import fuse_for_onnxruntime
from har_core.export.graphs import INT8_WEIGHTS, reference_outputs
from har_core.model.classifier import build_classifier
from har_core.model.serving_graph import ImageModel
from har_core.runtime.labels import HAR_LABELS
from har_core.runtime.manifest import MODEL_ROLE, ExportBundle, ModelSource
from har_core.runtime.parity import compare_outputs
from har_core.runtime.predictor import OnnxBackend, Predictor, default_threads
from har_core.runtime.settings import ParityThresholds

VIT_B16 = TinyBackboneConfig(
    image_size=224, patch_size=16, hidden_size=768, num_layers=12, num_heads=12, projection_dim=512, seed=0
)
FP32 = "fp32"
INT8_GATE = ParityThresholds(min_top1_agreement=0.0, max_abs_logit_diff=None, min_embedding_cosine=0.99)
PROFILED = (
    "onnx standard graph (before)",
    "onnx fused + SkipLayerNormalization",
    "onnx fused (shipped)",
    "onnx-int8 uint8, standard graph (before)",
    "onnx-int8 uint8, fused (shipped)",
)
GOALS = {"onnx fused (shipped)": 0.95, "onnx-int8 uint8, fused (shipped)": 0.85}


@dataclass
class Timings:
    """Work per second of one measured thing, per round: by the wall clock and by the CPU time it received."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # per CPU-second x threads

    def add(self, work: float, wall_s: float, cpu_s: float, threads: int) -> None:
        self.wall.append(work / wall_s)
        self.cpu.append(work / cpu_s * threads)


@dataclass
class Candidate:
    """One row: how to run it, which limit its arithmetic has, and what its parity check said."""

    run: Callable[[np.ndarray], object]
    limit: str  # "fp32" or "int8 <setting>"
    parity: str
    path: Path | None = None  # the ONNX file, for the operator profile
    timings: Timings = field(default_factory=Timings)
    shares: list[float] = field(default_factory=list)  # of its limit, on CPU time, per round
    wall_shares: list[float] = field(default_factory=list)  # of its limit, on the wall clock, per round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (each times every row once)")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--static-int8", action="store_true", help="also measure static QDQ int8")
    parser.add_argument("--layers", type=int, default=VIT_B16.num_layers, help="fewer encoder layers: a quick check")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((args.batch_size, 3, 224, 224), dtype=np.float32)
    held_out = rng.standard_normal((8, 3, 224, 224), dtype=np.float32)  # parity and calibration, never timed
    with tempfile.TemporaryDirectory(prefix="har-clip-formats-") as workdir:
        work = Path(workdir)
        backbone = VIT_B16.model_copy(update={"num_layers": args.layers})
        classifier = build_classifier(
            ClassifierConfig(tiny_backbone=backbone, cache_dir=work / "backbones"), HAR_LABELS
        )
        start = time.perf_counter()
        candidates, fusion = build_candidates(classifier, held_out, work, args)
        export_s = time.perf_counter() - start
        settings = {name: INT8_WEIGHTS[name] for name in INT8_WEIGHTS}
        peaks = GemmPeaks(backbone, args.batch_size, args.threads, settings)
        limits = measure(candidates, peaks, pixels, gflop_per_image(backbone), args)
        profiles = {
            name: summary(operator_time_shares(candidates[name].path, pixels, args.threads)) for name in PROFILED
        }
    print_report(candidates, limits, fusion, args, export_s, load_before, gflop_per_image(backbone))
    print(f"\nWhere the time goes (onnxruntime's profiler, share of kernel time at batch {args.batch_size}):")
    for name, shares in profiles.items():
        print(f"- {name}: {shares}")


def build_candidates(classifier, held_out: np.ndarray, work: Path, args) -> tuple[dict[str, Candidate], str]:
    """Every row, exported and checked: the shipped bundle, the standard graphs, the other route, other int8s."""
    reference = reference_outputs(ImageModel(classifier), held_out)

    def export(name: str, formats: tuple[str, ...], **settings) -> ExportBundle:
        gates = {**ExportConfig().gates, "onnx-int8": INT8_GATE}
        config = ExportConfig(formats=formats, text_tower=False, gates=gates, device="cpu", **settings)
        return export_bundle(classifier, held_out, work / name, config, ModelSource(backbone="ViT-B/16"), "cpu")

    shipped = export("shipped", ("torchscript", "onnx", "onnx-int8"))
    standard = export("standard", ("onnx", "onnx-int8"), onnx_graph="standard")
    reduce_range = export("reduce-range", ("onnx-int8",), int8_weights="int8-reduce-range")
    eager = ImageModel(classifier).eval()

    def run_eager(batch: np.ndarray) -> None:
        with torch.inference_mode():
            eager(torch.from_numpy(batch))

    candidates = {"torch eager": Candidate(run_eager, FP32, "reference")}
    rows = [
        ("torchscript", shipped, "torchscript", FP32),
        ("onnx standard graph (before)", standard, "onnx", FP32),
        ("onnx fused (shipped)", shipped, "onnx", FP32),
        ("onnx-int8 uint8, standard graph (before)", standard, "onnx-int8", "int8 uint8"),
        ("onnx-int8 uint8, fused (shipped)", shipped, "onnx-int8", "int8 uint8"),
        ("onnx-int8 int8-reduce-range, fused", reduce_range, "onnx-int8", "int8 int8-reduce-range"),
    ]
    for row, bundle, export_format, limit in rows:
        candidates[row] = bundle_candidate(bundle, export_format, limit, args.threads)
    standard_onnx = standard.manifest("onnx").path(standard.directory("onnx"), MODEL_ROLE)
    fully_fused = fuse_for_onnxruntime(standard_onnx, work / "fully-fused.onnx", keep_skip_layer_norm=True)
    candidates["onnx fused + SkipLayerNormalization"] = file_candidate(
        work / "fully-fused.onnx", FP32, held_out, reference, ExportConfig().gates["onnx"], args.threads
    )
    legacy, legacy_fusions = legacy_exporter_fused(classifier, work)
    candidates["onnx legacy exporter + onnxruntime.transformers (clip)"] = file_candidate(
        legacy, FP32, held_out, reference, ExportConfig().gates["onnx"], args.threads
    )
    if args.static_int8:
        fused_fp32 = shipped.manifest("onnx").path(shipped.directory("onnx"), MODEL_ROLE)
        calibration = [held_out[i : i + 2] for i in range(0, len(held_out), 2)]
        path = static_int8(fused_fp32, calibration, work)
        candidates["onnx-int8 uint8, fused, static QDQ"] = file_candidate(
            path, "int8 uint8", held_out, reference, INT8_GATE, args.threads
        )
    graph = shipped.manifest("onnx").graph
    fusion = (
        f"shipped fusion ({graph.route}): {graph.fusions}, reverted {graph.reverted}; {graph.standard_nodes} -> "
        f"{graph.nodes} nodes, fused "
        f"nodes {graph.fused_nodes}; int8: {shipped.manifest('onnx-int8').graph.fused_nodes}\n"
        f"with SkipLayerNormalization kept: {fully_fused.fused_nodes}\n"
        f"legacy route (onnxruntime.transformers.optimizer, clip): {legacy_fusions}"
    )
    return candidates, fusion


def bundle_candidate(bundle: ExportBundle, export_format: str, limit: str, threads: int) -> Candidate:
    status = bundle.formats[export_format]
    predictor = Predictor.from_export(bundle.directory(export_format), "cpu", threads, require_parity=False)
    parity = predictor.manifest.parity
    verdict = "gate passed" if status.deployable else "GATE FAILED"
    note = f"{verdict}; cosine min {parity.min_embedding_cosine:.5f}, top-1 {parity.top1_agreement:.3f}"
    path = predictor.manifest.path(predictor.directory, MODEL_ROLE) if export_format.startswith("onnx") else None
    return Candidate(predictor.run, limit, note, path)


def file_candidate(path: Path, limit: str, held_out, reference, thresholds: ParityThresholds, threads) -> Candidate:
    backend = OnnxBackend(path, "cpu", threads)
    result = compare_outputs(reference, backend.run(held_out), thresholds)
    verdict = "gate passed" if result.passed else "GATE FAILED"
    note = f"{verdict}; cosine min {result.min_embedding_cosine:.5f}, top-1 {result.top1_agreement:.3f}"
    return Candidate(backend.run, limit, note, path)


def measure(
    candidates: dict[str, Candidate], peaks: GemmPeaks, pixels: np.ndarray, gflop: float, args
) -> dict[str, Timings]:
    """Interleaved rounds: every limit (best of 3 calls) then every row (one call); shares within each round.

    Each call is timed twice: wall clock, and the CPU time this process received (x threads: the rate `threads`
    cores of our own would give). Other jobs on a shared host stretch the first and barely touch the second, so the
    shares are taken on CPU time; img/s is wall clock, what a user of this host sees."""
    for candidate in candidates.values():
        candidate.run(pixels)  # warm-up
    limits = {name: Timings() for name in peaks.calls}
    for _ in range(args.rounds):
        for name, call in peaks.calls.items():
            wall, cpu = zip(*(_seconds(call) for _ in range(3)), strict=True)
            limits[name].add(peaks.flop / 1e9, min(wall), min(cpu), args.threads)
        cpu_limits = {FP32: max(limits["fp32 onnxruntime"].cpu[-1], limits["fp32 torch"].cpu[-1])}
        wall_limits = {FP32: max(limits["fp32 onnxruntime"].wall[-1], limits["fp32 torch"].wall[-1])}
        for name, timings in limits.items():
            if name.startswith("int8"):
                cpu_limits[name], wall_limits[name] = timings.cpu[-1], timings.wall[-1]
        for candidate in candidates.values():
            wall, cpu = _seconds(lambda candidate=candidate: candidate.run(pixels))
            candidate.timings.add(len(pixels), wall, cpu, args.threads)
            candidate.shares.append(candidate.timings.cpu[-1] * gflop / cpu_limits[candidate.limit])
            candidate.wall_shares.append(candidate.timings.wall[-1] * gflop / wall_limits[candidate.limit])
    return limits


def _seconds(call: Callable[[], object]) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def _spread(values: list[float], spec: str) -> str:
    return " / ".join(format(value, spec) for value in (min(values), float(np.median(values)), max(values)))


def print_report(candidates: dict[str, Candidate], limits, fusion: str, args, export_s, load_before, gflop) -> None:
    model = "ViT-B/16" if args.layers == VIT_B16.num_layers else f"ViT-B/16 cut to {args.layers} layers"
    print(f"\n{model} (random init), batch {args.batch_size}, {args.threads} threads, {args.rounds} interleaved rounds")
    print(f"host: {_cpu()}; load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"{gflop:.1f} GFLOP per image; exports took {export_s:.0f} s\n{fusion}\n")
    print("| GEMM limit at the model's shapes | GFLOP/s, wall clock | GFLOP/s, on CPU time |\n| --- | --- | --- |")
    for name, timings in limits.items():
        print(f"| {name} | {_spread(timings.wall, '.1f')} | {_spread(timings.cpu, '.1f')} |")
    print(
        "\n| format | arithmetic | img/s (wall clock) | share of its limit (CPU time) | share (wall clock) | goal "
        "| parity |\n| --- | --- | --- | --- | --- | --- | --- |"
    )
    for name, candidate in candidates.items():
        goal = GOALS.get(name)
        median = float(np.median(candidate.shares))
        verdict = "" if goal is None else f"≥ {goal:.0%}: {'met' if median >= goal else 'not met'}"
        cells = [name, candidate.limit, _spread(candidate.timings.wall, ".2f"), _spread(candidate.shares, ".0%")]
        print("| " + " | ".join([*cells, _spread(candidate.wall_shares, ".0%"), verdict, candidate.parity]) + " |")
    print("\nbefore -> after (fused / standard graph, ratio per round, on CPU time and on the wall clock):")
    for kind, before, after in (
        ("onnx fp32", "onnx standard graph (before)", "onnx fused (shipped)"),
        ("onnx-int8", "onnx-int8 uint8, standard graph (before)", "onnx-int8 uint8, fused (shipped)"),
    ):
        old, new = candidates[before], candidates[after]
        cpu = [a / b for a, b in zip(new.timings.cpu, old.timings.cpu, strict=True)]
        wall = [a / b for a, b in zip(new.timings.wall, old.timings.wall, strict=True)]
        shares = f"{np.median(old.shares):.0%} -> {np.median(new.shares):.0%}"
        print(f"- {kind}: {_spread(cpu, '.2f')}x (wall {_spread(wall, '.2f')}x); median share of its limit {shares}")


def _cpu() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    present = [flag for flag in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if flag in flags]
    return f"{name or platform.machine()} ({', '.join(present) or 'no AVX2'})"


if __name__ == "__main__":
    main()
