"""The live camera's scorer alone: frames offered at a steady camera rate, how many it scores and how fast.

    python -m benchmarks.serving.live_scoring_bench                        # 30 fps camera, targets 4 and 30, 6 s each
    python -m benchmarks.serving.live_scoring_bench --camera-fps 10 --targets 2 4 8

No browser and no WebRTC: the tiny CLIP (random init) exported to ONNX, wrapped in the viewer's `LocalBackend`,
and `viewer.live_scoring.LiveScorer` fed 640x480 frames from a thread at `--camera-fps`. Shows what the scorer
achieves when frames arrive steadily (the browser test shows what it achieves behind WebRTC on a busy host).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camera-fps", type=float, default=30.0)
    parser.add_argument("--targets", type=float, nargs="+", default=[4.0, 30.0], help="scoring rates asked for")
    parser.add_argument("--seconds", type=float, default=6.0)
    arguments = parser.parse_args()
    import av

    from viewer.live_scoring import LiveScorer, LiveSettings

    with tempfile.TemporaryDirectory(prefix="har-clip-live-bench-") as workdir:
        backend = tiny_backend(Path(workdir))
        frame = av.VideoFrame.from_ndarray(np.random.default_rng(0).integers(0, 255, (480, 640, 3), np.uint8))
        print(f"\nLiveScorer, {arguments.camera_fps:g} fps camera of 640x480 frames, tiny CLIP ONNX on CPU, "
              f"{arguments.seconds:g} s each (load average {os.getloadavg()[0]:.1f}):\n")  # fmt: skip
        print("| target fps | scored fps | latency (ms) | received | scored | dropped |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: |")
        for target in arguments.targets:
            scorer = LiveScorer(backend, LiveSettings(scoring_fps=target))
            started = time.monotonic()
            while time.monotonic() - started < arguments.seconds:
                scorer.offer(frame)
                time.sleep(1 / arguments.camera_fps)
            state = scorer.snapshot()
            scorer.close()
            print(f"| {target:g} | {state.scoring_fps:.1f} | {state.latency_ms or 0:.1f} | {state.received} | "
                  f"{state.scored} | {state.dropped} |")  # fmt: skip


def tiny_backend(workdir: Path):
    from har_core.config import ClassifierConfig, ExportConfig, TinyBackboneConfig
    from har_core.export.bundle import export_bundle
    from har_core.model.classifier import build_classifier
    from har_core.runtime.labels import HAR_LABELS
    from har_core.runtime.manifest import ModelSource
    from har_core.runtime.predictor import Predictor
    from viewer.backends import LocalBackend

    model = build_classifier(
        ClassifierConfig(tiny_backbone=TinyBackboneConfig(), cache_dir=workdir / "backbones"), HAR_LABELS
    )
    pixels = np.random.default_rng(0).random((4, 3, 64, 64), dtype=np.float32)
    source = ModelSource(model_name="tiny", model_version="1", backbone=model.backbone_name)
    bundle = export_bundle(model, pixels, workdir / "exports", ExportConfig(formats=("onnx",)), source, "cpu")
    predictor = Predictor.from_export(bundle.directory("onnx"), device="cpu")
    return LocalBackend(predictor, {"name": "tiny", "version": "1"})


if __name__ == "__main__":
    main()
