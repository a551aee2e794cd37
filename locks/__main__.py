"""`python -m locks COMMAND`: the Makefile's lock commands (standard library only, any Python >= 3.11).

lock EXTRAS         the lock file of EXTRAS (cpu,dev,cluster) for this interpreter and platform; exit 1 with one
                    line naming what to install where the support table (docs/install.md) has no such cell
check [LOCK...]     exit 1 naming each lock that no longer matches pyproject.toml (default: every lock)
refresh [--uv UV]   re-resolve every lock with uv (`make lock`)
verify [--uv UV] [LOCK...]
                    resolve pyproject.toml with each lock as constraints; exit 1 naming each pin or hash that
                    differs (`make lock-verify`: a hand-edited lock fails)
sources LOCK        uv options for LOCK: pip's package sources (find-links, index-url), and PyTorch's CPU index
                    for torch where those hold no CPU wheel of it (exit 1, one line, when it cannot be reached)
unlocked LOCK       the requirements that LOCK leaves out, one per line (installed after it with pip)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

if sys.version_info < (3, 11):  # noqa: UP036 (before tomllib is imported: one line, not a traceback)
    raise SystemExit(
        f"make: Python {sys.version_info[0]}.{sys.version_info[1]} is not supported; install Python 3.11, 3.12 or 3.13"
    )

from locks.declarations import (  # noqa: E402
    LOCKS,
    PROJECT_ROOT,
    SUPPORTED_PYTHONS,
    LockSpec,
    current_target,
    lock_for,
    stale_locks,
    unlocked_requirements,
)
from locks.package_sources import SourceUnreachableError, pip_settings, torch_source_args, uv_source_args  # noqa: E402


def spec_for(argument: str) -> LockSpec:
    """A lock named by its file (locks/cpu-dev-cluster-py311-linux-x86_64.txt) or its name."""
    name = Path(argument).name.removesuffix(".txt")
    if name not in LOCKS:
        raise SystemExit(f"unknown lock {argument!r}; the locks are {', '.join(sorted(LOCKS))}")
    return LOCKS[name]


def lock_path(extras: str) -> str:
    """The lock of `extras` for this interpreter, relative to the project; SystemExit naming what to install."""
    target = current_target()
    spec = lock_for(extras, target)
    if spec is not None:
        return str(spec.path.relative_to(PROJECT_ROOT))
    if target.python not in SUPPORTED_PYTHONS:
        raise SystemExit(
            f"make: Python {target.python} is not supported; install Python {' or '.join(SUPPORTED_PYTHONS)} "
            "(e.g. `apt install python3.11-venv`, `brew install python@3.12`) or pass PYTHON=python3.X"
        )
    cells = sorted(spec.target.name for spec in LOCKS.values() if spec.extras == tuple(extras.split(",")))
    raise SystemExit(
        f"make: no lock for {extras} on {target.name}: that extra set is locked for {', '.join(cells)} "
        "(docs/install.md, the support table)"
    )


def _uv(arguments: list[str]) -> tuple[str, list[str]]:
    if arguments[:1] == ["--uv"] and len(arguments) > 1:
        return arguments[1], arguments[2:]
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("uv not found: `make lock` and `make lock-verify` run it from the virtualenv (.venv/bin/uv)")
    return uv, arguments


def main(argv: list[str]) -> int:
    command, arguments = (argv[0], argv[1:]) if argv else ("", [])
    if command == "lock" and len(arguments) == 1:
        print(lock_path(arguments[0]))
        return 0
    if command == "check":
        problems = stale_locks([spec_for(a) for a in arguments] or list(LOCKS.values()))
        for problem in problems:
            print(f"Stale lock: {problem}.", file=sys.stderr)
        if problems:
            print("Run `make lock` and commit the locks/ it rewrites.", file=sys.stderr)
        return 1 if problems else 0
    if command == "refresh":
        from locks.refresh import LockError, refresh

        uv, _ = _uv(arguments)
        try:
            written = refresh(list(LOCKS.values()), uv, pip_settings())
        except LockError as error:
            print(f"make lock: {error}", file=sys.stderr)
            return 1
        for path in written:
            print(f"wrote {path.relative_to(PROJECT_ROOT)}")
        return 0
    if command == "verify":
        from locks.verify import verify

        uv, names = _uv(arguments)
        failed = False
        for spec in [spec_for(name) for name in names] or list(LOCKS.values()):
            problems = verify(spec, uv, pip_settings())
            for problem in problems:
                print(f"{spec.path.relative_to(PROJECT_ROOT)}: {problem}", file=sys.stderr)
            failed = failed or bool(problems)
            print(f"{spec.path.relative_to(PROJECT_ROOT)}: {'FAILED' if problems else 'every pin and hash verified'}")
        return 1 if failed else 0
    if command == "sources" and len(arguments) == 1:
        spec, settings = spec_for(arguments[0]), pip_settings()
        try:
            torch_args = torch_source_args(settings, spec.path.read_text()) if spec.cpu_torch else []
        except SourceUnreachableError as error:
            print(f"make install: {error}", file=sys.stderr)
            return 1
        print(" ".join([*uv_source_args(settings, find_links=spec.cpu_torch), *torch_args]))
        return 0
    if command == "unlocked" and len(arguments) == 1:
        print("\n".join(unlocked_requirements(spec_for(arguments[0]))))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
