"""Fair tuning, on validation only: ``make tune`` searches every method's learning rate and epochs.

Every tuning run trains at seed 0, which no evaluation run uses (the study's seeds are 42, 1, 2, ...),
so the seed that chose a recipe never scores it. Every choice is made on the validation ROC-AUC of
the run's best epoch (the number the training loop already uses to keep its best epoch). The test
split is never scored: the tuning runs live in ``runs/tune/``, which ``evaluate.py`` does not read.

The search, for each method (the controls too, each as a method of its own):
- a starting grid of learning rates x epochs (GRIDS: full fine-tuning around 5e-5, LoRA around 1e-3;
  the LoRA methods, whose loss still falls after 3 epochs, at 6 and 10 epochs);
- then the grid grows until its best point is inside it. A best learning rate at the edge of those
  tried at its epochs gets the next one beyond it (x2 or /2). A best epoch count that is the most
  tried at its learning rate, with the run still improving in its last epoch, gets the next count of
  EPOCH_LADDER. Fewer epochs need no run of their own: a run scores every epoch on validation and
  keeps the best. It stops when the best point is interior, when the step beyond it scored worse
  (which makes it interior), or after MAX_EXTENSIONS steps, which tuning.md then says.

Then the distillation settings of the methods in KD_GRIDS: temperature x soft-label weight ``alpha_kd``
(the labels weighing ``1 - alpha_kd``), at the chosen learning rate and epochs; the point that equals
the recipe's settings is the chosen run itself.

The teachers (``teacher``, and ``teacher-strong``, which teaches ``minilm-kd``) are tuned first, side by
side, and each student is tuned on its chosen teacher, as the study then trains it; the other methods
search side by side. The TF-IDF baseline chooses its C on validation in every run.

Writes ``results/tuning.md`` and ``results/tuning.json`` (every run, its score and whether the choice
is interior) and ``results/tuned_defaults.json`` (the choices). ``train.py`` reads nothing at run
time: its RECIPES table repeats the choices as literals, and tests/test_recipes.py fails while the
two disagree. Resumable like the study: finished tuning runs are skipped. ``--methods`` searches some
methods only and keeps the others' rows and choices from tuning.json, each naming the command that made it.
"""
import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from experiments.runner import PlannedRun, add_jobs_argument, execute, is_done, planned_args
from evaluate import TUNING_DIR
from report.runs import train_py_time_s
from report.tables import markdown_table
from training.run_folder import read_history
from training.files import write_json_atomically, write_text_atomically
from train import RECIPES

SEED = 0  # not a seed of the study (experiments/study.py): the tuning never sees an evaluation seed
FULL_LRS, LORA_LRS = (2.5e-5, 5e-5, 1e-4), (5e-4, 1e-3, 2e-3, 4e-3)
GRIDS = {  # method: (learning rates, epochs), the teachers first: the students read them
    "teacher": (FULL_LRS, (3,)),
    "teacher-strong": ((1e-5, 2e-5, 4e-5), (3,)),  # a model twice as wide learns at a lower rate
    "odd": (FULL_LRS, (3,)),
    "even": ((*FULL_LRS, 2e-4), (3,)),
    "lora": (LORA_LRS, (6, 10)),
    "lora-kd": (LORA_LRS, (6, 10)),
    "odd-ce": (FULL_LRS, (3,)),
    "lora-odd": (LORA_LRS, (6, 10)),
    "full-even": ((*FULL_LRS, 2e-4), (3, 6)),
    "lora-minilm": (LORA_LRS, (6, 10)),
    "minilm": ((*FULL_LRS, 2e-4), (3,)),
    "minilm-kd": ((5e-5, 1e-4, 2e-4), (6,)),  # soft labels keep teaching after the labels are fitted
}
TUNED = tuple(GRIDS)
TEACHERS = tuple(dict.fromkeys(RECIPES[method].teacher for method in TUNED))  # the methods whose runs teach others
# method: (temperatures, soft-label weights). Hinton et al. 2015 use T from 2 to 20 and weigh the soft labels most;
# DistilBERT uses T = 2 with alpha_kd 5/7 of the two label terms.
KD_GRIDS = {"minilm-kd": ((1.0, 2.0, 4.0), (0.5, 0.9))}
EPOCH_LADDER = (3, 6, 10, 15, 20)
MAX_EXTENSIONS = 4


