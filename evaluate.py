"""Score every trained run on its held-out test split, and compare the methods with honest intervals.

    python evaluate.py                       # every run under runs/
    python evaluate.py runs/odd runs/lora    # only these runs

For each run: rebuild the splits it was trained on (from its history.json), predict P(toxic) for
the validation and test comments, choose the decision threshold on validation (the F1-best one)
and score the test split at 0.5 and at that threshold. Then each method's mean ± std over its
training seeds, and each comparison the question asks (odd − even, lora − odd, ...) as a paired
bootstrap interval over seeds and test comments. A run that cannot be read or scored is skipped
and listed with the reason. Writes results/evaluation.json and prints the answer table.

The full report (figures, ablations, the behaviour suite, speed, model cards, README and docs/)
is ``python -m report``, which starts from these same functions.
"""
import argparse
import hashlib
import inspect
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import transformers
from scipy.stats import rankdata
from tqdm import tqdm

from baselines.tfidf import SETTINGS_FILE as TFIDF_SETTINGS_FILE, TfidfClassifier, TfidfError
from data import DataError
from data.load import load_splits
from models.load import ModelError
from training.batching import encode_texts, length_bucketed_batches, make_batch, pad_batch
from training.checkpoint import HistoryError, is_failed_run, read_history
from training.files import write_json_atomically
from training.loop import predict_logits
from training.metrics import best_f1_threshold, binary_metrics
from webapp.app import Predictor

# The methods in the order of every table, and the comparisons: (a, b, the question a − b answers).
METHOD_ORDER = ("teacher", "odd", "even", "lora", "lora-kd", "odd-ce", "lora-odd", "full-even", "minilm", "tfidf")
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
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads for every run's inference (default: torch's default)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with an error if any run had to be skipped (default: report the others)")
    args = parser.parse_args(argv)
    if args.bootstrap < 1:
        parser.error("--bootstrap needs at least 1 resample")
    return args


# -- The runs ---------------------------------------------------------------------------------------
# A run is a folder with a history.json: runs/<method>/ (make all), runs/study/<method>-seed<k>/ (make
# study), runs/ablations/<point>[-seed<k>]/ (make ablations: its method in the report is the point's
# name). Hidden folders (resume checkpoints, half-written runs), <name>.failed/ folders and runs/tune/
# (make tune chooses on validation; its runs must never be scored on test) are never evaluated.
STUDY_DIR, ABLATIONS_DIR, TUNING_DIR = "study", "ablations", "tune"
REQUIRED_HISTORY_KEYS = ("method", "args", "params", "steps", "epochs", "wall_time_s")
DATASET_ARGS = ("dataset", "text_column", "label_column", "toxic_labels", "val_fraction", "split_seed")


@dataclass
class Run:
    """One trained run folder and its history.

    ``primary`` marks the run that represents its method in single-run tables and figures: the
    first one found, so ``runs/<method>/`` wins over ``runs/study/...``. ``ablation`` marks a run of
    ``runs/ablations/``, reported in tables of its own.
    """
    name: str
    method: str
    seed: int
    path: Path
    history: dict
    primary: bool = False
    ablation: bool = False


def find_run_folders(runs_dir: str | os.PathLike) -> list[Path]:
    """Every non-hidden folder with a history.json one or two levels below ``runs_dir``, shallow first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise EvaluationError(f"no runs folder at {runs_dir}: train a model first (python train.py ...) "
                              f"or pass run folders as arguments")
    folders = []
    for pattern in ("*/history.json", "*/*/history.json"):
        for history_file in sorted(runs_dir.glob(pattern)):
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
    seed = history["args"]["seed"]
    if folder.parent.name == ABLATIONS_DIR:
        return Run(name=folder.name, method=folder.name.removesuffix(f"-seed{seed}"), seed=seed, path=folder,
                   history=history, ablation=True)
    return Run(name=folder.name, method=history["method"], seed=seed, path=folder, history=history)


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
    """Mark each method's primary run and sort: primary runs first, then method order, then seed."""
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
    """What evaluation needs of a trained run: P(toxic) per comment, ``predict(texts, batch_size=64)``, and its size.

    ``predictor`` is a Hugging Face run's (the web app's ``Predictor``); None for the TF-IDF baseline.
    """
    predict: Callable[..., np.ndarray]
    num_parameters: int
    predictor: Predictor | None = None


