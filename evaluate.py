"""Evaluate every trained run on its held-out test split and write the report.

    python evaluate.py                         # every run under runs/ (and runs/study/)
    python evaluate.py runs/odd runs/even      # only these runs
    python evaluate.py --no-speed --bootstrap 500 --no-readme

For each run: rebuild the splits it was trained on (from its history.json), predict the
validation and test comments (or reuse the predictions of an earlier evaluation of the unchanged
run, report/score_cache.py), choose the decision threshold on validation, score the test split
at 0.5 and at that threshold, and measure what the model costs (speed once per method). A run that cannot be read or
scored (no weights, a corrupt history, a dataset that is gone) is skipped and listed with the
reason; the exit status is non-zero only with --strict or when no run could be scored. Then flag degenerate runs,
summarise each method over its seeds, compare methods with a paired bootstrap, report the ablations
(runs/ablations/, report/ablations.py) in their own tables, and write results/results.md,
results/results.json and the figures. The results section of README.md
(between <!-- results:start --> and <!-- results:end -->) is regenerated from the same numbers.
"""
import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from data import DataError
from data.load import load_splits
from baselines.tfidf import TfidfError
from models.load import ModelError
from report import ReportError
from report.ablations import ablation_report, best_student_result, ensemble_teacher, trade_off_points
from report.behaviour import failures_markdown, run_suite, suite_summary
from report.costs import adapter_size_mb, folder_size_mb, measure_speed
from report.document import results_markdown
from report.flags import degenerate_flags
from report.inference import load_scorer
from report.plots import draw_figures
from report.quality import RunPredictions, fingerprint, quality_report
from report.readme import update_readme
from report.runs import (ABLATIONS_DIR, STUDY_DIR, Run, arrange_runs, dataset_args, display_path,
                         experiment_sessions, find_run_folders, read_run, training_losses)
from report.score_cache import cached_scores, scores_key, store_scores
from report.study import method_comparisons, seed_summary
from training.files import write_json_atomically, write_text_atomically
from training.metrics import binary_metrics
from training.model_card import write_model_card


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path, help="run folders to evaluate (default: all under --runs-dir)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where to look for runs (default: runs)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="report folder (default: results)")
    parser.add_argument("--readme", type=Path, default=Path("README.md"), help="README whose results section is regenerated")
    parser.add_argument("--no-readme", action="store_true", help="leave the README untouched")
    parser.add_argument("--bootstrap", type=int, default=2000, help="paired bootstrap resamples (default: 2000)")
    parser.add_argument("--bootstrap-seed", type=int, default=0)
    parser.add_argument("--no-speed", action="store_true", help="skip the inference speed measurement")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads for every run's inference (default: torch's default)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with an error if any run had to be skipped (default: report the others)")
    args = parser.parse_args(argv)
    if args.bootstrap < 1:
        parser.error("--bootstrap needs at least 1 resample")
    return args


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)  # one setting for all runs, so their speeds compare
    skipped = []  # {"path", "reason"} of every run that could not be read or scored
    readable = []
    for folder in args.paths or find_run_folders(args.runs_dir):
        try:
            readable.append(read_run(folder))
        except ReportError as error:
            skipped.append({"path": display_path(folder), "reason": str(error)})
    runs = arrange_runs(readable)

    # Score every run; runs trained on the same dataset settings share one load of the splits.
    splits_by_dataset = {}
    records, predictions = [], {}
    progress = tqdm(runs, desc="evaluating", unit="run", dynamic_ncols=True)
    for run in progress:
        progress.set_postfix_str(f"{run.name} ({run.path})")
        try:
            # Speed does not depend on the seed: measured once per method, on its primary run. An
            # ablation changes a setting of a measured method: its own tables need no speed or behaviour.
            record, predictions[run.name] = score_run(run, splits_by_dataset,
                                                      measure=not args.no_speed and run.primary and not run.ablation)
        except (ReportError, DataError, ModelError, TfidfError) as error:
            skipped.append({"path": display_path(run.path), "reason": str(error)})
            continue
        records.append(record)
    for skip in skipped:
        print(f"evaluate.py: skipped {skip['path']}: {skip['reason']}", file=sys.stderr)
    if not records:
        raise ReportError(f"no run could be scored ({len(skipped)} skipped, reasons above)")
    # A method whose primary run was skipped is represented by its next run.
    by_name = {record["name"]: record for record in records}
    runs = arrange_runs([run for run in runs if run.name in by_name])
    records = [by_name[run.name] for run in runs]
    for record, run in zip(records, runs):
        record["primary"] = run.primary

    # Warnings, the seed study and the paired comparisons, the ablations, then the report itself.
    flags = degenerate_flags(records, predictions)
    for record in records:
        record["flags"] = flags[record["name"]]
    main_runs = [run for run in runs if not run.ablation]
    main_records = [record for record in records if not record["ablation"]]
    everything = list(records)  # the ablations', the study's and the teachers' ensemble: the ablation tables
    ensemble = ensemble_teacher(main_records, predictions)
    if ensemble:
        everything.append(ensemble[0])
        predictions[ensemble[0]["name"]] = ensemble[1]
    ablations = ablation_report(everything, predictions, args.bootstrap, args.bootstrap_seed)
    points = trade_off_points(everything, predictions, ablations, args.bootstrap, args.bootstrap_seed)
    results = {
        "runs": main_records,
        "ablation_runs": [record for record in records if record["ablation"]],
        "skipped": skipped,
        "seeds": seed_summary(main_records),
        "behaviour_suite": suite_summary(),
        "comparisons": method_comparisons(main_records, predictions, args.bootstrap, args.bootstrap_seed),
        "ablations": ablations,
        "ensemble_teacher": ensemble[0] if ensemble else None,
        "best_student": best_student_result(everything, predictions, args.bootstrap, args.bootstrap_seed),
        "trade_off": points,
        "figures": draw_figures(main_runs, main_records, predictions, args.out, points),
        "generated_by": shlex.join(["python", "evaluate.py", *argv]),
        "evaluate_time_s": round(time.perf_counter() - started, 1),
        "study_sessions": experiment_sessions(args.runs_dir, STUDY_DIR),
        "ablation_sessions": experiment_sessions(args.runs_dir, ABLATIONS_DIR),
    }
    markdown = results_markdown(results)
    write_json_atomically(args.out / "results.json", results)
    write_text_atomically(args.out / "results.md",
                          f"# Results\n\nGenerated by `{results['generated_by']}`.\n\n{markdown}")
    write_text_atomically(args.out / "behaviour.md", failures_markdown(main_records))
    print(markdown)
    print(f"wrote {args.out}/results.md, {args.out}/results.json, {args.out}/behaviour.md "
          f"and {len(results['figures'])} figures")

    if not args.no_readme:
        image_dir = os.path.relpath(args.out.resolve(), args.readme.resolve().parent)
        print(update_readme(args.readme, results_markdown(results, image_dir=Path(image_dir).as_posix(),
                                                          heading="###")))
    if args.strict and skipped:
        raise ReportError(f"--strict: {len(skipped)} run(s) skipped (listed above); the report covers the others")
    return results


