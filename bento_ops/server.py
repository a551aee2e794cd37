"""Start `bentoml serve` (or a container) on a free 127.0.0.1 port, wait for `/readyz`, and stop its whole tree.

`bentoml serve` starts workers through a process manager; stopping signals the server and every descendant found
under it, not one pid. Used by the tests, the local model deployer and benchmarks/serving/serve_bench.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from har_core.training.process_tree import stop_process_tree

PROJECT_ROOT = Path(__file__).resolve().parents[1]


STARTUP_FAILED = "Application startup failed"  # uvicorn's log line when the service's lifespan start-up raises


class ServerError(RuntimeError):
    """The server did not become ready; the message holds the tail of its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_command(target: str, port: int, host: str = "127.0.0.1") -> list[str]:
    """`bentoml serve` of a Bento tag or an import path (`bento.service:HarClipService`) from this interpreter."""
    return [sys.executable, "-m", "bentoml", "serve", target, "--host", host, "--port", str(port)]


def start_server(
    command: Sequence[str], log_path: str | Path, env: Mapping[str, str] | None = None, cwd: str | Path | None = None
) -> subprocess.Popen:
    """Start `command` in its own session (so its workers can be stopped together); output goes to `log_path`."""
    environment = {**os.environ, **(env or {})}
    first = (env or {}).get("PYTHONPATH")  # a caller's own source tree wins over this checkout
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [first, str(PROJECT_ROOT), None if first else os.environ.get("PYTHONPATH")])
    )
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(command), cwd=cwd or PROJECT_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def wait_ready(url: str, process: subprocess.Popen | None, log_path: str | Path, timeout_s: float = 180.0) -> None:
    """Poll `<url>/readyz` until it answers 200; a dead process, a service that failed to start, or the timeout is a
    `ServerError` with the log.

    A service whose constructor raises does not end `bentoml serve`: its process manager starts the worker again, and
    again, so the failure is read from the log (uvicorn's line), written after this call began (the log appends)."""
    deadline = time.monotonic() + timeout_s
    log_start = _size(log_path)
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServerError(f"The server exited with {process.returncode}:\n{_tail(log_path)}")
        if STARTUP_FAILED in _read_from(log_path, log_start):
            raise ServerError(f"The service failed to start (its worker is restarted in vain):\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.5)
    raise ServerError(f"{url}/readyz did not answer 200 within {timeout_s:.0f} s:\n{_tail(log_path)}")


def _size(log_path: str | Path) -> int:
    try:
        return Path(log_path).stat().st_size
    except OSError:
        return 0


def _read_from(log_path: str | Path, offset: int) -> str:
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")
    except OSError:
        return ""


def _tail(log_path: str | Path, lines: int = 40) -> str:
    try:
        return "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class BentoServer:
    """`with BentoServer(target) as server: server.url` — serves on a free port and stops the tree afterwards."""

    def __init__(
        self, target: str, log_path: str | Path, env: Mapping[str, str] | None = None, ready_timeout_s: float = 180.0
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        self.process = start_server(serve_command(target, self.port), self.log_path, env)
        try:
            wait_ready(self.url, self.process, self.log_path, ready_timeout_s)
        except BaseException:
            stop_process_tree(self.process)
            raise

    def __enter__(self) -> BentoServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The root of the serve tree (BentoML's arbiter); its workers are descendants."""
        return self.process.pid

    def stop(self) -> None:
        stop_process_tree(self.process)
