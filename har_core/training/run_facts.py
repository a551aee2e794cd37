"""The facts of a run, collected: code, lock, data, machine and libraries (no ZenML).

The train step adds what only ZenML knows (the run, the stack, the stored diff) and assembles the record
(`har_core.runtime.provenance.TrainingProvenance`); `run.py --reproduce` calls the same functions to see what
differs now.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import subprocess
from pathlib import Path

from har_core.config import DataConfig, TrainingPipelineParameters
from har_core.runtime.hashing import file_sha256
from har_core.runtime.provenance import CodeVersion, DataVersion, LockVersion, MachineInfo

GIT_TIMEOUT_S = 30
MAX_LISTED_DIFFERENCES = 40
LIBRARIES = ("torch", "transformers", "onnxruntime", "zenml")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.MULTILINE)


def _git(root: Path, *args: str) -> str | None:
    """stdout of `git -C root ARGS`, None when git fails (not a checkout, no git)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout


def git_commit(root: str | Path = ".") -> str | None:
    """The checkout's commit, with `+dirty` when tracked files changed; None outside a git checkout."""
    commit = _git(Path(root), "rev-parse", "HEAD")
    if commit is None:
        return None
    status = _git(Path(root), "status", "--porcelain", "--untracked-files=no") or ""
    return commit.strip() + ("+dirty" if status.strip() else "")


def code_version(root: str | Path) -> tuple[CodeVersion, str]:
    """The checkout's commit and whether it is dirty, plus the diff that makes it dirty ("" when clean).

    The diff holds the tracked changes (`git diff HEAD`, binary-safe) and, for files git does not track yet, their
    paths and sha256: enough to tell two dirty trees apart and to see what was run.
    """
    root = Path(root)
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return CodeVersion(), ""
    diff = _git(root, "diff", "HEAD", "--binary") or ""
    untracked = (_git(root, "ls-files", "--others", "--exclude-standard", "-z") or "").split("\0")
    top = Path((_git(root, "rev-parse", "--show-toplevel") or str(root)).strip())
    listed = [f"untracked {name} {_untracked_digest(top / name)}" for name in sorted(filter(None, untracked))]
    text = diff + ("\n".join(listed) + "\n" if listed else "")
    if not text:
        return CodeVersion(commit=commit.strip()), ""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return CodeVersion(commit=commit.strip(), dirty=True, diff_sha256=digest), text


def _untracked_digest(path: Path) -> str:
    """A symbolic link is its target, as git records one (a linked `.venv` must not be read as a file)."""
    if path.is_symlink():
        return f"symlink {os.readlink(path)}"
    return f"sha256 {file_sha256(path)}"


def lock_version(lock: str | Path, root: str | Path, site: list[str] | None = None) -> LockVersion:
    """The lock file's sha256 and the installed packages whose versions are not the ones it pins (installed in this
    interpreter, or in the site-packages folders `site`)."""
    lock = Path(lock)
    if not lock.is_file():
        return LockVersion()
    pins = {_normalise(name): version for name, version in _PIN.findall(lock.read_text())}
    distributions = importlib.metadata.distributions(**({"path": site} if site is not None else {}))
    installed = {_normalise(dist.metadata["Name"]): dist.version for dist in distributions}
    differs = [
        f"{name} {installed.get(name, 'not installed')} (lock {version})"
        for name, version in sorted(pins.items())
        if installed.get(name) != version
    ]
    if len(differs) > MAX_LISTED_DIFFERENCES:
        differs = differs[:MAX_LISTED_DIFFERENCES] + [f"... and {len(differs) - MAX_LISTED_DIFFERENCES} more"]
    return LockVersion(file=lock.relative_to(root).as_posix(), sha256=file_sha256(lock), differs=tuple(differs))


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def cpu_description() -> tuple[str, str]:
    """(model name, flags) of the CPU as /proc/cpuinfo states them; the platform's processor string elsewhere."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), ""
    model = re.search(r"^model name\s*:\s*(.*)$", info, re.MULTILINE)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", info, re.MULTILINE)
    return (model.group(1).strip() if model else platform.machine()), (flags.group(1).strip() if flags else "")


def machine_info(device: str, world_size: int = 1, strategy: str = "none") -> MachineInfo:
    """This process's machine and torch threads; `device` is where training ran (a CUDA device gets its name)."""
    import torch

    model, flags = cpu_description()
    if device.startswith("cuda") and torch.cuda.is_available():
        device = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return MachineInfo(
        cpu_model=model,
        cpu_flags=flags,
        cpu_count=os.cpu_count() or 1,
        torch_threads=torch.get_num_threads(),
        platform=platform.platform(),
        device=device,
        world_size=world_size,
        strategy=strategy,
    )


def library_versions() -> dict[str, str]:
    """Python and the libraries whose numerics or pipeline behaviour a rebuild depends on."""
    import torch

    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        for distribution in (name, f"{name}-gpu"):  # onnxruntime comes as onnxruntime or onnxruntime-gpu
            try:
                versions[name] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    if torch.version.cuda:
        versions["cuda"] = torch.version.cuda
    return versions


def data_version(manifest, data: DataConfig, dvc_commit: str | None = None, dvc_md5: str | None = None) -> DataVersion:
    """The manifest's fingerprint and counts, with the source's own version (the folder's git commit, DVC, Hub)."""
    version = DataVersion(
        source=manifest.source or data.source,
        revision=manifest.revision,
        fingerprint=manifest.fingerprint(),
        images=len(manifest.all_records()),
        dvc_commit=dvc_commit,
        dvc_md5=dvc_md5,
    )
    if manifest.revision.startswith("hf:") and "@" in manifest.revision:
        version = version.model_copy(update={"hf_commit": manifest.revision.rsplit("@", 1)[1]})
    if data.source == "folder" and data.root is not None:
        folder = Path(data.root)
        commit = _git(folder, "rev-parse", "HEAD")
        status = _git(folder, "status", "--porcelain", "--", ".")
        version = version.model_copy(
            update={
                "folder": str(folder),
                "git_commit": commit.strip() if commit else None,
                "git_dirty": bool(status.strip()) if commit and status is not None else None,
            }
        )
    return version


def seeds(parameters: TrainingPipelineParameters) -> dict[str, int]:
    """Every seed the run used: training, split, and those of synthetic images and a tiny backbone if in use."""
    found = {"training": parameters.training.seed, "split": parameters.data.split.seed}
    if parameters.data.source == "synthetic":
        found["synthetic_images"] = parameters.data.synthetic.seed
    if parameters.classifier.tiny_backbone is not None:
        found["tiny_backbone"] = parameters.classifier.tiny_backbone.seed
    return found
