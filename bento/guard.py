"""An ASGI guard in front of the service: bearer-token auth, a request-size limit and upload checks.

It answers with a JSON 4xx before BentoML parses anything, because BentoML itself answers several bad requests with
500: a JSON body sent to a multipart endpoint, a text field where a file belongs (BentoML would try to download it
as a URL), a malformed multipart body. GET routes (docs, `/healthz`, `/livez`, `/readyz`, `/metrics`) stay open
for probes and scrapers; the token guards every API call (POST).

The service calls its own batchable API through BentoML's in-process proxy; such inner requests inherit the outer
request's checks through a context variable instead of being checked (and size-limited) a second time.

The bodies the guard holds are bounded across requests, not only each on its own (bento/bodies.py): in memory up to
`spool_above_bytes` each, on disk beyond, under worker-wide budgets for both; a request that cannot reserve its
bytes within `body_wait_s` is answered 503 with `Retry-After`, so `max_concurrency` uploads of `max_bytes` each can
no longer add up to more than the pod's memory or its `/tmp` volume.

Every error answer of an API call leaves as `{"error": "<message>"}`, BentoML's own included (its validation errors
carry a list of pydantic errors), so the published OpenAPI document (bento/openapi.py, served here at `/docs.json`)
can describe one error shape.

`on_error` (bento/prometheus_metrics.py's refusal counter) is told of every API call answered with an error, by the
guard or by the service behind it: (route, status, whether the guard answered).
"""

from __future__ import annotations

import contextvars
import functools
import hmac
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse

from bento.bodies import BodyBudget, SpooledBody, replay

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_INSIDE_CHECKED_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar("har_clip_checked", default=False)
IMAGE_MEDIA_TYPES = ("image/", "application/octet-stream")


