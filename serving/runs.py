"""Which runs the server loads: the one it serves, chosen from evaluate.py's results, and the compare view's.

Without a run named on the command line, the server (and predict.py) serves the study's answer from
results/results.json: the best 6-layer student (``best_student``, the method with the best mean
validation ROC-AUC over its seeds), and of its runs the one with the best validation macro-F1, by
``report.runs.served_record``, the rule the report's Findings state. The compare view shows every
trained classifier under runs/, in the report's method order, and one run per method trained on another
dataset.
"""
import json
import math
import sys
from pathlib import Path

from data.assets import EMBEDDED_DATASETS
from experiments.study import FIRST_SEED
from models.load import ModelError
from evaluate import method_rank
from report.runs import served_record
from serving.precision import load_predictor
from training.run_folder import is_failed_run
from webapp.app import Predictor


def find_runs(runs_dir: str | Path) -> dict[str, Path]:
    """Every trained classifier under ``runs_dir`` by name (a folder with a history.json and a config.json).

    First the runs of ``runs_dir`` itself, in method order; then, for each other embedded dataset that
    ``make second-dataset`` trained on (``runs/<dataset>/<method>-seed42``), its run of each method,
    named ``<dataset>/<method>``, so the view sets a model trained on other comments beside them.
    Hidden folders (half-written runs), ``<name>.failed`` folders (runs train.py refused to save as
    results) and runs that are not Hugging Face models (the TF-IDF baseline) are left out.
    """
    runs_dir = Path(runs_dir)
    found = {folder.name: folder for folder in sorted(classifiers(runs_dir), key=lambda f: method_rank(f.name))}
    for dataset in EMBEDDED_DATASETS:
        suffix = f"-seed{FIRST_SEED}"
        seed_runs = [folder for folder in classifiers(runs_dir / dataset) if folder.name.endswith(suffix)]
        for folder in sorted(seed_runs, key=lambda f: method_rank(f.name.removesuffix(suffix))):
            found[f"{dataset}/{folder.name.removesuffix(suffix)}"] = folder
    return found


def classifiers(folder: Path) -> list[Path]:
    """The trained classifiers directly inside ``folder`` (none if it does not exist)."""
    if not folder.is_dir():
        return []
    return [run for run in folder.iterdir()
            if (run / "history.json").is_file() and (run / "config.json").is_file()
            and not run.name.startswith(".") and not is_failed_run(run)]


def best_run(results_file: str | Path) -> Path | None:
    """The run to serve, from evaluate.py's results.json: the study's answer, if it has one.

    Among the runs whose folder is on disk, the main runs and the ablations' (the best student may be
    an ablation point). Reads ``path`` and ``validation.macro_f1`` of each entry of ``runs`` and
    ``ablation_runs``, and ``best_student.runs``, and skips any entry that lacks them or whose folder
    is gone. A relative path is taken from the repository root, the folder that holds results/.
    """
    results_file = Path(results_file)
    try:
        results = json.loads(results_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict):
        return None
    runs = [run for key in ("runs", "ablation_runs") if isinstance(results.get(key), list) for run in results[key]]
    best_student = results.get("best_student")
    if not (isinstance(best_student, dict) and isinstance(best_student.get("runs"), list)):
        best_student = None
    candidates = []
    for run in runs:
        if not isinstance(run, dict) or not isinstance(run.get("path"), str) \
                or not isinstance(run.get("validation"), dict):
            continue
        macro_f1 = run["validation"].get("macro_f1")
        if isinstance(macro_f1, bool) or not isinstance(macro_f1, (int, float)) or math.isnan(macro_f1):
            continue
        folder = Path(run["path"])
        if not folder.is_absolute():
            folder = results_file.resolve().parent.parent / folder
        if (folder / "config.json").is_file():
            candidates.append({**run, "folder": folder})
    served = served_record(candidates, best_student)
    return served["folder"] if served else None


def resolve_model_folder(model: str | Path | None, results_file: str | Path) -> Path:
    """``model`` if given, else the best run in results.json; a ModelError says how to train one."""
    if model:
        return Path(model)
    folder = best_run(results_file)
    if folder is None:
        raise ModelError(
            f"No trained model to serve: {results_file} names no run folder with a validation "
            f"macro_f1. Train and evaluate one first:\n"
            f"    python train.py --method even\n"
            f"    python evaluate.py\n"
            f"or pass the folder of a trained model with --model runs/<method>.")
    return folder


def load_predictors(model_folder: str | Path, *, threshold: float | None = None, runs_dir: str | Path | None = None,
                    precision: str = "auto") -> tuple[dict[str, Predictor], str]:
    """The served model, plus every trained run under ``runs_dir`` for the compare view.

    Returns the predictors by name and the name of the served one. ``threshold`` overrides the
    served model's validation threshold only; each compared run keeps its own. The served model
    stands in for the run with its folder name. A compared run that cannot be loaded is left out
    with a warning on stderr: one broken folder must not stop a server whose served model is fine
    (a broken served model is still an error). Every predictor runs at ``precision``.
    """
    served = load_predictor(model_folder, threshold, precision)
    runs = find_runs(runs_dir) if runs_dir else {}
    predictors = {} if served.name in runs else {served.name: served}
    for name, folder in runs.items():
        if name == served.name:
            predictors[name] = served
            continue
        try:
            predictors[name] = load_predictor(folder, precision=precision)
        except ModelError as error:
            print(f"warning: the compare view leaves out {folder}: {error}", file=sys.stderr)
    return predictors, served.name
