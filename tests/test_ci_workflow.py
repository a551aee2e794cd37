"""The GitHub workflow users look for: what .ci/run runs on Linux (Python 3.11, 3.12), fast tests on macOS arm64,
checked with actionlint (it cannot run here: no GitHub runner)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "ci.yml"
ACTIONLINT = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")


def test_the_workflow_runs_ci_on_linux_pythons_and_the_fast_tests_on_macos():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    linux, macos = jobs["linux"], jobs["macos"]
    assert linux["runs-on"] == "ubuntu-latest" and linux["strategy"]["matrix"]["python"] == ["3.11", "3.12"]
    assert any(step.get("run") == ".ci/run" for step in linux["steps"])
    assert macos["runs-on"] == "macos-latest"
    assert any("make test-fast" in step.get("run", "") for step in macos["steps"])


@pytest.mark.skipif(not Path(ACTIONLINT).exists(), reason="actionlint is installed by the dev extra")
def test_actionlint_passes_the_workflow_and_catches_a_broken_one(tmp_path):
    clean = subprocess.run([ACTIONLINT, str(WORKFLOW)], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    broken = tmp_path / "ci.yml"
    broken.write_text(WORKFLOW.read_text().replace("${{ matrix.python }}", "${{ matrix.pyhton }}", 1))
    result = subprocess.run([ACTIONLINT, str(broken)], capture_output=True, text=True)
    assert result.returncode != 0 and "pyhton" in result.stdout
