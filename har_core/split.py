"""Stratified, seeded train/val/test split."""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.model_selection import train_test_split

from har_core.config import SplitConfig
from har_core.dataset import ImageRecord


def stratified_split(
    records: Sequence[ImageRecord], config: SplitConfig
) -> tuple[list[ImageRecord], list[ImageRecord], list[ImageRecord]]:
    """Split keeping each label's share in every split; the same seed gives the same split."""
    records = list(records)
    labels = [record.label for record in records]
    train_count = round(len(records) * config.train)
    val_count = round(len(records) * config.val)  # integer counts: float fractions would round unpredictably
    try:
        train, rest = train_test_split(records, train_size=train_count, stratify=labels, random_state=config.seed)
        rest_labels = [record.label for record in rest]
        val, test = train_test_split(rest, train_size=val_count, stratify=rest_labels, random_state=config.seed)
    except ValueError as error:
        raise ValueError(
            f"Cannot split {len(records)} images stratified by label ({error}). "
            "Each label needs enough images for every split; add images or change data.split."
        ) from error
    return train, val, test
