"""The deployment's smoke test: every route answers over HTTP, with the model version and format it should serve.

A release replaces a working deployment only after this passes, so it calls each route a client uses with real
media made here: /metadata, /predict and /predict_batch (a generated JPEG), /classify (the same image and two labels,
where the export carries the text tower) and /predict_video (a two-second clip).
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import uuid

from PIL import Image


class SmokeTestError(RuntimeError):
    """The deployed endpoint did not answer as expected; the message says what it answered."""


def smoke_test(url: str, model_version: str, export_format: str, token: str | None = None) -> dict:
    """Every route once with generated media; returns what /predict answered and what was called. Raises
    `SmokeTestError` naming the route that failed."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    metadata = _post(f"{url}/metadata", b"{}", {**headers, "Content-Type": "application/json"})
    served = (str(metadata["model"]["version"]), metadata["model"]["format"])
    if served != (str(model_version), export_format):
        raise SmokeTestError(f"{url} serves version/format {served}, expected {(model_version, export_format)}.")
    image = _jpeg()
    calls = [
        ("predict", [("image", "smoke.jpg", "image/jpeg", image)], "predictions"),
        ("predict_batch", [("images", f"smoke-{i}.jpg", "image/jpeg", image) for i in range(2)], "predictions"),
        ("predict_video", [("video", "smoke.avi", "video/x-msvideo", _clip())], "segments"),
    ]
    if metadata.get("supports_custom_labels"):
        labels = json.dumps(["a person clapping", "a person sleeping"]).encode()
        calls.append(
            ("classify", [("image", "smoke.jpg", "image/jpeg", image), ("labels", None, None, labels)], "predictions")
        )
    answers = {}
    for route, parts, key in calls:
        body, content_type = _multipart(parts)
        answers[route] = _post(f"{url}/{route}", body, {**headers, "Content-Type": content_type})
        if not answers[route].get(key):
            raise SmokeTestError(f"{url}/{route} answered without {key}: {str(answers[route])[:500]}")
    prediction = answers["predict"]
    return {
        "labels": len(metadata["labels"]),
        "top1": prediction["predictions"][0],
        "model": prediction["model"],
        "routes": ["metadata", *answers],
    }


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (90, 140, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def _clip(seconds: int = 2, fps: int = 4) -> bytes:
    """A two-second Motion-JPEG AVI (FFmpeg's own encoder: every PyAV build has it) of a colour ramp."""
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="avi") as container:
        stream = container.add_stream("mjpeg", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 96, 96, "yuvj420p"
        for index in range(seconds * fps):
            pixels = np.full((96, 96, 3), (index * 20) % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def _multipart(parts: list[tuple[str, str | None, str | None, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body of (field, file name or None, content type or None, bytes) parts."""
    boundary = uuid.uuid4().hex
    body = b""
    for field, filename, content_type, data in parts:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        head += f"Content-Type: {content_type}\r\n" if content_type else ""
        body += (head + "\r\n").encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _post(url: str, body: bytes, headers: dict[str, str]) -> dict:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise SmokeTestError(f"{url} answered {error.code}: {error.read()[:500]!r}") from error
    except (urllib.error.URLError, OSError) as error:
        raise SmokeTestError(f"{url} did not answer: {error}") from error
