"""Shared set-up for the distributed tests: a tiny manifest and configs small enough for 2 CPU cores."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import torch

from har_core.config import DistributedConfig, SplitConfig, TrainingConfig
from har_core.data.dataset import DatasetManifest
from har_core.data.split import stratified_split
from har_core.runtime.labels import HAR_LABELS
from tests.har_core.data.folders import image_records


def small_manifest(synthetic_root: Path) -> DatasetManifest:
    """60 train and 30 val images (both even, so 1 and 2 processes see the same global batches)."""
    train, val, test = stratified_split(
        image_records(synthetic_root, HAR_LABELS), SplitConfig(train=0.5, val=0.25, test=0.25)
    )
    return DatasetManifest(labels=list(HAR_LABELS), root=str(synthetic_root), train=train, val=val, test=test)


def training_config(output_dir: Path, strategy: str = "none", nproc: int = 1, **overrides) -> TrainingConfig:
    values = dict(
        epochs=2,
        batch_size=8,
        learning_rate=2e-3,
        weight_decay=0.01,
        num_workers=0,
        device="cpu",
        augmentation="light",
        early_stopping_patience=None,
        output_dir=output_dir,
        distributed=DistributedConfig(strategy=strategy, nproc_per_node=nproc),
    )
    return TrainingConfig(**(values | overrides))


def weights(model) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[name].float() - b[name].float()).abs().max().item() for name in a)


def relative_difference(a: dict, b: dict, base: dict) -> float:
    """|a - b| over how far training moved the weights from `base`: 0 means identical updates."""
    moved = sum(((a[name].float() - base[name].float()) ** 2).sum().item() for name in a) ** 0.5
    gap = sum(((a[name].float() - b[name].float()) ** 2).sum().item() for name in a) ** 0.5
    return gap / moved


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains `text` (checks that no worker outlived a launch).

    Under pytest-xdist only this worker's processes count: the other worker may be training at the same moment,
    and its processes (orphans included) carry its own `PYTEST_XDIST_WORKER` in their environment."""
    found = []
    ours = os.environ.get("PYTEST_XDIST_WORKER")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if text not in cmdline:
                continue
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        worker = next(
            (item.split(b"=", 1)[1].decode() for item in environment if item.startswith(b"PYTEST_XDIST_WORKER=")), None
        )
        if ours is None or worker in (None, ours):
            found.append(int(entry.name))
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants, from /proc (torchrun and its workers sit in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        queue.extend(children.get(current, []))
    return tree


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants."""
    for member in process_tree(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
