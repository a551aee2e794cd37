"""Every command shown in README.md and docs/*.md runs as written, checked in a dry form that executes none of them.

Which text is a command:
- each line of a fenced block tagged ``bash``, ``sh``, ``shell`` or ``console`` (in ``console`` blocks only the lines
  that start with ``$ ``); a trailing backslash joins the next line, ``# comments`` and blank lines are dropped, and
  ``&&``, ``||``, ``;`` and ``|`` split a line into its commands;
- an inline code span whose text starts with a command word of this project or its tools (``COMMAND_WORDS``:
  ``python run.py``, ``har-clip``, ``python -m``, ``python benchmarks/``, ``make``, ``zenml``, ``bentoml``, ``dvc``,
  ``mlflow``, ``wandb``, ``streamlit``, ``pip``, ``pytest``, ``podman``, ``docker``, ``kubectl``, ``bash``, ``curl``,
  ``git``, ``source``), its whitespace collapsed (a span wrapped over two source lines is one command). A span that only
  names a program (``run.py``, ``pipelines/multinode_training.py``) is prose, not a command.
Leading ``VAR=value`` assignments are dropped (``HF_TOKEN=… python -m cli.publish_command …``). A token with ``<…>``,
``…`` or an all-caps word (``NAME``, ``JOB_DIR``) is a placeholder the reader fills in: a command holding one is
checked up to its subcommands and option names (``--help`` appended) when its full parse fails on a value.

The dry form of each kind of command:
- ``python run.py …``, ``python -m <ours> …``, ``python benchmarks/x.py …``: click commands are parsed with click's
  own ``make_context`` (options, choices, required arguments; the callback never runs); argparse scripts run as
  ``__main__`` up to ``parse_args``, which validates the arguments and then stops the script; a module without a
  command-line parser (``har_core.training.worker``, ``stacks.servers``) is imported. A missing module or script
  fails.
- ``python -m torch.distributed.run …``: torchrun's own ``parse_args``, and the module after ``-m`` must exist;
  ``python -m viewer …`` forwards to ``streamlit run viewer/app.py …`` and is checked as that.
- ``har-clip``/``zenml``/``bentoml``/``mlflow``/``wandb``/``streamlit`` (click) and ``dvc`` (argparse): the executable
  is in the environment and the command line parses through its console-script entry point (subcommands resolved,
  options validated), without invoking it.
- ``make <target> …``: ``make -n <target> …`` exits 0 (an unknown target fails).
- ``bash script.sh`` and a shell script run by its path: the script exists (executable, when run by path) and
  ``bash -n`` accepts it.
- ``pytest …`` / ``python -m pytest …``: the test files exist and each marker of ``-m`` is declared in pyproject.toml.
- ``pip <sub> …``: ``pip <sub> --help`` exits 0, and the extras of ``.[extra,…]`` exist in pyproject.toml.
- ``podman``/``docker``/``kubectl``: each subcommand is listed by the parent command's ``--help`` (these tools
  answer ``--help`` for any word), and ``<tool> <subcommands> --help`` exits 0; skipped where the tool is missing.
- ``export``/``source``: the project files they name exist.
- In every command, a token naming a project path (``configs/…``, ``bento/…``, ``$PWD/…``) or a project
  ``module:Class`` (``bento.service:HarClipService``) must exist.
- ``python`` code blocks: each ``from X import Y`` imports.
Commands that cannot be dry-run are in ``ALLOWED`` below, each with its reason. The README's links into docs/ are
checked here too (mkdocs --strict checks the links between pages).

The Python-level checks run grouped, one subprocess per tool (imports paid once) in parallel: ~20-40 s on 2 cores.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.required import REQUIRED_IN_CI, skip_without

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

COMMAND_WORDS = (
    "python run.py",
    "har-clip ",
    "python -m ",
    "python benchmarks/",
    "make ",
    "zenml ",
    "bentoml ",
    "dvc ",
    "mlflow ",
    "wandb ",
    "streamlit ",
    "pip ",
    "pytest ",
    "podman ",
    "docker ",
    "kubectl ",
    "bash ",
    "curl ",
    "git ",
    "source ",
)
SHELL_FENCES = {"bash", "sh", "shell", "console"}
SEPARATORS = {"&&", "||", ";", "|"}

# Commands shown in the docs that have no dry form, by their first word; each reason says why.
ALLOWED = {
    # Requests to a running Bento server: the serving tests (tests/bento/) send the same requests to a real one.
    "curl": "talks to a running server (tests/bento/ serve and query a real one)",
    # The reader's own repository operations (commit and tag a DVC data version): git, not this project.
    "git": "operates on the reader's repository (committing and tagging a data version)",
    # Putting files in the reader's input folder before batch inference: coreutils, not this project (the inference
    # pipeline test scores such a folder, tests/pipelines/test_inference_pipeline.py).
    "mkdir": "creates the reader's input folder for batch inference (data/incoming)",
    "cp": "copies the quick path's images into the reader's input folder for batch inference",
    # The alert rules and the example Prometheus config: tests/bento/test_prometheus_metrics.py runs the same
    # promtool checks on the shipped files, and a real Prometheus with the rules (Debian's package; CI installs it).
    "promtool": "checks the shipped rules and config (tests/bento/test_prometheus_metrics.py runs the same checks)",
    "prometheus": "runs Prometheus (tests/bento/test_prometheus_metrics.py runs a real one with the shipped rules)",
}

CLICK_TOOLS = {"har-clip", "zenml", "bentoml", "mlflow", "wandb", "streamlit"}  # har-clip: ours (cli.main:cli)
HOST_TOOLS = {"podman", "docker", "kubectl"}
PROJECT_PACKAGES = {"har_core", "har_zenml", "cli", "pipelines", "steps", "stacks", "bento", "bento_ops", "viewer"}
PROJECT_PACKAGES |= {"benchmarks", "tests"}
PROJECT_DIRS = PROJECT_PACKAGES | {"configs", "docs"}
PROJECT_FILES = {"run.py", "params.yaml", "dvc.yaml", "mkdocs.yml", "Makefile", "pyproject.toml"}
# `python -m viewer ARGS` runs `streamlit run viewer/app.py ARGS` (viewer/__main__.py).
FORWARDS = {"viewer": ["streamlit", "run", "viewer/app.py"]}


@dataclass(frozen=True)
class Shown:
    """One command (or python import) as a doc shows it."""

    argv: tuple[str, ...]
    where: str  # "docs/data.md:88"

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


# ---- extraction ------------------------------------------------------------------------------------------------


def _split_commands(line: str) -> list[list[str]]:
    """Tokens of a shell line, split into its commands; `# comments` dropped."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        return [line.split()]
    commands, current = [], []
    for token in tokens:
        if token in SEPARATORS:
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    return [_drop_assignments(command) for command in commands if _drop_assignments(command)]


