"""Data-parallel training with two real processes (gloo on the CPU), as torchrun would start them."""
import json
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from conftest import tiny_classifier
from experiments.resume import EpochCheckpoints
from test_training import tiny_split
from training.distributed import init_distributed, shutdown_distributed
from training.loop import TrainingConfig, cross_entropy_loss, train

WORLD_SIZE = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, port: int, out: str) -> None:
    """One rank: the environment torchrun sets, then the project's own init and training loop."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE))
    torch.set_num_threads(1)
    env = init_distributed(force_cpu=True)
    seen = []

    def recording_loss(model, batch):
        seen.extend(batch["index"].tolist())
        return cross_entropy_loss(model, batch)

    model = tiny_classifier(seed=0)
    train(model, recording_loss, tiny_split(64), tiny_split(16, seed=1),
          config=TrainingConfig(epochs=1, lr=1e-3, batch_size=4), env=env, pad_id=0, history={},
          checkpoints=EpochCheckpoints(Path(out) / "checkpoint"))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out, f"rank{rank}.safetensors"))
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(seen, f)
    shutdown_distributed(env)


def test_two_ranks_train_on_disjoint_shards_and_end_with_identical_weights(tmp_path):
    mp.spawn(worker, args=(free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    shards = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD_SIZE)]
    assert set(shards[0]).isdisjoint(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(64)), "64 examples in 16 batches of 4 split evenly"
    weights = [load_file(tmp_path / f"rank{r}.safetensors") for r in range(WORLD_SIZE)]
    untrained = tiny_classifier(seed=0).state_dict()
    assert any(not torch.equal(weights[0][k], untrained[k]) for k in untrained), "the ranks did train"
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), f"{key} differs between ranks"
    assert (tmp_path / "checkpoint" / "state.json").exists(), "rank 0 wrote the checkpoint"
