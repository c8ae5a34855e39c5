"""Score every trained run on its held-out test split, and compare the methods with honest intervals.

    python evaluate.py                       # every run under runs/
    python evaluate.py runs/odd runs/lora    # only these runs

For each run: rebuild the splits it was trained on (from its history.json), predict P(toxic) for
the validation and test comments, choose the decision threshold on validation and score the test
split at 0.5 and at that threshold. Then each method's mean ± std over its training seeds, and each
comparison the question asks (odd − even, lora − odd, ...) as a paired bootstrap interval over seeds
and test comments. A run that cannot be read or scored is skipped and listed with the reason.
Writes results/evaluation.json and prints the answer table. ``python -m report`` builds the full
report (baselines, figures, ablations, speed, model cards) on these same functions.
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
from scipy.stats import rankdata
from tqdm import tqdm

from data import DataError
from data.load import load_splits
from models.load import ModelError
from training.checkpoint import HistoryError, is_failed_run, read_history
from training.files import write_json_atomically
from training.metrics import best_f1_threshold, binary_metrics
from webapp.app import Predictor

# The methods in the order of every table, and the comparisons: (a, b, the question a − b answers).
METHOD_ORDER = ("teacher", "odd", "even", "lora", "lora-kd", "odd-ce", "lora-odd", "full-even", "lora-minilm",
                "minilm", "tfidf")
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
BOOTSTRAP_RESAMPLES = 2000


class EvaluationError(ValueError):
    """The runs cannot be evaluated as asked (no runs, a malformed history, a single-class split, ...)."""


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    runs, skipped = read_runs(args.paths or find_run_folders(args.runs_dir))
    records, predictions = score_runs(runs, skipped)
    main_records = [record for record in records if not record["ablation"]]
    evaluation = {"runs": records, "skipped": skipped, "seeds": seed_summary(main_records),
                  "comparisons": method_comparisons(main_records, predictions, args.bootstrap, args.bootstrap_seed)}
    write_json_atomically(args.out / "evaluation.json", evaluation)
    print(answer_table(evaluation))
    print(f"wrote {args.out}/evaluation.json; python -m report writes the full report")
    if args.strict and skipped:
        raise EvaluationError(f"--strict: {len(skipped)} run(s) skipped (listed above)")
    return evaluation


def parse_args(argv: list[str], parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """The flags; ``parser`` is a caller's own, with flags of its own, to which these are added."""
    parser = parser or argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path, help="run folders to evaluate (default: all under --runs-dir)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where to look for runs (default: runs)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="where the results go (default: results)")
    parser.add_argument("--bootstrap", type=int, default=BOOTSTRAP_RESAMPLES, help="paired bootstrap resamples")
    parser.add_argument("--bootstrap-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads for inference")
    parser.add_argument("--strict", action="store_true", help="exit with an error if any run had to be skipped")
    args = parser.parse_args(argv)
    if args.bootstrap < 1:
        parser.error("--bootstrap needs at least 1 resample")
    return args


# -- The runs ---------------------------------------------------------------------------------------
# A run is a folder with a history.json: runs/<method>/ (make all), runs/study/<method>-seed<k>/ (make
# study), runs/ablations/<point>[-seed<k>]/ (make ablations: the point's name is its method here). Hidden
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


