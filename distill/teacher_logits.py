"""Teacher logits, computed once per training example and cached.

The teacher is frozen and in eval mode (dropout off), so its logits for an example never change
during distillation. Computing them once is exact and removes the teacher's forward pass from
every step; the cache file is keyed by the teacher's weights and the token ids, so odd, even and
lora-kd students (and every data-parallel rank) share one computation.
"""
import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from training.distributed import Distributed
from training.loop import EncodedSplit, predict_logits


def cache_key(teacher_dir: Path, split: EncodedSplit) -> str:
    """Identifies (teacher weights, training token ids): a change to either misses the cache."""
    digest = hashlib.sha256()
    with open(Path(teacher_dir) / "model.safetensors", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    for ids in split.token_ids:
        digest.update(bytes(str(ids), "ascii"))
    return digest.hexdigest()[:16]


def cached_teacher_logits(teacher, teacher_dir: Path, split: EncodedSplit, cache_dir: Path,
                          pad_id: int, env: Distributed) -> torch.Tensor:
    """Logits [examples, classes] of the teacher on ``split``, from the cache when present.

    Rank 0 computes and writes the file; the other ranks wait at a barrier and read it.
    """
    path = Path(cache_dir) / f"teacher-logits-{cache_key(teacher_dir, split)}.safetensors"
    if env.is_main and not path.exists():
        logits = predict_logits(teacher, split, pad_id, env.device)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        save_file({"logits": logits.contiguous()}, partial)
        partial.replace(path)
        print(f"cached teacher logits for {len(split.labels)} examples in {path}")
    env.barrier()
    return load_file(path)["logits"]
