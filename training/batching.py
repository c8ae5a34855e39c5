"""Length-bucketed batches with dynamic padding, sharded across data-parallel ranks.

Comments range from a few tokens to the 128-token cap. Padding every batch to the cap would
spend most of the compute on pad tokens, and a random batch pads to its longest member. So we
shuffle, cut the shuffled order into large pools, sort each pool by length and slice it into
batches: each batch holds comments of similar length (little padding), while the pools and a
final shuffle of the batch order keep the data well mixed between steps.
"""
import numpy as np
import torch

POOL_BATCHES = 50
MAX_LENGTH = 128  # tokens a comment is cut to: the default of train.py, and of a run that records none


def encode_texts(tokenizer, texts: list[str], max_length: int, prefix: str = "") -> list[list[int]]:
    """Token ids of ``prefix`` + each text, truncated to ``max_length``; padding happens per batch later.

    The prefix is a run's ``--text-prefix`` (e.g. "query: ", the marker e5 models were trained
    with): every text the model sees, in training and whenever the run is scored, goes through
    here with it, and truncation cuts the end of the text, never the prefix.
    """
    return tokenizer([prefix + text for text in texts], truncation=True, max_length=max_length)["input_ids"]


def length_bucketed_batches(lengths: list[int], batch_size: int, *, seed: int, epoch: int,
                            shuffle: bool = True, rank: int = 0, world_size: int = 1) -> list[list[int]]:
    """Example indices grouped into batches of similar length, this rank's share only.

    The order depends only on (seed, epoch), so every rank computes the same batches and takes
    every ``world_size``-th one: the shards are disjoint and, together, cover every batch. The
    last few batches are dropped when they do not divide evenly, so all ranks take the same
    number of steps (an uneven count would leave one rank waiting forever in all-reduce).
    Without ``shuffle`` (evaluation) the whole set is sorted by length.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    lengths = np.asarray(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths)) if shuffle else np.arange(len(lengths))
    pool_size = batch_size * POOL_BATCHES if shuffle else max(len(lengths), 1)
    batches = []
    for start in range(0, len(order), pool_size):
        pool = order[start:start + pool_size]
        pool = pool[np.argsort(lengths[pool], kind="stable")]
        batches += [pool[i:i + batch_size].tolist() for i in range(0, len(pool), batch_size)]
    if shuffle:
        rng.shuffle(batches)
    usable = len(batches) - len(batches) % world_size
    return batches[rank:usable:world_size]


def pad_batch(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the longest sequence in this batch: (input_ids, attention_mask)."""
    longest = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        input_ids[row, :len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        attention_mask[row, :len(sequence)] = 1
    return input_ids, attention_mask


def make_batch(indices: list[int], token_ids: list[list[int]], labels: list[int], pad_id: int) -> dict:
    """The tensors for one step. ``index`` lets a loss look up per-example data such as cached teacher logits."""
    input_ids, attention_mask = pad_batch([token_ids[i] for i in indices], pad_id)
    return {"input_ids": input_ids, "attention_mask": attention_mask,
            "labels": torch.tensor([labels[i] for i in indices], dtype=torch.long),
            "index": torch.tensor(indices, dtype=torch.long)}
