"""What a lock was made from: the extra sets we lock, and one hash of the dependency declarations each lock covers.

A lock's header stores that hash; `python -m locks check` compares it with pyproject.toml as it is now, so CI sees a
stale lock without resolving anything. Standard library only: the check runs before any virtualenv exists.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = PROJECT_ROOT / "pyproject.toml"
LOCK_DIR = PROJECT_ROOT / "locks"
UV_LOCK = LOCK_DIR / "uv.txt"  # the installer itself, pinned with hashes: `make install` bootstraps it with pip

HEADER_KEY = "# declarations-sha256: "
_HASH_LINE = re.compile(r"^# declarations-sha256: ([0-9a-f]{64})$", re.MULTILINE)
SUPPORTED_PYTHONS = ("3.11", "3.12", "3.13")


@dataclass(frozen=True)
class Target:
    """One interpreter and platform a lock is resolved for: markers and wheel tags are evaluated for it."""

    python: str  # "3.12"
    system: str  # sys.platform: "linux" or "darwin"
    machine: str  # platform.machine(): "x86_64", "aarch64", "arm64"

    @property
    def name(self) -> str:
        return f"py{self.python.replace('.', '')}-{self.system}-{self.machine}"

    @property
    def uv_platform(self) -> str:
        """uv's --python-platform (manylinux_2_28: torch's own floor; macOS 14: torch's arm64 wheels)."""
        if self.system == "darwin":
            return "aarch64-apple-darwin"
        return f"{self.machine}-manylinux_2_28"

    @property
    def description(self) -> str:
        system = {"linux": "Linux", "darwin": "macOS"}[self.system]
        return f"CPython {self.python} on {system} {self.machine} ({self.uv_platform})"


@dataclass(frozen=True)
class LockSpec:
    """One supported install: its extras, the target it is resolved for, and what is left out of the resolve."""

    extras: tuple[str, ...]
    target: Target
    unlocked: tuple[str, ...] = ()  # project names excluded from the resolve (installed after it, see README)
    cpu_torch: bool = False  # True: pins PyTorch's CPU build (+cpu, its own index); False: PyPI's build

    @property
    def name(self) -> str:
        return f"{'-'.join(self.extras)}-{self.target.name}"

    @property
    def path(self) -> Path:
        return LOCK_DIR / f"{self.name}.txt"


def _cells() -> list[LockSpec]:
    """The support table (docs/install.md): every Python x {Linux x86_64 cpu and gpu, Linux aarch64 cpu, macOS arm64
    cpu}. Linux CPU cells take PyTorch's CPU build (PyPI's Linux torch is the CUDA one, several GB); macOS has only
    PyPI's build, which is CPU-only."""
    cells = []
    for python in SUPPORTED_PYTHONS:
        cells.append(LockSpec(("cpu", "dev", "cluster"), Target(python, "linux", "x86_64"), cpu_torch=True))
        cells.append(LockSpec(("gpu", "dev", "cluster"), Target(python, "linux", "x86_64"), unlocked=UNLOCKED_GPU))
        cells.append(LockSpec(("cpu", "dev", "cluster"), Target(python, "linux", "aarch64"), cpu_torch=True))
        cells.append(LockSpec(("cpu", "dev", "cluster"), Target(python, "darwin", "arm64")))
    return cells


# TensorRT: PyPI carries only stubs of its native packages (tensorrt-cu13-libs and -bindings download the real
# wheels from NVIDIA's own index while they build), so no resolve from PyPI alone can pin or hash them. The gpu
# locks leave the TensorRT package out; `make install` adds the gpu extra's exact pin with pip after the lock.
UNLOCKED_GPU = ("tensorrt-cu13",)
LOCKS = {spec.name: spec for spec in _cells()}


def lock_for(extras: str | tuple[str, ...], target: Target) -> LockSpec | None:
    """The lock of `extras` ("cpu,dev,cluster") for `target`, None where the support table has none."""
    names = tuple(extras.split(",")) if isinstance(extras, str) else tuple(extras)
    return LOCKS.get(LockSpec(names, target).name)


def current_target() -> Target:
    """The interpreter and platform running this code."""
    import platform
    import sys

    return Target(f"{sys.version_info.major}.{sys.version_info.minor}", sys.platform, platform.machine())


def project_table(pyproject: Path = PYPROJECT) -> dict:
    return tomllib.loads(pyproject.read_text())["project"]


def requirement_name(requirement: str) -> str:
    """The normalised project name of a PEP 508 requirement string (`zenml[server]==0.98.0` -> `zenml`)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def unlocked_requirements(spec: LockSpec, pyproject: Path = PYPROJECT) -> list[str]:
    """The requirement strings of `spec`'s extras that its lock leaves out (`tensorrt-cu12>=10,<11`)."""
    extras = project_table(pyproject).get("optional-dependencies", {})
    return [
        requirement
        for extra in spec.extras
        for requirement in extras.get(extra, [])
        if requirement_name(requirement) in spec.unlocked
    ]


def declarations_sha256(spec: LockSpec, pyproject: Path = PYPROJECT) -> str:
    """sha256 over everything the resolve of `spec` depends on: requires-python, the dependencies, the requirements
    of its extras, and the lock's own settings (target, what it leaves out). Comments and formatting do not count."""
    project = project_table(pyproject)
    extras = project.get("optional-dependencies", {})
    unknown = sorted(set(spec.extras) - set(extras))
    if unknown:
        raise ValueError(f"pyproject.toml has no extra {unknown} (lock {spec.name})")
    declarations = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "extras": {extra: extras[extra] for extra in spec.extras},
        "target": [spec.target.python, spec.target.uv_platform],
        "unlocked": list(spec.unlocked),
        "cpu_torch": spec.cpu_torch,
    }
    return hashlib.sha256(json.dumps(declarations, sort_keys=True).encode()).hexdigest()


def recorded_sha256(lock: Path) -> str | None:
    """The declarations hash stored in a lock's header, None when the file has none (or does not exist)."""
    if not lock.is_file():
        return None
    match = _HASH_LINE.search(lock.read_text())
    return match.group(1) if match else None


def stale_locks(specs: list[LockSpec], pyproject: Path = PYPROJECT) -> list[str]:
    """One line per lock that no longer matches pyproject.toml (or is missing); empty when all are current."""
    problems = []
    for spec in specs:
        recorded = recorded_sha256(spec.path)
        if recorded is None:
            problems.append(f"{spec.path.relative_to(PROJECT_ROOT)} is missing or has no declarations hash")
        elif recorded != declarations_sha256(spec, pyproject):
            problems.append(
                f"{spec.path.relative_to(PROJECT_ROOT)} was made from other dependency declarations than "
                "pyproject.toml has now"
            )
    return problems
