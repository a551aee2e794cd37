"""No child outlives its parent: Linux's parent-death signal (`prctl(PR_SET_PDEATHSIG)`) for launched processes.

torchrun starts each worker in a session of its own, so killing the launcher's process group misses them, and a
SIGKILLed launcher runs no cleanup code at all. The kernel's parent-death signal needs neither: each link of the
chain step process -> torchrun -> worker asks for SIGKILL when its parent dies, so killing any link (even with
SIGKILL) takes everything below it down within milliseconds. Used as `Popen(preexec_fn=die_with_parent)` where
we start the child, and called first thing by a child we do not start ourselves (a torchrun worker).
Elsewhere than Linux this is a no-op and the launchers' own process-group stop remains.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

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