def score_run(run: Run, splits_by_dataset: dict, measure: bool) -> tuple[dict, RunPredictions]:
    """The results.json record of one run and its predictions; ``splits_by_dataset`` caches the splits.

    ``measure``: time its inference. The behavioural suite runs on every run but the ablations'.
    """
    dataset = dataset_args(run.history)
    key = json.dumps(dataset, sort_keys=True)
    if key not in splits_by_dataset:
        splits_by_dataset[key] = load_splits(**dataset)
    splits = splits_by_dataset[key]
    scorer = load_scorer(run.path, run.history["args"]["max_length"], run.history["args"].get("text_prefix", ""))
    test_set = fingerprint(splits.test.texts, splits.test.labels)
    scores = scores_key(run.path, fingerprint(splits.validation.texts, splits.validation.labels), test_set)
    cached = cached_scores(run.path, scores)
    if cached:
        validation_probs, test_probs = cached
    else:
        validation_probs, test_probs = scorer.predict(splits.validation.texts), scorer.predict(splits.test.texts)
        store_scores(run.path, scores, validation_probs, test_probs)
    quality = quality_report(splits.validation.labels, validation_probs, splits.test.labels, test_probs)

    total = scorer.num_parameters
    trainable = run.history["params"]["trainable"]
    record = {
        "name": run.name, "method": run.method, "path": display_path(run.path), "seed": run.seed,
        "primary": run.primary, "ablation": run.ablation, **quality,
        "params": {"total": total, "trainable": trainable, "trainable_share": trainable / total},
        "size_mb": folder_size_mb(run.path), "adapter_size_mb": adapter_size_mb(run.path),
        "speed": measure_speed(scorer, splits.test.texts) if measure else None,
        "train_wall_time_s": run.history["wall_time_s"],
        "command_wall_time_s": run.history.get("total_time_s"),
        "threads": run.history["args"].get("threads"),  # None: torch's default (every core)
        **training_losses(run.history),
        "deterministic": run.history.get("deterministic", False),
        "recipe": {"lr": run.history["args"].get("lr"), "epochs": run.history["args"].get("epochs"),
                   "defaults_from": run.history["args"].get("recipe_from")},
        "behaviour": None if run.ablation else run_suite(scorer, quality["validation_threshold"]),
        "test_set": {"source": splits.source, "size": len(splits.test.labels), "fingerprint": test_set},
    }
    if scorer.model is not None:  # a Hugging Face run folder: its model card gets the test scores
        refresh_model_card(run, record, splits.test.labels, test_probs)
    return record, RunPredictions(np.asarray(splits.test.labels), test_probs, test_set,
                                  np.asarray(splits.validation.labels), validation_probs)


def refresh_model_card(run: Run, record: dict, test_labels: list[int], test_probs: np.ndarray) -> None:
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
    except (ReportError, DataError, ModelError, TfidfError) as error:
        sys.exit(f"evaluate.py: {error}")
