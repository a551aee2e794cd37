"""tests/workers.py on a real pytest-xdist run: what must share a worker does, and slow groups are queued first."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PROJECT_ROOT

pytest_plugins = ["pytester"]

RECORD = """
import json, os, pathlib, pytest

def record(request):
    line = {"test": request.node.name, "worker": os.environ["PYTEST_XDIST_WORKER"]}
    with open(pathlib.Path(os.environ["RECORD_TO"]), "a") as out:
        out.write(json.dumps(line) + "\\n")
"""


def _module(name: str, marker: str, count: int) -> str:
    decorator = f"@pytest.mark.{marker}\n" if marker else ""
    tests = "".join(f"{decorator}def test_{name}_{index}(request):\n    record(request)\n\n" for index in range(count))
    return f"import pytest\nfrom recorder import record\n\n{tests}"


def test_groups_share_a_worker_and_slow_groups_run_first(pytester: pytest.Pytester, monkeypatch, tmp_path):
    record_to = tmp_path / "record.jsonl"
    monkeypatch.setenv("RECORD_TO", str(record_to))
    monkeypatch.setenv("PYTHONPATH", f"{PROJECT_ROOT}:{pytester.path}")
    pytester.makepyfile(recorder=RECORD)
    pytester.makeconftest('pytest_plugins = ["tests.workers"]\n')
    pytester.makeini("[pytest]\nmarkers =\n    torchrun\n    container\n    slow\n")
    pytester.makepyfile(
        test_plain_one=_module("plain_one", "", 4),
        test_plain_two=_module("plain_two", "", 4),
        test_torch_one=_module("torch_one", "torchrun", 3),
        test_torch_two=_module("torch_two", "torchrun", 3),
        test_pods=_module("pods", "container", 2),
        test_zslow=_module("zslow", "slow", 2),
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "--dist", "loadgroup", "--no-loadscope-reorder", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=18)
    lines = [json.loads(line) for line in record_to.read_text().splitlines()]
    workers: dict[str, set[str]] = {}
    for line in lines:
        workers.setdefault(line["test"].rsplit("_", 1)[0], set()).add(line["worker"])
    assert all(len(used) == 1 for used in workers.values()), workers  # each module on one worker
    assert workers["test_torch_one"] == workers["test_torch_two"]  # every torchrun test in one queue
    first_on = {}
    for line in lines:
        first_on.setdefault(line["worker"], line["test"])
    assert any(test.startswith("test_zslow") for test in first_on.values()), first_on  # queued before the plain modules


def test_the_suite_runs_in_one_process_without_xdist(pytester: pytest.Pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))
    pytester.makeconftest('pytest_plugins = ["tests.workers"]\n')
    pytester.makeini("[pytest]\nmarkers =\n    torchrun\n    container\n    slow\n")
    pytester.makepyfile(test_torch="import pytest\n\n@pytest.mark.torchrun\ndef test_alone():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:randomly", "--strict-markers")  # as ours
    result.assert_outcomes(passed=1)  # not an INTERNALERROR for the xdist_group mark nobody registered
