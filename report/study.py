"""The multi-seed study: each method summarised over its seeds, and methods compared in pairs.

Every run of a method counts once per seed: the main run (``runs/<method>``, seed 42) joins the
study runs (``runs/study/<method>-seed<k>``) unless a study run already has its seed.
"""
from report.quality import RunPredictions
from report.runs import method_rank
from report.stats import mean_std, paired_bootstrap_auc_difference

SUMMARY_METRICS = ("roc_auc", "pr_auc", "macro_f1", "f1", "accuracy")
# (a, b, the question a − b answers). The controls each change one thing of a main method.
COMPARED_PAIRS = (
    ("odd", "even", "which teacher layers a distilled student should keep"),
    ("lora", "odd", "LoRA against the odd distilled student"),
    ("lora", "even", "LoRA against the distilled student with its own layer set"),
    ("lora-kd", "lora", "what the teacher's soft labels add to LoRA"),
    ("odd", "odd-ce", "what the distillation loss adds to the odd student's start"),
    ("lora-odd", "lora", "how much of LoRA's gap its starting point explains"),
    ("full-even", "lora", "how much of LoRA's gap its rank limit explains"),
    ("odd-ce", "lora-odd", "the rank limit again, from the odd student's start"),
    ("odd", "minilm", "the odd student against a 6-layer English model fine-tuned directly"),
    ("lora", "tfidf", "LoRA against TF-IDF + logistic regression"),
)


def runs_by_method(records: list[dict]) -> dict[str, dict[int, dict]]:
    """Method -> seed -> record, one record per seed (the first, i.e. the primary run, wins)."""
    grouped: dict[str, dict[int, dict]] = {}
    for record in records:
        grouped.setdefault(record["method"], {}).setdefault(record["seed"], record)
    return {method: grouped[method] for method in sorted(grouped, key=method_rank)}


def seed_summary(records: list[dict]) -> dict[str, dict]:
    """Mean ± std over seeds of the test metrics (at the validation threshold) of each method."""
    summary = {}
    for method, by_seed in runs_by_method(records).items():
        tests = [record["test"]["at_validation_threshold"] for record in by_seed.values()]
        summary[method] = {"seeds": sorted(by_seed), "runs": [by_seed[seed]["name"] for seed in sorted(by_seed)],
                           **{metric: mean_std([test[metric] for test in tests]) for metric in SUMMARY_METRICS},
                           "per_seed": {metric: {str(seed): by_seed[seed]["test"]["at_validation_threshold"][metric]
                                                 for seed in sorted(by_seed)} for metric in SUMMARY_METRICS}}
    return summary


def compare_methods(records: list[dict], predictions: dict[str, RunPredictions], a: str, b: str,
                    resamples: int, seed: int = 0) -> dict:
    """Test ROC-AUC of method ``a`` minus method ``b``: per seed, and a bootstrap over seeds and test comments.

    Runs are paired by seed. The difference is that of the seed-averaged ROC-AUCs; its interval
    covers seed and test-set noise (``paired_bootstrap_auc_difference``), and the per-seed
    differences show the seed noise beside it. A method without randomness (TF-IDF: one run,
    recorded as deterministic) is paired with every seed of the other.
    """
    grouped = runs_by_method(records)
    missing = [method for method in (a, b) if method not in grouped]
    if missing:
        return {"a": a, "b": b, "skipped": f"no {' or '.join(missing)} run was evaluated"}
    for one, other in ((a, b), (b, a)):
        only = list(grouped[one].values())
        if len(only) == 1 and only[0].get("deterministic"):
            grouped[one] = {s: only[0] for s in grouped[other]}
    seeds = sorted(set(grouped[a]) & set(grouped[b]))
    if not seeds:
        return {"a": a, "b": b, "skipped": f"{a} and {b} share no seed to pair their runs"}
    runs_a = [predictions[grouped[a][s]["name"]] for s in seeds]
    runs_b = [predictions[grouped[b][s]["name"]] for s in seeds]
    if len({run.test_set for run in runs_a + runs_b}) > 1:
        return {"a": a, "b": b, "skipped": f"{a} and {b} were evaluated on different test sets"}
    bootstrap = paired_bootstrap_auc_difference(runs_a[0].labels, [run.probs for run in runs_a],
                                                [run.probs for run in runs_b], resamples, seed)
    low, high = bootstrap["ci95"]
    verdict = "within noise" if low <= 0 <= high else (f"{a} better" if low > 0 else f"{b} better")
    per_seed = {str(s): grouped[a][s]["test"]["at_validation_threshold"]["roc_auc"]
                - grouped[b][s]["test"]["at_validation_threshold"]["roc_auc"] for s in seeds}
    return {"a": a, "b": b, "metric": "roc_auc", "seeds": seeds, **bootstrap,
            "per_seed_differences": per_seed, "verdict": verdict}


def method_comparisons(records: list[dict], predictions: dict[str, RunPredictions], resamples: int,
                       seed: int = 0) -> dict[str, dict]:
    """Every pair of COMPARED_PAIRS, keyed "<a>_vs_<b>"; pairs with a missing method say why they were skipped."""
    return {f"{a}_vs_{b}": {**compare_methods(records, predictions, a, b, resamples, seed), "question": question}
            for a, b, question in COMPARED_PAIRS}