class RequestGuard:
    """ASGI middleware. `token`: None for no auth; `file_fields`: route -> multipart file fields it needs;
    `internal_routes`: routes only the service itself may call (its batchable API); `openapi`: the document served
    at `/docs.json`; `form_fields`: route -> its other multipart fields, refused when sent twice; `media_types`: route
    -> the content-type prefixes its files may have (default: images); `route_max_bytes`: route -> its own body
    limit instead of `max_request_bytes` (a video is larger than a batch of images); `on_error`: called with
    (route, status, answered by the guard) for every API call answered with status 400 or above."""

    def __init__(
        self,
        app: Any,
        token: str | None,
        max_request_bytes: int,
        file_fields: Mapping[str, tuple[str, ...]],
        internal_routes: tuple[str, ...] = (),
        openapi: Callable[[], dict[str, Any]] | None = None,
        form_fields: Mapping[str, tuple[str, ...]] | None = None,
        media_types: Mapping[str, tuple[str, ...]] | None = None,
        route_max_bytes: Mapping[str, int] | None = None,
        max_buffered_bytes: int | None = None,
        max_spooled_bytes: int | None = None,
        spool_above_bytes: int = 1024 * 1024,
        body_wait_s: float = 5.0,
        on_error: Callable[[str, int, bool], None] | None = None,
    ) -> None:
        self.app = app
        self.on_error = on_error
        largest = max([max_request_bytes, *(route_max_bytes or {}).values()])
        # one largest body always fits each budget, so a lone request is never refused for a budget
        self.spool_above_bytes = spool_above_bytes
        self.memory = BodyBudget(max(max_buffered_bytes or largest, min(largest, spool_above_bytes)))
        self.disk = BodyBudget(max(max_spooled_bytes or largest, largest))
        self.body_wait_s = body_wait_s
        self.media_types = dict(media_types or {})
        self.route_max_bytes = dict(route_max_bytes or {})
        self.form_fields = dict(form_fields or {})  # route -> its non-file multipart fields (each read once)
        self.openapi = functools.cache(openapi) if openapi else None
        self.token = token.encode() if token else None
        self.max_request_bytes = max_request_bytes
        self.file_fields = dict(file_fields)
        self.internal_routes = frozenset(internal_routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.openapi and scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/docs.json":
            return await JSONResponse(self.openapi())(scope, receive, send)
        if scope["type"] != "http" or scope["method"] != "POST" or _INSIDE_CHECKED_REQUEST.get():
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        problem = self._check_headers(scope, headers)
        body = SpooledBody(self.spool_above_bytes)
        try:
            if problem is None:
                problem = await self._read_body(receive, self._max_bytes(scope), body)
            if problem is None and scope["path"] in self.file_fields:
                problem = await self._check_uploads(scope, body, self.file_fields[scope["path"]])
            if problem is not None:
                status, message = problem
                self._report(scope, status, by_guard=True)
                extra = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                if status == 503:
                    extra = {"Retry-After": str(max(1, math.ceil(self.body_wait_s)))}
                return await JSONResponse({"error": message}, status_code=status, headers=extra)(scope, receive, send)
            marker = _INSIDE_CHECKED_REQUEST.set(True)
            answer = _uniform_errors(send, functools.partial(self._report, scope))
            try:
                await self.app(scope, replay(body, receive), answer)
            finally:
                _INSIDE_CHECKED_REQUEST.reset(marker)
        finally:
            await body.release(self.memory, self.disk)

    def _check_headers(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        if scope["path"] in self.internal_routes:
            return 404, f"{scope['path']} is internal to the service; use /predict."
        if self.token is not None:
            scheme, _, credentials = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(), self.token):
                return 401, "Missing or wrong bearer token: send `Authorization: Bearer <token>`."
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._max_bytes(scope):
            return 413, f"The request body is {int(length):,} bytes; the limit is {self._max_bytes(scope):,} bytes."
        content_type = headers.get("content-type", "")
        media_type = content_type.split(";")[0].strip().lower()
        if media_type == "multipart/form-data" and "boundary=" not in content_type.lower():
            return 400, "Malformed multipart body: the Content-Type header names no boundary."
        if scope["path"] not in self.file_fields and media_type not in ("", "application/json"):
            return 415, f"{scope['path']} takes an application/json body (or none); got content type {media_type!r}."
        if scope["path"] in self.file_fields and media_type != "multipart/form-data":
            fields = ", ".join(self.file_fields[scope["path"]])
            return 415, (
                f"{scope['path']} takes multipart/form-data with the file(s) in field {fields!r}; "
                f"got content type {media_type or 'none'!r}."
            )
        return None

    def _report(self, scope: Scope, status: int, by_guard: bool = False) -> None:
        if self.on_error is not None:
            self.on_error(scope["path"], status, by_guard)

    def _max_bytes(self, scope: Scope) -> int:
        return self.route_max_bytes.get(scope["path"], self.max_request_bytes)

    async def _read_body(self, receive: Receive, max_bytes: int, body: SpooledBody) -> tuple[int, str] | None:
        """The whole body into `body`, each chunk reserved from the worker's budgets."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            if body.size + len(chunk) > max_bytes:
                return 413, f"The request body is over the limit of {max_bytes:,} bytes."
            if not await body.append(chunk, self.memory, self.disk, self.body_wait_s):
                held = f"{self.memory.limit:,} bytes of uploads in memory and {self.disk.limit:,} on disk"
                return 503, f"The server holds {held} already; retry shortly."
            if not message.get("more_body", False):
                break
        return None

    async def _check_uploads(self, scope: Scope, body: SpooledBody, fields: tuple[str, ...]) -> tuple[int, str] | None:
        request = Request(scope, replay(body, None))
        try:
            form = await request.form()
        except (MultiPartException, HTTPException, ValueError, KeyError) as error:  # starlette wraps as HTTPException
            return 400, f"Malformed multipart body: {getattr(error, 'detail', None) or error}."
        try:
            declared = self.form_fields.get(scope["path"], ())
            repeated = sorted({key for key in declared if len(form.getlist(key)) > 1})
            if repeated:  # BentoML would read one of them and ignore the rest
                return 400, f"Multipart field {repeated[0]!r} is sent more than once; send it once."
            accepted = self.media_types.get(scope["path"], IMAGE_MEDIA_TYPES)
            kind = "an image" if accepted == IMAGE_MEDIA_TYPES else f"one of {', '.join(accepted)}"
            for field in fields:
                values = form.getlist(field)
                if not values:
                    return 400, f"Multipart field {field!r} is missing: upload the file(s) there."
                for value in values:
                    if not isinstance(value, UploadFile):
                        return 400, f"Multipart field {field!r} must be an uploaded file, not a text value."
                    media_type = (value.content_type or "application/octet-stream").lower()
                    if not media_type.startswith(accepted):
                        return 415, f"{value.filename or field}: content type {media_type!r} is not {kind}."
        finally:
            await form.close()
        return None


def _uniform_errors(send: Send, on_error: Callable[[int], None]) -> Send:
    """A `send` that rewrites the body of any 4xx/5xx answer to `{"error": "<message>"}`, its status to `on_error`."""
    start: dict[str, Any] | None = None
    chunks: list[bytes] = []

    async def wrapped(message: dict[str, Any]) -> None:
        nonlocal start
        if message["type"] == "http.response.start" and message["status"] >= 400:
            start = message
            on_error(message["status"])
            return None
        if start is None or message["type"] != "http.response.body":
            return await send(message)
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return None
        body = _error_body(b"".join(chunks))
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length", b"content-type")]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped


def _error_body(raw: bytes) -> bytes:
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict) and set(data) == {"error"} and isinstance(data["error"], str):
        return raw
    if isinstance(data, dict) and "error" in data:
        parts = [data["error"], data.get("detail")]
        message = "; ".join(_message(part) for part in parts if part)
    else:
        message = raw.decode(errors="replace").strip() or "Request failed."
    return json.dumps({"error": message}).encode()


def _message(value: Any) -> str:
    """Readable text of a BentoML error field: a string, or pydantic's list of {loc, msg} errors."""
    if isinstance(value, list):
        return "; ".join(_message(item) for item in value)
    if isinstance(value, dict) and "msg" in value:
        location = ".".join(str(part) for part in value.get("loc", ()) if part not in ("body",))
        return f"{location}: {value['msg']}" if location else str(value["msg"])
    return str(value)
