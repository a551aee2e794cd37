"""The deployment's smoke test: the endpoint answers over HTTP with the model version and format it should serve."""

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
    """POST /metadata and /predict (one generated image); returns the prediction. Raises `SmokeTestError`."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    metadata = _post(f"{url}/metadata", b"{}", {**headers, "Content-Type": "application/json"})
    served = (str(metadata["model"]["version"]), metadata["model"]["format"])
    if served != (str(model_version), export_format):
        raise SmokeTestError(f"{url} serves version/format {served}, expected {(model_version, export_format)}.")
    body, content_type = _multipart_image()
    prediction = _post(f"{url}/predict", body, {**headers, "Content-Type": content_type})
    if not prediction.get("predictions"):
        raise SmokeTestError(f"{url}/predict answered without predictions: {prediction}")
    return {"labels": len(metadata["labels"]), "top1": prediction["predictions"][0], "model": prediction["model"]}


def _multipart_image() -> tuple[bytes, str]:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (90, 140, 200)).save(buffer, "JPEG")
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="smoke.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + buffer.getvalue()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _post(url: str, body: bytes, headers: dict[str, str]) -> dict:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise SmokeTestError(f"{url} answered {error.code}: {error.read()[:500]!r}") from error
    except (urllib.error.URLError, OSError) as error:
        raise SmokeTestError(f"{url} did not answer: {error}") from error
