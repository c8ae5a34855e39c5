"""Fair tuning, on validation only: ``make tune`` gives every method the same small search.

Every method is tuned at seed 42, and every choice is made on the validation ROC-AUC of the run's
best epoch (the number the training loop already uses to keep its best epoch). The test split is
never scored: the tuning runs live in ``runs/tune/``, which ``evaluate.py`` does not read.

The search, the same for every method of a family:
- the peak learning rate, from 3 values over a 4x range around the hand-set default: full
  fine-tuning 2.5e-5, 5e-5, 1e-4; LoRA 2.5e-4, 5e-4, 1e-3; each for 3 epochs;
- for the LoRA methods, whose training loss is still falling after 3 epochs, also 6 epochs, at
  the learning rate the first step chose (a coordinate search: one more run instead of three).

The teacher is tuned first, and the students are tuned on the chosen teacher, as ``make all``
then trains them. The controls are not tuned themselves: each takes the recipe of the method it
controls (``train.Recipe.recipe_of``), so that it still differs from it in one thing only. The
TF-IDF baseline chooses its C on validation in every run.

Writes ``results/tuning.md`` and ``results/tuning.json`` (every run and its score) and
``results/tuned_defaults.json`` (the choices). ``train.py`` reads nothing at run time: its RECIPES
table repeats the choices as literals, and tests/test_recipes.py fails while the two disagree.
Resumable like the study: finished tuning runs are skipped.
"""
import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from experiments.runner import PlannedRun, add_jobs_argument, execute, is_done, planned_args
from evaluate import TUNING_DIR
from report.tables import markdown_table
from training.files import write_json_atomically, write_text_atomically
from train import RECIPES

TUNED = ("teacher", "odd", "even", "lora", "lora-kd", "minilm")  # the teacher first: the students read it
LR_GRID = {"full": (2.5e-5, 5e-5, 1e-4), "lora": (2.5e-4, 5e-4, 1e-3)}
SEED = 42


def family(method: str) -> str:
    return "lora" if RECIPES[method].lora else "full"


def tuning_run(runs_dir: str, method: str, lr: float, epochs: int, teacher: str | None,
               extra_flags: tuple[str, ...]) -> PlannedRun:
    flags = ["--method", method, "--seed", str(SEED), "--lr", f"{lr:g}", "--epochs", str(epochs)]
    if teacher:
        flags += ["--teacher", teacher]
    return PlannedRun(f"{runs_dir}/{method}-lr{lr:g}-ep{epochs}", (*flags, *extra_flags))


def validation_score(run: PlannedRun) -> dict:
    """The run's recipe, its best epoch's validation ROC-AUC and its train.py wall time.

    A setting whose run failed (diverged, or ended as a constant predictor) scores nothing and is
    never chosen; train.py kept it in ``<run>.failed/`` with the reason.
    """
    if not is_done(run):
        args = planned_args(run)
        return {"run": run.out, "lr": args["lr"], "epochs": args["epochs"], "best_epoch": None,
                "validation_roc_auc": None, "total_time_s": 0.0, "failed": True}
    history = json.loads((Path(run.out) / "history.json").read_text())
    best = history["epochs"][history["best_epoch"] - 1]
    return {"run": run.out, "lr": history["args"]["lr"], "epochs": history["args"]["epochs"],
            "best_epoch": history["best_epoch"], "validation_roc_auc": best["validation"]["roc_auc"],
            "total_time_s": history["total_time_s"]}


def tune_method(method: str, runs_dir: str, teacher: str | None, extra_flags: tuple[str, ...],
                epochs: int, lora_epochs: int, jobs: int = 1) -> list[dict]:
    """The method's search, trained as needed; returns one scored row per run, in search order."""
    plan = [tuning_run(runs_dir, method, lr, epochs, teacher, extra_flags) for lr in LR_GRID[family(method)]]
    execute(plan, stop_on_failure=False, jobs=jobs)
    rows = [validation_score(run) for run in plan]
    if family(method) == "lora":
        longer = tuning_run(runs_dir, method, choose(rows)["lr"], lora_epochs, teacher, extra_flags)
        execute([longer], stop_on_failure=False)
        rows.append(validation_score(longer))
    return [{"method": method, **row} for row in rows]