def _drop_assignments(tokens: list[str]) -> list[str]:
    index = 0
    while index < len(tokens) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", tokens[index]):
        index += 1
    return tokens[index:]


def extract(path: Path) -> list[Shown]:
    """The commands a markdown file shows (see the module docstring), and its python blocks' imports."""
    shown: list[Shown] = []
    name = path.relative_to(ROOT).as_posix()
    lines = path.read_text().splitlines()
    fence, prose, pending = None, [], ""
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            if fence is None:
                fence = stripped[3:].strip().split(" ")[0] or "text"
                prose.append("")  # a fence ends any inline span
            else:
                fence = None
            continue
        if fence in SHELL_FENCES:
            if fence == "console":
                if not stripped.startswith("$ "):
                    continue
                stripped = stripped[2:]
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            for argv in _split_commands(pending + stripped):
                shown.append(Shown(tuple(argv), f"{name}:{number}"))
            pending = ""
        elif fence == "python":
            match = re.match(r"from\s+([\w.]+)\s+import\s+([\w, ]+)", stripped)
            if match:
                for symbol in match.group(2).split(","):
                    shown.append(Shown(("#import", match.group(1), symbol.strip()), f"{name}:{number}"))
        elif fence is None:
            prose.append(f"\x00{number}\x00{line}")
        else:
            prose.append("")
    text = "\n".join(prose)
    for match in re.finditer(r"`([^`]+)`", text):
        span = match.group(1)
        number = re.findall(r"\x00(\d+)\x00", text[: match.start()])
        span = re.sub(r"\x00\d+\x00", "", span)
        span = " ".join(span.split())
        if span.startswith(COMMAND_WORDS):
            for argv in _split_commands(span):
                shown.append(Shown(tuple(argv), f"{name}:{number[-1] if number else '?'}"))
    return shown


def all_shown() -> list[Shown]:
    return [item for path in DOC_FILES for item in extract(path)]


