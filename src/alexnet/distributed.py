"""Data-parallel training on PyTorch's distributed engine (torchrun / DDP).

``torchrun --nproc_per_node=N -m alexnet train ...`` (one machine) or ``torchrun --nnodes=M --node_rank=I
--nproc_per_node=N --rdzv-backend=c10d --rdzv-endpoint=HOST:PORT -m alexnet train ...`` (several) sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; ``train_entry`` then joins the process group (NCCL on GPUs, Gloo
on CPUs), wraps the model in DistributedDataParallel and shards the data (``make_loader(rank=, world_size=)``: each
epoch one seeded permutation, partitioned across the ranks).

The global batch stays the configured ``--batch-size`` (each of N ranks takes batch/N; DDP averages the gradients,
so one step equals one step of one process on the whole batch), and the paper's recipe (batch 128, lr 0.01) is
unchanged by the number of processes.  Losses and error counts are summed across ranks before they are logged; only
rank 0 writes logs, plots and checkpoints, and every rank resumes from the same checkpoint.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .errors import ConfigError


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


@dataclass(frozen=True)
class DistContext:
    """This process's place in the process group."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device | None
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def single(cls, device: torch.device | None = None) -> "DistContext":
        """One process, no process group (``device`` None: the trainer resolves it from its config)."""
        return cls(0, 1, 0, device, "none")

    def reduce(self, t: torch.Tensor) -> torch.Tensor:
        """The sum of ``t`` over all ranks, on the CPU (one process: ``t`` itself)."""
        return t if self.world_size == 1 else all_reduce_sum(self.device)(t)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model as this process runs it: DistributedDataParallel in a process group, else unchanged."""
        return model if self.world_size == 1 else ddp_wrapper(self)(model)


def init_from_env(device: str = "auto") -> DistContext:
    """Join the process group torchrun describes in the environment (``env://``).

    NCCL with one GPU per process (``cuda:LOCAL_RANK``) when CUDA is available and ``device`` is not ``cpu``;
    otherwise Gloo on the CPU.
    """
    import torch.distributed as dist

    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        if key not in os.environ:
            raise ConfigError(f"distributed training: ${key} is not set; launch with torchrun "
                              "(torchrun --nproc_per_node=N -m alexnet train ...)")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine (use --device cpu: Gloo)")
    use_cuda = torch.cuda.is_available() and str(device) != "cpu"
    if use_cuda:
        if str(device) not in ("auto", "cuda"):
            raise ConfigError(f"--device {device}: under torchrun each process uses cuda:LOCAL_RANK; pass "
                              "--device cuda (or auto), and choose GPUs with CUDA_VISIBLE_DEVICES")
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s) visible: use "
                              "at most one process per GPU (--nproc_per_node)")
        torch.cuda.set_device(local_rank)
        dev, backend = torch.device("cuda", local_rank), "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, device_id=dev if use_cuda else None)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dev, backend)


def all_reduce_sum(device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """``reduce(t)``: the sum of ``t`` over all ranks, returned on the CPU (NCCL reduces on the GPU)."""
    import torch.distributed as dist

    def reduce(t: torch.Tensor) -> torch.Tensor:
        t = t.to(device, copy=True)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu()

    return reduce


def ddp_wrapper(ctx: DistContext) -> Callable[[torch.nn.Module], torch.nn.Module]:
    """``wrap(model)``: DistributedDataParallel on this rank's device (rank 0's weights are broadcast to all)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    def wrap(model: torch.nn.Module) -> torch.nn.Module:
        return DDP(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)

    return wrap


def train_entry(cfg, resume=None, overwrite: bool = False, printer=None):
    """Run ``alexnet.train.train`` in this process, joining a torchrun process group when there is one.

    Returns the summary on rank 0 and None on other ranks.
    """
    from .train import train

    world = world_size_from_env()
    if world <= 1:
        return train(cfg, resume=resume, overwrite=overwrite, printer=printer)
    import torch.distributed as dist

    if cfg.batch_size is not None and cfg.batch_size % world:   # None: the recipe's, checked by the Trainer
        raise ConfigError(f"--batch-size {cfg.batch_size} is not divisible by the {world} processes; the global "
                          "batch is split evenly across ranks")
    if getattr(cfg, "tower_devices", None):
        raise ConfigError("--tower-devices (two GPUs per model) cannot be combined with torchrun data parallelism "
                          "here; run one process with --tower-devices, or torchrun without it")
    ctx = init_from_env(cfg.device)
    try:
        summary = train(cfg, resume=resume, overwrite=overwrite, dist=ctx, printer=printer)
    finally:
        dist.destroy_process_group()
    return summary if ctx.is_main else None


__all__ = ["DistContext", "init_from_env", "all_reduce_sum", "ddp_wrapper", "train_entry", "world_size_from_env"]