def choose(rows: list[dict]) -> dict:
    """The row with the best validation ROC-AUC; on a tie the earlier one (lower lr, fewer epochs)."""
    scored = [row for row in rows if row["validation_roc_auc"] is not None]
    if not scored:
        sys.exit(f"tune: every run of this search failed ({', '.join(row['run'] for row in rows)}); "
                 f"train.py kept each in <run>.failed/ with the reason")
    return max(scored, key=lambda row: row["validation_roc_auc"])


def tuning_markdown(rows: list[dict], chosen: dict[str, dict], command: str) -> str:
    table = markdown_table(
        ["Method", "Learning rate", "Epochs", "Best epoch", "Validation ROC-AUC", "train.py time", "Chosen"],
        [[row["method"], f"{row['lr']:g}", str(row["epochs"]), str(row["best_epoch"] or "–"),
          "failed" if row["validation_roc_auc"] is None else f"{row['validation_roc_auc']:.4f}",
          f"{row['total_time_s'] / 60:.1f} min",
          "✓" if chosen[row["method"]]["run"] == row["run"] else ""] for row in rows])
    controls = ", ".join(f"{name} takes {method.recipe_of}'s" for name, method in RECIPES.items() if method.recipe_of)
    total = sum(row["total_time_s"] for row in rows) / 60
    return (f"# Tuning on validation\n\nGenerated by `{command}` (the docstring of `experiments/tune.py` describes "
            f"the search). Seed {SEED}; every choice by the validation ROC-AUC of the run's best epoch; the test split "
            f"is never scored. The chosen recipes are in `tuned_defaults.json`, and `train.py`'s RECIPES table "
            f"repeats them. Controls are not tuned: {controls}. Wall time: {len(rows)} runs, {total:.1f} minutes of "
            f"`train.py` in all.\n\n{table}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", default=f"runs/{TUNING_DIR}", help="evaluate.py never reads runs/tune/")
    parser.add_argument("--out", type=Path, default=Path("results"), help="where tuning.md/json and tuned_defaults.json go")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the learning-rate search (default 3)")
    parser.add_argument("--lora-epochs", type=int, default=6, help="the longer schedule tried for LoRA (default 6)")
    parser.add_argument("--train-flags", default="", help="extra train.py flags for every run (smoke runs)")
    add_jobs_argument(parser)
    args = parser.parse_args(argv)
    extra = tuple(shlex.split(args.train_flags))
    started = time.perf_counter()
    rows, chosen, teacher = [], {}, None
    for method in TUNED:
        method_rows = tune_method(method, args.runs_dir, teacher if RECIPES[method].needs_teacher else None, extra,
                                  args.epochs, args.lora_epochs, args.jobs)
        chosen[method] = choose(method_rows)
        rows += method_rows
        if method == "teacher":
            teacher = chosen[method]["run"]
    command = shlex.join(["python", "-m", "experiments.tune", *(sys.argv[1:] if argv is None else argv)])
    write_json_atomically(args.out / "tuning.json", {"seed": SEED, "selection": "validation ROC-AUC of the best epoch",
                                                     "runs": rows, "chosen": chosen, "generated_by": command})
    write_text_atomically(args.out / "tuning.md", tuning_markdown(rows, chosen, command))
    write_json_atomically(args.out / "tuned_defaults.json", {
        "generated_by": f"{command} (see tuning.md)",
        "methods": {method: {"lr": row["lr"], "epochs": row["epochs"], "validation_roc_auc": row["validation_roc_auc"]}
                    for method, row in chosen.items()}})
    print(tuning_markdown(rows, chosen, command))
    print(f"tune: {(time.perf_counter() - started) / 60:.1f} min; wrote {args.out}/tuning.md, tuning.json, "
          f"tuned_defaults.json")


if __name__ == "__main__":
    main()