SHOWN = all_shown()
CHECKED = [item for item in SHOWN if item.argv[0] not in ALLOWED]
UNIQUE = sorted({item.argv for item in CHECKED})


# ---- helpers shared by the checks ------------------------------------------------------------------------------


def _is_placeholder(token: str) -> bool:
    return any(mark in token for mark in "<>…") or bool(re.fullmatch(r"[A-Z][A-Z0-9_]*", token))


def _project_path_problems(argv: tuple[str, ...]) -> list[str]:
    """Project files and `module:Class` targets a command names that do not exist."""
    problems = []
    for token in argv:
        for value in token.split("=", 1)[-1:] if token.startswith("-") or "=" in token else [token]:
            value = value.replace("$PWD/", "").replace("${PWD}/", "")
            if _is_placeholder(value) or any(mark in value for mark in "*{}?"):
                continue
            first = value.split("/", 1)[0]
            named = ("/" in value and first in PROJECT_DIRS) or value in PROJECT_FILES
            if named and not (ROOT / value).exists():
                problems.append(f"{value} does not exist")
            match = re.fullmatch(r"([a-z_][\w.]*):([A-Za-z_]\w*)", value)
            if match and match.group(1).split(".")[0] in PROJECT_PACKAGES:
                module = ROOT / (match.group(1).replace(".", "/") + ".py")
                if not module.exists():
                    problems.append(f"{value}: no module {match.group(1)}")
                elif not re.search(rf"^(class|def) {match.group(2)}\b|^{match.group(2)}\s*=", module.read_text(), re.M):
                    problems.append(f"{value}: {match.group(2)} is not defined in {module.relative_to(ROOT)}")
    return problems


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["ZENML_ANALYTICS_OPT_IN"] = "false"
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _run(command: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)


def _tail(process: subprocess.CompletedProcess) -> str:
    return "\n".join((process.stdout + process.stderr).strip().splitlines()[-6:])


# ---- the Python-level dry runs (executed in a worker subprocess per group) -------------------------------------


class _Parsed(BaseException):
    """Raised once an argparse script has parsed its arguments: the script stops there."""


@contextlib.contextmanager
def _argparse_stops_after_parsing():
    import argparse

    original = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        original(self, args, namespace)  # an error or --help exits here, as in a real run
        raise _Parsed

    argparse.ArgumentParser.parse_args = parse_args
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args = original


def _click_parse(command, args: list[str], prog: str) -> str | None:
    """Parse a click command line down to its leaf command without invoking anything; None when it parses."""
    import click

    try:
        ctx = command.make_context(prog, list(args))
        while isinstance(command, click.Group):
            rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
            if not rest:
                break
            name, command, rest = command.resolve_command(ctx, rest)
            ctx = command.make_context(name, rest, parent=ctx)
    except click.exceptions.Exit as error:
        return None if error.exit_code == 0 else f"exit code {error.exit_code}"
    except click.ClickException as error:
        return f"{type(error).__name__}: {error.format_message()}"
    return None


def _with_placeholders(check: Callable[[list[str]], str | None], args: list[str]) -> str | None:
    problem = check(args)
    if problem and any(_is_placeholder(token) for token in args):
        return check([*args, "--help"])  # a placeholder value: check the command path and option names only
    return problem


def _has_parser(source: str) -> str | None:
    if re.search(r"@click\.(command|group)\b", source):
        return "click"
    if "ArgumentParser(" in source:
        return "argparse"
    return None


