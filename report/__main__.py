"""The full report: every run scored as ``evaluate.py`` scores it, then everything around the answer.

    python -m report                           # every run under runs/ (and runs/study/, runs/ablations/)
    python -m report --no-speed --no-readme
    python -m report --other-datasets-only     # results.json's other datasets and cross-dataset table only
    python -m report --family strong           # one ablation family added to results.json, the rest kept

It starts from ``evaluate.py``'s functions (the runs, their scores and threshold, the seed summary
and the paired comparisons) and adds: the TF-IDF baseline's scores, each method's speed and size,
the behavioural suite, flags for degenerate runs, the ablations' tables, the teachers' ensemble, the
best student and the trade-off figure, a model card in every run folder, results/results.md,
results/results.json and the figures. The README's answer and reading path, and the generated
sections of docs/, are regenerated from the same numbers (``report/render.py``).
"""
import argparse
import json
import shlex
import sys
import time
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import torch

import evaluate
from data import DataError
from evaluate import (METHOD_ORDER, EvaluationError, RunPredictions, correct_as_family, find_run_folders,
                      method_comparisons, read_runs, seed_summary)
from experiments.ablations import FAMILIES
from experiments.study import DATASET as STUDY_DATASET
from models.load import ModelError, load_tokenizer
from report.ablations import (GOAL_ROC_AUC, GOAL_SEEDS, ablation_report, best_student_result, ensemble_teacher, family_rows,
                              trade_off_points)
from report.behaviour import bare_insult_misses, failures_markdown, run_suite, suite_summary
from report.costs import adapter_size_mb, folder_size_mb, measure_speed
from report.datasets import CROSS_METHODS, PEER_FILE, cross_dataset, read_peer, truncated_share
from report.document import results_document, results_markdown
from report.flags import degenerate_flags
from report.model_card import write_model_card
from report.plots import draw_figures, plot_roc_auc_dots, plot_trade_off
from report.render import render_documents
from report.runs import experiment_sessions, train_py_time_s, training_losses
from report.scores import CachedScorer
from report.sensitivity import without_seen_comments
from training.files import write_json_atomically, write_text_atomically
from training.metrics import binary_metrics


