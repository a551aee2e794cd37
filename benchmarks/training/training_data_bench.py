"""The data path of training alone (for benchmarks/training/training_bench.py): img/s of one loader worker, the quick
model's accuracy with and without the decoded-image cache.

One loader worker is measured as the main process with `num_workers: 0` and one torch thread (DataLoader workers
run with one): it reads, decodes or maps, augments, normalises and collates, exactly the work a worker does. Its
img/s is counted per CPU-second of the process (what a worker with a core of its own delivers: on the shared 2-core
development host the wall-clock figure moves with the other sessions' load) and per wall second.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from har_core.config import DataConfig, EvaluationConfig, SyntheticDataConfig, TrainingPipelineParameters
from har_core.data.dataset import ImageClassificationDataset, ImageRecord
from har_core.data.decoded_cache import decoded_images
from har_core.data.synthetic import generate_synthetic_images
from har_core.runtime.labels import HAR_LABELS
from har_core.runtime.preprocess import PreprocessConfig

GPU_IMAGES_PER_SECOND = 680  # published ViT-B/16 training throughput of one A100
BATCH_SIZE = 32
CACHE_BOUND = 8 * 2**30


def photo_jpegs(folder: Path, count: int, size: tuple[int, int] = (480, 360)) -> list[ImageRecord]:
    """Photo-like JPEGs (smooth gradients, texture, a few shapes) at quality 90: noise-free drawings decode faster
    than photos, pure noise slower."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    records = []
    for number in range(count):
        phase = rng.uniform(0, 6.28, 3)
        base = np.stack([127 + 100 * np.sin(x / (40 + 20 * c) + y / 70 + phase[c]) for c in range(3)], -1)
        texture = rng.normal(0, 12, (height, width, 3))
        pixels = np.clip(base + texture, 0, 255).astype(np.uint8)
        for _ in range(4):
            top, left = rng.integers(0, height - 60), rng.integers(0, width - 60)
            pixels[top : top + rng.integers(20, 60), left : left + rng.integers(20, 60)] = rng.integers(0, 255, 3)
        path = folder / f"{number:05d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        records.append(ImageRecord(path=str(path), label=number % len(HAR_LABELS)))
    return records


def worker_images_per_second(dataset: ImageClassificationDataset, epoch: int) -> tuple[float, float]:
    """(img/s of CPU time, img/s of wall time) of one loader worker over one epoch of `dataset` (decode or map,
    augment, normalise, collate). CPU time is what a worker with a core of its own delivers, whatever else runs on
    a shared host; wall time is what it delivered here."""
    dataset.set_epoch(epoch)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in DataLoader(dataset, batch_size=BATCH_SIZE, num_workers=0):
            pass
        return len(dataset) / (time.process_time() - cpu), len(dataset) / (time.perf_counter() - wall)
    finally:
        torch.set_num_threads(threads)


def data_path_rows(work: Path, images: int, augmentations: Sequence[str], baseline: Path | None = None) -> list[dict]:
    """Per data set and augmentation: decoding every epoch, building the cache (the first epoch), reading it;
    with `baseline`, that checkout's decoding too (its own preprocessing code, in a process of its own)."""
    quick_config = SyntheticDataConfig(image_size=96, images_per_class=4)
    quick = generate_synthetic_images(work / "quick", HAR_LABELS, quick_config)
    quick_records = [
        ImageRecord(path=str(path), label=HAR_LABELS.index(path.parent.name)) for path in sorted(quick.glob("*/*.jpg"))
    ]
    quick_records = (quick_records * math.ceil(images / len(quick_records)))[:images]
    sets = [
        ("quick (96 px synthetic, crop 64)", quick_records, PreprocessConfig(resize_shortest_edge=64, crop_size=64)),
        ("480x360 JPEG (crop 224)", photo_jpegs(work / "photos", images), PreprocessConfig()),
    ]
    rows = []
    for data_name, records, config in sets:
        cpu, wall = time.process_time(), time.perf_counter()
        decoded = decoded_images(records, config, CACHE_BOUND, threads=1, root=_private(work / "decoded"))
        build = len(records) / (time.process_time() - cpu), len(records) / (time.perf_counter() - wall)
        rows.append(_row(data_name, "—", "cache build (first epoch, 1 thread)", build))
        for augmentation in augmentations:
            plain = ImageClassificationDataset(records, config, augmentation, seed=0)
            cached = ImageClassificationDataset(records, config, augmentation, seed=0, decoded=decoded)
            worker_images_per_second(cached, epoch=0)  # warm the page cache and the allocator
            if baseline is not None:
                before = baseline_images_per_second(baseline, records, config, augmentation)
                rows.append(_row(data_name, augmentation, "decode every epoch, baseline", before))
            rows.append(_row(data_name, augmentation, "decode every epoch", worker_images_per_second(plain, 1)))
            rows.append(_row(data_name, augmentation, "decoded cache", worker_images_per_second(cached, 1)))
    return rows


