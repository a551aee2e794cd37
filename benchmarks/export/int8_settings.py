"""Which dynamic-int8 weight setting to ship: accuracy against fp32 on this CPU and on an AVX2-only one, and speed.

    python -m benchmarks.export.int8_settings                            # the latest training run's model (ZenML store)
    python -m benchmarks.export.int8_settings --emulate-cpu EPYC-Rome      # + accuracy on an emulated AVX2-only x86 CPU
    python -m benchmarks.export.int8_settings --vit-b16 --batch-size 8     # speed at ViT-B/16 size (random init)

onnxruntime's dynamic quantisation always has uint8 activations; the weights may be int8 (U8S8), int8 with
`reduce_range` (7 bits) or uint8 (U8U8). On x86 CPUs without VNNI, U8S8 saturates int16 pair sums, so its
outputs depend on the CPU that serves. The emulated CPU comes from `qemu-x86_64 -cpu <model>` (Debian's
qemu-user): EPYC-Rome has AVX2 and no AVX-512/VNNI. Throughput is measured on the host only, as interleaved
repeats reported min/median/max (shared hosts are noisy); under emulation only the numbers, not the speed, mean
anything.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from har_core.export.graphs import export_onnx_image_model, quantize_onnx_int8
from har_core.model.serving_graph import ImageModel

SETTINGS = {  # name: (weight type, reduce_range)
    "U8S8 (int8 weights)": ("QInt8", False),
    "U8S8 reduce_range (int8-reduce-range)": ("QInt8", True),
    "U8U8 (uint8 weights, default)": ("QUInt8", False),
}
_LOGITS_SCRIPT = """
import json, sys
import numpy as np
import onnxruntime as ort
from numpy._core._multiarray_umath import __cpu_features__ as features
pixels = np.load(sys.argv[1])
for index, path in enumerate(sys.argv[3:]):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    np.save(f"{sys.argv[2]}/{index}.npy", session.run(None, {session.get_inputs()[0].name: pixels})[1])
print(json.dumps({name: bool(features.get(name)) for name in ("AVX2", "AVX512F", "AVX512VNNI")}))
"""


def latest_run_model_and_pixels(max_images: int):
    """The trained classifier of the active store's latest training run and its preprocessed val images."""
    from zenml.client import Client

    from har_core.data.dataset import load_image
    from har_core.runtime.preprocess import preprocess_batch
    from har_zenml.names import DATASET_ARTIFACT, LOAD_DATA_STEP, TRAIN_STEP, TRAINED_MODEL_ARTIFACT, TRAINING_PIPELINE

    run = Client().get_pipeline(TRAINING_PIPELINE).last_run
    model = run.steps[TRAIN_STEP].outputs[TRAINED_MODEL_ARTIFACT][0].load()
    dataset = run.steps[LOAD_DATA_STEP].outputs[DATASET_ARTIFACT][0].load()
    records = dataset.split("val")[:max_images]
    labels = np.array([model.labels.index(dataset.labels[r.label]) for r in records])
    pixels = preprocess_batch([load_image(r.path) for r in records], model.preprocess_config)
    return model, pixels, labels, run.name


def vit_b16_model_and_pixels(workdir: Path, batch_size: int):
    from benchmarks.export.formats_bench import VIT_B16
    from har_core.config import ClassifierConfig
    from har_core.model.classifier import build_classifier
    from har_core.runtime.labels import HAR_LABELS

    model = build_classifier(ClassifierConfig(tiny_backbone=VIT_B16, cache_dir=workdir / "backbones"), HAR_LABELS)
    pixels = np.random.default_rng(0).standard_normal((batch_size, 3, 224, 224), dtype=np.float32)
    return model, pixels, None, "ViT-B/16 random init"


