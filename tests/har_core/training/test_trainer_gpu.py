"""Mixed-precision training on CUDA. CI has no GPU: these skip there and run on a lent GPU machine.

`benchmarks/gpu_check.sh` runs this module. The same code paths run on CPU in test_distributed.py (gloo, bf16);
here NCCL, CUDA autocast and FSDP's policy on a GPU are what is new.
"""

import pytest
import torch

from har_core.config import DistributedConfig, SplitConfig, TrainingConfig
from har_core.data.dataset import DatasetManifest
from har_core.data.split import stratified_split
from har_core.model.classifier import HarClipClassifier, build_classifier
from har_core.runtime.labels import HAR_LABELS
from har_core.training.launcher import run_training
from har_core.training.trainer import train_classifier
from tests.har_core.data.folders import image_records

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("precision", ["auto", "fp16"])
def test_amp_training_on_cuda(tiny_classifier_config, synthetic_root, tmp_path, precision):
    train, val, _ = stratified_split(
        image_records(synthetic_root, HAR_LABELS), SplitConfig(train=0.5, val=0.25, test=0.25)
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


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_bf16_ddp_and_fsdp_train_on_one_gpu_with_nccl(tiny_classifier_config, synthetic_root, tmp_path, strategy):
    """One torchrun worker on the GPU: DDP with bf16 autocast, FSDP2 with a bf16 MixedPrecisionPolicy."""
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    train, val, test = stratified_split(
        image_records(synthetic_root, HAR_LABELS), SplitConfig(train=0.5, val=0.25, test=0.25)
    )
    manifest = DatasetManifest(labels=list(HAR_LABELS), root=str(synthetic_root), train=train, val=val, test=test)
    config = TrainingConfig(
        epochs=3,
        batch_size=8,
        learning_rate=2e-3,
        weight_decay=0.01,
        num_workers=0,
        device="cuda",
        precision="bf16",
        early_stopping_patience=None,
        output_dir=tmp_path / "checkpoints",
        distributed=DistributedConfig(strategy=strategy, nproc_per_node=1, backend="auto"),
    )
    model, result = run_training(
        build_classifier(tiny_classifier_config, HAR_LABELS),
        manifest,
        config,
        tmp_path / "checkpoints" / "run",
        tmp_path / "job",
    )
    losses = [epoch.train_loss for epoch in result.history]
    assert result.device.startswith("cuda") and result.precision == "bf16" and result.strategy == strategy
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0], losses
    assert {tensor.dtype for tensor in model.state_dict().values()} == {torch.float32}
    assert isinstance(HarClipClassifier.load(result.last_checkpoint), HarClipClassifier)