def _source_of(module: str) -> tuple[str | None, str | None]:
    """(source text, file) of a module, or of a package's __main__; (None, None) when it does not exist."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None, None
    if spec is None:
        return None, None
    if spec.submodule_search_locations is not None:
        return _source_of(f"{module}.__main__")
    if spec.origin is None or not spec.origin.endswith(".py"):
        return "", spec.origin
    return Path(spec.origin).read_text(), spec.origin


def _click_command_of(namespace: dict):
    import click

    commands = {name: value for name, value in namespace.items() if isinstance(value, click.Command)}
    return commands.get("main") or commands.get("cli") or next(iter(commands.values()), None)


def _dry_python_target(target: str, args: list[str], is_script: bool) -> str | None:
    """A project module (`python -m target`) or script (`python target`), parsed but not run."""
    import runpy

    if is_script:
        path = ROOT / target
        if not path.is_file():
            return f"no script {target}"
        source, origin = path.read_text(), str(path)
    else:
        source, origin = _source_of(target)
        if source is None:
            return f"no module {target}"
    kind = _has_parser(source)
    if kind is None:  # no command line of its own: it must import
        if not is_script:
            importlib.import_module(target if not origin.endswith("__main__.py") else f"{target}.__main__")
        return None
    if kind == "click":
        namespace = (
            runpy.run_path(origin, run_name="_docs_check") if is_script else vars(importlib.import_module(target))
        )
        command = _click_command_of(namespace)
        if command is None:
            return f"{target}: no click command found"
        return _with_placeholders(lambda argv: _click_parse(command, argv, target), args)

    def run_to_parse(argv: list[str]) -> str | None:
        saved = sys.argv[:], sys.path[:]
        sys.argv = [origin, *argv]
        if is_script:
            sys.path.insert(0, str(Path(origin).parent))
        try:
            with _argparse_stops_after_parsing():
                if is_script:
                    runpy.run_path(origin, run_name="__main__")
                else:
                    runpy.run_module(target, run_name="__main__", alter_sys=True)
        except _Parsed:
            return None
        except SystemExit as error:
            return None if error.code in (0, None) else f"exit code {error.code}"
        finally:
            sys.argv, sys.path[:] = saved[0], saved[1]
        return "ran to the end without parsing its arguments"

    return _with_placeholders(run_to_parse, args)


def _dry_console(tool: str, args: list[str]) -> str | None:
    """A console script of the environment, parsed through its entry point without being invoked."""
    from importlib.metadata import entry_points

    if shutil.which(tool, path=str(Path(sys.executable).parent)) is None and shutil.which(tool) is None:
        return f"{tool} is not installed"
    if tool == "dvc":
        from dvc.cli import DvcParserError, parse_args

        def parse(argv: list[str]) -> str | None:
            try:
                parse_args(argv)
            except DvcParserError as error:
                return f"dvc cannot parse it: {error}"
            except SystemExit as error:
                return None if error.code in (0, None) else f"exit code {error.code}"
            return None

        return _with_placeholders(parse, args)
    entry = next(iter(entry_points(group="console_scripts", name=tool)), None)
    if entry is None:
        return f"{tool} has no console-script entry point"
    command = entry.load()
    return _with_placeholders(lambda argv: _click_parse(command, argv, tool), args)


def _dry_python_job(argv: list[str]) -> str | None:
    """One job of a worker: the dry form of a python-level command (see the module docstring)."""
    if argv[0] == "#import":
        module = importlib.import_module(argv[1])
        return None if hasattr(module, argv[2]) else f"{argv[1]} has no {argv[2]}"
    if argv[0] in CLICK_TOOLS or argv[0] == "dvc":
        return _dry_console(argv[0], argv[1:])
    args = argv[1:]
    if args[0] == "-m":
        module, rest = args[1], args[2:]
        if module in FORWARDS:
            problem = _dry_python_target(module, [], is_script=False)
            return problem or _dry_console(FORWARDS[module][0], [*FORWARDS[module][1:], *rest])
        if module == "torch.distributed.run":
            from torch.distributed.run import parse_args

            if "-m" in rest and _source_of(rest[rest.index("-m") + 1])[0] is None:
                return f"torchrun: no module {rest[rest.index('-m') + 1]}"
            try:
                parse_args(rest)
            except SystemExit as error:
                return f"torchrun cannot parse it (exit code {error.code})"
            return None
        if module.split(".")[0] not in PROJECT_PACKAGES:
            return None if _source_of(module)[0] is not None else f"no module {module}"
        return _dry_python_target(module, rest, is_script=False)
    return _dry_python_target(args[0], args[1:], is_script=True)


def _only_this_checkout() -> None:
    """Drop editable-install finders that map a project package to another checkout.

    A shared virtualenv's editable install may point `har_core` at another working tree; its finder would then
    answer for modules this checkout lacks, and a doc naming them would pass here.
    """
    for finder in list(sys.meta_path):
        mapping = getattr(sys.modules.get(getattr(finder, "__module__", "")), "MAPPING", None)
        if isinstance(mapping, dict) and any(
            name in PROJECT_PACKAGES and not Path(path).resolve().is_relative_to(ROOT) for name, path in mapping.items()
        ):
            sys.meta_path.remove(finder)


def worker(jobs_file: str, results_file: str) -> None:
    """Entry point of a worker subprocess: run each job's dry form, write {argv: problem or null} as JSON."""
    import logging
    import warnings

    _only_this_checkout()
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    results = {}
    for argv in json.loads(Path(jobs_file).read_text()):
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                problem = _dry_python_job(argv)
        except BaseException as error:  # noqa: BLE001 - every failure is this command's result, not the worker's
            problem = f"{type(error).__name__}: {error}"
        if problem:
            problem += ("\n" + "\n".join(sink.getvalue().strip().splitlines()[-4:])).rstrip()
        results[json.dumps(argv)] = problem
    Path(results_file).write_text(json.dumps(results))


