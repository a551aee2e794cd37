"""Reproduce a training run: what differs from its recorded provenance now, and how the rebuild compares.

ZenML-free: `cli/reproduce_command.py` reads the records from the store and runs the pipeline; this module decides.
Bit for bit is promised only where it holds: CPU, one process, the same CPU model and flags and torch threads.
Elsewhere (DDP, GPU, another CPU) metrics must agree within `ACCURACY_TOLERANCE` / `LOSS_TOLERANCE`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from har_core.config import DataConfig, TrainingPipelineParameters
from har_core.data.scan import DataCheckError, plan_image_folder
from har_core.runtime.hashing import file_sha256
from har_core.runtime.provenance import CodeVersion, DataVersion, LockVersion, MachineInfo, TrainingProvenance

# Outside bit-for-bit conditions: accuracies and F1 scores (fractions) within 0.02, losses within 5 % relative.
ACCURACY_TOLERANCE = 0.02
LOSS_TOLERANCE = 0.05
MAX_NAMED_FILES = 5


def pinned_parameters(
    provenance: TrainingProvenance, schema: type[TrainingPipelineParameters] = TrainingPipelineParameters
) -> TrainingPipelineParameters:
    """The recorded config (validated by its pipeline's `schema`), with a moving data reference (a DVC branch, the
    Hub's `main`) fixed at the commit the original run resolved it to."""
    parameters = schema.model_validate(provenance.parameters)
    data, recorded = parameters.data, provenance.data
    if data.source == "dvc" and recorded.dvc_commit:
        data = data.model_copy(update={"dvc": data.dvc.model_copy(update={"rev": recorded.dvc_commit})})
    if data.source == "huggingface" and recorded.hf_commit:
        data = data.model_copy(update={"hf_revision": recorded.hf_commit})
    return parameters.model_copy(update={"data": data})


def code_drift(recorded: CodeVersion, current: CodeVersion) -> str | None:
    """Why the checked-out code is not the recorded code, with the git command that would check it out."""
    if recorded.commit is None:
        return None if current.commit is None else "the original run recorded no git commit"
    checkout = f"`git switch --detach {recorded.commit}`"
    if current.commit != recorded.commit:
        return f"the code is at commit {current.commit or 'none'}, the run used {recorded.commit} ({checkout})"
    if recorded.dirty != current.dirty or recorded.diff_sha256 != current.diff_sha256:
        if not recorded.dirty:
            return "the checkout has uncommitted changes the run did not have (`git stash` sets them aside)"
        return (
            f"the checkout's uncommitted changes are not the run's (diff sha256 {str(current.diff_sha256)[:12]} "
            f"vs {str(recorded.diff_sha256)[:12]}; the run's diff is the artifact {recorded.diff_artifact}, "
            "apply it to a clean checkout of that commit with `git apply`)"
        )
    return None


def lock_drift(recorded_file: str | None, recorded_sha256: str | None, root: Path) -> str | None:
    """Why the lock in this checkout is not the one the run recorded."""
    if recorded_file is None:
        return None
    path = root / recorded_file
    if not path.is_file():
        return f"the lock {recorded_file} the run recorded is not in this checkout"
    current = file_sha256(path)
    if current != recorded_sha256:
        return f"the lock {recorded_file} changed (sha256 {current[:12]}, the run had {str(recorded_sha256)[:12]})"
    return None


def environment_drift(recorded: tuple[str, ...], current: tuple[str, ...]) -> str | None:
    """Why the installed packages are not the run's: both sides as the run recorded them, the packages whose
    versions are not the lock's ("numpy 2.4.5 (lock 2.4.6)"); every difference named."""
    if recorded == current:
        return None
    parts = [f"installed now {entry}" for entry in current if entry not in recorded]
    parts += [f"the run had {entry}" for entry in recorded if entry not in current]
    return f"the environment is not the run's ({'; '.join(parts)})"


def data_drift(data: DataConfig, folder: Path, recorded_files: Mapping[str, str], recorded: DataVersion) -> str | None:
    """Why the images under `folder` are not the recorded ones, naming the files that changed, appeared or went."""
    try:
        plan = plan_image_folder(folder, data)
    except DataCheckError as error:
        return f"the data no longer passes its check ({str(error).splitlines()[0]})"
    root = Path(plan.root)
    current = {
        Path(image.path).resolve().relative_to(root).as_posix(): image.sha256
        for images in plan.splits.values()
        for image in images
    }
    changed = sorted(path for path in current.keys() & recorded_files.keys() if current[path] != recorded_files[path])
    added = sorted(current.keys() - recorded_files.keys())
    removed = sorted(recorded_files.keys() - current.keys())
    parts = [
        f"{len(paths)} {what} ({_named(paths)})"
        for what, paths in (("changed", changed), ("added", added), ("removed", removed))
        if paths
    ]
    if parts:
        return f"the data under {folder} differs: " + ", ".join(parts)
    return None


def _named(paths: list[str]) -> str:
    shown = ", ".join(paths[:MAX_NAMED_FILES])
    return shown + (f" and {len(paths) - MAX_NAMED_FILES} more" if len(paths) > MAX_NAMED_FILES else "")


def refusal(run: str, drift: list[str]) -> str:
    """The one paragraph `--reproduce` stops with."""
    return (
        f"Not reproducing run {run!r}: " + "; ".join(drift) + ". A reproduction runs the recorded code and lock, with "
        "the installed packages as they were, on the recorded data; restore them (`make install` syncs .venv to its "
        "lock), or re-run with --allow-drift to train anyway (what differed is then recorded on the new model version, "
        "and the comparison uses the tolerances, not bit for bit)."
    )


@dataclass(frozen=True)
class Comparison:
    """The rebuild against the original: weights, metrics, and which standard applied."""

    bit_for_bit: bool  # the standard: exact equality (True) or the tolerances
    why: str
    weights_identical: bool
    metrics: dict[str, tuple[float, float]]  # name -> (original, reproduced)
    mismatched: list[str]

    @property
    def reproduced(self) -> bool:
        return not self.mismatched and (self.weights_identical or not self.bit_for_bit)

    def lines(self) -> list[str]:
        identical = sum(1 for original, new in self.metrics.values() if original == new)
        verdict = "REPRODUCED" if self.reproduced else "NOT REPRODUCED"
        standard = "bit for bit" if self.bit_for_bit else "within tolerance"
        lines = [
            f"Standard: {standard} ({self.why}).",
            f"Weights sha256: {'identical' if self.weights_identical else 'different'}.",
            f"Metrics: {identical} of {len(self.metrics)} identical bit for bit"
            + (f"; outside the standard: {', '.join(self.mismatched)}" if self.mismatched else "")
            + ".",
        ]
        return lines + [f"{verdict} {standard}."]


def expected_standard(
    original: MachineInfo, reproduced: MachineInfo, environments: tuple[LockVersion, LockVersion] | None = None
) -> tuple[bool, str]:
    """Bit for bit only on CPU in one process with the same CPU model, flags and torch threads, in the same
    environment (the lock and what differs from it, as each run recorded them); else tolerances."""
    reasons = []
    if environments is not None:
        before, after = environments
        if before.sha256 != after.sha256 or before.differs != after.differs:
            reasons.append(environment_drift(before.differs, after.differs) or f"another lock ({after.file})")
    for machine in (original, reproduced):
        if not machine.device.startswith("cpu"):
            reasons.append(f"trained on {machine.device}")
        if machine.world_size > 1:
            reasons.append(f"{machine.world_size} processes ({machine.strategy})")
    if original.cpu_model != reproduced.cpu_model or original.cpu_flags != reproduced.cpu_flags:
        reasons.append(f"another CPU ({reproduced.cpu_model} vs {original.cpu_model} or other flags)")
    if original.torch_threads != reproduced.torch_threads:
        reasons.append(f"{reproduced.torch_threads} torch threads vs {original.torch_threads}")
    if reasons:
        tolerance = f"accuracy and F1 within {ACCURACY_TOLERANCE}, losses within {LOSS_TOLERANCE:.0%}"
        return False, f"{'; '.join(dict.fromkeys(reasons))}: {tolerance}"
    return True, (f"CPU, one process, {original.cpu_model}, {original.torch_threads} torch threads on both runs")


def compare(
    original: Mapping[str, float],
    reproduced: Mapping[str, float],
    weights_identical: bool,
    standard: tuple[bool, str],
) -> Comparison:
    """Every metric the original has, compared exactly (bit for bit) or within the tolerances."""
    bit_for_bit, why = standard
    metrics = {name: (original[name], reproduced.get(name, math.nan)) for name in original}
    mismatched = [name for name, (before, after) in metrics.items() if not _agrees(name, before, after, bit_for_bit)]
    return Comparison(bit_for_bit, why, weights_identical, metrics, mismatched)


def _agrees(name: str, before: float, after: float, exact: bool) -> bool:
    if exact:
        return before == after
    if "loss" in name:
        return math.isclose(before, after, rel_tol=LOSS_TOLERANCE)
    return abs(before - after) <= ACCURACY_TOLERANCE
