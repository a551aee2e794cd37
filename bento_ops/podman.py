"""Build and run the Bento's container image with podman (registry-less hosts: a local base image).

    base = ensure_base_image()                           # bento_ops/container/base_image.sh, cached in podman
    containerize("har_clip:abc", "har-clip:abc")         # bentoml containerize --backend podman
    with ContainerServer("har-clip:abc", log) as s: ...  # podman run --network host … serve on a free port

Every podman call gets `CONTAINERS_CONF=bento_ops/container/containers.conf` (runc, ulimits that fit this host) unless
the caller set its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from bento_ops.server import free_port, wait_ready

CONTAINER_DIR = Path(__file__).resolve().parent / "container"
BASE_IMAGE_SCRIPT = CONTAINER_DIR / "base_image.sh"
CONTAINERS_CONF = CONTAINER_DIR / "containers.conf"


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF))}


class MissingTool(NamedTuple):
    """What the container path lacks here (`requirement`: a Debian package, or "root") and why it matters."""

    requirement: str
    reason: str


def missing_container_tools() -> MissingTool | None:
    """Why podman builds cannot run here (None: they can)."""
    for tool in ("podman", "runc", "debootstrap"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return MissingTool(tool, f"{tool} is not installed (apt-get install podman runc debootstrap)")
    if os.geteuid() != 0:
        return MissingTool("root", "the local base image needs root (debootstrap)")
    probe = subprocess.run(["podman", "info"], env=podman_env(), capture_output=True, text=True)
    if probe.returncode != 0:
        return MissingTool("podman", f"`podman info` fails: {probe.stderr.strip()[-300:]}")
    return None


def ensure_base_image(force: bool = False) -> str:
    """The local bookworm + Python 3.11 base image's name; built once (~70 s), then reused from podman's store."""
    command = [str(BASE_IMAGE_SCRIPT), *(["--force"] if force else [])]
    result = subprocess.run(command, env=podman_env(), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"base_image.sh failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


def containerize(bento_tag: str, image_tag: str, log_path: str | Path) -> str:
    """`bentoml containerize --backend podman`; the build's RUN steps use the host network (pip through proxies)."""
    command = [
        *(sys.executable, "-m", "bentoml", "containerize", bento_tag),
        *("--backend", "podman", "--image-tag", image_tag, "--opt", "network=host"),
    ]
    with open(log_path, "ab") as log:
        result = subprocess.run(command, env=podman_env(), stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"bentoml containerize failed ({result.returncode}); see {log_path}")
    return image_tag


def image_size_bytes(image_tag: str) -> int:
    result = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Size}}", image_tag],
        env=podman_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(result.stdout.strip())


class ContainerServer:
    """`podman run --network host <image> serve` on a free 127.0.0.1 port; removed (with its processes) on exit.

    `restart` is podman's restart policy: the service exits when a worker dies (bento/watchdog.py) and the runtime
    brings it back, as a Deployment's kubelet does. `podman_args` go before the image (e.g. `--read-only`,
    `--tmpfs`, `--user`).
    """

    def __init__(
        self,
        image_tag: str,
        log_path: str | Path,
        env: Mapping[str, str] | None = None,
        podman_args: Sequence[str] = (),
        restart: str = "on-failure",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = f"har-clip-{uuid.uuid4().hex[:10]}"
        self.log_path = Path(log_path)
        environment = [item for key, value in (env or {}).items() for item in ("-e", f"{key}={value}")]
        subprocess.run(
            ["podman", "run", "-d", "--name", self.name, "--network", "host", "--restart", restart, *environment,
             *podman_args, image_tag,
             "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=podman_env(), check=True, capture_output=True,
        )  # fmt: skip
        try:
            wait_ready(self.url, None, self.log_path, timeout_s=180)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        """The container's init process (BentoML's arbiter) as the host sees it; it changes when podman restarts it."""
        return int(self.inspect("{{.State.Pid}}"))

    def inspect(self, template: str) -> str:
        result = subprocess.run(
            ["podman", "inspect", "--format", template, self.name], env=podman_env(), capture_output=True, text=True
        )
        return result.stdout.strip()

    def exec(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", "exec", self.name, *command], env=podman_env(), capture_output=True, text=True)

    def __enter__(self) -> ContainerServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        with open(self.log_path, "ab") as log:
            subprocess.run(["podman", "logs", self.name], env=podman_env(), stdout=log, stderr=subprocess.STDOUT)
        subprocess.run(["podman", "rm", "-f", "-t", "5", self.name], env=podman_env(), capture_output=True)