BASELINE_SCRIPT = """
import json, sys, time, torch
from torch.utils.data import DataLoader
from har_core.data.dataset import ImageClassificationDataset, ImageRecord
from har_core.runtime.preprocess import PreprocessConfig
paths, config, augmentation = json.loads(sys.stdin.read())
torch.set_num_threads(1)
records = [ImageRecord(path=path, label=0) for path in paths]
dataset = ImageClassificationDataset(records, PreprocessConfig(**config), augmentation, seed=0)
dataset.set_epoch(1)
cpu, wall = time.process_time(), time.perf_counter()
for _ in DataLoader(dataset, batch_size=32, num_workers=0):
    pass
print(len(dataset) / (time.process_time() - cpu), len(dataset) / (time.perf_counter() - wall))
"""


def baseline_images_per_second(
    source: Path, records, config: PreprocessConfig, augmentation: str
) -> tuple[float, float]:
    """`worker_images_per_second` of decoding every epoch, run by the har_core of the checkout at `source`."""
    payload = json.dumps([[record.path for record in records], config.model_dump(), augmentation])
    env = {**os.environ, "PYTHONPATH": str(source)}
    result = subprocess.run(
        [sys.executable, "-c", BASELINE_SCRIPT], input=payload, env=env, capture_output=True, text=True, check=True
    )
    cpu, wall = result.stdout.strip().splitlines()[-1].split()
    return float(cpu), float(wall)


def _private(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _row(data: str, augmentation: str, path: str, images_per_second: tuple[float, float]) -> dict:
    cpu, wall = images_per_second
    return {
        "data": data,
        "augmentation": augmentation,
        "path": path,
        "ips": cpu,
        "wall": wall,
        "workers": math.ceil(GPU_IMAGES_PER_SECOND / cpu),
    }


def print_data_path(rows: list[dict]) -> None:
    print(f"\nData path, one loader worker (1 thread), batch {BATCH_SIZE}: img/s per CPU-second (a worker with a core "
          f"of its own) and per wall second here; workers one GPU at {GPU_IMAGES_PER_SECOND} img/s needs")  # fmt: skip
    print("| data | augmentation | path | img/s per worker (CPU) | img/s (wall, this host) | workers for 680 img/s "
          "| x decode (baseline if run) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    # Against the baseline checkout's decoding where it was measured: the code before the cache.
    decode = {(row["data"], row["augmentation"]): row["ips"] for row in rows if row["path"] == "decode every epoch"}
    decode |= {
        (row["data"], row["augmentation"]): row["ips"] for row in rows if row["path"] == "decode every epoch, baseline"
    }
    for row in rows:
        reference = decode.get((row["data"], row["augmentation"]))
        ratio = f"{row['ips'] / reference:.1f}" if reference and row["path"] == "decoded cache" else ""
        print(f"| {row['data']} | {row['augmentation']} | {row['path']} | {row['ips']:.0f} | {row['wall']:.0f} | "
              f"{row['workers']} | {ratio} |")  # fmt: skip


def quick_accuracy_rows(config_path: Path, seeds: Sequence[int]) -> list[dict]:
    """configs/quickstart.yaml's model trained with the cache off and on (same seeds): test accuracy of each."""
    from har_core.data.sources import build_manifest
    from har_core.evaluation.metrics import evaluate_classifier
    from har_core.model.classifier import build_classifier
    from har_core.training.trainer import train_classifier
    from har_zenml.run_config import load_training_run_config

    parameters: TrainingPipelineParameters = load_training_run_config(config_path)
    rows = []
    with tempfile.TemporaryDirectory(prefix="har-clip-bench-accuracy-") as work_dir:
        work = Path(work_dir)
        data: DataConfig = parameters.data.model_copy(update={"cache_dir": work / "data"})
        manifest = build_manifest(data)
        classifier = parameters.classifier.model_copy(update={"cache_dir": work / "backbones"})
        evaluation = EvaluationConfig(split="test", device="cpu", num_workers=0)
        for seed in seeds:
            for cached in (False, True):
                training = parameters.training.model_copy(
                    update={"seed": seed, "decoded_cache": cached, "device": "cpu", "output_dir": work / "runs"}
                )
                model = build_classifier(classifier, manifest.labels)
                start = time.perf_counter()
                best, result = train_classifier(
                    model, manifest.split("train"), manifest.split("val"), training, work / f"run-{seed}-{cached}"
                )
                seconds = time.perf_counter() - start
                report = evaluate_classifier(best, manifest.split("test"), evaluation, manifest.labels)
                rows.append(
                    {"seed": seed, "cached": cached, "test": report.accuracy, "val": result.best_val_accuracy,
                     "seconds": seconds, "epochs": len(result.history)}
                )  # fmt: skip
                print(rows[-1], flush=True)
    return rows


def print_accuracy(rows: list[dict], augmentation: str) -> None:
    print(f"\nQuick model (configs/quickstart.yaml, augmentation {augmentation}): decoding every epoch vs the cache")
    print("| seed | test accuracy, decode | test accuracy, cache | difference | train s, decode | train s, cache |")
    print("| --- | --- | --- | --- | --- | --- |")
    by_seed: dict[int, dict[bool, dict]] = {}
    for row in rows:
        by_seed.setdefault(row["seed"], {})[row["cached"]] = row
    for seed, pair in by_seed.items():
        plain, cached = pair[False], pair[True]
        print(f"| {seed} | {plain['test']:.3f} | {cached['test']:.3f} | {cached['test'] - plain['test']:+.3f} | "
              f"{plain['seconds']:.0f} | {cached['seconds']:.0f} |")  # fmt: skip
