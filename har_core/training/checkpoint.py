"""Resume checkpoints: everything a killed run needs to continue as if it had never stopped.

A checkpoint is a directory `<run dir>/resume/step-XXXXXXXX/` written under a temporary name and renamed when
complete, so a kill mid-write leaves no half checkpoint that `latest` could pick. It holds the model and
optimizer (safetensors + `weights_only` tensors; under FSDP a sharded `torch.distributed.checkpoint` directory),
scheduler and grad-scaler state, one RNG file per rank, and `trainer_state.json` (epoch, step, sampler position,
early-stopping state, history and the identity of the model it belongs to).
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel
from safetensors.torch import load_file, save_file

from har_core.training.distributed import DistributedContext

logger = logging.getLogger(__name__)

RESUME_DIR = "resume"
STATE_FILE = "trainer_state.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULE_FILE = "schedule.pt"
SHARDED_DIR = "sharded"
CHECKPOINT_PREFIX = "step-"


class CheckpointMismatchError(ValueError):
    """A resume checkpoint belongs to another model or label set, or cannot be read by this strategy."""


class ModelIdentity(BaseModel):
    """What must match for a checkpoint to resume a run: backbone, labels, prompt templates, frozen tower."""

    backbone: str
    labels: list[str]
    templates: list[str]
    freeze_vision: bool

    @classmethod
    def of(cls, model) -> ModelIdentity:
        return cls(
            backbone=model.backbone_name,
            labels=model.labels,
            templates=model.templates,
            freeze_vision=model.freeze_vision,
        )


class TrainerState(BaseModel):
    """Loop position and bookkeeping. `running` holds the global train-loss sum, correct and seen counts so far."""

    identity: ModelIdentity
    strategy: str
    world_size: int
    epoch: int = 1
    step_in_epoch: int = 0
    global_step: int = 0
    best_accuracy: float = -1.0
    best_epoch: int = 0
    stale_epochs: int = 0
    running: tuple[float, float, float] = (0.0, 0.0, 0.0)
    history: list[dict] = []

    @property
    def storage(self) -> str:
        return "sharded" if self.strategy == "fsdp" else "full"


def save_checkpoint(run_dir: Path, state: TrainerState, train, context: DistributedContext, keep_last_n: int) -> Path:
    """Write a checkpoint atomically (collective under a process group), then prune old ones on rank 0."""
    root = Path(run_dir) / RESUME_DIR
    name = f"{CHECKPOINT_PREFIX}{state.global_step:08d}"
    final, staging = root / name, root / f".tmp-{name}"
    if context.is_main:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    context.barrier()
    # On several nodes each pod has its own disk: ranks away from rank 0 need the folder on theirs too.
    staging.mkdir(parents=True, exist_ok=True)
    if state.storage == "sharded":
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_state, optimizer_state = get_state_dict(train.model, train.optimizer)
        dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=staging / SHARDED_DIR)
    elif context.is_main:
        save_file({key: value.contiguous() for key, value in train.model.state_dict().items()}, staging / MODEL_FILE)
        torch.save(train.optimizer.state_dict(), staging / OPTIMIZER_FILE)
    if context.is_main:
        torch.save(
            {"scheduler": train.scheduler.state_dict(), "scaler": train.scaler.state_dict()}, staging / SCHEDULE_FILE
        )
    torch.save(rng_state(), staging / f"rng-rank{context.rank}.pt")
    context.barrier()
    if context.is_main:
        (staging / STATE_FILE).write_text(state.model_dump_json(indent=2))
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
        prune(root, keep_last_n)
        logger.info("Resume checkpoint %s", final)
    context.barrier()
    if not context.is_main and context.local_rank == 0 and staging.is_dir():
        # A node without rank 0's disk holds only a partial copy (its RNG files, shards) that nothing can resume.
        shutil.rmtree(staging, ignore_errors=True)
    return final


def load_checkpoint(directory: Path, train, context: DistributedContext) -> TrainerState:
    """Restore model, optimizer, scheduler, scaler and this rank's RNG; return the loop position."""
    directory = Path(directory)
    state = read_state(directory)
    current = "sharded" if context.strategy == "fsdp" else "full"
    if state.storage != current:
        raise CheckpointMismatchError(
            f"Checkpoint {directory} was written under strategy {state.strategy!r} ({state.storage} weights) and "
            f"cannot resume a {context.strategy!r} run; resume with the strategy it was written with."
        )
    if current == "sharded":
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        model_state, optimizer_state = get_state_dict(train.model, train.optimizer)
        target = {"model": model_state, "optimizer": optimizer_state}
        dcp.load(target, checkpoint_id=directory / SHARDED_DIR)
        set_state_dict(
            train.model, train.optimizer, model_state_dict=target["model"], optim_state_dict=target["optimizer"]
        )
    else:
        train.model.load_state_dict(load_file(directory / MODEL_FILE), strict=True)
        train.optimizer.load_state_dict(torch.load(directory / OPTIMIZER_FILE, weights_only=True))
    schedule = torch.load(directory / SCHEDULE_FILE, weights_only=True)
    train.scheduler.load_state_dict(schedule["scheduler"])
    train.scaler.load_state_dict(schedule["scaler"])
    rng_file = directory / f"rng-rank{context.rank}.pt"
    set_rng_state(torch.load(rng_file if rng_file.is_file() else directory / "rng-rank0.pt", weights_only=True))
    logger.info("Resumed from %s (epoch %d, step %d)", directory, state.epoch, state.global_step)
    return state


