"""Request bodies the guard holds while it checks them and hands them on: bounded across requests, spooled to disk.

A body stays in memory up to `spool_above` bytes and goes to a temporary file beyond (`SpooledTemporaryFile`, in
`$TMPDIR`: the pod's `/tmp` volume). Two worker-wide budgets bound what all requests hold at once: bytes in memory
(`max_buffered_bytes`) and bytes on disk (`max_spooled_bytes`). Both are reserved chunk by chunk as a body arrives
and given back when its request is answered; a chunk that cannot be reserved within `wait_s` ends the request with
503 and `Retry-After`. The body is handed on a chunk at a time, never joined into one bytes object.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
REPLAY_CHUNK_BYTES = 256 * 1024


class BodyBudget:
    """Bytes a worker's requests hold at once, over all of them (event loop only)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._changed = asyncio.Condition()

    async def reserve(self, size: int, wait_s: float) -> bool:
        """Take `size` bytes, waiting up to `wait_s` for other requests to give theirs back; False if they did not."""
        if size <= 0:
            return True
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.used + size <= self.limit), wait_s)
            except TimeoutError:
                return False
            self.used += size
            return True

    async def release(self, size: int) -> None:
        if size:
            async with self._changed:
                self.used -= size
                self._changed.notify_all()


class SpooledBody:
    """One request's body: in memory up to `spool_above` bytes, then all of it on disk; what it holds of each budget."""

    def __init__(self, spool_above: int) -> None:
        self.spool_above = spool_above
        self.file = tempfile.SpooledTemporaryFile(max_size=spool_above, prefix="har-clip-body-")  # noqa: SIM115 (closed by release)
        self.size = self.in_memory = self.on_disk = 0

    async def append(self, chunk: bytes, memory: BodyBudget, disk: BodyBudget, wait_s: float) -> bool:
        """Reserve what `chunk` adds to each budget and keep it; False when a budget stayed full for `wait_s`."""
        size = self.size + len(chunk)
        memory_part = min(size, self.spool_above) - self.in_memory
        disk_part = (size if size > self.spool_above else 0) - self.on_disk  # past the limit the whole body moves
        if not await memory.reserve(memory_part, wait_s):
            return False
        self.in_memory += memory_part
        if not await disk.reserve(disk_part, wait_s):
            return False
        self.on_disk += disk_part
        self.file.write(chunk)
        self.size = size
        return True

    def chunks(self) -> Iterator[bytes]:
        """The body from its start, `REPLAY_CHUNK_BYTES` at a time (at least one chunk, maybe empty)."""
        self.file.seek(0)
        chunk = self.file.read(REPLAY_CHUNK_BYTES)
        while True:
            following = self.file.read(REPLAY_CHUNK_BYTES) if chunk else b""
            yield chunk
            if not following:
                return
            chunk = following

    async def release(self, memory: BodyBudget, disk: BodyBudget) -> None:
        self.file.close()
        await memory.release(self.in_memory)
        await disk.release(self.on_disk)
        self.in_memory = self.on_disk = 0


def replay(body: SpooledBody, receive: Receive | None) -> Receive:
    """A `receive` that yields the held body from its start in chunks, then defers to the real one (disconnects)."""
    chunks = body.chunks()
    pending = next(chunks)
    done = False

    async def receive_next() -> dict[str, Any]:
        nonlocal pending, done
        if not done:
            current, pending = pending, next(chunks, None)
            done = pending is None
            return {"type": "http.request", "body": current, "more_body": not done}
        if receive is None:
            return {"type": "http.disconnect"}
        return await receive()

    return receive_next
