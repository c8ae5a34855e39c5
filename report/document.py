"""The results in Markdown: tables, warnings, findings and figures, as sections that documents combine.

results/results.md holds every section at once. The long documents of docs/ each take theirs
(``report/render.py`` writes them between markers): the study and its statistics, the ablations,
the behavioural tests and the served run. Image and file links are given relative to the document
that holds them (``prefix``), and headings at the depth it needs (``heading``).
"""
from report.behaviour import bare_insult_table, capability_table
from report.datasets import other_dataset_markdown
from report.findings import findings, served_run
from report.tables import (TRAINING_LOSS, WARNING, ablation_table, assignment_table, comparisons_table, costs_table,
                           flag_list, quality_table, seeds_table)


def folder_prefix(image_dir: str) -> str:
    """``image_dir`` is the results folder as seen from the document ("" when they sit side by side)."""
    return f"{image_dir.rstrip('/')}/" if image_dir else ""


def model_comparison_markdown(results: dict, heading: str) -> list[str]:
    """One row per method, what its numbers mean, and every degenerate or skipped run."""
    records = results["runs"]
    parts = [
        f"{heading} Model comparison",
        assignment_table(records),
        f"{TRAINING_LOSS}: mean cross-entropy on the training labels over the run's last epoch, for every method "
        "(for the distilled runs one term of what they minimised; for TF-IDF the fitted model's log-loss on the "
        "training split), so the column compares across methods. It is the last epoch's, not the scored model's: "
        "the weights scored on test are those of the epoch with the best validation ROC-AUC, which can be an "
        "earlier one. Training objective: what the run minimised, its final-epoch mean. Test Set Performance: "
        "held-out test split, at the decision threshold that maximises F1 on the validation split (never chosen "
        "on test). Controls change one thing of a main method; the paired comparisons below say what each one "
        "isolates.",
    ]
    warnings = flag_list(records + results.get("ablation_runs", []))
    if warnings:
        parts += [f"**{WARNING} {len(warnings.splitlines())} run(s) flagged as degenerate:**", warnings]
    skipped = results.get("skipped")
    if skipped:
        parts += [f"**{WARNING} {len(skipped)} run(s) skipped, not in any table:**",
                  "\n".join(f"- `{skip['path']}`: {skip['reason']}" for skip in skipped)]
    return parts


def findings_markdown(results: dict, heading: str) -> list[str]:
    return [f"{heading} Findings", "\n".join(f"- {sentence}" for sentence in findings(results))]


def all_runs_markdown(results: dict, heading: str) -> list[str]:
    """Every run's test metrics at both thresholds, and what each costs."""
    records = results["runs"]
    speed = next((r["speed"] for r in records if r["speed"]), None)
    return [
        f"{heading} All runs: quality on the test split",
        quality_table(records),
        f"{heading} All runs: costs",
        costs_table(records),
        (f"Speed: {speed['threads']} torch thread(s), the same fixed sample of test comments for every run "
         f"({speed['batch_1']['comments']} at batch 1, {speed['batch_64']['comments']} at batch 64) after a "
         f"warm-up, fastest of {speed['repeats']} repeats, tokenisation included. Size: the whole run folder; "
         f"adapter: adapter.safetensors alone."
         if speed else "Speed was not measured (--no-speed)."),
    ]


def unseen_comments_markdown(sensitivity: dict | None) -> list[str]:
    """The sensitivity check of ``report/sensitivity.py``: the primary comparisons without the seen test comments."""
    if not sensitivity:
        return []
    return [f"Sensitivity: the question's three comparisons again without the {sensitivity['dropped']} test comments "
            f"that, normalised, repeat a training or validation comment ({sensitivity['kept']} kept; "
            f"`report/sensitivity.py`):", comparisons_table(sensitivity["comparisons"])]


def seeds_markdown(results: dict, heading: str) -> list[str]:
    """The seed study: each method's mean ± std, and the paired comparisons with their intervals."""
    return [
        f"{heading} Several seeds: mean ± std on the test split",
        seeds_table(results["seeds"]),
        f"{heading} Paired comparisons",
        comparisons_table(results["comparisons"]),
        *unseen_comments_markdown(results.get("without_seen_comments")),
        ("Runs are paired by training seed (a method without randomness, TF-IDF, is paired with every seed). "
         "Δ is the difference of the seed-averaged test ROC-AUCs. Its standard error adds two noises, "
         "SE² = s²_seed/n + SE²_test: the spread of the n per-seed differences (training noise) and the test "
         "comments' noise of Δ with every model fixed (DeLong, DeLong & Clarke-Pearson 1988, for AUCs measured on "
         "the same comments); the 95% interval is Δ ± t·SE with Student's t at n − 1 degrees of freedom (4.30 at "
         "3 seeds, 2.78 at 5), the normal quantile for a single seed (`evaluate.py`). In simulated studies with no "
         "true difference it covers 0 in at least 93% of them at 3 and 5 seeds, where resampling the seeds does "
         "not (`tests/test_intervals.py`). The question's three comparisons (odd − even, lora − odd, lora − even) "
         "are the primary family, declared in `evaluate.py` before the runs; the others are exploratory. Each "
         "family's p-values are Holm-corrected (Holm 1979), and a verdict names a winner only where the adjusted "
         "p is below 0.05. An interval that contains 0 detects no difference; it does not show that there is "
         "none, and its ends say how large a difference it still allows."),
    ]


