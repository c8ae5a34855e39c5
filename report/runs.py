"""Finding the trained runs and reading what train.py recorded about them.

A run is any folder holding a ``history.json``: ``runs/<method>/`` for the main runs and
``runs/study/<method>-seed<k>/`` for the multi-seed study, ``runs/ablations/<point>[-seed<k>]/`` for
the ablations (``experiments/ablations.py``), whose method in the report is the ablation point's
name, since they change a setting of their train.py method. Hidden folders (``.checkpoints``,
``.even.partial``) hold resume state or half-written runs, and ``<name>.failed/`` folders hold
runs that train.py refused to save as results; none of them is ever evaluated. Neither is
``runs/tune/``: ``make tune`` chooses every setting on validation, and its runs must never be
scored on the test split.
"""
import json
import os
from dataclasses import dataclass
from pathlib import Path

from report import ReportError
from training.checkpoint import is_failed_run

METHOD_ORDER = ("teacher", "odd", "even", "lora", "lora-kd", "odd-ce", "lora-odd", "full-even", "minilm", "tfidf")
REQUIRED_HISTORY_KEYS = ("method", "args", "params", "steps", "epochs", "wall_time_s")
STUDY_DIR = "study"  # runs/study/: the runs make study trains beyond make all's (experiments/study.py)
ABLATIONS_DIR = "ablations"  # runs/ablations/: the runs make ablations trains (experiments/ablations.py)
SESSIONS = "sessions.json"  # runs/<experiment>/sessions.json: each session's wall time (experiments/runner.py)
TUNING_DIR = "tune"  # runs/tune/: make tune's runs (experiments/tune.py)
DATASET_ARGS = ("dataset", "text_column", "label_column", "toxic_labels", "val_fraction", "split_seed")


@dataclass
class Run:
    """One trained run folder and its history.

    ``primary`` marks the run that represents its method in the assignment table and the
    figures: the first one found, so ``runs/<method>/`` wins over ``runs/study/...``. ``ablation``
    marks a run of ``runs/ablations/``: its ``method`` is its ablation point (the folder's name
    without the seed), and it has its own section of the report.
    """
    name: str
    method: str
    seed: int
    path: Path
    history: dict
    primary: bool = False
    ablation: bool = False


def find_run_folders(runs_dir: str | os.PathLike) -> list[Path]:
    """Every non-hidden folder with a history.json one or two levels below ``runs_dir``, shallow first.

    The tuning runs (``runs_dir/tune/``) are left out.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ReportError(f"no runs folder at {runs_dir}: train a model first (python train.py ...) "
                          f"or pass run folders as arguments")
    folders = []
    for pattern in ("*/history.json", "*/*/history.json"):
        for history_file in sorted(runs_dir.glob(pattern)):
            relative = history_file.parent.relative_to(runs_dir)
            if not any(part.startswith(".") for part in relative.parts) and not is_failed_run(relative) \
                    and relative.parts[0] != TUNING_DIR:
                folders.append(history_file.parent)
    if not folders:
        raise ReportError(f"no run folders (folders with a history.json) under {runs_dir}")
    return folders


def read_run(folder: str | os.PathLike) -> Run:
    """The run in ``folder``, with a clear error if its history.json is missing or incomplete."""
    folder = Path(folder)
    history_file = folder / "history.json"
    if not history_file.is_file():
        raise ReportError(f"{folder} is not a run folder: it has no history.json")
    try:
        history = json.loads(history_file.read_text())
    except json.JSONDecodeError as error:
        raise ReportError(f"{history_file} is not valid JSON ({error}); the run may be corrupt") from None
    missing = [key for key in REQUIRED_HISTORY_KEYS if key not in history]
    missing += [f"args.{key}" for key in (*DATASET_ARGS, "seed", "max_length") if key not in history.get("args", {})]
    if missing:
        raise ReportError(f"{history_file} lacks {', '.join(missing)}; was it written by train.py?")
    if not history["epochs"]:
        raise ReportError(f"{history_file} records no finished epoch")
    seed = history["args"]["seed"]
    if folder.parent.name == ABLATIONS_DIR:
        return Run(name=folder.name, method=folder.name.removesuffix(f"-seed{seed}"), seed=seed, path=folder,
                   history=history, ablation=True)
    return Run(name=folder.name, method=history["method"], seed=seed, path=folder, history=history)


def read_runs(folders: list[str | os.PathLike]) -> list[Run]:
    """The runs in ``folders``, primary runs first, each group in method order then seed order."""
    return arrange_runs([read_run(folder) for folder in folders])


def arrange_runs(runs: list[Run]) -> list[Run]:
    """Mark each method's primary run and sort: primary runs first, then method order, then seed."""
    by_name: dict[str, Run] = {}
    for run in runs:
        if run.name in by_name:
            raise ReportError(f"two runs are named {run.name!r} ({by_name[run.name].path} and {run.path}); "
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


def served_record(records: list[dict], best_student: dict | None) -> dict | None:
    """Of evaluate.py's run records, the one the web app and predict.py serve by default.

    That is the study's answer: the best 6-layer student (``best_student``, chosen on mean
    validation ROC-AUC over its seeds), and of its runs the one with the best validation macro-F1.
    With no best student, or none of its runs among ``records``, every run is a candidate. The
    choice uses validation scores only: choosing on test would make the test score optimistic.
    """
    students = best_student["runs"] if best_student else []
    return max(records, key=lambda record: (record.get("name") in students, record["validation"]["macro_f1"]),
               default=None)


def experiment_sessions(runs_dir: str | os.PathLike, experiment_dir: str) -> list[dict]:
    """What an experiment (``STUDY_DIR``, ``ABLATIONS_DIR``) recorded of each session: runs trained and skipped, wall time."""
    try:
        sessions = json.loads((Path(runs_dir) / experiment_dir / SESSIONS).read_text())
    except (OSError, ValueError):
        return []
    return sessions if isinstance(sessions, list) else []


def training_losses(history: dict) -> dict:
    """The final epoch's mean training cross-entropy, its mean objective, and what the objective was.

    Every method minimises cross-entropy on the labels, alone or as one term of the distillation
    loss, so the cross-entropy compares across methods; the objective does not. The loop records
    every term's epoch mean (``train_terms``); for runs trained before it did, the logged steps of
    the last epoch give the same means.
    """
    last = history["epochs"][-1]
    terms = last.get("train_terms") or {
        name: sum(values) / len(values) for name, values in _last_epoch_step_terms(history).items()}
    args = history["args"]
    objective = (f"{args['alpha_ce']:g}·CE + {args['alpha_kd']:g}·KD + {args['alpha_cos']:g}·cos" if "kd" in terms
                 else "CE")
    return {"train_ce": terms.get("ce"), "train_objective": last["train_loss"], "objective": objective}


def _last_epoch_step_terms(history: dict) -> dict[str, list[float]]:
    last_epoch = history["epochs"][-1]["epoch"]
    terms: dict[str, list[float]] = {}
    for step in history["steps"]:
        if step["epoch"] == last_epoch:
            for name, value in step.items():
                if name not in ("step", "epoch", "lr"):
                    terms.setdefault(name, []).append(value)
    return terms