def parse_args(argv: list[str]) -> argparse.Namespace:
    """evaluate.py's flags, and the report's own."""
    parser = argparse.ArgumentParser(prog="python -m report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", type=Path, default=Path("README.md"),
                        help="README whose answer and reading path (and docs/ beside it) are regenerated")
    parser.add_argument("--no-readme", action="store_true", help="leave the README and docs/ untouched")
    parser.add_argument("--no-speed", action="store_true", help="skip the inference speed measurement")
    parser.add_argument("--other-datasets-only", action="store_true",
                        help="rewrite only the other datasets' sections and the cross-dataset table of an existing "
                             "results.json, keeping its main dataset's answer (see update_other_datasets)")
    parser.add_argument("--family", choices=list(FAMILIES),
                        help="score one ablation family's runs and add its table to an existing results.json, "
                             "keeping the rest (see update_family)")
    return evaluate.parse_args(argv, parser)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)  # one setting for all runs, so their speeds compare
    runs_by_dataset, skipped = read_runs(args.paths or find_run_folders(args.runs_dir))
    if args.other_datasets_only:
        return update_other_datasets(runs_by_dataset, skipped, args, argv)
    if args.family:
        return update_family(runs_by_dataset, skipped, args, argv)
    dataset = args.dataset or main_dataset(runs_by_dataset)
    runs = runs_by_dataset.get(dataset, [])
    splits_by_test_set = {}
    records, predictions = evaluate.score_runs(runs, skipped, load=CachedScorer,
                                              extend=partial(describe_run, measure=not args.no_speed,
                                                             splits_by_test_set=splits_by_test_set))

    # Warnings, the seed study and the paired comparisons, the ablations, then the report itself.
    flags = degenerate_flags(records, predictions)
    for record in records:
        record["flags"] = flags[record["name"]]
    main_records = [record for record in records if not record["ablation"]]
    main_runs = [run for run in runs if run.name in {record["name"] for record in main_records}]
    everything = list(records)  # the ablations', the study's and the teachers' ensemble: the ablation tables
    ensemble = ensemble_teacher(main_records, predictions)
    if ensemble:
        everything.append(ensemble[0])
        predictions[ensemble[0]["name"]] = ensemble[1]
    ablations = ablation_report(everything, predictions)
    points = trade_off_points(everything, predictions, ablations)
    others, cross = other_datasets({name: runs for name, runs in runs_by_dataset.items() if name != dataset}, dataset,
                                   main_records, main_runs, splits_by_test_set, args)
    results = {
        "dataset": dataset,
        "runs": main_records,
        "ablation_runs": [record for record in records if record["ablation"]],
        "skipped": skipped,
        "seeds": seed_summary(main_records),
        "behaviour_suite": suite_summary(),
        "bare_insults": bare_insult_misses(main_records),
        "comparisons": method_comparisons(main_records, predictions),
        "without_seen_comments": without_seen_comments(main_runs, main_records, predictions, splits_by_test_set),
        "other_datasets": others,
        "cross_dataset": cross,
        "ablations": ablations,
        "ensemble_teacher": ensemble[0] if ensemble else None,
        "best_student": best_student_result(everything, predictions),
        "trade_off": points,
        "figures": draw_figures(main_runs, main_records, predictions, args.out, points),
        "generated_by": shlex.join(["python", "-m", "report", *argv]),
        "evaluate_time_s": round(time.perf_counter() - started, 1),
        "study_sessions": experiment_sessions(args.runs_dir, evaluate.STUDY_DIR),
        "ablation_sessions": experiment_sessions(args.runs_dir, evaluate.ABLATIONS_DIR),
    }
    write_json_atomically(args.out / "results.json", results)
    write_text_atomically(args.out / "results.md", results_document(results))
    write_text_atomically(args.out / "behaviour.md", failures_markdown(main_records))
    print(results_markdown(results))
    print(f"wrote {args.out}/results.md, {args.out}/results.json, {args.out}/behaviour.md "
          f"and {len(results['figures'])} figures")
    if not args.no_readme:  # the README's answer and reading path, and the long sections of docs/ beside it
        for message in render_documents(results, args.readme, args.out):
            print(message)
    if args.strict and skipped:
        raise EvaluationError(f"--strict: {len(skipped)} run(s) skipped (listed above); the report covers the others")
    return results


def main_dataset(runs_by_dataset: dict[str, list]) -> str | None:
    """The dataset the report is about when none is named: the study's (train.py's default) if it has runs, so
    that a second dataset with more runs stays second; else the one with the most runs."""
    if STUDY_DATASET in runs_by_dataset:
        return STUDY_DATASET
    return max(runs_by_dataset, key=lambda name: len(runs_by_dataset[name]), default=None)


def update_other_datasets(runs_by_dataset: dict[str, list], skipped: list[dict], args: argparse.Namespace,
                          argv: list[str]) -> dict:
    """``--other-datasets-only``: a second dataset's runs added to a finished report without scoring the main study.

    The main dataset's answer (its runs, seeds, comparisons and ablations) stays as results.json has it; the
    other datasets are evaluated afresh, and the cross-dataset table scores the main dataset's runs of
    ``CROSS_METHODS`` that are on disk now, over the seeds they have (the table names them).
    """
    results = finished_report(args.out, "--other-datasets-only")
    main = results["dataset"]
    main_runs = [run for run in runs_by_dataset.get(main, []) if not run.ablation]
    splits_by_test_set = {}
    # The cross table needs only their scores, thresholds and test splits: no behavioural suite, no model card.
    main_records, _ = evaluate.score_runs([run for run in main_runs if run.method in CROSS_METHODS], skipped,
                                          load=CachedScorer,
                                          extend=partial(remember_splits, splits_by_test_set=splits_by_test_set))
    others, cross = other_datasets({name: runs for name, runs in runs_by_dataset.items() if name != main}, main,
                                   main_records, main_runs, splits_by_test_set, args)
    results.update(other_datasets=others, cross_dataset=cross,
                   other_datasets_generated_by=shlex.join(["python", "-m", "report", *argv]))
    return write_updated_report(results, args, "the other datasets' sections")