def tuning_run(runs_dir: str, method: str, lr: float, epochs: int, teacher: str | None,
               extra_flags: tuple[str, ...], kd: tuple[float, float] | None = None) -> PlannedRun:
    """A run of the search; ``kd`` = (temperature, alpha_kd) other than the recipe's."""
    flags = ["--method", method, "--seed", str(SEED), "--lr", f"{lr:g}", "--epochs", str(epochs)]
    if teacher:
        flags += ["--teacher", teacher]
    name = f"{runs_dir}/{method}-lr{lr:g}-ep{epochs}"
    if kd:
        flags += ["--temperature", f"{kd[0]:g}", "--alpha-kd", f"{kd[1]:g}"]
        name += f"-T{kd[0]:g}-kd{kd[1]:g}"
    return PlannedRun(name, (*flags, *extra_flags))


def validation_score(run: PlannedRun) -> dict:
    """The run's recipe, its best epoch's validation ROC-AUC and its train.py wall time.

    A setting whose run failed (diverged, or ended as a constant predictor) scores nothing and is
    never chosen; train.py kept it in ``<run>.failed/`` with the reason.
    """
    if not is_done(run):
        args = planned_args(run)
        return {"run": run.out, "lr": args["lr"], "epochs": args["epochs"], "best_epoch": None,
                "validation_roc_auc": None, "total_time_s": 0.0, "failed": True}
    history = read_history(Path(run.out))
    best = history["epochs"][history["best_epoch"] - 1]
    return {"run": run.out, "lr": history["args"]["lr"], "epochs": history["args"]["epochs"],
            "best_epoch": history["best_epoch"], "validation_roc_auc": best["validation"]["roc_auc"],
            "total_time_s": train_py_time_s(history)}


def choose(rows: list[dict]) -> dict:
    """The row with the best validation ROC-AUC; on a tie the earlier one (lower lr, fewer epochs)."""
    scored = [row for row in rows if row["validation_roc_auc"] is not None]
    if not scored:
        sys.exit(f"tune: every run of this search failed ({', '.join(row['run'] for row in rows)}); "
                 f"train.py kept each in <run>.failed/ with the reason")
    return max(scored, key=lambda row: (row["validation_roc_auc"], -row["lr"], -row["epochs"]))


def edges(best: dict, rows: list[dict]) -> dict[str, bool]:
    """Where ``best`` sits at an edge of the points tried around it (a failed run counts as tried)."""
    lrs = [row["lr"] for row in rows if row["epochs"] == best["epochs"]]
    epochs = [row["epochs"] for row in rows if row["lr"] == best["lr"]]
    return {"lowest lr": best["lr"] == min(lrs), "highest lr": best["lr"] == max(lrs),
            "most epochs": best["epochs"] == max(epochs) and best["best_epoch"] == best["epochs"]}


def steps_beyond(best: dict, rows: list[dict]) -> list[tuple[float, int]]:
    """The (lr, epochs) points one step beyond each edge ``best`` sits at."""
    at_edge, steps = edges(best, rows), []
    if at_edge["lowest lr"]:
        steps.append((best["lr"] / 2, best["epochs"]))
    if at_edge["highest lr"]:
        steps.append((best["lr"] * 2, best["epochs"]))
    if at_edge["most epochs"] and best["epochs"] < EPOCH_LADDER[-1]:
        steps.append((best["lr"], next(e for e in EPOCH_LADDER if e > best["epochs"])))
    return steps


