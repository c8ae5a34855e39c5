"""The ablations in the report: one table per question, the ensemble teacher, the best student, the trade-off.

The points are those of ``experiments/ablations.py``; a point's runs are the runs of its method in
the report (``runs/ablations/<point>[-seed<s>]``, or the reused runs of make all and make study).
Each row gives the test metrics over the point's seeds and its test ROC-AUC difference with the
point it is compared with, paired by seed, with the interval of the study's comparisons
(``evaluate.py``), Holm-corrected over every ablation comparison: they are exploratory. A family's
table appears once one of its own points has been evaluated.

Two things here are computed, not trained:

- the **ensemble teacher**: the study's teachers of every seed, their logits averaged, as the
  ensemble student's soft labels are. For two classes the softmax depends only on the difference of
  the logits, which is the log-odds of P(toxic), so averaging the logits is averaging each
  teacher's log-odds ``log(p / (1 − p))``: the evaluated probabilities are enough to rebuild it;
- the **best 6-layer student**, chosen by mean validation ROC-AUC (never by test) among the
  students with the most seeds, against the directly fine-tuned ``minilm`` baseline.
"""
import numpy as np

from experiments.ablations import FAMILIES, POINTS
from experiments.study import CONTROLS, FIRST_SEED
from evaluate import (METHOD_ORDER, RunPredictions, compare_methods, correct_as_family, mean_std, quality_report,
                      runs_by_method)
from report.stats import auc_interval

ENSEMBLE_TEACHER = "teacher-ensemble"
ENSEMBLE_LABEL = "ensemble teacher: every seed's teacher, logits averaged (not trained)"
BASELINES = ("minilm", "tfidf")
TEACHERS = ("teacher", "prefix-teacher", ENSEMBLE_TEACHER, "teacher-strong")
# The goal set for the best student: this test ROC-AUC, mean over at least GOAL_SEEDS seeds, and a win over minilm
# outside noise.
GOAL_ROC_AUC, GOAL_SEEDS = 0.945, 5
DRAWN_WHOLE = ("strong",)  # families whose every own row is a trade-off point, not only their best student
PROBABILITY_FLOOR = 1e-12  # a probability of exactly 0 or 1 has an infinite log-odds