def load_scorer(folder: Path, history: dict) -> Scorer:
    """A run folder as a Scorer: the TF-IDF baseline's plain-data files, or a Hugging Face classifier.

    A classifier is the web app's ``Predictor`` in fp32: the comments cut and prefixed as the run
    was trained, predicted through the training loop's own ``predict_logits`` (batches of similar
    length, ``model.eval()``), so a run is scored as it was validated during training, and as it is
    served. The threshold is chosen later, on validation (``quality_report``).
    """
    if (Path(folder) / TFIDF_SETTINGS_FILE).is_file():
        tfidf = TfidfClassifier.load(folder)
        return Scorer(lambda texts, batch_size=None: tfidf.predict_proba(texts), tfidf.num_parameters)
    predictor = Predictor.from_folder(folder, threshold=history.get("validation_threshold", 0.5))
    return Scorer(predictor.probabilities, sum(parameter.numel() for parameter in predictor.model.parameters()),
                  predictor)


@dataclass
class RunPredictions:
    """One run's test probabilities and labels, kept for the paired comparisons (and the report's figures).

    ``test_set`` fingerprints the test comments and labels: two runs can only be compared example
    by example when they were scored on the same test set.
    """
    labels: np.ndarray
    probs: np.ndarray
    test_set: str
    validation_labels: np.ndarray | None = None
    validation_probs: np.ndarray | None = None