def _run_worker(jobs: list[tuple[str, ...]]) -> dict[tuple[str, ...], str | None]:
    with tempfile.TemporaryDirectory(prefix="docs-commands-") as folder:
        jobs_file, results_file = Path(folder) / "jobs.json", Path(folder) / "results.json"
        jobs_file.write_text(json.dumps([list(job) for job in jobs]))
        code = f"from tests.test_docs_commands import worker; worker({str(jobs_file)!r}, {str(results_file)!r})"
        process = _run([sys.executable, "-c", code], timeout=600)
        if not results_file.exists():
            return {job: f"the worker failed: {_tail(process)}" for job in jobs}
        return {tuple(json.loads(key)): value for key, value in json.loads(results_file.read_text()).items()}


# ---- checks that are a subprocess of their own ------------------------------------------------------------------


def _check_make(argv: tuple[str, ...]) -> str | None:
    process = _run(["make", "-n", *argv[1:]])
    return None if process.returncode == 0 else f"make -n failed: {_tail(process)}"


def _check_shell_script(script: str, by_path: bool) -> str | None:
    path = ROOT / script
    if not path.is_file():
        return f"no script {script}"
    if by_path and not os.access(path, os.X_OK):
        return f"{script} is not executable"
    process = _run(["bash", "-n", str(path)])
    return None if process.returncode == 0 else f"bash -n: {_tail(process)}"


def _check_pytest(args: tuple[str, ...]) -> str | None:
    declared = {marker.split(":")[0].strip() for marker in _pyproject()["tool"]["pytest"]["ini_options"]["markers"]}
    problems = []
    for index, token in enumerate(args):
        if token == "-m" and index + 1 < len(args):
            words = set(re.findall(r"[A-Za-z_]\w*", args[index + 1])) - {"and", "or", "not"}
            problems += [f"marker {word!r} is not declared in pyproject.toml" for word in sorted(words - declared)]
        elif token.startswith("tests/") and not (ROOT / token.split("::")[0]).exists():
            problems.append(f"{token} does not exist")
    return "; ".join(problems) or None


def _check_pip(args: tuple[str, ...]) -> str | None:
    extras = set(_pyproject()["project"]["optional-dependencies"])
    for token in args:
        match = re.fullmatch(r"\.\[([\w,-]+)\]", token)
        if match:
            unknown = sorted(set(match.group(1).split(",")) - extras)
            if unknown:
                return f"no extra {', '.join(unknown)} in pyproject.toml"
    process = _run([sys.executable, "-m", "pip", args[0], "--help"])
    return None if process.returncode == 0 else f"pip {args[0]} --help failed: {_tail(process)}"


def _check_host_tool(argv: tuple[str, ...]) -> str | None:
    """Subcommands of podman/docker/kubectl: each is listed by its parent's --help; `--help` of the whole exits 0."""
    tool = argv[0]
    if shutil.which(tool) is None:
        if tool in REQUIRED_IN_CI:
            skip_without(tool, f"{tool} is not installed here")
        pytest.skip(f"{tool} is not installed here")
    words: list[str] = []
    for token in argv[1:]:
        if not re.fullmatch(r"[a-z][a-z0-9-]*", token):
            break
        listing = _run([tool, *words, "--help"])
        text = listing.stdout + listing.stderr
        if re.search(rf"^\s+{re.escape(token)}\b", text, re.M):
            words.append(token)
        elif re.search(r"^[\w ]*Commands\b.*:", text, re.M):  # the parent has subcommands, and not this one
            return f"{shlex.join([tool, *words])} has no subcommand {token!r}"
        else:
            break  # a leaf command: the word is its argument
    process = _run([tool, *words, "--help"])
    return None if process.returncode == 0 else f"{tool} {' '.join(words)} --help failed: {_tail(process)}"


