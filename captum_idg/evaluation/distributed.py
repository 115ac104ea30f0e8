"""The processes of one run: torch.distributed under ``torchrun``, or just this one.

Each rank takes a disjoint, deterministic share of the work (every
``world``-th item from its rank: no item twice, none dropped at the tail, as
``DistributedSampler`` without its padding), runs on its ``LOCAL_RANK`` device
and writes its own part files; rank 0 merges after a barrier.
"""

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Optional, Sequence

import torch
import torch.distributed as dist

# ranks wait at the final barrier for the slowest one; imbalance can take hours
BARRIER_TIMEOUT = timedelta(days=2)


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, items: Sequence) -> list:
        """This rank's part of ``items``: every ``world``-th from ``rank``."""
        return list(items[self.rank :: self.world])

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def ranks(device: Optional[str] = None) -> Ranks:
    """This process's rank, joining the process group when ``torchrun`` (or
    another launcher) set ``WORLD_SIZE`` > 1: NCCL on GPUs, gloo on CPUs; an
    already initialised group is used as it is. ``device`` None: the GPU
    ``LOCAL_RANK`` when there is one, else the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    elif device == "cuda":
        device = f"cuda:{local}"
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend, timeout=BARRIER_TIMEOUT)
    if dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size(), device)
    return Ranks(0, 1, device)
