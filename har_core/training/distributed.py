"""The process-group side of training: who this process is, how the model is wrapped, how metrics are summed.

A `Trainer` asks this module once for a `DistributedContext`. With `strategy: none` that is a world of one and
nothing here talks to `torch.distributed`; under torchrun the process group comes from the environment
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), so the same loop runs on 1 or N processes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

from har_core.config import DistributedConfig
from har_core.model.classifier import HarClipClassifier
from har_core.runtime.device import DeviceChoice, resolve_device
from har_core.training.precision import Precision

if TYPE_CHECKING:
    from torch.distributed.fsdp import MixedPrecisionPolicy

logger = logging.getLogger(__name__)

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job; `owns_group` says whether it must destroy the process group."""

    strategy: str = "none"
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def uses_group(self) -> bool:
        return self.strategy != "none"

    def barrier(self) -> None:
        if self.uses_group:
            dist.barrier()

    def close(self) -> None:
        """Destroy the process group this process created (success and failure alike)."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def resolve_backend(choice: str, device: torch.device) -> str:
    """`auto`: NCCL for CUDA devices, gloo otherwise; NCCL without CUDA is refused."""
    if choice == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if choice == "nccl" and device.type != "cuda":
        raise ValueError("distributed.backend: nccl needs CUDA devices; use backend: auto or gloo on CPU.")
    return choice


def per_rank_batch_size(global_batch: int, world_size: int) -> int:
    """training.batch_size is the global batch, so it must split evenly over the processes."""
    if global_batch % world_size:
        raise ValueError(
            f"training.batch_size {global_batch} is the global batch and must be divisible by the world size "
            f"{world_size} (nproc_per_node x nodes); pick a multiple of {world_size}."
        )
    return global_batch // world_size


def setup(config: DistributedConfig, device_choice: DeviceChoice) -> tuple[DistributedContext, torch.device]:
    """The context and device of this process; joins (or reuses) the process group torchrun describes."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if config.strategy == "none":
        if world_size > 1:
            raise RuntimeError(
                f"This process was launched as one of {world_size} workers but training.distributed.strategy is "
                "'none'; set strategy: ddp or fsdp."
            )
        return DistributedContext(), resolve_device(device_choice)
    if not launched_by_torchrun():
        raise RuntimeError(
            f"training.distributed.strategy: {config.strategy} runs under torchrun (the train step launches it); "
            f"this process lacks {[name for name in TORCHRUN_VARIABLES if name not in os.environ]}."
        )
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    device = resolve_device(device_choice)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns_group = not dist.is_initialized()
    if owns_group:
        backend = resolve_backend(config.backend, device)
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=config.timeout_s))
    context = DistributedContext(config.strategy, rank, dist.get_world_size(), local_rank, owns_group)
    logger.info("Rank %d of %d (%s, %s)", rank, context.world_size, config.strategy, device)
    return context, device


def train_sampler(dataset_size: int, context: DistributedContext, seed: int) -> ResumableSampler:
    return ResumableSampler(
        range(dataset_size), num_replicas=context.world_size, rank=context.rank, shuffle=True, seed=seed
    )


def eval_sampler(dataset_size: int, context: DistributedContext) -> DistributedSampler:
    """Unshuffled shards of equal length (DistributedSampler pads by repeating); `eval_mask` drops the repeats."""
    return DistributedSampler(
        range(dataset_size), num_replicas=context.world_size, rank=context.rank, shuffle=False, drop_last=False
    )


def eval_mask(dataset_size: int, context: DistributedContext, count: int) -> torch.Tensor:
    """True for this rank's real samples; the i-th sample of rank r sits at position r + i * world_size."""
    positions = context.rank + torch.arange(count) * context.world_size
    return positions < dataset_size


class ResumableSampler(DistributedSampler):
    """A `DistributedSampler` that can start an epoch part-way through (the sampler position of a checkpoint)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.start = 0

    def skip(self, samples: int) -> None:
        """Skip this rank's first `samples` indices in the next epoch only."""
        self.start = samples

    def __iter__(self):
        indices = list(super().__iter__())[self.start :]
        self.start = 0
        return iter(indices)

    def __len__(self) -> int:
        return self.num_samples - self.start


def all_reduce_sum(values: Sequence[float], context: DistributedContext, device: torch.device) -> list[float]:
    """Element-wise sums over ranks (float64), so metrics are figures of the whole global batch."""
    if not context.uses_group or context.world_size == 1:
        return [float(value) for value in values]
    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def wrap_model(model: nn.Module, context: DistributedContext, device: torch.device, precision: Precision) -> nn.Module:
    """The module the training step calls: the model itself, a DDP wrapper, or the model sharded in place."""
    if context.strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        # Every rank computes the same cached text_features from the frozen text tower, so buffers need no
        # broadcast; frozen parameters are left out of the gradient reducer by DDP itself.
        device_ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)
    if context.strategy == "fsdp":
        shard_from_rank0(model, context, device, precision)
    return model


