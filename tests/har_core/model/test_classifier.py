import copy

import pytest
import torch

from har_core.config import ClassifierConfig
from har_core.model.backbone import BackboneUnavailableError, load_backbone
from har_core.model.classifier import MODEL_CARD_FILE, HarClipClassifier, build_classifier
from har_core.runtime.labels import HAR_LABELS


def _pixels(model, batch=3):
    size = model.preprocess_config.crop_size
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_logits_have_one_column_per_label(tiny_model):
    logits = tiny_model(_pixels(tiny_model))
    assert logits.shape == (3, len(HAR_LABELS))
    embeddings = tiny_model.class_embeddings()
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(len(HAR_LABELS)), atol=1e-5)


def test_save_load_round_trip_gives_identical_logits(tiny_model, tmp_path):
    pixels = _pixels(tiny_model)
    with torch.no_grad():
        expected = tiny_model(pixels)
    tiny_model.save(tmp_path / "model")
    assert (tmp_path / "model" / MODEL_CARD_FILE).is_file()
    assert list((tmp_path / "model" / "backbone").glob("*.safetensors"))
    assert not list((tmp_path / "model").rglob("*.bin")) and not list((tmp_path / "model").rglob("*.pt"))
    loaded = HarClipClassifier.load(tmp_path / "model")
    with torch.no_grad():
        assert torch.equal(loaded(pixels), expected)
    assert loaded.labels == tiny_model.labels
    assert loaded.templates == tiny_model.templates
    assert loaded.preprocess_config == tiny_model.preprocess_config


def test_loading_a_missing_or_foreign_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HarClipClassifier.load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="not a har-clip model directory"):
        HarClipClassifier.load(tmp_path)


def test_missing_backbone_directory_is_a_clear_error(tmp_path):
    with pytest.raises(BackboneUnavailableError, match="does not exist"):
        load_backbone(str(tmp_path / "no-backbone"))
    with pytest.raises(BackboneUnavailableError, match="does not exist"):
        build_classifier(ClassifierConfig(backbone="./models/missing-clip"), HAR_LABELS)


def test_text_tower_is_frozen_and_the_rest_trains(tiny_model):
    clip = tiny_model.clip
    assert not any(parameter.requires_grad for parameter in clip.text_model.parameters())
    assert all(parameter.requires_grad for parameter in clip.vision_model.parameters())
    assert clip.visual_projection.weight.requires_grad and clip.text_projection.weight.requires_grad


def test_changing_labels_recomputes_class_embeddings(tiny_model):
    model = copy.deepcopy(tiny_model)
    model.set_labels(["running", "sleeping"], model.templates)
    assert model(_pixels(model)).shape == (3, 2)
    assert torch.allclose(model.class_embeddings()[0], tiny_model.class_embeddings()[HAR_LABELS.index("running")])


def test_prompt_ensembling_averages_templates(tiny_model):
    model = copy.deepcopy(tiny_model)
    single = []
    for template in tiny_model.templates:
        model.set_labels(["running"], [template])
        single.append(model.class_embeddings()[0])
    expected = torch.nn.functional.normalize(torch.stack(single).mean(dim=0), dim=-1)
    model.set_labels(["running"], tiny_model.templates)
    assert torch.allclose(model.class_embeddings()[0], expected, atol=1e-6)


def test_a_saved_model_is_a_loadable_backbone(tiny_model, tmp_path):
    """Training can continue from a trained model: `save`'s backbone/ is a complete HF CLIP directory."""
    tiny_model.save(tmp_path / "model")
    clip, tokenizer, processor = load_backbone(str(tmp_path / "model" / "backbone"))
    from har_core.runtime.preprocess import PreprocessConfig

    assert PreprocessConfig.from_image_processor(processor) == tiny_model.preprocess_config
    continued = build_classifier(ClassifierConfig(backbone=str(tmp_path / "model" / "backbone")), HAR_LABELS)
    pixels = _pixels(tiny_model)
    with torch.no_grad():
        assert torch.allclose(continued(pixels), tiny_model(pixels), atol=1e-6)


def test_model_card_is_typed_and_refuses_bad_content(tiny_model, tmp_path):
    from har_core.runtime.model_card import HarClipModelCard

    tiny_model.save(tmp_path / "model")
    card = HarClipModelCard.load(tmp_path / "model")
    assert list(card.labels) == tiny_model.labels and card.logit_scale == pytest.approx(float(tiny_model.logit_scale()))
    (tmp_path / "model" / MODEL_CARD_FILE).write_text(
        card.model_dump_json().replace('"format_version":1', '"format_version":9')
    )
    with pytest.raises(ValueError, match="unsupported har-clip model format 9"):
        HarClipModelCard.load(tmp_path / "model")
