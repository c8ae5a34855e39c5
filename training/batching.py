"""Length-bucketed batches with dynamic padding, sharded across data-parallel ranks.

A batch pads to its longest comment, so a random batch spends much of its compute on pad tokens; batches of
comments of similar length pad little.
"""
import numpy as np
import torch

POOL_BATCHES = 50
MAX_LENGTH = 128  # tokens a comment is cut to: the default of train.py, and of a run that records none
MIN_LENGTH = 8  # the shortest --max-length: [CLS], [SEP] and a few words


def encode_texts(tokenizer, texts: list[str], max_length: int, prefix: str = "") -> list[list[int]]:
    """Token ids of the run's ``prefix`` + each text, cut to ``max_length``: one encoding for training and scoring."""
    return tokenizer([prefix + text for text in texts], truncation=True, max_length=max_length)["input_ids"]


def length_bucketed_batches(lengths: list[int], batch_size: int, *, seed: int, epoch: int,
                            shuffle: bool = True, rank: int = 0, world_size: int = 1) -> list[list[int]]:
    """This rank's batches of example indices, of similar length; without ``shuffle`` (evaluation) all, sorted.

    Pools of ``POOL_BATCHES`` batches of the shuffled order are each sorted by length and sliced, then the batches
    shuffled. Every rank draws the same (seed, epoch) order and takes every ``world_size``-th batch, dropping the
    remainder: a rank with an extra step would wait forever in all-reduce.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    lengths = np.asarray(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths)) if shuffle else np.arange(len(lengths))
    pool_size = batch_size * POOL_BATCHES if shuffle else max(len(lengths), 1)
    pools = [order[start:start + pool_size] for start in range(0, len(order), pool_size)]
    pools = [pool[np.argsort(lengths[pool], kind="stable")] for pool in pools]
    batches = [pool[i:i + batch_size].tolist() for pool in pools for i in range(0, len(pool), batch_size)]
    if shuffle:
        rng.shuffle(batches)
    return batches[rank:len(batches) - len(batches) % world_size:world_size]


def pad_batch(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the longest sequence in this batch: (input_ids, attention_mask)."""
    input_ids = torch.full((len(sequences), max(len(s) for s in sequences)), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, sequence in enumerate(sequences):
        input_ids[row, :len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        attention_mask[row, :len(sequence)] = 1
    return input_ids, attention_mask


def make_batch(indices: list[int], token_ids: list[list[int]], labels: list[int], pad_id: int) -> dict:
    """The tensors for one step; ``index`` lets a loss look up per-example data such as cached teacher logits."""
    input_ids, attention_mask = pad_batch([token_ids[i] for i in indices], pad_id)
    return {"input_ids": input_ids, "attention_mask": attention_mask,
            "labels": torch.tensor([labels[i] for i in indices], dtype=torch.long),
            "index": torch.tensor(indices, dtype=torch.long)}
