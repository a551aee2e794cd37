"""`make lock`: resolve every supported extra set with uv and write its lock (pins and sha256 hashes, no hosts).

Resolution only: nothing is installed. The current locks are uv's preferences, so a refresh moves only what the
changed declarations require (delete a lock to re-resolve it from scratch). uv gets pip's package sources
(locks.sources), so the CPU lock pins the CPU build of torch this machine's pip would install; a CPU lock that ends
up with the CUDA build is refused.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from locks.declarations import (
    HEADER_KEY,
    PROJECT_ROOT,
    PYTHON_PLATFORM,
    PYTHON_VERSION,
    UV_LOCK,
    LockSpec,
    declarations_sha256,
    unlocked_requirements,
)
from locks.sources import uv_source_args

_TORCH_PIN = re.compile(r"^torch==(\S+)", re.MULTILINE)


class LockError(RuntimeError):
    """uv could not resolve, or the resolve is not what the lock promises (a CUDA torch in the CPU lock)."""


def compile_lock(spec: LockSpec, uv: str, settings: dict[str, str]) -> str:
    """The full text of `spec`'s lock: our header, then uv's pins with hashes."""
    with tempfile.TemporaryDirectory(prefix="har-clip-lock-") as scratch:
        output, excludes = Path(scratch) / "lock.txt", Path(scratch) / "excludes.txt"
        excludes.write_text("".join(f"{name}\n" for name in spec.unlocked))
        if spec.path.is_file():  # uv keeps the pins of an existing output file where they still fit: small diffs
            output.write_text(spec.path.read_text())
        command = [uv, "pip", "compile", "pyproject.toml", "--quiet", "--generate-hashes", "--no-header"]
        command += [arg for extra in spec.extras for arg in ("--extra", extra)]
        command += ["--python-version", PYTHON_VERSION, "--python-platform", PYTHON_PLATFORM, "-o", str(output)]
        command += ["--excludes", str(excludes)] if spec.unlocked else []
        command += uv_source_args(settings, find_links=spec.cpu_torch)
        result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            raise LockError(f"uv could not resolve {spec.name}:\n{result.stderr.strip()}")
        body = output.read_text()
    if "://" in body:
        raise LockError(f"the {spec.name} lock would name a URL; locks carry pins and hashes only")
    torch = _TORCH_PIN.search(body)
    if spec.cpu_torch and (torch is None or not torch.group(1).endswith("+cpu")):
        raise LockError(
            f"the {spec.name} lock resolved torch=={torch.group(1) if torch else '?'}, not the CPU build: uv saw no "
            "torch wheel with the +cpu local version. Point pip's find-links (or index-url) at a source of the "
            "PyTorch CPU wheels (`pip config list` shows what `make lock` hands uv), then run `make lock` again."
        )
    if not spec.cpu_torch and torch is not None and torch.group(1).endswith("+cpu"):
        raise LockError(f"the {spec.name} lock resolved torch=={torch.group(1)} (CPU); it needs PyPI's CUDA build")
    return header(spec, torch.group(1) if torch else None) + body


def header(spec: LockSpec, torch: str | None) -> str:
    lines = [
        f"# Locked install of har-clip[{','.join(spec.extras)}] for CPython {PYTHON_VERSION} on Linux x86_64 "
        f"({PYTHON_PLATFORM}).",
        "# Written by `make lock` (uv pip compile --generate-hashes) from pyproject.toml; `make install` installs it.",
        "# Do not edit by hand: CI fails when the hash below no longer matches pyproject.toml's declarations.",
        f"{HEADER_KEY}{declarations_sha256(spec)}",
    ]
    if spec.cpu_torch:
        lines.append(f"# torch=={torch}: the CPU build, from the source pip is configured with (find-links/index-url).")
    else:
        lines.append(f"# torch=={torch}: PyPI's build, on Linux x86_64 the CUDA one (with its nvidia-* wheels).")
    for requirement in unlocked_requirements(spec):
        lines.append(
            f"# Not in this lock: {requirement}. PyPI has only stubs of its native packages (they download from "
            "NVIDIA's index while building), so `make install` adds it with pip after this lock."
        )
    return "\n".join(lines) + "\n"


def uv_block(lock_text: str) -> str:
    """The `uv==...` entry (pin and hashes) of a lock, for bootstrapping uv itself with pip."""
    match = re.search(r"^uv==.*?(?=^\S|\Z)", lock_text, re.MULTILINE | re.DOTALL)
    if match is None:
        raise LockError("uv is not in the lock: it belongs to the dev extra")
    lines = [line for line in match.group(0).splitlines() if not line.lstrip().startswith("#")]
    return "# The installer of the locks, pinned with hashes; written by `make lock`.\n" + "\n".join(lines) + "\n"


def refresh(specs: list[LockSpec], uv: str, settings: dict[str, str]) -> list[Path]:
    """Write every lock (each only once all resolved, so a failure leaves the old locks in place) and locks/uv.txt."""
    texts = {spec: compile_lock(spec, uv, settings) for spec in specs}
    for spec, text in texts.items():
        spec.path.write_text(text)
    UV_LOCK.write_text(uv_block(next(iter(texts.values()))))
    return [spec.path for spec in texts] + [UV_LOCK]
