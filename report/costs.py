"""What a model costs: parameters, bytes on disk, inference speed and training time.

Speed is measured here, for every run in the same process and with the same number of torch
threads, on the same fixed sample of test comments, after a warm-up (the first calls pay for
memory allocation and kernel selection). The time covers tokenisation and the forward pass:
what a user of the model waits for. Batch 1 is the latency of an interactive request; batch 64
is the throughput of bulk scoring. Each timing is the fastest of a few repeats, as ``timeit``
does: other processes can only slow a run down, so the minimum is the least disturbed estimate.
"""
import time
from pathlib import Path

import numpy as np
import torch

from evaluate import Scorer
from report.model_card import CARD_FILE
from serving.export_onnx import EXPORT_FILES

ADAPTER_FILE = "adapter.safetensors"
SPEED_SETTINGS = ((1, 64), (64, 256))  # (batch size, comments timed)
SPEED_REPEATS = 3
BYTES_PER_MB = 1_000_000


def folder_size_mb(folder: Path) -> float:
    """Every file of the run folder: the weights, config, tokenizer, history and any adapter.

    The model card is left out: evaluate.py rewrites it with this very number, and the size
    should not change because the report was run twice. So is the optional ONNX export
    (serving/export_onnx.py), a second copy of the weights in another format.
    """
    return sum(path.stat().st_size for path in Path(folder).rglob("*")
               if path.is_file() and path.name not in (CARD_FILE, *EXPORT_FILES)) / BYTES_PER_MB


def adapter_size_mb(folder: Path) -> float | None:
    """The LoRA adapter alone (A/B matrices and classification head), None for other methods."""
    adapter = Path(folder) / ADAPTER_FILE
    return adapter.stat().st_size / BYTES_PER_MB if adapter.is_file() else None


def fixed_sample(texts: list[str], size: int, seed: int = 0) -> list[str]:
    """The same comments for every run evaluated on this test split: a seeded draw without replacement."""
    chosen = np.random.default_rng(seed).permutation(len(texts))[:size]
    return [texts[i] for i in chosen]


def measure_speed(scorer: Scorer, texts: list[str]) -> dict:
    """Examples per second and milliseconds per comment at batch sizes 1 and 64."""
    sample = fixed_sample(texts, max(count for _, count in SPEED_SETTINGS))
    speed = {"threads": torch.get_num_threads(), "repeats": SPEED_REPEATS}
    for batch_size, count in SPEED_SETTINGS:
        comments = sample[:count]
        scorer.predict(comments[:max(batch_size, 8)], batch_size)  # warm-up
        elapsed = min(timed(lambda: scorer.predict(comments, batch_size))
                      for _ in range(SPEED_REPEATS))
        speed[f"batch_{batch_size}"] = {"batch_size": batch_size, "comments": len(comments),
                                        "examples_per_s": len(comments) / elapsed,
                                        "ms_per_comment": 1000 * elapsed / len(comments)}
    return speed


def timed(work) -> float:
    """Seconds that ``work()`` takes."""
    start = time.perf_counter()
    work()
    return time.perf_counter() - start
