"""Backbone loading through the production `from_pretrained` path, on directories made here."""

import json

from transformers import CLIPImageProcessorPil

from har_core.config import ClassifierConfig, TinyBackboneConfig
from har_core.model.backbone import build_tiny_clip, looks_like_local_path
from har_core.model.classifier import build_classifier
from har_core.runtime.labels import HAR_LABELS
from har_core.runtime.preprocess import PreprocessConfig


def test_a_local_hf_directory_is_a_backbone(tmp_path):
    path = build_tiny_clip(tmp_path / "my-clip", TinyBackboneConfig(image_size=32, patch_size=8))
    model = build_classifier(ClassifierConfig(backbone=str(path)), HAR_LABELS)
    assert model.backbone_name == str(path)
    assert model.preprocess_config.crop_size == 32 and model.preprocess_config.resize_shortest_edge == 32


def test_tiny_backbone_is_built_once_and_reused(tmp_path):
    config = ClassifierConfig(tiny_backbone=TinyBackboneConfig(image_size=32, patch_size=8), cache_dir=tmp_path)
    first = build_classifier(config, ["running", "sitting"])
    built = list(tmp_path.iterdir())
    weights, folder = next(built[0].glob("*.safetensors")).stat(), tmp_path.stat()
    second = build_classifier(config, ["running", "sitting"])
    assert list(tmp_path.iterdir()) == built and len(built) == 1
    again = next(built[0].glob("*.safetensors")).stat()  # a rebuild writes a new file: new inode and mtime
    assert (again.st_ino, again.st_mtime_ns) == (weights.st_ino, weights.st_mtime_ns)
    assert tmp_path.stat().st_mtime_ns == folder.st_mtime_ns  # not even a staging folder was made and removed
    for one, other in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert one.equal(other)


def test_openai_style_preprocessor_config_is_read(tmp_path):
    """The Hub's CLIP checkpoints store `size` and `crop_size` as plain ints (older processor format)."""
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "crop_size": 224,
                "do_center_crop": True,
                "do_normalize": True,
                "do_resize": True,
                "feature_extractor_type": "CLIPFeatureExtractor",
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711],
                "resample": 3,
                "size": 224,
            }
        )
    )
    config = PreprocessConfig.from_image_processor(CLIPImageProcessorPil.from_pretrained(tmp_path))
    assert config == PreprocessConfig()  # the defaults are CLIP's: 224 short side, 224 crop, CLIP mean/std


def test_hub_ids_and_paths_are_told_apart():
    assert not looks_like_local_path("openai/clip-vit-base-patch16")
    assert not looks_like_local_path("clip")
    assert looks_like_local_path("./models/clip") and looks_like_local_path("/abs/clip")
    assert looks_like_local_path("models/org/clip")
