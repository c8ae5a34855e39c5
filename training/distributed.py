"""Data parallelism under ``torchrun``: each process trains on its own shard, and DDP averages their gradients."""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only rank 0 logs, draws progress bars and writes files."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def device_type(force_cpu: bool = False) -> str:
    """Where training runs: "cuda" when a GPU is there (unless ``force_cpu``), else "cpu"."""
    return "cuda" if torch.cuda.is_available() and not force_cpu else "cpu"


def init_distributed(force_cpu: bool = False) -> Distributed:
    """Join the process group when launched by torchrun (gloo on CPU, NCCL on GPU); otherwise a single process."""
    use_cuda = device_type(force_cpu) == "cuda"
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed(0, 1, torch.device("cuda" if use_cuda else "cpu"))
    local_rank = int(os.environ["LOCAL_RANK"])
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Distributed(dist.get_rank(), world_size, torch.device(f"cuda:{local_rank}" if use_cuda else "cpu"))


def shutdown_distributed(env: Distributed) -> None:
    if env.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
