import pytest
import torch

from har_core.config import SplitConfig, TrainingConfig
from har_core.data.split import stratified_split
from har_core.model.classifier import HarClipClassifier, build_classifier
from har_core.runtime.labels import HAR_LABELS
from har_core.training.precision import Precision, resolve_precision
from har_core.training.trainer import train_classifier
from tests.har_core.data.folders import image_records


def _config(tmp_path, **overrides):
    values = dict(
        epochs=3,
        batch_size=16,
        learning_rate=2e-3,
        weight_decay=0.01,
        num_workers=0,
        device="cpu",
        augmentation="light",
        early_stopping_patience=None,
        output_dir=tmp_path,
    )
    return TrainingConfig(**(values | overrides))


@pytest.fixture(scope="module")
def splits(synthetic_root):
    records = image_records(synthetic_root, HAR_LABELS)
    return stratified_split(records, SplitConfig(train=0.5, val=0.25, test=0.25))


def test_training_is_deterministic_on_cpu_and_keeps_checkpoints(tiny_classifier_config, splits, tmp_path):
    train, val, _ = splits
    runs = []
    for name in ("a", "b"):
        model = build_classifier(tiny_classifier_config, HAR_LABELS)
        best, result = train_classifier(model, train, val, _config(tmp_path / name))
        runs.append((best, result))
    (best_a, result_a), (best_b, result_b) = runs
    assert [epoch.model_dump() for epoch in result_a.history] == [epoch.model_dump() for epoch in result_b.history]
    assert len(result_a.history) == 3
    assert result_a.history[-1].train_loss < result_a.history[0].train_loss
    assert result_a.best_val_accuracy == max(epoch.val_accuracy for epoch in result_a.history)
    for checkpoint in (result_a.best_checkpoint, result_a.last_checkpoint):
        assert isinstance(HarClipClassifier.load(checkpoint), HarClipClassifier)
    pixels = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(best_a(pixels), best_b(pixels))


def test_early_stopping_stops_when_val_accuracy_stalls(tiny_classifier_config, splits, tmp_path):
    train, val, _ = splits
    model = build_classifier(tiny_classifier_config, HAR_LABELS)
    # A learning rate this small cannot move val accuracy, so patience 1 stops after epoch 2.
    _, result = train_classifier(
        model, train, val, _config(tmp_path, epochs=6, learning_rate=1e-12, early_stopping_patience=1)
    )
    assert result.stopped_early and len(result.history) == 2 and result.best_epoch == 1


def test_auto_precision_is_fp32_off_cuda():
    assert resolve_precision("auto", torch.device("cpu")) == Precision(None, False)
    assert resolve_precision("fp16", torch.device("cpu")) == Precision(torch.float16, True)  # with loss scaling


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_on_cpu(tiny_classifier_config, splits, tmp_path, precision):
    """An explicit bf16/fp16 runs CPU autocast (fp16 with its GradScaler): the GPU code path, on any machine."""
    model = build_classifier(tiny_classifier_config, HAR_LABELS)
    best, result = train_classifier(model, splits[0], splits[1], _config(tmp_path, precision=precision))
    losses = [epoch.train_loss for epoch in result.history]
    assert result.precision == precision and result.device == "cpu"
    assert losses[-1] < losses[0], losses
    assert {tensor.dtype for tensor in best.state_dict().values()} == {torch.float32}


def test_with_no_augmentation_the_decoded_cache_trains_the_weights_of_decoding_every_epoch(
    tiny_classifier_config, splits, tmp_path
):
    train, val, _ = splits
    models = {}
    for cached in (False, True):
        model = build_classifier(tiny_classifier_config, HAR_LABELS)
        config = _config(tmp_path / str(cached), epochs=2, augmentation="none", decoded_cache=cached)
        models[cached], _ = train_classifier(model, train, val, config)
    uncached, cached = models[False].state_dict(), models[True].state_dict()
    assert all(torch.equal(uncached[name], cached[name]) for name in uncached)


@pytest.mark.parametrize(("strategy", "returns_large_frees"), [("none", False), ("ddp", False), ("fsdp", True)])
def test_only_fsdp_returns_large_frees_to_the_os(strategy, returns_large_frees, tiny_model, tmp_path, monkeypatch):
    """FSDP's per-layer gathers need glibc's fixed mmap threshold (its memory per rank); other strategies keep glibc's
    default, as the threshold makes every large activation an mmap of fresh pages
    (benchmarks/training/training_bench.py, loop)."""
    from har_core.config import DistributedConfig
    from har_core.training import distributed
    from har_core.training import trainer as trainer_module

    calls = []
    monkeypatch.setattr(trainer_module, "return_large_frees_to_the_os", lambda: calls.append(True))
    for name in distributed.TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = _config(tmp_path, distributed=DistributedConfig(strategy=strategy, nproc_per_node=1))
    if strategy == "none":
        trainer_module.Trainer(tiny_model, config, tmp_path).context.close()
    else:  # outside torchrun the set-up refuses, after the allocator was configured
        with pytest.raises(RuntimeError, match="runs under torchrun"):
            trainer_module.Trainer(tiny_model, config, tmp_path)
    assert calls == ([True] if returns_large_frees else [])
