"""One torchrun worker: `python -m har_core.training.worker JOB_DIR`.

Reads the job the launcher wrote (base model in `HarClipClassifier.save` layout, manifest, training config),
runs the ordinary `Trainer`, and on rank 0 appends each epoch's metrics to `metrics.jsonl` (the launching step
relays them to its experiment trackers) and writes `result.json` last. `@record` puts an exception into
torchrun's per-worker error file, so the launcher can fail with the worker's own message.

torchrun starts each worker in a session of its own; the worker asks for the parent-death signal before anything
slow (torch is imported inside `main`), so it dies with torchrun however torchrun ends (`process_tree`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from har_core.training.process_tree import die_with_parent


def _configure_logging() -> None:
    rank = int(os.environ.get("RANK", "0"))
    level = logging.INFO if rank == 0 else logging.WARNING  # only rank 0 talks
    logging.basicConfig(level=level, format=f"[rank {rank}] %(levelname)s %(name)s: %(message)s")


def main(job_dir: str) -> None:
    """Train the job in `job_dir`; an exception lands in torchrun's error file (`@record`)."""
    from torch.distributed.elastic.multiprocessing.errors import record

    record(_train)(job_dir)


def _train(job_dir: str) -> None:
    from har_core.data.dataset import DatasetManifest
    from har_core.training.checkpoint import write_json
    from har_core.training.distributed import load_for_training
    from har_core.training.job import TrainingJob
    from har_core.training.trainer import EpochMetrics, Trainer

    _configure_logging()
    job = TrainingJob.load(job_dir)
    manifest = DatasetManifest.model_validate_json(Path(job.manifest).read_text())
    model = load_for_training(job.base_model, job.config.distributed.strategy)  # FSDP: meta skeletons off rank 0
    trainer = Trainer(model, job.config, job.output_dir)
    metrics_file = Path(job.metrics_file)

    def relay(metrics: EpochMetrics) -> None:
        with metrics_file.open("a") as handle:
            handle.write(json.dumps(metrics.model_dump()) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    result = trainer.fit(manifest.split("train"), manifest.split("val"), on_epoch_end=relay)
    if trainer.context.is_main:
        write_json(Path(job.result_file), result.model_dump(mode="json"))


if __name__ == "__main__":
    die_with_parent(parent=os.getppid())
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m har_core.training.worker JOB_DIR")
    main(sys.argv[1])
