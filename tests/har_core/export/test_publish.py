import json

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard

from har_core.evaluation.metrics import compute_report
from har_core.export.publish import TRAINING_CONFIG_FILE, load_hub_folder, upload_folder, write_hub_folder


@pytest.fixture(scope="module")
def report(tiny_model):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 15, 60)
    y_pred = np.where(rng.random(60) < 0.7, y_true, rng.integers(0, 15, 60))
    return compute_report(y_true, y_pred, tiny_model.labels, "test")


@pytest.fixture(scope="module")
def folder(tiny_model, report, tmp_path_factory):
    import copy

    directory = tmp_path_factory.mktemp("hub") / "har-clip"
    config = {"epochs": 3, "learning_rate": 3e-6, "backbone": tiny_model.backbone_name}
    return write_hub_folder(copy.deepcopy(tiny_model), report, config, directory, "me/har-clip", "synthetic")


def test_card_metrics_equal_the_evaluation_report(folder, report):
    card = ModelCard.load(folder / "README.md")
    metrics = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert metrics == pytest.approx(report.headline_metrics())
    assert {result.dataset_split for result in card.data.eval_results} == {"test"}
    assert f"| accuracy | {report.accuracy:.4f} |" in card.text
    assert json.loads((folder / TRAINING_CONFIG_FILE).read_text())["epochs"] == 3


def test_the_folder_loads_back(folder, tiny_model):
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.bin"))
    loaded = load_hub_folder(folder)
    assert loaded.labels == tiny_model.labels and loaded.preprocess_config == tiny_model.preprocess_config
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(loaded(pixels), tiny_model(pixels), atol=1e-6)
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"]["0"] == tiny_model.labels[0]


def test_without_a_token_nothing_is_uploaded_and_it_says_so(folder, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    result = upload_folder(folder, "me/har-clip", token=None)
    assert not result.uploaded and "No Hugging Face token" in result.message and result.folder == str(folder)


def test_an_unreachable_hub_is_reported_not_raised(folder):
    result = upload_folder(folder, "me/har-clip", token="hf_fake", endpoint="http://127.0.0.1:9")  # nothing listens
    assert not result.uploaded and "failed" in result.message and str(folder) in result.message
