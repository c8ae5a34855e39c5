"""One method's test ROC-AUC with its interval: the error bar of a point in the report's figures.

The paired comparisons between methods are ``evaluate.py``'s (``paired_bootstrap_auc_difference``);
a figure's point uses the same two-level bootstrap, over the method's seeds and the test comments.
"""
import numpy as np

from evaluate import roc_auc_by_ranks, two_level_bootstrap


def bootstrap_auc_interval(labels, probs_runs: list[np.ndarray], resamples: int = 2000, seed: int = 0) -> dict:
    """One method's test ROC-AUC, averaged over its seeds' runs, with the same two-level 95% interval.

    The interval a point of a figure carries: it covers the training-seed noise (with several
    seeds) and the test-set noise, like the comparisons'.
    """
    labels = np.asarray(labels)
    probs_runs = np.asarray(probs_runs, dtype=float)

    def per_seed_auc(indices: np.ndarray) -> np.ndarray:
        return np.stack([roc_auc_by_ranks(labels[indices], probs[indices]) for probs in probs_runs], axis=-1)

    both, _ = two_level_bootstrap(len(labels), len(probs_runs), per_seed_auc, resamples, seed)
    return {"roc_auc": float(per_seed_auc(np.arange(len(labels))).mean()),
            "ci95": [float(x) for x in np.percentile(both, [2.5, 97.5])],
            "n_seeds": len(probs_runs), "resamples": int(len(both)), "bootstrap_seed": seed}
