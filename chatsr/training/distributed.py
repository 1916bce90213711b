"""Process groups, FSDP sharding and full (consolidated) state dicts for training.

One process per core or GPU, started by ``torchrun``. We shard with torch's FSDP2
(``fully_shard``): it shards on CPU with gloo as well as on GPUs with NCCL, whereas HF
``Trainer(fsdp=...)`` and ``accelerate launch`` fall back on CPU to DDP or to unsynchronised
copies. Every parameter lives on exactly one rank between steps (a ``Shard(0)`` DTensor);
FSDP gathers a group's parameters for its forward and backward and reduce-scatters the
gradients, averaged over ranks.

Checkpoints are consolidated: the full state dict is gathered to rank 0 and saved with
``save_pretrained``, so ``from_pretrained`` loads it in a single process, and a run can resume
on any number of processes.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

__all__ = ["Context", "all_reduce_sum", "full_model_state", "full_optimizer_state",
           "load_optimizer_state", "setup", "shard_model", "teardown"]

logger = logging.getLogger(__name__)
_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


@dataclass(frozen=True)
class Context:
    """Where this process sits: its rank, the number of processes, and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 logs and saves; the others compute."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str | None = None) -> Context:
    """Join the process group that ``torchrun`` describes in the environment (else run alone).

    The backend is NCCL when every process has a GPU, gloo otherwise.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if world_size == 1:
        return Context(device=torch.device("cuda" if use_cuda else "cpu"))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    return Context(rank=rank, world_size=world_size, device=dev)


def teardown(context: Context) -> None:
    """Leave the process group (after the last collective)."""
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def shard_model(model: nn.Module, context: Context) -> nn.Module:
    """Shard a `ChatSRForCausalLM` across the process group with FSDP2 (in place).

    Each decoder layer of the LM is its own unit (the LM's ``_no_split_modules``), as are the
    token embeddings (the model calls them directly to splice in the data vectors), the set
    encoder, the projector and the rest of the LM; the root holds what is left.
    """
    if not context.distributed:
        return model
    from torch.distributed.fsdp import fully_shard

    lm = model.language_model
    layer_classes = set(getattr(lm, "_no_split_modules", None) or ())
    layers = [m for m in lm.modules() if type(m).__name__ in layer_classes]
    if not layers:
        raise ValueError(f"cannot find the decoder layers of {type(lm).__name__} "
                         f"(_no_split_modules={sorted(layer_classes)})")
    # The projector's Linear returns a view of its matmul; FSDP warns against in-place ops on
    # such outputs, and the model only reads it (masked_scatter is out of place).
    warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")
    for unit in [*layers, lm.get_input_embeddings(), model.data_encoder, model.projector, lm]:
        fully_shard(unit)
    fully_shard(model)
    return model


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's state dict on CPU, on every rank's call (a collective when sharded);
    only rank 0 gets the tensors, the others an empty dict."""
    return get_model_state_dict(model, options=_FULL)


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer state keyed by parameter names, gathered on rank 0 (a collective)."""
    return get_optimizer_state_dict(model, optimizer, options=_FULL)


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer,
                         state: dict) -> None:
    """Load a state from `full_optimizer_state` into a sharded or plain optimizer; every rank
    passes the full state (read from the checkpoint)."""
    set_optimizer_state_dict(model, optimizer, state,
                             options=StateDictOptions(full_state_dict=True))


def all_reduce_sum(value: torch.Tensor, context: Context) -> torch.Tensor:
    """``value`` summed over ranks (itself when alone)."""
    if context.distributed:
        value = value.clone()
        dist.all_reduce(value)
    return value