def logits_on(prefix: list[str], models: list[Path], pixels: np.ndarray, workdir: Path) -> tuple[list, dict]:
    """Logits of every model file in one process started with `prefix` (e.g. qemu-x86_64 -cpu EPYC-Rome)."""
    out = Path(tempfile.mkdtemp(dir=workdir))
    np.save(out / "pixels.npy", np.ascontiguousarray(pixels))
    command = [*prefix, sys.executable, "-c", _LOGITS_SCRIPT, str(out / "pixels.npy"), str(out), *map(str, models)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    features = json.loads(result.stdout.strip().splitlines()[-1])
    return [np.load(out / f"{index}.npy") for index in range(len(models))], features


def agreement(reference: np.ndarray, logits: np.ndarray, labels: np.ndarray | None = None) -> str:
    """Top-1 agreement and max |Δlogit|; with labels, also int8's default gate (accuracy lost, agreement where the
    reference is sure) on logits alone (embedding cosine is the export's to check)."""
    from har_core.config import ExportConfig
    from har_core.runtime.parity import compare_outputs

    top1 = (reference.argmax(1) == logits.argmax(1)).mean()
    text = f"top-1 {top1:.4f}, max |Δlogit| {np.abs(reference - logits).max():.3f}"
    if labels is None:
        return text
    gate = ExportConfig().gates["onnx-int8"]
    unit = np.ones((len(logits), 1))
    result = compare_outputs((unit, reference), (unit, logits), gate, labels)
    verdict = "gate passed" if result.passed else "GATE FAILED"
    return (
        f"{text}; {verdict}: accuracy drop {result.accuracy_drop:.4f}, "
        f"top-1 {result.top1_agreement:.4f} on {result.clear_images} clear"
    )


def throughput(models: list[Path], pixels: np.ndarray, threads: int, repeats: int) -> list[list[float]]:
    """img/s per model, `repeats` rounds interleaved across models so load on a shared host hits all alike."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    sessions = [ort.InferenceSession(str(m), options, providers=["CPUExecutionProvider"]) for m in models]
    feeds = [{s.get_inputs()[0].name: pixels} for s in sessions]
    for session, feed in zip(sessions, feeds, strict=True):
        session.run(None, feed)
    rates: list[list[float]] = [[] for _ in models]
    for _ in range(repeats):
        for index, (session, feed) in enumerate(zip(sessions, feeds, strict=True)):
            start = time.perf_counter()
            session.run(None, feed)
            rates[index].append(len(pixels) / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vit-b16", action="store_true", help="random-init ViT-B/16 instead of the latest run")
    parser.add_argument("--images", type=int, default=256, help="held-out images for accuracy (latest run)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch for the throughput rounds")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--emulate-cpu", default=None, help="qemu CPU model, e.g. EPYC-Rome (AVX2, no AVX-512)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.emulate_cpu and shutil.which("qemu-x86_64") is None:
        parser.error("--emulate-cpu needs qemu-x86_64 (Debian: apt-get install qemu-user)")
    with tempfile.TemporaryDirectory(prefix="har-clip-int8-") as tmp:
        workdir = Path(tmp)
        if args.vit_b16:
            model, pixels, labels, source = vit_b16_model_and_pixels(workdir, args.batch_size)
        else:
            model, pixels, labels, source = latest_run_model_and_pixels(args.images)
        fp32 = export_onnx_image_model(ImageModel(model.eval().cpu()), workdir / "fp32.onnx", opset=18)
        models = [fp32] + [
            quantize_onnx_int8(fp32, workdir / f"int8-{i}.onnx", weight_type, reduce_range)
            for i, (weight_type, reduce_range) in enumerate(SETTINGS.values())
        ]
        host, host_cpu = logits_on([], models, pixels, workdir)
        emulated, emulated_cpu = (
            logits_on(["qemu-x86_64", "-cpu", args.emulate_cpu], models, pixels, workdir)
            if args.emulate_cpu
            else (None, None)
        )
        rates = throughput(models, pixels[: args.batch_size], args.threads, args.repeats)
    print(f"\n{source}: {len(pixels)} images for accuracy; batch {args.batch_size}, {args.threads} threads")
    print(f"host CPU features {host_cpu}" + (f"; emulated {args.emulate_cpu}: {emulated_cpu}" if emulated else ""))
    columns = ["weights", "vs fp32, this host"]
    if emulated:
        columns += [f"vs fp32, {args.emulate_cpu}", f"{args.emulate_cpu} vs this host, same file"]
    columns.append(f"img/s min / median / max ({args.repeats} interleaved repeats)")
    print("\n| " + " | ".join(columns) + " |\n|" + " --- |" * len(columns))
    for index, name in enumerate(["fp32 (reference)", *SETTINGS]):
        cells = [name, agreement(host[0], host[index], labels)]
        if emulated:
            cells += [agreement(emulated[0], emulated[index], labels), agreement(host[index], emulated[index])]
        low, mid, high = np.min(rates[index]), np.median(rates[index]), np.max(rates[index])
        cells.append(f"{low:.1f} / {mid:.1f} / {high:.1f}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
