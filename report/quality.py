"""Quality on the held-out test split, at 0.5 and at a threshold chosen on validation.

A classifier's default threshold of 0.5 is arbitrary on an imbalanced task, so we also report
the threshold that maximises the toxic-class F1, and we choose it on the validation split from
the run's own validation predictions. The test labels are used only to score: choosing anything
on them would leak them into the model and overstate the result.
"""
import hashlib
from dataclasses import dataclass

import numpy as np

from report import ReportError
from training.metrics import best_f1_threshold, binary_metrics


@dataclass
class RunPredictions:
    """One run's test probabilities and the test labels, kept in memory for plots and statistics.

    ``test_set`` fingerprints the test comments and labels: two runs can only be compared
    example by example (paired) when they were scored on the same test set. The validation
    labels and probabilities let the report build an ensemble of runs and choose its threshold.
    """
    labels: np.ndarray
    probs: np.ndarray
    test_set: str
    validation_labels: np.ndarray | None = None
    validation_probs: np.ndarray | None = None


def fingerprint(texts: list[str], labels: list[int]) -> str:
    """A short hash of a split, identical for runs evaluated on the same comments and labels."""
    digest = hashlib.sha256()
    for text, label in zip(texts, labels):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()[:16]


def quality_report(validation_labels, validation_probs, test_labels, test_probs) -> dict:
    """The validation-chosen threshold, validation metrics at it, and test metrics at 0.5 and at it."""
    if len(np.unique(validation_labels)) != 2:
        raise ReportError("the validation split holds a single class, so no decision threshold can be "
                          "chosen on it; use a larger --val-fraction")
    threshold = best_f1_threshold(validation_labels, validation_probs)
    return {
        "validation_threshold": threshold,
        "validation": binary_metrics(validation_labels, validation_probs, threshold),
        "test": {"at_0.5": binary_metrics(test_labels, test_probs, 0.5),
                 "at_validation_threshold": binary_metrics(test_labels, test_probs, threshold)},
    }
