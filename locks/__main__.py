"""`python -m locks COMMAND`: the Makefile's lock commands (standard library only, any Python >= 3.11).

check [LOCK...]     exit 1 naming each lock that no longer matches pyproject.toml (default: every lock)
refresh [--uv UV]   re-resolve every lock with uv (`make lock`)
sources LOCK        uv options for pip's configured package sources (find-links, index-url) for LOCK
unlocked LOCK       the requirements that LOCK leaves out, one per line (installed after it with pip)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from locks.declarations import LOCKS, PROJECT_ROOT, LockSpec, stale_locks, unlocked_requirements
from locks.refresh import LockError, refresh
from locks.sources import pip_settings, uv_source_args


def spec_for(argument: str) -> LockSpec:
    """A lock named by its file (locks/cpu-dev-cluster.txt), its name or its extras (cpu,dev,cluster)."""
    name = Path(argument).name.removesuffix(".txt").replace(",", "-")
    if name not in LOCKS:
        raise SystemExit(f"unknown lock {argument!r}; the locks are {', '.join(sorted(LOCKS))}")
    return LOCKS[name]


def main(argv: list[str]) -> int:
    command, arguments = (argv[0], argv[1:]) if argv else ("", [])
    if command == "check":
        problems = stale_locks([spec_for(a) for a in arguments] or list(LOCKS.values()))
        for problem in problems:
            print(f"Stale lock: {problem}.", file=sys.stderr)
        if problems:
            print("Run `make lock` and commit the locks/ it rewrites.", file=sys.stderr)
        return 1 if problems else 0
    if command == "refresh":
        uv = arguments[1] if arguments[:1] == ["--uv"] and len(arguments) > 1 else shutil.which("uv")
        if uv is None:
            raise SystemExit("uv not found: `make lock` runs it from the virtualenv (.venv/bin/uv, the dev extra)")
        try:
            written = refresh(list(LOCKS.values()), uv, pip_settings())
        except LockError as error:
            print(f"make lock: {error}", file=sys.stderr)
            return 1
        for path in written:
            print(f"wrote {path.relative_to(PROJECT_ROOT)}")
        return 0
    if command == "sources" and len(arguments) == 1:
        print(" ".join(uv_source_args(pip_settings(), find_links=spec_for(arguments[0]).cpu_torch)))
        return 0
    if command == "unlocked" and len(arguments) == 1:
        print("\n".join(unlocked_requirements(spec_for(arguments[0]))))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
