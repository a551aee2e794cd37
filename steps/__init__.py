"""ZenML steps: thin typed adapters over har_core. Importing this package registers the model materializer."""

from steps import materializers  # noqa: F401  (registers HarClipClassifierMaterializer)
from steps.evaluate_model import evaluate_model
from steps.load_base_model import load_base_model
from steps.load_data import load_data
from steps.load_dvc_data import load_dvc_data
from steps.train_model import train_model

__all__ = ["evaluate_model", "load_base_model", "load_data", "load_dvc_data", "train_model"]
