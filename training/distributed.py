"""Data parallelism with torch.distributed, so `torchrun --nproc_per_node=N train.py ...` just works.

torchrun starts N copies of the script and sets RANK, LOCAL_RANK and WORLD_SIZE. Each copy
trains on its own shard of the batches; DistributedDataParallel all-reduces (averages) the
gradients in backward, so every copy applies the same update and the weights stay identical.
gloo is the CPU backend, NCCL the GPU one. Run as a plain script, all of this is a no-op.
"""
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


def init_distributed(force_cpu: bool = False) -> Distributed:
    """Join the process group when launched by torchrun; otherwise a single process on the best device."""
    use_cuda = torch.cuda.is_available() and not force_cpu
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed(0, 1, torch.device("cuda" if use_cuda else "cpu"))
    local_rank = int(os.environ["LOCAL_RANK"])
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    return Distributed(dist.get_rank(), world_size, device)


def shutdown_distributed(env: Distributed) -> None:
    if env.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
