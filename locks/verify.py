"""`make lock-verify`: each lock's pins and hashes checked against a resolve of pyproject.toml, not trusted.

`python -m locks check` only compares a hash of the declarations, so a hand-edited pin would pass it. Here uv
resolves pyproject.toml again for the lock's target with the lock itself as constraints: a pin the declarations (or
another pin's requirements) do not admit fails the resolve, and every pin's hashes must be those of the files the
sources serve for that version (a version changed by hand keeps the old version's hashes). A package the lock lacks
or holds beyond the resolve is named too. Needs uv and the package index (it runs after `make install`).
"""

from __future__ import annotations

import re
from pathlib import Path

from locks.declarations import LockSpec, requirement_name
from locks.refresh import LockError, resolve

_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)", re.MULTILINE)
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def pins(lock_text: str) -> dict[str, tuple[str, frozenset[str]]]:
    """{normalised name: (version, sha256 digests)} of a requirements file written by `uv pip compile`."""
    return {
        requirement_name(name): (version, frozenset(_HASH.findall(hashes)))
        for name, version, hashes in _ENTRY.findall(lock_text)
    }


def differences(locked: dict, resolved: dict) -> list[str]:
    """One line per package whose pin or hashes differ (every digest the sources list for the pinned version, no
    other)."""
    problems = []
    for name in sorted(set(locked) | set(resolved)):
        if name not in resolved:
            problems.append(f"{name}: pinned ({locked[name][0]}) but not required by pyproject.toml")
        elif name not in locked:
            problems.append(f"{name}: required ({resolved[name][0]}) but missing from the lock")
        elif locked[name][0] != resolved[name][0]:
            problems.append(f"{name}: the lock pins {locked[name][0]}, the resolve gives {resolved[name][0]}")
        elif resolved[name][1] != locked[name][1]:
            unknown = sorted(locked[name][1] ^ resolved[name][1])
            problems.append(f"{name}=={locked[name][0]}: sha256 not those the sources list for it: {unknown}")
    return problems


def verify(spec: LockSpec, uv: str, settings: dict[str, str], lock: Path | None = None) -> list[str]:
    """Problems with `spec`'s lock, or the file `lock` in its place (empty: every pin and hash is what
    pyproject.toml and the sources give)."""
    lock_text = (lock or spec.path).read_text()
    locked = pins(lock_text)
    constraints = "".join(f"{name}=={version}\n" for name, (version, _) in locked.items())
    try:
        resolved = pins(resolve(spec, uv, settings, constraints=constraints))
    except LockError as error:
        return [f"the pins do not resolve with pyproject.toml: {error}"]
    return differences(locked, resolved)
