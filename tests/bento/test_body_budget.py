"""The guard's worker-wide bound on request bodies held in memory, on the real guard in an ASGI stack (httpx's ASGI
transport) in front of an app that holds each request until told to answer, as a slow model call would."""

from __future__ import annotations

import asyncio

import httpx

from bento.guard import RequestGuard

KIB = 1024


class HeldApp:
    """Answers 200 once `release` is set; counts the requests it got."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.seen = 0

    async def __call__(self, scope, receive, send) -> None:
        await receive()
        self.seen += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})


def _guard(app: HeldApp, buffered: int) -> RequestGuard:
    return RequestGuard(
        app, token=None, max_request_bytes=64 * KIB, file_fields={}, max_buffered_bytes=buffered, body_wait_s=0.3
    )


def test_bodies_past_the_workers_budget_wait_then_get_503_with_retry_after():
    asyncio.run(_past_the_budget())


async def _past_the_budget() -> None:
    app = HeldApp()
    guard = _guard(app, buffered=100 * KIB)  # one 60 KiB body fits, two do not
    body = b"{" + b" " * (60 * KIB) + b"}"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://test") as client:
        first = asyncio.create_task(client.post("/metadata", content=body))
        while app.seen < 1:
            await asyncio.sleep(0.01)
        second = await client.post("/metadata", content=body)  # the first still holds its 60 KiB
        assert second.status_code == 503 and second.headers["retry-after"] == "1"
        assert "retry shortly" in second.json()["error"] and guard.budget.used == len(body)
        waiting = asyncio.create_task(client.post("/metadata", content=body))
        await asyncio.sleep(0.05)
        app.release.set()  # the first is answered and gives its bytes back: the waiting one gets in
        assert (await first).status_code == 200 and (await waiting).status_code == 200
    assert guard.budget.used == 0 and app.seen == 2


def test_one_largest_request_always_fits_and_refusals_give_their_bytes_back():
    asyncio.run(_largest_fits())


async def _largest_fits() -> None:
    app = HeldApp()
    app.release.set()
    guard = _guard(app, buffered=KIB)  # smaller than one request's limit: raised to it
    assert guard.budget.limit == 64 * KIB
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://test") as client:
        assert (await client.post("/metadata", content=b"{" + b" " * (60 * KIB) + b"}")).status_code == 200
        over = await client.post("/metadata", content=b" " * (70 * KIB))
        assert over.status_code == 413
    assert guard.budget.used == 0
