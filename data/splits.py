"""Train / validation / test splits, and how the missing ones are carved out of the training data.

Test is read once, at the end: results chosen on it would be optimistic, so a source's own test split is kept as it
is and nothing is ever carved out of it. Carved splits are *stratified* (each class split separately): a plain random
split lets a small validation set drift from the true toxic rate, and the epoch and threshold chosen on it drift too.
Two comments count as one when their normalised texts are equal (``normalise_text``): a comment in two splits, or in
a transfer set and a split, is found that way.
"""
import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

TEST_FRACTION = 0.1  # share of the training data held out as test when a source has no test split


def normalise_text(text: str) -> str:
    """The text two comments must share to be one comment: "ﬁne  WORK!" and "fine work" share "fine work"."""
    return " ".join(re.sub(r"[^\w]+", " ", unicodedata.normalize("NFKC", text).casefold()).split())


@dataclass
class Split:
    """Texts and their binary labels (1 = toxic), in the same order."""
    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def positive_rate(self) -> float:
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
    """Split the indices of ``labels`` into sorted (kept, held_out) lists, holding out ``fraction`` of each class:
    a class of two or more holds out at least one and never all. ``random.Random`` is the same on every platform.
    """
    rng, held_out = random.Random(seed), []
    for label in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(members)
        count = round(fraction * len(members))
        held_out += members[:min(max(count, 1), len(members) - 1) if len(members) >= 2 else count]
    return sorted(set(range(len(labels))) - set(held_out)), sorted(held_out)


def carve_splits(train: Split, validation: Split | None, test: Split | None, *,
                 val_fraction: float, seed: int, source: str) -> Splits:
    """Fill in the missing splits from ``train``: test first, so validation is a share of what is left to train on."""
    if test is None:
        train, test = [train.subset(part) for part in stratified_split(train.labels, TEST_FRACTION, seed)]
    if validation is None:
        train, validation = [train.subset(part) for part in stratified_split(train.labels, val_fraction, seed)]
    return Splits(train=train, validation=validation, test=test, source=source)
