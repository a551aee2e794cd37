"""Mixed-precision training on CUDA. CI has no GPU: these skip there and run on a lent GPU machine."""

import pytest
import torch

from har_core.config import SplitConfig, TrainingConfig
from har_core.dataset import scan_image_folder
from har_core.labels import HAR_LABELS
from har_core.model import build_classifier
from har_core.split import stratified_split
from har_core.training import train_classifier

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("precision", ["auto", "fp16"])
def test_amp_training_on_cuda(tiny_classifier_config, synthetic_root, tmp_path, precision):
    train, val, _ = stratified_split(
        scan_image_folder(synthetic_root, HAR_LABELS), SplitConfig(train=0.5, val=0.25, test=0.25)
    )
    model = build_classifier(tiny_classifier_config, HAR_LABELS)
    config = TrainingConfig(
        epochs=2,
        batch_size=16,
        learning_rate=2e-3,
        num_workers=0,
        device="cuda",
        precision=precision,
        early_stopping_patience=None,
        output_dir=tmp_path,
    )
    _, result = train_classifier(model, train, val, config)
    expected = "fp16" if precision == "fp16" else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    assert result.device.startswith("cuda") and result.precision == expected
    assert all(torch.isfinite(torch.tensor(epoch.train_loss)) for epoch in result.history)
