"""The training pipeline writes only inside the project, `$HOME` and `$TMPDIR`: never `/app`, `/tmp`, `/var/tmp`
or `/dev/shm`, and not into the directory it was started from.

The pipeline runs as a new user would run it: a copy of the checkout, a fresh `$HOME` (so a fresh ZenML store and
caches), a private `$TMPDIR`, started from a subdirectory with the config's default relative paths, DDP x2 in
the `local_process` step operator. Where a private mount namespace is available (root, or unprivileged user
namespaces), each shared folder is covered by an empty folder of this test, so exactly what this run left there
is seen, whatever else the machine runs; elsewhere the folders are compared before and after.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.pipelines.pipeline_runs import tiny_config

pytestmark = [pytest.mark.slow, pytest.mark.both_users, pytest.mark.torchrun]  # .ci/run: as root and as a normal user

SHARED = ("/app", "/tmp", "/var/tmp", "/dev/shm")
RUN_TIMEOUT_SECONDS = 1200


def copy_checkout(target: Path) -> Path:
    """The checkout's tracked and untracked-but-not-ignored files (what a fresh clone plus local edits holds)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = PROJECT_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def relative_paths_config(project: Path) -> Path:
    """The tiny DDP x2 config with every path left at its relative default (`.cache/har-clip/...`)."""
    path = tiny_config(project / "configs")
    config = yaml.safe_load(path.read_text())
    parameters = config["parameters"]
    del parameters["data"]["cache_dir"], parameters["classifier"]["cache_dir"], parameters["training"]["output_dir"]
    parameters["training"]["distributed"] = {"strategy": "ddp", "nproc_per_node": 2, "backend": "gloo"}
    parameters["export"]["formats"] = ["pytorch", "onnx"]
    path.write_text(yaml.safe_dump(config))
    return path


def namespace_prefix() -> list[str] | None:
    """`unshare` arguments for a private mount namespace this user may mount in, or None where there is none."""
    candidates = [["unshare", "--mount", "--propagation", "private"]] if os.geteuid() == 0 else []
    candidates.append(["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"])
    for prefix in candidates if shutil.which("unshare") else []:
        if subprocess.run([*prefix, "mount", "-t", "tmpfs", "probe", "/tmp"], capture_output=True).returncode == 0:
            return prefix
    return None


def listing() -> dict[str, set[str]]:
    return {folder: set(os.listdir(folder)) if os.path.isdir(folder) else set() for folder in SHARED}


def quickstart_script(project: Path, config: Path, started_in: Path) -> str:
    """`zenml init` and the stack as `make quickstart` does them, then run.py from a subdirectory."""
    python, zenml = shlex.quote(sys.executable), shlex.quote(str(Path(sys.executable).parent / "zenml"))
    run_py, config_arg = shlex.quote(str(project / "run.py")), shlex.quote(str(config))
    return (
        f"cd {shlex.quote(str(project))} && {zenml} init && {python} -m stacks.register local"
        f" && cd {shlex.quote(str(started_in))} && {python} {run_py} --pipeline training --config {config_arg}"
    )


def run_and_find_leftovers(script: str, environment: dict[str, str], covers: dict[str, Path]) -> dict[str, list]:
    """Run `script`; return, per shared folder, the names this run left there (the run must succeed)."""
    prefix = namespace_prefix()
    if prefix is not None:
        existing = [folder for folder in SHARED if os.path.isdir(folder)]
        mounts = "".join(f"mount --bind {shlex.quote(str(covers[folder]))} {folder} && " for folder in existing)
        command = [*prefix, "sh", "-c", mounts + script]
    else:
        command = ["sh", "-c", script]
    before, app_existed = listing(), os.path.isdir("/app")
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    assert "completed." in result.stdout
    if prefix is None:
        after = listing()
        return {folder: sorted(after[folder] - before[folder]) for folder in SHARED if after[folder] - before[folder]}
    left = {folder: sorted(os.listdir(cover)) for folder, cover in covers.items() if os.listdir(cover)}
    if not app_existed and os.path.exists("/app"):  # created by this run (only an existing folder can be covered)
        left["/app"] = ["(created)"]
    return left


def test_the_pipeline_writes_nothing_outside_the_project_home_and_tmpdir():
    # Not under /tmp: the shared folders are covered while the pipeline runs.
    base = PROJECT_ROOT / ".cache" / f"no-stray-files-{uuid.uuid4().hex[:8]}"
    try:
        project = copy_checkout(base / "project")
        # Started from a folder below the project (ZenML finds the repository, and with it the active stack, by
        # walking up from the working directory), which must stay empty.
        home, tmpdir, started_in = base / "home", base / "tmp", project / "elsewhere"
        covers = {folder: base / "covers" / folder.strip("/").replace("/", "-") for folder in SHARED}
        for folder in (home, tmpdir, started_in, *covers.values()):
            folder.mkdir(parents=True)
        environment = {
            "PATH": os.environ["PATH"],
            "LANG": "C.UTF-8",
            "HOME": str(home),
            "TMPDIR": str(tmpdir),
            "PYTHONPATH": str(project),
            "ZENML_ANALYTICS_OPT_IN": "false",
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "1",
        }
        script = quickstart_script(project, relative_paths_config(project), started_in)
        assert run_and_find_leftovers(script, environment, covers) == {}
        assert list(started_in.iterdir()) == []

        # Relative paths landed in the project copy, whichever directory the run started from.
        assert any((project / ".cache" / "har-clip" / "checkpoints").glob("training_pipeline-*/best"))
        assert any((project / "wandb").glob("offline-run-*"))
        cache = home / ".cache" / "har-clip"
        assert any((cache / "data").iterdir()) and (cache.stat().st_mode & 0o777) == 0o700
    finally:
        shutil.rmtree(base, ignore_errors=True)
