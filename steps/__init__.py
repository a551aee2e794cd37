"""ZenML steps: thin typed adapters over har_core. Importing this package registers the model materializer."""

from steps import materializers  # noqa: F401  (registers HarClipClassifierMaterializer, ExportBundleMaterializer)
from steps.benchmark_exports import benchmark_exports
from steps.evaluate_model import evaluate_model
from steps.export_model import export_model
from steps.load_base_model import load_base_model
from steps.load_data import load_data
from steps.load_dvc_data import load_dvc_data
from steps.promote_model import promote_model
from steps.train_model import train_model

__all__ = [
    "benchmark_exports",
    "evaluate_model",
    "export_model",
    "load_base_model",
    "load_data",
    "load_dvc_data",
    "promote_model",
    "train_model",
]
