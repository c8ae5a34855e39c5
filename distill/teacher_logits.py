"""Teacher logits, computed once per training example and cached: the teacher is frozen and in eval mode
(dropout off), so this is exact and saves a forward pass per step. The cache is keyed by the teacher's weights,
the token ids and the scoring code: every student and rank shares one computation, and none gets stale logits.
"""
import hashlib
import inspect
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file

from training.batching import length_bucketed_batches, make_batch, pad_batch
from training.distributed import Distributed
from training.files import write_atomically
from training.loop import EncodedSplit, predict_logits

# The code the logits depend on besides the weights: ours, and the versions of the libraries under it.
SCORING_CODE = (predict_logits, length_bucketed_batches, make_batch, pad_batch)


def cache_key(teacher_dir: Path, split: EncodedSplit) -> str:
    """Identifies (teacher weights, training token ids, scoring code): a change to any misses the cache."""
    with open(Path(teacher_dir) / "model.safetensors", "rb") as weights:
        digest = hashlib.file_digest(weights, "sha256")
    for ids in split.token_ids:
        digest.update(bytes(str(ids), "ascii"))
    for function in SCORING_CODE:
        digest.update(inspect.getsource(function).encode())
    digest.update(f"torch {torch.__version__} transformers {transformers.__version__}".encode())
    return digest.hexdigest()[:16]


def cached_teacher_logits(teacher, teacher_dir: Path, split: EncodedSplit, cache_dir: Path,
                          pad_id: int, env: Distributed) -> torch.Tensor:
    """The teacher's logits [examples, classes] on ``split``: rank 0 writes them (atomically), all ranks read."""
    path = Path(cache_dir) / f"teacher-logits-{cache_key(teacher_dir, split)}.safetensors"
    if env.is_main and not path.exists():
        logits = predict_logits(teacher, split, pad_id, env.device)
        write_atomically(path, lambda temporary: save_file({"logits": logits.contiguous()}, temporary))
        print(f"cached teacher logits for {len(split.labels)} examples in {path}")
    env.barrier()
    return load_file(path)["logits"]
