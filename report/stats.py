"""Is a difference between two methods real or noise? Seed spread and the paired bootstrap.

Two sources of noise blur a comparison: the training seed (the initialisation of a new head,
dropout, the data order; not the validation split, which ``--split-seed`` keeps fixed so that
every seed is validated and tested on the same comments) and the finite test set. The spread over
seeds is summarised by mean ± sample standard deviation. The test-set noise is measured with a
paired bootstrap (Efron & Tibshirani 1993; Koehn 2004 for NLP): resample the test comments with
replacement, score both methods on the same resample, and look at the distribution of the
difference. The 95% interval is the 2.5th to 97.5th percentile of the resampled differences
(percentile bootstrap); when it contains 0, the test set cannot tell the two methods apart.
"""
import numpy as np
from scipy.stats import rankdata

BOOTSTRAP_CHUNK = 250  # resamples scored at once: bounds the memory of the (chunk, n) matrices


def mean_std(values: list[float]) -> dict:
    """Mean and sample standard deviation (ddof=1); the std is None for a single value."""
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else None,
            "n": len(values)}


def roc_auc_by_ranks(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """ROC-AUC along the last axis, so many resamples are scored in one call.

    The AUC is the probability that a random toxic comment scores above a random clean one,
    which is the Mann-Whitney U statistic divided by n_pos * n_neg (Hanley & McNeil 1982):
    U = (sum of the ranks of the positives) - n_pos (n_pos + 1) / 2, with tied scores sharing
    their average rank. A row with a single class has no AUC and gives NaN.
    """
    labels = np.asarray(labels, dtype=float)
    ranks = rankdata(probs, axis=-1)
    n_pos = labels.sum(axis=-1)
    n_neg = labels.shape[-1] - n_pos
    u = (ranks * labels).sum(axis=-1) - n_pos * (n_pos + 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return u / (n_pos * n_neg)


def paired_bootstrap_auc_difference(labels, probs_a: list[np.ndarray], probs_b: list[np.ndarray],
                                    resamples: int = 2000, seed: int = 0) -> dict:
    """Bootstrap of Δ = mean ROC-AUC of the runs of A − mean ROC-AUC of the runs of B.

    ``probs_a`` and ``probs_b`` hold one probability vector per seed, all on the same test
    comments. Each resample draws test indices once and scores every run on them: the pairing
    removes the noise that both methods share (an easy resample is easy for both).
    """
    labels = np.asarray(labels)
    probs_a, probs_b = np.asarray(probs_a, dtype=float), np.asarray(probs_b, dtype=float)

    def difference(indices: np.ndarray) -> np.ndarray:
        resampled_labels = labels[indices]
        auc_a = np.mean([roc_auc_by_ranks(resampled_labels, probs[indices]) for probs in probs_a], axis=0)
        auc_b = np.mean([roc_auc_by_ranks(resampled_labels, probs[indices]) for probs in probs_b], axis=0)
        return auc_a - auc_b

    rng = np.random.default_rng(seed)
    differences = np.concatenate([
        difference(rng.integers(0, len(labels), size=(min(BOOTSTRAP_CHUNK, resamples - done), len(labels))))
        for done in range(0, resamples, BOOTSTRAP_CHUNK)])
    differences = differences[~np.isnan(differences)]  # resamples that drew a single class
    low, high = np.percentile(differences, [2.5, 97.5])
    return {"difference": float(difference(np.arange(len(labels)))),
            "bootstrap_mean": float(differences.mean()),
            "ci95": [float(low), float(high)],
            "share_a_better": float(np.mean(differences > 0)),
            "resamples": int(len(differences)), "bootstrap_seed": seed}
