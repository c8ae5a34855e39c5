"""What the benchmark scripts share: the data they measure on, timed training steps, timed inference.

Every script measures on the embedded insults data tokenised exactly as ``train.py`` does it, so
the sequence lengths, and with them the padding and the cost of a batch, are the real ones. A
timed training step is the step of ``training/loop.py`` (forward under optional bf16 autocast,
backward, gradient clipping, AdamW), so a speed measured here is a speed the real loop can reach.

Run the scripts as modules from the repository root (``python -m bench.speed_levers``), so
that ``data``, ``training`` and the other packages import as they do for ``train.py``.
"""
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import AutoConfig, PreTrainedTokenizerBase

from data import DataError
from data.load import load_splits
from distill import DistillError
from distill.student import build_student_from_base, parse_layers
from lora.lora import LoRAError
from models.load import ModelError, load_classifier
from training.batching import MAX_LENGTH, encode_texts, length_bucketed_batches, make_batch
from training.loop import (EncodedSplit, LossFn, TrainingConfig, autocast, build_optimizer,
                           predict_logits)
from training.metrics import binary_metrics

CPU = torch.device("cpu")
SHAPES = ("student", "teacher")  # the model shapes a script can time: see build_training_model


@dataclass
class EncodedData:
    """The three insults splits as token ids, ready for ``make_batch`` and ``predict_logits``."""
    train: EncodedSplit
    validation: EncodedSplit
    test: EncodedSplit


def slice_split(split: EncodedSplit, limit: int | None) -> EncodedSplit:
    """The first ``limit`` examples of a split (all of them when ``limit`` is None)."""
    return EncodedSplit(split.token_ids[:limit], split.labels[:limit])


def load_encoded_insults(tokenizer: PreTrainedTokenizerBase, *, train_limit: int | None = None,
                         validation_limit: int | None = None, test_limit: int | None = None,
                         max_length: int = MAX_LENGTH) -> EncodedData:
    """The embedded insults splits (train.py's default split seed), tokenised, each cut to its limit."""
    splits = load_splits("insults")
    return EncodedData(*(slice_split(EncodedSplit(encode_texts(tokenizer, split.texts, max_length), split.labels),
                                     limit)
                         for split, limit in ((splits.train, train_limit), (splits.validation, validation_limit),
                                              (splits.test, test_limit))))


def bucketed_batches(split: EncodedSplit, batch_size: int, pad_id: int, *, epochs: int = 1,
                     seed: int = 42) -> list[dict]:
    """The batches of ``epochs`` epochs as ``training.loop.train`` builds them: length-bucketed, padded per batch."""
    lengths = [len(ids) for ids in split.token_ids]
    return [make_batch(indices, split.token_ids, split.labels, pad_id)
            for epoch in range(epochs)
            for indices in length_bucketed_batches(lengths, batch_size, seed=seed, epoch=epoch)]


def build_training_model(shape: str, base: str) -> torch.nn.Module:
    """A model of the real shape to time: the 6-layer student from the base's even layers, or the 12-layer teacher.

    Both come from the pretrained base with a new head; for timing, the values of the weights do not matter.
    """
    torch.manual_seed(0)
    if shape == "teacher":
        return load_classifier(base)
    depth = AutoConfig.from_pretrained(base, trust_remote_code=False).num_hidden_layers
    return build_student_from_base(base, parse_layers("even", depth)).model


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count (None keeps torch's choice) and return the count in force."""
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


@dataclass
class Throughput:
    """How many examples (and padded token positions) went through in how many seconds."""
    examples: int
    tokens: int
    seconds: float

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.seconds


def time_training_steps(model: torch.nn.Module, batches: Sequence[dict], loss_fn: LossFn, *, bf16: bool,
                        lr: float = 5e-5, warmup_steps: int = 1,
                        optimizer: torch.optim.Optimizer | None = None) -> Throughput:
    """Run one training step per batch, as ``training/loop.py`` does, and time them.

    The first ``warmup_steps`` batches are run once untimed before the timed pass over all
    batches: the first steps allocate buffers and, for AdamW, the moment estimates, a one-off
    cost that would otherwise be charged to whichever variant happens to run first. The
    optimizer defaults to the loop's own (``training.loop.build_optimizer``).
    """
    model.train()
    if optimizer is None:
        optimizer, _ = build_optimizer(model, TrainingConfig(lr=lr), total_steps=len(batches) + warmup_steps)

    def step(batch: dict) -> None:
        with autocast(CPU, bf16):
            loss = loss_fn(model, batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for batch in batches[:warmup_steps]:
        step(batch)
    started = time.perf_counter()
    for batch in batches:
        step(batch)
    seconds = time.perf_counter() - started
    return Throughput(sum(len(b["labels"]) for b in batches), sum(b["input_ids"].numel() for b in batches), seconds)


def time_inference(model: torch.nn.Module, split: EncodedSplit, pad_id: int, *, bf16: bool = False,
                   batch_size: int = 64) -> tuple[Throughput, torch.Tensor]:
    """Time ``predict_logits`` (eval mode, no gradients, length-sorted batches) over a split.

    A warm-up call on the first batch comes first, for the same reason as in training. Returns
    the throughput and the logits, so that the same pass also gives the model's quality.
    """
    predict_logits(model, slice_split(split, batch_size), pad_id, CPU, batch_size, bf16)
    started = time.perf_counter()
    logits = predict_logits(model, split, pad_id, CPU, batch_size, bf16)
    seconds = time.perf_counter() - started
    # predict_logits sorts the whole split by length before batching, so each batch pads to its own longest.
    lengths = [len(ids) for ids in split.token_ids]
    tokens = sum(len(indices) * max(lengths[i] for i in indices)
                 for indices in length_bucketed_batches(lengths, batch_size, seed=0, epoch=0, shuffle=False))
    return Throughput(len(split.labels), tokens, seconds), logits


def roc_auc(split: EncodedSplit, logits: torch.Tensor) -> float:
    """ROC-AUC of the toxic-class probabilities, computed as ``evaluate.py`` and the loop do."""
    return binary_metrics(split.labels, torch.softmax(logits.float(), dim=-1)[:, 1].numpy())["roc_auc"]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A pipe table with aligned columns: readable in a terminal and rendered by Markdown viewers."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x"


def mean_length(split: EncodedSplit) -> float:
    return float(np.mean([len(ids) for ids in split.token_ids]))


def run_script(main: Callable[[], None]) -> None:
    """Run a script's ``main``; the project's own errors (bad names, missing runs) end it with their message alone."""
    try:
        main()
    except (DataError, DistillError, LoRAError, ModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
