"""The statistics behind the seed study: rank-based ROC-AUC, the paired bootstrap, method comparisons."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from evaluate import (RunPredictions, compare_methods, mean_std, paired_bootstrap_auc_difference, roc_auc_by_ranks,
                      seed_summary)
from report.stats import bootstrap_auc_interval


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


def test_resampling_seeds_widens_the_interval_when_the_seeds_disagree(labels):
    """A's quality swings from seed to seed (seed noise); B's does not. Resampling the comments alone
    sees only the test-set noise of these five seeds; resampling the seeds too must give a wider interval."""
    probs_a = [noisy_scores(labels, noise, seed) for seed, noise in enumerate((0.3, 0.9, 0.4, 1.2, 0.5))]
    probs_b = [noisy_scores(labels, 0.7, 10 + seed) for seed in range(5)]
    result = paired_bootstrap_auc_difference(labels, probs_a, probs_b, resamples=1000, seed=1)
    both, examples_only = result["ci95"], result["ci95_examples_only"]
    assert both[1] - both[0] > 1.5 * (examples_only[1] - examples_only[0])
    assert both[0] < examples_only[0] and both[1] > examples_only[1]
    # With one seed there is no seed noise to resample: the two intervals are the same.
    single = paired_bootstrap_auc_difference(labels, probs_a[:1], probs_b[:1], resamples=300, seed=1)
    assert single["ci95"] == single["ci95_examples_only"] and single["n_seeds"] == 1


def test_a_deterministic_method_is_paired_with_every_seed_of_the_other(labels):
    probs = {("lora", 1): noisy_scores(labels, 0.6, 1), ("lora", 42): noisy_scores(labels, 0.7, 2)}
    records = [record(f"{m}-seed{s}", m, s, labels, p) for (m, s), p in probs.items()]
    tfidf = noisy_scores(labels, 0.8, 3)
    records.append({**record("tfidf", "tfidf", 42, labels, tfidf), "deterministic": True})
    predictions = {r["name"]: RunPredictions(labels, probs.get((r["method"], r["seed"]), tfidf), "same")
                   for r in records}
    result = compare_methods(records, predictions, "lora", "tfidf", resamples=200)
    assert result["seeds"] == [1, 42] and result["n_seeds"] == 2
    for seed in (1, 42):
        expected = roc_auc_score(labels, probs["lora", seed]) - roc_auc_score(labels, tfidf)
        assert result["per_seed_differences"][str(seed)] == pytest.approx(expected)
    # A one-seed method that is not deterministic is not copied across seeds.
    records[-1]["deterministic"] = False
    assert compare_methods(records, predictions, "lora", "tfidf", resamples=200)["seeds"] == [42]


def test_a_single_methods_interval_covers_seed_noise_and_its_mean():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    steady = [labels + rng.normal(0, 1.0, 400) for _ in range(3)]
    result = bootstrap_auc_interval(labels, steady, resamples=300, seed=1)
    assert result["roc_auc"] == pytest.approx(np.mean([roc_auc_score(labels, p) for p in steady]))
    assert result["ci95"][0] < result["roc_auc"] < result["ci95"][1] and result["n_seeds"] == 3
    assert bootstrap_auc_interval(labels, steady, resamples=300, seed=1) == result
    unsteady = [labels + rng.normal(0, noise, 400) for noise in (0.3, 1.0, 3.0)]
    wide = bootstrap_auc_interval(labels, unsteady, resamples=300, seed=1)
    assert wide["ci95"][1] - wide["ci95"][0] > result["ci95"][1] - result["ci95"][0], "seed noise widens it"
