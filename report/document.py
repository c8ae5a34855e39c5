"""The results document: tables, warnings, findings and figures in one Markdown text.

The same text goes to results/results.md and, with image links relative to the README and
headings one level deeper, into the marked results section of README.md.
"""
from report.behaviour import capability_table
from report.findings import findings
from report.tables import (WARNING, ablation_table, assignment_table, comparisons_table, costs_table, flag_list,
                           quality_table, seeds_table)


def ablations_markdown(results: dict, heading: str) -> list[str]:
    """The ablation tables, one per question (``report/ablations.py``), or a line saying how to make them."""
    families = results.get("ablations") or {}
    if not families:
        return [f"{heading} Ablations",
                "No ablation run has been evaluated yet: `make ablations` trains them (`experiments/ablations.py`), "
                "and `python evaluate.py` then gives one table per question here."]
    parts = [f"{heading} Ablations",
             "Each point is a `train.py` run with one setting changed (`experiments/ablations.py`); a point that "
             "`make all` or `make study` already trains is reused. Each row gives the mean ± std over the point's "
             "seeds (a single seed is labelled so), at the threshold chosen on validation; Δ is the test ROC-AUC "
             "difference with the row named, paired by seed over the seeds both have, with the two-level bootstrap "
             "interval (seeds and test comments) of the paired comparisons above. train.py time: the mean wall "
             "time of one run, the teacher a student learns from not counted."]
    for family in families.values():
        parts += [f"**{family['title']}**", ablation_table(family["rows"])]
    return parts


def results_markdown(results: dict, image_dir: str = "", heading: str = "##") -> str:
    """``image_dir`` is the figures' folder as seen from the document ("" when they sit side by side)."""
    records = results["runs"]
    prefix = f"{image_dir.rstrip('/')}/" if image_dir else ""
    speed = next((r["speed"] for r in records if r["speed"]), None)
    parts = [
        f"{heading} Model comparison",
        assignment_table(records),
        "Training Loss: mean cross-entropy on the training labels over the final epoch, for every method (for "
        "the distilled runs one term of what they minimised; for TF-IDF the fitted model's log-loss on the "
        "training split), so the column compares across methods. Training objective: what the run minimised, "
        "its final-epoch mean. Test Set Performance: held-out test split, at the decision threshold that "
        "maximises F1 on the validation split (never chosen on test). Controls change one thing of a main "
        "method; the paired comparisons below say what each one isolates.",
    ]
    warnings = flag_list(records + results.get("ablation_runs", []))
    if warnings:
        parts += [f"**{WARNING} {len(warnings.splitlines())} run(s) flagged as degenerate:**", warnings]
    skipped = results.get("skipped")
    if skipped:
        parts += [f"**{WARNING} {len(skipped)} run(s) skipped, not in any table:**",
                  "\n".join(f"- `{skip['path']}`: {skip['reason']}" for skip in skipped)]
    parts += [
        f"{heading} Findings",
        "\n".join(f"- {sentence}" for sentence in findings(results)),
        f"{heading} All runs: quality on the test split",
        quality_table(records),
        f"{heading} All runs: costs",
        costs_table(records),
        (f"Speed: {speed['threads']} torch thread(s), the same fixed sample of test comments for every run "
         f"({speed['batch_1']['comments']} at batch 1, {speed['batch_64']['comments']} at batch 64) after a "
         f"warm-up, fastest of {speed['repeats']} repeats, tokenisation included. Size: the whole run folder; adapter: adapter.safetensors alone."
         if speed else "Speed was not measured (--no-speed)."),
        f"{heading} Several seeds: mean ± std on the test split",
        seeds_table(results["seeds"]),
        f"{heading} Paired comparisons",
        comparisons_table(results["comparisons"]),
        ("Runs are paired by training seed (a method without randomness, TF-IDF, is paired with every seed). "
         "Δ is the difference of the seed-averaged test ROC-AUCs. Its main interval comes from a two-level "
         "bootstrap that resamples the seeds and then the test comments (`report/stats.py`), so it covers "
         "training noise and test-set noise; the narrower interval beside it resamples the test comments only."),
        *ablations_markdown(results, heading),
        f"{heading} Behavioural tests: pass rate per capability",
        (f"The {results['behaviour_suite']['cases']} cases of `data/behaviour.py` (CheckList's minimum functionality "
         f"tests, Ribeiro et al. 2020), each run at its validation threshold; the header gives each capability's "
         f"number of cases. A case passes when the verdict matches the label that the dataset's definition gives it "
         f"(toxic: an insult aimed at a participant of the conversation). The failing cases of the distilled and "
         f"LoRA students, side by side and explained word by word, are in [behaviour.md]({prefix}behaviour.md)."),
        capability_table(records),
        f"{heading} Figures",
        *(f"![{title}]({prefix}{filename})" for title, filename in results["figures"].items()),
    ]
    return "\n\n".join(parts) + "\n"