def tune_methods(methods: list[str], runs_dir: str, teachers: dict[str, str], extra_flags: tuple[str, ...],
                 jobs: int = 1) -> dict[str, tuple[list[dict], dict]]:
    """Each method's grid, grown until its best is interior: its scored rows, in search order, and its choice.

    The methods search side by side: each round trains every method's next points as one plan, so
    that ``jobs`` runs keep the cores busy even when a method has a single step left. A student reads
    the chosen run of its recipe's teacher in ``teachers``.
    """
    points = {method: [(lr, e) for e in GRIDS[method][1] for lr in GRIDS[method][0]] for method in methods}
    rows: dict[str, list[dict]] = {method: [] for method in methods}
    for extension in range(MAX_EXTENSIONS + 1):
        plans = {method: [tuning_run(runs_dir, method, lr, e, teachers[RECIPES[method].teacher]
                                     if RECIPES[method].needs_teacher else None, extra_flags)
                          for lr, e in points[method]] for method in methods if points[method]}
        if not plans:
            break
        execute([run for plan in plans.values() for run in plan], stop_on_failure=False, jobs=jobs)
        for method, plan in plans.items():
            rows[method] += [{"method": method, "extension": extension, **validation_score(run)} for run in plan]
            tried = {(row["lr"], row["epochs"]) for row in rows[method]}
            points[method] = [point for point in steps_beyond(choose(rows[method]), rows[method]) if point not in tried]
    searched = {}
    for method in methods:
        best = choose(rows[method])
        at_edge = [edge for edge, yes in edges(best, rows[method]).items() if yes]
        searched[method] = rows[method], {**best, "interior": not at_edge, "at_edge": at_edge}
    return searched


def tune_kd(method: str, chosen: dict, runs_dir: str, teacher: str, extra_flags: tuple[str, ...],
            jobs: int = 1) -> tuple[list[dict], dict]:
    """The KD_GRIDS points of ``method`` at its chosen lr and epochs: every row, and the best (recipe's on a tie)."""
    recipe = RECIPES[method]
    default = (recipe.temperature, recipe.alpha_kd)
    plan = {kd: tuning_run(runs_dir, method, chosen["lr"], chosen["epochs"], teacher, extra_flags,
                           None if kd == default else kd)
            for kd in [(t, w) for t in KD_GRIDS[method][0] for w in KD_GRIDS[method][1]]}
    execute([run for kd, run in plan.items() if kd != default], stop_on_failure=False, jobs=jobs)
    rows = [{"method": method, "temperature": t, "alpha_kd": w, **validation_score(run)} for (t, w), run in plan.items()]
    scored = [row for row in rows if row["validation_roc_auc"] is not None]
    best = max(scored, key=lambda row: (row["validation_roc_auc"], (row["temperature"], row["alpha_kd"]) == default))
    return rows, {"temperature": best["temperature"], "alpha_kd": best["alpha_kd"],
                  "validation_roc_auc": best["validation_roc_auc"], "run": best["run"]}


def kd_markdown(rows: list[dict], chosen: dict[str, dict]) -> str:
    """The distillation-settings table: every KD_GRIDS run, the chosen one ticked."""
    if not rows:
        return ""
    table = markdown_table(
        ["Method", "Learning rate", "Epochs", "Temperature", "alpha_kd (labels: 1 − alpha_kd)", "Best epoch",
         "Validation ROC-AUC", "train.py time", "Chosen"],
        [[row["method"], f"{row['lr']:g}", str(row["epochs"]), f"{row['temperature']:g}", f"{row['alpha_kd']:g}",
          str(row["best_epoch"] or "–"),
          "failed" if row["validation_roc_auc"] is None else f"{row['validation_roc_auc']:.4f}",
          f"{row['total_time_s'] / 60:.1f} min", "✓" if chosen[row["method"]]["kd"]["run"] == row["run"] else ""]
         for row in rows])
    return (f"\n## Distillation settings\n\nAt each method's chosen learning rate and epochs, seed {SEED}: the "
            f"temperature and the soft labels' weight, the labels weighing the rest. The recipe's point is the "
            f"chosen run above; on a tie it stays.\n\n{table}\n")


