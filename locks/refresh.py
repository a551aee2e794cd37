"""`make lock`: resolve every cell of the support table with uv and write its lock (pins and sha256, no hosts).

Resolution only: nothing is installed, and no interpreter of the target is needed (`--python-version`,
`--python-platform`). The current locks are uv's preferences, so a refresh moves only what the changed declarations
require (delete a lock to re-resolve it from scratch). Linux CPU cells pin PyTorch's CPU build from what
`locks.torch_wheels` records of its index (that index is not reachable from every machine that locks); every other
package, and every other cell's torch, comes from PyPI or the mirror pip is configured with.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from locks import torch_wheels
from locks.declarations import HEADER_KEY, PROJECT_ROOT, UV_LOCK, LockSpec, declarations_sha256, unlocked_requirements
from locks.package_sources import TORCH_CPU_INDEX, locked_torch, uv_source_args

_TORCH_ENTRY = re.compile(r"^torch==([^\s\\]+)(?: \\\n(?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)*)?\n?", re.MULTILINE)


class LockError(RuntimeError):
    """uv could not resolve, or the resolve is not what the lock promises (a CUDA torch in a CPU lock)."""


def resolve(spec: LockSpec, uv: str, settings: dict[str, str], *, constraints: str = "", previous: str = "") -> str:
    """uv's pins with hashes for `spec` (no header); `constraints` (a requirements text) bounds the resolve and
    `previous` (an earlier lock) is kept where it still fits."""
    with tempfile.TemporaryDirectory(prefix="har-clip-lock-") as scratch:
        scratch = Path(scratch)
        output, excludes = scratch / "lock.txt", scratch / "excludes.txt"
        excludes.write_text("".join(f"{name}\n" for name in spec.unlocked))
        if previous:
            output.write_text(previous)
        command = [uv, "pip", "compile", "pyproject.toml", "--quiet", "--generate-hashes", "--no-header"]
        command += [arg for extra in spec.extras for arg in ("--extra", extra)]
        command += ["--python-version", spec.target.python, "--python-platform", spec.target.uv_platform]
        command += ["-o", str(output), "--excludes", str(excludes)]
        command += uv_source_args(settings, find_links=False)  # a machine's wheel folder: never in a lock
        if constraints:
            (scratch / "constraints.txt").write_text(constraints)
            command += ["--constraint", str(scratch / "constraints.txt")]
        if spec.cpu_torch:
            torch_wheels.uv_config(scratch / "uv.toml")
            torch_wheels.flat_index(scratch / "torch.html", spec.target.python, spec.target.machine, TORCH_CPU_INDEX)
            command += ["--config-file", str(scratch / "uv.toml"), "--find-links", str(scratch / "torch.html")]
        else:
            command += ["--no-config"]
        env = {**os.environ, "MACOSX_DEPLOYMENT_TARGET": "14.0"}  # torch's arm64 wheels are macosx_14_0
        result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise LockError(f"uv could not resolve {spec.name}:\n{result.stderr.strip()}")
        body = output.read_text()
    return _with_torch_hash(spec, body) if spec.cpu_torch else body


def _with_torch_hash(spec: LockSpec, body: str) -> str:
    """uv leaves the recorded CPU wheel unhashed (its metadata is declared, not read): add the index's digest."""
    name, digest = torch_wheels.wheel_for(spec.target.python, spec.target.machine)
    entry = _TORCH_ENTRY.search(body)
    if entry is None or entry.group(1) != torch_wheels.VERSION:
        found = entry.group(1) if entry else "none"
        raise LockError(
            f"the {spec.name} lock resolved torch=={found}, not {torch_wheels.VERSION}: pyproject.toml's torch pin and "
            "locks/torch_wheels.py (the CPU wheels recorded from PyTorch's index) must name the same version"
        )
    return body.replace(entry.group(0), f"torch=={entry.group(1)} \\\n    --hash=sha256:{digest}\n", 1)


def compile_lock(spec: LockSpec, uv: str, settings: dict[str, str], seed: str = "") -> str:
    """The full text of `spec`'s lock: our header, then uv's pins with hashes. A new lock starts from `seed`'s pins
    (the first cell's), so the cells pin the same versions wherever their platforms allow."""
    body = resolve(spec, uv, settings, previous=spec.path.read_text() if spec.path.is_file() else seed)
    if "://" in body:
        raise LockError(f"the {spec.name} lock would name a URL; locks carry pins and hashes only")
    torch = locked_torch(body)
    if not spec.cpu_torch and torch is not None and torch.endswith("+cpu"):
        raise LockError(f"the {spec.name} lock resolved torch=={torch} (CPU); it needs PyPI's build")
    return header(spec, torch) + body


def header(spec: LockSpec, torch: str | None) -> str:
    lines = [
        f"# Locked install of har-clip[{','.join(spec.extras)}] for {spec.target.description}.",
        "# Written by `make lock` (uv pip compile --generate-hashes) from pyproject.toml; `make install` installs it.",
        "# Do not edit by hand: CI fails when the hash below no longer matches pyproject.toml's declarations, and",
        "# `make lock-verify` when a pin or hash is not what a resolve gives.",
        f"{HEADER_KEY}{declarations_sha256(spec)}",
    ]
    if spec.cpu_torch:
        lines.append(
            f"# torch=={torch}: PyTorch's CPU build, from its CPU index (or pip's own source of it); its sha256 is the "
            "one that index lists (locks/torch_wheels.py)."
        )
    elif spec.target.system == "darwin":
        lines.append(f"# torch=={torch}: PyPI's build, CPU-only on macOS (MPS where the Mac has it).")
    else:
        lines.append(f"# torch=={torch}: PyPI's build, on Linux x86_64 the CUDA 13 one (with its nvidia-* wheels).")
    for requirement in unlocked_requirements(spec):
        lines.append(
            f"# Not in this lock: {requirement}. PyPI has only stubs of its native packages (they download from "
            "NVIDIA's index while building), so `make install` adds this exact pin with pip after this lock."
        )
    return "\n".join(lines) + "\n"


def uv_block(lock_text: str) -> str:
    """The `uv==...` entry (pin and hashes) of a lock, for bootstrapping uv itself with pip."""
    match = re.search(r"^uv==.*?(?=^\S|\Z)", lock_text, re.MULTILINE | re.DOTALL)
    if match is None:
        raise LockError("uv is not in the lock: it belongs to the dev extra")
    lines = [line for line in match.group(0).splitlines() if not line.lstrip().startswith("#")]
    return "# The installer of the locks, pinned with hashes; written by `make lock`.\n" + "\n".join(lines) + "\n"


def refresh(specs: list[LockSpec], uv: str, settings: dict[str, str], progress=print) -> list[Path]:
    """Write every lock (each only once all resolved, so a failure leaves the old locks in place) and locks/uv.txt."""
    texts: dict[LockSpec, str] = {}
    for index, spec in enumerate(specs, 1):
        progress(f"[{index}/{len(specs)}] resolving {spec.name}")
        texts[spec] = compile_lock(spec, uv, settings, seed=next(iter(texts.values()), ""))
    uv_pins = {re.search(r"^uv==(\S+)", text, re.MULTILINE).group(1) for text in texts.values()}
    if len(uv_pins) != 1:
        raise LockError(f"the locks pin different uv versions {sorted(uv_pins)}; locks/uv.txt bootstraps one")
    for spec, text in texts.items():
        spec.path.write_text(text)
    UV_LOCK.write_text(uv_block(next(iter(texts.values()))))
    return [spec.path for spec in texts] + [UV_LOCK]
