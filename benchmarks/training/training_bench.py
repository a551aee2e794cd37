"""Training at ViT-B/16 size (random init, nothing downloaded): the data path, the loop, DDP and FSDP memory.

    python -m benchmarks.training.training_bench                           # every part; about 20 minutes on 2 CPU cores
    python -m benchmarks.training.training_bench --only data --only accuracy   # the data path and the cache's accuracy
    python -m benchmarks.training.training_bench --only loop --steps 3 --skip-compile --baseline-source /tmp/before

Prints one table per part. `data`: img/s of one loader worker (decode + augment + collate) for the quick data and
480x360 JPEGs, decoding every epoch against the decoded-image cache, and the workers one GPU at 680 img/s needs.
`accuracy`: configs/quickstart.yaml's model trained with the cache off and on. `loop`: img/s of (a) a raw
fwd+bwd+AdamW loop on random tensors, (b) the project's Trainer in one process (data loading, augmentation and
logging included), (c) DDP and (d) FSDP on 2 torchrun processes (gloo), (e) the Trainer with `training.compile:
true`; for (c) and (d) each rank's peak RSS and the bytes of parameters + gradients + optimizer state it holds
(the GPU-relevant part), and FSDP's per-rank peak (max over ranks) against DDP's. `--baseline-source DIR` runs
the data path's decoding, (c) and (d) again with the har_core of another checkout (before/after in one run). The
first step of every variant is a warm-up and is left out of img/s. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import torch
import torch.nn.functional as F

from benchmarks.shared.baseline import for_baseline
from benchmarks.training.training_data_bench import data_path_rows, print_accuracy, print_data_path, quick_accuracy_rows
from har_core.config import ClassifierConfig, DistributedConfig, SyntheticDataConfig, TinyBackboneConfig, TrainingConfig
from har_core.data.dataset import DatasetManifest, ImageRecord
from har_core.data.synthetic import generate_synthetic_images
from har_core.model.classifier import HarClipClassifier, build_classifier
from har_core.runtime.labels import HAR_LABELS
from har_core.training.launcher import worker_environment, write_job

VIT_B16 = TinyBackboneConfig(
    image_size=224, patch_size=16, hidden_size=768, num_layers=12, num_heads=12, projection_dim=512
)
WORKER = Path(__file__).with_name("training_bench_worker.py")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = PROJECT_ROOT / "configs" / "quickstart.yaml"
FSDP_GOAL = 0.75  # FSDP's per-rank peak over DDP's


def raw_loop(model: HarClipClassifier, steps: int, batch_size: int) -> list[float]:
    """Seconds per fwd+bwd+AdamW step on random tensors: the ceiling the Trainer is compared with."""
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    size = model.preprocess_config.crop_size
    pixels, labels = torch.randn(batch_size, 3, size, size), torch.randint(0, len(model.labels), (batch_size,))
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = F.cross_entropy(model(pixels), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def run_trainer(job_dir: Path, nproc: int, torchrun: bool | None = None, source: Path | None = None) -> list[dict]:
    """The Trainer in one plain process or under torchrun (default: when nproc > 1); each rank's report.

    `source`: the har_core of another checkout (its path first on PYTHONPATH)."""
    if not (nproc > 1 if torchrun is None else torchrun):
        command = [sys.executable, str(WORKER), str(job_dir)]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", "--standalone"]
        command += [str(WORKER), str(job_dir)]
    env = worker_environment()
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source), str(PROJECT_ROOT)])
    subprocess.run(command, env=env, check=True)
    return [json.loads(path.read_text()) for path in sorted(job_dir.glob("bench-rank*.json"))]


def images_per_second(step_seconds: list[float], batch_size: int) -> float:
    timed = step_seconds[1:]  # the first step warms up (allocations, compilation)
    return batch_size * len(timed) / sum(timed)


def benchmark_manifest(work: Path, steps: int, batch_size: int) -> DatasetManifest:
    images = generate_synthetic_images(
        work / "images",
        HAR_LABELS,
        SyntheticDataConfig(images_per_class=max(4, -(-(steps * batch_size + 8) // 15)), image_size=256),
    )
    records = [ImageRecord(path=str(p), label=HAR_LABELS.index(p.parent.name)) for p in sorted(images.glob("*/*"))]
    return DatasetManifest(
        labels=list(HAR_LABELS),
        root=str(images),
        train=records[: steps * batch_size],
        val=records[steps * batch_size : steps * batch_size + 8],
        test=[],
    )


def loop_rows(work: Path, steps: int, batch_size: int, skip_compile: bool, baseline: Path | None) -> dict:
    classifier = ClassifierConfig(tiny_backbone=VIT_B16, cache_dir=work / "backbones")
    model = build_classifier(classifier, HAR_LABELS)
    manifest = benchmark_manifest(work, steps, batch_size)
    rows: dict[str, dict] = {}
    print_loop_header(steps, batch_size)
    raw = raw_loop(model, steps, batch_size)
    rows["(a) raw fwd+bwd+AdamW, 1 process"] = {"ips": images_per_second(raw, batch_size)}
    print_loop_row(rows, "(a) raw fwd+bwd+AdamW, 1 process")
    model = HarClipClassifier.load(model.save(work / "base"))
    variants = [("(b) Trainer, 1 process", "none", 1, False, None), ("(c) DDP, 2 processes", "ddp", 2, False, None)]
    variants += [("(d) FSDP, 2 processes", "fsdp", 2, False, None)]
    if baseline is not None:
        variants += [("(c0) DDP, 2 processes, baseline", "ddp", 2, False, baseline)]
        variants += [("(d0) FSDP, 2 processes, baseline", "fsdp", 2, False, baseline)]
    if not skip_compile:
        variants.append(("(e) Trainer + torch.compile, 1 process", "none", 1, True, None))
    for label, strategy, nproc, compile_model, source in variants:
        config = TrainingConfig(
            epochs=1,
            batch_size=batch_size,
            learning_rate=1e-5,
            num_workers=0,
            device="cpu",
            early_stopping_patience=None,
            augmentation="light",
            output_dir=work / "checkpoints",
            distributed=DistributedConfig(strategy=strategy, nproc_per_node=nproc),
            compile=compile_model,
        )
        job_dir = work / f"job-{strategy}-{nproc}-{int(compile_model)}-{int(source is not None)}"
        write_job(job_dir, model, manifest, config, work / "checkpoints" / job_dir.name)
        if source is not None:  # the baseline's job and model card forbid keys it does not know
            for_baseline(job_dir)
        reports = run_trainer(job_dir, nproc, source=source)
        step_seconds = reports[0]["step_seconds"]
        row: dict = {"ips": images_per_second(step_seconds, batch_size)}
        if nproc > 1:
            row["rss"] = [report["peak_rss_mib"] for report in reports]
            states = [report.get("state_bytes") for report in reports]
            row["state"] = [sum(state.values()) / 2**20 for state in states] if all(states) else None
        if compile_model:
            row["compile"] = step_seconds[0] - sum(step_seconds[1:]) / len(step_seconds[1:])
        rows[label] = row
        print_loop_row(rows, label)
    print_memory_summary(rows)
    return rows


def print_loop_header(steps: int, batch_size: int) -> None:
    click.echo(f"\nViT-B/16 sizes, 224 px, random init, global batch {batch_size}, {steps - 1} timed steps, CPU")
    click.echo(f"torch {torch.__version__}, {torch.get_num_threads()} threads in this process\n")
    click.echo("| variant | img/s | x (a) | x (b) | peak RSS per rank (MiB) | params+grads+optimizer per rank (MiB) "
               "| compile (s) |")  # fmt: skip
    click.echo("| --- | --- | --- | --- | --- | --- | --- |")


def print_loop_row(rows: dict, label: str) -> None:
    """One row as soon as its variant finishes (a long run still leaves the rows it measured)."""
    row = rows[label]
    baseline = rows["(a) raw fwd+bwd+AdamW, 1 process"]["ips"]
    trainer = rows.get("(b) Trainer, 1 process", {}).get("ips")
    versus_trainer = f"{row['ips'] / trainer:.2f}" if trainer else ""
    rss = ", ".join(f"{value:.0f}" for value in row.get("rss") or [])
    state = ", ".join(f"{value:.0f}" for value in row.get("state") or [])
    compiled = f"{row['compile']:.0f}" if "compile" in row else ""
    click.echo(f"| {label} | {row['ips']:.2f} | {row['ips'] / baseline:.2f} | {versus_trainer} | {rss} | {state} | "
               f"{compiled} |")  # fmt: skip


def print_memory_summary(rows: dict) -> None:
    """FSDP against DDP: per-rank peak RSS as the max over ranks, and the sharded training state."""
    pairs = [("now", "(c) DDP, 2 processes", "(d) FSDP, 2 processes")]
    pairs.append(("baseline", "(c0) DDP, 2 processes, baseline", "(d0) FSDP, 2 processes, baseline"))
    click.echo("")
    for name, ddp, fsdp in pairs:
        if ddp not in rows or fsdp not in rows:
            continue
        ratio = max(rows[fsdp]["rss"]) / max(rows[ddp]["rss"])
        verdict = "met" if ratio <= FSDP_GOAL else "not met"
        line = f"{name}: FSDP/DDP per-rank peak RSS (max over ranks) {ratio:.2f} (goal <= {FSDP_GOAL}: {verdict})"
        if rows[ddp].get("state") and rows[fsdp].get("state"):
            line += f"; params+grads+optimizer per rank {max(rows[fsdp]['state']) / max(rows[ddp]['state']):.2f}"
        click.echo(line)


@click.command()
@click.option(
    "--only",
    "parts",
    multiple=True,
    type=click.Choice(["data", "accuracy", "loop"]),
    help="run only these parts (repeatable; default: all)",
)
@click.option("--steps", default=4, show_default=True, help="optimiser steps per loop variant (the first is warm-up)")
@click.option("--batch-size", default=8, show_default=True, help="global batch of the loop variants")
@click.option("--skip-compile", is_flag=True, help="leave out (e), whose compilation takes minutes on CPU")
@click.option("--images", default=512, show_default=True, help="images per data set in the data-path part")
@click.option("--seeds", default=2, show_default=True, help="quick-model runs per setting in the accuracy part")
@click.option("--baseline-source", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="another checkout whose har_core runs decoding, (c), (d) again: before/after")  # fmt: skip
def main(
    parts: tuple[str, ...],
    steps: int,
    batch_size: int,
    skip_compile: bool,
    images: int,
    seeds: int,
    baseline_source: Path | None,
) -> None:
    logging.basicConfig(level=logging.WARNING)
    parts = parts or ("data", "accuracy", "loop")
    click.echo(f"load average at start: {', '.join(f'{value:.2f}' for value in os.getloadavg())}")
    # Checkpoints at ViT-B/16 size take gigabytes: everything lives in a folder removed at the end.
    with tempfile.TemporaryDirectory(prefix="har-clip-bench-") as work_dir:
        work = Path(work_dir)
        if "data" in parts:
            print_data_path(data_path_rows(work / "data", images, ("none", "light", "medium"), baseline_source))
        if "accuracy" in parts:
            print_accuracy(quick_accuracy_rows(QUICKSTART, range(42, 42 + seeds)), "light")
        if "loop" in parts:
            loop_rows(work / "loop", steps, batch_size, skip_compile, baseline_source)
    click.echo(f"load average at end: {', '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
