"""The OpenAPI document the service publishes (`/docs.json`, and the Swagger UI at `/`): BentoML's, made true.

BentoML documents every API with 400/404/500 answers of its own exception schemas, and lists the internal batchable
API too. What the service really answers: a JSON `{"error": "<message naming the limit>"}` (bento/guard.py makes
every error body that shape, BentoML's own validation errors included) with the statuses below, and `/raw_outputs`
is 404 from outside. Clients and fuzzers (schemathesis, tests/bento/test_openapi.py) read this document, so it must
name each status the service can send.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

ERROR_SCHEMA_NAME = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "title": ERROR_SCHEMA_NAME,
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "What is wrong, naming the field or limit."}},
    "additionalProperties": False,
}
# Every API: the guard's and BentoML's traffic answers.
COMMON_ERRORS = {
    "400": "A field missing, of the wrong type or out of range (the message names it); a malformed body.",
    "401": "Missing or wrong bearer token (only when the server runs with HAR_CLIP_API_TOKEN).",
    "413": "The body is over max_request_bytes.",
    "415": "A body of another content type than the one documented for the route.",
    "429": "More than max_concurrency requests in flight.",
    "500": "An unexpected server error (none is known: tests/bento fuzz the service).",
    "503": "The worker is saturated (batching queue past max_latency_ms, or no decode budget came free): retry.",
    "504": "The request took longer than timeout_s.",
}
# APIs that take uploads.
UPLOAD_ERRORS = {
    "413": "The body is over max_request_bytes, an image is over the pixel limit, or the images together decode to "
    "more than max_request_pixels.",
    "415": "The body is not multipart/form-data, or a file part's content type is not an image.",
    "422": "An upload is not a decodable image (empty, truncated, not an image format).",
}

# `/predict_video`: the video's own limits (the serving config's `video` block) and what an unreadable video is.
VIDEO_ROUTE_ERRORS = {
    "/predict_video": {
        "413": "The body is over video.max_bytes, or the video is over a limit of the serving config's `video` block: "
        "max_duration_s, max_frames (sampled frames), max_frame_pixels or max_decoded_pixels (the message names it).",
        "415": "The body is not multipart/form-data, or the file part's content type is not a video.",
        "422": "The upload is not a readable video: empty, corrupt or truncated, a container other than MP4/MOV, "
        "Matroska/WebM, AVI, MPEG-PS/TS or Ogg, or no video stream.",
    }
}


def published_spec(
    spec: dict[str, Any],
    upload_routes: Iterable[str],
    internal_routes: Iterable[str],
    constraints: Mapping[str, Mapping[str, dict[str, Any]]],
    route_errors: Mapping[str, Mapping[str, str]] | None = None,
) -> dict:
    """`spec` (BentoML's, as a dict) with internal routes removed, each API's error answers documented, the request
    body marked required where it has required fields, and the service's limits on its fields (`constraints`: route
    -> field -> JSON-schema keywords: a batch of 0 images, a label list of 0 labels are refused, so say so).
    `route_errors` replaces the descriptions of some statuses on some routes (route -> status -> description)."""
    spec = copy.deepcopy(spec)
    uploads = set(upload_routes)
    for route in internal_routes:
        spec["paths"].pop(route, None)
    for route, item in spec["paths"].items():
        operation = item.get("post")
        if operation is None:  # GET probes and metrics: BentoML's own, unchanged
            continue
        errors = {
            **COMMON_ERRORS,
            **(UPLOAD_ERRORS if route in uploads else {}),
            **(route_errors or {}).get(route, {}),
        }
        responses = {str(code): answer for code, answer in operation["responses"].items() if str(code).startswith("2")}
        for code, description in sorted(errors.items()):
            responses[code] = {
                "description": description,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}},
            }
        operation["responses"] = responses
        for media in operation.get("requestBody", {}).get("content", {}).values():
            schema = media.get("schema", {})
            if schema.get("required"):
                operation["requestBody"]["required"] = True
            for field, keywords in constraints.get(route, {}).items():
                if field in schema.get("properties", {}):
                    _constrain(schema["properties"][field], keywords)
    spec.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    return spec


def _constrain(schema: dict[str, Any], keywords: dict[str, Any]) -> None:
    """Add `keywords` to a property schema (to its non-null branch when it is an `anyOf`). BentoML copies pydantic's
    `ge`/`le` through as they are; JSON Schema (and every client generator) reads `minimum`/`maximum`."""
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"] or [schema]
    for branch in branches:
        for pydantic_name, json_name in (("ge", "minimum"), ("le", "maximum")):
            if pydantic_name in branch:
                branch[json_name] = branch.pop(pydantic_name)
        branch.update(keywords)
