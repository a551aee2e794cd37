"""The locks under locks/: current with pyproject.toml, hashed, host-free, and what `make install` installs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from locks.declarations import LOCKS, UV_LOCK, declarations_sha256, recorded_sha256, stale_locks
from locks.sources import pip_settings, uv_source_args
from tests.conftest import PROJECT_ROOT

CPU, GPU = LOCKS["cpu-dev-cluster"], LOCKS["gpu-dev-cluster"]


def pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", text, re.MULTILINE))


def test_every_committed_lock_matches_pyproject():
    assert stale_locks(list(LOCKS.values())) == []
    result = subprocess.run([sys.executable, "-m", "locks", "check"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_changed_declaration_makes_the_lock_stale_and_a_comment_does_not(tmp_path):
    original = (PROJECT_ROOT / "pyproject.toml").read_text()
    commented = tmp_path / "commented.toml"
    commented.write_text(original.replace('"pillow>=11",', '"pillow>=11",  # a new comment'))
    assert stale_locks([CPU, GPU], commented) == []
    changed = tmp_path / "changed.toml"
    changed.write_text(original.replace('"pillow>=11",', '"pillow>=12",'))
    assert declarations_sha256(CPU, changed) != recorded_sha256(CPU.path)
    problems = stale_locks([CPU, GPU], changed)
    assert len(problems) == 2 and "locks/cpu-dev-cluster.txt" in problems[0]
    only_gpu = tmp_path / "gpu.toml"
    only_gpu.write_text(original.replace('"onnxruntime-gpu>=1.20"', '"onnxruntime-gpu>=1.21"'))
    assert [problem.split()[0] for problem in stale_locks([CPU, GPU], only_gpu)] == ["locks/gpu-dev-cluster.txt"]


def test_the_check_command_fails_naming_the_stale_lock(tmp_path):
    """`python -m locks check` against a changed pyproject.toml, as CI runs it (in a copy of the project)."""
    copy = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "locks", copy / "locks", ignore=shutil.ignore_patterns("__pycache__"))
    text = (PROJECT_ROOT / "pyproject.toml").read_text()
    (copy / "pyproject.toml").write_text(text.replace('"tqdm>=4.66",', '"tqdm>=4.66",\n    "rich>=13",'))
    result = subprocess.run([sys.executable, "-m", "locks", "check"], cwd=copy, capture_output=True, text=True)
    assert result.returncode == 1
    assert "Stale lock: locks/cpu-dev-cluster.txt" in result.stderr and "make lock" in result.stderr


def test_locks_pin_every_package_with_hashes_and_name_no_host():
    for spec in (CPU, GPU):
        text = spec.path.read_text()
        assert "://" not in text
        assert not re.search(r"^\s*(--(extra-)?index-url|--find-links|-[fi]\s)", text, re.MULTILINE)
        entries = re.split(r"^(?=[A-Za-z0-9])", text, flags=re.MULTILINE)[1:]
        assert len(entries) > 200
        for entry in entries:
            assert re.match(r"[A-Za-z0-9._-]+==\S+ \\\n", entry), entry[:80]
            assert "--hash=sha256:" in entry, entry[:80]


def test_the_cpu_lock_pins_the_cpu_torch_and_the_gpu_lock_the_cuda_one_without_tensorrt():
    cpu, gpu = pins(CPU.path.read_text()), pins(GPU.path.read_text())
    assert cpu["torch"].endswith("+cpu") and not any(name.startswith("nvidia-cu") for name in cpu)
    assert gpu["torch"] == cpu["torch"].removesuffix("+cpu") and "triton" in gpu
    assert "onnxruntime" in cpu and "onnxruntime-gpu" not in cpu
    assert "onnxruntime-gpu" in gpu and "onnxruntime" not in gpu
    assert not any(name.startswith("tensorrt") for name in gpu)
    assert "# Not in this lock: tensorrt-cu12>=10,<11." in GPU.path.read_text()


def test_uv_is_bootstrapped_at_the_version_and_hashes_of_the_locks():
    block = UV_LOCK.read_text()
    assert pins(block) == {"uv": pins(CPU.path.read_text())["uv"]}
    cpu_block = re.search(r"^uv==.*?(?=^\S)", CPU.path.read_text(), re.MULTILINE | re.DOTALL).group(0)
    assert set(re.findall(r"sha256:\w+", block)) == set(re.findall(r"sha256:\w+", cpu_block))


def test_pips_find_links_reach_uv_for_the_cpu_lock_only(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_FIND_LINKS", f"{tmp_path / 'a'} {tmp_path / 'b'}")
    monkeypatch.setenv("PIP_INDEX_URL", "file:///nowhere/simple")
    settings = pip_settings()
    assert settings["find-links"] == f"{tmp_path / 'a'} {tmp_path / 'b'}"
    assert uv_source_args(settings) == [
        "--find-links",
        str(tmp_path / "a"),
        "--find-links",
        str(tmp_path / "b"),
        "--index-url",
        "file:///nowhere/simple",
    ]
    assert uv_source_args(settings, find_links=False) == ["--index-url", "file:///nowhere/simple"]


@pytest.mark.parametrize("extras", ["cpu,dev,cluster", "gpu,dev,cluster"])
def test_make_install_installs_the_lock_of_the_extra_set(extras, tmp_path):
    """`make -n` prints the recipe without running it: the lock is checked, then synced with hashes required."""
    result = subprocess.run(
        ["make", "-n", "-B", "install", f"EXTRAS={extras}", f"VENV={tmp_path / 'venv'}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    lock = f"locks/{extras.replace(',', '-')}.txt"
    commands = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert f"python3 -m locks check {lock}" in commands
    assert any("uv pip sync" in line and "--require-hashes" in line and line.endswith(lock) for line in commands)
    assert not any("pip install" in line and "-e '.[" in line for line in commands)
