"""Degenerate-run detection: constant predictors, near-chance ranking, runs with the same predictions."""
import numpy as np
import pytest

from report.flags import degenerate_flags
from evaluate import RunPredictions, quality_report

LABELS = np.array([0, 1] * 50)


def evaluated(name: str, test_probs: np.ndarray, validation_probs: np.ndarray | None = None):
    """A run entry and its test predictions, with the threshold chosen on a validation copy of test."""
    validation_probs = test_probs if validation_probs is None else validation_probs
    record = {"name": name, **quality_report(LABELS, validation_probs, LABELS, test_probs)}
    return record, RunPredictions(LABELS, test_probs, "same test set")


def flags_of(*runs) -> dict[str, list[str]]:
    records, predictions = zip(*runs)
    return degenerate_flags(list(records), {r["name"]: p for r, p in zip(records, predictions)})


@pytest.fixture
def good_probs() -> np.ndarray:
    return np.clip(0.3 + 0.4 * LABELS + np.random.default_rng(0).normal(0, 0.15, len(LABELS)), 0, 1)


def test_a_good_run_is_not_flagged(good_probs):
    assert flags_of(evaluated("good", good_probs)) == {"good": []}


def test_constant_predictors_are_flagged(good_probs):
    # Validation ranks well, so its threshold (≈0.55) lies above every test probability.
    all_clean = evaluated("all_clean", np.full(len(LABELS), 0.3) + 1e-3 * LABELS, good_probs)
    # Both classes are predicted, but the probabilities differ only in the sixth decimal.
    flat = evaluated("flat", 0.5 + 2e-6 * np.random.default_rng(1).random(len(LABELS)), 0.5 + 1e-6 * LABELS)
    flags = flags_of(all_clean, flat)
    assert flags["all_clean"] == ["constant predictor: all 100 test comments predicted not toxic at threshold 0.502"]
    assert flags["flat"][0].startswith("constant predictor: the toxic probability barely varies (std 5.7e-07)")


def test_near_chance_ranking_is_flagged(good_probs):
    shuffled = np.random.default_rng(2).permutation(good_probs)
    flags = flags_of(evaluated("chance", shuffled, good_probs))
    assert any(f.startswith("ROC-AUC") and "< 0.6" in f for f in flags["chance"])


def test_two_runs_with_the_same_predictions_are_both_flagged(good_probs):
    copy = flags_of(evaluated("a", good_probs), evaluated("copy_of_a", good_probs + 5e-7))
    assert copy == {"a": ["identical predicted probabilities to copy_of_a"],
                    "copy_of_a": ["identical predicted probabilities to a"]}
    # Squaring keeps the ranking, so the validation threshold moves along and every label stays the same.
    relabelled = flags_of(evaluated("a", good_probs), evaluated("squared", good_probs ** 2))
    assert relabelled["squared"] == ["identical predicted labels on every test comment to a"]
    independent = np.clip(0.3 + 0.4 * LABELS + np.random.default_rng(9).normal(0, 0.15, len(LABELS)), 0, 1)
    assert flags_of(evaluated("a", good_probs), evaluated("b", independent)) == {"a": [], "b": []}
