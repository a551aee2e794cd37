"""Training throughput at ViT-B/16 size (random init, nothing downloaded): raw loop, Trainer, DDP, FSDP, compile.

    python -m benchmarks.training                 # about 10 minutes on 2 CPU cores
    python -m benchmarks.training --steps 6 --batch-size 8

Prints one table: img/s of (a) a raw fwd+bwd+AdamW loop on random tensors, (b) the project's Trainer in one
process (data loading, augmentation and logging included), (c) DDP and (d) FSDP on 2 torchrun processes (gloo),
(e) the Trainer with `training.compile: true`; per-rank peak RSS for (c) and (d); compile time apart. The first
step of every variant is a warm-up and is left out of img/s. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import torch
import torch.nn.functional as F

from har_core.config import ClassifierConfig, DistributedConfig, SyntheticDataConfig, TinyBackboneConfig, TrainingConfig
from har_core.data.dataset import DatasetManifest, ImageRecord
from har_core.data.synthetic import generate_synthetic_images
from har_core.model.classifier import HarClipClassifier, build_classifier
from har_core.runtime.labels import HAR_LABELS
from har_core.training.launcher import worker_environment, write_job

VIT_B16 = TinyBackboneConfig(
    image_size=224, patch_size=16, hidden_size=768, num_layers=12, num_heads=12, projection_dim=512
)
WORKER = Path(__file__).with_name("training_worker.py")


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


def run_trainer(job_dir: Path, nproc: int, torchrun: bool | None = None) -> list[dict]:
    """The Trainer in one plain process or under torchrun (default: when nproc > 1); each rank's report."""
    if not (nproc > 1 if torchrun is None else torchrun):
        command = [sys.executable, str(WORKER), str(job_dir)]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", "--standalone"]
        command += [str(WORKER), str(job_dir)]
    subprocess.run(command, env=worker_environment(), check=True)
    return [json.loads(path.read_text()) for path in sorted(job_dir.glob("bench-rank*.json"))]


def images_per_second(step_seconds: list[float], batch_size: int) -> float:
    timed = step_seconds[1:]  # the first step warms up (allocations, compilation)
    return batch_size * len(timed) / sum(timed)


@click.command()
@click.option("--steps", default=4, show_default=True, help="optimiser steps per variant (the first is warm-up)")
@click.option("--batch-size", default=8, show_default=True, help="global batch")
@click.option("--skip-compile", is_flag=True, help="leave out (e), whose compilation takes minutes on CPU")
def main(steps: int, batch_size: int, skip_compile: bool) -> None:
    logging.basicConfig(level=logging.WARNING)
    # Checkpoints at ViT-B/16 size take gigabytes: everything lives in a folder removed at the end.
    with tempfile.TemporaryDirectory(prefix="har-clip-bench-") as work_dir:
        work = Path(work_dir)
        classifier = ClassifierConfig(tiny_backbone=VIT_B16, cache_dir=work / "backbones")
        model = build_classifier(classifier, HAR_LABELS)
        images = generate_synthetic_images(
            work / "images",
            HAR_LABELS,
            SyntheticDataConfig(images_per_class=max(4, -(-(steps * batch_size + 8) // 15)), image_size=256),
        )
        records = [ImageRecord(path=str(p), label=HAR_LABELS.index(p.parent.name)) for p in sorted(images.glob("*/*"))]
        manifest = DatasetManifest(
            labels=list(HAR_LABELS),
            root=str(images),
            train=records[: steps * batch_size],
            val=records[steps * batch_size : steps * batch_size + 8],
            test=[],
        )
        rows = {}
        print_header(steps, batch_size)
        raw = raw_loop(model, steps, batch_size)
        rows["(a) raw fwd+bwd+AdamW, 1 process"] = (images_per_second(raw, batch_size), None, None)
        print_row(rows, "(a) raw fwd+bwd+AdamW, 1 process")
        model = HarClipClassifier.load(model.save(work / "base"))
        variants = [("(b) Trainer, 1 process", "none", 1, False), ("(c) DDP, 2 processes", "ddp", 2, False)]
        variants += [("(d) FSDP, 2 processes", "fsdp", 2, False)]
        if not skip_compile:
            variants.append(("(e) Trainer + torch.compile, 1 process", "none", 1, True))
        for label, strategy, nproc, compile_model in variants:
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
            job_dir = work / f"job-{strategy}-{nproc}-{int(compile_model)}"
            write_job(job_dir, model, manifest, config, work / "checkpoints" / job_dir.name)
            reports = run_trainer(job_dir, nproc)
            step_seconds = reports[0]["step_seconds"]
            rss = ", ".join(f"{report['peak_rss_mib']:.0f}" for report in reports) if nproc > 1 else None
            first = step_seconds[0] - sum(step_seconds[1:]) / len(step_seconds[1:]) if compile_model else None
            rows[label] = (images_per_second(step_seconds, batch_size), rss, first)
            print_row(rows, label)


def print_header(steps: int, batch_size: int) -> None:
    click.echo(f"\nViT-B/16 sizes, 224 px, random init, global batch {batch_size}, {steps - 1} timed steps, CPU")
    click.echo(f"torch {torch.__version__}, {torch.get_num_threads()} threads in this process\n")
    click.echo("| variant | img/s | x (a) | x (b) | peak RSS per rank (MiB) | compile (s) |")
    click.echo("| --- | --- | --- | --- | --- | --- |")


def print_row(rows: dict, label: str) -> None:
    """One row as soon as its variant finishes (a long run still leaves the rows it measured)."""
    speed, rss, compile_seconds = rows[label]
    baseline = rows["(a) raw fwd+bwd+AdamW, 1 process"][0]
    trainer = rows.get("(b) Trainer, 1 process", (None,))[0]
    versus_trainer = f"{speed / trainer:.2f}" if trainer else ""
    compiled = f"{compile_seconds:.0f}" if compile_seconds is not None else ""
    click.echo(f"| {label} | {speed:.2f} | {speed / baseline:.2f} | {versus_trainer} | {rss or ''} | {compiled} |")


if __name__ == "__main__":
    main()