def load_for_training(directory: str | Path, strategy: str) -> HarClipClassifier:
    """The model a worker trains: read from `directory`, except on FSDP ranks other than 0, which build it on the
    meta device (no weight read or allocated) and receive rank 0's weights when it is sharded (`shard_from_rank0`)."""
    on_meta = strategy == "fsdp" and int(os.environ.get("RANK", "0")) != 0
    return HarClipClassifier.load(directory, device="meta" if on_meta else "cpu")


def shard_from_rank0(model: nn.Module, context: DistributedContext, device: torch.device, precision: Precision) -> None:
    """Shard `model` in place with rank 0's weights; no rank ever holds a second full copy.

    Every rank turns its model into a meta-device skeleton (ranks other than 0 may pass one already), shards it,
    allocates only its own shards on `device`, and receives them from rank 0's full state dict
    (`set_model_state_dict(full_state_dict=True, broadcast_from_rank0=True)`: rank 0 broadcasts one tensor at a
    time, each rank keeps its slice). Non-persistent buffers (the cached `text_features`, CLIP's `position_ids`)
    are in no state dict, so they are broadcast from rank 0 after the skeleton is allocated.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    persistent = set(model.state_dict())
    unsaved = [name for name, _ in model.named_buffers() if name not in persistent]
    full_state: dict[str, torch.Tensor] = {}
    buffers: dict[str, torch.Tensor] = {}
    if context.is_main:
        full_state = dict(model.state_dict())
        buffers = {name: buffer for name, buffer in model.named_buffers() if name in unsaved}
        full_state["clip.logit_scale"] = full_state["clip.logit_scale"].reshape(1)  # as `shard_clip` holds it
    model.to("meta")  # rank 0's full weights now live only in `full_state`, freed once broadcast
    shard_clip(model, precision)
    model.to_empty(device=device)
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_model_state_dict(model, full_state, options=options)
    del full_state
    for name, buffer in model.named_buffers():
        if name in unsaved:
            if context.is_main:
                buffer.copy_(buffers[name])
            dist.broadcast(buffer, src=0)


def shard_clip(model: nn.Module, precision: Precision) -> None:
    """FSDP2: one `fully_shard` per CLIP encoder layer (vision and text) plus the root.

    Mixed precision under FSDP is its `MixedPrecisionPolicy`, not autocast: parameters are all-gathered and computed
    in `training.precision`'s dtype (on any device), gradients reduced in fp32, and the sharded fp32 parameters are
    what the optimizer steps and what checkpoints hold.
    """
    from torch.distributed.fsdp import fully_shard

    clip = model.clip
    # fully_shard refuses 0-dim parameters; a 1-element logit_scale broadcasts identically in forward.
    clip.logit_scale = nn.Parameter(clip.logit_scale.detach().reshape(1), requires_grad=clip.logit_scale.requires_grad)
    policy = mixed_precision_policy(precision)
    for layer in (*clip.vision_model.encoder.layers, *clip.text_model.encoder.layers):
        fully_shard(layer, mp_policy=policy)
    fully_shard(model, mp_policy=policy)


def mixed_precision_policy(precision: Precision) -> MixedPrecisionPolicy:
    """FSDP2's policy for a precision: low-precision compute with fp32 reduction, or the fp32 default."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if precision.dtype is None:
        return MixedPrecisionPolicy()
    return MixedPrecisionPolicy(param_dtype=precision.dtype, reduce_dtype=torch.float32)


def grad_scaler(context: DistributedContext, device: torch.device, precision: Precision) -> torch.amp.GradScaler:
    """fp16 loss scaling (disabled otherwise); under FSDP every rank holds other gradient shards, so the sharded
    scaler all-reduces its inf/NaN check and all ranks skip the same steps."""
    if context.strategy == "fsdp" and precision.use_grad_scaler:
        from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

        return ShardedGradScaler(device.type)
    return torch.amp.GradScaler(device.type, enabled=precision.use_grad_scaler)


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Bytes of parameters, gradients and optimizer state this rank holds (its shards under FSDP): the memory that
    lives on a GPU for the whole run, apart from activations and the libraries that dominate a CPU's RSS."""
    from torch.distributed.tensor import DTensor

    def nbytes(tensor: torch.Tensor) -> int:
        return (tensor.to_local() if isinstance(tensor, DTensor) else tensor).nbytes

    parameters = list(model.parameters())
    return {
        "parameters": sum(nbytes(parameter) for parameter in parameters),
        "gradients": sum(nbytes(parameter.grad) for parameter in parameters if parameter.grad is not None),
        "optimizer": sum(
            nbytes(value) for state in optimizer.state.values() for value in state.values() if torch.is_tensor(value)
        ),
    }


def full_model_state(model: nn.Module, context: DistributedContext) -> dict[str, torch.Tensor] | None:
    """The unsharded CPU state dict on rank 0 (None elsewhere); every rank must call it under FSDP."""
    if context.strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not context.is_main:
            return None
        state["clip.logit_scale"] = state["clip.logit_scale"].reshape(())
        return state
    if not context.is_main:
        return None
    return {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
