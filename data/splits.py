"""Train / validation / test splits, and how the missing ones are carved out of the training data.

The three splits have three jobs: train fits the weights, validation picks the epoch and the
decision threshold, test is read once at the end to report results. If test ever influenced a
choice, the reported numbers would be optimistic, so a source's own test split is kept as it is
and nothing is ever carved out of it.

Carved splits are *stratified*: each class is split separately, so a 10% validation split of data
with 27% insults also holds 27% insults. With a plain random split, a small validation set can
drift several points away from the true positive rate, and the F1-optimal threshold chosen on it
drifts with it.
"""
import random
from collections.abc import Sequence
from dataclasses import dataclass

from data import DataError

TEST_FRACTION = 0.1
"""Share of the training data held out as test when a source ships without a test split."""


@dataclass
class Split:
    """Texts and their binary labels (1 = toxic), in the same order."""
    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def positive_rate(self) -> float:
        """Share of toxic examples (0.0 for an empty split)."""
        return sum(self.labels) / len(self.labels) if self.labels else 0.0

    def subset(self, indices: Sequence[int]) -> "Split":
        return Split([self.texts[i] for i in indices], [self.labels[i] for i in indices])


@dataclass
class Splits:
    """The three splits of one dataset, and a human-readable description of where they came from."""
    train: Split
    validation: Split
    test: Split
    source: str


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split the indices of ``labels`` into (kept, held_out), holding out ``fraction`` of each class.

    Each class holds out ``round(fraction * class size)`` examples, at least one and never all of
    them when the class has two or more, so both classes appear on both sides whenever possible.
    The choice depends only on ``labels``, ``fraction`` and ``seed`` (``random.Random`` gives the
    same sequence on every platform and Python version). Both lists are sorted, so the examples
    keep their original order.
    """
    if not 0 < fraction < 1:
        raise DataError(f"a split fraction must be between 0 and 1 (exclusive), got {fraction}")
    rng = random.Random(seed)
    held_out = []
    for label in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(members)
        count = round(fraction * len(members))
        if len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        held_out.extend(members[:count])
    held_out_set = set(held_out)
    kept = [i for i in range(len(labels)) if i not in held_out_set]
    return kept, sorted(held_out)


def carve_splits(train: Split, validation: Split | None, test: Split | None, *,
                 val_fraction: float, seed: int, source: str) -> Splits:
    """Fill in the missing splits from ``train``: test first (``TEST_FRACTION``), then validation.

    Test is carved first so that the validation split is a ``val_fraction`` share of the data that
    is actually left for training. A source's own validation or test split is used as it is.
    """
    if test is None:
        kept, held_out = stratified_split(train.labels, TEST_FRACTION, seed)
        train, test = train.subset(kept), train.subset(held_out)
    if validation is None:
        kept, held_out = stratified_split(train.labels, val_fraction, seed)
        train, validation = train.subset(kept), train.subset(held_out)
    return Splits(train=train, validation=validation, test=test, source=source)
