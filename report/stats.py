"""Is a difference between two methods real or noise? Seed spread and the paired bootstrap.

Two sources of noise blur a comparison: the training seed (the initialisation of a new head,
dropout, the data order; not the validation split, which ``--split-seed`` keeps fixed so that
every seed is validated and tested on the same comments) and the finite test set. The spread over
seeds is summarised by mean ± sample standard deviation. A difference between two methods gets an
interval that covers both noises: a paired bootstrap (Efron & Tibshirani 1993; Koehn 2004 for
NLP) at two levels, which resamples the training seeds and then the test comments, and scores
both methods on the same resample (``paired_bootstrap_auc_difference``). The 95% interval is the
2.5th to 97.5th percentile of the resampled differences (percentile bootstrap); when it contains
0, neither another seed nor another test sample can be ruled out as the source of the difference.
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


def two_level_bootstrap(n_examples: int, n_seeds: int, per_seed_statistic, resamples: int,
                        seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Resampled values of a statistic averaged over seeds: (seeds and examples resampled, examples only).

    ``per_seed_statistic(indices)`` scores each seed's run on each row of test-comment indices
    ([resamples, examples] -> [resamples, seeds]). Each resample draws the test comments with
    replacement and, for the first value, also the seeds with replacement (Davison & Hinkley 1997,
    section 3.8); see ``paired_bootstrap_auc_difference``. Resamples that drew a single class,
    where no ROC-AUC exists, are dropped.
    """
    rng = np.random.default_rng(seed)
    both, examples_only = [], []
    for done in range(0, resamples, BOOTSTRAP_CHUNK):
        chunk = min(BOOTSTRAP_CHUNK, resamples - done)
        values = per_seed_statistic(rng.integers(0, n_examples, size=(chunk, n_examples)))
        seed_weights = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=chunk) / n_seeds
        both.append((values * seed_weights).sum(axis=1))
        examples_only.append(values.mean(axis=1))
    both, examples_only = np.concatenate(both), np.concatenate(examples_only)
    kept = ~np.isnan(examples_only)
    return both[kept], examples_only[kept]


def paired_bootstrap_auc_difference(labels, probs_a: list[np.ndarray], probs_b: list[np.ndarray],
                                    resamples: int = 2000, seed: int = 0) -> dict:
    """Bootstrap of Δ = mean over seeds of (ROC-AUC of A's run − ROC-AUC of B's run), seeds paired.

    ``probs_a[j]`` and ``probs_b[j]`` are the two methods' runs with the same training seed, all
    scored on the same test comments. Δ is uncertain for two reasons, and the main interval
    (``ci95``) covers both with a two-level (hierarchical) bootstrap (Davison & Hinkley 1997,
    section 3.8): each resample first draws the seeds, with replacement, from the paired seeds
    (another seed would have trained other models), then the test comments, with replacement
    (another sample of comments would score them differently), and scores every drawn run on
    those comments. Drawing the comments once for both methods keeps the pairing, which removes
    the noise that both share (an easy resample is easy for both). ``ci95_examples_only`` keeps
    the seeds fixed and resamples the comments only: it ignores seed noise and is narrower when
    the seeds disagree. With a single seed the two coincide, and only test-set noise is covered.
    """
    labels = np.asarray(labels)
    probs_a, probs_b = np.asarray(probs_a, dtype=float), np.asarray(probs_b, dtype=float)

    def per_seed_differences(indices: np.ndarray) -> np.ndarray:
        """[resamples, seeds]: each seed's A − B ROC-AUC on each resample of the test comments."""
        resampled_labels = labels[indices]
        return np.stack([roc_auc_by_ranks(resampled_labels, a[indices]) - roc_auc_by_ranks(resampled_labels, b[indices])
                         for a, b in zip(probs_a, probs_b)], axis=-1)

    both, examples_only = two_level_bootstrap(len(labels), len(probs_a), per_seed_differences, resamples, seed)
    return {"difference": float(per_seed_differences(np.arange(len(labels))).mean()),
            "bootstrap_mean": float(both.mean()),
            "ci95": [float(x) for x in np.percentile(both, [2.5, 97.5])],
            "ci95_examples_only": [float(x) for x in np.percentile(examples_only, [2.5, 97.5])],
            "share_a_better": float(np.mean(both > 0)),
            "n_seeds": len(probs_a), "resamples": int(len(both)), "bootstrap_seed": seed}


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
