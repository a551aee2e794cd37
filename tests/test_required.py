"""Under CI=true a missing required tool fails the test that needs it; elsewhere it is a skip with the reason."""

import pytest

from bento_ops.podman import missing_container_tools
from tests.required import REQUIRED_IN_CI, skip_without


def test_a_missing_tool_is_a_skip_for_a_developer(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium here"):
        skip_without("chromium", "no chromium here")


@pytest.mark.parametrize("requirement", REQUIRED_IN_CI)
def test_a_missing_tool_fails_under_ci(monkeypatch, requirement):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"CI=true requires {requirement}, and it is missing: gone"):
        skip_without(requirement, "gone")


def test_only_ci_requirements_can_fail_the_run(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(ValueError, match="'a GPU' is not a CI requirement"):
        skip_without("a GPU", "GPU tests stay skips")


def test_the_container_check_names_the_missing_requirement(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    missing = missing_container_tools()
    assert missing is not None and missing.requirement in REQUIRED_IN_CI
    assert missing.requirement in missing.reason
