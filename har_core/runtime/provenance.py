"""How a trained model was made: code, locked dependencies, config, stack, data, seeds, machine and library versions.

The train step records it on the model version and in the model card (so every export and the Bento carry it);
`run.py --reproduce` reads it back to re-run the same config at the same data version and to say what differs.
Torch-free, like the rest of the runtime: the card is read wherever a model is served.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

PROVENANCE_FORMAT = 1


class _Record(BaseModel):
    # Frozen; unknown keys ignored, so a record written by newer code still loads in an older card reader.
    model_config = ConfigDict(frozen=True, extra="ignore")


class CodeVersion(_Record):
    """The commit the code ran from; `dirty` when the checkout had changes, whose diff is stored as an artifact."""

    commit: str | None = None  # None outside a git checkout
    dirty: bool = False
    diff_sha256: str | None = None  # of the stored diff text (tracked changes and untracked files' hashes)
    diff_artifact: str | None = None  # the ZenML artifact version id holding that diff


class LockVersion(_Record):
    """The lock file of this environment's extra set, and where the installed packages differ from its pins."""

    file: str | None = None  # locks/cpu-dev-cluster.txt
    sha256: str | None = None
    differs: tuple[str, ...] = ()  # "numpy 2.3.1 (lock 2.3.4)": installed versions that are not the locked ones


class DataVersion(_Record):
    """Which data trained the model: the manifest's fingerprint (every file's sha256 and the splits) and the
    source's own version (a DVC commit and md5, a Hub commit, a git commit of the folder's repository)."""

    source: str
    revision: str = ""
    fingerprint: str
    images: int
    folder: str | None = None  # data.root of a folder source
    git_commit: str | None = None  # the commit of the git repository holding a folder source, if any
    git_dirty: bool | None = None
    dvc_commit: str | None = None
    dvc_md5: str | None = None
    hf_commit: str | None = None


class MachineInfo(_Record):
    """Bit-for-bit equal training needs the same kind of CPU (model and flags), threads, device and process count."""

    cpu_model: str
    cpu_flags: str
    cpu_count: int
    torch_threads: int
    platform: str
    device: str  # where training ran: cpu, or cuda with the GPU's name
    world_size: int = 1
    strategy: str = "none"


class StackInfo(_Record):
    name: str
    components: dict[str, str]  # component type -> "name (flavor)"


class ReproductionOf(_Record):
    """Set on a reproduction: the run it re-made and what differed when it started (with --allow-drift)."""

    run: str
    model_version: str | None = None
    drift: tuple[str, ...] = ()


class TrainingProvenance(_Record):
    format_version: int = PROVENANCE_FORMAT
    run: str  # the pipeline run that trained the model
    code: CodeVersion
    lock: LockVersion
    parameters: dict[str, Any]  # the full validated `parameters:` block of the run config
    stack: StackInfo
    data: DataVersion
    seeds: dict[str, int]
    machine: MachineInfo
    versions: dict[str, str]  # python, torch, transformers, onnxruntime, zenml (and CUDA when there is one)
    reproduces: ReproductionOf | None = None

    def summary_rows(self) -> list[tuple[str, str]]:
        """(what, value) rows for a page or a printout: the facts that decide whether a rebuild is exact."""
        code = self.code.commit or "not a git checkout"
        if self.code.dirty:
            code += f" + uncommitted changes (diff sha256 {str(self.code.diff_sha256)[:12]})"
        data = f"{self.data.source} {self.data.revision or ''} fingerprint {self.data.fingerprint[:16]}".strip()
        components = ", ".join(f"{kind}: {value}" for kind, value in sorted(self.stack.components.items()))
        rows = [
            ("run", self.run),
            ("code", code),
            ("lock", f"{self.lock.file} sha256 {str(self.lock.sha256)[:16]}" if self.lock.file else "no lock file"),
            ("installed vs lock", f"{len(self.lock.differs)} packages differ" if self.lock.differs else "as locked"),
            ("data", f"{data} ({self.data.images} images)"),
            ("seeds", ", ".join(f"{name} {value}" for name, value in sorted(self.seeds.items()))),
            ("stack", f"{self.stack.name} ({components})"),
            ("machine", f"{self.machine.cpu_model}, {self.machine.cpu_count} CPUs, {self.machine.platform}"),
            (
                "training process",
                f"{self.machine.device}, {self.machine.world_size} process(es) ({self.machine.strategy}), "
                f"{self.machine.torch_threads} torch threads",
            ),
            ("versions", ", ".join(f"{name} {value}" for name, value in sorted(self.versions.items()))),
        ]
        if self.data.git_commit:
            rows.insert(5, ("data git commit", self.data.git_commit + (" (dirty)" if self.data.git_dirty else "")))
        if self.reproduces is not None:
            drift = "; ".join(self.reproduces.drift) or "nothing differed"
            rows.append(("reproduces", f"{self.reproduces.run} (drift: {drift})"))
        return rows
