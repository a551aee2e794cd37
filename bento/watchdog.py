"""In a container, a dead worker ends the whole service, so the container runtime restarts it.

BentoML respawns a dead worker only outside containers (`respawn=not running_inside_container()` in
`bentoml/serving.py`; its images set `BENTOML_CONTAINERIZED`). Inside one its arbiter keeps the listening socket
open with no worker behind it: connections are accepted by the kernel and never answered, and the container stays
"running". BentoML leaves recovery to the runtime there, so this module makes the failure visible to it: a thread
in the arbiter (started by the service's `on_deployment` hook, which runs there once before the workers start)
watches the workers, and when one disappears without having shut down cleanly it kills the rest and exits with
`WORKER_DIED_EXIT_CODE`. podman's `--restart`, Docker's restart policy or the kubelet (a Deployment's pods restart
`Always`) then start a fresh container. A clean shutdown (SIGTERM: the arbiter stops its workers gracefully) is
told apart by a marker each worker leaves in its `on_shutdown` hook, so a drain still exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import psutil
from bentoml.serving import running_inside_container

logger = logging.getLogger(__name__)

WORKER_MODULE = "_bentoml_impl.worker.service"  # how BentoML 1.4 starts a service worker (`python -m ...`)
CLEAN_EXITS_ENV = "HAR_CLIP_CLEAN_WORKER_EXITS"  # the directory workers leave their clean-exit markers in
WORKER_DIED_EXIT_CODE = 70  # EX_SOFTWARE: the service failed, restart it


def start_watchdog(poll_s: float = 0.5) -> threading.Thread | None:
    """Watch this process's workers from a daemon thread, inside a container only (elsewhere BentoML respawns)."""
    if not running_inside_container():
        return None
    directory = Path(tempfile.mkdtemp(prefix="har-clip-worker-exits-"))
    os.environ[CLEAN_EXITS_ENV] = str(directory)  # set before BentoML builds its watcher: workers inherit it
    thread = threading.Thread(
        target=_watch, args=(os.getpid(), directory, poll_s), name="har-clip-worker-watchdog", daemon=True
    )
    thread.start()
    logger.info("Worker watchdog on: a worker that dies ends the service (exit %d)", WORKER_DIED_EXIT_CODE)
    return thread


def record_clean_exit() -> None:
    """Called by a worker shutting down gracefully, so the watchdog does not take its exit for a crash."""
    directory = os.environ.get(CLEAN_EXITS_ENV)
    if directory and Path(directory).is_dir():
        (Path(directory) / str(os.getpid())).touch()


def worker_pids(root_pid: int) -> set[int]:
    """Live BentoML service workers under `root_pid` (zombies, dead but not yet reaped, excluded)."""
    try:
        children = psutil.Process(root_pid).children(recursive=True)
    except psutil.Error:
        return set()
    workers = set()
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE and any(WORKER_MODULE in part for part in child.cmdline()):
                workers.add(child.pid)
        except psutil.Error:
            continue
    return workers


def _watch(arbiter_pid: int, clean_exits: Path, poll_s: float) -> None:
    known: set[int] = set()
    while True:
        current = worker_pids(arbiter_pid)
        crashed = [pid for pid in known - current if not (clean_exits / str(pid)).exists()]
        if crashed:
            logger.error(
                "Worker %s died; BentoML does not respawn workers in a container, so the service exits (%d) "
                "for the container runtime to restart it.",
                ", ".join(map(str, crashed)),
                WORKER_DIED_EXIT_CODE,
            )
            for pid in current:
                with contextlib.suppress(psutil.Error):
                    psutil.Process(pid).kill()
            logging.shutdown()
            os._exit(WORKER_DIED_EXIT_CODE)
        known = current
        time.sleep(poll_s)
