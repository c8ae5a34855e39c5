"""The statistics of the study: ROC-AUC and DeLong's components, the paired interval, Holm, and its coverage.

The coverage tests simulate whole studies in which the two methods are the same by construction,
with both noises of the real study: each seed trains a model of slightly different skill (seed
noise) and the test comments are a sample (comment noise). A 95% interval must cover the true
difference, 0, in at least 93% of them; the seed bootstrap that evaluate.py used before must not.
"""
import numpy as np
import pytest
from scipy.stats import t as student_t
from sklearn.metrics import roc_auc_score

from evaluate import (EvaluationError, RunPredictions, auc_structural_components, comment_noise_se, compare_methods,
                      holm, mean_std, method_comparisons, paired_auc_difference, seed_summary,
                      seeds_and_comments_interval)
from report.stats import auc_interval


def noisy_scores(labels: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """Scores that rank toxic comments higher, blurred by Gaussian noise (more noise, lower AUC)."""
    return labels + np.random.default_rng(seed).normal(0, noise, len(labels))


@pytest.fixture
def labels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 2, 300)


def test_the_components_give_sklearns_auc_with_ties_for_many_runs_at_once(labels):
    probs = np.round([noisy_scores(labels, 1.0, seed) for seed in range(3)], 1)  # rounding creates many ties
    aucs, v10, v01 = auc_structural_components(labels, probs)
    assert aucs == pytest.approx([roc_auc_score(labels, p) for p in probs], abs=1e-12)
    assert v01.mean(axis=1) == pytest.approx(aucs, abs=1e-12)  # the AUC is the mean of either component
    assert v10.shape == (3, labels.sum()) and v01.shape == (3, len(labels) - labels.sum())
    with pytest.raises(EvaluationError, match="single class"):
        auc_structural_components(np.ones(4), np.arange(4.0))


def test_delongs_standard_error_agrees_with_a_bootstrap_of_the_comments(labels):
    """DeLong's SE of a paired AUC difference, against 1,000 resamples of the comments scored with sklearn."""
    a, b = noisy_scores(labels, 0.8, 1), noisy_scores(labels, 1.0, 2)
    se = comment_noise_se(labels, np.array([a, b]), np.array([1.0, -1.0]))
    draws = np.random.default_rng(3).integers(0, len(labels), size=(1000, len(labels)))
    resampled = [roc_auc_score(labels[d], a[d]) - roc_auc_score(labels[d], b[d]) for d in draws]
    assert se == pytest.approx(np.std(resampled), rel=0.1)
    one = comment_noise_se(labels, a[None], np.array([1.0]))  # one AUC: the classic DeLong variance
    assert one == pytest.approx(np.std([roc_auc_score(labels[d], a[d]) for d in draws[:1000]]), rel=0.1)


def test_pairing_removes_the_noise_two_similar_models_share(labels):
    a = noisy_scores(labels, 1.0, 1)
    b = a + np.random.default_rng(2).normal(0, 0.1, len(labels))  # b errs where a errs
    paired = comment_noise_se(labels, np.array([a, b]), np.array([1.0, -1.0]))
    alone = comment_noise_se(labels, a[None], np.array([1.0]))
    assert paired < alone / 3


def test_identical_models_differ_by_exactly_zero(labels):
    probs = noisy_scores(labels, 1.0, 1)
    result = paired_auc_difference(labels, [probs], [probs.copy()])
    assert result["difference"] == 0 and result["ci95"] == [0.0, 0.0] and result["p"] == 1.0


def test_a_clearly_better_model_gets_an_interval_above_zero(labels):
    sharp, blurred = noisy_scores(labels, 0.3, 1), noisy_scores(labels, 3.0, 2)
    result = paired_auc_difference(labels, [sharp], [blurred])
    assert result["difference"] == pytest.approx(roc_auc_score(labels, sharp) - roc_auc_score(labels, blurred))
    assert result["ci95"][0] > 0 and result["p"] < 1e-6


def test_the_interval_is_students_t_on_the_seeds_plus_the_test_term():
    per_seed = np.array([0.010, 0.004, 0.016])
    result = seeds_and_comments_interval(per_seed, se_test=0.003)
    se = np.sqrt(per_seed.var(ddof=1) / 3 + 0.003 ** 2)
    half = student_t.ppf(0.975, 2) * se  # 4.30 standard errors at 3 seeds
    assert result["ci95"] == pytest.approx([per_seed.mean() - half, per_seed.mean() + half])
    assert result["se"] == pytest.approx(se) and result["degrees_of_freedom"] == 2
    assert result["p"] == pytest.approx(2 * student_t.sf(per_seed.mean() / se, 2))
    single = seeds_and_comments_interval(np.array([0.01]), se_test=0.004)  # one seed: the test term alone
    assert single["ci95"] == pytest.approx([0.01 - 1.959964 * 0.004, 0.01 + 1.959964 * 0.004])
    assert single["se_seed"] == 0 and single["degrees_of_freedom"] is None


