"""The locks under locks/: current with pyproject.toml, hashed, host-free, and what `make install` installs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from locks import torch_wheels
from locks.declarations import (
    LOCKS,
    SUPPORTED_PYTHONS,
    UV_LOCK,
    Target,
    declarations_sha256,
    lock_for,
    recorded_sha256,
    stale_locks,
)
from locks.package_sources import pip_settings, uv_source_args
from tests.conftest import PROJECT_ROOT

CPU, GPU = LOCKS["cpu-dev-cluster-py311-linux-x86_64"], LOCKS["gpu-dev-cluster-py311-linux-x86_64"]


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
    assert len(problems) == 2 and "locks/cpu-dev-cluster-py311-linux-x86_64.txt" in problems[0]
    only_gpu = tmp_path / "gpu.toml"
    only_gpu.write_text(original.replace('"onnxruntime-gpu>=1.20"', '"onnxruntime-gpu>=1.21"'))
    assert [problem.split()[0] for problem in stale_locks(list(LOCKS.values()), only_gpu)] == [
        f"locks/gpu-dev-cluster-py3{minor}-linux-x86_64.txt" for minor in (11, 12, 13)
    ]


def test_the_check_command_fails_naming_the_stale_lock(tmp_path):
    """`python -m locks check` against a changed pyproject.toml, as CI runs it (in a copy of the project)."""
    copy = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "locks", copy / "locks", ignore=shutil.ignore_patterns("__pycache__"))
    text = (PROJECT_ROOT / "pyproject.toml").read_text()
    (copy / "pyproject.toml").write_text(text.replace('"tqdm>=4.66",', '"tqdm>=4.66",\n    "rich>=13",'))
    result = subprocess.run([sys.executable, "-m", "locks", "check"], cwd=copy, capture_output=True, text=True)
    assert result.returncode == 1
    assert "Stale lock: locks/cpu-dev-cluster-py311-linux-x86_64.txt" in result.stderr and "make lock" in result.stderr


def test_every_cell_of_the_support_table_has_its_lock():
    expected = {
        f"{extras}-py{python.replace('.', '')}-{cell}"
        for python in SUPPORTED_PYTHONS
        for extras, cell in [("cpu-dev-cluster", "linux-x86_64"), ("gpu-dev-cluster", "linux-x86_64")]
        + [("cpu-dev-cluster", "linux-aarch64"), ("cpu-dev-cluster", "darwin-arm64")]
    }
    assert set(LOCKS) == expected and all(spec.path.is_file() for spec in LOCKS.values())
    assert lock_for("cpu,dev,cluster", Target("3.12", "darwin", "arm64")).path.name == (
        "cpu-dev-cluster-py312-darwin-arm64.txt"
    )
    assert lock_for("gpu,dev,cluster", Target("3.12", "darwin", "arm64")) is None
    project = __import__("tomllib").loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11,<3.14"  # what the table supports, no more


def test_a_machine_without_a_cell_is_told_what_to_install_in_one_line(monkeypatch):
    import locks.__main__ as cli

    monkeypatch.setattr(cli, "current_target", lambda: Target("3.10", "linux", "x86_64"))
    with pytest.raises(SystemExit, match=r"^make: Python 3.10 is not supported; install Python 3.11 or 3.12 or 3.13"):
        cli.lock_path("cpu,dev,cluster")
    monkeypatch.setattr(cli, "current_target", lambda: Target("3.12", "darwin", "arm64"))
    with pytest.raises(SystemExit, match="no lock for gpu,dev,cluster on py312-darwin-arm64") as refused:
        cli.lock_path("gpu,dev,cluster")
    assert "py312-linux-x86_64" in str(refused.value) and "\n" not in str(refused.value)
    printed = subprocess.run(
        [sys.executable, "-m", "locks", "lock", "cpu,dev,cluster"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    assert printed.stdout.strip().startswith(f"locks/cpu-dev-cluster-{tag}-{sys.platform}-")


def test_linux_cpu_cells_pin_pytorchs_cpu_wheel_macos_and_gpu_pypis_torch():
    for spec in LOCKS.values():
        text = spec.path.read_text()
        entry = re.search(r"^torch==(\S+) \\\n((?:\s+--hash=sha256:\w+(?: \\)?\n)+)", text, re.MULTILINE)
        version, digests = entry.group(1), set(re.findall(r"sha256:(\w+)", entry.group(2)))
        if spec.cpu_torch:
            name, digest = torch_wheels.wheel_for(spec.target.python, spec.target.machine)
            assert version == torch_wheels.VERSION and digests == {digest}, spec.name
            assert not any(pin.startswith(("nvidia-cu", "triton", "cuda-")) for pin in pins(text)), spec.name
        else:
            assert version == torch_wheels.VERSION.removesuffix("+cpu") and len(digests) > 1, spec.name


def test_the_gpu_cells_agree_on_one_cuda_major_version():
    """torch (cuda-toolkit), onnxruntime-gpu (its nvidia-* wheels) and TensorRT (the extra's pin) on CUDA 13."""
    project = __import__("tomllib").loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    (tensorrt,) = [r for r in project["optional-dependencies"]["gpu"] if r.startswith("tensorrt")]
    assert tensorrt.startswith("tensorrt-cu13==")
    for spec in (s for s in LOCKS.values() if "gpu" in s.extras):
        locked = pins(spec.path.read_text())
        assert locked["cuda-toolkit"].startswith("13.") and "onnxruntime-gpu" in locked, spec.name
        assert not any(name.endswith("-cu12") for name in locked), spec.name
        assert any(name.endswith("-cu13") for name in locked), spec.name


def test_locks_pin_every_package_with_hashes_and_name_no_host():
    for spec in LOCKS.values():
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
    assert "# Not in this lock: tensorrt-cu13==10.16.1.11." in GPU.path.read_text()


def test_uv_is_bootstrapped_at_the_version_and_hashes_of_the_locks():
    block = UV_LOCK.read_text()
    assert pins(block) == {"uv": pins(CPU.path.read_text())["uv"]}
    assert {pins(spec.path.read_text())["uv"] for spec in LOCKS.values()} == {pins(block)["uv"]}
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
    cell = f"py{sys.version_info.major}{sys.version_info.minor}-{sys.platform}-{__import__('platform').machine()}"
    lock = f"locks/{extras.replace(',', '-')}-{cell}.txt"
    commands = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert any(line.endswith(f" -m locks check {lock}") for line in commands)
    assert any("uv pip sync" in line and "--require-hashes" in line and line.endswith(lock) for line in commands)
    assert not any("pip install" in line and "-e '.[" in line for line in commands)


def _serve(directory, port_holder):
    """A static file server on 127.0.0.1 (a PEP 503 stand-in for PyTorch's CPU index), in a thread."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port_holder.append(server.server_address[1])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_torch_comes_from_pytorchs_index_only_where_pips_sources_hold_no_cpu_wheel(tmp_path, monkeypatch):
    from locks.package_sources import TORCH_CPU_INDEX, local_torch_wheel, torch_source_args

    lock_text = CPU.path.read_text()
    version = pins(lock_text)["torch"]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    machine = __import__("os").uname().machine
    folder = tmp_path / "wheels"
    folder.mkdir()
    assert local_torch_wheel({"find-links": str(folder)}, version, tag, machine) is None
    monkeypatch.delenv("HAR_CLIP_TORCH_INDEX", raising=False)
    assert torch_source_args({"find-links": str(folder)}, lock_text, check=False) == [
        "--find-links",
        f"{TORCH_CPU_INDEX}/torch/",
    ]
    wheel = folder / f"torch-{version}-{tag}-{tag}-manylinux_2_28_{machine}.whl"
    wheel.write_bytes(b"")
    assert local_torch_wheel({"find-links": f"file://{folder}"}, version, tag, machine) == wheel
    assert torch_source_args({"find-links": str(folder)}, lock_text) == []  # this machine's folder keeps working
    assert torch_source_args({}, GPU.path.read_text()) == []  # the GPU lock's torch is PyPI's


def test_an_unreachable_torch_index_stops_the_install_with_one_line_naming_it(tmp_path):
    served = tmp_path / "index"
    (served / "torch").mkdir(parents=True)
    (served / "torch" / "index.html").write_text("<html></html>")
    port: list[int] = []
    server = _serve(served, port)
    env = {key: value for key, value in __import__("os").environ.items() if not key.startswith("PIP_")} | {
        "PIP_CONFIG_FILE": "/dev/null",
        "HAR_CLIP_TORCH_INDEX": f"http://127.0.0.1:{port[0]}",
    }
    command = [sys.executable, "-m", "locks", "sources", CPU.path.name]
    reachable = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, env=env)
    assert reachable.returncode == 0 and reachable.stdout.split() == [
        "--find-links",
        f"{env['HAR_CLIP_TORCH_INDEX']}/torch/",
    ]
    server.shutdown()
    server.server_close()
    stopped = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, env=env)
    assert stopped.returncode == 1 and stopped.stdout == ""
    lines = stopped.stderr.strip().splitlines()
    assert len(lines) == 1 and f"http://127.0.0.1:{port[0]}/torch/" in lines[0] and "Traceback" not in stopped.stderr
    assert "HAR_CLIP_TORCH_INDEX" in lines[0]


@pytest.mark.skipif(shutil.which("uv") is None and not (PROJECT_ROOT / ".venv/bin/uv").exists(), reason="needs uv")
def test_a_hand_edited_pin_or_hash_fails_verification_naming_the_package(tmp_path):
    from locks.verify import verify

    uv = shutil.which("uv") or str(PROJECT_ROOT / ".venv/bin/uv")
    settings = pip_settings()
    text = CPU.path.read_text()
    assert verify(CPU, uv, settings) == []
    edited = tmp_path / "edited.txt"
    version = pins(text)["requests"]
    edited.write_text(text.replace(f"\nrequests=={version} ", "\nrequests==2.32.3 "))
    problems = verify(CPU, uv, settings, edited)
    assert len(problems) == 1 and "requests==2.32.3" in problems[0]  # another pin needs a newer one: no resolve
    digest = re.search(r"^tornado==\S+ \\\n\s+--hash=sha256:([0-9a-f]{64})", text, re.MULTILINE).group(1)
    edited.write_text(text.replace(digest, "0" * 64))
    assert [p.split(":")[0] for p in verify(CPU, uv, settings, edited)] == [f"tornado=={pins(text)['tornado']}"]
