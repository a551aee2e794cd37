"""Memory that a process gives back: glibc's heap keeps large freed blocks unless told otherwise (torch-free)."""

from __future__ import annotations

import ctypes
import ctypes.util

_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def return_large_frees_to_the_os(threshold_bytes: int = 4 * 1024 * 1024) -> bool:
    """Make glibc serve allocations >= `threshold_bytes` with mmap, so freeing one returns its memory at once.

    glibc raises its mmap threshold after the first large mmapped block is freed, so later large blocks come from
    the heaps, which keep the memory after free. Measured: a serving worker grew by ~190 MB per decode thread that
    had handled one 62 Mpx PNG (PIL allocates 16 MiB blocks) and never shrank; an FSDP rank, which gathers and
    frees every layer's full parameters on each step, peaked at 3.2 GB RSS with 0.8 GB of training state where the
    fixed threshold gives 2.2 GB. A fixed threshold turns the dynamic one off. False where the C library is not
    glibc (nothing changes there).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    except (OSError, AttributeError, TypeError):
        return False