def test_holm_adjusts_step_down_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([0.2, 0.3]) == pytest.approx([0.4, 0.4])  # never below an earlier step's
    assert holm([]) == []


def test_mean_std_uses_the_sample_std_and_none_for_one_value():
    assert mean_std([0.8, 0.9, 1.0]) == pytest.approx({"mean": 0.9, "std": 0.1, "n": 3})
    assert mean_std([0.7]) == {"mean": 0.7, "std": None, "n": 1}


def record(name: str, method: str, seed: int, labels: np.ndarray, probs: np.ndarray) -> dict:
    """The part of a results.json run entry that the seed study reads."""
    test = {"roc_auc": roc_auc_score(labels, probs), "pr_auc": 0.5, "macro_f1": 0.5, "f1": 0.5, "accuracy": 0.5}
    return {"name": name, "method": method, "seed": seed, "test": {"at_validation_threshold": test}}


def study(labels: np.ndarray, noises: dict[str, tuple[float, ...]]) -> tuple[list[dict], dict]:
    """Records and predictions of methods whose seed s scores with noise ``noises[method][s]``."""
    probs = {(m, s): noisy_scores(labels, noise, 100 * i + s) for i, (m, ns) in enumerate(noises.items())
             for s, noise in enumerate(ns, start=1)}
    records = [record(f"{m}-seed{s}", m, s, labels, p) for (m, s), p in probs.items()]
    return records, {f"{m}-seed{s}": RunPredictions(labels, p, "same") for (m, s), p in probs.items()}


def test_compare_methods_pairs_runs_by_seed_and_reports_per_seed_differences(labels):
    records, predictions = study(labels, {"odd": (0.5, 0.6), "even": (0.7, 0.8, 0.9)})
    result = compare_methods(records, predictions, "odd", "even")
    assert result["seeds"] == [1, 2] and result["n_seeds"] == 2  # seed 3 has no odd partner
    for seed in (1, 2):
        expected = predictions[f"odd-seed{seed}"].probs, predictions[f"even-seed{seed}"].probs
        assert result["per_seed_differences"][str(seed)] == pytest.approx(
            roc_auc_score(labels, expected[0]) - roc_auc_score(labels, expected[1]))
    assert result["difference"] == pytest.approx(np.mean(list(result["per_seed_differences"].values())))
    assert seed_summary(records)["even"]["roc_auc"]["n"] == 3
    predictions["even-seed2"] = RunPredictions(labels, predictions["even-seed2"].probs, "another test set")
    assert "different test sets" in compare_methods(records, predictions, "odd", "even")["skipped"]
    assert "no lora" in compare_methods(records, predictions, "lora", "even")["skipped"]


def test_a_deterministic_method_is_paired_with_every_seed_of_the_other(labels):
    records, predictions = study(labels, {"lora": (0.6, 0.7)})
    tfidf = noisy_scores(labels, 0.8, 3)
    records.append({**record("tfidf", "tfidf", 1, labels, tfidf), "deterministic": True})
    predictions["tfidf"] = RunPredictions(labels, tfidf, "same")
    result = compare_methods(records, predictions, "lora", "tfidf")
    assert result["seeds"] == [1, 2] and result["n_seeds"] == 2
    records[-1]["deterministic"] = False  # a one-seed method that is not deterministic is not copied across seeds
    assert compare_methods(records, predictions, "lora", "tfidf")["seeds"] == [1]


def test_the_questions_three_comparisons_are_one_family_corrected_apart_from_the_rest(labels):
    records, predictions = study(labels, {"odd": (0.4, 0.45, 0.5), "even": (0.42, 0.47, 0.52),
                                          "lora": (2.0, 2.1, 2.2), "lora-kd": (2.0, 2.05, 2.1)})
    comparisons = method_comparisons(records, predictions)
    primary = {key for key, c in comparisons.items() if c.get("family") == "primary"}
    assert primary == {"odd_vs_even", "lora_vs_odd", "lora_vs_even"}
    assert comparisons["lora_vs_odd"]["family_size"] == 3
    assert comparisons["lora-kd_vs_lora"]["family"] == "exploratory" and comparisons["lora-kd_vs_lora"]["family_size"] == 1
    for key in primary:
        assert comparisons[key]["p_holm"] == pytest.approx(
            holm([comparisons[k]["p"] for k in sorted(primary)])[sorted(primary).index(key)])
    assert comparisons["lora_vs_odd"]["verdict"] == "odd better"  # far apart on every seed
    assert comparisons["odd_vs_even"]["verdict"] == "no difference detected"
    assert "skipped" in comparisons["odd_vs_odd-ce"] and "family" not in comparisons["odd_vs_odd-ce"]


