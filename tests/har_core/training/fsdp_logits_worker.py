"""Test worker (run by torchrun): train with FSDP, then score a fixed batch with the still-sharded model.

It creates the process group itself, so `Trainer.fit` leaves it open and the sharded model can still run.
"""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from har_core.data.dataset import DatasetManifest
from har_core.training.distributed import load_for_training
from har_core.training.job import TrainingJob
from har_core.training.trainer import Trainer

LOGITS_FILE = "sharded_logits.pt"
BUFFERS_FILE = "buffers-rank{rank}.pt"  # each rank's non-persistent buffers, which no state dict carries


def fixed_batch(size: int) -> torch.Tensor:
    return torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(0))


def main(job_dir: str) -> None:
    dist.init_process_group("gloo")
    try:
        job = TrainingJob.load(job_dir)
        manifest = DatasetManifest.model_validate_json(Path(job.manifest).read_text())
        model = load_for_training(job.base_model, job.config.distributed.strategy)  # meta skeleton off rank 0
        trainer = Trainer(model, job.config, job.output_dir)
        result = trainer.fit(manifest.split("train"), manifest.split("val"))
        buffers = {name: buffer.clone() for name, buffer in trainer.model.named_buffers()}
        torch.save(buffers, Path(job_dir) / BUFFERS_FILE.format(rank=dist.get_rank()))
        trainer.model.eval()
        with torch.no_grad():
            logits = trainer.model(fixed_batch(trainer.model.preprocess_config.crop_size))
        if dist.get_rank() == 0:
            torch.save(logits, Path(job_dir) / LOGITS_FILE)
            Path(job.result_file).write_text(result.model_dump_json())
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