def score_runs(runs: list[Run], skipped: list[dict], load=load_scorer, extend=None) -> tuple[list[dict], dict]:
    """Score every run (those that fail join ``skipped``): their records and predictions, by run name.

    ``load(folder, history) -> Scorer`` loads a run; ``extend(run, record, scorer, splits, predictions)``,
    if given, adds fields to each record (the full report's speed, behaviour suite, model card). Runs
    trained on the same dataset settings share one load of the splits.
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
        except (EvaluationError, DataError, ModelError, TfidfError) as error:
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


def score_run(run: Run, splits, load=load_scorer) -> tuple[dict, Scorer | None, RunPredictions]:
    """The record of one run (its threshold and scores), its scorer (None when cached) and its predictions."""
    test_set = fingerprint(splits.test.texts, splits.test.labels)
    key = scores_key(run.path, load, fingerprint(splits.validation.texts, splits.validation.labels), test_set)
    scorer = None
    cached = cached_scores(run.path, key)
    if cached:
        validation_probs, test_probs, num_parameters = cached
    else:
        scorer = load(run.path, run.history)
        validation_probs, test_probs = scorer.predict(splits.validation.texts), scorer.predict(splits.test.texts)
        num_parameters = scorer.num_parameters
        store_scores(run.path, key, validation_probs, test_probs, num_parameters)
    trainable = run.history["params"]["trainable"]
    record = {"name": run.name, "method": run.method, "path": display_path(run.path), "seed": run.seed,
              "primary": run.primary, "ablation": run.ablation,
              **quality_report(splits.validation.labels, validation_probs, splits.test.labels, test_probs),
              "params": {"total": num_parameters, "trainable": trainable, "trainable_share": trainable / num_parameters},
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
    """A short hash of a split, identical for runs evaluated on the same comments and labels."""
    digest = hashlib.sha256()
    for text, label in zip(texts, labels):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()[:16]


# A run's probabilities depend on its files, on the comments and on the code that scores them, so an
# unchanged run is scored once: they are kept in runs/.scores/<name>.json under a key made of all three.
SCORES_DIR = ".scores"
NOT_SCORED = ("README.md", "model.onnx", "model.int8.onnx", "model.onnx.json")  # written after scoring, or never read
SCORING_CODE = (load_scorer, Predictor, predict_logits, encode_texts, length_bucketed_batches, make_batch, pad_batch)


def scores_key(run_folder: Path, load: Callable, *split_fingerprints: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(run_folder).iterdir() if p.is_file() and p.name not in NOT_SCORED):
        digest.update(path.name.encode())
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
    for function in dict.fromkeys((load, *SCORING_CODE)):
        digest.update(inspect.getsource(function).encode())
    digest.update(f"torch {torch.__version__} transformers {transformers.__version__}".encode())
    for split_fingerprint in split_fingerprints:
        digest.update(split_fingerprint.encode())
    return digest.hexdigest()


def scores_file(run_folder: Path) -> Path:
    return Path(run_folder).parent / SCORES_DIR / f"{Path(run_folder).name}.json"


def cached_scores(run_folder: Path, key: str) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(validation probabilities, test probabilities, parameter count) stored under ``key``, or None."""
    try:
        stored = json.loads(scores_file(run_folder).read_text())
        if stored["key"] != key:
            return None
        return (np.asarray(stored["validation"], dtype=np.float64), np.asarray(stored["test"], dtype=np.float64),
                int(stored["num_parameters"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def store_scores(run_folder: Path, key: str, validation: np.ndarray, test: np.ndarray, num_parameters: int) -> None:
    write_json_atomically(scores_file(run_folder), {"key": key, "validation": validation.tolist(),
                                                    "test": test.tolist(), "num_parameters": num_parameters})


# -- Seeds and paired comparisons -------------------------------------------------------------------
# Two noises blur a comparison: the training seed (a new head's initialisation, dropout, the data order;
# not the splits, which --split-seed keeps fixed) and the finite test set. The seed spread is mean ±
# sample std. A difference gets a paired bootstrap (Efron & Tibshirani 1993; Koehn 2004 for NLP) at two
# levels, seeds then test comments, both methods scored on the same resample; its 95% interval is the
# 2.5th to 97.5th percentile. When it contains 0, no difference was detected, and its width says how
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
    """Test ROC-AUC of method ``a`` minus method ``b``: per seed, and a bootstrap over seeds and test comments.

    Runs are paired by seed. A method without randomness (TF-IDF: one run, recorded as
    deterministic) is paired with every seed of the other.
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


BOOTSTRAP_CHUNK = 250  # resamples scored at once: bounds the memory of the (chunk, n) matrices


def two_level_bootstrap(n_examples: int, n_seeds: int, per_seed_statistic, resamples: int,
                        seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Resampled values of a statistic averaged over seeds: (seeds and examples resampled, examples only).

    ``per_seed_statistic(indices)`` scores each seed's run on each row of test-comment indices
    ([resamples, examples] -> [resamples, seeds]). Each resample draws the test comments with
    replacement and, for the first value, also the seeds with replacement (Davison & Hinkley 1997,
    section 3.8). Resamples that drew a single class, where no ROC-AUC exists, are dropped.
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

    ``probs_a[j]`` and ``probs_b[j]`` are the two methods' runs with the same training seed, all
    scored on the same test comments. Each resample first draws the seeds, with replacement (another
    seed would have trained other models), then the test comments, with replacement (another sample
    of comments would score them differently), and scores every drawn run on those comments. Drawing
    the comments once for both methods keeps the pairing, which removes the noise both share.
    ``ci95_examples_only`` keeps the seeds fixed: it ignores seed noise. With a single seed the two
    coincide, and only test-set noise is covered.
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
    except (EvaluationError, DataError, ModelError, TfidfError) as error:
        sys.exit(f"evaluate.py: {error}")