def ablations_markdown(results: dict, heading: str) -> list[str]:
    """The ablation tables, one per question (``report/ablations.py``), or a line saying how to make them."""
    families = results.get("ablations") or {}
    if not families:
        return [f"{heading} Ablations",
                "No ablation run has been evaluated yet: `make ablations` trains them (`experiments/ablations.py`), "
                "and `python -m report` then gives one table per question here."]
    parts = [f"{heading} Ablations",
             "Each point is a `train.py` run with one setting changed (`experiments/ablations.py`); a point that "
             "`make all` or `make study` already trains is reused. Each row gives the mean ± std over the point's "
             "seeds (a single seed is labelled so), at the threshold chosen on validation; Δ is the test ROC-AUC "
             "difference with the row named, paired by seed over the seeds both have, with the interval of the "
             "study's paired comparisons, Holm-corrected over every ablation comparison. Optimiser steps: the mean over "
             "the point's seeds; a point that adds comments (the transfer set) also takes more steps than its "
             "reference, so its difference mixes more data with more training. train.py time: the mean wall "
             "time of one run, the teacher a student learns from not counted."]
    for family in families.values():
        parts += [f"**{family['title']}**", ablation_table(family["rows"])]
    return parts


def behaviour_markdown(results: dict, heading: str, prefix: str) -> list[str]:
    """The behavioural suite's pass rates per capability, with a link to the failing cases."""
    return [
        f"{heading} Behavioural tests: pass rate per capability",
        (f"The {results['behaviour_suite']['cases']} cases of `report/behaviour_cases.py` (CheckList's minimum functionality "
         f"tests, Ribeiro et al. 2020), each run at its validation threshold; the header gives each capability's "
         f"number of cases. A case passes when the verdict matches the label that the dataset's definition gives it "
         f"(toxic: an insult aimed at a participant of the conversation). The failing cases of the distilled and "
         f"LoRA students, side by side and explained word by word, are in [behaviour.md]({prefix}behaviour.md)."),
        capability_table(results["runs"]),
        ("Do LoRA students let more bare insults through than the distilled ones? Each LoRA variant against odd "
         "and even of the same seeds, at every run's own threshold and at 0.5, with a 95% percentile bootstrap "
         "over the seeds and the cases (`report/behaviour.py`):"),
        bare_insult_table(results["bare_insults"]),
    ]


def figures_markdown(results: dict, heading: str, prefix: str) -> list[str]:
    return [f"{heading} Figures", *(f"![{title}]({prefix}{filename})" for title, filename in results["figures"].items())]


def served_run_markdown(results: dict) -> str:
    """Which run `python -m webapp` serves without --model, and why that one."""
    return served_run(results["runs"] + results.get("ablation_runs", []), results.get("best_student")) + "\n"


def joined(parts: list[str]) -> str:
    return "\n\n".join(parts) + "\n"


def study_markdown(results: dict, image_dir: str = "", heading: str = "##") -> str:
    """docs/study.md's generated part: the comparison, the findings, every run, the seeds, the figures."""
    prefix = folder_prefix(image_dir)
    return joined([*model_comparison_markdown(results, heading), *findings_markdown(results, heading),
                   *seeds_markdown(results, heading), *all_runs_markdown(results, heading),
                   *figures_markdown(results, heading, prefix)])


def results_markdown(results: dict, image_dir: str = "", heading: str = "##") -> str:
    """Every section at once: results/results.md, and what python -m report prints."""
    prefix = folder_prefix(image_dir)
    return joined([*model_comparison_markdown(results, heading), *findings_markdown(results, heading),
                   *all_runs_markdown(results, heading), *seeds_markdown(results, heading),
                   *other_dataset_markdown(results, heading),
                   *ablations_markdown(results, heading), *behaviour_markdown(results, heading, prefix),
                   *figures_markdown(results, heading, prefix)])


def results_document(results: dict) -> str:
    """results/results.md: the whole report in one file, headed by the command that measured it."""
    return f"# Results\n\nGenerated by `{results['generated_by']}`.\n\n{results_markdown(results)}"