def _check_builtin(argv: tuple[str, ...]) -> str | None:
    if argv[0] == "source" and not (ROOT / argv[1]).exists():
        return f"{argv[1]} does not exist (it comes with `make install`)"
    return None


def _group(argv: tuple[str, ...]) -> str | None:
    """The worker group of a python-level command, or None when it is checked on its own."""
    if argv[0] == "#import":
        return "python"
    if argv[0] in CLICK_TOOLS or argv[0] == "dvc":
        return argv[0]
    if argv[0] == "python" and len(argv) > 1:
        if argv[1:3] == ("-m", "pytest") or argv[1] in ("-m",) and argv[2] == "pip":
            return None
        if argv[1] == "-m" and argv[2] in FORWARDS:
            return FORWARDS[argv[2]][0]
        return "python"
    return None


def _check_alone(argv: tuple[str, ...]) -> str | None:
    word = argv[0]
    if word == "make":
        return _check_make(argv)
    if word == "bash":
        return _check_shell_script(argv[1], by_path=False)
    if word.endswith(".sh"):
        return _check_shell_script(word, by_path=True)
    if word == "pytest":
        return _check_pytest(argv[1:])
    if argv[:3] == ("python", "-m", "pytest"):
        return _check_pytest(argv[3:])
    if word == "pip":
        return _check_pip(argv[1:])
    if word in HOST_TOOLS:
        return _check_host_tool(argv)
    if word in ("export", "source"):
        return _check_builtin(argv)
    return f"no dry form for {word!r}: add one to tests/test_docs_commands.py or allow-list it with the reason"


@pytest.fixture(scope="module")
def results() -> dict[tuple[str, ...], str | None]:
    """The dry run of every unique command, python-level ones grouped per tool, all groups in parallel."""
    groups: dict[str, list[tuple[str, ...]]] = {}
    for argv in UNIQUE:
        group = _group(argv)
        if group:
            groups.setdefault(group, []).append(argv)
    outcome: dict[tuple[str, ...], str | None] = {}
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(_run_worker, jobs) for jobs in groups.values()]
        for future in futures:
            outcome.update(future.result())
    return outcome


@pytest.mark.parametrize("argv", UNIQUE, ids=[shlex.join(argv)[:80] for argv in UNIQUE])
def test_command_runs_as_written(argv: tuple[str, ...], results) -> None:
    where = ", ".join(item.where for item in CHECKED if item.argv == argv)
    problems = _project_path_problems(argv) if argv[0] != "#import" else []
    problem = results[argv] if _group(argv) else _check_alone(argv)
    problems += [problem] if problem else []
    assert not problems, f"`{shlex.join(argv)}` ({where}) does not run as written:\n" + "\n".join(problems)


def test_extraction_finds_the_commands_it_should() -> None:
    """The rule finds block lines, inline spans and python imports; prose naming a program is not a command."""
    texts = {item.text for item in SHOWN}
    assert "make quickstart" in texts and "make docs-build" in texts  # a bash block, comments dropped
    assert "python run.py --pipeline training --config configs/quickstart.yaml" in texts
    assert "zenml logout http://127.0.0.1:8237" in texts  # an inline span
    assert "python -m cli.publish_command --repo-id me/har-clip" in texts  # HF_TOKEN=… dropped
    assert "git tag data-v1" in texts  # `&&` splits a line
    assert any(item.argv[0] == "#import" for item in SHOWN)
    assert "pipelines/multinode_training.py" not in texts and "run.py" not in texts
    assert all(item.argv for item in SHOWN)


def test_allow_list_entries_are_still_shown() -> None:
    """Each allow-listed command word is still used by some doc, so the list cannot outlive its reason."""
    used = {item.argv[0] for item in SHOWN}
    assert set(ALLOWED) <= used, f"allow-listed but no longer in the docs: {sorted(set(ALLOWED) - used)}"


def test_readme_links_into_the_site_resolve() -> None:
    """mkdocs --strict checks the links between pages; the README's links into docs/ are checked here."""
    from markdown.extensions.toc import slugify

    readme = (ROOT / "README.md").read_text()
    problems = []
    for target, anchor in re.findall(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)", readme):
        page = ROOT / target
        if not page.exists():
            problems.append(f"{target} does not exist")
            continue
        headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", page.read_text(), re.M)
        if anchor and anchor not in {slugify(heading, "-") for heading in headings}:
            problems.append(f"{target} has no heading #{anchor}")
    assert not problems, "\n".join(problems)
