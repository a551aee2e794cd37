"""GPU check (a lent GPU machine, one GPU): Trainer, DDP and FSDP at world size 1 with NCCL, bf16 and compile.

    bash benchmarks/gpu_check.sh          # wraps this; writes gpu_check.md into $OUT

Per variant: median step time, img/s, peak CUDA memory, and MFU estimated from the FLOPs of one measured
fwd+bwd (torch.utils.flop_counter) over the GPU's dense bf16 peak.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import click
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.training.training_bench import VIT_B16, run_trainer
from har_core.config import ClassifierConfig, DistributedConfig, SyntheticDataConfig, TrainingConfig
from har_core.data.dataset import DatasetManifest, ImageRecord
from har_core.data.synthetic import generate_synthetic_images
from har_core.model.classifier import build_classifier
from har_core.runtime.labels import HAR_LABELS
from har_core.training.launcher import write_job

# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets, by a substring of the device name.
BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12, "L4": 121e12}


def flops_per_image(model) -> float:
    """FLOPs of one training fwd+bwd at batch 1, counted by torch."""
    size = model.preprocess_config.crop_size
    pixels = torch.randn(1, 3, size, size, device="cuda")
    with FlopCounterMode(display=False) as counter, torch.autocast("cuda", torch.bfloat16):
        F.cross_entropy(model(pixels).float(), torch.zeros(1, dtype=torch.long, device="cuda")).backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


@click.command()
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--steps", default=20, show_default=True)
@click.option("--batch-size", default=64, show_default=True)
def main(out: Path, steps: int, batch_size: int) -> None:
    if not torch.cuda.is_available():
        raise click.ClickException("no CUDA device: this check runs on a GPU machine only")
    # Checkpoints at ViT-B/16 size take gigabytes: everything lives in a folder removed at the end.
    with tempfile.TemporaryDirectory(prefix="har-clip-gpu-") as work_dir:
        work = Path(work_dir)
        model = build_classifier(ClassifierConfig(tiny_backbone=VIT_B16, cache_dir=work / "backbones"), HAR_LABELS)
        images = generate_synthetic_images(
            work / "images",
            HAR_LABELS,
            SyntheticDataConfig(images_per_class=-(-(steps * batch_size + 64) // 15), image_size=256),
        )
        records = [ImageRecord(path=str(p), label=HAR_LABELS.index(p.parent.name)) for p in sorted(images.glob("*/*"))]
        train, val = records[: steps * batch_size], records[steps * batch_size : steps * batch_size + 64]
        manifest = DatasetManifest(labels=list(HAR_LABELS), root=str(images), train=train, val=val, test=[])
        flops = flops_per_image(model.to("cuda"))
        name = torch.cuda.get_device_name()
        peak = next((value for key, value in BF16_PEAK.items() if key in name), None)
        lines = [
            f"# GPU check on {name} (torch {torch.__version__})",
            "",
            f"ViT-B/16 sizes, 224 px, batch {batch_size}, "
            f"{steps - 1} timed steps; {flops / 1e9:.1f} GFLOP per image fwd+bwd",
            "",
        ]
        lines += [
            "| variant | precision | step (ms) | img/s | peak CUDA (MiB) | MFU |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        model = model.to("cpu")
        # FSDP under bf16 is its MixedPrecisionPolicy (no autocast); the fp32 row shows what the policy buys.
        variants = [("Trainer", "none", "auto", False), ("DDP x1 (nccl), autocast", "ddp", "bf16", False)]
        variants += [("FSDP x1 (nccl), MixedPrecisionPolicy", "fsdp", "bf16", False)]
        variants += [("FSDP x1 (nccl)", "fsdp", "fp32", False), ("Trainer + torch.compile", "none", "auto", True)]
        for label, strategy, precision, compile_model in variants:
            config = TrainingConfig(
                epochs=1,
                batch_size=batch_size,
                learning_rate=1e-5,
                num_workers=4,
                device="cuda",
                precision=precision,
                early_stopping_patience=None,
                output_dir=work / "checkpoints",
                distributed=DistributedConfig(strategy=strategy, nproc_per_node=1, backend="auto"),
                compile=compile_model,
            )
            job_dir = work / f"job-{strategy}-{precision}-{int(compile_model)}"
            write_job(job_dir, model, manifest, config, work / "checkpoints" / job_dir.name)
            try:
                (report,) = run_trainer(job_dir, 1, torchrun=strategy != "none")
            except Exception as error:  # keep the other variants' rows
                lines.append(f"| {label} | failed: {error} | | | | |")
                continue
            step = statistics.median(report["step_seconds"][1:])
            speed = batch_size / step
            mfu = f"{speed * flops / peak:.1%}" if peak else "n/a"
            lines.append(
                f"| {label} | {report.get('precision', '?')} | {step * 1000:.0f} | {speed:.0f} | "
                f"{report.get('peak_cuda_mib', 0):.0f} | {mfu} |"
            )
            if compile_model:
                lines.append(f"\ncompile: first step {report['step_seconds'][0]:.1f} s (compilation included)")
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
        click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
