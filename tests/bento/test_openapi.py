"""The service against its own published OpenAPI document (marked `slow`): schemathesis, a property-based fuzzer,
reads `/docs.json` from the session's server and sends schema-valid and schema-violating requests to every operation
with a fixed seed; every check it has must pass (`--checks all`): no 5xx, every status and body as documented,
valid requests accepted, invalid ones rejected, auth enforced.

Exclusions, each on the operations it concerns only:
- `negative_data_rejection` on the four upload operations: a multipart body has no types on the wire, so the
  check's "array instead of integer" cases (an empty or one-element `top_k` array) are the same bytes as an
  omitted or a valid `top_k`, and no server can tell them apart.
- `positive_data_acceptance` on `/classify` as well: schemathesis sends an array field of a multipart body as one
  part per item (OpenAPI 3.1.1's rule), while BentoML reads a non-file field once, as JSON, so `labels` must be one
  part holding a JSON list (the published field description says so); the per-item form is refused with a 400.
  Elsewhere the check is told that 413 and 422 are expected answers to schema-valid uploads: OpenAPI can say "a
  binary file" but not "a decodable image under the pixel limit" or "a video within the video limits".
`/metadata` and the probes get every check.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.bento.conftest import API_TOKEN

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 25
SEED = 14


def test_the_service_keeps_its_published_openapi_contract_under_fuzzing(server, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text('[checks.positive_data_acceptance]\nexpected-statuses = ["2xx", "401", "413", "422"]\n')
    uploads = ("/predict", "/predict_batch", "/classify", "/predict_video")
    outputs = [
        _schemathesis(server, config, tmp_path, *(item for route in uploads for item in ("--exclude-path", route))),
        _schemathesis(
            server, config, tmp_path, "--include-path", "/predict", "--include-path", "/predict_batch",
            "--include-path", "/predict_video", "--exclude-checks", "negative_data_rejection",
        ),
        _schemathesis(
            server, config, tmp_path, "--include-path", "/classify",
            "--exclude-checks", "negative_data_rejection,positive_data_acceptance",
        ),
    ]  # fmt: skip
    for (returncode, output), operations in zip(outputs, (5, 3, 1), strict=True):  # /metadata and the 4 probes first
        print(output[-1200:])
        assert returncode == 0, output[-8000:]
        assert re.search(rf"Operations:\s+{operations} selected", output), output[-3000:]
        generated = re.search(r"(\d+) generated", output)
        assert generated and int(generated.group(1)) >= EXAMPLES_PER_OPERATION, output[-3000:]


def _schemathesis(server, config, cwd, *selection: str) -> tuple[int, str]:
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{server.url}/docs.json"),
        *("--checks", "all", "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", str(SEED), *selection),
        *("--header", f"Authorization: Bearer {API_TOKEN}", "--request-timeout", "60", "--no-color"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=cwd)
    return result.returncode, result.stdout


def _binary_fields(schema: dict, components: dict) -> tuple[dict[str, bool], list[str]]:
    """{field: is a list} of a multipart schema's binary fields, and its required non-binary fields."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    binary, other = {}, []
    for name, prop in schema.get("properties", {}).items():
        items = prop.get("items", {})
        if prop.get("format") == "binary" or items.get("format") == "binary":
            binary[name] = prop.get("type") == "array"
        elif name in schema.get("required", []):
            other.append(name)
    return binary, other


def test_every_binary_field_accepts_real_media_of_its_kind(server, synthetic_root):
    """schemathesis accepts 413 and 422 for binary fields (random bytes are no image), so it cannot notice a route
    that refuses every real file: here each upload operation of the published document gets real media (a JPEG of
    the session's synthetic set, or a short clip for a video field) and must answer 200."""
    import json

    import requests

    from bento_ops.smoke import _clip
    from tests.bento.conftest import AUTH

    spec = requests.get(f"{server.url}/docs.json", timeout=30).json()
    components = spec.get("components", {}).get("schemas", {})
    image = next(synthetic_root.glob("*/*.jpg")).read_bytes()
    checked = []
    for path, operations in spec["paths"].items():
        body = operations.get("post", {}).get("requestBody", {}).get("content", {}).get("multipart/form-data")
        if body is None:
            continue
        binary, required = _binary_fields(body["schema"], components)
        files = []
        for field, is_list in binary.items():
            media = ("clip.avi", _clip(), "video/x-msvideo") if "video" in field else ("photo.jpg", image, "image/jpeg")
            files += [(field, media)] * (2 if is_list else 1)
        for field in required:  # /classify's labels: one part holding a JSON list (the published description)
            files.append((field, (None, json.dumps(["a person clapping", "a person sleeping"]))))
        response = requests.post(f"{server.url}{path}", files=files, headers=AUTH, timeout=120)
        assert response.status_code == 200, (path, response.text)
        checked.append(path)
    assert sorted(checked) == ["/classify", "/predict", "/predict_batch", "/predict_video"]
