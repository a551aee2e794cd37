"""har_core stays a plain library: importing all of it pulls in neither ZenML nor BentoML."""

import pkgutil
import subprocess
import sys

import har_core
from tests.conftest import PROJECT_ROOT


def test_har_core_imports_no_zenml_or_bentoml():
    modules = [f"har_core.{info.name}" for info in pkgutil.iter_modules(har_core.__path__)]
    assert "har_core.model" in modules and "har_core.training" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('zenml', 'bentoml'))\n"
        "assert not leaked, leaked\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, check=True)


def test_the_pre_run_data_check_imports_no_torch():
    """run.py scans local data before any heavy import, so a data problem is reported in a second or two."""
    script = (
        "import sys\n"
        "import har_core.data_check, pipelines.run_config\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'zenml', 'mlflow'))\n"
        "assert not leaked, leaked\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, check=True)


TORCH_FREE = [
    "har_core.transform",
    "har_core.images",
    "har_core.model_card",
    "har_core.export_manifest",
    "har_core.text_encoder",
    "har_core.parity",
    "har_core.predictor",
]


def test_serving_modules_import_no_torch():
    """What the Bento service and ONNX serving import must work without torch installed."""
    script = (
        "import importlib, sys\n"
        f"for name in {TORCH_FREE!r}: importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))\n"
        "assert not leaked, leaked[:5]\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, check=True)


def test_torchrun_workers_import_no_experiment_tracker():
    """Tracker runs belong to the step's process: workers hand metrics back as a file, never log themselves."""
    script = (
        "import sys\n"
        "import har_core.worker, har_core.launch\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('zenml', 'mlflow', 'wandb'))\n"
        "assert not leaked, leaked\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, check=True)
