"""The report's Markdown tables, built from the records that are also written to results.json.

The first table is the model comparison: ``Model Type | Final-epoch training loss | Test Set
Performance``, one row per method (its primary run). The tables beneath it hold every run.
"""
import math

from evaluate import verdict_words

MODEL_TYPES = {
    "teacher": "Teacher: full fine-tuning",
    "odd": "Distilled student: odd teacher layers",
    "even": "Distilled student: even teacher layers",
    "lora": "LoRA fine-tuning, merged",
    "lora-kd": "LoRA + distillation, merged",
    "odd-ce": "Control: odd student's start, cross-entropy only",
    "lora-odd": "Control: LoRA from the odd student's start, merged",
    "full-even": "Control: LoRA's start, every weight trained",
    "lora-minilm": "Control: LoRA on MiniLM-L6, a clean 6-layer base, merged",
    "minilm": "Baseline: MiniLM-L6 fine-tuned directly",
    "tfidf": "Baseline: TF-IDF n-grams + logistic regression",
}
WARNING = "⚠"
TRAINING_LOSS = "Final-epoch training loss"


def number(value: float | None, digits: int = 3) -> str:
    """A metric for a table cell; missing or undefined values show as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def signed(value: float, digits: int = 3) -> str:
    return f"{value:+.{digits}f}".replace("-", "−")


def verdict_cell(comparison: dict) -> str:
    """The verdict in words, and its family."""
    said = verdict_words(comparison)
    return f"{said} (Holm p {comparison['p_holm']:.3f}, {comparison['family']}, {comparison['family_size']} compared)"


def millions(count: int) -> str:
    return f"{count / 1e6:.2f} M"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def model_type(record: dict) -> str:
    return f"{MODEL_TYPES.get(record['method'], record['method'])} (`{record['name']}`)"


def performance_cell(record: dict) -> str:
    """The compact "Test Set Performance" cell, at the threshold chosen on validation."""
    test = record["test"]["at_validation_threshold"]
    return f"ROC-AUC {number(test['roc_auc'])} · macro-F1 {number(test['macro_f1'])} · acc {number(test['accuracy'])}"


def objective_cell(record: dict) -> str:
    """What the run minimised and its final-epoch mean; for plain cross-entropy, the training loss column itself."""
    if record["objective"] == "CE":
        return "CE (= final-epoch training loss)"
    return f"{number(record['train_objective'], 4)} ({record['objective']})"


def assignment_table(records: list[dict]) -> str:
    """The model comparison: type, training loss, test performance, then what each run minimised.

    The training loss is the final epoch's, while the weights scored on test are those of the epoch
    with the best validation ROC-AUC, which can be an earlier one: the header says which.
    Baselines and controls are rows too.
    """
    rows = [[model_type(r), number(r["train_ce"], 4), performance_cell(r), objective_cell(r)]
            for r in records if r["primary"]]
    return markdown_table(["Model Type", TRAINING_LOSS, "Test Set Performance", "Training objective"], rows)


def flag_list(records: list[dict]) -> str:
    """A bullet per flagged run with all its warnings, or an empty string when no run was flagged."""
    return "\n".join(f"- {WARNING} **{r['name']}**: {'; '.join(r['flags'])}" for r in records if r["flags"])


def quality_table(records: list[dict]) -> str:
    """Test metrics of every run: one row at threshold 0.5, one at the validation threshold."""
    rows = []
    for record in records:
        for key, threshold in (("at_0.5", "0.5"), ("at_validation_threshold", f"{record['validation_threshold']:.3f} (val)")):
            m = record["test"][key]
            confusion = " / ".join(str(m["confusion"][cell]) for cell in ("tn", "fp", "fn", "tp"))
            warning = WARNING if record["flags"] and key == "at_0.5" else ""
            rows.append([f"`{record['name']}`", record["method"], str(record["seed"]), threshold,
                         *(number(m[metric]) for metric in ("accuracy", "precision", "recall", "f1", "macro_f1",
                                                            "roc_auc", "pr_auc")),
                         confusion, warning])
    return markdown_table(["Run", "Method", "Seed", "Threshold", "Accuracy", "Precision", "Recall", "F1",
                           "Macro-F1", "ROC-AUC", "PR-AUC", "TN / FP / FN / TP", WARNING], rows)


def costs_table(records: list[dict]) -> str:
    rows = []
    for record in records:
        params, speed = record["params"], record["speed"] or {}
        timings = [number(speed[f"batch_{size}"][key], 1) if speed else "–"
                   for size in (1, 64) for key in ("examples_per_s", "ms_per_comment")]
        rows.append([f"`{record['name']}`", millions(params["total"]),
                     f"{millions(params['trainable'])} ({100 * params['trainable_share']:.1f}%)",
                     number(record["size_mb"], 1), number(record["adapter_size_mb"], 2), *timings,
                     f"{record['train_wall_time_s'] / 60:.1f} min"])
    return markdown_table(["Run", "Parameters", "Trainable", "Size (MB)", "Adapter (MB)", "Batch 1: ex/s",
                           "Batch 1: ms/comment", "Batch 64: ex/s", "Batch 64: ms/comment", "Training time"], rows)


def mean_std_cell(summary: dict) -> str:
    return number(summary["mean"]) + (f" ± {number(summary['std'])}" if summary["std"] is not None else "")


def seeds_table(seeds: dict[str, dict]) -> str:
    metrics = (("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"), ("macro_f1", "Macro-F1"), ("f1", "F1"),
               ("accuracy", "Accuracy"))
    rows = [[method, ", ".join(map(str, summary["seeds"])), *(mean_std_cell(summary[key]) for key, _ in metrics)]
            for method, summary in seeds.items()]
    return markdown_table(["Method", "Seeds", *(title for _, title in metrics)], rows)


def comparisons_table(comparisons: dict[str, dict]) -> str:
    rows = []
    for comparison in comparisons.values():
        label = f"{comparison['a']} − {comparison['b']}"
        if "skipped" in comparison:
            rows.append([label, comparison["question"], "–", "–", "–", "–", f"not compared: {comparison['skipped']}"])
            continue
        interval = "[{}, {}]".format(*map(signed, comparison["ci95"]))
        per_seed = ", ".join(f"{signed(d)} (seed {s})" for s, d in comparison["per_seed_differences"].items())
        rows.append([label, comparison["question"], signed(comparison["difference"]), interval,
                     f"{comparison['se_seed']:.4f} / {comparison['se_test']:.4f}", per_seed, verdict_cell(comparison)])
    return markdown_table(["Test ROC-AUC difference", "Question", "Δ", "95% CI", "SE: seeds / test comments",
                           "Per-seed Δ", "Verdict"], rows)


def seeds_cell(seeds: list[int]) -> str:
    return f"{seeds[0]} (single seed)" if len(seeds) == 1 else ", ".join(map(str, seeds))


def ablation_table(rows: list[dict]) -> str:
    """One family of ablations: each point over its seeds, and its paired comparison with its reference."""
    lines = []
    for row in rows:
        comparison = row["comparison"]
        if comparison is None:
            versus = ["reference", "–", "–"]
        elif "skipped" in comparison:
            versus = [f"vs {row['against']}: –", "–", f"not compared: {comparison['skipped']}"]
        else:
            versus = [f"vs {row['against']}: {signed(comparison['difference'])}",
                      "[{}, {}]".format(*map(signed, comparison["ci95"])),
                      verdict_cell(comparison) + (" (single seed)" if comparison["n_seeds"] == 1 else "")]
        minutes = "–" if row["minutes"] is None else f"{row['minutes']:.1f} min"
        steps = "–" if row.get("steps") is None else f"{row['steps']:,.0f}"
        lines.append([f"{row['label']} (`{row['method']}`)", row.get("seeds_label") or seeds_cell(row["seeds"]),
                      mean_std_cell(row["roc_auc"]),
                      mean_std_cell(row["pr_auc"]), mean_std_cell(row["macro_f1"]), millions(row["trainable"]),
                      steps, minutes, *versus])
    return markdown_table(["Point", "Seeds", "Test ROC-AUC", "PR-AUC", "Macro-F1", "Trainable", "Optimiser steps",
                           "train.py time", "Δ test ROC-AUC", "95% CI: seeds + test comments", "Verdict"], lines)