def read_runs(folders: list[str | os.PathLike]) -> tuple[list[Run], list[dict]]:
    """The readable runs, arranged (``arrange_runs``), and ``{"path", "reason"}`` for each unreadable one."""
    runs, skipped = [], []
    for folder in folders:
        try:
            runs.append(read_run(folder))
        except EvaluationError as error:
            skipped.append({"path": display_path(folder), "reason": str(error)})
    return arrange_runs(runs), skipped


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

    ``load(folder, history) -> Scorer`` loads a run; ``extend(run, record, scorer, splits, predictions)``
    adds fields to each record (the full report's). Runs trained on the same data share one load of it.
    """
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
    """The threshold chosen on validation, validation metrics at it, and test metrics at 0.5 and at it.

    0.5 is arbitrary on an imbalanced task, so the F1-best threshold is chosen too, on the run's own
    validation predictions. The test labels only score: choosing anything on them would leak them
    into the model and overstate the result.
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
# Two noises blur a comparison: the training seed (initialisation, dropout, data order; not the splits,
# which --split-seed fixes) and the finite test set. A difference gets a paired bootstrap (Efron &
# Tibshirani 1993; Koehn 2004 for NLP) at two levels, seeds then test comments, both methods scored on
# the same resample. An interval that contains 0 means no difference was detected; its width says how
# large a difference the data still allow.

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


def method_comparisons(records: list[dict], predictions: dict[str, RunPredictions], resamples: int,
                       seed: int = 0) -> dict[str, dict]:
    """Every pair of COMPARED_PAIRS, keyed "<a>_vs_<b>"; pairs with a missing method say why they were skipped."""
    return {f"{a}_vs_{b}": {**compare_methods(records, predictions, a, b, resamples, seed), "question": question}
            for a, b, question in COMPARED_PAIRS}


def compare_methods(records: list[dict], predictions: dict[str, RunPredictions], a: str, b: str,
                    resamples: int, seed: int = 0) -> dict:
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
    bootstrap = paired_bootstrap_auc_difference(runs_a[0].labels, [run.probs for run in runs_a],
                                                [run.probs for run in runs_b], resamples, seed)
    low, high = bootstrap["ci95"]
    verdict = "within noise" if low <= 0 <= high else (f"{a} better" if low > 0 else f"{b} better")
    per_seed = {str(s): grouped[a][s]["test"]["at_validation_threshold"]["roc_auc"]
                - grouped[b][s]["test"]["at_validation_threshold"]["roc_auc"] for s in seeds}
    return {"a": a, "b": b, "metric": "roc_auc", "seeds": seeds, **bootstrap,
            "per_seed_differences": per_seed, "verdict": verdict}


def roc_auc_by_ranks(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """ROC-AUC along the last axis, so many resamples are scored in one call.

    The AUC is the chance that a random toxic comment scores above a random clean one: the
    Mann-Whitney U over n_pos * n_neg (Hanley & McNeil 1982), U = (sum of the positives' ranks) -
    n_pos (n_pos + 1) / 2, ties sharing their average rank. A single-class row gives NaN.
    """
    labels = np.asarray(labels, dtype=float)
    ranks = rankdata(probs, axis=-1)
    n_pos = labels.sum(axis=-1)
    n_neg = labels.shape[-1] - n_pos
    u = (ranks * labels).sum(axis=-1) - n_pos * (n_pos + 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return u / (n_pos * n_neg)


BOOTSTRAP_CHUNK = 250  # resamples scored at once: bounds the memory of the (chunk, n) matrices


def two_level_bootstrap(n_examples: int, n_seeds: int, per_seed_statistic, resamples: int,
                        seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Resampled values of a statistic averaged over seeds: (seeds and examples resampled, examples only).

    ``per_seed_statistic(indices)`` maps [resamples, examples] test-comment indices to [resamples,
    seeds]. Each resample draws the comments and, for the first value, the seeds with replacement
    (Davison & Hinkley 1997, section 3.8). Resamples with a single class (no ROC-AUC) are dropped.
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
                                    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict:
    """Bootstrap of Δ = mean over seeds of (ROC-AUC of A's run − ROC-AUC of B's run), seeds paired.

    ``probs_a[j]`` and ``probs_b[j]`` are the two methods' runs of training seed j on the same test
    comments. Each resample draws the seeds (another seed trains other models), then the comments
    (another sample scores differently), once for both methods: the pairing removes the noise both
    share. ``ci95_examples_only`` keeps the seeds fixed; with one seed the two coincide.
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


# -- The answer table -------------------------------------------------------------------------------

def answer_table(evaluation: dict) -> str:
    """Each method's test scores over its seeds, then each comparison with its interval and verdict."""
    rows = ["| Method | Seeds | Test ROC-AUC | PR-AUC | Macro-F1 |", "|---|---|---|---|---|"]
    for method, summary in evaluation["seeds"].items():
        cells = [f"{summary[m]['mean']:.3f}" + (f" ± {summary[m]['std']:.3f}" if summary[m]["std"] is not None else "")
                 for m in ("roc_auc", "pr_auc", "macro_f1")]
        rows.append(f"| {method} | {len(summary['seeds'])} | " + " | ".join(cells) + " |")
    rows += ["", "| Comparison | Δ test ROC-AUC | 95% interval (seeds and test comments) | Verdict |", "|---|---|---|---|"]
    for comparison in evaluation["comparisons"].values():
        if "skipped" not in comparison:
            low, high = comparison["ci95"]
            verdict = (comparison["verdict"] if not low <= 0 <= high else
                       f"no difference detected; the interval allows ±{max(-low, high):.3f}")
            rows.append(f"| {comparison['a']} − {comparison['b']} | {comparison['difference']:+.3f} | "
                        f"[{low:+.3f}, {high:+.3f}] | {verdict} |")
    return "\n".join(rows)


if __name__ == "__main__":
    try:
        main()
    except (EvaluationError, DataError, ModelError) as error:
        sys.exit(f"evaluate.py: {error}")
