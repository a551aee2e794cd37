"""The TensorRT pin matches the code: the builder and backend use only names TensorRT 10 has.

No machine of this project has had TensorRT: its Python bindings (`tensorrt_cu12_bindings`, ~1.3 MB) load
`libnvinfer.so.10` from the multi-GB `tensorrt_cu12_libs` wheel, far too heavy for CI. So the names
`har_core/runtime/tensorrt_engine.py` reaches through TensorRT objects are read from its source (ast), compared with a
list read from the bindings' own extension module; the live check runs where `import tensorrt` works, and the
list can be re-read from any downloaded bindings wheel (`TENSORRT_BINDINGS_WHEEL`, see below).
"""

from __future__ import annotations

import ast
import os
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import har_core.runtime.tensorrt_engine as engine_module
from har_core.runtime.tensorrt_engine import TENSORRT_REQUIREMENT
from tests.conftest import PROJECT_ROOT

# Names present in the pybind11 string table of tensorrt.so in tensorrt_cu12_bindings 10.0.1 and 10.16.1.11 (the
# first and the latest 10.x wheels, cp311), read with `wheel_names` below. A name the code starts to use must be
# checked against both and added here.
TENSORRT_10_NAMES = frozenset(
    {
        "Logger", "WARNING", "Builder", "create_network", "OnnxParser", "parse", "get_error", "num_errors",
        "create_builder_config", "set_memory_pool_limit", "MemoryPoolType", "WORKSPACE", "platform_has_fast_fp16",
        "set_flag", "BuilderFlag", "FP16", "create_optimization_profile", "set_shape", "add_optimization_profile",
        "build_serialized_network", "Runtime", "deserialize_cuda_engine", "create_execution_context",
        "set_input_shape", "set_tensor_address", "get_tensor_shape", "execute_async_v3",
    }
)  # fmt: skip
# Absent from tensorrt_cu12_bindings 11.4.0.106 (read the same way): why the requirement stops below 11.
REMOVED_IN_TENSORRT_11 = frozenset({"FP16", "platform_has_fast_fp16"})


def tensorrt_names_used(source: str) -> set[str]:
    """Attribute names reached through `trt` or through a value derived from it (builder, config, engine, ...).

    A name (or `self.<attribute>`) is TensorRT-bound once it is assigned an expression that mentions a
    TensorRT-bound name; the attributes read off TensorRT-bound names are what the installed TensorRT must have.
    """
    tree = ast.parse(source)
    bound = {"trt"}

    def key(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            return f"self.{node.attr}"
        return None

    def mentions_bound(node: ast.AST) -> bool:
        return any(key(child) in bound for child in ast.walk(node))

    for _ in range(3):  # assignments can chain (trt -> builder -> config); a few passes reach the fixed point
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and mentions_bound(node.value):
                bound.update(name for target in node.targets if (name := key(target)) is not None)
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and key(node) not in bound:
            root = node.value
            while isinstance(root, ast.Attribute) and key(root) not in bound:
                root = root.value
            if key(root) in bound:
                used.add(node.attr)
    return used


def wheel_names(wheel: Path) -> set[str]:
    """Every string in the wheel's `tensorrt.so`, plus the identifier tails the linker merged into longer strings
    (`Logger` is stored once, as the end of `ILogger`): enough to tell whether a pybind11 name is defined."""
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [name for name in archive.namelist() if name.endswith("/tensorrt.so")]
        strings = archive.read(member).split(b"\0")
    names = set()
    for raw in strings:
        text = raw.decode("ascii", errors="ignore")
        if len(text) > 100:  # documentation, not a name
            continue
        for start in range(len(text)):
            if start == 0 or text[start - 1].isalnum() or text[start - 1] == "_":
                names.add(text[start:])
    return names


USED = tensorrt_names_used(Path(engine_module.__file__).read_text())


def test_the_source_scan_finds_the_tensorrt_calls():
    """The scan is not vacuous: it sees the module-level, builder, config and execution-context calls."""
    assert {"Builder", "create_builder_config", "set_flag", "FP16", "build_serialized_network"} <= USED
    assert {"deserialize_cuda_engine", "set_tensor_address", "execute_async_v3"} <= USED
    assert not USED & {"read_bytes", "write_bytes", "data_ptr", "cuda", "synchronize"}  # Path and torch calls


def test_the_engine_code_uses_only_names_tensorrt_10_has():
    assert USED <= TENSORRT_10_NAMES, sorted(USED - TENSORRT_10_NAMES)


def test_the_pins_allow_tensorrt_10_and_refuse_11():
    """pyproject's `gpu` extra and the GPU Bento ask for the same TensorRT, which excludes the one that removed
    names the code uses."""
    assert USED & REMOVED_IN_TENSORRT_11  # the reason for the pin; drop the pin with these names
    extra = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]
    (pinned,) = [Requirement(item) for item in extra if Requirement(item).name.startswith("tensorrt")]
    assert str(pinned) == str(Requirement(TENSORRT_REQUIREMENT))
    for version in ("10.16.1.11",):  # the last 10.x, read below; exact: TensorRT cannot be hash-locked
        assert pinned.specifier.contains(version)
    for version in ("11.0.0.114", "11.4.0.106"):
        assert not pinned.specifier.contains(version)


def test_the_installed_tensorrt_has_every_name():
    """Where `import tensorrt` works (a GPU machine with the `gpu` extra), look the names up on the real classes."""
    trt = pytest.importorskip(
        "tensorrt", reason="TensorRT is not installed (its bindings need the multi-GB libs wheel); see the static check"
    )
    assert Requirement(TENSORRT_REQUIREMENT).specifier.contains(trt.__version__), trt.__version__
    owners = [trt, trt.Logger, trt.Builder, trt.OnnxParser, trt.IBuilderConfig, trt.MemoryPoolType, trt.BuilderFlag]
    owners += [trt.IOptimizationProfile, trt.Runtime, trt.ICudaEngine, trt.IExecutionContext]
    missing = [name for name in USED if not any(hasattr(owner, name) for owner in owners)]
    assert not missing


@pytest.mark.skipif(
    "TENSORRT_BINDINGS_WHEEL" not in os.environ,
    reason="set TENSORRT_BINDINGS_WHEEL to a tensorrt_cu12_bindings wheel to re-read TENSORRT_10_NAMES from it",
)
def test_a_bindings_wheel_defines_every_name_the_code_uses():
    """`pip download 'tensorrt_cu12_bindings>=10,<11' --no-deps -d /tmp/trt` and point TENSORRT_BINDINGS_WHEEL at
    the wheel: the names are read from its extension module, nothing is installed or loaded."""
    wheel = Path(os.environ["TENSORRT_BINDINGS_WHEEL"])
    missing = sorted(USED - wheel_names(wheel))
    assert not missing, f"{wheel.name} lacks {missing}"