def tuning_markdown(rows: list[dict], chosen: dict[str, dict], kd_rows: list[dict] = ()) -> str:
    table = markdown_table(
        ["Method", "Learning rate", "Epochs", "Grid", "Best epoch", "Validation ROC-AUC", "train.py time", "Chosen"],
        [[row["method"], f"{row['lr']:g}", str(row["epochs"]),
          "start" if row["extension"] == 0 else f"step {row['extension']}", str(row["best_epoch"] or "–"),
          "failed" if row["validation_roc_auc"] is None else f"{row['validation_roc_auc']:.4f}",
          f"{row['total_time_s'] / 60:.1f} min",
          "✓" if chosen[row["method"]]["run"] == row["run"] else ""] for row in rows])
    choices = markdown_table(
        ["Method", "Learning rate", "Epochs", "Validation ROC-AUC", "Inside its grid"],
        [[method, f"{row['lr']:g}", str(row["epochs"]), f"{row['validation_roc_auc']:.4f}",
          "yes" if row["interior"] else f"no, at the {' and '.join(row['at_edge'])} after {MAX_EXTENSIONS} steps"]
         for method, row in chosen.items()])
    # the recipe's own point is the chosen run of the lr search, already counted there
    total_kd = sum(row["total_time_s"] for row in kd_rows if row["run"] != chosen[row["method"]]["run"]) / 60
    total = sum(row["total_time_s"] for row in rows) / 60
    kd_time = f", and {total_kd:.1f} minutes for the distillation settings" if total_kd else ""
    pending = [method for method in TUNED if method not in chosen]
    if pending:  # train.py's recipe for it is a starting point, not a choice
        choices += f"\n\nNot searched yet, so train.py's recipe is not a choice of this search: {', '.join(pending)}."
    commands = list(dict.fromkeys(row["searched_by"] for row in chosen.values()))
    made_by = f"`{commands[0]}`" if len(commands) == 1 else "; ".join(
        f"`{c}` ({', '.join(m for m, row in chosen.items() if row['searched_by'] == c)})" for c in commands)
    return (f"# Tuning on validation\n\nGenerated by {made_by} (the docstring of `experiments/tune.py` describes "
            f"the search). Seed {SEED}, which no evaluation run uses; every choice by the validation ROC-AUC of the "
            f"run's best epoch; the test split is never scored. A best point is inside its grid when a lower and a "
            f"higher learning rate were tried at its epochs, and a longer schedule was tried at its learning rate "
            f"or its run peaked before its last epoch. The chosen recipes are in `tuned_defaults.json`, and "
            f"`train.py`'s RECIPES table repeats them. Wall time: {len(rows)} runs, {total:.1f} minutes of "
            f"`train.py` in all{kd_time}.\n\n{choices}\n\nEvery run, in search order (*start*: the starting grid; "
            f"*step k*: the k-th growth beyond an edge):\n\n{table}\n{kd_markdown(list(kd_rows), chosen)}")


def method_list(text: str) -> tuple[str, ...]:
    """``--methods``: comma-separated names of the methods make tune searches, in GRIDS order."""
    methods = {name.strip() for name in text.split(",")}
    unknown = sorted(methods - set(TUNED))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(TUNED)}")
    return tuple(method for method in TUNED if method in methods)