def test_a_single_methods_interval_covers_its_mean_and_widens_with_seed_noise():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    steady = [labels + rng.normal(0, 1.0, 400) for _ in range(3)]
    result = auc_interval(labels, steady)
    assert result["roc_auc"] == pytest.approx(np.mean([roc_auc_score(labels, p) for p in steady]))
    assert result["ci95"][0] < result["roc_auc"] < result["ci95"][1] and result["n_seeds"] == 3
    unsteady = [labels + rng.normal(0, noise, 400) for noise in (0.3, 1.0, 3.0)]
    wide = auc_interval(labels, unsteady)
    assert wide["ci95"][1] - wide["ci95"][0] > result["ci95"][1] - result["ci95"][0], "seed noise widens it"


# ---- coverage: simulated studies with no true difference --------------------------------------------

def simulated_study(rng: np.random.Generator, seeds: int, comments: int = 500):
    """Two methods equal by construction: each run's skill varies with its seed, every comment has a
    difficulty all models share, and each run makes errors of its own."""
    labels = (rng.random(comments) < 0.3).astype(int)
    labels[:2] = [0, 1]
    difficulty = rng.normal(size=comments)
    runs = [[(2.5 + rng.normal(0, 0.4)) * labels + difficulty + rng.normal(0, 0.6, comments) for _ in range(seeds)]
            for _ in range(2)]
    return labels, runs[0], runs[1]


def seed_bootstrap_interval(labels, probs_a, probs_b, resamples: int, rng: np.random.Generator) -> list[float]:
    """The interval evaluate.py used before: resample the seeds, then the comments, and take percentiles."""
    probs_a, probs_b, n = np.asarray(probs_a), np.asarray(probs_b), len(labels)
    differences = []
    for _ in range(resamples):
        seeds = rng.integers(0, len(probs_a), len(probs_a))
        comments = rng.integers(0, n, n)
        if labels[comments].min() == labels[comments].max():
            continue
        aucs_a = auc_structural_components(labels[comments], probs_a[seeds][:, comments])[0]
        aucs_b = auc_structural_components(labels[comments], probs_b[seeds][:, comments])[0]
        differences.append((aucs_a - aucs_b).mean())
    return list(np.percentile(differences, [2.5, 97.5]))


@pytest.mark.parametrize("seeds", [3, 5])
def test_the_interval_covers_a_true_zero_in_at_least_93_percent_of_studies(seeds):
    rng = np.random.default_rng(seeds)
    covered = 0
    for _ in range(1000):
        labels, probs_a, probs_b = simulated_study(rng, seeds)
        low, high = paired_auc_difference(labels, probs_a, probs_b)["ci95"]
        covered += low <= 0 <= high
    assert covered / 1000 >= 0.93


@pytest.mark.parametrize("seeds", [3, 5])
def test_the_seed_bootstrap_used_before_covers_too_few(seeds):
    """Resampling 3 seeds has 10 outcomes and no small-sample widening: it misses far more often than 5%."""
    rng = np.random.default_rng(100 + seeds)
    covered = 0
    for _ in range(150):
        labels, probs_a, probs_b = simulated_study(rng, seeds)
        low, high = seed_bootstrap_interval(labels, probs_a, probs_b, 100, rng)
        covered += low <= 0 <= high
    assert covered / 150 < 0.90


# ---- the sensitivity check without the test comments a model may have seen ----------------------------

def test_the_sensitivity_check_drops_the_test_comments_that_repeat_a_training_comment(labels):
    from types import SimpleNamespace

    from evaluate import Run
    from report.sensitivity import seen_in_training, without_seen_comments
    texts = [f"comment {i}" for i in range(len(labels))]
    splits = SimpleNamespace(train=SimpleNamespace(texts=["COMMENT 3!", "other"]),
                             validation=SimpleNamespace(texts=["comment  7"]), test=SimpleNamespace(texts=texts))
    seen = seen_in_training(splits)
    assert np.flatnonzero(seen).tolist() == [3, 7]  # case, spaces and punctuation folded
    records, predictions = study(labels, {"odd": (0.4, 0.5), "even": (0.6, 0.7), "lora": (1.0, 1.1)})
    runs = [Run(name=r["name"], method=r["method"], seed=r["seed"], path=None, history={}) for r in records]
    result = without_seen_comments(runs, records, predictions, {"same": splits})
    assert (result["dropped"], result["kept"]) == (2, len(labels) - 2)
    odd_even = result["comparisons"]["odd_vs_even"]
    keep = ~seen
    expected = np.mean([roc_auc_score(labels[keep], predictions[f"odd-seed{s}"].probs[keep])
                        - roc_auc_score(labels[keep], predictions[f"even-seed{s}"].probs[keep]) for s in (1, 2)])
    assert odd_even["difference"] == pytest.approx(expected) and odd_even["family_size"] == 3
