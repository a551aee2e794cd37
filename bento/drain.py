"""On SIGTERM a serving worker stops listening at once, so new connections are refused while requests in flight
finish.

BentoML's worker (uvicorn) drains its requests on SIGTERM and closes its own copy of the listening socket, but the
process manager (the circus arbiter: PID 1 in the container) holds another copy until every worker has exited, so
new connections are accepted by the kernel into the backlog and left unanswered until the container exits.
`shutdown(SHUT_RD)` on a listening socket stops it listening for every process that shares it (Linux): new clients
get "connection refused" at once and retry elsewhere (tests/bento/test_container.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)  # BentoML keeps the root logger at WARNING; the drain belongs in the log


def refuse_new_connections_on_sigterm() -> None:
    """Chain a SIGTERM handler in front of the server's own (uvicorn's drain); main thread only, else a no-op."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame) -> None:
        closed = stop_listening()
        logger.info("SIGTERM: stopped listening on %d socket(s); finishing requests in flight", closed)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)


def stop_listening() -> int:
    """`shutdown(SHUT_RD)` every listening TCP socket this process holds; returns how many."""
    closed = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))  # a duplicate: closing it leaves the server's fd open
        except (OSError, ValueError):
            continue
        with sock, contextlib.suppress(OSError):
            listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            if listening and sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.shutdown(socket.SHUT_RD)
                closed += 1
    return closed
