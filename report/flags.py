"""Loud warnings for runs whose numbers cannot be trusted as they stand.

A broken run can still print plausible accuracy: a model that answers "not toxic" to every
comment scores about 0.74 here. These checks catch the usual failures of a training pipeline:
a collapsed classifier (one class for everything, or the same probability for everything),
a ranking barely better than chance, and two runs that are secretly the same model (a wrong
path, a copy instead of a new training run, a seed that was never applied).
"""
from itertools import combinations

import numpy as np

from evaluate import RunPredictions

LOW_ROC_AUC = 0.6
CONSTANT_PROB_STD = 1e-4
SAME_PROBS_TOLERANCE = 1e-6


def degenerate_flags(records: list[dict], predictions: dict[str, RunPredictions]) -> dict[str, list[str]]:
    """Run name -> warnings; an empty list means nothing suspicious was found."""
    flags = {record["name"]: [] for record in records}
    for record in records:
        probs = predictions[record["name"]].probs
        threshold = record["validation_threshold"]
        toxic = probs >= threshold
        if toxic.all() or not toxic.any():
            flags[record["name"]].append(
                f"constant predictor: all {len(probs)} test comments predicted "
                f"{'toxic' if toxic.all() else 'not toxic'} at threshold {threshold:.3f}")
        elif probs.std() < CONSTANT_PROB_STD:
            flags[record["name"]].append(
                f"constant predictor: the toxic probability barely varies (std {probs.std():.1e})")
        roc_auc = record["test"]["at_validation_threshold"]["roc_auc"]
        if np.isnan(roc_auc):
            flags[record["name"]].append("ROC-AUC undefined: the test split holds a single class")
        elif roc_auc < LOW_ROC_AUC:
            flags[record["name"]].append(f"ROC-AUC {roc_auc:.3f} < {LOW_ROC_AUC}: close to chance")

    for first, second in combinations(records, 2):
        a, b = predictions[first["name"]], predictions[second["name"]]
        if a.test_set != b.test_set:
            continue
        if np.max(np.abs(a.probs - b.probs)) <= SAME_PROBS_TOLERANCE:
            what = "identical predicted probabilities"
        elif np.array_equal(a.probs >= first["validation_threshold"], b.probs >= second["validation_threshold"]):
            what = "identical predicted labels on every test comment"
        else:
            continue
        flags[first["name"]].append(f"{what} to {second['name']}")
        flags[second["name"]].append(f"{what} to {first['name']}")
    return flags
