"""Score every trained run on its held-out test split, and compare the methods with honest intervals.

    python evaluate.py                       # every run under runs/
    python evaluate.py runs/odd runs/lora    # only these runs
    python evaluate.py --dataset toxic-comments --out results/toxic-comments

Each run's splits are rebuilt from its history.json, its decision threshold chosen on validation, and its
test split scored at 0.5 and at that threshold. Then each method's mean ± std over seeds, and each comparison
the question asks (odd − even, lora − odd, lora − even) as a paired difference whose interval counts the
seeds' noise and the test comments'. A run that cannot be scored is skipped with its reason. Writes
results/evaluation.json and prints the answer table; ``python -m report`` builds the full report on these.
"""
import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from scipy.stats import norm, rankdata
from scipy.stats import t as student_t
from tqdm import tqdm

from data import DataError
from data.load import load_splits
from models.load import ModelError
from training.run_folder import HistoryError, is_failed_run, read_history
from training.files import write_json_atomically
from training.metrics import best_f1_threshold, binary_metrics
from webapp.app import Predictor

# The methods in the order of every table, and the comparisons: (a, b, the question a − b answers). The first
# three are the question's, the primary family; the rest are exploratory ("Seeds and paired comparisons").
METHOD_ORDER = ("teacher", "odd", "even", "lora", "lora-kd", "odd-ce", "lora-odd", "full-even", "lora-minilm",
                "minilm", "tfidf")
PRIMARY_PAIRS = (("odd", "even"), ("lora", "odd"), ("lora", "even"))
COMPARED_PAIRS = (
    ("odd", "even", "which teacher layers a distilled student should keep"),
    ("lora", "odd", "LoRA against the odd distilled student"),
    ("lora", "even", "LoRA against the distilled student with its own layer set"),
    ("lora-kd", "lora", "what the teacher's soft labels add to LoRA"),
    # the controls each change one thing of a main method
    ("odd", "odd-ce", "what the distillation loss adds to the odd student's start"),
    ("lora-odd", "lora", "how much of LoRA's gap its starting point explains"),
    ("full-even", "lora", "how much of LoRA's gap its rank limit explains"),
    ("odd-ce", "lora-odd", "the rank limit again, from the odd student's start"),
    ("lora-minilm", "minilm", "LoRA against full fine-tuning on a clean, native 6-layer base"),
    # the baselines: what a practitioner would use instead
    ("odd", "minilm", "the odd student against a 6-layer English model fine-tuned directly"),
    ("lora", "tfidf", "LoRA against TF-IDF + logistic regression"),
)
SUMMARY_METRICS = ("roc_auc", "pr_auc", "macro_f1", "f1", "accuracy")


class EvaluationError(ValueError):
    """The runs cannot be evaluated as asked (no runs, a malformed history, a single-class split, ...)."""


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    runs_by_dataset, skipped = read_runs(args.paths or find_run_folders(args.runs_dir))
    found = ", ".join(f"{name}: {len(runs)}" for name, runs in runs_by_dataset.items())
    if args.dataset is None and len(runs_by_dataset) > 1:
        raise EvaluationError(f"the runs were trained on different datasets ({found}); --dataset chooses one")
    runs = runs_by_dataset.get(args.dataset, []) if args.dataset else next(iter(runs_by_dataset.values()), [])
    if not runs and not skipped:
        raise EvaluationError(f"no run was trained on {args.dataset} (runs per dataset: {found})")
    records, predictions = score_runs(runs, skipped)
    main_records = [record for record in records if not record["ablation"]]
    evaluation = {"runs": records, "skipped": skipped, "seeds": seed_summary(main_records),
                  "comparisons": method_comparisons(main_records, predictions)}
    write_json_atomically(args.out / "evaluation.json", evaluation)
    print(answer_table(evaluation))
    print(f"wrote {args.out}/evaluation.json; python -m report writes the full report")
    if args.strict and skipped:
        raise EvaluationError(f"--strict: {len(skipped)} run(s) skipped (listed above)")
    return evaluation


