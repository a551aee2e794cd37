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

# The one interpreter and platform the locks are resolved for (wheels' hashes are those of every file of a pinned
# version, but markers and the CPU torch wheel are evaluated for this target).
PYTHON_VERSION = "3.11"
PYTHON_PLATFORM = "x86_64-manylinux_2_28"

HEADER_KEY = "# declarations-sha256: "
_HASH_LINE = re.compile(r"^# declarations-sha256: ([0-9a-f]{64})$", re.MULTILINE)


@dataclass(frozen=True)
class LockSpec:
    """One supported install: its extras, the lock file, and what is deliberately left out of the resolve."""

    extras: tuple[str, ...]
    unlocked: tuple[str, ...] = ()  # project names excluded from the resolve (installed after it, see README)
    cpu_torch: bool = False  # True: pins the CPU build of torch (+cpu); False: PyPI's build, never a +cpu one

    @property
    def name(self) -> str:
        return "-".join(self.extras)

    @property
    def path(self) -> Path:
        return LOCK_DIR / f"{self.name}.txt"


# TensorRT: PyPI carries only stubs of its native packages (tensorrt-cu12-libs and -bindings download the real
# wheels from NVIDIA's own index while they build), so no resolve from PyPI alone can pin or hash them. The gpu
# lock leaves the TensorRT package out and `make install` adds it with pip after the locked install.
LOCKS = {
    spec.name: spec
    for spec in (
        LockSpec(("cpu", "dev", "cluster"), cpu_torch=True),
        LockSpec(("gpu", "dev", "cluster"), unlocked=("tensorrt-cu12",)),
    )
}


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
        "target": [PYTHON_VERSION, PYTHON_PLATFORM],
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
