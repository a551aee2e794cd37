"""No child outlives its parent: Linux's parent-death signal for launched processes, and one way to stop a tree.

torchrun starts each worker in a session of its own, so killing the launcher's process group misses them, and a
SIGKILLed launcher runs no cleanup code at all. The kernel's parent-death signal needs neither: each link of the
chain step process -> torchrun -> worker asks for SIGKILL when its parent dies, so killing any link (even with
SIGKILL) takes everything below it down within milliseconds. Used as `Popen(preexec_fn=die_with_parent)` where
we start the child, and called first thing by a child we do not start ourselves (a torchrun worker).
Elsewhere than Linux this is a no-op and the launchers' own process-group stop remains.

`stop_process_tree` is the project's one way to stop what it started (the torchrun launcher, `bentoml serve`, the
local servers, a step's process): SIGTERM to the process, its descendants (psutil) and, where asked, its process
group, then SIGKILL to what is left after a grace period.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

import psutil

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# Resolved once here: a `preexec_fn` runs between fork and exec and must not import or take locks.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with_parent(parent: int | None = None) -> None:
    """Have the kernel SIGKILL this process when the thread that started it exits.

    `parent` is the pid that started this process, read as early as possible: if it has already gone by now
    (the signal would never come), this process exits at once.
    """
    if _PRCTL is None:
        return
    if _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def stop_process_tree(process: subprocess.Popen | int, grace_s: float = 10.0, *, group: bool = False) -> None:
    """SIGTERM `process` and every descendant, then SIGKILL whatever is left after `grace_s`; reap a `Popen`.

    Descendants are collected before the first signal: BentoML's process manager and torchrun put workers in
    sessions of their own, which a process-group signal misses. `group=True` signals the process group too (the
    launchers start their child as a group leader, and a group member that is no descendant any more, its parent
    gone, is still in it). A `Popen`'s exit status is kept: only `Popen.poll` reaps it.
    """
    popen = process if isinstance(process, subprocess.Popen) else None
    pid = process.pid if popen is not None else int(process)
    members = _descendants(pid) + ([] if popen is not None else _processes([pid]))
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        _send(sig, pid, popen, members, group)
        deadline = time.monotonic() + wait_s
        while _any_alive(pid, popen, members, group) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _any_alive(pid, popen, members, group):
            break
    if popen is not None:
        popen.wait(timeout=5)


def descendants(pid: int) -> list[int]:
    """The pids of every live descendant of `pid`, children before grandchildren."""
    return [child.pid for child in _descendants(pid)]


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and all its descendants together (a server tree's memory, not the host's)."""
    total = 0
    for member in _processes([pid]) + _descendants(pid):
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def _processes(pids: list[int]) -> list[psutil.Process]:
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _send(sig: int, pid: int, popen: subprocess.Popen | None, members: list[psutil.Process], group: bool) -> None:
    if group:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
    if popen is not None and popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            popen.send_signal(sig)
    for member in members:
        with contextlib.suppress(psutil.Error):
            member.send_signal(sig)


def _running(member: psutil.Process) -> bool:
    try:
        return member.is_running() and member.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _any_alive(pid: int, popen: subprocess.Popen | None, members: list[psutil.Process], group: bool) -> bool:
    if popen is not None and popen.poll() is None:
        return True
    if any(_running(member) for member in members):
        return True
    if group:
        try:
            os.killpg(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return False
