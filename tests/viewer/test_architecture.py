"""The viewer sits on top: nothing below it imports it, and importing it touches no ZenML store."""

import ast
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

LOWER_LAYERS = ("har_core", "steps", "pipelines", "stacks", "bento")


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_lower_layer_imports_the_viewer():
    files = [path for layer in LOWER_LAYERS for path in (PROJECT_ROOT / layer).rglob("*.py")]
    assert any(path.parent.name == "har_core" for path in files)
    offenders = {
        str(path.relative_to(PROJECT_ROOT))
        for path in files
        if any(name.split(".")[0] == "viewer" for name in imported_modules(path))
    }
    assert not offenders, offenders


def test_importing_the_viewer_creates_no_zenml_client(tmp_path):
    """Client look-ups happen when a page runs, never at import (a missing store must not break imports)."""
    store = tmp_path / "zenml"
    script = (
        "import viewer.store, viewer.backends, viewer.charts, viewer.tables, viewer.session_settings, sys\n"
        "assert 'zenml.client' not in sys.modules, 'zenml.client imported'\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT), "ZENML_CONFIG_PATH": str(store)}
    subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, check=True)
    assert not store.exists()


def test_the_viewer_listens_on_loopback_unless_told_otherwise(monkeypatch):
    """It shows every run's data and runs models on uploads with no login: not on every interface by default."""
    import viewer.__main__ as launcher

    commands = []
    monkeypatch.setattr(launcher.subprocess, "call", lambda command, **kwargs: commands.append(command) or 0)
    monkeypatch.delenv("STREAMLIT_SERVER_ADDRESS", raising=False)
    monkeypatch.delenv(launcher.ADDRESS_ENV, raising=False)
    launcher.main(["--server.port", "8502"])
    monkeypatch.setenv(launcher.ADDRESS_ENV, "0.0.0.0")
    launcher.main([])
    launcher.main(["--server.address", "10.0.0.5"])
    assert commands[0][-4:] == ["--server.address", "127.0.0.1", "--server.port", "8502"]
    assert commands[1][-2:] == ["--server.address", "0.0.0.0"]
    assert commands[2][-2:] == ["--server.address", "10.0.0.5"] and commands[2].count("--server.address") == 1