def kept_search(out: Path, methods: tuple[str, ...]) -> dict:
    """The rows and choices of the methods not searched now, from ``out``'s tuning.json (a one-line exit without).
    A method that tuning.json has never searched stays out of every file, and tuning.md lists it as not searched."""
    if set(methods) == set(TUNED):
        return {"runs": [], "kd_runs": [], "chosen": {}}
    try:
        previous = json.loads((out / "tuning.json").read_text(encoding="utf-8"))
        chosen = {method: {"searched_by": previous["generated_by"], **previous["chosen"][method]}
                  for method in TUNED if method not in methods and method in previous["chosen"]}
        return {"runs": [row for row in previous["runs"] if row["method"] in chosen], "chosen": chosen,
                "kd_runs": [row for row in previous.get("kd_runs", []) if row["method"] in chosen]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        sys.exit(f"tune: --methods keeps the other methods' choices from {out}/tuning.json, which holds none for "
                 f"them ({type(error).__name__}: {error}); search every method first")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", default=f"runs/{TUNING_DIR}", help="evaluate.py never reads runs/tune/")
    parser.add_argument("--out", type=Path, default=Path("results"), help="where tuning.md/json and tuned_defaults.json go")
    parser.add_argument("--methods", type=method_list, default=TUNED,
                        help="the methods to search (default: all); the others' choices stay as tuning.json has them")
    parser.add_argument("--train-flags", default="", help="extra train.py flags for every run (smoke runs)")
    add_jobs_argument(parser)
    args = parser.parse_args(argv)
    extra = tuple(shlex.split(args.train_flags))
    command = shlex.join(["python", "-m", "experiments.tune", *(sys.argv[1:] if argv is None else argv)])
    kept = kept_search(args.out, args.methods)
    started = time.perf_counter()
    searched = tune_methods([m for m in args.methods if m in TEACHERS], args.runs_dir, {}, extra, args.jobs)
    students = [method for method in args.methods if method not in TEACHERS]
    teachers = {}  # the students read them
    for teacher in dict.fromkeys(RECIPES[m].teacher for m in students if RECIPES[m].needs_teacher):
        teachers[teacher] = (searched[teacher][1] if teacher in searched else kept["chosen"].get(teacher, {})).get("run")
        if not teachers[teacher] or not Path(teachers[teacher], "history.json").is_file():
            sys.exit(f"tune: the students are searched with the chosen {teacher} "
                     f"({teachers[teacher] or 'none chosen yet'}), which is not on disk; add {teacher} to --methods")
    searched |= tune_methods(students, args.runs_dir, teachers, extra, args.jobs)
    chosen = {method: {"searched_by": command, **searched[method][1]} if method in searched else kept["chosen"][method]
              for method in TUNED if method in searched or method in kept["chosen"]}
    kd_rows = []
    for method in chosen:
        if method in searched and method in KD_GRIDS:
            rows, chosen[method]["kd"] = tune_kd(method, chosen[method], args.runs_dir, teachers[RECIPES[method].teacher],
                                                 extra, args.jobs)
            kd_rows += rows
        else:
            kd_rows += [row for row in kept["kd_runs"] if row["method"] == method]
    rows = [row for method in chosen for row in (searched[method][0] if method in searched else
                                                 [r for r in kept["runs"] if r["method"] == method])]
    write_json_atomically(args.out / "tuning.json", {"seed": SEED, "selection": "validation ROC-AUC of the best epoch",
                                                     "runs": rows, "kd_runs": kd_rows, "chosen": chosen,
                                                     "generated_by": command})
    write_text_atomically(args.out / "tuning.md", tuning_markdown(rows, chosen, kd_rows))
    write_json_atomically(args.out / "tuned_defaults.json", {
        "generated_by": f"{command} (see tuning.md)",
        "methods": {method: {"lr": row["lr"], "epochs": row["epochs"], "validation_roc_auc": row["validation_roc_auc"],
                             **({"temperature": row["kd"]["temperature"], "alpha_kd": row["kd"]["alpha_kd"]}
                                if "kd" in row else {})}
                    for method, row in chosen.items()}})
    print(tuning_markdown(rows, chosen, kd_rows))
    print(f"tune: {(time.perf_counter() - started) / 60:.1f} min; wrote {args.out}/tuning.md, tuning.json, "
          f"tuned_defaults.json")


if __name__ == "__main__":
    main()