def finished_report(out: Path, flag: str) -> dict:
    """The results.json of a full report, which ``flag`` updates; a one-line error without one."""
    results_file = out / "results.json"
    try:
        results = json.loads(results_file.read_text(encoding="utf-8"))
        results["dataset"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise EvaluationError(f"{flag} updates {results_file}, which a full report writes first "
                              f"({type(error).__name__}: {error})") from None
    return results


def write_updated_report(results: dict, args: argparse.Namespace, what: str) -> dict:
    """Write a partly updated report: results.json, results.md, and (unless --no-readme) the README and docs/."""
    write_json_atomically(args.out / "results.json", results)
    write_text_atomically(args.out / "results.md", results_document(results))
    print(f"wrote {what} into {args.out}/results.json and {args.out}/results.md")
    if not args.no_readme:
        for message in render_documents(results, args.readme, args.out):
            print(message)
    return results


def update_family(runs_by_dataset: dict[str, list], skipped: list[dict], args: argparse.Namespace,
                  argv: list[str]) -> dict:
    """``--family NAME``: one ablation family added to a finished report without scoring anything else.

    Only the family's runs and those its rows are compared with are scored. Its table replaces the one
    results.json had, and the Holm correction is redone over every ablation comparison. The best student is
    chosen again, by the full report's rule (the most seeds, then mean validation ROC-AUC), between the
    report's and the family's own students. The family's trade-off points replace those of the same methods,
    and the two figures that draw them are redrawn. Everything else stays as results.json has it.
    """
    results = finished_report(args.out, "--family")
    names = {name for name, _, against in family_rows(args.family) for name in (name, against)}
    runs = [run for run in runs_by_dataset.get(results["dataset"], []) if run.method in names]
    if not runs:
        raise EvaluationError(f"no run of the {args.family} family under {args.runs_dir}")
    records, predictions = evaluate.score_runs(runs, skipped, load=CachedScorer,
                                              extend=partial(describe_run, measure=False, splits_by_test_set={}))
    flags = degenerate_flags(records, predictions)
    for record in records:
        record["flags"] = flags[record["name"]]
    table = ablation_report(records, predictions).get(args.family)
    if table is None:
        raise EvaluationError(f"no run of the {args.family} family's own points has been evaluated")
    results["ablations"][args.family] = table
    correct_as_family([row["comparison"] for family in results["ablations"].values() for row in family["rows"]
                       if row["comparison"]], "exploratory (ablations)")
    own = {record["name"]: record for record in records if record["method"] not in METHOD_ORDER}
    results["ablation_runs"] = [r for r in results["ablation_runs"] if r["name"] not in own] + list(own.values())
    old, new = results.get("best_student"), best_student_result(records, predictions)
    rank = lambda best: (len(best["seeds"]), best["validation_roc_auc"]) if best else (0, float("-inf"))
    results["best_student"] = {**(new if rank(new) > rank(old) else old), "goal_roc_auc": GOAL_ROC_AUC,
                              "goal_seeds": GOAL_SEEDS}
    points = trade_off_points(records, predictions, {args.family: table})
    added = {point["method"] for point in points}
    results["trade_off"] = [p for p in results["trade_off"] if p["method"] not in added] + points
    plot_roc_auc_dots(results["trade_off"], args.out / "test_roc_auc.png")
    plot_trade_off(results["trade_off"], args.out / "trade_off.png")
    results.setdefault("families_generated_by", {})[args.family] = shlex.join(["python", "-m", "report", *argv])
    print("redrew test_roc_auc.png and trade_off.png")
    return write_updated_report(results, args, f"the {args.family} family")


def other_datasets(runs_by_dataset: dict[str, list], main: str, main_records: list[dict], main_runs: list,
                   splits_by_test_set: dict, args: argparse.Namespace) -> tuple[dict, dict | None]:
    """Each other dataset's runs evaluated on their own (``report/datasets.py``), and the cross-dataset table."""
    describe = partial(describe_run, measure=False, splits_by_test_set=splits_by_test_set)
    others, records_by_dataset, runs_by_name = {}, {main: main_records}, {main: {run.name: run for run in main_runs}}
    for name, runs in runs_by_dataset.items():
        skipped = []
        try:
            records, predictions = evaluate.score_runs(runs, skipped, load=CachedScorer, extend=describe)
        except EvaluationError as error:
            print(f"python -m report: no report for the runs trained on {name}: {error}", file=sys.stderr)
            continue
        records = [record for record in records if not record["ablation"]]
        others[name] = {"runs": records, "skipped": skipped, "seeds": seed_summary(records),
                        "comparisons": method_comparisons(records, predictions),
                        "sessions": experiment_sessions(args.runs_dir, name)}
        records_by_dataset[name], runs_by_name[name] = records, {run.name: run for run in runs}
    if not others:
        return others, None
    tests = {name: splits_by_test_set[Counter(r["test_set"]["fingerprint"] for r in records).most_common(1)[0][0]].test
             for name, records in records_by_dataset.items()}
    teacher = next((run for run in main_runs if run.method == "teacher"), None)
    max_length = teacher.history["args"]["max_length"] if teacher else None
    truncated = {name: truncated_share(load_tokenizer(str(teacher.path)), test.texts, max_length)
                 for name, test in tests.items()} if teacher else {}
    return others, {"table": cross_dataset(records_by_dataset, runs_by_name, tests, load=CachedScorer),
                    "peer": read_peer(args.out / PEER_FILE), "max_length": max_length, "truncated": truncated}


def remember_splits(run, record, scores, splits, predictions: RunPredictions, *, splits_by_test_set: dict) -> None:
    """Keep the run's splits under its test set's fingerprint (``evaluate.score_runs``'s ``extend`` signature)."""
    splits_by_test_set[predictions.test_set] = splits


def describe_run(run: evaluate.Run, record: dict, scores: CachedScorer, splits, predictions: RunPredictions, *,
                 measure: bool, splits_by_test_set: dict) -> None:
    """Add to ``record`` what the report says of a run beyond its scores; rewrite its model card.

    ``splits_by_test_set`` collects the splits of each test set, for the sensitivity check.

    Speed does not depend on the seed: it is measured once per method, on its primary run, and
    only when ``measure``. An ablation changes a setting of a measured method: its own tables need
    no speed or behaviour. ``scores`` loads the run only if that is needed.
    """
    splits_by_test_set[predictions.test_set] = splits
    needs_model = not run.ablation
    scorer = scores.loaded() if needs_model else None
    record.update({
        "size_mb": folder_size_mb(run.path), "adapter_size_mb": adapter_size_mb(run.path),
        "speed": measure_speed(scorer, splits.test.texts) if measure and run.primary and needs_model else None,
        "train_wall_time_s": run.history["wall_time_s"],
        "command_wall_time_s": train_py_time_s(run.history),
        "optimizer_steps": run.history["steps"][-1]["step"] if run.history.get("steps") else None,
        "threads": run.history["args"].get("threads"),  # None: torch's default (every core)
        **training_losses(run.history),
        "recipe": {"lr": run.history["args"].get("lr"), "epochs": run.history["args"].get("epochs"),
                   "defaults_from": run.history["args"].get("recipe_from")},
        "behaviour": run_suite(scorer, record["validation_threshold"]) if needs_model else None,
    })
    if (Path(run.path) / "config.json").is_file():  # a Hugging Face run folder: its card gets the test scores
        refresh_model_card(run, record, splits.test.labels, predictions.probs)


def refresh_model_card(run: evaluate.Run, record: dict, test_labels: list[int], test_probs: np.ndarray) -> None:
    """Rewrite the run folder's README.md with its test scores, speed and size.

    The card names the threshold that predict.py and the web app apply (history.json's
    ``validation_threshold``), so its test row is scored at that threshold. A folder that cannot
    be written (read-only) keeps its old card; the report goes on.
    """
    threshold = run.history.get("validation_threshold")
    evaluation = {"test": None if threshold is None else binary_metrics(test_labels, test_probs, threshold),
                  "test_at_0.5": record["test"]["at_0.5"], "size_mb": record["size_mb"], "speed": record["speed"]}
    try:
        write_model_card(run.path, run.history, evaluation)
    except OSError as error:
        print(f"warning: the model card of {run.path} was not updated ({error})", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except (EvaluationError, DataError, ModelError) as error:
        sys.exit(f"python -m report: {error}")
