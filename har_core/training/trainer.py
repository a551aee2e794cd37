"""The training loop: AdamW, warmup + cosine schedule, clipping, AMP, early stopping, resume checkpoints.

One loop for every world size: `har_core.training.distributed` supplies the process group, sampler shards and model
wrapping (DDP, FSDP2); `har_core.training.checkpoint` saves and restores the loop's full state.
"""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from har_core.config import TrainingConfig
from har_core.data.dataset import ImageClassificationDataset, ImageRecord
from har_core.data.decoded_cache import DecodedImages, decoded_images
from har_core.evaluation.metrics import collect_logits
from har_core.model.classifier import HarClipClassifier
from har_core.runtime.memory import return_large_frees_to_the_os
from har_core.training import distributed
from har_core.training.checkpoint import ModelIdentity, TrainerState, load_checkpoint, resolve_resume, save_checkpoint
from har_core.training.precision import Precision, resolve_precision

logger = logging.getLogger(__name__)

BEST_CHECKPOINT = "best"
LAST_CHECKPOINT = "last"


class EpochMetrics(BaseModel):
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    learning_rate: float


class TrainingResult(BaseModel):
    """What happened in a run: per-epoch metrics, the best epoch and where its checkpoint lives."""

    history: list[EpochMetrics]
    best_epoch: int
    best_val_accuracy: float
    stopped_early: bool
    best_checkpoint: str
    last_checkpoint: str
    device: str
    precision: str
    world_size: int = 1
    strategy: str = "none"
    resumed_from: str | None = None


EpochCallback = Callable[[EpochMetrics], None]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so CPU runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainingParts:
    """What a checkpoint saves and restores: the model (sharded in place under FSDP), optimiser, schedule, scaler."""

    model: HarClipClassifier
    module: torch.nn.Module  # what the loop calls: the model, its DDP wrapper, or a compiled version of either
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler


class Trainer:
    """Fine-tunes a `HarClipClassifier` on manifest records and keeps best/last and resume checkpoints.

    The same loop runs in one process or as one of N torchrun workers (`training.distributed`): each rank reads
    its shard of every global batch, metrics are summed over ranks, and only rank 0 logs, shows progress, calls
    `on_epoch_end` and writes checkpoints.
    """

    def __init__(self, model: HarClipClassifier, config: TrainingConfig, output_dir: str | Path) -> None:
        self.config = config
        self.output_dir = Path(output_dir)
        if config.distributed.strategy == "fsdp":
            # FSDP gathers and frees each layer's full parameters every step; glibc would keep those freed blocks.
            # Only here: every large allocation, activations included, then costs an mmap of fresh zeroed pages (on
            # CPU the Trainer ran at 0.73x a raw loop with it, 0.97x without:
            # benchmarks/training/training_bench.py --only loop).
            return_large_frees_to_the_os()
        self.context, self.device = distributed.setup(config.distributed, config.device)
        try:
            self.batch_size = distributed.per_rank_batch_size(config.batch_size, self.context.world_size)
            self.precision: Precision = resolve_precision(config.precision, self.device)
            self.identity = ModelIdentity.of(model)
            self.resume_checkpoint = resolve_resume(config.resume_from, config.output_dir, self.identity)
        except BaseException:
            self.context.close()
            raise
        # Under FSDP the model is sharded onto the device from rank 0's weights (`distributed.shard_from_rank0`):
        # ranks other than 0 may hold a meta-device skeleton, and rank 0's full copy never goes to the device.
        self.model = model if self.context.strategy == "fsdp" else model.to(self.device)
        self.step_seconds: list[float] = []  # wall time of each optimiser step, data loading included (benchmarks)
        self.state_bytes: dict[str, int] = {}  # this rank's parameters, gradients, optimizer state (benchmarks)

    def fit(
        self,
        train_records: Sequence[ImageRecord],
        val_records: Sequence[ImageRecord],
        on_epoch_end: EpochCallback | None = None,
    ) -> TrainingResult:
        """Train; the process group (if this call created it) is destroyed on success and on failure."""
        try:
            return self._fit(train_records, val_records, on_epoch_end)
        finally:
            self.context.close()

    def _fit(self, train_records, val_records, on_epoch_end) -> TrainingResult:
        config, context = self.config, self.context
        seed_everything(config.seed)
        preprocess_config = self.model.preprocess_config
        train_data = ImageClassificationDataset(
            train_records, preprocess_config, config.augmentation, config.seed, self._decoded(train_records)
        )
        sampler = distributed.train_sampler(len(train_data), context, config.seed)
        train_loader = self._loader(train_data, sampler)
        val_data = ImageClassificationDataset(val_records, preprocess_config, decoded=self._decoded(val_records))
        val_loader = self._loader(val_data, distributed.eval_sampler(len(val_data), context))
        parts = self._build_parts(steps_per_epoch=math.ceil(sampler.num_samples / self.batch_size))
        state = TrainerState(identity=self.identity, strategy=context.strategy, world_size=context.world_size)
        if self.resume_checkpoint is not None:
            state = load_checkpoint(self.resume_checkpoint, parts, context)
            state = state.model_copy(update={"strategy": context.strategy, "world_size": context.world_size})
            self._carry_over_best(self.resume_checkpoint)
        history = [EpochMetrics(**metrics) for metrics in state.history]
        if context.is_main:
            logger.info(
                "Training %d epochs on %d images (%s, %s, %s x %d, global batch %d)",
                config.epochs,
                len(train_data),
                self.device,
                self.precision.name,
                context.strategy,
                context.world_size,
                config.batch_size,
            )
        stopped_early = self._early_stop(state)
        while state.epoch <= config.epochs and not stopped_early:
            epoch = state.epoch
            sampler.set_epoch(epoch)
            sampler.skip(state.step_in_epoch * self.batch_size)
            train_data.set_epoch(epoch)
            state = self._train_epoch(train_loader, parts, state)
            loss_sum, correct, seen = distributed.all_reduce_sum(state.running, context, self.device)
            val_loss, val_accuracy = self.evaluate(val_loader, len(val_data))
            metrics = EpochMetrics(
                epoch=epoch,
                train_loss=loss_sum / max(seen, 1),
                train_accuracy=correct / max(seen, 1),
                val_loss=val_loss,
                val_accuracy=val_accuracy,
                learning_rate=parts.scheduler.get_last_lr()[0],
            )
            history.append(metrics)
            improved = val_accuracy > state.best_accuracy
            state = state.model_copy(
                update={
                    "epoch": epoch + 1,
                    "step_in_epoch": 0,
                    "running": (0.0, 0.0, 0.0),
                    "history": [item.model_dump() for item in history],
                    "best_accuracy": val_accuracy if improved else state.best_accuracy,
                    "best_epoch": epoch if improved else state.best_epoch,
                    "stale_epochs": 0 if improved else state.stale_epochs + 1,
                }
            )
            if context.is_main:
                logger.info("epoch %d: %s", epoch, metrics.model_dump_json(exclude={"epoch"}))
                if on_epoch_end is not None:
                    on_epoch_end(metrics)
            self._save_model(LAST_CHECKPOINT)
            if improved:
                self._save_model(BEST_CHECKPOINT)
            save_checkpoint(self.output_dir, state, parts, context, config.keep_last_n)
            stopped_early = self._early_stop(state)
        self.state_bytes = distributed.state_bytes(self.model, parts.optimizer)
        return TrainingResult(
            history=history,
            best_epoch=state.best_epoch,
            best_val_accuracy=state.best_accuracy,
            stopped_early=stopped_early,
            best_checkpoint=str(self.output_dir / BEST_CHECKPOINT),
            last_checkpoint=str(self.output_dir / LAST_CHECKPOINT),
            device=str(self.device),
            precision=self.precision.name,
            world_size=context.world_size,
            strategy=context.strategy,
            resumed_from=str(self.resume_checkpoint) if self.resume_checkpoint else None,
        )

    def _decoded(self, records: Sequence[ImageRecord]) -> DecodedImages | None:
        """The records decoded once (`training.decoded_cache`), shared by the processes of this machine."""
        if not self.config.decoded_cache:
            return None
        return decoded_images(
            records,
            self.model.preprocess_config,
            max_bytes=int(self.config.decoded_cache_max_gib * 2**30),
            # Ranks of this machine wait while one builds: it decodes with their loader workers' share of the CPUs.
            threads=min(os.cpu_count() or 1, max(1, self.config.num_workers) * self.context.world_size),
        )

    def _carry_over_best(self, checkpoint: Path) -> None:
        """A resumed run writes to a new run folder; start it with the interrupted run's best model."""
        previous_best = Path(checkpoint).parent.parent / BEST_CHECKPOINT
        target = self.output_dir / BEST_CHECKPOINT
        if self.context.is_main and previous_best.is_dir() and previous_best.resolve() != target.resolve():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(previous_best, target)
        self.context.barrier()

    def _early_stop(self, state: TrainerState) -> bool:
        patience = self.config.early_stopping_patience
        if patience is not None and state.stale_epochs >= patience:
            if self.context.is_main:
                logger.info("Early stopping: val accuracy has not improved for %d epochs", state.stale_epochs)
            return True
        return False

    def _build_parts(self, steps_per_epoch: int) -> TrainingParts:
        config = self.config
        module = distributed.wrap_model(self.model, self.context, self.device, self.precision)
        parameters = [parameter for parameter in self.model.parameters() if parameter.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
        total_steps = config.epochs * steps_per_epoch
        scheduler = get_cosine_schedule_with_warmup(
            optimizer, math.ceil(config.warmup_ratio * total_steps), total_steps
        )
        scaler = distributed.grad_scaler(self.context, self.device, self.precision)
        if config.compile:
            module = torch.compile(module)
        return TrainingParts(self.model, module, optimizer, scheduler, scaler)

    def _loader(self, dataset: ImageClassificationDataset, sampler) -> DataLoader:
        generator = torch.Generator().manual_seed(self.config.seed)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=generator,
        )

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """Autocast's dtype, or None: FSDP casts through its mixed-precision policy instead (`shard_clip`)."""
        return self.precision.dtype if self.context.strategy != "fsdp" else None

    def _autocast(self):
        dtype = self.autocast_dtype
        return torch.autocast(self.device.type, dtype, enabled=dtype is not None)

    def _train_epoch(self, loader: DataLoader, parts: TrainingParts, state: TrainerState) -> TrainerState:
        config = self.config
        parts.module.train()
        total_loss, correct, seen = state.running if self.context.is_main else (0.0, 0.0, 0.0)
        progress = tqdm(
            loader,
            desc=f"epoch {state.epoch}/{config.epochs}",
            unit="batch",
            leave=False,
            disable=not self.context.is_main,
        )
        tick = time.perf_counter()
        for pixel_values, labels in progress:
            pixel_values, labels = pixel_values.to(self.device), labels.to(self.device)
            with self._autocast():
                logits = parts.module(pixel_values)
                loss = F.cross_entropy(logits.float(), labels)
            parts.optimizer.zero_grad(set_to_none=True)
            parts.scaler.scale(loss).backward()
            if config.grad_clip_norm is not None:
                parts.scaler.unscale_(parts.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip_norm)
            parts.scaler.step(parts.optimizer)
            parts.scaler.update()
            parts.scheduler.step()
            total_loss += loss.item() * labels.numel()
            correct += (logits.argmax(dim=-1) == labels).sum().item()
            seen += labels.numel()
            progress.set_postfix(loss=f"{total_loss / seen:.4f}")
            self.step_seconds.append(time.perf_counter() - tick)
            state = state.model_copy(
                update={"step_in_epoch": state.step_in_epoch + 1, "global_step": state.global_step + 1}
            )
            every = config.checkpoint_every_n_steps
            if every is not None and state.global_step % every == 0:
                running = distributed.all_reduce_sum((total_loss, correct, seen), self.context, self.device)
                save_checkpoint(
                    self.output_dir,
                    state.model_copy(update={"running": tuple(running)}),
                    parts,
                    self.context,
                    config.keep_last_n,
                )
            tick = time.perf_counter()
        return state.model_copy(update={"running": (total_loss, correct, seen)})

    def _save_model(self, name: str) -> None:
        """Write a consolidated model in the `HarClipClassifier.save` layout (collective under FSDP)."""
        state = distributed.full_model_state(self.model, self.context)
        if self.context.is_main:
            target = self.output_dir / name
            if target.exists():
                shutil.rmtree(target)
            self.model.save(target, state=state if self.context.strategy == "fsdp" else None)
        self.context.barrier()

    def evaluate(self, loader: DataLoader, dataset_size: int | None = None) -> tuple[float, float]:
        """Mean cross-entropy and accuracy over a loader, summed over ranks (equal to the single-process figure)."""
        logits, labels = collect_logits(self.model, loader, self.device, self.autocast_dtype)
        if dataset_size is not None:
            mask = distributed.eval_mask(dataset_size, self.context, len(labels))
            logits, labels = logits[mask], labels[mask]
        loss_sum = F.cross_entropy(logits, labels, reduction="sum").item() if len(labels) else 0.0
        correct = (logits.argmax(dim=-1) == labels).sum().item()
        loss_sum, correct, count = distributed.all_reduce_sum(
            (loss_sum, correct, len(labels)), self.context, self.device
        )
        if not count:
            return 0.0, 0.0
        return loss_sum / count, correct / count


def train_classifier(
    model: HarClipClassifier,
    train_records: Sequence[ImageRecord],
    val_records: Sequence[ImageRecord],
    config: TrainingConfig,
    output_dir: str | Path | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> tuple[HarClipClassifier, TrainingResult]:
    """Train, then return the best-epoch model (reloaded from its checkpoint) and the run's record."""
    trainer = Trainer(model, config, output_dir or config.output_dir)
    result = trainer.fit(train_records, val_records, on_epoch_end)
    best = HarClipClassifier.load(result.best_checkpoint)
    return best, result
