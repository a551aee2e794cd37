"""The guard's worker-wide bounds on request bodies (bento/bodies.py), on the real guard in an ASGI stack (httpx's
ASGI transport) in front of an app that holds each request until told to answer, as a slow model call would."""

from __future__ import annotations

import asyncio
import hashlib

import httpx

from bento.guard import RequestGuard

KIB = 1024


class HeldApp:
    """Answers 200 once `release` is set; records the sha256 of every body it received, read as the app reads it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.bodies: list[str] = []
        self.seen = 0

    async def __call__(self, scope, receive, send) -> None:
        digest, more = hashlib.sha256(), True
        self.seen += 1
        while more:
            message = await receive()
            digest.update(message.get("body", b""))
            more = message.get("more_body", False)
        self.bodies.append(digest.hexdigest())
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})


def _guard(app: HeldApp, **budgets) -> RequestGuard:
    return RequestGuard(app, token=None, max_request_bytes=64 * KIB, file_fields={}, body_wait_s=0.3, **budgets)


def _body(size: int, seed: int = 0) -> bytes:
    return b"{" + bytes((seed + index) % 26 + 65 for index in range(size - 2)) + b"}"


def _run(scenario) -> None:
    asyncio.run(scenario())


def test_bodies_past_the_memory_budget_wait_then_get_503_with_retry_after():
    async def scenario() -> None:
        app = HeldApp()
        guard = _guard(app, max_buffered_bytes=100 * KIB)  # one 60 KiB body fits in memory, two do not
        body = _body(60 * KIB)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://test") as client:
            first = asyncio.create_task(client.post("/metadata", content=body))
            while app.seen < 1:
                await asyncio.sleep(0.01)
            second = await client.post("/metadata", content=body)  # the first still holds its 60 KiB
            assert second.status_code == 503 and second.headers["retry-after"] == "1"
            assert "retry shortly" in second.json()["error"] and guard.memory.used == len(body)
            waiting = asyncio.create_task(client.post("/metadata", content=body))
            await asyncio.sleep(0.05)
            app.release.set()  # the first is answered and gives its bytes back: the waiting one gets in
            assert (await first).status_code == 200 and (await waiting).status_code == 200
        assert guard.memory.used == 0 and app.seen == 2
        assert app.bodies == [hashlib.sha256(body).hexdigest()] * 2  # handed on whole, in chunks

    _run(scenario)


def test_large_bodies_spool_to_disk_under_their_own_budget():
    async def scenario() -> None:
        app = HeldApp()
        guard = _guard(app, spool_above_bytes=16 * KIB, max_spooled_bytes=100 * KIB)
        big, other = _body(60 * KIB, 1), _body(60 * KIB, 2)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://test") as client:
            first = asyncio.create_task(client.post("/metadata", content=big))
            while app.seen < 1:
                await asyncio.sleep(0.01)
            assert guard.disk.used == len(big) and guard.memory.used == 16 * KIB  # on disk; memory: its first 16 KiB
            refused = await client.post("/metadata", content=other)
            assert refused.status_code == 503 and "on disk" in refused.json()["error"]
            small = asyncio.create_task(client.post("/metadata", content=_body(8 * KIB)))  # stays in memory: fits
            app.release.set()
            assert (await first).status_code == 200 and (await small).status_code == 200
        assert guard.disk.used == 0 and guard.memory.used == 0
        assert app.bodies[0] == hashlib.sha256(big).hexdigest()

    _run(scenario)


def test_one_largest_request_always_fits_and_refusals_give_their_bytes_back():
    async def scenario() -> None:
        app = HeldApp()
        app.release.set()
        guard = _guard(app, max_buffered_bytes=KIB, max_spooled_bytes=KIB)  # below one request: raised to it
        assert guard.memory.limit == 64 * KIB and guard.disk.limit == 64 * KIB
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://test") as client:
            assert (await client.post("/metadata", content=_body(60 * KIB))).status_code == 200
            assert (await client.post("/metadata", content=b" " * (70 * KIB))).status_code == 413
            assert (await client.post("/metadata", content=b"")).status_code == 200  # an empty body is handed on too
        assert guard.memory.used == 0 and guard.disk.used == 0

    _run(scenario)
