"""The statistics behind the seed study: rank-based ROC-AUC, the paired bootstrap, method comparisons."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from report.quality import RunPredictions
from report.stats import mean_std, paired_bootstrap_auc_difference, roc_auc_by_ranks
from report.study import compare_methods, seed_summary


def noisy_scores(labels: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """Scores that rank toxic comments higher, blurred by Gaussian noise (more noise, lower AUC)."""
    return labels + np.random.default_rng(seed).normal(0, noise, len(labels))


@pytest.fixture
def labels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 2, 300)


def test_rank_auc_equals_sklearn_with_ties_and_on_many_rows_at_once(labels):
    probs = np.round(noisy_scores(labels, 1.0, 1), 1)  # rounding creates many ties
    assert roc_auc_by_ranks(labels, probs) == pytest.approx(roc_auc_score(labels, probs), abs=1e-12)
    rows = np.random.default_rng(2).integers(0, len(labels), (5, len(labels)))
    batched = roc_auc_by_ranks(labels[rows], probs[rows])
    assert batched == pytest.approx([roc_auc_score(labels[r], probs[r]) for r in rows], abs=1e-12)
    assert np.isnan(roc_auc_by_ranks(np.ones(4), np.arange(4.0)))  # one class: no AUC


def test_mean_std_uses_the_sample_std_and_none_for_one_value():
    assert mean_std([0.8, 0.9, 1.0]) == pytest.approx({"mean": 0.9, "std": 0.1, "n": 3})
    assert mean_std([0.7]) == {"mean": 0.7, "std": None, "n": 1}


def test_bootstrap_is_deterministic_for_a_seed(labels):
    a, b = [noisy_scores(labels, 1.0, 1)], [noisy_scores(labels, 1.0, 2)]
    first = paired_bootstrap_auc_difference(labels, a, b, resamples=300, seed=5)
    assert paired_bootstrap_auc_difference(labels, a, b, resamples=300, seed=5) == first
    assert paired_bootstrap_auc_difference(labels, a, b, resamples=300, seed=6)["ci95"] != first["ci95"]
    assert first["resamples"] == 300


def test_identical_models_give_a_zero_difference_and_a_ci_containing_zero(labels):
    probs = noisy_scores(labels, 1.0, 1)
    result = paired_bootstrap_auc_difference(labels, [probs], [probs.copy()], resamples=200)
    assert result["difference"] == 0 and result["ci95"] == [0.0, 0.0] and result["share_a_better"] == 0


def test_a_clearly_better_model_gets_a_ci_above_zero(labels):
    sharp, blurred = noisy_scores(labels, 0.3, 1), noisy_scores(labels, 3.0, 2)
    result = paired_bootstrap_auc_difference(labels, [sharp], [blurred], resamples=300)
    expected = roc_auc_score(labels, sharp) - roc_auc_score(labels, blurred)
    assert result["difference"] == pytest.approx(expected)
    assert result["ci95"][0] > 0 and result["share_a_better"] == 1.0


def record(name: str, method: str, seed: int, labels: np.ndarray, probs: np.ndarray) -> dict:
    """The part of a results.json run entry that the seed study reads."""
    auc = roc_auc_score(labels, probs)
    test = {"roc_auc": auc, "pr_auc": 0.5, "macro_f1": 0.5, "f1": 0.5, "accuracy": 0.5}
    return {"name": name, "method": method, "seed": seed, "test": {"at_validation_threshold": test}}


def test_compare_methods_pairs_runs_by_seed_and_reports_per_seed_differences(labels):
    probs = {("odd", 1): noisy_scores(labels, 0.5, 1), ("odd", 2): noisy_scores(labels, 0.6, 2),
             ("even", 1): noisy_scores(labels, 0.7, 3), ("even", 2): noisy_scores(labels, 0.8, 4),
             ("even", 3): noisy_scores(labels, 0.9, 5)}
    records = [record(f"{m}-seed{s}", m, s, labels, p) for (m, s), p in probs.items()]
    predictions = {f"{m}-seed{s}": RunPredictions(labels, p, "same") for (m, s), p in probs.items()}

    result = compare_methods(records, predictions, "odd", "even", resamples=200)

    assert result["seeds"] == [1, 2]  # seed 3 has no odd partner
    for seed in (1, 2):
        expected = roc_auc_score(labels, probs["odd", seed]) - roc_auc_score(labels, probs["even", seed])
        assert result["per_seed_differences"][str(seed)] == pytest.approx(expected)
    assert result["difference"] == pytest.approx(np.mean(list(result["per_seed_differences"].values())))
    assert seed_summary(records)["even"]["roc_auc"]["n"] == 3

    predictions["even-seed2"] = RunPredictions(labels, probs["even", 2], "another test set")
    assert "different test sets" in compare_methods(records, predictions, "odd", "even", 200)["skipped"]
    assert "no lora" in compare_methods(records, predictions, "lora", "even", 200)["skipped"]


def test_two_values_already_have_a_sample_std():
    assert mean_std([1.0, 3.0]) == {"mean": 2.0, "std": pytest.approx(2 ** 0.5), "n": 2}


def test_a_single_class_row_is_nan_without_a_numpy_warning():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a NaN row is expected, not a problem to warn about
        aucs = roc_auc_by_ranks(np.array([[1, 1, 1], [0, 0, 0], [0, 1, 1]]), np.array([[0.2, 0.5, 0.9]] * 3))
    assert np.isnan(aucs[0]) and np.isnan(aucs[1]) and aucs[2] == 1.0


def test_the_bootstrap_matches_sklearn_on_the_same_resamples(labels):
    """The documented procedure, recomputed independently: draw (resamples, n) test indices from
    default_rng(seed), score A and B on each resample with sklearn, take the 2.5th and 97.5th percentiles."""
    probs_a, probs_b = noisy_scores(labels, 0.8, 1), noisy_scores(labels, 1.0, 2)
    result = paired_bootstrap_auc_difference(labels, [probs_a], [probs_b], resamples=200, seed=7)
    draws = np.random.default_rng(7).integers(0, len(labels), size=(200, len(labels)))
    differences = np.array([roc_auc_score(labels[d], probs_a[d]) - roc_auc_score(labels[d], probs_b[d])
                            for d in draws])
    assert result["ci95"] == pytest.approx(np.percentile(differences, [2.5, 97.5]), abs=1e-12)
    assert result["bootstrap_mean"] == pytest.approx(differences.mean(), abs=1e-12)
    assert result["share_a_better"] == pytest.approx(np.mean(differences > 0))
    assert result["difference"] == pytest.approx(roc_auc_score(labels, probs_a) - roc_auc_score(labels, probs_b))
    assert result["resamples"] == 200 and result["bootstrap_seed"] == 7


def test_the_bootstrap_defaults_are_2000_resamples_with_seed_0(labels):
    probs_a, probs_b = noisy_scores(labels, 0.8, 1), noisy_scores(labels, 1.0, 2)
    default = paired_bootstrap_auc_difference(labels, [probs_a], [probs_b])
    assert default == paired_bootstrap_auc_difference(labels, [probs_a], [probs_b], resamples=2000, seed=0)
    assert default["resamples"] == 2000 and default["bootstrap_seed"] == 0


def test_every_test_example_can_be_drawn():
    """Here only the first comment is toxic: a resample without it has no AUC and is dropped."""
    labels = np.array([1, 0, 0, 0, 0])
    probs = np.array([0.9, 0.1, 0.2, 0.3, 0.4])
    result = paired_bootstrap_auc_difference(labels, [probs], [probs[::-1].copy()], resamples=500, seed=0)
    # P(a resample of 5 holds the toxic one) = 1 - (4/5)^5 = 0.67
    assert result["resamples"] == pytest.approx(500 * (1 - 0.8 ** 5), rel=0.15)
