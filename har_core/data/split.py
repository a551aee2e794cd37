"""Stratified, seeded splits; identical images (same group key) always land in the same split.

Torch-free, so the pre-run data check in run.py plans the same split the `load_data` step will make.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Protocol, TypeVar

from har_core.config import SplitConfig


class Labelled(Protocol):
    @property
    def label(self) -> int: ...


RecordT = TypeVar("RecordT", bound=Labelled)


def stratified_split(
    records: Sequence[RecordT], config: SplitConfig, groups: Sequence[Hashable] | None = None
) -> tuple[list[RecordT], list[RecordT], list[RecordT]]:
    """Split keeping each label's share in every split; the same seed gives the same split.

    Records that share a `groups` key (e.g. a content hash) go to the same split, so a duplicated image cannot
    be trained on and tested on at once.
    """
    heads, members = _group(records, groups)
    train_count = round(len(heads) * config.train)
    val_count = round(len(heads) * config.val)  # integer counts: float fractions would round unpredictably
    train, rest = _two_way(records, heads, train_count, config.seed)
    val, test = _two_way(records, rest, val_count, config.seed)
    return tuple([records[index] for head in part for index in members[head]] for part in (train, val, test))


def carve(
    records: Sequence[RecordT], fraction: float, seed: int, groups: Sequence[Hashable] | None = None
) -> tuple[list[RecordT], list[RecordT]]:
    """Split off `fraction` of `records` (stratified, seeded, groups kept whole): (kept, carved)."""
    heads, members = _group(records, groups)
    kept, carved = _two_way(records, heads, round(len(heads) * (1 - fraction)), seed)
    return tuple([records[index] for head in part for index in members[head]] for part in (kept, carved))


def _group(records: Sequence[Labelled], groups: Sequence[Hashable] | None) -> tuple[list[int], dict[int, list[int]]]:
    """The index of each group's first record, and the indices of every group's records under it."""
    keys = range(len(records)) if groups is None else groups
    first: dict[Hashable, int] = {}
    members: dict[int, list[int]] = {}
    for index, key in enumerate(keys):
        members.setdefault(first.setdefault(key, index), []).append(index)
    return list(members), members


def _two_way(records: Sequence[Labelled], heads: list[int], first_count: int, seed: int) -> tuple[list, list]:
    from sklearn.model_selection import train_test_split  # deferred: seconds to import, only needed to split

    try:
        return train_test_split(
            heads, train_size=first_count, stratify=[records[index].label for index in heads], random_state=seed
        )
    except ValueError as error:
        raise ValueError(
            f"Cannot split {len(records)} images stratified by label ({error}). "
            "Each label needs enough images for every split; add images or change data.split."
        ) from error
