"""The house's edges: what each top-level package may import, steps/ holding only steps, one name per meaning.

`tests/har_core/test_architecture.py` checks the inside of har_core; this checks the packages around it.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from tests.conftest import PROJECT_ROOT
from tests.layering import imported_modules, layer_order

# What each top-level package may import of the others (every import statement, lazy ones too).
ALLOWED: dict[str, set[str]] = {
    "locks": set(),
    "har_core": set(),  # the domain library: no ZenML, no BentoML (tests/har_core/test_architecture.py)
    "bento": {"har_core"},  # the shipped service: har_core.runtime only (tests/bento/test_architecture.py)
    "bento_ops": {"har_core", "bento"},  # builds, runs and checks Bentos; never shipped
    "har_zenml": {"har_core", "locks"},  # the ZenML-side library
    "stacks": {"har_core", "bento_ops"},
    "steps": {"har_core", "har_zenml", "bento_ops", "stacks"},
    "pipelines": {"har_core", "har_zenml", "steps"},
    "cli": {"har_core", "har_zenml", "pipelines"},  # never steps: what it shares with them is in har_zenml
    "run": {"cli"},
    "viewer": {"har_core", "har_zenml"},
    # The benchmarks time what users run: the CLI's command, the viewer's live scorer, the servers.
    "benchmarks": {"har_core", "har_zenml", "cli", "bento", "bento_ops", "stacks", "viewer"},
}
# Shared module names that mean the same thing in each place (a package's entry point).
SAME_MEANING = {"__init__.py", "__main__.py"}


def _sources(top: str) -> list[Path]:
    path = PROJECT_ROOT / top
    return [path.with_suffix(".py")] if path.with_suffix(".py").is_file() else sorted(path.rglob("*.py"))


def top_level_imports(tops: dict[str, set[str]] = ALLOWED, root: Path = PROJECT_ROOT) -> dict[str, set[str]]:
    """top-level package -> the other top-level packages its modules import."""
    edges: dict[str, set[str]] = {}
    for top in tops:
        for path in _sources(top) if root == PROJECT_ROOT else sorted((root / top).rglob("*.py")):
            for name in imported_modules(path):
                imported = name.split(".")[0]
                if imported in tops and imported != top:
                    edges.setdefault(top, set()).add(imported)
    return edges


def _decorated_by(function: ast.FunctionDef, decorator: str) -> bool:
    return any(
        (isinstance(node, ast.Name) and node.id == decorator)
        or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == decorator)
        for node in function.decorator_list
    )


def _functions(folder: str, decorator: str) -> dict[str, Path]:
    """name -> module of every function in `folder` decorated with `@decorator` (ZenML's `step`, `pipeline`)."""
    found = {}
    for path in sorted((PROJECT_ROOT / folder).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and _decorated_by(node, decorator):
                found[node.name] = path
    return found


def test_every_top_level_package_is_in_the_table():
    packages = {path.name for path in PROJECT_ROOT.iterdir() if (path / "__init__.py").is_file()} - {"tests"}
    assert packages | {"run"} == set(ALLOWED), packages ^ set(ALLOWED)


def test_packages_import_only_what_they_stand_on():
    wrong = {top: sorted(imported - ALLOWED[top]) for top, imported in top_level_imports().items()}
    assert not any(wrong.values()), {top: imported for top, imported in wrong.items() if imported}


def test_the_allowed_imports_have_no_circle():
    assert set(layer_order(ALLOWED)) == set(ALLOWED)


def test_the_check_sees_a_lazy_import_upwards(tmp_path):
    (tmp_path / "viewer").mkdir()
    (tmp_path / "viewer" / "page.py").write_text("def f():\n    from steps.train_model import train_model\n")
    assert top_level_imports({"viewer": set(), "steps": set()}, root=tmp_path) == {"viewer": {"steps"}}


def test_every_module_of_steps_defines_a_step():
    steps = _functions("steps", "step")
    modules = {path.name for path in (PROJECT_ROOT / "steps").glob("*.py")} - {"__init__.py"}
    assert modules == {path.name for path in steps.values()}, modules - {path.name for path in steps.values()}


def test_no_two_modules_share_a_name():
    """Outside tests, a module's file name says what it is: two files of one name would mean two things."""
    names = Counter(
        path.name for top in ALLOWED for path in _sources(top) if path.name not in SAME_MEANING and path.exists()
    )
    assert not [name for name, count in names.items() if count > 1], names.most_common(5)


def test_step_and_pipeline_names_are_spelled_only_in_the_names_module():
    """Runs are searched by step and pipeline name; a name spelled out elsewhere silently breaks on a rename."""
    steps, pipelines = _functions("steps", "step"), _functions("pipelines", "pipeline")
    names = set(steps) | set(pipelines)
    spelled = [
        f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} {node.value!r}"
        for top in ALLOWED
        for path in _sources(top)
        if path != PROJECT_ROOT / "har_zenml" / "names.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in names
    ]
    assert not spelled, spelled
    from har_zenml import names as names_module

    constants = {key: value for key, value in vars(names_module).items() if isinstance(value, str)}
    for key, value in constants.items():
        if key.endswith("_PIPELINE"):
            assert value in pipelines, key
        if key.endswith("_STEP") and value not in (names_module.TRAIN_COMMAND_STEP,):
            assert value in steps or key.endswith("EVALUATION_STEP"), key  # an evaluation step runs under two ids