def log_odds(probs: np.ndarray) -> np.ndarray:
    probs = np.clip(np.asarray(probs, dtype=float), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return np.log(probs) - np.log1p(-probs)


def averaged_logits_probability(probs_runs: list[np.ndarray]) -> np.ndarray:
    """P(toxic) of the model whose two logits are the runs' logits averaged: sigmoid of the mean log-odds."""
    return 1 / (1 + np.exp(-np.mean([log_odds(probs) for probs in probs_runs], axis=0)))


def ensemble_teacher(records: list[dict], predictions: dict[str, RunPredictions]) -> tuple[dict, RunPredictions] | None:
    """The record and predictions of the teachers' ensemble, or None with fewer than two teachers."""
    teachers = list(runs_by_method(records).get("teacher", {}).values())
    members = [predictions[record["name"]] for record in teachers]
    if len(members) < 2 or len({member.test_set for member in members}) > 1 \
            or any(member.validation_probs is None for member in members):
        return None
    validation = averaged_logits_probability([member.validation_probs for member in members])
    test = averaged_logits_probability([member.probs for member in members])
    first = members[0]
    record = {"name": ENSEMBLE_TEACHER, "method": ENSEMBLE_TEACHER, "seed": FIRST_SEED, "deterministic": True,
              "members": [record["name"] for record in teachers],
              **quality_report(first.validation_labels, validation, first.labels, test),
              "params": {key: sum(record["params"][key] for record in teachers) for key in ("total", "trainable")},
              "command_wall_time_s": sum(record.get("command_wall_time_s") or 0 for record in teachers)}
    return record, RunPredictions(first.labels, test, first.test_set, first.validation_labels, validation)


def family_rows(family: str) -> list[tuple[str, str, str]]:
    """(method in the report, label, the method it is compared with) of each row of a family's table."""
    points = [point for point in POINTS if point.family == family]
    rows = [(point.name, point.label, point.against or points[0].name) for point in points]
    if family == "teacher":
        after = [name for name, _, _ in rows].index("teacher") + 1
        rows.insert(after, (ENSEMBLE_TEACHER, ENSEMBLE_LABEL, "teacher"))
    return rows


def method_row(by_seed: dict[int, dict]) -> dict:
    """A method's test metrics over its seeds, its mean validation ROC-AUC, trainable parameters and time."""
    tests = [record["test"]["at_validation_threshold"] for record in by_seed.values()]
    minutes = [record["command_wall_time_s"] / 60 for record in by_seed.values() if record.get("command_wall_time_s")]
    steps = [record["optimizer_steps"] for record in by_seed.values() if record.get("optimizer_steps")]
    first = next(iter(by_seed.values()))
    return {"seeds": sorted(by_seed), "runs": [by_seed[seed]["name"] for seed in sorted(by_seed)],
            "run_minutes": [by_seed[seed]["command_wall_time_s"] / 60 for seed in sorted(by_seed)
                            if by_seed[seed].get("command_wall_time_s")],
            **{metric: mean_std([test[metric] for test in tests]) for metric in ("roc_auc", "pr_auc", "macro_f1")},
            "validation_roc_auc": float(np.mean([record["validation"]["roc_auc"] for record in by_seed.values()])),
            "trainable": first["params"]["trainable"], "total": first["params"]["total"],
            "minutes": float(np.mean(minutes)) if minutes else None, "steps": float(np.mean(steps)) if steps else None}


def ablation_report(records: list[dict], predictions: dict[str, RunPredictions]) -> dict:
    """Per family: its title and rows (``method_row``, plus the comparison with the row's reference).

    ``records`` are every evaluated run, the ablations' and the study's, and the ensemble teacher's
    pseudo-run; a family appears once one of its own (not reused) points has a run.
    """
    grouped = runs_by_method(records)
    families = {}
    for family, title in FAMILIES.items():
        rows = []
        for name, label, against in family_rows(family):
            if name not in grouped:
                continue
            comparison = None if name == against else compare_methods(records, predictions, name, against)
            rows.append({"method": name, "label": label, "against": against, **method_row(grouped[name]),
                         "comparison": comparison})
            if name == ENSEMBLE_TEACHER:  # one model made of several seeds' teachers, paired with each of them
                rows[-1]["seeds"] = sorted(grouped["teacher"])
                rows[-1]["seeds_label"] = f"one ensemble of seeds {', '.join(map(str, rows[-1]['seeds']))}"
        if any(row["method"] not in METHOD_ORDER for row in rows):
            families[family] = {"title": title, "rows": rows}
    correct_as_family([row["comparison"] for family in families.values() for row in family["rows"]
                       if row["comparison"]], "exploratory (ablations)")
    return families


def best_student(grouped: dict[str, dict[int, dict]]) -> str | None:
    """The 6-layer student with the best mean validation ROC-AUC among those with the most seeds."""
    students = {method: by_seed for method, by_seed in grouped.items() if method not in (*TEACHERS, *BASELINES)}
    if not students:
        return None
    most = max(len(by_seed) for by_seed in students.values())
    return max((method for method, by_seed in students.items() if len(by_seed) == most),
               key=lambda method: method_row(students[method])["validation_roc_auc"])


def best_student_result(records: list[dict], predictions: dict[str, RunPredictions]) -> dict | None:
    """The best student, its test ROC-AUC over seeds, and its comparison with minilm (the goal set for it)."""
    grouped = runs_by_method(records)
    method = best_student(grouped)
    if method is None:
        return None
    result = {"method": method, **method_row(grouped[method]), "goal_roc_auc": GOAL_ROC_AUC, "goal_seeds": GOAL_SEEDS}
    if "minilm" in grouped:
        result["against_minilm"] = compare_methods(records, predictions, method, "minilm")
        correct_as_family([result["against_minilm"]], "exploratory")
    return result


def best_of_family(family: dict) -> dict | None:
    """The family's own student with the best mean validation ROC-AUC (never chosen on test)."""
    own = [row for row in family["rows"] if row["method"] not in METHOD_ORDER and row["method"] not in TEACHERS]
    return max(own, key=lambda row: row["validation_roc_auc"]) if own else None


def kind(method: str) -> str:
    if method in CONTROLS:
        return "control"
    if method in BASELINES:
        return "baseline"
    return "method" if method in METHOD_ORDER else "ablation"


def trade_off_points(records: list[dict], predictions: dict[str, RunPredictions], families: dict) -> list[dict]:
    """One point per method (main methods, controls, baselines) and per family (its best ablation; every own row,
    teachers included, of a family in ``DRAWN_WHOLE``).

    Each point: the mean test ROC-AUC over seeds with its 95% interval (``report/stats.py``), the
    trainable parameters and the mean wall time of ``train.py``.
    """
    grouped = runs_by_method(records)
    chosen = [(method, method) for method in grouped if method in METHOD_ORDER]
    for name, family in families.items():
        best = best_of_family(family)
        if name in DRAWN_WHOLE:
            chosen += [(row["method"], row["method"] + (" (best of " + name + ")" if row is best else ""))
                       for row in family["rows"] if row["method"] not in METHOD_ORDER]
        elif best:
            chosen.append((best["method"], f"{best['method']} (best of {name})"))
    points = []
    for method, label in chosen:
        by_seed = grouped[method]
        runs = [predictions[record["name"]] for record in by_seed.values()]
        if len({run.test_set for run in runs}) > 1:
            continue
        row = method_row(by_seed)
        interval = auc_interval(runs[0].labels, [run.probs for run in runs])
        points.append({"method": method, "label": label, "kind": kind(method), "roc_auc": interval["roc_auc"],
                       "ci95": interval["ci95"], "n_seeds": interval["n_seeds"], "trainable": row["trainable"],
                       "minutes": row["minutes"]})
    return points
