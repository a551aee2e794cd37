"""Benchmark worker: the project's Trainer on a prepared job, in one process or as a torchrun worker.

Writes `bench-rank<R>.json` into the job directory: per-step wall times (data loading included), this process's
peak resident memory and the bytes of parameters, gradients and optimizer state it holds.
"""

import json
import resource
import sys
from pathlib import Path

import torch

from har_core.data.dataset import DatasetManifest
from har_core.training.job import TrainingJob
from har_core.training.trainer import Trainer

try:
    from har_core.training.distributed import load_for_training
except (
    ImportError
):  # a checkout from before FSDP's meta-device start (benchmarks/training/training_bench.py --baseline-source)
    from har_core.model.classifier import HarClipClassifier

    def load_for_training(directory: str, strategy: str) -> HarClipClassifier:
        return HarClipClassifier.load(directory)


def main(job_dir: str) -> None:
    job = TrainingJob.load(job_dir)
    manifest = DatasetManifest.model_validate_json(Path(job.manifest).read_text())
    trainer = Trainer(load_for_training(job.base_model, job.config.distributed.strategy), job.config, job.output_dir)
    rank = trainer.context.rank
    trainer.fit(manifest.split("train"), manifest.split("val"))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {"rank": rank, "step_seconds": trainer.step_seconds, "peak_rss_mib": peak_mib}
    report["state_bytes"] = getattr(trainer, "state_bytes", None)  # None: a baseline checkout does not count it
    if torch.cuda.is_available():
        report["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
        report["precision"] = trainer.precision.name
    (Path(job_dir) / f"bench-rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
