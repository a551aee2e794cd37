"""The service against its own published OpenAPI document (marked `slow`): schemathesis, a property-based fuzzer,
reads `/docs.json` from the session's server and sends schema-valid and schema-violating requests to every operation
with a fixed seed; every check it has must pass (`--checks all`): no 5xx, every status and body as documented,
valid requests accepted, invalid ones rejected, auth enforced.

Schemathesis's `positive_data_acceptance` check is told that 413 and 422 are expected answers to schema-valid
uploads: OpenAPI can say "a binary file" but not "a decodable image under the pixel limit", so a schema-valid
upload of random bytes is rightly refused. No check is excluded.
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
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{server.url}/docs.json"),
        *("--checks", "all", "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", str(SEED)),
        *("--header", f"Authorization: Bearer {API_TOKEN}", "--request-timeout", "60", "--no-color"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    summary = result.stdout[-8000:]
    print(summary[-1500:])
    assert result.returncode == 0, summary
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated and int(generated.group(1)) >= EXAMPLES_PER_OPERATION * 4, summary  # the 4 APIs at least
    assert "/predict_batch" in result.stdout and "/classify" in result.stdout
