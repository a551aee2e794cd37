"""PyTorch's CPU build of torch as its own index serves it: the files, their sha256 and what the build requires.

PyPI's Linux torch is the CUDA build (several GB of nvidia-* wheels); the CPU build (`X+cpu`) is only on
https://download.pytorch.org/whl/cpu. That index cannot be reached from the machines this project is developed on,
so `make lock` cannot read the files' hashes or metadata from it. They are recorded here instead:

- the digests are those PyTorch's index lists for each wheel (`<a href="…whl#sha256=…">` on
  https://download.pytorch.org/whl/cpu/torch/), copied from a published record of that listing; the cp311 x86_64
  digest was recomputed here from the wheel itself, and matches. `make install` hash-checks the downloaded file
  against them, so a wrong digest stops an install, it never lets another file in;
- `REQUIRES_DIST` is the `Requires-Dist` of the wheel's METADATA (read from the cp311 x86_64 wheel; the CPU build
  has no platform markers, so every wheel of the version requires the same).

Bumping torch: update `VERSION`, the digests (every cp311-cp313 manylinux_2_28 x86_64/aarch64 wheel) and
`REQUIRES_DIST` together; `make lock` refuses a pyproject.toml pin that differs from `VERSION`.
"""

from __future__ import annotations

VERSION = "2.13.0+cpu"
REQUIRES_PYTHON = ">=3.10"
REQUIRES_DIST = (
    "filelock",
    "typing-extensions>=4.10.0",
    "setuptools>=77.0.3",
    "sympy>=1.13.3",
    "networkx>=2.5.1",
    "jinja2",
    "fsspec>=0.8.5",
)
_SHA256 = """\
6746dbcbeb526eb61330b76b41ff1b4eb848951103a892eeb080dfa2b264667b  torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
84453b69508ec79902f899c5ed9495acb9e2bbe9fda5f1d5d6f19e3c3842e1a7  torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_aarch64.whl
4ca4a9394b0c771238a4f73590fdbbc4debad85ed0fa63d026ae1b085da7d6e2  torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl
6f307c2c32d764ffc6ff6893b801fad6d4752f3e67966cb8abf1843427c02604  torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_aarch64.whl
3fbf9c9d1f3c10c2d59d04aca426dee9ccc6ceb32d255c61e93acc3b4f75fae6  torch-2.13.0+cpu-cp313-cp313-manylinux_2_28_x86_64.whl
0b8f7d0423027ae8b90c7977c627f3379f325363a08224dffad9b4b2d684a83d  torch-2.13.0+cpu-cp313-cp313-manylinux_2_28_aarch64.whl
"""  # noqa: E501 (sha256sum lines: digest, two spaces, file name)
WHEELS: dict[str, str] = {name: digest for digest, name in (line.split("  ") for line in _SHA256.splitlines())}


def wheel_for(python: str, machine: str) -> tuple[str, str]:
    """(file name, sha256) of the CPU wheel for CPython `python` ("3.12") on Linux `machine`; KeyError if none."""
    tag = f"cp{python.replace('.', '')}"
    name = f"torch-{VERSION}-{tag}-{tag}-manylinux_2_28_{machine}.whl"
    return name, WHEELS[name]


def uv_config(path) -> None:
    """A uv.toml declaring the CPU build's metadata, so uv resolves it without fetching the wheel."""
    requires = ", ".join(f'"{requirement}"' for requirement in REQUIRES_DIST)
    path.write_text(
        "[[dependency-metadata]]\n"
        f'name = "torch"\nversion = "{VERSION}"\nrequires-python = "{REQUIRES_PYTHON}"\nrequires-dist = [{requires}]\n'
    )


def flat_index(path, python: str, machine: str, base: str) -> None:
    """A one-link page (uv --find-links) naming the cell's wheel on the index `base`, as PyTorch's page names it."""
    name, digest = wheel_for(python, machine)
    link = f'<a href="{base}/{name.replace("+", "%2B")}#sha256={digest}">{name}</a>'
    path.write_text(f"<html><body>{link}</body></html>\n")