def parse_args(argv: list[str], parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """The flags; ``parser`` is a caller's own, with flags of its own, to which these are added."""
    parser = parser or argparse.ArgumentParser(description=__doc__,
                                               formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path, help="run folders to evaluate (default: all under --runs-dir)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where to look for runs (default: runs)")
    parser.add_argument("--dataset", help="score only the runs trained on this dataset, as train.py's --dataset "
                                           "named it (needed when the runs hold several)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="where the results go (default: results)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads for inference")
    parser.add_argument("--strict", action="store_true", help="exit with an error if any run had to be skipped")
    return parser.parse_args(argv)


# -- The runs ---------------------------------------------------------------------------------------
# A run is a folder with a history.json: runs/<method>/ (make all), runs/study/<method>-seed<k>/ (make
# study), runs/ablations/<point>[-seed<k>]/ (make ablations: the point's name is its method here),
# runs/<dataset>/<method>-seed<k>/ (make second-dataset: another dataset, scored with --dataset). Hidden
# folders (checkpoints, half-written runs), <name>.failed/ and runs/tune/ (chosen on validation, never
# scored on test) are never evaluated.
STUDY_DIR, ABLATIONS_DIR, TUNING_DIR = "study", "ablations", "tune"
REQUIRED_HISTORY_KEYS = ("method", "args", "params", "steps", "epochs", "wall_time_s")
DATASET_ARGS = ("dataset", "text_column", "label_column", "toxic_labels", "val_fraction", "split_seed")


@dataclass
class Run:
    """One run folder and its history; ``primary``: the run that stands for its method in single-run tables."""
    name: str
    method: str
    seed: int
    path: Path
    history: dict
    primary: bool = False
    ablation: bool = False


def find_run_folders(runs_dir: str | os.PathLike) -> list[Path]:
    """Every run folder one or two levels below ``runs_dir``, shallow first (see above)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise EvaluationError(f"no runs folder at {runs_dir}: train a model first (python train.py ...) "
                              f"or pass run folders as arguments")
    folders = []
    for history_file in [*sorted(runs_dir.glob("*/history.json")), *sorted(runs_dir.glob("*/*/history.json"))]:
        relative = history_file.parent.relative_to(runs_dir)
        if not any(part.startswith(".") for part in relative.parts) and not is_failed_run(relative) \
                and relative.parts[0] != TUNING_DIR:
            folders.append(history_file.parent)
    if not folders:
        raise EvaluationError(f"no run folders (folders with a history.json) under {runs_dir}")
    return folders


def read_run(folder: str | os.PathLike) -> Run:
    """The run in ``folder``, with a one-line error if its history.json is missing, malformed or incomplete."""
    folder = Path(folder)
    try:
        history = read_history(folder)
    except HistoryError as error:
        raise EvaluationError(f"{error}; the run may be corrupt") from None
    if history is None:
        raise EvaluationError(f"{folder} is not a run folder: it has no history.json")
    missing = [key for key in REQUIRED_HISTORY_KEYS if key not in history]
    missing += [f"args.{key}" for key in (*DATASET_ARGS, "seed", "max_length") if key not in history.get("args", {})]
    if missing:
        raise EvaluationError(f"{folder / 'history.json'} lacks {', '.join(missing)}; was it written by train.py?")
    if not history["epochs"]:
        raise EvaluationError(f"{folder / 'history.json'} records no finished epoch")
    seed, ablation = history["args"]["seed"], folder.parent.name == ABLATIONS_DIR
    method = folder.name.removesuffix(f"-seed{seed}") if ablation else history["method"]
    return Run(name=folder.name, method=method, seed=seed, path=folder, history=history, ablation=ablation)


def read_runs(folders: list[str | os.PathLike]) -> tuple[dict[str, list[Run]], list[dict]]:
    """The readable runs by the dataset they were trained on, each dataset's arranged, and ``{"path", "reason"}``
    for each unreadable one. Methods compare only on the same comments, so one evaluation covers one dataset."""
    runs_by_dataset, skipped = {}, []
    for folder in folders:
        try:
            run = read_run(folder)
        except EvaluationError as error:
            skipped.append({"path": display_path(folder), "reason": str(error)})
            continue
        runs_by_dataset.setdefault(run.history["args"]["dataset"], []).append(run)
    return {dataset: arrange_runs(runs) for dataset, runs in runs_by_dataset.items()}, skipped


def arrange_runs(runs: list[Run]) -> list[Run]:
    """Mark each method's primary run (the first found, so runs/<method> wins) and sort: primaries first."""
    by_name: dict[str, Run] = {}
    for run in runs:
        if run.name in by_name:
            raise EvaluationError(f"two runs are named {run.name!r} ({by_name[run.name].path} and {run.path}); "
                                  f"run folder names must be unique because the report refers to runs by name")
        by_name[run.name] = run
    methods_seen = set()
    for run in runs:
        run.primary = run.method not in methods_seen
        methods_seen.add(run.method)
    return sorted(runs, key=lambda run: (not run.primary, method_rank(run.method), run.seed, run.name))


def method_rank(method: str) -> tuple[int, str]:
    """Sort key: the methods of this study in their usual order, any other method after them."""
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def dataset_args(history: dict) -> dict:
    """The ``load_splits`` keyword arguments that rebuild the splits this run was trained on."""
    args = history["args"]
    return {"name": args["dataset"], "text_column": args["text_column"], "label_column": args["label_column"],
            "toxic_labels": args["toxic_labels"], "val_fraction": args["val_fraction"], "seed": args["split_seed"]}


def display_path(path: Path) -> str:
    """The path relative to the working directory (the repo root) when inside it, else absolute."""
    absolute = Path(path).resolve()
    try:
        return absolute.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return absolute.as_posix()


# -- Scoring ----------------------------------------------------------------------------------------

@dataclass
class Scorer:
    """What scoring needs of a run: ``predict(texts) -> P(toxic)`` and its size (``predictor``: the loaded run)."""
    predict: Callable[..., np.ndarray]
    num_parameters: int
    predictor: Predictor | None = None


def load_scorer(folder: Path, history: dict) -> Scorer:
    """The run as the web app serves it (``Predictor``, fp32): prefixed and cut as trained, batched as validated."""
    if not (Path(folder) / "config.json").is_file():
        raise EvaluationError(f"{folder} holds no transformers model (a baseline? python -m report scores those)")
    predictor = Predictor.from_folder(folder, threshold=history.get("validation_threshold", 0.5))
    return Scorer(predictor.probabilities, sum(parameter.numel() for parameter in predictor.model.parameters()),
                  predictor)


@dataclass
class RunPredictions:
    """One run's validation and test probabilities; ``test_set`` fingerprints the test comments and labels."""
    labels: np.ndarray
    probs: np.ndarray
    test_set: str
    validation_labels: np.ndarray | None = None
    validation_probs: np.ndarray | None = None


def score_runs(runs: list[Run], skipped: list[dict], load=load_scorer, extend=None) -> tuple[list[dict], dict]:
    """Score every run (those that fail join ``skipped``): their records, and their predictions by run name.
    ``load(folder, history) -> Scorer`` loads a run; ``extend(run, record, scorer, splits, predictions)`` adds
    the full report's fields to each record. Runs trained on the same data share one load of it."""
    splits_by_dataset, records, predictions = {}, [], {}
    progress = tqdm(runs, desc="evaluating", unit="run", dynamic_ncols=True)
    for run in progress:
        progress.set_postfix_str(f"{run.name} ({run.path})")
        try:
            dataset = dataset_args(run.history)
            key = json.dumps(dataset, sort_keys=True)
            if key not in splits_by_dataset:
                splits_by_dataset[key] = load_splits(**dataset)
            splits = splits_by_dataset[key]
            record, scorer, predictions[run.name] = score_run(run, splits, load)
            if extend:
                extend(run, record, scorer, splits, predictions[run.name])
        except (EvaluationError, DataError, ModelError) as error:
            skipped.append({"path": display_path(run.path), "reason": str(error)})
            continue
        records.append(record)
    for skip in skipped:
        print(f"evaluate.py: skipped {skip['path']}: {skip['reason']}", file=sys.stderr)
    if not records:
        raise EvaluationError(f"no run could be scored ({len(skipped)} skipped, reasons above)")
    scored = arrange_runs([run for run in runs if run.name in predictions])  # a method's next run may now lead
    by_name = {record["name"]: record for record in records}
    for run in scored:
        by_name[run.name]["primary"] = run.primary
    return [by_name[run.name] for run in scored], predictions


def score_run(run: Run, splits, load=load_scorer) -> tuple[dict, Scorer, RunPredictions]:
    """The record of one run (its threshold and scores), its scorer and its predictions."""
    scorer = load(run.path, run.history)
    validation_probs, test_probs = scorer.predict(splits.validation.texts), scorer.predict(splits.test.texts)
    total, trainable = scorer.num_parameters, run.history["params"]["trainable"]
    test_set = fingerprint(splits.test.texts, splits.test.labels)
    record = {"name": run.name, "method": run.method, "path": display_path(run.path), "seed": run.seed,
              "primary": run.primary, "ablation": run.ablation,
              **quality_report(splits.validation.labels, validation_probs, splits.test.labels, test_probs),
              "params": {"total": total, "trainable": trainable, "trainable_share": trainable / total},
              "deterministic": run.history.get("deterministic", False),
              "test_set": {"source": splits.source, "size": len(splits.test.labels), "fingerprint": test_set}}
    return record, scorer, RunPredictions(np.asarray(splits.test.labels), test_probs, test_set,
                                          np.asarray(splits.validation.labels), validation_probs)


def quality_report(validation_labels, validation_probs, test_labels, test_probs) -> dict:
    """The F1-best threshold chosen on validation (0.5 is arbitrary on an imbalanced task), validation metrics at
    it, and test metrics at 0.5 and at it. Test labels only score: choosing on them would overstate the result.
    """
    if len(np.unique(validation_labels)) != 2:
        raise EvaluationError("the validation split holds a single class, so no decision threshold can be "
                              "chosen on it; use a larger --val-fraction")
    threshold = best_f1_threshold(validation_labels, validation_probs)
    return {
        "validation_threshold": threshold,
        "validation": binary_metrics(validation_labels, validation_probs, threshold),
        "test": {"at_0.5": binary_metrics(test_labels, test_probs, 0.5),
                 "at_validation_threshold": binary_metrics(test_labels, test_probs, threshold)},
    }


def fingerprint(texts: list[str], labels: list[int]) -> str:
    """A short hash of a split: two runs compare example by example only on the same comments and labels."""
    digest = hashlib.sha256()
    for text, label in zip(texts, labels):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()[:16]


# -- Seeds and paired comparisons -------------------------------------------------------------------
# Two noises blur a comparison: the training seed (initialisation, dropout, data order; --split-seed fixes the
# splits) and the finite test set. A difference Δ, the mean over n seeds of a − b's test ROC-AUC with runs
# paired by seed, gets one standard-error term for each: SE² = s²_seed / n + SE²_test, where s²_seed is the
# variance of the per-seed differences and SE_test DeLong's standard error of the contrast of AUCs measured on
# the same comments, every model fixed (DeLong, DeLong & Clarke-Pearson 1988). The interval is Δ ± t · SE with
# Student's t at n − 1 degrees of freedom, as s_seed is estimated (at 3 seeds t is 4.30, not 1.96); one seed
# has only the test term and the normal quantile. tests/test_intervals.py checks its coverage of a true zero.
# The question's three comparisons are one family, declared before any run, with Holm's correction (Holm
# 1979); the others are exploratory, corrected within their own family. "a better" needs a Holm-adjusted p
# below 0.05; otherwise no difference was detected, and the interval's width says how large one may still be.

def runs_by_method(records: list[dict]) -> dict[str, dict[int, dict]]:
    """Method -> seed -> record, one record per seed (the first, i.e. the primary run, wins)."""
    grouped: dict[str, dict[int, dict]] = {}
    for record in records:
        grouped.setdefault(record["method"], {}).setdefault(record["seed"], record)
    return {method: grouped[method] for method in sorted(grouped, key=method_rank)}


def mean_std(values: list[float]) -> dict:
    """Mean and sample standard deviation (ddof=1); the std is None for a single value."""
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else None,
            "n": len(values)}


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


def method_comparisons(records: list[dict], predictions: dict[str, RunPredictions]) -> dict[str, dict]:
    """Every pair of COMPARED_PAIRS, keyed "<a>_vs_<b>", with Holm's correction within its family (a pair with
    a missing method says why it was skipped and takes no part)."""
    comparisons = {f"{a}_vs_{b}": {**compare_methods(records, predictions, a, b), "question": question}
                   for a, b, question in COMPARED_PAIRS}
    correct_as_family([c for (a, b, _), c in zip(COMPARED_PAIRS, comparisons.values()) if (a, b) in PRIMARY_PAIRS],
                      "primary")
    correct_as_family([c for (a, b, _), c in zip(COMPARED_PAIRS, comparisons.values()) if (a, b) not in PRIMARY_PAIRS],
                      "exploratory")
    return comparisons


def correct_as_family(comparisons: list[dict], family: str) -> None:
    """Holm-adjust the p of each tested comparison within ``family``, and give each its verdict."""
    tested = [comparison for comparison in comparisons if "skipped" not in comparison]
    for comparison, adjusted in zip(tested, holm([comparison["p"] for comparison in tested])):
        comparison.update(family=family, family_size=len(tested), p_holm=adjusted,
                          verdict=verdict(comparison, adjusted))


def verdict(comparison: dict, p_holm: float) -> str:
    """"a better" or "b better" when the Holm-adjusted p is below 0.05, else "no difference detected"."""
    if p_holm >= 0.05:
        return "no difference detected"
    return f"{comparison['a'] if comparison['difference'] > 0 else comparison['b']} better"


def interval_allows(ci95: list[float]) -> str:
    """What the interval says beside "no difference detected", which is not "no effect".

    An interval that contains 0 allows a difference of up to its farther end, either way. One that
    excludes 0 is uncorrected: the verdict comes from the Holm-adjusted p, which the family's other
    comparisons lifted above 0.05.
    """
    low, high = ci95
    if low <= 0 <= high:
        return f"the interval allows ±{max(-low, high):.3f}"
    return "the raw interval excludes 0; the difference does not survive Holm's correction"


def verdict_words(comparison: dict) -> str:
    """The verdict, and for "no difference detected" what its interval says."""
    said = comparison["verdict"]
    return f"{said}; {interval_allows(comparison['ci95'])}" if said == "no difference detected" else said


def compare_methods(records: list[dict], predictions: dict[str, RunPredictions], a: str, b: str) -> dict:
    """Test ROC-AUC of ``a`` minus ``b``, runs paired by seed; a deterministic method's one run pairs with every seed."""
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
    difference = paired_auc_difference(runs_a[0].labels, [run.probs for run in runs_a], [run.probs for run in runs_b])
    per_seed = dict(zip(map(str, seeds), difference.pop("per_seed")))
    return {"a": a, "b": b, "metric": "roc_auc", "seeds": seeds, **difference, "per_seed_differences": per_seed}


def auc_structural_components(labels, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each run's ROC-AUC and its DeLong components, ``probs`` being [runs, comments]: V10 of a toxic comment is
    the share of clean comments it outscores (ties count half), V01 of a clean comment the share of toxic ones
    that outscore it; the AUC is the mean of either. Midranks compute them in O(n log n) (Sun & Xu 2014).
    """
    labels = np.asarray(labels).astype(bool)
    probs = np.atleast_2d(np.asarray(probs, dtype=float))
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if not n_pos or not n_neg:
        raise EvaluationError("the test split holds a single class, so it has no ROC-AUC")
    rank_all = rankdata(probs, axis=-1)
    rank_pos, rank_neg = rankdata(probs[:, labels], axis=-1), rankdata(probs[:, ~labels], axis=-1)
    v10 = (rank_all[:, labels] - rank_pos) / n_neg
    v01 = 1 - (rank_all[:, ~labels] - rank_neg) / n_pos
    return v10.mean(axis=1), v10, v01


def comment_noise_se(labels, probs: np.ndarray, contrast: np.ndarray) -> float:
    """The standard error of ``contrast · AUCs`` over the test comments, the models fixed (DeLong et al. 1988):
    Var = cᵀ S10 c / n_pos + cᵀ S01 c / n_neg, S10 and S01 the covariances between runs of their V10 and V01
    components. Runs scored on the same comments share errors; pairing by comment removes what they share.
    """
    _, v10, v01 = auc_structural_components(labels, probs)
    contrast = np.asarray(contrast, dtype=float)
    variance = (contrast @ np.atleast_2d(np.cov(v10)) @ contrast / v10.shape[1]
                + contrast @ np.atleast_2d(np.cov(v01)) @ contrast / v01.shape[1])
    return float(np.sqrt(max(variance, 0.0)))


def seeds_and_comments_interval(per_seed: np.ndarray, se_test: float) -> dict:
    """The mean of ``per_seed``, its 95% interval and two-sided p against 0: SE² = s²_seed/n + SE²_test, with
    Student's t at n − 1 degrees of freedom (the normal quantile for one seed, which has only SE_test)."""
    per_seed = np.asarray(per_seed, dtype=float)
    n, mean = len(per_seed), float(per_seed.mean())
    se_seed = float(per_seed.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    se = float(np.hypot(se_seed, se_test))
    quantile, tail = (student_t.ppf(0.975, n - 1), lambda z: student_t.sf(z, n - 1)) if n > 1 else \
        (norm.ppf(0.975), norm.sf)
    p = 2 * float(tail(abs(mean) / se)) if se > 0 else float(mean == 0)
    return {"mean": mean, "ci95": [mean - quantile * se, mean + quantile * se], "se": se, "se_seed": se_seed,
            "se_test": se_test, "degrees_of_freedom": n - 1 if n > 1 else None, "p": p, "n_seeds": n}


def paired_auc_difference(labels, probs_a: list[np.ndarray], probs_b: list[np.ndarray]) -> dict:
    """Δ = mean over seeds of (ROC-AUC of A's run − B's), runs j of both from training seed j; both are scored
    on the same test comments, so the test term is that of the paired contrast."""
    probs = np.concatenate([np.asarray(probs_a, dtype=float), np.asarray(probs_b, dtype=float)])
    n = len(probs_a)
    aucs = auc_structural_components(labels, probs)[0]
    per_seed = aucs[:n] - aucs[n:]
    interval = seeds_and_comments_interval(per_seed, comment_noise_se(labels, probs, np.r_[np.full(n, 1 / n),
                                                                                          np.full(n, -1 / n)]))
    return {"difference": interval.pop("mean"), **interval, "per_seed": [float(d) for d in per_seed]}


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979): the family-wise error stays at most the level."""
    order, adjusted, running = np.argsort(p_values), [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


# -- The answer table -------------------------------------------------------------------------------

def answer_table(evaluation: dict) -> str:
    """Each method's test scores over its seeds, then each comparison with its interval and verdict."""
    rows = ["| Method | Seeds | Test ROC-AUC | PR-AUC | Macro-F1 |", "|---|---|---|---|---|"]
    for method, summary in evaluation["seeds"].items():
        cells = [f"{summary[m]['mean']:.3f}" + (f" ± {summary[m]['std']:.3f}" if summary[m]["std"] is not None else "")
                 for m in ("roc_auc", "pr_auc", "macro_f1")]
        rows.append(f"| {method} | {len(summary['seeds'])} | " + " | ".join(cells) + " |")
    rows += ["", "| Comparison | Family | Δ test ROC-AUC | 95% interval (seeds, test comments) | Holm p | Verdict |",
             "|---|---|---|---|---|---|"]
    for comparison in evaluation["comparisons"].values():
        if "skipped" not in comparison:
            low, high = comparison["ci95"]
            said = verdict_words(comparison)
            rows.append(f"| {comparison['a']} − {comparison['b']} | {comparison['family']} of "
                        f"{comparison['family_size']} | {comparison['difference']:+.3f} | [{low:+.3f}, {high:+.3f}] "
                        f"| {comparison['p_holm']:.3f} | {said} |")
    return "\n".join(rows)


if __name__ == "__main__":
    try:
        main()
    except (EvaluationError, DataError, ModelError) as error:
        sys.exit(f"evaluate.py: {error}")
