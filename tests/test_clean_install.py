"""The README's two commands on a clean machine: a fresh Debian 12 root filesystem, a normal user, no pip settings.

The root is the project's debootstrapped bookworm base image (bento_ops/container/base_image.sh) plus make and git
(tests/install/clean_machine.Containerfile), run with podman. Nothing of this machine's pip configuration or wheel
folders goes in; the package indexes are reached the way a user's network reaches them (the CA bundle of this
network's TLS proxy is in the base image). PyTorch's CPU index, which cannot be reached from here, is stood in for
by a PEP 503 page on 127.0.0.1 serving the same wheel file, so its hash is the lock's. Nothing is cached: every
other package is downloaded from the index, as on a new machine (about 2 minutes).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from locks.declarations import current_target, lock_for
from locks.package_sources import local_torch_wheel, locked_torch, pip_settings
from tests.conftest import PROJECT_ROOT
from tests.required import skip_without

pytestmark = [pytest.mark.container, pytest.mark.slow]

IMAGE = "localhost/har-clip-clean-machine:bookworm"
CONTAINERFILE = PROJECT_ROOT / "tests" / "install" / "clean_machine.Containerfile"
USER_ID = 1000
# The container's normal user (uid 1000, no capabilities) is the host's owner of the project copy (root, who runs the
# container tests), so the copy needs no chown and the host's files stay root's.
USER_NAMESPACE = [
    *("--uidmap", f"0:1:{USER_ID}", "--uidmap", f"{USER_ID}:0:1", "--uidmap", f"{USER_ID + 1}:{USER_ID + 1}:60000"),
    *("--gidmap", f"0:1:{USER_ID}", "--gidmap", f"{USER_ID}:0:1", "--gidmap", f"{USER_ID + 1}:{USER_ID + 1}:60000"),
]


def _torch_wheel() -> Path:
    """The locked CPU wheel of torch, from this machine's pip sources: the file the stand-in index serves."""
    lock = lock_for("cpu,dev,cluster", current_target()).path.read_text()
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    wheel = local_torch_wheel(pip_settings(), locked_torch(lock), tag, os.uname().machine)
    if wheel is None:
        pytest.skip("pip's find-links hold no locked CPU wheel of torch to serve as the stand-in index")
    return wheel


@pytest.fixture(scope="module")
def clean_image():
    from bento_ops.podman import ensure_base_image, missing_container_tools, podman_env

    missing = missing_container_tools()
    if missing:
        skip_without(missing.requirement, f"container path unavailable: {missing.reason}")
    base = ensure_base_image()
    exists = subprocess.run(["podman", "image", "exists", IMAGE], env=podman_env())
    if exists.returncode != 0:
        subprocess.run(
            ["podman", "build", "--network", "host", "--build-arg", f"BASE={base}", "-t", IMAGE,
             "-f", str(CONTAINERFILE), str(CONTAINERFILE.parent)],
            env=podman_env(), check=True, capture_output=True,
        )  # fmt: skip
    return IMAGE


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test's output is the clean machine's, not every GET
        pass


class StandInIndex:
    """PyTorch's CPU index as `<url>/torch/`: one PEP 503 page linking the wheel with its sha256, and the file."""

    def __init__(self, directory: Path, wheel: Path) -> None:
        (directory / "torch").mkdir(parents=True)
        shutil.copyfile(wheel, directory / wheel.name)
        digest = subprocess.run(["sha256sum", str(wheel)], capture_output=True, text=True, check=True).stdout.split()[0]
        href = f"/{wheel.name.replace('+', '%2B')}#sha256={digest}"
        (directory / "torch" / "index.html").write_text(f'<html><body><a href="{href}">{wheel.name}</a></body></html>')
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _project_copy(target: Path) -> Path:
    """A clone of this checkout plus its uncommitted files (what a user's clone of this commit holds)."""
    subprocess.run(["git", "-c", f"safe.directory={PROJECT_ROOT}", "clone", "-q", str(PROJECT_ROOT), str(target)],
                   check=True)  # fmt: skip
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT, capture_output=True, check=True,
    ).stdout.split(b"\0")  # fmt: skip
    for name in filter(None, files):
        source = PROJECT_ROOT / name.decode()
        if source.is_file():
            (target / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name.decode())
    return target


def _run(image: str, project: Path, script: str, env: dict[str, str], log: Path) -> subprocess.CompletedProcess:
    """`bash -c script` in the project as the container's normal user, on the host network, with nothing else of
    the host. The container is thrown away after each call; what the commands leave is in the project folder."""
    from bento_ops.podman import podman_env

    mounts = ["-v", f"{project}:/home/user/har-clip"]
    variables = [item for key, value in env.items() for item in ("-e", f"{key}={value}")]
    clean = ["env", "-u", "PIP_BREAK_SYSTEM_PACKAGES"]  # the base image's, for BentoML's Dockerfile only
    command = ["podman", "run", "--rm", "--network", "host", *USER_NAMESPACE, "--user", f"{USER_ID}:{USER_ID}",
               *mounts, *variables, "-w", "/home/user/har-clip", image, *clean, "bash", "-c", script]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(command, env=podman_env(), capture_output=True, text=True)
    log.write_text(result.stdout + result.stderr)
    tail = "\n  ".join((result.stdout + result.stderr).strip().splitlines()[-4:])
    print(f"clean machine: `{script}` exit {result.returncode} in {time.monotonic() - started:.0f} s:\n  {tail}")
    return result


def test_the_readme_commands_work_on_a_clean_machine_and_a_missing_index_is_one_line(clean_image, tmp_path):
    wheel = _torch_wheel()
    project = _project_copy(tmp_path / "har-clip")
    index = StandInIndex(tmp_path / "index", wheel)
    env = {"HAR_CLIP_TORCH_INDEX": index.url}
    try:
        install = _run(clean_image, project, "time make install", env, tmp_path / "install.log")
        assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
        quickstart = _run(clean_image, project, "make quickstart", env, tmp_path / "quickstart.log")
        assert quickstart.returncode == 0, quickstart.stdout[-3000:] + quickstart.stderr[-3000:]
        assert "Promotion:" in quickstart.stdout  # the training pipeline ran to its summary
        fast = _run(clean_image, project, "make test-fast PYTEST_ARGS=-q", env, tmp_path / "test-fast.log")
        assert fast.returncode == 0, fast.stdout[-4000:] + fast.stderr[-2000:]
        assert " passed" in fast.stdout.splitlines()[-1] and " failed" not in fast.stdout.splitlines()[-1]
    finally:
        index.stop()
    offline = _run(clean_image, project, "rm -rf .venv && make install", env, tmp_path / "offline.log")
    output = offline.stdout + offline.stderr
    reported = [line for line in output.splitlines() if line.startswith("make install: ")]
    assert offline.returncode != 0 and "Traceback" not in output
    assert len(reported) == 1 and f"{index.url}/torch/" in reported[0] and "HAR_CLIP_TORCH_INDEX" in reported[0]
