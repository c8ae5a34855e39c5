"""One method's test ROC-AUC with its interval: the error bar of a point in the report's figures.

The interval of evaluate.py's paired comparisons (``seeds_and_comments_interval``), for one method:
the spread of its seeds' AUCs with Student's t, and the test comments' noise of their mean (DeLong).
"""
import numpy as np

from evaluate import auc_structural_components, comment_noise_se, seeds_and_comments_interval


def auc_interval(labels, probs_runs: list[np.ndarray]) -> dict:
    """One method's test ROC-AUC, averaged over its seeds' runs, with its 95% interval."""
    probs = np.asarray(probs_runs, dtype=float)
    aucs = auc_structural_components(labels, probs)[0]
    interval = seeds_and_comments_interval(aucs, comment_noise_se(labels, probs, np.full(len(probs), 1 / len(probs))))
    return {"roc_auc": interval["mean"], "ci95": interval["ci95"], "n_seeds": len(probs)}
