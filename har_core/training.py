"""The single-process training loop: AdamW, warmup + cosine schedule, clipping, AMP, early stopping.

The loop keeps its state in a `Trainer` instance (no globals), so the distributed launcher of a later
issue can wrap the model and sampler without touching it.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from har_core.config import TrainingConfig
from har_core.dataset import ImageClassificationDataset, ImageRecord
from har_core.device import Precision, resolve_device, resolve_precision
from har_core.evaluation import collect_logits
from har_core.model import HarClipClassifier

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


EpochCallback = Callable[[EpochMetrics], None]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so CPU runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Fine-tunes a `HarClipClassifier` on manifest records and keeps best/last checkpoints."""

    def __init__(self, model: HarClipClassifier, config: TrainingConfig, output_dir: str | Path) -> None:
        self.config = config
        self.output_dir = Path(output_dir)
        self.device = resolve_device(config.device)
        self.precision: Precision = resolve_precision(config.precision, self.device)
        self.model = model.to(self.device)

    def fit(
        self,
        train_records: Sequence[ImageRecord],
        val_records: Sequence[ImageRecord],
        on_epoch_end: EpochCallback | None = None,
    ) -> TrainingResult:
        config = self.config
        seed_everything(config.seed)
        train_data = ImageClassificationDataset(
            train_records, self.model.preprocess_config, config.augmentation, config.seed
        )
        train_loader = self._loader(train_data, shuffle=True)
        val_loader = self._loader(ImageClassificationDataset(val_records, self.model.preprocess_config), False)
        parameters = [parameter for parameter in self.model.parameters() if parameter.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
        total_steps = config.epochs * len(train_loader)
        scheduler = get_cosine_schedule_with_warmup(
            optimizer, math.ceil(config.warmup_ratio * total_steps), total_steps
        )
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.use_grad_scaler)
        history: list[EpochMetrics] = []
        best_accuracy, best_epoch, stale_epochs, stopped_early = -1.0, 0, 0, False
        logger.info(
            "Training %d epochs on %d images (%s, %s)", config.epochs, len(train_data), self.device, self.precision.name
        )
        for epoch in range(1, config.epochs + 1):
            train_data.set_epoch(epoch)
            train_loss, train_accuracy = self._train_epoch(train_loader, optimizer, scheduler, scaler, epoch)
            val_loss, val_accuracy = self.evaluate(val_loader)
            metrics = EpochMetrics(
                epoch=epoch,
                train_loss=train_loss,
                train_accuracy=train_accuracy,
                val_loss=val_loss,
                val_accuracy=val_accuracy,
                learning_rate=scheduler.get_last_lr()[0],
            )
            history.append(metrics)
            logger.info("epoch %d: %s", epoch, metrics.model_dump_json(exclude={"epoch"}))
            if on_epoch_end is not None:
                on_epoch_end(metrics)
            self.model.save(self.output_dir / LAST_CHECKPOINT)
            if val_accuracy > best_accuracy:
                best_accuracy, best_epoch, stale_epochs = val_accuracy, epoch, 0
                self.model.save(self.output_dir / BEST_CHECKPOINT)
            else:
                stale_epochs += 1
            if config.early_stopping_patience is not None and stale_epochs >= config.early_stopping_patience:
                logger.info("Early stopping: val accuracy has not improved for %d epochs", stale_epochs)
                stopped_early = True
                break
        return TrainingResult(
            history=history,
            best_epoch=best_epoch,
            best_val_accuracy=best_accuracy,
            stopped_early=stopped_early,
            best_checkpoint=str(self.output_dir / BEST_CHECKPOINT),
            last_checkpoint=str(self.output_dir / LAST_CHECKPOINT),
            device=str(self.device),
            precision=self.precision.name,
        )

    def _loader(self, dataset: ImageClassificationDataset, shuffle: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.config.seed)
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            shuffle=shuffle,
            num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=generator,
        )

    def _train_epoch(self, loader, optimizer, scheduler, scaler, epoch: int) -> tuple[float, float]:
        self.model.train()
        total_loss, correct, seen = 0.0, 0, 0
        progress = tqdm(loader, desc=f"epoch {epoch}/{self.config.epochs}", unit="batch", leave=False)
        for pixel_values, labels in progress:
            pixel_values, labels = pixel_values.to(self.device), labels.to(self.device)
            with torch.autocast(self.device.type, self.precision.dtype, enabled=self.precision.dtype is not None):
                logits = self.model(pixel_values)
                loss = F.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if self.config.grad_clip_norm is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            total_loss += loss.item() * labels.numel()
            correct += (logits.argmax(dim=-1) == labels).sum().item()
            seen += labels.numel()
            progress.set_postfix(loss=f"{total_loss / seen:.4f}")
        return total_loss / seen, correct / seen

    def evaluate(self, loader: DataLoader) -> tuple[float, float]:
        """Mean cross-entropy and accuracy over a loader."""
        logits, labels = collect_logits(self.model, loader, self.device, self.precision.dtype)
        if not len(labels):
            return 0.0, 0.0
        return F.cross_entropy(logits, labels).item(), (logits.argmax(dim=-1) == labels).float().mean().item()


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
