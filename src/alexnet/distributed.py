"""Data-parallel training on PyTorch's distributed engine (torchrun / DDP).

``torchrun --nproc_per_node=N -m alexnet train ...`` sets RANK/WORLD_SIZE/LOCAL_RANK; ``train_entry`` then joins
the process group (NCCL on GPUs, Gloo on CPUs), wraps the model in DistributedDataParallel and shards the data.
The global batch stays the configured ``--batch-size`` (each of N ranks takes batch/N), so the paper's recipe
(batch 128, lr 0.01) is unchanged by the number of processes.  Only rank 0 writes logs, plots and checkpoints.
"""
from __future__ import annotations

import os

import torch

from .errors import ConfigError


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def train_entry(cfg, resume=None):
    """Run ``alexnet.train.train`` in this process, joining a torchrun process group when there is one.

    Returns the summary on rank 0 and None on other ranks.
    """
    from .train import train

    world = world_size_from_env()
    if world <= 1:
        return train(cfg, resume=resume)
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    if cfg.batch_size % world:
        raise ConfigError(f"--batch-size {cfg.batch_size} is not divisible by the {world} processes; the global "
                          "batch is split evenly across ranks")
    use_cuda = torch.cuda.is_available() and cfg.device != "cpu"
    backend = "nccl" if use_cuda else "gloo"
    dist.init_process_group(backend)
    rank = dist.get_rank()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")

    def reduce(t: torch.Tensor) -> torch.Tensor:
        t = t.to(device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu()

    def wrap(model):
        return DDP(model, device_ids=[local_rank] if use_cuda else None)

    try:
        summary = train(cfg, resume=resume, rank=rank, world_size=world, reduce=reduce, wrap_model=wrap,
                        device=device)
    finally:
        dist.destroy_process_group()
    return summary if rank == 0 else None