def read_state(directory: Path) -> TrainerState:
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"training.resume_from {str(directory)!r} is not a resume checkpoint ({STATE_FILE} is missing); "
            f"checkpoints live in <output_dir>/<run>/{RESUME_DIR}/{CHECKPOINT_PREFIX}N."
        )
    return TrainerState.model_validate_json(path.read_text())


def resolve_resume(resume_from: str | Path | None, output_dir: Path, identity: ModelIdentity) -> Path | None:
    """The checkpoint to resume from, checked against the model; every problem is a clear error up front."""
    if resume_from is None:
        return None
    if str(resume_from) == "latest":
        found = latest_checkpoint(output_dir, identity)
        if found is None:
            raise FileNotFoundError(
                f"training.resume_from: latest found no resumable checkpoint for backbone {identity.backbone!r} "
                f"and these labels under {str(output_dir)!r}."
            )
        return found
    directory = Path(resume_from)
    if not directory.is_dir():
        raise FileNotFoundError(f"training.resume_from {str(directory)!r} does not exist.")
    saved = read_state(directory).identity
    if saved != identity:
        differing = [name for name in ModelIdentity.model_fields if getattr(saved, name) != getattr(identity, name)]
        raise CheckpointMismatchError(
            f"Checkpoint {directory} belongs to another model or label set (differs in {differing}); it cannot "
            "resume this run."
        )
    return directory


def latest_checkpoint(output_dir: Path, identity: ModelIdentity) -> Path | None:
    """The newest complete checkpoint of any run under `output_dir` whose model identity matches."""
    candidates = []
    root = Path(output_dir)
    pattern = f"{RESUME_DIR}/{CHECKPOINT_PREFIX}*/{STATE_FILE}"
    for state_file in [*root.glob(pattern), *root.glob(f"*/{pattern}")]:
        try:
            if read_state(state_file.parent).identity == identity:
                candidates.append(state_file)
        except ValueError:
            logger.warning("Ignoring unreadable checkpoint state %s", state_file)
    if not candidates:
        return None
    return max(candidates, key=lambda path: path.stat().st_mtime_ns).parent


def prune(root: Path, keep_last_n: int) -> None:
    """Keep the newest `keep_last_n` resume checkpoints of this run (best/ and last/ live apart and stay)."""
    checkpoints = sorted(path for path in root.glob(f"{CHECKPOINT_PREFIX}*") if path.is_dir())
    for old in checkpoints[:-keep_last_n]:
        shutil.rmtree(old, ignore_errors=True)


def rng_state() -> dict:
    """Python, NumPy, torch and CUDA generator states as tensors and plain values (loadable weights_only)."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": numpy_state["state"]["pos"],
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_json(path: Path, payload: dict) -> None:
    """Atomic small-file write (temp file + rename), for result files other processes poll."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(payload, indent=2))
    staging.replace(path)
